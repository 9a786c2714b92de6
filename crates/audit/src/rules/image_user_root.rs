//! `image-user-root`: a Kubernetes container that sets neither `runAsNonRoot: true` nor a
//! `runAsUser` (pod or container level) runs as whatever user its image names, and most images
//! name root (or none, which is root). Checkov reports the same (CKV_K8S_23, CKV_K8S_40).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};
use watertight_model::WorkloadKind;

pub const INFO: RuleInfo = RuleInfo {
    id: "image-user-root",
    severity: Severity::Low,
    title: "May run as the image's root user",
    help: "Set securityContext.runAsNonRoot: true (the kubelet then refuses an image user 0) \
           or runAsUser to a non-zero uid.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    // Docker and OCI configs resolve the user themselves (run-as-root judges uid 0 there); a
    // live process has a measured uid.
    if !matches!(cx.workload.kind, WorkloadKind::KubernetesObject { .. })
        || !cx.expects_isolation()
        || !cx.caps_count_on_host()
    {
        return;
    }
    let user = &cx.subject.user;
    if user.uid.is_none() && user.run_as_non_root != Some(true) {
        out.push(cx.finding(
            &INFO,
            Severity::Low,
            "sets neither runAsNonRoot nor runAsUser: runs as the image's user, which may be root"
                .into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use watertight_model::{NamespaceKind, NamespaceState, WorkloadKind};

    #[test]
    fn an_unset_user_in_a_manifest_may_be_root() {
        let (mut w, mut s) = isolated_container();
        w.kind = WorkloadKind::KubernetesObject {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
        };
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Shared);
        s.user.uid = None;
        let f = run(&w, s.clone());
        let r = rules(&f);
        assert!(r.contains(&"image-user-root".to_string()), "{r:?}");
        // runAsNonRoot: true, or a runAsUser: decided.
        s.user.run_as_non_root = Some(true);
        assert!(!rules(&run(&w, s.clone())).contains(&"image-user-root".to_string()));
        s.user.run_as_non_root = Some(false);
        s.user.uid = Some(1000);
        assert!(!rules(&run(&w, s.clone())).contains(&"image-user-root".to_string()));
        // runAsUser: 0 is run-as-root's, not a maybe.
        s.user.uid = Some(0);
        let r = rules(&run(&w, s.clone()));
        assert!(
            r.contains(&"run-as-root".to_string()) && !r.contains(&"image-user-root".to_string())
        );
        // In a user namespace of its own (hostUsers: false) root is not the host's.
        s.user.uid = None;
        s.namespaces
            .set(NamespaceKind::User, NamespaceState::Isolated);
        assert!(!rules(&run(&w, s)).contains(&"image-user-root".to_string()));
    }

    #[test]
    fn docker_configs_resolve_their_user() {
        let (w, mut s) = isolated_container();
        s.user.uid = None;
        assert_eq!(run(&w, s), vec![]);
    }
}
