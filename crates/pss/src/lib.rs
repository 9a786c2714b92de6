//! Kubernetes Pod Security Standards, evaluated the way the upstream
//! `k8s.io/pod-security-admission` library evaluates them.
//!
//! * [`load_path`] / [`parse_documents`] turn YAML or JSON manifests (multi-document
//!   files, `kind: List`, every built-in workload kind) into [`Workload`]s: the pod
//!   metadata and pod spec that admission would check.
//! * [`evaluate`] runs the checks of one [`Level`] at one policy [`Version`] and
//!   returns upstream's check ids, forbidden reasons and details.
//!
//! The check catalogue (ids, per-version revisions and restricted-overrides-baseline
//! rules) lives in [`checks`](crate::checks()); each check has its own module under
//! `src/checks/`.
#![forbid(unsafe_code)]

mod checks;
mod defaults;
mod evaluate;
mod level;
mod load;

pub use k8s_openapi;

pub use checks::{active_checks, checks, CheckInfo, CheckVersion};
pub use evaluate::{evaluate, Evaluation, Violation};
pub use level::{Level, ParseLevelError, ParseVersionError, Version, LATEST_MINOR};
pub use load::{
    load_path, load_path_excluding, load_text, parse_documents, LoadError, LoadReport, Positions,
    Workload,
};
