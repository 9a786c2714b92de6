//! The live host source: walks /proc and builds one workload per cgroup.
//!
//! Per process it reads `status` and `cgroup` and stats the eight `ns/*` links (their device
//! and inode identify the namespace); per distinct mount namespace it reads `mountinfo` and lists
//! `/dev` once, per distinct user namespace `uid_map` once. Namespaces are compared with a
//! reference process (PID 1 by default): if the reference cannot be read the state is Unknown,
//! never Isolated.

pub mod bpf;
pub mod proc_files;
mod runtime_names;
mod workload_kind;

pub use proc_files::{
    parse_cgroup, parse_id_map, parse_mountinfo, parse_status, MountInfo, Status,
};
pub use workload_kind::classify;

use crate::error::AuditError;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use watertight_model::{
    CapSet, Capabilities, Device, DeviceKind, LsmLabel, Mount, NamespaceKind, NamespaceState,
    Namespaces, Origin, Propagation, Seccomp, SeccompMode, Subject, User, Workload,
    ETC_CREDENTIALS, PROC_MASKED_PATHS, PROC_READONLY_PATHS,
};

/// What to scan.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where procfs is mounted (`/proc`; a DaemonSet may mount the host's elsewhere).
    pub proc_root: PathBuf,
    /// The process whose namespaces are "the host's".
    pub reference_pid: u32,
    /// Audit only these pids (all if `None`).
    pub pids: Option<Vec<u32>>,
    /// The node name to report (default: the kernel hostname).
    pub node: Option<String>,
    /// Processes left out of a full scan (not of an explicit `pids` list): the auditor itself,
    /// which is not a workload, but would be reported as a sandbox of the host whenever it runs
    /// in namespaces of its own (a service with `ProtectHostname=` or `PrivateIPC=`).
    pub exclude_pids: Vec<u32>,
    /// The node's current hardening floor (its runtime.toml's digest and version), compared
    /// with the floor each container `watertight-runc` published was started under (the
    /// `runtime-floor` rule); `None` when the caller could not tell.
    pub current_floor: Option<watertight_model::FloorId>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            proc_root: PathBuf::from("/proc"),
            reference_pid: 1,
            pids: None,
            node: None,
            exclude_pids: Vec::new(),
            current_floor: None,
        }
    }
}

/// The result of a scan.
#[derive(Debug, Clone)]
pub struct HostScan {
    /// The node the scan speaks for: [`HostOptions::node`], else the kernel hostname.
    pub node: String,
    /// One workload per cgroup, each with one subject per process.
    pub workloads: Vec<Workload>,
    /// Processes examined (kernel threads and vanished processes excluded).
    pub processes: usize,
    /// Facts that limit the scan (unreadable reference, missing files), one line each.
    pub warnings: Vec<String>,
    /// The reference's namespace directory (`/proc/<reference>/ns`) when its links could not
    /// be read: nothing can be compared with the host, every namespace is unknown.
    pub reference_unreadable: Option<PathBuf>,
    /// Processes whose status could be read but whose namespace links could not (permission
    /// denied: another user's process, to an auditor without root).
    pub ns_unreadable: Vec<u32>,
}

/// A namespace identity: the nsfs inode behind `/proc/PID/ns/<kind>` (all namespaces live on the
/// one nsfs device, so the inode alone identifies one).
type NsId = u64;

/// Reads the namespace link (`net:[4026531840]`). `readlink` is used rather than `stat`: it
/// formats the inode number without materializing the nsfs dentry and inode, about half the
/// kernel time per link (measured on 10,000 processes).
fn ns_id(path: &Path) -> Option<NsId> {
    ns_id_or_denied(path, &mut false)
}

/// [`ns_id`], setting `denied` when the link exists but may not be read.
fn ns_id_or_denied(path: &Path, denied: &mut bool) -> Option<NsId> {
    match fs::read_link(path) {
        Ok(target) => parse_ns_link(target.to_str()?),
        Err(e) => {
            *denied |= e.kind() == std::io::ErrorKind::PermissionDenied;
            None
        }
    }
}

