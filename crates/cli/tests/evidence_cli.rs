//! `watertight evidence show|verify` against a bundle captured from real processes: exit codes
//! (0 intact, 1 altered naming the file, 2 bad input) and the readable summary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use watertight_forensics::{capture, CaptureRequest, SigningKey};

fn watertight() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
}

/// Processes that are killed and reaped on drop, also when a test fails.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Fixture {
    _children: Children,
    _dirs: Vec<tempfile::TempDir>,
    bundle: PathBuf,
    pubkey: PathBuf,
    other_pubkey: PathBuf,
    pids: Vec<i32>,
}

fn fixture() -> Fixture {
    let mut children = Children(Vec::new());
    for _ in 0..2 {
        children.0.push(
            Command::new("sleep")
                .arg("1000")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sleep"),
        );
    }
    let pids: Vec<i32> = children.0.iter().map(|c| c.id() as i32).collect();
    let layer = tempfile::tempdir().unwrap();
    std::fs::write(
        layer.path().join("dropped-payload.sh"),
        b"#!/bin/sh\necho pwned\n",
    )
    .unwrap();
    let evidence = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = SigningKey::from_seed([5; 32]);
    let key_path = keys.path().join("evidence.key");
    let pubkey = key.save(&key_path).unwrap();
    let other_pubkey = keys.path().join("other.pub");
    SigningKey::from_seed([6; 32])
        .verifying_key()
        .save(&other_pubkey)
        .unwrap();

    let events = format!(
        "{{\"time\":\"2026-11-22T10:00:02.250Z\",\"kind\":\"violation\",\"pid\":{},\"syscall\":\"bpf\",\"args\":[5,\"0x7ffd0000\",128]}}\n",
        pids[1]
    );
    let req = CaptureRequest {
        sandbox_id: "cli-test",
        pids: &pids,
        writable_dirs: vec![("tmp".into(), layer.path().to_path_buf())],
        events_jsonl: events.as_bytes(),
        verdict_json: br#"{"status":"SV","message":"security violation: bpf"}"#,
        evidence_dir: evidence.path(),
        key: &key,
        evidence_limit: 1 << 30,
        unavailable_layers: Vec::new(),
    };
    let bundle = capture(&req).expect("capture");
    Fixture {
        _children: children,
        _dirs: vec![layer, evidence, keys],
        bundle,
        pubkey,
        other_pubkey,
        pids,
    }
}

fn verify(bundle: &Path, pubkey: &Path) -> Output {
    watertight()
        .args(["evidence", "verify"])
        .arg(bundle)
        .arg("--pubkey")
        .arg(pubkey)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn verify_exit_codes_name_the_altered_file() {
    let f = fixture();
    let out = verify(&f.bundle, &f.pubkey);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("OK "),
        "{}",
        text(&out.stdout)
    );

    // One flipped byte in the verdict.
    let verdict = f.bundle.join("verdict.json");
    let original = std::fs::read(&verdict).unwrap();
    let mut flipped = original.clone();
    flipped[2] ^= 0x20;
    std::fs::write(&verdict, &flipped).unwrap();
    let out = verify(&f.bundle, &f.pubkey);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&verdict.display().to_string()), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    std::fs::write(&verdict, &original).unwrap();

    // A forged manifest fails the signature.
    let manifest = f.bundle.join("manifest");
    let body = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        body.replace("sandbox cli-test", "sandbox cli-tesT"),
    )
    .unwrap();
    let out = verify(&f.bundle, &f.pubkey);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("signature"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&manifest, body).unwrap();

    // Another host's key.
    let out = verify(&f.bundle, &f.other_pubkey);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--pubkey"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(verify(&f.bundle, &f.pubkey).status.code(), Some(0));
}

#[test]
fn verify_bad_input_exits_2() {
    let f = fixture();
    let missing = f.bundle.join("no-such-bundle");
    let out = verify(&missing, &f.pubkey);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no-such-bundle"),
        "{}",
        text(&out.stderr)
    );

    let out = verify(&f.bundle, &f.bundle.join("no-such-key.pub"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no-such-key.pub"),
        "{}",
        text(&out.stderr)
    );

    // A private key where the public one belongs.
    let private = f.pubkey.with_extension("");
    let out = verify(&f.bundle, &private);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(".pub"), "{}", text(&out.stderr));

    let out = watertight().args(["evidence", "verify"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing argument is a usage error"
    );
}

#[test]
fn show_tells_what_happened() {
    let f = fixture();
    let out = watertight()
        .args(["evidence", "show"])
        .arg(&f.bundle)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for wanted in [
        "sandbox:  cli-test",
        "verdict: SV security violation: bpf",
        "2026-11-22T10:00:02.250Z",
        "violation bpf(5, 0x7ffd0000, 128)",
        "dropped-payload.sh",
        r#""sleep" "1000""#,
    ] {
        assert!(shown.contains(wanted), "show lacks {wanted:?}:\n{shown}");
    }
    // The violating task is marked in the task list.
    let marked = format!("* {:>8}", f.pids[1]);
    assert!(shown.contains(&marked), "{shown}");

    let out = watertight()
        .args(["evidence", "show"])
        .arg(f.bundle.parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an evidence bundle"),
        "{}",
        text(&out.stderr)
    );
}
