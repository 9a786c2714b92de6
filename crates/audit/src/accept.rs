//! Accepted findings: a Kubernetes object may name findings it accepts by design, each with a
//! justification, in the annotation [`ANNOTATION`] of its pod (template) metadata:
//!
//! ```yaml
//! annotations:
//!   watertight.dev/ignore: |
//!     pss/hostNamespaces: hostPID, to read every process's /proc entry
//!     shared-host-namespace[pid]: the same hostPID until 2027-03-31
//! ```
//!
//! One `KEY: JUSTIFICATION [until YYYY-MM-DD]` per line; KEY is a rule id (a catalog rule or `pss/<check>`) with the
//! namespace kind in brackets for the rules that carry one. A finding of that object with exactly
//! that rule and namespace kind is moved to the report's `accepted` list with the justification:
//! still reported (JSON, table, SARIF run properties, a metric), never counted toward `--fail-on`
//! or in the finding totals. Nothing is hidden and no rule changes; the Pod Security Standards
//! verdicts stay what upstream decides. An entry that cannot be read is an input error and
//! accepts nothing, so a typo keeps the finding gating. An entry ending in `until YYYY-MM-DD`
//! applies through that day (UTC); after it, it accepts nothing and is a warning naming the
//! object, the rule and the date. `audit k8s --ignore-accepted` disregards every annotation
//! (auditing manifests one does not trust), and any baseline too.
//!
//! A [`Baseline`] file accepts findings from outside their objects: `audit k8s
//! --write-baseline` writes the counting findings ([`Baseline::from_findings`]), `--baseline`
//! reads it ([`Baseline::load`]) and [`apply_baseline`] accepts the findings its entries list
//! (by rule, subject and [`fingerprint`]), with the same expiry, and notes stale entries.

use crate::finding::Finding;
use crate::report::InputError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
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
    /// The last day (UTC) the entry applies; `None`: no end.
    pub until: Option<Date>,
}

impl Entry {
    /// The entry's key as written: `rule` or `rule[kind]`.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}[{ns}]", self.rule),
            None => self.rule.clone(),
        }
    }

    /// Whether the entry no longer applies on `today`.
    pub fn expired(&self, today: Date) -> bool {
        self.until.is_some_and(|until| until < today)
    }
}

