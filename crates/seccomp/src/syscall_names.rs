//! Syscall names as libseccomp knows them: "is this a syscall at all" (any architecture, checked
//! at parse time so typos fail early) and "its number on this machine" (at compile time; names
//! that exist only on other architectures, like `chown32`, are skipped there).

use libseccomp::{ScmpArch, ScmpSyscall};

/// Architectures searched when checking that a name is a syscall somewhere. The native one first:
/// nearly every name resolves there, so the others are rarely consulted.
const SEARCH_ARCHES: &[ScmpArch] = &[
    ScmpArch::X8664,
    ScmpArch::X86,
    ScmpArch::X32,
    ScmpArch::Aarch64,
    ScmpArch::Arm,
    ScmpArch::Ppc64Le,
    ScmpArch::Ppc64,
    ScmpArch::Ppc,
    ScmpArch::S390X,
    ScmpArch::S390,
    ScmpArch::Mips,
    ScmpArch::Mips64,
    ScmpArch::Mips64N32,
    ScmpArch::Riscv64,
    ScmpArch::Parisc,
    ScmpArch::Parisc64,
];

/// Whether `name` is a syscall on any architecture libseccomp supports.
pub fn is_known(name: &str) -> bool {
    // libseccomp resolves names through C strings; an interior NUL can never be a syscall.
    if name.is_empty() || name.contains('\0') {
        return false;
    }
    SEARCH_ARCHES
        .iter()
        .any(|arch| ScmpSyscall::from_name_by_arch(name, *arch).is_ok())
}

/// The syscall's number on the native architecture, or `None` if it does not exist there.
pub fn native(name: &str) -> Option<ScmpSyscall> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let sys = ScmpSyscall::from_name_by_arch(name, ScmpArch::native()).ok()?;
    // Negative numbers are libseccomp pseudo-syscalls for calls multiplexed on this arch
    // (socketcall/ipc on i386); on x86_64 every real syscall has a non-negative number.
    (i32::from(sys) >= 0).then_some(sys)
}

/// libseccomp's runtime version, e.g. "2.5.4".
pub fn libseccomp_version() -> String {
    match libseccomp::ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "(unknown version)".to_string(),
    }
}
