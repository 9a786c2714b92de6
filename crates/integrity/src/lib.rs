//! Exec-time integrity for watertight sandboxes.
//!
//! 1. [`Manifest`]: a signed (ed25519), deterministic list of an image tree's regular files
//!    (path, sha256, size, mode), symlinks and directories ([`manifest`]).
//! 2. [`verify_tree`]: checks a tree against a [`SignedManifest`] and returns a [`VerifiedTree`]
//!    (the `(dev, ino)` of every verified file), or names the first bad, missing or extra
//!    executable file.
//! 3. Kernel enforcement, in layers, probed by [`probe_enforcement`]:
//!    [`landlock_exec_ruleset`] (execute only beneath the verified tree) and [`ExecGate`] (BPF
//!    programs that SIGKILL any task of the sandbox cgroup that executes or maps as code a file
//!    whose `(dev, ino, generation)` was not verified).
//!
//! Everything here is safe Rust; the BPF programs are C (`bpf/`), compiled by clang at build time.

#![forbid(unsafe_code)]

mod error;
pub mod gate;
mod hash;
pub mod keys;
pub mod landlock_exec;
pub mod manifest;
pub mod probe;

pub use error::{Error, TreeProblem};
pub use gate::{ExecEvent, ExecGate, ExecWhat};
pub use keys::{SigningKey, VerifyingKey};
pub use landlock_exec::{landlock_exec_ruleset, landlock_exec_write_ruleset, PreparedRuleset};
pub use manifest::verify::{verify_tree, VerifiedFile, VerifiedTree};
pub use manifest::{Entry, Manifest, SignedManifest};
pub use probe::{probe_enforcement, EnforcementReport, Layer, LayerStatus};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
