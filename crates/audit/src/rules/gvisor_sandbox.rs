//! `gvisor-sandbox`: a live process is part of a gVisor sandbox (the host's runsc binary: its
//! Gofer, its Sentry, the Sentry's ptrace stubs). The workload's system calls are answered by
//! gVisor's kernel in user space, so the rules about what a process exposes of the host kernel
//! (its namespaces, capabilities, uid, seccomp profile, /proc) are not applied to these
//! processes, which are runsc's own and confined by runsc's design; this says so instead of
//! staying silent. Mount, device, port, cgroup and plan rules still apply.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "gvisor-sandbox",
    severity: Severity::Info,
    title: "Runs on gVisor's kernel in user space",
    help: "Nothing to fix: the workload's system calls go to gVisor's Sentry. Its host-side processes are runsc's; keep runsc current (`runsc --version`).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if let Some(kernel) = &cx.subject.user_space_kernel {
        out.push(cx.finding(
            &INFO,
            Severity::Info,
            format!(
                "part of a {kernel} sandbox (runsc's own process): the workload's system calls are answered by {kernel}, not the host kernel; host-kernel rules are not applied to it"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use watertight_model::*;

    #[test]
    fn runscs_processes_get_the_note_instead_of_the_host_kernel_findings() {
        let (mut w, mut s) = isolated_container();
        w.origin = Origin::Live { host: "n".into() };
        // The Gofer as a live scan sees it: host namespaces, root, file capabilities.
        s.namespaces = Namespaces::all(NamespaceState::Shared);
        s.user.uid = Some(0);
        s.capabilities.effective =
            Some(CapSet::from_names(["DAC_READ_SEARCH", "CHOWN", "SYS_CHROOT"]).unwrap());
        s.no_new_privs = Some(false);
        let plain = rules(&run(&w, s.clone()));
        assert!(
            plain.contains(&"shared-host-namespace".to_string()),
            "{plain:?}"
        );
        assert!(
            plain.contains(&"dangerous-capabilities".to_string()),
            "{plain:?}"
        );
        s.user_space_kernel = Some("gvisor".into());
        assert_eq!(rules(&run(&w, s.clone())), ["gvisor-sandbox"]);
        // A runsc process without any seccomp filter is still reported.
        s.seccomp.mode = SeccompMode::Disabled;
        let r = rules(&run(&w, s));
        assert!(r.contains(&"seccomp-disabled".to_string()), "{r:?}");
    }
}
