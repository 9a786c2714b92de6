//! `runtime.toml`: the schema (every key optional; an absent key is the built-in floor's value),
//! strict parsing (an unknown key is an error naming its line) and checking, resolved into
//! [`Settings`], the floor as `harden` applies it and `digest` hashes it.
//!
//! Every key is documented in docs/runtime-floor.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Capability;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Where the runtime reads its floor when `--config` does not name another file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/watertight/runtime.toml";

/// The `version` of the built-in floor (no runtime.toml).
pub const BUILT_IN_VERSION: &str = "built-in";

/// Where the audit trail goes by default: one `<container id>.jsonl` per container.
pub const DEFAULT_AUDIT_DIR: &str = "/var/log/watertight/containers";

/// The default bound of one container's audit trail, in bytes.
pub const DEFAULT_AUDIT_MAX_BYTES: u64 = 8 << 20;

/// Docker's default capability set (moby `oci/caps/defaults.go`), also containerd's and
/// CRI-O's: the built-in ceiling.
pub const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// What the floor masks, whatever runtime.toml says (runc's and the OCI runtime-spec's
/// defaults, with containerd's and moby's `/sys/devices/virtual/powercap`).
pub const FLOOR_MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// What the floor makes read-only, whatever runtime.toml says: the OCI runtimes' default
/// read-only /proc paths, the same list the auditor checks every workload against.
pub const FLOOR_READONLY_PATHS: [&str; 5] = watertight_model::PROC_READONLY_PATHS;

/// Violation-class syscalls that seccomp matches by argument: the floor refuses them through
/// their own keys (`namespaces`, `packet_sockets`), never outright (that would refuse every
/// fork and every socket).
const BY_ARGUMENT: [(&str, &str); 3] = [
    ("clone", "namespaces = true (clone with a CLONE_NEW* flag)"),
    ("clone3", "namespaces = true (clone3 answers ENOSYS)"),
    ("socket", "packet_sockets = \"refuse\" (socket(AF_PACKET))"),
];

/// `no_new_privs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoNewPrivs {
    /// Set `process.noNewPrivileges` on every container (the default).
    Force,
    /// Leave it as the config says (runc's behaviour).
    AsConfigured,
}

/// `on_violation`: what happens when a container makes a violation-class syscall the floor
/// refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnViolation {
    /// The call fails with EPERM and is recorded in the audit trail (the default; the kernel
    /// alone enforces it).
    Deny,
    /// The call fails and the runtime's monitor kills the container.
    Kill,
    /// The call is held, the monitor freezes the container and captures evidence, then kills it.
    Forensic,
}

impl OnViolation {
    /// Whether the floor's filter hands violations to a user-notification listener (the
    /// runtime's monitor): `kill` and `forensic` must see them as they happen. Without a
    /// listener the kernel answers a notified call with ENOSYS, so a dead monitor still
    /// leaves the call refused.
    pub fn needs_listener(self) -> bool {
        !matches!(self, OnViolation::Deny)
    }

    /// The runtime.toml spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnViolation::Deny => "deny",
            OnViolation::Kill => "kill",
            OnViolation::Forensic => "forensic",
        }
    }
}

/// `privileged`: what to do with a privileged config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivilegedPolicy {
    /// Refuse it (the default).
    Refuse,
    /// Run it as configured when its `run.oci.watertight/privileged` annotation gives a reason.
    AllowAnnotated,
}

/// `seccomp.packet_sockets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PacketSockets {
    /// socket(AF_PACKET) is a violation (the default, as in `watertight run`).
    Refuse,
    /// Left to the container's own profile and capabilities.
    Allow,
}

