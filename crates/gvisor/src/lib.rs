//! `watertight run --isolation gvisor`: the program runs on gVisor's user-space kernel (runsc)
//! instead of facing the host kernel, while watertight keeps, outside that boundary, what it
//! keeps for the namespace tier: the cgroup (memory, pids, CPU; OOM kills seen), the time and
//! output limits, the verdict with the same statuses, the events file and the clean-up.
//!
//! Validate in [`Gvisor::new`] (the same [`Plan`] as the namespace tier; runsc found, its
//! platform chosen; what this tier cannot do refused), act in [`Gvisor::run`]:
//!
//! 1. the caller's files opened, the box checked (as the namespace tier);
//! 2. a private mount namespace for watertight and everything it starts (mounts made for the
//!    run never reach the host's table, and vanish with the last process), a tmpfs work
//!    directory of [`WORK_SIZE`] in it: the OCI bundle (`bundle.rs`), runsc's state (`--root`),
//!    runsc's logs;
//! 3. the outer cgroup (crates/cgroups) with the profile's memory and CPU limits, pids raised by
//!    [`TASK_OVERHEAD`] for the Sentry's and Gofer's own threads, joined by the forked child
//!    before it execs runsc, so runsc and everything it starts are inside from their first
//!    instruction; runsc gets `--ignore-cgroups`, so it never moves its sandbox out of it;
//! 4. `runsc --platform=P --network=none --ignore-cgroups --root STATE --debug-log=LOGS/ run`,
//!    its stdout/stderr through counted pipes (`output.rs` of the sandbox crate);
//! 5. supervision: wall and CPU time (the cgroup's, so the Sentry's work counts), output,
//!    SIGINT/SIGTERM/SIGHUP; on a limit the cgroup is killed whole;
//! 6. the verdict by `verdict::decide`, the program's wait status from runsc's log
//!    (`log.rs`), unimplemented system calls as `syscall_denied` events; everything removed.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod error;
pub mod log;
pub mod runsc;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;
use watertight_sandbox::events::{EventKind, EventLog};
use watertight_sandbox::output::{OutputMeter, OutputRelay, Pipes};
use watertight_sandbox::profile::Isolation;
use watertight_sandbox::report::Report;
use watertight_sandbox::terminal::Streams;
use watertight_sandbox::verdict::{self, AppliedLimits, IsolationReport, Outcome, Settings, Stop};
use watertight_sandbox::{Job, Plan, Verdict};

pub use error::Error;
pub use runsc::Runsc;

/// Size of a run's private work tmpfs: the bundle (a few KiB plus secrets), runsc's state and
/// its logs; a Sentry that logs more finds it full and its further lines are dropped.
pub const WORK_SIZE: u64 = 32 << 20;

/// Tasks the gVisor machinery itself takes in the outer cgroup, added to `limits.pids`: runsc,
/// the Gofer and the Sentry are Go programs of a few dozen threads each (measured: ~60 at
/// rest for /bin/true), and the ptrace platform adds a stub process per address space.
pub const TASK_OVERHEAD: u64 = 256;

/// How often the supervisor reads the cgroup's CPU time and OOM count.
const TICK: Duration = Duration::from_millis(50);

/// One gVisor run, planned and checked.
pub struct Gvisor<'a> {
    job: &'a Job,
    plan: Plan,
    runsc: Runsc,
}

