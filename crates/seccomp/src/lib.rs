//! seccomp profiles for watertight: the Docker/OCI JSON model ([`Profile`]), the built-in
//! allowlist ([`default_profile`]), and compilation to a classic BPF program with libseccomp
//! ([`Profile::compile`], [`compile_cached`]). The sandbox installs the result in its child with
//! `watertight_sys::seccomp::install_filter`.
//!
//! ```no_run
//! use watertight_seccomp::{default_profile, CompileOptions, ViolationAction};
//! let opts = CompileOptions { violation_action: ViolationAction::KillProcess, ..Default::default() };
//! let filter = default_profile().compile(&opts)?;
//! // in the child, after no_new_privs:
//! // watertight_sys::seccomp::install_filter(filter.program(), filter.flags())?;
//! # Ok::<(), watertight_seccomp::Error>(())
//! ```
#![forbid(unsafe_code)]

mod bpf_observe;
mod cache;
mod caps;
mod compile;
mod default;
mod error;
pub mod inspect;
mod integrity;
mod profile;
mod syscall_names;

pub use bpf_observe::{bpf_observe_rules, BPF_OBSERVE_COMMANDS};
pub use cache::{
    cache_key, compile_cached, compile_cached_keyed, compile_cached_with_outcome, CacheOutcome,
    DEFAULT_CACHE_DIR, SOURCE_DIGEST,
};
pub use compile::{CompileOptions, CompiledFilter, ViolationAction};
pub use default::{
    default_profile, low32_set_conditions, ALLOWED, CLONE_NAMESPACE_FLAGS, DEFAULT_PROFILE_JSON,
    VIOLATION_SYSCALLS,
};
pub use error::Error;
pub use profile::{
    Action, Arch, ArchMapEntry, ArgCondition, ArgOp, FilterFlag, KernelVersion, Profile,
    RuleFilter, SyscallRule, WatertightExtension,
};

/// Whether libseccomp knows `name` as a syscall on some architecture.
pub fn is_known_syscall(name: &str) -> bool {
    syscall_names::is_known(name)
}

/// The name of native syscall number `nr`, e.g. 165 -> "mount" on x86_64.
pub fn syscall_name(nr: i32) -> Option<String> {
    syscall_names::native_name(nr)
}

/// The libseccomp version this process runs with.
pub fn libseccomp_version() -> String {
    syscall_names::libseccomp_version()
}

#[cfg(test)]
mod unit_tests;

#[cfg(test)]
mod name_tests {
    #[test]
    fn names_native_numbers() {
        let mount = super::syscall_names::native("mount").unwrap();
        assert_eq!(
            super::syscall_name(i32::from(mount)).as_deref(),
            Some("mount")
        );
        assert_eq!(super::syscall_name(-5), None);
    }
}
