//! Run a command under a seccomp profile: `run_filtered [--profile FILE] [--kill]
//! [--log] -- CMD ARGS...`. Handy to try a profile by hand before giving it to the sandbox.

use std::process::Command;

use watertight_seccomp::{default_profile, CompileOptions, Profile, ViolationAction};

fn main() {
    if let Err(e) = run() {
        eprintln!("run_filtered: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut profile = default_profile();
    let mut opts = CompileOptions::default();
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--profile" => {
                let path = args.next().ok_or("--profile needs a file")?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read profile {path}: {e}"))?;
                profile = Profile::from_json(&text)?;
            }
            "--kill" => opts.violation_action = ViolationAction::KillProcess,
            "--log" => opts.log_denials = true,
            "--" => {
                command.extend(args.by_ref());
            }
            other => return Err(format!("unknown option {other}; usage: run_filtered [--profile FILE] [--kill] [--log] -- CMD ARGS...").into()),
        }
    }
    let (program, rest) = command.split_first().ok_or("no command given after --")?;
    let filter = profile.compile(&opts)?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    watertight_sys::seccomp::command_with_filter(
        &mut cmd,
        filter.program().to_vec(),
        filter.flags(),
    );
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    std::process::exit(status.code().unwrap_or(128 + 31));
}
