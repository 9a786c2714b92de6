//! `audit fleet`: merges many nodes' JSON reports into one summary: for each rule (and namespace
//! kind), how many nodes run an affected workload.

use crate::error::AuditError;
use crate::finding::{Finding, Severity};
use crate::report::{InputError, Report};
use crate::rules;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use watertight_model::NamespaceKind;

/// One rule's reach across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRule {
    /// The rule id, as in the node reports' findings.
    pub rule: String,
    /// The namespace kind, for per-namespace rules (`shared-host-namespace`,
    /// `namespace-unknown`): each kind is counted on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The worst severity seen on any node.
    pub severity: Severity,
    /// How many nodes reported the rule at least once.
    pub nodes_affected: usize,
    /// Findings across all nodes.
    pub findings: usize,
    /// The affected nodes, sorted by name.
    pub nodes: Vec<String>,
}

/// The fleet part of a merged report (`Report::fleet`): which nodes were read and each rule's
/// reach across them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FleetSummary {
    /// How many distinct nodes the merged reports speak for.
    pub nodes_total: usize,
    /// Every node read, sorted by name, affected or not.
    pub nodes: Vec<String>,
    /// One entry per rule and namespace kind, most nodes affected first.
    pub rules: Vec<FleetRule>,
}

/// Parses one node's JSON report (the output of `--format json`).
pub fn parse_report(text: &str, path: &Path) -> Result<Report, AuditError> {
    serde_json::from_str::<Report>(text).map_err(|e| AuditError::Parse {
        path: path.to_path_buf(),
        message: format!(
            "not a watertight JSON report ({e}); produce one with `watertight audit host --format json`"
        ),
    })
}

/// Reads and parses a report file.
pub fn read_report(path: &Path) -> Result<Report, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_report(&text, path)
}

/// The node a report speaks for: its `node` field, else the file's stem.
fn node_name(report: &Report, path: &Path) -> String {
    report.node.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string())
    })
}

fn describe(rule: &str, namespace: Option<&str>) -> String {
    if rule == "shared-host-namespace" {
        if let Some(kind) = namespace.and_then(|n| n.parse::<NamespaceKind>().ok()) {
            return format!(
                "run a workload sharing the host {} namespace",
                kind.describe()
            );
        }
    }
    match rules::catalog().iter().find(|r| r.id == rule) {
        Some(info) => format!("run a workload with {rule}: {}", info.title.to_lowercase()),
        None => format!("run a workload with {rule}"),
    }
}

/// Merges reports read from `paths`; unreadable files become input errors of the summary.
pub fn merge_files(paths: &[impl AsRef<Path>]) -> Report {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let p = p.as_ref();
        match read_report(p) {
            Ok(r) => loaded.push((node_name(&r, p), r)),
            Err(e) => errors.push(InputError {
                source: p.display().to_string(),
                document: None,
                message: e.detail(),
            }),
        }
    }
    let mut report = merge(loaded);
    report.errors.extend(errors);
    report
}

