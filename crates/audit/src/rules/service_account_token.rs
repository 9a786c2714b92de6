//! `service-account-token-privileged`: a privileged pod gets its Kubernetes service-account token
//! mounted automatically: escape the container and you also hold cluster credentials.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::LAST_KNOWN_CAP;

pub const INFO: RuleInfo = RuleInfo {
    id: "service-account-token-privileged",
    severity: Severity::Medium,
    title: "Service-account token in a privileged pod",
    help: "Set automountServiceAccountToken: false, or mount a token only where the API is used.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if cx.subject.service_account_token != Some(true) {
        return;
    }
    let caps = &cx.subject.capabilities;
    let full = caps
        .effective
        .is_some_and(|e| e.is_full(caps.last_cap.unwrap_or(LAST_KNOWN_CAP)));
    let admin = caps.added.iter().any(|c| {
        c.eq_ignore_ascii_case("SYS_ADMIN")
            || c.eq_ignore_ascii_case("CAP_SYS_ADMIN")
            || c.eq_ignore_ascii_case("ALL")
    });
    if cx.privileged() || full || admin {
        out.push(cx.finding(
            &INFO,
            Severity::Medium,
            "privileged container with an automounted service-account token".into(),
        ));
    }
}
