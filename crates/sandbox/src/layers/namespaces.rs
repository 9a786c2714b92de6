//! Namespace layer: which namespaces the sandbox is cloned into, and the small setup the uts,
//! net and cgroup namespaces need from inside.
//!
//! user, pid, mount: always (the other layers stand on them). The cgroup namespace is entered
//! from inside with unshare() only after the supervisor has moved the sandbox into its own
//! cgroup, so the sandbox's cgroup root is its own cgroup and not the supervisor's.

use nix::sched::CloneFlags;

use crate::error::{Error, IoContext};
use crate::profile::Namespaces;
use crate::syscall::Syscall;

/// The clone flags of the sandbox: user, pid and mount always, net, uts and ipc as the profile
/// says (the cgroup namespace is entered later, from inside).
pub fn clone_flags(ns: &Namespaces) -> CloneFlags {
    let mut f = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS;
    if ns.net {
        f |= CloneFlags::CLONE_NEWNET;
    }
    if ns.uts {
        f |= CloneFlags::CLONE_NEWUTS;
    }
    if ns.ipc {
        f |= CloneFlags::CLONE_NEWIPC;
    }
    f
}

/// Inside the sandbox, once it is in its own cgroup.
pub fn enter_cgroup_namespace(ns: &Namespaces, sys: &impl Syscall) -> Result<(), Error> {
    if ns.cgroup {
        sys.unshare(CloneFlags::CLONE_NEWCGROUP)
            .ctx(|| "unshare cgroup namespace".into())?;
    }
    Ok(())
}

/// uts: the sandbox's own host name.
pub fn set_hostname(ns: &Namespaces, hostname: &str, sys: &impl Syscall) -> Result<(), Error> {
    if ns.uts {
        sys.sethostname(hostname)
            .ctx(|| format!("sethostname {hostname}"))?;
    }
    Ok(())
}

/// net: a new network namespace has only `lo`, and it is down; bring it up so programs can use
/// 127.0.0.1 among themselves. Nothing else exists unless the job asks for a bridge port
/// (`attach_bridge_port`): then no route leaves the sandbox but through that guarded port.
/// With a namespace prepared ahead (`lo_ready`), the helper already did it: the sandbox has no
/// capability over that namespace.
pub fn loopback_up(ns: &Namespaces, lo_ready: bool, sys: &impl Syscall) -> Result<(), Error> {
    if ns.net && !lo_ready {
        sys.interface_up("lo").ctx(|| "bring up lo".into())?;
    }
    Ok(())
}

/// net, supervisor side: with `--net bridge:BR`, a veth into the sandbox's namespace whose
/// host end joins the bridge, with the port's anti-spoofing guard entry added before the sandbox
/// is released (watertight-net). Removed when the returned port is dropped.
pub fn attach_bridge_port(
    req: Option<&watertight_net::SandboxPortRequest>,
    child: i32,
) -> Result<Option<watertight_net::SandboxPort>, Error> {
    match req {
        None => Ok(None),
        Some(r) => watertight_net::attach_sandbox_port(r, child)
            .map(Some)
            .map_err(|e| Error::Config(format!("--net bridge:{}: {e}", r.bridge))),
    }
}

/// net, supervisor side, in a process that starts many sandboxes one after another (`batch`'s
/// step workers, after [`prepare_networks_ahead`]): each sandbox's network namespace is made
/// ahead by a helper (`watertight_sys::netns`) between two sandboxes (the worker starts it
/// once it has answered for the last one, while the batch records that), so its cost leaves
/// the start's serial path. Every namespace is new and serves exactly one sandbox: nothing but
/// the helper (which brought `lo` up) was ever in it.
///
/// Such a namespace belongs to the supervisor's user namespace, not the sandbox's: nothing in
/// the sandbox has any capability over it (no netfilter, no interface or sysctl changes, even
/// before the capabilities are dropped), which is also why `lo` is up before the sandbox joins.
static NET_AHEAD: std::sync::Mutex<Option<Option<watertight_sys::netns::PreparingNet>>> =
    std::sync::Mutex::new(None);

/// Makes this process prepare each next sandbox's network namespace ahead (root only; without
/// root, or where the helper cannot start, sandboxes make their own as usual).
pub fn prepare_networks_ahead() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let mut ahead = NET_AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    *ahead = Some(watertight_sys::netns::PreparingNet::start().ok());
}

/// Starts the helper for the next sandbox, when this process prepares them.
pub fn prepare_next_network() {
    let mut ahead = NET_AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(next @ None) = ahead.as_mut() {
        *next = watertight_sys::netns::PreparingNet::start().ok();
    }
}

/// Ends the helper of a namespace prepared and not used (when this process is done starting
/// sandboxes; its parent-death signal would end it too, once this process exits).
pub fn stop_preparing_networks() {
    let mut ahead = NET_AHEAD.lock().unwrap_or_else(|e| e.into_inner());
    *ahead = None; // dropping the PreparingNet kills and reaps its helper
}

/// The supervisor inside a prepared network namespace for the length of one clone: the child
/// is cloned without CLONE_NEWNET and so starts in it. [`JoinedNet::leave`] returns to the
/// supervisor's own namespace.
#[derive(Debug)]
pub struct JoinedNet {
    own: std::os::fd::OwnedFd,
}

impl JoinedNet {
    /// Joins the prepared namespace, when there is one: `None` (and this process still in its
    /// own namespace, so the caller clones with CLONE_NEWNET) on any failure. Call it while
    /// root (setns needs CAP_SYS_ADMIN), before the effective uid changes for the clone.
    pub fn enter_prepared() -> Option<JoinedNet> {
        use watertight_sys::netns;
        let preparing = NET_AHEAD
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(Option::take)?;
        let prepared = preparing.take().ok()?;
        let own = netns::current().ok()?;
        netns::enter(&prepared).ok()?;
        // Fail closed: clone without CLONE_NEWNET only from inside the prepared namespace.
        match netns::current().and_then(|now| netns::same(&now, &prepared)) {
            Ok(true) => Some(JoinedNet { own }),
            _ => {
                JoinedNet { own }.leave();
                None
            }
        }
    }

    /// Back in the supervisor's own namespace. Were that impossible, this process would stay
    /// in a sandbox's namespace and could hand it to another sandbox: it exits instead.
    pub fn leave(self) {
        use watertight_sys::netns;
        let back = netns::enter(&self.own)
            .and_then(|()| netns::current())
            .and_then(|now| netns::same(&now, &self.own));
        if !matches!(back, Ok(true)) {
            eprintln!("watertight: cannot return to the supervisor's network namespace: exiting");
            watertight_sys::process::exit_now(125);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::default_profile;

    #[test]
    fn default_profile_isolates_every_namespace() {
        let f = clone_flags(&default_profile().namespaces);
        for flag in [
            CloneFlags::CLONE_NEWUSER,
            CloneFlags::CLONE_NEWPID,
            CloneFlags::CLONE_NEWNS,
            CloneFlags::CLONE_NEWNET,
            CloneFlags::CLONE_NEWUTS,
            CloneFlags::CLONE_NEWIPC,
        ] {
            assert!(f.contains(flag), "{flag:?}");
        }
        assert!(
            !f.contains(CloneFlags::CLONE_NEWCGROUP),
            "entered later, from inside"
        );
    }
}
