//! The audit's metric families, written with the shared Prometheus writer. Metric names are
//! stable: dashboards and alerts depend on them.

use super::Report;
use crate::finding::Severity;
use std::collections::BTreeMap;
use watertight_report::Exposition;

pub(super) fn write(report: &Report, out: &mut Exposition) {
    let cmd = report.command.as_str();
    let mut g = out.gauge(
        "watertight_audit_findings_total",
        "Findings of the last audit by severity (every severity always present).",
    );
    for (severity, n) in report.counts() {
        g.sample(&[("command", cmd), ("severity", severity.as_str())], n);
    }

    per_rule_gauge(
        out,
        cmd,
        "watertight_audit_rule_findings",
        "Findings of the last audit by rule, severity and namespace kind.",
        report.findings.iter(),
    );

    let mut g = out.gauge(
        "watertight_audit_finding",
        "One series per finding of the last audit (value 1).",
    );
    for f in &report.findings {
        let pid = f.pid.map(|p| p.to_string()).unwrap_or_default();
        g.sample(
            &[
                ("rule", &f.rule),
                ("severity", f.severity.as_str()),
                ("workload", &f.workload),
                ("container", f.container.as_deref().unwrap_or("")),
                ("namespace", f.namespace.as_deref().unwrap_or("")),
                ("pid", &pid),
            ],
            1,
        );
    }

    if !report.accepted.is_empty() {
        per_rule_gauge(
            out,
            cmd,
            "watertight_audit_accepted_findings",
            "Findings accepted with a justification, by annotation or baseline (not in the other counts), by rule.",
            report.accepted.iter().map(|a| &a.finding),
        );
    }

    out.gauge("watertight_audit_workloads", "Workloads audited.")
        .sample(&[("command", cmd)], report.workloads);
    out.gauge(
        "watertight_audit_input_errors",
        "Inputs that could not be read.",
    )
    .sample(&[("command", cmd)], report.errors.len());

    if !report.pss.is_empty() {
        let mut verdicts: BTreeMap<(&str, &str, bool), usize> = BTreeMap::new();
        for p in &report.pss {
            *verdicts
                .entry((p.level.as_str(), p.version.as_str(), p.allowed))
                .or_default() += 1;
        }
        let mut g = out.gauge(
            "watertight_audit_pss_objects",
            "Kubernetes objects by Pod Security Standards verdict.",
        );
        for ((level, version, allowed), n) in verdicts {
            let allowed = allowed.to_string();
            g.sample(
                &[
                    ("level", level),
                    ("version", version),
                    ("allowed", &allowed),
                ],
                n,
            );
        }
    }

    if !report.floors.is_empty() {
        let mut g = out.gauge(
            "watertight_audit_containers_by_floor",
            "Containers watertight-runc started, by the hardening floor they run under and whether it is the node's current one (unknown: the node's runtime.toml could not be read).",
        );
        for f in &report.floors {
            let current = f
                .current
                .map_or("unknown", |c| if c { "true" } else { "false" });
            g.sample(
                &[
                    ("command", cmd),
                    ("digest", &f.digest),
                    ("version", &f.version),
                    ("current", current),
                ],
                f.containers,
            );
        }
        if report.floors.iter().any(|f| f.nodes.is_some()) {
            let mut g = out.gauge(
                "watertight_fleet_nodes_by_floor",
                "Nodes running containers under the hardening floor.",
            );
            for f in &report.floors {
                let current = f
                    .current
                    .map_or("unknown", |c| if c { "true" } else { "false" });
                g.sample(
                    &[
                        ("digest", &f.digest),
                        ("version", &f.version),
                        ("current", current),
                    ],
                    f.nodes.unwrap_or(0),
                );
            }
        }
    }

    if let Some(fleet) = &report.fleet {
        out.gauge("watertight_fleet_nodes", "Node reports merged.")
            .sample(&[], fleet.nodes_total);
        let mut g = out.gauge(
            "watertight_fleet_nodes_affected",
            "Nodes with at least one finding of the rule (and namespace kind).",
        );
        for r in &fleet.rules {
            g.sample(
                &[
                    ("rule", &r.rule),
                    ("namespace", r.namespace.as_deref().unwrap_or("")),
                    ("severity", r.severity.as_str()),
                ],
                r.nodes_affected,
            );
        }
    }

    out.gauge(
        "watertight_audit_last_run_timestamp_seconds",
        "Unix time of the last audit.",
    )
    .sample(&[("command", cmd)], report.generated_at);
    out.gauge(
        "watertight_audit_duration_seconds",
        "How long the last audit took.",
    )
    .sample(
        &[("command", cmd)],
        format!("{:.6}", report.duration_seconds),
    );
}

/// One gauge counting `findings` by rule, severity and namespace kind.
fn per_rule_gauge<'a>(
    out: &mut Exposition,
    cmd: &str,
    name: &'static str,
    help: &'static str,
    findings: impl Iterator<Item = &'a crate::Finding>,
) {
    let mut per_rule: BTreeMap<(&str, Severity, &str), usize> = BTreeMap::new();
    for f in findings {
        *per_rule
            .entry((
                f.rule.as_str(),
                f.severity,
                f.namespace.as_deref().unwrap_or(""),
            ))
            .or_default() += 1;
    }
    let mut g = out.gauge(name, help);
    for ((rule, severity, ns), n) in &per_rule {
        g.sample(
            &[
                ("command", cmd),
                ("rule", rule),
                ("severity", severity.as_str()),
                ("namespace", ns),
            ],
            n,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;
    use crate::Format;

    #[test]
    fn exposition_parses_and_escapes_labels() {
        let text = sample().render(Format::Prometheus);
        let samples = watertight_report::prometheus::read(&text).unwrap();
        assert!(samples.iter().all(|s| s.name.starts_with("watertight_")));
        assert!(text
            .contains("watertight_audit_findings_total{command=\"docker\",severity=\"high\"} 1"));
        assert!(text.contains(
            "watertight_audit_findings_total{command=\"docker\",severity=\"critical\"} 0"
        ));
        // Every severity of the one scale is present.
        let totals = samples
            .iter()
            .filter(|s| s.name == "watertight_audit_findings_total")
            .count();
        assert_eq!(totals, 5);
        // A workload id with a quote and a newline survives the round trip.
        let mut r = sample();
        r.findings[1].workload = "/docker/\"odd\"\nname".into();
        let samples = watertight_report::prometheus::read(&r.render(Format::Prometheus)).unwrap();
        assert!(samples.iter().any(|s| s
            .labels
            .iter()
            .any(|(k, v)| k == "workload" && v == "/docker/\"odd\"\nname")));
    }
}
