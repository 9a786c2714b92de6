//! One sandbox's cgroup across every hierarchy it uses: creation with limits (rolled back on any
//! failure), placing processes, accounting, and removal.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::device_program::AttachedDeviceProgram;
use crate::fs::{is_missing, CgroupFs};
use crate::layout::{Controller, DeviceBackend, Layout, Placement};
use crate::owner::{Owner, OWNER_SEPARATOR};
use crate::stats::{self, Stats};
use crate::{Error, Limits, Mode};

/// Every watertight cgroup is a directory `watertight-<name>@<owner>` right under a hierarchy's
/// root. No shared parent: creating and removing one per run would double the mkdir/rmdir work
/// (the dearest part of a sandbox's start), and keeping one would leave state on an idle host.
pub const DIR_PREFIX: &str = "watertight-";

/// Where the watertight cgroup `dir_name` lives in the hierarchy mounted at `root`.
pub fn dir_in(root: &Path, dir_name: &str) -> PathBuf {
    root.join(dir_name)
}

/// What a cgroup must support beyond its [`Limits`]. On hybrid hosts each one can cost one
/// more hierarchy to create, join and remove, so a sandbox asks only for what it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// [`Cgroup::freeze`] (the forensic response).
    pub freeze: bool,
    /// Live CPU usage in [`Stats::cpu_usage_ns`] (a CPU-time limit). Without it, callers
    /// account CPU time from wait4's rusage.
    pub cpu_usage: bool,
    /// BPF programs will be attached to the cgroup (cgroup v2 only).
    pub bpf: bool,
}

impl Needs {
    /// Everything: what [`Cgroup::create`] provides.
    pub const ALL: Needs = Needs {
        freeze: true,
        cpu_usage: true,
        bpf: true,
    };
}

const MAX_NAME_LEN: usize = 128;

/// One controller's directory and whether it is the cgroup2 flavour of the controller.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub(crate) dir: PathBuf,
    pub(crate) v2: bool,
}

/// One sandbox's cgroup. Dropping it kills its processes and removes it (best effort); call
/// [`Cgroup::destroy`] to see errors.
#[derive(Debug)]
pub struct Cgroup {
    /// Every file and directory operation goes through it (the layout's).
    pub(crate) fs: Arc<dyn CgroupFs>,
    pub(crate) dir_name: String,
    pub(crate) mode: Mode,
    /// Every directory of this cgroup, distinct, in creation order.
    pub(crate) dirs: Vec<PathBuf>,
    pub(crate) unified: Option<PathBuf>,
    pub(crate) unified_id: Option<u64>,
    pub(crate) memory: Option<Role>,
    pub(crate) pids: Option<Role>,
    pub(crate) cpu: Option<Role>,
    pub(crate) cpuacct: Option<Role>,
    pub(crate) freezer: Option<Role>,
    pub(crate) device_program: Option<AttachedDeviceProgram>,
    pub(crate) destroyed: bool,
    /// This cgroup's entry in a [`crate::Registry`], removed once the cgroup is gone.
    pub(crate) registered: Option<PathBuf>,
}

