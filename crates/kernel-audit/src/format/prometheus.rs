//! Prometheus text exposition format, with stable metric names, for the node-exporter textfile
//! collector. Every series carries the kernel release as a label.

use crate::hardening::CheckStatus;
use crate::report::{Decision, KernelReport};
use std::fmt::Write;

/// Escapes a label value (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

pub fn render(r: &KernelReport) -> String {
    let mut out = String::new();
    let kernel = label(&r.kernel_version);

    header(
        &mut out,
        "watertight_kernel_cve_decided",
        "1 when the published CVE records decide this kernel (upstream release or --assume-upstream), 0 when not (vendor kernel or no CVE source).",
    );
    let decided = matches!(r.decision, Decision::Upstream | Decision::AssumedUpstream);
    let _ = writeln!(
        out,
        "watertight_kernel_cve_decided{{kernel=\"{kernel}\",vendor=\"{}\"}} {}",
        label(r.vendor.as_deref().unwrap_or("")),
        u8::from(decided)
    );

    if let (Some(affected), Some(reachable)) = (r.affected_count, r.reachable_count) {
        header(
            &mut out,
            "watertight_kernel_cves_affected",
            "Published kernel CVEs affecting this kernel, by CVSS 3.1 severity (unscored: no CVSS in the record).",
        );
        for c in &r.severity_counts {
            let _ = writeln!(
                out,
                "watertight_kernel_cves_affected{{kernel=\"{kernel}\",severity=\"{}\"}} {}",
                c.severity, c.affected
            );
        }
        header(
            &mut out,
            "watertight_kernel_cves_reachable",
            "Affecting CVEs reachable from a default watertight sandbox, by severity.",
        );
        for c in &r.severity_counts {
            let _ = writeln!(
                out,
                "watertight_kernel_cves_reachable{{kernel=\"{kernel}\",severity=\"{}\"}} {}",
                c.severity, c.reachable
            );
        }
        header(
            &mut out,
            "watertight_kernel_cves_affected_total",
            "All published kernel CVEs affecting this kernel.",
        );
        let _ = writeln!(
            out,
            "watertight_kernel_cves_affected_total{{kernel=\"{kernel}\"}} {affected}"
        );
        header(
            &mut out,
            "watertight_kernel_cves_reachable_total",
            "All affecting CVEs reachable from a default watertight sandbox.",
        );
        let _ = writeln!(
            out,
            "watertight_kernel_cves_reachable_total{{kernel=\"{kernel}\"}} {reachable}"
        );
        if let Some(u) = &r.upgrade {
            header(
                &mut out,
                "watertight_kernel_upgrade_removes",
                "Affecting CVEs removed by the suggested upgrade within the branch.",
            );
            let _ = writeln!(
                out,
                "watertight_kernel_upgrade_removes{{kernel=\"{kernel}\",target=\"{}\"}} {}",
                label(&u.target),
                u.removes
            );
        }
    }
    if let Some(src) = &r.source {
        header(
            &mut out,
            "watertight_kernel_cve_records",
            "Published CVE records the audit used.",
        );
        let _ = writeln!(
            out,
            "watertight_kernel_cve_records{{source=\"{}\"}} {}",
            src.kind, src.records
        );
        header(
            &mut out,
            "watertight_kernel_cve_records_skipped",
            "Record files skipped as unreadable or malformed.",
        );
        let _ = writeln!(
            out,
            "watertight_kernel_cve_records_skipped{{source=\"{}\"}} {}",
            src.kind, src.skipped_count
        );
    }
    let judged: Vec<_> = r
        .hardening
        .iter()
        .filter(|h| matches!(h.status, CheckStatus::Pass | CheckStatus::Fail))
        .collect();
    if !judged.is_empty() {
        header(
            &mut out,
            "watertight_kernel_hardening_ok",
            "1 when a kernel hardening check passes, 0 when it fails (absent switches are not listed).",
        );
        for h in judged {
            let _ = writeln!(
                out,
                "watertight_kernel_hardening_ok{{kernel=\"{kernel}\",check=\"{}\",severity=\"{}\"}} {}",
                label(&h.name),
                h.severity.as_str(),
                u8::from(h.status == CheckStatus::Pass)
            );
        }
    }
    out
}
