//! The check catalogue: every upstream check id with its level, its revisions per
//! policy version, and which baseline checks a restricted revision replaces.
//!
//! Semantics follow upstream's `policy/registry.go`: for a policy version the
//! newest revision whose minimum version is not newer applies; restricted runs all
//! baseline checks except the ones named in an active restricted revision's
//! overrides, plus the restricted checks; results are ordered baseline ids first,
//! then restricted ids, each sorted.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSpec, Probe, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::level::{Level, Version};

mod allow_privilege_escalation;
mod app_armor;
mod capabilities;
mod host_namespaces;
mod host_path_volumes;
mod host_ports;
mod host_probes;
mod privileged;
mod proc_mount;
mod restricted_volumes;
mod run_as_non_root;
mod run_as_user;
mod se_linux;
mod seccomp;
mod sysctls;
mod windows_host_process;

/// Why a check refused a pod, in upstream's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forbidden {
    pub reason: String,
    pub detail: String,
}

impl Forbidden {
    pub(crate) fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Self> {
        Some(Forbidden {
            reason: reason.into(),
            detail: detail.into(),
        })
    }
}

/// A check revision: `None` allows the pod.
pub(crate) type CheckFn = fn(&ObjectMeta, &PodSpec) -> Option<Forbidden>;

/// One revision of a check, applying from policy `v1.<minimum_minor>` on.
#[derive(Debug, Clone, Copy)]
pub struct CheckVersion {
    /// The first policy minor version (`v1.<minimum_minor>`) this revision applies to.
    pub minimum_minor: u32,
    /// Baseline check ids this restricted revision replaces at the restricted level.
    pub overrides: &'static [&'static str],
    pub(crate) run: CheckFn,
}

/// A check as registered upstream.
#[derive(Debug, Clone, Copy)]
pub struct CheckInfo {
    /// Upstream's check id, e.g. `hostNamespaces`.
    pub id: &'static str,
    /// The lowest level that enforces the check.
    pub level: Level,
    /// Revisions, oldest first.
    pub versions: &'static [CheckVersion],
}

impl CheckInfo {
    /// The revision in force at policy minor version `minor`, if the check exists yet.
    pub fn version_for(&self, minor: u32) -> Option<&'static CheckVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.minimum_minor <= minor)
    }
}

const fn rev(minimum_minor: u32, run: CheckFn) -> CheckVersion {
    CheckVersion {
        minimum_minor,
        overrides: &[],
        run,
    }
}

const fn rev_overriding(
    minimum_minor: u32,
    overrides: &'static [&'static str],
    run: CheckFn,
) -> CheckVersion {
    CheckVersion {
        minimum_minor,
        overrides,
        run,
    }
}

const fn baseline(id: &'static str, versions: &'static [CheckVersion]) -> CheckInfo {
    CheckInfo {
        id,
        level: Level::Baseline,
        versions,
    }
}

const fn restricted(id: &'static str, versions: &'static [CheckVersion]) -> CheckInfo {
    CheckInfo {
        id,
        level: Level::Restricted,
        versions,
    }
}

