//! `no-new-privs`: NoNewPrivs is off, so setuid binaries and file capabilities can raise the
//! subject's privileges.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "no-new-privs",
    severity: Severity::Low,
    title: "Privilege escalation allowed (NoNewPrivs off)",
    help: "Set no-new-privileges (Kubernetes allowPrivilegeEscalation: false, Docker \
           --security-opt no-new-privileges, OCI noNewPrivileges: true).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.privileged() {
        return;
    }
    if cx.subject.no_new_privs == Some(false) {
        out.push(cx.finding(
            &INFO,
            Severity::Low,
            "NoNewPrivs is off: setuid binaries and file capabilities can raise privileges".into(),
        ));
    }
}
