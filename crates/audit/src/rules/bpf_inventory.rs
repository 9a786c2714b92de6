//! `bpf-inventory`: what `audit host` found of the host's BPF programs, one info finding: how
//! many, how many the gatekeeper vouches for, how many are watertight sandboxes' own, how many
//! are not vouched for. When they could not be listed (the auditor lacks CAP_SYS_ADMIN, as the
//! audit DaemonSet and systemd unit do by design) it says so and why, so the report never reads
//! as "no unvetted programs" when nothing was looked at.

use crate::finding::{Finding, Severity};
use crate::rules::{bpf_program_unvetted::vouched, host_finding, RuleInfo};
use watertight_model::HostBpf;

pub const INFO: RuleInfo = RuleInfo {
    id: "bpf-inventory",
    severity: Severity::Info,
    title: "BPF program inventory",
    help: "To have BPF programs checked, run `watertight audit host` with CAP_SYS_ADMIN (as \
           root), e.g. from a privileged node shell or a one-off job.",
};

pub fn check(bpf: &HostBpf, source: &str, out: &mut Vec<Finding>) {
    let message = match &bpf.not_taken {
        Some(why) => {
            format!("BPF inventory not taken: {why}; loaded BPF programs were not checked")
        }
        None => {
            let gate = bpf.programs.iter().filter(|p| bpf.recorded(p)).count();
            let all = bpf.programs.len() + bpf.unreadable.len();
            let ours = bpf.programs.iter().filter(|p| vouched(bpf, p)).count() - gate;
            format!(
                "{all} BPF program(s) loaded: {gate} by the gatekeeper, {ours} of watertight \
                 sandboxes, {} not vouched for",
                all - gate - ours
            )
        }
    };
    out.push(host_finding(
        &INFO,
        Severity::Info,
        message,
        source,
        "bpf".into(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::bpf_test_support::*;

    #[test]
    fn counts_or_says_why_not_taken() {
        let mut bpf = host(vec![
            program(1, "tracepoint", &[]),
            program(2, "cgroup_device", &[(1, false)]),
        ]);
        bpf.registry.push(record(1, "00000000000000aa"));
        let f = findings(&bpf);
        let inv = f.iter().find(|f| f.rule == INFO.id).unwrap();
        assert_eq!(
            inv.message,
            "2 BPF program(s) loaded: 1 by the gatekeeper, 0 of watertight sandboxes, 1 not \
             vouched for"
        );
        let mut none = host(vec![]);
        none.not_taken = Some("needs CAP_SYS_ADMIN".into());
        let f = findings(&none);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(f[0]
            .message
            .starts_with("BPF inventory not taken: needs CAP_SYS_ADMIN"));
    }
}
