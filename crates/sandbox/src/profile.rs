//! The sandbox profile: a TOML file that says which layers apply and how. `default_profile()`
//! is the built-in one (`watertight profile show default` prints it as TOML), a profile file
//! sets only the keys it changes over it or over the file its `extends` names ([`layered`]),
//! and every CLI flag is an override on top of the result.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub mod layered;

use crate::error::Error;
use crate::size::Size;

/// One sandbox profile. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile's name (`default` for the built-in one): the workload id `watertight:NAME`
    /// in `watertight profile explain`.
    pub name: String,
    /// The sandbox's host name, set in its own uts namespace (only with `namespaces.uts`).
    pub hostname: String,
    /// `[namespaces]`: which optional namespaces the sandbox gets.
    pub namespaces: Namespaces,
    /// `[identity]`: the ids inside and the host uid range behind them.
    pub identity: Identity,
    /// `[root]`: what the sandbox's `/` is.
    pub root: Root,
    /// `[[bind]]`: extra host paths bound in, always nosuid and nodev.
    #[serde(default, rename = "bind")]
    pub binds: Vec<Bind>,
    /// `[tmp]`: the writable /tmp.
    pub tmp: Tmp,
    /// `[proc]`: the /proc masks.
    pub proc: Proc,
    /// `[dev]`: the devices shown in /dev and allowed by the device controller.
    pub dev: Dev,
    /// `[seccomp]`: the syscall filter and what a violation does.
    pub seccomp: Seccomp,
    /// `[limits]`: cgroup limits, time and output limits, rlimits.
    pub limits: Limits,
    /// `[env]`: the program's environment.
    pub env: Env,
    /// Absent in profiles written before it existed: the default then.
    #[serde(default)]
    pub terminal: Terminal,
    /// Absent in a profile file: the defaults.
    #[serde(default)]
    pub events: Events,
    /// `[bpf]`: BPF inside the sandbox. Absent in a profile file (and left out when written
    /// while off, so older profiles and their plan digests stay as they were): none.
    #[serde(default, skip_serializing_if = "Bpf::is_off")]
    pub bpf: Bpf,
    /// `isolation`: which boundary runs the program (docs/isolation.md). Absent in a profile
    /// file (and left out when written while it is the default, so older profiles and their
    /// plan digests stay as they were): `namespaces`.
    #[serde(default, skip_serializing_if = "Isolation::is_default")]
    pub isolation: Isolation,
}

/// The boundary between the program and the host kernel (`isolation`, `--isolation`).
/// Adding a tier is one variant here plus its arm in the CLI's dispatch
/// (`cli/src/commands/run.rs`, `run_isolated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// watertight's own layers on the shared host kernel (`contain.rs`).
    #[default]
    Namespaces,
    /// gVisor's user-space kernel (runsc) inside watertight's outer layers (crates/gvisor).
    Gvisor,
    /// A kernel of its own: a QEMU microvm guest running this sandbox inside (crates/vm).
    Vm,
}

impl Isolation {
    /// Every tier, in the order documented.
    pub const ALL: [Isolation; 3] = [Isolation::Namespaces, Isolation::Gvisor, Isolation::Vm];

    /// The word a profile and `--isolation` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Namespaces => "namespaces",
            Isolation::Gvisor => "gvisor",
            Isolation::Vm => "vm",
        }
    }

    /// The built-in tier (left out of a written profile).
    pub fn is_default(&self) -> bool {
        *self == Isolation::default()
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Isolation, String> {
        Isolation::ALL
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Isolation::ALL.iter().map(|i| i.as_str()).collect();
                format!("isolation {s:?}: expected one of {}", known.join(", "))
            })
    }
}

/// BPF inside the sandbox (docs/bpf-observe.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bpf {
    /// `--bpf-observe`: a bpffs at /sys/fs/bpf whose BPF token delegates only observe-only
    /// program types (tracepoint, raw_tracepoint), CAP_BPF and CAP_PERFMON in the sandbox's own
    /// user namespace, and bpf() allowed by seccomp for the commands an observer needs, each
    /// BPF_PROG_LOAD vetted and loaded by the supervisor (`bpf_load.rs`). The program can then
    /// watch every process on the host: `watertight audit` reports it.
    #[serde(default)]
    pub observe: bool,
}

