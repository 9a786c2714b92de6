//! Running the active checks of a level and version against one pod.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::checks::active_checks;
use crate::level::{Level, Version};

/// One failed check: upstream's check id, forbidden reason and forbidden detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Upstream's check id.
    pub check: String,
    /// Upstream's forbidden reason, e.g. `host namespaces`.
    pub reason: String,
    /// Upstream's forbidden detail: what in the pod broke the check.
    pub detail: String,
}

/// The verdict for one pod at one level and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The level evaluated.
    pub level: Level,
    /// The version as requested (`latest` stays `latest`; see
    /// [`Version::effective_minor`] for the version the checks ran at).
    pub version: Version,
    /// Whether the pod passes every check of the level.
    pub allowed: bool,
    /// In upstream's order: baseline checks by id, then restricted checks by id.
    pub violations: Vec<Violation>,
}

impl Evaluation {
    /// Upstream's aggregated message, e.g.
    /// `host namespaces (hostNetwork=true), privileged (container "a" must not ...)`.
    pub fn forbidden_detail(&self) -> String {
        self.violations
            .iter()
            .map(|v| {
                if v.detail.is_empty() {
                    v.reason.clone()
                } else {
                    format!("{} ({})", v.reason, v.detail)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Evaluates a pod (its metadata and spec; for workloads, the pod template's) the
/// way `pod-security-admission` does. The privileged level allows everything.
pub fn evaluate(meta: &ObjectMeta, spec: &PodSpec, level: Level, version: Version) -> Evaluation {
    let violations: Vec<Violation> = active_checks(level, version)
        .iter()
        .filter_map(|(check, revision)| {
            (revision.run)(meta, spec).map(|f| Violation {
                check: check.id.to_string(),
                reason: f.reason,
                detail: f.detail,
            })
        })
        .collect();
    Evaluation {
        level,
        version,
        allowed: violations.is_empty(),
        violations,
    }
}
