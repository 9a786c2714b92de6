//! config.json -> [`ContainerPlan`]: every field parsed and checked, the seccomp filter compiled,
//! mount options split, before the state directory, the cgroup or any process exists.

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use watertight_seccomp::{CompileOptions, CompiledFilter, Profile};

use crate::cgroup::CgroupPlan;
use crate::mounts::{plan_mount, propagation_flags, MountPlan};
use crate::{Error, ALLOW_UNENFORCED_LSM};

/// What `create` was asked beyond the bundle.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The container id.
    pub id: String,
    /// The bundle directory (holds config.json).
    pub bundle: PathBuf,
    /// Write the init's pid here.
    pub pid_file: Option<PathBuf>,
    /// Send the pty master here (process.terminal).
    pub console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root (a rootfs on a ramfs).
    pub no_pivot: bool,
    /// Pass fds 3..3+N to the process.
    pub preserve_fds: u32,
    /// cgroupsPath is systemd's `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// The hardening floor's runtime.toml (`--config`; None: the default path).
    pub floor_config: Option<PathBuf>,
}

/// One namespace the container joins by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinNamespace {
    /// CLONE_NEW* of its type.
    pub flag: CloneFlags,
    /// The nsfs file.
    pub path: PathBuf,
}

/// Capability sets, bit n = capability n.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapsPlan {
    /// Kept in the bounding set.
    pub bounding: u64,
    /// Effective.
    pub effective: u64,
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
    /// Raised into the ambient set.
    pub ambient: u64,
}

/// One device node the init creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    /// Path in the container.
    pub path: String,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: nix::sys::stat::SFlag,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The process to execute and everything about its identity, checked.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    /// argv.
    pub args: Vec<String>,
    /// The environment.
    pub env: Vec<String>,
    /// Working directory in the container.
    pub cwd: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// umask.
    pub umask: Option<u32>,
    /// Capability sets (None: leave them as they are).
    pub caps: Option<CapsPlan>,
    /// (resource, soft, hard).
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    pub no_new_privs: bool,
    /// /proc/self/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// A pty for stdio, its master sent to the console socket.
    pub terminal: bool,
    /// (rows, columns) of the pty.
    pub console_size: Option<(u16, u16)>,
    /// The container's own seccomp filter.
    pub seccomp: Option<CompiledFilter>,
    /// The hardening floor's filter, installed right after the container's own.
    pub floor_seccomp: Option<CompiledFilter>,
    /// Fds 3..3+N stay open.
    pub preserve_fds: u32,
    /// linux.seccomp.listenerPath and listenerMetadata, when the container's filter has
    /// SCMP_ACT_NOTIFY rules: its listener goes to that socket (runc's protocol), at create for
    /// the container's process and at exec for an exec'd one.
    pub seccomp_listener: Option<SeccompListener>,
}

/// Where the container's seccomp user-notification fd is sent (linux.seccomp.listenerPath) and
/// the opaque string that rides with it (listenerMetadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompListener {
    /// The unix socket (absolute path on the host).
    pub path: PathBuf,
    /// listenerMetadata, passed through as the state's `metadata`.
    pub metadata: String,
}

