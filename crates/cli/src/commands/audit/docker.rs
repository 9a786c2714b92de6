//! `watertight audit docker`: the JSON output of `docker inspect`.

use super::host::audit_files;
use crate::commands::sink::ReportArgs;
use std::path::PathBuf;
use watertight_audit::sources::docker;
use watertight_model::Workload;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files holding `docker inspect` output (`-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub baselines: super::BaselineArgs,
    #[command(flatten)]
    pub output: ReportArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    audit_files("docker", &args.files, load, &args.output, &args.baselines)
}

/// A file of `docker inspect` output, or standard input for `-`.
fn load(file: &std::path::Path) -> Result<Vec<Workload>, watertight_audit::AuditError> {
    if file.as_os_str() != "-" {
        return docker::load(file);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
        watertight_audit::AuditError::Read {
            path: file.to_path_buf(),
            source,
        }
    })?;
    docker::parse(&text, std::path::Path::new("<stdin>"))
}
