//! The shipped DaemonSet, linted with watertight's own Kubernetes audit. It needs host access by
//! design; this pins exactly which findings that access produces, so any new one fails here.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

#[test]
fn daemonset_findings_are_exactly_the_documented_host_access() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let manifest = root.join("deploy/watertight-audit-daemonset.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args([
            "audit",
            "k8s",
            "--format",
            "json",
            "--pss-level",
            "baseline",
            "--fail-on",
            "critical",
        ])
        .arg(&manifest)
        .output()
        .expect("run watertight");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let findings: BTreeSet<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let ns = f["namespace"]
                .as_str()
                .map(|n| format!("[{n}]"))
                .unwrap_or_default();
            format!(
                "{} {}{ns}",
                f["severity"].as_str().unwrap(),
                f["rule"].as_str().unwrap()
            )
        })
        .collect();
    let expected: BTreeSet<String> = [
        "high pss/hostNamespaces",
        "high pss/capabilities_baseline",
        "high pss/hostPathVolumes",
        "high shared-host-namespace[pid]",
        "high dangerous-capabilities",
        "low run-as-root",
        "low shared-host-namespace[user]",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(findings, expected);
    // One DaemonSet audited (the Namespace document is not a workload), denied at baseline by
    // exactly the three upstream checks.
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
