//! Keys interoperate with OpenSSL (Debian 12's 3.0) both ways, as docs/integrity.md says: OpenSSL
//! reads the private key watertight writes and derives the same public key, watertight loads a
//! key OpenSSL generated, and OpenSSL verifies a manifest signature watertight made.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use watertight_integrity::{Manifest, SigningKey, VerifyingKey};
use watertight_testkit::require_tools;

fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn openssl_reads_the_private_key_watertight_writes() {
    if !require_tools(
        "openssl_reads_the_private_key_watertight_writes",
        &["openssl"],
        "openssl",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("release.key");
    let pub_path = SigningKey::generate().unwrap().save(&key_path).unwrap();
    let derived = openssl(&["pkey", "-in", path(&key_path), "-pubout"]);
    assert_eq!(
        String::from_utf8(derived.stdout).unwrap(),
        std::fs::read_to_string(&pub_path).unwrap(),
        "OpenSSL derives the public key watertight wrote"
    );
}

#[test]
fn a_key_openssl_generated_loads_and_openssl_verifies_its_signatures() {
    if !require_tools(
        "a_key_openssl_generated_loads_and_openssl_verifies_its_signatures",
        &["openssl"],
        "openssl",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("ossl.key");
    let pub_path = dir.path().join("ossl.key.pub");
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", path(&key_path)]);
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    openssl(&[
        "pkey",
        "-in",
        path(&key_path),
        "-pubout",
        "-out",
        path(&pub_path),
    ]);
    let key = SigningKey::load(&key_path).expect("load OpenSSL's key");
    assert_eq!(
        key.verifying_key(),
        VerifyingKey::load(&pub_path).expect("load OpenSSL's public key"),
        "the same public key both ways"
    );

    // A manifest signed with it: OpenSSL checks the signature over the body bytes.
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("hello"), b"hi\n").unwrap();
    let signed = Manifest::create(&tree, &key).unwrap();
    let text = String::from_utf8(signed.to_bytes()).unwrap();
    let (body, sig_line) = text
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .expect("a body and a signature line");
    let sig_b64 = sig_line.rsplit(' ').next().unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .expect("base64 signature");
    let body_path = dir.path().join("body");
    let sig_path = dir.path().join("sig");
    std::fs::write(&body_path, body).unwrap(); // the signature covers the body without its newline
    std::fs::write(&sig_path, &sig).unwrap();
    let verify = |body: &Path| {
        Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey", path(&pub_path)])
            .args(["-rawin", "-in", path(body), "-sigfile", path(&sig_path)])
            .output()
            .unwrap()
    };
    let ok = verify(&body_path);
    assert!(
        ok.status.success(),
        "OpenSSL verifies watertight's signature: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    // And the check can fail: one byte of the body changed.
    let tampered = dir.path().join("tampered");
    std::fs::write(&tampered, body.replace("hello", "hellp")).unwrap();
    assert!(!verify(&tampered).status.success(), "a changed body fails");
}

/// Keys written before version-1 PKCS#8 (version 2, with the public key) still load.
#[test]
fn a_version_2_key_still_loads() {
    let v2 = "-----BEGIN PRIVATE KEY-----\n\
MFECAQEwBQYDK2VwBCIEIHbnkS072Hnot7O2WqVzA3VwPZ5rC1oYvAa601F+b3Vm\n\
gSEAlQyNTJ0ExTtLP7riZXvb4pNAc2XpacZi2BIKCLDyVpw=\n\
-----END PRIVATE KEY-----\n";
    let key = SigningKey::from_pem(v2, Path::new("v2.key")).expect("a v2 key loads");
    let rewritten = SigningKey::from_pem(&key.to_pem(), Path::new("v1.key")).unwrap();
    assert_eq!(key.verifying_key(), rewritten.verifying_key());
    assert!(
        key.to_pem().len() < v2.len(),
        "written as version 1 (no public key)"
    );
}
