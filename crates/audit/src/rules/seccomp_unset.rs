//! `seccomp-unset`: a Kubernetes pod or container that names no seccomp profile. The kubelet
//! then runs it Unconfined unless it was started with `--seccomp-default` (beta since 1.25, off
//! by default), which the manifest cannot show. Checkov reports the same (CKV_K8S_31).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::{SeccompMode, WorkloadKind};

pub const INFO: RuleInfo = RuleInfo {
    id: "seccomp-unset",
    severity: Severity::Low,
    title: "No seccomp profile set",
    help: "Set securityContext.seccompProfile.type: RuntimeDefault (pod or container level).",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    // Only a manifest leaves it to the node: a live process's filter is measured, Docker and
    // OCI configs say what the runtime does (seccomp-disabled judges those).
    if !matches!(cx.workload.kind, WorkloadKind::KubernetesObject { .. })
        || !cx.expects_isolation()
        || cx.privileged()
    {
        return;
    }
    if cx.subject.seccomp.mode == SeccompMode::Unknown && cx.subject.seccomp.profile.is_none() {
        out.push(cx.finding(
            &INFO,
            Severity::Low,
            "sets no seccomp profile: Unconfined unless the kubelet runs with --seccomp-default"
                .into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{Seccomp, SeccompMode, WorkloadKind};

    fn pod() -> WorkloadKind {
        WorkloadKind::KubernetesObject {
            api_version: "v1".into(),
            kind: "Pod".into(),
        }
    }

    #[test]
    fn unset_seccomp_in_a_manifest_is_low() {
        let (mut w, mut s) = isolated_container();
        w.kind = pod();
        s.seccomp = Seccomp::default();
        let f = run(&w, s.clone());
        assert_eq!(rules(&f), vec!["seccomp-unset"]);
        assert_eq!(f[0].severity, crate::Severity::Low);
        assert!(f[0].message.contains("--seccomp-default"));
        // RuntimeDefault: nothing; Unconfined: seccomp-disabled, not this.
        s.seccomp.mode = SeccompMode::Filter;
        assert_eq!(run(&w, s.clone()), vec![]);
        s.seccomp.mode = SeccompMode::Disabled;
        assert_eq!(rules(&run(&w, s)), vec!["seccomp-disabled"]);
    }

    #[test]
    fn other_sources_do_not_leave_seccomp_to_the_node() {
        let (w, mut s) = isolated_container();
        s.seccomp = Seccomp::default();
        assert_eq!(run(&w, s), vec![]);
    }
}
