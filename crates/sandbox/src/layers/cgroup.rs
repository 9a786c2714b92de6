//! cgroup layer: the sandbox's own cgroup with its memory (no swap), pids and CPU limits and the
//! device allowlist, on cgroup v1, v2 or a hybrid of both (the cgroups crate detects which).

use watertight_cgroups::{Cgroup, CpuQuota, Layout, Limits as CgLimits, Needs, Registry};

use crate::error::Error;
use crate::profile::{OnViolation, Profile};

pub fn limits(profile: &Profile) -> CgLimits {
    CgLimits {
        memory_bytes: profile.limits.memory.map(|s| s.bytes()),
        pids_max: profile.limits.pids,
        cpu_quota: profile.limits.cpus.map(CpuQuota::cpus),
        devices: Some(crate::layers::dev::allowlist(&profile.dev)),
    }
}

/// What the sandbox's cgroup must do besides its limits. Each hierarchy joined costs a mkdir, a
/// write and an rmdir per run, so only what this run uses: the freezer for the forensic
/// response, live CPU usage for a CPU-time limit (the verdict otherwise counts CPU from wait4's
/// rusage, which covers every task pid 1 reaped), the unified hierarchy for the exec gate.
pub fn needs(profile: &Profile, exec_gate: bool) -> Needs {
    Needs {
        freeze: profile.seccomp.on_violation == OnViolation::Forensic,
        cpu_usage: profile.limits.cpu_time.is_some(),
        bpf: exec_gate,
    }
}

/// Where supervisors register the cgroups they create (see `watertight_cgroups::Registry`).
pub const REGISTRY_DIR: &str = "/run/watertight/cgroups";

/// Detects the host's cgroup layout, removes cgroups of supervisors that died without cleaning
/// up, and creates this sandbox's cgroup.
pub fn create(name: &str, profile: &Profile, needs: Needs) -> Result<(Layout, Cgroup), Error> {
    let layout = watertight_cgroups::detect()?;
    let limits = limits(profile);
    limits.validate()?;
    // Best effort: a failure to clean someone else's leftovers must not stop this run.
    let registry = Registry::open(REGISTRY_DIR)?;
    let _ = registry.cleanup_stale(&layout);
    let cg = registry.create(&layout, name, &limits, needs)?;
    Ok((layout, cg))
}
