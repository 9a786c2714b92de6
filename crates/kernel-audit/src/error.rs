//! Errors of the kernel audit, each naming the thing at fault and the fix.

use std::path::PathBuf;

/// Everything that can go wrong loading CVE data or reading the running kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelAuditError {
    /// A kernel version that does not parse.
    #[error(
        "`{input}` is not a kernel version: expected numbers separated by dots like 6.1.100 or 2.6.32.71 (a distro suffix such as -18-amd64 is allowed only on a release string)"
    )]
    BadVersion {
        /// The text as given.
        input: String,
    },

    /// The records directory cannot be read.
    #[error("cannot read CVE records directory {path}: {source} (pass the cve/published directory of a checkout of the kernel CNA vulns repository)")]
    RecordsDir {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The directory holds no record files.
    #[error("no CVE records (*.json) found under {path}: pass the cve/published directory of a checkout of the kernel CNA vulns repository")]
    NoRecords {
        /// The file or directory concerned.
        path: PathBuf,
    },

    /// Every record file failed to parse: probably the wrong directory.
    #[error("all {count} CVE record files under {path} failed to parse (first: {first}); is this the kernel CNA's cve/published directory?")]
    NoUsableRecords {
        /// The file or directory concerned.
        path: PathBuf,
        /// How many files failed.
        count: usize,
        /// The first failure, with its file.
        first: String,
    },

    /// The index file cannot be read.
    #[error("cannot read CVE index {path}: {source}")]
    IndexRead {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The index file cannot be written.
    #[error("cannot write CVE index {path}: {source}")]
    IndexWrite {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The index has the wrong magic, version, length or checksum, or does not decode.
    #[error("{path} is not a usable watertight kernel CVE index: {reason}; rebuild it with `watertight audit kernel --cve-db DIR --index-out FILE`")]
    IndexCorrupt {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The running kernel's release cannot be read.
    #[error("cannot read kernel release from {path}: {source} (pass --kernel-version)")]
    Release {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The isolation policy file cannot be read.
    #[error("cannot read the isolation policy {path}: {source}")]
    PolicyRead {
        /// The policy file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The isolation policy file is not a valid policy.
    #[error("isolation policy {path}: {reason} (see docs/isolation.md, \"Choice by risk\")")]
    PolicyInvalid {
        /// The policy file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },

    /// The reachability map (reachability.toml) does not parse.
    #[error("reachability map is invalid: {0}")]
    ReachabilityMap(String),
}
