//! An isolation finding as a row of the shared SARIF builder: its rule descriptor from the rule
//! catalog (Pod Security Standards checks get a generic one), the file it was read from and the
//! workload it is about.

use crate::finding::Finding;
use crate::rules::RuleInfo;
use serde_json::{json, Map};
use std::path::Path;
use watertight_report::{Location, LogicalLocation, Region, Row, Rule};

/// The file as a SARIF artifact URI: as given when relative (code-scanning services resolve it
/// against the checkout, where CI runs the audit); an absolute path inside the working
/// directory is made relative to it.
fn artifact(file: &Path) -> String {
    // Asked once per process: every finding has a file, and getcwd is a system call.
    static CWD: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let relative = if file.is_absolute() {
        CWD.get_or_init(|| std::env::current_dir().ok())
            .as_deref()
            .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
    } else {
        None
    };
    relative
        .as_deref()
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

fn rule(id: &str, catalog: &[RuleInfo]) -> Rule {
    match catalog.iter().find(|r| r.id == id) {
        Some(known) => {
            let mut rule = Rule::new(id, known.title);
            rule.help = Some(known.help.to_string());
            rule.severity = Some(known.severity);
            rule.tags.push("isolation");
            rule
        }
        None => {
            let title = match id.strip_prefix("pss/") {
                Some(check) => format!("Pod Security Standards check {check}"),
                None => id.to_string(),
            };
            let mut rule = Rule::new(id, title);
            rule.help = Some("See the message; fix the configuration it names.".into());
            rule.tags.push("isolation");
            rule
        }
    }
}

/// The finding as a report row.
pub(super) fn row(f: &Finding, catalog: &[RuleInfo]) -> Row {
    let mut props = Map::new();
    props.insert("source".into(), json!(f.source));
    props.insert("workload".into(), json!(f.workload));
    if let Some(ns) = &f.namespace {
        props.insert("namespace".into(), json!(ns));
    }
    if !f.pids.is_empty() {
        props.insert("pids".into(), json!(f.pids));
    }
    if !f.paths.is_empty() {
        props.insert("paths".into(), json!(f.paths));
    }
    if let Some(field) = &f.field {
        props.insert("field".into(), json!(field));
    }
    Row {
        rule: rule(&f.rule, catalog),
        severity: f.severity,
        message: format!("{}: {}", f.subject, f.message),
        location: Location {
            file: f.file.as_deref().map(artifact),
            region: f.line.map(|start_line| Region {
                start_line,
                start_column: f.column,
            }),
            logical: vec![LogicalLocation {
                name: f.subject.clone(),
                fully_qualified_name: Some(f.qualified_subject()),
                kind: "resource",
            }],
        },
        fingerprint: Some(format!(
            "{}|{}|{}|{}",
            f.rule,
            f.workload,
            f.container.as_deref().unwrap_or(""),
            f.namespace.as_deref().unwrap_or("")
        )),
        properties: props,
        gates: true,
        suppression: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;
    use crate::Format;

    #[test]
    fn is_sarif_2_1_0_with_rules_and_results() {
        let v: serde_json::Value = serde_json::from_str(&sample().render(Format::Sarif)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for r in results {
            let idx = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[idx]["id"], r["ruleId"]);
        }
        // Levels from the one scale: high -> error, low -> note.
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[1]["level"], "note");
        assert!(rules[0]["shortDescription"]["text"].as_str().is_some());
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "inspect.json"
        );
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["region"],
            serde_json::json!({"startLine": 4, "startColumn": 3})
        );
        assert_eq!(
            results[0]["properties"]["field"],
            "/0/HostConfig/NetworkMode"
        );
        assert!(results[1]["locations"][0]["physicalLocation"].is_null());
        assert_eq!(results[1]["properties"]["pids"], serde_json::json!([7, 9]));
        assert_eq!(run["properties"]["command"], "docker");
    }

    #[test]
    fn accepted_findings_are_suppressed_results_with_their_justification() {
        let mut r = sample();
        let f = r.findings.remove(0);
        let (rule, workload) = (f.rule.clone(), f.workload.clone());
        r.accepted.push(crate::accept::AcceptedFinding {
            finding: f,
            justification: "needed by design".into(),
            accepted_by: crate::accept::AcceptedBy::Annotation,
        });
        let v: serde_json::Value = serde_json::from_str(&r.render(Format::Sarif)).unwrap();
        let results = v["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{results:#?}");
        assert!(results[0].get("suppressions").is_none());
        let accepted = &results[1];
        assert_eq!(accepted["ruleId"], rule.as_str());
        assert_eq!(accepted["properties"]["workload"], workload.as_str());
        assert_eq!(
            accepted["suppressions"],
            serde_json::json!([{
                "kind": "inSource",
                "status": "accepted",
                "justification": "needed by design",
            }])
        );
        // It is a result, not a gate: only the other (low) finding counts.
        use watertight_report::Report as _;
        assert_eq!(
            r.gated(watertight_report::FailOn::At(crate::Severity::Info)),
            1
        );
    }
}
