//! `watertight bpf policy show`: the built-in policy as a commented TOML file, to start a custom
//! one (it parses back to the same policy).

use crate::commands::sink::write_stdout;
use watertight_bpf::Policy;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the built-in policy as a commented TOML file.
    Show,
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Show => {
            write_stdout(Policy::builtin().to_commented_toml().as_bytes())?;
            Ok(0)
        }
    }
}
