//! seLinuxOptions (baseline): only container SELinux types; user and role must be unset.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, SELinuxOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{containers, join_quote, pluralize, Forbidden};

const ALLOWED_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const ALLOWED_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

pub(crate) fn se_linux_options_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(spec, ALLOWED_TYPES_1_0)
}

pub(crate) fn se_linux_options_1_31(_: &ObjectMeta, spec: &PodSpec) -> Option<Forbidden> {
    check(spec, ALLOWED_TYPES_1_31)
}

#[derive(Default)]
struct Findings<'a> {
    bad_types: BTreeSet<&'a str>,
    set_user: bool,
    set_role: bool,
}

impl<'a> Findings<'a> {
    fn valid(&mut self, opts: &'a SELinuxOptions, allowed: &[&str]) -> bool {
        let mut valid = true;
        let type_ = opts.type_.as_deref().unwrap_or_default();
        if !allowed.contains(&type_) {
            valid = false;
            self.bad_types.insert(type_);
        }
        if opts.user.as_deref().is_some_and(|u| !u.is_empty()) {
            valid = false;
            self.set_user = true;
        }
        if opts.role.as_deref().is_some_and(|r| !r.is_empty()) {
            valid = false;
            self.set_role = true;
        }
        valid
    }
}

fn check(spec: &PodSpec, allowed: &[&str]) -> Option<Forbidden> {
    let mut findings = Findings::default();
    let mut setters = Vec::new();
    if let Some(opts) = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref())
    {
        if !findings.valid(opts, allowed) {
            setters.push("pod".to_string());
        }
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(opts) = c
            .security_context
            .and_then(|sc| sc.se_linux_options.as_ref())
        {
            if !findings.valid(opts, allowed) {
                bad_containers.push(c.name);
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
    if setters.is_empty() {
        return None;
    }
    let mut bad_data = Vec::new();
    // Upstream only lists user/role problems when a bad type was also found; kept
    // as-is so details match the library byte for byte.
    if !findings.bad_types.is_empty() {
        bad_data.push(format!(
            "{} {}",
            pluralize("type", "types", findings.bad_types.len()),
            join_quote(&findings.bad_types)
        ));
        if findings.set_user {
            bad_data.push("user may not be set".to_string());
        }
        if findings.set_role {
            bad_data.push("role may not be set".to_string());
        }
    }
    Forbidden::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            bad_data.join("; ")
        ),
    )
}
