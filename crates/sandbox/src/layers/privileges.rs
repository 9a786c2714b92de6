//! Privilege layer, the last steps before seccomp and execve: every capability set emptied
//! (bounding and ambient included), securebits set and locked so no later execve can give root
//! its capabilities back, and no_new_privs so setuid binaries and file capabilities are inert.

use crate::error::{Error, IoContext};

/// SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE, each with its lock.
pub const LOCKED_SECUREBITS: u32 = (libc::SECBIT_NOROOT
    | libc::SECBIT_NOROOT_LOCKED
    | libc::SECBIT_NO_SETUID_FIXUP
    | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
    | libc::SECBIT_KEEP_CAPS_LOCKED
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) as u32;

pub fn drop_all() -> Result<(), Error> {
    // The bounding set and securebits need CAP_SETPCAP, so they go before the other sets.
    watertight_sys::process::clear_ambient_and_bounding()
        .ctx(|| "clear the ambient and bounding capability sets".into())?;
    watertight_sys::process::set_securebits(LOCKED_SECUREBITS).ctx(|| "lock securebits".into())?;
    watertight_sys::process::clear_capability_sets()
        .ctx(|| "clear the effective, permitted and inheritable capability sets".into())?;
    nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    Ok(())
}
