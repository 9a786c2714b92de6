//! A cgroup filesystem in a temporary directory, for tests that need no root and no particular
//! host: [`FakeCgroupFs`] lays out v1 hierarchies and/or a cgroup2 hierarchy under a directory
//! of the caller's, makes the control files the kernel would make in each new cgroup, answers
//! a few writes the way the kernel does (cgroup.subtree_control, cgroup.freeze updating
//! cgroup.events, devices.deny/allow updating devices.list), and records every mkdir, rmdir,
//! write and BPF device program request in order, so a test asserts exactly what the crate
//! wrote. Modelled on youki's libcgroups test trees and Firecracker jailer's MockCgroupFs.
//!
//! What it does not do: run processes (cgroup.procs stays as it was after a write, which is
//! recorded; a test may list pids in it, and a write of 1 to cgroup.kill empties it), enforce
//! anything, or load BPF programs (the request is recorded and no program handle is returned).

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::device_program::AttachedDeviceProgram;
use crate::fs::CgroupFs;
use crate::layout::parse_mountinfo;
use crate::{DeviceRule, Error};

/// One change the code under test made to the fake tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeOp {
    /// A cgroup directory made (recorded only when the mkdir succeeded).
    Mkdir(PathBuf),
    /// A cgroup directory removed (recorded only when the rmdir succeeded).
    Rmdir(PathBuf),
    /// One write(2) of the value to the file.
    Write(PathBuf, String),
    /// A cgroup v2 device program for these rules (v1 syntax), attached to the directory.
    DeviceProgram(PathBuf, Vec<String>),
    /// A file opened for writing, to be handed to a process that writes it itself.
    OpenForWrite(PathBuf),
}

#[derive(Debug, Clone)]
enum Flavour {
    /// A v1 hierarchy carrying these controllers (none for a named one such as systemd).
    V1(Vec<String>),
    /// The unified hierarchy; its root offers these controllers.
    V2,
}

#[derive(Debug, Clone)]
struct Mount {
    point: PathBuf,
    flavour: Flavour,
}

/// A fake cgroupfs rooted at a directory the caller owns (e.g. a `tempfile::TempDir`). Host
/// paths such as `/sys/fs/cgroup/memory/x` live at `<dir>/sys/fs/cgroup/memory/x`.
#[derive(Debug)]
pub struct FakeCgroupFs {
    base: PathBuf,
    mounts: Vec<Mount>,
    swap_accounting: bool,
    log: Mutex<Vec<FakeOp>>,
}

const MAX_BYTES_V1: &str = "9223372036854771712";

