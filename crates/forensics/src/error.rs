//! One error type for the crate. Every variant names the file or directory at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {name:?} cannot name a path in an evidence bundle: {reason}")]
    BadName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("cannot write evidence to {dir}: {source}; make the directory writable with free space or pass another --evidence-dir")]
    EvidenceDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path} from the writable layer: {source}")]
    LayerRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("host evidence key {path}: {source}")]
    Key {
        path: PathBuf,
        source: Box<watertight_integrity::Error>,
    },
    #[error("{path}: not an evidence bundle (no manifest); pass the directory `watertight run` reported")]
    NotABundle { path: PathBuf },
    #[error("{path}: malformed manifest at line {line}: {reason}")]
    ManifestFormat {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: malformed signature file: {reason}")]
    SignatureFormat { path: PathBuf, reason: String },
    #[error("{path}: signed by key {signer}, but the given public key is {given}; pass the matching --pubkey")]
    WrongKey {
        path: PathBuf,
        signer: String,
        given: String,
    },
    #[error("{manifest}: the signature in {signature} does not verify with key {key}: the manifest or its signature was altered")]
    BadSignature {
        manifest: PathBuf,
        signature: PathBuf,
        key: String,
    },
    #[error(
        "{path}: sha256 {actual} does not match the manifest's {expected}: the file was altered"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: {actual} bytes, the manifest says {expected}: the file was altered")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{archive}: member {member} {reason}: the file was altered")]
    MemberMismatch {
        archive: PathBuf,
        member: String,
        reason: String,
    },
    #[error("{path}: listed in the manifest but missing or unreadable ({reason})")]
    Missing { path: PathBuf, reason: String },
    #[error("{path}: not listed in the signed manifest: it was added after signing")]
    Unlisted { path: PathBuf },
}

impl Error {
    /// True when the bundle was altered (a hash, size, signature or file set does not match), as
    /// opposed to bad input such as an unreadable key. `evidence verify` exits 1 for these.
    pub fn is_tampering(&self) -> bool {
        matches!(
            self,
            Error::ManifestFormat { .. }
                | Error::SignatureFormat { .. }
                | Error::WrongKey { .. }
                | Error::BadSignature { .. }
                | Error::HashMismatch { .. }
                | Error::SizeMismatch { .. }
                | Error::MemberMismatch { .. }
                | Error::Missing { .. }
                | Error::Unlisted { .. }
        )
    }

    pub(crate) fn evidence_dir(dir: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::EvidenceDir {
            dir: dir.into(),
            source,
        }
    }
}