impl<'a> Gvisor<'a> {
    /// Validates `job` for this tier: the plan (as the namespace tier), runsc present (else one
    /// line naming the Debian package), the platform chosen; refuses what the tier does not
    /// provide. Creates nothing but the platform cache.
    pub fn new(job: &'a Job) -> Result<Gvisor<'a>, Error> {
        if !nix::unistd::geteuid().is_root() {
            return Err(Error::NotRoot);
        }
        let mut job_plan = Plan::new(job)?;
        job_plan.profile.isolation = Isolation::Gvisor;
        let p = &job_plan.profile;
        let refuse = |what: &str| Err(Error::Unsupported(what.to_string()));
        if job.integrity.is_some() {
            return refuse("--manifest (exec-time integrity) works only with --isolation namespaces: gVisor's Sentry loads the program, where watertight's exec gate cannot see");
        }
        if job.bridge_port.is_some() {
            return refuse("--net bridge works only with --isolation namespaces: this tier runs with runsc --network=none");
        }
        if p.bpf.observe {
            return refuse(
                "--bpf-observe works only with --isolation namespaces: gVisor has no BPF",
            );
        }
        if p.seccomp.profile != "default" {
            return refuse("--seccomp FILE works only with --isolation namespaces: the program's system calls go to gVisor's Sentry, whose own filter (runsc's) guards the host");
        }
        let runsc = runsc::locate()?;
        Ok(Gvisor {
            job,
            plan: job_plan,
            runsc,
        })
    }

    /// The runsc found and its platform.
    pub fn runsc(&self) -> &Runsc {
        &self.runsc
    }

    /// Runs the program and returns its verdict. Every directory, mount, cgroup and process
    /// the run made is gone when this returns, whatever happened.
    pub fn run(self) -> Result<Verdict, Error> {
        let job = self.job;
        let profile = &self.plan.profile;
        let mut stdio = job.stdio.open()?;
        let work_box = job
            .box_dir
            .as_deref()
            .map(watertight_sandbox::layers::workbox::prepare)
            .transpose()?;
        let sandbox_id = format!("wt-gvisor-{}", std::process::id());
        let mut events = EventLog::new(
            &sandbox_id,
            job.events.as_deref(),
            profile.events.limit.bytes(),
        )?;
        let digest = self.plan.digest().to_string();
        events.set_plan_digest(&digest);

        private_mount_namespace()?;
        let work = WorkDir::make(&sandbox_id)?;
        let root_view = match profile.root.source.as_str() {
            "host" => None,
            source => Some(root_view(Path::new(source), &work.path)?),
        };
        bundle::write(
            &self.plan,
            &bundle::Inputs {
                box_dir: work_box.as_ref().map(|b| b.path.as_path()),
                secrets: &job.secrets,
                root_view: root_view.as_deref(),
            },
            &work.bundle(),
        )?;
        std::fs::create_dir(work.logs()).map_err(|source| Error::WorkDir {
            path: work.logs().display().to_string(),
            source,
        })?;
        let cgroup = OuterCgroup::create(profile, &sandbox_id)?;

        let dest = watertight_sandbox::stdio::destinations(&mut stdio);
        let pipes = Pipes::open(Streams::default(), &dest)?;
        let interrupt = Interrupts::block()?;
        let started = Instant::now();
        let (program_ends, supervisor_ends) = pipes.split();
        let child = self.spawn(&work, &cgroup, stdio.stdin.take(), program_ends)?;
        let [out_r, err_r] = supervisor_ends;
        let mut relay = OutputRelay::new([out_r, err_r], dest);
        let mut meter = OutputMeter::new(profile.limits.output.map(|s| s.bytes()));
        let limits = &profile.limits;
        let wall_deadline = limits
            .wall_time
            .map(|s| started + Duration::from_secs_f64(s));
        let pidfd =
            watertight_sys::process::pidfd_open(child as u32).map_err(|source| Error::Process {
                what: "pidfd_open runsc",
                source,
            })?;
        let mut stop: Option<Stop> = None;
        let mut buf = Vec::new();
        let reaped;
        loop {
            let ready = {
                let watched = relay.poll_fds();
                let mut fds: Vec<PollFd> = watched
                    .iter()
                    .map(|(fd, f, _)| PollFd::new(*fd, *f))
                    .collect();
                fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
                fds.push(PollFd::new(interrupt.fd.as_fd(), PollFlags::POLLIN));
                let _ = nix::poll::poll(
                    &mut fds,
                    PollTimeout::try_from(TICK.as_millis() as i32).unwrap_or(PollTimeout::ZERO),
                );
                let n = fds.len();
                let flag = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
                let exited = flag(n - 2);
                let signalled = flag(n - 1);
                let out: Vec<_> = (0..n - 2)
                    .filter(|&i| flag(i))
                    .map(|i| watched[i].2)
                    .collect();
                (out, exited, signalled)
            };
            for which in ready.0 {
                relay.on_ready(which, &mut meter, &mut buf);
            }
            if meter.exceeded() && stop.is_none() {
                stop = Some(Stop::Output);
            }
            if ready.2 && stop.is_none() {
                if let Ok(Some(info)) = interrupt.fd.read_signal() {
                    stop = Some(Stop::Interrupted(info.ssi_signo as i32));
                }
            }
            if wall_deadline.is_some_and(|d| Instant::now() >= d) && stop.is_none() {
                stop = Some(Stop::WallTime);
            }
            if let (Some(limit), None) = (limits.cpu_time, stop) {
                if cgroup
                    .cg
                    .stats()
                    .ok()
                    .and_then(|s| s.cpu_usage_ns)
                    .is_some_and(|ns| ns as f64 / 1e9 >= limit)
                {
                    stop = Some(Stop::CpuTime);
                }
            }
            if stop.is_some() {
                // The whole cgroup at once: runsc, Gofer, Sentry and every stub.
                let _ = cgroup.cg.kill_all();
            }
            if ready.1 || stop.is_some() {
                if let Some(r) =
                    watertight_sys::process::wait4(child, stop.is_none()).map_err(|source| {
                        Error::Process {
                            what: "wait for runsc",
                            source,
                        }
                    })?
                {
                    reaped = Some(r);
                    break;
                }
            }
        }
        let wall = started.elapsed();
        // Whatever runsc left behind (a Sentry it did not reap) goes with the cgroup.
        let _ = cgroup.cg.kill_all();
        let drain_deadline = Some(Instant::now() + Duration::from_secs(1));
        relay.drain(&mut meter, &mut buf, drain_deadline, interrupt.fd.as_fd());
        let stats = cgroup.cg.stats().ok();
        drop(interrupt);
        let run_log = log::read_dir(&work.logs());
        for (name, call) in &run_log.unsupported {
            let mut key = serde_json::Map::new();
            key.insert("syscall".into(), json!(name));
            events.record(EventKind::SyscallDenied, key, || {
                json!({"source": "gvisor", "reason": "not implemented by gVisor's Sentry (the call returned an error to the program)", "call": call})
            });
        }
        if stats.as_ref().and_then(|s| s.oom_kills).unwrap_or(0) > 0 {
            events.emit(
                EventKind::MemoryLimit,
                json!({"limit_bytes": limits.memory.map(|s| s.bytes())}),
            );
        }
        match stop {
            Some(Stop::WallTime | Stop::CpuTime) => {
                events.emit(
                    EventKind::TimeLimit,
                    json!({"which": if stop == Some(Stop::WallTime) {"wall"} else {"cpu"}}),
                );
            }
            Some(Stop::Output) => {
                events.emit(
                    EventKind::OutputLimit,
                    json!({"limit_bytes": limits.output.map(|s| s.bytes())}),
                );
            }
            _ => {}
        }
        let mut reports = Vec::new();
        let mut runsc_failed = None;
        match (run_log.wait_status, &run_log.fatal) {
            (_, Some(fatal)) => {
                if let Some(errno) = exec_errno(fatal) {
                    reports.push(Report::ExecFailed { errno });
                } else {
                    runsc_failed = Some(fatal.clone());
                }
            }
            (Some(status), None) => reports.push(Report::Exited { status }),
            (None, None) => {}
        }
        let outcome = Outcome {
            reaped,
            reports,
            stop,
            wall,
            output_bytes: meter.bytes,
            cgroup_cpu_ns: stats.as_ref().and_then(|s| s.cpu_usage_ns),
            stats,
            evidence: None,
        };
        let settings = Settings {
            limits: AppliedLimits::of(limits),
            max_violations: profile.seccomp.max_violations,
            integrity: false,
            sandbox_id: sandbox_id.clone(),
            command: job.argv.first().cloned().unwrap_or_default(),
            // runsc runs inside watertight's cgroup: CPU time is the cgroup's, never an rlimit's.
            cpu_time_by_rlimit: false,
        };
        events.finish();
        let mut v = verdict::decide(&outcome, &settings, events.summary());
        if let (Some(fatal), None) = (runsc_failed, stop) {
            if !v.oom_killed {
                v.status = watertight_sandbox::Status::XX;
                v.message = Some(format!(
                    "runsc failed: {}",
                    watertight_sys::text::quote(fatal.as_bytes())
                ));
            }
        }
        v.plan_digest = digest;
        v.isolation = Some(IsolationReport {
            tier: Isolation::Gvisor,
            platform: self.runsc.platform.clone(),
            platform_reason: self.runsc.platform_reason.clone(),
        });
        if let Some(b) = &work_box {
            let _ = watertight_sandbox::layers::workbox::hand_back(b);
        }
        drop(cgroup);
        drop(work);
        Ok(v)
    }

    /// Forks a child that joins the outer cgroup and execs runsc.
    fn spawn(
        &self,
        work: &WorkDir,
        cgroup: &OuterCgroup,
        stdin: Option<OwnedFd>,
        out: [Option<OwnedFd>; 2],
    ) -> Result<i32, Error> {
        let mut cmd = Command::new(&self.runsc.path);
        cmd.arg(format!("--platform={}", self.runsc.platform))
            .arg("--network=none")
            // watertight's cgroup around runsc is the one that limits it: runsc's own cgroup
            // code would move the sandbox into a cgroup of its making (out of ours), and it
            // drives cgroup v1 and v2 but not this hybrid layout reliably.
            .arg("--ignore-cgroups")
            // The bundle's linux.seccomp (watertight's allowlist) installed in the Sentry.
            .arg("--oci-seccomp")
            .arg("--root")
            .arg(work.state())
            .arg(format!("--debug-log={}/", work.logs().display()));
        if self.plan.profile.root.writable {
            // The root's writes go to an overlay in the Sentry's memory, under the memory limit.
            cmd.arg("--overlay2=root:memory");
        }
        cmd.arg("run")
            .arg("--bundle")
            .arg(work.bundle())
            .arg(format!("wt-{}", std::process::id()));
        cmd.stdin(stdin.map_or(Stdio::inherit(), Stdio::from));
        let [o, e] = out;
        cmd.stdout(o.map_or(Stdio::inherit(), Stdio::from));
        cmd.stderr(e.map_or(Stdio::inherit(), Stdio::from));
        match watertight_sys::process::fork().map_err(|source| Error::Process {
            what: "fork",
            source,
        })? {
            watertight_sys::process::Forked::Parent { pid, .. } => Ok(pid),
            watertight_sys::process::Forked::Child => {
                // Into the cgroup before anything of runsc runs (a process moving itself is
                // cheap and cannot race with its own forks); fail closed.
                if let Err(e) = cgroup.cg.add_process(std::process::id() as i32) {
                    eprintln!("watertight: gvisor: join the cgroup: {e}");
                    watertight_sys::process::exit_now(125);
                }
                let e = std::os::unix::process::CommandExt::exec(&mut cmd);
                eprintln!(
                    "watertight: gvisor: exec {}: {e}",
                    self.runsc.path.display()
                );
                watertight_sys::process::exit_now(125)
            }
        }
    }
}

/// An errno for runsc's "failed to load PATH: REASON" (the program could not be executed).
fn exec_errno(fatal: &str) -> Option<i32> {
    if !fatal.contains("failed to load") {
        return None;
    }
    if fatal.ends_with("no such file or directory") {
        Some(libc::ENOENT)
    } else if fatal.ends_with("permission denied") {
        Some(libc::EACCES)
    } else {
        Some(libc::ENOEXEC)
    }
}

/// Everything from here on (runsc, its Gofer and Sentry) sees mounts of its own: the work tmpfs
/// never appears in the host's table, and every mount the run makes goes when the last of its
/// processes does.
fn private_mount_namespace() -> Result<(), Error> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(Error::MountNamespace)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(Error::MountNamespace)
}

