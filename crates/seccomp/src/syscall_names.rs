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

/// x86_64 syscalls newer than the libseccomp in Debian 12 (2.5.4), with their numbers from the
/// kernel's syscall_64.tbl. libseccomp accepts rules on raw numbers it has no name for, so these
/// can be allowed or refused by name like any other; without the table a profile could not
/// mention them at all (and `mseal` or the `*xattrat` calls would fall to the default action).
#[cfg(target_arch = "x86_64")]
const NEWER_THAN_LIBSECCOMP: &[(&str, i32)] = &[
    ("uretprobe", 335),
    ("statmount", 457),
    ("listmount", 458),
    ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460),
    ("lsm_list_modules", 461),
    ("mseal", 462),
    ("setxattrat", 463),
    ("getxattrat", 464),
    ("listxattrat", 465),
    ("removexattrat", 466),
    ("open_tree_attr", 467),
    ("file_getattr", 468),
    ("file_setattr", 469),
];
#[cfg(not(target_arch = "x86_64"))]
const NEWER_THAN_LIBSECCOMP: &[(&str, i32)] = &[];

fn newer_than_libseccomp(name: &str) -> Option<i32> {
    NEWER_THAN_LIBSECCOMP
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, nr)| *nr)
}

/// Whether `name` is a syscall on any architecture libseccomp supports (or one of the x86_64
/// syscalls newer than it).
pub fn is_known(name: &str) -> bool {
    // libseccomp resolves names through C strings; an interior NUL can never be a syscall.
    if name.is_empty() || name.contains('\0') {
        return false;
    }
    newer_than_libseccomp(name).is_some()
        || SEARCH_ARCHES
            .iter()
            .any(|arch| ScmpSyscall::from_name_by_arch(name, *arch).is_ok())
}

/// The syscall's number on the native architecture, or `None` if it does not exist there.
pub fn native(name: &str) -> Option<ScmpSyscall> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let sys = match ScmpSyscall::from_name_by_arch(name, ScmpArch::native()) {
        Ok(sys) => sys,
        Err(_) => return newer_than_libseccomp(name).map(ScmpSyscall::from),
    };
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

/// The highest native syscall number anything here knows a name for (libseccomp's table or
/// [`NEWER_THAN_LIBSECCOMP`]). Numbers above it are syscalls newer than this build.
pub fn highest_known_native() -> i32 {
    static HIGHEST: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *HIGHEST.get_or_init(|| {
        let from_table = NEWER_THAN_LIBSECCOMP
            .iter()
            .map(|(_, nr)| *nr)
            .max()
            .unwrap_or(0);
        // A newer libseccomp may know numbers past the table: look a little beyond it.
        let from_libseccomp = (from_table + 1..from_table + 128)
            .filter(|nr| {
                ScmpSyscall::from(*nr)
                    .get_name_by_arch(ScmpArch::native())
                    .is_ok()
            })
            .max()
            .unwrap_or(0);
        from_table.max(from_libseccomp)
    })
}

/// The name of native syscall number `nr` (for audit events), from libseccomp's table or
/// [`NEWER_THAN_LIBSECCOMP`].
pub fn native_name(nr: i32) -> Option<String> {
    if let Some((name, _)) = NEWER_THAN_LIBSECCOMP.iter().find(|(_, n)| *n == nr) {
        return Some((*name).to_string());
    }
    ScmpSyscall::from(nr)
        .get_name_by_arch(ScmpArch::native())
        .ok()
}
