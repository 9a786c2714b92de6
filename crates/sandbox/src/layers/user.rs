//! User layer: the sandbox's uid/gid map to one unprivileged host id of its own, never to host
//! root. Each concurrent sandbox takes a slot (an flock on /run/watertight/slots/N, released by
//! the kernel when the supervisor dies), and slot N maps to host id `host_id_base + N`, as
//! isolate's boxes do, so two sandboxes never share a host uid.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, IoContext};
use crate::profile::Identity;
use crate::syscall::Syscall;

/// Where the slot lock files live: slot N is held by an flock on `SLOT_DIR/N`.
pub const SLOT_DIR: &str = "/run/watertight/slots";

/// A held sandbox slot; dropping it releases the slot.
#[derive(Debug)]
pub struct Slot {
    /// N: this sandbox's slot, from 0 up.
    pub index: u32,
    /// The host uid and gid the sandbox's ids map to: `identity.host_id_base` + N.
    pub host_id: u32,
    _lock: Flock<File>,
}

/// Takes the lowest free slot. Scanning from 0 keeps the lock files as few as the most sandboxes
/// ever run at once (a taken slot costs one failed non-blocking flock), rather than letting them
/// accumulate across the whole range.
pub fn acquire_slot(identity: &Identity) -> Result<Slot, Error> {
    std::fs::create_dir_all(SLOT_DIR).ctx(|| format!("create {SLOT_DIR}"))?;
    for index in 0..identity.slots {
        let path = Path::new(SLOT_DIR).join(index.to_string());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .ctx(|| format!("open slot lock {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                return Ok(Slot {
                    index,
                    host_id: identity.host_id_base + index,
                    _lock: lock,
                });
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => continue,
            Err((_, e)) => return Err(Error::io(format!("lock {}", path.display()), e.into())),
        }
    }
    Err(Error::NoFreeSlot {
        slots: identity.slots,
    })
}

/// The contents of uid_map / gid_map: exactly one id, inside -> host.
pub fn id_map_line(inside: u32, host: u32) -> String {
    format!("{inside} {host} 1\n")
}

/// Writes the child's uid and gid maps (the supervisor is root in the parent namespace, so
/// setgroups stays allowed and the sandbox can clear its supplementary groups itself).
pub fn write_id_maps(child: i32, identity: &Identity, host_id: u32) -> Result<(), Error> {
    let uid_map = format!("/proc/{child}/uid_map");
    std::fs::write(&uid_map, id_map_line(identity.uid, host_id))
        .ctx(|| format!("write {uid_map}"))?;
    let gid_map = format!("/proc/{child}/gid_map");
    std::fs::write(&gid_map, id_map_line(identity.gid, host_id))
        .ctx(|| format!("write {gid_map}"))?;
    Ok(())
}

/// In the sandbox, first thing after the maps exist: become the sandbox's uid/gid with no
/// supplementary groups. The creator of a user namespace keeps its capabilities in it across
/// this change (its old uid is not the namespace's root), so the mount layer can still work,
/// and files it creates belong to the sandbox's own uid.
///
/// Rootless (`clear_groups` false): the kernel denies setgroups in a namespace whose gid map an
/// unprivileged caller wrote, so the caller's supplementary groups stay (as under bubblewrap).
pub fn become_sandbox_user(
    identity: &Identity,
    clear_groups: bool,
    sys: &impl Syscall,
) -> Result<(), Error> {
    use nix::unistd::{Gid, Uid};
    // Groups first, then the gid, then the uid: each later change would take away the
    // privilege the earlier one needs.
    if clear_groups {
        sys.set_groups(&[]).ctx(|| "setgroups([])".into())?;
    }
    sys.set_gid(Gid::from_raw(identity.gid))
        .ctx(|| format!("setresgid({})", identity.gid))?;
    sys.set_uid(Uid::from_raw(identity.uid))
        .ctx(|| format!("setresuid({})", identity.uid))?;
    Ok(())
}

/// While it lives, the supervisor's effective uid is the sandbox's own host uid; made around
/// the clone that creates the sandbox's user namespace. The kernel makes a new namespace's
/// effective uid its owner and charges every per-user count of the tasks inside (inotify
/// instances and watches, POSIX message queue bytes, pending signals, user namespaces) to that
/// owner at the host level too: owned by root, one sandbox could take what every other sandbox
/// and root's own services share (all 128 inotify instances, for one). Owned by the slot's uid,
/// each sandbox exhausts only its own. The real and saved uids stay 0, so the supervisor keeps
/// its permitted capabilities and gets them back when the guard drops; the child (pid 1) keeps
/// the slot's uid and reaches host files only through descriptors the supervisor opened.
pub struct NamespaceOwner {
    active: bool,
    /// The supervisor's own parent-death signal and the parent it was armed for: the kernel
    /// clears it on each uid change, so the guard arms it again when it gives root back (a
    /// `batch` step worker ends with its batch through it).
    parent_death: Option<(nix::sys::signal::Signal, nix::unistd::Pid)>,
}