/// The inode number in a namespace link's target, `kind:[inode]`.
pub fn parse_ns_link(target: &str) -> Option<NsId> {
    let (_, rest) = target.split_once(":[")?;
    rest.strip_suffix(']')?.parse().ok()
}

struct Reference {
    ns: BTreeMap<NamespaceKind, Option<NsId>>,
    /// Mounts of the reference, by device, for mapping a workload's mounts to host paths.
    mounts_by_dev: HashMap<(u32, u32), Vec<MountInfo>>,
    /// Peer groups of the reference's shared mounts.
    shared_groups: HashSet<u32>,
    mountinfo_readable: bool,
    /// Namespace kinds whose links exist but could not be read.
    unreadable: Vec<&'static str>,
}

/// The LSM in force, if any, judged by whether `attr/current` can be read at all.
fn active_lsm(proc_root: &Path) -> Option<String> {
    fs::read_to_string(proc_root.join("self/attr/current")).ok()?;
    if Path::new("/sys/module/apparmor").exists() {
        Some("apparmor".into())
    } else if Path::new("/sys/fs/selinux").exists() {
        Some("selinux".into())
    } else {
        fs::read_to_string("/sys/kernel/security/lsm")
            .ok()
            .and_then(|l| l.split(',').next().map(|s| s.trim().to_string()))
            .or(Some("lsm".into()))
    }
}

fn lsm_label(lsm: &str, raw: &str) -> LsmLabel {
    let label = raw.trim_end_matches(['\n', '\0']).trim().to_string();
    let confined = !(label == "unconfined"
        || label.starts_with("unconfined ")
        || label.contains(":unconfined_t:")
        || label.contains(":spc_t:")
        || label.contains(":kernel_t:"));
    LsmLabel {
        lsm: lsm.to_string(),
        label,
        confined,
    }
}

fn read_reference(proc_root: &Path, pid: u32, warnings: &mut Vec<String>) -> Reference {
    let base = proc_root.join(pid.to_string());
    if !base.exists() {
        warnings.push(format!(
            "reference pid {pid} does not exist; every namespace is reported as unknown \
             (pass --reference-pid of a host process)"
        ));
    }
    let mut ns = BTreeMap::new();
    let mut unreadable = Vec::new();
    for kind in NamespaceKind::ALL {
        let id = ns_id(&base.join("ns").join(kind.proc_name()));
        if id.is_none()
            && base
                .join("ns")
                .join(kind.proc_name())
                .symlink_metadata()
                .is_ok()
        {
            unreadable.push(kind.proc_name());
        }
        ns.insert(kind, id);
    }
    if !unreadable.is_empty() {
        warnings.push(format!(
            "reference pid {pid}: cannot read namespaces {} (run as root in the host PID \
             namespace); reported as unknown",
            unreadable.join(", ")
        ));
    }
    let mut mounts_by_dev: HashMap<(u32, u32), Vec<MountInfo>> = HashMap::new();
    let mut shared_groups = HashSet::new();
    let mountinfo = fs::read_to_string(base.join("mountinfo"));
    let mountinfo_readable = mountinfo.is_ok();
    match mountinfo {
        Ok(text) => {
            for m in parse_mountinfo(&text) {
                if let Some(g) = m.shared {
                    shared_groups.insert(g);
                }
                mounts_by_dev.entry((m.major, m.minor)).or_default().push(m);
            }
        }
        Err(e) => warnings.push(format!(
            "reference pid {pid}: cannot read mountinfo ({e}); host paths and propagation unknown"
        )),
    }
    Reference {
        ns,
        mounts_by_dev,
        shared_groups,
        mountinfo_readable,
        unreadable,
    }
}

/// `sub` relative to `base` if `sub` is `base` or below it, path-component-wise.
fn strip_path_prefix<'a>(sub: &'a str, base: &str) -> Option<&'a str> {
    if base == "/" {
        return Some(sub);
    }
    let rest = sub.strip_prefix(base)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

fn join_host(mount_point: &str, rest: &str) -> String {
    let rest = rest.trim_start_matches('/');
    match (mount_point, rest.is_empty()) {
        (mp, true) => mp.to_string(),
        ("/", false) => format!("/{rest}"),
        (mp, false) => format!("{mp}/{rest}"),
    }
}

