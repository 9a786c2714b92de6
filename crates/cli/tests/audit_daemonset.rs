//! The shipped DaemonSet, linted with watertight's own Kubernetes audit. It needs host access by
//! design and accepts exactly the findings that access produces, each with a justification, in
//! its `watertight.dev/ignore` annotation; this pins both sets, so any new finding (or a
//! forgotten acceptance) fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use watertight_testkit::finding_keys as keys;

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/watertight-audit-daemonset.yaml")
}

/// `audit k8s` on the manifest: (exit code, JSON report).
fn audit(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    watertight_testkit::audit_k8s_json(&manifest(), extra)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const ACCEPTED: [&str; 6] = [
    "high pss/hostNamespaces",
    "medium sensitive-host-mount",
    "high pss/capabilities_baseline",
    "high pss/hostPathVolumes",
    "high shared-host-namespace[pid]",
    "high dangerous-capabilities",
];

const REPORTED: [&str; 2] = ["low run-as-root", "low shared-host-namespace[user]"];

#[test]
fn daemonset_accepts_exactly_its_documented_host_access_and_nothing_at_medium_is_left() {
    // --fail-on medium: nothing that counts is at medium or above.
    let (code, report) = audit(&["--fail-on", "medium"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(keys(&report["findings"]), set(&REPORTED), "{report:#}");
    assert_eq!(keys(&report["accepted"]), set(&ACCEPTED), "{report:#}");
    for a in report["accepted"].as_array().unwrap() {
        let why = a["justification"].as_str().unwrap_or_default();
        assert!(why.len() > 20, "a real justification: {a:#}");
        assert_eq!(
            a["workload"],
            "watertight-system/DaemonSet/watertight-audit"
        );
    }
    assert!(report.get("errors").is_none(), "{report:#}");
    // One DaemonSet audited (the Namespace document is not a workload). Its Pod Security verdict
    // is upstream's, whatever it accepts: denied at baseline by exactly the three checks.
    assert_eq!(report["workloads"], 1);
    let pss = report["pss"].as_array().unwrap();
    assert_eq!(pss.len(), 1);
    assert_eq!(pss[0]["kind"], "DaemonSet");
    assert_eq!(pss[0]["allowed"], false);
    let checks: Vec<&str> = pss[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        vec!["capabilities_baseline", "hostNamespaces", "hostPathVolumes"]
    );
}

#[test]
fn ignoring_the_acceptances_counts_every_finding_again() {
    let (code, report) = audit(&["--ignore-accepted"]);
    assert_eq!(code, Some(1), "high findings count again: {report:#}");
    let all: BTreeSet<String> = ACCEPTED
        .iter()
        .chain(&REPORTED)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(keys(&report["findings"]), all);
    assert!(report.get("accepted").is_none(), "{report:#}");
}

#[test]
fn the_table_lists_accepted_findings_with_their_reasons() {
    let out = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(["audit", "k8s"])
        .arg(manifest())
        .output()
        .expect("run watertight");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("ACCEPTED HIGH "))
            .count(),
        5,
        "{text}"
    );
    assert!(
        text.contains("ACCEPTED HIGH dangerous-capabilities ") && text.contains("CAP_SYS_PTRACE"),
        "{text}"
    );
    assert!(
        text.contains("2 finding(s): 0 critical, 0 high, 0 medium, 2 low, 0 info; 6 accepted"),
        "{text}"
    );
}

#[test]
fn a_mistyped_acceptance_accepts_nothing_and_is_named() {
    let text = std::fs::read_to_string(manifest()).unwrap();
    let typo = "shared-host-namespace[pid]:";
    assert!(text.contains(typo), "the manifest accepts {typo}");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ds.yaml");
    std::fs::write(&copy, text.replacen(typo, "shared-host-namespace[pdi]:", 1)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(["audit", "k8s", "--format", "json"])
        .arg(&copy)
        .output()
        .expect("run watertight");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(keys(&report["findings"]).contains("high shared-host-namespace[pid]"));
    assert_eq!(keys(&report["accepted"]).len(), 5, "{report:#}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown namespace kind \"pdi\"") && stderr.contains("line 2"),
        "{stderr}"
    );
}
