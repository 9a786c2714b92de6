//! `host-ports`: the workload binds ports on the host's addresses.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "host-ports",
    severity: Severity::Low,
    title: "Binds host ports",
    help: "Expose the workload through a Service or load balancer instead of host ports.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.subject.host_ports.is_empty() {
        return;
    }
    let ports: Vec<String> = cx
        .subject
        .host_ports
        .iter()
        .map(|p| format!("{}/{}", p.host_port, p.protocol.to_ascii_lowercase()))
        .collect();
    let mut f = cx.finding(
        &INFO,
        Severity::Low,
        format!("binds host ports {}", ports.join(", ")),
    );
    f.paths = ports;
    out.push(f);
}
