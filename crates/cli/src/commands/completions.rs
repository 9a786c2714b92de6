//! `watertight completions <bash|zsh|fish>`: the shell's completion script, generated from the
//! whole command tree (`run` included: the same `commands::run::Args` its fast-path parser
//! flattens), printed to standard output.
//!
//! Exit codes: 0 printed; 2 an unknown shell (one line naming it and the shells there are) or a
//! write that failed. A reader that goes away early ends the command quietly.

use anyhow::Context as _;
use clap::builder::{PossibleValue, TypedValueParser};
use clap_complete::Shell;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;

/// The shells a script is generated for, as named on the command line.
const SHELLS: [(&str, Shell); 3] = [
    ("bash", Shell::Bash),
    ("zsh", Shell::Zsh),
    ("fish", Shell::Fish),
];

#[derive(clap::Args)]
#[command(after_help = "Install (system-wide; the Debian package does this):
  watertight completions bash > /usr/share/bash-completion/completions/watertight
  watertight completions zsh  > /usr/share/zsh/vendor-completions/_watertight
  watertight completions fish > /usr/share/fish/vendor_completions.d/watertight.fish")]
pub struct Args {
    /// The shell to complete for: bash, zsh or fish.
    #[arg(value_name = "SHELL", value_parser = ShellName)]
    shell: OsString,
}

/// The parser of the shell name: it accepts any text, so that an unknown shell is this command's
/// one-line error rather than clap's usage block, and it lists the shells, so that help and the
/// completion scripts themselves offer them.
#[derive(Clone)]
struct ShellName;

impl TypedValueParser for ShellName {
    type Value = OsString;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<OsString, clap::Error> {
        clap::builder::OsStringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            SHELLS.iter().map(|(name, _)| PossibleValue::new(*name)),
        ))
    }
}

/// The shell called `name`, or the one-line error that names it and the choices.
fn shell(name: &OsStr) -> anyhow::Result<Shell> {
    SHELLS
        .iter()
        .find(|(n, _)| name == *n)
        .map(|(_, shell)| *shell)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "completions: unknown shell {}: use bash, zsh or fish",
                watertight_sys::text::quote(name.as_bytes())
            )
        })
}

/// The completion script of `shell` for the command tree `cmd` (the binary's whole `Cli`).
pub fn script(cmd: &mut clap::Command, shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, "watertight", &mut out);
    out
}

/// Prints the completion script; `cmd` is the binary's whole command tree.
pub fn run(args: Args, mut cmd: clap::Command) -> anyhow::Result<u8> {
    let shell = shell(&args.shell)?;
    let text = script(&mut cmd, shell);
    let mut out = std::io::stdout().lock();
    match out.write_all(&text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("completions: cannot write the script to standard output")
        }
        _ => Ok(0),
    }
}