impl FakeCgroupFs {
    /// An empty fake (no hierarchy yet) in `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> FakeCgroupFs {
        FakeCgroupFs {
            base: dir.into(),
            mounts: Vec::new(),
            swap_accounting: true,
            log: Mutex::new(Vec::new()),
        }
    }

    /// A fake with one hierarchy per cgroup/cgroup2 line of `mountinfo` (v1 controllers from
    /// the super options) and the unified root offering `unified_controllers`.
    pub fn from_mountinfo(
        dir: impl Into<PathBuf>,
        mountinfo: &str,
        unified_controllers: &[&str],
    ) -> io::Result<FakeCgroupFs> {
        let mut fake = FakeCgroupFs::new(dir);
        let mounts = parse_mountinfo(mountinfo)
            .map_err(|reason| io::Error::new(ErrorKind::InvalidData, reason))?;
        for mount in mounts {
            if mount.fstype == "cgroup2" {
                if !fake.mounts.iter().any(|m| matches!(m.flavour, Flavour::V2)) {
                    fake.mount_v2(&mount.mount_point, unified_controllers)?;
                }
            } else {
                let controllers: Vec<&str> = mount
                    .super_options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o))
                    .collect();
                fake.mount_v1(&mount.mount_point, &controllers)?;
            }
        }
        Ok(fake)
    }

    /// Without swap accounting: no memory.memsw.* (v1) or memory.swap.* (v2) files.
    pub fn without_swap_accounting(mut self) -> FakeCgroupFs {
        self.swap_accounting = false;
        self
    }

    /// Adds a v1 hierarchy at `point` carrying `controllers`.
    pub fn mount_v1(&mut self, point: &Path, controllers: &[&str]) -> io::Result<()> {
        let host = self.host(point);
        std::fs::create_dir_all(&host)?;
        for (name, text) in V1_CORE {
            std::fs::write(host.join(name), text)?;
        }
        std::fs::write(host.join("cgroup.sane_behavior"), "0\n")?;
        self.mounts.push(Mount {
            point: point.to_owned(),
            flavour: Flavour::V1(controllers.iter().map(|c| c.to_string()).collect()),
        });
        Ok(())
    }

    /// Adds the unified hierarchy at `point`, its root offering `controllers`.
    pub fn mount_v2(&mut self, point: &Path, controllers: &[&str]) -> io::Result<()> {
        let host = self.host(point);
        std::fs::create_dir_all(&host)?;
        std::fs::write(
            host.join("cgroup.controllers"),
            controllers.join(" ") + "\n",
        )?;
        std::fs::write(host.join("cgroup.subtree_control"), "\n")?;
        std::fs::write(host.join("cgroup.procs"), "")?;
        std::fs::write(host.join("cpu.stat"), "usage_usec 0\n")?;
        self.mounts.push(Mount {
            point: point.to_owned(),
            flavour: Flavour::V2,
        });
        Ok(())
    }

    /// mountinfo lines describing this fake's hierarchies (host paths), for
    /// [`crate::Layout::detect_in`].
    pub fn mountinfo(&self) -> String {
        let mut text = String::new();
        for (i, mount) in self.mounts.iter().enumerate() {
            let (fstype, options) = match &mount.flavour {
                Flavour::V2 => ("cgroup2", "rw,nsdelegate".to_owned()),
                Flavour::V1(controllers) if controllers.is_empty() => {
                    ("cgroup", "rw,name=fake".to_owned())
                }
                Flavour::V1(controllers) => ("cgroup", format!("rw,{}", controllers.join(","))),
            };
            text.push_str(&format!(
                "{} 1 0:{} / {} rw,relatime - {fstype} {fstype} {options}\n",
                100 + i,
                100 + i,
                mount.point.display()
            ));
        }
        text
    }

    /// Every change recorded so far, in order.
    pub fn log(&self) -> Vec<FakeOp> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The recorded changes, emptying the record.
    pub fn take_log(&self) -> Vec<FakeOp> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The current text of a file of the tree (`None` when it does not exist).
    pub fn contents(&self, file: &Path) -> Option<String> {
        std::fs::read_to_string(self.host(file)).ok()
    }

    /// Sets a file's text, as the kernel would change a counter (e.g. `memory.peak`). Creates
    /// the file when missing (the test decides which files exist).
    pub fn set(&self, file: &Path, text: &str) -> io::Result<()> {
        std::fs::write(self.host(file), text)
    }

    /// Removes a file of the tree, e.g. to act as a kernel without `memory.peak`.
    pub fn remove(&self, file: &Path) -> io::Result<()> {
        std::fs::remove_file(self.host(file))
    }

    /// Where a host path lives in the temporary directory.
    pub fn host(&self, path: &Path) -> PathBuf {
        self.base.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn record(&self, op: FakeOp) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(op);
    }

    /// The hierarchy holding `path` (the longest mount point that is a prefix of it).
    fn mount_of(&self, path: &Path) -> Option<&Mount> {
        self.mounts
            .iter()
            .filter(|m| path.starts_with(&m.point))
            .max_by_key(|m| m.point.as_os_str().len())
    }

    /// The files the kernel makes in a new cgroup directory `dir` (a host path) of `mount`.
    fn populate(&self, mount: &Mount, dir: &Path) -> io::Result<()> {
        let host = self.host(dir);
        let swap = self.swap_accounting;
        let mut files: Vec<(&str, String)> = Vec::new();
        match &mount.flavour {
            Flavour::V1(controllers) => {
                files.extend(V1_CORE.iter().map(|(n, t)| (*n, t.to_string())));
                for controller in controllers {
                    files.extend(v1_files(controller, swap));
                }
            }
            Flavour::V2 => {
                let parent = dir.parent().unwrap_or(dir);
                let delegated = self
                    .read(&parent.join("cgroup.subtree_control"))?
                    .trim()
                    .to_owned();
                files.extend([
                    ("cgroup.procs", String::new()),
                    ("cgroup.threads", String::new()),
                    ("cgroup.type", "domain\n".to_owned()),
                    ("cgroup.events", "populated 0\nfrozen 0\n".to_owned()),
                    ("cgroup.freeze", "0\n".to_owned()),
                    ("cgroup.kill", String::new()),
                    ("cgroup.controllers", format!("{delegated}\n")),
                    ("cgroup.subtree_control", "\n".to_owned()),
                    (
                        "cpu.stat",
                        "usage_usec 0\nuser_usec 0\nsystem_usec 0\n".into(),
                    ),
                ]);
                for controller in delegated.split_whitespace() {
                    files.extend(v2_files(controller, swap));
                }
            }
        }
        for (name, text) in files {
            std::fs::write(host.join(name), text)?;
        }
        Ok(())
    }

    /// A write as the kernel would take it; the value stays the file's text unless the
    /// kernel's file behaves otherwise.
    fn apply_write(&self, file: &Path, value: &str) -> io::Result<()> {
        let host = self.host(file);
        if !host.is_file() {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
        }
        self.record(FakeOp::Write(file.to_owned(), value.to_owned()));
        let dir = file.parent().unwrap_or(file);
        match file.file_name().and_then(|n| n.to_str()).unwrap_or("") {
            // The kernel moves processes; the fake has none to move.
            "cgroup.procs" | "tasks" => Ok(()),
            // Kills every process: the cgroup empties (whatever pids a test listed in it).
            "cgroup.kill" if value.trim() == "1" => {
                std::fs::write(self.host(&dir.join("cgroup.procs")), "")
            }
            "cgroup.kill" => Err(io::Error::from_raw_os_error(nix::libc::EINVAL)),
            "cgroup.freeze" => {
                let frozen = match value.trim() {
                    "0" => 0,
                    "1" => 1,
                    _ => return Err(io::Error::from_raw_os_error(nix::libc::EINVAL)),
                };
                std::fs::write(&host, format!("{frozen}\n"))?;
                std::fs::write(
                    self.host(&dir.join("cgroup.events")),
                    format!("populated 0\nfrozen {frozen}\n"),
                )
            }
            "cgroup.subtree_control" => {
                let offered = self.read(&dir.join("cgroup.controllers"))?;
                let mut enabled: Vec<String> = std::fs::read_to_string(&host)?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                for token in value.split_whitespace() {
                    let (add, name) = match token.split_at(1) {
                        ("+", name) => (true, name),
                        ("-", name) => (false, name),
                        _ => return Err(io::Error::from_raw_os_error(nix::libc::EINVAL)),
                    };
                    if !offered.split_whitespace().any(|c| c == name) {
                        return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
                    }
                    enabled.retain(|c| c != name);
                    if add {
                        enabled.push(name.to_owned());
                    }
                }
                let enabled = enabled.join(" ");
                std::fs::write(&host, format!("{enabled}\n"))?;
                // Existing children gain (or keep) the files of every enabled controller.
                for child in self.subdirs(dir)? {
                    let child = self.host(&dir.join(child));
                    std::fs::write(child.join("cgroup.controllers"), format!("{enabled}\n"))?;
                    for controller in enabled.split_whitespace() {
                        for (name, text) in v2_files(controller, self.swap_accounting) {
                            if !child.join(name).exists() {
                                std::fs::write(child.join(name), text)?;
                            }
                        }
                    }
                }
                Ok(())
            }
            "devices.deny" => {
                let list = self.host(&dir.join("devices.list"));
                if value.trim() == "a" {
                    std::fs::write(list, "")
                } else {
                    Ok(())
                }
            }
            "devices.allow" => {
                let list = self.host(&dir.join("devices.list"));
                let mut text = std::fs::read_to_string(&list)?;
                let line = match value.trim() {
                    "a" => "a *:* rwm",
                    rule => rule,
                };
                text.push_str(line);
                text.push('\n');
                std::fs::write(list, text)
            }
            _ => std::fs::write(&host, value),
        }
    }
}

