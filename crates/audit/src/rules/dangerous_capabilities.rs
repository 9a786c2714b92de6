//! `dangerous-capabilities`: capabilities that break out of a container or reach other workloads
//! (SYS_ADMIN, NET_ADMIN, NET_RAW, SYS_PTRACE, SYS_MODULE, BPF, PERFMON, ...).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{CapSet, LAST_KNOWN_CAP};

pub const INFO: RuleInfo = RuleInfo {
    id: "dangerous-capabilities",
    severity: Severity::High,
    title: "Holds dangerous capabilities",
    help: "Drop the listed capabilities; most workloads need none of them.",
};

/// Each dangerous capability and how dangerous it is in the host user namespace.
const DANGEROUS: [(&str, Severity); 10] = [
    ("SYS_ADMIN", Severity::High),
    ("SYS_MODULE", Severity::High),
    ("SYS_PTRACE", Severity::High),
    ("SYS_RAWIO", Severity::High),
    ("DAC_READ_SEARCH", Severity::High),
    ("BPF", Severity::High),
    ("NET_ADMIN", Severity::Medium),
    ("PERFMON", Severity::Medium),
    ("SYS_BOOT", Severity::Medium),
    ("NET_RAW", Severity::Low),
];

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || !cx.caps_count_on_host() || cx.subject.privileged {
        return;
    }
    let caps = &cx.subject.capabilities;
    let last = caps.last_cap.unwrap_or(LAST_KNOWN_CAP);
    if caps.effective.is_some_and(|e| e.is_full(last)) {
        return; // full-capabilities says it all
    }
    // Static sources: what the configuration adds; live: what the process holds.
    let added = caps.added.iter().filter(|n| CapSet::number_of(n).is_ok());
    let held = caps
        .effective
        .unwrap_or_default()
        .union(CapSet::from_names(added).unwrap_or_default());
    let mut names = Vec::new();
    let mut worst = None;
    for (name, severity) in DANGEROUS {
        if held.contains_name(name) {
            names.push(format!("CAP_{name}"));
            worst = worst.max(Some(severity));
        }
    }
    if let Some(severity) = worst {
        let mut f = cx.finding(
            &INFO,
            severity,
            format!("holds {} in the host user namespace", names.join(", ")),
        );
        f.paths = names;
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{CapSet, NamespaceKind, NamespaceState};

    #[test]
    fn added_sys_admin_is_high() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = None;
        s.capabilities.added = vec!["SYS_ADMIN".into(), "NET_RAW".into()];
        let f = run(&w, s);
        let d = f
            .iter()
            .find(|f| f.rule == "dangerous-capabilities")
            .unwrap();
        assert_eq!(d.severity, crate::Severity::High);
        assert_eq!(d.paths, vec!["CAP_SYS_ADMIN", "CAP_NET_RAW"]);
    }

    #[test]
    fn live_root_minus_sys_resource_is_dangerous_not_full() {
        let (w, mut s) = isolated_container();
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.capabilities.effective = Some(CapSet(0x1fffeffffff));
        s.capabilities.last_cap = Some(40);
        let r = rules(&run(&w, s));
        assert!(r.contains(&"dangerous-capabilities".into()));
        assert!(!r.contains(&"full-capabilities".into()));
    }
}
