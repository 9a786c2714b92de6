//! One sandbox's cgroup across every hierarchy it uses: creation with limits (rolled back on any
//! failure), placing processes, accounting, and removal.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::device_program::AttachedDeviceProgram;
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
pub(crate) fn write_file(path: &Path, value: &str) -> Result<(), Error> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|e| Error::write(path, value, e))
}

/// Like [`write_file`] but a missing file is not an error (returns false).
fn write_optional(path: &Path, value: &str) -> Result<bool, Error> {
    match write_file(path, value) {
        Ok(()) => Ok(true),
        Err(Error::Write { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
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
    pub fn create_with(
        layout: &Layout,
        name: &str,
        limits: &Limits,
        needs: Needs,
    ) -> Result<Cgroup, Error> {
        let dir_name = dir_name_of(name)?;
        limits.validate()?;
        let plan = Plan::new(layout, limits, needs)?;

        let mut cgroup = Cgroup {
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
        };
        // From here on every early return drops `cgroup`, which removes what exists so far.
        if let Some(root) = layout.unified_root().filter(|_| plan.unified) {
            if layout.mode() == Mode::V2 {
                // Controller files appear only where the parent delegates the controller.
                enable_unified_controllers(layout)?;
            }
            let dir = cgroup.make_dir(root)?;
            cgroup.unified_id = Some(
                std::fs::metadata(&dir)
                    .map_err(|e| Error::read(&dir, e))?
                    .ino(),
            );
            cgroup.unified = Some(dir);
        }
        cgroup.memory = cgroup.make_role(plan.memory)?;
        cgroup.pids = cgroup.make_role(plan.pids)?;
        cgroup.cpu = cgroup.make_role(plan.cpu)?;
        cgroup.cpuacct = cgroup.make_role(plan.cpuacct)?;
        let devices_v1 = cgroup.make_role(plan.devices_v1)?;
        cgroup.freezer = cgroup.make_role(plan.freezer)?;

        cgroup.apply_limits(layout, limits, devices_v1.as_ref())?;
        Ok(cgroup)
    }

    /// mkdir `<root>/<dir_name>`.
    fn make_dir(&mut self, root: &Path) -> Result<PathBuf, Error> {
        let dir = dir_in(root, &self.dir_name);
        if let Some(existing) = self.dirs.iter().find(|d| **d == dir) {
            return Ok(existing.clone()); // co-mounted v1 controllers share a directory
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists { path: dir });
            }
            Err(source) => return Err(Error::Mkdir { path: dir, source }),
        }
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    fn make_role(&mut self, placement: Option<Placement<'_>>) -> Result<Option<Role>, Error> {
        Ok(match placement {
            None => None,
            Some(Placement::Unified) => self.unified.clone().map(|dir| Role { dir, v2: true }),
            Some(Placement::V1(root)) => Some(Role {
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
        if let (Some(bytes), Some(role)) = (limits.memory_bytes, &self.memory) {
            let bytes = bytes.to_string();
            if role.v2 {
                write_controller_file(layout, &role.dir.join("memory.max"), &bytes)?;
                // swap.max is swap on top of memory.max; absent when swap accounting is off.
                write_optional(&role.dir.join("memory.swap.max"), "0")?;
            } else {
                write_file(&role.dir.join("memory.limit_in_bytes"), &bytes)?;
                // memsw counts memory + swap; absent when swap accounting is off.
                write_optional(&role.dir.join("memory.memsw.limit_in_bytes"), &bytes)?;
            }
        }
        if let (Some(max), Some(role)) = (limits.pids_max, &self.pids) {
            let path = role.dir.join("pids.max");
            if role.v2 {
                write_controller_file(layout, &path, &max.to_string())?;
            } else {
                write_file(&path, &max.to_string())?;
            }
        }
        if let (Some(quota), Some(role)) = (limits.cpu_quota, &self.cpu) {
            if role.v2 {
                let value = format!("{} {}", quota.quota_us, quota.period_us);
                write_controller_file(layout, &role.dir.join("cpu.max"), &value)?;
            } else {
                // Period first: the quota is checked against the period in force.
                write_file(
                    &role.dir.join("cpu.cfs_period_us"),
                    &quota.period_us.to_string(),
                )?;
                write_file(
                    &role.dir.join("cpu.cfs_quota_us"),
                    &quota.quota_us.to_string(),
                )?;
            }
        }
        if let Some(rules) = &limits.devices {
            match (devices_v1, &self.unified) {
                (Some(role), _) => {
                    write_file(&role.dir.join("devices.deny"), "a")?;
                    let allow = role.dir.join("devices.allow");
                    // The kernel parses one rule per write(2), so keep one open file.
                    let mut file = OpenOptions::new()
                        .write(true)
                        .open(&allow)
                        .map_err(|e| Error::write(&allow, "", e))?;
                    for rule in rules {
                        for line in rule.v1_allow_lines() {
                            file.write_all(line.as_bytes())
                                .map_err(|e| Error::write(&allow, line.clone(), e))?;
                        }
                    }
                }
                (None, Some(unified)) => {
                    self.device_program = Some(AttachedDeviceProgram::attach(unified, rules)?);
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
            write_file(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
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
        let mut stats = Stats::default();
        if let Some(role) = &self.memory {
            let dir = &role.dir;
            if role.v2 {
                stats.memory_peak_bytes = stats::read_number(&dir.join("memory.peak"))?;
                stats.memory_current_bytes = stats::read_number(&dir.join("memory.current"))?;
                let events = dir.join("memory.events");
                if let Some(text) = stats::read_optional(&events)? {
                    let key = |key| {
                        stats::flat_keyed_value(&text, key).map_err(|r| Error::parse(&events, r))
                    };
                    stats.oom_kills = key("oom_kill")?;
                    stats.memory_limit_hits = key("max")?;
                }
            } else {
                stats.memory_peak_bytes =
                    stats::read_number(&dir.join("memory.max_usage_in_bytes"))?;
                stats.memory_current_bytes =
                    stats::read_number(&dir.join("memory.usage_in_bytes"))?;
                stats.oom_kills = stats::read_keyed(&dir.join("memory.oom_control"), "oom_kill")?;
                // With swap accounting the memsw counter is charged first and records the
                // failures when memsw = memory, so count both.
                let failcnt = stats::read_number(&dir.join("memory.failcnt"))?;
                let memsw_failcnt = stats::read_number(&dir.join("memory.memsw.failcnt"))?;
                stats.memory_limit_hits = failcnt.map(|n| n + memsw_failcnt.unwrap_or(0));
            }
        }
        if let Some(role) = &self.pids {
            stats.pids_current = stats::read_number(&role.dir.join("pids.current"))?;
            stats.pids_limit_hits = stats::read_keyed(&role.dir.join("pids.events"), "max")?;
        }
        // cpu.stat is a core file of every cgroup2 directory; v1 needs the cpuacct controller.
        if let Some(dir) = &self.unified {
            stats.cpu_usage_ns = stats::read_keyed(&dir.join("cpu.stat"), "usage_usec")?
                .map(|us| us.saturating_mul(1000));
        } else if let Some(role) = &self.cpuacct {
            stats.cpu_usage_ns = stats::read_number(&role.dir.join("cpuacct.usage"))?;
        }
        Ok(stats)
    }

    /// The processes in the cgroup (from the unified directory when there is one).
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        match self.unified.as_ref().or(self.dirs.first()) {
            Some(dir) => read_procs(dir),
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
            if let Err(e) = remove_dir(dir) {
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
        let mut cgroup = Cgroup {
            dir_name: dir_name.to_owned(),
            mode: layout.mode(),
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
        };
        let existing = |root: &Path| {
            let dir = dir_in(root, dir_name);
            dir.is_dir().then_some(dir)
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

pub(crate) fn read_procs(dir: &Path) -> Result<Vec<i32>, Error> {
    let path = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
    stats::parse_pids(&text).map_err(|reason| Error::parse(&path, reason))
}

/// rmdir, tolerating a directory that is already gone and retrying briefly on EBUSY (exiting
/// tasks leave the cgroup a moment after they stop showing in cgroup.procs).
fn remove_dir(dir: &Path) -> Result<(), Error> {
    let mut delay = std::time::Duration::from_micros(100);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
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
    let enabled = std::fs::read_to_string(&control).unwrap_or_default();
    if wanted
        .iter()
        .all(|w| enabled.split_whitespace().any(|e| e == &w[1..]))
    {
        return Ok(());
    }
    write_file(&control, &wanted.join(" "))
}

/// Writes a cgroup2 controller file; if it is missing because the parent was created without
/// delegating the controller (older watertight, another tool), delegates and retries once.
fn write_controller_file(layout: &Layout, path: &Path, value: &str) -> Result<(), Error> {
    if write_optional(path, value)? {
        return Ok(());
    }
    enable_unified_controllers(layout)?;
    write_file(path, value)
}

/// Which hierarchy each controller of one sandbox goes to, decided before any mkdir so an
/// unsupported request fails without side effects.
struct Plan<'a> {
    memory: Option<Placement<'a>>,
    pids: Option<Placement<'a>>,
    cpu: Option<Placement<'a>>,
    cpuacct: Option<Placement<'a>>,
    devices_v1: Option<Placement<'a>>,
    freezer: Option<Placement<'a>>,
    /// Whether the cgroup gets a unified-hierarchy directory.
    unified: bool,
}

impl<'a> Plan<'a> {
    fn new(layout: &'a Layout, limits: &Limits, needs: Needs) -> Result<Plan<'a>, Error> {
        let required = |controller: Controller, fix: &'static str| {
            layout
                .placement(controller)
                .ok_or(Error::ControllerMissing {
                    controller: controller.name(),
                    mode: layout.mode(),
                    fix,
                })
        };
        let memory = match limits.memory_bytes {
            Some(_) => Some(required(Controller::Memory, "enable the memory controller (v2: cgroup.subtree_control; v1: mount it) or drop the memory limit")?),
            // Without a limit the memory cgroup still gives peak usage and OOM counts.
            None => layout.placement(Controller::Memory),
        };
        let pids = match limits.pids_max {
            Some(_) => Some(required(
                Controller::Pids,
                "enable the pids controller or drop pids_max",
            )?),
            None => layout.placement(Controller::Pids),
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
            (true, None) => layout.placement(Controller::Cpuacct),
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
            true => layout.placement(Controller::Freezer),
            false => None,
        };
        let on_unified = |p: &Option<Placement<'_>>| matches!(p, Some(Placement::Unified));
        let unified = layout.unified_root().is_some()
            && (layout.mode() == Mode::V2
                || needs.bpf
                || (needs.cpu_usage && cpuacct.is_none())
                || (limits.devices.is_some() && devices_v1.is_none())
                || [&memory, &pids, &cpu, &freezer].into_iter().any(on_unified));
        Ok(Plan {
            memory,
            pids,
            cpu,
            cpuacct,
            devices_v1,
            freezer,
            unified,
        })
    }
}

/// The supervisor hands cgroups between threads (e.g. a reaper thread destroys them).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cgroup>();
    assert_send_sync::<Layout>();
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
        assert!(write_file(&missing, "1").is_err());
        assert!(!missing.exists());
        assert!(!write_optional(&missing, "1").unwrap());
        std::fs::remove_dir(&dir).unwrap();
    }
}
