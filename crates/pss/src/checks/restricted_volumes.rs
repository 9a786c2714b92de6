//! restrictedVolumes (restricted): only ephemeral, projected-data and PVC-backed
//! volume types. Replaces hostPathVolumes at the restricted level.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{go_quote, Forbidden};

fn allowed(v: &Volume) -> bool {
    // A volume with no source at all is also refused, as upstream's switch does.
    v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.image.is_some()
        || v.persistent_volume_claim.is_some()
        || v.projected.is_some()
        || v.secret.is_some()
}

pub(crate) fn restricted_volumes_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    let names: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| !allowed(v))
        .map(|v| v.name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    // Go's %q of a []string: ["a" "b"].
    let quoted: Vec<String> = names.iter().map(|n| go_quote(n)).collect();
    Forbidden::new(
        "restricted volume types",
        format!("volumes [{}] have restricted types", quoted.join(" ")),
    )
}
