//! Signing vetted objects: a refused object is not signed; the signature verifies for the exact
//! bytes and key, and one byte changed in the object, another key, or an edited signature file
//! is refused.

use watertight_bpf::{sign, verify_signature, Error, Policy, SignatureFile};
use watertight_integrity::SigningKey;

fn compile(body: &str) -> Option<Vec<u8>> {
    let test = watertight_testkit::this_test();
    if !watertight_testkit::require_bpf_toolchain(&test) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("p.c");
    let obj = dir.path().join("p.o");
    std::fs::write(
        &src,
        format!("#include <linux/types.h>\n#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n{body}\n"),
    )
    .unwrap();
    watertight_testkit::compile_bpf(&src, &obj);
    Some(std::fs::read(&obj).unwrap())
}

const ADMITTED: &str = r#"SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx) { return bpf_get_current_pid_tgid() & 1; }"#;

#[test]
fn a_signature_holds_for_the_exact_bytes_and_key_only() {
    let Some(obj) = compile(ADMITTED) else { return };
    let key = SigningKey::from_seed([7; 32]);
    let policy = Policy::builtin();
    let sig = sign(&obj, &policy, &key).unwrap();
    let json = sig.to_json();
    let back = verify_signature(&obj, json.as_bytes(), &key.verifying_key()).unwrap();
    assert_eq!(back, sig);
    assert_eq!(back.policy_sha256, policy.sha256());
    assert_eq!(back.signer, key.verifying_key().fingerprint());

    // Every single byte flipped (a sample across the file) is refused.
    for at in (0..obj.len()).step_by(obj.len() / 64 + 1) {
        let mut changed = obj.clone();
        changed[at] ^= 1;
        let e = verify_signature(&changed, json.as_bytes(), &key.verifying_key()).unwrap_err();
        assert!(matches!(e, Error::SignatureMismatch(_)), "byte {at}: {e}");
        assert!(e.to_string().contains("changed after signing"), "{e}");
    }

    // Another key.
    let other = SigningKey::from_seed([8; 32]);
    let e = verify_signature(&obj, json.as_bytes(), &other.verifying_key()).unwrap_err();
    assert!(e.to_string().contains("not by the key given"), "{e}");

    // The policy hash edited in the file: the signature covers it.
    let mut edited: SignatureFile = serde_json::from_str(&json).unwrap();
    edited.policy_sha256 = "0".repeat(64);
    let e = verify_signature(&obj, edited.to_json().as_bytes(), &key.verifying_key()).unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");

    // Not a signature file.
    for bad in [&b""[..], b"{}", b"not json", br#"{"format":"x"}"#] {
        let e = verify_signature(&obj, bad, &key.verifying_key()).unwrap_err();
        assert!(matches!(e, Error::SignatureFormat(_)), "{e}");
    }
}

#[test]
fn a_refused_object_is_not_signed() {
    let Some(obj) = compile(
        r#"SEC("tp/syscalls/sys_enter_kill") int prog(void *ctx) { bpf_send_signal(9); return 0; }"#,
    ) else {
        return;
    };
    let key = SigningKey::from_seed([7; 32]);
    let e = sign(&obj, &Policy::builtin(), &key).unwrap_err();
    assert!(
        e.to_string().contains("helper send_signal (109, act)")
            && e.to_string().contains("helpers.classes"),
        "{e}"
    );
}
