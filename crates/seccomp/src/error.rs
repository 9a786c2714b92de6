//! Errors of this crate. Each names the offending thing (profile entry, file, syscall) and, where
//! there is one, the fix.

use std::path::PathBuf;

/// Everything that can go wrong parsing, compiling or caching a seccomp profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not JSON, or does not have the shape of a Docker/OCI seccomp profile.
    #[error("seccomp profile is not a valid Docker/OCI seccomp JSON document: {0}")]
    Json(#[from] serde_json::Error),

    /// An action string that is not one of the SCMP_ACT_* names.
    #[error("seccomp profile {at}: unknown action {action:?}; expected one of {expected}")]
    UnknownAction {
        at: String,
        action: String,
        expected: &'static str,
    },

    /// A syscall name that libseccomp does not know on any architecture.
    #[error("seccomp profile {at}: unknown syscall name {name:?} (not a syscall on any architecture libseccomp {libseccomp} knows; check the spelling)")]
    UnknownSyscall {
        at: String,
        name: String,
        libseccomp: String,
    },

    /// An argument comparison operator that is not one of the SCMP_CMP_* names.
    #[error("seccomp profile {at}: unknown argument operator {op:?}; expected one of {expected}")]
    UnknownOp {
        at: String,
        op: String,
        expected: &'static str,
    },

    /// An architecture that is not one of the SCMP_ARCH_* names.
    #[error("seccomp profile {at}: unknown architecture {arch:?}; expected an SCMP_ARCH_* name such as SCMP_ARCH_X86_64")]
    UnknownArch { at: String, arch: String },

    /// A filter flag that is not one of the SECCOMP_FILTER_FLAG_* names the OCI spec allows.
    #[error("seccomp profile {at}: unknown filter flag {flag:?}; expected one of {expected}")]
    UnknownFlag {
        at: String,
        flag: String,
        expected: &'static str,
    },

    /// Any other structural problem (bad arg index, errnoRet on a non-errno action, ...).
    #[error("seccomp profile {at}: {problem}")]
    Invalid { at: String, problem: String },

    /// libseccomp refused an operation while building the filter.
    #[error("seccomp: libseccomp could not {what}: {source}")]
    Libseccomp {
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// The compiled program exceeds the kernel's 4096-instruction limit.
    #[error("seccomp: compiled filter has {len} BPF instructions, more than the kernel's limit of {max}; remove rules or merge argument conditions")]
    ProgramTooLarge { len: usize, max: usize },

    /// The filter cache directory is unusable or unsafe.
    #[error("seccomp filter cache {path}: {problem}")]
    Cache { path: PathBuf, problem: String },

    /// An I/O error with the thing it happened on.
    #[error("seccomp: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(at: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Invalid {
            at: at.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn libseccomp(
        what: impl Into<String>,
        source: libseccomp::error::SeccompError,
    ) -> Self {
        Error::Libseccomp {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
