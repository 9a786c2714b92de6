//! Violations are recorded and answered: deny, kill and forensic modes with real programs.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A shell program that writes a marker, starts a child that keeps counting into /out/counter
/// (atomically, via rename), then calls mount() through the attack program.
const SCRIPT: &str = "echo marker-42 > /tmp/marker; \
    (i=0; while true; do i=$((i+1)); echo $i > /out/c.tmp; mv /out/c.tmp /out/counter; done) & \
    sleep 0.5; /attack/attack mount; echo after-violation";

struct Run {
    out: std::process::Output,
    verdict: serde_json::Value,
    events: Vec<serde_json::Value>,
    counter_dir: tempfile::TempDir,
    evidence_dir: PathBuf,
    key: PathBuf,
    _scratch: tempfile::TempDir,
}

fn run_mode(mode: &str, evidence_dir: Option<&Path>) -> Run {
    let scratch = tempfile::tempdir().unwrap();
    let counter_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        counter_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let evidence = evidence_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| scratch.path().join("evidence"));
    let key = scratch.path().join("keys/evidence.key");
    let events = scratch.path().join("events.jsonl");
    let result = scratch.path().join("result.json");
    let out = watertight()
        .arg("run")
        .arg(format!("--on-violation={mode}"))
        .arg(format!("--evidence-dir={}", evidence.display()))
        .arg(format!("--evidence-key={}", key.display()))
        .arg(format!("--events={}", events.display()))
        .arg(format!("--result={}", result.display()))
        .arg(format!("--bind={}:/out", counter_dir.path().display()))
        .arg(format!("--bind-ro={}:/attack", attack_dir().display()))
        .args(["--wall-time-limit=20", "--", "/bin/sh", "-c", SCRIPT])
        .output()
        .unwrap();
    let verdict = serde_json::from_str(
        &std::fs::read_to_string(&result)
            .unwrap_or_else(|_| panic!("no verdict: {}", stderr(&out))),
    )
    .unwrap();
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        out,
        verdict,
        events,
        counter_dir,
        evidence_dir: evidence,
        key,
        _scratch: scratch,
    }
}

fn mount_event(events: &[serde_json::Value], action: &str) -> serde_json::Value {
    let e = events
        .iter()
        .find(|e| e["kind"] == "syscall_denied")
        .unwrap_or_else(|| panic!("no syscall event in {events:?}"))
        .clone();
    assert_eq!(e["syscall"], "mount", "{e}");
    assert_eq!(e["action"], action, "{e}");
    assert_eq!(
        e["arg_strings"]["1"], "/tmp",
        "the mount target is named: {e}"
    );
    assert!(
        e["host_pid"].as_u64().is_some() && e["pid"].as_u64().is_some(),
        "{e}"
    );
    assert!(e["sandbox_id"].as_str().is_some_and(|s| !s.is_empty()));
    e
}

fn no_sandbox_process_left(sandbox_id: &str) {
    let cgroups = watertight_cgroups();
    assert!(
        !cgroups
            .iter()
            .any(|c| c.display().to_string().contains(sandbox_id)),
        "cgroup of {sandbox_id} left: {cgroups:?}"
    );
}

#[test]
fn deny_mode_fails_the_call_and_the_program_goes_on() {
    if !require_root("deny_mode") {
        return;
    }
    let r = run_mode("deny", None);
    assert!(
        stdout(&r.out).contains("DENIED mount"),
        "{}",
        stdout(&r.out)
    );
    assert!(
        stdout(&r.out).contains("after-violation"),
        "{}",
        stdout(&r.out)
    );
    mount_event(&r.events, "deny");
    assert_eq!(
        r.verdict["events"]["by_kind"]["syscall_denied"], 1,
        "{}",
        r.verdict
    );
    assert!(!r.evidence_dir.exists(), "no evidence in deny mode");
}

