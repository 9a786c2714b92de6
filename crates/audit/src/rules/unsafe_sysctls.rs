//! `unsafe-sysctls`: kernel parameters outside the namespaced, safe set that Kubernetes allows
//! by default: they change the node for every workload.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

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

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() {
        return;
    }
    let unsafe_names: Vec<String> = cx
        .subject
        .sysctls
        .iter()
        .map(|s| s.name.replace('/', "."))
        .filter(|n| !SAFE_SYSCTLS.contains(&n.as_str()) && n != "net.ipv4.tcp_wmem")
        .collect();
    if !unsafe_names.is_empty() {
        let mut f = cx.finding(
            &INFO,
            Severity::Medium,
            format!("sets unsafe sysctls: {}", unsafe_names.join(", ")),
        );
        f.paths = unsafe_names;
        out.push(f);
    }
}
