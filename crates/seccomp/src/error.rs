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
        /// Where in the profile, e.g. `flags[0]` or `syscalls[3].args[0].op`.
        at: String,
        /// The action as written.
        action: String,
        /// The accepted spellings.
        expected: &'static str,
    },

    /// A syscall name that libseccomp does not know on any architecture.
    #[error("seccomp profile {at}: unknown syscall name {name:?} (not a syscall on any architecture libseccomp {libseccomp} knows; check the spelling)")]
    UnknownSyscall {
        /// Where in the profile, e.g. `flags[0]` or `syscalls[3].args[0].op`.
        at: String,
        /// The name as written.
        name: String,
        /// The libseccomp version that was asked, since newer ones know more names.
        libseccomp: String,
    },

    /// An argument comparison operator that is not one of the SCMP_CMP_* names.
    #[error("seccomp profile {at}: unknown argument operator {op:?}; expected one of {expected}")]
    UnknownOp {
        /// Where in the profile, e.g. `flags[0]` or `syscalls[3].args[0].op`.
        at: String,
        /// The operator as written.
        op: String,
        /// The accepted spellings.
        expected: &'static str,
    },

    /// An architecture that is not one of the SCMP_ARCH_* names.
    #[error("seccomp profile {at}: unknown architecture {arch:?}; expected an SCMP_ARCH_* name such as SCMP_ARCH_X86_64")]
    UnknownArch {
        /// Where in the profile, e.g. `flags[0]` or `syscalls[3].args[0].op`.
        at: String,
        /// The architecture as written.
        arch: String,
    },

    /// A filter flag that is not one of the SECCOMP_FILTER_FLAG_* names the OCI spec allows.
    #[error("seccomp profile {at}: unknown filter flag {flag:?}; expected one of {expected}")]
    UnknownFlag {
        /// Where in the profile, e.g. `flags[0]` or `syscalls[3].args[0].op`.
        at: String,
        /// The flag as written.
        flag: String,
        /// The accepted spellings.
        expected: &'static str,
    },

    /// Any other structural problem (bad arg index, errnoRet on a non-errno action, ...).
    #[error("seccomp profile {at}: {problem}")]
    Invalid {
        /// Where in the profile, e.g. `flags[0]` or `syscalls[3].args[0].op`.
        at: String,
        /// What is wrong, and the fix where there is one.
        problem: String,
    },

    /// libseccomp refused an operation while building the filter.
    #[error("seccomp: libseccomp could not {what}: {source}")]
    Libseccomp {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// The compiled program exceeds the kernel's 4096-instruction limit.
    #[error("seccomp: compiled filter has {len} BPF instructions, more than the kernel's limit of {max}; remove rules or merge argument conditions")]
    ProgramTooLarge {
        /// Instructions in the compiled program.
        len: usize,
        /// The kernel's limit (BPF_MAXINSNS).
        max: usize,
    },

    /// The filter cache directory is unusable or unsafe.
    #[error("seccomp filter cache {path}: {problem}")]
    Cache {
        /// The cache directory or entry.
        path: PathBuf,
        /// What is wrong, and the fix where there is one.
        problem: String,
    },

    /// An I/O error with the thing it happened on.
    #[error("seccomp: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
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
