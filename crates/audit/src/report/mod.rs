//! The report of one audit run, as a `watertight_report::Report`: the shared writers format it
//! (this module only says what its rows, table and metrics are); they never decide what is a
//! finding.

mod prometheus;
mod sarif;
mod table;

use crate::finding::{Finding, Severity};
use crate::fleet::FleetSummary;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
pub use watertight_report::{FailOn, Format};

/// An input that could not be read or understood; the rest of the inputs are still audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputError {
    /// The input: a file path (in a fleet report prefixed with `<node>: `).
    pub source: String,
    /// The 0-based document index within a multi-document YAML file, when the error is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// What is wrong, without the input's name (see [`InputError::line`]).
    pub message: String,
}

/// Why an input was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// It holds no Kubernetes object (a CI workflow, Chart.yaml, values.yaml, a compose file,
    /// package.json, a file that is not YAML).
    NotKubernetes,
    /// An unrendered Go template (a Helm chart's `templates/`): render it first.
    Template,
}

/// An input file left out of the audit, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file, as found.
    pub source: String,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// One Pod Security Standards violation, named as upstream names the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PssViolation {
    /// The upstream check id (e.g. `hostNamespaces`); findings carry it as `pss/<check>`.
    pub check: String,
    /// Upstream's forbidden reason (e.g. `host namespaces`).
    pub reason: String,
    /// Upstream's detail: which fields and values violate; empty when it gives none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The Pod Security Standards verdict for one Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PssEntry {
    /// The manifest file the object was read from.
    pub file: PathBuf,
    /// The object's 0-based document index within `file`.
    pub document: usize,
    /// The 1-based line the object starts on in `file` (YAML only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The object's `apiVersion`.
    pub api_version: String,
    /// The object's `kind` (`Pod`, `Deployment`, ...).
    pub kind: String,
    /// The object's `metadata.name`.
    pub name: String,
    /// The object's `metadata.namespace`, when it sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The level evaluated against: `privileged`, `baseline` or `restricted`.
    pub level: String,
    /// The Pod Security Standards version evaluated: `latest` or `v<major>.<minor>`.
    pub version: String,
    /// Whether pod-security-admission would admit the object at this level and version.
    pub allowed: bool,
    /// Every check the object fails; empty when `allowed`.
    pub violations: Vec<PssViolation>,
}

/// Everything one audit run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The producing tool, always `watertight`.
    pub tool: String,
    /// The watertight version that made the report.
    pub version: String,
    /// `host`, `k8s`, `docker`, `oci` or `fleet`.
    pub command: String,
    /// The node's hostname for `audit host` (fleet uses it to count nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Unix time the report was made.
    #[serde(default)]
    pub generated_at: u64,
    /// Wall time the audit took, set by the caller (0 when not measured).
    #[serde(default)]
    pub duration_seconds: f64,
    /// How many workloads were audited.
    #[serde(default)]
    pub workloads: usize,
    /// Every finding, most severe first; in a fleet report, one per rule and namespace kind.
    pub findings: Vec<Finding>,
    /// Findings accepted with a justification (`audit k8s`: the object's annotation
    /// [`crate::accept::ANNOTATION`] or a `--baseline` entry); listed, never counted toward
    /// `--fail-on`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<crate::accept::AcceptedFinding>,
    /// Pod Security Standards verdicts, one per Kubernetes object (`audit k8s` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pss: Vec<PssEntry>,
    /// Inputs that could not be read or understood; the rest were still audited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InputError>,
    /// Problems in inputs that did not stop them being audited (`audit k8s`: unknown fields
    /// such as typos, fields of the wrong type no check reads, duplicate keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<InputError>,
    /// How many of `errors` are inputs that should have been audited and could not be
    /// (`audit k8s`: manifests that do not parse or whose checked fields do not match the
    /// schema); any makes the run fail with exit code 2 unless `--fail-on none`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unevaluated: usize,
    /// Notes about the inputs that change nothing (`--baseline` entries that match no finding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Input files left out because they are not what the command audits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_files: Vec<SkippedFile>,
    /// The per-rule node counts of a merged report (`audit fleet` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSummary>,
    /// The host's BPF programs as `audit host` found them (`audit host` only; its findings are
    /// the `bpf-*` rules').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<watertight_model::HostBpf>,
    /// Containers `watertight-runc` started, counted per hardening floor (`audit host`: this
    /// node's; `audit fleet`: summed over the nodes, with how many nodes run each), so a
    /// stricter floor's roll-out shows what still runs under the old one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floors: Vec<FloorCount>,
}

/// How many containers run under one hardening floor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FloorCount {
    /// The floor's digest (`sha256:...`).
    pub digest: String,
    /// The floor's `version`.
    pub version: String,
    /// Whether it is the node's current floor (`None`: the node's floor could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
    /// Containers under it.
    pub containers: usize,
    /// In a fleet report: how many nodes run containers under it (with this `current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
}

