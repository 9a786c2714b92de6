//! Routes to running unverified code in an integrity-mode sandbox (`--rootfs --manifest
//! --pubkey`) that an attack review found: writable aliases of executable memory, writes through
//! /proc/<pid>/mem, and a verified file rewritten in place on the host during the run. Each test
//! runs the attack (tests/attacks/integrity_bypass.c, built statically and signed into the
//! rootfs) in a real sandbox on the real kernel.

mod common;
use common::*;

use std::path::{Path, PathBuf};

struct Tree {
    dir: tempfile::TempDir,
    manifest: PathBuf,
    pubkey: PathBuf,
}

impl Tree {
    fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

/// Compiles the attack program statically to `out`, with `defines` (-D...).
fn build_attack(out: &Path, defines: &[&str]) {
    let flags: Vec<&str> = ["-static"].iter().chain(defines).copied().collect();
    watertight_testkit::compile_c(&attack_source("integrity_bypass"), out, &flags);
}

/// A rootfs of two verified copies of the attack program (/bin/ib, /bin/victim), signed with a
/// fresh key; `tampered` (outside the rootfs) is the same program printing another tag.
fn signed_tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    build_attack(&root.join("bin/ib"), &[]);
    std::fs::copy(root.join("bin/ib"), root.join("bin/victim")).unwrap();
    build_attack(&dir.path().join("tampered"), &["-DTAG=\"tampered\""]);
    let exchange = dir.path().join("exchange");
    std::fs::create_dir_all(&exchange).unwrap();
    for (d, mode) in [
        ("", 0o755),
        ("rootfs", 0o755),
        ("rootfs/bin", 0o755),
        ("exchange", 0o777),
    ] {
        std::fs::set_permissions(
            dir.path().join(d),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
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

fn integrity_flags(t: &Tree, events: &Path) -> Vec<String> {
    vec![
        format!("--rootfs={}", t.root().display()),
        format!("--manifest={}", t.manifest.display()),
        format!("--pubkey={}", t.pubkey.display()),
        format!("--events={}", events.display()),
    ]
}

fn ready(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    if !integrity_available() {
        watertight_testkit::host_lacks(
            test,
            "this kernel lacks Landlock, the BPF exec gate or vm.memfd_noexec",
        );
        return false;
    }
    true
}

/// Runs `/bin/ib ATTACK` in an integrity-mode sandbox: (output, verdict, event log).
fn run_attack(t: &Tree, attack: &str) -> (std::process::Output, serde_json::Value, String) {
    let events = t.dir.path().join(format!("events-{attack}.jsonl"));
    let flags = integrity_flags(t, &events);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (o, v) = run_with_result(&flags, &["/bin/ib", attack]);
    let log = std::fs::read_to_string(&events).unwrap_or_default();
    (o, v, log)
}

/// Code written at run time never runs, and the attempt is a reported violation: the verdict is
/// SV and the event log names the refused call (seccomp) or the killed task (exec gate).
#[test]
fn writable_aliases_of_executable_memory_are_refused_as_violations() {
    if !ready("writable_aliases_of_executable_memory") {
        return;
    }
    let t = signed_tree();
    for attack in [
        "alias-anon",
        "alias-devzero",
        "alias-memfd",
        "alias-shm",
        "mremap-zero",
    ] {
        let (o, v, log) = run_attack(&t, attack);
        assert!(
            !stdout(&o).contains("ALLOWED"),
            "{attack}: {} {v}",
            stdout(&o)
        );
        assert_eq!(v["status"], "SV", "{attack}: {v} {} {log}", stdout(&o));
        assert!(
            log.contains("\"kind\":\"syscall_denied\"") || log.contains("\"kind\":\"exec_denied\""),
            "{attack}: {log}"
        );
    }
}

/// The other ways to write into code or make readable memory executable: refused by the
/// integrity-only seccomp rules whatever the profile allows, and a violation (SV) in an
/// integrity run even under `on_violation = deny`.
#[test]
fn ptrace_userfaultfd_and_read_implies_exec_are_violations() {
    if !ready("ptrace_userfaultfd_and_read_implies_exec_are_violations") {
        return;
    }
    let t = signed_tree();
    for attack in ["read-implies-exec", "ptrace", "userfaultfd"] {
        let (o, v, log) = run_attack(&t, attack);
        assert!(stdout(&o).starts_with("DENIED"), "{attack}: {}", stdout(&o));
        assert_eq!(v["status"], "SV", "{attack}: {v} {log}");
        assert!(
            log.contains("\"kind\":\"syscall_denied\""),
            "{attack}: {log}"
        );
    }
}

/// /proc/<pid>/mem writes use FOLL_FORCE, which ignores page protections and MDWE: they would
/// patch the verified binary's code. Landlock refuses opening them for writing.
#[test]
fn proc_pid_mem_cannot_patch_verified_code() {
    if !ready("proc_pid_mem_cannot_patch_verified_code") {
        return;
    }
    let t = signed_tree();
    for attack in ["procmem-self", "procmem-parent"] {
        let (o, v, _) = run_attack(&t, attack);
        assert!(
            stdout(&o).starts_with("DENIED write /proc/"),
            "{attack}: {} {v} {}",
            stdout(&o),
            stderr(&o)
        );
    }
    // The sandbox still writes where it may: /tmp, /dev/shm, /dev/null.
    let (o, v, _) = run_attack(&t, "writes");
    assert_eq!(v["status"], "OK", "{v} {} {}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("WROTE"), "{}", stdout(&o));
}

/// A verified file rewritten in place on the host (same inode) while the sandbox runs is not
/// executable any more: the gate compares the inode's change time with the one verified.
#[test]
fn verified_file_rewritten_on_the_host_during_the_run_is_killed() {
    if !ready("verified_file_rewritten_on_the_host") {
        return;
    }
    let t = signed_tree();
    let exchange = t.dir.path().join("exchange");
    let events = t.dir.path().join("events-tamper.jsonl");
    let mut flags = integrity_flags(&t, &events);
    flags.push(format!("--bind={}:/x", exchange.display()));
    let result = t.dir.path().join("result-tamper.json");
    flags.push(format!("--result={}", result.display()));
    let child = watertight()
        .arg("run")
        .args(&flags)
        .args(["--", "/bin/ib", "wait-exec", "/x", "/bin/victim"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait for the sandbox to be up (the program writes /x/ready), not a timed assertion.
    let ready_file = exchange.join("ready");
    for _ in 0..6000 {
        if ready_file.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Rewritten in place: open with O_TRUNC and write, so the inode (dev, ino, generation) stays.
    let victim = t.root().join("bin/victim");
    let ino_before = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&victim).unwrap());
    let tampered = std::fs::read(t.dir.path().join("tampered")).unwrap();
    std::fs::write(&victim, &tampered).unwrap();
    let ino_after = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&victim).unwrap());
    assert_eq!(ino_before, ino_after, "the rewrite must keep the inode");
    std::fs::write(exchange.join("go"), b"").unwrap();
    let o = child.wait_with_output().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let log = std::fs::read_to_string(&events).unwrap_or_default();
    assert!(
        !stdout(&o).contains("HELLO tampered"),
        "the rewritten binary ran: {} {v}",
        stdout(&o)
    );
    assert_eq!(v["status"], "SV", "{v} {} {}", stdout(&o), stderr(&o));
    assert!(log.contains("\"kind\":\"exec_denied\""), "{log}");
}
