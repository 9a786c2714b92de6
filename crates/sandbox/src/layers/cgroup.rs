//! cgroup layer: the sandbox's own cgroup with its memory (no swap), pids and CPU limits and the
//! device allowlist, on cgroup v1, v2 or a hybrid of both (the cgroups crate detects which).
//!
//! In three steps around clone. [`CgroupPlan::new`], part of the sandbox's `Plan::new`, only
//! checks and reads: the profile's limits in bytes and numbers, checked against the kernel's
//! ranges (errors name the profile key and the flag), the host's layout, the hierarchies this
//! run needs. [`CgroupPlan::prepare_host`], as root before clone, acts once: leftovers of dead
//! supervisors removed, the owner tag read, cgroup2 controllers delegated. [`CgroupPlan::create`]
//! runs after clone while the sandbox waits: it only makes the directories and writes the
//! limits; the supervisor then moves the child in.

use std::path::PathBuf;

use watertight_cgroups::{
    Cgroup, CpuQuota, Layout, Limits as CgLimits, Needs, Plan, Registry, CFS_QUOTA_US,
    MEMORY_BYTES, PIDS_MAX,
};

use crate::error::Error;
use crate::profile::{key, OnViolation, Profile};
use crate::size::Size;

/// Where supervisors register the cgroups they create (see `watertight_cgroups::Registry`).
pub const REGISTRY_DIR: &str = "/run/watertight/cgroups";

/// One sandbox's cgroup, decided before clone: its limits in the kernel's units, checked, and
/// the controllers it needs. Where the host keeps them (the layout) is detected once, by
/// [`CgroupPlan::create`] after clone: before clone it cost every start 0.16 ms on the serial
/// path; after, it runs while pid 1 builds its mounts on the other core.
#[derive(Debug, Clone)]
pub struct CgroupPlan {
    limits: CgLimits,
    needs: Needs,
    /// Given (a fake cgroupfs in tests); otherwise detected by `create`.
    layout: Option<Layout>,
    registry_dir: PathBuf,
    /// Rootless: where the caller may make it (a delegated subtree), or nowhere.
    rootless: Option<Option<Layout>>,
}

impl CgroupPlan {
    /// Checks the profile's limits and the controllers they need. Reads and creates nothing.
    /// `exec_gate`: the integrity exec gate will attach BPF programs to the cgroup (it then
    /// needs a unified-hierarchy directory).
    pub fn new(profile: &Profile, exec_gate: bool) -> Result<CgroupPlan, Error> {
        Ok(CgroupPlan {
            limits: limits(profile)?,
            needs: needs(profile, exec_gate),
            layout: None,
            registry_dir: REGISTRY_DIR.into(),
            rootless: None,
        })
    }

    /// The cgroup of a rootless sandbox: in the delegated subtree `e` found, with only the
    /// limits its controllers enforce (the rest are rlimits or unenforced, as `e` says) and no
    /// device policy (that needs root); none at all without a delegated subtree. Checks the
    /// limits as [`CgroupPlan::new`] does; reads and creates nothing.
    pub fn rootless(
        profile: &Profile,
        e: &crate::layers::rootless::Enforcement,
    ) -> Result<CgroupPlan, Error> {
        let all = limits(profile)?;
        let limits = CgLimits {
            memory_bytes: all.memory_bytes.filter(|_| e.memory_cgroup),
            pids_max: all.pids_max.filter(|_| e.pids_cgroup),
            cpu_quota: all.cpu_quota.filter(|_| e.cpus_cgroup),
            devices: None,
        };
        let layout = e
            .delegation
            .as_ref()
            .map(|d| Layout::delegated(d.parent.clone(), &d.subtree_control));
        Ok(CgroupPlan {
            limits,
            needs: needs(profile, false),
            layout: None,
            registry_dir: REGISTRY_DIR.into(),
            rootless: Some(layout),
        })
    }

    /// Rootless without a delegated subtree: the sandbox runs in no cgroup of its own.
    pub fn is_none(&self) -> bool {
        matches!(self.rootless, Some(None))
    }

    /// The directory the sandbox's cgroup is made in, when rootless with a delegated subtree.
    pub fn delegated_parent(&self) -> Option<&std::path::Path> {
        self.rootless.as_ref()?.as_ref()?.unified_root()
    }

    /// Like [`CgroupPlan::new`] on a given layout (e.g. over a fake cgroupfs in tests) and
    /// registry directory; the hierarchies are chosen here, so a layout without the needed
    /// controllers fails here.
    pub fn with_layout(
        profile: &Profile,
        exec_gate: bool,
        layout: Layout,
        registry_dir: impl Into<PathBuf>,
    ) -> Result<CgroupPlan, Error> {
        let plan = CgroupPlan {
            limits: limits(profile)?,
            needs: needs(profile, exec_gate),
            layout: Some(layout),
            registry_dir: registry_dir.into(),
            rootless: None,
        };
        plan.on_host()?;
        Ok(plan)
    }

