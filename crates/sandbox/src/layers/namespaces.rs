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
pub fn loopback_up(ns: &Namespaces, sys: &impl Syscall) -> Result<(), Error> {
    if ns.net {
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
