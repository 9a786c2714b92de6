//! `watertight manifest ...`: signed manifests of image trees, and the kernel layers that enforce
//! them at exec time.
//!
//! Exit codes: 0 = verified; 1 = the tree or manifest fails verification (a finding: altered,
//! missing or extra executable file, bad signature); 2 = usage or input error (unreadable key,
//! malformed manifest, wrong key).

use std::path::PathBuf;
use std::time::Instant;
use watertight_integrity::{
    probe_enforcement, verify_tree, Error, Manifest, SignedManifest, SigningKey, VerifyingKey,
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Hash and sign every file, symlink and directory under ROOT.
    Create {
        /// The image root directory.
        root: PathBuf,
        /// Private key (from `watertight key generate`).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed manifest.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check ROOT against a signed manifest; names the first bad, missing or extra executable file.
    Verify {
        /// The image root directory.
        root: PathBuf,
        /// The signed manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Public key of the signer (`<key>.pub`).
        #[arg(long)]
        pubkey: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show which exec-integrity enforcement layers this kernel offers.
    Probe {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Create { root, key, out } => create(root, key, out),
        Command::Verify {
            root,
            manifest,
            pubkey,
            json,
        } => verify(root, manifest, pubkey, json),
        Command::Probe { json } => {
            let report = probe_enforcement();
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{report}");
            }
            Ok(0)
        }
    }
}

fn create(root: PathBuf, key: PathBuf, out: PathBuf) -> anyhow::Result<u8> {
    let key = SigningKey::load(&key)?;
    let started = Instant::now();
    let signed = Manifest::create(&root, &key)?;
    let elapsed = started.elapsed();
    let entries = &signed.unverified_manifest().entries;
    let (files, bytes) = entries.iter().fold((0u64, 0u64), |(n, b), e| match e {
        watertight_integrity::Entry::File { size, .. } => (n + 1, b + size),
        _ => (n, b),
    });
    // A regular file is written beside and renamed over (a failed write never leaves a truncated
    // manifest); a symlink, FIFO or device is written through (the one sink's rule).
    crate::commands::sink::write_file(&out, &signed.to_bytes(), "--out")?;
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "{}: {} entries, {files} files, {:.1} MiB hashed in {:.2} s ({:.0} MiB/s), signed by {}",
        out.display(),
        entries.len(),
        bytes as f64 / 1048576.0,
        secs,
        bytes as f64 / 1048576.0 / secs,
        signed.signer()
    );
    Ok(0)
}

fn verify(root: PathBuf, manifest: PathBuf, pubkey: PathBuf, json: bool) -> anyhow::Result<u8> {
    let pubkey = VerifyingKey::load(&pubkey)?;
    let signed = SignedManifest::load(&manifest)?;
    match verify_tree(&root, &signed, &pubkey) {
        Ok(tree) => {
            if json {
                let out = serde_json::json!({
                    "verified": true,
                    "root": tree.root,
                    "files": tree.files.len(),
                    "unlisted": tree.unlisted,
                    "signer": signed.signer(),
                });
                println!("{out}");
            } else {
                println!(
                    "{}: verified {} files against {} (signer {}){}",
                    root.display(),
                    tree.files.len(),
                    manifest.display(),
                    signed.signer(),
                    match tree.unlisted.len() {
                        0 => String::new(),
                        n => format!("; {n} unlisted non-executable files (not verified, not executable in the sandbox)"),
                    }
                );
            }
            Ok(0)
        }
        Err(e @ (Error::Tree { .. } | Error::BadSignature { .. })) => {
            if json {
                let (path, problem) = match &e {
                    Error::Tree { path, problem, .. } => (Some(path.clone()), problem.to_string()),
                    other => (None, other.to_string()),
                };
                println!(
                    "{}",
                    serde_json::json!({ "verified": false, "path": path, "problem": problem, "error": e.to_string() })
                );
            }
            eprintln!("watertight: verification failed: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
