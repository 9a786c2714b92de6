//! `watertight audit oci`: OCI runtime bundle configs (`config.json` or a bundle directory).

use super::host::{emit, OutputArgs};
use std::path::PathBuf;
use std::time::Instant;
use watertight_audit::sources::oci;
use watertight_audit::{audit_workloads, InputError, Report};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `config.json` files or bundle directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut report = Report::new("oci");
    let mut workloads = Vec::new();
    for path in &args.paths {
        match oci::load(path) {
            Ok(w) => workloads.push(w),
            Err(e) => report.errors.push(InputError {
                source: path.display().to_string(),
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