#[test]
fn kill_mode_kills_the_sandbox_with_sv() {
    if !require_root("kill_mode") {
        return;
    }
    let r = run_mode("kill", None);
    assert_eq!(r.verdict["status"], "SV", "{}", r.verdict);
    assert_eq!(r.out.status.code(), Some(159));
    assert!(
        !stdout(&r.out).contains("after-violation"),
        "the program went on: {}",
        stdout(&r.out)
    );
    mount_event(&r.events, "kill");
    no_sandbox_process_left(r.verdict["sandbox_id"].as_str().unwrap());
}

#[test]
fn forensic_mode_freezes_captures_signs_and_kills() {
    if !require_root("forensic_mode") {
        return;
    }
    let r = run_mode("forensic", None);
    assert_eq!(r.verdict["status"], "SV", "{}", r.verdict);
    assert!(!stdout(&r.out).contains("after-violation"));
    mount_event(&r.events, "forensic");
    let bundle = PathBuf::from(
        r.verdict["evidence"]
            .as_str()
            .unwrap_or_else(|| panic!("no bundle: {}", r.verdict)),
    );
    no_sandbox_process_left(r.verdict["sandbox_id"].as_str().unwrap());

    // The marker file and the event naming mount are in the bundle.
    let tmp = Command::new("tar")
        .arg("-xOf")
        .arg(bundle.join("layers/tmp.tar"))
        .arg("marker")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tmp.stdout).trim(), "marker-42");
    let bundled_events = std::fs::read_to_string(bundle.join("events.jsonl")).unwrap();
    assert!(
        bundled_events.contains("\"syscall\":\"mount\""),
        "{bundled_events}"
    );
    // Both tasks: the counting child and the one that called mount.
    let statuses = Command::new("tar")
        .arg("-xOf")
        .arg(bundle.join("tasks.tar"))
        .args(["--wildcards", "tasks/*/status"])
        .output()
        .unwrap();
    let comms: Vec<String> = String::from_utf8_lossy(&statuses.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Name:"))
        .map(|n| n.trim().to_string())
        .collect();
    assert!(comms.iter().any(|c| c == "attack"), "{comms:?}");
    assert!(
        comms.iter().filter(|c| *c == "sh").count() >= 2,
        "the counting child is missing: {comms:?}"
    );
    // Frozen means frozen: the counter the bundle saw is the counter after the run.
    let bundled = Command::new("tar")
        .arg("-xOf")
        .arg(bundle.join("layers/bind0.tar"))
        .arg("counter")
        .output()
        .unwrap();
    let after = std::fs::read_to_string(r.counter_dir.path().join("counter")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bundled.stdout).trim(),
        after.trim(),
        "the counter moved after the freeze"
    );
    assert!(after.trim().parse::<u64>().unwrap() > 0);

    // The bundle verifies, and fails after one byte changes, naming the file.
    let pubkey = format!("--pubkey={}.pub", r.key.display());
    let ok = watertight()
        .args(["evidence", "verify", &pubkey])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{} {}", stdout(&ok), stderr(&ok));
    let victim = bundle.join("events.jsonl");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&victim, bytes).unwrap();
    let bad = watertight()
        .args(["evidence", "verify", &pubkey])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{} {}",
        stdout(&bad),
        stderr(&bad)
    );
    assert!(
        format!("{}{}", stdout(&bad), stderr(&bad)).contains("events.jsonl"),
        "the altered file is not named"
    );
}

#[test]
fn unwritable_evidence_dir_still_kills_and_says_where() {
    if !require_root("unwritable_evidence_dir") {
        return;
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    let bad_dir = f.path().join("evidence"); // beneath a regular file: cannot be created
    let r = run_mode("forensic", Some(&bad_dir));
    assert_eq!(r.verdict["status"], "SV", "{}", r.verdict);
    let msg = r.verdict["message"].as_str().unwrap();
    assert!(msg.contains(&bad_dir.display().to_string()), "{msg}");
    assert!(
        r.events.iter().any(|e| e["kind"] == "evidence_failed"),
        "{:?}",
        r.events
    );
    no_sandbox_process_left(r.verdict["sandbox_id"].as_str().unwrap());
}
