//! The normalized isolation model: one [`Workload`] per container, pod, sandbox or process group,
//! whatever the source (live `/proc`, Kubernetes YAML, `docker inspect`, an OCI `config.json`, or
//! `watertight run` describing itself). Auditing rules read only this model.
//!
//! Every field that a source may not know is an `Option` or has an explicit `Unknown` state: a
//! missing fact must never read as "isolated".

#![forbid(unsafe_code)]

mod bpf;
mod capability;
mod container;
mod mount;
mod namespace;

pub use bpf::{
    BpfHolder, BpfProgram, BpfProgramRef, BpfToken, HostBpf, LoadedBpfProgram, SandboxBpf,
    BPF_REGISTRY_DIR,
};
pub use capability::{CapSet, Capabilities, UnknownCapability, CAPABILITY_NAMES, LAST_KNOWN_CAP};
pub use container::{FloorId, RunningContainer, WorkloadFloor, RUNNING_CONTAINERS_DIR};
pub use mount::{Device, DeviceKind, Mount, Propagation};
pub use namespace::{NamespaceKind, NamespaceState, Namespaces};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What kind of thing a workload is; decides which expectations apply (a systemd unit sharing
/// the host network is normal, a container doing so is a finding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum WorkloadKind {
    /// A container run by a container runtime (`docker`, `containerd`, `cri-o`, `podman`, ...).
    Container {
        /// The runtime's name.
        runtime: String,
        /// The runtime's container id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_id: Option<String>,
    },
    /// A container of a Kubernetes pod (live: found under a `kubepods` cgroup).
    KubernetesContainer {
        /// The container runtime's name.
        runtime: String,
        /// The pod's uid, from the cgroup path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pod_uid: Option<String>,
        /// The runtime's container id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container_id: Option<String>,
    },
    /// A Kubernetes object carrying a pod template (Pod, Deployment, CronJob, ...).
    KubernetesObject {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// A sandbox started by `watertight run`.
    WatertightSandbox,
    /// A systemd service or scope.
    SystemdUnit {
        /// The unit name, e.g. `sshd.service`.
        unit: String,
    },
    /// Processes in some other cgroup.
    Cgroup,
    /// Plain host processes (the root cgroup or no cgroup information).
    HostProcesses,
}

impl WorkloadKind {
    /// Whether the workload is meant to be isolated from the host. Host services legitimately
    /// share the host's namespaces; containers and sandboxes must not.
    pub fn expects_isolation(&self) -> bool {
        !matches!(
            self,
            WorkloadKind::SystemdUnit { .. } | WorkloadKind::Cgroup | WorkloadKind::HostProcesses
        )
    }
}

/// Where a workload description came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Origin {
    /// Measured on a running host.
    Live {
        /// The host's name.
        host: String,
    },
    /// Read from a file (for multi-document YAML, the 0-based document index).
    File {
        /// The file.
        path: PathBuf,
        /// The 0-based document index in a multi-document file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document: Option<usize>,
    },
    /// Described by the program that created it (e.g. `watertight run`).
    SelfDescribed {
        /// The program, e.g. `watertight run`.
        tool: String,
    },
}

/// One workload: a group of subjects (processes or containers) that belong together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Stable identifier: the cgroup path for live workloads, `namespace/Kind/name` for
    /// Kubernetes, the container name or id for Docker, the bundle path for OCI.
    pub id: String,
    /// What the workload is; decides which expectations apply.
    pub kind: WorkloadKind,
    /// Where its description came from.
    pub origin: Origin,
    /// The workload's cgroup path as the host sees it (live) or as configured (static).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
    /// Its processes (live) or containers (static).
    pub subjects: Vec<Subject>,
    /// What the workload was planned to be, where it published a plan (`watertight run` does,
    /// under [`RUNNING_SANDBOXES_DIR`]): a live scan attaches it, and the `plan-drift` rule
    /// compares every measured subject with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<WorkloadPlan>>,
}

/// A workload's published plan, as the live audit attaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadPlan {
    /// The plan's policy digest (`sha256:...`).
    pub digest: String,
    /// The planned subject (the sandbox's program and everything it starts).
    pub subject: Subject,
    /// For a container `watertight-runc` started: the hardening floor it runs under, and the
    /// node's current one (the `runtime-floor` rule compares them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<WorkloadFloor>,
}

