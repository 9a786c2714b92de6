//! Mounts and devices a workload sees.

use serde::{Deserialize, Serialize};

/// Mount propagation between the workload and the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Propagation {
    /// No propagation either way (`private`, Kubernetes `None`).
    Private,
    /// Host mounts appear in the workload, not the other way (`slave`, Kubernetes
    /// `HostToContainer`).
    HostToContainer,
    /// Mounts propagate both ways (`shared`, Kubernetes `Bidirectional`): a mount made inside the
    /// workload, e.g. a tmpfs holding a secret, appears on the host.
    Bidirectional,
    /// Mounts cannot be bind-mounted elsewhere (`unbindable`).
    Unbindable,
    /// The source does not say.
    #[default]
    Unknown,
}

/// One mount in the workload's view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Mount {
    /// Where it is mounted inside the workload.
    pub target: String,
    /// The source as the configuration or mountinfo names it.
    pub source: String,
    /// The host path this mount exposes, where it exposes one (bind mounts, hostPath volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// The filesystem type, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// Whether the mount is read-only.
    pub read_only: bool,
    /// How mounts propagate between it and the host.
    pub propagation: Propagation,
}

/// What kind of device node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A block device.
    Block,
    /// A character device.
    Char,
    /// The source does not say.
    Unknown,
}

/// A host device node the workload can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Path inside the workload.
    pub path: String,
    /// Path on the host, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// Block or character.
    pub kind: DeviceKind,
    /// The device's major number, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<u32>,
    /// The device's minor number, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
}
