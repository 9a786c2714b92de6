//! Signatures of vetted objects: a small JSON file beside the object.
//!
//! ```json
//! {
//!   "format": "watertight-bpf-signature/1",
//!   "object_sha256": "<hex sha256 of the object's bytes>",
//!   "object_size": 12345,
//!   "policy_sha256": "<Policy::sha256 of the policy it was vetted against>",
//!   "signer": "sha256:<fingerprint of the public key>",
//!   "signature": "<base64 ed25519 signature>"
//! }
//! ```
//!
//! The ed25519 signature is over `watertight-bpf-signature/1\n<policy_sha256>\n` followed by the
//! object's exact bytes, so it covers the object and the policy it passed; the other fields are
//! checked against what is recomputed, never trusted.

use crate::error::{Error, Result};
use crate::policy::Policy;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use watertight_integrity::{SigningKey, VerifyingKey};

/// The `format` of signature files this version writes and reads.
pub const SIGNATURE_FORMAT: &str = "watertight-bpf-signature/1";

/// A signature file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// [`SIGNATURE_FORMAT`].
    pub format: String,
    /// sha256 of the signed object, hex.
    pub object_sha256: String,
    /// The signed object's size in bytes.
    pub object_size: u64,
    /// [`Policy::sha256`] of the policy the object was vetted against.
    pub policy_sha256: String,
    /// Fingerprint of the signing key (`sha256:<hex>`).
    pub signer: String,
    /// The ed25519 signature, base64.
    pub signature: String,
}

impl SignatureFile {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // A struct of strings and an integer always serializes.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn message(policy_sha256: &str, object: &[u8]) -> Vec<u8> {
    let mut m = format!("{SIGNATURE_FORMAT}\n{policy_sha256}\n").into_bytes();
    m.extend_from_slice(object);
    m
}

/// Vets `object` against `policy` and, when admitted, signs its exact bytes. A refused object
/// is [`Error::Refused`] (nothing signed).
pub fn sign(object: &[u8], policy: &Policy, key: &SigningKey) -> Result<SignatureFile> {
    let vetting = crate::vet(object, policy)?;
    if let Some(first) = vetting.refusals.first() {
        return Err(Error::Refused {
            count: vetting.refusals.len(),
            first: first.to_string(),
        });
    }
    let signature = key.sign_bytes(&message(&vetting.policy_sha256, object));
    Ok(SignatureFile {
        format: SIGNATURE_FORMAT.into(),
        object_sha256: vetting.object_sha256,
        object_size: object.len() as u64,
        policy_sha256: vetting.policy_sha256,
        signer: key.verifying_key().fingerprint(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature),
    })
}

/// Checks that `sig_file` (a signature file's bytes) is `key`'s signature of exactly
/// `object`; returns the parsed file (its `policy_sha256` says which policy passed it).
pub fn verify_signature(
    object: &[u8],
    sig_file: &[u8],
    key: &VerifyingKey,
) -> Result<SignatureFile> {
    let file: SignatureFile =
        serde_json::from_slice(sig_file).map_err(|e| Error::SignatureFormat(e.to_string()))?;
    if file.format != SIGNATURE_FORMAT {
        return Err(Error::SignatureFormat(format!(
            "format {:?} (this version reads {SIGNATURE_FORMAT:?})",
            file.format
        )));
    }
    let fingerprint = key.fingerprint();
    if file.signer != fingerprint {
        return Err(Error::SignatureMismatch(format!(
            "signed by {}, not by the key given ({fingerprint})",
            file.signer
        )));
    }
    let sha = hex::encode(Sha256::digest(object));
    if file.object_sha256 != sha || file.object_size != object.len() as u64 {
        return Err(Error::SignatureMismatch(format!(
            "the object's sha256 is {sha} ({} bytes), the signature is of {} ({} bytes): the object changed after signing",
            object.len(),
            file.object_sha256,
            file.object_size
        )));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(file.signature.trim())
        .map_err(|e| Error::SignatureFormat(format!("signature is not base64: {e}")))?;
    if !key.verify_bytes(&message(&file.policy_sha256, object), &signature) {
        return Err(Error::SignatureMismatch(
            "the ed25519 signature does not verify (the file was edited, or signed with another key)".into(),
        ));
    }
    Ok(file)
}
