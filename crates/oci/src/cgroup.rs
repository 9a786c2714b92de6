//! The container's cgroup as OCI names it: one path (`linux.cgroupsPath`, or systemd's
//! `slice:prefix:name` mapped to the cgroupfs path `slice-hierarchy/prefix-name.scope` since no
//! systemd is asked) under every mounted hierarchy, v1, hybrid or pure v2, so `/proc/<pid>/cgroup`
//! shows it everywhere. Hierarchies come from `watertight_cgroups::parse_mountinfo`; the
//! resources are planned as (controller, file, value) writes before anything is created.
//! The directories outlive this process (runc's model), so this is a path-based handle, not
//! `watertight_cgroups::Cgroup`, which removes its cgroup when its supervisor ends.

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use watertight_cgroups::{DeviceKind, DeviceRule};

use crate::Error;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Mount point.
    pub mount: PathBuf,
    /// cgroup2.
    pub v2: bool,
    /// v1: the controllers (and `name=`) it carries; v2: cgroup.controllers.
    pub controllers: Vec<String>,
}

/// Every cgroup hierarchy mounted in this mount namespace (one entry per mount point).
pub fn hierarchies() -> Result<Vec<Hierarchy>, Error> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| Error::cgroup(path, e))?;
    let mounts = watertight_cgroups::parse_mountinfo(&text)
        .map_err(|r| Error::cgroup(path, std::io::Error::other(r)))?;
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in mounts {
        if out.iter().any(|h| h.mount == m.mount_point) {
            continue;
        }
        let v2 = m.fstype == "cgroup2";
        let controllers: Vec<String> = if v2 {
            std::fs::read_to_string(m.mount_point.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        } else {
            m.super_options
                .split(',')
                .filter(|o| {
                    !matches!(
                        *o,
                        "rw" | "ro"
                            | "relatime"
                            | "noatime"
                            | "nosuid"
                            | "nodev"
                            | "noexec"
                            | "clone_children"
                            | "xattr"
                            | "nsdelegate"
                            | "memory_recursiveprot"
                            | "favordynmods"
                    )
                })
                .filter(|o| !o.starts_with("release_agent="))
                .map(str::to_owned)
                .collect()
        };
        // A v1 hierarchy mounted twice (a bind of a sub-tree) would show the same controllers.
        if !v2
            && out
                .iter()
                .any(|h| !h.v2 && h.controllers == controllers && !controllers.is_empty())
        {
            continue;
        }
        out.push(Hierarchy {
            mount: m.mount_point,
            v2,
            controllers,
        });
    }
    Ok(out)
}

/// One write to a controller's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// The controller that owns the file.
    pub controller: String,
    /// The v1 file and value; None: not settable on v1.
    pub v1: Option<(String, String)>,
    /// The cgroup2 file and value; None: not settable on v2.
    pub v2: Option<(String, String)>,
    /// The JSON path, for errors.
    pub field: String,
    /// One of a pair of settings that say the same for the two versions (cpu.max on v2, the
    /// cfs files on v1): skipped where it has no file.
    #[serde(default)]
    pub alternate: bool,
}

/// The container's cgroup, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPlan {
    /// The path under every hierarchy root, starting with '/'.
    pub path: String,
    /// Resource writes, in order.
    pub settings: Vec<Setting>,
    /// The device rules in order (allow, type, major, minor, access); None: no device policy.
    pub devices: Option<Vec<DeviceEntry>>,
}

/// One linux.resources.devices entry (plus the defaults every container gets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    /// Allow or deny.
    pub allow: bool,
    /// 'a', 'c' or 'b'.
    pub kind: char,
    /// None: any.
    pub major: Option<i64>,
    /// None: any.
    pub minor: Option<i64>,
    /// Some of "rwm".
    pub access: String,
}

