//! hostProbesAndHostLifecycle (baseline, v1.34+): probes and lifecycle handlers must
//! not target another host (`httpGet.host` / `tcpSocket.host`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    HTTPGetAction, LifecycleHandler, PodSpec, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{containers, join_quote, pluralize, Forbidden};

fn hosts<'a>(
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
) -> impl Iterator<Item = &'a str> {
    let http = http_get.and_then(|h| h.host.as_deref());
    let tcp = tcp_socket.and_then(|t| t.host.as_deref());
    http.into_iter().chain(tcp).filter(|h| !h.is_empty())
}

fn probe_hosts(probe: Option<&Probe>) -> impl Iterator<Item = &str> {
    probe
        .into_iter()
        .flat_map(|p| hosts(p.http_get.as_ref(), p.tcp_socket.as_ref()))
}

fn handler_hosts(handler: Option<&LifecycleHandler>) -> impl Iterator<Item = &str> {
    handler
        .into_iter()
        .flat_map(|h| hosts(h.http_get.as_ref(), h.tcp_socket.as_ref()))
}

pub(crate) fn host_probes_and_host_lifecycle_1_34(
    _: &ObjectMeta,
    spec: &PodSpec,
) -> Option<Forbidden> {
    // Upstream collects both as sets: names come out sorted and deduplicated.
    let mut bad_containers = BTreeSet::new();
    let mut bad_hosts = BTreeSet::new();
    for c in containers(spec) {
        let lifecycle = c.lifecycle;
        let found: Vec<&str> = probe_hosts(c.liveness_probe)
            .chain(probe_hosts(c.readiness_probe))
            .chain(probe_hosts(c.startup_probe))
            .chain(handler_hosts(lifecycle.and_then(|l| l.post_start.as_ref())))
            .chain(handler_hosts(lifecycle.and_then(|l| l.pre_stop.as_ref())))
            .collect();
        if !found.is_empty() {
            bad_containers.insert(c.name);
            bad_hosts.extend(found);
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Forbidden::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                bad_hosts.len()
            ),
            join_quote(&bad_hosts)
        ),
    )
}
