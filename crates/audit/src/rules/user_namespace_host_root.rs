//! `user-namespace-host-root`: the subject has its own user namespace, but its uid map makes
//! some uid inside the host's root: files it creates as that uid are root's on the host.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{NamespaceKind, NamespaceState};

pub const INFO: RuleInfo = RuleInfo {
    id: "user-namespace-host-root",
    severity: Severity::High,
    title: "User namespace maps to host root",
    help: "Map the namespace to an unprivileged subordinate range (e.g. 100000-165535), never to uid 0.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if cx.subject.namespaces.get(NamespaceKind::User) != NamespaceState::Isolated {
        return;
    }
    let Some(map) = &cx.subject.uid_map else {
        return;
    };
    if let Some(m) = map.iter().find(|m| m.maps_outside(0)) {
        let inside = m.inside + (0 - m.outside);
        out.push(cx.finding(
            &INFO,
            Severity::High,
            format!("its user namespace maps uid {inside} inside to uid 0 (root) on the host"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::IdMapping;

    #[test]
    fn root_mapping_is_flagged_subordinate_range_is_not() {
        let (w, mut s) = isolated_container();
        s.uid_map = Some(vec![IdMapping {
            inside: 0,
            outside: 100_000,
            count: 65_536,
        }]);
        assert_eq!(run(&w, s.clone()), vec![]);
        s.uid_map = Some(vec![IdMapping {
            inside: 0,
            outside: 0,
            count: 1,
        }]);
        let f = run(&w, s);
        assert_eq!(rules(&f), vec!["user-namespace-host-root"]);
        assert!(f[0].message.contains("uid 0 inside"), "{}", f[0].message);
    }
}
