//! Accepted findings: a Kubernetes object may name findings it accepts by design, each with a
//! justification, in the annotation [`ANNOTATION`] of its pod (template) metadata:
//!
//! ```yaml
//! annotations:
//!   watertight.dev/ignore: |
//!     pss/hostNamespaces: hostPID, to read every process's /proc entry
//!     shared-host-namespace[pid]: the same hostPID
//! ```
//!
//! One `KEY: JUSTIFICATION` per line; KEY is a rule id (a catalog rule or `pss/<check>`) with the
//! namespace kind in brackets for the rules that carry one. A finding of that object with exactly
//! that rule and namespace kind is moved to the report's `accepted` list with the justification:
//! still reported (JSON, table, SARIF run properties, a metric), never counted toward `--fail-on`
//! or in the finding totals. Nothing is hidden and no rule changes; the Pod Security Standards
//! verdicts stay what upstream decides. An entry that cannot be read is an input error and
//! accepts nothing, so a typo keeps the finding gating. `audit k8s --ignore-accepted` disregards
//! every annotation (auditing manifests one does not trust).

use crate::finding::Finding;
use crate::report::InputError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use watertight_model::NamespaceKind;

/// The annotation (on a Pod's metadata, or a workload's pod template metadata) that lists the
/// findings the object accepts.
pub const ANNOTATION: &str = "watertight.dev/ignore";

/// One accepted finding key with its justification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The rule id (`dangerous-capabilities`, `pss/hostNamespaces`, ...).
    pub rule: String,
    /// The namespace kind for rules that carry one (`pid` in `shared-host-namespace[pid]`).
    pub namespace: Option<String>,
    /// Why the object needs what the finding reports.
    pub justification: String,
}

/// What one object accepts: the entries of its annotation, located like its findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    /// The manifest file of the object.
    pub file: PathBuf,
    /// The object's 0-based document index in `file`.
    pub document: usize,
    /// The object's workload id (`namespace/Kind/name`), as its findings carry it.
    pub workload: String,
    /// The accepted finding keys.
    pub entries: Vec<Entry>,
}

/// A finding its object accepts, with the object's justification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedFinding {
    /// The finding, as it would have been reported.
    #[serde(flatten)]
    pub finding: Finding,
    /// The justification from the object's annotation.
    pub justification: String,
}

/// Reads the annotation's text: the valid entries, and one message per line that is not one
/// (each names the line and the fix).
pub fn parse(text: &str) -> (Vec<Entry>, Vec<String>) {
    let known: Vec<&str> = crate::rules::catalog().iter().map(|r| r.id).collect();
    let mut entries: Vec<Entry> = Vec::new();
    let mut errors = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let n = n + 1;
        let Some((key, justification)) = line.split_once(':') else {
            errors.push(format!(
                "annotation {ANNOTATION}, line {n}: {line:?} is not `RULE: JUSTIFICATION`"
            ));
            continue;
        };
        let (key, justification) = (key.trim(), justification.trim());
        let (rule, namespace) = match key.split_once('[') {
            Some((rule, rest)) => match rest.strip_suffix(']') {
                Some(ns) => (rule, Some(ns)),
                None => {
                    errors.push(format!(
                        "annotation {ANNOTATION}, line {n}: {key:?} lacks its closing `]` \
                         (write e.g. shared-host-namespace[pid])"
                    ));
                    continue;
                }
            },
            None => (key, None),
        };
        let pss_check = rule.strip_prefix("pss/").is_some_and(|c| {
            !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        });
        if !pss_check && !known.contains(&rule) {
            errors.push(format!(
                "annotation {ANNOTATION}, line {n}: unknown rule {rule:?} (the rule ids are \
                 listed in docs/audit.md; Pod Security checks are pss/<check>)"
            ));
            continue;
        }
        if let Some(ns) = namespace {
            if !NamespaceKind::ALL.iter().any(|k| k.proc_name() == ns) {
                errors.push(format!(
                    "annotation {ANNOTATION}, line {n}: unknown namespace kind {ns:?} in {key:?} \
                     (one of net, pid, ipc, uts, mnt, user, cgroup, time)"
                ));
                continue;
            }
        }
        if justification.is_empty() {
            errors.push(format!(
                "annotation {ANNOTATION}, line {n}: {key} has no justification (write why the \
                 object needs it after the colon)"
            ));
            continue;
        }
        let entry = Entry {
            rule: rule.to_string(),
            namespace: namespace.map(str::to_string),
            justification: justification.to_string(),
        };
        if entries
            .iter()
            .any(|e| e.rule == entry.rule && e.namespace == entry.namespace)
        {
            errors.push(format!(
                "annotation {ANNOTATION}, line {n}: {key} is accepted twice (keep one line)"
            ));
            continue;
        }
        entries.push(entry);
    }
    (entries, errors)
}