/// The file as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: Option<String>,
    no_new_privs: Option<NoNewPrivs>,
    on_violation: Option<OnViolation>,
    privileged: Option<PrivilegedPolicy>,
    seccomp: Option<SeccompFile>,
    devices: Option<DevicesFile>,
    paths: Option<PathsFile>,
    capabilities: Option<CapabilitiesFile>,
    audit_trail: Option<AuditTrailFile>,
    evidence: Option<EvidenceFile>,
    isolation: Option<IsolationFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IsolationFile {
    policy: Option<PathBuf>,
    runsc: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeccompFile {
    enabled: Option<bool>,
    syscalls: Option<Vec<String>>,
    namespaces: Option<bool>,
    packet_sockets: Option<PacketSockets>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevicesFile {
    allow: Option<Vec<AllowedDevice>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathsFile {
    masked: Option<Vec<String>>,
    readonly: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilitiesFile {
    ceiling: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditTrailFile {
    enabled: Option<bool>,
    dir: Option<PathBuf>,
    max_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceFile {
    dir: Option<PathBuf>,
    key: Option<PathBuf>,
    max_bytes: Option<u64>,
}

/// `[isolation]`: containers run under gVisor (runsc) when the node kernel's CVE exposure is over
/// the policy's threshold (docs/runtime-floor.md, "Choice by risk").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IsolationSettings {
    /// The isolation policy file (the format of `batch --isolation-policy`).
    pub policy: PathBuf,
    /// runsc's path; None: `WATERTIGHT_RUNSC`, else PATH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runsc: Option<PathBuf>,
}

/// Where `on_violation = "forensic"` puts its evidence (`[evidence]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Bundles go in `<dir>/<container id>-<UTC time>/`.
    pub dir: PathBuf,
    /// The host's ed25519 key that signs them (created if missing), as `watertight run`'s.
    pub key: PathBuf,
    /// The byte budget of one bundle: what does not fit is cut and the bundle says so.
    pub max_bytes: u64,
}

/// The default budget of one container's evidence bundle, in bytes.
pub const DEFAULT_EVIDENCE_MAX_BYTES: u64 = 256 << 20;

/// A device a container may have beyond the OCI defaults (`[[devices.allow]]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedDevice {
    /// Its path in the container, e.g. `/dev/fuse`.
    pub path: String,
    /// `c` (character) or `b` (block).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its major number.
    pub major: i64,
    /// Its minor number.
    pub minor: i64,
    /// The cgroup access it may have (`r`, `w`, `m` in any combination); default `rwm`.
    #[serde(default = "rwm")]
    pub access: String,
}

fn rwm() -> String {
    "rwm".into()
}

/// The floor's seccomp settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompSettings {
    /// Whether the floor installs its filter at all.
    pub enabled: bool,
    /// Syscalls refused outright, sorted.
    pub syscalls: BTreeSet<String>,
    /// clone/unshare with any CLONE_NEW* flag refused, clone3 ENOSYS.
    pub namespaces: bool,
    /// socket(AF_PACKET).
    pub packet_sockets: PacketSockets,
}

/// The audit trail's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditTrail {
    /// Directory of the per-container files.
    pub dir: PathBuf,
    /// The bound of one container's file, in bytes: once reached, the runtime stops appending
    /// and writes one final `truncated` line.
    pub max_bytes: u64,
}

impl AuditTrail {
    /// The JSON Lines file of container `container_id`.
    pub fn path_for(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{container_id}.jsonl"))
    }
}

/// The floor, resolved: built-in values where runtime.toml says nothing. Serialized (with the
/// schema number) it is the canonical form the digest hashes, so key order, comments and
/// spelling a default out do not change the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Free text naming this floor (not part of the digest: the policy is).
    #[serde(skip)]
    pub version: String,
    /// `no_new_privs`.
    pub no_new_privs: NoNewPrivs,
    /// `on_violation`.
    pub on_violation: OnViolation,
    /// `privileged`.
    pub privileged: PrivilegedPolicy,
    /// `[seccomp]`.
    pub seccomp: SeccompSettings,
    /// `[[devices.allow]]`, sorted.
    pub allowed_devices: Vec<AllowedDevice>,
    /// Masked paths: the built-in ones and `paths.masked`, sorted.
    pub masked_paths: BTreeSet<String>,
    /// Read-only paths: the built-in ones and `paths.readonly`, sorted.
    pub readonly_paths: BTreeSet<String>,
    /// The capability ceiling (`CAP_*`), sorted.
    pub capability_ceiling: BTreeSet<String>,
    /// `[audit_trail]`; `None` when disabled.
    pub audit_trail: Option<AuditTrail>,
    /// `[evidence]`: used by `on_violation = "forensic"`.
    pub evidence: Evidence,
    /// `[isolation]`; None (and absent from the digest's input, so older floors keep their
    /// digest): every container on namespaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationSettings>,
}

