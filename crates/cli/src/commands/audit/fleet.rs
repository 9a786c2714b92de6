//! `watertight audit fleet`: many nodes' JSON reports merged into one summary.

use crate::commands::sink::ReportArgs;
use std::path::PathBuf;
use std::time::Instant;
use watertight_audit::fleet::merge_files;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON reports (`watertight audit host --format json`), one or more per node.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    #[command(flatten)]
    pub output: ReportArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut report = merge_files(&args.reports);
    report.duration_seconds = started.elapsed().as_secs_f64();
    args.output.sink().emit(&report)
}
