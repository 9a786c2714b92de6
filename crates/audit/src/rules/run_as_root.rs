//! `run-as-root`: the subject runs as uid 0 of the host user namespace.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "run-as-root",
    severity: Severity::Low,
    title: "Runs as root",
    help: "Run as a non-root uid (Kubernetes runAsNonRoot/runAsUser, Docker --user) or in a \
           user namespace.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || !cx.caps_count_on_host() {
        return;
    }
    if cx.subject.user.uid == Some(0) {
        out.push(cx.finding(
            &INFO,
            Severity::Low,
            "runs as uid 0 (root) of the host user namespace".into(),
        ));
    }
}
