//! Errors of the sandbox library. Each names what failed and, where there is one, the fix.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("profile {origin}: {message}")]
    Profile { origin: String, message: String },
    #[error("{0}")]
    Config(String),
    // `err`, not `source`: the message already carries it, and a source would be printed twice.
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },
    #[error("watertight run needs root (it creates cgroups and maps the sandbox to its own host uid); run it as root, e.g. with sudo")]
    NotRoot,
    // Not `#[from]`/`#[source]`: the inner message is already in ours, and a source would make
    // the CLI print it twice.
    #[error("seccomp: {0}")]
    Seccomp(watertight_seccomp::Error),
    #[error("cgroups: {0}")]
    Cgroup(watertight_cgroups::Error),
    #[error(
        "every sandbox slot ({slots}) is in use: wait for a sandbox to end or raise identity.slots"
    )]
    NoFreeSlot { slots: u32 },
    #[error("sandbox setup failed at {stage}: {message}")]
    Setup { stage: String, message: String },
}

impl From<watertight_seccomp::Error> for Error {
    fn from(e: watertight_seccomp::Error) -> Error {
        Error::Seccomp(e)
    }
}

impl From<watertight_cgroups::Error> for Error {
    fn from(e: watertight_cgroups::Error) -> Error {
        Error::Cgroup(e)
    }
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            err: source,
        }
    }
}

/// Adds context to io results: `.ctx(|| format!("mount {}", p))?`.
pub trait IoContext<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T, Error>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T, Error> {
        self.map_err(|e| Error::io(what(), e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, what: F) -> Result<T, Error> {
        self.map_err(|e| Error::io(what(), io::Error::from(e)))
    }
}