impl Bpf {
    /// No BPF at all (the default).
    pub fn is_off(&self) -> bool {
        !self.observe
    }
}

/// Which namespaces the sandbox gets. user, pid and mount cannot be turned off: the other layers
/// depend on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    /// A network namespace of its own: only loopback (plus a guarded port with `--net bridge`);
    /// false shares the host's network.
    pub net: bool,
    /// A uts namespace of its own, so `hostname` can be set without touching the host's.
    pub uts: bool,
    /// An ipc namespace of its own: System V IPC and POSIX message queues not shared with the
    /// host.
    pub ipc: bool,
    /// A cgroup namespace of its own, entered once the sandbox is in its cgroup, so that cgroup is
    /// its root and the host's hierarchy stays out of view.
    pub cgroup: bool,
}

/// Who the program runs as inside, and which host ids back the sandboxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// uid and gid inside the sandbox.
    pub uid: u32,
    /// gid inside the sandbox (mapped like `uid` to the slot's host gid); no supplementary groups.
    pub gid: u32,
    /// First host uid/gid of the range sandboxes are mapped to; sandbox slot N maps to base+N,
    /// so two concurrent sandboxes never share a host uid.
    pub host_id_base: u32,
    /// How many slots (concurrent sandboxes) the range has.
    pub slots: u32,
}

/// The sandbox's root file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// `host`: the host's own directories in `host_dirs`, read-only. Otherwise the path of a
    /// directory to use as the root (read-only).
    pub source: String,
    /// With `source = "host"`: the host directories shown (symlinks such as /bin -> usr/bin on
    /// merged-/usr systems are reproduced as symlinks; missing ones are skipped).
    pub host_dirs: Vec<PathBuf>,
    /// Host files and directories hidden inside the sandbox (an empty file or directory is
    /// mounted over them).
    pub hide: Vec<PathBuf>,
    /// true: the root is an overlay whose upper layer is a throwaway tmpfs, so writes anywhere
    /// succeed and vanish with the sandbox; false: the root is read-only and only /tmp is writable.
    pub writable: bool,
    /// `--bind-cwd`: show the caller's working directory read-only at the same path and start
    /// there (not when it is / or already inside the root). Off in the built-in profile: the
    /// program starts in /tmp, or in the box with `--box`.
    pub bind_cwd: bool,
    /// Unix sockets found under directory bind sources (and the bound working directory):
    /// `mask` (the default: each one hidden, so no host service is reachable through a bind)
    /// or `allow`.
    #[serde(default)]
    pub host_sockets: HostSockets,
}

/// What happens to host unix sockets under bound directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostSockets {
    /// Each socket the sandbox could reach is masked; a tree too large to check is refused.
    #[default]
    Mask,
    /// Bound as they are (connect() reaches the host service).
    Allow,
}

/// An extra bind mount from the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    /// Host path to bind.
    pub source: PathBuf,
    /// Absolute path inside the sandbox where `source` appears.
    pub target: PathBuf,
    /// Read-only bind (the default: absent means true); false lets the sandbox write to the host
    /// path.
    #[serde(default = "yes")]
    pub read_only: bool,
}

fn yes() -> bool {
    true
}

/// The writable scratch space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tmp {
    /// Size of the tmpfs at /tmp (and of the overlay's upper layer when the root is writable).
    pub size: Size,
}

/// /proc of the sandbox's own pid namespace, with the kernel's dangerous files masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proc {
    /// Hidden (an empty file or directory over them), as OCI `maskedPaths`.
    pub masked: Vec<PathBuf>,
    /// Read-only, as OCI `readonlyPaths`.
    pub read_only: Vec<PathBuf>,
}

/// The minimal /dev.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dev {
    /// Character devices from the host shown in /dev, by name: null, zero, full, random,
    /// urandom, tty. /dev/pts (a private instance), /dev/ptmx and /dev/shm are always there.
    pub devices: Vec<String>,
    /// Size of the tmpfs at /dev/shm (default 16M).
    pub shm_size: Size,
    /// Pseudo-terminals the sandbox may hold at once (its devpts `max=`; the kernel's count is
    /// host-wide).
    #[serde(default = "default_max_ptys")]
    pub max_ptys: u32,
}

fn default_max_ptys() -> u32 {
    DEFAULT_MAX_PTYS
}

/// The default profile's pty limit: enough for `script`, expect and test harnesses.
pub const DEFAULT_MAX_PTYS: u32 = 64;

