//! The `watertight` command line: parses arguments and hands each subcommand to its module under
//! `commands/`. Each command returns the process exit code; errors become one line on stderr.

#![forbid(unsafe_code)]

mod commands;
mod version;

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "watertight",
    version = version::short(),
    long_version = version::long(),
    about,
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program in a layered sandbox and report a verdict.
    Run(Box<commands::run::Args>),
    /// Run a JSON Lines file of jobs (files, then steps, each step a sandboxed run), appending one result line per job.
    Batch(commands::batch::Args),
    /// Show sandbox profiles (the built-in default, in the TOML profile format).
    #[command(subcommand)]
    Profile(commands::profile::Command),
    /// Find isolation leaks on this host, in Kubernetes, Docker and OCI configs, and in the kernel.
    #[command(subcommand)]
    Audit(commands::audit::Command),
    /// Anti-spoofing guards for container bridges.
    #[command(subcommand)]
    Net(commands::net::Command),
    /// Signing keys for image manifests.
    #[command(subcommand)]
    Key(commands::key::Command),
    /// Signed manifests of image trees.
    #[command(subcommand)]
    Manifest(commands::manifest::Command),
    /// Forensic evidence bundles: show and verify.
    #[command(subcommand)]
    Evidence(commands::evidence::Command),
    /// Vet, sign and police BPF programs: only signed, observe-only programs on allowed tracepoints.
    #[command(subcommand)]
    Bpf(commands::bpf::Command),
    /// Print the shell completion script for bash, zsh or fish.
    Completions(commands::completions::Args),
    /// Write the manual pages (watertight.1, one per subcommand) to a directory.
    Man(commands::man::Args),
    /// What this host supports for watertight, and what each missing piece disables.
    Doctor(commands::doctor::Args),
    /// The OCI runtime (runc's command line; also installed as `watertight-runc`).
    Oci(commands::oci::OciArgs),
}

/// `watertight run` alone. Each sandbox start parses its arguments, and building the whole
/// command tree above costs more than a tenth of a sandbox's start, so `run` is parsed by this
/// one-subcommand parser (same arguments, help and errors).
#[derive(Parser)]
#[command(
    name = "watertight run",
    about = "Run a program in a layered sandbox and report a verdict",
    long_about = None
)]
struct RunCli {
    #[command(flatten)]
    args: commands::run::Args,
}

/// The exit code for watertight's own errors, by command family. `run` follows `timeout`/`env`
/// conventions (125 = the tool failed, not the program); the others follow linters (2 = usage or
/// input error, 1 = findings).
fn own_error_code(args: &[OsString]) -> u8 {
    match args.get(1).and_then(|a| a.to_str()) {
        Some("run") | Some("profile") => 125,
        _ => 2,
    }
}

fn main() -> ExitCode {
    // Arguments are bytes (file names, a program's arguments): none need be UTF-8, and
    // `std::env::args` would panic on one that is not. Each command takes what it needs as text.
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The VM tier's guest kernel starts this binary as its init (crates/vm).
    if watertight_vm::guest::is_guest_init(argv.first().map(OsString::as_os_str)) {
        watertight_vm::guest::init_main();
    }
    // Installed as `watertight-runc` (a symlink): runc's command line, as container engines call it.
    let invoked_as = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if invoked_as == "watertight-runc" || invoked_as == "runc" {
        return commands::oci::main_as_runc(argv);
    }
    if argv.get(1).is_some_and(|a| a == "run") {
        let run_argv =
            std::iter::once(OsString::from("watertight run")).chain(argv[2..].iter().cloned());
        return match RunCli::try_parse_from(run_argv) {
            Ok(cli) => finish(commands::run::run(cli.args), &argv),
            Err(e) => {
                let parses = |args: &[OsString]| {
                    let argv = std::iter::once(OsString::from("watertight run"))
                        .chain(args.iter().cloned());
                    RunCli::try_parse_from(argv).is_ok()
                };
                parse_error(
                    commands::run::with_program_hint(e, &argv[2..], parses),
                    &argv,
                )
            }
        };
    }
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return parse_error(e, &argv),
    };
    let result = match cli.command {
        Command::Run(args) => commands::run::run(*args),
        Command::Batch(args) => commands::batch::run(args),
        Command::Profile(cmd) => commands::profile::run(cmd),
        Command::Audit(cmd) => commands::audit::run(cmd),
        Command::Net(cmd) => commands::net::run(cmd),
        Command::Key(cmd) => commands::key::run(cmd),
        Command::Manifest(cmd) => commands::manifest::run(cmd),
        Command::Evidence(cmd) => commands::evidence::run(cmd),
        Command::Bpf(cmd) => commands::bpf::run(cmd),
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Man(args) => commands::man::run(args, Cli::command()),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Oci(args) => return ExitCode::from(commands::oci::run(args)),
    };
    finish(result, &argv)
}

fn parse_error(mut e: clap::Error, argv: &[OsString]) -> ExitCode {
    let code = match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
        _ => own_error_code(argv),
    };
    // clap quotes an offending argument as it is: make its control characters visible, so an
    // argument cannot add lines or escape codes to the message.
    use clap::error::ContextValue;
    let escaped: Vec<_> = e
        .context()
        .filter_map(|(kind, v)| match v {
            ContextValue::String(s) => visible(s).map(|s| (kind, ContextValue::String(s))),
            ContextValue::StyledStrs(list) => {
                let plain: Vec<String> = list.iter().map(ToString::to_string).collect();
                plain.iter().any(|s| visible(s).is_some()).then(|| {
                    let list = plain
                        .iter()
                        .map(|s| visible(s).unwrap_or_else(|| s.clone()).into())
                        .collect();
                    (kind, ContextValue::StyledStrs(list))
                })
            }
            _ => None,
        })
        .collect();
    for (kind, v) in escaped {
        e.insert(kind, v);
    }
    let _ = e.print();
    ExitCode::from(code)
}

/// `s` with its control characters made visible, if it has any.
fn visible(s: &str) -> Option<String> {
    match watertight_sys::text::escape_controls(s) {
        std::borrow::Cow::Owned(v) => Some(v),
        std::borrow::Cow::Borrowed(_) => None,
    }
}

/// The error and its causes joined by ": ", leaving out a cause the line already says (library
/// errors quote their I/O cause in their own message, and also return it as their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn finish(result: anyhow::Result<u8>, argv: &[OsString]) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the outermost context first, then its causes.
            // Messages quote the caller's values; no other control character gets through either.
            eprintln!(
                "watertight: {}",
                watertight_sys::text::escape_controls(&one_line(&e))
            );
            ExitCode::from(own_error_code(argv))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_says_each_cause_once() {
        // As thiserror writes a variant with a `source` field quoted in its message.
        #[derive(Debug)]
        struct Read {
            source: std::io::Error,
        }
        impl std::fmt::Display for Read {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot read x.idx: {}", self.source)
            }
        }
        impl std::error::Error for Read {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let io = || std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(Read { source: io() }).context("--cve-index");
        let line = super::one_line(&e);
        assert_eq!(
            line,
            format!("--cve-index: cannot read x.idx: {}", io()),
            "{line}"
        );
        let e = anyhow::Error::new(io()).context("cannot open y");
        assert_eq!(super::one_line(&e), format!("cannot open y: {}", io()));
    }
}