impl DeviceEntry {
    fn v1_line(&self) -> String {
        let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        if self.kind == 'a' && self.major.is_none() && self.minor.is_none() {
            return format!("a *:* {}", self.access);
        }
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// Maps systemd's `slice:prefix:name` to the cgroupfs path systemd would use.
pub fn systemd_path(spec: &str, id: &str) -> Result<String, Error> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(Error::invalid(
            "linux.cgroupsPath",
            format!("{spec:?}: with --systemd-cgroup it must be slice:prefix:name"),
        ));
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(Error::invalid(
            "linux.cgroupsPath",
            format!("{slice:?} does not end in .slice"),
        ));
    };
    // a-b-c.slice lives at a.slice/a-b.slice/a-b-c.slice.
    let mut path = String::new();
    if stem != "-" {
        let words: Vec<&str> = stem.split('-').collect();
        for i in 1..=words.len() {
            path.push('/');
            path.push_str(&words[..i].join("-"));
            path.push_str(".slice");
        }
    }
    let name = if name.is_empty() { id } else { name };
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{path}/{unit}"))
}

fn num(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_u64().map(|u| u as i64))
}

fn limit_text(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn v1_limit_text(v: i64) -> String {
    if v < 0 {
        "-1".into()
    } else {
        v.to_string()
    }
}

impl CgroupPlan {
    /// Plans the cgroup of container `id` from `cgroupsPath` and `linux.resources`.
    pub fn new(
        id: &str,
        cgroups_path: Option<&Path>,
        systemd: bool,
        resources: Option<&Value>,
        linux: &oci_spec::runtime::Linux,
    ) -> Result<CgroupPlan, Error> {
        let given = cgroups_path
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = if systemd {
            systemd_path(
                if given.is_empty() {
                    "system.slice:watertight:"
                } else {
                    &given
                },
                id,
            )?
        } else if given.is_empty() {
            format!("/{id}")
        } else {
            format!("/{}", given.trim_start_matches('/'))
        };
        if path.split('/').any(|c| c == "..") {
            return Err(Error::invalid("linux.cgroupsPath", "may not contain '..'"));
        }
        let mut plan = CgroupPlan {
            path,
            settings: Vec::new(),
            devices: None,
        };
        let empty = Value::Null;
        let r = resources.unwrap_or(&empty);
        plan.settings = settings_of(r)?;
        if let Some(list) = r.get("devices").and_then(Value::as_array) {
            let mut entries = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let field = format!("linux.resources.devices[{i}]");
                let kind = d.get("type").and_then(Value::as_str).unwrap_or("a");
                let kind = match kind {
                    "a" | "c" | "b" => kind.chars().next().expect("one char"),
                    other => {
                        return Err(Error::invalid(
                            format!("{field}.type"),
                            format!("{other:?} is not a, c or b"),
                        ))
                    }
                };
                let access = d
                    .get("access")
                    .and_then(Value::as_str)
                    .unwrap_or("rwm")
                    .to_owned();
                if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
                    return Err(Error::invalid(
                        format!("{field}.access"),
                        format!("{access:?} is not some of rwm"),
                    ));
                }
                entries.push(DeviceEntry {
                    allow: d.get("allow").and_then(Value::as_bool).unwrap_or(false),
                    kind,
                    major: d.get("major").and_then(num).filter(|v| *v >= 0),
                    minor: d.get("minor").and_then(num).filter(|v| *v >= 0),
                    access,
                });
            }
            // What every OCI runtime grants after the config's rules: the default nodes, the
            // pty slaves, and the config's own devices.
            let mut defaults: Vec<(char, Option<i64>, Option<i64>)> = vec![
                ('c', Some(1), Some(3)),
                ('c', Some(1), Some(5)),
                ('c', Some(1), Some(7)),
                ('c', Some(1), Some(8)),
                ('c', Some(1), Some(9)),
                ('c', Some(5), Some(0)),
                ('c', Some(5), Some(2)),
                ('c', Some(136), None),
            ];
            for d in linux.devices().iter().flatten() {
                let kind = match d.typ() {
                    oci_spec::runtime::LinuxDeviceType::B => 'b',
                    _ => 'c',
                };
                defaults.push((kind, Some(d.major()), Some(d.minor())));
            }
            for (kind, major, minor) in defaults {
                entries.push(DeviceEntry {
                    allow: true,
                    kind,
                    major,
                    minor,
                    access: "rwm".into(),
                });
            }
            plan.devices = Some(entries);
        }
        Ok(plan)
    }
}

