//! `watertight run --isolation gvisor`: real programs on gVisor's runsc (Debian package `runsc`,
//! installed by scripts/install-deps.sh), inside watertight's cgroup and limits. The verdicts of
//! the namespace tier, the attack battery of tests/run_attacks.rs (every attack must fail; the
//! attack program prints DENIED whatever errno gVisor answers with, so only the failure is
//! asserted), nothing left behind, and a missing runsc. Needs root.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

const GVISOR: &[&str] = &["--isolation", "gvisor"];

fn ready(test: &str) -> bool {
    require_root(test) && require_tools(test, &["runsc"], "runsc")
}

fn flags(extra: &[&str]) -> Vec<String> {
    GVISOR.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn verdict(extra: &[&str], cmd: &[&str]) -> (Output, serde_json::Value) {
    let f = flags(extra);
    let f: Vec<&str> = f.iter().map(String::as_str).collect();
    run_with_result(&f, cmd)
}

#[test]
fn verdicts_are_those_of_the_namespace_tier() {
    if !ready("verdicts_are_those_of_the_namespace_tier") {
        return;
    }
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("OK", &[], &["/bin/true"]),
        ("RE", &[], &["/bin/sh", "-c", "exit 3"]),
        ("SG", &[], &["/bin/sh", "-c", "kill -SEGV $$"]),
        (
            "TO",
            &["--time-limit", "1"],
            &["/bin/sh", "-c", "while :; do :; done"],
        ),
        ("TO", &["--wall-time-limit", "1"], &["/bin/sleep", "30"]),
        // tail keeps the last 300 MB it reads in memory: more than the limit allows.
        (
            "ML",
            &["--memory-limit", "128M"],
            &[
                "/bin/sh",
                "-c",
                "head -c 400000000 /dev/zero | tail -c 300000000 >/dev/null",
            ],
        ),
        ("OL", &["--output-limit", "64K"], &["/usr/bin/yes"]),
    ];
    for (want, extra, cmd) in cases {
        let (o, v) = verdict(extra, cmd);
        assert_eq!(
            v["status"],
            *want,
            "{cmd:?} {extra:?}: {v}\nstderr {}",
            stderr(&o)
        );
        assert_eq!(v["isolation"]["tier"], "gvisor", "{v}");
        assert!(
            v["isolation"]["platform"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
            "{v}"
        );
        assert!(v["plan_digest"].as_str().unwrap().starts_with("sha256:"));
        match *want {
            "RE" => assert_eq!(v["exit_code"], 3, "{v}"),
            "SG" => assert_eq!(v["signal"], 11, "{v}"),
            "ML" => assert_eq!(v["oom_killed"], true, "{v}"),
            _ => {}
        }
    }
}

#[test]
fn stdin_and_stdout_files_and_the_plan_digest_cover_isolation() {
    if !ready("stdin_and_stdout_files_and_the_plan_digest_cover_isolation") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "from the caller\n").unwrap();
    let (o, v) = verdict(
        &[
            &format!("--stdin={}", input.display()),
            &format!("--stdout={}", output.display()),
        ],
        &["/bin/cat"],
    );
    assert_eq!(v["status"], "OK", "{v} {}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "from the caller\n"
    );
    assert_eq!(v["output_bytes"], 16);
    let (_, ns) = run_with_result(&[], &["/bin/true"]);
    assert_ne!(ns["plan_digest"], v["plan_digest"], "isolation is policy");
    assert!(ns.get("isolation").is_none(), "{ns}");
}