/// Maps a workload's mount to the host path it exposes: a host mount of the same device whose
/// root contains this mount's root.
fn host_path_of(m: &MountInfo, reference: &Reference) -> Option<String> {
    // A cgroup mount of a sub-tree is the workload's own cgroup, not the host's hierarchy.
    if (m.fs_type == "cgroup" || m.fs_type == "cgroup2") && m.root != "/" {
        return None;
    }
    let candidates = reference.mounts_by_dev.get(&(m.major, m.minor))?;
    candidates
        .iter()
        .filter_map(|h| strip_path_prefix(&m.root, &h.root).map(|rest| (h, rest)))
        .max_by_key(|(h, _)| h.root.len())
        .map(|(h, rest)| join_host(&h.mount_point, rest))
}

fn propagation_of(m: &MountInfo, reference: &Reference) -> Propagation {
    if !reference.mountinfo_readable {
        return Propagation::Unknown;
    }
    if m.shared
        .is_some_and(|g| reference.shared_groups.contains(&g))
    {
        Propagation::Bidirectional
    } else if m
        .master
        .is_some_and(|g| reference.shared_groups.contains(&g))
    {
        Propagation::HostToContainer
    } else {
        Propagation::Private
    }
}

/// Block devices and kernel-memory devices visible in the process's /dev.
fn visible_devices(proc_pid: &Path) -> Vec<Device> {
    let dev = proc_pid.join("root/dev");
    let Ok(entries) = fs::read_dir(&dev) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        let ft = meta.file_type();
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("/dev/{name}");
        let kind = if ft.is_block_device() {
            DeviceKind::Block
        } else if ft.is_char_device() && matches!(name.as_str(), "mem" | "kmem" | "port") {
            DeviceKind::Char
        } else {
            continue;
        };
        let (major, minor) = major_minor(meta.rdev());
        out.push(Device {
            path,
            host_path: None,
            kind,
            major: Some(major),
            minor: Some(minor),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// One mount namespace as a workload sees it (read once per namespace).
#[derive(Debug, Clone, Default)]
struct MountView {
    mounts: Vec<Mount>,
    devices: Vec<Device>,
    /// [`Subject::masked_paths`]: `None` where not measured (the host's mount namespace).
    masked: Option<Vec<String>>,
    /// [`Subject::readonly_paths`].
    read_only: Option<Vec<String>>,
}

/// Whether a mount hides what is below it rather than exposing anything: the host's
/// `/dev/null` bound over a file (how runtimes mask one) or a read-only tmpfs over a directory.
fn is_mask(m: &Mount) -> bool {
    (m.host_path.as_deref() == Some("/dev/null") && m.target != "/dev/null")
        || (m.fs_type.as_deref() == Some("tmpfs") && m.read_only && m.target != "/")
}

/// The `/dev/null` device (1:3): a file with its rdev is masked whatever mount put it there.
fn is_dev_null(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && major_minor(meta.rdev()) == (1, 3)
}

/// A device number's major and minor (Linux dev_t encoding, glibc's gnu_dev_major/minor).
fn major_minor(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    (major as u32, minor as u32)
}

/// The mount a path lies on in a view: the longest mount point above it (the last mounted of
/// equal ones: mountinfo lists mounts in the order they were stacked).
fn covering_mount<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| strip_path_prefix(path, &m.target).is_some())
        .max_by_key(|m| m.target.len())
}

/// Which of the kernel's sensitive files ([`PROC_MASKED_PATHS`]) and, under a host /etc, of
/// the host's credentials ([`ETC_CREDENTIALS`]) the process cannot read (masked, or not there
/// in its view), and which of the kernel's tunables ([`PROC_READONLY_PATHS`]) it cannot write
/// (on a read-only mount, or not there). Looked at through `/proc/PID/root`, so in the
/// process's own mount namespace.
fn hidden_and_read_only(proc_pid: &Path, mounts: &[Mount]) -> (Vec<String>, Vec<String>) {
    let root = proc_pid.join("root");
    let in_view = |p: &str| fs::symlink_metadata(root.join(p.trim_start_matches('/')));
    let absent = |r: &std::io::Result<fs::Metadata>| matches!(r, Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let mut masked: Vec<String> = mounts
        .iter()
        .filter(|m| is_mask(m))
        .map(|m| m.target.clone())
        .collect();
    let mut candidates: Vec<String> = PROC_MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    for m in mounts
        .iter()
        .filter(|m| m.host_path.as_deref() == Some("/etc"))
    {
        let base = m.target.trim_end_matches('/');
        candidates.extend(ETC_CREDENTIALS.iter().map(|c| format!("{base}/{c}")));
    }
    for p in candidates {
        if masked.contains(&p) {
            continue;
        }
        let meta = in_view(&p);
        if absent(&meta) || meta.as_ref().is_ok_and(is_dev_null) {
            masked.push(p);
        }
    }
    masked.sort();
    masked.dedup();
    let read_only = PROC_READONLY_PATHS
        .iter()
        .filter(|p| absent(&in_view(p)) || covering_mount(mounts, p).is_some_and(|m| m.read_only))
        .map(|p| p.to_string())
        .collect();
    (masked, read_only)
}

/// What one process looks like before grouping.
struct ProcessView {
    pid: u32,
    status: Status,
    cgroup: Option<(String, bool)>,
    ns: BTreeMap<NamespaceKind, Option<NsId>>,
    /// Some namespace link could not be read (permission denied).
    ns_denied: bool,
    lsm: Option<String>,
    /// The executable's (device, inode), through /proc/PID/exe: the file itself, whatever
    /// path the process's own mount namespace gives it.
    exe: Option<(u64, u64)>,
}

/// Where the host's runsc is installed (Debian's package, a manual install, gVisor's own
/// instructions), relative to the host's root.
const RUNSC_PATHS: [&str; 4] = [
    "usr/bin/runsc",
    "usr/local/bin/runsc",
    "usr/sbin/runsc",
    "usr/local/sbin/runsc",
];

/// The (device, inode) of each runsc binary on the host. A process is judged part of a gVisor
/// sandbox only when its executable is one of these files: a container that names a binary
/// of its own `runsc` is not one.
fn runsc_binaries(host_root: &Path) -> HashSet<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    RUNSC_PATHS
        .iter()
        .filter_map(|p| fs::metadata(host_root.join(p)).ok())
        .filter(|m| m.is_file())
        .map(|m| (m.dev(), m.ino()))
        .collect()
}

fn read_process(
    proc_root: &Path,
    pid: u32,
    lsm_active: bool,
    path_buf: &mut PathBuf,
) -> Option<ProcessView> {
    path_buf.clear();
    path_buf.push(proc_root);
    path_buf.push(pid.to_string());
    path_buf.push("status");
    let status = parse_status(&fs::read_to_string(&*path_buf).ok()?);
    if status.kthread == Some(true)
        || (status.kthread.is_none() && (pid == 2 || status.ppid == Some(2)))
    {
        return None;
    }
    path_buf.set_file_name("cgroup");
    let cgroup = fs::read_to_string(&*path_buf)
        .ok()
        .and_then(|t| parse_cgroup(&t));
    let mut ns = BTreeMap::new();
    let mut ns_denied = false;
    path_buf.set_file_name("ns");
    for kind in NamespaceKind::ALL {
        path_buf.push(kind.proc_name());
        ns.insert(kind, ns_id_or_denied(path_buf, &mut ns_denied));
        path_buf.pop();
    }
    let lsm = if lsm_active {
        path_buf.set_file_name("attr");
        path_buf.push("current");
        let l = fs::read_to_string(&*path_buf).ok();
        path_buf.pop();
        l
    } else {
        None
    };
    path_buf.set_file_name("exe");
    let exe = fs::metadata(&*path_buf).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    });
    Some(ProcessView {
        pid,
        status,
        cgroup,
        ns,
        ns_denied,
        lsm,
        exe,
    })
}