/// The seccomp layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seccomp {
    /// `default` for watertight's built-in allowlist, or the path of a Docker/OCI seccomp JSON.
    pub profile: String,
    /// What a call in the profile's violation class does: `deny` (fails with EPERM, the program
    /// goes on), `kill` (the sandbox is killed, status SV) or `forensic` (frozen, evidence
    /// captured into a signed bundle, then killed, status SV). Each one is an event either way.
    pub on_violation: OnViolation,
    /// Log denials to the kernel audit log (SECCOMP_FILTER_FLAG_LOG).
    pub log: bool,
    /// With `deny`: the sandbox is killed (status SV) at this many violations, so a flood of
    /// them cannot keep the supervisor busy for as long as the program likes. 0: no limit.
    /// Absent in a profile file: [`DEFAULT_MAX_VIOLATIONS`].
    #[serde(default = "default_max_violations")]
    pub max_violations: u64,
}

/// Far more than a program that probes for features makes, far fewer than a flood.
pub const DEFAULT_MAX_VIOLATIONS: u64 = 1000;

fn default_max_violations() -> u64 {
    DEFAULT_MAX_VIOLATIONS
}

/// The audit trail (`--events FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// Bytes one run writes to the events file at most (the last event then says it was
    /// truncated); at least 4K. Repeats are counted rather than written, so a run reaches this
    /// only with many distinct events.
    #[serde(default = "default_events_limit")]
    pub limit: Size,
}

fn default_events_limit() -> Size {
    Size::mib(16)
}

impl Default for Events {
    fn default() -> Events {
        Events {
            limit: default_events_limit(),
        }
    }
}

/// What a call in the seccomp profile's violation class does (`seccomp.on_violation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnViolation {
    /// The call fails with EPERM and the program goes on; killed (SV) at `max_violations`.
    Deny,
    /// The sandbox is killed, status SV.
    Kill,
    /// The sandbox is frozen, evidence captured into a signed bundle, then killed (SV).
    Forensic,
}

/// Resource limits. `None` is no limit of that kind; in a profile file `"none"` says so (an
/// absent key is inherited from the base profile, see [`layered`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory of the whole sandbox (cgroup), swap not allowed.
    #[serde(default, with = "none_or")]
    pub memory: Option<Size>,
    /// Tasks in the whole sandbox (cgroup pids.max).
    #[serde(default, with = "none_or")]
    pub pids: Option<u64>,
    /// CPU bandwidth in cores (cgroup CPU quota), e.g. 1.0.
    #[serde(default, with = "none_or")]
    pub cpus: Option<f64>,
    /// CPU time of the whole sandbox, seconds (verdict TO).
    #[serde(default, with = "none_or")]
    pub cpu_time: Option<f64>,
    /// Wall-clock time, seconds (verdict TO).
    #[serde(default, with = "none_or")]
    pub wall_time: Option<f64>,
    /// Bytes the program may write to stdout and stderr together (verdict OL).
    #[serde(default, with = "none_or")]
    pub output: Option<Size>,
    /// RLIMIT_NOFILE.
    #[serde(default, with = "none_or")]
    pub open_files: Option<u64>,
    /// RLIMIT_FSIZE: the largest file the program may write.
    #[serde(default, with = "none_or")]
    pub file_size: Option<Size>,
    /// RLIMIT_STACK.
    #[serde(default, with = "none_or")]
    pub stack: Option<Size>,
}

/// The word a profile file gives a limit for "no limit": TOML has no null, and an absent key
/// is inherited from the base profile.
pub const NO_LIMIT: &str = "none";

/// `Option<T>` as a profile writes a limit: the value, or [`NO_LIMIT`] for `None`. JSON (the
/// plan digest's encoding) gets the same string; `plan::digest` turns it back into null.
mod none_or {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => v.serialize(s),
            None => s.serialize_str(super::NO_LIMIT),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: serde::de::DeserializeOwned,
        D: Deserializer<'de>,
    {
        let value = toml::Value::deserialize(d)?;
        if value.as_str() == Some(super::NO_LIMIT) {
            return Ok(None);
        }
        let was_text = value.is_str();
        T::deserialize(value).map(Some).map_err(|e| {
            let hint = if was_text {
                format!(" (or \"{}\" for no limit)", super::NO_LIMIT)
            } else {
                String::new()
            };
            D::Error::custom(format!("{}{hint}", e.message()))
        })
    }
}

