//! `Floor::harden`: the floor applied to one config.json in memory, each change recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use oci_spec::runtime::{
    Capabilities, Linux, LinuxCapabilities, LinuxDeviceCgroup, LinuxDeviceType, Spec,
};
use serde::{Serialize, Serializer};

use crate::config::{parse_capability, AllowedDevice, NoNewPrivs, OnViolation, PrivilegedPolicy};
use crate::error::Error;
use crate::Floor;

/// The annotation a privileged config must carry, with a reason, to run under
/// `privileged = "allow-annotated"`.
pub const PRIVILEGED_ANNOTATION: &str = "run.oci.watertight/privileged";

/// Prefix of the annotations `Hardening::annotations` returns.
pub const ANNOTATION_PREFIX: &str = "run.oci.watertight/floor.";

/// One restriction the floor added to a config. Its string form (`kind` or `kind:detail`) is
/// what annotations, the published entry and `audit host` show.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Restriction {
    /// `process.noNewPrivileges` set.
    NoNewPrivileges,
    /// A path added to `linux.maskedPaths`.
    MaskedPath(String),
    /// A path added to `linux.readonlyPaths`.
    ReadonlyPath(String),
    /// A capability above the ceiling removed from every set that held it.
    CapabilityDropped(String),
    /// A `linux.devices` entry the allowlist does not have, removed (its path).
    DeviceRemoved(String),
    /// A `linux.resources.devices` allow rule the allowlist does not cover, removed
    /// (`c 10:200 rwm`).
    DeviceRuleRemoved(String),
    /// A deny-all rule put first in `linux.resources.devices` (the config did not start with
    /// one, leaving the start state to the runtime), with allow rules for the OCI default
    /// devices after it.
    DeviceRuleDenyAll,
    /// The floor's seccomp filter, to be installed after the container's own; the detail is
    /// what a violation-class call meets (`deny`: EPERM, `notify`: the runtime's monitor).
    SeccompFilter(&'static str),
    /// A privileged config run as configured under `privileged = "allow-annotated"`; the
    /// detail is the annotation's reason. Nothing else was changed.
    PrivilegedExempt(String),
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restriction::NoNewPrivileges => f.write_str("no-new-privileges"),
            Restriction::MaskedPath(p) => write!(f, "masked-path:{p}"),
            Restriction::ReadonlyPath(p) => write!(f, "readonly-path:{p}"),
            Restriction::CapabilityDropped(c) => write!(f, "capability-dropped:{c}"),
            Restriction::DeviceRemoved(p) => write!(f, "device-removed:{p}"),
            Restriction::DeviceRuleRemoved(r) => write!(f, "device-rule-removed:{r}"),
            Restriction::DeviceRuleDenyAll => f.write_str("device-rule-deny-all"),
            Restriction::SeccompFilter(a) => write!(f, "seccomp-filter:{a}"),
            Restriction::PrivilegedExempt(r) => write!(f, "privileged-exempt:{r}"),
        }
    }
}

impl Serialize for Restriction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What `harden` did to one config, and what the runtime must still do: install
/// [`Hardening::seccomp_profile`] after the container's own filter, put
/// [`Hardening::annotations`] in its state, and run its monitor per
/// [`Hardening::on_violation`] and [`Hardening::audit_trail`].
#[derive(Debug, Clone)]
pub struct Hardening {
    /// The floor's digest (`sha256:...`).
    pub floor_digest: String,
    /// The floor's `version`.
    pub floor_version: String,
    /// Every restriction added, in the order applied.
    pub added: Vec<Restriction>,
    /// The floor's own seccomp profile (`None`: `seccomp.enabled = false`, or a privileged
    /// config exempted).
    pub seccomp: Option<watertight_seccomp::Profile>,
    /// What a violation leads to.
    pub on_violation: OnViolation,
    /// Whether the floor's filter hands violations to a user-notification listener: compile
    /// it as is and keep the listener fd the install returns for the monitor. `false` when
    /// the container's own profile already has a listener (`linux.seccomp.listenerPath`: the
    /// kernel allows one listener per filter chain), then violations fail with EPERM.
    pub needs_listener: bool,
    /// Where and how much the runtime records for this container (`None`: disabled).
    pub audit_trail: Option<crate::config::AuditTrail>,
    /// Where `on_violation = "forensic"` puts its evidence.
    pub evidence: crate::config::Evidence,
}

