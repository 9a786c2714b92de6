//! `watertight key ...`: ed25519 keys that sign image manifests.
//!
//! Private keys are PKCS#8 PEM (mode 0600), public keys SubjectPublicKeyInfo PEM; both are
//! readable by OpenSSL (`openssl pkey -in release.key -pubout`).

use anyhow::Context;
use std::path::PathBuf;
use watertight_integrity::{SigningKey, VerifyingKey};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Generate a key pair: writes OUT (private, mode 0600) and OUT.pub (public).
    Generate {
        /// Path of the private key; the public key goes to the same path plus `.pub`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the fingerprint (sha256 of the raw public key) of a private or public key file.
    Fingerprint {
        /// A private key (PKCS#8 PEM) or public key (SPKI PEM) file.
        file: PathBuf,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<u8> {
    match cmd {
        Command::Generate { out } => {
            let key = SigningKey::generate()?;
            let public = key.save(&out)?;
            println!("private key: {} (mode 0600; keep it secret)", out.display());
            println!("public key:  {}", public.display());
            println!("fingerprint: {}", key.verifying_key().fingerprint());
            Ok(0)
        }
        Command::Fingerprint { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let public = if text.contains("PRIVATE KEY") {
                SigningKey::load(&file)?.verifying_key()
            } else {
                VerifyingKey::load(&file)?
            };
            println!("{}", public.fingerprint());
            Ok(0)
        }
    }
}
