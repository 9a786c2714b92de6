//! Table output for people: one line per finding, then totals (the shared column writer).

use super::Report;
use std::fmt::Write;
use watertight_report::table::{clip, write_rows};

pub(super) fn write(report: &Report, out: &mut String) {
    if let Some(fleet) = &report.fleet {
        let _ = writeln!(out, "Fleet: {} node report(s) merged", fleet.nodes_total);
    }
    // watertight-runc containers per runtime floor: what a stricter floor's roll-out left.
    for f in &report.floors {
        let state = match f.current {
            Some(true) => "current",
            Some(false) => "superseded",
            None => "not compared",
        };
        let nodes = f
            .nodes
            .map(|n| format!(" on {n} node(s)"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Runtime floor {} {} ({state}): {} container(s){nodes}",
            f.version, f.digest, f.containers
        );
    }
    // Findings read from files say where: `file:line:col` (a host audit has no such column).
    let located = report.findings.iter().any(|f| f.file.is_some());
    let rows: Vec<[String; 5]> = report
        .findings
        .iter()
        .map(|f| {
            let mut subject = f.subject.clone();
            if let Some(pid) = f.pid {
                let extra = f.pids.len().saturating_sub(1);
                if extra > 0 {
                    let _ = write!(subject, " pid {pid} (+{extra})");
                } else {
                    let _ = write!(subject, " pid {pid}");
                }
            }
            let rule = match &f.namespace {
                Some(ns) => format!("{}[{ns}]", f.rule),
                None => f.rule.clone(),
            };
            [
                f.severity.as_str().to_uppercase(),
                rule,
                clip(&subject, 60),
                place(f),
                clip(&f.message, 120),
            ]
        })
        .collect();
    if rows.is_empty() {
        let _ = writeln!(out, "No findings.");
    } else if located {
        write_rows(
            out,
            ["SEVERITY", "RULE", "SUBJECT", "LOCATION", "MESSAGE"],
            &rows,
        );
    } else {
        let rows: Vec<[String; 4]> = rows
            .into_iter()
            .map(|[a, b, c, _, e]| [a, b, c, e])
            .collect();
        write_rows(out, ["SEVERITY", "RULE", "SUBJECT", "MESSAGE"], &rows);
    }
    // Accepted findings: listed with their justification, never counted or gating.
    for a in &report.accepted {
        let f = &a.finding;
        let rule = match &f.namespace {
            Some(ns) => format!("{}[{ns}]", f.rule),
            None => f.rule.clone(),
        };
        let by = match a.accepted_by {
            crate::accept::AcceptedBy::Annotation => "",
            crate::accept::AcceptedBy::Baseline => " (baseline)",
        };
        let _ = writeln!(
            out,
            "ACCEPTED {} {rule} {}: {}{by}",
            f.severity.as_str().to_uppercase(),
            clip(&f.subject, 60),
            clip(&a.justification, 160)
        );
    }
    // Denied objects with their violations; allowed ones only counted (a directory may hold
    // thousands).
    // `FILE:LINE` where the object starts, else `FILE document N` (as errors say it).
    for entry in report.pss.iter().filter(|e| !e.allowed) {
        let place = match entry.line {
            Some(line) => format!("{}:{line}", entry.file.display()),
            None => format!("{} document {}", entry.file.display(), entry.document),
        };
        let _ = writeln!(
            out,
            "PSS DENIED {place} {}/{} at {}:{}",
            entry.kind, entry.name, entry.level, entry.version
        );
        for v in &entry.violations {
            let detail = if v.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.detail)
            };
            let _ = writeln!(out, "    {}: {}{detail}", v.check, v.reason);
        }
    }
    if !report.pss.is_empty() {
        let allowed = report.pss.iter().filter(|e| e.allowed).count();
        let _ = writeln!(
            out,
            "Pod Security Standards: {allowed} object(s) allowed, {} denied",
            report.pss.len() - allowed
        );
    }
    for e in &report.errors {
        let doc = e
            .document
            .map(|d| format!(" document {d}"))
            .unwrap_or_default();
        let _ = writeln!(out, "ERROR {}{doc}: {}", e.source, e.message);
    }
    for e in &report.warnings {
        let doc = e
            .document
            .map(|d| format!(" document {d}"))
            .unwrap_or_default();
        let _ = writeln!(out, "WARNING {}{doc}: {}", e.source, e.message);
    }
    let counts = report
        .counts()
        .iter()
        .rev()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let by_baseline = report
        .accepted
        .iter()
        .filter(|a| a.accepted_by == crate::accept::AcceptedBy::Baseline)
        .count();
    let accepted = match (report.accepted.len(), by_baseline) {
        (0, _) => String::new(),
        (n, 0) => format!("; {n} accepted by annotation {}", crate::accept::ANNOTATION),
        (n, b) if b == n => format!("; {n} accepted by --baseline"),
        (n, b) => format!(
            "; {n} accepted ({} by annotation {}, {b} by --baseline)",
            n - b,
            crate::accept::ANNOTATION
        ),
    };
    let _ = writeln!(
        out,
        "{} workload(s), {} finding(s): {counts}{accepted}{}",
        report.workloads,
        report.findings.len(),
        [
            (report.errors.len(), "input error(s)"),
            (report.warnings.len(), "warning(s)"),
            (report.skipped_files.len(), "file(s) skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("; {n} {what}"))
        .collect::<String>()
    );
}

/// `file:line:col` (or `file`, `file:line`, as far as known); empty without a file.
fn place(f: &crate::Finding) -> String {
    let Some(file) = &f.file else {
        return String::new();
    };
    let mut text = clip(&file.display().to_string(), 80);
    if let Some(line) = f.line {
        let _ = write!(text, ":{line}");
        if let Some(col) = f.column {
            let _ = write!(text, ":{col}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;

    #[test]
    fn one_line_per_finding_and_totals() {
        let text = sample().render(crate::Format::Table);
        assert!(text.starts_with("SEVERITY"), "{text}");
        assert!(text.contains("shared-host-namespace[net]"), "{text}");
        assert!(text.contains("/docker/abc pid 7 (+1)"), "{text}");
        // Findings from files say where; live ones leave the column empty.
        assert!(text.lines().next().unwrap().contains("LOCATION"), "{text}");
        assert!(text.contains("  inspect.json:4:3  "), "{text}");
        assert!(
            text.contains("1 workload(s), 2 finding(s): 0 critical, 1 high"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 4, "{text}");
    }
}
