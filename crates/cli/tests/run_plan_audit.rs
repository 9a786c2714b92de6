//! The plan is the model, checked from the outside: a running sandbox publishes its plan, and
//! `watertight audit host` measures the sandbox's processes from /proc and compares (the
//! `plan-drift` rule): as planned, it names the plan's digest (the one in the verdict); a plan
//! that says more than the sandbox is (here: an edited entry) is drift.

mod common;
use common::*;

use std::path::PathBuf;
use std::time::{Duration, Instant};

const RUNNING: &str = "/run/watertight/sandboxes";

/// The published entry of the sandbox whose supervisor is `pid`, once it appears.
fn entry_of(pid: u32) -> (PathBuf, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for e in std::fs::read_dir(RUNNING).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read(e.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
                continue;
            };
            if v["supervisor_pid"] == pid {
                return (e.path(), v);
            }
        }
        assert!(Instant::now() < deadline, "no published plan for {pid}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `plan-drift` findings about sandbox `id` in a live audit of the host.
fn plan_findings(id: &str) -> Vec<serde_json::Value> {
    let o = watertight()
        .args(["audit", "host", "--format=json", "--fail-on=none"])
        .arg(format!("--reference-pid={}", std::process::id()))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("audit host: {e}: {}", String::from_utf8_lossy(&o.stderr)));
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "plan-drift" && f["workload"].as_str().unwrap().contains(id))
        .cloned()
        .collect()
}

#[test]
fn audit_host_measures_what_the_plan_says() {
    if !require_root("audit_host_measures_what_the_plan_says") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let result = scratch.path().join("result.json");
    let mut sandbox = watertight()
        .current_dir(scratch.path())
        .arg("run")
        .arg(format!("--result={}", result.display()))
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    let (path, entry) = entry_of(sandbox.id());
    let id = entry["sandbox_id"].as_str().unwrap().to_string();
    let digest = entry["plan_digest"].as_str().unwrap().to_string();

    // Measured from /proc: namespaces, capabilities, seccomp, no_new_privs, mounts and their
    // propagation, devices: each process of the sandbox as planned.
    let found = plan_findings(&id);
    assert!(!found.is_empty(), "no plan-drift finding for {id}");
    for f in &found {
        assert_eq!(f["severity"], "info", "{f}");
        assert!(f["message"].as_str().unwrap().contains(&digest), "{f}");
    }

    // An entry that claims more than the sandbox is (its own time namespace) is drift.
    let mut claimed = entry.clone();
    claimed["workload"]["subjects"][0]["namespaces"]["time"] = "isolated".into();
    std::fs::write(&path, serde_json::to_vec(&claimed).unwrap()).unwrap();
    let found = plan_findings(&id);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sandbox.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = sandbox.wait();
    assert!(
        found.iter().any(|f| f["severity"] == "high"
            && f["message"].as_str().unwrap().contains("time namespace")),
        "{found:?}"
    );
    // Gone with the sandbox; the verdict names the same plan.
    assert!(!path.exists(), "the published plan outlived its sandbox");
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(verdict["plan_digest"], digest.as_str());
}