/// Every attack of tests/run_attacks.rs that runs in the default sandbox.
const ATTACKS: &[(&str, &str)] = &[
    ("mount", ""),
    ("umount", ""),
    ("pivot_root", ""),
    ("chroot", ""),
    ("unshare", ""),
    ("unshare_mount", ""),
    ("setns", ""),
    ("clone_newuser", ""),
    ("ptrace", ""),
    ("ptrace_traceme", ""),
    ("process_vm_readv", ""),
    ("kexec_load", ""),
    ("kexec_file_load", ""),
    ("bpf", ""),
    ("keyctl", ""),
    ("add_key", ""),
    ("request_key", ""),
    ("io_uring", ""),
    ("userfaultfd", ""),
    ("perf_event_open", ""),
    ("open_by_handle_at", ""),
    ("fsopen", ""),
    ("open_tree", ""),
    ("move_mount", ""),
    ("fsmount", ""),
    ("init_module", ""),
    ("finit_module", ""),
    ("delete_module", ""),
    ("reboot", ""),
    ("iopl", ""),
    ("ioperm", ""),
    ("personality", ""),
    ("af_packet", ""),
    ("af_vsock", ""),
    ("af_alg", ""),
    ("syslog", ""),
    ("mknod_block", ""),
    ("write", "/proc/sysrq-trigger"),
    ("write", "/proc/sys/kernel/core_pattern"),
    ("open", "/proc/kcore"),
    ("open", "/proc/kmsg"),
    ("open", "/dev/kmsg"),
    ("open", "/proc/keys"),
    ("open", "/proc/kallsyms"),
    ("exe", ""),
    ("open", "/dev/sda"),
    ("open", "/dev/vda"),
    ("open", "/dev/nvme0n1"),
    ("open", "/dev/mem"),
    ("open", "/dev/port"),
    ("processes", "2"),
    ("open", "/etc/shadow"),
    ("write", "/usr/wt-gvisor-test"),
    ("write", "/etc/wt-gvisor-test"),
];

#[test]
fn the_attack_battery_fails_under_gvisor() {
    if !ready("the_attack_battery_fails_under_gvisor") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    use std::os::linux::net::SocketAddrExt;
    let abstract_name = format!("watertight-gvisor-test-{}", std::process::id());
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let _unix = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let mut all: Vec<(&str, &str)> = ATTACKS.to_vec();
    all.push(("tcp", &port));
    all.push(("abstract", &abstract_name));
    // Two at a time (each run is a runsc start, ~0.2 s here).
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for half in all.chunks(all.len().div_ceil(2)) {
            let failures = &failures;
            s.spawn(move || {
                for (name, arg) in half {
                    let o = attack(name, arg, GVISOR);
                    let out = stdout(&o);
                    if !(o.status.code() == Some(0) && out.starts_with("DENIED")) {
                        failures.lock().unwrap().push(format!(
                            "{name} {arg}: exit {:?} {out:?} {}",
                            o.status.code(),
                            stderr(&o)
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "attacks not stopped under gvisor:\n{}",
        failures.join("\n")
    );
    assert!(!Path::new("/usr/wt-gvisor-test").exists());
    assert!(!Path::new("/etc/wt-gvisor-test").exists());
}

/// Whether `text` names a gVisor run (`wt-gvisor-<pid>`) whose watertight has exited: what a
/// finished run left behind (other tests of this file run at the same time).
fn of_a_finished_run(text: &str) -> bool {
    text.split("wt-gvisor-").skip(1).any(|rest| {
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists()
    })
}

fn leftover_cgroups() -> Vec<std::path::PathBuf> {
    watertight_cgroups()
        .into_iter()
        .filter(|p| of_a_finished_run(&p.to_string_lossy()))
        .collect()
}

/// Processes whose command line names a finished gVisor run's private directory (runsc, its
/// Gofer and Sentry all carry `--root .../wt-gvisor-<pid>/state`).
fn gvisor_processes() -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("/run/watertight/gvisor/wt-gvisor-") && of_a_finished_run(&cmd) {
                v.push(cmd);
            }
        }
    }
    v
}

fn work_dirs() -> Vec<String> {
    std::fs::read_dir("/run/watertight/gvisor")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("wt-gvisor-") && of_a_finished_run(n))
                .collect()
        })
        .unwrap_or_default()
}

fn gvisor_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains("/run/watertight/gvisor"))
        .count()
}

