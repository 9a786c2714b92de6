//! procMount (baseline) and procMount_restricted: containers keep the default
//! masked /proc. From v1.35 baseline allows any procMount in a user namespace
//! (`hostUsers: false`); restricted keeps the unconditional v1.0 rule.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{containers, in_user_namespace, join_quote, pluralize, Forbidden};

pub(crate) fn proc_mount_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut bad_types = BTreeSet::new();
    for c in containers(spec) {
        if let Some(proc_mount) = c.security_context.and_then(|sc| sc.proc_mount.as_deref()) {
            if proc_mount != "Default" {
                bad_containers.push(c.name);
                bad_types.insert(proc_mount);
            }
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Forbidden::new(
        "procMount",
        format!(
            "{} {} must not set securityContext.procMount to {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            join_quote(&bad_types)
        ),
    )
}

pub(crate) fn proc_mount_baseline_1_35(meta: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    if in_user_namespace(spec) {
        return None;
    }
    proc_mount_1_0(meta, spec)
}