impl Settings {
    /// The built-in floor.
    pub fn built_in() -> Settings {
        Settings {
            version: BUILT_IN_VERSION.into(),
            no_new_privs: NoNewPrivs::Force,
            on_violation: OnViolation::Deny,
            privileged: PrivilegedPolicy::Refuse,
            seccomp: SeccompSettings {
                enabled: true,
                syscalls: default_syscalls(),
                namespaces: true,
                packet_sockets: PacketSockets::Refuse,
            },
            allowed_devices: Vec::new(),
            masked_paths: FLOOR_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: FLOOR_READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
            capability_ceiling: DOCKER_DEFAULT_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            audit_trail: Some(AuditTrail {
                dir: PathBuf::from(DEFAULT_AUDIT_DIR),
                max_bytes: DEFAULT_AUDIT_MAX_BYTES,
            }),
            evidence: Evidence {
                dir: PathBuf::from(watertight_forensics::DEFAULT_EVIDENCE_DIR),
                key: PathBuf::from(watertight_forensics::DEFAULT_KEY_PATH),
                max_bytes: DEFAULT_EVIDENCE_MAX_BYTES,
            },
            isolation: None,
        }
    }
}

/// watertight's violation-class syscalls, without the ones matched by argument.
fn default_syscalls() -> BTreeSet<String> {
    watertight_seccomp::VIOLATION_SYSCALLS
        .iter()
        .filter(|s| !BY_ARGUMENT.iter().any(|(n, _)| n == *s))
        .map(|s| s.to_string())
        .collect()
}

/// Parses and checks the text of runtime.toml at `path`.
pub fn parse(path: &Path, text: &str) -> Result<Settings, Error> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Error::Parse {
        path: path.into(),
        line: e.span().map_or(0, |s| line_of(text, s.start)),
        key: "(syntax)".into(),
        message: format!("{} (runtime.toml must be TOML)", e.message().trim_end()),
    })?;
    let file: File = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let mut segments = segments_of(e.path());
        let message = e.inner().message().trim_end().to_string();
        // serde names an unknown key in its message and the path stops at its table.
        if let Some(unknown) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            if !matches!(segments.last(), Some(Segment::Key(k)) if k == unknown) {
                segments.push(Segment::Key(unknown.to_string()));
            }
        }
        let fix = if message.starts_with("unknown field") {
            "; remove or correct it (docs/runtime-floor.md lists every key)"
        } else {
            "; see docs/runtime-floor.md for the key's values"
        };
        Error::Parse {
            path: path.into(),
            line: locate(text, &segments),
            key: key_name(&segments),
            message: format!("{message}{fix}"),
        }
    })?;
    resolve(path, text, file)
}

