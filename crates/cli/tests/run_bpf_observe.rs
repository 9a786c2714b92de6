//! `watertight run --bpf-observe` on the real kernel (docs/bpf-observe.md): inside, a program
//! makes a BPF token from the delegated bpffs at /sys/fs/bpf and loads observe-only programs
//! through it; the kernel refuses every program type the token does not delegate; outside the
//! flag bpf() is a violation as before. The workload is tests/bpf_observe/observe.c (raw bpf()
//! calls), built static into a temporary directory. Nothing outlives a run: the programs die
//! with the sandbox's descriptors (checked by id with bpftool) and the bpffs was never mounted
//! in the host's mount namespace.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A world-readable directory holding the static `observe` program.
fn observe_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf_observe/observe.c");
        watertight_testkit::build_static(&src, Path::new(env!("CARGO_TARGET_TMPDIR")))
    })
}

/// Root, a C compiler, bpftool and a kernel with BPF tokens (Linux 6.9+), or a SKIP line.
fn ready(test: &str) -> bool {
    if !require_root(test) || !require_tools(test, &["cc", "bpftool"], "gcc bpftool") {
        return false;
    }
    match watertight_sys::bpf::token_create_supported() {
        Ok(true) => true,
        other => {
            watertight_testkit::host_lacks(test, &format!("no BPF tokens here: {other:?}"));
            false
        }
    }
}

/// One sandbox run of `observe` commands (`;`-separated shell), with `flags`.
struct Run {
    /// Each `RESULT` line, without the prefix: "load tracepoint ok id=17".
    results: Vec<String>,
    events: Vec<serde_json::Value>,
    out: std::process::Output,
}

fn run(flags: &[&str], commands: &[&str]) -> Run {
    let scratch = tempfile::tempdir().unwrap();
    let events = scratch.path().join("events.jsonl");
    let script = commands
        .iter()
        .map(|c| format!("/observe/observe {c}"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = watertight()
        .arg("run")
        .arg(format!("--bind-ro={}:/observe", observe_dir().display()))
        .arg(format!("--events={}", events.display()))
        .args(flags)
        .args(["--wall-time-limit=20", "--", "/bin/sh", "-c", &script])
        .output()
        .unwrap();
    let results = stdout(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .map(String::from)
        .collect();
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        results,
        events,
        out,
    }
}

impl Run {
    /// The result line of `what` ("load tracepoint"), without `what`.
    fn of(&self, what: &str) -> &str {
        self.results
            .iter()
            .find_map(|r| r.strip_prefix(what).map(str::trim))
            .unwrap_or_else(|| {
                panic!(
                    "no result for {what:?}: {:?}\nstderr: {}",
                    self.results,
                    stderr(&self.out)
                )
            })
    }

    /// The program ids the loads printed (`ok id=N`).
    fn program_ids(&self) -> Vec<u32> {
        self.results
            .iter()
            .filter_map(|r| r.split_once(" ok id=")?.1.parse().ok())
            .collect()
    }

    /// The bpf() calls the supervisor recorded as violations: their command numbers.
    fn bpf_violations(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter(|e| e["kind"] == "syscall_denied" && e["syscall"] == "bpf")
            .map(|e| {
                let cmd = e["args"][0].as_str().unwrap().trim_start_matches("0x");
                u64::from_str_radix(cmd, 16).unwrap()
            })
            .collect()
    }
}

/// The number of bpf file systems mounted in this (the host's) mount namespace.
fn host_bpffs_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(" - ").nth(1).is_some_and(|t| t.starts_with("bpf ")))
        .count()
}

