//! seccomp layer: the filter is compiled by the supervisor before fork (libseccomp, cached) and
//! installed in the sandbox as the very last step before execve, after no_new_privs.

use watertight_seccomp::{
    CompileOptions, CompiledFilter, Profile as SeccompProfile, ViolationAction,
};

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
            OnViolation::Deny => ViolationAction::Errno(libc::EPERM as u16),
            OnViolation::Kill => ViolationAction::KillProcess,
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

/// In the sandbox: the last step before execve.
pub fn install(filter: &CompiledFilter) -> Result<(), Error> {
    watertight_sys::seccomp::install_filter(filter.program(), filter.flags())
        .map(|_| ())
        .ctx(|| "install seccomp filter".into())
}