    /// The hierarchies to use on this host (the layout detected now, unless given).
    fn on_host(&self) -> Result<Plan, Error> {
        // The host's layout is read once per process: a `batch` step worker runs many
        // sandboxes, and the hierarchies do not move under a running batch (if one did, the
        // mkdir fails and says where).
        static HOST_LAYOUT: std::sync::OnceLock<watertight_cgroups::Layout> =
            std::sync::OnceLock::new();
        let layout = match &self.layout {
            Some(l) => l.clone(),
            None => match HOST_LAYOUT.get() {
                Some(l) => l.clone(),
                None => {
                    let detected = watertight_cgroups::detect()?;
                    HOST_LAYOUT.get_or_init(|| detected).clone()
                }
            },
        };
        Ok(Plan::new(layout, self.limits.clone(), self.needs)?)
    }

    /// After clone, while pid 1 builds its mounts on the other core (so none of it is on the
    /// start-up's serial path): detects the layout and chooses the hierarchies, removes the
    /// cgroups of supervisors that died without cleaning up (best effort), on pure cgroup v2
    /// makes sure the root delegates the controllers, then makes the sandbox's cgroup
    /// `sandbox_id` (registered until destroyed) with its limits written. The caller moves the
    /// child in.
    pub fn create(&self, sandbox_id: &str) -> Result<Cgroup, Error> {
        match &self.rootless {
            None => {}
            Some(None) => return Ok(Cgroup::none()),
            // The caller's own subtree: no registry (root's), its leftovers found by name in
            // the one directory it uses; nothing else of the host's layout is touched.
            Some(Some(layout)) => {
                let _ = watertight_cgroups::cleanup_stale(layout);
                let plan = Plan::new(layout.clone(), self.limits.clone(), self.needs)?;
                return Ok(plan.create(sandbox_id)?);
            }
        }
        let plan = self.on_host()?;
        let registry = Registry::open(&self.registry_dir)?;
        // A failure to clean someone else's leftovers must not stop this run.
        let _ = registry.cleanup_stale(plan.layout());
        plan.delegate_controllers()?;
        Ok(registry.create_planned(&plan, sandbox_id)?)
    }

    /// The limits as the cgroup gets them (bytes, tasks, CPU quota, device rules).
    pub fn limits(&self) -> &CgLimits {
        &self.limits
    }
}

/// The profile's cgroup limits in the kernel's units, each checked against the range the
/// kernel accepts. An error names the profile key, the flag that sets it, the value and the
/// range.
pub fn limits(profile: &Profile) -> Result<CgLimits, Error> {
    let out_of_range = |name: &str, value: String, range: String| {
        Error::Config(format!(
            "{} {value} is out of range: use {range}",
            key(name)
        ))
    };
    let memory_bytes = match profile.limits.memory {
        Some(size) if !MEMORY_BYTES.contains(&size.bytes()) => {
            return Err(out_of_range(
                "limits.memory",
                size.to_string(),
                format!(
                    "{} to {} (a page at least, at most 2^63-1 bytes), e.g. 256M",
                    Size::bytes_exact(*MEMORY_BYTES.start()),
                    Size::bytes_exact(*MEMORY_BYTES.end() >> 40 << 40),
                ),
            ))
        }
        other => other.map(Size::bytes),
    };
    let pids_max = match profile.limits.pids {
        Some(n) if !PIDS_MAX.contains(&n) => {
            return Err(out_of_range(
                "limits.pids",
                n.to_string(),
                format!(
                    "{} to {} tasks (the kernel's PID_MAX_LIMIT)",
                    PIDS_MAX.start(),
                    PIDS_MAX.end()
                ),
            ))
        }
        other => other,
    };
    let cpu_quota = match profile.limits.cpus {
        None => None,
        Some(cpus) => {
            let quota = CpuQuota::cpus(cpus);
            if !(cpus.is_finite() && CFS_QUOTA_US.contains(&quota.quota_us)) {
                let period = CpuQuota::DEFAULT_PERIOD_US as f64;
                return Err(out_of_range(
                    "limits.cpus",
                    cpus.to_string(),
                    format!(
                        "{} to {} cores (the kernel's CPU quota is at least 1 ms per {} ms period)",
                        *CFS_QUOTA_US.start() as f64 / period,
                        (*CFS_QUOTA_US.end() as f64 / period).floor(),
                        CpuQuota::DEFAULT_PERIOD_US / 1000,
                    ),
                ));
            }
            Some(quota)
        }
    };
    Ok(CgLimits {
        memory_bytes,
        pids_max,
        cpu_quota,
        devices: Some(crate::layers::dev::allowlist(&profile.dev)),
    })
}

