//! Writes the seccomp program the built-in profile installs (raw BPF, 8 bytes per instruction)
//! to standard output, compiled exactly as `watertight run` compiles it. benches/run feeds it to
//! kernel-floor.c: `cargo run --release -p watertight-sandbox --example default_filter > filter.bpf`.

use std::io::Write;

fn main() {
    let profile = watertight_sandbox::default_profile();
    match watertight_sandbox::layers::seccomp::compile(&profile.seccomp, false, profile.bpf.observe)
    {
        Ok(filter) => {
            if let Err(e) = std::io::stdout().write_all(&filter.program_bytes()) {
                eprintln!("default_filter: write the program: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("default_filter: {e}");
            std::process::exit(2);
        }
    }
}
