//! Per-process limits (rlimits) set in the sandbox before execve. The whole-sandbox limits
//! (memory, pids, CPU bandwidth) are the cgroup layer's; CPU and wall time and output size are
//! enforced by the supervisor, which sees the whole sandbox.

use nix::sys::resource::Resource;

use crate::error::{Error, IoContext};
use crate::profile::Limits;
use crate::syscall::Syscall;

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

/// In the program, before execve. Allocation-free unless a limit is refused (it runs in a child
/// that shares pid 1's memory).
pub fn apply(rlimits: &[(Resource, u64, u64)], sys: &impl Syscall) -> Result<(), Error> {
    for &(res, soft, hard) in rlimits {
        sys.set_rlimit(res, soft, hard)
            .ctx(|| format!("setrlimit {res:?} {soft}/{hard}"))?;
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
