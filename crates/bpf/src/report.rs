//! `watertight bpf vet`'s report: one entry per object (its vetting, or why it could not be
//! read), through the project's one report stack (watertight-report): every refusal is a
//! finding of severity `high` whose rule is the policy key that refuses it (`bpf/helpers.classes`),
//! so `--fail-on` and the formats behave as for every report command. An object that cannot be
//! read is an input error and makes the report unusable (exit 2).

use crate::{Refusal, Vetting};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use watertight_report::table::{clip, write_rows};
use watertight_report::{Exposition, Location, LogicalLocation, Report, Row, Rule, Severity};

/// The report of one `bpf vet` run.
#[derive(Debug, Clone, Serialize)]
pub struct VetReport {
    /// The policy file, or `built-in`.
    pub policy: String,
    /// [`crate::Policy::sha256`] of it.
    pub policy_sha256: String,
    /// Each object named, in order.
    pub objects: Vec<VetObject>,
}

/// One object of the report.
#[derive(Debug, Clone, Serialize)]
pub struct VetObject {
    /// The path as given.
    pub path: String,
    /// `admitted`, `refused`, or `error` (could not be read).
    pub verdict: &'static str,
    /// What vetting found; absent when the object could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vetting: Option<Vetting>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl VetObject {
    /// An object that was vetted.
    pub fn vetted(path: String, vetting: Vetting) -> VetObject {
        VetObject {
            path,
            verdict: if vetting.admitted() {
                "admitted"
            } else {
                "refused"
            },
            vetting: Some(vetting),
            error: None,
        }
    }

    /// An object that could not be read or parsed.
    pub fn failed(path: String, error: String) -> VetObject {
        VetObject {
            path,
            verdict: "error",
            vetting: None,
            error: Some(error),
        }
    }
}

fn rule_for(key: &str) -> Rule {
    let (title, help) = match key {
        "programs.types" => (
            "program type not allowed",
            "add the type to programs.types, or use a tracepoint",
        ),
        "programs.attach" => (
            "attach point not allowed",
            "add the tracepoint (category:event) to programs.attach",
        ),
        "helpers.classes" => (
            "helper of a class not allowed",
            "allow the helper by name in helpers.allow, or its class in helpers.classes",
        ),
        "helpers.deny" => ("helper denied by name", "remove it from helpers.deny"),
        "helpers.allow" => (
            "unknown helper id",
            "a helper id the helper table (Linux 6.18) does not know is always refused",
        ),
        "kfuncs.allow" => ("kfunc not allowed", "add the kfunc's name to kfuncs.allow"),
        "maps.types" => ("map type not allowed", "add the map type to maps.types"),
        _ => ("refused by the policy", "see docs/bpf.md"),
    };
    let mut rule = Rule::new(format!("bpf/{key}"), title);
    rule.help = Some(help.to_string());
    rule.severity = Some(Severity::High);
    rule
}

fn row(path: &str, sha: &str, r: &Refusal) -> Row {
    let mut properties = Map::new();
    properties.insert("policy_key".into(), Value::from(r.policy_key.clone()));
    properties.insert("subject".into(), Value::from(r.subject.clone()));
    if let Some(p) = &r.program {
        properties.insert("program".into(), Value::from(p.clone()));
    }
    if let Some(s) = &r.section {
        properties.insert("section".into(), Value::from(s.clone()));
    }
    if let Some(i) = r.insn {
        properties.insert("insn".into(), Value::from(i));
    }
    properties.insert("object_sha256".into(), Value::from(sha.to_string()));
    let logical = r
        .program
        .iter()
        .map(|p| LogicalLocation {
            name: p.clone(),
            fully_qualified_name: Some(format!("{path}:{p}")),
            kind: "function",
        })
        .collect();
    Row {
        rule: rule_for(&r.policy_key),
        severity: Severity::High,
        message: format!("{path}: {r}"),
        location: Location {
            file: Some(path.to_string()),
            region: None,
            logical,
        },
        fingerprint: Some(format!(
            "{sha}/{}/{}/{}",
            r.program.as_deref().unwrap_or(""),
            r.insn.map(|i| i.to_string()).unwrap_or_default(),
            r.subject
        )),
        properties,
        gates: true,
        suppression: None,
    }
}

impl Report for VetReport {
    fn command(&self) -> &str {
        "bpf-vet"
    }

    fn rows(&self) -> Vec<Row> {
        self.objects
            .iter()
            .filter_map(|o| o.vetting.as_ref().map(|v| (o, v)))
            .flat_map(|(o, v)| v.refusals.iter().map(|r| row(&o.path, &v.object_sha256, r)))
            .collect()
    }

    fn write_table(&self, out: &mut String) {
        let mut rows = Vec::new();
        for o in &self.objects {
            let Some(v) = &o.vetting else { continue };
            for p in &v.programs {
                let mut names: Vec<String> = p
                    .helpers
                    .iter()
                    .map(|h| h.name.clone().unwrap_or_else(|| format!("#{}", h.id)))
                    .chain(p.kfuncs.iter().map(|k| format!("kfunc:{}", k.name)))
                    .collect();
                names.sort();
                names.dedup();
                let refused = v
                    .refusals
                    .iter()
                    .any(|r| r.program.as_ref() == Some(&p.name));
                rows.push([
                    o.path.clone(),
                    p.name.clone(),
                    p.prog_type.clone(),
                    p.attach.clone().unwrap_or_else(|| "-".into()),
                    clip(&names.join(","), 60),
                    if refused { "refused" } else { "ok" }.to_string(),
                ]);
            }
        }
        if !rows.is_empty() {
            write_rows(
                out,
                ["OBJECT", "PROGRAM", "TYPE", "ATTACH", "HELPERS", "VERDICT"],
                &rows,
            );
        }
        let refusals: Vec<&Refusal> = self
            .objects
            .iter()
            .filter_map(|o| o.vetting.as_ref())
            .flat_map(|v| v.refusals.iter())
            .collect();
        if !refusals.is_empty() {
            out.push_str("\nrefusals:\n");
            for o in &self.objects {
                for r in o.vetting.iter().flat_map(|v| v.refusals.iter()) {
                    let _ = writeln!(out, "  {}: {r}", o.path);
                }
            }
        }
        let count = |verdict: &str| self.objects.iter().filter(|o| o.verdict == verdict).count();
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{} object(s): {} admitted, {} refused, {} unreadable (policy {}, sha256 {})",
            self.objects.len(),
            count("admitted"),
            count("refused"),
            count("error"),
            self.policy,
            &self.policy_sha256[..self.policy_sha256.len().min(16)]
        );
    }

    fn write_metrics(&self, out: &mut Exposition) {
        let mut g = out.gauge(
            "watertight_bpf_vet_refusals",
            "Refusals of each vetted BPF object by the policy.",
        );
        for o in &self.objects {
            if let Some(v) = &o.vetting {
                g.sample(&[("object", o.path.as_str())], v.refusals.len());
            }
        }
    }

    fn input_errors(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter_map(|o| o.error.as_ref().map(|e| format!("{}: {e}", o.path)))
            .collect()
    }

    fn unusable(&self) -> bool {
        self.objects.iter().any(|o| o.error.is_some())
    }

    fn sarif_properties(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("policy".into(), Value::from(self.policy.clone()));
        m.insert(
            "policy_sha256".into(),
            Value::from(self.policy_sha256.clone()),
        );
        m
    }
}
