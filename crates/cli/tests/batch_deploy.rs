//! The shipped batch Indexed Job (deploy/batch/indexed-job.yaml), linted with watertight's own
//! Kubernetes audit: the sandbox needs a privileged container by design, and the manifest accepts
//! exactly the findings that brings, each with a reason; this pins the set, so a new finding (or
//! a forgotten acceptance) fails here. Like tests/audit_daemonset.rs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use watertight_testkit::finding_keys as keys;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/batch")
}

/// `audit k8s` on the manifest: (exit code, JSON report).
fn audit(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    watertight_testkit::audit_k8s_json(&dir(), extra)
}

const ACCEPTED: [&str; 4] = [
    "critical privileged",
    "high pss/privileged",
    "low run-as-root",
    "low shared-host-namespace[user]",
];

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_indexed_job_accepts_exactly_its_privilege_and_nothing_else_is_found() {
    let (code, report) = audit(&["--fail-on", "low"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(keys(&report["findings"]), set(&[]), "{report:#}");
    assert_eq!(keys(&report["accepted"]), set(&ACCEPTED), "{report:#}");
    for a in report["accepted"].as_array().unwrap() {
        assert!(
            a["justification"].as_str().unwrap_or_default().len() > 20,
            "a real justification: {a:#}"
        );
        assert_eq!(a["workload"], "watertight-batch/Job/watertight-batch");
    }
    assert!(report.get("errors").is_none(), "{report:#}");
    assert_eq!(report["workloads"], 1);
    let pss = report["pss"].as_array().unwrap();
    assert_eq!(
        pss[0]["allowed"], false,
        "upstream's verdict, whatever is accepted"
    );
}

#[test]
fn ignoring_the_acceptances_counts_them_again() {
    let (code, report) = audit(&["--ignore-accepted"]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(keys(&report["findings"]), set(&ACCEPTED), "{report:#}");
}

#[test]
fn each_pod_runs_its_shard_into_its_own_part() {
    let text = std::fs::read_to_string(dir().join("indexed-job.yaml")).unwrap();
    assert!(text.contains("completionMode: Indexed"));
    assert!(text.contains("completions: 4") && text.contains("--shard=$(JOB_COMPLETION_INDEX)/4"));
    assert!(text.contains("--results=/results/part-$(JOB_COMPLETION_INDEX).jsonl"));
}
