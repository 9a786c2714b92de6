//! One error type for the crate; every variant names the thing that is wrong and how to fix it.

use std::fmt;
use std::path::PathBuf;

/// Errors from key handling, manifests, tree verification and kernel enforcement.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read key file {path}: {source}")]
    KeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    KeyWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; refusing to overwrite a key (remove it or pick another --out)"
    )]
    KeyExists { path: PathBuf },
    #[error("{path} is not a valid ed25519 {what} key in PEM ({reason}); create one with `watertight key generate --out <file>`")]
    KeyFormat {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("private key {path} is accessible to group or others (mode {mode:04o}); run `chmod 600 {path}`")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{root} is not a directory; pass the root of an image tree")]
    NotADirectory { root: PathBuf },
    #[error("{path}: {kind} in the image; manifests refuse device nodes, FIFOs and sockets (the sandbox provides its own /dev): remove it from the image")]
    SpecialFile { path: PathBuf, kind: &'static str },
    #[error("{path}: setuid/setgid file (mode {mode:04o}); manifests refuse them: clear the bits with `chmod ug-s` in the image")]
    SetId { path: PathBuf, mode: u32 },
    #[error("{path}: file name is not UTF-8; manifests only hold UTF-8 paths: rename it")]
    NonUtf8Path { path: PathBuf },

    #[error("manifest is malformed: {reason}; recreate it with `watertight manifest create`")]
    ManifestFormat { reason: String },
    #[error("manifest was signed by key {signer}, but the given public key is {given}; pass the matching --pubkey")]
    WrongKey { signer: String, given: String },
    #[error("manifest signature does not verify with key {key}: the manifest was altered or truncated after signing")]
    BadSignature { key: String },
    #[error("{root}/{path}: {problem}{}", more_problems(*.others))]
    Tree {
        root: PathBuf,
        path: String,
        problem: TreeProblem,
        others: usize,
    },

    #[error("landlock: {0}")]
    Landlock(String),
    #[error("cgroup {what}: {reason}")]
    Cgroup { what: String, reason: String },
    #[error("BPF exec gate: {step}: {reason}")]
    Bpf { step: &'static str, reason: String },
    #[error("BPF exec gate: {path} changed since verification ({what}); verify the tree again")]
    TreeChanged { path: PathBuf, what: String },
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
    ContentAltered { expected: String, actual: String },
    /// Size differs.
    SizeChanged { expected: u64, actual: u64 },
    /// Permission bits differ.
    ModeChanged { expected: u32, actual: u32 },
    /// A file became a directory, a symlink, ...
    KindChanged {
        expected: &'static str,
        actual: &'static str,
    },
    /// A symlink points elsewhere.
    TargetChanged { expected: String, actual: String },
    /// Not in the manifest and executable (any x bit).
    ExtraExecutable,
    /// Not in the manifest and a device node, FIFO, socket or setuid/setgid file.
    ExtraSpecial { kind: &'static str },
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
