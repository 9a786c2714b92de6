//! Prometheus text exposition format (version 0.0.4) for the node-exporter textfile collector.
//! Metric names are stable: dashboards and alerts depend on them.

use super::Report;
use crate::finding::Severity;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Escapes a label value: backslash, double quote and newline.
fn esc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let cmd = esc(&report.command);

    header(
        &mut out,
        "watertight_audit_findings_total",
        "Findings of the last audit by severity (every severity always present).",
    );
    for (severity, n) in report.counts() {
        let _ = writeln!(
            out,
            "watertight_audit_findings_total{{command=\"{cmd}\",severity=\"{severity}\"}} {n}"
        );
    }

    header(
        &mut out,
        "watertight_audit_rule_findings",
        "Findings of the last audit by rule, severity and namespace kind.",
    );
    let mut per_rule: BTreeMap<(String, Severity, String), usize> = BTreeMap::new();
    for f in &report.findings {
        *per_rule
            .entry((
                f.rule.clone(),
                f.severity,
                f.namespace.clone().unwrap_or_default(),
            ))
            .or_default() += 1;
    }
    for ((rule, severity, ns), n) in &per_rule {
        let _ = writeln!(
            out,
            "watertight_audit_rule_findings{{command=\"{cmd}\",rule=\"{}\",severity=\"{severity}\",namespace=\"{}\"}} {n}",
            esc(rule),
            esc(ns)
        );
    }

    header(
        &mut out,
        "watertight_audit_finding",
        "One series per finding of the last audit (value 1).",
    );
    for f in &report.findings {
        let _ = writeln!(
            out,
            "watertight_audit_finding{{rule=\"{}\",severity=\"{}\",workload=\"{}\",container=\"{}\",namespace=\"{}\",pid=\"{}\"}} 1",
            esc(&f.rule),
            f.severity,
            esc(&f.workload),
            esc(f.container.as_deref().unwrap_or("")),
            esc(f.namespace.as_deref().unwrap_or("")),
            f.pid.map(|p| p.to_string()).unwrap_or_default()
        );
    }

    header(&mut out, "watertight_audit_workloads", "Workloads audited.");
    let _ = writeln!(
        out,
        "watertight_audit_workloads{{command=\"{cmd}\"}} {}",
        report.workloads
    );
    header(
        &mut out,
        "watertight_audit_input_errors",
        "Inputs that could not be read.",
    );
    let _ = writeln!(
        out,
        "watertight_audit_input_errors{{command=\"{cmd}\"}} {}",
        report.errors.len()
    );

    if !report.pss.is_empty() {
        header(
            &mut out,
            "watertight_audit_pss_objects",
            "Kubernetes objects by Pod Security Standards verdict.",
        );
        let mut verdicts: BTreeMap<(String, String, bool), usize> = BTreeMap::new();
        for p in &report.pss {
            *verdicts
                .entry((p.level.clone(), p.version.clone(), p.allowed))
                .or_default() += 1;
        }
        for ((level, version, allowed), n) in verdicts {
            let _ = writeln!(
                out,
                "watertight_audit_pss_objects{{level=\"{}\",version=\"{}\",allowed=\"{allowed}\"}} {n}",
                esc(&level),
                esc(&version)
            );
        }
    }

    if let Some(fleet) = &report.fleet {
        header(&mut out, "watertight_fleet_nodes", "Node reports merged.");
        let _ = writeln!(out, "watertight_fleet_nodes {}", fleet.nodes_total);
        header(
            &mut out,
            "watertight_fleet_nodes_affected",
            "Nodes with at least one finding of the rule (and namespace kind).",
        );
        for r in &fleet.rules {
            let _ = writeln!(
                out,
                "watertight_fleet_nodes_affected{{rule=\"{}\",namespace=\"{}\",severity=\"{}\"}} {}",
                esc(&r.rule),
                esc(r.namespace.as_deref().unwrap_or("")),
                r.severity,
                r.nodes_affected
            );
        }
    }

    header(
        &mut out,
        "watertight_audit_last_run_timestamp_seconds",
        "Unix time of the last audit.",
    );
    let _ = writeln!(
        out,
        "watertight_audit_last_run_timestamp_seconds{{command=\"{cmd}\"}} {}",
        report.generated_at
    );
    header(
        &mut out,
        "watertight_audit_duration_seconds",
        "How long the last audit took.",
    );
    let _ = writeln!(
        out,
        "watertight_audit_duration_seconds{{command=\"{cmd}\"}} {:.6}",
        report.duration_seconds
    );
    out
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;

    #[test]
    fn exposition_is_well_formed() {
        let text = super::render(&sample());
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                    "{line}"
                );
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("watertight_"), "{line}");
            if let Some(open) = series.find('{') {
                assert!(series.ends_with('}'), "{line}");
                assert!(!series[open..].contains('\n'));
            }
        }
        assert!(text
            .contains("watertight_audit_findings_total{command=\"docker\",severity=\"high\"} 1"));
        assert!(text.contains(
            "watertight_audit_findings_total{command=\"docker\",severity=\"critical\"} 0"
        ));
        // Quotes in label values are escaped.
        assert!(!text.contains("\"root\"\n"));
    }
}
