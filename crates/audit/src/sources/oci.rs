//! The OCI runtime bundle source: `config.json` as runc/crun read it, via the `oci-spec` crate's
//! typed runtime spec.

use crate::error::AuditError;
use oci_spec::runtime::{Capabilities as OciCaps, LinuxDeviceType, LinuxNamespaceType, Spec};
use std::path::Path;
use watertight_model::{
    CapSet, Capabilities, Device, DeviceKind, IdMapping, LsmLabel, Mount, NamespaceKind,
    NamespaceState, Namespaces, Origin, Propagation, Seccomp, SeccompMode, Subject, Sysctl, User,
    Workload, WorkloadKind,
};

fn caps(set: &Option<OciCaps>) -> Option<CapSet> {
    set.as_ref().map(|s| {
        CapSet::from_names(
            s.iter()
                .map(|c| c.to_string())
                .filter(|n| CapSet::number_of(n).is_ok()),
        )
        .unwrap_or_default()
    })
}

fn propagation_of(options: &[String]) -> Option<Propagation> {
    options.iter().rev().find_map(|o| match o.as_str() {
        "shared" | "rshared" => Some(Propagation::Bidirectional),
        "slave" | "rslave" => Some(Propagation::HostToContainer),
        "private" | "rprivate" => Some(Propagation::Private),
        "unbindable" | "runbindable" => Some(Propagation::Unbindable),
        _ => None,
    })
}

fn namespace_kind(t: LinuxNamespaceType) -> Option<NamespaceKind> {
    Some(match t {
        LinuxNamespaceType::Network => NamespaceKind::Net,
        LinuxNamespaceType::Pid => NamespaceKind::Pid,
        LinuxNamespaceType::Ipc => NamespaceKind::Ipc,
        LinuxNamespaceType::Uts => NamespaceKind::Uts,
        LinuxNamespaceType::Mount => NamespaceKind::Mnt,
        LinuxNamespaceType::User => NamespaceKind::User,
        LinuxNamespaceType::Cgroup => NamespaceKind::Cgroup,
        LinuxNamespaceType::Time => NamespaceKind::Time,
    })
}

/// Builds the model of one bundle's config.
pub fn spec_to_workload(spec: &Spec, path: &Path) -> Workload {
    let linux = spec.linux().clone().unwrap_or_default_linux();
    let mut ns = Namespaces::all(NamespaceState::Shared);
    for n in linux.namespaces().iter().flatten() {
        if let Some(kind) = namespace_kind(n.typ()) {
            // A path joins an existing namespace: whose, the config does not say.
            let state = if n.path().is_some() {
                NamespaceState::Unknown
            } else {
                NamespaceState::Isolated
            };
            ns.set(kind, state);
        }
    }
    let process = spec.process().clone().unwrap_or_default();
    let oci_caps = process.capabilities().clone().unwrap_or_default();
    let capabilities = Capabilities {
        effective: caps(oci_caps.effective()),
        permitted: caps(oci_caps.permitted()),
        bounding: caps(oci_caps.bounding()),
        ..Capabilities::default()
    };
    // Without an effective set a runtime grants none.
    let capabilities = Capabilities {
        effective: capabilities.effective.or(Some(CapSet::EMPTY)),
        ..capabilities
    };
    let seccomp = match linux.seccomp() {
        Some(s) => Seccomp {
            mode: SeccompMode::Filter,
            profile: Some(format!(
                "default action {:?}, {} rule(s)",
                s.default_action(),
                s.syscalls().as_ref().map_or(0, |v| v.len())
            )),
        },
        None => Seccomp {
            mode: SeccompMode::Disabled,
            profile: None,
        },
    };
    let lsm = match (process.apparmor_profile(), process.selinux_label()) {
        (Some(p), _) if !p.is_empty() => Some(LsmLabel {
            lsm: "apparmor".into(),
            label: p.clone(),
            confined: p != "unconfined",
        }),
        (_, Some(l)) if !l.is_empty() => Some(LsmLabel {
            lsm: "selinux".into(),
            label: l.clone(),
            confined: !(l.contains(":spc_t:") || l.contains(":unconfined_t:")),
        }),
        _ => None,
    };
    let root_propagation = linux
        .rootfs_propagation()
        .as_deref()
        .map(|p| propagation_of(&[p.to_string()]).unwrap_or(Propagation::Unknown));
    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| {
            let options = m.options().clone().unwrap_or_default();
            let is_bind = m.typ().as_deref() == Some("bind")
                || options.iter().any(|o| o == "bind" || o == "rbind");
            let source = m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default();
            Mount {
                target: m.destination().display().to_string(),
                host_path: (is_bind && source.starts_with('/')).then(|| source.clone()),
                source,
                fs_type: m.typ().clone(),
                read_only: options.iter().any(|o| o == "ro"),
                // Bind mounts (the ones tied to host trees) inherit the rootfs propagation
                // unless they set their own.
                propagation: propagation_of(&options)
                    .or(if is_bind { root_propagation } else { None })
                    .unwrap_or(Propagation::Private),
            }
        })
        .collect();
    let devices = linux
        .devices()
        .iter()
        .flatten()
        .map(|d| Device {
            path: d.path().display().to_string(),
            host_path: None,
            kind: match d.typ() {
                LinuxDeviceType::B => DeviceKind::Block,
                LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
                _ => DeviceKind::Unknown,
            },
            major: u32::try_from(d.major()).ok(),
            minor: u32::try_from(d.minor()).ok(),
        })
        .collect();
    let uid_map = linux.uid_mappings().as_ref().map(|maps| {
        maps.iter()
            .map(|m| IdMapping {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    });
    let mut sysctls: Vec<Sysctl> = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| Sysctl {
            name: k.clone(),
            value: v.clone(),
        })
        .collect();
    sysctls.sort_by(|a, b| a.name.cmp(&b.name));
    let cgroup_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.display().to_string());
    let subject = Subject {
        name: spec
            .hostname()
            .clone()
            .unwrap_or_else(|| "container".into()),
        namespaces: ns,
        capabilities,
        seccomp,
        no_new_privs: Some(process.no_new_privileges().unwrap_or(false)),
        lsm,
        user: User {
            uid: Some(process.user().uid()),
            gid: Some(process.user().gid()),
            run_as_non_root: None,
        },
        uid_map,
        mounts,
        devices,
        sysctls,
        masked_paths: Some(linux.masked_paths().clone().unwrap_or_default()),
        readonly_paths: Some(linux.readonly_paths().clone().unwrap_or_default()),
        all_devices_allowed: Some(all_devices_allowed(&linux)),
        readonly_rootfs: spec.root().as_ref().and_then(|r| r.readonly()),
        cgroup_path: cgroup_path.clone(),
        ..Subject::default()
    };
    let id = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| path.display().to_string());
    Workload {
        plan: None,
        id,
        kind: WorkloadKind::Container {
            runtime: "oci".into(),
            container_id: None,
        },
        origin: Origin::File {
            path: path.to_path_buf(),
            document: None,
        },
        cgroup_path,
        subjects: vec![subject],
    }
}

