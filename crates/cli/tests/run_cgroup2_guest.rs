//! `watertight run`'s cgroup limits on a pure cgroup v2 host: scripts/cgroup2-guest.sh boots the
//! Debian 12 cloud kernel (6.1) under QEMU/TCG with only the unified hierarchy mounted and
//! controllers available, runs the cases there and prints one line per case; this test checks
//! each. This host is hybrid (its cgroup2 has no controllers), so the memory.max / pids.max /
//! cpu.max writes, subtree delegation and the BPF device program as the only device policy run
//! nowhere else. Needs no root (the guest is root). Skips with a reason when qemu, busybox-static,
//! cpio or the kernel package cannot be had, and fails instead in CI (`watertight_testkit::require`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// One `WTCASE <name> exit=<n> verdict=<json|-> out=<text>` line.
#[derive(Debug)]
struct Case {
    exit: i32,
    verdict: Option<serde_json::Value>,
    out: String,
}

fn parse_case(line: &str) -> Option<(String, Case)> {
    let rest = line.strip_prefix("WTCASE ")?;
    let (name, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix("exit=")?;
    let (exit, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix("verdict=")?;
    let (verdict, out) = rest.rsplit_once(" out=")?;
    let verdict = match verdict {
        "-" => None,
        json => Some(serde_json::from_str(json).ok()?),
    };
    Some((
        name.to_owned(),
        Case {
            exit: exit.parse().ok()?,
            verdict,
            out: out.trim().to_owned(),
        },
    ))
}

/// `key=value` pairs of a case's output.
fn fields(out: &str) -> BTreeMap<&str, &str> {
    out.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[test]
fn cgroup_limits_hold_on_a_pure_cgroup2_guest() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cgroup2-guest.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_watertight"))
        .output()
        .expect("bash runs scripts/cgroup2-guest.sh");
    let log = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.code() == Some(77) {
        let reason = format!("the cgroup v2 guest cannot run here: {}", err.trim());
        watertight_testkit::require("cgroup_limits_hold_on_a_pure_cgroup2_guest", Some(reason));
        return;
    }
    assert!(
        output.status.success(),
        "guest run failed ({:?}): {err}\n{log}",
        output.status.code()
    );
    // Everything the guest said, for the record and for any failure below.
    for line in log.lines().filter(|l| l.starts_with("WT")) {
        eprintln!("{}", line.chars().take(400).collect::<String>());
    }
    let hangs: Vec<&str> = log.lines().filter(|l| l.starts_with("WTHANG")).collect();
    assert!(hangs.is_empty(), "a run did not end:\n{}", hangs.join("\n"));
    let cases: BTreeMap<String, Case> = log.lines().filter_map(parse_case).collect();
    let case = |name: &str| {
        cases
            .get(name)
            .unwrap_or_else(|| panic!("no result for case {name}:\n{log}"))
    };
    let verdict = |name: &str| {
        case(name)
            .verdict
            .clone()
            .unwrap_or_else(|| panic!("case {name} wrote no verdict: {:?}", case(name)))
    };
    assert!(log.contains("WTDONE"), "the guest stopped early:\n{log}");
    let info = log
        .lines()
        .find(|l| l.starts_with("WTINFO kernel="))
        .unwrap();
    assert!(
        info.contains("memory") && info.contains("pids") && info.contains("cpu"),
        "the guest's cgroup2 root offers too few controllers: {info}"
    );

    // A plain run works, and watertight delegated the controllers itself (the root had none).
    assert_eq!(
        (case("plain").exit, &verdict("plain")["status"]),
        (0, &"OK".into())
    );
    let delegated = fields(&case("delegated").out)["subtree"];
    for c in ["memory", "pids", "cpu"] {
        assert!(
            delegated.split(',').any(|d| d == c),
            "{c} not delegated: {delegated}"
        );
    }

    // memory.max: a 512 MiB hog under 64 MiB is OOM-killed and the verdict says ML.
    let v = verdict("memory");
    assert_eq!(v["status"], "ML", "{v}");
    assert_eq!(v["oom_killed"], true, "{v}");
    assert_eq!(case("memory").exit, 137);

    // pids.max: the fork bomb is refused before 32 tasks.
    let out = &case("pids").out;
    let children: u32 = out
        .strip_prefix("DENIED fork after ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("fork bomb not stopped: {out}"));
    assert!(children < 32, "{children} children under pids.max 32");
    let v = verdict("pids");
    assert!(
        v["events"]["by_kind"]["pids_limit"].as_u64() >= Some(1),
        "no pids_limit event: {v}"
    );

    // CPU time from the unified cpu.stat: TO after about one second of spinning.
    let v = verdict("cputime");
    assert_eq!(v["status"], "TO", "{v}");
    assert!(v["cpu_time_s"].as_f64().unwrap() >= 0.9, "{v}");
    assert_eq!(case("cputime").exit, 124);

    // The limit files as the kernel holds them while the sandbox runs, and the CPU quota
    // throttling a spinner.
    let f = fields(&case("files").out);
    assert_eq!(f.get("memory.max"), Some(&"50331648"), "{f:?}");
    assert_eq!(f.get("memory.swap.max"), Some(&"0"), "{f:?}");
    assert_eq!(f.get("pids.max"), Some(&"20"), "{f:?}");
    assert_eq!(f.get("cpu.max"), Some(&"25000,100000"), "{f:?}");
    let throttled: u64 = f
        .get("nr_throttled")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "cpu.max did not throttle: {f:?}");

    // Devices: the BPF program refuses a node whose numbers are not on the allowlist (EPERM),
    // grants /dev/null, and grants the same node once its numbers are listed.
    assert!(
        case("device_refused")
            .out
            .starts_with("DENIED /dev/full: Operation not permitted"),
        "{:?}",
        case("device_refused")
    );
    assert!(
        case("device_null").out.starts_with("ALLOWED /dev/null"),
        "{:?}",
        case("device_null")
    );
    assert!(
        case("device_granted").out.starts_with("ALLOWED /dev/full"),
        "{:?}",
        case("device_granted")
    );

    // cgroup.freeze for the forensic response, cgroup.kill after it.
    let v = verdict("forensic");
    assert_eq!(v["status"], "SV", "{v}");
    assert!(v["evidence"].is_string(), "no evidence bundle: {v}");
    assert!(!case("forensic").out.contains("after-violation"));

    // Exec-time integrity on 6.1 (no vm.memfd_noexec before 6.3, no PR_SET_MDWE): a verified
    // run refuses with exit 125 naming the missing layer; with --allow-weaker-integrity it may
    // run or refuse with 125, never anything else.
    assert_eq!(case("integrity").exit, 125, "{:?}", case("integrity"));
    let refusal = log
        .lines()
        .find(|l| l.starts_with("WTERR integrity "))
        .unwrap_or_default();
    assert!(refusal.contains("memfd-noexec"), "{refusal}");
    let weaker = case("integrity_weaker");
    assert!(
        matches!(weaker.exit, 0 | 125),
        "--allow-weaker-integrity on 6.1: {weaker:?}"
    );

    // Nothing left behind: no cgroup, no registry entry.
    let f = fields(&case("leftovers").out);
    assert_eq!(
        (f.get("cgroups"), f.get("registry")),
        (Some(&"0"), Some(&"0")),
        "{f:?}"
    );
}
