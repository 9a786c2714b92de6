//! Containers started by `watertight-runc` (the OCI runtime), as it publishes them for
//! `watertight audit host`: which process is the container's init, and under which hardening
//! floor (`/etc/watertight/runtime.toml`) it was started.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::Workload;

/// Where `watertight-runc` publishes each running container, one `<container_id>.json` file (a
/// [`RunningContainer`]) from `create` until `delete`, for `watertight audit host` to tell a
/// container under the floor from one without it, and one started under a superseded floor.
pub const RUNNING_CONTAINERS_DIR: &str = "/run/watertight/containers";

/// One running container's published entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningContainer {
    /// The container's id, as the runtime's caller named it.
    pub container_id: String,
    /// The container's init process, as the host's pid namespace numbers it.
    pub init_pid: u32,
    /// The init process's start time (`/proc/<pid>/stat` field 22, clock ticks after boot): with
    /// the pid, it names the process, so a reused pid never inherits the entry.
    pub init_start_time: u64,
    /// The bundle directory the container was created from.
    pub bundle: PathBuf,
    /// The digest of the hardening floor the container was started under (`sha256:...`).
    pub floor_digest: String,
    /// The floor's `version` string, as its runtime.toml says.
    pub floor_version: String,
    /// What the floor changed in the container's configuration, one machine-readable item each
    /// (`masked-path:/proc/kcore`, `capability-dropped:CAP_NET_RAW`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floor_added: Vec<String>,
    /// The digest of the container's plan, where the runtime computes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// The hardened configuration as the auditor's model.
    pub workload: Workload,
}

/// The floor a live container runs under, attached to its workload by `audit host`: what the
/// container's runtime published, and the node's current floor to compare it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadFloor {
    /// The container's id.
    pub container_id: String,
    /// The floor it was started under.
    pub digest: String,
    /// That floor's `version`.
    pub version: String,
    /// The node's current floor (digest, version); `None` when the auditor could not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<FloorId>,
}

/// A floor by digest and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorId {
    /// `sha256:...` of the floor's canonical form.
    pub digest: String,
    /// The floor's `version` string.
    pub version: String,
}
