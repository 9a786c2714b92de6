//! Per-process limits (rlimits) set in the sandbox before execve. The whole-sandbox limits
//! (memory, pids, CPU bandwidth) are the cgroup layer's; CPU and wall time and output size are
//! enforced by the supervisor, which sees the whole sandbox.

use nix::sys::resource::Resource;

use crate::error::{Error, IoContext};
use crate::layers::rootless::Enforcement;
use crate::profile::Limits;
use crate::syscall::Syscall;

/// The rlimits for a profile's limits, as (resource, soft, hard).
pub fn rlimits(limits: &Limits) -> Vec<(Resource, u64, u64)> {
    rlimits_with(limits, None)
}

/// [`rlimits`], plus what stands in for the cgroup a rootless sandbox lacks (`rootless`:
/// its [`Enforcement`]): RLIMIT_AS for memory, RLIMIT_NPROC for pids (per user namespace: the
/// sandbox's own processes only), and RLIMIT_CPU at the limit itself where no cgroup counts
/// the sandbox's CPU time live.
pub fn rlimits_with(limits: &Limits, rootless: Option<&Enforcement>) -> Vec<(Resource, u64, u64)> {
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
    if let Some(e) = rootless {
        if let (Some(m), false) = (limits.memory, e.memory_cgroup) {
            v.push((Resource::RLIMIT_AS, m.bytes(), m.bytes()));
        }
        if let (Some(n), false) = (limits.pids, e.pids_cgroup) {
            v.push((Resource::RLIMIT_NPROC, n, n));
        }
        if let (Some(t), None) = (limits.cpu_time, &e.delegation) {
            let s = crate::layers::rootless::rlimit_cpu_seconds(t);
            v.push((Resource::RLIMIT_CPU, s, s + 1));
            return v;
        }
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
    fn rootless_without_a_cgroup_gets_rlimits_in_its_place() {
        let mut l = default_profile().limits;
        l.cpu_time = Some(1.5);
        let none = crate::layers::rootless::enforcement(&l, Err("none".into()));
        let r = rlimits_with(&l, Some(&none));
        let memory = l.memory.unwrap().bytes();
        let pids = l.pids.unwrap();
        assert!(r.contains(&(Resource::RLIMIT_AS, memory, memory)), "{r:?}");
        assert!(r.contains(&(Resource::RLIMIT_NPROC, pids, pids)), "{r:?}");
        assert!(
            r.contains(&(Resource::RLIMIT_CPU, 2, 3)),
            "at the limit: {r:?}"
        );
        let cpu: Vec<_> = r.iter().filter(|x| x.0 == Resource::RLIMIT_CPU).collect();
        assert_eq!(cpu.len(), 1, "{r:?}");
        // A delegated cgroup with every controller: only the root sandbox's rlimits.
        let all = crate::layers::rootless::enforcement(
            &l,
            Ok(crate::layers::rootless::Delegation {
                parent: "/sys/fs/cgroup/x".into(),
                subtree_control: "cpu memory pids".into(),
            }),
        );
        assert_eq!(rlimits_with(&l, Some(&all)), rlimits(&l));
    }

    #[test]
    fn cpu_limit_backstop_is_well_past_the_limit() {
        let mut l = default_profile().limits;
        l.cpu_time = Some(1.5);
        assert!(rlimits(&l).contains(&(Resource::RLIMIT_CPU, 4, 5)));
    }
}
