//! `seccomp-disabled`: no seccomp filter: the whole kernel system-call surface is reachable.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::SeccompMode;

pub const INFO: RuleInfo = RuleInfo {
    id: "seccomp-disabled",
    severity: Severity::Medium,
    title: "No seccomp filter",
    help: "Use the runtime's default seccomp profile (Kubernetes seccompProfile: RuntimeDefault).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.privileged() {
        return;
    }
    if cx.subject.seccomp.mode == SeccompMode::Disabled {
        let why = match &cx.subject.seccomp.profile {
            Some(p) => format!(" (profile {p})"),
            None => String::new(),
        };
        out.push(cx.finding(
            &INFO,
            Severity::Medium,
            format!("runs without a seccomp filter{why}: every system call is reachable"),
        ));
    }
}
