//! One error type for the crate. Every variant names the file or directory at fault.

use std::path::PathBuf;

/// Everything that can go wrong capturing, verifying or showing an evidence bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sandbox id or layer name that cannot be a path component in the bundle.
    #[error("{what} {name:?} cannot name a path in an evidence bundle: {reason}")]
    BadName {
        /// What the name is for (sandbox id, layer name).
        what: &'static str,
        /// The name as given.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The evidence directory cannot be written.
    #[error("cannot write evidence to {dir}: {source}; make the directory writable with free space or pass another --evidence-dir")]
    EvidenceDir {
        /// The evidence directory.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the sandbox or the bundle cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the writable layer cannot be read.
    #[error("cannot read {path} from the writable layer: {source}")]
    LayerRead {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The host's evidence key cannot be loaded.
    #[error("host evidence key {path}: {source}")]
    Key {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: Box<watertight_integrity::Error>,
    },
    /// The directory holds no manifest.
    #[error("{path}: not an evidence bundle (no manifest); pass the directory `watertight run` reported")]
    NotABundle {
        /// The file or directory concerned.
        path: PathBuf,
    },
    /// The manifest does not parse: it was altered.
    #[error("{path}: malformed manifest at line {line}: {reason}")]
    ManifestFormat {
        /// The file or directory concerned.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The signature file does not parse: it was altered.
    #[error("{path}: malformed signature file: {reason}")]
    SignatureFormat {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bundle was signed by another key than the one given.
    #[error("{path}: signed by key {signer}, but the given public key is {given}; pass the matching --pubkey")]
    WrongKey {
        /// The file or directory concerned.
        path: PathBuf,
        /// Fingerprint of the key that signed.
        signer: String,
        /// Fingerprint of the key given.
        given: String,
    },
    /// The signature does not match the manifest.
    #[error("{manifest}: the signature in {signature} does not verify with key {key}: the manifest or its signature was altered")]
    BadSignature {
        /// The manifest file.
        manifest: PathBuf,
        /// The signature file.
        signature: PathBuf,
        /// Fingerprint of the key given.
        key: String,
    },
    /// A file's content differs from the manifest.
    #[error(
        "{path}: sha256 {actual} does not match the manifest's {expected}: the file was altered"
    )]
    HashMismatch {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the manifest says.
        expected: String,
        /// What the file has.
        actual: String,
    },
    /// A file's size differs from the manifest.
    #[error("{path}: {actual} bytes, the manifest says {expected}: the file was altered")]
    SizeMismatch {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the manifest says.
        expected: u64,
        /// What the file has.
        actual: u64,
    },
    /// An archive member differs from what capture.json recorded.
    #[error("{archive}: member {member} {reason}: the file was altered")]
    MemberMismatch {
        /// The archive.
        archive: PathBuf,
        /// The member's path in the archive.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// A listed file is gone or unreadable.
    #[error("{path}: listed in the manifest but missing or unreadable ({reason})")]
    Missing {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file in the bundle that the manifest does not list.
    #[error("{path}: not listed in the signed manifest: it was added after signing")]
    Unlisted {
        /// The file or directory concerned.
        path: PathBuf,
    },
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