impl Hardening {
    /// The annotations the runtime adds to the container's state:
    /// `run.oci.watertight/floor.digest`, `.version`, `.on_violation` and `.added` (a JSON
    /// array of the restrictions' string forms).
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            out.insert(format!("{ANNOTATION_PREFIX}{k}"), v);
        };
        put("digest", self.floor_digest.clone());
        put("version", self.floor_version.clone());
        put("on_violation", self.on_violation.as_str().to_string());
        put(
            "added",
            serde_json::to_string(&self.added).unwrap_or_else(|_| "[]".into()),
        );
        out
    }

    /// The floor's seccomp profile, for `watertight_seccomp::Profile::compile` with default
    /// options (the violation action is in its rules), installed as the second filter.
    pub fn seccomp_profile(&self) -> Option<&watertight_seccomp::Profile> {
        self.seccomp.as_ref()
    }

    /// The restrictions' string forms (what the published entry records).
    pub fn added_strings(&self) -> Vec<String> {
        self.added.iter().map(ToString::to_string).collect()
    }
}

/// What makes a config privileged: the field, and what it asks for.
fn privileged_signal(floor: &Floor, spec: &Spec) -> Option<(String, String)> {
    if let Some(caps) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    {
        for (name, set) in cap_sets(caps) {
            if set.is_some_and(|s| s.contains(&oci_spec::runtime::Capability::SysAdmin)) {
                return Some((
                    format!("process.capabilities.{name}"),
                    "holds CAP_SYS_ADMIN".into(),
                ));
            }
        }
    }
    let linux = spec.linux().as_ref();
    if linux.and_then(|l| l.seccomp().as_ref()).is_none() && !floor.settings.seccomp.enabled {
        return Some((
            "linux.seccomp".into(),
            "is absent (no syscall filter) while the floor's own filter is disabled".into(),
        ));
    }
    if let Some(rules) = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
    {
        for (i, r) in rules.iter().enumerate() {
            let all_kinds = matches!(r.typ(), None | Some(LinuxDeviceType::A));
            let opens = r
                .access()
                .as_deref()
                .is_none_or(|a| a.contains('r') || a.contains('w'));
            if r.allow() && all_kinds && r.major().is_none() && r.minor().is_none() && opens {
                return Some((
                    format!("linux.resources.devices[{i}]"),
                    "allows every host device".into(),
                ));
            }
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination().to_string_lossy();
        let options = m.options().as_deref().unwrap_or_default();
        let ro = options.iter().any(|o| o == "ro");
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned());
        let is_bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if (dest == "/sys" || dest == "/sys/") && !ro {
            return Some((format!("mounts[{i}]"), "mounts /sys writable".into()));
        }
        if (dest == "/proc/sys" || dest.starts_with("/proc/sys/")) && !ro {
            return Some((format!("mounts[{i}]"), format!("mounts {dest} writable")));
        }
        if is_bind && matches!(source.as_deref(), Some("/dev" | "/dev/")) {
            return Some((
                format!("mounts[{i}]"),
                "binds the host's /dev (every host device)".into(),
            ));
        }
    }
    None
}

