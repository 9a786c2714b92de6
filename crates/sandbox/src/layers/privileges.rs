//! Privilege layer, the last steps before seccomp and execve: every capability set emptied
//! (bounding and ambient included), securebits set and locked so no later execve can give root
//! its capabilities back, and no_new_privs so setuid binaries and file capabilities are inert.

use crate::error::{Error, IoContext};
use crate::syscall::{CapabilitySets, Syscall};

/// SECBIT_NOROOT, NO_SETUID_FIXUP, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE, each with its lock.
pub const LOCKED_SECUREBITS: u32 = (libc::SECBIT_NOROOT
    | libc::SECBIT_NOROOT_LOCKED
    | libc::SECBIT_NO_SETUID_FIXUP
    | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
    | libc::SECBIT_KEEP_CAPS_LOCKED
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) as u32;

/// In the order the kernel requires: the bounding set and securebits need CAP_SETPCAP, so they
/// go before the other sets are emptied; no_new_privs last.
pub fn drop_all(sys: &impl Syscall) -> Result<(), Error> {
    drop_all_but(0, sys)
}

/// [`drop_all`], but the capabilities in `keep` (bit n: capability n; only `--bpf-observe`
/// keeps any: CAP_BPF and CAP_PERFMON, which count only in the sandbox's own user namespace)
/// stay in the bounding, permitted, effective and inheritable sets and are raised into the
/// ambient set, so the program holds them after execve even though securebits make uid 0
/// powerless. Ambient capabilities are raised before securebits lock NO_CAP_AMBIENT_RAISE.
pub fn drop_all_but(keep: u64, sys: &impl Syscall) -> Result<(), Error> {
    sys.clear_capabilities(CapabilitySets::AmbientAndBounding, keep)
        .ctx(|| "clear the ambient and bounding capability sets".into())?;
    if keep != 0 {
        sys.raise_ambient(keep)
            .ctx(|| format!("raise capabilities {keep:#x} into the ambient set"))?;
    }
    sys.set_securebits(LOCKED_SECUREBITS)
        .ctx(|| "lock securebits".into())?;
    sys.clear_capabilities(CapabilitySets::EffectivePermittedInheritable, keep)
        .ctx(|| "clear the effective, permitted and inheritable capability sets".into())?;
    sys.set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::recorder::Recorder;

    #[test]
    fn bounding_set_then_securebits_then_the_other_sets_then_no_new_privs() {
        let rec = Recorder::default();
        drop_all(&rec).unwrap();
        assert_eq!(
            rec.calls.borrow().as_slice(),
            [
                "clear capabilities AmbientAndBounding".to_string(),
                format!("securebits {LOCKED_SECUREBITS:#x}"),
                "clear capabilities EffectivePermittedInheritable".to_string(),
                "no_new_privs".to_string(),
            ]
        );
    }

    #[test]
    fn kept_capabilities_are_raised_into_the_ambient_set_before_securebits_lock_it() {
        let rec = Recorder::default();
        let keep = (1u64 << 38) | (1u64 << 39);
        drop_all_but(keep, &rec).unwrap();
        assert_eq!(
            rec.calls.borrow().as_slice(),
            [
                format!("clear capabilities AmbientAndBounding keep={keep:#x}"),
                format!("ambient {keep:#x}"),
                format!("securebits {LOCKED_SECUREBITS:#x}"),
                format!("clear capabilities EffectivePermittedInheritable keep={keep:#x}"),
                "no_new_privs".to_string(),
            ]
        );
    }

    #[test]
    fn a_refused_step_stops_the_drop_and_is_named() {
        let rec = Recorder {
            fail_at: Some(1),
            ..Default::default()
        };
        let e = drop_all(&rec).unwrap_err().to_string();
        assert!(e.contains("lock securebits"), "{e}");
        assert_eq!(
            rec.calls.borrow().len(),
            2,
            "nothing after the refused step"
        );
    }

    #[test]
    fn securebits_keep_root_powerless_and_locked() {
        for (bit, lock) in [
            (libc::SECBIT_NOROOT, libc::SECBIT_NOROOT_LOCKED),
            (
                libc::SECBIT_NO_SETUID_FIXUP,
                libc::SECBIT_NO_SETUID_FIXUP_LOCKED,
            ),
            (
                libc::SECBIT_NO_CAP_AMBIENT_RAISE,
                libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
            ),
        ] {
            assert_eq!(LOCKED_SECUREBITS & (bit | lock) as u32, (bit | lock) as u32);
        }
        // KEEP_CAPS itself stays off (capabilities are not kept across a uid change), locked.
        assert_eq!(LOCKED_SECUREBITS & libc::SECBIT_KEEP_CAPS as u32, 0);
        assert_ne!(LOCKED_SECUREBITS & libc::SECBIT_KEEP_CAPS_LOCKED as u32, 0);
    }
}
