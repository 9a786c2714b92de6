//! Without root: `watertight run` as an unprivileged caller, through user namespaces as
//! bubblewrap does. Decided once, in `Plan::new` (validate in new, act in run): this module
//! says what the sandbox is without root and what it cannot be.
//!
//! What changes (everything else is the root sandbox's: pid, mount, net, ipc, uts and cgroup
//! namespaces, the read-only root, /proc masks, /tmp, /dev of bound host nodes, no
//! capabilities, no_new_privs, the seccomp allowlist, Landlock):
//! - identity: the sandbox's user namespace maps only the caller's own uid and gid (to
//!   `identity.uid`/`gid` inside), with setgroups denied before the gid map is written, as
//!   the kernel requires of an unprivileged writer. No slot uid: the sandbox is the caller on
//!   the host, so the box needs no idmap, and the caller's supplementary groups stay (no one but
//!   root may drop them).
//! - mounts: pid 1 binds the caller's paths itself (it is the caller, and may reach them);
//!   no idmapped trees, so host unix sockets under a guarded bind are found by a walk and
//!   masked (`sockets::mask_host_sockets`); the new root is assembled on a tmpfs over /tmp of
//!   the sandbox's own mount namespace ([`STAGE`]), since /run/watertight is root's.
//! - limits: a cgroup only where the caller has a delegated cgroup2 subtree ([`find_delegation`]):
//!   memory, pids and cpus where its `cgroup.subtree_control` enables the controller, CPU time
//!   counted live from `cpu.stat`. Otherwise rlimits stand in (RLIMIT_AS for memory as isolate
//!   does without cgroups, RLIMIT_NPROC for pids: counted per user namespace, so only the
//!   sandbox's own processes, RLIMIT_CPU for CPU time) and [`Enforcement::unenforced`] says so,
//!   in the verdict.
//! - never attempted: the slot lock, idmapped mounts, the v1 cgroup admit, the device cgroup,
//!   the memfd_noexec helper, the BPF exec gate, `--bpf-observe`, `--net bridge:`, `--box-size`,
//!   publishing for `audit host`. The plan refuses a request that needs one of them, or (for
//!   integrity's root-only parts) leaves it out and says so.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::profile::Limits;

/// Where a rootless sandbox's new root is assembled: under a tmpfs mounted on /tmp in its own
/// mount namespace (bubblewrap's base), so nothing is made on the host. Every host path pid 1
/// binds is opened before that tmpfs hides /tmp (`mount::pin_bind_sources`); no host path
/// starts with this one.
pub const STAGE: &str = "/tmp/.watertight-stage";

/// The unprivileged caller: its real ids, which the sandbox's user namespace maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The caller's uid (host).
    pub uid: u32,
    /// The caller's gid (host).
    pub gid: u32,
}

/// The caller, when it is not root (effective uid not 0); None for root.
pub fn caller() -> Option<Caller> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    Some(Caller {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    })
}

/// A cgroup2 directory delegated to the caller, where the sandbox's cgroup is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The directory the sandbox's cgroup is made in.
    pub parent: PathBuf,
    /// Its `cgroup.subtree_control`: the controllers a cgroup made in it gets.
    pub subtree_control: String,
}

impl Delegation {
    /// Whether a cgroup made here gets `controller`.
    pub fn enables(&self, controller: &str) -> bool {
        self.subtree_control
            .split_whitespace()
            .any(|c| c == controller)
    }
}

/// What the host offers a caller for finding its delegated cgroup: read through these so the
/// search is unit-tested on a described host.
pub trait CgroupView {
    /// A file's text (None when it cannot be read).
    fn read(&self, path: &Path) -> Option<String>;
    /// Whether the caller may write `path` (access(2) W_OK).
    fn writable(&self, path: &Path) -> bool;
}

/// The kernel's files, as the caller.
pub struct HostView;

impl CgroupView for HostView {
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
    fn writable(&self, path: &Path) -> bool {
        nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
    }
}

