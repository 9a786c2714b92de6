//! SARIF 2.1.0: one rule and one result per affected CVE and per failing hardening check. The
//! subject is the kernel, not a file, so results carry a logical location naming it.

use crate::cve::Severity;
use crate::hardening::{CheckSeverity, CheckStatus};
use crate::report::KernelReport;
use serde_json::{json, Value};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn cve_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::None | Severity::Unscored => "note",
    }
}

fn check_level(s: CheckSeverity) -> &'static str {
    match s {
        CheckSeverity::High => "error",
        CheckSeverity::Medium => "warning",
        CheckSeverity::Low | CheckSeverity::Info => "note",
    }
}

pub fn render(r: &KernelReport) -> String {
    let location = json!([{
        "logicalLocations": [{
            "name": format!("linux-{}", r.kernel_version),
            "kind": "module",
        }]
    }]);
    let mut rules: Vec<Value> = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for c in &r.cves {
        rules.push(json!({
            "id": c.id,
            "name": "KernelCve",
            "shortDescription": { "text": c.title },
            "helpUri": format!("https://www.cve.org/CVERecord?id={}", c.id),
            "properties": {
                "security-severity": c.cvss.map(|s| format!("{s:.1}")),
                "tags": ["security", "kernel"],
            },
        }));
        let reach = if c.reachable_from_sandbox {
            "reachable from a default watertight sandbox".to_string()
        } else {
            format!(
                "not reachable from a default watertight sandbox ({})",
                c.unreachable_because.join("; ")
            )
        };
        let fix = match (&c.fixed_in, &c.fixed_in_mainline) {
            (Some(f), _) => format!("fixed in {f}"),
            (None, Some(m)) => format!("no fix in this branch; fixed in mainline {m}"),
            (None, None) => "no fix recorded".into(),
        };
        results.push(json!({
            "ruleId": c.id,
            "level": cve_level(c.severity),
            "message": { "text": format!(
                "{} affects kernel {} ({} severity): {}; {}; {}",
                c.id, r.kernel_version, c.severity, c.title, fix, reach
            )},
            "locations": location,
            "properties": {
                "cvss": c.cvss,
                "severity": c.severity,
                "fixed_in": c.fixed_in,
                "fixed_in_mainline": c.fixed_in_mainline,
                "reachable_from_sandbox": c.reachable_from_sandbox,
                "program_files": c.program_files,
            },
        }));
    }
    for h in r.hardening.iter().filter(|h| h.status == CheckStatus::Fail) {
        let id = format!("kernel-hardening/{}", h.name);
        rules.push(json!({
            "id": id,
            "name": "KernelHardening",
            "shortDescription": { "text": format!("{} should be {}", h.name, h.expected) },
            "fullDescription": { "text": h.why },
            "properties": { "tags": ["security", "kernel", "hardening"] },
        }));
        results.push(json!({
            "ruleId": id,
            "level": check_level(h.severity),
            "message": { "text": format!(
                "{} is {} (expected {}): {}{}",
                h.name,
                h.current.as_deref().unwrap_or("unset"),
                h.expected,
                h.why,
                h.breaks.as_ref().map(|b| format!(" (caution: {b})")).unwrap_or_default()
            )},
            "locations": location,
            "properties": { "severity": h.severity, "current": h.current },
        }));
    }
    let doc = json!({
        "version": "2.1.0",
        "$schema": SCHEMA,
        "runs": [{
            "tool": { "driver": {
                "name": "watertight",
                "informationUri": "https://example.invalid/watertight",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
            "properties": {
                "kernel_version": r.kernel_version,
                "decision": r.decision,
                "affected_count": r.affected_count,
                "reachable_count": r.reachable_count,
                "notes": r.notes,
            },
        }],
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("SARIF serializes");
    text.push('\n');
    text
}