impl NamespaceOwner {
    /// Sets the effective uid to `host_id` (real and saved stay 0) until the guard drops.
    pub fn become_owner(host_id: u32) -> Result<NamespaceOwner, Error> {
        use nix::unistd::{setresuid, Uid};
        let parent_death = nix::sys::prctl::get_pdeathsig()
            .ok()
            .flatten()
            .map(|s| (s, nix::unistd::getppid()));
        let root = Uid::from_raw(0);
        setresuid(root, Uid::from_raw(host_id), root)
            .ctx(|| format!("set the effective uid {host_id} to create the user namespace"))?;
        Ok(NamespaceOwner {
            active: true,
            parent_death,
        })
    }

    /// In the child: keep the slot's uid (the guard must not act there).
    pub fn forget(mut self) {
        self.active = false;
    }
}

impl Drop for NamespaceOwner {
    fn drop(&mut self) {
        if self.active {
            let root = nix::unistd::Uid::from_raw(0);
            // Cannot fail: the saved uid is 0.
            let _ = nix::unistd::setresuid(root, root, root);
            if let Some((signal, parent)) = self.parent_death {
                let _ = nix::sys::prctl::set_pdeathsig(signal);
                // The parent died while it was disarmed: deliver what the kernel would have
                // (pending until the supervisor reads its signals, like the kernel's).
                if nix::unistd::getppid() != parent {
                    let _ = nix::sys::signal::raise(signal);
                }
            }
        }
    }
}

/// Idmap namespaces this process has made, by their maps: a process that runs many sandboxes
/// (`batch`'s step workers) makes each mapping once. Such a namespace only describes a mapping
/// for `mount_setattr`: no process lives in it, its maps cannot change once written, and no
/// sandbox ever holds it, so nothing of one sandbox can reach the next through it. Bounded:
/// past [`IDMAPS_KEPT`] mappings the oldest is dropped.
static IDMAPS: std::sync::Mutex<Vec<(String, String, OwnedFd)>> = std::sync::Mutex::new(Vec::new());

/// How many idmap namespaces [`idmap_namespace`] keeps (one per slot a worker has used, and
/// the unmapped one).
pub const IDMAPS_KEPT: usize = 16;

/// A user namespace whose uid and gid maps are `uid_map` and `gid_map`
/// (`watertight_sys::process::user_namespace_with_maps`), made once per process.
pub fn idmap_namespace(uid_map: &str, gid_map: &str) -> std::io::Result<OwnedFd> {
    let mut kept = IDMAPS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, ns)) = kept.iter().find(|(u, g, _)| u == uid_map && g == gid_map) {
        return ns.try_clone();
    }
    let ns = watertight_sys::process::user_namespace_with_maps(uid_map, gid_map)?;
    if kept.len() >= IDMAPS_KEPT {
        kept.remove(0);
    }
    kept.push((uid_map.to_string(), gid_map.to_string(), ns.try_clone()?));
    Ok(ns)
}

/// [`idmap_namespace`] of `watertight_sys::process::unmapped_user_namespace`'s maps (every
/// owner unmapped: read-only binds no host socket under which accepts a connect()).
pub fn unmapped_idmap_namespace() -> std::io::Result<OwnedFd> {
    let map = format!(
        "{id} {id} 1\n",
        id = watertight_sys::process::UNMAPPED_IDMAP_ID
    );
    idmap_namespace(&map, &map)
}

/// In the sandbox's pid 1, before the program exists: fixes the audit login uid of everything
/// the sandbox will run to the sandbox's own uid. A task whose login uid is unset (a supervisor
/// started by an init system) may set it once without privilege, so a program could otherwise
/// choose whom the host's audit log blames. Once set, changing it needs CAP_AUDIT_CONTROL, which
/// the sandbox never has. Already set (inherited from the caller) or no audit support: nothing
/// to do.
pub fn pin_login_uid(identity: &Identity, sys: &impl Syscall) -> Result<(), Error> {
    match sys.set_login_uid(nix::unistd::Uid::from_raw(identity.uid)) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOENT)) => Ok(()),
        Err(e) => Err(Error::io("set the sandbox's audit login uid", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_one_id() {
        assert_eq!(id_map_line(0, 0x7000_0005), "0 1879048197 1\n");
    }

    #[test]
    fn groups_then_gid_then_uid() {
        let rec = crate::syscall::recorder::Recorder::default();
        let identity = Identity {
            uid: 1000,
            gid: 100,
            ..crate::profile::default_profile().identity
        };
        become_sandbox_user(&identity, true, &rec).unwrap();
        assert_eq!(
            rec.calls.borrow().as_slice(),
            ["setgroups []", "setresgid 100", "setresuid 1000"]
        );
        // Rootless: setgroups is denied in its namespace, never attempted.
        let rec = crate::syscall::recorder::Recorder::default();
        become_sandbox_user(&identity, false, &rec).unwrap();
        assert_eq!(
            rec.calls.borrow().as_slice(),
            ["setresgid 100", "setresuid 1000"]
        );
    }
}
