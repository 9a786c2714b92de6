//! appArmorProfile (baseline): AppArmor may not be disabled or overridden, through
//! the `appArmorProfile` fields or the deprecated per-container annotations.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{containers, go_quote, join_quote, pluralize, Forbidden};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_annotation_value(profile: &str) -> bool {
    profile.is_empty() || profile == "runtime/default" || profile.starts_with("localhost/")
}

fn allowed_profile_type(profile: &str) -> bool {
    matches!(profile, "RuntimeDefault" | "Localhost")
}

pub(crate) fn app_armor_profile_1_0(meta: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();

    if let Some(profile) = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref())
    {
        if !allowed_profile_type(&profile.type_) {
            setters.push("pod".to_string());
            bad_values.insert(profile.type_.clone());
        }
    }

    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(profile) = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref())
        {
            if !allowed_profile_type(&profile.type_) {
                bad_containers.push(c.name);
                bad_values.insert(profile.type_.clone());
            }
        }
    }
    if !bad_containers.is_empty() {
        setters.push(format!(
            "{} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers)
        ));
    }

    let mut bad_annotations: Vec<String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| k.starts_with(ANNOTATION_PREFIX) && !allowed_annotation_value(v))
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    bad_annotations.sort();

    let mut value_list: Vec<String> = bad_values.into_iter().collect();
    if !bad_annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", bad_annotations.len()).to_string());
        value_list.extend(bad_annotations);
    }

    if setters.is_empty() {
        return None;
    }
    Forbidden::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            value_list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&value_list)
        ),
    )
}
