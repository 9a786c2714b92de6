//! The plan is the model, checked from the outside: a running sandbox publishes its plan, and
//! `watertight audit host` measures the sandbox's processes from /proc and compares (the
//! `plan-drift` rule): as planned, it names the plan's digest (the one in the verdict); a plan
//! that says more than the sandbox is (here: an edited entry) is drift. The live audit proves
//! the sandbox it is meant to prove: nothing at medium or above about a `watertight run`
//! sandbox (its /dev/null masks and default device nodes are no exposure), and the true
//! findings about a bubblewrap sandbox beside it (no seccomp, an unmasked /proc).

mod common;
use common::*;

use std::path::{Path, PathBuf};
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

/// Every finding of a live audit of the host (this process as the host reference) whose
/// workload id contains `id`.
fn live_findings(id: &str, pids: &[u32]) -> Vec<serde_json::Value> {
    let mut cmd = watertight();
    cmd.args(["audit", "host", "--format=json", "--fail-on=none"])
        .arg(format!("--reference-pid={}", std::process::id()));
    for pid in pids {
        cmd.arg(format!("--pid={pid}"));
    }
    let o = cmd.output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("audit host: {e}: {}", String::from_utf8_lossy(&o.stderr)));
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["workload"].as_str().unwrap().contains(id))
        .cloned()
        .collect()
}

/// The `plan-drift` findings about sandbox `id` in a live audit of the host.
fn plan_findings(id: &str) -> Vec<serde_json::Value> {
    live_findings(id, &[])
        .into_iter()
        .filter(|f| f["rule"] == "plan-drift")
        .collect()
}

fn at_least_medium(f: &serde_json::Value) -> bool {
    matches!(f["severity"].as_str(), Some("medium" | "high" | "critical"))
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
        // Past the built-in 10 s wall limit: the audit runs while it sleeps.
        .args(["--wall-time-limit=60", "--", "sleep", "30"])
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
    // Nothing at medium or above: the /dev/null binds masking /etc/shadow, /proc/kcore, ...
    // and the default device nodes are no host exposure; /proc is masked as the OCI
    // runtimes' defaults say.
    let all = live_findings(&id, &[]);
    let bad: Vec<_> = all.iter().filter(|f| at_least_medium(f)).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        !all.iter().any(|f| f["rule"] == "unmasked-proc"),
        "{all:#?}"
    );

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

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The first `sleep` among `pid`'s descendants, once it runs.
fn sleep_below(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find_map(|c| {
            if comm(c) == "sleep" {
                Some(c)
            } else {
                sleep_below(c)
            }
        })
}

#[test]
fn audit_host_reports_what_a_bubblewrap_sandbox_leaves_open() {
    let test = "audit_host_reports_what_a_bubblewrap_sandbox_leaves_open";
    if !require_root(test) || !require_tools(test, &["bwrap"], "bubblewrap") {
        return;
    }
    // Everything unshared, /usr read-only, a fresh /proc and bubblewrap's minimal /dev: no
    // seccomp filter, /proc as the kernel shows it.
    let bwrap = std::process::Command::new("bwrap")
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--ro-bind",
            "/usr",
            "/usr",
        ])
        .args([
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
        ])
        .args([
            "--symlink",
            "usr/bin",
            "/bin",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ])
        .args(["sleep", "60"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Reaped(std::process::Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            // bwrap by its pid; --die-with-parent takes the sandbox along.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut bwrap = Reaped(bwrap);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleep = loop {
        if let Some(pid) = sleep_below(bwrap.0.id()) {
            break pid;
        }
        if let Ok(Some(status)) = bwrap.0.try_wait() {
            panic!("bwrap exited: {status}");
        }
        assert!(Instant::now() < deadline, "bwrap did not start sleep");
        std::thread::sleep(Duration::from_millis(10));
    };
    let findings = live_findings("", &[sleep]);
    let serious: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter(|f| at_least_medium(f))
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    // As root, bubblewrap maps uid 0 to the host's uid 0 in its user namespace.
    assert_eq!(
        serious,
        [
            "seccomp-disabled",
            "unmasked-proc",
            "user-namespace-host-root"
        ]
        .into(),
        "{findings:#?}"
    );
    let unmasked = findings
        .iter()
        .find(|f| f["rule"] == "unmasked-proc")
        .unwrap();
    let paths: Vec<&str> = unmasked["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    // Every sensitive /proc file this kernel has is readable in it; /sys is not mounted at all.
    for p in watertight_model::PROC_MASKED_PATHS {
        let expected = p.starts_with("/proc/") && p != "/proc/kallsyms" && Path::new(p).exists();
        assert_eq!(paths.contains(&p), expected, "{p}: {paths:?}");
    }
    assert!(paths.contains(&"/proc/sys"), "{paths:?}");
    // Its /dev (tmpfs with the host's null, zero, full, random, urandom, tty) is not exposure,
    // and apart from the clocks it shares no namespace with the host.
    for f in &findings {
        assert_ne!(f["rule"], "sensitive-host-mount", "{f}");
        assert_ne!(f["rule"], "host-devices", "{f}");
        if f["rule"] == "shared-host-namespace" {
            assert_eq!(f["namespace"], "time", "{f}");
        }
    }
    drop(bwrap);
}
