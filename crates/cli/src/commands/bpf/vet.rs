//! `watertight bpf vet OBJ...`: each object's programs, helpers, kfuncs and maps against the
//! policy, through the one report sink (table, json, sarif; `-o`, `--fail-on`). Every refusal
//! is a `high` finding, so the default `--fail-on high` exits 1 when any object is refused; an
//! object that cannot be read or parsed exits 2 (and is named on stderr).

use super::PolicyArgs;
use crate::commands::sink::ReportArgs;
use std::path::PathBuf;
use watertight_bpf::{vet, VetObject, VetReport};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// BPF ELF objects (clang -target bpf, libbpf conventions).
    #[arg(required = true, value_name = "OBJ")]
    pub objects: Vec<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub output: ReportArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let sink = args.output.sink();
    let (policy, policy_name) = args.policy.load()?;
    let objects = args
        .objects
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            match std::fs::read(path) {
                Err(e) => VetObject::failed(
                    name,
                    format!("cannot read the BPF object: {e} (name a .bpf.o file clang built)"),
                ),
                Ok(bytes) => match vet(&bytes, &policy) {
                    Ok(v) => VetObject::vetted(name, v),
                    Err(e) => VetObject::failed(name, e.to_string()),
                },
            }
        })
        .collect();
    let report = VetReport {
        policy: policy_name,
        policy_sha256: policy.sha256(),
        objects,
    };
    sink.emit(&report)
}
