//! `bpf-program-unvetted`: a loaded BPF program that the gatekeeper did not load (no registry
//! record with its id and tag) and that is not a running watertight sandbox's own (its exec
//! gate). What it can do decides how bad that is:
//!
//! - high: programs that read any process's memory and kernel state or change what the kernel
//!   does (tracing, kprobe, perf_event, tracepoint, raw_tracepoint, lsm, struct_ops, ext,
//!   syscall), and those that rewrite or redirect traffic or calls (xdp, tc, lwt, sk_*, sock_ops,
//!   flow_dissector, netfilter, cgroup_sock_addr, cgroup_sockopt, cgroup_sysctl); a type this
//!   build does not know, and a program whose details could not be read (it may be any of them);
//! - medium: programs that only filter within their own reach (socket_filter on its loader's
//!   sockets, cgroup_device, cgroup_skb, cgroup_sock, lirc_mode2);
//! - low: cgroup programs held by pid 1 (systemd's device allowlists, IP firewalls and socket
//!   restrictions of its units): every systemd host has them; one finding names them all.

use crate::finding::{Finding, Severity};
use crate::rules::{host_finding, RuleInfo};
use watertight_model::{BpfProgram, HostBpf};

pub const INFO: RuleInfo = RuleInfo {
    id: "bpf-program-unvetted",
    severity: Severity::High,
    title: "BPF program not loaded by the gatekeeper",
    help: "Find who loaded it (its holders; `bpftool prog show id N`), unload it, and load BPF \
           programs only through `watertight bpf load` (signed, vetted objects).",
};

/// cgroup program types systemd attaches for its units.
const SYSTEMD_CGROUP_TYPES: [&str; 6] = [
    "cgroup_device",
    "cgroup_skb",
    "cgroup_sock",
    "cgroup_sock_addr",
    "cgroup_sockopt",
    "cgroup_sysctl",
];

/// What a program of this type can do, when nothing vouches for it.
pub fn severity_of(prog_type: &str) -> Severity {
    match prog_type {
        "socket_filter" | "cgroup_device" | "cgroup_skb" | "cgroup_sock" | "lirc_mode2" => {
            Severity::Medium
        }
        _ => Severity::High,
    }
}

/// Whether a program is vouched for: the gatekeeper's record or a running sandbox's own.
pub fn vouched(bpf: &HostBpf, p: &BpfProgram) -> bool {
    bpf.recorded(p) || bpf.published_by_sandbox(p)
}

fn holders(p: &BpfProgram) -> Vec<String> {
    p.holders
        .iter()
        .map(|h| match &h.workload {
            Some(w) => format!("pid {} ({}) in {w}", h.pid, h.name),
            None => format!("pid {} ({})", h.pid, h.name),
        })
        .collect()
}

