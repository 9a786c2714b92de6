//! seccompProfile_baseline (no Unconfined profile; annotations before v1.19, fields
//! from v1.19) and seccompProfile_restricted (a RuntimeDefault or Localhost profile
//! is required for every container, from the pod or the container).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{containers, go_quote, is_windows, join_quote, pluralize, Forbidden};

const ANNOTATION_KEY_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const ANNOTATION_KEY_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn valid_type(profile_type: &str) -> bool {
    matches!(profile_type, "Localhost" | "RuntimeDefault")
}

fn valid_annotation_value(value: &str) -> bool {
    value == "runtime/default" || value == "docker/default" || value.starts_with("localhost/")
}

pub(crate) fn seccomp_profile_baseline_1_0(meta: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let annotations = meta.annotations.as_ref();
    let lookup = |key: &str| annotations.and_then(|a| a.get(key));
    let mut forbidden = BTreeSet::new();
    if let Some(value) = lookup(ANNOTATION_KEY_POD) {
        if !valid_annotation_value(value) {
            forbidden.insert(format!("{ANNOTATION_KEY_POD}={}", go_quote(value)));
        }
    }
    for c in containers(spec) {
        let key = format!("{ANNOTATION_KEY_CONTAINER_PREFIX}{}", c.name);
        if let Some(value) = lookup(&key) {
            if !valid_annotation_value(value) {
                forbidden.insert(format!("{key}={}", go_quote(value)));
            }
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    let list: Vec<String> = forbidden.into_iter().collect();
    Forbidden::new(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", list.len()),
            list.join(", ")
        ),
    )
}

/// Shared by the v1.19 baseline and restricted revisions. `require_profile` makes
/// an unset profile (no valid pod-level default) a violation too.
fn seccomp_fields(spec: &PodSpec, require_profile: bool) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let mut pod_profile_set = false;
    if let Some(profile) = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
    {
        if valid_type(&profile.type_) {
            pod_profile_set = true;
        } else {
            setters.push("pod".to_string());
            bad_values.insert(profile.type_.as_str());
        }
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(profile) => {
                if !valid_type(&profile.type_) {
                    explicitly_bad.push(c.name);
                    bad_values.insert(profile.type_.as_str());
                }
            }
            None => {
                if !pod_profile_set {
                    implicitly_bad.push(c.name);
                }
            }
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", explicitly_bad.len()),
            join_quote(&explicitly_bad)
        ));
    }
    if !setters.is_empty() {
        return Forbidden::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&bad_values)
            ),
        );
    }
    if require_profile && !implicitly_bad.is_empty() {
        return Forbidden::new(
            "seccompProfile",
            format!(
                "pod or {} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                pluralize("container", "containers", implicitly_bad.len()),
                join_quote(&implicitly_bad)
            ),
        );
    }
    None
}

pub(crate) fn seccomp_profile_baseline_1_19(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    seccomp_fields(spec, false)
}

pub(crate) fn seccomp_profile_restricted_1_19(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    seccomp_fields(spec, true)
}

/// From v1.25 Windows pods are exempt: seccomp does not exist there.
pub(crate) fn seccomp_profile_restricted_1_25(
    meta: &ObjectMeta,
    spec: &PodSpec,
) -> Option<Forbidden> {
    if is_windows(spec) {
        return None;
    }
    seccomp_profile_restricted_1_19(meta, spec)
}