/// One confined thing: a process (live) or a container (static). Everything a rule needs to judge
/// its isolation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Subject {
    /// Container name, or the process's command name.
    pub name: String,
    /// Host pid (live sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Which namespaces it shares with the host and which are its own.
    pub namespaces: Namespaces,
    /// Runs privileged (Docker `--privileged`, Kubernetes `privileged: true`).
    #[serde(default)]
    pub privileged: bool,
    /// Its capability sets.
    pub capabilities: Capabilities,
    /// Its seccomp state.
    pub seccomp: Seccomp,
    /// `None` where the source does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privs: Option<bool>,
    /// Its LSM label, where the source names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsm: Option<LsmLabel>,
    /// The uid and gid it runs as.
    pub user: User,
    /// The user namespace's uid mapping (inside, outside, count); `None` if not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_map: Option<Vec<IdMapping>>,
    /// Its mounts (live: from mountinfo; static: volumes and binds).
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Host device nodes it can reach.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Host ports bound for it.
    #[serde(default)]
    pub host_ports: Vec<HostPort>,
    /// Kernel parameters set for it.
    #[serde(default)]
    pub sysctls: Vec<Sysctl>,
    /// Paths the workload cannot read: masked by the runtime (OCI `maskedPaths`: `/dev/null`
    /// over a file, an empty read-only tmpfs over a directory) or, measured live, not there at
    /// all in its view; `None` if not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    /// Paths the runtime makes read-only (OCI `readonlyPaths`: `/proc/sys`,
    /// `/proc/sysrq-trigger`, ...); `None` if not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    /// Whether the device cgroup lets it open every device (OCI `linux.resources.devices` ending
    /// in an allow-all rule, Docker `--device-cgroup-rule 'a *:* rwm'`, privileged mode); `None`
    /// if not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_devices_allowed: Option<bool>,
    /// The operating system it runs on (`linux`, `windows`: Kubernetes `spec.os.name`); `None`
    /// when the source does not say (then Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// A Windows HostProcess container (Kubernetes `windowsOptions.hostProcess: true`): a process
    /// on the host, with the host's network and file system, as the account it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_process: Option<bool>,
    /// The kernel in user space this process is part of (live: `gvisor` for the host's runsc
    /// binary: its Gofer, its Sentry and the Sentry's ptrace stubs). The workload's system
    /// calls are answered there, not by the host kernel, whose rules do not apply to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_space_kernel: Option<String>,
    /// Whether its root filesystem is read-only; `None` where the source does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_rootfs: Option<bool>,
    /// A Kubernetes service-account token is mounted automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<bool>,
    /// The subject's cgroup path (host view); `Some("/")` means the root cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
    /// A BPF token it can create (a delegated bpffs of its own user namespace); `None` when it
    /// has none or the source does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf_token: Option<BpfToken>,
    /// Live only: the process is the BPF gatekeeper (`watertight bpf load --hold`): it holds
    /// BPF programs and every one of them is a program the gatekeeper's registry records by id
    /// and tag. CAP_BPF and CAP_PERFMON are what it needs by design.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bpf_gatekeeper: bool,
}

/// The seccomp state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Seccomp {
    /// Which seccomp mode is in force.
    pub mode: SeccompMode,
    /// The profile's name or path where the source names one (`runtime/default`, a file, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// The seccomp mode, as /proc/<pid>/status's `Seccomp:` field reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompMode {
    /// No filter (`Seccomp: 0`, or `unconfined` in a configuration).
    Disabled,
    /// Strict mode: only read, write, _exit and sigreturn.
    Strict,
    /// A BPF filter is installed.
    Filter,
    /// The source does not say.
    #[default]
    Unknown,
}

/// A Linux security module label (AppArmor profile, SELinux context, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsmLabel {
    /// `apparmor`, `selinux`, `smack`, or another LSM's name.
    pub lsm: String,
    /// The label itself: profile name or context.
    pub label: String,
    /// Whether the label confines at all (`unconfined`, `spc_t` do not).
    pub confined: bool,
}

/// The identity the subject runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct User {
    /// The uid, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The primary gid, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Kubernetes `runAsNonRoot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
}

/// One line of a uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside (in the parent namespace) it maps to.
    pub outside: u32,
    /// How many consecutive ids the line maps.
    pub count: u32,
}

impl IdMapping {
    /// Whether this mapping makes some id inside the namespace the host's `outside` id.
    pub fn maps_outside(&self, outside: u32) -> bool {
        outside >= self.outside && (outside - self.outside) < self.count
    }
}