/// Finds where the caller may make the sandbox's cgroup: its own cgroup on the unified
/// hierarchy (from `/proc/self/cgroup`'s `0::` line) or the closest ancestor of it that the
/// caller may write (the directory, to mkdir, and its `cgroup.procs`, which the kernel checks
/// to move a process between two cgroups under it), as systemd's `Delegate=` leaves a user's
/// subtree. Of those, the closest whose `cgroup.subtree_control` enables every controller in
/// `wanted` is chosen, else the closest (placement only: CPU time, freeze and kill still work).
/// The controller setup of the caller's tree is never changed. Err: why there is none, one line.
pub fn find_delegation(
    mountinfo: &str,
    self_cgroup: &str,
    wanted: &[&str],
    view: &impl CgroupView,
) -> Result<Delegation, String> {
    let mounts = watertight_cgroups::parse_mountinfo(mountinfo)
        .map_err(|e| format!("cannot read the cgroup mounts: {e}"))?;
    let Some(mount) = mounts.iter().find(|m| m.fstype == "cgroup2") else {
        return Err("no cgroup2 hierarchy is mounted".into());
    };
    let Some(own) = self_cgroup.lines().find_map(|l| l.strip_prefix("0::")) else {
        return Err(
            "the caller is in no cgroup2 cgroup (/proc/self/cgroup has no 0:: line)".into(),
        );
    };
    let own = match own.trim().trim_start_matches('/') {
        "" => mount.mount_point.clone(),
        rel => mount.mount_point.join(rel),
    };
    let usable = |dir: &Path| view.writable(dir) && view.writable(&dir.join("cgroup.procs"));
    let mut closest: Option<Delegation> = None;
    let mut dir = own.as_path();
    loop {
        if usable(dir) {
            let found = Delegation {
                parent: dir.to_path_buf(),
                subtree_control: view
                    .read(&dir.join("cgroup.subtree_control"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            if wanted.iter().all(|c| found.enables(c)) {
                return Ok(found);
            }
            closest.get_or_insert(found);
        }
        match dir.parent() {
            Some(up) if up.starts_with(&mount.mount_point) => dir = up,
            _ => break,
        }
    }
    closest.ok_or_else(|| {
        format!(
            "neither the caller's cgroup {} nor an ancestor is writable by it",
            own.display()
        )
    })
}

/// What a rootless sandbox enforces, decided by the plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enforcement {
    /// The delegated subtree the sandbox's cgroup is made in, if any.
    pub delegation: Option<Delegation>,
    /// Memory limit in the cgroup (else RLIMIT_AS).
    pub memory_cgroup: bool,
    /// pids limit in the cgroup (else RLIMIT_NPROC).
    pub pids_cgroup: bool,
    /// CPU bandwidth in the cgroup (else none).
    pub cpus_cgroup: bool,
    /// One line per limit or layer not enforced as the root sandbox enforces it: what, why,
    /// and what stands in (the verdict's `unenforced`).
    pub unenforced: Vec<String>,
}

/// Which of `limits` a rootless sandbox can enforce with `delegation` (Err: why there is no
/// delegated cgroup), and what stands in for the rest.
pub fn enforcement(limits: &Limits, delegation: Result<Delegation, String>) -> Enforcement {
    let mut e = Enforcement::default();
    let missing = |controller: &str| match &delegation {
        Ok(d) => format!(
            "the delegated cgroup {} does not enable the {controller} controller \
             (cgroup.subtree_control: {:?})",
            d.parent.display(),
            d.subtree_control
        ),
        Err(why) => format!("no delegated cgroup: {why}"),
    };
    let has = |c: &str| delegation.as_ref().is_ok_and(|d| d.enables(c));
    if let Some(m) = limits.memory {
        e.memory_cgroup = has("memory");
        if !e.memory_cgroup {
            e.unenforced.push(format!(
                "memory: {}; RLIMIT_AS {m} per process used instead (address space, not the \
                 sandbox's memory; an allocation past it fails: RE, never ML)",
                missing("memory")
            ));
        }
    }
    if let Some(n) = limits.pids {
        e.pids_cgroup = has("pids");
        if !e.pids_cgroup {
            e.unenforced.push(format!(
                "pids: {}; RLIMIT_NPROC {n} used instead (counted in the sandbox's own user \
                 namespace: its processes only)",
                missing("pids")
            ));
        }
    }
    if let Some(c) = limits.cpus {
        e.cpus_cgroup = has("cpu");
        if !e.cpus_cgroup {
            e.unenforced.push(format!(
                "cpus: {}; the {c}-core CPU bandwidth limit is not enforced",
                missing("cpu")
            ));
        }
    }
    if let (Some(t), Err(why)) = (limits.cpu_time, &delegation) {
        e.unenforced.push(format!(
            "cpu_time: no delegated cgroup to count the whole sandbox's CPU time live ({why}); \
             RLIMIT_CPU {} s per process and the reaped processes' rusage used instead",
            rlimit_cpu_seconds(t)
        ));
    }
    e.unenforced.push(
        "devices: no device cgroup (it needs root); /dev has only the bound host nodes, every \
         other mount is nodev"
            .into(),
    );
    e.delegation = delegation.ok();
    e
}

/// RLIMIT_CPU for a CPU-time limit where no cgroup counts the sandbox's CPU time: whole seconds,
/// rounded up (the kernel's unit), as isolate sets it.
pub fn rlimit_cpu_seconds(cpu_time: f64) -> u64 {
    cpu_time.ceil().max(1.0) as u64
}

/// Refuses what a rootless sandbox cannot do at all, with the fix.
pub fn refuse_root_only(bpf_observe: bool, bridge: bool) -> Result<(), Error> {
    let needs_root = |what: &str, why: &str| {
        Err(Error::Config(format!(
            "{what} needs root ({why}); run watertight as root or drop it"
        )))
    };
    if bpf_observe {
        return needs_root(
            "--bpf-observe",
            "only the initial namespace's root may delegate a bpffs",
        );
    }
    if bridge {
        return needs_root(
            "--net bridge:",
            "the guarded bridge port is a veth and an nftables ruleset on the host",
        );
    }
    Ok(())
}

/// The uid_map, setgroups and gid_map contents for a rootless sandbox, written in this order:
/// an unprivileged writer may map only its own ids, and its gid map only once setgroups is
/// denied in the namespace (else a process could drop a group that denies it access).
pub fn id_maps(identity: &crate::profile::Identity, caller: Caller) -> [(&'static str, String); 3] {
    [
        (
            "uid_map",
            crate::layers::user::id_map_line(identity.uid, caller.uid),
        ),
        ("setgroups", "deny\n".into()),
        (
            "gid_map",
            crate::layers::user::id_map_line(identity.gid, caller.gid),
        ),
    ]
}

/// Writes the child's maps ([`id_maps`]).
pub fn write_id_maps(
    child: i32,
    identity: &crate::profile::Identity,
    caller: Caller,
) -> Result<(), Error> {
    use crate::error::IoContext;
    for (file, contents) in id_maps(identity, caller) {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, contents).ctx(|| format!("write {path}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::profile::default_profile;

    const HYBRID: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V2: &str = "35 31 0:32 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";

    #[derive(Default)]
    struct Described {
        files: BTreeMap<PathBuf, String>,
        writable: BTreeSet<PathBuf>,
    }

    impl Described {
        fn delegate(mut self, dir: &str, subtree_control: &str) -> Described {
            let dir = PathBuf::from(dir);
            self.writable.insert(dir.clone());
            self.writable.insert(dir.join("cgroup.procs"));
            self.files
                .insert(dir.join("cgroup.subtree_control"), subtree_control.into());
            self
        }
    }

    impl CgroupView for Described {
        fn read(&self, path: &Path) -> Option<String> {
            self.files.get(path).cloned()
        }
        fn writable(&self, path: &Path) -> bool {
            self.writable.contains(path)
        }
    }

    const USER: &str = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service";

    #[test]
    fn a_systemd_user_session_gets_the_closest_ancestor_enabling_the_controllers() {
        // Everything under user@1000.service is the user's; its own scope enables nothing
        // (it holds processes), app.slice memory and pids, user@1000.service also cpu.
        let view = Described::default()
            .delegate(&format!("{USER}/app.slice/run-1.scope"), "")
            .delegate(&format!("{USER}/app.slice"), "memory pids")
            .delegate(USER, "cpu memory pids");
        let own = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope\n";
        let d = find_delegation(V2, own, &["memory", "pids"], &view).unwrap();
        assert_eq!(d.parent, PathBuf::from(format!("{USER}/app.slice")));
        let d = find_delegation(V2, own, &["memory", "pids", "cpu"], &view).unwrap();
        assert_eq!(d.parent, PathBuf::from(USER));
        // None enables io: the closest writable one, for placement.
        let d = find_delegation(V2, own, &["io"], &view).unwrap();
        assert_eq!(
            d.parent,
            PathBuf::from(format!("{USER}/app.slice/run-1.scope"))
        );
    }

    #[test]
    fn a_login_session_scope_owned_by_root_is_no_delegation() {
        let own = "0::/user.slice/user-1000.slice/session-3.scope\n";
        let e = find_delegation(V2, own, &["memory"], &Described::default()).unwrap_err();
        assert!(
            e.contains("session-3.scope") && e.contains("writable"),
            "{e}"
        );
        let e = find_delegation("", own, &[], &Described::default()).unwrap_err();
        assert!(e.contains("no cgroup2"), "{e}");
        // The hybrid host's unified hierarchy, a chowned directory (what the test makes).
        let view = Described::default().delegate("/sys/fs/cgroup/unified/wt-deleg", "");
        let d = find_delegation(HYBRID, "0::/wt-deleg/leaf\n", &["memory"], &view).unwrap();
        assert_eq!(d.parent, PathBuf::from("/sys/fs/cgroup/unified/wt-deleg"));
        assert!(!d.enables("memory"));
    }

    #[test]
    fn without_a_cgroup_rlimits_stand_in_and_the_verdict_says_so() {
        let mut limits = default_profile().limits;
        limits.cpus = Some(0.5);
        limits.cpu_time = Some(1.5);
        let e = enforcement(&limits, Err("no cgroup2 hierarchy is mounted".into()));
        assert!(!e.memory_cgroup && !e.pids_cgroup && !e.cpus_cgroup);
        let lines = e.unenforced.join("\n");
        for want in [
            "memory: no delegated cgroup: no cgroup2 hierarchy is mounted; RLIMIT_AS",
            "pids: no delegated cgroup",
            "RLIMIT_NPROC",
            "cpus: no delegated cgroup",
            "cpu_time: no delegated cgroup",
            "RLIMIT_CPU 2 s",
            "devices: no device cgroup",
        ] {
            assert!(lines.contains(want), "{want}: {lines}");
        }
    }

    #[test]
    fn a_delegated_cgroup_enforces_what_it_enables() {
        let mut limits = default_profile().limits;
        limits.cpus = Some(0.5);
        limits.cpu_time = Some(1.0);
        let d = Delegation {
            parent: USER.into(),
            subtree_control: "memory pids".into(),
        };
        let e = enforcement(&limits, Ok(d.clone()));
        assert!(e.memory_cgroup && e.pids_cgroup && !e.cpus_cgroup);
        assert_eq!(e.delegation, Some(d));
        let lines = e.unenforced.join("\n");
        assert!(lines.contains("cpus: the delegated cgroup"), "{lines}");
        assert!(
            !lines.contains("memory:") && !lines.contains("pids:"),
            "{lines}"
        );
        assert!(!lines.contains("cpu_time"), "cpu.stat counts it: {lines}");
    }

    #[test]
    fn maps_only_the_callers_ids_and_denies_setgroups_before_the_gid_map() {
        let identity = default_profile().identity;
        let maps = id_maps(
            &identity,
            Caller {
                uid: 1000,
                gid: 100,
            },
        );
        assert_eq!(
            maps,
            [
                ("uid_map", "0 1000 1\n".to_string()),
                ("setgroups", "deny\n".to_string()),
                ("gid_map", "0 100 1\n".to_string()),
            ]
        );
    }
}
