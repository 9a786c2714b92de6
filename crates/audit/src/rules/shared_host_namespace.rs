//! `shared-host-namespace`: a container or sandbox shares a namespace with the host.

use super::sensitive_host_mount::HOST_IPC_MOUNTS;
use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{NamespaceKind, NamespaceState};

pub const INFO: RuleInfo = RuleInfo {
    id: "shared-host-namespace",
    severity: Severity::High,
    title: "Shares a namespace with the host",
    help: "Give the workload its own namespace (drop hostNetwork/hostPID/hostIPC, \
           --network/--pid/--ipc=host, or add the namespace to the OCI config).",
};

/// How much sharing each namespace kind gives away.
pub fn severity_of(kind: NamespaceKind) -> Severity {
    match kind {
        // Host network: every host socket and interface; host PID: every process, its /proc and
        // signals; host mount namespace: the host's files.
        NamespaceKind::Net | NamespaceKind::Pid | NamespaceKind::Mnt => Severity::High,
        NamespaceKind::Ipc => Severity::Medium,
        // The host user namespace is the default of Docker and Kubernetes; uid 0 inside is then
        // uid 0 outside, which other rules judge.
        NamespaceKind::Uts | NamespaceKind::User | NamespaceKind::Cgroup => Severity::Low,
        NamespaceKind::Time => Severity::Info,
    }
}

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() {
        return;
    }
    for kind in cx.subject.namespaces.kinds_in(NamespaceState::Shared) {
        let mut message = format!("shares the host {} namespace", kind.describe());
        let mut paths = Vec::new();
        if kind == NamespaceKind::Ipc {
            // The host's /dev/shm or /dev/mqueue mounted in: the same IPC objects as files
            // (sensitive-host-mount leaves them to this finding).
            paths = cx
                .subject
                .mounts
                .iter()
                .filter_map(|m| m.host_path.as_deref())
                .filter(|h| HOST_IPC_MOUNTS.contains(h))
                .map(String::from)
                .collect();
            paths.sort();
            paths.dedup();
            if !paths.is_empty() {
                message.push_str(&format!(" and mounts the host's {}", paths.join(", ")));
            }
        }
        let mut f = cx.finding(&INFO, severity_of(kind), message);
        f.namespace = Some(kind.proc_name().to_string());
        f.paths = paths;
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{NamespaceKind, NamespaceState, WorkloadKind};

    #[test]
    fn reports_each_shared_kind_with_its_namespace() {
        let (w, mut s) = isolated_container();
        s.namespaces.set(NamespaceKind::Pid, NamespaceState::Shared);
        s.namespaces.set(NamespaceKind::Net, NamespaceState::Shared);
        let f = run(&w, s);
        let ns: Vec<_> = f.iter().filter_map(|f| f.namespace.clone()).collect();
        assert_eq!(ns, vec!["net", "pid"]);
        assert!(f.iter().all(|f| f.rule == "shared-host-namespace"));
    }

    #[test]
    fn host_services_sharing_the_host_are_fine() {
        let (mut w, mut s) = isolated_container();
        w.kind = WorkloadKind::SystemdUnit {
            unit: "sshd.service".into(),
        };
        s.namespaces = watertight_model::Namespaces::all(NamespaceState::Shared);
        // A private mount namespace alone is systemd hardening, not an isolation attempt.
        s.namespaces
            .set(NamespaceKind::Mnt, NamespaceState::Isolated);
        assert_eq!(run(&w, s.clone()), vec![]);
        // A process that unshared its PID namespace is trying to be isolated.
        s.namespaces
            .set(NamespaceKind::Pid, NamespaceState::Isolated);
        let f = run(&w, s);
        assert!(f.iter().any(|f| f.namespace.as_deref() == Some("net")));
    }
}
