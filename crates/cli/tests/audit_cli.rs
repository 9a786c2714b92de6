//! `watertight audit ...` end to end through the binary: formats, exit codes, per-file errors,
//! PSS entries on the upstream fixtures, fleet merging and a live host audit of one process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use watertight_testkit::stdout_json as json;

fn watertight(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(args)
        .output()
        .expect("run watertight")
}

fn audit_fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audit/tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

/// The upstream Pod Security fixtures in ../shared (a SKIP without them; a failure in CI).
fn psa_dir() -> Option<PathBuf> {
    watertight_testkit::require_shared(
        &watertight_testkit::this_test(),
        "conformance/psa/MANIFEST.tsv",
    )
    .map(|manifest| manifest.parent().unwrap().to_path_buf())
}

#[test]
fn k8s_reports_pss_entries_per_object_with_upstream_check_ids() {
    let Some(psa) = psa_dir() else { return };
    let fail = psa.join("baseline/v1.0/fail/hostnamespaces0.yaml");
    let pass = psa.join("restricted/v1.30/pass/base.yaml");
    let restricted_fail = psa.join("restricted/v1.30/fail/runasnonroot2.yaml");
    let out = watertight(&[
        "audit",
        "k8s",
        "--format",
        "json",
        "--pss-level",
        "restricted",
        "--pss-version",
        "v1.30",
        fail.to_str().unwrap(),
        pass.to_str().unwrap(),
        restricted_fail.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let pss = report["pss"].as_array().unwrap();
    assert_eq!(pss.len(), 3);
    for entry in pss {
        assert_eq!(entry["level"], "restricted");
        assert_eq!(entry["version"], "v1.30");
    }
    let by_name = |name: &str| pss.iter().find(|e| e["name"] == name).unwrap();
    let hostns = by_name("hostnamespaces0");
    assert_eq!(hostns["allowed"], false);
    let v = hostns["violations"].as_array().unwrap();
    let host = v.iter().find(|v| v["check"] == "hostNamespaces").unwrap();
    assert_eq!(host["reason"], "host namespaces");
    assert_eq!(by_name("base")["allowed"], true);
    assert_eq!(by_name("base")["violations"].as_array().unwrap().len(), 0);
    let non_root = by_name("runasnonroot2");
    assert_eq!(non_root["allowed"], false);
    assert!(non_root["violations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["check"] == "runAsNonRoot"));
    // Findings mirror the violations, and the isolation rules add their own ids.
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"pss/hostNamespaces"));
    assert!(rules.contains(&"shared-host-namespace"));
    // The same object allowed at privileged: exit 0 below the threshold.
    let out = watertight(&[
        "audit",
        "k8s",
        "--pss-level",
        "privileged",
        "--fail-on",
        "critical",
        pass.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn k8s_mixed_directory_audits_good_files_and_names_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      hostNetwork: true\n      containers:\n      - name: web\n        image: nginx\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("weird.yaml"),
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n",
    )
    .unwrap();
    let out = watertight(&[
        "audit",
        "k8s",
        "--format",
        "json",
        dir.path().to_str().unwrap(),
    ]);
    // The good file is audited, but a manifest that could not be evaluated may hide anything:
    // the run fails as an input error (2) whatever the threshold, unless `--fail-on none`.
    assert_eq!(
        out.status.code(),
        Some(2),
        "an object could not be evaluated"
    );
    let report = json(&out);
    assert_eq!(report["workloads"], 1);
    assert_eq!(report["unevaluated"], 1);
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["source"].as_str().unwrap().ends_with("broken.yaml")),
        "{errors:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
    assert!(report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["namespace"] == "net"));
    let out = watertight(&[
        "audit",
        "k8s",
        "--fail-on",
        "none",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--fail-on none never fails once read"
    );
    // Only unreadable input: exit 2.
    let only_bad = dir.path().join("broken.yaml");
    let out = watertight(&["audit", "k8s", only_bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn docker_formats_and_exit_codes() {
    let leaky = audit_fixture("docker/leaky.json");
    let hardened = audit_fixture("docker/hardened.json");
    // Table (default) and the threshold.
    let out = watertight(&["audit", "docker", &leaky]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SEVERITY"));
    let out = watertight(&["audit", "docker", "--fail-on", "none", &leaky]);
    assert_eq!(out.status.code(), Some(0));
    let out = watertight(&["audit", "docker", &hardened]);
    assert_eq!(out.status.code(), Some(0), "only a low finding");
    let out = watertight(&["audit", "docker", "--fail-on", "low", &hardened]);
    assert_eq!(out.status.code(), Some(1));
    // SARIF 2.1.0.
    let out = watertight(&["audit", "docker", "--format", "sarif", &leaky]);
    let sarif = json(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "privileged" && r["level"] == "error"));
    // Prometheus text.
    let out = watertight(&["audit", "docker", "--format", "prometheus", &leaky]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# TYPE watertight_audit_findings_total gauge"));
    assert!(
        text.contains(
            "watertight_audit_findings_total{command=\"docker\",severity=\"critical\"} 2"
        ),
        "{text}"
    );
    // Usage and input errors: 2.
    let out = watertight(&["audit", "docker", "/nonexistent/inspect.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/inspect.json"));
    let out = watertight(&["audit", "docker", "--format", "xml", &leaky]);
    assert_eq!(out.status.code(), Some(2));
    let out = watertight(&["audit", "docker", "--fail-on", "urgent", &leaky]);
    assert_eq!(out.status.code(), Some(2));
    // One bad file among good ones: audited, error named, findings decide the code.
    let bad = audit_fixture("docker/truncated.json");
    let out = watertight(&["audit", "docker", "--format", "json", &hardened, &bad]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["errors"].as_array().unwrap().len(), 1);
}

#[test]
fn oci_bundle_directory_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("oci.prom");
    let out = watertight(&[
        "audit",
        "oci",
        "--format",
        "prometheus",
        "--fail-on",
        "none",
        "-o",
        target.to_str().unwrap(),
        &audit_fixture("oci/runc-default"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.contains("rule=\"seccomp-disabled\""), "{text}");
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn fleet_merges_node_reports_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let leaky = audit_fixture("docker/leaky.json");
    let hardened = audit_fixture("docker/hardened.json");
    let mut files = Vec::new();
    for (i, input) in [&leaky, &hardened, &hardened].iter().enumerate() {
        let out = watertight(&["audit", "docker", "--format", "json", input]);
        let mut report = json(&out);
        report["node"] = serde_json::json!(format!("node{i}"));
        let path = dir.path().join(format!("node{i}.json"));
        std::fs::write(&path, report.to_string()).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["audit", "fleet", "--format", "json"];
    args.extend(files.iter().map(String::as_str));
    let out = watertight(&args);
    assert_eq!(out.status.code(), Some(1));
    let fleet = json(&out);
    assert_eq!(fleet["fleet"]["nodes_total"], 3);
    let net = fleet["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "shared-host-namespace" && f["namespace"] == "net")
        .unwrap();
    assert!(
        net["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 3 nodes run a workload sharing the host network namespace"),
        "{net}"
    );
    let user = fleet["fleet"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "shared-host-namespace" && r["namespace"] == "user")
        .unwrap();
    assert_eq!(user["nodes_affected"], 3);
    for format in ["table", "sarif", "prometheus"] {
        let mut args = vec!["audit", "fleet", "--format", format, "--fail-on", "none"];
        args.extend(files.iter().map(String::as_str));
        let out = watertight(&args);
        assert_eq!(out.status.code(), Some(0), "{format}");
        assert!(!out.stdout.is_empty());
    }
    let out = watertight(&[
        "audit",
        "fleet",
        "--format",
        "prometheus",
        &files[0],
        &files[1],
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("watertight_fleet_nodes 2"), "{text}");
    assert!(text.contains("watertight_fleet_nodes_affected{rule=\"privileged\",namespace=\"\",severity=\"critical\"} 1"), "{text}");
    // Not a report: exit 2 with the file named.
    let out = watertight(&["audit", "fleet", &leaky]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a watertight JSON report"));
}

#[test]
fn host_audit_of_one_unshared_process() {
    if !watertight_testkit::require_root("host_audit_of_one_unshared_process") {
        return;
    }
    // A process with its own network namespace that shares everything else with this test.
    let mut child = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (util-linux)");
    let pid = child.id();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // Wait for unshare to exec sleep.
    for _ in 0..500 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            == "sleep"
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if let Ok(Some(status)) = child.try_wait() {
        panic!("unshare exited: {status}");
    }
    let guard = Kill(child);
    let me = std::process::id().to_string();
    let out = watertight(&[
        "audit",
        "host",
        "--format",
        "json",
        "--reference-pid",
        &me,
        "--pid",
        &pid.to_string(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["command"], "host");
    assert!(report["node"].is_string());
    let findings = report["findings"].as_array().unwrap();
    let shared: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "shared-host-namespace")
        .map(|f| f["namespace"].as_str().unwrap())
        .collect();
    assert!(
        shared.contains(&"pid") && shared.contains(&"mnt"),
        "{shared:?}"
    );
    assert!(!shared.contains(&"net"), "{shared:?}");
    for f in findings {
        assert_eq!(f["pid"], pid, "{f}");
        assert!(f["workload"].is_string());
    }
    drop(guard);
}

/// A child killed and reaped on drop (by its pid, never by name).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The auditor is not a workload: run with namespaces of its own (as a confined service may),
/// it does not report itself, while a process beside it in the same namespaces is reported.
#[test]
fn host_audit_never_reports_the_auditor_itself() {
    if !watertight_testkit::require_root("host_audit_never_reports_the_auditor_itself")
        || !watertight_testkit::require_tools(
            "host_audit_never_reports_the_auditor_itself",
            &["unshare"],
            "util-linux",
        )
    {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_watertight");
    let reference = format!("--reference-pid={}", std::process::id());
    // The findings that name the wrapper's first process (the auditor itself under `unshare
    // --uts`, which execs it; the shell in the control).
    let naming_first = |wrapper: &[&str]| -> Vec<serde_json::Value> {
        let child = Command::new(wrapper[0])
            .args(&wrapper[1..])
            .args([
                bin,
                "audit",
                "host",
                "--format",
                "json",
                "--fail-on",
                "none",
            ])
            .arg(&reference)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let first = child.id();
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        json(&o)["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["pids"]
                    .as_array()
                    .is_some_and(|p| p.contains(&first.into()))
            })
            .cloned()
            .collect()
    };
    let alone = naming_first(&["unshare", "--uts"]);
    assert_eq!(
        alone,
        Vec::<serde_json::Value>::new(),
        "the auditor reported itself"
    );
    // Control: the shell that starts the auditor stays in that UTS namespace with a sleep; it
    // is a workload with a namespace of its own.
    let beside = naming_first(&[
        "unshare",
        "--uts",
        "sh",
        "-c",
        "sleep 60 & s=$!; \"$@\"; rc=$?; kill $s; exit $rc",
        "sh",
    ]);
    assert!(!beside.is_empty(), "the control found nothing");
}

#[test]
fn host_audit_without_the_privileges_it_needs_is_an_error() {
    let test = "host_audit_without_the_privileges_it_needs_is_an_error";
    if !watertight_testkit::require_root(test)
        || !watertight_testkit::require_tools(test, &["setpriv"], "util-linux")
    {
        return;
    }
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_watertight"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let one_line = |out: &std::process::Output, names: &str| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(out.stdout.is_empty(), "a report was printed: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(names) && err.contains("run as root"), "{err}");
        assert!(!err.contains("No findings"), "{err}");
    };
    // PID 1's namespaces (the default reference): another user's.
    one_line(&nobody(&["audit", "host"]), "/proc/1/ns");
    // A reference of its own, but every other user's process unreadable.
    let reference = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "60",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let reference = Reaped(reference);
    let pid = reference.0.id().to_string();
    // Until setpriv has become nobody and exec'd sleep, the reference is still root's.
    let became_sleep = (0..500).any(|_| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        comm.trim() == "sleep" || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            false
        }
    });
    assert!(became_sleep, "the reference process never became `sleep`");
    one_line(
        &nobody(&["audit", "host", "--reference-pid", &pid]),
        "other users' processes",
    );
    // Only its own processes: readable, audited (exit 0 or 1, a report).
    let out = nobody(&[
        "audit",
        "host",
        "--reference-pid",
        &pid,
        "--pid",
        &pid,
        "--format",
        "json",
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["command"], "host");
    drop(reference);
}
