//! Print what a profile compiles to, as libseccomp pseudo-filter code:
//! `explain [PROFILE.json]` (the built-in profile without an argument).

use watertight_seccomp::{default_profile, CompileOptions, Profile};

fn main() {
    let profile = match std::env::args().nth(1) {
        None => default_profile(),
        Some(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                eprintln!("explain: cannot read profile {path}: {e}");
                std::process::exit(2)
            });
            Profile::from_json(&text).unwrap_or_else(|e| {
                eprintln!("explain: {e}");
                std::process::exit(2)
            })
        }
    };
    match profile.explain(&CompileOptions::default()) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("explain: {e}");
            std::process::exit(2)
        }
    }
}