/// The path runsc gets for a `--rootfs` root: an overlay whose lower layer is the caller's
/// directory and whose upper layer is in the run's work tmpfs, in the run's private mount
/// namespace. runsc's Gofer makes the mount points a config needs (`/tmp`, a bind's target)
/// in the root it is given, before it makes it read-only, and it remounts what it is given,
/// so a read-only bind would not stop it: through the overlay those directories land in the
/// work tmpfs and the caller's directory is never written. A writable root's writes go to
/// runsc's own overlay in the Sentry's memory (`--overlay2=root:memory`), above this one.
fn root_view(source: &Path, work: &Path) -> Result<PathBuf, Error> {
    let err = |e: nix::Error| Error::RootView {
        path: source.display().to_string(),
        source: e,
    };
    let text = source.to_str().unwrap_or(",");
    if text.contains([',', ':', '\\']) {
        return Err(Error::Unsupported(format!(
            "--rootfs {}: a path with ',', ':' or '\\' cannot be an overlay layer; use another path",
            source.display()
        )));
    }
    let [upper, scratch, view] = ["root-upper", "root-work", "root-view"].map(|n| work.join(n));
    for d in [&upper, &scratch, &view] {
        std::fs::create_dir(d)
            .map_err(|e| err(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    }
    let data = format!(
        "lowerdir={text},upperdir={},workdir={}",
        upper.display(),
        scratch.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &view,
        Some("overlay"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(data.as_str()),
    )
    .map_err(err)?;
    Ok(view)
}

/// The run's private directory: `WORK_ROOT/<sandbox id>` on the host, a tmpfs in the run's
/// mount namespace. Dropped: unmounted and removed.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn make(sandbox_id: &str) -> Result<WorkDir, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let root = Path::new(runsc::WORK_ROOT);
        let err = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::WorkDir { path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(err(root))?;
        remove_stale(root);
        let path = root.join(sandbox_id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(err(&path))?;
        let dir = WorkDir { path };
        nix::mount::mount(
            Some("tmpfs"),
            &dir.path,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("size={WORK_SIZE},mode=0700").as_str()),
        )
        .map_err(Error::MountNamespace)?;
        for sub in ["bundle", "state"] {
            let p = dir.path.join(sub);
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .map_err(err(&p))?;
        }
        Ok(dir)
    }

    fn bundle(&self) -> PathBuf {
        self.path.join("bundle")
    }

    fn state(&self) -> PathBuf {
        self.path.join("state")
    }

    fn logs(&self) -> PathBuf {
        self.path.join("logs")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Work directories of runs whose watertight is gone (killed before its clean-up): on the host
/// they are empty directories (their tmpfs lived in the dead run's mount namespace).
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("wt-gvisor-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// The cgroup around runsc and everything it starts. Dropped (also on an early error return):
/// every process in it killed, then removed.
struct OuterCgroup {
    cg: watertight_cgroups::Cgroup,
}

impl OuterCgroup {
    fn create(
        profile: &watertight_sandbox::Profile,
        sandbox_id: &str,
    ) -> Result<OuterCgroup, Error> {
        let mut limits = watertight_sandbox::layers::cgroup::limits(profile)?;
        // gVisor's /dev is the Sentry's own: the host devices runsc itself needs (its ptrace
        // stubs, /dev/null for its Gofer) are not the program's, so no device allowlist here.
        limits.devices = None;
        limits.pids_max = limits.pids_max.map(|n| n.saturating_add(TASK_OVERHEAD));
        let needs = watertight_cgroups::Needs {
            freeze: true,
            cpu_usage: true,
            bpf: false,
        };
        let plan = watertight_cgroups::Plan::new(watertight_cgroups::detect()?, limits, needs)?;
        let registry =
            watertight_cgroups::Registry::open(watertight_sandbox::layers::cgroup::REGISTRY_DIR)?;
        // A failure to clean someone else's leftovers must not stop this run.
        let _ = registry.cleanup_stale(plan.layout());
        plan.delegate_controllers()?;
        Ok(OuterCgroup {
            cg: registry.create_planned(&plan, sandbox_id)?,
        })
    }
}

impl Drop for OuterCgroup {
    fn drop(&mut self) {
        // The Cgroup handle removes its directories (and registry entry) when dropped right
        // after this; they must be empty by then.
        let _ = self.cg.kill_all();
    }
}

/// SIGINT, SIGTERM, SIGHUP, SIGQUIT blocked and read from a signalfd while runsc runs, so an
/// interrupt kills the sandbox and still cleans up. Dropped: the old mask back.
struct Interrupts {
    fd: SignalFd,
    old: SigSet,
}

impl Interrupts {
    fn block() -> Result<Interrupts, Error> {
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            set.add(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).map_err(
            |e| Error::Process {
                what: "block signals",
                source: e.into(),
            },
        )?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::Process {
                what: "signalfd",
                source: e.into(),
            })?;
        Ok(Interrupts { fd, old })
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Runs `job` under gVisor: [`Gvisor::new`] then [`Gvisor::run`].
pub fn run(job: &Job) -> Result<Verdict, Error> {
    Gvisor::new(job)?.run()
}
