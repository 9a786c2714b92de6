//! One error type for the crate; every variant names the thing that is wrong and how to fix it.

use std::fmt;
use std::path::PathBuf;

/// Errors from key handling, manifests, tree verification and kernel enforcement.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file cannot be read.
    #[error("cannot read key file {path}: {source}")]
    KeyRead {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file cannot be written.
    #[error("cannot write key file {path}: {source}")]
    KeyWrite {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `key generate` would overwrite an existing file.
    #[error(
        "{path} already exists; refusing to overwrite a key (remove it or pick another --out)"
    )]
    KeyExists {
        /// The file concerned.
        path: PathBuf,
    },
    /// A key file is not ed25519 PEM of the expected kind.
    #[error("{path} is not a valid ed25519 {what} key in PEM ({reason}); create one with `watertight key generate --out <file>`")]
    KeyFormat {
        /// The file concerned.
        path: PathBuf,
        /// `private` or `public`.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A private key that group or others can access: it may have leaked, so it is refused.
    #[error("private key {path} is accessible to group or others (mode {mode:04o}); run `chmod 600 {path}`")]
    KeyPermissions {
        /// The file concerned.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The system's random source failed.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),

    /// Reading a file of the image, or a manifest file, failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The image root is not a directory.
    #[error("{root} is not a directory; pass the root of an image tree")]
    NotADirectory {
        /// The image root.
        root: PathBuf,
    },
    /// A device node, FIFO or socket in the image.
    #[error("{path}: {kind} in the image; manifests refuse device nodes, FIFOs and sockets (the sandbox provides its own /dev): remove it from the image")]
    SpecialFile {
        /// The file concerned.
        path: PathBuf,
        /// What it is (character device, FIFO, socket, ...).
        kind: &'static str,
    },
    /// A setuid or setgid file in the image.
    #[error("{path}: setuid/setgid file (mode {mode:04o}); manifests refuse them: clear the bits with `chmod ug-s` in the image")]
    SetId {
        /// The file concerned.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file name a manifest cannot hold.
    #[error("{path}: file name is not UTF-8; manifests only hold UTF-8 paths: rename it")]
    NonUtf8Path {
        /// The file concerned.
        path: PathBuf,
    },

    /// The manifest cannot be decoded.
    #[error("manifest is malformed: {reason}; recreate it with `watertight manifest create`")]
    ManifestFormat {
        /// Why it failed.
        reason: String,
    },
    /// The manifest was signed by another key than the one given.
    #[error("manifest was signed by key {signer}, but the given public key is {given}; pass the matching --pubkey")]
    WrongKey {
        /// Fingerprint of the key that signed.
        signer: String,
        /// Fingerprint of the key given.
        given: String,
    },
    /// The signature does not match the manifest's bytes.
    #[error("manifest signature does not verify with key {key}: the manifest was altered or truncated after signing")]
    BadSignature {
        /// Fingerprint of the key given.
        key: String,
    },
    /// The tree differs from its manifest (the first problem found, and how many more).
    #[error("{root}/{path}: {problem}{}", more_problems(*.others))]
    Tree {
        /// The image root.
        root: PathBuf,
        /// The path relative to the root.
        path: String,
        /// What is wrong with it.
        problem: TreeProblem,
        /// How many more problems the tree has.
        others: usize,
    },

    /// Landlock refused a ruleset or a rule.
    #[error("landlock: {0}")]
    Landlock(String),
    /// The exec gate's cgroup could not be set up.
    #[error("cgroup {what}: {reason}")]
    Cgroup {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// Loading or attaching the BPF exec gate failed.
    #[error("BPF exec gate: {step}: {reason}")]
    Bpf {
        /// The step that failed (open, load, attach, ...).
        step: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A verified file changed between verification and the gate's attach.
    #[error("BPF exec gate: {path} changed since verification ({what}); verify the tree again")]
    TreeChanged {
        /// The file concerned.
        path: PathBuf,
        /// What changed.
        what: String,
    },
}

fn more_problems(others: usize) -> String {
    match others {
        0 => String::new(),
        1 => " (and 1 more problem)".into(),
        n => format!(" (and {n} more problems)"),
    }
}

/// What is wrong with one path of a tree checked against its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeProblem {
    /// Listed in the manifest, absent from the tree.
    Missing,
    /// Content differs (sha256).
    ContentAltered {
        /// What the manifest says.
        expected: String,
        /// What the tree has.
        actual: String,
    },
    /// Size differs.
    SizeChanged {
        /// What the manifest says.
        expected: u64,
        /// What the tree has.
        actual: u64,
    },
    /// Permission bits differ.
    ModeChanged {
        /// What the manifest says.
        expected: u32,
        /// What the tree has.
        actual: u32,
    },
    /// A file became a directory, a symlink, ...
    KindChanged {
        /// What the manifest says.
        expected: &'static str,
        /// What the tree has.
        actual: &'static str,
    },
    /// A symlink points elsewhere.
    TargetChanged {
        /// What the manifest says.
        expected: String,
        /// What the tree has.
        actual: String,
    },
    /// Not in the manifest and executable (any x bit).
    ExtraExecutable,
    /// Not in the manifest and a device node, FIFO, socket or setuid/setgid file.
    ExtraSpecial {
        /// What it is (character device, FIFO, socket, ...).
        kind: &'static str,
    },
}

impl fmt::Display for TreeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeProblem::Missing => write!(f, "listed in the manifest but missing"),
            TreeProblem::ContentAltered { expected, actual } => write!(
                f,
                "content altered (sha256 {actual}, manifest says {expected})"
            ),
            TreeProblem::SizeChanged { expected, actual } => {
                write!(f, "size changed ({actual} bytes, manifest says {expected})")
            }
            TreeProblem::ModeChanged { expected, actual } => {
                write!(
                    f,
                    "mode changed ({actual:04o}, manifest says {expected:04o})"
                )
            }
            TreeProblem::KindChanged { expected, actual } => {
                write!(f, "is a {actual}, manifest says {expected}")
            }
            TreeProblem::TargetChanged { expected, actual } => write!(
                f,
                "symlink points to {actual:?}, manifest says {expected:?}"
            ),
            TreeProblem::ExtraExecutable => {
                write!(f, "executable file not in the manifest")
            }
            TreeProblem::ExtraSpecial { kind } => write!(f, "{kind} not in the manifest"),
        }
    }
}