/// A port of the host bound for the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPort {
    /// The host's port.
    pub host_port: u16,
    /// The workload's port it forwards to, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The host address it binds; `None` means every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// A kernel parameter set for the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    /// The parameter, e.g. `net.ipv4.ip_unprivileged_port_start`.
    pub name: String,
    /// Its value, as written.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_mapping_covers_its_range_only() {
        let m = IdMapping {
            inside: 0,
            outside: 100_000,
            count: 65_536,
        };
        assert!(!m.maps_outside(0));
        assert!(m.maps_outside(100_000));
        assert!(m.maps_outside(165_535));
        assert!(!m.maps_outside(165_536));
        let root = IdMapping {
            inside: 0,
            outside: 0,
            count: 1,
        };
        assert!(root.maps_outside(0));
    }

    #[test]
    fn workload_round_trips_through_json() {
        let mut subject = Subject {
            name: "app".into(),
            pid: Some(42),
            ..Subject::default()
        };
        subject
            .namespaces
            .set(NamespaceKind::Net, NamespaceState::Shared);
        subject.capabilities.effective = Some(CapSet::from_names(["SYS_ADMIN"]).unwrap());
        let w = Workload {
            plan: None,
            id: "/docker/abc".into(),
            kind: WorkloadKind::Container {
                runtime: "docker".into(),
                container_id: Some("abc".into()),
            },
            origin: Origin::Live { host: "n1".into() },
            cgroup_path: Some("/docker/abc".into()),
            subjects: vec![subject],
        };
        let text = serde_json::to_string(&w).unwrap();
        assert!(text.contains("\"net\":\"shared\""), "{text}");
        assert!(text.contains("CAP_SYS_ADMIN"), "{text}");
        let back: Workload = serde_json::from_str(&text).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn host_services_do_not_expect_isolation() {
        assert!(!WorkloadKind::HostProcesses.expects_isolation());
        assert!(WorkloadKind::WatertightSandbox.expects_isolation());
    }
}

/// The device nodes every runtime gives a container (the OCI runtime-spec's default devices):
/// bound from the host, but no host device in the auditor's sense, and `/dev/null` is also how
/// runtimes mask a file.
pub const DEFAULT_DEVICE_NODES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// What an OCI runtime masks in /proc and /sys by default: runc's default spec
/// (`libcontainer/specconv/example.go`, `Example()`), also containerd's (`oci/spec.go`,
/// `populateDefaultUnixSpec`), moby's (`oci/defaults.go`, `DefaultLinuxSpec`) and Podman's
/// (containers/common `pkg/config`): kernel memory (`kcore`), the kernel's keyrings (`keys`),
/// timers and scheduler state of every host task (`timer_list`, `timer_stats`, `sched_debug`,
/// `latency_stats`), hardware interfaces (`acpi`, `asound`, `scsi`) and firmware
/// (`/sys/firmware`: ACPI tables, EFI variables); plus `kallsyms` (kernel addresses, which no
/// runtime masks: the rule counts it only where the reader sees real addresses).
/// containerd and moby also mask `/sys/devices/virtual/powercap`; it is not required here:
/// runc's own default does not mask it, and its energy counters (CVE-2020-8694) are root-only
/// since the kernel's fix.
pub const PROC_MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/kallsyms",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// What an OCI runtime makes read-only in /proc by default (the same sources' `readonlyPaths`):
/// writing any of them changes the host kernel for everyone (`sysrq-trigger` reboots or crashes
/// it, `/proc/sys` holds every global sysctl, `/proc/irq` interrupt affinity, `/proc/bus` PCI
/// configuration space, `/proc/fs` file system tunables).
pub const PROC_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What in a host's /etc is secret to other users (password hashes, sudo rules, host keys, TLS
/// private keys), relative to /etc: a workload shown the host's /etc read-only with each of
/// these masked (or absent) sees only what any local user of the host may read.
pub const ETC_CREDENTIALS: [&str; 6] = [
    "shadow",
    "gshadow",
    "sudoers",
    "sudoers.d",
    "ssh",
    "ssl/private",
];

/// Where `watertight run` publishes the plan of each running sandbox, one `<sandbox_id>.json`
/// file (a [`RunningSandbox`]) from the start until the supervisor cleans up, for `watertight
/// audit host` to compare what it measures with what was planned.
pub const RUNNING_SANDBOXES_DIR: &str = "/run/watertight/sandboxes";

/// One running sandbox's published plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningSandbox {
    /// The sandbox's id (`wt-<slot>-<supervisor pid>`, `wt-<slot>.<n>-<pid>` for a process's n-th), also in its cgroup's name.
    pub sandbox_id: String,
    /// The supervisor's pid: an entry whose supervisor is gone is stale.
    pub supervisor_pid: u32,
    /// The digest of the plan's policy (`sha256:...`), as in its verdict and events.
    pub plan_digest: String,
    /// The plan as the auditor's model.
    pub workload: Workload,
    /// The BPF programs its supervisor holds as its own (the exec gate; a cgroup v2 device
    /// program), by id and tag, so that `audit host` does not report them as unvetted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bpf_programs: Vec<BpfProgramRef>,
}