/// The writes of `linux.resources` (devices apart), checked.
pub fn settings_of(r: &Value) -> Result<Vec<Setting>, Error> {
    let mut out = Vec::new();
    let mut set =
        |controller: &str, field: &str, v1: Option<(&str, String)>, v2: Option<(&str, String)>| {
            // The CFS period and quota are one cpu.max on v2 and two files on v1.
            let alternate = controller == "cpu"
                && (field == "linux.resources.cpu.quota" || field == "linux.resources.cpu.period");
            out.push(Setting {
                controller: controller.into(),
                v1: v1.map(|(f, v)| (f.to_owned(), v)),
                v2: v2.map(|(f, v)| (f.to_owned(), v)),
                field: field.into(),
                alternate,
            })
        };
    if let Some(m) = r.get("memory").filter(|m| m.is_object()) {
        let limit = m.get("limit").and_then(num);
        if let Some(v) = m.get("reservation").and_then(num) {
            set(
                "memory",
                "linux.resources.memory.reservation",
                Some(("memory.soft_limit_in_bytes", v1_limit_text(v))),
                Some(("memory.low", limit_text(v))),
            );
        }
        if let Some(v) = limit {
            set(
                "memory",
                "linux.resources.memory.limit",
                Some(("memory.limit_in_bytes", v1_limit_text(v))),
                Some(("memory.max", limit_text(v))),
            );
        }
        if let Some(v) = m.get("swap").and_then(num) {
            let v2 = match (v, limit) {
                (v, _) if v < 0 => "max".to_owned(),
                (v, Some(l)) if l >= 0 => (v - l).max(0).to_string(),
                (v, _) => v.to_string(),
            };
            set(
                "memory",
                "linux.resources.memory.swap",
                Some(("memory.memsw.limit_in_bytes", v1_limit_text(v))),
                Some(("memory.swap.max", v2)),
            );
        }
        for key in ["kernel", "kernelTCP"] {
            if m.get(key).and_then(num).is_some() {
                return Err(Error::unsupported(
                    format!("linux.resources.memory.{key}"),
                    "kernel memory limits are gone from Linux 6.x; remove it",
                ));
            }
        }
        if let Some(v) = m.get("swappiness").and_then(Value::as_u64) {
            if v > 100 {
                return Err(Error::invalid(
                    "linux.resources.memory.swappiness",
                    "must be 0-100",
                ));
            }
            set(
                "memory",
                "linux.resources.memory.swappiness",
                Some(("memory.swappiness", v.to_string())),
                None,
            );
        }
        if m.get("disableOOMKiller").and_then(Value::as_bool) == Some(true) {
            set(
                "memory",
                "linux.resources.memory.disableOOMKiller",
                Some(("memory.oom_control", "1".into())),
                None,
            );
        }
    }
    if let Some(c) = r.get("cpu").filter(|c| c.is_object()) {
        if let Some(v) = c.get("shares").and_then(Value::as_u64).filter(|v| *v > 0) {
            let weight = 1 + ((v.clamp(2, 262144) - 2) * 9999) / 262142;
            set(
                "cpu",
                "linux.resources.cpu.shares",
                Some(("cpu.shares", v.to_string())),
                Some(("cpu.weight", weight.to_string())),
            );
        }
        let period = c.get("period").and_then(Value::as_u64).filter(|v| *v > 0);
        let quota = c.get("quota").and_then(num).filter(|v| *v != 0);
        if let Some(p) = period {
            set(
                "cpu",
                "linux.resources.cpu.period",
                Some(("cpu.cfs_period_us", p.to_string())),
                None,
            );
        }
        if let Some(q) = quota {
            set(
                "cpu",
                "linux.resources.cpu.quota",
                Some(("cpu.cfs_quota_us", q.to_string())),
                None,
            );
        }
        if quota.is_some() || period.is_some() {
            let q = quota.map(limit_text).unwrap_or_else(|| "max".into());
            set(
                "cpu",
                "linux.resources.cpu.quota",
                None,
                Some(("cpu.max", format!("{q} {}", period.unwrap_or(100_000)))),
            );
        }
        if let Some(v) = c
            .get("realtimePeriod")
            .and_then(Value::as_u64)
            .filter(|v| *v > 0)
        {
            set(
                "cpu",
                "linux.resources.cpu.realtimePeriod",
                Some(("cpu.rt_period_us", v.to_string())),
                None,
            );
        }
        if let Some(v) = c.get("realtimeRuntime").and_then(num).filter(|v| *v != 0) {
            set(
                "cpu",
                "linux.resources.cpu.realtimeRuntime",
                Some(("cpu.rt_runtime_us", v.to_string())),
                None,
            );
        }
        if let Some(v) = c
            .get("cpus")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            set(
                "cpuset",
                "linux.resources.cpu.cpus",
                Some(("cpuset.cpus", v.into())),
                Some(("cpuset.cpus", v.into())),
            );
        }
        if let Some(v) = c
            .get("mems")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        {
            set(
                "cpuset",
                "linux.resources.cpu.mems",
                Some(("cpuset.mems", v.into())),
                Some(("cpuset.mems", v.into())),
            );
        }
        if let Some(v) = c.get("idle").and_then(num) {
            set(
                "cpu",
                "linux.resources.cpu.idle",
                None,
                Some(("cpu.idle", v.to_string())),
            );
        }
    }
    if let Some(v) = r.pointer("/pids/limit").and_then(num) {
        let text = if v <= 0 {
            "max".to_string()
        } else {
            v.to_string()
        };
        set(
            "pids",
            "linux.resources.pids.limit",
            Some(("pids.max", text.clone())),
            Some(("pids.max", text)),
        );
    }
    if let Some(b) = r.get("blockIO").filter(|b| b.is_object()) {
        // 0 is "not set" (runc's reading): Docker sends {"weight": 0} for every container,
        // and the valid range is 10..=1000, so it never names a weight.
        if let Some(w) = b.get("weight").and_then(Value::as_u64).filter(|w| *w > 0) {
            set(
                "blkio",
                "linux.resources.blockIO.weight",
                Some(("blkio.weight", w.to_string())),
                Some(("io.weight", format!("default {w}"))),
            );
        }
        if let Some(w) = b
            .get("leafWeight")
            .and_then(Value::as_u64)
            .filter(|w| *w > 0)
        {
            set(
                "blkio",
                "linux.resources.blockIO.leafWeight",
                Some(("blkio.leaf_weight", w.to_string())),
                None,
            );
        }
        for (i, d) in b
            .get("weightDevice")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let dev = format!(
                "{}:{}",
                d.get("major").and_then(num).unwrap_or(0),
                d.get("minor").and_then(num).unwrap_or(0)
            );
            if let Some(w) = d.get("weight").and_then(Value::as_u64) {
                set(
                    "blkio",
                    &format!("linux.resources.blockIO.weightDevice[{i}]"),
                    Some(("blkio.weight_device", format!("{dev} {w}"))),
                    Some(("io.weight", format!("{dev} {w}"))),
                );
            }
            if let Some(w) = d.get("leafWeight").and_then(Value::as_u64) {
                set(
                    "blkio",
                    &format!("linux.resources.blockIO.weightDevice[{i}]"),
                    Some(("blkio.leaf_weight_device", format!("{dev} {w}"))),
                    None,
                );
            }
        }
        for (key, v1, v2) in [
            (
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                "rbps",
            ),
            (
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                "wbps",
            ),
            (
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                "riops",
            ),
            (
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                "wiops",
            ),
        ] {
            for (i, d) in b
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let dev = format!(
                    "{}:{}",
                    d.get("major").and_then(num).unwrap_or(0),
                    d.get("minor").and_then(num).unwrap_or(0)
                );
                let rate = d.get("rate").and_then(Value::as_u64).unwrap_or(0);
                set(
                    "blkio",
                    &format!("linux.resources.blockIO.{key}[{i}]"),
                    Some((v1, format!("{dev} {rate}"))),
                    Some(("io.max", format!("{dev} {v2}={rate}"))),
                );
            }
        }
    }
    if let Some(u) = r.get("unified").and_then(Value::as_object) {
        for (key, value) in u {
            let value = value.as_str().unwrap_or_default().to_owned();
            if key.contains('/') || key.starts_with('.') {
                return Err(Error::invalid(
                    format!("linux.resources.unified.{key}"),
                    "not a cgroup file name",
                ));
            }
            let controller = key.split('.').next().unwrap_or_default().to_owned();
            out.push(Setting {
                controller,
                v1: None,
                v2: Some((key.clone(), value)),
                field: format!("linux.resources.unified.{key}"),
                alternate: false,
            });
        }
    }
    Ok(out)
}

