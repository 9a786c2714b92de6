//! `full-capabilities`: the effective set holds every capability the kernel has
//! (measured against `cap_last_cap`), in the host user namespace.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::LAST_KNOWN_CAP;

pub const INFO: RuleInfo = RuleInfo {
    id: "full-capabilities",
    severity: Severity::Critical,
    title: "Holds every capability",
    help: "Drop all capabilities and add back only those the workload needs.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || !cx.caps_count_on_host() || cx.privileged() {
        return;
    }
    let caps = &cx.subject.capabilities;
    let last = caps.last_cap.unwrap_or(LAST_KNOWN_CAP);
    if caps.effective.is_some_and(|e| e.is_full(last)) {
        out.push(cx.finding(
            &INFO,
            Severity::Critical,
            format!("holds every capability (0..={last}) in the host user namespace"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{CapSet, NamespaceKind, NamespaceState};

    #[test]
    fn full_set_in_host_userns_is_critical() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = Some(CapSet::full(40));
        s.capabilities.last_cap = Some(40);
        assert!(rules(&run(&w, s.clone())).contains(&"full-capabilities".into()));
        // Namespaced capabilities do not count on the host.
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Isolated);
        assert!(!rules(&run(&w, s.clone())).contains(&"full-capabilities".into()));
        // Root here lacks CAP_SYS_RESOURCE: not full.
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = Some(CapSet(0x1fffeffffff));
        assert!(!rules(&run(&w, s)).contains(&"full-capabilities".into()));
    }
}