/// Whether the device cgroup rules end up allowing every device: the last rule for every
/// device (no type or `a`, no major, no minor) allows, and nothing after it denies. runc's
/// spec for a privileged container has exactly `[{"allow": true, "access": "rwm"}]`; its
/// default starts with the deny-all `{"allow": false, "access": "rwm"}` and allows single
/// devices after it.
fn all_devices_allowed(linux: &oci_spec::runtime::Linux) -> bool {
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let mut all = false;
    for rule in &rules {
        let every = matches!(rule.typ(), None | Some(LinuxDeviceType::A))
            && rule.major().is_none()
            && rule.minor().is_none();
        if every {
            all = rule.allow()
                && rule
                    .access()
                    .as_deref()
                    .is_none_or(|a| a.contains('r') && a.contains('w'));
        } else if !rule.allow() {
            all = false;
        }
    }
    all
}

trait LinuxOrEmpty {
    fn unwrap_or_default_linux(self) -> oci_spec::runtime::Linux;
}

impl LinuxOrEmpty for Option<oci_spec::runtime::Linux> {
    /// A config without a `linux` section configures no namespaces, masks or devices: an empty
    /// section (not oci-spec's `Default`, which fills in runc's defaults).
    fn unwrap_or_default_linux(self) -> oci_spec::runtime::Linux {
        self.unwrap_or_else(|| serde_json::from_str("{}").unwrap_or_default())
    }
}

/// Parses a bundle's `config.json` text.
pub fn parse(text: &str, path: &Path) -> Result<Workload, AuditError> {
    let spec: Spec = serde_json::from_str(text).map_err(|e| AuditError::Parse {
        path: path.to_path_buf(),
        message: format!("not an OCI runtime config ({e}); expected a bundle's config.json"),
    })?;
    Ok(spec_to_workload(&spec, path))
}

/// Reads a `config.json`, or the `config.json` inside a bundle directory.
pub fn load(path: &Path) -> Result<Workload, AuditError> {
    let file = if path.is_dir() {
        path.join("config.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| AuditError::Read {
        path: file.clone(),
        source,
    })?;
    parse(&text, &file)
}