fn list_pids(proc_root: &Path) -> Result<Vec<u32>, AuditError> {
    let entries =
        fs::read_dir(proc_root).map_err(|source| AuditError::ProcUnreadable { source })?;
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

fn node_name(proc_root: &Path) -> String {
    fs::read_to_string(proc_root.join("sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// This process's pid as `proc_root` numbers it: `Some` only when that procfs belongs to this
/// process's pid namespace (its `self` link names this process), so that excluding it can never
/// hide another process that happens to have the same number in another namespace.
pub fn own_pid_in(proc_root: &Path) -> Option<u32> {
    let me = std::process::id();
    let named = fs::read_link(proc_root.join("self")).ok()?;
    (named.to_str()?.parse::<u32>().ok()? == me).then_some(me)
}

/// Scans the live host.
pub fn scan(opts: &HostOptions) -> Result<HostScan, AuditError> {
    let proc_root = opts.proc_root.as_path();
    let mut warnings = Vec::new();
    let pids = match &opts.pids {
        Some(p) => p.clone(),
        None => {
            let mut all = list_pids(proc_root)?;
            all.retain(|p| !opts.exclude_pids.contains(p));
            all
        }
    };
    let reference = read_reference(proc_root, opts.reference_pid, &mut warnings);
    let last_cap = fs::read_to_string(proc_root.join("sys/kernel/cap_last_cap"))
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    if last_cap.is_none() {
        warnings.push(
            "cannot read /proc/sys/kernel/cap_last_cap; judging capabilities against the 41 known"
                .into(),
        );
    }
    let lsm = active_lsm(proc_root);
    let runsc = runsc_binaries(&host_root(proc_root));

    // Reading processes is independent per pid: split across the cores.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let chunk = pids.len().div_ceil(threads).max(256);
    let views: Vec<ProcessView> = std::thread::scope(|s| {
        let handles: Vec<_> = pids
            .chunks(chunk)
            .map(|part| {
                let lsm_active = lsm.is_some();
                s.spawn(move || {
                    let mut buf = PathBuf::new();
                    part.iter()
                        .filter_map(|pid| read_process(proc_root, *pid, lsm_active, &mut buf))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if opts.pids.is_some() && views.len() < pids.len() {
        let found: HashSet<u32> = views.iter().map(|v| v.pid).collect();
        let missing: Vec<String> = pids
            .iter()
            .filter(|p| !found.contains(p))
            .map(|p| p.to_string())
            .collect();
        warnings.push(format!(
            "pid(s) {} not found or kernel threads; skipped",
            missing.join(", ")
        ));
    }

    // Per distinct mount namespace (isolated from the reference): mounts and devices, once.
    let mut mounts_cache: HashMap<NsId, MountView> = HashMap::new();
    let mut uid_map_cache: HashMap<NsId, Option<Vec<watertight_model::IdMapping>>> = HashMap::new();
    let mut groups: BTreeMap<String, Vec<Subject>> = BTreeMap::new();
    for v in &views {
        let proc_pid = proc_root.join(v.pid.to_string());
        let mut namespaces = Namespaces::default();
        for kind in NamespaceKind::ALL {
            let state = match (
                v.ns.get(&kind).copied().flatten(),
                reference.ns.get(&kind).copied().flatten(),
            ) {
                (Some(mine), Some(host)) if mine == host => NamespaceState::Shared,
                (Some(_), Some(_)) => NamespaceState::Isolated,
                _ => NamespaceState::Unknown,
            };
            // Kernels without a kind (no time namespaces) have the link on neither side.
            if state == NamespaceState::Unknown
                && v.ns.get(&kind).copied().flatten().is_none()
                && reference.ns.get(&kind).copied().flatten().is_none()
                && !proc_pid.join("ns").join(kind.proc_name()).exists()
            {
                continue;
            }
            namespaces.set(kind, state);
        }
        let view = match (
            namespaces.get(NamespaceKind::Mnt),
            v.ns.get(&NamespaceKind::Mnt).copied().flatten(),
        ) {
            (NamespaceState::Isolated, Some(id)) => mounts_cache
                .entry(id)
                .or_insert_with(|| {
                    let mounts: Vec<Mount> = fs::read_to_string(proc_pid.join("mountinfo"))
                        .map(|t| parse_mountinfo(&t))
                        .unwrap_or_default()
                        .into_iter()
                        .map(|m| Mount {
                            host_path: host_path_of(&m, &reference),
                            propagation: propagation_of(&m, &reference),
                            target: m.mount_point,
                            source: m.source,
                            fs_type: Some(m.fs_type),
                            read_only: m.read_only,
                        })
                        .collect();
                    let (masked, read_only) = hidden_and_read_only(&proc_pid, &mounts);
                    MountView {
                        devices: visible_devices(&proc_pid),
                        mounts,
                        masked: Some(masked),
                        read_only: Some(read_only),
                    }
                })
                .clone(),
            _ => MountView::default(),
        };
        let uid_map = match (
            namespaces.get(NamespaceKind::User),
            v.ns.get(&NamespaceKind::User).copied().flatten(),
        ) {
            (NamespaceState::Isolated, Some(id)) => uid_map_cache
                .entry(id)
                .or_insert_with(|| {
                    fs::read_to_string(proc_pid.join("uid_map"))
                        .ok()
                        .map(|t| parse_id_map(&t))
                })
                .clone(),
            _ => None,
        };
        let seccomp = match v.status.seccomp {
            Some(0) => SeccompMode::Disabled,
            Some(1) => SeccompMode::Strict,
            Some(2) => SeccompMode::Filter,
            _ => SeccompMode::Unknown,
        };
        let (cgroup_path, _) = v.cgroup.clone().unwrap_or_else(|| ("/".into(), true));
        let subject = Subject {
            name: v.status.name.clone(),
            pid: Some(v.pid),
            namespaces,
            privileged: false,
            capabilities: Capabilities {
                effective: v.status.cap_eff.map(CapSet),
                permitted: v.status.cap_prm.map(CapSet),
                bounding: v.status.cap_bnd.map(CapSet),
                added: Vec::new(),
                dropped: Vec::new(),
                last_cap,
            },
            seccomp: Seccomp {
                mode: seccomp,
                profile: None,
            },
            no_new_privs: v.status.no_new_privs,
            lsm: match (&lsm, &v.lsm) {
                (Some(name), Some(raw)) => Some(lsm_label(name, raw)),
                _ => None,
            },
            user: User {
                uid: v.status.uid,
                gid: v.status.gid,
                run_as_non_root: None,
            },
            uid_map,
            mounts: view.mounts,
            devices: view.devices,
            masked_paths: view.masked,
            readonly_paths: view.read_only,
            cgroup_path: v.cgroup.as_ref().map(|c| c.0.clone()),
            user_space_kernel: v
                .exe
                .is_some_and(|id| runsc.contains(&id))
                .then(|| "gvisor".to_string()),
            ..Subject::default()
        };
        groups.entry(cgroup_path).or_default().push(subject);
    }
    let node = opts.node.clone().unwrap_or_else(|| node_name(proc_root));
    let running_dir = running_sandboxes_dir(proc_root);
    let mut names = runtime_names::RuntimeNames::new(&host_root(proc_root));
    let mut workloads: Vec<Workload> = groups
        .into_iter()
        .map(|(path, subjects)| {
            let kind = classify(&path);
            Workload {
                plan: published_plan(&running_dir, &path),
                // A container its runtime names is reported by that name, else by its cgroup.
                id: names.name(&path, &kind).unwrap_or_else(|| path.clone()),
                kind,
                origin: Origin::Live { host: node.clone() },
                cgroup_path: Some(path),
                subjects,
            }
        })
        .collect();
    attach_published_containers(
        &mut workloads,
        &running_containers_dir(proc_root),
        proc_root,
        opts.current_floor.as_ref(),
    );
    // Two workloads never share an id: a name given twice goes back to the cgroup paths.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for w in &workloads {
        *seen.entry(w.id.clone()).or_default() += 1;
    }
    for w in &mut workloads {
        if seen.get(&w.id).is_some_and(|n| *n > 1) {
            if let Some(path) = &w.cgroup_path {
                w.id = path.clone();
            }
        }
    }
    let reference_unreadable = (!reference.unreadable.is_empty())
        .then(|| proc_root.join(opts.reference_pid.to_string()).join("ns"));
    let ns_unreadable = views
        .iter()
        .filter(|v| v.ns_denied)
        .map(|v| v.pid)
        .collect();
    Ok(HostScan {
        node,
        workloads,
        processes: views.len(),
        warnings,
        reference_unreadable,
        ns_unreadable,
    })
}

/// The host's root for the procfs at `proc_root`: `/` for `/proc`, else its parent (a
/// DaemonSet that mounts the host's root at /host passes `--proc /host/proc`).
pub fn host_root(proc_root: &Path) -> PathBuf {
    match proc_root.parent() {
        Some(root) if proc_root != Path::new("/proc") => root.to_path_buf(),
        _ => PathBuf::from("/"),
    }
}

/// Where `watertight run` publishes its running sandboxes' plans on the host whose procfs is at
/// `proc_root`: `/run/...` beside `/proc`, so a DaemonSet that mounts the host's root at /host
/// (`--proc /host/proc`) reads `/host/run/...`.
pub fn running_sandboxes_dir(proc_root: &Path) -> PathBuf {
    let published = Path::new(watertight_model::RUNNING_SANDBOXES_DIR);
    match proc_root.parent() {
        Some(host_root) if proc_root != Path::new("/proc") => {
            host_root.join(published.strip_prefix("/").unwrap_or(published))
        }
        _ => published.to_path_buf(),
    }
}

/// Where `watertight-runc` publishes its running containers on the host whose procfs is at
/// `proc_root` (beside it, as [`running_sandboxes_dir`]).
pub fn running_containers_dir(proc_root: &Path) -> PathBuf {
    let published = Path::new(watertight_model::RUNNING_CONTAINERS_DIR);
    match proc_root.parent() {
        Some(host_root) if proc_root != Path::new("/proc") => {
            host_root.join(published.strip_prefix("/").unwrap_or(published))
        }
        _ => published.to_path_buf(),
    }
}

/// The start time of `pid` (`stat` field 22, counted after the command's last `)`).
fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The containers published under `dir` whose init process still runs (the same pid with the
/// same start time: a reused pid is not the container).
pub fn published_containers(
    dir: &Path,
    proc_root: &Path,
) -> Vec<watertight_model::RunningContainer> {
    use std::io::Read;
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<watertight_model::RunningContainer> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".json")
        })
        .filter_map(|e| {
            let mut text = Vec::new();
            fs::File::open(e.path())
                .ok()?
                .take(4 << 20)
                .read_to_end(&mut text)
                .ok()?;
            serde_json::from_slice::<watertight_model::RunningContainer>(&text).ok()
        })
        .filter(|c| start_time(proc_root, c.init_pid) == Some(c.init_start_time))
        .collect();
    out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
    out
}

/// Gives the workload holding a published container's init process the container's entry as
/// its plan (what `plan-drift` compares with) and its floor (what `runtime-floor` reports). A
/// workload with a sandbox's plan keeps it.
fn attach_published_containers(
    workloads: &mut [Workload],
    dir: &Path,
    proc_root: &Path,
    current: Option<&watertight_model::FloorId>,
) {
    let containers = published_containers(dir, proc_root);
    if containers.is_empty() {
        return;
    }
    for w in workloads.iter_mut().filter(|w| w.plan.is_none()) {
        let Some(c) = containers
            .iter()
            .find(|c| w.subjects.iter().any(|s| s.pid == Some(c.init_pid)))
        else {
            continue;
        };
        w.plan = Some(Box::new(watertight_model::WorkloadPlan {
            digest: c
                .plan_digest
                .clone()
                .unwrap_or_else(|| format!("of container {}", c.container_id)),
            subject: c.workload.subjects.first().cloned().unwrap_or_default(),
            floor: Some(watertight_model::WorkloadFloor {
                container_id: c.container_id.clone(),
                digest: c.floor_digest.clone(),
                version: c.floor_version.clone(),
                current: current.cloned(),
            }),
        }));
        // Named by its cgroup only (no runtime's metadata named it): the container's id says more.
        if w.cgroup_path.as_deref() == Some(w.id.as_str()) {
            w.id = c.container_id.clone();
        }
        if let watertight_model::WorkloadKind::Cgroup
        | watertight_model::WorkloadKind::HostProcesses = w.kind
        {
            w.kind = watertight_model::WorkloadKind::Container {
                runtime: "watertight-runc".into(),
                container_id: Some(c.container_id.clone()),
            };
        }
    }
}

/// The published plan of the watertight sandbox in cgroup `path` (named
/// `watertight-<sandbox id>@...`), if it published one.
fn published_plan(dir: &Path, path: &str) -> Option<Box<watertight_model::WorkloadPlan>> {
    let last = path.rsplit('/').next()?;
    let id = last.strip_prefix("watertight-")?.split('@').next()?;
    if id.is_empty() || id.contains(['/', '.']) {
        return None;
    }
    let text = fs::read(dir.join(format!("{id}.json"))).ok()?;
    let entry: watertight_model::RunningSandbox = serde_json::from_slice(&text).ok()?;
    let subject = entry.workload.subjects.into_iter().next()?;
    Some(Box::new(watertight_model::WorkloadPlan {
        digest: entry.plan_digest,
        subject,
        floor: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_mapping_follows_bind_roots() {
        let mut reference = Reference {
            ns: BTreeMap::new(),
            mounts_by_dev: HashMap::new(),
            shared_groups: HashSet::from([1]),
            mountinfo_readable: true,
            unreadable: Vec::new(),
        };
        for m in parse_mountinfo(
            "22 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
             25 22 0:25 / /run rw shared:5 - tmpfs tmpfs rw\n",
        ) {
            reference
                .mounts_by_dev
                .entry((m.major, m.minor))
                .or_default()
                .push(m);
        }
        let inside = parse_mountinfo(
            "100 99 0:25 /docker.sock /var/run/docker.sock rw - tmpfs tmpfs rw\n\
             101 99 8:1 /srv/data /data ro shared:1 - ext4 /dev/sda1 rw\n\
             102 99 0:77 / / rw - overlay overlay rw\n\
             103 99 8:1 / /host rw master:1 - ext4 /dev/sda1 rw\n",
        );
        let paths: Vec<_> = inside.iter().map(|m| host_path_of(m, &reference)).collect();
        assert_eq!(
            paths,
            vec![
                Some("/run/docker.sock".to_string()),
                Some("/srv/data".to_string()),
                None,
                Some("/".to_string())
            ]
        );
        let props: Vec<_> = inside
            .iter()
            .map(|m| propagation_of(m, &reference))
            .collect();
        assert_eq!(
            props,
            vec![
                Propagation::Private,
                Propagation::Bidirectional,
                Propagation::Private,
                Propagation::HostToContainer
            ]
        );
    }

    #[test]
    fn namespace_links() {
        assert_eq!(parse_ns_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("net:[x]"), None);
        assert_eq!(parse_ns_link("garbage"), None);
    }

    #[test]
    fn lsm_labels() {
        assert!(!lsm_label("apparmor", "unconfined\n").confined);
        assert!(lsm_label("apparmor", "docker-default (enforce)\n").confined);
        assert!(!lsm_label("selinux", "system_u:system_r:spc_t:s0\0").confined);
    }

    #[test]
    fn unreadable_reference_is_unknown_never_isolated() {
        let opts = HostOptions {
            reference_pid: u32::MAX - 1,
            pids: Some(vec![std::process::id()]),
            ..HostOptions::default()
        };
        let scan = scan(&opts).unwrap();
        let me = &scan.workloads[0].subjects[0];
        for kind in [NamespaceKind::Net, NamespaceKind::Pid, NamespaceKind::Mnt] {
            assert_eq!(me.namespaces.get(kind), NamespaceState::Unknown);
        }
        assert!(scan.warnings.is_empty() || scan.warnings.iter().all(|w| !w.contains("isolated")));
    }
}
