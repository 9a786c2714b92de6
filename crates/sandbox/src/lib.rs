//! watertight's layered sandbox. `contain.rs` tells the whole story in order; each layer lives
//! in its own module under `layers/`. The profile (`profile.rs`) says which layers apply and
//! how; the plan (`plan/`) is the one value computed from it before anything is created, which
//! `contain.rs` applies and the auditor reads as a model; the verdict (`verdict.rs`) says what
//! happened.

#![forbid(unsafe_code)]

pub mod bpf_load;
pub mod contain;
pub mod error;
pub mod events;
pub mod forensic;
pub mod layers;
pub mod output;
pub mod plan;
pub mod profile;
pub mod report;
pub mod size;
pub mod stdio;
pub mod supervise;
pub mod syscall;
pub mod terminal;
pub mod verdict;
pub mod violation;

pub use contain::{run, Job};
pub use error::Error;
pub use plan::{Plan, PlanDigest};
pub use profile::{default_profile, Profile};
pub use size::Size;
pub use verdict::{ExitCodes, Status, Verdict};
