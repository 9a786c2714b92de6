//! One module per subcommand. Each exposes its clap arguments and `run(...) -> anyhow::Result<u8>`
//! returning the exit code.

pub mod audit;
pub mod batch;
pub mod bpf;
pub mod completions;
pub mod doctor;
pub mod evidence;
pub mod key;
pub mod man;
pub mod manifest;
pub mod net;
pub mod oci;
pub mod profile;
pub mod run;
pub mod sink;
