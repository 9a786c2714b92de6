//! `privileged`: the subject runs privileged (all capabilities, all devices, no seccomp/LSM).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "privileged",
    severity: Severity::Critical,
    title: "Privileged container",
    help: "Remove privileged mode; grant only the capabilities and devices the workload needs.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if cx.subject.privileged {
        out.push(cx.finding(
            &INFO,
            Severity::Critical,
            "runs privileged: every capability, every host device, no seccomp or LSM confinement"
                .into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    #[test]
    fn flags_privileged_only() {
        let (w, mut s) = isolated_container();
        assert!(!rules(&run(&w, s.clone())).contains(&"privileged".to_string()));
        s.privileged = true;
        assert!(rules(&run(&w, s)).contains(&"privileged".to_string()));
    }
}