fn cap_sets(c: &LinuxCapabilities) -> [(&'static str, Option<&Capabilities>); 5] {
    [
        ("bounding", c.bounding().as_ref()),
        ("effective", c.effective().as_ref()),
        ("permitted", c.permitted().as_ref()),
        ("inheritable", c.inheritable().as_ref()),
        ("ambient", c.ambient().as_ref()),
    ]
}

/// The OCI runtime-spec's default devices (the runtime creates them whatever the config
/// says): path, type, major, minor (`None`: any).
const DEFAULT_DEVICES: [(&str, char, i64, Option<i64>); 9] = [
    ("/dev/null", 'c', 1, Some(3)),
    ("/dev/zero", 'c', 1, Some(5)),
    ("/dev/full", 'c', 1, Some(7)),
    ("/dev/random", 'c', 1, Some(8)),
    ("/dev/urandom", 'c', 1, Some(9)),
    ("/dev/tty", 'c', 5, Some(0)),
    ("/dev/console", 'c', 5, Some(1)),
    ("/dev/ptmx", 'c', 5, Some(2)),
    ("/dev/pts", 'c', 136, None),
];

fn type_char(t: LinuxDeviceType) -> char {
    match t {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => 'p',
    }
}

fn access_within(access: &str, allowed: &str) -> bool {
    access.chars().all(|c| allowed.contains(c))
}

/// Whether a `linux.devices` entry is on the allowlist.
fn device_allowed(allowed: &[AllowedDevice], path: &str, t: char, major: i64, minor: i64) -> bool {
    DEFAULT_DEVICES.iter().any(|(p, dt, ma, mi)| {
        *p == path && *dt == t && *ma == major && mi.is_none_or(|m| m == minor)
    }) || allowed
        .iter()
        .any(|d| d.path == path && d.kind.starts_with(t) && d.major == major && d.minor == minor)
}

/// Whether a cgroup allow rule stays: mknod only (a node nobody may open), or within one
/// allowed device and its access.
fn rule_allowed(allowed: &[AllowedDevice], r: &LinuxDeviceCgroup) -> bool {
    let access = r.access().clone().unwrap_or_else(|| "rwm".into());
    if access_within(&access, "m") {
        return true;
    }
    let Some(t) = r.typ().map(type_char) else {
        return false;
    };
    let Some(major) = r.major() else {
        return false;
    };
    DEFAULT_DEVICES.iter().any(|(_, dt, ma, mi)| {
        *dt == t
            && *ma == major
            && match (mi, r.minor()) {
                (None, _) => true,
                (Some(m), Some(rm)) => *m == rm,
                (Some(_), None) => false,
            }
            && access_within(&access, "rwm")
    }) || allowed.iter().any(|d| {
        d.kind.starts_with(t)
            && d.major == major
            && r.minor() == Some(d.minor)
            && access_within(&access, &d.access)
    })
}

fn rule_text(r: &LinuxDeviceCgroup) -> String {
    let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    format!(
        "{} {}:{} {}",
        r.typ().map_or('a', type_char),
        num(r.major()),
        num(r.minor()),
        r.access().as_deref().unwrap_or("rwm")
    )
}

fn is_deny_all(r: &LinuxDeviceCgroup) -> bool {
    !r.allow()
        && matches!(r.typ(), None | Some(LinuxDeviceType::A))
        && r.major().is_none()
        && r.minor().is_none()
        && r.access()
            .as_deref()
            .is_none_or(|a| access_within("rwm", a))
}

fn empty_linux() -> Linux {
    // Not `Linux::default()`: oci-spec's default fills in namespaces, masks and resources.
    serde_json::from_str("{}").expect("every field of Linux is optional")
}

fn device_rule(
    allow: bool,
    t: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(t));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some("rwm".into()));
    r
}

