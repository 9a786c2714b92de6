//! sysctls (baseline): only namespaced, pod-isolated ("safe") sysctls. The safe set
//! grows with the policy version.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Forbidden;

const SAFE_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const ADDED_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const ADDED_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const ADDED_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
const ADDED_1_37: &[&str] = &[
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

fn check(spec: &PodSpec, safe_sets: &[&[&str]]) -> Option<Forbidden> {
    let forbidden: Vec<&str> = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.sysctls.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| !safe_sets.iter().any(|set| set.contains(name)))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    Forbidden::new("forbidden sysctls", forbidden.join(", "))
}

pub(crate) fn sysctls_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(spec, &[SAFE_1_0])
}

pub(crate) fn sysctls_1_27(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(spec, &[SAFE_1_0, ADDED_1_27])
}

pub(crate) fn sysctls_1_29(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(spec, &[SAFE_1_0, ADDED_1_27, ADDED_1_29])
}

pub(crate) fn sysctls_1_32(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(spec, &[SAFE_1_0, ADDED_1_27, ADDED_1_29, ADDED_1_32])
}

pub(crate) fn sysctls_1_37(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(
        spec,
        &[SAFE_1_0, ADDED_1_27, ADDED_1_29, ADDED_1_32, ADDED_1_37],
    )
}
