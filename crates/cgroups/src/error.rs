//! One error enum for the crate; every variant names the file or thing involved and, where there
//! is one, the fix.

use std::io;
use std::path::PathBuf;

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a cgroup file or directory failed, or a file needed beside them:
    /// `/proc/self/mountinfo` in detection, `/proc/self/stat` for the owner tag, a hierarchy
    /// root or the registry listed for stale cleanup, the cgroup directory opened to attach the
    /// device program, or poll(2) while waiting on `cgroup.events`.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The system call's error.
        #[source]
        source: io::Error,
    },

    /// A write(2) to a cgroup file was refused (a limit, a device rule, `cgroup.procs`,
    /// `cgroup.subtree_control`, a freeze or kill request), or a registry entry could not be
    /// created. The message adds a hint for the usual errnos.
    #[error("cannot write {value:?} to {path}: {source}{}", write_hint(.source))]
    Write {
        /// The file written.
        path: PathBuf,
        /// What was written, as one write(2) (a device rule: the one refused line).
        value: String,
        /// The system call's error.
        #[source]
        source: io::Error,
    },

    /// A cgroup v1 `tasks` file could not be opened to hand to the sandbox, which joins that
    /// hierarchy by itself ([`Cgroup::admit`](crate::Cgroup::admit)).
    #[error("open {path} for the sandbox to join its cgroup: {source}")]
    Open {
        /// The `tasks` file.
        path: PathBuf,
        /// The open(2) error.
        #[source]
        source: io::Error,
    },

    /// mkdir of the sandbox's directory under a hierarchy root failed for a reason other than
    /// an existing directory ([`Error::AlreadyExists`]), or the registry directory could not be
    /// created.
    #[error("cannot create cgroup directory {path}: {source}{}", mkdir_hint(.source))]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The system call's error.
        #[source]
        source: io::Error,
    },

    /// rmdir of one of the cgroup's directories failed, or it stayed busy (EBUSY: tasks or
    /// child cgroups left) for the 2 s the removal retries.
    #[error("cannot remove cgroup directory {path}: {source}")]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The last rmdir(2) error.
        #[source]
        source: io::Error,
    },

    /// Creation found the sandbox's directory already there (same name and owner). It is left
    /// untouched: it may be another live sandbox's.
    #[error("cgroup {path} already exists: pick a unique sandbox name or run cleanup_stale first")]
    AlreadyExists {
        /// The existing directory.
        path: PathBuf,
    },

    /// The caller's cgroup name was refused before any file was touched.
    #[error("invalid cgroup name {name:?}: {reason} (use 1-128 characters from [A-Za-z0-9._-], not starting with '.')")]
    InvalidName {
        /// The name as given.
        name: String,
        /// The rule it breaks (empty, too long, leading '.', '/', '@' or another character).
        reason: &'static str,
    },

    /// [`Cgroup::add_process`](crate::Cgroup::add_process) was given a pid of 0 or below,
    /// which would move the caller itself or name no process.
    #[error("invalid pid {pid}: pass the positive pid of a running child")]
    InvalidPid {
        /// The pid as given.
        pid: i32,
    },

    /// [`Limits::validate`](crate::Limits::validate) refused a value outside the range the
    /// kernel accepts, or a device rule was malformed or grants no access; nothing was created.
    #[error("invalid limit {what}: {reason}")]
    InvalidLimit {
        /// The field: `memory_bytes`, `pids_max`, `cpu_quota.period_us`, `cpu_quota.quota_us`
        /// or `devices`.
        what: &'static str,
        /// The value and the accepted range or syntax.
        reason: String,
    },

    /// The plan or the operation needs a controller (or device backend) this host's layout
    /// does not offer: found by [`Plan::new`](crate::Plan::new) before any I/O,
    /// [`Layout::with_device_backend`](crate::Layout::with_device_backend), or freezing a
    /// cgroup that has no freezer (made without [`Needs::freeze`](crate::Needs::freeze), or on
    /// a host with neither a v1 freezer nor cgroup2).
    #[error(
        "cgroup controller {controller} is not available on this host ({mode:?} layout): {fix}"
    )]
    ControllerMissing {
        /// The controller's kernel name (`memory`, `pids`, `cpu`, `devices`, `freezer`).
        controller: &'static str,
        /// How this host mounts cgroups.
        mode: crate::Mode,
        /// What to mount, enable or drop from the request.
        fix: &'static str,
    },

    /// Detection found neither a cgroup v1 hierarchy carrying a controller watertight drives
    /// nor a cgroup2 mount in mountinfo.
    #[error("no cgroup hierarchy is mounted (checked /proc/self/mountinfo): mount cgroup2 at /sys/fs/cgroup")]
    NoHierarchy,

    /// A file was read but its content is not in the kernel's format (mountinfo,
    /// `cgroup.events`, `freezer.state`, `cgroup.procs` or an accounting file).
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong, with the offending line or value.
        reason: String,
    },

    /// The cgroup v2 device allowlist failed: the kernel refused to load the BPF program (the
    /// error carries the verifier log), or attaching it to, or detaching it from, the cgroup
    /// failed.
    #[error("device program for {path}: {source}")]
    DeviceProgram {
        /// The unified cgroup directory the program belongs to.
        path: PathBuf,
        /// The bpf(2) error.
        #[source]
        source: watertight_sys::bpf::BpfError,
    },

    /// The kernel did not reach the wanted state within 10 s: freeze (the cgroup is then thawed
    /// again), thaw, or [`Cgroup::kill_all`](crate::Cgroup::kill_all) emptying the cgroup.
    #[error("timed out after {waited_ms} ms waiting for {path} to {what}")]
    Timeout {
        /// The file watched (`freezer.state`, `cgroup.events`) or, for a kill, the cgroup's
        /// first directory.
        path: PathBuf,
        /// The state awaited, worded to follow "to" (e.g. `reach FROZEN`).
        what: &'static str,
        /// How long it waited, in milliseconds.
        waited_ms: u64,
    },

    /// [`Cgroup::kill_all`](crate::Cgroup::kill_all) could not SIGKILL a process that
    /// `cgroup.kill` does not reach (v1 hierarchies, kernels before 5.14): pidfd_open,
    /// pidfd_send_signal or kill(2) failed with other than ESRCH.
    #[error("cannot signal pid {pid} in {path}: {source}")]
    Signal {
        /// The process.
        pid: i32,
        /// The cgroup's first directory.
        path: PathBuf,
        /// The errno.
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
