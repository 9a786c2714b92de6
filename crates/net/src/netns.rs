//! Runs work inside another network namespace on a dedicated thread, so the caller's own
//! namespace never changes. Netlink sockets opened and programs started on that thread (nft)
//! act in the target namespace.

use crate::error::{Error, Result};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A network namespace: a path to an nsfs file (`/proc/<pid>/ns/net`, `/run/netns/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns(pub PathBuf);

impl Netns {
    /// The namespace of a process.
    pub fn of_pid(pid: i32) -> Self {
        Netns(PathBuf::from(format!("/proc/{pid}/ns/net")))
    }

    /// `NAME` (as `ip netns` names it, under /run/netns) or a path.
    pub fn from_arg(arg: &str) -> Self {
        if arg.contains('/') {
            Netns(PathBuf::from(arg))
        } else {
            Netns(Path::new("/run/netns").join(arg))
        }
    }

    /// The namespace file, e.g. /run/netns/NAME.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Runs `work` on a thread that has joined this namespace.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let file = File::open(&self.0).map_err(|e| {
            Error::io(
                format!(
                    "cannot open network namespace {} (is the process or `ip netns` name gone?)",
                    self.0.display()
                ),
                e,
            )
        })?;
        run_in(&file, &self.0, work)
    }
}

/// A handle on the calling thread's current network namespace, to come back to it later from any
/// thread (the handle keeps the namespace alive).
pub fn current() -> Result<File> {
    File::open("/proc/thread-self/ns/net")
        .map_err(|e| Error::io("cannot open /proc/thread-self/ns/net", e))
}

/// Runs `work` on a thread that has joined the namespace `file` refers to.
pub fn run_in<T: Send>(
    file: &File,
    label: &Path,
    work: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(file, CloneFlags::CLONE_NEWNET).map_err(|source| Error::Namespace {
                path: label.to_path_buf(),
                action: "cannot join",
                source,
            })?;
            work()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs `work` on a thread inside a fresh, empty network namespace that vanishes when the thread
/// ends. Used to let nft render a ruleset without touching the real one.
pub fn in_scratch_netns<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::Namespace {
                path: PathBuf::from("(scratch)"),
                action: "cannot create",
                source,
            })?;
            work()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
