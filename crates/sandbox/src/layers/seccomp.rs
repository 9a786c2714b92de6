//! seccomp layer: the filter is compiled by the supervisor before fork (libseccomp, cached) and
//! installed in the sandbox as the very last step before execve, after no_new_privs.
//!
//! Violation-class syscalls go to the supervisor by user notification (it names them in the
//! event log, then denies, kills or captures evidence); every other refused call gets the
//! profile's default action (EPERM) and, with `log`, a kernel audit record.

use watertight_seccomp::{
    CompileOptions, CompiledFilter, Profile as SeccompProfile, ViolationAction,
};

use std::os::fd::{AsFd, BorrowedFd};

use crate::error::{Error, IoContext};
use crate::profile::{OnViolation, Seccomp};
use crate::syscall::Syscall;

/// Where compiled filters are cached, keyed by a hash of the profile and options.
pub const CACHE_DIR: &str = "/run/watertight/seccomp-cache";

/// Loads the profile the sandbox profile names: `default` or a Docker/OCI JSON file.
pub fn load(seccomp: &Seccomp) -> Result<SeccompProfile, Error> {
    if seccomp.profile == "default" {
        return Ok(watertight_seccomp::default_profile());
    }
    let text = std::fs::read_to_string(&seccomp.profile)
        .map_err(|e| Error::Config(format!("seccomp profile {}: {e}", seccomp.profile)))?;
    SeccompProfile::from_json(&text)
        .map_err(|e| Error::Config(format!("seccomp profile {}: {e}", seccomp.profile)))
}

/// `exec_integrity`: the run verifies its root directory (`--manifest`); the filter then also
/// refuses writable aliases of executable memory (see the seccomp crate's `integrity.rs`).
/// `bpf_observe` (`--bpf-observe`): bpf() is let through for the observer's commands
/// (`watertight_seccomp::BPF_OBSERVE_COMMANDS`); without it bpf() stays a violation.
pub fn compile(
    seccomp: &Seccomp,
    exec_integrity: bool,
    bpf_observe: bool,
) -> Result<CompiledFilter, Error> {
    let with_bpf = |p: SeccompProfile| {
        if bpf_observe {
            p.with_bpf_observe()
        } else {
            p
        }
    };
    let opts = CompileOptions {
        violation_action: match seccomp.on_violation {
            // Every mode is enforced by the supervisor, which first records the call.
            OnViolation::Deny | OnViolation::Kill | OnViolation::Forensic => {
                ViolationAction::UserNotify
            }
        },
        log_denials: seccomp.log,
        // Deny and kill answer from outside; forensic freezes the caught task first, and the
        // freezer cannot freeze a task in a killable wait.
        wait_killable_recv: seccomp.on_violation != OnViolation::Forensic,
        // The program keeps no capabilities, so rules gated on one never apply.
        capabilities: Default::default(),
        exec_integrity,
    };
    // Root's cache is refused to anyone else (a filter they could plant). Without root, the
    // caller's own cache (`user_cache_dir`: only the caller's processes can write it, and they
    // can do anything the caller can anyway); none usable: compile afresh.
    let fresh = || -> Result<CompiledFilter, Error> {
        let profile = if seccomp.profile == "default" {
            watertight_seccomp::default_profile()
        } else {
            load(seccomp)?
        };
        Ok(with_bpf(profile).compile(&opts)?)
    };
    let cache = if nix::unistd::geteuid().is_root() {
        std::path::PathBuf::from(CACHE_DIR)
    } else {
        match user_cache_dir() {
            Some(dir) => dir,
            None => return fresh(),
        }
    };
    let cached = if seccomp.profile == "default" {
        // Named by the seccomp crate's source digest: a cache hit never builds the profile.
        let identity = format!(
            "builtin:default{}:{}",
            if bpf_observe { "+bpf-observe" } else { "" },
            watertight_seccomp::SOURCE_DIGEST
        );
        watertight_seccomp::compile_cached_keyed(
            identity.as_bytes(),
            || Ok(with_bpf(watertight_seccomp::default_profile())),
            &opts,
            &cache,
        )
    } else {
        watertight_seccomp::compile_cached(&with_bpf(load(seccomp)?), &opts, &cache)
    };
    match cached {
        // The caller's cache unusable (made by someone else, group-writable): no reason to
        // refuse the run. Root's cache stays strict.
        Err(watertight_seccomp::Error::Cache { .. }) if !nix::unistd::geteuid().is_root() => {
            fresh()
        }
        r => Ok(r?),
    }
}

/// Without root: `$XDG_RUNTIME_DIR/watertight/seccomp-cache` when the runtime directory is the
/// caller's and no one else's to write (systemd's per-user tmpfs at /run/user/UID). Not the
/// home directory: a sandbox runs as the caller's uid on the host, and a home is what a caller
/// binds writable; the sandbox's /run is its own empty directory. None: no cache.
pub fn user_cache_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let euid = nix::unistd::geteuid().as_raw();
    let dir = std::path::PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    let owned = std::fs::metadata(&dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == euid && m.mode() & 0o077 == 0);
    (dir.is_absolute() && owned).then(|| dir.join("watertight/seccomp-cache"))
}

/// In the sandbox's pid 1, after it dropped its privileges and before it starts the program,
/// which inherits the filter: one filter for both, installed once (loading a filter costs
/// ~0.2 ms here, mostly the kernel's JIT). The user-notification listener, if the filter makes
/// one, goes to the supervisor over `to_supervisor` and is closed here.
pub fn install(
    filter: &CompiledFilter,
    to_supervisor: BorrowedFd<'_>,
    sys: &impl Syscall,
) -> Result<(), Error> {
    let listener = sys
        .install_seccomp(filter.program(), filter.flags())
        .ctx(|| "install seccomp filter".into())?;
    if let Some(l) = listener {
        sys.send_fd(to_supervisor, l.as_fd())
            .ctx(|| "hand the seccomp listener to the supervisor".into())?;
    }
    Ok(())
}
