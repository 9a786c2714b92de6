//! `unmasked-proc`: the runtime does not mask sensitive /proc and /sys paths (/proc/kcore,
//! /proc/keys, /proc/timer_list, ...), e.g. Kubernetes `procMount: Unmasked`.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "unmasked-proc",
    severity: Severity::Medium,
    title: "Sensitive /proc paths not masked",
    help: "Keep the runtime's default masked paths (Kubernetes procMount: Default).",
};

/// Paths every runtime masks by default; missing any of them is a finding.
const MUST_MASK: [&str; 3] = ["/proc/kcore", "/proc/keys", "/proc/timer_list"];

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.subject.privileged {
        return;
    }
    let Some(masked) = &cx.subject.masked_paths else {
        return;
    };
    let missing: Vec<String> = MUST_MASK
        .iter()
        .filter(|p| !masked.iter().any(|m| m == *p))
        .map(|p| p.to_string())
        .collect();
    if !missing.is_empty() {
        let mut f = cx.finding(
            &INFO,
            Severity::Medium,
            format!("does not mask {}", missing.join(", ")),
        );
        f.paths = missing;
        out.push(f);
    }
}
