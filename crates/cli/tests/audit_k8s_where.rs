//! `watertight audit k8s` says where each finding is: SARIF `region` (line and column of the
//! offending field's key), the table's LOCATION column and JSON's `field`/`line`/`column`,
//! through the binary on a file the test writes.

use std::path::Path;
use std::process::{Command, Output};

const MANIFESTS: &str = "\
# a comment before the first document
apiVersion: v1
kind: Service
metadata: {name: svc}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {}
  template:
    spec:
      containers:
      - name: app
        image: nginx
        securityContext:
            privileged: true
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: ns}
  spec:
    containers: [{name: c, image: x, securityContext: {privileged: true}}]
";

/// The 1-based line and column (in characters) of the `nth` (0-based) `needle` in `text`.
fn at(text: &str, needle: &str, nth: usize) -> (u64, u64) {
    let (offset, _) = text.match_indices(needle).nth(nth).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line as u64, before[start..].chars().count() as u64 + 1)
}

fn watertight(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run watertight")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The SARIF result of `rule` whose logical location names `subject`.
fn result<'a>(sarif: &'a serde_json::Value, rule: &str, subject: &str) -> &'a serde_json::Value {
    sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["ruleId"] == rule && r["locations"][0]["logicalLocations"][0]["name"] == subject
        })
        .unwrap_or_else(|| panic!("no {rule} result for {subject}: {sarif:#}"))
}

#[test]
fn sarif_regions_are_the_line_and_column_of_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.yaml"), MANIFESTS).unwrap();
    // Relative and absolute (inside the working directory) paths give the same artifact.
    let absolute = dir.path().join("all.yaml");
    for file in ["all.yaml", absolute.to_str().unwrap()] {
        let out = watertight(
            &[
                "audit",
                "k8s",
                file,
                "--format",
                "sarif",
                "--fail-on",
                "none",
            ],
            dir.path(),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sarif = stdout_json(&out);
        assert_eq!(sarif["runs"][0]["columnKind"], "unicodeCodePoints");
        for (subject, nth, field) in [
            (
                "shop/Deployment/web container app",
                0,
                "/spec/template/spec/containers/0/securityContext/privileged",
            ),
            (
                "ns/Pod/p container c",
                1,
                "/items/0/spec/containers/0/securityContext/privileged",
            ),
        ] {
            let r = result(&sarif, "privileged", subject);
            let physical = &r["locations"][0]["physicalLocation"];
            assert_eq!(physical["artifactLocation"]["uri"], "all.yaml", "{r:#}");
            let (line, column) = at(MANIFESTS, "privileged: true", nth);
            assert_eq!(
                (
                    physical["region"]["startLine"].as_u64(),
                    physical["region"]["startColumn"].as_u64()
                ),
                (Some(line), Some(column)),
                "{r:#}"
            );
            assert_eq!(r["properties"]["field"], field, "{r:#}");
        }
        // Every result from the file has a region.
        for r in sarif["runs"][0]["results"].as_array().unwrap() {
            assert!(
                r["locations"][0]["physicalLocation"]["region"]["startLine"].is_u64(),
                "{r:#}"
            );
        }
    }
}

#[test]
fn json_and_table_say_where_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.yaml"), MANIFESTS).unwrap();
    let (line, column) = at(MANIFESTS, "privileged: true", 0);

    let out = watertight(
        &[
            "audit",
            "k8s",
            "all.yaml",
            "--format",
            "json",
            "--fail-on",
            "none",
        ],
        dir.path(),
    );
    let report = stdout_json(&out);
    let f = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "privileged" && f["workload"] == "shop/Deployment/web")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(
        (
            &f["field"],
            f["line"].as_u64(),
            f["column"].as_u64(),
            &f["document"]
        ),
        (
            &serde_json::json!("/spec/template/spec/containers/0/securityContext/privileged"),
            Some(line),
            Some(column),
            &serde_json::json!(1)
        ),
        "{f:#}"
    );

    let web = report["pss"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "web")
        .unwrap_or_else(|| panic!("{report:#}"));
    let (start, _) = at(MANIFESTS, "apiVersion: apps/v1", 0);
    assert_eq!(web["line"].as_u64(), Some(start), "{web:#}");

    let out = watertight(
        &[
            "audit",
            "k8s",
            "all.yaml",
            "--format",
            "table",
            "--fail-on",
            "none",
        ],
        dir.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().next().unwrap().contains("LOCATION"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("privileged") && l.contains("shop/Deployment/web container app"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(&format!(" all.yaml:{line}:{column} ")),
        "{row}\n{text}"
    );
    // A denied object is named by the line it starts on (its first key).
    let (start, _) = at(MANIFESTS, "apiVersion: apps/v1", 0);
    assert!(
        text.contains(&format!(
            "PSS DENIED all.yaml:{start} Deployment/web at baseline:latest"
        )),
        "{text}"
    );
    let (item, _) = at(MANIFESTS, "apiVersion: v1\n  kind: Pod", 0);
    assert!(
        text.contains(&format!(
            "PSS DENIED all.yaml:{item} Pod/p at baseline:latest"
        )),
        "{text}"
    );
}