pub(crate) fn harden(floor: &Floor, spec: &mut Spec) -> Result<Hardening, Error> {
    let s = &floor.settings;
    let mut hardening = Hardening {
        floor_digest: floor.digest(),
        floor_version: s.version.clone(),
        added: Vec::new(),
        seccomp: None,
        on_violation: s.on_violation,
        needs_listener: false,
        audit_trail: s.audit_trail.clone(),
        evidence: s.evidence.clone(),
    };

    if let Some((field, reason)) = privileged_signal(floor, spec) {
        let annotated = spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(PRIVILEGED_ANNOTATION))
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        return match (s.privileged, annotated) {
            (PrivilegedPolicy::AllowAnnotated, Some(reason_given)) => {
                hardening
                    .added
                    .push(Restriction::PrivilegedExempt(reason_given));
                Ok(hardening)
            }
            (PrivilegedPolicy::AllowAnnotated, None) => Err(Error::Privileged {
                field,
                reason,
                fix: format!(
                    "to run it as configured, give the reason in the annotation {PRIVILEGED_ANNOTATION}"
                ),
            }),
            (PrivilegedPolicy::Refuse, _) => Err(Error::Privileged {
                field,
                reason,
                fix: "remove it, or have the node's runtime.toml set privileged = \"allow-annotated\" and annotate the container".into(),
            }),
        };
    }

    if let Some(process) = spec.process_mut() {
        if s.no_new_privs == NoNewPrivs::Force && process.no_new_privileges() != Some(true) {
            process.set_no_new_privileges(Some(true));
            hardening.added.push(Restriction::NoNewPrivileges);
        }
        if let Some(caps) = process.capabilities().clone() {
            let ceiling: std::collections::HashSet<oci_spec::runtime::Capability> = s
                .capability_ceiling
                .iter()
                .filter_map(|n| parse_capability(n))
                .collect();
            let mut dropped: BTreeSet<String> = BTreeSet::new();
            let mut trim = |set: &Option<Capabilities>| {
                set.as_ref().map(|set| {
                    let mut kept = Capabilities::new();
                    for c in set {
                        if ceiling.contains(c) {
                            kept.insert(*c);
                        } else {
                            dropped.insert(capability_name(c));
                        }
                    }
                    kept
                })
            };
            let mut new = caps.clone();
            new.set_bounding(trim(caps.bounding()));
            new.set_effective(trim(caps.effective()));
            new.set_permitted(trim(caps.permitted()));
            new.set_inheritable(trim(caps.inheritable()));
            new.set_ambient(trim(caps.ambient()));
            if !dropped.is_empty() {
                process.set_capabilities(Some(new));
                hardening
                    .added
                    .extend(dropped.into_iter().map(Restriction::CapabilityDropped));
            }
        }
    }

    let own_listener = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .is_some_and(|sc| sc.listener_path().is_some());
    let linux = spec.linux_mut().get_or_insert_with(empty_linux);

    let masked = linux.masked_paths_mut().get_or_insert_with(Vec::new);
    for p in &s.masked_paths {
        if !masked.contains(p) {
            masked.push(p.clone());
            hardening.added.push(Restriction::MaskedPath(p.clone()));
        }
    }
    let readonly = linux.readonly_paths_mut().get_or_insert_with(Vec::new);
    for p in &s.readonly_paths {
        if !readonly.contains(p) {
            readonly.push(p.clone());
            hardening.added.push(Restriction::ReadonlyPath(p.clone()));
        }
    }

    if let Some(devices) = linux.devices_mut() {
        devices.retain(|d| {
            let path = d.path().to_string_lossy().into_owned();
            let keep = device_allowed(
                &s.allowed_devices,
                &path,
                type_char(d.typ()),
                d.major(),
                d.minor(),
            );
            if !keep {
                hardening.added.push(Restriction::DeviceRemoved(path));
            }
            keep
        });
    }

    let resources = linux.resources_mut().get_or_insert_with(Default::default);
    let rules = resources.devices_mut().get_or_insert_with(Vec::new);
    // The spec leaves the start state of the rules to the runtime (runc: deny-all; a new v1
    // devices cgroup: allow-all): a deny-all first makes the rest an allowlist whoever reads it.
    if !rules.first().is_some_and(is_deny_all) {
        rules.insert(0, device_rule(false, LinuxDeviceType::A, None, None));
        // What the runtime would have granted anyway, now that nothing is granted by default.
        for (_, _, major, minor) in DEFAULT_DEVICES {
            rules.insert(1, device_rule(true, LinuxDeviceType::C, Some(major), minor));
        }
        hardening.added.push(Restriction::DeviceRuleDenyAll);
    }
    let mut index = 0;
    rules.retain(|r| {
        index += 1;
        if index == 1 || !r.allow() || rule_allowed(&s.allowed_devices, r) {
            return true;
        }
        hardening
            .added
            .push(Restriction::DeviceRuleRemoved(rule_text(r)));
        false
    });

    hardening.needs_listener = s.on_violation.needs_listener() && !own_listener;
    // Without a listener nobody sees a refusal as it happens: the kernel log does (for the
    // audit trail), when there is a trail to fill.
    let log = !hardening.needs_listener && s.audit_trail.is_some();
    hardening.seccomp = crate::seccomp::profile(&s.seccomp, hardening.needs_listener, log);
    if hardening.seccomp.is_some() {
        hardening
            .added
            .push(Restriction::SeccompFilter(if hardening.needs_listener {
                "notify"
            } else {
                "deny"
            }));
    } else {
        hardening.needs_listener = false;
    }
    Ok(hardening)
}

/// `CAP_NET_ADMIN` (oci-spec's Display drops the prefix).
fn capability_name(c: &oci_spec::runtime::Capability) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("CAP_{c}"))
}
