//! `unsafe-sysctls`: kernel parameters outside the namespaced, safe set that Kubernetes allows
//! by default: they change the node for every workload.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{NamespaceKind, NamespaceState};

pub const INFO: RuleInfo = RuleInfo {
    id: "unsafe-sysctls",
    severity: Severity::Medium,
    title: "Unsafe sysctls",
    help: "Set only safe, namespaced sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, ...).",
};

/// The Kubernetes safe set (pod-security-admission `sysctls` check, latest version).
pub const SAFE_SYSCTLS: [&str; 11] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
];

/// The namespace that makes a sysctl the workload's own, if any: runc accepts exactly these in
/// a container config, and only with the namespace of the container's own
/// (`libcontainer/configs/validate/validator.go`, `sysctl`; the Kubernetes documentation's
/// "namespaced sysctls" are the same set): `net.*` with a network namespace (a global `net.*`
/// entry is registered in the initial namespace only, so it cannot be set from another),
/// `kernel.shm*`, `kernel.msg*`, `kernel.sem` and `fs.mqueue.*` with an IPC namespace.
fn namespaced_by(name: &str) -> Option<NamespaceKind> {
    if name.starts_with("net.") {
        Some(NamespaceKind::Net)
    } else if name.starts_with("kernel.shm")
        || name.starts_with("kernel.msg")
        || name == "kernel.sem"
        || name.starts_with("fs.mqueue.")
    {
        Some(NamespaceKind::Ipc)
    } else {
        None
    }
}

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() {
        return;
    }
    // A namespaced sysctl in a namespace of the workload's own changes only the workload: not
    // unsafe for the node (Kubernetes calls those outside its safe set "unsafe" because the
    // kubelet must allow them, not because they reach the node). With the host's namespace it
    // changes the host.
    let own = |kind| cx.subject.namespaces.get(kind) == NamespaceState::Isolated;
    let unsafe_names: Vec<String> = cx
        .subject
        .sysctls
        .iter()
        .map(|s| s.name.replace('/', "."))
        .filter(|n| !SAFE_SYSCTLS.contains(&n.as_str()) && n != "net.ipv4.tcp_wmem")
        .filter(|n| !namespaced_by(n).is_some_and(own))
        .collect();
    if !unsafe_names.is_empty() {
        let mut f = cx.finding(
            &INFO,
            Severity::Medium,
            format!(
                "sets sysctls that change the node: {}",
                unsafe_names.join(", ")
            ),
        );
        f.paths = unsafe_names;
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{NamespaceKind, NamespaceState, Sysctl};

    fn sysctls(names: &[&str]) -> Vec<Sysctl> {
        names
            .iter()
            .map(|n| Sysctl {
                name: n.to_string(),
                value: "1".into(),
            })
            .collect()
    }

    #[test]
    fn namespaced_sysctls_in_own_namespaces_are_not_unsafe() {
        let (w, mut s) = isolated_container();
        s.sysctls = sysctls(&[
            "net.core.somaxconn",
            "net.ipv4.ip_forward",
            "kernel.shmmax",
            "kernel.msgmnb",
            "kernel.sem",
            "fs.mqueue.msg_max",
        ]);
        assert_eq!(run(&w, s.clone()), vec![]);
        // The same with the host's network and IPC namespaces: they change the host.
        s.namespaces.set(NamespaceKind::Net, NamespaceState::Shared);
        s.namespaces
            .set(NamespaceKind::Ipc, NamespaceState::Unknown);
        let f = run(&w, s);
        let u = f.iter().find(|f| f.rule == "unsafe-sysctls").unwrap();
        assert_eq!(u.paths.len(), 6, "{u:?}");
    }

    #[test]
    fn global_sysctls_are_unsafe_whatever_the_namespaces() {
        let (w, mut s) = isolated_container();
        s.sysctls = sysctls(&[
            "kernel.panic",
            "vm.overcommit_memory",
            "kernel.shm_rmid_forced",
        ]);
        let f = run(&w, s);
        assert_eq!(f[0].rule, "unsafe-sysctls");
        assert_eq!(f[0].paths, vec!["kernel.panic", "vm.overcommit_memory"]);
    }
}
