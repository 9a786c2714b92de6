//! The one SARIF 2.1.0 builder. Written with serde_json: the subset used here is small, and a
//! SARIF crate would add a large generated type tree for a few fields.
//!
//! Rules are listed once each, in the order their first result appears; every result names its
//! rule by `ruleId` and `ruleIndex`; levels come from the one [`Severity`] scale.

use crate::{Report, Row, Severity};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn rule_descriptor(row: &Row, worst: Severity) -> Value {
    let rule = &row.rule;
    let severity = rule.severity.unwrap_or(worst);
    let mut d = json!({
        "id": rule.id,
        "name": rule.name.as_deref().unwrap_or(&rule.id),
        "shortDescription": { "text": rule.title },
        "defaultConfiguration": { "level": severity.sarif_level() },
        "properties": {
            "security-severity": rule
                .security_severity
                .clone()
                .unwrap_or_else(|| severity.security_severity().to_string()),
            "tags": rule.tags,
        },
    });
    if let Some(full) = &rule.description {
        d["fullDescription"] = json!({ "text": full });
    }
    if let Some(help) = &rule.help {
        d["help"] = json!({ "text": help });
    }
    if let Some(uri) = &rule.help_uri {
        d["helpUri"] = json!(uri);
    }
    d
}

fn location(row: &Row) -> Value {
    let logical: Vec<Value> = row
        .location
        .logical
        .iter()
        .map(|l| {
            let mut v = json!({ "name": l.name, "kind": l.kind });
            if let Some(fqn) = &l.fully_qualified_name {
                v["fullyQualifiedName"] = json!(fqn);
            }
            v
        })
        .collect();
    let mut loc = json!({ "logicalLocations": logical });
    if let Some(file) = &row.location.file {
        let mut physical = json!({
            "artifactLocation": { "uri": file.trim_start_matches("./") },
        });
        if let Some(region) = row.location.region {
            let mut r = json!({ "startLine": region.start_line });
            if let Some(column) = region.start_column {
                r["startColumn"] = json!(column);
            }
            physical["region"] = r;
        }
        loc["physicalLocation"] = physical;
    }
    loc
}

/// The SARIF document of a report, with a trailing newline.
pub fn render<R: Report + ?Sized>(report: &R) -> String {
    let rows = report.rows();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut first: Vec<usize> = Vec::new();
    let mut worst: Vec<Severity> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match index.get(row.rule.id.as_str()) {
            Some(&r) => worst[r] = worst[r].max(row.severity),
            None => {
                index.insert(&row.rule.id, first.len());
                first.push(i);
                worst.push(row.severity);
            }
        }
    }
    let rules: Vec<Value> = first
        .iter()
        .zip(&worst)
        .map(|(&i, &w)| rule_descriptor(&rows[i], w))
        .collect();
    let results: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut props = row.properties.clone();
            props.insert("severity".into(), json!(row.severity));
            let mut r = json!({
                "ruleId": row.rule.id,
                "ruleIndex": index[row.rule.id.as_str()],
                "level": row.severity.sarif_level(),
                "message": { "text": row.message },
                "locations": [location(row)],
                "properties": props,
            });
            if let Some(fp) = &row.fingerprint {
                r["partialFingerprints"] = json!({ "watertightFinding/v1": fp });
            }
            if let Some(s) = &row.suppression {
                r["suppressions"] = json!([{
                    "kind": s.kind.sarif(),
                    "status": "accepted",
                    "justification": s.justification,
                }]);
            }
            r
        })
        .collect();
    let levels = [
        ("error", report.input_errors()),
        ("warning", report.input_warnings()),
        ("note", report.input_notes()),
    ];
    let notifications: Vec<Value> = levels
        .iter()
        .flat_map(|(level, lines)| {
            lines
                .iter()
                .map(move |e| json!({ "level": level, "message": { "text": e } }))
        })
        .collect();
    let mut properties = Map::new();
    properties.insert("command".into(), json!(report.command()));
    properties.extend(report.sarif_properties());
    let version = env!("CARGO_PKG_VERSION");
    let doc = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "watertight",
                    "informationUri": "https://example.invalid/watertight",
                    "version": version,
                    "semanticVersion": version,
                    "rules": rules,
                }
            },
            "invocations": [{
                "executionSuccessful": !report.unusable() && !report.incomplete(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
            // Regions count columns in characters, as the YAML reader does (SARIF's default
            // is UTF-16 code units).
            "columnKind": "unicodeCodePoints",
            "properties": properties,
        }]
    });
    // A `Value` of strings, numbers and maps always serializes.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
