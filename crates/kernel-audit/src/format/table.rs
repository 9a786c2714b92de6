//! Aligned text for people: a summary, the affected CVEs, then the hardening checks.

use crate::hardening::CheckStatus;
use crate::report::{Decision, KernelReport};
use std::fmt::Write;

/// Titles longer than this are cut so rows stay on one line of a wide terminal.
const TITLE_WIDTH: usize = 72;

pub fn render(r: &KernelReport) -> String {
    let mut out = String::new();
    let kind = match (&r.vendor, r.decision) {
        (None, _) => "upstream release".to_string(),
        (Some(v), _) => format!("vendor kernel: {v}; upstream {}", r.upstream_version),
    };
    let _ = writeln!(out, "Kernel {} ({kind})", r.kernel_version);
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if let Some(src) = &r.source {
        let _ = writeln!(
            out,
            "CVE source: {} {} ({} published records, {} skipped)",
            src.kind, src.path, src.records, src.skipped_count
        );
        for s in &src.skipped {
            let _ = writeln!(out, "  skipped {}: {}", s.path.display(), s.reason);
        }
    }
    if let (Some(affected), Some(reachable)) = (r.affected_count, r.reachable_count) {
        let how = if r.decision == Decision::AssumedUpstream {
            " (assuming upstream)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "\n{affected} published kernel CVEs affect this kernel{how}; {reachable} of them reachable from a default watertight sandbox"
        );
        let counts: Vec<String> = r
            .severity_counts
            .iter()
            .map(|c| format!("{} {} ({} reachable)", c.severity, c.affected, c.reachable))
            .collect();
        let _ = writeln!(out, "  {}", counts.join(", "));
        match &r.upgrade {
            Some(u) => {
                let _ = writeln!(
                    out,
                    "  upgrade within {}: {} removes {} of {affected} ({} remain there; {} have no fix in this branch)",
                    u.branch, u.target, u.removes, u.remaining, u.unfixed_in_branch
                );
            }
            None if affected > 0 => {
                let _ = writeln!(
                    out,
                    "  no release of this branch fixes them: move to a newer branch"
                );
            }
            None => {}
        }
        if !r.cves.is_empty() {
            let rows: Vec<[String; 6]> = r
                .cves
                .iter()
                .map(|c| {
                    [
                        c.id.clone(),
                        c.severity.to_string(),
                        c.cvss.map_or("-".into(), |s| format!("{s:.1}")),
                        c.fixed_in
                            .clone()
                            .unwrap_or_else(|| match &c.fixed_in_mainline {
                                Some(m) => format!("({m})"),
                                None => "-".into(),
                            }),
                        if c.reachable_from_sandbox {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        cut(&c.title, TITLE_WIDTH),
                    ]
                })
                .collect();
            out.push('\n');
            write_rows(
                &mut out,
                ["CVE", "SEVERITY", "CVSS", "FIXED IN", "REACHABLE", "TITLE"],
                &rows,
            );
            let _ = writeln!(
                out,
                "(FIXED IN: first fixed release of this branch; in parentheses, only mainline has the fix)"
            );
        }
    }
    if !r.hardening.is_empty() {
        let failing = r
            .hardening
            .iter()
            .filter(|h| h.status == CheckStatus::Fail)
            .count();
        let _ = writeln!(
            out,
            "\nHardening: {failing} of {} checks fail",
            r.hardening.len()
        );
        let rows: Vec<[String; 5]> = r
            .hardening
            .iter()
            .map(|h| {
                [
                    h.name.clone(),
                    h.status.to_string(),
                    h.severity.as_str().into(),
                    cut(h.current.as_deref().unwrap_or("-"), 40),
                    h.expected.clone(),
                ]
            })
            .collect();
        write_rows(
            &mut out,
            ["CHECK", "STATUS", "SEVERITY", "CURRENT", "EXPECTED"],
            &rows,
        );
        let mut notes: Vec<&String> = r.hardening.iter().filter_map(|h| h.note.as_ref()).collect();
        notes.dedup();
        for note in notes {
            let _ = writeln!(out, "  note: {note}");
        }
        for h in r.hardening.iter().filter(|h| h.status == CheckStatus::Fail) {
            let _ = writeln!(out, "  {}: {}", h.name, h.why);
            if let Some(b) = &h.breaks {
                let _ = writeln!(out, "    caution: {b}");
            }
        }
    }
    out
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

fn write_rows<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, &header);
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells);
    }
}