/// The container's cgroup directories, as recorded in the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCgroup {
    /// The cgroup path under each root.
    pub path: String,
    /// (hierarchy mount point, v2, controllers) of every directory.
    pub dirs: Vec<CgroupDir>,
    /// Directories this runtime created (leaf last), removed on delete.
    pub created: Vec<PathBuf>,
}

/// One directory of the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    /// The directory.
    pub dir: PathBuf,
    /// In the cgroup2 hierarchy.
    pub v2: bool,
    /// The controllers of its hierarchy.
    pub controllers: Vec<String>,
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    // Cgroup files take one value per write(2): open and write, never create.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::cgroup(path, e))?;
    f.write_all(value.as_bytes()).map_err(|e| {
        Error::cgroup(
            path,
            std::io::Error::new(e.kind(), format!("writing {value:?}: {e}")),
        )
    })
}

impl ContainerCgroup {
    /// Makes the directories (rolled back on failure), applies the plan's settings and device
    /// rules, and moves `pid` in.
    pub fn create(plan: &CgroupPlan, pid: Option<i32>) -> Result<ContainerCgroup, Error> {
        let mut cg = ContainerCgroup {
            path: plan.path.clone(),
            ..Default::default()
        };
        match cg.create_inner(plan, pid) {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.remove();
                Err(e)
            }
        }
    }

    fn create_inner(&mut self, plan: &CgroupPlan, pid: Option<i32>) -> Result<(), Error> {
        let rel = plan.path.trim_start_matches('/');
        for h in hierarchies()? {
            let dir = h.mount.join(rel);
            // Each level that does not exist yet is made (and recorded for removal).
            let mut level = h.mount.clone();
            for comp in Path::new(rel).components() {
                level.push(comp);
                match std::fs::create_dir(&level) {
                    Ok(()) => {
                        self.created.push(level.clone());
                        // v1 cpuset starts empty: a task cannot join until cpus and mems are set.
                        if !h.v2 && h.controllers.iter().any(|c| c == "cpuset") {
                            let parent = level.parent().expect("below the mount");
                            for f in ["cpuset.cpus", "cpuset.mems"] {
                                let v = std::fs::read_to_string(parent.join(f))
                                    .map_err(|e| Error::cgroup(parent.join(f), e))?;
                                write(&level.join(f), v.trim())?;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::cgroup(&level, e)),
                }
            }
            self.dirs.push(CgroupDir {
                dir,
                v2: h.v2,
                controllers: h.controllers,
            });
        }
        // Depth-first order for removal: children before parents.
        self.created
            .sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        self.apply(&plan.settings)?;
        if let Some(devices) = &plan.devices {
            self.apply_devices(devices)?;
        }
        if let Some(pid) = pid {
            self.add(pid)?;
        }
        Ok(())
    }

    /// The directory of the hierarchy that carries `controller` (v1 first, as the kernel binds
    /// a controller to one hierarchy).
    pub fn dir_for(&self, controller: &str) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.iter().any(|c| c == controller))
            .or_else(|| {
                self.dirs
                    .iter()
                    .find(|d| d.v2 && d.controllers.iter().any(|c| c == controller))
            })
    }

    /// The unified directory.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs.iter().find(|d| d.v2).map(|d| d.dir.as_path())
    }

    fn enable_v2(&self, dir: &Path, controller: &str) -> Result<(), Error> {
        let Some(h) = self.dirs.iter().find(|d| d.v2) else {
            return Ok(());
        };
        let root = {
            let mut r = h.dir.clone();
            for _ in Path::new(self.path.trim_start_matches('/')).components() {
                r.pop();
            }
            r
        };
        let mut level = root;
        for comp in dir.strip_prefix(&level).unwrap_or(dir).components() {
            let control = level.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&control).unwrap_or_default();
            if !enabled.split_whitespace().any(|c| c == controller) {
                write(&control, &format!("+{controller}"))?;
            }
            level.push(comp);
        }
        Ok(())
    }

    /// Applies resource writes (create and update).
    pub fn apply(&self, settings: &[Setting]) -> Result<(), Error> {
        for s in settings {
            let Some(d) = self.dir_for(&s.controller) else {
                return Err(Error::invalid(
                    &s.field,
                    format!("this host has no {} controller mounted", s.controller),
                ));
            };
            let (file, value) = match (d.v2, &s.v1, &s.v2) {
                (false, Some(w), _) | (true, _, Some(w)) => w,
                _ if s.alternate => continue,
                _ => {
                    return Err(Error::invalid(
                        &s.field,
                        format!(
                            "cannot be set on this host's cgroup {}",
                            if d.v2 { "v2" } else { "v1" }
                        ),
                    ))
                }
            };
            if d.v2 {
                self.enable_v2(&d.dir, &s.controller)?;
            }
            write(&d.dir.join(file), value).map_err(|e| Error::invalid(&s.field, e.to_string()))?;
        }
        Ok(())
    }

    fn apply_devices(&self, entries: &[DeviceEntry]) -> Result<(), Error> {
        if let Some(d) = self.dir_for("devices").filter(|d| !d.v2) {
            for e in entries {
                let file = if e.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(&d.dir.join(file), &e.v1_line())?;
            }
            return Ok(());
        }
        let Some(dir) = self.v2_dir() else {
            return Err(Error::invalid(
                "linux.resources.devices",
                "this host has neither a v1 devices hierarchy nor cgroup2",
            ));
        };
        // cgroup2: a BPF allowlist. Rules after the last deny-all are the allowlist; a deny of
        // a single device after an allow cannot be expressed and is refused.
        let start = entries
            .iter()
            .rposition(|e| !e.allow && e.kind == 'a' && e.major.is_none() && e.minor.is_none())
            .map(|i| i + 1)
            .unwrap_or(0);
        let mut rules = Vec::new();
        for e in &entries[start..] {
            if !e.allow {
                return Err(Error::unsupported(
                    "linux.resources.devices",
                    "on cgroup2 only an allowlist after a deny-all is supported",
                ));
            }
            rules.push(DeviceRule {
                kind: match e.kind {
                    'c' => DeviceKind::Char,
                    'b' => DeviceKind::Block,
                    _ => DeviceKind::All,
                },
                major: e.major.map(|v| v as u32),
                minor: e.minor.map(|v| v as u32),
                read: e.access.contains('r'),
                write: e.access.contains('w'),
                mknod: e.access.contains('m'),
            });
        }
        if start == 0 && entries.iter().all(|e| e.allow) {
            // No deny-all: no policy to enforce.
            return Ok(());
        }
        // The program stays attached to the cgroup after this process ends (BPF_PROG_ATTACH).
        watertight_cgroups::device_program::AttachedDeviceProgram::attach(dir, &rules)
            .map_err(|e| Error::invalid("linux.resources.devices", e.to_string()))?;
        Ok(())
    }

    /// Moves `pid` into every directory.
    pub fn add(&self, pid: i32) -> Result<(), Error> {
        for d in &self.dirs {
            write(&d.dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Every pid in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let d = self
            .dir_for("pids")
            .or_else(|| self.dirs.first())
            .ok_or_else(|| Error::cgroup(&self.path, std::io::Error::other("no hierarchy")))?;
        let path = d.dir.join("cgroup.procs");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::cgroup(&path, e))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Sends `signal` to every process in the cgroup.
    pub fn signal_all(&self, signal: Signal) -> Result<(), Error> {
        for pid in self.pids()? {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        Ok(())
    }

    /// Freezes (v1 freezer, else cgroup.freeze) and waits until the kernel says frozen.
    pub fn freeze(&self, frozen: bool) -> Result<(), Error> {
        if let Some(d) = self.dir_for("freezer").filter(|d| !d.v2) {
            let file = d.dir.join("freezer.state");
            write(&file, if frozen { "FROZEN" } else { "THAWED" })?;
            for _ in 0..2000 {
                let now = std::fs::read_to_string(&file).map_err(|e| Error::cgroup(&file, e))?;
                if now.trim() == if frozen { "FROZEN" } else { "THAWED" } {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            return Err(Error::cgroup(
                &file,
                std::io::Error::other("did not reach the state"),
            ));
        }
        let dir = self
            .v2_dir()
            .ok_or_else(|| Error::cgroup(&self.path, std::io::Error::other("no freezer")))?;
        write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let events = dir.join("cgroup.events");
        for _ in 0..2000 {
            let text = std::fs::read_to_string(&events).map_err(|e| Error::cgroup(&events, e))?;
            if text
                .lines()
                .any(|l| l == if frozen { "frozen 1" } else { "frozen 0" })
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(Error::cgroup(
            &events,
            std::io::Error::other("did not reach the state"),
        ))
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        if let Some(d) = self.dir_for("freezer").filter(|d| !d.v2) {
            return std::fs::read_to_string(d.dir.join("freezer.state"))
                .is_ok_and(|s| s.trim() == "FROZEN" || s.trim() == "FREEZING");
        }
        self.v2_dir().is_some_and(|d| {
            std::fs::read_to_string(d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        })
    }

    /// Removes the directories this runtime made (a busy one is retried briefly: the last
    /// tasks may still be exiting).
    pub fn remove(&self) {
        for dir in &self.created {
            for _ in 0..200 {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    // A parent still used by another container stays.
                    Err(_) => break,
                }
            }
        }
    }

    /// A small stats object for `events`: memory, pids, CPU usage.
    pub fn stats(&self) -> Value {
        let read = |d: Option<&CgroupDir>, f: &str| -> Option<u64> {
            let d = d?;
            std::fs::read_to_string(d.dir.join(f))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let mem = self.dir_for("memory");
        let (usage, limit) = match mem {
            Some(d) if d.v2 => (read(mem, "memory.current"), read(mem, "memory.max")),
            _ => (
                read(mem, "memory.usage_in_bytes"),
                read(mem, "memory.limit_in_bytes"),
            ),
        };
        let pids = self.dir_for("pids");
        let cpu_ns = match self.dir_for("cpuacct") {
            Some(_) => read(self.dir_for("cpuacct"), "cpuacct.usage"),
            None => self.v2_dir().and_then(|d| {
                let text = std::fs::read_to_string(d.join("cpu.stat")).ok()?;
                let us: u64 = text.lines().find(|l| l.starts_with("usage_usec "))?[11..]
                    .trim()
                    .parse()
                    .ok()?;
                Some(us * 1000)
            }),
        };
        serde_json::json!({
            "cpu": {"usage": {"total": cpu_ns.unwrap_or(0)}},
            "memory": {"usage": {"usage": usage.unwrap_or(0), "limit": limit.unwrap_or(0)}},
            "pids": {"current": read(pids, "pids.current").unwrap_or(0), "limit": read(pids, "pids.max").unwrap_or(0)},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_paths_map_to_cgroupfs() {
        assert_eq!(
            systemd_path("machine.slice:libpod:abc", "x").unwrap(),
            "/machine.slice/libpod-abc.scope"
        );
        assert_eq!(
            systemd_path("a-b.slice:p:n", "x").unwrap(),
            "/a.slice/a-b.slice/p-n.scope"
        );
        assert_eq!(
            systemd_path(":p:n", "x").unwrap(),
            "/system.slice/p-n.scope"
        );
        assert!(systemd_path("nocolons", "x").is_err());
    }

    #[test]
    fn resources_become_writes_for_both_versions() {
        let r = serde_json::json!({"memory": {"limit": 1048576, "swap": 2097152}, "pids": {"limit": 10}, "cpu": {"quota": 50000, "period": 100000}});
        let s = settings_of(&r).unwrap();
        let v2: Vec<_> = s.iter().filter_map(|s| s.v2.clone()).collect();
        assert!(v2.contains(&("memory.max".into(), "1048576".into())));
        assert!(v2.contains(&("memory.swap.max".into(), "1048576".into())));
        assert!(v2.contains(&("pids.max".into(), "10".into())));
        assert!(v2.contains(&("cpu.max".into(), "50000 100000".into())));
    }
}
