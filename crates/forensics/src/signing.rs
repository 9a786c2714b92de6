//! ed25519 over the manifest bytes with the integrity crate's key types, and the host key file.
//!
//! The integrity crate keeps its raw sign/verify private to its own manifest format, so the keys
//! cross over through their PKCS#8 / SPKI PEM encodings (microseconds, once per bundle).

use crate::error::Error;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer, Verifier};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use watertight_integrity::{SigningKey, VerifyingKey};

/// The host's evidence key unless the caller names another.
pub const DEFAULT_KEY_PATH: &str = "/var/lib/watertight/evidence.key";

pub(crate) fn sign(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let dalek = ed25519_dalek::SigningKey::from_pkcs8_pem(&key.to_pem())
        .expect("the integrity crate's PEM encoding of its own key parses");
    dalek.sign(message).to_bytes()
}

pub(crate) fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(dalek) = ed25519_dalek::VerifyingKey::from_public_key_pem(&key.to_pem()) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    dalek.verify_strict(message, &signature).is_ok() && dalek.verify(message, &signature).is_ok()
}

/// Loads the host evidence key, creating it (0600, with `<path>.pub` beside it) on first use.
pub fn load_or_create_host_key(path: &Path) -> Result<SigningKey, Error> {
    let key_err = |source| Error::Key {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    if path.symlink_metadata().is_ok() {
        let key = SigningKey::load(path).map_err(key_err)?;
        // `evidence verify` defaults to the .pub beside the key: restore it if it went missing.
        let public = watertight_integrity::keys::public_key_path(path);
        if public.symlink_metadata().is_err() {
            key.verifying_key().save(&public).map_err(key_err)?;
        }
        return Ok(key);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Error::evidence_dir(parent, e))?;
    }
    let key = SigningKey::generate().map_err(key_err)?;
    match key.save(path) {
        Ok(_) => Ok(key),
        // Another supervisor created it between our check and our save: use theirs.
        Err(watertight_integrity::Error::KeyExists { .. }) => {
            SigningKey::load(path).map_err(key_err)
        }
        Err(e) => Err(key_err(e)),
    }
}
