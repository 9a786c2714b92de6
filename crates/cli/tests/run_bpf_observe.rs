//! `watertight run --bpf-observe` on the real kernel (docs/bpf-observe.md): inside, a program
//! makes a BPF token from the delegated bpffs at /sys/fs/bpf and loads observe-only programs
//! through it (each BPF_PROG_LOAD served by the supervisor's vetted load); a program type the
//! token does not delegate, or a call to an acting or memory-reading helper, is refused before
//! the kernel sees it (a violation naming why); the kernel by itself refuses undelegated types
//! but not helpers (`token_harness.c`, the same delegation without watertight); outside the
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
            "load map_user",
            "load unverifiable",
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
    // A program naming its map: the supervisor took the map's descriptor from the task.
    assert!(
        r.of("load map_user").starts_with("ok id="),
        "{:?}",
        r.results
    );
    // The kernel's verifier refuses the vetted copy: its errno, not a violation.
    assert_eq!(r.of("load unverifiable"), "errno=13 EACCES");
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
    assert_eq!(ids.len(), 4, "{:?}", r.results);
    for id in ids {
        assert!(
            !program_outlives_the_run(id),
            "program {id} outlived the sandbox"
        );
    }
    assert_eq!(host_bpffs_mounts(), mounts_before);
}

/// The reasons of the refused loads the supervisor recorded.
fn refusals(r: &Run) -> Vec<String> {
    r.events
        .iter()
        .filter_map(|e| e["bpf_load_refused"].as_str().map(String::from))
        .collect()
}

#[test]
fn program_types_the_token_does_not_delegate_are_refused() {
    if !ready("program_types_the_token_does_not_delegate_are_refused") {
        return;
    }
    let r = run(
        &["--bpf-observe"],
        &["load kprobe", "load perf_event", "load socket_filter"],
    );
    for kind in ["kprobe", "perf_event", "socket_filter"] {
        assert_eq!(r.of(&format!("load {kind}")), "errno=1 EPERM", "{kind}");
    }
    // The supervisor's vetting refuses them before the kernel sees them (the supervisor's own
    // capabilities would otherwise load anything the token does not cover): violations.
    assert_eq!(r.bpf_violations(), [5, 5, 5], "{:?}", r.events);
    assert_eq!(
        refusals(&r),
        [
            "program type 2 (attach type 0) is not delegated",
            "program type 7 (attach type 0) is not delegated",
            "program type 1 (attach type 0) is not delegated",
        ]
    );
}

#[test]
fn programs_calling_acting_or_memory_reading_helpers_are_refused() {
    if !ready("programs_calling_acting_or_memory_reading_helpers_are_refused") {
        return;
    }
    let r = run(
        &["--bpf-observe"],
        &["load send_signal", "load probe_read_kernel"],
    );
    assert_eq!(r.of("load send_signal"), "errno=1 EPERM");
    assert_eq!(r.of("load probe_read_kernel"), "errno=1 EPERM");
    assert_eq!(
        refusals(&r),
        [
            "instruction 1 calls helper send_signal (109, act), which is not allowed",
            "instruction 4 calls helper probe_read_kernel (113, observe), which is not allowed",
        ]
    );
}

/// What the kernel enforces by itself with watertight's delegation: run without watertight
/// (`token_harness.c`), it refuses a kprobe program, and it loads a bpf_send_signal and a
/// bpf_probe_read_kernel program: a token cannot restrict helpers, which is why the supervisor
/// vets every load.
#[test]
fn by_itself_the_kernel_refuses_undelegated_types_but_not_helpers() {
    if !ready("by_itself_the_kernel_refuses_undelegated_types_but_not_helpers") {
        return;
    }
    let tmp = world_readable_tempdir();
    let harness = tmp.path().join("token_harness");
    watertight_testkit::compile_c(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf_observe/token_harness.c"),
        &harness,
        &[],
    );
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let option = |key: &str| -> String {
        watertight_sandbox::layers::bpf::DELEGATION
            .iter()
            .find(|(k, _)| k.to_bytes() == key.as_bytes())
            .map(|(_, v)| v.to_string_lossy().into_owned())
            .unwrap()
    };
    let caps = format!("{:#x}", watertight_sandbox::layers::bpf::KEPT_CAPABILITIES);
    let mut ids = Vec::new();
    for (kind, want) in [
        ("tracepoint", "ok"),
        ("kprobe", "errno=1 EPERM"),
        ("perf_event", "errno=1 EPERM"),
        ("send_signal", "ok"),
        ("probe_read_kernel", "ok"),
    ] {
        let out = std::process::Command::new(&harness)
            .arg(&mnt)
            .arg(option("delegate_cmds"))
            .arg(option("delegate_progs"))
            .arg(option("delegate_attachs"))
            .arg(option("delegate_maps"))
            .arg(&caps)
            .arg("--")
            .arg(observe_dir().join("observe"))
            .args(["load", kind])
            .output()
            .unwrap();
        let line = stdout(&out);
        let got = line
            .trim()
            .strip_prefix(&format!("RESULT load {kind} "))
            .unwrap_or_else(|| panic!("{kind}: {line} {}", stderr(&out)));
        assert!(got.starts_with(want), "{kind}: {got}");
        ids.extend(
            got.strip_prefix("ok id=")
                .and_then(|i| i.parse::<u32>().ok()),
        );
    }
    for id in ids {
        assert!(
            !program_outlives_the_run(id),
            "program {id} outlived the harness"
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

#[test]
fn a_refused_program_is_answered_as_on_violation_says() {
    if !ready("a_refused_program_is_answered_as_on_violation_says") {
        return;
    }
    // kill: the load never returns and the sandbox ends, so nothing after it runs.
    let r = run(
        &["--bpf-observe", "--on-violation=kill"],
        &["load send_signal", "token"],
    );
    assert!(r.results.is_empty(), "{:?}", r.results);
    let refused = r
        .events
        .iter()
        .find(|e| e["kind"] == "syscall_denied" && e["syscall"] == "bpf")
        .unwrap_or_else(|| panic!("no bpf violation: {:?}", r.events));
    assert_eq!(refused["action"], "kill", "{refused}");
    assert!(
        refused["bpf_load_refused"]
            .as_str()
            .is_some_and(|m| m.contains("helper send_signal (109, act)")),
        "{refused}"
    );
}
