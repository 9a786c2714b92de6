//! Accepting findings through the binary: a privileged pod fails `--fail-on high`; its
//! `watertight.dev/ignore` annotation accepts the findings (SARIF marks them suppressed,
//! `inSource`) until an entry's `until` day has passed; a baseline written by
//! `--write-baseline` accepts them from outside (`external`), notes entries that match nothing,
//! and a broken baseline is one error line with exit code 2.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Output};
use watertight_testkit::{stderr, stdout_json as json};

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: kvm
  namespace: lab
ANNOTATIONS
spec:
  containers:
    - name: app
      image: example.invalid/app:1
      securityContext:
        privileged: true
";

/// Writes the pod manifest to `dir/pod.yaml`, with `annotations` (already indented) if any.
fn manifest(dir: &Path, annotations: &str) -> String {
    let path = dir.join("pod.yaml");
    std::fs::write(&path, POD.replace("ANNOTATIONS\n", annotations)).unwrap();
    path.display().to_string()
}

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(["audit", "k8s", "--fail-on", "high"])
        .args(args)
        .output()
        .expect("run watertight")
}

/// The `rule` or `rule[kind]` keys of the findings at high or above.
fn gating_keys(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("high" | "critical")))
        .map(|f| match f["namespace"].as_str() {
            Some(ns) => format!("{}[{ns}]", f["rule"].as_str().unwrap()),
            None => f["rule"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// The annotation accepting `keys`, each with `suffix` after the reason.
fn annotation(keys: &[String], suffix: &str) -> String {
    let mut text = "  annotations:\n    watertight.dev/ignore: |\n".to_string();
    let mut seen = Vec::new();
    for k in keys.iter().filter(|k| {
        let new = !seen.contains(k);
        seen.push(*k);
        new
    }) {
        text.push_str(&format!("      {k}: runs KVM guests{suffix}\n"));
    }
    text
}

/// SARIF results that gate at high (`error`) and are not suppressed, and the suppressions.
fn sarif(out: &Output) -> (usize, Vec<serde_json::Value>) {
    let v = json(out);
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    let open = results
        .iter()
        .filter(|r| r["level"] == "error" && r.get("suppressions").is_none())
        .count();
    let suppressions = results
        .iter()
        .filter_map(|r| r.get("suppressions"))
        .flat_map(|s| s.as_array().unwrap().clone())
        .collect();
    (open, suppressions)
}

#[test]
fn annotations_accept_findings_until_their_day() {
    let dir = tempfile::tempdir().unwrap();
    let plain = manifest(dir.path(), "");
    let out = audit(&["--format", "json", &plain]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let keys = gating_keys(&json(&out));
    assert!(keys.iter().any(|k| k == "privileged"), "{keys:?}");

    let accepted = manifest(dir.path(), &annotation(&keys, " until 2999-12-31"));
    let out = audit(&["--format", "sarif", &accepted]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (open, suppressions) = sarif(&out);
    assert_eq!(open, 0);
    assert_eq!(suppressions.len(), keys.len(), "{suppressions:#?}");
    for s in &suppressions {
        assert_eq!(s["kind"], "inSource", "{s:#}");
        assert_eq!(s["justification"], "runs KVM guests", "{s:#}");
    }

    let expired = manifest(dir.path(), &annotation(&keys, " until 2020-01-31"));
    let out = audit(&["--format", "json", &expired]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(gating_keys(&json(&out)), keys);
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l.starts_with("watertight: warning: ")
            && l.contains("lab/Pod/kvm")
            && l.contains("privileged expired on 2020-01-31")
            && l.contains("renew or remove it")),
        "{err}"
    );

    let bad_date = manifest(dir.path(), &annotation(&keys, " until 2020-02-30"));
    let out = audit(&["--format", "json", &bad_date]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"2020-02-30\" is not a date"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_baseline_accepts_what_it_lists_and_notes_what_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let pod = manifest(dir.path(), "");
    let base = dir.path().join("baseline.json");
    std::fs::write(&base, "old").unwrap();
    let inode = std::fs::metadata(&base).unwrap().ino();
    let base_arg = base.display().to_string();

    // Written: the report as usual, and the baseline (through the file that was there).
    let out = audit(&["--format", "json", "--write-baseline", &base_arg, &pod]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let keys = gating_keys(&json(&out));
    assert!(
        stderr(&out).contains(&format!("baseline entries to {base_arg}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::metadata(&base).unwrap().ino(), inode);
    let mut written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    assert_eq!(written["version"], 1);
    let entries = written["entries"].as_array().unwrap().clone();
    for k in &keys {
        assert!(
            entries.iter().any(|e| e["rule"] == k.as_str()),
            "{k}: {written:#}"
        );
    }
    assert!(
        entries.iter().any(|e| e["subject"] == "lab/Pod/kvm/app"),
        "{written:#}"
    );

    // Read: every finding accepted, `external`, with the entry's reason.
    for e in written["entries"].as_array_mut().unwrap() {
        e["reason"] = "lab machine, tracked in LAB-7".into();
    }
    std::fs::write(&base, serde_json::to_vec(&written).unwrap()).unwrap();
    let out = audit(&["--format", "sarif", "--baseline", &base_arg, &pod]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (open, suppressions) = sarif(&out);
    assert_eq!(open, 0);
    assert_eq!(suppressions.len(), entries.len());
    for s in &suppressions {
        assert_eq!(s["kind"], "external", "{s:#}");
        assert_eq!(s["justification"], "lab machine, tracked in LAB-7", "{s:#}");
    }
    assert!(!stderr(&out).contains("stale"), "{}", stderr(&out));

    // --ignore-accepted disregards it.
    let out = audit(&[
        "--format",
        "json",
        "--ignore-accepted",
        "--baseline",
        &base_arg,
        &pod,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // An entry for an object that is gone: a note, nothing else changes.
    let mut gone = written["entries"][0].clone();
    gone["subject"] = "lab/Pod/removed/app".into();
    written["entries"].as_array_mut().unwrap().push(gone);
    std::fs::write(&base, serde_json::to_vec(&written).unwrap()).unwrap();
    let out = audit(&["--format", "json", "--baseline", &base_arg, &pod]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines().any(|l| l.contains("stale baseline entry")
            && l.contains("lab/Pod/removed/app")
            && l.ends_with("remove it")),
        "{err}"
    );

    // An expired entry: the finding counts again, with a warning.
    for e in written["entries"].as_array_mut().unwrap() {
        e["until"] = "2020-01-31".into();
    }
    std::fs::write(&base, serde_json::to_vec(&written).unwrap()).unwrap();
    let out = audit(&["--format", "json", "--baseline", &base_arg, &pod]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expired on 2020-01-31"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_broken_or_missing_baseline_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let pod = manifest(dir.path(), "");
    let base = dir.path().join("baseline.json");
    std::fs::write(&base, "{\"version\": 1, \"entries\": [").unwrap();
    let missing = dir.path().join("none.json");
    for file in [&base, &missing] {
        let file = file.display().to_string();
        let out = audit(&["--format", "json", "--baseline", &file, &pod]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("watertight: --baseline {file}: ")),
            "{err}"
        );
        assert!(err.contains("--write-baseline"), "{err}");
    }
    let unwritable = dir.path().join("no-such-dir/baseline.json");
    let unwritable = unwritable.display().to_string();
    let out = audit(&["--write-baseline", &unwritable, &pod]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "watertight: --write-baseline {unwritable}: cannot open"
        )),
        "{err}"
    );
}

#[test]
fn docker_and_oci_take_the_same_baseline_flags() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    for (source, input) in [("docker", "docker/leaky.json"), ("oci", "oci/leaky")] {
        let input = fixtures.join(input).display().to_string();
        let base = dir
            .path()
            .join(format!("{source}.json"))
            .display()
            .to_string();
        let run = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_watertight"))
                .args(["audit", source, "--fail-on", "high"])
                .args(args)
                .arg(&input)
                .output()
                .expect("run watertight")
        };
        let out = run(&["--format", "json", "--write-baseline", &base]);
        assert_eq!(out.status.code(), Some(1), "{source}: {}", stderr(&out));
        assert!(!gating_keys(&json(&out)).is_empty(), "{source}");
        let out = run(&["--format", "sarif", "--baseline", &base]);
        assert_eq!(out.status.code(), Some(0), "{source}: {}", stderr(&out));
        let (open, suppressions) = sarif(&out);
        assert_eq!(open, 0, "{source}");
        assert!(!suppressions.is_empty(), "{source}");
        assert!(
            suppressions.iter().all(|s| s["kind"] == "external"),
            "{source}"
        );
        std::fs::write(&base, "[]").unwrap();
        let out = run(&["--baseline", &base]);
        assert_eq!(out.status.code(), Some(2), "{source}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).lines().count(),
            1,
            "{source}: {}",
            stderr(&out)
        );
    }
}
