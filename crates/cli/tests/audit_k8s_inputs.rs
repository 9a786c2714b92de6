//! `watertight audit k8s` on the inputs CI gives it, through the binary: kubectl's YAML (an
//! unquoted octal mode no longer drops calico's privileged DaemonSet, so `--fail-on high`
//! fails), standard input (`-`), a repository's other files skipped with one summary line,
//! `--exclude`, typos as warnings, and manifests that cannot be evaluated failing the run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use watertight_testkit::{stderr, stdout_json as json};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audit/tests/fixtures/kubectl-yaml")
        .join(rel)
}

fn watertight(args: &[&str], dir: Option<&Path>, stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_watertight"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().expect("run watertight");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn rules(report: &serde_json::Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["container"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

#[test]
fn calico_with_an_octal_mode_beside_a_clean_deployment_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["calico-node.yaml", "clean-deployment.yaml"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().to_str().unwrap();
    let out = watertight(
        &[
            "audit",
            "k8s",
            "--fail-on",
            "high",
            "--format",
            "json",
            path,
        ],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "nothing dropped, nothing to say");
    let report = json(&out);
    assert_eq!(report["workloads"], 2);
    assert!(report.get("errors").is_none(), "{report}");
    let rules = rules(&report);
    for want in [
        ("privileged", "calico-node"),
        ("mount-propagation", "calico-node"),
        ("pss/privileged", "-"),
    ] {
        assert!(
            rules.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {rules:?}"
        );
    }
    // The clean Deployment alone passes: the failure is calico's.
    let clean = fixture("clean-deployment.yaml");
    let out = watertight(
        &["audit", "k8s", "--fail-on", "high", clean.to_str().unwrap()],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn helm_output_on_standard_input() {
    let text = std::fs::read(fixture("rendered/helm-template.yaml")).unwrap();
    let out = watertight(
        &["audit", "k8s", "--format", "json", "-"],
        None,
        Some(&text),
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["workloads"], 1);
    assert_eq!(report["pss"][0]["file"], "<stdin>");
    assert_eq!(report["pss"][0]["kind"], "DaemonSet");
    let rules = rules(&report);
    assert!(
        rules.contains(&("sensitive-host-mount".into(), "node-agent".into())),
        "{rules:?}"
    );

    // `-` twice cannot mean anything.
    let out = watertight(&["audit", "k8s", "-", "-"], None, Some(&text));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("`-` (standard input) is given twice"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_repository_s_other_files_make_one_summary_line() {
    let repo = fixture("repo");
    let out = watertight(
        &["audit", "k8s", "--exclude", "deploy/dev/**", "."],
        Some(&repo),
        None,
    );
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "watertight: skipped 5 files that are not Kubernetes objects (e.g. .github/workflows/ci.yml)",
            "watertight: skipped 1 unrendered template (e.g. chart/templates/deployment.yaml): render it first, e.g. `helm template CHART | watertight audit k8s -`",
        ],
        "{err}"
    );
    // Without --exclude the developer's privileged debug pod is found.
    let out = watertight(
        &["audit", "k8s", "--format", "json", "."],
        Some(&repo),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["workloads"], 2);
    let skipped = report["skipped_files"].as_array().unwrap();
    assert_eq!(skipped.len(), 6, "{skipped:?}");
    assert_eq!(skipped[0]["reason"], "not-kubernetes");

    let out = watertight(
        &["audit", "k8s", "--exclude", "a[b", "."],
        Some(&repo),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--exclude \"a[b\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_typo_is_a_warning_and_does_not_fail_the_run() {
    let typo = fixture("typo.yaml");
    let out = watertight(
        &["audit", "k8s", "--format", "json", typo.to_str().unwrap()],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("watertight: warning: ")
            && err.contains("typo.yaml (document 0): ")
            && err.contains("priviliged (did you mean `privileged`?"),
        "{err}"
    );
    let report = json(&out);
    assert_eq!(report["warnings"].as_array().unwrap().len(), 1);
    let out = watertight(
        &["audit", "k8s", "--format", "sarif", typo.to_str().unwrap()],
        None,
        None,
    );
    let sarif = json(&out);
    let notes = &sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"];
    assert_eq!(notes[0]["level"], "warning", "{notes}");
}

#[test]
fn a_manifest_that_cannot_be_evaluated_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("clean-deployment.yaml"),
        dir.path().join("clean.yaml"),
    )
    .unwrap();
    std::fs::copy(
        fixture("broken/security-schema-error.yaml"),
        dir.path().join("unclear.yaml"),
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let out = watertight(&["audit", "k8s", "--fail-on", "critical", path], None, None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("unclear.yaml (document 0): ")
            && err.contains("spec.containers[0].securityContext.privileged"),
        "{err}"
    );
    let out = watertight(&["audit", "k8s", "--fail-on", "none", path], None, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_whole_corpus_is_read() {
    // Every fixture but the deliberately broken one: nothing is an error.
    let out = watertight(
        &[
            "audit",
            "k8s",
            "--format",
            "json",
            "--exclude",
            "broken",
            fixture("").to_str().unwrap(),
        ],
        None,
        None,
    );
    let report = json(&out);
    assert!(report.get("errors").is_none(), "{report}");
    assert_eq!(report["workloads"], 12, "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
}
