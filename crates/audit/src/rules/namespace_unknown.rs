//! `namespace-unknown`: a live workload's namespace could not be compared with the host's
//! (the reference or the process was unreadable). Stated, never assumed isolated.

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::NamespaceState;

pub const INFO: RuleInfo = RuleInfo {
    id: "namespace-unknown",
    severity: Severity::Info,
    title: "Namespace isolation could not be determined",
    help: "Run the audit as root with the host PID namespace (or pass a readable --reference-pid).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    // Static sources leave runtime-dependent kinds unknown on purpose; only live gaps matter.
    if !cx.is_live() || !cx.expects_isolation() {
        return;
    }
    for kind in cx.subject.namespaces.kinds_in(NamespaceState::Unknown) {
        let mut f = cx.finding(
            &INFO,
            Severity::Info,
            format!(
                "cannot tell whether the {} namespace is the host's",
                kind.describe()
            ),
        );
        f.namespace = Some(kind.proc_name().to_string());
        out.push(f);
    }
}
