//! One variant per step of a gVisor run, each naming what failed and the fix.

/// Why a gVisor run could not be set up or supervised (the CLI exits 125).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller is not root: runsc, its private mount namespace and the outer cgroup need it.
    #[error("--isolation gvisor needs root (runsc, its private mount namespace and watertight's cgroup around it); run it as root, or use --isolation namespaces, which runs without root")]
    NotRoot,
    /// runsc is not installed (or not where the configuration says).
    #[error("{0}")]
    RunscMissing(String),
    /// The plan asks for something this tier does not provide.
    #[error("--isolation gvisor: {0}")]
    Unsupported(String),
    /// Planning failed (the same checks as the namespace tier).
    #[error(transparent)]
    Plan(#[from] watertight_sandbox::Error),
    /// The private work directory (bundle, runsc state, logs).
    #[error("gvisor work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The private mount namespace runsc runs in.
    #[error("gvisor: private mount namespace: {0}")]
    MountNamespace(nix::Error),
    /// The overlay runsc is given for a `--rootfs` root (in the run's mount namespace).
    #[error("gvisor: the overlay over the root {path}: {source}")]
    RootView {
        /// The root directory.
        path: String,
        /// What failed.
        source: nix::Error,
    },
    /// The OCI bundle.
    #[error("gvisor bundle: {0}")]
    Bundle(String),
    /// The outer cgroup.
    #[error("gvisor cgroup: {0}")]
    Cgroup(#[from] watertight_cgroups::Error),
    /// Starting or waiting for runsc.
    #[error("gvisor: {what}: {source}")]
    Process {
        /// The step.
        what: &'static str,
        /// What failed.
        source: std::io::Error,
    },
}
