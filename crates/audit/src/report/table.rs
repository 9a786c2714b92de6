//! Table output for people: one line per finding, then totals.

use super::Report;
use std::fmt::Write;

/// Cuts `s` to at most `max` characters, marking the cut.
fn clip(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if let Some(fleet) = &report.fleet {
        let _ = writeln!(out, "Fleet: {} node report(s) merged", fleet.nodes_total);
    }
    let rows: Vec<[String; 4]> = report
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
                clip(&f.message, 120),
            ]
        })
        .collect();
    if rows.is_empty() {
        let _ = writeln!(out, "No findings.");
    } else {
        let headers = ["SEVERITY", "RULE", "SUBJECT", "MESSAGE"];
        let mut widths = headers.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 4]| {
            let mut l = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i == 3 {
                    l.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    l.push_str(cell);
                    l.push_str(&" ".repeat(pad + 2));
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(headers));
        for row in &rows {
            let _ = writeln!(out, "{}", line([&row[0], &row[1], &row[2], &row[3]]));
        }
    }
    // Denied objects with their violations; allowed ones only counted (a directory may hold
    // thousands).
    for entry in report.pss.iter().filter(|e| !e.allowed) {
        let _ = writeln!(
            out,
            "PSS DENIED {}:{} {}/{} at {}:{}",
            entry.file.display(),
            entry.document,
            entry.kind,
            entry.name,
            entry.level,
            entry.version
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
    let counts = report
        .counts()
        .iter()
        .rev()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "{} workload(s), {} finding(s): {counts}{}",
        report.workloads,
        report.findings.len(),
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; {} input error(s)", report.errors.len())
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use crate::report::test_support::sample;

    #[test]
    fn one_line_per_finding_and_totals() {
        let text = super::render(&sample());
        assert!(text.starts_with("SEVERITY"), "{text}");
        assert!(text.contains("shared-host-namespace[net]"), "{text}");
        assert!(text.contains("/docker/abc pid 7 (+1)"), "{text}");
        assert!(
            text.contains("1 workload(s), 2 finding(s): 0 critical, 1 high"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 4, "{text}");
    }
}
