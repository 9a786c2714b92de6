//! Where each cgroup controller lives on this host: a v1 hierarchy mount, the unified (cgroup2)
//! hierarchy, or nowhere. Detected once per supervisor from `/proc/self/mountinfo` plus the
//! unified root's `cgroup.controllers`; the hot path never looks at mounts again. The layout
//! also carries the [`CgroupFs`] its cgroups are made through.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::fs::{CgroupFs, KernelFs};
use crate::Error;

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// How cgroups are mounted on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mode {
    /// Only cgroup v1 hierarchies.
    V1,
    /// Only the unified cgroup2 hierarchy (usually at /sys/fs/cgroup).
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
}

/// The controllers watertight drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Controller {
    /// The memory limit (no swap on top) and peak usage, limit hits and OOM kills.
    Memory,
    /// The task limit (`pids.max`) and how often it refused a fork.
    Pids,
    /// CFS bandwidth: v1 `cpu.cfs_period_us`/`cpu.cfs_quota_us`, v2 `cpu.max`.
    Cpu,
    /// v1 CPU usage (`cpuacct.usage`); on cgroup2 the core `cpu.stat` replaces it.
    Cpuacct,
    /// v1 `devices.deny`/`devices.allow`; cgroup2 has no such controller (a BPF program instead).
    Devices,
    /// v1 `freezer.state`; on cgroup2 the core `cgroup.freeze` replaces it.
    Freezer,
}

impl Controller {
    /// Every controller, in the order of the enum.
    pub const ALL: [Controller; 6] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Devices,
        Controller::Freezer,
    ];

    /// The kernel's name for the controller (as in mount options and cgroup.controllers).
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
        }
    }

    fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How the device allowlist is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeviceBackend {
    /// v1 `devices.deny` / `devices.allow` files.
    V1,
    /// A `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the sandbox's unified cgroup.
    Bpf,
    /// Neither is possible (no devices hierarchy and no cgroup2 mount).
    Unavailable,
}

/// Where a controller's files for a sandbox are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement<'a> {
    /// In the v1 hierarchy mounted at this path.
    V1(&'a Path),
    /// In the unified hierarchy.
    Unified,
}

/// Where every controller lives; built by [`detect`], [`Layout::detect_in`] or
/// [`Layout::from_mountinfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    #[serde(skip)]
    fs: FsHandle,
    mode: Mode,
    unified: Option<PathBuf>,
    /// Controllers the unified root offers (its cgroup.controllers), minus any bound to v1.
    unified_controllers: Vec<String>,
    /// v1 mount point per controller, indexed by `Controller as usize`.
    v1: [Option<PathBuf>; 6],
    device_backend: DeviceBackend,
}

/// The filesystem a layout's cgroups are made through. Layouts compare equal whatever their
/// filesystem: equality is about where controllers live.
#[derive(Clone)]
struct FsHandle(Arc<dyn CgroupFs>);

impl Default for FsHandle {
    fn default() -> FsHandle {
        FsHandle(Arc::new(KernelFs))
    }
}

impl fmt::Debug for FsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for FsHandle {
    fn eq(&self, _: &FsHandle) -> bool {
        true
    }
}

impl Eq for FsHandle {}

/// Detects the host's cgroup layout from `/proc/self/mountinfo` and the unified root's
/// `cgroup.controllers`, on the kernel's files.
pub fn detect() -> Result<Layout, Error> {
    let mountinfo = std::fs::read_to_string(MOUNTINFO).map_err(|e| Error::read(MOUNTINFO, e))?;
    Layout::detect_in(Arc::new(KernelFs), &mountinfo)
}

