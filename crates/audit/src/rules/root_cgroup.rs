//! `root-cgroup`: a container or sandbox process sits in the host's root cgroup, outside every
//! resource limit and device rule (its /proc/PID/cgroup reads `0::/` from the host's view).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "root-cgroup",
    severity: Severity::Medium,
    title: "Runs in the host's root cgroup",
    help: "Start the workload in its own cgroup (the runtime's cgroup parent) with limits.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    if !cx.expects_isolation() || cx.subject.cgroup_path.as_deref() != Some("/") {
        return;
    }
    out.push(cx.finding(
        &INFO,
        Severity::Medium,
        "runs in the host's root cgroup: no memory, pids or device limits apply".into(),
    ));
}
