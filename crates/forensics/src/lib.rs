#![forbid(unsafe_code)]
//! Forensic evidence bundles of a frozen sandbox (`watertight run --on-violation forensic`).
//!
//! [`capture`] writes, for every frozen task, its /proc state (status, cmdline, environ, maps,
//! fds with targets, mountinfo, cgroup, namespaces, kernel stack), the sandbox's socket tables,
//! each writable layer as a tar, the event log and the verdict into a new bundle directory,
//! hashing every file as it is written, and signs a manifest of all of them with the host
//! evidence key (ed25519). [`verify`] checks the signature and every hash; [`summarize`]
//! renders `evidence show`.
//!
//! Module map: `capture` (the request and orchestration), `budget` (the bundle's byte budget),
//! `task` (per-task /proc files and net tables), `layer` (writable dir -> tar without following
//! symlinks, hard links as links, sparse files as sparse entries), `text` (sandbox strings
//! stored losslessly and quoted for display), `bundle` (temp dir,
//! hashing file writer, seal and rename), `hashing` (hash-while-writing), `manifest` (canonical
//! manifest and signature file), `signing` (ed25519 and the host key file), `verify`,
//! `summary`, `record` (`capture.json`), `error`.

mod budget;
mod bundle;
mod capture;
mod error;
mod hashing;
mod layer;
pub mod manifest;
pub mod record;
mod signing;
mod summary;
mod task;
pub mod text;
mod verify;

pub use budget::TASK_FLOOR;
pub use capture::{capture, capture_report, CaptureRequest, Captured, DEFAULT_EVIDENCE_DIR};
pub use error::Error;
pub use signing::{load_or_create_host_key, DEFAULT_KEY_PATH};
pub use summary::summarize;
pub use verify::{read_signed_manifest, verify, VerifyReport};
pub use watertight_integrity::{SigningKey, VerifyingKey};
