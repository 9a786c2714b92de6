//! One variant per step: reading runtime.toml, parsing it, checking it, hardening a config,
//! publishing the running container.

use std::path::PathBuf;

/// Why the floor could not be loaded, applied or published. Each message is one line naming
/// the file or config field and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// runtime.toml could not be read (an explicitly named file that is absent, a directory,
    /// no permission).
    #[error("{path}: cannot read the runtime floor: {source} (fix the path, or pass --config with a readable runtime.toml)")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// runtime.toml is not TOML or does not fit the schema (an unknown key, a wrong type).
    #[error("{path}:{line}: {key}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the key (0 when the parser could not tell).
        line: usize,
        /// The key path, e.g. `seccomp.syscalls[3]`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// runtime.toml parses but a value is not acceptable (an unknown syscall or capability, a
    /// relative path, a zero size).
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the key (0 when it could not be located).
        line: usize,
        /// The key path.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The config is privileged and the floor refuses it (`privileged = "refuse"`, or no
    /// reason in the `run.oci.watertight/privileged` annotation).
    #[error("config.json {field}: {reason}, which the watertight floor refuses; {fix}")]
    Privileged {
        /// The config field that makes it privileged, e.g. `process.capabilities.bounding`.
        field: String,
        /// What it asks for.
        reason: String,
        /// How to run it anyway, or why it cannot.
        fix: String,
    },
    /// The container's init process could not be identified (gone, or /proc unreadable).
    #[error("container {container_id}: cannot read the start time of init pid {pid} from /proc/{pid}/stat: {message}")]
    InitProcess {
        /// The container.
        container_id: String,
        /// Its init pid.
        pid: u32,
        /// What went wrong.
        message: String,
    },
    /// A container id that cannot name a file of its own in the published directory.
    #[error("container id {id:?} cannot be published: {reason}")]
    ContainerId {
        /// The id as given.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// The published entry could not be written.
    #[error("{path}: cannot publish the running container: {source}")]
    Publish {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// A container's audit trail could not be opened or appended to.
    #[error("{path}: cannot write the audit trail: {source}")]
    AuditTrail {
        /// The trail's file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// The published entry could not be removed.
    #[error("{path}: cannot remove the published container: {source}")]
    Unpublish {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
}
