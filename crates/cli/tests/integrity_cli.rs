//! `watertight key` and `watertight manifest` end to end: the user story of issue 6 up to `run`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn wt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(args)
        .output()
        .expect("run watertight")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn rootfs(root: &Path) {
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/server"), b"\x7fELF pretend").unwrap();
    std::fs::set_permissions(
        root.join("app/server"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("app/config.json"), b"{}").unwrap();
}

#[test]
fn generate_create_verify_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("release.key");
    let root = dir.path().join("rootfs");
    let manifest = dir.path().join("rootfs.manifest");
    rootfs(&root);

    let out = wt(&["key", "generate", "--out", p(&key)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("fingerprint: sha256:"));
    let pubkey = dir.path().join("release.key.pub");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let fp = wt(&["key", "fingerprint", p(&pubkey)]);
    let fp_priv = wt(&["key", "fingerprint", p(&key)]);
    assert_eq!(
        fp.stdout, fp_priv.stdout,
        "same fingerprint from either half"
    );

    let out = wt(&[
        "manifest",
        "create",
        p(&root),
        "--key",
        p(&key),
        "--out",
        p(&manifest),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("2 files"), "{}", text(&out));

    let out = wt(&[
        "manifest",
        "verify",
        p(&root),
        "--manifest",
        p(&manifest),
        "--pubkey",
        p(&pubkey),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("verified 2 files"), "{}", text(&out));

    let out = wt(&[
        "manifest",
        "verify",
        p(&root),
        "--manifest",
        p(&manifest),
        "--pubkey",
        p(&pubkey),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], true);

    // Tampering is a finding (exit 1) naming the file.
    std::fs::write(root.join("app/server"), b"\x7fELF implant").unwrap();
    let out = wt(&[
        "manifest",
        "verify",
        p(&root),
        "--manifest",
        p(&manifest),
        "--pubkey",
        p(&pubkey),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("app/server: content altered"),
        "{}",
        text(&out)
    );
    let out = wt(&[
        "manifest",
        "verify",
        p(&root),
        "--manifest",
        p(&manifest),
        "--pubkey",
        p(&pubkey),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["verified"].as_bool(), v["path"].as_str()),
        (Some(false), Some("app/server"))
    );
}

#[test]
fn bad_input_gives_one_clear_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    rootfs(&root);
    let key = dir.path().join("a.key");
    let other = dir.path().join("b.key");
    let manifest = dir.path().join("m");
    assert!(wt(&["key", "generate", "--out", p(&key)]).status.success());
    assert!(wt(&["key", "generate", "--out", p(&other)])
        .status
        .success());
    assert!(wt(&[
        "manifest",
        "create",
        p(&root),
        "--key",
        p(&key),
        "--out",
        p(&manifest)
    ])
    .status
    .success());

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "key".into(),
                "generate".into(),
                "--out".into(),
                p(&key).into(),
            ],
            "already exists",
        ),
        (
            vec![
                "manifest".into(),
                "verify".into(),
                p(&root).into(),
                "--manifest".into(),
                p(&manifest).into(),
                "--pubkey".into(),
                format!("{}.pub", p(&other)),
            ],
            "pass the matching --pubkey",
        ),
        (
            vec![
                "manifest".into(),
                "verify".into(),
                p(&root).into(),
                "--manifest".into(),
                p(&manifest).into(),
                "--pubkey".into(),
                p(&key).into(),
            ],
            "pass the .pub file",
        ),
        (
            vec![
                "manifest".into(),
                "verify".into(),
                p(&root).into(),
                "--manifest".into(),
                p(&dir.path().join("absent")).into(),
                "--pubkey".into(),
                format!("{}.pub", p(&key)),
            ],
            "absent",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = wt(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }

    // A truncated manifest is malformed (exit 2), an altered body a finding or malformed.
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() - 10]).unwrap();
    let out = wt(&[
        "manifest",
        "verify",
        p(&root),
        "--manifest",
        p(&manifest),
        "--pubkey",
        &format!("{}.pub", p(&key)),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest is malformed"));

    // Setuid file in the image: refused, naming it.
    std::fs::set_permissions(
        root.join("app/server"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let out = wt(&[
        "manifest",
        "create",
        p(&root),
        "--key",
        p(&key),
        "--out",
        p(&dir.path().join("m2")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("app/server: setuid/setgid file"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("m2").exists(), "no half-written manifest");
}

#[test]
fn probe_lists_every_layer() {
    let out = wt(&["manifest", "probe", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        ["landlock", "bpf_exec_gate", "bpf_lsm", "memfd_noexec"]
    );
}
