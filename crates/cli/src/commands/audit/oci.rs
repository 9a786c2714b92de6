//! `watertight audit oci`: OCI runtime bundle configs (`config.json` or a bundle directory).

use super::host::audit_files;
use crate::commands::sink::ReportArgs;
use std::path::PathBuf;
use watertight_audit::sources::oci;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `config.json` files or bundle directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub baselines: super::BaselineArgs,
    #[command(flatten)]
    pub output: ReportArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    // One workload per bundle.
    audit_files(
        "oci",
        &args.paths,
        |p| oci::load(p).map(Some),
        &args.output,
        &args.baselines,
    )
}