/// The containers of `workloads` that published a floor, counted per floor.
pub fn floor_counts(workloads: &[watertight_model::Workload]) -> Vec<FloorCount> {
    let mut counts: std::collections::BTreeMap<(String, String, Option<bool>), usize> =
        std::collections::BTreeMap::new();
    for floor in workloads
        .iter()
        .filter_map(|w| w.plan.as_ref().and_then(|p| p.floor.as_ref()))
    {
        let current = floor.current.as_ref().map(|c| c.digest == floor.digest);
        *counts
            .entry((floor.digest.clone(), floor.version.clone(), current))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((digest, version, current), containers)| FloorCount {
            digest,
            version,
            current,
            containers,
            nodes: None,
        })
        .collect()
}

impl Report {
    /// An empty report of `command`, stamped with this watertight version and the current time.
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
            accepted: Vec::new(),
            pss: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            unevaluated: 0,
            notes: Vec::new(),
            skipped_files: Vec::new(),
            fleet: None,
            bpf: None,
            floors: Vec::new(),
        }
    }

    /// Count of findings per severity, in severity order.
    pub fn counts(&self) -> [(Severity, usize); 5] {
        Severity::ALL.map(|s| (s, self.findings.iter().filter(|f| f.severity == s).count()))
    }

    /// The report in `format` (the shared writers of `watertight-report`).
    pub fn render(&self, format: Format) -> String {
        watertight_report::render(self, format)
    }

    /// True when inputs had errors and nothing could be audited.
    fn nothing_read(&self) -> bool {
        let read_something =
            self.workloads > 0 || self.fleet.as_ref().is_some_and(|f| f.nodes_total > 0);
        !self.errors.is_empty() && !read_something
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `skipped 3 files that are not Kubernetes objects (e.g. .github/workflows/ci.yml)`.
fn skip_note(skipped: &[SkippedFile], reason: SkipReason) -> Option<String> {
    let mut files = skipped.iter().filter(|f| f.reason == reason);
    let first = files.next()?;
    let n = 1 + files.count();
    let example = first.source.strip_prefix("./").unwrap_or(&first.source);
    let plural = if n == 1 { "" } else { "s" };
    Some(match reason {
        SkipReason::NotKubernetes => format!(
            "skipped {n} file{plural} that {} not Kubernetes objects (e.g. {example})",
            if n == 1 { "is" } else { "are" }
        ),
        SkipReason::Template => format!(
            "skipped {n} unrendered template{plural} (e.g. {example}): render {} first, e.g. \
             `helm template CHART | watertight audit k8s -`",
            if n == 1 { "it" } else { "them" }
        ),
    })
}

impl InputError {
    /// `source (document N): message`.
    pub fn line(&self) -> String {
        let doc = self
            .document
            .map(|d| format!(" (document {d})"))
            .unwrap_or_default();
        format!("{}{doc}: {}", self.source, self.message)
    }
}

impl watertight_report::Report for Report {
    fn command(&self) -> &str {
        &self.command
    }

    fn rows(&self) -> Vec<watertight_report::Row> {
        let catalog = crate::rules::catalog();
        let accepted = self.accepted.iter().map(|a| watertight_report::Row {
            gates: false,
            suppression: Some(a.suppression()),
            ..sarif::row(&a.finding, &catalog)
        });
        self.findings
            .iter()
            .map(|f| sarif::row(f, &catalog))
            .chain(accepted)
            .collect()
    }

    fn write_table(&self, out: &mut String) {
        table::write(self, out);
    }

    fn write_metrics(&self, out: &mut watertight_report::Exposition) {
        prometheus::write(self, out);
    }

    fn input_errors(&self) -> Vec<String> {
        self.errors.iter().map(InputError::line).collect()
    }

    fn input_warnings(&self) -> Vec<String> {
        self.warnings.iter().map(InputError::line).collect()
    }

    fn input_notes(&self) -> Vec<String> {
        [SkipReason::NotKubernetes, SkipReason::Template]
            .into_iter()
            .filter_map(|r| skip_note(&self.skipped_files, r))
            .chain(self.notes.iter().cloned())
            .collect()
    }

    fn unusable(&self) -> bool {
        self.nothing_read()
    }

    fn incomplete(&self) -> bool {
        self.unevaluated > 0
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
                field: Some("/0/HostConfig/NetworkMode".into()),
                line: Some(4),
                column: Some(3),
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
                field: None,
                line: None,
                column: None,
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
        use watertight_report::Report as _;
        let r = sample();
        assert_eq!(r.exit_code(FailOn::At(Severity::High)), 1);
        assert_eq!(r.exit_code(FailOn::At(Severity::Critical)), 0);
        assert_eq!(r.exit_code(FailOn::Never), 0);
        let mut broken = Report::new("k8s");
        broken.errors.push(InputError {
            source: "x.yaml".into(),
            document: Some(2),
            message: "bad".into(),
        });
        assert_eq!(broken.exit_code(FailOn::At(Severity::Info)), 2);
        assert_eq!(broken.input_errors(), ["x.yaml (document 2): bad"]);
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let text = r.render(Format::Json);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["findings"][0]["rule"], "shared-host-namespace");
        assert_eq!(v["findings"][0]["namespace"], "net");
        assert_eq!(v["findings"][1]["pid"], 7);
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