impl CgroupFs for FakeCgroupFs {
    fn mkdir(&self, dir: &Path) -> io::Result<()> {
        let mount = self
            .mount_of(dir)
            .filter(|m| m.point != dir)
            .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::ENOENT))?
            .clone();
        std::fs::create_dir(self.host(dir))?;
        self.record(FakeOp::Mkdir(dir.to_owned()));
        self.populate(&mount, dir)
    }

    fn rmdir(&self, dir: &Path) -> io::Result<()> {
        let host = self.host(dir);
        if self.mount_of(dir).is_none_or(|m| m.point == dir) {
            return Err(io::Error::from_raw_os_error(nix::libc::EBUSY));
        }
        if !host.is_dir() {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
        }
        // The kernel refuses to remove a cgroup with child cgroups or processes.
        if !self.subdirs(dir)?.is_empty() || !self.read(&dir.join("cgroup.procs"))?.is_empty() {
            return Err(io::Error::from_raw_os_error(nix::libc::EBUSY));
        }
        std::fs::remove_dir_all(host)?;
        self.record(FakeOp::Rmdir(dir.to_owned()));
        Ok(())
    }

    fn write(&self, file: &Path, value: &str) -> io::Result<()> {
        self.apply_write(file, value)
    }

    fn open_for_write(&self, file: &Path) -> io::Result<std::os::fd::OwnedFd> {
        let host = self.host(file);
        if !host.is_file() {
            return Err(io::Error::from_raw_os_error(nix::libc::ENOENT));
        }
        let open = std::fs::OpenOptions::new().write(true).open(host)?;
        self.record(FakeOp::OpenForWrite(file.to_owned()));
        Ok(open.into())
    }

    fn write_each(&self, file: &Path, values: &[String]) -> Result<(), (String, io::Error)> {
        if !self.host(file).is_file() {
            return Err((
                String::new(),
                io::Error::from_raw_os_error(nix::libc::ENOENT),
            ));
        }
        for value in values {
            self.apply_write(file, value)
                .map_err(|e| (value.clone(), e))?;
        }
        Ok(())
    }

    fn read(&self, file: &Path) -> io::Result<String> {
        std::fs::read_to_string(self.host(file))
    }

    fn inode(&self, dir: &Path) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(self.host(dir)).map(|m| m.ino())
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.host(path).is_dir()
    }

    fn subdirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.host(dir))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn attach_device_program(
        &self,
        dir: &Path,
        rules: &[DeviceRule],
    ) -> Result<Option<AttachedDeviceProgram>, Error> {
        if !matches!(
            self.mount_of(dir),
            Some(Mount {
                flavour: Flavour::V2,
                ..
            })
        ) {
            return Err(Error::read(
                dir,
                io::Error::from_raw_os_error(nix::libc::ENOENT),
            ));
        }
        self.record(FakeOp::DeviceProgram(
            dir.to_owned(),
            rules.iter().map(ToString::to_string).collect(),
        ));
        Ok(None)
    }
}

