//! `watertight audit docker`: the JSON output of `docker inspect`.

use super::host::{emit, OutputArgs};
use std::path::PathBuf;
use std::time::Instant;
use watertight_audit::sources::docker;
use watertight_audit::{audit_workloads, InputError, Report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files holding `docker inspect` output (`-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut report = Report::new("docker");
    let mut workloads = Vec::new();
    for file in &args.files {
        let loaded = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|source| watertight_audit::AuditError::Read {
                    path: file.clone(),
                    source,
                })
                .and_then(|_| docker::parse(&text, std::path::Path::new("<stdin>")))
        } else {
            docker::load(file)
        };
        match loaded {
            Ok(ws) => workloads.extend(ws),
            Err(e) => report.errors.push(InputError {
                source: file.display().to_string(),
                document: None,
                message: e.detail(),
            }),
        }
    }
    report.workloads = workloads.len();
    report.findings = audit_workloads(&workloads);
    report.duration_seconds = started.elapsed().as_secs_f64();
    emit(&report, &args.output)
}
