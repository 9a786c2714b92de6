//! watertight-audit: finds isolation leaks on live hosts and in Kubernetes, Docker and OCI
//! configurations.
//!
//! Shape: `sources/*` turn one input (live `/proc`, YAML, `docker inspect`, `config.json`) into
//! [`watertight_model::Workload`]s; `rules/*` read only that model and emit [`Finding`]s;
//! `report/*` only format a [`Report`]; `fleet` merges many nodes' JSON reports; `accept` moves
//! the findings a Kubernetes object accepts by design, or a baseline file lists, with their
//! justification, out of the count.

#![forbid(unsafe_code)]

pub mod accept;
mod error;
mod finding;
pub mod fleet;
pub mod report;
pub mod rules;
pub mod sources;

pub use error::AuditError;
pub use finding::{Finding, Severity};
pub use report::{Format, InputError, PssEntry, PssViolation, Report, SkipReason, SkippedFile};

use watertight_model::{Origin, Workload};

/// Runs every rule over the workloads and returns the findings, most severe first.
pub fn audit_workloads(workloads: &[Workload]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for w in workloads {
        let source = source_label(&w.origin);
        findings.extend(rules::evaluate(w, &source));
    }
    report::sort_findings(&mut findings);
    findings
}

/// The `source` string of findings from a workload of this origin.
pub fn source_label(origin: &Origin) -> String {
    match origin {
        Origin::Live { host } => format!("host:{host}"),
        Origin::File { path, .. } => path.display().to_string(),
        Origin::SelfDescribed { tool } => tool.clone(),
    }
}
