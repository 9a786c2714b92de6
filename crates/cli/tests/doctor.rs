//! `watertight doctor` end to end through the binary: its JSON lists every capability once with
//! a status, a detail and what it enables; the exit code follows what the default profile
//! needs; the cgroup mode it reports is the one /proc/self/mountinfo shows; seccomp user
//! notification is there on this machine kind; as root every probe runs and leaves nothing
//! behind (no nftables table, no network namespace); without root it still answers, with the
//! root-only probes unknown. The mapping from facts to checks is unit-tested on described hosts
//! in `src/commands/doctor/assess.rs`.

use std::os::unix::process::CommandExt;
use std::process::Output;

use serde_json::Value;
use watertight_testkit::{require_root, stderr, stdout, watertight};

/// Every capability doctor reports, in its order.
const NAMES: [&str; 20] = [
    "root",
    "namespaces",
    "user-namespaces",
    "cgroups",
    "cgroup-memory",
    "cgroup-pids",
    "cgroup-devices",
    "cgroup-cpu",
    "cgroup-cpu-time",
    "cgroup-freezer",
    "seccomp-user-notif",
    "landlock",
    "bpf-exec-gate",
    "memfd-noexec",
    "bpf-lsm",
    "bpf-token",
    "nftables-bridge",
    "runsc",
    "qemu",
    "kvm",
];

fn doctor_json(cmd: &mut std::process::Command) -> (Output, Value) {
    let out = cmd.args(["doctor", "--format", "json"]).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor's JSON: {e}\n{}{}", stdout(&out), stderr(&out)));
    (out, json)
}

fn capability<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no capability {name}"))
}

/// The JSON's own consistency: every name once, in order, each with its fields; the exit code
/// and `default_profile_missing` agree with the statuses.
fn check_shape(out: &Output, json: &Value) {
    let caps = json["capabilities"].as_array().unwrap();
    let names: Vec<&str> = caps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, NAMES);
    let mut blocking = Vec::new();
    for c in caps {
        let status = c["status"].as_str().unwrap();
        assert!(
            ["ok", "degraded", "missing", "unknown"].contains(&status),
            "{c}"
        );
        for field in ["detail", "enables", "without"] {
            assert!(!c[field].as_str().unwrap().is_empty(), "{field} of {c}");
        }
        if c["needed_by_default"].as_bool().unwrap() && (status == "missing" || status == "unknown")
        {
            blocking.push(c["name"].as_str().unwrap());
        }
    }
    let missing: Vec<&str> = json["default_profile_missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(missing, blocking);
    assert_eq!(json["default_profile_ready"], blocking.is_empty());
    assert_eq!(
        out.status.code(),
        Some(if blocking.is_empty() { 0 } else { 1 }),
        "{}",
        stderr(out)
    );
    if !blocking.is_empty() {
        assert!(
            stderr(out).contains(&blocking.join(", ")),
            "{}",
            stderr(out)
        );
    }
}

#[test]
fn json_lists_every_capability_once_and_the_exit_code_follows_the_default_profile() {
    let (out, json) = doctor_json(&mut watertight());
    check_shape(&out, &json);
    assert_eq!(json["command"], "doctor");
}

/// The cgroup mode as /proc/self/mountinfo shows it, read here independently of the cgroups
/// crate: a cgroup2 mount, v1 hierarchies with controllers, or both.
fn mode_from_mountinfo() -> &'static str {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let (mut v2, mut v1) = (false, false);
    for line in text.lines() {
        let after = line.split(" - ").nth(1).unwrap_or("");
        let mut fields = after.split(' ');
        match (fields.next(), fields.nth(1)) {
            (Some("cgroup2"), _) => v2 = true,
            (Some("cgroup"), Some(options)) => {
                v1 |= options
                    .split(',')
                    .any(|o| !o.starts_with("name=") && !matches!(o, "rw" | "ro"));
            }
            _ => {}
        }
    }
    match (v1, v2) {
        (true, true) => "hybrid",
        (false, true) => "v2",
        (true, false) => "v1",
        (false, false) => panic!("no cgroup mount in /proc/self/mountinfo"),
    }
}