/// The program's environment: nothing from the caller except what is listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Env {
    /// Variables set inside the sandbox.
    pub set: std::collections::BTreeMap<String, String>,
    /// Names of caller variables passed through when set (e.g. TERM).
    pub pass: Vec<String>,
}

/// What the program's terminal may do to the caller's (when the caller has one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terminal {
    /// `strip` (OSC, DCS, APC, PM, SOS strings, cursor and mode sequences, C1 controls removed;
    /// plain SGR colours kept) or `pass` (every byte as the program wrote it).
    pub escapes: TerminalEscapes,
}

impl Default for Terminal {
    fn default() -> Terminal {
        Terminal {
            escapes: TerminalEscapes::Strip,
        }
    }
}

/// What reaches the caller's terminal of the program's escape sequences (`terminal.escapes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalEscapes {
    /// Only text and plain SGR colours; OSC, DCS, APC, PM, SOS strings, cursor and mode
    /// sequences and C1 controls removed (the default).
    Strip,
    /// Every byte as the program wrote it.
    Pass,
}

impl Profile {
    /// Parses a profile from TOML text as if it were the file `origin`: layered over the
    /// built-in profile or the file its `extends` names (relative to `origin`'s directory). The
    /// error names the file and the offending key.
    pub fn from_toml(text: &str, origin: &str) -> Result<Profile, Error> {
        layered::from_text(text.to_string(), Path::new(origin)).map(|l| l.profile)
    }

    /// Reads the profile file at `path`, layered over its base (see [`layered`]); errors name
    /// the file that is wrong and the key.
    pub fn load(path: &Path) -> Result<Profile, Error> {
        layered::load(path).map(|l| l.profile)
    }

    /// [`Profile::load`], also returning the chain of files the profile came from.
    pub fn load_layered(path: &Path) -> Result<layered::Layered, Error> {
        layered::load(path)
    }

    /// The profile as a complete TOML table: every key, a limit that is not set as
    /// [`NO_LIMIT`]. Deserializing it gives the profile back. For the built-in profile (the
    /// merge's base): a path that is not UTF-8, which only a flag can give, would not serialize.
    pub(crate) fn to_table(&self) -> toml::Table {
        toml::Table::try_from(self).expect("a profile always serializes")
    }

    /// The profile as complete TOML (every key, so it loads back to the same profile whatever
    /// the built-in one becomes), headed by a comment saying where its keys are documented
    /// (what `watertight profile show` prints).
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("a profile always serializes");
        format!("{}\n{body}", toml_header())
    }

    /// Checks what serde cannot: ranges and combinations. Each error names the profile key,
    /// the `watertight run` flag that sets it when there is one (see [`key`]), and what it
    /// accepts.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.identity;
        if id.slots == 0 {
            return Err(format!("{} must be at least 1", key("identity.slots")));
        }
        if (id.host_id_base as u64) + (id.slots as u64) > u32::MAX as u64 - 1 {
            return Err(format!(
                "{} + {} exceeds the uid range (at most 4294967294 in all)",
                key("identity.host_id_base"),
                key("identity.slots")
            ));
        }
        if id.host_id_base == 0 {
            return Err(format!(
                "{} must not be 0: the sandbox would map to host root",
                key("identity.host_id_base")
            ));
        }
        // (uid_t)-1 means "no change" to the kernel: it cannot be mapped.
        for (name, v) in [("identity.uid", id.uid), ("identity.gid", id.gid)] {
            if v == u32::MAX {
                return Err(format!("{} {v}: must be 0..=4294967294", key(name)));
            }
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return Err(format!("{} must be 1 to 64 bytes", key("hostname")));
        }
        for b in &self.binds {
            if !b.target.is_absolute() {
                return Err(format!(
                    "{} target {} must be an absolute path",
                    key("bind"),
                    b.target.display()
                ));
            }
        }
        for d in &self.dev.devices {
            if crate::layers::dev::device_by_name(d).is_none() {
                return Err(format!(
                    "{}: unknown device {d:?} (known: null, zero, full, random, urandom, tty)",
                    key("dev.devices")
                ));
            }
        }
        if let Some(c) = self.limits.cpus {
            if !(c > 0.0 && c.is_finite()) {
                return Err(format!(
                    "{} {c}: must be a positive number of cores, e.g. 0.5 or 2",
                    key("limits.cpus")
                ));
            }
        }
        for (name, v) in [
            ("limits.cpu_time", self.limits.cpu_time),
            ("limits.wall_time", self.limits.wall_time),
        ] {
            if let Some(v) = v {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(format!(
                        "{} {v}: must be a positive number of seconds",
                        key(name)
                    ));
                }
            }
        }
        if self.tmp.size.bytes() == 0 {
            return Err(format!("{} must be larger than 0", key("tmp.size")));
        }
        if self.events.limit.bytes() < crate::events::MIN_FILE_LIMIT {
            return Err(format!(
                "{} {} is too small: it must be at least 4K",
                key("events.limit"),
                self.events.limit
            ));
        }
        Ok(())
    }
}

