//! The BPF gatekeeper's deployment (deploy/bpf-gatekeeper/): the DaemonSet is clean under
//! watertight's own Kubernetes audit, accepting exactly the findings its access produces, each
//! with a reason, and it is the only container that adds CAP_BPF/CAP_PERFMON; systemd reads the
//! unit and rates it; and the capabilities both grant (CAP_BPF and CAP_PERFMON, nothing else)
//! are measured against the kernel: they load and attach an observe-only tracing program, and
//! either one alone does not.

#[path = "common/bpf.rs"]
mod bpf_objects;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use watertight_testkit::finding_keys as keys;
use watertight_testkit::{
    host_lacks, require, require_root, require_tools, stderr, stdout, watertight_bin,
};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/bpf-gatekeeper")
        .join(file)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `audit k8s` on the manifest: (exit code, JSON report).
fn audit_k8s(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    watertight_testkit::audit_k8s_json(&deploy("watertight-bpf-gatekeeper.yaml"), extra)
}

const ACCEPTED: [&str; 4] = [
    "high dangerous-capabilities",
    "high pss/capabilities_baseline",
    "high pss/hostPathVolumes",
    "medium sensitive-host-mount",
];

const REPORTED: [&str; 2] = ["low run-as-root", "low shared-host-namespace[user]"];

#[test]
fn daemonset_accepts_exactly_its_documented_access_and_nothing_at_medium_is_left() {
    let (code, report) = audit_k8s(&["--fail-on", "medium"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(keys(&report["findings"]), set(&REPORTED), "{report:#}");
    assert_eq!(keys(&report["accepted"]), set(&ACCEPTED), "{report:#}");
    for a in report["accepted"].as_array().unwrap() {
        assert!(
            a["justification"].as_str().unwrap_or_default().len() > 40,
            "a real justification: {a:#}"
        );
        assert_eq!(
            a["workload"],
            "watertight-system/DaemonSet/watertight-bpf-gatekeeper"
        );
    }
    // The capabilities accepted are exactly CAP_BPF and CAP_PERFMON.
    let caps = report["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "dangerous-capabilities")
        .unwrap();
    assert_eq!(caps["paths"], serde_json::json!(["CAP_BPF", "CAP_PERFMON"]));
    assert!(report.get("errors").is_none(), "{report:#}");
    assert_eq!(report["workloads"], 1, "one workload: the DaemonSet");

    // The acceptances are what makes it clean: ignoring them, the high findings count again.
    let (code, report) = audit_k8s(&["--ignore-accepted"]);
    assert_eq!(code, Some(1), "{report:#}");
    let all: BTreeSet<String> = ACCEPTED
        .iter()
        .chain(&REPORTED)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(keys(&report["findings"]), all);
}

#[test]
fn only_the_gatekeeper_adds_capabilities_and_its_arguments_are_the_units() {
    let yaml = std::fs::read_to_string(deploy("watertight-bpf-gatekeeper.yaml")).unwrap();
    let adds: Vec<&str> = yaml
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("add:"))
        .collect();
    assert_eq!(adds, vec![r#"add: ["BPF", "PERFMON"]"#], "{yaml}");
    assert_eq!(yaml.matches("containers:").count(), 1, "one pod template");
    assert_eq!(
        yaml.matches("- name: gatekeeper").count(),
        1,
        "one container"
    );
    assert!(!yaml.contains("initContainers") && !yaml.contains("ephemeralContainers"));
    let unit = std::fs::read_to_string(deploy("watertight-bpf-gatekeeper.service")).unwrap();
    let exec = value(&unit, "ExecStart");
    assert_eq!(
        exec,
        "/usr/bin/watertight bpf load --hold --pubkey /etc/watertight/bpf/signer.pub /etc/watertight/bpf.d"
    );
    for arg in [
        "- bpf",
        "- load",
        "- --hold",
        "- --pubkey=/etc/watertight/bpf/signer.pub",
        "- /etc/watertight/bpf.d",
    ] {
        assert!(yaml.contains(arg), "{arg}");
    }
}

/// A `KEY=value` of the unit (the first).
fn value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_string()
}

#[test]
fn systemd_reads_the_unit_and_rates_its_exposure_low() {
    let test = "systemd_reads_the_unit_and_rates_its_exposure_low";
    if !require(
        test,
        (!watertight_testkit::have_tool("systemd-analyze"))
            .then(|| "needs systemd-analyze (the systemd package)".into()),
    ) {
        return;
    }
    let unit = std::fs::read_to_string(deploy("watertight-bpf-gatekeeper.service")).unwrap();
    assert_eq!(value(&unit, "CapabilityBoundingSet"), "CAP_BPF CAP_PERFMON");
    assert_eq!(value(&unit, "AmbientCapabilities"), "");
    assert_eq!(value(&unit, "NoNewPrivileges"), "yes");
    assert_eq!(value(&unit, "ProtectSystem"), "strict");
    assert_eq!(value(&unit, "ReadWritePaths"), "/run/watertight/bpf");
    // verify checks ExecStart's binary exists: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watertight-bpf-gatekeeper.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/bin/watertight",
            &watertight_bin().display().to_string(),
        ),
    )
    .unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(stderr(&verify).trim().is_empty(), "{}", stderr(&verify));
    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&path)
        .output()
        .unwrap();
    let text = stdout(&security);
    let exposure: f64 = text
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}{}", stderr(&security)));
    // systemd's scale: 0-10, below 2.0 is "OK"; the audit unit's confinement is the reference.
    assert!(exposure < 2.0, "exposure {exposure}: {text}");
}