/// Merges named node reports into one fleet report whose findings are per-rule summaries.
pub fn merge(reports: Vec<(String, Report)>) -> Report {
    let mut nodes = BTreeSet::new();
    type Key = (String, Option<String>);
    let mut per_rule: BTreeMap<Key, (Severity, usize, BTreeSet<String>)> = BTreeMap::new();
    let mut out = Report::new("fleet");
    type FloorKey = (String, String, Option<bool>);
    let mut floors: BTreeMap<FloorKey, (usize, BTreeSet<String>)> = BTreeMap::new();
    for (node, r) in reports {
        nodes.insert(node.clone());
        for f in &r.floors {
            let entry = floors
                .entry((f.digest.clone(), f.version.clone(), f.current))
                .or_default();
            entry.0 += f.containers;
            entry.1.insert(node.clone());
        }
        out.workloads += r.workloads;
        for e in r.errors {
            out.errors.push(InputError {
                source: format!("{node}: {}", e.source),
                ..e
            });
        }
        for f in r.findings {
            let entry = per_rule
                .entry((f.rule.clone(), f.namespace.clone()))
                .or_insert((f.severity, 0, BTreeSet::new()));
            entry.0 = entry.0.max(f.severity);
            entry.1 += 1;
            entry.2.insert(node.clone());
        }
    }
    let total = nodes.len();
    let mut summary = FleetSummary {
        nodes_total: total,
        nodes: nodes.into_iter().collect(),
        rules: Vec::new(),
    };
    for ((rule, namespace), (severity, count, affected)) in per_rule {
        let message = format!(
            "{} of {total} nodes {} ({count} finding(s))",
            affected.len(),
            describe(&rule, namespace.as_deref())
        );
        let node_list: Vec<String> = affected.into_iter().collect();
        out.findings.push(Finding {
            rule: rule.clone(),
            severity,
            message,
            source: "fleet".into(),
            subject: "fleet".into(),
            workload: "fleet".into(),
            container: None,
            pid: None,
            pids: vec![],
            namespace: namespace.clone(),
            paths: node_list.clone(),
            file: None,
            document: None,
            field: None,
            line: None,
            column: None,
        });
        summary.rules.push(FleetRule {
            rule,
            namespace,
            severity,
            nodes_affected: node_list.len(),
            findings: count,
            nodes: node_list,
        });
    }
    summary.rules.sort_by(|a, b| {
        b.nodes_affected
            .cmp(&a.nodes_affected)
            .then(a.rule.cmp(&b.rule))
    });
    crate::report::sort_findings(&mut out.findings);
    out.floors = floors
        .into_iter()
        .map(
            |((digest, version, current), (containers, on))| crate::report::FloorCount {
                digest,
                version,
                current,
                containers,
                nodes: Some(on.len()),
            },
        )
        .collect();
    out.fleet = Some(summary);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_report(node: &str, shared_net: bool) -> Report {
        let mut r = Report::new("host");
        r.node = Some(node.into());
        r.workloads = 3;
        if shared_net {
            r.findings.push(Finding {
                rule: "shared-host-namespace".into(),
                severity: Severity::High,
                message: "shares the host network namespace".into(),
                source: format!("host:{node}"),
                subject: "/docker/x".into(),
                workload: "/docker/x".into(),
                container: None,
                pid: Some(1),
                pids: vec![1],
                namespace: Some("net".into()),
                paths: vec![],
                file: None,
                document: None,
                field: None,
                line: None,
                column: None,
            });
        }
        r
    }

    #[test]
    fn counts_nodes_per_rule_and_namespace() {
        let reports: Vec<_> = (0..142)
            .map(|i| {
                let name = format!("node{i:03}");
                let r = node_report(&name, i < 13);
                (name, r)
            })
            .collect();
        let merged = merge(reports);
        let fleet = merged.fleet.as_ref().unwrap();
        assert_eq!(fleet.nodes_total, 142);
        assert_eq!(fleet.rules.len(), 1);
        assert_eq!(fleet.rules[0].nodes_affected, 13);
        assert_eq!(
            merged.findings[0].message,
            "13 of 142 nodes run a workload sharing the host network namespace (13 finding(s))"
        );
        assert_eq!(merged.workloads, 426);
    }

    #[test]
    fn containers_are_counted_per_floor_across_nodes() {
        use crate::report::FloorCount;
        let floor = |digest: &str, current: bool, containers: usize| FloorCount {
            digest: digest.into(),
            version: format!("v-{digest}"),
            current: Some(current),
            containers,
            nodes: None,
        };
        let mut a = node_report("a", false);
        a.floors = vec![floor("sha256:new", true, 3), floor("sha256:old", false, 2)];
        let mut b = node_report("b", false);
        b.floors = vec![floor("sha256:new", true, 4)];
        let merged = merge(vec![("a".into(), a), ("b".into(), b)]);
        assert_eq!(
            merged.floors,
            vec![
                FloorCount {
                    nodes: Some(2),
                    ..floor("sha256:new", true, 7)
                },
                FloorCount {
                    nodes: Some(1),
                    ..floor("sha256:old", false, 2)
                },
            ]
        );
        let table = merged.render(crate::Format::Table);
        assert!(
            table.contains(
                "Runtime floor v-sha256:old sha256:old (superseded): 2 container(s) on 1 node(s)"
            ),
            "{table}"
        );
        let metrics = merged.render(crate::Format::Prometheus);
        assert!(
            metrics.contains(
                "watertight_audit_containers_by_floor{command=\"fleet\",digest=\"sha256:old\",version=\"v-sha256:old\",current=\"false\"} 2"
            ),
            "{metrics}"
        );
        assert!(
            metrics.contains(
                "watertight_fleet_nodes_by_floor{digest=\"sha256:new\",version=\"v-sha256:new\",current=\"true\"} 2"
            ),
            "{metrics}"
        );
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let r = node_report("n1", true);
        let text = r.render(crate::Format::Json);
        let back = parse_report(&text, Path::new("n1.json")).unwrap();
        assert_eq!(back, r);
        let err = parse_report("{\"findings\": 3}", Path::new("bad.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad.json: not a watertight JSON report"),
            "{err}"
        );
    }
}
