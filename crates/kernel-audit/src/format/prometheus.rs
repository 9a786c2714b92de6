//! The kernel audit's metric families (stable names, for the node-exporter textfile collector),
//! written with the shared Prometheus writer. Every series carries the kernel release as a label.

use crate::hardening::CheckStatus;
use crate::report::{Decision, KernelReport};
use watertight_report::Exposition;

pub(crate) fn write(r: &KernelReport, out: &mut Exposition) {
    let kernel = r.kernel_version.as_str();
    let decided = matches!(r.decision, Decision::Upstream | Decision::AssumedUpstream);
    out.gauge(
        "watertight_kernel_cve_decided",
        "1 when the published CVE records decide this kernel (upstream release or --assume-upstream), 0 when not (vendor kernel or no CVE source).",
    )
    .sample(
        &[("kernel", kernel), ("vendor", r.vendor.as_deref().unwrap_or(""))],
        u8::from(decided),
    );

    if let (Some(affected), Some(reachable)) = (r.affected_count, r.reachable_count) {
        let mut g = out.gauge(
            "watertight_kernel_cves_affected",
            "Published kernel CVEs affecting this kernel, by CVSS 3.1 severity (unscored: no CVSS in the record).",
        );
        for c in &r.severity_counts {
            g.sample(
                &[("kernel", kernel), ("severity", c.severity.as_str())],
                c.affected,
            );
        }
        let mut g = out.gauge(
            "watertight_kernel_cves_reachable",
            "Affecting CVEs reachable from a default watertight sandbox, by severity.",
        );
        for c in &r.severity_counts {
            g.sample(
                &[("kernel", kernel), ("severity", c.severity.as_str())],
                c.reachable,
            );
        }
        out.gauge(
            "watertight_kernel_cves_affected_total",
            "All published kernel CVEs affecting this kernel.",
        )
        .sample(&[("kernel", kernel)], affected);
        out.gauge(
            "watertight_kernel_cves_reachable_total",
            "All affecting CVEs reachable from a default watertight sandbox.",
        )
        .sample(&[("kernel", kernel)], reachable);
        if let Some(counts) = &r.reachable_counts {
            let mut g = out.gauge(
                "watertight_kernel_cves_reachable_by_isolation_total",
                "Affecting CVEs reachable from a sandbox of each isolation tier (namespaces, gvisor, vm).",
            );
            for tier in crate::reachability::IsolationTier::ALL {
                g.sample(
                    &[("kernel", kernel), ("isolation", tier.as_str())],
                    *counts.get(tier),
                );
            }
        }
        if let Some(u) = &r.upgrade {
            out.gauge(
                "watertight_kernel_upgrade_removes",
                "Affecting CVEs removed by the suggested upgrade within the branch.",
            )
            .sample(&[("kernel", kernel), ("target", &u.target)], u.removes);
        }
    }
    if let Some(src) = &r.source {
        out.gauge(
            "watertight_kernel_cve_records",
            "Published CVE records the audit used.",
        )
        .sample(&[("source", src.kind)], src.records);
        out.gauge(
            "watertight_kernel_cve_records_skipped",
            "Record files skipped as unreadable or malformed.",
        )
        .sample(&[("source", src.kind)], src.skipped_count);
    }
    let judged: Vec<_> = r
        .hardening
        .iter()
        .filter(|h| matches!(h.status, CheckStatus::Pass | CheckStatus::Fail))
        .collect();
    if !judged.is_empty() {
        let mut g = out.gauge(
            "watertight_kernel_hardening_ok",
            "1 when a kernel hardening check passes, 0 when it fails (absent switches are not listed).",
        );
        for h in judged {
            g.sample(
                &[
                    ("kernel", kernel),
                    ("check", &h.name),
                    ("severity", h.severity.as_str()),
                ],
                u8::from(h.status == CheckStatus::Pass),
            );
        }
    }
}