/// The acceptance of one object from its pod metadata's annotations, if it has the annotation;
/// entries that cannot be read go to `report_to` (the caller's warnings), located at the object.
pub fn of_object(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    file: &std::path::Path,
    document: usize,
    workload: &str,
    report_to: &mut Vec<InputError>,
) -> Option<Acceptance> {
    let text = annotations?.get(ANNOTATION)?;
    let (entries, problems) = parse(text);
    report_to.extend(problems.into_iter().map(|message| InputError {
        source: file.display().to_string(),
        document: Some(document),
        message: format!("{workload}: {message}"),
    }));
    Some(Acceptance {
        file: file.to_path_buf(),
        document,
        workload: workload.to_string(),
        entries,
    })
}

/// Splits `findings` into those that still count and those their object accepts.
pub fn apply(
    findings: Vec<Finding>,
    acceptances: &[Acceptance],
) -> (Vec<Finding>, Vec<AcceptedFinding>) {
    let mut kept = Vec::new();
    let mut accepted = Vec::new();
    for f in findings {
        let entry = acceptances
            .iter()
            .filter(|a| {
                f.file.as_deref() == Some(a.file.as_path())
                    && f.document == Some(a.document)
                    && f.workload == a.workload
            })
            .flat_map(|a| &a.entries)
            .find(|e| e.rule == f.rule && e.namespace == f.namespace);
        match entry {
            Some(e) => accepted.push(AcceptedFinding {
                justification: e.justification.clone(),
                finding: f,
            }),
            None => kept.push(f),
        }
    }
    (kept, accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    fn finding(rule: &str, namespace: Option<&str>, workload: &str) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::High,
            message: "m".into(),
            source: "d.yaml".into(),
            subject: workload.into(),
            workload: workload.into(),
            container: None,
            pid: None,
            pids: vec![],
            namespace: namespace.map(str::to_string),
            paths: vec![],
            file: Some("d.yaml".into()),
            document: Some(1),
        }
    }

    #[test]
    fn entries_need_a_known_rule_a_known_kind_and_a_justification() {
        let (entries, errors) = parse(
            "pss/hostNamespaces: hostPID: to see every process\n\
             \n\
             shared-host-namespace[pid]:  the same hostPID  \n\
             dangerous-capabilities:\n\
             no-such-rule: why\n\
             shared-host-namespace[pdi]: typo\n\
             shared-host-namespace[pid: unclosed\n\
             just words\n\
             shared-host-namespace[pid]: twice\n",
        );
        assert_eq!(
            entries,
            vec![
                Entry {
                    rule: "pss/hostNamespaces".into(),
                    namespace: None,
                    justification: "hostPID: to see every process".into(),
                },
                Entry {
                    rule: "shared-host-namespace".into(),
                    namespace: Some("pid".into()),
                    justification: "the same hostPID".into(),
                },
            ]
        );
        assert_eq!(errors.len(), 6, "{errors:#?}");
        for (needle, line) in [
            ("no justification", 4),
            ("unknown rule \"no-such-rule\"", 5),
            ("unknown namespace kind \"pdi\"", 6),
            ("closing `]`", 7),
            ("is not `RULE: JUSTIFICATION`", 8),
            ("accepted twice", 9),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(needle) && e.contains(&format!("line {line}:"))),
                "{needle} on line {line}: {errors:#?}"
            );
        }
    }

    #[test]
    fn only_the_exact_rule_and_kind_of_the_same_object_is_accepted() {
        let (entries, errors) =
            parse("shared-host-namespace[pid]: hostPID\ndangerous-capabilities: SYS_PTRACE\n");
        assert!(errors.is_empty());
        let acceptance = Acceptance {
            file: "d.yaml".into(),
            document: 1,
            workload: "ns/DaemonSet/a".into(),
            entries,
        };
        let findings = vec![
            finding("shared-host-namespace", Some("pid"), "ns/DaemonSet/a"),
            finding("shared-host-namespace", Some("net"), "ns/DaemonSet/a"),
            finding("dangerous-capabilities", None, "ns/DaemonSet/a"),
            // Another object of the same file and document (a List item): not accepted.
            finding("dangerous-capabilities", None, "ns/DaemonSet/b"),
        ];
        let (kept, accepted) = apply(findings, &[acceptance]);
        let keys = |fs: Vec<&Finding>| -> Vec<String> {
            fs.iter()
                .map(|f| format!("{} {:?} {}", f.rule, f.namespace, f.workload))
                .collect()
        };
        assert_eq!(
            keys(kept.iter().collect()),
            [
                "shared-host-namespace Some(\"net\") ns/DaemonSet/a",
                "dangerous-capabilities None ns/DaemonSet/b"
            ]
        );
        assert_eq!(
            keys(accepted.iter().map(|a| &a.finding).collect()),
            [
                "shared-host-namespace Some(\"pid\") ns/DaemonSet/a",
                "dangerous-capabilities None ns/DaemonSet/a"
            ]
        );
        assert_eq!(accepted[1].justification, "SYS_PTRACE");
    }
}