fn resolve(path: &Path, text: &str, file: File) -> Result<Settings, Error> {
    let invalid = |segments: Vec<Segment>, message: String| Error::Invalid {
        path: path.into(),
        line: locate(text, &segments),
        key: key_name(&segments),
        message,
    };
    let key = |k: &str| Segment::Key(k.to_string());
    let mut s = Settings::built_in();
    if let Some(version) = file.version {
        if version.trim().is_empty() || version.len() > 128 || version.chars().any(char::is_control)
        {
            return Err(invalid(
                vec![key("version")],
                "must be 1 to 128 printable characters naming this floor, e.g. \"2026-12-03\""
                    .into(),
            ));
        }
        s.version = version;
    }
    if let Some(v) = file.no_new_privs {
        s.no_new_privs = v;
    }
    if let Some(v) = file.on_violation {
        s.on_violation = v;
    }
    if let Some(v) = file.privileged {
        s.privileged = v;
    }
    if let Some(sec) = file.seccomp {
        if let Some(v) = sec.enabled {
            s.seccomp.enabled = v;
        }
        if let Some(v) = sec.namespaces {
            s.seccomp.namespaces = v;
        }
        if let Some(v) = sec.packet_sockets {
            s.seccomp.packet_sockets = v;
        }
        if let Some(names) = sec.syscalls {
            let mut set = BTreeSet::new();
            for (i, name) in names.into_iter().enumerate() {
                let at = || vec![key("seccomp"), key("syscalls"), Segment::Index(i)];
                if let Some((_, instead)) = BY_ARGUMENT.iter().find(|(n, _)| *n == name) {
                    return Err(invalid(
                        at(),
                        format!("{name} is refused by argument, not outright: remove it and use {instead}"),
                    ));
                }
                if !watertight_seccomp::is_known_syscall(&name) {
                    return Err(invalid(
                        at(),
                        format!("{name:?} is no syscall libseccomp knows: correct the name"),
                    ));
                }
                set.insert(name);
            }
            s.seccomp.syscalls = set;
        }
    }
    if let Some(devices) = file.devices.and_then(|d| d.allow) {
        for (i, d) in devices.iter().enumerate() {
            let at =
                |field: &str| vec![key("devices"), key("allow"), Segment::Index(i), key(field)];
            if !d.path.starts_with("/dev/") || d.path.contains("/../") || d.path.ends_with("/..") {
                return Err(invalid(
                    at("path"),
                    format!("{:?} must be an absolute path under /dev/", d.path),
                ));
            }
            if d.kind != "c" && d.kind != "b" {
                return Err(invalid(
                    at("type"),
                    format!("{:?} must be \"c\" (character) or \"b\" (block)", d.kind),
                ));
            }
            if d.major < 0 || d.minor < 0 {
                return Err(invalid(
                    at(if d.major < 0 { "major" } else { "minor" }),
                    "device numbers are 0 or more (a wildcard would allow every device)".into(),
                ));
            }
            if d.access.is_empty() || !d.access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(invalid(
                    at("access"),
                    format!("{:?} must be letters of \"rwm\"", d.access),
                ));
            }
        }
        let mut devices = devices;
        devices.sort();
        devices.dedup();
        s.allowed_devices = devices;
    }
    if let Some(paths) = file.paths {
        for (field, list, target) in [
            ("masked", paths.masked, &mut s.masked_paths),
            ("readonly", paths.readonly, &mut s.readonly_paths),
        ] {
            for (i, p) in list.into_iter().flatten().enumerate() {
                if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
                    return Err(invalid(
                        vec![key("paths"), key(field), Segment::Index(i)],
                        format!("{p:?} must be an absolute path in the container without \"..\""),
                    ));
                }
                target.insert(p);
            }
        }
    }
    if let Some(ceiling) = file.capabilities.and_then(|c| c.ceiling) {
        let mut set = BTreeSet::new();
        for (i, name) in ceiling.into_iter().enumerate() {
            if !name.starts_with("CAP_") || parse_capability(&name).is_none() {
                return Err(invalid(
                    vec![key("capabilities"), key("ceiling"), Segment::Index(i)],
                    format!("{name:?} is no capability: spell it as CAP_NAME, e.g. \"CAP_CHOWN\""),
                ));
            }
            set.insert(name);
        }
        s.capability_ceiling = set;
    }
    if let Some(trail) = file.audit_trail {
        let enabled = trail.enabled.unwrap_or(true);
        let dir = trail
            .dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_DIR));
        if !dir.is_absolute() {
            return Err(invalid(
                vec![key("audit_trail"), key("dir")],
                format!("{} must be an absolute path", dir.display()),
            ));
        }
        let max_bytes = trail.max_bytes.unwrap_or(DEFAULT_AUDIT_MAX_BYTES);
        if max_bytes < 4096 {
            return Err(invalid(
                vec![key("audit_trail"), key("max_bytes")],
                format!("{max_bytes} is too small to hold a record: use 4096 or more"),
            ));
        }
        s.audit_trail = enabled.then_some(AuditTrail { dir, max_bytes });
    }
    if let Some(evidence) = file.evidence {
        for (field, path, target) in [
            ("dir", evidence.dir, &mut s.evidence.dir),
            ("key", evidence.key, &mut s.evidence.key),
        ] {
            let Some(path) = path else { continue };
            if !path.is_absolute() {
                return Err(invalid(
                    vec![key("evidence"), key(field)],
                    format!("{} must be an absolute path", path.display()),
                ));
            }
            *target = path;
        }
        if let Some(max_bytes) = evidence.max_bytes {
            // Room for the tasks' /proc files at least (the forensics crate's own floor).
            if max_bytes < watertight_forensics::TASK_FLOOR {
                return Err(invalid(
                    vec![key("evidence"), key("max_bytes")],
                    format!(
                        "{max_bytes} is too small for the tasks' /proc files: use {} or more",
                        watertight_forensics::TASK_FLOOR
                    ),
                ));
            }
            s.evidence.max_bytes = max_bytes;
        }
    }
    if let Some(isolation) = file.isolation {
        let Some(policy) = isolation.policy else {
            return Err(invalid(
                vec![key("isolation"), key("policy")],
                "is required in [isolation]: the isolation policy file (docs/isolation.md, \"Choice by risk\")".into(),
            ));
        };
        for (field, path) in [
            ("policy", Some(&policy)),
            ("runsc", isolation.runsc.as_ref()),
        ] {
            if let Some(path) = path {
                if !path.is_absolute() {
                    return Err(invalid(
                        vec![key("isolation"), key(field)],
                        format!("{} must be an absolute path", path.display()),
                    ));
                }
            }
        }
        s.isolation = Some(IsolationSettings {
            policy,
            runsc: isolation.runsc,
        });
    }
    Ok(s)
}

