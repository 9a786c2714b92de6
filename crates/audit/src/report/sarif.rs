//! SARIF 2.1.0 output for code-scanning services. Written with serde_json (the subset used here
//! is small; a SARIF crate would add a large generated type tree for a few fields).

use super::Report;
use crate::finding::{Finding, Severity};
use crate::rules;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` scale (0.0-10.0).
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn rule_descriptor(id: &str, findings: &[&Finding]) -> Value {
    let catalog = rules::catalog();
    let known = catalog.iter().find(|r| r.id == id);
    let (title, help, severity) = match known {
        Some(r) => (r.title.to_string(), r.help.to_string(), r.severity),
        None => {
            let worst = findings
                .iter()
                .map(|f| f.severity)
                .max()
                .unwrap_or(Severity::Medium);
            let title = match id.strip_prefix("pss/") {
                Some(check) => format!("Pod Security Standards check {check}"),
                None => id.to_string(),
            };
            (
                title,
                "See the message; fix the configuration it names.".to_string(),
                worst,
            )
        }
    };
    json!({
        "id": id,
        "name": id,
        "shortDescription": { "text": title },
        "help": { "text": help },
        "defaultConfiguration": { "level": level(severity) },
        "properties": {
            "security-severity": security_severity(severity),
            "tags": ["security", "isolation"],
        },
    })
}

fn location(f: &Finding) -> Value {
    let logical = json!([{
        "name": f.subject,
        "fullyQualifiedName": match &f.container {
            Some(c) => format!("{}/{}", f.workload, c),
            None => f.workload.clone(),
        },
        "kind": "resource",
    }]);
    match &f.file {
        Some(file) => json!({
            "physicalLocation": {
                "artifactLocation": { "uri": file.to_string_lossy().trim_start_matches("./") },
            },
            "logicalLocations": logical,
        }),
        None => json!({ "logicalLocations": logical }),
    }
}

pub fn render(report: &Report) -> String {
    let mut by_rule: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &report.findings {
        by_rule.entry(f.rule.as_str()).or_default().push(f);
    }
    let rule_index: BTreeMap<&str, usize> =
        by_rule.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let descriptors: Vec<Value> = by_rule
        .iter()
        .map(|(id, fs)| rule_descriptor(id, fs))
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut props = json!({
                "severity": f.severity.as_str(),
                "source": f.source,
                "workload": f.workload,
            });
            if let Some(ns) = &f.namespace {
                props["namespace"] = json!(ns);
            }
            if !f.pids.is_empty() {
                props["pids"] = json!(f.pids);
            }
            if !f.paths.is_empty() {
                props["paths"] = json!(f.paths);
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": rule_index[f.rule.as_str()],
                "level": level(f.severity),
                "message": { "text": format!("{}: {}", f.subject, f.message) },
                "locations": [location(f)],
                "partialFingerprints": {
                    "watertightFinding/v1": format!(
                        "{}|{}|{}|{}",
                        f.rule,
                        f.workload,
                        f.container.as_deref().unwrap_or(""),
                        f.namespace.as_deref().unwrap_or("")
                    ),
                },
                "properties": props,
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": { "text": format!("{}: {}", e.source, e.message) },
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "watertight",
                    "version": report.version,
                    "semanticVersion": report.version,
                    "rules": descriptors,
                }
            },
            "invocations": [{
                "executionSuccessful": report.errors.is_empty() || report.workloads > 0,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
            "properties": { "command": report.command },
        }]
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;

    #[test]
    fn is_sarif_2_1_0_with_rules_and_results() {
        let v: serde_json::Value = serde_json::from_str(&super::render(&sample())).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for r in results {
            let idx = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[idx]["id"], r["ruleId"]);
        }
        assert_eq!(results[0]["level"], "error");
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "inspect.json"
        );
        assert!(results[1]["locations"][0]["physicalLocation"].is_null());
    }
}
