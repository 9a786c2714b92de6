//! watertight-report: one reporting stack for every result class watertight reports (isolation
//! findings, kernel CVE exposure and hardening posture, bridge guard checks).
//!
//! A result class implements [`Report`]: it says what its findings are, as [`Row`]s on the one
//! [`Severity`] scale, and how it reads as a table and as metrics. The writers are shared:
//! [`render`] picks one per [`Format`] (JSON is the class's own serde structure; SARIF 2.1.0 comes
//! from [`sarif`], Prometheus text from [`prometheus`]'s writer), and [`Report::exit_code`] is the
//! one `--fail-on` decision.
//!
//! The crate is serde-only, below `watertight-audit`, `watertight-kernel-audit` and
//! `watertight-net`, so all of them can implement the trait without depending on each other.

#![forbid(unsafe_code)]

pub mod prometheus;
pub mod sarif;
mod severity;
pub mod table;

pub use prometheus::Exposition;
pub use severity::{FailOn, Severity};

use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// The output formats every report command offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people (the default; `text` is accepted as another name).
    Table,
    /// The report's own structure as one JSON document.
    Json,
    /// SARIF 2.1.0 for code-scanning services.
    Sarif,
    /// Prometheus text exposition format for the node-exporter textfile collector.
    Prometheus,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 4] = [
        Format::Table,
        Format::Json,
        Format::Sarif,
        Format::Prometheus,
    ];
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" | "text" => Ok(Format::Table),
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

/// What a finding breaks: a SARIF rule descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Stable id (`privileged`, `CVE-2024-1`, `kernel-hardening/kernel.kptr_restrict`,
    /// `net-guard/rule_missing`).
    pub id: String,
    /// A PascalCase name for the kind of rule, when it differs from the id.
    pub name: Option<String>,
    /// One line describing what the rule finds.
    pub title: String,
    pub description: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
    pub help_uri: Option<String>,
    /// The rule's default severity; `None`: the worst severity among its findings.
    pub severity: Option<Severity>,
    /// A score on GitHub's `security-severity` scale (a CVE's CVSS score); `None`: derived from
    /// the severity.
    pub security_severity: Option<String>,
    pub tags: Vec<&'static str>,
}

impl Rule {
    /// A rule with only an id and a title; fill in the rest field by field.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Rule {
        Rule {
            id: id.into(),
            name: None,
            title: title.into(),
            description: None,
            help: None,
            help_uri: None,
            severity: None,
            security_severity: None,
            tags: vec!["security"],
        }
    }
}

/// A logical (non-file) place a finding is about: a workload, a kernel, a bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct LogicalLocation {
    pub name: String,
    pub fully_qualified_name: Option<String>,
    /// SARIF's kind: `resource`, `module`, ...
    pub kind: &'static str,
}

/// Where a finding is: a file it was read from, and what it is about.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    pub file: Option<String>,
    /// Where in `file` (SARIF `region`).
    pub region: Option<Region>,
    pub logical: Vec<LogicalLocation>,
}

/// A place in a file: 1-based line and column (SARIF counts columns in characters, as the YAML
/// reader does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// 1-based line.
    pub start_line: usize,
    /// 1-based column, when known.
    pub start_column: Option<usize>,
}

/// One finding of any result class, on the one severity scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub rule: Rule,
    pub severity: Severity,
    /// One sentence for people, naming the subject.
    pub message: String,
    pub location: Location,
    /// A stable identity across runs, for code-scanning services to track the finding.
    pub fingerprint: Option<String>,
    /// Class-specific facts (pids, CVSS, reachability, ...).
    pub properties: Map<String, Value>,
    /// Whether the row counts toward `--fail-on` (a command may narrow the gate, e.g.
    /// `audit kernel --fail-on-reachable-only`).
    pub gates: bool,
    /// Why the finding is accepted, when it is: it never gates, and SARIF marks the result
    /// suppressed (`suppressions`), which code-scanning services hide from their alert lists.
    pub suppression: Option<Suppression>,
}

/// Where an accepted finding's acceptance is recorded (SARIF 2.1.0 `suppression.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionKind {
    /// With the object itself (an annotation): SARIF `inSource`.
    InSource,
    /// Apart from it (a baseline file): SARIF `external`.
    External,
}

impl SuppressionKind {
    /// The SARIF spelling.
    pub fn sarif(self) -> &'static str {
        match self {
            SuppressionKind::InSource => "inSource",
            SuppressionKind::External => "external",
        }
    }
}

/// An accepted finding's acceptance: where it is recorded and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub kind: SuppressionKind,
    pub justification: String,
}

/// A result class the shared writers and the `--fail-on` decision consume. JSON output is the
/// class's own `Serialize` structure (stable: `audit fleet` reads it back).
pub trait Report: Serialize {
    /// The command that made the report (`host`, `k8s`, `kernel`, `net-check`, ...).
    fn command(&self) -> &str;