/// A calendar day (proleptic Gregorian, UTC), written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl Date {
    /// The day `secs` seconds after the Unix epoch falls on, in UTC.
    pub fn from_unix_seconds(secs: u64) -> Date {
        // Howard Hinnant's civil_from_days.
        let z = (secs / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// Today, in UTC, from the system clock (callers pass it down; tests inject their own).
    pub fn today() -> Date {
        Date::from_unix_seconds(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A date that is not `YYYY-MM-DD` or not a day of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date: write YYYY-MM-DD (e.g. 2027-03-31)")]
pub struct BadDate(pub String);

impl FromStr for Date {
    type Err = BadDate;
    fn from_str(s: &str) -> Result<Date, BadDate> {
        let bad = || BadDate(s.to_string());
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        if !digits(0..4) || !digits(5..7) || !digits(8..10) {
            return Err(bad());
        }
        let year: i32 = s[0..4].parse().map_err(|_| bad())?;
        let month: u8 = s[5..7].parse().map_err(|_| bad())?;
        let day: u8 = s[8..10].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(bad());
        }
        Ok(Date { year, month, day })
    }
}

/// Splits a trailing `until YYYY-MM-DD` off a justification: `Ok((rest, None))` when there is
/// none, `Err` when `until` is not followed by one date.
fn split_until(text: &str) -> Result<(&str, Option<Date>), String> {
    let mut words = text.rsplitn(3, char::is_whitespace);
    let last = words.next().unwrap_or_default();
    if last == "until" {
        return Err("ends in `until` without a date (write until YYYY-MM-DD)".into());
    }
    let Some(before) = text.strip_suffix(last).map(str::trim_end) else {
        return Ok((text, None));
    };
    let head = match before.strip_suffix("until") {
        Some(head) if head.is_empty() || head.ends_with(char::is_whitespace) => head.trim_end(),
        _ => return Ok((text, None)),
    };
    match last.parse::<Date>() {
        Ok(date) => Ok((head, Some(date))),
        Err(e) => Err(format!("after `until`: {e}")),
    }
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

/// Where a finding's acceptance is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptedBy {
    /// The object's [`ANNOTATION`] (SARIF `inSource`).
    #[default]
    Annotation,
    /// An entry of a `--baseline` file (SARIF `external`).
    Baseline,
}

/// A finding accepted by its object's annotation or by a baseline, with the justification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedFinding {
    /// The finding, as it would have been reported.
    #[serde(flatten)]
    pub finding: Finding,
    /// The justification: the annotation entry's, or the baseline entry's `reason`.
    pub justification: String,
    /// Where the acceptance is recorded.
    #[serde(default)]
    pub accepted_by: AcceptedBy,
}

impl AcceptedFinding {
    /// The acceptance as the shared report writers take it (SARIF `suppressions`).
    pub fn suppression(&self) -> watertight_report::Suppression {
        watertight_report::Suppression {
            kind: match self.accepted_by {
                AcceptedBy::Annotation => watertight_report::SuppressionKind::InSource,
                AcceptedBy::Baseline => watertight_report::SuppressionKind::External,
            },
            justification: self.justification.clone(),
        }
    }
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
        let (justification, until) = match split_until(justification) {
            Ok(split) => split,
            Err(problem) => {
                errors.push(format!(
                    "annotation {ANNOTATION}, line {n}: {key}: {problem}"
                ));
                continue;
            }
        };
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
            until,
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

/// Splits `findings` into those that still count and those their object accepts on `today`
/// (UTC), with one warning per expired entry (it accepts nothing), located at its object.
pub fn apply(
    findings: Vec<Finding>,
    acceptances: &[Acceptance],
    today: Date,
) -> (Vec<Finding>, Vec<AcceptedFinding>, Vec<InputError>) {
    let warnings = acceptances
        .iter()
        .flat_map(|a| {
            a.entries
                .iter()
                .filter(|e| e.expired(today))
                .map(move |e| InputError {
                    source: a.file.display().to_string(),
                    document: Some(a.document),
                    message: format!(
                        "{}: annotation {ANNOTATION}: {} expired on {} (the last day it \
                         applied), renew or remove it; the finding counts again",
                        a.workload,
                        e.key(),
                        e.until.map(|d| d.to_string()).unwrap_or_default()
                    ),
                })
        })
        .collect();
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
            .find(|e| e.rule == f.rule && e.namespace == f.namespace && !e.expired(today));
        match entry {
            Some(e) => accepted.push(AcceptedFinding {
                justification: e.justification.clone(),
                finding: f,
                accepted_by: AcceptedBy::Annotation,
            }),
            None => kept.push(f),
        }
    }
    (kept, accepted, warnings)
}

/// A finding's key as entries write it: `rule`, or `rule[kind]` for a namespace kind.
pub fn key_of(f: &Finding) -> String {
    match &f.namespace {
        Some(ns) => format!("{}[{ns}]", f.rule),
        None => f.rule.clone(),
    }
}

/// A stable identity of a finding across runs: its rule, namespace kind, workload, container
/// and the paths it names, hashed (FNV-1a, 64 bits). Not its message, file, document index or
/// line, which change without the finding changing.
pub fn fingerprint(f: &Finding) -> String {
    let mut paths = f.paths.clone();
    paths.sort();
    let parts = [
        f.rule.as_str(),
        f.namespace.as_deref().unwrap_or(""),
        f.workload.as_str(),
        f.container.as_deref().unwrap_or(""),
        &paths.join("\u{1f}"),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        // 0xff never occurs in UTF-8: parts cannot run into each other.
        let separator = (i > 0).then_some(0xffu8);
        for b in separator.into_iter().chain(part.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The baseline file format's version.
pub const BASELINE_VERSION: u32 = 1;

/// The `reason` `--write-baseline` writes, for the user to replace.
pub const REASON_PLACEHOLDER: &str = "TODO: say why this finding is acceptable";

/// A baseline file (`--write-baseline` writes one, `--baseline` reads it): findings accepted
/// apart from their objects, each with a reason and optionally until a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Always [`BASELINE_VERSION`].
    pub version: u32,
    /// The accepted findings.
    pub entries: Vec<BaselineEntry>,
}

/// One accepted finding of a [`Baseline`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    /// The finding's key ([`key_of`]): `rule` or `rule[kind]`.
    pub rule: String,
    /// What the finding is about ([`Finding::qualified_subject`]).
    pub subject: String,
    /// The finding's [`fingerprint`].
    pub fingerprint: String,
    /// Why it is accepted.
    pub reason: String,
    /// The last day (UTC, `YYYY-MM-DD`) it applies; absent: no end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl BaselineEntry {
    fn matches(&self, f: &Finding) -> bool {
        self.rule == key_of(f)
            && self.subject == f.qualified_subject()
            && self.fingerprint == fingerprint(f)
    }
}

impl Baseline {
    /// Every finding of `findings` as an entry with the reason placeholder, once each.
    pub fn from_findings(findings: &[Finding]) -> Baseline {
        let mut entries: Vec<BaselineEntry> = Vec::new();
        for f in findings {
            let entry = BaselineEntry {
                rule: key_of(f),
                subject: f.qualified_subject(),
                fingerprint: fingerprint(f),
                reason: REASON_PLACEHOLDER.into(),
                until: None,
            };
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        Baseline {
            version: BASELINE_VERSION,
            entries,
        }
    }

    /// The file's text (pretty JSON, trailing newline).
    pub fn to_json(&self) -> String {
        // Strings and numbers only: always serializes.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a baseline from `bytes`; the error is one line naming `path` and the fix.
    pub fn parse(bytes: &[u8], path: &std::path::Path) -> Result<Baseline, String> {
        let invalid = |problem: String| {
            format!(
                "--baseline {}: {problem}; fix the file or write a new one with --write-baseline",
                path.display()
            )
            .replace(['\n', '\r'], " ")
        };
        let baseline: Baseline = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a baseline file ({e})")))?;
        if baseline.version != BASELINE_VERSION {
            return Err(invalid(format!(
                "version {} is not supported (this watertight reads version {BASELINE_VERSION})",
                baseline.version
            )));
        }
        for (i, e) in baseline.entries.iter().enumerate() {
            if [&e.rule, &e.subject, &e.fingerprint, &e.reason]
                .iter()
                .any(|s| s.trim().is_empty())
            {
                return Err(invalid(format!(
                    "entry {i}: rule, subject, fingerprint and reason must not be empty"
                )));
            }
            if let Some(until) = &e.until {
                until
                    .parse::<Date>()
                    .map_err(|err| invalid(format!("entry {i}: until: {err}")))?;
            }
        }
        Ok(baseline)
    }

    /// Reads a baseline file; the error is one line naming it and the fix.
    pub fn load(path: &std::path::Path) -> Result<Baseline, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "--baseline {}: cannot read it ({e}); write one with --write-baseline FILE",
                path.display()
            )
        })?;
        Baseline::parse(&bytes, path)
    }
}

/// What a baseline did to a report's findings.
#[derive(Debug, Default)]
pub struct BaselineOutcome {
    /// The findings that still count.
    pub kept: Vec<Finding>,
    /// The findings a baseline entry accepts.
    pub accepted: Vec<AcceptedFinding>,
    /// One per expired entry that matches a finding (the finding counts again).
    pub warnings: Vec<InputError>,
    /// One per entry that matches no finding, neither counted nor already accepted.
    pub notes: Vec<String>,
}

/// Accepts the findings of `findings` that an entry of `baseline` (read from `file`) lists and
/// that has not expired on `today`; `already_accepted` (by annotation) only keeps entries from
/// being stale.
pub fn apply_baseline(
    findings: Vec<Finding>,
    already_accepted: &[AcceptedFinding],
    baseline: &Baseline,
    file: &std::path::Path,
    today: Date,
) -> BaselineOutcome {
    let mut out = BaselineOutcome::default();
    let mut used = vec![false; baseline.entries.len()];
    for (i, e) in baseline.entries.iter().enumerate() {
        used[i] = already_accepted.iter().any(|a| e.matches(&a.finding));
    }
    for f in findings {
        let Some(i) = baseline.entries.iter().position(|e| e.matches(&f)) else {
            out.kept.push(f);
            continue;
        };
        used[i] = true;
        let e = &baseline.entries[i];
        // `Baseline::parse` checked the date.
        let until = e.until.as_deref().and_then(|d| d.parse::<Date>().ok());
        match until {
            Some(until) if until < today => {
                out.warnings.push(InputError {
                    source: file.display().to_string(),
                    document: None,
                    message: format!(
                        "baseline entry {} on {}: expired on {until} (the last day it applied), \
                         renew or remove it; the finding counts again",
                        e.rule, e.subject
                    ),
                });
                out.kept.push(f);
            }
            _ => out.accepted.push(AcceptedFinding {
                finding: f,
                justification: e.reason.clone(),
                accepted_by: AcceptedBy::Baseline,
            }),
        }
    }
    for (e, used) in baseline.entries.iter().zip(used) {
        if !used {
            out.notes.push(format!(
                "stale baseline entry in {}: {} on {} (fingerprint {}) matches no finding; \
                 remove it",
                file.display(),
                e.rule,
                e.subject,
                e.fingerprint
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `(needle, line)`: some error names that line and says that.
    fn assert_errors_on_lines(errors: &[String], expected: &[(&str, usize)]) {
        for (needle, line) in expected {
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains(needle) && e.contains(&format!("line {line}:"))),
                "{needle} on line {line}: {errors:#?}"
            );
        }
    }
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
            field: None,
            line: None,
            column: None,
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
                    until: None,
                },
                Entry {
                    rule: "shared-host-namespace".into(),
                    namespace: Some("pid".into()),
                    justification: "the same hostPID".into(),
                    until: None,
                },
            ]
        );
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert_errors_on_lines(
            &errors,
            &[
                ("no justification", 4),
                ("unknown rule \"no-such-rule\"", 5),
                ("unknown namespace kind \"pdi\"", 6),
                ("closing `]`", 7),
                ("is not `RULE: JUSTIFICATION`", 8),
                ("accepted twice", 9),
            ],
        );
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
        let (kept, accepted, warnings) = apply(findings, &[acceptance], day("2026-01-01"));
        assert!(warnings.is_empty(), "{warnings:#?}");
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

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn dates_parse_strictly_and_come_from_unix_time() {
        assert_eq!(day("2024-02-29").to_string(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-32",
            "2024/01/01",
            "+202-01-01",
            "2024-01-0a",
            "2024-01-01x",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert_eq!(Date::from_unix_seconds(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix_seconds(1_709_251_199), day("2024-02-29"));
        assert_eq!(Date::from_unix_seconds(1_709_251_200), day("2024-03-01"));
        assert!(day("2024-01-31") < day("2024-02-01"));
        assert!(day("2023-12-31") < day("2024-01-01"));
    }

    #[test]
    fn an_entry_may_end_with_until_a_date_and_a_bad_date_accepts_nothing() {
        let (entries, errors) = parse(
            "privileged: needs /dev/kvm until 2027-03-31\n\
             dangerous-capabilities: wait until   2027-01-01  \n\
             host-devices: runs until the migration\n\
             run-as-root: fine until 2027-02-30\n\
             host-ports: fine until\n\
             no-new-privs: until 2027-01-01\n",
        );
        let got: Vec<(String, String, Option<String>)> = entries
            .iter()
            .map(|e| {
                (
                    e.key(),
                    e.justification.clone(),
                    e.until.map(|d| d.to_string()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "privileged".into(),
                    "needs /dev/kvm".into(),
                    Some("2027-03-31".into())
                ),
                (
                    "dangerous-capabilities".into(),
                    "wait".into(),
                    Some("2027-01-01".into())
                ),
                (
                    "host-devices".into(),
                    "runs until the migration".into(),
                    None
                ),
            ]
        );
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert_errors_on_lines(
            &errors,
            &[
                ("\"2027-02-30\" is not a date", 4),
                ("without a date", 5),
                ("no justification", 6),
            ],
        );
    }

    #[test]
    fn an_entry_applies_through_its_day_and_then_warns_and_accepts_nothing() {
        let (entries, errors) = parse(
            "shared-host-namespace[pid]: hostPID until 2026-06-30\n\
             dangerous-capabilities: SYS_PTRACE\n",
        );
        assert!(errors.is_empty(), "{errors:#?}");
        let acceptance = Acceptance {
            file: "d.yaml".into(),
            document: 1,
            workload: "ns/DaemonSet/a".into(),
            entries,
        };
        let findings = || {
            vec![
                finding("shared-host-namespace", Some("pid"), "ns/DaemonSet/a"),
                finding("dangerous-capabilities", None, "ns/DaemonSet/a"),
            ]
        };
        for today in ["2026-01-01", "2026-06-30"] {
            let (kept, accepted, warnings) =
                apply(findings(), std::slice::from_ref(&acceptance), day(today));
            assert!(kept.is_empty(), "{today}: {kept:#?}");
            assert_eq!(accepted.len(), 2, "{today}");
            assert!(warnings.is_empty(), "{today}: {warnings:#?}");
        }
        let (kept, accepted, warnings) = apply(findings(), &[acceptance], day("2026-07-01"));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].rule, "shared-host-namespace");
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0].finding.rule, "dangerous-capabilities");
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        let w = &warnings[0];
        assert_eq!((w.source.as_str(), w.document), ("d.yaml", Some(1)));
        assert!(
            w.message.starts_with("ns/DaemonSet/a: ")
                && w.message
                    .contains("shared-host-namespace[pid] expired on 2026-06-30")
                && w.message.contains("renew or remove it"),
            "{}",
            w.message
        );
    }

    #[test]
    fn fingerprints_ignore_wording_and_place_but_not_identity() {
        let f = finding("host-path-mounts", None, "ns/Deployment/a");
        let mut moved = f.clone();
        moved.message = "new wording".into();
        moved.file = Some("elsewhere.yaml".into());
        moved.source = "elsewhere.yaml".into();
        moved.document = Some(7);
        assert_eq!(fingerprint(&f), fingerprint(&moved));
        for changed in [
            Finding {
                container: Some("app".into()),
                ..f.clone()
            },
            Finding {
                namespace: Some("pid".into()),
                ..f.clone()
            },
            Finding {
                paths: vec!["/etc".into()],
                ..f.clone()
            },
            Finding {
                workload: "ns/Deployment/b".into(),
                ..f.clone()
            },
        ] {
            assert_ne!(fingerprint(&f), fingerprint(&changed), "{changed:?}");
        }
    }

    #[test]
    fn a_baseline_accepts_what_it_lists_until_its_day_and_names_stale_entries() {
        let findings = || {
            vec![
                Finding {
                    container: Some("app".into()),
                    ..finding("privileged", None, "ns/Pod/p")
                },
                finding("shared-host-namespace", Some("net"), "ns/Pod/p"),
                finding("dangerous-capabilities", None, "ns/Pod/p"),
            ]
        };
        let mut b = Baseline::from_findings(&findings()[..2]);
        assert_eq!(b.entries[0].rule, "privileged");
        assert_eq!(b.entries[0].subject, "ns/Pod/p/app");
        assert_eq!(b.entries[0].reason, REASON_PLACEHOLDER);
        assert_eq!(b.entries[1].rule, "shared-host-namespace[net]");
        b.entries[0].reason = "needs /dev/kvm".into();
        b.entries[1].until = Some("2026-06-30".into());
        // Written and read back unchanged.
        let file = std::path::Path::new("base.json");
        assert_eq!(Baseline::parse(b.to_json().as_bytes(), file).unwrap(), b);
        let mut stale = b.entries[0].clone();
        stale.subject = "ns/Pod/gone/app".into();
        b.entries.push(stale);

        let out = apply_baseline(findings(), &[], &b, file, day("2026-06-30"));
        assert_eq!(out.kept.len(), 1);
        assert_eq!(out.kept[0].rule, "dangerous-capabilities");
        assert_eq!(out.accepted.len(), 2);
        assert_eq!(out.accepted[0].justification, "needs /dev/kvm");
        assert_eq!(out.accepted[0].accepted_by, AcceptedBy::Baseline);
        assert!(out.warnings.is_empty(), "{:#?}", out.warnings);
        assert_eq!(out.notes.len(), 1, "{:#?}", out.notes);
        assert!(
            out.notes[0]
                .starts_with("stale baseline entry in base.json: privileged on ns/Pod/gone/app")
                && out.notes[0].ends_with("remove it"),
            "{}",
            out.notes[0]
        );

        let out = apply_baseline(findings(), &[], &b, file, day("2026-07-01"));
        assert_eq!(out.kept.len(), 2);
        assert_eq!(out.accepted.len(), 1);
        assert_eq!(out.warnings.len(), 1);
        assert!(
            out.warnings[0]
                .message
                .contains("shared-host-namespace[net] on ns/Pod/p: expired on 2026-06-30")
                && out.warnings[0].message.contains("renew or remove it"),
            "{:?}",
            out.warnings[0]
        );
        // An entry whose finding the annotation already accepts is not stale.
        let annotated = AcceptedFinding {
            finding: findings().remove(0),
            justification: "j".into(),
            accepted_by: AcceptedBy::Annotation,
        };
        let out = apply_baseline(
            findings().split_off(1),
            &[annotated],
            &b,
            file,
            day("2026-01-01"),
        );
        assert_eq!(out.notes.len(), 1, "{:#?}", out.notes);
    }

    #[test]
    fn a_broken_baseline_is_one_line_naming_the_file_and_the_fix() {
        let file = std::path::Path::new("dir/base.json");
        for (text, needle) in [
            ("", "not a baseline file"),
            ("{\n\"version\": 1,\n", "not a baseline file"),
            ("[]", "not a baseline file"),
            (
                r#"{"version": 2, "entries": []}"#,
                "version 2 is not supported",
            ),
            (
                r#"{"version": 1, "entries": [], "extra": 1}"#,
                "unknown field",
            ),
            (
                r#"{"version": 1, "entries": [{"rule": "privileged", "subject": "s", "fingerprint": "f", "reason": " "}]}"#,
                "entry 0: rule, subject, fingerprint and reason must not be empty",
            ),
            (
                r#"{"version": 1, "entries": [{"rule": "privileged", "subject": "s", "fingerprint": "f", "reason": "r", "until": "soon"}]}"#,
                "entry 0: until: \"soon\" is not a date",
            ),
        ] {
            let e = Baseline::parse(text.as_bytes(), file).unwrap_err();
            assert!(e.starts_with("--baseline dir/base.json: "), "{e}");
            assert!(e.contains(needle), "{needle}: {e}");
            assert!(e.ends_with("write a new one with --write-baseline"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = Baseline::load(std::path::Path::new("/nonexistent-wt/base.json")).unwrap_err();
        assert!(
            e.starts_with("--baseline /nonexistent-wt/base.json: cannot read it"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert!(Baseline::parse(br#"{"version": 1, "entries": []}"#, file).is_ok());
    }
}
