//! `watertight evidence ...`: read and check the signed bundles that `watertight run
//! --on-violation forensic` writes.
//!
//! Exit codes of `verify`: 0 the bundle is intact, 1 a file or the signature does not match
//! (the first one is named), 2 bad input (no such bundle, unreadable key).

use anyhow::Context;
use std::path::{Path, PathBuf};
use watertight_forensics::{VerifyingKey, DEFAULT_KEY_PATH};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print what happened: violation events, verdict, tasks, files the program changed, sockets.
    Show {
        /// The bundle directory (as `watertight run` reported it).
        bundle: PathBuf,
    },
    /// Check the manifest signature and every file's hash. Exit 0 intact, 1 altered, 2 bad input.
    Verify {
        /// The bundle directory.
        bundle: PathBuf,
        /// Public key (SPKI PEM) to check the signature with [default: the host evidence key's
        /// .pub, /var/lib/watertight/evidence.key.pub].
        #[arg(long, value_name = "FILE")]
        pubkey: Option<PathBuf>,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Show { bundle } => {
            let text = watertight_forensics::summarize(&bundle)?;
            print!("{text}");
            Ok(0)
        }
        Command::Verify { bundle, pubkey } => verify(&bundle, pubkey),
    }
}

fn verify(bundle: &Path, pubkey: Option<PathBuf>) -> anyhow::Result<u8> {
    let pubkey_path = pubkey.unwrap_or_else(|| {
        watertight_integrity::keys::public_key_path(Path::new(DEFAULT_KEY_PATH))
    });
    let key = VerifyingKey::load(&pubkey_path)
        .with_context(|| format!("public key {}", pubkey_path.display()))?;
    match watertight_forensics::verify(bundle, &key) {
        Ok(report) => {
            println!(
                "OK {}: {} files, {} bytes, sandbox {}, captured {}, signed by {}{}",
                bundle.display(),
                report.files,
                report.bytes,
                report.sandbox_id,
                report.created,
                report.signer,
                report
                    .truncated
                    .map(|limit| format!(
                        "; evidence truncated at its {limit}-byte budget (see `evidence show`)"
                    ))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        Err(e) if e.is_tampering() => {
            println!("FAILED {}", bundle.display());
            eprintln!("watertight: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
