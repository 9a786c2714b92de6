//! `watertight profile show [NAME|FILE]`: prints a profile in the TOML format `--profile`
//! reads, so a custom profile starts from the built-in one.

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print a profile as TOML: `default` (the built-in one) or a profile file (validated).
    Show {
        #[arg(default_value = "default")]
        name: String,
    },
    /// Check a profile file; prints nothing and exits 0 when it is valid.
    Check { file: PathBuf },
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Show { name } => {
            let p = if name == "default" {
                watertight_sandbox::default_profile()
            } else {
                watertight_sandbox::Profile::load(std::path::Path::new(&name))?
            };
            print!("{}", p.to_toml());
        }
        Command::Check { file } => {
            watertight_sandbox::Profile::load(&file)?;
        }
    }
    Ok(0)
}