/// What the sandbox's cgroup must do besides its limits. Each hierarchy joined costs a mkdir, a
/// write and an rmdir per run, so only what this run uses: the freezer for the forensic
/// response, live CPU usage for a CPU-time limit (the verdict otherwise counts CPU from wait4's
/// rusage, which covers every task pid 1 reaped), the unified hierarchy for the exec gate.
pub fn needs(profile: &Profile, exec_gate: bool) -> Needs {
    Needs {
        freeze: profile.seccomp.on_violation == OnViolation::Forensic,
        cpu_usage: profile.limits.cpu_time.is_some(),
        bpf: exec_gate,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use watertight_cgroups::fake::{FakeCgroupFs, FakeOp};

    use super::*;
    use crate::profile::default_profile;

    fn message(profile: &Profile) -> String {
        limits(profile).unwrap_err().to_string()
    }

    #[test]
    fn out_of_range_limits_name_the_key_the_flag_and_the_range() {
        let mut p = default_profile();
        p.limits.memory = Some("1K".parse().unwrap());
        let m = message(&p);
        assert!(
            m.contains("limits.memory") && m.contains("--memory-limit"),
            "{m}"
        );
        assert!(m.contains("1K") && m.contains("4K to 8388607T"), "{m}");
        assert!(!m.contains("memory_bytes"), "no internal field name: {m}");

        let mut p = default_profile();
        p.limits.pids = Some(5_000_000);
        let m = message(&p);
        assert!(m.contains("limits.pids (--pids-limit) 5000000"), "{m}");
        assert!(m.contains("1 to 4194304"), "{m}");
        p.limits.pids = Some(0);
        assert!(message(&p).contains("limits.pids (--pids-limit) 0"));

        let mut p = default_profile();
        p.limits.cpus = Some(0.001);
        let m = message(&p);
        assert!(m.contains("limits.cpus (--cpus) 0.001"), "{m}");
        assert!(m.contains("0.01 to"), "{m}");
        assert!(!m.contains("quota_us"), "{m}");
    }

    #[test]
    fn limits_are_in_the_kernels_units() {
        let mut p = default_profile();
        p.limits.memory = Some("64M".parse().unwrap());
        p.limits.pids = Some(20);
        p.limits.cpus = Some(0.25);
        let l = limits(&p).unwrap();
        assert_eq!(l.memory_bytes, Some(64 << 20));
        assert_eq!(l.pids_max, Some(20));
        assert_eq!(
            l.cpu_quota,
            Some(CpuQuota {
                quota_us: 25_000,
                period_us: 100_000
            })
        );
        assert!(l.validate().is_ok());
    }

    /// The default profile on a fake hybrid host: the plan made before clone, then only the
    /// mkdirs and limit writes after it.
    #[test]
    fn plan_then_create_on_a_fake_hybrid_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = FakeCgroupFs::new(dir.path().join("fs"));
        for c in ["memory", "pids", "cpu", "devices", "freezer"] {
            fake.mount_v1(&Path::new("/sys/fs/cgroup").join(c), &[c])
                .unwrap();
        }
        fake.mount_v2(Path::new("/sys/fs/cgroup/unified"), &["hugetlb"])
            .unwrap();
        let fake = Arc::new(fake);
        let layout = Layout::detect_in(fake.clone(), &fake.mountinfo()).unwrap();
        let profile = default_profile();
        let plan =
            CgroupPlan::with_layout(&profile, false, layout, dir.path().join("registry")).unwrap();
        assert!(
            fake.log().is_empty(),
            "planning writes nothing on a hybrid host"
        );

        let cgroup = plan.create("wt-0-1").unwrap();
        let name = cgroup.dir_name().to_owned();
        let memory = profile.limits.memory.unwrap().bytes().to_string();
        let pids = profile.limits.pids.unwrap().to_string();
        let cg = |c: &str| Path::new("/sys/fs/cgroup").join(c).join(&name);
        let mut expected = vec![
            FakeOp::Mkdir(cg("memory")),
            FakeOp::Mkdir(cg("pids")),
            FakeOp::Mkdir(cg("devices")),
            FakeOp::Write(cg("memory").join("memory.limit_in_bytes"), memory.clone()),
            FakeOp::Write(cg("memory").join("memory.memsw.limit_in_bytes"), memory),
            FakeOp::Write(cg("pids").join("pids.max"), pids),
            FakeOp::Write(cg("devices").join("devices.deny"), "a".into()),
        ];
        for rule in crate::layers::dev::allowlist(&profile.dev) {
            for line in rule.v1_allow_lines() {
                expected.push(FakeOp::Write(cg("devices").join("devices.allow"), line));
            }
        }
        assert_eq!(fake.take_log(), expected);
        assert!(dir.path().join("registry").join(&name).is_file());
        cgroup.destroy().unwrap();
        assert!(!dir.path().join("registry").join(&name).exists());
    }
}
