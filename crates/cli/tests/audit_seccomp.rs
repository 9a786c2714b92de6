//! `watertight audit seccomp --pid`: filters read back from live processes. A process with no
//! filter is a high finding; a `watertight run` sandbox's program reads back as the allowlist
//! refusing every violation-class call; gVisor's Sentry and Gofer (runsc, ptrace platform) read
//! back as the small host surface that docs/kernel-audit.md and the gVisor reachability map
//! (crates/kernel-audit/data/reachability-gvisor.toml) rest on.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use watertight_testkit::{require_root, require_tools, stderr, stdout_json, this_test, watertight};

/// A child killed and reaped when dropped.
struct Reaped(Child);
impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn audit(pid: u32) -> std::process::Output {
    watertight()
        .args([
            "audit",
            "seccomp",
            "--pid",
            &pid.to_string(),
            "--format",
            "json",
        ])
        .output()
        .unwrap()
}

fn names(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {report}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// All descendants of `pid` (through /proc/PID/task/*/children).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits up to 20 s for a descendant of `root` that `pick` accepts.
fn wait_for(root: u32, pick: impl Fn(u32) -> bool) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = descendants(root).into_iter().find(|p| pick(*p)) {
            return p;
        }
        assert!(Instant::now() < deadline, "no such descendant of {root}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const NEVER_FROM_A_SANDBOX: [&str; 12] = [
    "bpf",
    "unshare",
    "setns",
    "mount",
    "keyctl",
    "add_key",
    "io_uring_setup",
    "userfaultfd",
    "perf_event_open",
    "init_module",
    "kexec_load",
    "open_by_handle_at",
];

#[test]
fn a_process_without_a_filter_is_a_high_finding() {
    let test = this_test();
    if !require_root(&test) {
        return;
    }
    let sleeper = Reaped(Command::new("sleep").arg("30").spawn().unwrap());
    let out = audit(sleeper.0.id());
    // The default --fail-on high gates on it.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["filters"].as_array().unwrap().len(), 0);
    assert!(names(&report, "refused").is_empty());
    assert!(names(&report, "deferred").is_empty());
    // It was only stopped for a moment: still alive, not traced.
    let status = std::fs::read_to_string(format!("/proc/{}/status", sleeper.0.id())).unwrap();
    assert!(status.contains("TracerPid:\t0"), "{status}");

    // A process that is gone: one line naming it, exit 2 (anyhow at the CLI edge).
    let gone = audit(99_999_999);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
    assert!(
        stderr(&gone).contains("--pid 99999999"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn a_watertight_sandbox_reads_back_as_its_allowlist() {
    let test = this_test();
    if !require_root(&test) {
        return;
    }
    let run = Reaped(
        watertight()
            .args(["run", "--time-limit", "30", "--", "/bin/sleep", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let program = wait_for(run.0.id(), |p| comm(p) == "sleep");
    let out = audit(program);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = stdout_json(&out);
    assert!(!report["filters"].as_array().unwrap().is_empty());
    let reaching = names(&report, "reaching_kernel");
    for call in ["read", "write", "mmap", "exit_group", "nanosleep"] {
        assert!(reaching.iter().any(|c| c == call), "{call} in {reaching:?}");
    }
    for call in NEVER_FROM_A_SANDBOX {
        assert!(
            !reaching.iter().any(|c| c == call),
            "{call} reaches: {reaching:?}"
        );
    }
    assert_eq!(report["violation_class_reaching"], serde_json::json!([]));
    // The violation class goes to watertight's supervisor (user notification), which refuses it.
    let deferred = names(&report, "deferred");
    for call in ["bpf", "unshare", "mount"] {
        assert!(deferred.iter().any(|c| c == call), "{call} in {deferred:?}");
    }
}

#[test]
fn gvisor_sentry_and_gofer_read_back_as_the_maps_host_surface() {
    let test = this_test();
    if !require_root(&test) || !require_tools(&test, &["runsc"], "runsc") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let rootfs = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("sleep")).unwrap();
    let spec = Command::new("runsc")
        .args(["spec", "--", "/bin/sleep", "30"])
        .current_dir(&bundle)
        .output()
        .unwrap();
    assert!(
        spec.status.success(),
        "{}",
        String::from_utf8_lossy(&spec.stderr)
    );
    let state = tmp.path().join("state");
    let id = format!("wt-audit-seccomp-{}", std::process::id());
    let runsc = |args: &[&str]| {
        let mut c = Command::new("runsc");
        c.arg("--root").arg(&state).args(args);
        c
    };
    struct Container<'a>(&'a Path, String);
    impl Drop for Container<'_> {
        fn drop(&mut self) {
            let _ = Command::new("runsc")
                .arg("--root")
                .arg(self.0)
                .args(["delete", "--force", &self.1])
                .output();
        }
    }
    let started = Reaped(
        runsc(&[
            "--platform=ptrace",
            "--network=none",
            "--ignore-cgroups",
            "run",
            "--bundle",
            bundle.to_str().unwrap(),
            &id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let _container = Container(&state, id.clone());
    let sentry = wait_for(started.0.id(), |p| cmdline(p).starts_with("runsc-sandbox"));
    let gofer = wait_for(started.0.id(), |p| cmdline(p).starts_with("runsc-gofer"));
    // The Sentry installs its filter once it has booted; give it a moment.
    let mut report = serde_json::Value::Null;
    for _ in 0..100 {
        let out = audit(sentry);
        report = stdout_json(&out);
        if !report["filters"].as_array().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let sentry_calls = names(&report, "reaching_kernel");
    let gofer_report = stdout_json(&audit(gofer));
    let gofer_calls = names(&gofer_report, "reaching_kernel");
    eprintln!("Sentry: {} calls: {sentry_calls:?}", sentry_calls.len());
    eprintln!("Gofer: {} calls: {gofer_calls:?}", gofer_calls.len());
    // Small surfaces: about 70 and 60 of ~380 calls here (runsc 2022-12-19).
    assert!((20..=120).contains(&sentry_calls.len()), "{sentry_calls:?}");
    assert!((20..=120).contains(&gofer_calls.len()), "{gofer_calls:?}");
    // What the map counts as reachable because the Sentry drives it on the host.
    for call in [
        "ptrace",
        "futex",
        "mmap",
        "madvise",
        "recvmsg",
        "sendmsg",
        "clone",
        "timer_create",
    ] {
        assert!(
            sentry_calls.iter().any(|c| c == call),
            "Sentry lacks {call}"
        );
    }
    for call in ["openat", "newfstatat", "getdents64", "fchownat"] {
        assert!(gofer_calls.iter().any(|c| c == call), "Gofer lacks {call}");
    }
    // What the map counts as out of reach: no network sockets (net/ipv4, net/ipv6, ... are the
    // Sentry's own netstack), no bpf, perf, io_uring, keyrings, namespaces, mounts or modules.
    for calls in [&sentry_calls, &gofer_calls] {
        // A filter with no supervisor behind it: nothing deferred.
        for call in NEVER_FROM_A_SANDBOX
            .iter()
            .chain(std::iter::once(&"socket"))
        {
            assert!(
                !calls.iter().any(|c| c == call),
                "{call} reaches: {calls:?}"
            );
        }
    }
}
