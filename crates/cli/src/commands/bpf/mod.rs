//! `watertight bpf`: only signed, observe-only BPF programs get loaded (docs/bpf.md).
//!
//! `vet` reads BPF objects and checks them against a policy, `policy show` prints the built-in
//! policy, `sign` signs a vetted object. One module per subcommand; a new one (`load`) is a
//! module here, a variant of [`Command`] and an arm of [`run`].
//!
//! Exit codes: 0 admitted / signed / shown; 1 refused (a refusal at or above `--fail-on` for
//! `vet`; `sign` refuses to sign a refused object); 2 bad input (a missing, malformed,
//! truncated or non-BPF object, a bad policy file, an unreadable key, a write that failed).

pub mod load;
pub mod policy;
pub mod sign;
pub mod vet;

use std::path::{Path, PathBuf};
use watertight_bpf::Policy;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Vet BPF objects against the policy: program types, attach points, helpers, kfuncs, maps.
    Vet(vet::Args),
    /// The vetting policy.
    #[command(subcommand)]
    Policy(policy::Command),
    /// Vet a BPF object, then sign its exact bytes with an ed25519 key (`watertight key`).
    Sign(sign::Args),
    /// Load signed, vetted BPF objects: verify, vet, load exactly those bytes, attach, record.
    Load(load::Args),
    /// Remove the pins `bpf load --pin DIR` made (the programs detach) and their records.
    Unload(load::UnloadArgs),
}

/// The `--policy FILE` flag every `bpf` subcommand that vets takes.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// A policy file (TOML; start from `watertight bpf policy show`). Default: the built-in
    /// policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy, and how to name it in reports.
    pub fn load(&self) -> anyhow::Result<(Policy, String)> {
        match &self.policy {
            Some(path) => Ok((Policy::load(path)?, path.display().to_string())),
            None => Ok((Policy::builtin(), "built-in".to_string())),
        }
    }
}

/// Reads an object file, naming it in the error.
pub fn read_object(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read the BPF object: {e} (name a .bpf.o file clang built)",
            path.display()
        )
    })
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Vet(args) => vet::run(args),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Sign(args) => sign::run(args),
        Command::Load(args) => load::run(args),
        Command::Unload(args) => load::unload(args),
    }
}
