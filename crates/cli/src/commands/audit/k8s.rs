//! `watertight audit k8s`: Kubernetes manifests (files, directories or standard input) against
//! Pod Security Standards and the isolation rules.

use crate::commands::sink::ReportArgs;
use anyhow::Context as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use watertight_audit::sources::k8s::{audit_path_excluding, audit_text, Exclude, K8sAudit};
use watertight_audit::{accept, Report};
use watertight_pss::{Level, Version};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// YAML/JSON manifests or directories (searched recursively for *.yaml, *.yml, *.json);
    /// `-` reads standard input (`helm template . | watertight audit k8s -`).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Pod Security Standards level: privileged, baseline or restricted.
    #[arg(long, default_value = "baseline", value_parser = parse_level)]
    pub pss_level: Level,
    /// Pod Security Standards version: latest or v1.N (e.g. v1.30).
    #[arg(long, default_value = "latest", value_parser = parse_version)]
    pub pss_version: Version,
    /// Leave out files and directories matching GLOB (repeatable). Without `/` it matches a
    /// name anywhere (`vendor`, `*.tmpl.yaml`); with `/` the path below PATH (`deploy/dev/**`).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Disregard the objects' `watertight.dev/ignore` annotations and any --baseline: every
    /// finding counts (for manifests whose authors are not the ones to decide what is
    /// acceptable).
    #[arg(long)]
    pub ignore_accepted: bool,
    #[command(flatten)]
    pub baselines: super::BaselineArgs,
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
    let exclude = Exclude::new(&args.exclude)?;
    let baseline = args.baselines.load(args.ignore_accepted)?;
    let mut report = Report::new("k8s");
    let mut stdin_read = false;
    let today = accept::Date::today();
    for path in &args.paths {
        let audited = if path.as_os_str() == "-" {
            anyhow::ensure!(
                !stdin_read,
                "`-` (standard input) is given twice; pass it once"
            );
            stdin_read = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read manifests from standard input (`-`): is it UTF-8 text?")?;
            audit_text(
                &text,
                Path::new("<stdin>"),
                args.pss_level,
                args.pss_version,
            )
        } else {
            audit_path_excluding(path, &exclude, args.pss_level, args.pss_version)
        };
        add(&mut report, audited, args.ignore_accepted, today);
    }
    args.baselines
        .finish(&mut report, baseline.as_ref(), today)?;
    report.duration_seconds = started.elapsed().as_secs_f64();
    args.output.sink().emit(&report)
}

fn add(report: &mut Report, audited: K8sAudit, ignore_accepted: bool, today: accept::Date) {
    report.workloads += audited.workloads.len();
    let mut findings = audited.rule_findings();
    findings.extend(audited.pss_findings);
    if ignore_accepted {
        report.findings.extend(findings);
    } else {
        let (kept, accepted, expired) = accept::apply(findings, &audited.acceptances, today);
        report.findings.extend(kept);
        report.accepted.extend(accepted);
        report.warnings.extend(expired);
    }
    report.pss.extend(audited.pss);
    // Every error is a manifest that could not be evaluated.
    report.unevaluated += audited.errors.len();
    report.errors.extend(audited.errors);
    report.warnings.extend(audited.warnings);
    report.skipped_files.extend(audited.skipped_files);
}
