//! The kernel audit's rows: one per affected CVE and one per failing hardening check, on the one
//! severity scale. The subject is the kernel, not a file, so rows carry a logical location naming
//! it.

use crate::hardening::CheckStatus;
use crate::report::KernelReport;
use serde_json::{json, Map};
use watertight_report::{Location, LogicalLocation, Row, Rule};

pub(crate) fn rows(r: &KernelReport) -> Vec<Row> {
    let location = Location {
        file: None,
        region: None,
        logical: vec![LogicalLocation {
            name: format!("linux-{}", r.kernel_version),
            fully_qualified_name: None,
            kind: "module",
        }],
    };
    let mut rows = Vec::new();
    for c in &r.cves {
        let mut rule = Rule::new(&c.id, &c.title);
        rule.name = Some("KernelCve".into());
        rule.help_uri = Some(format!("https://www.cve.org/CVERecord?id={}", c.id));
        rule.security_severity = c.cvss.map(|s| format!("{s:.1}"));
        rule.tags.push("kernel");
        let tier = r.isolation;
        let reach = if *c.reachable_from.get(tier) {
            format!("reachable from {}", tier.describe())
        } else {
            format!(
                "not reachable from {} ({})",
                tier.describe(),
                c.unreachable_because_by_tier.get(tier).join("; ")
            )
        };
        let fix = match (&c.fixed_in, &c.fixed_in_mainline) {
            (Some(f), _) => format!("fixed in {f}"),
            (None, Some(m)) => format!("no fix in this branch; fixed in mainline {m}"),
            (None, None) => "no fix recorded".into(),
        };
        let mut props = Map::new();
        props.insert("cvss".into(), json!(c.cvss));
        props.insert("cvss_severity".into(), json!(c.severity));
        props.insert("fixed_in".into(), json!(c.fixed_in));
        props.insert("fixed_in_mainline".into(), json!(c.fixed_in_mainline));
        props.insert(
            "reachable_from_sandbox".into(),
            json!(c.reachable_from_sandbox),
        );
        props.insert("reachable_from".into(), json!(c.reachable_from));
        props.insert("program_files".into(), json!(c.program_files));
        rows.push(Row {
            rule,
            severity: c.severity.into(),
            message: format!(
                "{} affects kernel {} ({} severity): {}; {}; {}",
                c.id, r.kernel_version, c.severity, c.title, fix, reach
            ),
            location: location.clone(),
            fingerprint: Some(format!("{}|{}", c.id, r.kernel_version)),
            properties: props,
            gates: !r.gate_reachable_only || *c.reachable_from.get(tier),
            suppression: None,
        });
    }
    for h in r.hardening.iter().filter(|h| h.status == CheckStatus::Fail) {
        let mut rule = Rule::new(
            format!("kernel-hardening/{}", h.name),
            format!("{} should be {}", h.name, h.expected),
        );
        rule.name = Some("KernelHardening".into());
        rule.description = Some(h.why.clone());
        rule.severity = Some(h.severity);
        rule.tags.extend(["kernel", "hardening"]);
        let mut props = Map::new();
        props.insert("current".into(), json!(h.current));
        rows.push(Row {
            rule,
            severity: h.severity,
            message: format!(
                "{} is {} (expected {}): {}{}",
                h.name,
                h.current.as_deref().unwrap_or("unset"),
                h.expected,
                h.why,
                h.breaks
                    .as_ref()
                    .map(|b| format!(" (caution: {b})"))
                    .unwrap_or_default()
            ),
            location: location.clone(),
            fingerprint: Some(format!("kernel-hardening/{}", h.name)),
            properties: props,
            gates: true,
            suppression: None,
        });
    }
    rows
}
