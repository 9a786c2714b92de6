//! `bpf-token`: the workload can create a BPF token (a delegated bpffs of its own user
//! namespace, `watertight run --bpf-observe`) and load tracing programs with it. A tracing
//! program runs in the context of every process on the host, so the workload sees them all,
//! whatever its namespaces say; and a token cannot restrict helpers, so unless each program's
//! helper calls are vetted before it is loaded it can also signal any host process
//! (bpf_send_signal) and read kernel memory (bpf_probe_read_kernel).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "bpf-token",
    severity: Severity::High,
    title: "Can load BPF programs through a token",
    help: "Give BPF tokens only to workloads trusted to watch the whole host; load vetted, \
           signed programs for them instead where possible (docs/bpf-observe.md).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    // Measured, or (a live scan, which does not read bpffs options) what the workload's
    // published plan says it has.
    let planned = cx
        .workload
        .plan
        .as_ref()
        .and_then(|p| p.subject.bpf_token.as_ref());
    let Some(token) = cx.subject.bpf_token.as_ref().or(planned) else {
        return;
    };
    let programs = token.programs.join(", ");
    let (severity, message) = if token.helpers_vetted {
        (
            Severity::High,
            format!(
                "can load {programs} programs through a BPF token ({}): they see every process \
                 on the host",
                token.mount
            ),
        )
    } else {
        (
            Severity::Critical,
            format!(
                "can load {programs} programs through a BPF token ({}) with unvetted helpers: \
                 they see every process on the host, can signal any of them (bpf_send_signal) \
                 and read kernel memory (bpf_probe_read_kernel)",
                token.mount
            ),
        )
    };
    let mut f = cx.finding(&INFO, severity, message);
    f.paths = vec![token.mount.clone()];
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::evaluate;
    use watertight_model::{BpfToken, Subject, Workload, WorkloadKind};

    fn workload(token: Option<BpfToken>) -> Workload {
        Workload {
            id: "watertight:test".into(),
            kind: WorkloadKind::WatertightSandbox,
            origin: watertight_model::Origin::SelfDescribed {
                tool: "test".into(),
            },
            cgroup_path: None,
            subjects: vec![Subject {
                name: "agent".into(),
                bpf_token: token,
                ..Subject::default()
            }],
            plan: None,
        }
    }

    fn token(helpers_vetted: bool) -> BpfToken {
        BpfToken {
            mount: "/sys/fs/bpf".into(),
            commands: vec!["prog_load".into()],
            maps: vec!["array".into()],
            programs: vec!["tracepoint".into(), "raw_tracepoint".into()],
            attach_types: vec!["cgroup_inet_ingress".into()],
            helpers_vetted,
        }
    }

    fn of_rule(w: &Workload) -> Vec<Finding> {
        evaluate(w, "test")
            .into_iter()
            .filter(|f| f.rule == INFO.id)
            .collect()
    }

    #[test]
    fn a_token_with_unvetted_helpers_is_critical_and_names_the_helpers() {
        let found = of_rule(&workload(Some(token(false))));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Critical);
        assert!(found[0].message.contains("bpf_send_signal"), "{found:?}");
    }

    #[test]
    fn a_live_subject_is_judged_by_its_published_plan() {
        let mut live = workload(None);
        live.plan = Some(Box::new(watertight_model::WorkloadPlan {
            digest: "sha256:0".into(),
            subject: Subject {
                bpf_token: Some(token(true)),
                ..Subject::default()
            },
            floor: None,
        }));
        assert_eq!(of_rule(&live)[0].severity, Severity::High);
    }

    #[test]
    fn a_token_with_vetted_helpers_is_high_and_no_token_is_nothing() {
        let found = of_rule(&workload(Some(token(true))));
        assert_eq!(found[0].severity, Severity::High);
        assert!(found[0].message.contains("every process"));
        assert!(of_rule(&workload(None)).is_empty());
    }
}