/// Whether program `id` still exists (`bpftool prog show id N` succeeds) 5 s after the run:
/// the kernel frees a program whose last descriptor closed after an RCU grace period, from a
/// work queue, so it may still be listed for a moment.
fn program_outlives_the_run(id: u32) -> bool {
    let exists = || {
        std::process::Command::new("bpftool")
            .args(["prog", "show", "id", &id.to_string()])
            .output()
            .unwrap()
            .status
            .success()
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while exists() {
        if std::time::Instant::now() > until {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[test]
fn inside_a_tracepoint_program_loads_through_the_token_and_a_raw_tracepoint_attaches() {
    if !ready("inside_a_tracepoint_program_loads_through_the_token_and_a_raw_tracepoint_attaches") {
        return;
    }
    let mounts_before = host_bpffs_mounts();
    let r = run(
        &["--bpf-observe"],
        &[
            "token",
            "load tracepoint",
            "load raw_tp",
            "load map",
            "attach-raw-tp",
            "attach-tp",
        ],
    );
    assert_eq!(r.of("token"), "ok");
    assert!(
        r.of("load tracepoint").starts_with("ok id="),
        "{:?}",
        r.results
    );
    assert!(r.of("load raw_tp").starts_with("ok id="), "{:?}", r.results);
    assert_eq!(r.of("load map"), "ok");
    // A raw tracepoint attaches from inside (BPF_RAW_TRACEPOINT_OPEN needs no capability);
    // a tracepoint program does not: perf_event_open stays a violation (and the kernel would
    // want CAP_PERFMON of the initial namespace at perf_event_paranoid 2).
    assert!(
        r.of("attach-raw-tp").starts_with("ok id="),
        "{:?}",
        r.results
    );
    assert_eq!(r.of("attach-tp"), "errno=1 EPERM");
    assert!(
        r.events
            .iter()
            .any(|e| e["kind"] == "syscall_denied" && e["syscall"] == "perf_event_open"),
        "{:?}",
        r.events
    );
    assert!(r.bpf_violations().is_empty(), "{:?}", r.events);
    // Nothing outlives the sandbox: its programs (and the raw tracepoint's link) went with its
    // descriptors, and the bpffs never was in the host's mount namespace.
    let ids = r.program_ids();
    assert_eq!(ids.len(), 3, "{:?}", r.results);
    for id in ids {
        assert!(
            !program_outlives_the_run(id),
            "program {id} outlived the sandbox"
        );
    }
    assert_eq!(host_bpffs_mounts(), mounts_before);
}

#[test]
fn the_kernel_refuses_program_types_the_token_does_not_delegate() {
    if !ready("the_kernel_refuses_program_types_the_token_does_not_delegate") {
        return;
    }
    let r = run(
        &["--bpf-observe"],
        &["load kprobe", "load perf_event", "load socket_filter"],
    );
    // seccomp lets BPF_PROG_LOAD through; the kernel's token check refuses (no violation).
    for kind in ["kprobe", "perf_event", "socket_filter"] {
        assert_eq!(r.of(&format!("load {kind}")), "errno=1 EPERM", "{kind}");
    }
    assert!(r.bpf_violations().is_empty(), "{:?}", r.events);
}

/// The measured truth, asserted so that a change shows: a token cannot restrict helpers. A
/// tracepoint program calling bpf_send_signal (it could signal whatever host process its
/// tracepoint fires in) or bpf_probe_read_kernel loads. Closing this gap needs each program
/// vetted before it is loaded (docs/bpf-observe.md, "The helper gap"); not built yet.
#[test]
fn the_token_does_not_restrict_helpers_so_send_signal_programs_load() {
    if !ready("the_token_does_not_restrict_helpers_so_send_signal_programs_load") {
        return;
    }
    let r = run(
        &["--bpf-observe"],
        &["load send_signal", "load probe_read_kernel"],
    );
    assert!(
        r.of("load send_signal").starts_with("ok id="),
        "{:?}",
        r.results
    );
    assert!(
        r.of("load probe_read_kernel").starts_with("ok id="),
        "{:?}",
        r.results
    );
    for id in r.program_ids() {
        assert!(
            !program_outlives_the_run(id),
            "program {id} outlived the sandbox"
        );
    }
}

#[test]
fn only_the_observers_commands_pass_seccomp_the_rest_are_violations() {
    if !ready("only_the_observers_commands_pass_seccomp_the_rest_are_violations") {
        return;
    }
    // BPF_PROG_GET_NEXT_ID (11: walking the host's programs), BPF_PROG_ATTACH (8),
    // BPF_OBJ_GET (7), a command number far past the last one.
    let r = run(
        &["--bpf-observe"],
        &["cmd 11", "cmd 8", "cmd 7", "cmd 4096"],
    );
    for cmd in ["11", "8", "7", "4096"] {
        assert_eq!(r.of(&format!("cmd {cmd}")), "errno=1 EPERM", "cmd {cmd}");
    }
    assert_eq!(r.bpf_violations(), [11, 8, 7, 4096], "{:?}", r.events);
}

#[test]
fn without_the_flag_bpf_is_refused_as_a_violation_as_before() {
    if !ready("without_the_flag_bpf_is_refused_as_a_violation_as_before") {
        return;
    }
    let r = run(&[], &["plain", "cmd 36"]);
    assert_eq!(r.of("plain"), "errno=1 EPERM");
    assert_eq!(r.of("cmd 36"), "errno=1 EPERM");
    // BPF_PROG_LOAD and BPF_TOKEN_CREATE, each named as a bpf violation.
    assert_eq!(r.bpf_violations(), [5, 36], "{:?}", r.events);
    // No bpffs, no capability.
    let r = run(&[], &["token"]);
    assert_eq!(r.of("token"), "errno=2 ENOENT");
}
