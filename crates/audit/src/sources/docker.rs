//! The `docker inspect` source: a JSON array of container objects (or one object).
//!
//! Only the fields the audit needs are declared, each defaulted, so output of any Docker
//! version (and Podman's compatible output) parses; unknown fields are ignored.

use crate::error::AuditError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use watertight_model::{
    CapSet, Capabilities, Device, DeviceKind, HostPort, LsmLabel, Mount, NamespaceKind,
    NamespaceState, Namespaces, Origin, Propagation, Seccomp, SeccompMode, Subject, Sysctl, User,
    Workload, WorkloadKind,
};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Docker's default masked paths (moby `oci/defaults.go`; `/sys/firmware` and
/// `/sys/devices/virtual/powercap` since 20.10 and 24.0), used when an older `docker inspect`
/// has no `MaskedPaths`.
const DOCKER_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
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

/// Docker's default read-only paths (moby `oci/defaults.go`).
const DOCKER_READONLY_PATHS: [&str; 5] = watertight_model::PROC_READONLY_PATHS;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Inspect {
    id: String,
    name: String,
    config: Option<Config>,
    host_config: Option<HostConfig>,
    mounts: Option<Vec<InspectMount>>,
    app_armor_profile: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Config {
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HostConfig {
    #[serde(rename = "NetworkMode")]
    network_mode: Option<String>,
    #[serde(rename = "PidMode")]
    pid_mode: Option<String>,
    #[serde(rename = "IpcMode")]
    ipc_mode: Option<String>,
    #[serde(rename = "UTSMode")]
    uts_mode: Option<String>,
    #[serde(rename = "UsernsMode")]
    userns_mode: Option<String>,
    #[serde(rename = "CgroupnsMode")]
    cgroupns_mode: Option<String>,
    #[serde(rename = "Privileged")]
    privileged: bool,
    #[serde(rename = "CapAdd")]
    cap_add: Option<Vec<String>>,
    #[serde(rename = "CapDrop")]
    cap_drop: Option<Vec<String>>,
    #[serde(rename = "SecurityOpt")]
    security_opt: Option<Vec<String>>,
    #[serde(rename = "Devices")]
    devices: Option<Vec<DockerDevice>>,
    #[serde(rename = "Binds")]
    binds: Option<Vec<String>>,
    #[serde(rename = "Mounts")]
    mounts: Option<Vec<HostConfigMount>>,
    #[serde(rename = "ReadonlyRootfs")]
    readonly_rootfs: bool,
    #[serde(rename = "CgroupParent")]
    cgroup_parent: Option<String>,
    #[serde(rename = "PortBindings")]
    port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    #[serde(rename = "Sysctls")]
    sysctls: Option<BTreeMap<String, String>>,
    #[serde(rename = "MaskedPaths")]
    masked_paths: Option<Vec<String>>,
    #[serde(rename = "ReadonlyPaths")]
    readonly_paths: Option<Vec<String>>,
    #[serde(rename = "DeviceCgroupRules")]
    device_cgroup_rules: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DockerDevice {
    path_on_host: String,
    path_in_container: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PortBinding {
    host_ip: Option<String>,
    host_port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct InspectMount {
    #[serde(rename = "Type")]
    kind: Option<String>,
    source: String,
    destination: String,
    #[serde(rename = "RW")]
    rw: Option<bool>,
    propagation: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfigMount {
    #[serde(rename = "Type")]
    kind: Option<String>,
    source: String,
    target: String,
    read_only: bool,
    bind_options: Option<BindOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BindOptions {
    propagation: Option<String>,
}

fn propagation(p: Option<&str>) -> Propagation {
    match p.unwrap_or("") {
        "shared" | "rshared" => Propagation::Bidirectional,
        "slave" | "rslave" => Propagation::HostToContainer,
        // Docker's default for binds is rprivate.
        "private" | "rprivate" | "" => Propagation::Private,
        _ => Propagation::Unknown,
    }
}

/// `host` shares; empty means the daemon default (own namespace, except user and cgroup).
fn mode_state(mode: Option<&str>, default: NamespaceState) -> NamespaceState {
    match mode.unwrap_or("") {
        "host" => NamespaceState::Shared,
        "" => default,
        // `container:<id>`, `private`, `shareable`, a network name: not the host's.
        _ => NamespaceState::Isolated,
    }
}

/// Parses a bind string `src:dst[:opts]`.
fn parse_bind(bind: &str) -> Option<Mount> {
    let mut parts = bind.splitn(3, ':');
    let source = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let opts = parts.next().unwrap_or("");
    let prop = opts
        .split(',')
        .find(|o| o.contains("shared") || o.contains("slave") || o.contains("private"));
    Some(Mount {
        host_path: source.starts_with('/').then(|| source.clone()),
        source,
        target,
        fs_type: Some("bind".into()),
        read_only: opts.split(',').any(|o| o == "ro"),
        propagation: propagation(prop),
    })
}

fn container_to_workload(c: Inspect, path: &Path, index: usize) -> Workload {
    let hc = c.host_config.unwrap_or_default();
    let name = c.name.trim_start_matches('/').to_string();
    let id = if name.is_empty() {
        c.id.chars().take(12).collect()
    } else {
        name.clone()
    };
    let mut ns = Namespaces::default();
    let net = match hc.network_mode.as_deref() {
        Some("host") => NamespaceState::Shared,
        _ => NamespaceState::Isolated,
    };
    ns.set(NamespaceKind::Net, net);
    ns.set(
        NamespaceKind::Pid,
        mode_state(hc.pid_mode.as_deref(), NamespaceState::Isolated),
    );
    ns.set(
        NamespaceKind::Ipc,
        mode_state(hc.ipc_mode.as_deref(), NamespaceState::Isolated),
    );
    // The host network namespace brings the host's hostname along.
    let uts = if net == NamespaceState::Shared && hc.uts_mode.as_deref().unwrap_or("").is_empty() {
        NamespaceState::Shared
    } else {
        mode_state(hc.uts_mode.as_deref(), NamespaceState::Isolated)
    };
    ns.set(NamespaceKind::Uts, uts);
    ns.set(NamespaceKind::Mnt, NamespaceState::Isolated);
    // Without daemon-wide userns-remap (not visible here) Docker uses the host user namespace.
    ns.set(
        NamespaceKind::User,
        mode_state(hc.userns_mode.as_deref(), NamespaceState::Shared),
    );
    // The cgroup namespace default depends on the host's cgroup version: unknown if unset.
    ns.set(
        NamespaceKind::Cgroup,
        mode_state(hc.cgroupns_mode.as_deref(), NamespaceState::Unknown),
    );

    let mut seccomp = Seccomp {
        mode: SeccompMode::Filter,
        profile: Some("runtime/default".into()),
    };
    let mut no_new_privs = Some(false);
    let mut lsm = None;
    let mut unmasked = false;
    for opt in hc.security_opt.iter().flatten() {
        let (key, value) = opt
            .split_once(['=', ':'])
            .map(|(k, v)| (k, Some(v)))
            .unwrap_or((opt.as_str(), None));
        match key {
            "seccomp" => {
                seccomp = match value {
                    Some("unconfined") => Seccomp {
                        mode: SeccompMode::Disabled,
                        profile: Some("unconfined".into()),
                    },
                    other => Seccomp {
                        mode: SeccompMode::Filter,
                        profile: other.map(|s| s.chars().take(80).collect()),
                    },
                }
            }
            "no-new-privileges" => no_new_privs = Some(value.is_none_or(|v| v == "true")),
            "apparmor" => {
                lsm = value.map(|v| LsmLabel {
                    lsm: "apparmor".into(),
                    label: v.into(),
                    confined: v != "unconfined",
                })
            }
            // `--security-opt systempaths=unconfined`: nothing masked or read-only in /proc.
            "systempaths" if value == Some("unconfined") => unmasked = true,
            "label" if value == Some("disable") => {
                lsm = Some(LsmLabel {
                    lsm: "selinux".into(),
                    label: "disable".into(),
                    confined: false,
                });
            }
            _ => {}
        }
    }
    if lsm.is_none() {
        lsm = c
            .app_armor_profile
            .filter(|p| !p.is_empty())
            .map(|p| LsmLabel {
                lsm: "apparmor".into(),
                confined: p != "unconfined",
                label: p,
            });
    }

    let added = hc.cap_add.clone().unwrap_or_default();
    let dropped = hc.cap_drop.clone().unwrap_or_default();
    let effective = if hc.privileged {
        CapSet::from_names(["ALL"]).ok()
    } else {
        let base = CapSet::from_names(DOCKER_DEFAULT_CAPS).unwrap_or_default();
        let add = CapSet::from_names(
            added
                .iter()
                .filter(|n| CapSet::number_of(n).is_ok() || n.eq_ignore_ascii_case("ALL")),
        )
        .unwrap_or_default();
        let drop = CapSet::from_names(
            dropped
                .iter()
                .filter(|n| CapSet::number_of(n).is_ok() || n.eq_ignore_ascii_case("ALL")),
        )
        .unwrap_or_default();
        Some(base.difference(drop).union(add))
    };

    // The resolved top-level Mounts list is authoritative; else HostConfig's request.
    let mut mounts: Vec<Mount> = match c.mounts {
        Some(ms) if !ms.is_empty() => ms
            .into_iter()
            .map(|m| {
                let bind = m.kind.as_deref() == Some("bind");
                Mount {
                    host_path: (bind && m.source.starts_with('/')).then(|| m.source.clone()),
                    fs_type: m.kind,
                    read_only: m.rw == Some(false),
                    propagation: if bind {
                        propagation(m.propagation.as_deref())
                    } else {
                        Propagation::Private
                    },
                    source: m.source,
                    target: m.destination,
                }
            })
            .collect(),
        _ => {
            let mut v: Vec<Mount> = hc
                .binds
                .iter()
                .flatten()
                .filter_map(|b| parse_bind(b))
                .collect();
            v.extend(hc.mounts.iter().flatten().map(|m| {
                let bind = m.kind.as_deref() == Some("bind");
                Mount {
                    host_path: (bind && m.source.starts_with('/')).then(|| m.source.clone()),
                    fs_type: m.kind.clone(),
                    read_only: m.read_only,
                    propagation: if bind {
                        propagation(
                            m.bind_options
                                .as_ref()
                                .and_then(|b| b.propagation.as_deref()),
                        )
                    } else {
                        Propagation::Private
                    },
                    source: m.source.clone(),
                    target: m.target.clone(),
                }
            }));
            v
        }
    };
    mounts.sort_by(|a, b| a.target.cmp(&b.target));

    let devices = hc
        .devices
        .iter()
        .flatten()
        .map(|d| Device {
            path: if d.path_in_container.is_empty() {
                d.path_on_host.clone()
            } else {
                d.path_in_container.clone()
            },
            host_path: Some(d.path_on_host.clone()),
            kind: DeviceKind::Unknown,
            major: None,
            minor: None,
        })
        .collect();

    let host_ports = hc
        .port_bindings
        .iter()
        .flatten()
        .flat_map(|(spec, bindings)| {
            let (port, proto) = spec.split_once('/').unwrap_or((spec.as_str(), "tcp"));
            let container_port = port.parse().ok();
            let proto = proto.to_string();
            bindings
                .iter()
                .flatten()
                .filter_map(move |b| {
                    let host_port: u16 = b.host_port.as_deref()?.parse().ok()?;
                    Some(HostPort {
                        host_port,
                        container_port,
                        protocol: proto.clone(),
                        host_ip: b.host_ip.clone().filter(|s| !s.is_empty()),
                    })
                })
                .collect::<Vec<_>>()
        })
        .filter(|p| p.host_port != 0)
        .collect();

    let uid = c.config.and_then(|cfg| cfg.user).and_then(|u| {
        let user = u.split(':').next().unwrap_or("");
        match user {
            "" | "root" => Some(0),
            n => n.parse().ok(),
        }
    });
    // An empty User means the image default; Docker images mostly default to root.
    let uid = uid.or(Some(0));

    let subject = Subject {
        name: name.clone(),
        namespaces: ns,
        privileged: hc.privileged,
        capabilities: Capabilities {
            effective,
            added,
            dropped,
            ..Capabilities::default()
        },
        seccomp: if hc.privileged {
            Seccomp {
                mode: SeccompMode::Disabled,
                profile: Some("privileged".into()),
            }
        } else {
            seccomp
        },
        no_new_privs,
        lsm,
        user: User {
            uid,
            gid: None,
            run_as_non_root: None,
        },
        mounts,
        devices,
        host_ports,
        sysctls: hc
            .sysctls
            .iter()
            .flatten()
            .map(|(k, v)| Sysctl {
                name: k.clone(),
                value: v.clone(),
            })
            .collect(),
        masked_paths: if hc.privileged || unmasked {
            Some(Vec::new())
        } else {
            Some(
                hc.masked_paths
                    .unwrap_or_else(|| DOCKER_MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
            )
        },
        readonly_paths: if hc.privileged || unmasked {
            Some(Vec::new())
        } else {
            Some(hc.readonly_paths.unwrap_or_else(|| {
                DOCKER_READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }))
        },
        // `--device-cgroup-rule 'a *:* rwm'` (or `a`): every device, as privileged mode allows.
        all_devices_allowed: Some(
            hc.privileged
                || hc.device_cgroup_rules.iter().flatten().any(|r| {
                    let mut f = r.split_whitespace();
                    f.next() == Some("a")
                        && f.next().is_none_or(|n| n == "*:*")
                        && f.next().is_none_or(|a| a.contains('r') && a.contains('w'))
                }),
        ),
        readonly_rootfs: Some(hc.readonly_rootfs),
        cgroup_path: hc.cgroup_parent.clone().filter(|s| !s.is_empty()),
        ..Subject::default()
    };
    Workload {
        plan: None,
        id,
        kind: WorkloadKind::Container {
            runtime: "docker".into(),
            container_id: (!c.id.is_empty()).then_some(c.id),
        },
        origin: Origin::File {
            path: path.to_path_buf(),
            document: Some(index),
        },
        cgroup_path: hc.cgroup_parent.filter(|s| !s.is_empty()),
        subjects: vec![subject],
    }
}

/// Parses `docker inspect` output (an array, or a single object).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Workload>, AuditError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| AuditError::Parse {
        path: path.to_path_buf(),
        message: format!("not JSON ({e}); expected the output of `docker inspect <container>...`"),
    })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        obj @ serde_json::Value::Object(_) => vec![obj],
        _ => {
            return Err(AuditError::Invalid {
                path: path.to_path_buf(),
                message: "expected a JSON array of containers (the output of `docker inspect`)"
                    .into(),
            })
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if item.get("HostConfig").is_none() {
            return Err(AuditError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "element {i} has no HostConfig: this is not container `docker inspect` output \
                     (images and networks are not audited)"
                ),
            });
        }
        let c: Inspect = serde_json::from_value(item).map_err(|e| AuditError::Parse {
            path: path.to_path_buf(),
            message: format!("element {i}: {e}"),
        })?;
        out.push(container_to_workload(c, path, i));
    }
    Ok(out)
}

/// Reads and parses a `docker inspect` file.
pub fn load(path: &Path) -> Result<Vec<Workload>, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}
