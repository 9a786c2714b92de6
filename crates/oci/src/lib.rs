#![forbid(unsafe_code)]
//! The OCI runtime core of `watertight-runc` (runc's model: no long-lived supervisor).
//!
//! A bundle's `config.json` becomes a [`plan::ContainerPlan`] with every check done before
//! anything exists (Firecracker jailer style: [`plan::ContainerPlan::new`] validates,
//! [`lifecycle::create`] acts). A field watertight cannot honour is refused with an error naming
//! its JSON path; unknown properties are ignored, as the OCI spec requires.
//!
//! `create` makes the state directory (`<root>/<id>/`, exclusive, flock'd for every command),
//! the exec fifo and the cgroup, then forks: an intermediate process joins namespaces by path,
//! unshares the new ones (the parent writes uid/gid maps), and forks the container init, which
//! mounts, pivots, sets hostname and sysctls, reports "created" and blocks opening `exec.fifo`
//! for writing. `start` opens the fifo for reading; init then sets identity, rlimits,
//! capabilities, no_new_privs and seccomp, and executes the process. `state` derives the status
//! from the init pid (checked against its recorded start time), the fifo and the freezer.
//!
//! Module map: `plan` (config.json -> plan), `mounts` (mount options, secure joins, the init's
//! mount steps), `cgroup` (OCI cgroupsPath across every hierarchy, resources, freezer),
//! `state` (the state directory and status), `init` (the container init's and exec's steps),
//! `lifecycle` (the commands), `hooks`, `signal`, `features` (the OCI features document and the
//! default spec).

pub mod cgroup;
mod error;
pub mod features;
pub mod hooks;
pub mod init;
pub mod lifecycle;
pub mod monitor;
pub mod mounts;
pub mod plan;
pub mod signal;
pub mod state;

pub use error::Error;

/// The OCI runtime spec version this runtime implements.
pub const OCI_VERSION: &str = "1.0.2";

/// The annotation that accepts running without an SELinux or AppArmor label being enforced on
/// a kernel that has neither LSM.
pub const ALLOW_UNENFORCED_LSM: &str = "run.oci.watertight/allow-unenforced-lsm";
