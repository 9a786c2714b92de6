#![forbid(unsafe_code)]
//! cgroup drivers for watertight sandboxes on cgroup v1, pure cgroup v2 and hybrid hosts.
//!
//! [`detect`] finds where each controller lives once per supervisor; a [`Plan`] checks the
//! [`Limits`] and picks the hierarchies without touching anything; [`Plan::create`] (or
//! [`Cgroup::create`], which does both) makes one sandbox's cgroup in every hierarchy it needs
//! (a handful of mkdir/write calls, rolled back on failure) and applies the limits; the handle
//! then places processes, reads [`Stats`], freezes, thaws, kills, and removes everything on
//! [`Cgroup::destroy`] or drop. [`cleanup_stale`] removes cgroups whose supervisor died.
//!
//! Every cgroup file operation goes through [`CgroupFs`] (`fs`): [`KernelFs`] on a host,
//! [`fake::FakeCgroupFs`] in tests, which run the v1, v2 and hybrid paths without root.
//!
//! Module map: `layout` (mount detection), `limits` (what may be used), `cgroup` (the plan and
//! the handle), `freezer` (freeze/thaw/kill), `stats` (accounting and file parsers),
//! `device_program` (cgroup v2 BPF device allowlist), `owner` (owner tag in names), `stale`
//! (cleanup), `fs` (the file seam), `fake` (the test tree).

mod cgroup;
pub mod device_program;
mod error;
pub mod fake;
mod freezer;
pub mod fs;
mod layout;
mod limits;
pub mod owner;
mod stale;
pub mod stats;

pub use cgroup::{dir_in, join_self, validate_name, Cgroup, Needs, Plan, DIR_PREFIX};
pub use error::Error;
pub use freezer::{parse_freezer_state, FreezerState};
pub use fs::{CgroupFs, KernelFs};
pub use layout::{
    detect, parse_mountinfo, CgroupMount, Controller, DeviceBackend, Layout, Mode, Placement,
};
pub use limits::{
    CpuQuota, DeviceKind, DeviceRule, Limits, CFS_PERIOD_US, CFS_QUOTA_US, MEMORY_BYTES, PIDS_MAX,
};
pub use stale::{cleanup_stale, Registry};
pub use stats::Stats;