#[test]
fn two_hundred_runs_and_an_interrupt_leave_nothing_behind() {
    if !ready("two_hundred_runs_and_an_interrupt_leave_nothing_behind") {
        return;
    }
    for i in 0..200 {
        let cmd: &[&str] = match i % 4 {
            0 => &["/bin/true"],
            1 => &["/bin/sh", "-c", "exit 3"],
            2 => &["/bin/sh", "-c", "kill -SEGV $$"],
            _ => &[
                "/bin/sh",
                "-c",
                "sleep 5 & sleep 5 & echo x > /tmp/f; sleep 5",
            ],
        };
        let extra: &[&str] = if i % 4 == 3 {
            &["--wall-time-limit", "0.5"]
        } else {
            &[]
        };
        let (_, v) = verdict(extra, cmd);
        assert_ne!(v["status"], "XX", "{v}");
    }
    // An interrupted run cleans up too.
    let mut child = watertight()
        .args(["run", "--isolation", "gvisor", "--", "/bin/sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(125), "an interrupt is XX");
    assert!(leftover_cgroups().is_empty(), "{:?}", leftover_cgroups());
    assert!(gvisor_processes().is_empty(), "{:?}", gvisor_processes());
    assert!(work_dirs().is_empty(), "work dirs left: {:?}", work_dirs());
    assert_eq!(gvisor_mounts(), 0, "mounts reached the host's table");
}

#[test]
fn a_missing_runsc_names_the_package_and_exits_125() {
    if !require_root("a_missing_runsc_names_the_package_and_exits_125") {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("PATH", empty.path().display().to_string()),
        ("WATERTIGHT_RUNSC", "/nonexistent/runsc".to_string()),
    ] {
        let o = watertight()
            .env(var, &value)
            .args(["run", "--isolation", "gvisor", "--", "/bin/true"])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(125), "{var}={value}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains("Debian package `runsc`"), "{err}");
    }
}

#[test]
fn unknown_isolation_is_refused_by_flag_and_profile() {
    let o = watertight()
        .args(["run", "--isolation", "kvm", "--", "/bin/true"])
        .output()
        .unwrap();
    // watertight's usage errors exit 125 (like its other failures).
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("namespaces, gvisor"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(&p, "isolation = \"Gvisor\"\n").unwrap();
    let o = watertight()
        .arg("run")
        .arg(format!("--profile={}", p.display()))
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("isolation"), "{}", stderr(&o));
}

#[test]
fn batch_passes_isolation_to_every_step() {
    if !ready("batch_passes_isolation_to_every_step") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("1.out"), "hi\n").unwrap();
    let jobs = dir.path().join("jobs.jsonl");
    let step = r#"[{"name":"test1","argv":["/bin/sh","-c","echo hi"],"expected":"1.out"}]"#;
    std::fs::write(
        &jobs,
        format!(
            "{{\"id\":\"flag\",\"steps\":{step}}}\n{{\"id\":\"own\",\"isolation\":\"namespaces\",\"steps\":{step}}}\n"
        ),
    )
    .unwrap();
    let res = dir.path().join("results.jsonl");
    let o = watertight()
        .args(["batch", "--isolation", "gvisor", "--results"])
        .arg(&res)
        .arg(&jobs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&res).unwrap();
    let lines: std::collections::BTreeMap<String, serde_json::Value> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let digest = |id: &str| lines[id]["steps"][0]["plan_digest"].clone();
    for id in ["flag", "own"] {
        assert_eq!(lines[id]["steps"][0]["status"], "OK", "{text}");
        assert_eq!(lines[id]["steps"][0]["judged"], "AC", "{text}");
    }
    // The job's own `isolation` wins over --isolation; the digest (which covers the tier, and
    // nothing else differs between the two jobs) tells the tiers apart.
    assert_ne!(digest("flag"), digest("own"), "{text}");
}

#[test]
fn batch_chooses_gvisor_by_the_kernel_cve_policy() {
    let test = "batch_chooses_gvisor_by_the_kernel_cve_policy";
    if !ready(test) {
        return;
    }
    let Some(records) = watertight_testkit::require_shared(test, "kernel-vulns/cve/published")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("1.out"), "hi\n").unwrap();
    let step = r#"[{"name":"test1","argv":["/bin/sh","-c","echo hi"],"expected":"1.out"}]"#;
    std::fs::write(
        d.join("jobs.jsonl"),
        format!(
            "{{\"id\":\"chosen\",\"steps\":{step}}}\n{{\"id\":\"own\",\"isolation\":\"namespaces\",\"steps\":{step}}}\n"
        ),
    )
    .unwrap();
    // 6.1.100 has 238 critical + 1,131 high CVEs a namespace sandbox reaches (docs/isolation.md).
    let policy = |name: &str, above: usize, version: &str| {
        let path = d.join(name);
        std::fs::write(
            &path,
            format!(
                "escalate_above = {above}\ncve_db = {:?}\nkernel_version = {version:?}\n",
                records.display().to_string()
            ),
        )
        .unwrap();
        path
    };
    let batch = |policy: &Path, results: &str| {
        let o = watertight()
            .arg("batch")
            .arg("--isolation-policy")
            .arg(policy)
            .arg("--results")
            .arg(d.join(results))
            .arg(d.join("jobs.jsonl"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = std::fs::read_to_string(d.join(results)).unwrap();
        let lines: std::collections::BTreeMap<String, serde_json::Value> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["id"].as_str().unwrap().to_string(), v)
            })
            .collect();
        for v in lines.values() {
            assert_eq!(v["steps"][0]["judged"], "AC", "{text}");
        }
        (stderr(&o), lines)
    };

    let (said, over) = batch(&policy("over.toml", 1368, "6.1.100"), "over.jsonl");
    assert!(
        said.contains("1369 CVEs of severity high or worse in 6.1.100")
            && said.contains("more than 1368: gvisor"),
        "{said}"
    );
    assert_eq!(over["chosen"]["isolation"], "gvisor");
    assert_eq!(
        over["own"]["isolation"], "namespaces",
        "the job's own choice wins"
    );

    let (said, under) = batch(&policy("under.toml", 1369, "6.1.100"), "under.jsonl");
    assert!(said.contains("at most 1369: namespaces"), "{said}");
    assert_eq!(under["chosen"]["isolation"], "namespaces");
    // The plan digest covers the tier: the escalated step ran another plan than the same step
    // left on namespaces, which is the plan of the job that chose namespaces itself.
    let digest = |m: &std::collections::BTreeMap<String, serde_json::Value>, id: &str| {
        m[id]["steps"][0]["plan_digest"].clone()
    };
    assert_ne!(digest(&over, "chosen"), digest(&under, "chosen"));
    assert_eq!(digest(&under, "chosen"), digest(&over, "own"));

    // A vendor kernel's exposure is undecided: counted as over the threshold.
    let (said, vendor) = batch(
        &policy("vendor.toml", 1_000_000, "6.1.0-18-amd64"),
        "vendor.jsonl",
    );
    assert!(said.contains("undecided"), "{said}");
    assert_eq!(vendor["chosen"]["isolation"], "gvisor");

    // A bad policy: one line naming the file and the key, exit 2, no results file.
    std::fs::write(d.join("bad.toml"), "escalate_above = 3\n").unwrap();
    let o = watertight()
        .arg("batch")
        .arg("--isolation-policy")
        .arg(d.join("bad.toml"))
        .arg("--results")
        .arg(d.join("bad.jsonl"))
        .arg(d.join("jobs.jsonl"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("bad.toml") && e.contains("cve_index"), "{e}");
    assert!(!d.join("bad.jsonl").exists());
}

/// `--writable-root` under gVisor: writes to a `--rootfs` go to runsc's overlay in the
/// Sentry's memory, never to the directory; without it the root is read-only.
#[test]
fn a_writable_root_under_gvisor_writes_to_a_throwaway_layer() {
    let test = "a_writable_root_under_gvisor_writes_to_a_throwaway_layer";
    if !ready(test) {
        return;
    }
    let root = attack_rootfs();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let rootfs = format!("--rootfs={}", root.path().display());
    let (o, v) = verdict(&[&rootfs], &["/attack", "write", "/x"]);
    assert!(stdout(&o).starts_with("DENIED"), "{} {v}", stdout(&o));
    let (o, v) = verdict(&[&rootfs, "--writable-root"], &["/attack", "write", "/x"]);
    assert!(
        stdout(&o).starts_with("ALLOWED"),
        "{} {} {v}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(before, listing(), "the root directory changed");
}
