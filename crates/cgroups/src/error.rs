//! One error enum for the crate; every variant names the file or thing involved and, where there
//! is one, the fix.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {value:?} to {path}: {source}{}", write_hint(.source))]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },

    #[error("cannot create cgroup directory {path}: {source}{}", mkdir_hint(.source))]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot remove cgroup directory {path}: {source}")]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cgroup {path} already exists: pick a unique sandbox name or run cleanup_stale first")]
    AlreadyExists { path: PathBuf },

    #[error("invalid cgroup name {name:?}: {reason} (use 1-128 characters from [A-Za-z0-9._-], not starting with '.')")]
    InvalidName { name: String, reason: &'static str },

    #[error("invalid pid {pid}: pass the positive pid of a running child")]
    InvalidPid { pid: i32 },

    #[error("invalid limit {what}: {reason}")]
    InvalidLimit { what: &'static str, reason: String },

    #[error(
        "cgroup controller {controller} is not available on this host ({mode:?} layout): {fix}"
    )]
    ControllerMissing {
        controller: &'static str,
        mode: crate::Mode,
        fix: &'static str,
    },

    #[error("no cgroup hierarchy is mounted (checked /proc/self/mountinfo): mount cgroup2 at /sys/fs/cgroup")]
    NoHierarchy,

    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },

    #[error("device program for {path}: {source}")]
    DeviceProgram {
        path: PathBuf,
        #[source]
        source: watertight_sys::bpf::BpfError,
    },

    #[error("timed out after {waited_ms} ms waiting for {path} to {what}")]
    Timeout {
        path: PathBuf,
        what: &'static str,
        waited_ms: u64,
    },

    #[error("cannot signal pid {pid} in {path}: {source}")]
    Signal {
        pid: i32,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

fn write_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => " (run as root or delegate the cgroup)",
        Some(nix::libc::EROFS) => " (the cgroup hierarchy is mounted read-only; remount it rw)",
        Some(nix::libc::ENOENT) => " (the controller file is missing: is the controller enabled?)",
        Some(nix::libc::ESRCH) => " (the process has already exited)",
        Some(nix::libc::EBUSY) => {
            " (cgroup v2 forbids processes in an inner cgroup with controllers enabled)"
        }
        _ => "",
    }
}

fn mkdir_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => " (run as root or delegate the cgroup)",
        Some(nix::libc::EROFS) => " (the cgroup hierarchy is mounted read-only; remount it rw)",
        Some(nix::libc::ENOENT) => {
            " (the hierarchy is not mounted there any more; re-run detect())"
        }
        _ => "",
    }
}

impl Error {
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(
        path: impl Into<PathBuf>,
        value: impl Into<String>,
        source: io::Error,
    ) -> Error {
        Error::Write {
            path: path.into(),
            value: value.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Parse {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
