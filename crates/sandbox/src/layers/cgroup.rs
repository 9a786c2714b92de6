//! cgroup layer: the sandbox's own cgroup with its memory (no swap), pids and CPU limits and the
//! device allowlist, on cgroup v1, v2 or a hybrid of both (the cgroups crate detects which).

use watertight_cgroups::{Cgroup, CpuQuota, Layout, Limits as CgLimits};

use crate::error::Error;
use crate::profile::Profile;

pub fn limits(profile: &Profile) -> CgLimits {
    CgLimits {
        memory_bytes: profile.limits.memory.map(|s| s.bytes()),
        pids_max: profile.limits.pids,
        cpu_quota: profile.limits.cpus.map(CpuQuota::cpus),
        devices: Some(crate::layers::dev::allowlist(&profile.dev)),
    }
}

/// Detects the host's cgroup layout, removes cgroups of supervisors that died without cleaning
/// up, and creates this sandbox's cgroup.
pub fn create(name: &str, profile: &Profile) -> Result<(Layout, Cgroup), Error> {
    let layout = watertight_cgroups::detect()?;
    let limits = limits(profile);
    limits.validate()?;
    // Best effort: a failure to clean someone else's leftovers must not stop this run.
    let _ = watertight_cgroups::cleanup_stale(&layout);
    let cg = Cgroup::create(&layout, name, &limits)?;
    Ok((layout, cg))
}