const V1_CONTROLLERS: [&str; 6] = ["memory", "pids", "cpu", "cpuacct", "devices", "freezer"];

/// Files of every v1 cgroup, whatever its controllers.
const V1_CORE: [(&str, &str); 4] = [
    ("cgroup.procs", ""),
    ("tasks", ""),
    ("notify_on_release", "0\n"),
    ("cgroup.clone_children", "0\n"),
];

/// A controller's files as (name, initial text) pairs the fake tree owns.
fn owned(list: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    list.iter().map(|(n, t)| (*n, t.to_string())).collect()
}

fn v1_files(controller: &str, swap: bool) -> Vec<(&'static str, String)> {
    match controller {
        "memory" => {
            let mut files = owned(&[
                ("memory.limit_in_bytes", MAX_BYTES_V1),
                ("memory.usage_in_bytes", "0\n"),
                ("memory.max_usage_in_bytes", "0\n"),
                ("memory.failcnt", "0\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                ),
            ]);
            if swap {
                files.extend(owned(&[
                    ("memory.memsw.limit_in_bytes", MAX_BYTES_V1),
                    ("memory.memsw.failcnt", "0\n"),
                ]));
            }
            files
        }
        "pids" => owned(&[
            ("pids.max", "max\n"),
            ("pids.current", "0\n"),
            ("pids.events", "max 0\n"),
        ]),
        "cpu" => owned(&[
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.shares", "1024\n"),
        ]),
        "cpuacct" => owned(&[("cpuacct.usage", "0\n")]),
        "devices" => owned(&[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ]),
        "freezer" => owned(&[("freezer.state", "THAWED\n")]),
        _ => Vec::new(),
    }
}

fn v2_files(controller: &str, swap: bool) -> Vec<(&'static str, String)> {
    match controller {
        "memory" => {
            let mut files = owned(&[
                ("memory.max", "max\n"),
                ("memory.high", "max\n"),
                ("memory.current", "0\n"),
                ("memory.peak", "0\n"),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
                ),
            ]);
            if swap {
                files.extend(owned(&[("memory.swap.max", "max\n")]));
            }
            files
        }
        "pids" => owned(&[
            ("pids.max", "max\n"),
            ("pids.current", "0\n"),
            ("pids.events", "max 0\n"),
        ]),
        "cpu" => owned(&[("cpu.max", "max 100000\n"), ("cpu.weight", "100\n")]),
        _ => Vec::new(),
    }
}
