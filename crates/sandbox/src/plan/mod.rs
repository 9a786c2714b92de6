//! The plan: everything one sandbox will be, computed and validated once, before anything is
//! created (Firecracker's jailer: validate in `new`, act in `run`). Every source of sandboxes
//! builds one: a TOML profile with flags today (`Plan::new` from a [`Job`]); the same value is
//! what `contain::run` applies, what [`Plan::workload`] renders for the auditor, and what
//! [`Plan::digest`] names.
//!
//! Sub-plans, one per layer: identity (`profile.identity`), namespaces ([`Plan::clone_flags`]),
//! mounts ([`MountPlan`], `MountOp`s), devices and /proc (inside the mount plan), environment
//! and argv (bytes), rlimits, the compiled seccomp program, integrity (verified tree), and the
//! limits the supervisor enforces (`profile.limits`).

mod digest;
mod model;
mod running;

use std::ffi::CString;
use std::os::fd::OwnedFd;

use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use watertight_seccomp::CompiledFilter;

pub use digest::{IntegrityInputs, PlanDigest};
pub use running::Published;

use crate::contain::Job;
use crate::error::Error;
use crate::layers::mount::{MountPlan, MountRequest};
use crate::layers::{
    cgroup, env, integrity, limits, mount, namespaces, rootless, seccomp, sockets,
};
use crate::profile::Profile;

/// One sandbox, planned. Built by [`Plan::new`]; nothing in it has touched the host yet except
/// reading (the profile, the secrets, the root directory for integrity).
pub struct Plan {
    /// The effective profile (file plus flags), validated.
    pub profile: Profile,
    /// The namespaces the clone creates (user, pid and mount always).
    pub clone_flags: CloneFlags,
    /// Every mount pid 1 makes, in order, and the working directory.
    pub mounts: MountPlan,
    /// The program and its arguments for execve.
    pub argv: Vec<CString>,
    /// The program's whole environment (`KEY=VALUE`): the profile's plus `--env`.
    pub envp: Vec<CString>,
    /// (resource, soft, hard) limits the program gets before execve.
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// The seccomp program pid 1 installs last (from the cache when compiled before).
    pub filter: CompiledFilter,
    /// Exec-time integrity, verified before fork; None without `--manifest`.
    pub integrity: Option<integrity::Verified>,
    /// The sandbox's cgroup: limits in the kernel's units (checked), the host's layout
    /// (detected), the hierarchies it uses; made after clone by [`cgroup::CgroupPlan::create`].
    pub cgroup: cgroup::CgroupPlan,
    /// Detached mount trees the mount plan attaches, made by [`Plan::open_host_trees`] (an act,
    /// not a plan: empty until then).
    pub bind_trees: Vec<OwnedFd>,
    /// The integrity inputs the digest covers (with `--manifest`).
    pub integrity_inputs: Option<IntegrityInputs>,
    /// Without root (`layers/rootless.rs`): the caller's ids and what is enforced how; None
    /// when the caller is root.
    pub rootless: Option<Rootless>,
    /// sha256 of the policy, made on first use ([`Plan::digest`]).
    digest: std::sync::OnceLock<PlanDigest>,
}

/// A rootless sandbox's plan: whose ids it maps, and what it enforces how.
#[derive(Debug, Clone)]
pub struct Rootless {
    /// The caller, whose uid and gid alone the sandbox's user namespace maps.
    pub caller: rootless::Caller,
    /// Where its cgroup goes, what rlimits stand in for, what is not enforced.
    pub enforcement: rootless::Enforcement,
}

impl Rootless {
    /// Plans a rootless sandbox for `caller`: refuses what needs root, finds the caller's
    /// delegated cgroup (reads /proc/self/mountinfo and /proc/self/cgroup), decides the rest.
    fn new(caller: rootless::Caller, profile: &Profile, job: &Job) -> Result<Rootless, Error> {
        rootless::refuse_root_only(profile.bpf.observe, job.bridge_port.is_some())?;
        let l = &profile.limits;
        let wanted: Vec<&str> = [
            (l.memory.is_some(), "memory"),
            (l.pids.is_some(), "pids"),
            (l.cpus.is_some(), "cpu"),
        ]
        .into_iter()
        .filter_map(|(on, c)| on.then_some(c))
        .collect();
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let delegation = rootless::find_delegation(
            &read("/proc/self/mountinfo"),
            &read("/proc/self/cgroup"),
            &wanted,
            &rootless::HostView,
        );
        if let (crate::profile::OnViolation::Forensic, Err(why)) =
            (profile.seccomp.on_violation, &delegation)
        {
            // The response freezes the sandbox before capturing it: that needs its cgroup.
            return Err(Error::Config(format!(
                "--on-violation forensic needs the sandbox in a cgroup of its own to freeze it, \
                 and without root there is no delegated cgroup ({why}); use --on-violation \
                 deny or kill, or start watertight in a delegated cgroup (systemd-run --user \
                 --scope -p Delegate=yes)"
            )));
        }
        Ok(Rootless {
            caller,
            enforcement: rootless::enforcement(l, delegation),
        })
    }
}

