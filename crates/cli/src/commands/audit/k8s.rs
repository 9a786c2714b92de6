//! `watertight audit k8s`: Kubernetes manifests (files or directories) against Pod Security
//! Standards and the isolation rules.

use crate::commands::sink::ReportArgs;
use std::path::PathBuf;
use std::time::Instant;
use watertight_audit::sources::k8s::audit_path;
use watertight_audit::{accept, audit_workloads, report::sort_findings, Report};
use watertight_pss::{Level, Version};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// YAML/JSON manifests or directories (searched recursively for *.yaml, *.yml, *.json).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Pod Security Standards level: privileged, baseline or restricted.
    #[arg(long, default_value = "baseline", value_parser = parse_level)]
    pub pss_level: Level,
    /// Pod Security Standards version: latest or v1.N (e.g. v1.30).
    #[arg(long, default_value = "latest", value_parser = parse_version)]
    pub pss_version: Version,
    /// Disregard the objects' `audit.watertight/accept` annotations: every finding counts (for
    /// manifests whose authors are not the ones to decide what is acceptable).
    #[arg(long)]
    pub ignore_accepted: bool,
    #[command(flatten)]
    pub output: ReportArgs,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
        .map_err(|e: watertight_pss::ParseLevelError| e.to_string())
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse()
        .map_err(|e: watertight_pss::ParseVersionError| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut report = Report::new("k8s");
    for path in &args.paths {
        let audited = audit_path(path, args.pss_level, args.pss_version);
        report.workloads += audited.workloads.len();
        let mut findings = audit_workloads(&audited.workloads);
        findings.extend(audited.pss_findings);
        if args.ignore_accepted {
            report.findings.extend(findings);
        } else {
            let (kept, accepted) = accept::apply(findings, &audited.acceptances);
            report.findings.extend(kept);
            report.accepted.extend(accepted);
        }
        report.pss.extend(audited.pss);
        report.errors.extend(audited.errors);
    }
    sort_findings(&mut report.findings);
    report
        .accepted
        .sort_by_key(|a| std::cmp::Reverse(a.finding.severity));
    report.duration_seconds = started.elapsed().as_secs_f64();
    args.output.sink().emit(&report)
}
