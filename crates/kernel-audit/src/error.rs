//! Errors of the kernel audit, each naming the thing at fault and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KernelAuditError {
    #[error(
        "`{input}` is not a kernel version: expected numbers separated by dots like 6.1.100 or 2.6.32.71 (a distro suffix such as -18-amd64 is allowed only on a release string)"
    )]
    BadVersion { input: String },

    #[error("cannot read CVE records directory {path}: {source} (pass the cve/published directory of a checkout of the kernel CNA vulns repository)")]
    RecordsDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("no CVE records (*.json) found under {path}: pass the cve/published directory of a checkout of the kernel CNA vulns repository")]
    NoRecords { path: PathBuf },

    #[error("all {count} CVE record files under {path} failed to parse (first: {first}); is this the kernel CNA's cve/published directory?")]
    NoUsableRecords {
        path: PathBuf,
        count: usize,
        first: String,
    },

    #[error("cannot read CVE index {path}: {source}")]
    IndexRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot write CVE index {path}: {source}")]
    IndexWrite {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path} is not a usable watertight kernel CVE index: {reason}; rebuild it with `watertight audit kernel --cve-db DIR --index-out FILE`")]
    IndexCorrupt { path: PathBuf, reason: String },

    #[error("cannot read kernel release from {path}: {source} (pass --kernel-version)")]
    Release {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("reachability map is invalid: {0}")]
    ReachabilityMap(String),
}
