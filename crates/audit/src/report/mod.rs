//! The report of one audit run and its output formats. Reporters only format: they never decide
//! what is a finding.

mod json;
mod prometheus;
mod sarif;
mod table;

use crate::finding::{Finding, Severity};
use crate::fleet::FleetSummary;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people (the default).
    Table,
    /// `{"findings":[...], "pss":[...], ...}`; also the input of `audit fleet`.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// Prometheus text exposition format for the node-exporter textfile collector.
    Prometheus,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            "prometheus" | "prom" => Ok(Format::Prometheus),
            _ => Err(format!(
                "unknown format {s:?} (expected table, json, sarif or prometheus)"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Prometheus => "prometheus",
        })
    }
}

/// An input that could not be read or understood; the rest of the inputs are still audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputError {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    pub message: String,
}

/// One Pod Security Standards violation, named as upstream names the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PssViolation {
    pub check: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The Pod Security Standards verdict for one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PssEntry {
    pub file: PathBuf,
    pub document: usize,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub level: String,
    pub version: String,
    pub allowed: bool,
    pub violations: Vec<PssViolation>,
}

/// Everything one audit run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    /// `host`, `k8s`, `docker`, `oci` or `fleet`.
    pub command: String,
    /// The node's hostname for `audit host` (fleet uses it to count nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Unix time the report was made.
    #[serde(default)]
    pub generated_at: u64,
    #[serde(default)]
    pub duration_seconds: f64,
    /// How many workloads were audited.
    #[serde(default)]
    pub workloads: usize,
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pss: Vec<PssEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InputError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSummary>,
}

impl Report {
    pub fn new(command: &str) -> Report {
        Report {
            tool: "watertight".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            command: command.into(),
            node: None,
            generated_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            duration_seconds: 0.0,
            workloads: 0,
            findings: Vec::new(),
            pss: Vec::new(),
            errors: Vec::new(),
            fleet: None,
        }
    }

    /// The CI exit code: 2 when inputs had errors and nothing could be audited, 1 when a
    /// finding is at or above `fail_on` (`None`: never), else 0.
    pub fn exit_code(&self, fail_on: Option<Severity>) -> u8 {
        let read_something =
            self.workloads > 0 || self.fleet.as_ref().is_some_and(|f| f.nodes_total > 0);
        if !self.errors.is_empty() && !read_something {
            return 2;
        }
        match fail_on {
            Some(threshold) if self.findings.iter().any(|f| f.severity >= threshold) => 1,
            _ => 0,
        }
    }

    /// Count of findings per severity, in severity order.
    pub fn counts(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|s| (s, self.findings.iter().filter(|f| f.severity == s).count()))
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => table::render(self),
            Format::Json => json::render(self),
            Format::Sarif => sarif::render(self),
            Format::Prometheus => prometheus::render(self),
        }
    }
}

/// Most severe first, then by workload, rule and namespace: stable output for diffs.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.document.cmp(&b.document))
            .then_with(|| a.workload.cmp(&b.workload))
            .then_with(|| a.container.cmp(&b.container))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.namespace.cmp(&b.namespace))
    });
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn sample() -> Report {
        let mut r = Report::new("docker");
        r.workloads = 1;
        r.generated_at = 1_700_000_000;
        r.findings = vec![
            Finding {
                rule: "shared-host-namespace".into(),
                severity: Severity::High,
                message: "shares the host network namespace".into(),
                source: "inspect.json".into(),
                subject: "web container web".into(),
                workload: "web".into(),
                container: Some("web".into()),
                pid: None,
                pids: vec![],
                namespace: Some("net".into()),
                paths: vec![],
                file: Some("inspect.json".into()),
                document: None,
            },
            Finding {
                rule: "run-as-root".into(),
                severity: Severity::Low,
                message: "runs as uid 0 \"root\"\nof the host".into(),
                source: "host:n1".into(),
                subject: "/docker/abc".into(),
                workload: "/docker/abc".into(),
                container: None,
                pid: Some(7),
                pids: vec![7, 9],
                namespace: None,
                paths: vec![],
                file: None,
                document: None,
            },
        ];
        r
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::sample;
    use super::*;

    #[test]
    fn exit_codes_follow_the_threshold() {
        let r = sample();
        assert_eq!(r.exit_code(Some(Severity::High)), 1);
        assert_eq!(r.exit_code(Some(Severity::Critical)), 0);
        assert_eq!(r.exit_code(None), 0);
        let mut broken = Report::new("k8s");
        broken.errors.push(InputError {
            source: "x.yaml".into(),
            document: None,
            message: "bad".into(),
        });
        assert_eq!(broken.exit_code(Some(Severity::Info)), 2);
    }

    #[test]
    fn formats_parse() {
        for f in ["table", "json", "sarif", "prometheus"] {
            assert_eq!(f.parse::<Format>().unwrap().to_string(), f);
        }
        assert!("xml".parse::<Format>().is_err());
    }
}