impl SeccompListener {
    /// Reads listenerPath from the container's profile: None when unset or when the compiled
    /// filter notifies nothing (runc sends no fd then either).
    fn from_profile(
        profile: Option<&Value>,
        filter: Option<&CompiledFilter>,
    ) -> Result<Option<SeccompListener>, Error> {
        const FIELD: &str = "linux.seccomp.listenerPath";
        let Some(path) = profile.and_then(|p| p.get("listenerPath")) else {
            return Ok(None);
        };
        let path = path
            .as_str()
            .ok_or_else(|| Error::invalid(FIELD, "must be a string: the path of a unix socket"))?;
        if path.is_empty() || !filter.is_some_and(CompiledFilter::wants_listener) {
            return Ok(None);
        }
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(Error::invalid(
                FIELD,
                format!("{path:?} is not an absolute path: name the listener's unix socket"),
            ));
        }
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => {
                return Err(Error::invalid(
                    FIELD,
                    format!(
                        "{} is not a unix socket: start the seccomp agent that listens there",
                        path.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(Error::invalid(
                    FIELD,
                    format!(
                        "{}: {e}: start the seccomp agent that listens there",
                        path.display()
                    ),
                ))
            }
        }
        let metadata = profile
            .and_then(|p| p.get("listenerMetadata"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Some(SeccompListener { path, metadata }))
    }
}

/// The whole container, validated.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// Container id.
    pub id: String,
    /// Bundle directory (absolute).
    pub bundle: PathBuf,
    /// The parsed config.
    pub spec: Spec,
    /// The config as JSON (hooks and annotations are taken from it as given).
    pub raw: Value,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Namespaces joined by path, in the order they are joined (user first).
    pub join: Vec<JoinNamespace>,
    /// Namespaces created.
    pub unshare: CloneFlags,
    /// uid_map / gid_map text for a new user namespace.
    pub id_maps: Option<(String, String)>,
    /// Mounts in config order.
    pub mounts: Vec<MountPlan>,
    /// Devices to create.
    pub devices: Vec<DevicePlan>,
    /// The cgroup.
    pub cgroup: CgroupPlan,
    /// The process.
    pub process: ProcessPlan,
    /// hostname (needs a new UTS namespace).
    pub hostname: Option<String>,
    /// domainname.
    pub domainname: Option<String>,
    /// Sysctls, written in the container's namespaces.
    pub sysctl: Vec<(String, String)>,
    /// maskedPaths.
    pub masked_paths: Vec<String>,
    /// readonlyPaths.
    pub readonly_paths: Vec<String>,
    /// root.readonly.
    pub readonly_root: bool,
    /// linux.rootfsPropagation (MS_* flags); the mount namespace is made rslave before.
    pub rootfs_propagation: Option<MsFlags>,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The personality(2) domain (PER_LINUX or PER_LINUX32).
    pub personality: Option<u64>,
    /// What the hardening floor added (None: planned without a floor, as in unit tests).
    pub hardening: Option<watertight_floor::Hardening>,
}

/// Refused paths of config.json: present and not null or empty means the runtime cannot honour
/// them.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("linux.intelRdt", "no resctrl on this runtime"),
    ("linux.memoryPolicy", "set_mempolicy is not applied"),
    (
        "linux.netDevices",
        "move network devices with the container engine's network setup",
    ),
    ("linux.resources.rdma", "no rdma controller support"),
    (
        "linux.resources.hugepageLimits",
        "no hugetlb limits support",
    ),
    (
        "linux.resources.network",
        "net_cls/net_prio are not applied",
    ),
    ("process.ioPriority", "ioprio_set is not applied"),
    ("process.scheduler", "sched_setattr is not applied"),
    ("process.execCPUAffinity", "CPU affinity is not applied"),
    ("solaris", "this is a Linux runtime"),
    ("windows", "this is a Linux runtime"),
    ("vm", "this runtime runs containers, not VMs"),
    ("zos", "this is a Linux runtime"),
];

fn lookup<'a>(raw: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(raw, |v, key| v.get(key))
}

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Checks a container id: runc's rules (letters, digits, `_+-.`, not `.` or `..`).
pub fn validate_id(id: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("is empty");
    }
    if id == "." || id == ".." {
        return bad("is . or ..");
    }
    if id.len() > 1024 {
        return bad("is longer than 1024 bytes");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
    {
        return bad("may contain only letters, digits, '_', '+', '-' and '.'");
    }
    Ok(())
}

/// Fails on the first field of [`UNSUPPORTED`] the config sets.
pub fn check_unsupported(raw: &Value) -> Result<(), Error> {
    for (field, hint) in UNSUPPORTED {
        if present(lookup(raw, field)) {
            return Err(Error::unsupported(*field, *hint));
        }
    }
    Ok(())
}

/// The bundle's config after the hardening floor (`floor_config`: runtime.toml, None for the
/// default path): the refused fields are checked on the config as given, then
/// `Floor::harden` edits it (no_new_privs, masked paths, capabilities, devices, privileged
/// policy). The container's own seccomp profile is kept as the config spelled it.
pub fn load_hardened(
    bundle: &Path,
    floor_config: Option<&Path>,
) -> Result<(Spec, Value, watertight_floor::Hardening), Error> {
    let (spec, raw) = load_config(bundle)?;
    harden_loaded(spec, raw, floor_config, &bundle.join("config.json"))
}