impl Layout {
    /// Detects the layout described by `mountinfo` (the text of a `/proc/<pid>/mountinfo`),
    /// reading the unified root's `cgroup.controllers` through `fs`, and makes every cgroup of
    /// this layout through `fs`. [`detect`] is this with the kernel's files; tests pass a
    /// fixture and a [`crate::fake::FakeCgroupFs`].
    pub fn detect_in(fs: Arc<dyn CgroupFs>, mountinfo: &str) -> Result<Layout, Error> {
        let mounts =
            parse_mountinfo(mountinfo).map_err(|reason| Error::parse(MOUNTINFO, reason))?;
        let unified_controllers = match mounts.iter().find(|m| m.fstype == "cgroup2") {
            Some(m) => {
                let path = m.mount_point.join("cgroup.controllers");
                fs.read(&path).map_err(|e| Error::read(&path, e))?
            }
            None => String::new(),
        };
        Layout::from_mounts(FsHandle(fs), &mounts, &unified_controllers)
    }

    /// Builds a layout from mountinfo text and the unified root's cgroup.controllers content
    /// (empty when there is no cgroup2 mount), on the kernel's files. Lets callers and tests
    /// describe other hosts.
    pub fn from_mountinfo(mountinfo: &str, unified_controllers: &str) -> Result<Layout, Error> {
        let mounts =
            parse_mountinfo(mountinfo).map_err(|reason| Error::parse(MOUNTINFO, reason))?;
        Layout::from_mounts(FsHandle::default(), &mounts, unified_controllers)
    }

    /// The filesystem this layout's cgroups are made through.
    pub fn fs(&self) -> &Arc<dyn CgroupFs> {
        &self.fs.0
    }