#[test]
fn the_cgroup_mode_is_the_one_mountinfo_shows() {
    let expected = mode_from_mountinfo();
    // This machine kind is hybrid; Debian's default is pure v2.
    assert!(matches!(expected, "hybrid" | "v2"), "{expected}");
    let (_, json) = doctor_json(&mut watertight());
    let cgroups = capability(&json, "cgroups");
    assert_eq!(cgroups["status"], "ok");
    let detail = cgroups["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("{expected};")), "{detail}");
}

#[test]
fn seccomp_user_notification_is_ok_here() {
    let (_, json) = doctor_json(&mut watertight());
    let s = capability(&json, "seccomp-user-notif");
    assert_eq!(s["status"], "ok", "{s}");
    assert!(s["detail"].as_str().unwrap().contains("user_notif"));
}

#[test]
fn text_goes_through_the_sink_and_bad_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doctor.txt");
    let out = watertight()
        .args(["doctor", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "the report went to the file");
    let text = std::fs::read_to_string(&file).unwrap();
    for name in NAMES {
        assert!(
            text.lines().any(
                |l| l.split_whitespace().nth(1).map(|n| n.trim_end_matches('*')) == Some(name)
            ),
            "{name} in:\n{text}"
        );
    }
    assert!(
        text.contains("watertight run's default profile: "),
        "{text}"
    );
    assert!(matches!(out.status.code(), Some(0 | 1)));

    let bad = watertight()
        .args(["doctor", "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("expected text or json"),
        "{}",
        stderr(&bad)
    );
    let unwritable = watertight()
        .args(["doctor", "-o", "/nonexistent-wt/doctor.json"])
        .output()
        .unwrap();
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(stderr(&unwritable).contains("--output /nonexistent-wt/doctor.json"));
}

fn nft_tables() -> String {
    std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|o| stdout(&o))
        .unwrap_or_default()
}

#[test]
fn as_root_every_probe_runs_and_nothing_is_left_behind() {
    if !require_root("doctor: as root") {
        return;
    }
    let (out, json) = doctor_json(&mut watertight());
    check_shape(&out, &json);
    assert_eq!(json["euid"], 0);
    // This machine kind has everything the default profile needs.
    assert_eq!(json["default_profile_ready"], true, "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(0));
    for c in json["capabilities"].as_array().unwrap() {
        assert_ne!(c["status"], "unknown", "as root every probe answers: {c}");
    }
    assert_eq!(capability(&json, "user-namespaces")["status"], "ok");
    assert_eq!(capability(&json, "bpf-token")["status"], "ok");
    // The probe's table lives in a scratch network namespace that ends with the probe.
    assert!(
        !nft_tables().contains("wtprobe0"),
        "the nftables probe left its table in the host's namespace"
    );
}

#[test]
fn without_root_it_answers_and_says_what_it_could_not_probe() {
    if !require_root("doctor: dropping to an unprivileged uid") {
        return;
    }
    let mut cmd = watertight();
    cmd.uid(65534).gid(65534).current_dir("/");
    let (out, json) = doctor_json(&mut cmd);
    check_shape(&out, &json);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(json["euid"], 65534);
    assert_eq!(out.status.code(), Some(1), "run needs root");
    assert_eq!(capability(&json, "root")["status"], "missing");
    let gate = capability(&json, "bpf-exec-gate");
    assert_eq!(gate["status"], "unknown", "{gate}");
    assert!(gate["detail"].as_str().unwrap().contains("needs root"));
    let nft = capability(&json, "nftables-bridge");
    assert!(
        nft["status"] == "unknown" || nft["detail"] == "nft is not on PATH",
        "{nft}"
    );
    // Probed as the user itself: the same answer an unprivileged slot uid gets.
    assert_eq!(capability(&json, "user-namespaces")["status"], "ok");
    assert!(
        stderr(&out).contains("run doctor as root"),
        "{}",
        stderr(&out)
    );
}