    /// Every finding, in the order the report lists them.
    fn rows(&self) -> Vec<Row>;

    /// The table for people, with a trailing newline.
    fn write_table(&self, out: &mut String);

    /// The class's metric families.
    fn write_metrics(&self, out: &mut Exposition);

    /// Inputs that could not be read, one line each (stderr and SARIF notifications).
    fn input_errors(&self) -> Vec<String> {
        Vec::new()
    }

    /// Problems in inputs that did not stop them being audited, one line each (stderr as
    /// `warning:` lines, SARIF notifications of level `warning`).
    fn input_warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Summary lines about the inputs (what was skipped and why): stderr and SARIF
    /// notifications of level `note`.
    fn input_notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// True when nothing could be audited at all (exit code 2).
    fn unusable(&self) -> bool {
        false
    }

    /// True when some input that should have been audited could not be (a manifest that does
    /// not parse): it may hide anything, so it fails the run (exit code 2) unless `--fail-on
    /// none`.
    fn incomplete(&self) -> bool {
        false
    }

    /// Class-specific properties of the SARIF run.
    fn sarif_properties(&self) -> Map<String, Value> {
        Map::new()
    }

    /// How many findings reach the threshold (rows that gate only).
    fn gated(&self, fail_on: FailOn) -> usize {
        self.rows()
            .iter()
            .filter(|r| r.gates && r.suppression.is_none() && fail_on.reached_by(r.severity))
            .count()
    }

    /// The exit code: 2 when nothing could be audited, or when some input could not be and
    /// `fail_on` is not `none`; 1 when a finding is at or above `fail_on`, else 0.
    fn exit_code(&self, fail_on: FailOn) -> u8 {
        if self.unusable() || (self.incomplete() && fail_on != FailOn::Never) {
            2
        } else if self.gated(fail_on) > 0 {
            1
        } else {
            0
        }
    }
}

