//! Exec-time integrity in `watertight run`: a rootfs verified against its signed manifest, and
//! every way around it (a copy in /tmp, the dynamic loader, memfd, an unverified binary bound in,
//! a tampered file) refused or killed.

mod common;
use common::*;

use std::path::{Path, PathBuf};

struct Tree {
    dir: tempfile::TempDir,
    manifest: PathBuf,
    pubkey: PathBuf,
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

/// A rootfs with the static attack program, a dynamic copy of it and the loader and libc it needs,
/// signed with a fresh key.
fn signed_tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    copy(&attack_dir().join("attack"), &root.join("bin/attack"));
    watertight_testkit::compile_c(&attack_source("attack"), &root.join("bin/attack-dyn"), &[]);
    copy(
        Path::new("/lib64/ld-linux-x86-64.so.2"),
        &root.join("lib64/ld-linux-x86-64.so.2"),
    );
    copy(
        Path::new("/lib/x86_64-linux-gnu/libc.so.6"),
        &root.join("lib/x86_64-linux-gnu/libc.so.6"),
    );
    for d in [
        "",
        "rootfs",
        "rootfs/bin",
        "rootfs/lib64",
        "rootfs/lib",
        "rootfs/lib/x86_64-linux-gnu",
    ] {
        std::fs::set_permissions(
            dir.path().join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let (manifest, pubkey) = sign_tree(dir.path(), &root);
    Tree {
        dir,
        manifest,
        pubkey,
    }
}

fn run_verified(
    t: &Tree,
    extra: &[&str],
    cmd: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let root = t.dir.path().join("rootfs");
    let mut flags = vec![
        format!("--rootfs={}", root.display()),
        format!("--manifest={}", t.manifest.display()),
        format!("--pubkey={}", t.pubkey.display()),
    ];
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    run_with_result(&flags, cmd)
}

#[test]
fn verified_rootfs_runs_and_bypasses_are_refused() {
    if !require_root("verified_rootfs_runs") {
        return;
    }
    if !integrity_available() {
        watertight_testkit::host_lacks(
            &watertight_testkit::this_test(),
            "this kernel lacks Landlock, the BPF exec gate or vm.memfd_noexec",
        );
        return;
    }
    let t = signed_tree();
    // memfd_noexec is set in the sandbox's pid namespace by a helper of the supervisor's: the
    // host's own value must never change (it can only ever be raised, never lowered again).
    let host_memfd_noexec = || std::fs::read_to_string("/proc/sys/vm/memfd_noexec").unwrap();
    let host_before = host_memfd_noexec();
    // A verified binary runs normally, and says which layers are on.
    let (o, v) = run_verified(&t, &[], &["/bin/attack", "fd", "9"]);
    assert_eq!(v["status"], "OK", "{v} {}", stderr(&o));
    assert!(stderr(&o).contains("bpf-exec-gate on"), "{}", stderr(&o));
    // A copy of it in the writable /tmp cannot run (noexec), nor through the loader, nor from memfd.
    for (attack, arg) in [("copyexec", "/tmp/copy"), ("memfd", "")] {
        let (o, v) = run_verified(&t, &[], &["/bin/attack", attack, arg]);
        assert!(
            stdout(&o).starts_with("DENIED"),
            "{attack}: {} {v}",
            stdout(&o)
        );
    }
    assert_eq!(
        host_memfd_noexec(),
        host_before,
        "the host's vm.memfd_noexec changed"
    );
    let (o, v) = run_verified(&t, &[], &["/bin/sh", "-c", "true"]);
    assert_ne!(
        v["status"],
        "OK",
        "a host shell is not in the verified tree: {v} {}",
        stdout(&o)
    );
    let (o, _) = run_verified(&t, &[], &["/bin/attack-dyn", "copyexec", "/tmp/copy2"]);
    assert!(stdout(&o).starts_with("DENIED"), "{}", stdout(&o));
}

#[test]
fn unverified_binary_bound_into_a_verified_dir_is_killed_by_the_gate() {
    if !require_root("unverified_binary_is_killed") {
        return;
    }
    if !integrity_available() {
        watertight_testkit::host_lacks(
            &watertight_testkit::this_test(),
            "this kernel lacks Landlock, the BPF exec gate or vm.memfd_noexec",
        );
        return;
    }
    let t = signed_tree();
    let events = t.dir.path().join("events.jsonl");
    // An operator binds an unverified tool over a verified one: a read-only (so exec-able) mount
    // beneath an exec root, so only the gate stands between it and the CPU.
    let bind = format!(
        "--bind-ro={}:/bin/attack-dyn",
        attack_dir().join("attack").display()
    );
    let ev = format!("--events={}", events.display());
    let (o, v) = run_verified(
        &t,
        &[&bind, &ev],
        &["/bin/attack", "exec", "/bin/attack-dyn"],
    );
    assert_eq!(v["status"], "SV", "{v} {}", stdout(&o));
    assert!(!stdout(&o).contains("ALLOWED"), "{}", stdout(&o));
    let log = std::fs::read_to_string(&events).unwrap();
    assert!(log.contains("\"kind\":\"exec_denied\""), "{log}");
}

#[test]
fn tampered_rootfs_is_refused_naming_the_file() {
    if !require_root("tampered_rootfs_is_refused") {
        return;
    }
    let t = signed_tree();
    let victim = t.dir.path().join("rootfs/bin/attack-dyn");
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let (o, _) = {
        let root = t.dir.path().join("rootfs");
        let o = watertight()
            .args([
                "run",
                &format!("--rootfs={}", root.display()),
                &format!("--manifest={}", t.manifest.display()),
            ])
            .args([
                &format!("--pubkey={}", t.pubkey.display()),
                "--allow-weaker-integrity",
                "--",
                "/bin/attack",
                "fd",
                "0",
            ])
            .output()
            .unwrap();
        (o, ())
    };
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("bin/attack-dyn"), "{}", stderr(&o));
}

#[test]
fn integrity_needs_a_read_only_rootfs() {
    if !require_root("integrity_needs_a_rootfs") {
        return;
    }
    let t = signed_tree();
    let o = watertight()
        .args([
            "run",
            &format!("--manifest={}", t.manifest.display()),
            &format!("--pubkey={}", t.pubkey.display()),
            "--",
            "/bin/true",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--rootfs"), "{}", stderr(&o));
}
