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
    Unbindable,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    pub read_only: bool,
    pub propagation: Propagation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Block,
    Char,
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
    pub kind: DeviceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
}
