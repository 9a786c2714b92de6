//! Per-process limits (rlimits) set in the sandbox before execve. The whole-sandbox limits
//! (memory, pids, CPU bandwidth) are the cgroup layer's; CPU and wall time and output size are
//! enforced by the supervisor, which sees the whole sandbox.

use nix::sys::resource::{setrlimit, Resource};

use crate::error::{Error, IoContext};
use crate::profile::Limits;

/// The rlimits for a profile's limits, as (resource, soft, hard).
pub fn rlimits(limits: &Limits) -> Vec<(Resource, u64, u64)> {
    let mut v = vec![(Resource::RLIMIT_CORE, 0, 0)];
    if let Some(n) = limits.open_files {
        v.push((Resource::RLIMIT_NOFILE, n, n));
    }
    if let Some(s) = limits.file_size {
        v.push((Resource::RLIMIT_FSIZE, s.bytes(), s.bytes()));
    }
    if let Some(s) = limits.stack {
        v.push((Resource::RLIMIT_STACK, s.bytes(), s.bytes()));
    }
    if let Some(t) = limits.cpu_time {
        // Per process, a backstop to the supervisor's whole-sandbox accounting, which ends the
        // run at the limit (TO). Generous on purpose: this clock counts whole scheduler ticks
        // and ran 16% ahead of the precise measurement on a busy VM, and the verdict only calls
        // a SIGXCPU a time limit when the measured CPU time reached the limit. SIGXCPU at twice
        // the limit and a second, SIGKILL a second later.
        let soft = (2.0 * t).ceil() as u64 + 1;
        v.push((Resource::RLIMIT_CPU, soft, soft + 1));
    }
    v
}

/// Shields the sandbox's reaper (pid 1, host pid `pid`) from the OOM killer, from outside: it
/// must outlive the program to report its status, and kernel memory charged to the cgroup (pipe
/// and socket buffers) counts in no task's RSS, so the killer may otherwise pick the reaper.
/// Lowering a score needs CAP_SYS_RESOURCE, which the sandbox never has; where the supervisor
/// lacks it too (this returns false), an OOM kill still reads as ML in the verdict.
pub fn shield_reaper_from_oom(pid: i32) -> bool {
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), "-1000").is_ok()
}

/// In the program before execve: its OOM score back to neutral (raising one needs no
/// privilege), so neither the reaper's shield nor a caller's negative score passes to untrusted
/// code. Runs in the child that shares the reaper's memory: no allocation.
pub fn reset_oom_score() {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    if let Ok(fd) = open(
        c"/proc/self/oom_score_adj",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        let _ = nix::unistd::write(&fd, b"0");
    }
}

pub fn apply(rlimits: &[(Resource, u64, u64)]) -> Result<(), Error> {
    for &(res, soft, hard) in rlimits {
        setrlimit(res, soft, hard).ctx(|| format!("setrlimit {res:?} {soft}/{hard}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::default_profile;

    #[test]
    fn core_dumps_are_always_off() {
        let r = rlimits(&default_profile().limits);
        assert!(r.contains(&(Resource::RLIMIT_CORE, 0, 0)));
    }

    #[test]
    fn cpu_limit_backstop_is_well_past_the_limit() {
        let mut l = default_profile().limits;
        l.cpu_time = Some(1.5);
        assert!(rlimits(&l).contains(&(Resource::RLIMIT_CPU, 4, 5)));
    }
}
