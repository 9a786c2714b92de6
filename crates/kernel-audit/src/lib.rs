//! `watertight audit kernel`: which published Linux kernel CVEs affect a kernel, which of them a
//! default watertight sandbox can reach, and how hardened the running kernel is.
//!
//! - [`version`]: upstream version numbers and `uname -r` release strings (vendor suffixes).
//! - [`cve`]: one CVE and the per-branch "is version V affected" decision.
//! - [`records`]: parallel reading of the kernel CNA's CVE JSON 5.1 records.
//! - [`index`]: the compact binary index shipped to nodes.
//! - [`database`]: the loaded CVE set and its per-version queries.
//! - [`reachability`]: program-file prefixes a default sandbox cannot reach (data file).
//! - [`hardening`]: sysctls, LSMs and lockdown, read below a root directory.
//! - [`report`]: the report and upgrade advice, a `watertight_report::Report` (rows, table,
//!   metrics in `format`) that the shared writers print and `--fail-on` gates.

#![forbid(unsafe_code)]

pub mod cve;
pub mod database;
pub mod error;
mod format;
pub mod hardening;
pub mod index;
pub mod policy;
pub mod reachability;
pub mod records;
#[allow(missing_docs)]
pub mod report;
pub mod version;

pub use cve::{CveRecord, Severity};
pub use database::CveDatabase;
pub use error::KernelAuditError;
pub use hardening::{HardeningCheck, HardeningReader};
pub use policy::{RiskChoice, RiskPolicy};
pub use reachability::{IsolationTier, PerTier, ReachabilityMap, TierMaps};
pub use report::{audit, AuditInput, KernelReport};
pub use version::{KernelRelease, KernelVersion};
pub use watertight_report::{render, FailOn, Format};
