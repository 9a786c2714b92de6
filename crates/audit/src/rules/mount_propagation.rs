//! `mount-propagation`: mounts that propagate between the workload and the host. Bidirectional
//! (shared) propagation lets a mount made inside, such as a tmpfs holding a secret, appear on
//! the host, and host mounts appear inside; host-to-container (slave) only the latter.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::Propagation;

pub const INFO: RuleInfo = RuleInfo {
    id: "mount-propagation",
    severity: Severity::High,
    title: "Mount propagation with the host",
    help: "Use private propagation (Kubernetes mountPropagation: None, Docker/OCI rprivate).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() {
        return;
    }
    for (propagation, severity, words) in [
        (
            Propagation::Bidirectional,
            Severity::High,
            "propagate both ways with the host (mounts made inside appear on the host)",
        ),
        (
            Propagation::HostToContainer,
            Severity::Low,
            "receive mounts from the host (host-to-container propagation)",
        ),
    ] {
        let targets: Vec<String> = cx
            .subject
            .mounts
            .iter()
            .filter(|m| m.propagation == propagation)
            .map(|m| m.target.clone())
            .collect();
        if targets.is_empty() {
            continue;
        }
        const SHOWN: usize = 5;
        let mut list = targets
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if targets.len() > SHOWN {
            list.push_str(&format!(" and {} more", targets.len() - SHOWN));
        }
        let noun = if targets.len() == 1 {
            "mount"
        } else {
            "mounts"
        };
        let mut f = cx.finding(
            &INFO,
            severity,
            format!("{} {noun} {words}: {list}", targets.len()),
        );
        f.paths = targets;
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{Mount, Propagation};

    #[test]
    fn bidirectional_is_high_with_paths() {
        let (w, mut s) = isolated_container();
        s.mounts = vec![Mount {
            target: "/secrets".into(),
            propagation: Propagation::Bidirectional,
            ..Mount::default()
        }];
        let f = run(&w, s);
        assert_eq!(rules(&f), vec!["mount-propagation"]);
        assert_eq!(f[0].severity, crate::Severity::High);
        assert_eq!(f[0].paths, vec!["/secrets"]);
    }
}
