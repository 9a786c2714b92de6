//! The state directory: `<root>/<id>/` holds `state.json` (our own record, replaced by rename),
//! `exec.fifo` until `start`, and is flock'd by every command that changes the container.
//! The status is derived, never stored: from the init pid checked against its recorded start
//! time (a recycled pid is not the container), the fifo and the freezer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cgroup::ContainerCgroup;
use crate::Error;

/// The default `--root`.
pub const DEFAULT_ROOT: &str = "/run/watertight-runc";
/// The file name of the exec fifo.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

/// What is recorded about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Container id.
    pub id: String,
    /// Init pid in the runtime's pid namespace.
    pub pid: i32,
    /// Its start time (field 22 of /proc/<pid>/stat), to tell it from a recycled pid.
    pub start_time: u64,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Rootfs.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// config.json annotations.
    pub annotations: Value,
    /// config.json hooks (poststart and poststop run from here).
    pub hooks: Value,
    /// The cgroup.
    pub cgroup: ContainerCgroup,
    /// Whether the config asked for a new pid namespace (kill --all is implied without one).
    pub own_pid_namespace: bool,
    /// The user that created it.
    pub owner: String,
}

/// Derived status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being created (no record yet).
    Creating,
    /// Init is waiting on the exec fifo.
    Created,
    /// The process runs.
    Running,
    /// Frozen.
    Paused,
    /// Init has exited.
    Stopped,
}

impl Status {
    /// The OCI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The start time of `pid` (clock ticks after boot), None when it is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// One container's directory under the root.
#[derive(Debug)]
pub struct ContainerDir {
    /// `<root>/<id>`.
    pub path: PathBuf,
    /// The flock'd directory (released on drop).
    lock: Option<File>,
}

impl ContainerDir {
    /// Makes `<root>/<id>` (root 0700 made if missing); an existing one is [`Error::Exists`].
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| Error::state(root, e))?;
        let path = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_owned()))
            }
            Err(e) => return Err(Error::state(&path, e)),
        }
        let mut dir = ContainerDir { path, lock: None };
        dir.lock()?;
        Ok(dir)
    }

    /// Opens and locks an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir, Error> {
        crate::plan::validate_id(id)?;
        let path = root.join(id);
        if !path.join(STATE_FILE).exists() && !path.is_dir() {
            return Err(Error::NotFound(id.to_owned()));
        }
        let mut dir = ContainerDir { path, lock: None };
        dir.lock()?;
        if !dir.path.join(STATE_FILE).exists() {
            return Err(Error::NotFound(id.to_owned()));
        }
        Ok(dir)
    }

    fn lock(&mut self) -> Result<(), Error> {
        let f = File::open(&self.path).map_err(|e| Error::state(&self.path, e))?;
        // flock(2): held by the open file description, so a forked child's copy closing does
        // not release it; released when this process ends.
        f.lock().map_err(|e| Error::state(&self.path, e))?;
        self.lock = Some(f);
        Ok(())
    }

    /// Lets go of the lock in a forked child (the parent keeps it).
    pub fn forget_lock_in_child(&mut self) {
        // Closing the child's copy of the descriptor; the lock stays with the parent's.
        drop(self.lock.take());
    }

    /// The record.
    pub fn read(&self) -> Result<Record, Error> {
        let path = self.path.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::state(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::state(&path, std::io::Error::other(e)))
    }

    /// Writes the record (a temporary file renamed over: our own state file).
    pub fn write(&self, record: &Record) -> Result<(), Error> {
        let path = self.path.join(STATE_FILE);
        let tmp = self.path.join(".state.json.tmp");
        let text = serde_json::to_string(record).expect("plain data serializes");
        std::fs::write(&tmp, text).map_err(|e| Error::state(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::state(&path, e))
    }

    /// The exec fifo's path.
    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), Error> {
        std::fs::remove_dir_all(&self.path).map_err(|e| Error::state(&self.path, e))
    }
}

use std::os::unix::fs::DirBuilderExt;

impl Record {
    /// The derived status.
    pub fn status(&self, dir: &Path) -> Status {
        if self.pid <= 0 || start_time(self.pid) != Some(self.start_time) {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document.
    pub fn oci_state(&self, status: Status) -> Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let mut state = serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if self.annotations.is_object() {
            state["annotations"] = self.annotations.clone();
        }
        state
    }
}

/// Every container id under `root`.
pub fn list(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}
