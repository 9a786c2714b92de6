//! One variant per step of a VM run that can fail.

use std::path::PathBuf;

/// Why a VM run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller is not root: QEMU's cgroup, its private mount namespace and the drop to
    /// nobody need it.
    #[error("--isolation vm needs root (QEMU's own cgroup, a private mount namespace, QEMU dropped to nobody); run it as root, or use --isolation namespaces, which runs without root")]
    NotRoot,
    /// QEMU is not installed.
    #[error("--isolation vm: qemu-system-x86_64 not found: install the Debian package qemu-system-x86 (scripts/install-deps.sh)")]
    NoQemu,
    /// The kernel cache is empty or incomplete.
    #[error("--isolation vm: no guest kernel in {cache}: run scripts/vm-kernel.sh (it downloads linux-image-amd64 into that cache, without installing it)")]
    NoKernel {
        /// The cache directory searched.
        cache: PathBuf,
    },
    /// A module the guest needs is not in the cached kernel's tree.
    #[error("--isolation vm: kernel module {name} not found under {dir}: run scripts/vm-kernel.sh again")]
    NoModule {
        /// The module's name.
        name: String,
        /// The modules directory searched.
        dir: PathBuf,
    },
    /// Reading the cache, the binary or a module failed.
    #[error("--isolation vm: read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the initramfs or the job failed.
    #[error("--isolation vm: write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// objcopy failed to strip the binary's debug information.
    #[error("--isolation vm: objcopy --strip-debug failed: {0}")]
    Strip(String),
    /// QEMU's own cgroup could not be made.
    #[error("--isolation vm: QEMU's cgroup: {0}")]
    Cgroup(#[from] watertight_cgroups::Error),
    /// Starting or waiting for QEMU failed.
    #[error("--isolation vm: start QEMU: {0}")]
    Spawn(std::io::Error),
    /// The uid or gid QEMU would run as belongs to an account or group.
    #[error("--isolation vm: uid/gid {id}, the one this run's QEMU gets (0x6F000000 + pid), is {name:?}'s on this host; remove that account or group, or use --isolation namespaces")]
    IdTaken {
        /// The id.
        id: u32,
        /// Whose it is.
        name: String,
    },
    /// `--stdin` is larger than the guest's share takes.
    #[error("--isolation vm: --stdin is more than {limit} bytes, what the VM tier copies into the guest's job share; pass a smaller file or use --isolation namespaces or gvisor, which read it in place")]
    StdinTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The job could not be encoded.
    #[error("--isolation vm: encode the job: {0}")]
    Encode(#[from] serde_json::Error),
}