/// Upstream's evaluation order: baseline ids sorted, then restricted ids sorted
/// (byte order, as Go's sort.Strings). A unit test keeps this table sorted.
static CHECKS: &[CheckInfo] = &[
    baseline(
        "appArmorProfile",
        &[rev(0, app_armor::app_armor_profile_1_0)],
    ),
    baseline(
        "capabilities_baseline",
        &[rev(0, capabilities::capabilities_baseline_1_0)],
    ),
    baseline(
        "hostNamespaces",
        &[rev(0, host_namespaces::host_namespaces_1_0)],
    ),
    baseline(
        "hostPathVolumes",
        &[rev(0, host_path_volumes::host_path_volumes_1_0)],
    ),
    baseline("hostPorts", &[rev(0, host_ports::host_ports_1_0)]),
    baseline(
        "hostProbesAndHostLifecycle",
        &[rev(34, host_probes::host_probes_and_host_lifecycle_1_34)],
    ),
    baseline("privileged", &[rev(0, privileged::privileged_1_0)]),
    baseline(
        "procMount",
        &[
            rev(0, proc_mount::proc_mount_1_0),
            rev(35, proc_mount::proc_mount_baseline_1_35),
        ],
    ),
    baseline(
        "seLinuxOptions",
        &[
            rev(0, se_linux::se_linux_options_1_0),
            rev(31, se_linux::se_linux_options_1_31),
        ],
    ),
    baseline(
        "seccompProfile_baseline",
        &[
            rev(0, seccomp::seccomp_profile_baseline_1_0),
            rev(19, seccomp::seccomp_profile_baseline_1_19),
        ],
    ),
    baseline(
        "sysctls",
        &[
            rev(0, sysctls::sysctls_1_0),
            rev(27, sysctls::sysctls_1_27),
            rev(29, sysctls::sysctls_1_29),
            rev(32, sysctls::sysctls_1_32),
            rev(37, sysctls::sysctls_1_37),
        ],
    ),
    baseline(
        "windowsHostProcess",
        &[rev(0, windows_host_process::windows_host_process_1_0)],
    ),
    restricted(
        "allowPrivilegeEscalation",
        &[
            rev(
                8,
                allow_privilege_escalation::allow_privilege_escalation_1_8,
            ),
            rev(
                25,
                allow_privilege_escalation::allow_privilege_escalation_1_25,
            ),
        ],
    ),
    restricted(
        "capabilities_restricted",
        &[
            rev_overriding(
                22,
                &["capabilities_baseline"],
                capabilities::capabilities_restricted_1_22,
            ),
            rev_overriding(
                25,
                &["capabilities_baseline"],
                capabilities::capabilities_restricted_1_25,
            ),
        ],
    ),
    restricted(
        "procMount_restricted",
        &[rev_overriding(
            35,
            &["procMount"],
            proc_mount::proc_mount_1_0,
        )],
    ),
    restricted(
        "restrictedVolumes",
        &[rev_overriding(
            0,
            &["hostPathVolumes"],
            restricted_volumes::restricted_volumes_1_0,
        )],
    ),
    restricted(
        "runAsNonRoot",
        &[
            rev(0, run_as_non_root::run_as_non_root_1_0),
            rev(35, run_as_non_root::run_as_non_root_1_35),
        ],
    ),
    restricted(
        "runAsUser",
        &[
            rev(23, run_as_user::run_as_user_1_23),
            rev(35, run_as_user::run_as_user_1_35),
        ],
    ),
    restricted(
        "seccompProfile_restricted",
        &[
            rev_overriding(
                19,
                &["seccompProfile_baseline"],
                seccomp::seccomp_profile_restricted_1_19,
            ),
            rev_overriding(
                25,
                &["seccompProfile_baseline"],
                seccomp::seccomp_profile_restricted_1_25,
            ),
        ],
    ),
];

/// Every registered check, baseline first, each level sorted by id.
pub fn checks() -> &'static [CheckInfo] {
    CHECKS
}

/// The checks (and the revision of each) that run for `level` at `version`, in
/// evaluation order. Empty for the privileged level.
pub fn active_checks(
    level: Level,
    version: Version,
) -> &'static [(&'static CheckInfo, &'static CheckVersion)] {
    // Resolved once per (level, version), as upstream's registry does at start-up.
    static TABLE: OnceLock<Vec<[ActiveChecks; 3]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..=crate::LATEST_MINOR)
            .map(|minor| {
                [Level::Privileged, Level::Baseline, Level::Restricted]
                    .map(|level| resolve(level, minor))
            })
            .collect()
    });
    let by_level = &table[version.effective_minor() as usize];
    match level {
        Level::Privileged => &by_level[0],
        Level::Baseline => &by_level[1],
        Level::Restricted => &by_level[2],
    }
}

type ActiveChecks = Vec<(&'static CheckInfo, &'static CheckVersion)>;

fn resolve(level: Level, minor: u32) -> ActiveChecks {
    let in_force = CHECKS
        .iter()
        .filter_map(|c| c.version_for(minor).map(|v| (c, v)));
    match level {
        Level::Privileged => Vec::new(),
        Level::Baseline => in_force
            .filter(|(c, _)| c.level == Level::Baseline)
            .collect(),
        Level::Restricted => {
            let all: Vec<_> = in_force.collect();
            let overridden: BTreeSet<&str> = all
                .iter()
                .filter(|(c, _)| c.level == Level::Restricted)
                .flat_map(|(_, v)| v.overrides.iter().copied())
                .collect();
            all.into_iter()
                .filter(|(c, _)| !(c.level == Level::Baseline && overridden.contains(c.id)))
                .collect()
        }
    }
}