/// An OCI capability from its `CAP_*` name.
pub(crate) fn parse_capability(name: &str) -> Option<Capability> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// One step of a key path.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn segments_of(path: &serde_path_to_error::Path) -> Vec<Segment> {
    use serde_path_to_error::Segment as S;
    path.iter()
        .filter_map(|s| match s {
            S::Map { key } => Some(Segment::Key(key.clone())),
            S::Seq { index } => Some(Segment::Index(*index)),
            _ => None,
        })
        .collect()
}

/// `seccomp.syscalls[3]`.
fn key_name(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        "(top level)".into()
    } else {
        out
    }
}

/// The 1-based line of the key at `segments`, as far as the path leads (0: not found).
fn locate(text: &str, segments: &[Segment]) -> usize {
    use toml::de::{DeTable, DeValue};
    let Ok(doc) = DeTable::parse(text) else {
        return 0;
    };
    let mut found = None;
    let mut node: Option<&DeValue> = None;
    let mut table = Some(doc.get_ref());
    for segment in segments {
        let value = match segment {
            Segment::Key(key) => {
                let Some((k, v)) = table.and_then(|t| t.get_key_value(key.as_str())) else {
                    break;
                };
                found = Some(k.span().start);
                v
            }
            Segment::Index(index) => {
                let Some(v) = node.and_then(DeValue::as_array).and_then(|a| a.get(*index)) else {
                    break;
                };
                found = Some(v.span().start);
                v
            }
        };
        node = Some(value.get_ref());
        table = value.get_ref().as_table();
    }
    found.map_or(0, |at| line_of(text, at))
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