/// The comment [`Profile::to_toml`] starts with: where the keys are documented, layering, the
/// size units ([`crate::size::UNITS_TEXT`]) and [`NO_LIMIT`].
pub fn toml_header() -> String {
    format!(
        "# watertight sandbox profile: every key is in the README (\"Profile format\"), layering in\n\
         # docs/profile.md. A profile file may set only the keys it changes: the rest comes from\n\
         # the built-in profile, or from the file a top-level `extends = \"FILE\"` names. Sizes\n\
         # take {units} suffixes (powers of 1024); a limit of \"{none}\" is no limit.\n",
        units = crate::size::UNITS_TEXT,
        none = NO_LIMIT,
    )
}

/// The `watertight run` flag that sets each profile key that has one.
const FLAGS: [(&str, &str); 15] = [
    ("identity.uid", "--uid"),
    ("identity.gid", "--gid"),
    ("limits.cpus", "--cpus"),
    ("limits.cpu_time", "--time-limit"),
    ("limits.wall_time", "--wall-time-limit"),
    ("root.bind_cwd", "--bind-cwd"),
    ("limits.memory", "--memory-limit"),
    ("limits.pids", "--pids-limit"),
    ("limits.output", "--output-limit"),
    ("events.limit", "--events-limit"),
    ("seccomp.max_violations", "--max-violations"),
    ("seccomp.on_violation", "--on-violation"),
    ("bind", "--bind/--bind-ro"),
    ("bpf.observe", "--bpf-observe"),
    ("isolation", "--isolation"),
];

/// A profile key as errors name it: `limits.cpus (--cpus)`, or the key alone.
pub fn key(name: &str) -> String {
    match FLAGS.iter().find(|(k, _)| *k == name) {
        Some((_, flag)) => format!("{name} ({flag})"),
        None => name.to_string(),
    }
}

/// The default profile's wall-time limit, seconds: short, as a grader wants it (a program that
/// sleeps or blocks ends TO in 10 s, not nsjail's 600 s); `--wall-time-limit none` (or a
/// profile's `wall_time = "none"`) for no limit, `--time-limit T` sets it to 2T+1.
pub const DEFAULT_WALL_TIME_S: f64 = 10.0;

