//! Aligned text for people: a summary, the affected CVEs, then the hardening checks.

use crate::hardening::CheckStatus;
use crate::report::{Decision, KernelReport};
use std::fmt::Write;
use watertight_report::table::{clip, write_rows};

/// Titles longer than this are cut so rows stay on one line of a wide terminal.
const TITLE_WIDTH: usize = 72;

pub(crate) fn write(r: &KernelReport, out: &mut String) {
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
        let tier = r.isolation;
        let in_tier = r
            .reachable_counts
            .as_ref()
            .map_or(reachable, |counts| *counts.get(tier));
        let _ = writeln!(
            out,
            "\n{affected} published kernel CVEs affect this kernel{how}; {in_tier} of them reachable from {}",
            tier.describe()
        );
        let counts: Vec<String> = r
            .severity_counts
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({} reachable)",
                    c.severity,
                    c.affected,
                    c.reachable_by_tier.get(tier)
                )
            })
            .collect();
        let _ = writeln!(out, "  {}", counts.join(", "));
        if let Some(counts) = &r.reachable_counts {
            let _ = writeln!(
                out,
                "  reachable by isolation tier: namespaces {}, gvisor {}, vm {} (of {affected})",
                counts.namespaces, counts.gvisor, counts.vm
            );
        }
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
            let mark = |yes: bool| if yes { "yes" } else { "no" }.to_string();
            let rows: Vec<[String; 8]> = r
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
                        mark(c.reachable_from.namespaces),
                        mark(c.reachable_from.gvisor),
                        mark(c.reachable_from.vm),
                        clip(&c.title, TITLE_WIDTH),
                    ]
                })
                .collect();
            out.push('\n');
            write_rows(
                out,
                [
                    "CVE",
                    "SEVERITY",
                    "CVSS",
                    "FIXED IN",
                    "NAMESPACES",
                    "GVISOR",
                    "VM",
                    "TITLE",
                ],
                &rows,
            );
            let _ = writeln!(
                out,
                "(FIXED IN: first fixed release of this branch; in parentheses, only mainline has the fix. NAMESPACES, GVISOR, VM: reachable from a sandbox of that isolation tier)"
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
                    clip(h.current.as_deref().unwrap_or("-"), 40),
                    h.expected.clone(),
                ]
            })
            .collect();
        write_rows(
            out,
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
}
