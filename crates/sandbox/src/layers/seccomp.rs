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

pub fn compile(seccomp: &Seccomp) -> Result<CompiledFilter, Error> {
    let profile = load(seccomp)?;
    let opts = CompileOptions {
        violation_action: match seccomp.on_violation {
            // Every mode is enforced by the supervisor, which first records the call.
            OnViolation::Deny | OnViolation::Kill | OnViolation::Forensic => {
                ViolationAction::UserNotify
            }
        },
        log_denials: seccomp.log,
        // The program keeps no capabilities, so rules gated on one never apply.
        capabilities: Default::default(),
    };
    Ok(watertight_seccomp::compile_cached(
        &profile,
        &opts,
        std::path::Path::new(CACHE_DIR),
    )?)
}

/// The sandbox's pid 1 only reaps, reports and exits: it gets a filter that allows just that
/// (found missing by `watertight audit host`, which flagged the reaper as unfiltered).
const REAPER_PROFILE: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "syscalls": [
    {
      "names": ["wait4", "waitid", "write", "close", "exit", "exit_group", "rt_sigreturn",
                "rt_sigprocmask", "restart_syscall", "brk", "mmap", "munmap", "mremap", "madvise",
                "futex", "getpid", "gettid", "clock_gettime", "sched_yield", "sigaltstack"],
      "action": "SCMP_ACT_ALLOW"
    }
  ]
}"#;

pub fn compile_reaper() -> Result<CompiledFilter, Error> {
    let profile = SeccompProfile::from_json(REAPER_PROFILE)?;
    let opts = CompileOptions {
        violation_action: ViolationAction::Errno(libc::EPERM as u16),
        log_denials: false,
        capabilities: Default::default(),
    };
    Ok(watertight_seccomp::compile_cached(
        &profile,
        &opts,
        std::path::Path::new(CACHE_DIR),
    )?)
}

/// In the sandbox's pid 1, after it forked the program and dropped its privileges.
pub fn install_reaper(filter: &CompiledFilter) -> Result<(), Error> {
    watertight_sys::seccomp::install_filter(filter.program(), filter.flags())
        .map(|_| ())
        .ctx(|| "install the reaper's seccomp filter".into())
}

/// In the sandbox: the last step before execve. The user-notification listener, if the filter
/// makes one, goes to the supervisor over `to_supervisor` and is closed here.
pub fn install(filter: &CompiledFilter, to_supervisor: BorrowedFd<'_>) -> Result<(), Error> {
    let listener = watertight_sys::seccomp::install_filter(filter.program(), filter.flags())
        .ctx(|| "install seccomp filter".into())?;
    if let Some(l) = listener {
        watertight_sys::fdpass::send_fd(to_supervisor, l.as_fd())
            .ctx(|| "hand the seccomp listener to the supervisor".into())?;
    }
    Ok(())
}