impl Plan {
    /// Validates `job` and computes everything the sandbox needs. Every error names the flag or
    /// profile key at fault and what it accepts; nothing is created.
    pub fn new(job: &Job) -> Result<Plan, Error> {
        Plan::for_caller(job, rootless::caller())
    }

    /// [`Plan::new`] for a given caller: None plans the root sandbox whoever asks (`profile
    /// explain` shows the profile as root runs it), Some a rootless one.
    pub fn for_caller(job: &Job, caller: Option<rootless::Caller>) -> Result<Plan, Error> {
        let profile = job.profile.clone();
        profile.validate().map_err(|m| Error::Profile {
            origin: "(effective profile)".into(),
            message: m,
        })?;
        if job.argv.is_empty() {
            return Err(Error::Config(
                "no command given: watertight run [OPTIONS] -- COMMAND [ARGS...]".into(),
            ));
        }
        let argv = job
            .argv
            .iter()
            .map(|a| {
                use std::os::unix::ffi::OsStrExt;
                CString::new(a.as_bytes()).map_err(|_| {
                    Error::Config(format!(
                        "argument {} contains a NUL byte",
                        watertight_sys::text::quote(a.as_bytes())
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rootless = caller
            .map(|c| Rootless::new(c, &profile, job))
            .transpose()?;
        let mut integrity = match &job.integrity {
            None => None,
            Some(req) => {
                if profile.root.source == "host" || profile.root.writable {
                    return Err(Error::Config(
                        "--manifest needs a read-only root directory: pass --rootfs DIR (without --writable-root)".into(),
                    ));
                }
                Some(integrity::verify(
                    std::path::Path::new(&profile.root.source),
                    req,
                )?)
            }
        };
        if let (Some(r), Some(v)) = (rootless.as_mut(), integrity.as_mut()) {
            // Both need root: the sysctl only the initial namespace's root may write, the
            // gate BPF programs. Landlock and MDWE hold without them.
            if std::mem::take(&mut v.memfd_noexec) {
                r.enforcement.unenforced.push(
                    "integrity: vm.memfd_noexec = 2 not set in the sandbox (only root may): \
                     memfd execution is not refused"
                        .into(),
                );
            }
            if std::mem::take(&mut v.gate) {
                r.enforcement.unenforced.push(
                    "integrity: no BPF exec gate (it needs root); Landlock and MDWE only".into(),
                );
            }
        }
        let req = MountRequest {
            cwd: std::env::current_dir().ok(),
            workdir: job.workdir.clone(),
            box_dir: job
                .box_dir
                .as_deref()
                .map(crate::layers::workbox::absolute)
                .transpose()?,
            secrets: job.secrets.clone(),
            noexec_writable: integrity.is_some(),
            rootless: rootless.is_some(),
        };
        let mounts = mount::plan(&profile, &req)?;
        if let Some(v) = integrity.as_mut() {
            v.write_roots = integrity::write_roots(&mounts); // before binds become detached trees
        }
        let envp = env::build(&profile.env, &job.env)?;
        let rlimits =
            limits::rlimits_with(&profile.limits, rootless.as_ref().map(|r| &r.enforcement));
        // The cgroup is made after clone: its limits, layout and hierarchies are settled here.
        let cgroup = match &rootless {
            None => cgroup::CgroupPlan::new(&profile, integrity.as_ref().is_some_and(|v| v.gate))?,
            Some(r) => cgroup::CgroupPlan::rootless(&profile, &r.enforcement)?,
        };
        let filter = seccomp::compile(&profile.seccomp, integrity.is_some(), profile.bpf.observe)?;
        let integrity_inputs = job
            .integrity
            .as_ref()
            .map(IntegrityInputs::read)
            .transpose()?;
        Ok(Plan {
            clone_flags: namespaces::clone_flags(&profile.namespaces),
            profile,
            mounts,
            argv,
            envp,
            rlimits,
            filter,
            integrity,
            cgroup,
            bind_trees: Vec::new(),
            integrity_inputs,
            rootless,
            digest: std::sync::OnceLock::new(),
        })
    }

    /// sha256 of the policy this plan applies ([`PlanDigest`]), made on first use: `run`
    /// makes it after clone, while pid 1 builds its mounts (0.07 ms off the serial path).
    pub fn digest(&self) -> &PlanDigest {
        self.digest.get_or_init(|| {
            PlanDigest::of(&self.profile, &self.filter, self.integrity_inputs.as_ref())
        })
    }

    /// The first act, as the caller (root) before fork: the caller's binds and a root
    /// directory become detached trees (pid 1 is the slot's uid and may not reach them by
    /// path), those to guard unable to reach host sockets (`layers/sockets.rs`).
    /// `work_box`: the checked `--box` directory, attached idmapped to `host_id` (the sandbox's
    /// host uid and gid) so that what the program makes there is the caller's on disk.
    pub fn open_host_trees(
        &mut self,
        work_box: Option<(&crate::layers::workbox::WorkBox, u32)>,
    ) -> Result<(), Error> {
        if self.rootless.is_some() {
            // pid 1 is the caller and binds by path; nothing can be idmapped without root.
            return sockets::mask_host_sockets(&mut self.mounts);
        }
        self.bind_trees = sockets::attach_host_binds(&mut self.mounts, work_box)?;
        Ok(())
    }
}
