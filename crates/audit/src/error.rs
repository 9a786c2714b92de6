//! Errors of the auditor's library: each names the input and what to do.

use std::path::PathBuf;

/// Why an input (a file, or /proc) could not be audited.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error of the read.
        #[source]
        source: std::io::Error,
    },
    /// The input is not in its format's syntax or types (not JSON, a field of the wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What failed to parse and, where it helps, which input was expected.
        message: String,
    },
    /// The input parses but is not what the source audits (e.g. `docker inspect` of an image).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the input is missing, and what was expected instead.
        message: String,
    },
    /// An `--exclude` pattern is not a glob.
    #[error("--exclude {glob:?}: {message}; use a glob such as 'charts/**' or '*.tmpl.yaml'")]
    BadGlob {
        /// The pattern as given.
        glob: String,
        /// What is wrong with it.
        message: String,
    },
    /// /proc cannot be listed, so no live process can be audited.
    #[error("cannot list /proc ({source}); mount procfs or run where /proc is visible")]
    ProcUnreadable {
        /// The error of listing the procfs root.
        #[source]
        source: std::io::Error,
    },
}

impl AuditError {
    /// The message without the leading path, for reports that name the input separately.
    pub fn detail(&self) -> String {
        match self {
            AuditError::Read { source, .. } => format!("cannot read: {source}"),
            AuditError::Parse { message, .. } | AuditError::Invalid { message, .. } => {
                message.clone()
            }
            AuditError::ProcUnreadable { .. } | AuditError::BadGlob { .. } => self.to_string(),
        }
    }
}
