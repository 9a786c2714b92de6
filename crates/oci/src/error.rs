//! One error enum for the crate: one variant per step, each naming the thing involved.

use std::io;
use std::path::PathBuf;

/// Why an OCI runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bundle's config.json could not be read.
    #[error("{path}: cannot read: {source}")]
    ReadConfig {
        /// The config file.
        path: PathBuf,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// config.json is not a valid OCI runtime config.
    #[error("{path}: {reason}")]
    ParseConfig {
        /// The config file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// A field watertight-runc cannot honour (never silently dropped).
    #[error("{field}: not supported by watertight-runc{}", hint_of(.hint))]
    Unsupported {
        /// The JSON path, e.g. `linux.intelRdt`.
        field: String,
        /// What to do instead, when there is something.
        hint: String,
    },
    /// A field whose value is wrong.
    #[error("{field}: {reason}")]
    Invalid {
        /// The JSON path.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The container id is not usable as a directory name.
    #[error("container id {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `create` of an id that exists under --root.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// The seccomp agent at linux.seccomp.listenerPath could not be handed the listener.
    #[error("linux.seccomp.listenerPath: {path}: {reason}")]
    SeccompAgent {
        /// The agent's unix socket.
        path: PathBuf,
        /// What failed (connect, send).
        reason: String,
    },
    /// No such container under --root.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The command does not apply to the container's status.
    #[error("container {id:?} is {status}: {what}")]
    WrongStatus {
        /// The container.
        id: String,
        /// Its status now.
        status: String,
        /// What was refused.
        what: String,
    },
    /// The state directory or one of its files.
    #[error("state {path}: {source}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A cgroup file or directory.
    #[error("cgroup {path}: {source}")]
    Cgroup {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The container's seccomp profile.
    #[error("linux.seccomp: {0}")]
    Seccomp(#[from] watertight_seccomp::Error),
    /// Forking or talking to the container's processes.
    #[error("{step}: {source}")]
    Process {
        /// The step that failed.
        step: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The container init (or an exec'd process) reported a failed setup step.
    #[error("{0}")]
    Init(String),
    /// A hook failed or timed out.
    #[error("hooks.{kind}[{index}] {path}: {reason}")]
    Hook {
        /// prestart, createRuntime, ...
        kind: &'static str,
        /// Its index in the list.
        index: usize,
        /// Its path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The console socket.
    #[error("--console-socket {path}: {reason}")]
    Console {
        /// The socket path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The hardening floor (runtime.toml, a refused privileged config, publishing).
    #[error("{0}")]
    Floor(#[from] watertight_floor::Error),
    /// A signal name or number that is not a signal.
    #[error("{0:?}: not a signal name (KILL, SIGTERM) or number (1-64)")]
    Signal(String),
}

fn hint_of(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

impl Error {
    pub(crate) fn unsupported(field: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Unsupported {
            field: field.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn state(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::State {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn cgroup(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Cgroup {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn process(step: &'static str, source: impl Into<io::Error>) -> Error {
        Error::Process {
            step,
            source: source.into(),
        }
    }
}
