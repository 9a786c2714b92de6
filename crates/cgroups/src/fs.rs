//! The seam between the cgroup logic and the kernel's cgroup files. Every mkdir, rmdir, read
//! and write the crate makes in a cgroup hierarchy goes through [`CgroupFs`]: [`KernelFs`] in
//! production, [`crate::fake::FakeCgroupFs`] (a tree in a temporary directory that records what
//! was written) in tests, so the v1, v2 and hybrid paths are checked without root on any host.
//!
//! Not behind the seam: `/proc` (owner tags, membership checks before a signal) and the
//! registry's own directory, which are ordinary files.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::device_program::AttachedDeviceProgram;
use crate::{DeviceRule, Error};

/// The cgroup filesystem operations the crate needs. Paths are the host's absolute paths
/// (mount points from mountinfo joined with cgroup directory and file names).
pub trait CgroupFs: fmt::Debug + Send + Sync {
    /// Creates one cgroup directory (never its parents). `AlreadyExists` when it exists.
    fn mkdir(&self, dir: &Path) -> io::Result<()>;

    /// Removes one cgroup directory. `NotFound` when it is gone already.
    fn rmdir(&self, dir: &Path) -> io::Result<()>;

    /// Writes `value` with a single write(2) to an existing file; never creates one (a missing
    /// controller file is `NotFound`, not a new regular file).
    fn write(&self, file: &Path, value: &str) -> io::Result<()>;

    /// Opens an existing file for writing (close-on-exec), to hand to another process that
    /// writes it itself ([`crate::Cgroup::admit`]).
    fn open_for_write(&self, file: &Path) -> io::Result<OwnedFd>;

    /// Writes each value with its own write(2) through one open file (the kernel parses one
    /// `devices.allow` rule per write). On failure, the value that failed and the error.
    fn write_each(&self, file: &Path, values: &[String]) -> Result<(), (String, io::Error)>;

    /// Reads a whole file.
    fn read(&self, file: &Path) -> io::Result<String>;

    /// The inode number of a directory (on cgroup2: the cgroup id BPF programs see).
    fn inode(&self, dir: &Path) -> io::Result<u64>;

    /// Whether `path` is a directory (false when it does not exist).
    fn is_dir(&self, path: &Path) -> bool;

    /// The names of the subdirectories of `dir` (names that are not UTF-8 are left out: no
    /// watertight cgroup has one).
    fn subdirs(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Reads `file` until `done` accepts its text, or returns `Ok(false)` after `limit`.
    /// Between reads it may sleep until the file changes. The default re-reads every
    /// millisecond; [`KernelFs`] sleeps in poll(2) instead, woken by the kernel's POLLPRI on
    /// `cgroup.events`.
    fn wait_until(
        &self,
        file: &Path,
        limit: Duration,
        done: &mut dyn FnMut(&str) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.read(file).map_err(|e| Error::read(file, e))?;
            if done(&text)? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Loads the cgroup v2 device allowlist for `rules` and attaches it to the unified cgroup
    /// `dir`. `Ok(None)` when this filesystem cannot run BPF programs (the fake records the
    /// request instead), so callers go on without a program handle.
    fn attach_device_program(
        &self,
        dir: &Path,
        rules: &[DeviceRule],
    ) -> Result<Option<AttachedDeviceProgram>, Error>;
}

/// The kernel's cgroup files: plain system calls on the real paths.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelFs;

impl CgroupFs for KernelFs {
    fn mkdir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }

    fn rmdir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }

    fn write(&self, file: &Path, value: &str) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .open(file)?
            .write_all(value.as_bytes())
    }

    fn open_for_write(&self, file: &Path) -> io::Result<OwnedFd> {
        Ok(OpenOptions::new().write(true).open(file)?.into())
    }

    fn write_each(&self, file: &Path, values: &[String]) -> Result<(), (String, io::Error)> {
        let mut open = OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(|e| (String::new(), e))?;
        for value in values {
            open.write_all(value.as_bytes())
                .map_err(|e| (value.clone(), e))?;
        }
        Ok(())
    }

    fn read(&self, file: &Path) -> io::Result<String> {
        std::fs::read_to_string(file)
    }

    fn inode(&self, dir: &Path) -> io::Result<u64> {
        std::fs::metadata(dir).map(|m| m.ino())
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn subdirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// One open file, read with pread and slept on with poll(2): kernfs flags POLLPRI on an
    /// open `cgroup.events` whenever a value in it changes. Each sleep is capped at 50 ms so a
    /// missed notification costs little.
    fn wait_until(
        &self,
        file: &Path,
        limit: Duration,
        done: &mut dyn FnMut(&str) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let open = File::open(file).map_err(|e| Error::read(file, e))?;
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 256];
        loop {
            let len = open
                .read_at(&mut buf, 0)
                .map_err(|e| Error::read(file, e))?;
            if done(&String::from_utf8_lossy(&buf[..len]))? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let wait_ms = (deadline - now).as_millis().min(50) as u16;
            let mut fds = [PollFd::new(open.as_fd(), PollFlags::POLLPRI)];
            match nix::poll::poll(&mut fds, PollTimeout::from(wait_ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::read(file, e.into())),
            }
        }
    }

    fn attach_device_program(
        &self,
        dir: &Path,
        rules: &[DeviceRule],
    ) -> Result<Option<AttachedDeviceProgram>, Error> {
        AttachedDeviceProgram::attach(dir, rules).map(Some)
    }
}

/// Whether an io error means "the file or directory is not there".
pub(crate) fn is_missing(err: &io::Error) -> bool {
    err.kind() == ErrorKind::NotFound
}