pub fn check(bpf: &HostBpf, source: &str, out: &mut Vec<Finding>) {
    if bpf.not_taken.is_some() {
        return;
    }
    let mut systemd = Vec::new();
    for p in &bpf.programs {
        if vouched(bpf, p) {
            continue;
        }
        let by_pid1 = !p.holders.is_empty() && p.holders.iter().all(|h| h.pid == 1);
        if by_pid1 && SYSTEMD_CGROUP_TYPES.contains(&p.prog_type.as_str()) {
            systemd.push(p);
            continue;
        }
        let who = holders(p);
        let held = if who.is_empty() {
            "held by no process (kept by an attachment or a pin)".to_string()
        } else {
            format!("held by {}", who.join(", "))
        };
        let name = if p.name.is_empty() { "-" } else { &p.name };
        let mut f = host_finding(
            &INFO,
            severity_of(&p.prog_type),
            format!(
                "BPF program {} ({} {name}, tag {}, loaded by uid {}) was not loaded by the \
                 gatekeeper; {held}",
                p.id, p.prog_type, p.tag, p.uid
            ),
            source,
            format!("bpf {} {name} (tag {})", p.prog_type, p.tag),
        );
        if let Some(h) = p.holders.first().and_then(|h| h.workload.clone()) {
            f.workload = h;
        }
        f.pids = p.holders.iter().map(|h| h.pid).collect();
        f.pid = f.pids.first().copied();
        f.paths = who;
        out.push(f);
    }
    for id in &bpf.unreadable {
        out.push(host_finding(
            &INFO,
            Severity::High,
            format!(
                "BPF program {id} is loaded but its details could not be read: it may be \
                 anything, and nothing vouches for it"
            ),
            source,
            format!("bpf program {id}"),
        ));
    }
    if !systemd.is_empty() {
        let ids: Vec<String> = systemd.iter().map(|p| p.id.to_string()).collect();
        let mut f = host_finding(
            &INFO,
            Severity::Low,
            format!(
                "pid 1 holds {} cgroup BPF program(s) the gatekeeper did not load (ids {}): \
                 systemd's device allowlists and socket/IP restrictions of its units",
                systemd.len(),
                ids.join(", ")
            ),
            source,
            "bpf cgroup programs of pid 1".into(),
        );
        f.pid = Some(1);
        f.pids = vec![1];
        f.paths = systemd
            .iter()
            .map(|p| format!("{} {} {} (tag {})", p.id, p.prog_type, p.name, p.tag))
            .collect();
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::bpf_test_support::*;

    #[test]
    fn an_unrecorded_tracing_program_is_high_and_named() {
        let bpf = host(vec![program(42, "raw_tracepoint", &[(4242, false)])]);
        let f: Vec<_> = findings(&bpf)
            .into_iter()
            .filter(|f| f.rule == INFO.id)
            .collect();
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].rule, "bpf-program-unvetted");
        assert_eq!(f[0].severity, Severity::High);
        assert!(
            f[0].message.contains("BPF program 42 (raw_tracepoint"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("pid 4242"), "{}", f[0].message);
        assert_eq!(f[0].pids, vec![4242]);
    }

    #[test]
    fn a_record_with_id_and_tag_vouches_a_wrong_tag_does_not() {
        let mut bpf = host(vec![program(42, "tracepoint", &[])]);
        bpf.registry.push(record(42, "00000000000000aa"));
        assert!(findings(&bpf).iter().all(|f| f.rule != INFO.id));
        bpf.registry[0].tag = "00000000000000bb".into();
        assert!(findings(&bpf).iter().any(|f| f.rule == INFO.id));
    }

    #[test]
    fn a_sandboxs_own_gate_is_not_reported() {
        let mut bpf = host(vec![program(9, "tracing", &[(77, false)])]);
        bpf.sandboxes.push(watertight_model::SandboxBpf {
            sandbox_id: "wt-0-77".into(),
            supervisor_pid: 77,
            programs: vec![watertight_model::BpfProgramRef {
                id: 9,
                tag: "00000000000000aa".into(),
            }],
        });
        assert!(findings(&bpf).iter().all(|f| f.rule != INFO.id));
    }

    #[test]
    fn systemds_cgroup_programs_are_one_low_finding_others_are_not() {
        let bpf = host(vec![
            program(3, "cgroup_device", &[(1, false)]),
            program(4, "cgroup_skb", &[(1, false)]),
            program(5, "cgroup_device", &[(300, true)]),
            program(6, "tracing", &[(1, false)]),
        ]);
        let f: Vec<_> = findings(&bpf)
            .into_iter()
            .filter(|f| f.rule == INFO.id)
            .collect();
        let low: Vec<_> = f.iter().filter(|f| f.severity == Severity::Low).collect();
        assert_eq!(low.len(), 1, "{f:#?}");
        assert!(low[0].message.contains("ids 3, 4"), "{}", low[0].message);
        // A container's device program: medium; a tracing program even of pid 1: high.
        assert!(f
            .iter()
            .any(|f| f.severity == Severity::Medium && f.message.contains("program 5 ")));
        assert!(f
            .iter()
            .any(|f| f.severity == Severity::High && f.message.contains("program 6 ")));
    }

    #[test]
    fn unreadable_and_unknown_types_are_high() {
        let mut bpf = host(vec![program(8, "unknown", &[])]);
        bpf.unreadable.push(11);
        let f = findings(&bpf);
        assert_eq!(
            f.iter()
                .filter(|f| f.rule == INFO.id && f.severity == Severity::High)
                .count(),
            2,
            "{f:#?}"
        );
    }
}