/// The built-in default profile: the host's own read-only /usr, /bin, /lib*, /etc (secrets
/// hidden), a private writable /tmp, every namespace, a minimal /dev, watertight's seccomp
/// allowlist, and limits fit for running one untrusted program (an autograder's submission).
pub fn default_profile() -> Profile {
    let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
    Profile {
        name: "default".into(),
        hostname: "watertight".into(),
        namespaces: Namespaces {
            net: true,
            uts: true,
            ipc: true,
            cgroup: true,
        },
        identity: Identity {
            uid: 0,
            gid: 0,
            // 0x70000000: far above the ranges distributions hand out in /etc/subuid.
            host_id_base: 0x7000_0000,
            slots: 65536,
        },
        root: Root {
            source: "host".into(),
            host_dirs: paths(&[
                "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
            ]),
            hide: paths(&[
                "/etc/shadow",
                "/etc/shadow-",
                "/etc/gshadow",
                "/etc/gshadow-",
                "/etc/sudoers",
                "/etc/sudoers.d",
                "/etc/ssh",
                "/etc/ssl/private",
                "/etc/security/opasswd",
                "/etc/machine-id",
            ]),
            writable: false,
            // The caller's directory (a grader's expected output) is not the program's to read:
            // `--bind-cwd` shows it, `--box DIR` gives a directory of its own.
            bind_cwd: false,
            host_sockets: HostSockets::Mask,
        },
        binds: Vec::new(),
        tmp: Tmp {
            size: Size::mib(64),
        },
        proc: Proc {
            // The OCI runtime-spec defaults plus the kernel-log and memory views.
            masked: paths(&[
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/proc/kmsg",
                "/proc/kallsyms",
                "/proc/kpagecount",
                "/proc/kpageflags",
                "/proc/kpagecgroup",
                "/proc/vmallocinfo",
                "/proc/sysvipc",
                // Host-wide counters and identifiers: nothing a program needs, and each one is
                // a covert channel between sandboxes or a fingerprint of the host (files only
                // root can read anyway, such as pagetypeinfo, need no mask). Each file mask is
                // a mount on every start: the busiest channels only (docs/seccomp.md lists
                // the rest).
                "/proc/interrupts",
                "/proc/zoneinfo",
                "/proc/iomem",
                "/proc/diskstats",
                "/proc/pressure",
                "/proc/locks",
                "/proc/vmstat",
                "/proc/sys/kernel/random/boot_id",
                "/proc/sys/fs/aio-nr",
            ]),
            read_only: paths(&[
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]),
        },
        dev: Dev {
            devices: ["null", "zero", "full", "random", "urandom", "tty"]
                .map(String::from)
                .to_vec(),
            shm_size: Size::mib(16),
            max_ptys: DEFAULT_MAX_PTYS,
        },
        seccomp: Seccomp {
            profile: "default".into(),
            on_violation: OnViolation::Deny,
            log: true,
            max_violations: DEFAULT_MAX_VIOLATIONS,
        },
        limits: Limits {
            memory: Some(Size::mib(512)),
            pids: Some(128),
            cpus: None,
            cpu_time: None,
            // Every run ends: a sandbox that only sleeps or blocks still holds a slot, a cgroup,
            // a supervisor and whatever memory it took. A profile sets `wall_time = "none"` for
            // no limit.
            wall_time: Some(DEFAULT_WALL_TIME_S),
            output: None,
            open_files: Some(1024),
            file_size: Some(Size::mib(64)),
            stack: None,
        },
        env: Env {
            set: [
                ("PATH", "/usr/local/bin:/usr/bin:/bin"),
                ("HOME", "/tmp"),
                ("LANG", "C.UTF-8"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            pass: vec!["TERM".into()],
        },
        terminal: Terminal::default(),
        events: Events::default(),
        bpf: Bpf::default(),
        isolation: Isolation::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_toml() {
        let p = default_profile();
        let text = p.to_toml();
        let back = Profile::from_toml(&text, "test").unwrap();
        assert_eq!(p, back);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = default_profile()
            .to_toml()
            .replace("hostname =", "hostnam =");
        let e = Profile::from_toml(&text, "p.toml").unwrap_err().to_string();
        assert!(e.contains("p.toml") && e.contains("hostnam"), "{e}");
    }

    #[test]
    fn bpf_observe_is_off_by_default_left_out_when_off_and_read_when_on() {
        let d = default_profile();
        assert!(d.bpf.is_off());
        assert!(!d.to_toml().contains("[bpf]"), "{}", d.to_toml());
        let p = Profile::from_toml("[bpf]\nobserve = true\n", "observer.toml").unwrap();
        assert!(p.bpf.observe);
        assert!(p.to_toml().contains("[bpf]\nobserve = true"));
        let e = Profile::from_toml("[bpf]\nobserv = true\n", "typo.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo.toml") && e.contains("observ"), "{e}");
    }

    #[test]
    fn isolation_defaults_to_namespaces_is_left_out_then_and_is_parsed_strictly() {
        let d = default_profile();
        assert_eq!(d.isolation, Isolation::Namespaces);
        assert!(!d.to_toml().contains("isolation"), "{}", d.to_toml());
        let p = Profile::from_toml("isolation = \"gvisor\"\n", "g.toml").unwrap();
        assert_eq!(p.isolation, Isolation::Gvisor);
        assert!(p.to_toml().contains("isolation = \"gvisor\""));
        let e = Profile::from_toml("isolation = \"gVisor\"\n", "typo.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo.toml") && e.contains("gVisor"), "{e}");
        assert_eq!("gvisor".parse::<Isolation>(), Ok(Isolation::Gvisor));
        assert!("kvm"
            .parse::<Isolation>()
            .unwrap_err()
            .contains("namespaces, gvisor"));
    }

    #[test]
    fn a_partial_text_layers_over_the_default() {
        let p = Profile::from_toml("[limits]\npids = 3\n", "dir/partial.toml").unwrap();
        let want = Profile {
            name: "partial".into(),
            limits: Limits {
                pids: Some(3),
                ..default_profile().limits
            },
            ..default_profile()
        };
        assert_eq!(p, want);
    }

    /// The units a text names: the `/`-separated word right before ` suffix`.
    fn units_named_in(text: &str) -> Vec<String> {
        let before = &text[..text
            .find(" suffix")
            .expect("a text naming the size suffixes")];
        let word = before.rsplit([' ', '\n', '#']).next().unwrap();
        word.split('/').map(str::to_string).collect()
    }

    #[test]
    fn the_profile_comment_names_exactly_the_size_units_size_parses() {
        // Every letter the parser takes as a multiple, smallest first.
        let mut parsed: Vec<(u64, String)> = ('A'..='Z')
            .map(String::from)
            .filter_map(|u| Some((format!("1{u}").parse::<Size>().ok()?.bytes(), u)))
            .filter(|(bytes, _)| *bytes > 1)
            .collect();
        parsed.sort();
        let parsed: Vec<String> = parsed.into_iter().map(|(_, u)| u).collect();
        let named = units_named_in(&default_profile().to_toml());
        assert_eq!(named, parsed);
        assert_eq!(named, ["K", "M", "G", "T"]);
        // And the size error message.
        let e = "2X".parse::<Size>().unwrap_err();
        assert_eq!(units_named_in(&e), parsed, "{e}");
    }

    #[test]
    fn every_limit_is_written_even_when_not_set() {
        let mut p = default_profile();
        p.limits = Limits {
            memory: None,
            pids: None,
            cpus: None,
            cpu_time: None,
            wall_time: None,
            output: None,
            open_files: None,
            file_size: None,
            stack: None,
        };
        let text = p.to_toml();
        assert_eq!(text.matches("= \"none\"").count(), 9, "{text}");
        assert_eq!(Profile::from_toml(&text, "default.toml").unwrap(), p);
        let table = p.to_table();
        assert_eq!(table["limits"].as_table().unwrap().len(), 9);
    }

    #[test]
    fn default_profile_ends_every_run() {
        assert_eq!(
            default_profile().limits.wall_time,
            Some(DEFAULT_WALL_TIME_S)
        );
    }

    #[test]
    fn zero_host_base_is_refused() {
        let mut p = default_profile();
        p.identity.host_id_base = 0;
        assert!(p.validate().unwrap_err().contains("host root"));
    }

    #[test]
    fn old_profiles_without_max_ptys_still_load() {
        let text = default_profile().to_toml().replace("max_ptys = 64\n", "");
        assert!(!text.contains("max_ptys"));
        let p = Profile::from_toml(&text, "old.toml").unwrap();
        assert_eq!(p.dev.max_ptys, DEFAULT_MAX_PTYS);
    }

    #[test]
    fn a_profile_without_terminal_gets_the_stripping_default() {
        let text = default_profile().to_toml();
        let cut = text.split("[terminal]").next().unwrap();
        let p = Profile::from_toml(cut, "old.toml").unwrap();
        assert_eq!(p.terminal.escapes, TerminalEscapes::Strip);
    }

    #[test]
    fn event_keys_default_when_absent_and_small_limits_are_refused() {
        let text = default_profile().to_toml();
        assert!(text.contains("max_violations = 1000") && text.contains("[events]"));
        let older = text
            .replace("max_violations = 1000\n", "")
            .replace("[events]\nlimit = \"16M\"\n", "");
        assert!(!older.contains("max_violations") && !older.contains("[events]"));
        assert_eq!(
            Profile::from_toml(&older, "old.toml").unwrap(),
            default_profile()
        );
        let mut p = default_profile();
        p.events.limit = Size::bytes_exact(100);
        assert!(p.validate().unwrap_err().contains("events.limit"));
    }

    #[test]
    fn unknown_device_is_refused() {
        let mut p = default_profile();
        p.dev.devices.push("sda".into());
        assert!(p.validate().unwrap_err().contains("sda"));
    }
}