/// The report in `format`, with a trailing newline.
pub fn render<R: Report + ?Sized>(report: &R, format: Format) -> String {
    match format {
        Format::Table => {
            let mut out = String::new();
            report.write_table(&mut out);
            out
        }
        Format::Json => {
            // Plain data structures with string keys always serialize.
            let mut out = serde_json::to_string_pretty(report)
                .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
            out.push('\n');
            out
        }
        Format::Sarif => sarif::render(report),
        Format::Prometheus => {
            let mut out = Exposition::new();
            report.write_metrics(&mut out);
            out.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A report of the smallest kind: two findings of one rule and one of another.
    #[derive(Serialize)]
    struct Sample {
        errors: Vec<String>,
        nothing_read: bool,
    }

    fn row(id: &str, severity: Severity, gates: bool) -> Row {
        let mut rule = Rule::new(id, format!("title of {id}"));
        rule.help = Some("fix it".into());
        Row {
            rule,
            severity,
            message: format!("{id} found"),
            location: Location {
                file: Some("./a.yaml".into()),
                region: (id == "a-rule").then_some(Region {
                    start_line: 3,
                    start_column: Some(7),
                }),
                logical: vec![LogicalLocation {
                    name: "w".into(),
                    fully_qualified_name: Some("ns/w".into()),
                    kind: "resource",
                }],
            },
            fingerprint: Some(id.into()),
            properties: Map::new(),
            gates,
            suppression: None,
        }
    }

    impl Report for Sample {
        fn command(&self) -> &str {
            "sample"
        }
        fn rows(&self) -> Vec<Row> {
            vec![
                row("b-rule", Severity::Medium, true),
                row("a-rule", Severity::Critical, false),
                row("b-rule", Severity::High, true),
            ]
        }
        fn write_table(&self, out: &mut String) {
            out.push_str("table\n");
        }
        fn write_metrics(&self, out: &mut Exposition) {
            out.gauge("watertight_sample", "Sample.")
                .sample(&[("command", self.command())], 3);
        }
        fn input_errors(&self) -> Vec<String> {
            self.errors.clone()
        }
        fn unusable(&self) -> bool {
            self.nothing_read
        }
    }

    fn sample() -> Sample {
        Sample {
            errors: vec!["x.yaml: bad".into()],
            nothing_read: false,
        }
    }

    #[test]
    fn sarif_links_rules_and_results_and_takes_levels_from_the_scale() {
        let v: Value = serde_json::from_str(&render(&sample(), Format::Sarif)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2, "one descriptor per rule id");
        let results = run["results"].as_array().unwrap();
        for r in results {
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"]);
        }
        let levels: Vec<&str> = results
            .iter()
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["warning", "error", "error"]);
        // The rule's default level is its worst finding's.
        assert_eq!(rules[0]["defaultConfiguration"]["level"], "error");
        assert_eq!(rules[0]["properties"]["security-severity"], "8.0");
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "a.yaml"
        );
        assert_eq!(v["runs"][0]["columnKind"], "unicodeCodePoints");
        // A row that knows where in its file: SARIF `region`; one that does not has none.
        assert!(results[0]["locations"][0]["physicalLocation"]["region"].is_null());
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["region"],
            json!({"startLine": 3, "startColumn": 7})
        );
        assert_eq!(results[0]["properties"]["severity"], "medium");
        assert_eq!(
            results[0]["partialFingerprints"]["watertightFinding/v1"],
            "b-rule"
        );
        assert_eq!(
            run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"],
            "x.yaml: bad"
        );
        assert_eq!(run["properties"], json!({"command": "sample"}));
    }

    #[test]
    fn exit_codes_follow_the_threshold_and_the_gate() {
        let r = sample();
        // The critical row does not gate: high is the worst that counts.
        assert_eq!(r.exit_code(FailOn::At(Severity::Critical)), 0);
        assert_eq!(r.exit_code(FailOn::At(Severity::High)), 1);
        assert_eq!(r.gated(FailOn::At(Severity::Medium)), 2);
        assert_eq!(r.exit_code(FailOn::Never), 0);
        let broken = Sample {
            errors: vec![],
            nothing_read: true,
        };
        assert_eq!(broken.exit_code(FailOn::Never), 2);
    }

    /// Something could not be audited, and there are warnings and notes about the inputs.
    #[derive(Serialize)]
    struct Partial;

    impl Report for Partial {
        fn command(&self) -> &str {
            "partial"
        }
        fn rows(&self) -> Vec<Row> {
            Vec::new()
        }
        fn write_table(&self, _: &mut String) {}
        fn write_metrics(&self, _: &mut Exposition) {}
        fn input_errors(&self) -> Vec<String> {
            vec!["a.yaml: broken".into()]
        }
        fn input_warnings(&self) -> Vec<String> {
            vec!["b.yaml: unknown field".into()]
        }
        fn input_notes(&self) -> Vec<String> {
            vec!["skipped 1 file".into()]
        }
        fn incomplete(&self) -> bool {
            true
        }
    }

    #[test]
    fn an_incomplete_audit_fails_unless_fail_on_none() {
        assert_eq!(Partial.exit_code(FailOn::At(Severity::Critical)), 2);
        assert_eq!(Partial.exit_code(FailOn::Never), 0);
        let v: Value = serde_json::from_str(&render(&Partial, Format::Sarif)).unwrap();
        let invocation = &v["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let levels: Vec<&str> = invocation["toolExecutionNotifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["error", "warning", "note"]);
    }

    /// Accepted findings: one recorded with the object, one in a baseline, one not accepted.
    #[derive(Serialize)]
    struct Accepted;

    impl Report for Accepted {
        fn command(&self) -> &str {
            "accepted"
        }
        fn rows(&self) -> Vec<Row> {
            let suppressed = |id, kind, why: &str| Row {
                suppression: Some(Suppression {
                    kind,
                    justification: why.into(),
                }),
                ..row(id, Severity::Critical, true)
            };
            vec![
                row("open", Severity::Low, true),
                suppressed("here", SuppressionKind::InSource, "by design"),
                suppressed("apart", SuppressionKind::External, "known, tracked"),
            ]
        }
        fn write_table(&self, _: &mut String) {}
        fn write_metrics(&self, _: &mut Exposition) {}
    }

    #[test]
    fn suppressed_rows_are_sarif_results_with_their_suppression_and_never_gate() {
        assert_eq!(Accepted.gated(FailOn::At(Severity::Info)), 1);
        assert_eq!(Accepted.exit_code(FailOn::At(Severity::Medium)), 0);
        let v: Value = serde_json::from_str(&render(&Accepted, Format::Sarif)).unwrap();
        let results = v["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert!(results[0].get("suppressions").is_none(), "{:#}", results[0]);
        assert_eq!(
            results[1]["suppressions"],
            json!([{"kind": "inSource", "status": "accepted", "justification": "by design"}])
        );
        assert_eq!(
            results[2]["suppressions"],
            json!([{"kind": "external", "status": "accepted", "justification": "known, tracked"}])
        );
        // Still the finding as found: its level, rule and fingerprint.
        assert_eq!(results[2]["level"], "error");
        assert_eq!(results[2]["ruleId"], "apart");
        assert_eq!(
            results[2]["partialFingerprints"]["watertightFinding/v1"],
            "apart"
        );
    }

    #[test]
    fn formats_parse_and_render() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        }
        assert_eq!("text".parse::<Format>().unwrap(), Format::Table);
        assert!("xml".parse::<Format>().unwrap_err().contains("sarif"));
        let r = sample();
        assert_eq!(render(&r, Format::Table), "table\n");
        let json: Value = serde_json::from_str(&render(&r, Format::Json)).unwrap();
        assert_eq!(json["errors"][0], "x.yaml: bad");
        let prom = render(&r, Format::Prometheus);
        assert_eq!(prometheus::read(&prom).unwrap().len(), 1);
    }
}