/// Checks a caller-chosen cgroup name before anything touches the filesystem.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 128 bytes"));
    }
    if name.starts_with('.') {
        return Err(invalid("starts with '.'"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(if bad == '/' {
            invalid("contains '/'")
        } else if bad == OWNER_SEPARATOR {
            invalid("contains '@', which separates the owner tag")
        } else {
            invalid("contains a character outside [A-Za-z0-9._-]")
        });
    }
    Ok(())
}

/// The directory name of this process's cgroup `name`: `watertight-<name>@<owner tag>`.
pub(crate) fn dir_name_of(name: &str) -> Result<String, Error> {
    validate_name(name)?;
    let owner = Owner::current().map_err(|e| Error::read("/proc/self/stat", e))?;
    Ok(format!(
        "{DIR_PREFIX}{name}{OWNER_SEPARATOR}{}",
        owner.tag()
    ))
}

/// Writes `value` with a single write(2) to an existing cgroup file (never creates one).
/// The sandbox's side of [`Cgroup::admit`]: joins the calling thread to the v1 hierarchy of
/// each `tasks` file (written "0": the caller itself). Call it from a single-threaded process:
/// only the calling thread moves.
pub fn join_self(tasks: &[std::os::fd::OwnedFd]) -> std::io::Result<()> {
    for fd in tasks {
        match nix::unistd::write(fd, b"0") {
            Ok(1) => {}
            Ok(_) => return Err(std::io::Error::other("short write to a cgroup tasks file")),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

pub(crate) fn write_file(fs: &dyn CgroupFs, path: &Path, value: &str) -> Result<(), Error> {
    fs.write(path, value)
        .map_err(|e| Error::write(path, value, e))
}

/// Like [`write_file`] but a missing file is not an error (returns false).
fn write_optional(fs: &dyn CgroupFs, path: &Path, value: &str) -> Result<bool, Error> {
    match fs.write(path, value) {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(Error::write(path, value, e)),
    }
}

impl Cgroup {
    /// Creates `<root>/watertight-<name>@<owner>` in every hierarchy (freezer, CPU usage and the
    /// unified hierarchy for BPF included) and applies `limits`. Any failure removes what was
    /// created.
    pub fn create(layout: &Layout, name: &str, limits: &Limits) -> Result<Cgroup, Error> {
        Cgroup::create_with(layout, name, limits, Needs::ALL)
    }

    /// Like [`Cgroup::create`], in only the hierarchies that `limits` and `needs` call for.
    /// Plans, delegates cgroup2 controllers and creates in one call; a caller that makes many
    /// cgroups (or wants the checks done before it forks) builds a [`Plan`] once instead.
    pub fn create_with(
        layout: &Layout,
        name: &str,
        limits: &Limits,
        needs: Needs,
    ) -> Result<Cgroup, Error> {
        let plan = Plan::new(layout.clone(), limits.clone(), needs)?;
        plan.delegate_controllers()?;
        plan.create(name)
    }

    /// A handle on no cgroup at all: for a sandbox that runs without one (an unprivileged
    /// caller with no delegated subtree). Its stats are all unknown, it holds no process to
    /// kill, it cannot freeze, and destroying it does nothing.
    pub fn none() -> Cgroup {
        Cgroup {
            fs: Arc::new(crate::fs::KernelFs),
            dir_name: String::new(),
            mode: Mode::V2,
            dirs: Vec::new(),
            unified: None,
            unified_id: None,
            memory: None,
            pids: None,
            cpu: None,
            cpuacct: None,
            freezer: None,
            device_program: None,
            destroyed: false,
            registered: None,
        }
    }

    /// An empty handle (no directory yet) on `layout`'s filesystem.
    fn empty(layout: &Layout, dir_name: String) -> Cgroup {
        Cgroup {
            fs: layout.fs().clone(),
            dir_name,
            mode: layout.mode(),
            dirs: Vec::with_capacity(6),
            unified: None,
            unified_id: None,
            memory: None,
            pids: None,
            cpu: None,
            cpuacct: None,
            freezer: None,
            device_program: None,
            destroyed: false,
            registered: None,
        }
    }

    /// mkdir `<root>/<dir_name>`.
    fn make_dir(&mut self, root: &Path) -> Result<PathBuf, Error> {
        let dir = dir_in(root, &self.dir_name);
        if let Some(existing) = self.dirs.iter().find(|d| **d == dir) {
            return Ok(existing.clone()); // co-mounted v1 controllers share a directory
        }
        match self.fs.mkdir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists { path: dir });
            }
            Err(source) => return Err(Error::Mkdir { path: dir, source }),
        }
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    fn make_role(&mut self, site: &Option<Site>) -> Result<Option<Role>, Error> {
        Ok(match site {
            None => None,
            Some(Site::Unified) => self.unified.clone().map(|dir| Role { dir, v2: true }),
            Some(Site::V1(root)) => Some(Role {
                dir: self.make_dir(root)?,
                v2: false,
            }),
        })
    }

    fn apply_limits(
        &mut self,
        layout: &Layout,
        limits: &Limits,
        devices_v1: Option<&Role>,
    ) -> Result<(), Error> {
        let fs = self.fs.clone();
        let fs = fs.as_ref();
        if let (Some(bytes), Some(role)) = (limits.memory_bytes, &self.memory) {
            let bytes = bytes.to_string();
            if role.v2 {
                write_controller_file(layout, &role.dir.join("memory.max"), &bytes)?;
                // swap.max is swap on top of memory.max; absent when swap accounting is off.
                write_optional(fs, &role.dir.join("memory.swap.max"), "0")?;
            } else {
                write_file(fs, &role.dir.join("memory.limit_in_bytes"), &bytes)?;
                // memsw counts memory + swap; absent when swap accounting is off.
                write_optional(fs, &role.dir.join("memory.memsw.limit_in_bytes"), &bytes)?;
            }
        }
        if let (Some(max), Some(role)) = (limits.pids_max, &self.pids) {
            let path = role.dir.join("pids.max");
            if role.v2 {
                write_controller_file(layout, &path, &max.to_string())?;
            } else {
                write_file(fs, &path, &max.to_string())?;
            }
        }
        if let (Some(quota), Some(role)) = (limits.cpu_quota, &self.cpu) {
            if role.v2 {
                let value = format!("{} {}", quota.quota_us, quota.period_us);
                write_controller_file(layout, &role.dir.join("cpu.max"), &value)?;
            } else {
                // Period first: the quota is checked against the period in force.
                write_file(
                    fs,
                    &role.dir.join("cpu.cfs_period_us"),
                    &quota.period_us.to_string(),
                )?;
                write_file(
                    fs,
                    &role.dir.join("cpu.cfs_quota_us"),
                    &quota.quota_us.to_string(),
                )?;
            }
        }
        if let Some(rules) = &limits.devices {
            match (devices_v1, &self.unified) {
                (Some(role), _) => {
                    write_file(fs, &role.dir.join("devices.deny"), "a")?;
                    let allow = role.dir.join("devices.allow");
                    // The kernel parses one rule per write(2): one open file, one write each.
                    let lines: Vec<String> =
                        rules.iter().flat_map(|r| r.v1_allow_lines()).collect();
                    fs.write_each(&allow, &lines)
                        .map_err(|(line, e)| Error::write(&allow, line, e))?;
                }
                (None, Some(unified)) => {
                    self.device_program = fs.attach_device_program(unified, rules)?;
                }
                (None, None) => unreachable!("Plan::new refuses device rules without a backend"),
            }
        }
        Ok(())
    }

    /// Moves `pid` (all its threads) into every hierarchy of this cgroup. A failure part-way
    /// (e.g. the process exited) leaves it in the hierarchies already written; `kill_all` and
    /// `destroy` cover every hierarchy regardless.
    pub fn add_process(&self, pid: i32) -> Result<(), Error> {
        if pid <= 0 {
            // 0 would move the caller itself; negative pids name nothing.
            return Err(Error::InvalidPid { pid });
        }
        let pid = pid.to_string();
        for dir in &self.dirs {
            write_file(self.fs.as_ref(), &dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    /// Joins `pid` to this cgroup the way that costs its start least, in two parts. In the
    /// unified hierarchy the caller moves it now (a `cgroup.procs` write). For each cgroup v1
    /// hierarchy this returns the hierarchy's `tasks` file, open for writing: the process joins
    /// it by itself ([`join_self`]) before it runs anything else.
    ///
    /// Why: moving another process takes the kernel's global threadgroup lock for writing, and
    /// the first writer after a quiet spell waits for an RCU grace period (12 ms to 33 ms
    /// measured on an idle host, most of a sandbox's start); a single-threaded process moving
    /// itself through `tasks` takes no such lock (0.04 ms). cgroup v2 has no such path (its
    /// `cgroup.threads` moves threads only within one threaded subtree).
    ///
    /// The files were opened by the caller (root), and the kernel checks a v1 move against the
    /// opener's credentials, so the process needs no right of its own to the hierarchy.
    pub fn admit(&self, pid: i32) -> Result<Vec<std::os::fd::OwnedFd>, Error> {
        if pid <= 0 {
            return Err(Error::InvalidPid { pid });
        }
        let mut tasks = Vec::new();
        for dir in &self.dirs {
            if Some(dir) == self.unified.as_ref() {
                write_file(
                    self.fs.as_ref(),
                    &dir.join("cgroup.procs"),
                    &pid.to_string(),
                )?;
            } else {
                let file = dir.join("tasks");
                let fd = self
                    .fs
                    .open_for_write(&file)
                    .map_err(|source| Error::Open { path: file, source })?;
                tasks.push(fd);
            }
        }
        Ok(tasks)
    }

    /// The cgroup's directory name: `<name>@<owner pid>-<owner start time>`.
    pub fn dir_name(&self) -> &str {
        &self.dir_name
    }

    /// Every directory of this cgroup (one per hierarchy used).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The unified-hierarchy directory when it is the sandbox's only one (pure cgroup v2), for
    /// clone3(CLONE_INTO_CGROUP). On hybrid hosts `None`: the child must also join v1
    /// hierarchies, so use [`Cgroup::add_process`].
    pub fn v2_dir(&self) -> Option<&Path> {
        match (&self.unified, self.dirs.len()) {
            (Some(dir), 1) => Some(dir),
            _ => None,
        }
    }

    /// The unified-hierarchy directory, whenever one exists (also on hybrid hosts).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// The cgroup v2 id (inode number of the unified directory), as BPF's
    /// bpf_get_current_cgroup_id() reports it.
    pub fn unified_id(&self) -> Option<u64> {
        self.unified_id
    }

    /// Whether a BPF device program is attached (cgroup v2 device policy).
    pub fn has_device_program(&self) -> bool {
        self.device_program.is_some()
    }

    /// Resource accounting now.
    pub fn stats(&self) -> Result<Stats, Error> {
        let fs = self.fs.as_ref();
        let mut stats = Stats::default();
        if let Some(role) = &self.memory {
            let dir = &role.dir;
            if role.v2 {
                stats.memory_peak_bytes = stats::read_number(fs, &dir.join("memory.peak"))?;
                stats.memory_current_bytes = stats::read_number(fs, &dir.join("memory.current"))?;
                let events = dir.join("memory.events");
                if let Some(text) = stats::read_optional(fs, &events)? {
                    let key = |key| {
                        stats::flat_keyed_value(&text, key).map_err(|r| Error::parse(&events, r))
                    };
                    stats.oom_kills = key("oom_kill")?;
                    stats.memory_limit_hits = key("max")?;
                }
            } else {
                stats.memory_peak_bytes =
                    stats::read_number(fs, &dir.join("memory.max_usage_in_bytes"))?;
                stats.memory_current_bytes =
                    stats::read_number(fs, &dir.join("memory.usage_in_bytes"))?;
                stats.oom_kills =
                    stats::read_keyed(fs, &dir.join("memory.oom_control"), "oom_kill")?;
                // With swap accounting the memsw counter is charged first and records the
                // failures when memsw = memory, so count both.
                let failcnt = stats::read_number(fs, &dir.join("memory.failcnt"))?;
                let memsw_failcnt = stats::read_number(fs, &dir.join("memory.memsw.failcnt"))?;
                stats.memory_limit_hits = failcnt.map(|n| n + memsw_failcnt.unwrap_or(0));
            }
        }
        if let Some(role) = &self.pids {
            stats.pids_current = stats::read_number(fs, &role.dir.join("pids.current"))?;
            stats.pids_limit_hits = stats::read_keyed(fs, &role.dir.join("pids.events"), "max")?;
        }
        // cpu.stat is a core file of every cgroup2 directory; v1 needs the cpuacct controller.
        if let Some(dir) = &self.unified {
            stats.cpu_usage_ns = stats::read_keyed(fs, &dir.join("cpu.stat"), "usage_usec")?
                .map(|us| us.saturating_mul(1000));
        } else if let Some(role) = &self.cpuacct {
            stats.cpu_usage_ns = stats::read_number(fs, &role.dir.join("cpuacct.usage"))?;
        }
        Ok(stats)
    }

    /// The processes in the cgroup (from the unified directory when there is one).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        match self.unified.as_ref().or(self.dirs.first()) {
            Some(dir) => read_procs(self.fs.as_ref(), dir),
            None => Ok(Vec::new()),
        }
    }

    /// Kills every process, detaches the device program and removes every directory.
    pub fn destroy(mut self) -> Result<(), Error> {
        self.destroyed = true;
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), Error> {
        let killed = self.kill_all();
        let detached = match self.device_program.take() {
            Some(program) => program.detach(),
            None => Ok(()),
        };
        let mut removed = Ok(());
        for dir in self.dirs.iter().rev() {
            if let Err(e) = remove_dir(self.fs.as_ref(), dir) {
                if removed.is_ok() {
                    removed = Err(e);
                }
            }
        }
        if removed.is_ok() {
            if let Some(entry) = self.registered.take() {
                let _ = std::fs::remove_file(entry);
            }
        }
        killed.and(detached).and(removed)
    }

    /// A handle on an existing watertight cgroup `dir_name` (e.g. a stale one), with the
    /// directories that exist. Its drop removes it.
    pub(crate) fn adopt(layout: &Layout, dir_name: &str) -> Cgroup {
        let mut cgroup = Cgroup::empty(layout, dir_name.to_owned());
        let fs = layout.fs().clone();
        let existing = |root: &Path| {
            let dir = dir_in(root, dir_name);
            fs.is_dir(&dir).then_some(dir)
        };
        cgroup.unified = layout.unified_root().and_then(existing);
        cgroup.dirs.extend(cgroup.unified.clone());
        for root in layout.roots() {
            if let Some(dir) = existing(root) {
                if !cgroup.dirs.contains(&dir) {
                    cgroup.dirs.push(dir);
                }
            }
        }
        let role = |controller| match layout.placement(controller) {
            Some(Placement::V1(root)) => existing(root).map(|dir| Role { dir, v2: false }),
            Some(Placement::Unified) => cgroup.unified.clone().map(|dir| Role { dir, v2: true }),
            None => None,
        };
        cgroup.memory = role(Controller::Memory);
        cgroup.pids = role(Controller::Pids);
        cgroup.cpu = role(Controller::Cpu);
        cgroup.cpuacct = role(Controller::Cpuacct);
        cgroup.freezer = role(Controller::Freezer);
        cgroup
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.destroyed {
            self.destroyed = true;
            let _ = self.teardown();
        }
    }
}

pub(crate) fn read_procs(fs: &dyn CgroupFs, dir: &Path) -> Result<Vec<i32>, Error> {
    let path = dir.join("cgroup.procs");
    let text = fs.read(&path).map_err(|e| Error::read(&path, e))?;
    stats::parse_pids(&text).map_err(|reason| Error::parse(&path, reason))
}

/// rmdir, tolerating a directory that is already gone and retrying briefly on EBUSY (exiting
/// tasks leave the cgroup a moment after they stop showing in cgroup.procs).
fn remove_dir(fs: &dyn CgroupFs, dir: &Path) -> Result<(), Error> {
    let mut delay = std::time::Duration::from_micros(100);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match fs.rmdir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(nix::libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(20));
            }
            Err(source) => {
                return Err(Error::Rmdir {
                    path: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Writes `+memory +pids +cpu` (those the unified root offers) to the root's
/// `cgroup.subtree_control`, so the sandboxes' controller files exist. Skips the write when they
/// are delegated already (the usual case under systemd).
fn enable_unified_controllers(layout: &Layout) -> Result<(), Error> {
    let Some(root) = layout.unified_root() else {
        return Ok(());
    };
    let wanted: Vec<String> = [Controller::Memory, Controller::Pids, Controller::Cpu]
        .into_iter()
        .filter(|c| layout.placement(*c) == Some(Placement::Unified))
        .map(|c| format!("+{}", c.name()))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let control = root.join("cgroup.subtree_control");
    let enabled = layout.fs().read(&control).unwrap_or_default();
    if wanted
        .iter()
        .all(|w| enabled.split_whitespace().any(|e| e == &w[1..]))
    {
        return Ok(());
    }
    write_file(layout.fs().as_ref(), &control, &wanted.join(" "))
}

/// Writes a cgroup2 controller file; if it is missing because the parent was created without
/// delegating the controller (older watertight, another tool), delegates and retries once.
fn write_controller_file(layout: &Layout, path: &Path, value: &str) -> Result<(), Error> {
    let fs = layout.fs().as_ref();
    if write_optional(fs, path, value)? {
        return Ok(());
    }
    enable_unified_controllers(layout)?;
    write_file(fs, path, value)
}

/// Where one controller of a sandbox's cgroup goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Site {
    /// A directory under this v1 hierarchy root.
    V1(PathBuf),
    /// The sandbox's unified-hierarchy directory.
    Unified,
}

impl From<Placement<'_>> for Site {
    fn from(placement: Placement<'_>) -> Site {
        match placement {
            Placement::V1(root) => Site::V1(root.to_owned()),
            Placement::Unified => Site::Unified,
        }
    }
}

/// One sandbox cgroup, decided before anything exists: the layout, the limits (checked against
/// the kernel's ranges) and which hierarchy each controller goes to. Building it does no I/O,
/// so a supervisor makes it before it forks and an unsupported request fails with no side
/// effect; after the fork [`Plan::create`] only makes the directories, writes the limits and
/// hands back the [`Cgroup`].
#[derive(Debug, Clone)]
pub struct Plan {
    layout: Layout,
    limits: Limits,
    needs: Needs,
    memory: Option<Site>,
    pids: Option<Site>,
    cpu: Option<Site>,
    cpuacct: Option<Site>,
    devices_v1: Option<Site>,
    freezer: Option<Site>,
    /// Whether the cgroup gets a unified-hierarchy directory.
    unified: bool,
}

impl Plan {
    /// Validates `limits` and chooses the hierarchies `limits` and `needs` call for on
    /// `layout`. Fails when a limit is out of the kernel's range or its controller is missing.
    pub fn new(layout: Layout, limits: Limits, needs: Needs) -> Result<Plan, Error> {
        limits.validate()?;
        let required = |controller: Controller, fix: &'static str| {
            layout
                .placement(controller)
                .map(Site::from)
                .ok_or(Error::ControllerMissing {
                    controller: controller.name(),
                    mode: layout.mode(),
                    fix,
                })
        };
        let optional = |controller: Controller| layout.placement(controller).map(Site::from);
        let memory = match limits.memory_bytes {
            Some(_) => Some(required(Controller::Memory, "enable the memory controller (v2: cgroup.subtree_control; v1: mount it) or drop the memory limit")?),
            // Without a limit the memory cgroup still gives peak usage and OOM counts.
            None => optional(Controller::Memory),
        };
        let pids = match limits.pids_max {
            Some(_) => Some(required(
                Controller::Pids,
                "enable the pids controller or drop pids_max",
            )?),
            None => optional(Controller::Pids),
        };
        // No quota: joining the cpu hierarchy would buy nothing, so skip the mkdir.
        let cpu = match limits.cpu_quota {
            Some(_) => Some(required(
                Controller::Cpu,
                "enable the cpu controller or drop cpu_quota",
            )?),
            None => None,
        };
        // CPU usage comes from the unified cpu.stat when there is a unified hierarchy.
        let cpuacct = match (needs.cpu_usage, layout.unified_root()) {
            (false, _) | (true, Some(_)) => None,
            (true, None) => optional(Controller::Cpuacct),
        };
        let devices_v1 = match (&limits.devices, layout.device_backend()) {
            (None, _) | (Some(_), DeviceBackend::Bpf) => None,
            (Some(_), DeviceBackend::V1) => Some(required(
                Controller::Devices,
                "mount the v1 devices hierarchy or use DeviceBackend::Bpf",
            )?),
            (Some(_), DeviceBackend::Unavailable) => {
                return Err(Error::ControllerMissing {
                    controller: "devices",
                    mode: layout.mode(),
                    fix: "mount the v1 devices hierarchy or cgroup2, or drop the device rules",
                })
            }
        };
        let freezer = match needs.freeze {
            true => optional(Controller::Freezer),
            false => None,
        };
        let on_unified = |site: &Option<Site>| site.as_ref() == Some(&Site::Unified);
        let unified = layout.unified_root().is_some()
            && (layout.mode() == Mode::V2
                || needs.bpf
                || (needs.cpu_usage && cpuacct.is_none())
                || (limits.devices.is_some() && devices_v1.is_none())
                || [&memory, &pids, &cpu, &freezer].into_iter().any(on_unified));
        Ok(Plan {
            layout,
            limits,
            needs,
            memory,
            pids,
            cpu,
            cpuacct,
            devices_v1,
            freezer,
            unified,
        })
    }

    /// The host layout the plan was made for; [`Plan::create`] makes its directories through
    /// this layout's filesystem.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The limits, validated.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What the caller asked the cgroup to support beyond its limits.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// The hierarchy roots a cgroup of this plan gets a directory under, in creation order
    /// (unified first; co-mounted v1 controllers once).
    pub fn roots(&self) -> Vec<&Path> {
        let mut roots: Vec<&Path> = Vec::new();
        let unified = self.layout.unified_root().filter(|_| self.unified);
        let v1 = [
            &self.memory,
            &self.pids,
            &self.cpu,
            &self.cpuacct,
            &self.devices_v1,
            &self.freezer,
        ]
        .into_iter()
        .filter_map(|site| match site {
            Some(Site::V1(root)) => Some(root.as_path()),
            _ => None,
        });
        for root in unified.into_iter().chain(v1) {
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        roots
    }

    /// On pure cgroup v2, makes sure the unified root delegates the controllers this host
    /// offers (`+memory +pids +cpu` to its `cgroup.subtree_control`), so the controller files
    /// exist in every cgroup made after it: one read, and a write the first time on a host.
    /// Nothing on v1 and hybrid hosts. Call it once, e.g. before forking; [`Plan::create`]
    /// still delegates and retries if a controller file turns out to be missing.
    pub fn delegate_controllers(&self) -> Result<(), Error> {
        match self.layout.mode() {
            Mode::V2 if self.unified => enable_unified_controllers(&self.layout),
            _ => Ok(()),
        }
    }

    /// Creates `<root>/watertight-<name>@<owner>` in every planned hierarchy and writes the
    /// limits. Any failure removes what this call created.
    pub fn create(&self, name: &str) -> Result<Cgroup, Error> {
        let dir_name = dir_name_of(name)?;
        let mut cgroup = Cgroup::empty(&self.layout, dir_name);
        // From here on every early return drops `cgroup`, which removes what exists so far.
        if let Some(root) = self.layout.unified_root().filter(|_| self.unified) {
            let dir = cgroup.make_dir(root)?;
            cgroup.unified_id = Some(cgroup.fs.inode(&dir).map_err(|e| Error::read(&dir, e))?);
            cgroup.unified = Some(dir);
        }
        cgroup.memory = cgroup.make_role(&self.memory)?;
        cgroup.pids = cgroup.make_role(&self.pids)?;
        cgroup.cpu = cgroup.make_role(&self.cpu)?;
        cgroup.cpuacct = cgroup.make_role(&self.cpuacct)?;
        let devices_v1 = cgroup.make_role(&self.devices_v1)?;
        cgroup.freezer = cgroup.make_role(&self.freezer)?;

        cgroup.apply_limits(&self.layout, &self.limits, devices_v1.as_ref())?;
        Ok(cgroup)
    }
}

/// The supervisor hands cgroups between threads (e.g. a reaper thread destroys them).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cgroup>();
    assert_send_sync::<Layout>();
    assert_send_sync::<Plan>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("job-42_a.b").is_ok());
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "a@b",
            "sp ace",
            "nl\n",
            "é",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn write_never_creates_files() {
        // A missing cgroup file is ENOENT, never a new regular file.
        let dir = std::env::temp_dir().join(format!("wt-cg-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing");
        let fs = crate::fs::KernelFs;
        assert!(write_file(&fs, &missing, "1").is_err());
        assert!(!missing.exists());
        assert!(!write_optional(&fs, &missing, "1").unwrap());
        std::fs::remove_dir(&dir).unwrap();
    }
}
