//! `runtime-floor`: a container `watertight-runc` started runs under the hardening floor its
//! runtime.toml gave it at start. Reported as info naming that floor when it is the node's
//! current one; medium when the node's floor has changed since (policy drift: the container
//! keeps the old floor until it is restarted).

use super::{Context, RuleInfo};
use crate::finding::{Finding, Severity};

pub const INFO: RuleInfo = RuleInfo {
    id: "runtime-floor",
    severity: Severity::Medium,
    title: "Started under a superseded runtime floor",
    help: "The container was started under an older /etc/watertight/runtime.toml; a running \
           container keeps the floor it started with. Restart it (kubectl rollout restart, \
           docker/podman restart) to put it under the current floor.",
};

pub fn check(cx: &Context, out: &mut Vec<Finding>) {
    let Some(floor) = cx.workload.plan.as_ref().and_then(|p| p.floor.as_ref()) else {
        return;
    };
    let (severity, message) = match &floor.current {
        Some(current) if current.digest == floor.digest => (
            Severity::Info,
            format!("under floor {} {}", floor.version, floor.digest),
        ),
        Some(current) => (
            Severity::Medium,
            format!(
                "started under a superseded floor {} {}, current {} {}: restart it (kubectl rollout restart)",
                floor.version, floor.digest, current.version, current.digest
            ),
        ),
        None => (
            Severity::Info,
            format!(
                "under floor {} {} (the node's current floor could not be read)",
                floor.version, floor.digest
            ),
        ),
    };
    let mut f = cx.finding(&INFO, severity, message);
    f.paths = vec![floor.digest.clone()];
    out.push(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use watertight_model::{FloorId, WorkloadFloor, WorkloadPlan};

    fn under(current: Option<&str>) -> Vec<Finding> {
        let (mut w, s) = isolated_container();
        w.plan = Some(Box::new(WorkloadPlan {
            digest: "of container c1".into(),
            subject: s.clone(),
            floor: Some(WorkloadFloor {
                container_id: "c1".into(),
                digest: "sha256:old".into(),
                version: "v1".into(),
                current: current.map(|d| FloorId {
                    digest: d.into(),
                    version: "v2".into(),
                }),
            }),
        }));
        w.subjects = vec![s];
        crate::rules::evaluate(&w, "host:n1")
            .into_iter()
            .filter(|f| f.rule == "runtime-floor")
            .collect()
    }

    #[test]
    fn the_current_floor_is_info_a_superseded_one_medium() {
        let same = under(Some("sha256:old"));
        assert_eq!(same.len(), 1);
        assert_eq!(same[0].severity, Severity::Info);
        assert_eq!(same[0].message, "under floor v1 sha256:old");
        let drift = under(Some("sha256:new"));
        assert_eq!(drift[0].severity, Severity::Medium);
        assert_eq!(
            drift[0].message,
            "started under a superseded floor v1 sha256:old, current v2 sha256:new: restart it (kubectl rollout restart)"
        );
        assert_eq!(under(None)[0].severity, Severity::Info);
    }

    #[test]
    fn a_container_without_a_published_floor_has_no_finding() {
        let (mut w, s) = isolated_container();
        w.subjects = vec![s];
        assert!(crate::rules::evaluate(&w, "host:n1")
            .iter()
            .all(|f| f.rule != "runtime-floor"));
    }
}