    fn from_mounts(
        fs: FsHandle,
        mounts: &[CgroupMount],
        unified_controllers: &str,
    ) -> Result<Layout, Error> {
        let mut v1: [Option<PathBuf>; 6] = Default::default();
        let mut unified = None;
        let mut any_v1_controller = false;
        for mount in mounts {
            match mount.fstype.as_str() {
                // The first cgroup2 mount wins; later ones are bind mounts of the same tree.
                "cgroup2" if unified.is_none() => unified = Some(mount.mount_point.clone()),
                "cgroup" => {
                    for option in mount.super_options.split(',') {
                        if let Some(controller) = Controller::from_name(option) {
                            any_v1_controller = true;
                            let slot = &mut v1[controller.index()];
                            if slot.is_none() {
                                *slot = Some(mount.mount_point.clone());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let mode = match (unified.is_some(), any_v1_controller) {
            (true, false) => Mode::V2,
            (true, true) => Mode::Hybrid,
            (false, true) => Mode::V1,
            (false, false) => return Err(Error::NoHierarchy),
        };
        let unified_controllers = if unified.is_some() {
            unified_controllers
                .split_whitespace()
                .filter(|name| Controller::from_name(name).is_none_or(|c| v1[c.index()].is_none()))
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        let device_backend = if v1[Controller::Devices.index()].is_some() {
            DeviceBackend::V1
        } else if unified.is_some() {
            DeviceBackend::Bpf
        } else {
            DeviceBackend::Unavailable
        };
        Ok(Layout {
            fs,
            mode,
            unified,
            unified_controllers,
            v1,
            device_backend,
        })
    }

    /// How the host mounts cgroups: v1, pure v2 or hybrid.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Mount point of the unified (cgroup2) hierarchy, if any.
    pub fn unified_root(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Mount point of the v1 hierarchy carrying `controller`, if any.
    pub fn v1_root(&self, controller: Controller) -> Option<&Path> {
        self.v1[controller.index()].as_deref()
    }

    /// Controllers offered by the unified root that are not bound to a v1 hierarchy.
    pub fn unified_controllers(&self) -> &[String] {
        &self.unified_controllers
    }

    /// Where `controller` lives: a v1 hierarchy first, else the unified hierarchy when its root
    /// offers the controller. cpuacct and freezer need no controller on cgroup2 (cpu.stat and
    /// cgroup.freeze are core files).
    pub fn placement(&self, controller: Controller) -> Option<Placement<'_>> {
        if let Some(root) = self.v1_root(controller) {
            return Some(Placement::V1(root));
        }
        self.unified.as_ref()?;
        let available = match controller {
            Controller::Cpuacct | Controller::Freezer => true,
            Controller::Devices => false,
            other => self.unified_controllers.iter().any(|c| c == other.name()),
        };
        available.then_some(Placement::Unified)
    }

    /// How device allowlists are enforced: v1 files when the devices hierarchy is mounted, else
    /// the BPF program on cgroup2, unless changed by [`Layout::with_device_backend`].
    pub fn device_backend(&self) -> DeviceBackend {
        self.device_backend
    }

    /// Chooses how device allowlists are enforced (e.g. force the BPF program on a hybrid host).
    /// Fails when the host cannot do it.
    pub fn with_device_backend(mut self, backend: DeviceBackend) -> Result<Layout, Error> {
        let possible = match backend {
            DeviceBackend::V1 => self.v1_root(Controller::Devices).is_some(),
            DeviceBackend::Bpf => self.unified.is_some(),
            DeviceBackend::Unavailable => true,
        };
        if !possible {
            return Err(Error::ControllerMissing {
                controller: "devices",
                mode: self.mode,
                fix: match backend {
                    DeviceBackend::V1 => "mount the v1 devices hierarchy or use DeviceBackend::Bpf",
                    _ => "mount cgroup2 (the BPF device program attaches to a unified cgroup)",
                },
            });
        }
        self.device_backend = backend;
        Ok(self)
    }

    /// A cgroup2 subtree delegated to an unprivileged caller (systemd's `Delegate=`): `root` is
    /// a directory of the unified hierarchy the caller may make cgroups in and move its own
    /// processes to, `subtree_control` the text of its `cgroup.subtree_control` (the controllers
    /// its children get). Cgroups of this layout are made under `root`, never at the
    /// hierarchy's mount point, and no device policy is offered (the BPF device program needs
    /// root). Nothing is read here.
    pub fn delegated(root: PathBuf, subtree_control: &str) -> Layout {
        Layout {
            fs: FsHandle::default(),
            mode: Mode::V2,
            unified: Some(root),
            unified_controllers: subtree_control
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            v1: Default::default(),
            device_backend: DeviceBackend::Unavailable,
        }
    }

    /// Every hierarchy root watertight may create cgroups in, deduplicated (co-mounted v1
    /// controllers share one root), unified first.
    pub fn roots(&self) -> Vec<&Path> {
        let mut roots: Vec<&Path> = Vec::new();
        for root in self.unified.iter().chain(self.v1.iter().flatten()) {
            if !roots.contains(&root.as_path()) {
                roots.push(root);
            }
        }
        roots
    }
}

/// One cgroup or cgroup2 mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted (field 5, with mountinfo's octal escapes decoded).
    pub mount_point: PathBuf,
    /// `cgroup` (a v1 hierarchy) or `cgroup2` (the unified hierarchy).
    pub fstype: String,
    /// The superblock options: for v1, the controllers the hierarchy carries (e.g.
    /// `rw,cpu,cpuacct`) or a `name=` of a named hierarchy.
    pub super_options: String,
}

/// Parses `/proc/<pid>/mountinfo`, keeping only cgroup and cgroup2 mounts. Fails on a line that
/// lacks the `-` separator or the fields around it.
pub fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>, String> {
    let mut mounts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields
            .iter()
            .position(|f| *f == "-")
            .ok_or_else(|| format!("line {}: no ' - ' separator", number + 1))?;
        if separator < 6 || fields.len() < separator + 4 {
            return Err(format!("line {}: too few fields", number + 1));
        }
        let fstype = fields[separator + 1];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        mounts.push(CgroupMount {
            mount_point: PathBuf::from(unescape_octal(fields[4])),
            fstype: fstype.to_owned(),
            super_options: fields[separator + 3].to_owned(),
        });
    }
    Ok(mounts)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegated_subtree_offers_what_its_subtree_control_enables_and_no_devices() {
        let root = PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service");
        let layout = Layout::delegated(root.clone(), "memory pids\n");
        assert_eq!(layout.mode(), Mode::V2);
        assert_eq!(layout.unified_root(), Some(root.as_path()));
        assert_eq!(layout.roots(), [root.as_path()]);
        assert_eq!(
            layout.placement(Controller::Memory),
            Some(Placement::Unified)
        );
        assert_eq!(layout.placement(Controller::Pids), Some(Placement::Unified));
        assert_eq!(layout.placement(Controller::Cpu), None);
        // cpu.stat and cgroup.freeze are core files of every cgroup2 directory.
        assert_eq!(
            layout.placement(Controller::Freezer),
            Some(Placement::Unified)
        );
        assert_eq!(layout.device_backend(), DeviceBackend::Unavailable);
        assert_eq!(
            Layout::delegated(root, "").placement(Controller::Memory),
            None
        );
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V1_COMOUNTED: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_host_uses_v1_controllers_and_unified_core() {
        let layout = Layout::from_mountinfo(HYBRID, "hugetlb\n").unwrap();
        assert_eq!(layout.mode(), Mode::Hybrid);
        assert_eq!(
            layout.unified_root(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            layout.placement(Controller::Memory),
            Some(Placement::V1(Path::new("/sys/fs/cgroup/memory")))
        );
        assert_eq!(layout.device_backend(), DeviceBackend::V1);
        assert_eq!(layout.unified_controllers(), ["hugetlb"]);
        assert_eq!(layout.roots().len(), 7);
    }

    #[test]
    fn pure_v2_host_places_everything_in_unified() {
        let layout =
            Layout::from_mountinfo(PURE_V2, "cpuset cpu io memory hugetlb pids rdma misc").unwrap();
        assert_eq!(layout.mode(), Mode::V2);
        for c in [
            Controller::Memory,
            Controller::Pids,
            Controller::Cpu,
            Controller::Freezer,
        ] {
            assert_eq!(layout.placement(c), Some(Placement::Unified), "{c:?}");
        }
        assert_eq!(layout.placement(Controller::Devices), None);
        assert_eq!(layout.device_backend(), DeviceBackend::Bpf);
    }

    #[test]
    fn comounted_v1_controllers_share_a_root() {
        let layout = Layout::from_mountinfo(V1_COMOUNTED, "").unwrap();
        assert_eq!(layout.mode(), Mode::V1);
        assert_eq!(
            layout.v1_root(Controller::Cpu),
            layout.v1_root(Controller::Cpuacct)
        );
        assert_eq!(layout.roots().len(), 2);
        assert_eq!(layout.placement(Controller::Pids), None);
        assert_eq!(layout.device_backend(), DeviceBackend::Unavailable);
        assert!(layout.with_device_backend(DeviceBackend::Bpf).is_err());
    }

    #[test]
    fn no_cgroup_mounts_is_an_error() {
        let err = Layout::from_mountinfo("22 1 0:5 / /proc rw - proc proc rw\n", "").unwrap_err();
        assert!(matches!(err, Error::NoHierarchy));
    }

    #[test]
    fn malformed_mountinfo_is_an_error() {
        assert!(parse_mountinfo("garbage line without separator").is_err());
        assert!(parse_mountinfo("1 2 - cgroup").is_err());
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        let text = "41 31 0:38 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let mounts = parse_mountinfo(text).unwrap();
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/my cg"));
        assert_eq!(unescape_octal("a\\1"), "a\\1");
        assert_eq!(unescape_octal("\\134x"), "\\x");
    }

    #[test]
    fn detect_matches_this_host() {
        let layout = detect().expect("detect on this host");
        // Whatever the host, every controller placement must point at an existing directory.
        for root in layout.roots() {
            assert!(root.is_dir(), "{}", root.display());
        }
    }
}