/// Annotation key prefixes only the runtime sets: the floor's record and the isolation tier a
/// container was handed to.
pub const RUNTIME_SET_ANNOTATIONS: &[&str] = &[
    watertight_floor::ANNOTATION_PREFIX,
    "run.oci.watertight/isolation",
];

/// [`load_hardened`] of a config already loaded from `path`.
pub fn harden_loaded(
    mut spec: Spec,
    raw: Value,
    floor_config: Option<&Path>,
    path: &Path,
) -> Result<(Spec, Value, watertight_floor::Hardening), Error> {
    check_unsupported(&raw)?;
    let floor = watertight_floor::Floor::load(floor_config)?;
    let hardening = floor.harden(&mut spec)?;
    let mut hardened = serde_json::to_value(&spec).map_err(|e| Error::ParseConfig {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(seccomp) = raw.pointer("/linux/seccomp") {
        hardened["linux"]["seccomp"] = seccomp.clone();
    }
    let mut annotations = hardened
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // What the runtime says of a container (the floor it runs under, the kernel that serves it)
    // is the runtime's to say: a config's own values under those keys are dropped, so `state`
    // and `audit host` never show a claim the config made about itself.
    annotations.retain(|k, _| !RUNTIME_SET_ANNOTATIONS.iter().any(|p| k.starts_with(p)));
    for (k, v) in hardening.annotations() {
        annotations.insert(k, Value::String(v));
    }
    hardened["annotations"] = Value::Object(annotations);
    Ok((spec, hardened, hardening))
}

/// Compiles the floor's own filter (the violation action is in its rules).
pub fn floor_filter(
    hardening: &watertight_floor::Hardening,
) -> Result<Option<CompiledFilter>, Error> {
    match hardening.seccomp_profile() {
        None => Ok(None),
        Some(profile) => Ok(Some(profile.compile(&CompileOptions::default())?)),
    }
}

/// Reads `<bundle>/config.json` as typed spec and as JSON.
pub fn load_config(bundle: &Path) -> Result<(Spec, Value), Error> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::ReadConfig {
        path: path.clone(),
        source,
    })?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| Error::ParseConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let spec: Spec = serde_json::from_value(raw.clone()).map_err(|e| Error::ParseConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok((spec, raw))
}

fn ns_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a CLONE_NEW* flag as /proc/<pid>/ns/ names it.
pub fn ns_file_name(flag: CloneFlags) -> &'static str {
    match flag {
        f if f == CloneFlags::CLONE_NEWNS => "mnt",
        f if f == CloneFlags::CLONE_NEWCGROUP => "cgroup",
        f if f == CloneFlags::CLONE_NEWUTS => "uts",
        f if f == CloneFlags::CLONE_NEWIPC => "ipc",
        f if f == CloneFlags::CLONE_NEWUSER => "user",
        f if f == CloneFlags::CLONE_NEWPID => "pid",
        f if f == CloneFlags::CLONE_NEWNET => "net",
        _ => "time",
    }
}

/// The order namespaces are joined in: user first (it grants the rights to join the others),
/// mount last (its paths would change under the joins).
pub const JOIN_ORDER: [CloneFlags; 8] = [
    CloneFlags::CLONE_NEWUSER,
    CloneFlags::CLONE_NEWIPC,
    CloneFlags::CLONE_NEWUTS,
    CloneFlags::CLONE_NEWNET,
    CloneFlags::CLONE_NEWPID,
    CloneFlags::CLONE_NEWCGROUP,
    CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    CloneFlags::CLONE_NEWNS,
];

fn id_map_text(field: &str, maps: &[oci_spec::runtime::LinuxIdMapping]) -> Result<String, Error> {
    if maps.is_empty() {
        return Err(Error::invalid(
            field,
            "a new user namespace needs at least one mapping",
        ));
    }
    let mut out = String::new();
    for m in maps {
        if m.size() == 0 {
            return Err(Error::invalid(field, "a mapping of size 0"));
        }
        out.push_str(&format!(
            "{} {} {}\n",
            m.container_id(),
            m.host_id(),
            m.size()
        ));
    }
    Ok(out)
}

fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> Resource {
    use oci_spec::runtime::PosixRlimitType as T;
    match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

fn cap_mask(field: &str, set: &Option<oci_spec::runtime::Capabilities>) -> Result<u64, Error> {
    let mut mask = 0u64;
    for cap in set.iter().flatten() {
        let name = cap.to_string();
        let n = watertight_model::CapSet::number_of(&name)
            .map_err(|_| Error::invalid(field, format!("unknown capability {name}")))?;
        mask |= 1u64 << n;
    }
    Ok(mask)
}

/// The capabilities this process holds (CapPrm of /proc/self/status): a set the container asks
/// for beyond them cannot be granted.
fn own_permitted() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapPrm:"))?;
    u64::from_str_radix(line["CapPrm:".len()..].trim(), 16).ok()
}

/// The CAP_* names in `mask`, comma separated, for messages.
fn cap_names(mask: u64) -> String {
    watertight_model::CapSet(mask).names().join(", ")
}

impl ProcessPlan {
    /// Checks `process` (field prefix `field`); `seccomp` is the container's profile (JSON),
    /// compiled here so a bad profile fails before anything exists.
    pub fn new(
        field: &str,
        process: &Process,
        seccomp: Option<&Value>,
        annotations: &Value,
        preserve_fds: u32,
        new_userns: bool,
    ) -> Result<ProcessPlan, Error> {
        let args = process.args().clone().unwrap_or_default();
        if args.is_empty() {
            return Err(Error::invalid(
                format!("{field}.args"),
                "is empty: name the program to run",
            ));
        }
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(Error::invalid(
                format!("{field}.cwd"),
                format!("{cwd:?} is not an absolute path"),
            ));
        }
        let allow_lsm = annotations
            .get(ALLOW_UNENFORCED_LSM)
            .and_then(Value::as_str)
            == Some("true");
        for (name, value) in [
            ("apparmorProfile", process.apparmor_profile()),
            ("selinuxLabel", process.selinux_label()),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_empty()) && !allow_lsm {
                return Err(Error::unsupported(
                    format!("{field}.{name}"),
                    format!("this kernel has neither AppArmor nor SELinux; annotation {ALLOW_UNENFORCED_LSM}=\"true\" accepts running without"),
                ));
            }
        }
        let caps = match process.capabilities() {
            None => None,
            Some(c) => {
                let plan = CapsPlan {
                    bounding: cap_mask(&format!("{field}.capabilities.bounding"), c.bounding())?,
                    effective: cap_mask(&format!("{field}.capabilities.effective"), c.effective())?,
                    permitted: cap_mask(&format!("{field}.capabilities.permitted"), c.permitted())?,
                    inheritable: cap_mask(
                        &format!("{field}.capabilities.inheritable"),
                        c.inheritable(),
                    )?,
                    ambient: cap_mask(&format!("{field}.capabilities.ambient"), c.ambient())?,
                };
                if !new_userns {
                    if let Some(held) = own_permitted() {
                        let missing = (plan.permitted | plan.inheritable | plan.effective) & !held;
                        if missing != 0 {
                            return Err(Error::invalid(
                                format!("{field}.capabilities"),
                                format!(
                                    "{} not held by this runtime's root on this host; remove them",
                                    cap_names(missing)
                                ),
                            ));
                        }
                    }
                }
                Some(plan)
            }
        };
        let rlimits = process
            .rlimits()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| {
                if r.soft() > r.hard() {
                    return Err(Error::invalid(
                        format!("{field}.rlimits[{i}]"),
                        "soft is above hard",
                    ));
                }
                Ok((rlimit_resource(r.typ()), r.soft(), r.hard()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let seccomp_profile = seccomp;
        let seccomp = match seccomp {
            None | Some(Value::Null) => None,
            Some(profile) => {
                let mut profile = profile.clone();
                // Not the filter's business: SeccompListener reads them.
                if let Some(o) = profile.as_object_mut() {
                    o.remove("listenerPath");
                    o.remove("listenerMetadata");
                }
                let parsed = Profile::from_json(&profile.to_string())?;
                let opts = CompileOptions {
                    capabilities: caps
                        .map(|c| {
                            cap_names(c.effective)
                                .split(", ")
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    ..Default::default()
                };
                Some(parsed.compile(&opts)?)
            }
        };
        let seccomp_listener = SeccompListener::from_profile(seccomp_profile, seccomp.as_ref())?;
        let user = process.user();
        Ok(ProcessPlan {
            args,
            env: process.env().clone().unwrap_or_default(),
            cwd,
            uid: user.uid(),
            gid: user.gid(),
            additional_gids: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            caps,
            rlimits,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            oom_score_adj: process.oom_score_adj(),
            terminal: process.terminal().unwrap_or(false),
            console_size: process
                .console_size()
                .map(|b| (b.height() as u16, b.width() as u16)),
            seccomp,
            floor_seccomp: None,
            preserve_fds,
            seccomp_listener,
        })
    }
}

impl ContainerPlan {
    /// Validates the bundle's config for container `opts.id`. Creates nothing.
    pub fn new(opts: &CreateOptions) -> Result<ContainerPlan, Error> {
        validate_id(&opts.id)?;
        let bundle =
            std::path::absolute(&opts.bundle).map_err(|e| Error::state(&opts.bundle, e))?;
        let (spec, raw) = load_config(&bundle)?;
        ContainerPlan::from_spec(opts, bundle, spec, raw)
    }

    /// Validates an already loaded config (the hardening floor edits `spec` in between).
    pub fn from_spec(
        opts: &CreateOptions,
        bundle: PathBuf,
        spec: Spec,
        raw: Value,
    ) -> Result<ContainerPlan, Error> {
        check_unsupported(&raw)?;
        let version = raw
            .get("ociVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major != Some(1) || version.split('.').count() < 2 {
            return Err(Error::invalid(
                "ociVersion",
                format!("{version:?} is not a 1.x runtime spec version this runtime implements"),
            ));
        }
        let annotations = raw.get("annotations").cloned().unwrap_or(Value::Null);
        let allow_lsm = annotations
            .get(ALLOW_UNENFORCED_LSM)
            .and_then(Value::as_str)
            == Some("true");
        if present(lookup(&raw, "linux.mountLabel")) && !allow_lsm {
            return Err(Error::unsupported(
                "linux.mountLabel",
                format!("this kernel has no SELinux; annotation {ALLOW_UNENFORCED_LSM}=\"true\" accepts running without"),
            ));
        }
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::invalid("root.path", "is missing"))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            bundle.join(root.path())
        };
        if !rootfs.is_dir() {
            return Err(Error::invalid(
                "root.path",
                format!("{} is not a directory", rootfs.display()),
            ));
        }
        let linux = spec.linux().clone().ok_or_else(|| {
            Error::invalid("linux", "is missing: this runtime runs Linux containers")
        })?;

        let mut join = Vec::new();
        let mut unshare = CloneFlags::empty();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            let flag = ns_flag(ns.typ());
            if unshare.contains(flag) || join.iter().any(|j: &JoinNamespace| j.flag == flag) {
                return Err(Error::invalid(
                    format!("linux.namespaces[{i}]"),
                    "a namespace type listed twice",
                ));
            }
            match ns.path() {
                Some(p) => {
                    if !p.exists() {
                        return Err(Error::invalid(
                            format!("linux.namespaces[{i}].path"),
                            format!("{} does not exist", p.display()),
                        ));
                    }
                    join.push(JoinNamespace {
                        flag,
                        path: p.clone(),
                    })
                }
                None => unshare |= flag,
            }
        }
        join.sort_by_key(|j| JOIN_ORDER.iter().position(|f| *f == j.flag));
        let new_userns = unshare.contains(CloneFlags::CLONE_NEWUSER);
        let id_maps = if new_userns {
            Some((
                id_map_text(
                    "linux.uidMappings",
                    linux.uid_mappings().as_deref().unwrap_or(&[]),
                )?,
                id_map_text(
                    "linux.gidMappings",
                    linux.gid_mappings().as_deref().unwrap_or(&[]),
                )?,
            ))
        } else {
            let mapped = present(lookup(&raw, "linux.uidMappings"))
                || present(lookup(&raw, "linux.gidMappings"));
            if mapped && join.iter().all(|j| j.flag != CloneFlags::CLONE_NEWUSER) {
                return Err(Error::invalid(
                    "linux.uidMappings",
                    "mappings need a user namespace in linux.namespaces",
                ));
            }
            None
        };
        let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
        let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
        let owns = |flag: CloneFlags| unshare.contains(flag) || join.iter().any(|j| j.flag == flag);
        if (hostname.is_some() || domainname.is_some()) && !owns(CloneFlags::CLONE_NEWUTS) {
            return Err(Error::invalid(
                "hostname",
                "setting a hostname needs a new UTS namespace in linux.namespaces",
            ));
        }
        let mounts = spec
            .mounts()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, m)| plan_mount(i, m, &bundle))
            .collect::<Result<Vec<_>, _>>()?;
        if !mounts.is_empty() && !owns(CloneFlags::CLONE_NEWNS) {
            return Err(Error::invalid(
                "linux.namespaces",
                "mounts need a new mount namespace",
            ));
        }
        let devices = linux
            .devices()
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, d)| {
                use nix::sys::stat::SFlag;
                use oci_spec::runtime::LinuxDeviceType as T;
                let kind = match d.typ() {
                    T::C | T::U => SFlag::S_IFCHR,
                    T::B => SFlag::S_IFBLK,
                    T::P => SFlag::S_IFIFO,
                    T::A => {
                        return Err(Error::invalid(
                            format!("linux.devices[{i}].type"),
                            "\"a\" is not a device type",
                        ))
                    }
                };
                let path = d.path().to_string_lossy().into_owned();
                if !path.starts_with("/dev/") {
                    return Err(Error::invalid(
                        format!("linux.devices[{i}].path"),
                        "must be under /dev",
                    ));
                }
                Ok(DevicePlan {
                    path,
                    kind,
                    major: d.major() as u64,
                    minor: d.minor() as u64,
                    mode: d.file_mode().unwrap_or(0o666),
                    uid: d.uid().unwrap_or(0),
                    gid: d.gid().unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sysctl = linux
            .sysctl()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                if k.contains('/') || k.contains("..") {
                    return Err(Error::invalid(
                        format!("linux.sysctl.{k}"),
                        "not a sysctl name",
                    ));
                }
                Ok((k, v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
            None | Some("") => None,
            Some(p) => Some(propagation_flags(p).ok_or_else(|| {
                Error::invalid(
                    "linux.rootfsPropagation",
                    format!("{p:?} is not a propagation mode"),
                )
            })?),
        };
        let personality = match linux.personality() {
            None => None,
            Some(p) => {
                if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                    return Err(Error::unsupported(
                        "linux.personality.flags",
                        "remove the flags",
                    ));
                }
                Some(match p.domain() {
                    oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
                    oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 8,
                })
            }
        };
        let cgroup = CgroupPlan::new(
            &opts.id,
            linux.cgroups_path().as_deref(),
            opts.systemd_cgroup,
            raw.pointer("/linux/resources"),
            &linux,
        )?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::invalid("process", "is missing: name the program to run"))?;
        let process = ProcessPlan::new(
            "process",
            process,
            raw.pointer("/linux/seccomp"),
            &annotations,
            opts.preserve_fds,
            new_userns,
        )?;
        if process.terminal && opts.console_socket.is_none() {
            return Err(Error::invalid(
                "process.terminal",
                "is true but no --console-socket was given to receive the pty",
            ));
        }
        if !process.terminal && opts.console_socket.is_some() {
            return Err(Error::invalid(
                "process.terminal",
                "is false but --console-socket was given",
            ));
        }
        Ok(ContainerPlan {
            id: opts.id.clone(),
            readonly_root: root.readonly().unwrap_or(false),
            bundle,
            masked_paths: linux.masked_paths().clone().unwrap_or_default(),
            readonly_paths: linux.readonly_paths().clone().unwrap_or_default(),
            spec,
            raw,
            rootfs,
            join,
            unshare,
            id_maps,
            mounts,
            devices,
            cgroup,
            process,
            hostname,
            domainname,
            sysctl,
            rootfs_propagation,
            no_pivot: opts.no_pivot,
            personality,
            hardening: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        dir
    }

    fn minimal() -> Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
            "someFutureField": {"x": 1}
        })
    }

    fn plan_of(config: Value) -> Result<ContainerPlan, Error> {
        let dir = bundle_with(config);
        ContainerPlan::new(&CreateOptions {
            id: "t1".into(),
            bundle: dir.path().into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_minimal_config_plans_and_unknown_fields_are_ignored() {
        let plan = plan_of(minimal()).unwrap();
        assert_eq!(plan.process.args, ["/bin/true"]);
        assert!(plan
            .unshare
            .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
    }

    #[test]
    fn an_unsupported_field_is_refused_by_its_json_path() {
        let mut c = minimal();
        c["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
        let err = plan_of(c).unwrap_err().to_string();
        assert!(
            err.starts_with("linux.intelRdt: not supported by watertight-runc"),
            "{err}"
        );
    }

    #[test]
    fn a_config_cannot_claim_the_runtime_set_annotations() {
        let mut c = minimal();
        c["annotations"] = serde_json::json!({
            "run.oci.watertight/isolation": "gvisor",
            "run.oci.watertight/isolation.reason": "trust me",
            "run.oci.watertight/floor.digest": "sha256:forged",
            "run.oci.watertight/floor.extra": "x",
            "io.kubernetes.cri.container-type": "container",
        });
        let dir = bundle_with(c);
        let floor = dir.path().join("runtime.toml");
        std::fs::write(&floor, "").unwrap();
        let (_, hardened, _) = load_hardened(dir.path(), Some(&floor)).unwrap();
        let notes = hardened["annotations"].as_object().unwrap();
        assert!(
            !notes.contains_key("run.oci.watertight/isolation"),
            "{notes:?}"
        );
        assert!(!notes.contains_key("run.oci.watertight/isolation.reason"));
        assert!(!notes.contains_key("run.oci.watertight/floor.extra"));
        assert_ne!(notes["run.oci.watertight/floor.digest"], "sha256:forged");
        assert_eq!(notes["io.kubernetes.cri.container-type"], "container");
    }

    #[test]
    fn lsm_labels_need_the_annotation() {
        let mut c = minimal();
        c["process"]["apparmorProfile"] = "docker-default".into();
        let err = plan_of(c.clone()).unwrap_err().to_string();
        assert!(
            err.starts_with("process.apparmorProfile: not supported"),
            "{err}"
        );
        c["annotations"] = serde_json::json!({ALLOW_UNENFORCED_LSM: "true"});
        plan_of(c).unwrap();
    }

    #[test]
    fn a_user_namespace_needs_mappings() {
        let mut c = minimal();
        c["linux"]["namespaces"] = serde_json::json!([{"type": "user"}, {"type": "mount"}]);
        let err = plan_of(c).unwrap_err().to_string();
        assert!(err.starts_with("linux.uidMappings:"), "{err}");
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!(validate_id("../x").is_err());
        assert!(validate_id("..").is_err());
        validate_id("abc-1.2_3+4").unwrap();
    }

    #[test]
    fn listener_path_is_read_only_with_notify_rules_and_must_name_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let profile = |path: &str, action: &str| {
            serde_json::json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": path,
                "listenerMetadata": "meta",
                "syscalls": [{"names": ["mkdir"], "action": action}]
            })
        };
        let compiled = |p: &Value| {
            let mut p = p.clone();
            p.as_object_mut().unwrap().remove("listenerPath");
            Profile::from_json(&p.to_string())
                .unwrap()
                .compile(&CompileOptions::default())
                .unwrap()
        };
        let sock_path = sock.to_str().unwrap();
        let p = profile(sock_path, "SCMP_ACT_NOTIFY");
        let got = SeccompListener::from_profile(Some(&p), Some(&compiled(&p))).unwrap();
        assert_eq!(
            got,
            Some(SeccompListener {
                path: sock.clone(),
                metadata: "meta".into()
            })
        );
        // Nothing notifies: no fd to send, the path is not looked at (runc's reading).
        let p = profile("relative", "SCMP_ACT_ERRNO");
        assert_eq!(
            SeccompListener::from_profile(Some(&p), Some(&compiled(&p))).unwrap(),
            None
        );
        let missing = dir.path().join("missing.sock");
        let not_a_socket = dir.path();
        for path in [
            "relative.sock",
            missing.to_str().unwrap(),
            not_a_socket.to_str().unwrap(),
        ] {
            let p = profile(path, "SCMP_ACT_NOTIFY");
            let err = SeccompListener::from_profile(Some(&p), Some(&compiled(&p)))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("linux.seccomp.listenerPath: ") && err.contains(path),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
}
