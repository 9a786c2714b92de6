//! Errors of the auditor's library: each names the input and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot list /proc ({source}); mount procfs or run where /proc is visible")]
    ProcUnreadable {
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
            AuditError::ProcUnreadable { .. } => self.to_string(),
        }
    }
}
