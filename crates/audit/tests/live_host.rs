//! Live host audit against real processes: each test starts processes with `unshare` that share
//! or do not share the test's namespaces, with and without capabilities, with a shared bind
//! mount, audits exactly those pids against the test process as the host reference, and kills
//! and unmounts everything afterwards (Drop guards, also on failure).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use watertight_audit::sources::host::{scan, HostOptions};
use watertight_audit::{audit_workloads, Finding, Severity};

/// Returns from the test unless it can run: root (a SKIP, or a failure with
/// WATERTIGHT_REQUIRE_ROOT=1) and util-linux's tools (a SKIP, or a failure in CI).
macro_rules! require_live {
    () => {
        let test = watertight_testkit::this_test();
        if !watertight_testkit::require_root(&test)
            || !watertight_testkit::require_tools(
                &test,
                &["unshare", "setpriv", "mount", "umount"],
                "util-linux",
            )
        {
            return;
        }
    };
}

/// A process tree started for one test; killed and reaped on drop.
struct Started {
    child: Child,
    /// The pid to audit: the program that finally runs (`sleep`).
    target: u32,
}

impl Drop for Started {
    fn drop(&mut self) {
        // Only our own processes, by pid.
        let _ = Command::new("kill")
            .args(["-KILL", &self.target.to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Starts `args` and waits until a `sleep` runs: the started process itself, or (with
/// `unshare --fork`) its child.
fn start(args: &[&str]) -> Started {
    start_until(args, "sleep")
}

/// Starts `args` and waits until a process named `comm_name` runs: the started process itself,
/// or its child.
fn start_until(args: &[&str], comm_name: &str) -> Started {
    let child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
    let pid = child.id();
    let mut started = Started { child, target: pid };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if comm(pid) == comm_name {
            return started;
        }
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(c) = children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
            .find(|c| comm(*c) == comm_name)
        {
            started.target = c;
            return started;
        }
        if let Ok(Some(status)) = started.child.try_wait() {
            panic!("{args:?} exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} did not reach {comm_name}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Audits exactly `pid` with the test process as the host reference.
fn findings_for(pid: u32) -> Vec<Finding> {
    let opts = HostOptions {
        reference_pid: std::process::id(),
        pids: Some(vec![pid]),
        ..HostOptions::default()
    };
    let scanned = scan(&opts).expect("scan");
    assert_eq!(scanned.processes, 1, "warnings: {:?}", scanned.warnings);
    let findings = audit_workloads(&scanned.workloads);
    for f in &findings {
        assert_eq!(f.pid, Some(pid), "{f:?}");
    }
    findings
}

fn shared_namespaces(findings: &[Finding]) -> Vec<String> {
    let mut v: Vec<String> = findings
        .iter()
        .filter(|f| f.rule == "shared-host-namespace")
        .filter_map(|f| f.namespace.clone())
        .collect();
    v.sort();
    v
}

fn has(findings: &[Finding], rule: &str) -> bool {
    findings.iter().any(|f| f.rule == rule)
}

#[test]
fn a_process_in_its_own_pid_namespace_still_sharing_the_network_is_reported() {
    require_live!();
    let p = start(&["unshare", "--pid", "--fork", "--kill-child", "sleep", "60"]);
    let f = findings_for(p.target);
    let shared = shared_namespaces(&f);
    assert!(!shared.contains(&"pid".to_string()), "{shared:?}");
    for ns in ["net", "ipc", "uts", "mnt", "user"] {
        assert!(
            shared.contains(&ns.to_string()),
            "{ns} missing from {shared:?}"
        );
    }
    let net = f
        .iter()
        .find(|f| f.namespace.as_deref() == Some("net"))
        .unwrap();
    assert_eq!(net.severity, Severity::High);
    // Root's capabilities (all but CAP_SYS_RESOURCE here): dangerous, yet not "full".
    assert!(has(&f, "dangerous-capabilities"), "{f:#?}");
    assert!(has(&f, "seccomp-disabled"));
    assert!(has(&f, "run-as-root"));
}

#[test]
fn dropping_every_capability_clears_the_capability_findings() {
    require_live!();
    let p = start(&[
        "unshare",
        "--pid",
        "--net",
        "--fork",
        "--kill-child",
        "setpriv",
        "--bounding-set=-all",
        "--inh-caps=-all",
        "--no-new-privs",
        "sleep",
        "60",
    ]);
    let f = findings_for(p.target);
    assert!(!has(&f, "dangerous-capabilities"), "{f:#?}");
    assert!(!has(&f, "full-capabilities"), "{f:#?}");
    assert!(!has(&f, "no-new-privs"), "{f:#?}");
    let shared = shared_namespaces(&f);
    assert!(!shared.contains(&"net".to_string()) && !shared.contains(&"pid".to_string()));
}

#[test]
fn a_fully_unshared_process_shares_nothing() {
    require_live!();
    let p = start(&[
        "unshare",
        "--pid",
        "--net",
        "--ipc",
        "--uts",
        "--mount",
        "--cgroup",
        "--time",
        "--user",
        "--fork",
        "--kill-child",
        "sleep",
        "60",
    ]);
    // Map the namespace to a subordinate range, as a container runtime with userns would
    // (root in the parent namespace may write the map once).
    std::fs::write(format!("/proc/{}/uid_map", p.target), "0 100000 65536\n").expect("uid_map");
    let f = findings_for(p.target);
    assert_eq!(shared_namespaces(&f), Vec::<String>::new(), "{f:#?}");
    assert!(!has(&f, "user-namespace-host-root"), "{f:#?}");
    // Without pivot_root it still sees the host's root filesystem, one finding for the tree.
    let mounts: Vec<_> = f
        .iter()
        .filter(|f| f.rule == "sensitive-host-mount")
        .collect();
    assert_eq!(mounts.len(), 1, "{mounts:#?}");
    assert_eq!(mounts[0].severity, Severity::Critical);
    // Its capabilities live in its own user namespace: not counted against the host.
    assert!(!has(&f, "dangerous-capabilities"), "{f:#?}");
}

#[test]
fn a_user_namespace_mapping_an_unprivileged_uid_to_host_root_is_reported() {
    require_live!();
    // --map-user maps the given uid inside to our euid (0) outside.
    let p = start(&["unshare", "--user", "--map-user=65534", "sleep", "60"]);
    let f = findings_for(p.target);
    let finding = f
        .iter()
        .find(|f| f.rule == "user-namespace-host-root")
        .unwrap();
    assert!(
        finding.message.contains("uid 65534 inside"),
        "{}",
        finding.message
    );
}

#[test]
fn a_user_namespace_mapping_root_to_host_root_is_reported() {
    require_live!();
    let p = start(&["unshare", "--user", "--map-root-user", "sleep", "60"]);
    let f = findings_for(p.target);
    let finding = f
        .iter()
        .find(|f| f.rule == "user-namespace-host-root")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!(finding.severity, Severity::High);
    assert!(shared_namespaces(&f).contains(&"net".to_string()));
}

/// A bind mount of a private temporary directory made shared on the host side; unmounted and
/// removed on drop.
struct SharedMount {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SharedMount {
    fn new() -> SharedMount {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("wt-audit-prop-{}-", std::process::id()))
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let run = |args: &[&str]| {
            let ok = Command::new(args[0])
                .args(&args[1..])
                .status()
                .map(|s| s.success());
            assert_eq!(ok.ok(), Some(true), "{args:?} failed");
        };
        let d = dir.to_str().unwrap().to_string();
        run(&["mount", "--bind", "--make-private", &d, &d]);
        let m = SharedMount { dir, _tmp: tmp };
        run(&["mount", "--make-shared", &d]);
        m
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        // Anything the workload mounted below propagated here: take the whole tree down.
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }
}

fn host_sees_mount(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

#[test]
fn shared_mount_propagation_is_reported_and_really_leaks() {
    require_live!();
    let shared = SharedMount::new();
    let secret = shared.dir.join("secret");
    std::fs::create_dir(&secret).unwrap();
    let script = format!(
        "mount -t tmpfs wt-secret {} && exec sleep 60",
        secret.display()
    );
    let p = start(&[
        "unshare",
        "--mount",
        "--propagation",
        "shared",
        "--pid",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        &script,
    ]);
    // The tmpfs mounted inside the workload appeared on the host: the leak is real.
    assert!(
        host_sees_mount(&secret),
        "tmpfs did not propagate to the host"
    );
    let f = findings_for(p.target);
    let prop = f
        .iter()
        .find(|f| f.rule == "mount-propagation" && f.severity == Severity::High)
        .unwrap_or_else(|| panic!("{f:#?}"));
    let dir = shared.dir.display().to_string();
    assert!(prop.paths.contains(&dir), "{dir} not in {:?}", prop.paths);
    assert!(
        prop.paths.contains(&secret.display().to_string()),
        "{:?}",
        prop.paths
    );
    // Without pivot_root it also sees the host's whole root filesystem.
    assert!(
        f.iter().any(|f| f.rule == "sensitive-host-mount"
            && f.paths.first().map(String::as_str) == Some("/")),
        "{f:#?}"
    );
    drop(p);
}

#[test]
fn a_confined_process_in_the_root_cgroup_is_reported() {
    require_live!();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let p = start(&["unshare", "--pid", "--fork", "--kill-child", "sleep", "60"]);
    // Move our own test process into the root cgroup of every hierarchy it is not in yet.
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        if path == "/" {
            continue;
        }
        let dir = if ctrl.is_empty() {
            "/sys/fs/cgroup/unified".to_string()
        } else {
            format!("/sys/fs/cgroup/{}", ctrl.trim_start_matches("name="))
        };
        let procs = Path::new(&dir).join("cgroup.procs");
        if std::fs::write(&procs, p.target.to_string()).is_err() {
            watertight_testkit::host_lacks(
                &watertight_testkit::this_test(),
                &format!(
                    "cannot move a process into {} (no such hierarchy here)",
                    procs.display()
                ),
            );
            return;
        }
    }
    let f = findings_for(p.target);
    assert!(has(&f, "root-cgroup"), "{f:#?}");
}

#[test]
fn an_unreadable_reference_reports_unknown_never_isolated() {
    require_live!();
    let p = start(&["unshare", "--net", "sleep", "60"]);
    let opts = HostOptions {
        reference_pid: u32::MAX - 7,
        pids: Some(vec![p.target]),
        ..HostOptions::default()
    };
    let scanned = scan(&opts).unwrap();
    assert!(
        scanned.warnings.iter().any(|w| w.contains("reference pid")),
        "{:?}",
        scanned.warnings
    );
    let subject = &scanned.workloads[0].subjects[0];
    for kind in watertight_model::NamespaceKind::ALL {
        assert_ne!(
            subject.namespaces.get(kind),
            watertight_model::NamespaceState::Isolated,
            "{kind}"
        );
    }
}

/// A process is judged part of a gVisor sandbox only when it runs the host's runsc binary
/// itself: a process whose own mount namespace shows another program at /usr/bin/runsc (a
/// container hoping to have its findings waved through) is audited as any other.
#[test]
fn a_program_posing_as_runsc_is_audited_as_any_other() {
    require_live!();
    let test = watertight_testkit::this_test();
    if !watertight_testkit::require_tools(&test, &["runsc"], "runsc") {
        return;
    }
    let real = Path::new("/usr/bin/runsc");
    if !real.is_file() {
        eprintln!("SKIP {test}: runsc is not at /usr/bin/runsc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-runsc");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    // Its own mount namespace, where /usr/bin/runsc is a copy of sleep; then it runs that.
    let script = format!(
        "mount --make-rprivate / && mount --bind {} /usr/bin/runsc && exec /usr/bin/runsc 60",
        fake.display()
    );
    let started = start_until(
        &[
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "sh",
            "-c",
            &script,
        ],
        "runsc",
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", started.target)).unwrap();
    assert_eq!(exe, real, "the process shows the runsc path");
    let f = findings_for(started.target);
    assert!(!has(&f, "gvisor-sandbox"), "{f:#?}");
    assert!(has(&f, "shared-host-namespace"), "{f:#?}");
    assert!(has(&f, "run-as-root"), "{f:#?}");
}