/// A read-only view over the fields checks read from containers, init containers
/// and ephemeral containers (upstream casts all three to `Container`).
#[derive(Clone, Copy)]
pub(crate) struct ContainerView<'a> {
    pub name: &'a str,
    pub security_context: Option<&'a SecurityContext>,
    pub ports: &'a [ContainerPort],
    pub liveness_probe: Option<&'a Probe>,
    pub readiness_probe: Option<&'a Probe>,
    pub startup_probe: Option<&'a Probe>,
    pub lifecycle: Option<&'a Lifecycle>,
}

impl<'a> From<&'a Container> for ContainerView<'a> {
    fn from(c: &'a Container) -> Self {
        ContainerView {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

impl<'a> From<&'a EphemeralContainer> for ContainerView<'a> {
    fn from(c: &'a EphemeralContainer) -> Self {
        ContainerView {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

/// All containers in upstream's visiting order: init, regular, ephemeral.
pub(crate) fn containers(spec: &PodSpec) -> impl Iterator<Item = ContainerView<'_>> {
    spec.init_containers
        .iter()
        .flatten()
        .map(ContainerView::from)
        .chain(spec.containers.iter().map(ContainerView::from))
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(ContainerView::from),
        )
}

pub(crate) fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `"a", "b"`: upstream's joinQuote (no escaping inside the quotes).
pub(crate) fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let parts: Vec<String> = items
        .into_iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    parts.join(", ")
}

/// Go's `%q` for a string (strconv.Quote): a double-quoted, escaped literal.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True when the pod runs in a user namespace (`hostUsers: false`): upstream's
/// relaxPolicyForUserNamespacePod, unconditional since policy v1.35.
pub(crate) fn in_user_namespace(spec: &PodSpec) -> bool {
    spec.host_users == Some(false)
}

/// True for pods that declare `spec.os.name: windows`.
pub(crate) fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_upstream_order_and_well_formed() {
        let baseline: Vec<&str> = CHECKS
            .iter()
            .filter(|c| c.level == Level::Baseline)
            .map(|c| c.id)
            .collect();
        let restricted: Vec<&str> = CHECKS
            .iter()
            .filter(|c| c.level == Level::Restricted)
            .map(|c| c.id)
            .collect();
        let mut sorted_b = baseline.clone();
        sorted_b.sort_unstable();
        let mut sorted_r = restricted.clone();
        sorted_r.sort_unstable();
        assert_eq!(baseline, sorted_b);
        assert_eq!(restricted, sorted_r);
        let ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [baseline, restricted].concat(),
            "baseline before restricted"
        );
        let mut newest = 0;
        for c in CHECKS {
            assert!(!c.versions.is_empty(), "{}", c.id);
            assert!(
                c.versions
                    .windows(2)
                    .all(|w| w[0].minimum_minor < w[1].minimum_minor),
                "{} revisions must be strictly increasing",
                c.id
            );
            for v in c.versions {
                newest = newest.max(v.minimum_minor);
                for o in v.overrides {
                    assert_eq!(c.level, Level::Restricted, "{} overrides", c.id);
                    let target = CHECKS.iter().find(|t| t.id == *o).expect("override exists");
                    assert_eq!(target.level, Level::Baseline);
                }
            }
        }
        assert_eq!(
            newest,
            crate::LATEST_MINOR,
            "LATEST_MINOR must track the newest revision"
        );
    }

    #[test]
    fn overrides_replace_baseline_checks_only_at_restricted() {
        let ids = |level, minor| -> Vec<&str> {
            active_checks(level, Version::V { major: 1, minor })
                .iter()
                .map(|(c, _)| c.id)
                .collect()
        };
        let r21 = ids(Level::Restricted, 21);
        assert!(
            r21.contains(&"capabilities_baseline") && !r21.contains(&"capabilities_restricted")
        );
        let r22 = ids(Level::Restricted, 22);
        assert!(
            !r22.contains(&"capabilities_baseline") && r22.contains(&"capabilities_restricted")
        );
        assert!(!ids(Level::Restricted, 0).contains(&"hostPathVolumes"));
        assert!(ids(Level::Baseline, 37).contains(&"procMount"));
        assert!(!ids(Level::Restricted, 35).contains(&"procMount"));
        assert!(ids(Level::Restricted, 34).contains(&"procMount"));
        assert!(ids(Level::Privileged, 37).is_empty());
    }

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote("unconfined"), "\"unconfined\"");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(join_quote(["a", "b"]), "\"a\", \"b\"");
    }
}