/// The holder through `setpriv` with only `caps` (names without CAP_) in its bounding set, as
/// the unit (bounding set, no_new_privs) and the DaemonSet (drop ALL, add) grant them.
fn with_caps(built: &bpf_objects::Built, prog: &str, caps: &[&str]) -> Result<(), String> {
    let bounding = format!(
        "--bounding-set=-all{}",
        caps.iter().map(|c| format!(",+{c}")).collect::<String>()
    );
    bpf_objects::load_once(
        built,
        prog,
        true,
        &[
            "setpriv",
            &bounding,
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
        ],
    )
}

#[test]
fn cap_bpf_and_cap_perfmon_load_and_attach_an_observer_and_neither_does_alone() {
    let test = "cap_bpf_and_cap_perfmon_load_and_attach_an_observer";
    if !require_root(test) || !require_tools(test, &["setpriv"], "util-linux") {
        return;
    }
    let Some(built) = bpf_objects::build(test) else {
        return;
    };
    let unit = std::fs::read_to_string(deploy("watertight-bpf-gatekeeper.service")).unwrap();
    let granted: Vec<String> = value(&unit, "CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_lowercase())
        .collect();
    let granted: Vec<&str> = granted.iter().map(String::as_str).collect();
    assert_eq!(granted, ["bpf", "perfmon"]);
    with_caps(&built, "wt_test_rawtp", &granted).expect("the unit's capabilities suffice");
    for alone in [["bpf"], ["perfmon"]] {
        let refused = with_caps(&built, "wt_test_rawtp", &alone).unwrap_err();
        assert_eq!(refused, "load: Operation not permitted", "{alone:?}");
    }
    // A tracepoint program's attach reads the tracepoint's id in tracefs.
    if Path::new("/sys/kernel/tracing/events/sched").is_dir() {
        with_caps(&built, "wt_test_tp", &granted).expect("the unit's capabilities suffice");
    } else {
        host_lacks(
            "cap_bpf_and_cap_perfmon_attach_a_tracepoint",
            "tracefs is not mounted at /sys/kernel/tracing (measured by hand: docs/bpf-gatekeeper.md)",
        );
    }
}
