//! The whole sandbox as one ordered story. Read this file first: each step is one call into the
//! module of its layer (`layers/`).
//!
//! ```text
//! Supervisor (host side, root)               Sandbox pid 1 (new user/pid/mount/net/uts/ipc ns)
//!  1. prepare everything before clone         a. default signal actions; wait for its id
//!     (integrity: verify the root dir)           maps (first go)
//!  2. user: take a slot = own host uid        b. user: become the sandbox uid/gid, no groups
//!  3. clone into the new namespaces           c. mount: private, new root, /proc, /dev, /tmp,
//!  4. user: write its uid/gid maps;          secrets, pivot_root, root read-only
//!     integrity: memfd_noexec=2 in its pid
//!     namespace; go
//!  5. cgroup: create it with limits, move     d. uts: hostname; net: loopback up
//!     the child in (unified; v1: send it      e. wait for its cgroup (second go); join the
//!     the tasks files); net: bridge port;        v1 hierarchies itself; cgroup: own cgroup
//!     integrity: exec gate (while it mounts)     namespace
//!  6. say go again                            f. capabilities dropped, securebits locked,
//!  7. supervise: time, output, signals,          no_new_privs (integrity: Landlock, MDWE);
//!     violations (deny/kill/forensic)            seccomp, last: all inherited by the program
//!  8. verdict from exit status + cgroup       g. start the program (posix_spawn-like, sharing
//!  9. clean up: port, cgroup, slot               memory until execve); stay its reaper (pid 1)
//!                                             Program (pid 2), last steps before execve:
//!                                             h. new session; stdio; inherited fds closed;
//!                                                rlimits (signal actions: default since a)
//!                                             i. execve
//! ```

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::resource::Resource;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use watertight_seccomp::CompiledFilter;
use watertight_sys::process::{clone_into_namespaces, exit_now, spawn_shared_vm, Forked};

use crate::error::{AtStage, Error, IoContext, SetupError, Stage};
use crate::events::EventLog;
use crate::forensic::ForensicConfig;
use crate::layers::mount::MountPlan;
use crate::layers::{
    bpf, env, fds, integrity, limits, mount, namespaces, privileges, rootless, seccomp, secrets,
    user, workbox,
};
use crate::output;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::report::{self, Go, Report};
use crate::supervise::{self, Outcome};
use crate::syscall::{Linux, Syscall};
use crate::terminal::{Pty, Slave};
use crate::verdict::{self, Verdict};

/// One program to run and how.
#[derive(Debug, Clone)]
pub struct Job {
    /// The effective profile: the profile file (or the built-in one) with the flags applied.
    pub profile: Profile,
    /// The program and its arguments: bytes, as execve takes them (need not be UTF-8).
    pub argv: Vec<OsString>,
    /// `--workdir`: the program's working directory inside the sandbox (default: the box with
    /// `box_dir`, else the caller's directory when `root.bind_cwd` binds it, else /tmp).
    pub workdir: Option<PathBuf>,
    /// `--box DIR`: the program's own writable host directory at /box (`layers/workbox.rs`).
    pub box_dir: Option<PathBuf>,
    /// `--stdin`, `--stdout`, `--stderr`: files the supervisor opens for the program's streams.
    pub stdio: crate::stdio::StdioPaths,
    /// `--env NAME=VALUE`: variables set over the profile's `[env]` (they win on a clash).
    pub env: Vec<(OsString, OsString)>,
    /// `--secret NAME=FILE`, already read: each appears read-only at /run/secrets/NAME.
    pub secrets: Vec<secrets::Secret>,
    /// `--events FILE`: the audit trail as JSON Lines.
    pub events: Option<PathBuf>,
    /// Where evidence goes under `on_violation = "forensic"`.
    pub forensics: ForensicConfig,
    /// `--net bridge:BR`: a guarded port on a bridge instead of loopback only.
    pub bridge_port: Option<watertight_net::SandboxPortRequest>,
    /// `--manifest`/`--pubkey`: exec-time integrity of the root directory.
    pub integrity: Option<integrity::IntegrityRequest>,
}

/// How long a sandbox runs before its plan is published for `watertight audit host`: an
/// auditor rarely catches a shorter run, and publishing costs each start about 0.3 ms
/// (measured: its work delayed the sandbox, queued on the supervisor's core).
pub const PUBLISH_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

/// Pipe ends the sandbox side holds.
struct SandboxEnds {
    go: OwnedFd,
    report: OwnedFd,
    /// Carries the seccomp listener to the supervisor.
    notify: OwnedFd,
    /// `--stdin FILE`, opened by the supervisor.
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// The program's pty slave, when the caller has a terminal.
    terminal: Option<Slave>,
}

/// Runs `job` to completion and returns its verdict. Errors are watertight's own failures
/// before the program could run (bad input, missing privileges); everything after that is
/// reported in the verdict.
pub fn run(job: &Job) -> Result<Verdict, Error> {
    // 1. Everything that can fail on bad input fails here, before anything is created.
    let mut plan = Plan::new(job)?;
    if plan.profile.isolation != crate::profile::Isolation::Namespaces {
        // The CLI dispatches other tiers to their own crates; reaching here with one would run
        // the program under a weaker boundary than the profile asks for.
        return Err(Error::Config(format!(
            "isolation {:?} is not the namespace tier: run it through `watertight run --isolation {}`",
            plan.profile.isolation.as_str(),
            plan.profile.isolation
        )));
    }
    preflight(plan.rootless.is_some())?;
    // The caller's files and box, opened and checked as the caller before anything else
    // exists (output files are truncated only once every file opened).
    let mut stdio = job.stdio.open()?;
    let work_box = job.box_dir.as_deref().map(workbox::prepare).transpose()?;

    // 2. user: a host uid of this sandbox's own (the box's idmap maps the caller to it).
    //    Rootless: none (only root may map another uid); the sandbox is the caller on the host.
    let slot = match &plan.rootless {
        None => Some(user::acquire_slot(&plan.profile.identity)?),
        Some(_) => None,
    };
    plan.open_host_trees(work_box.as_ref().zip(slot.as_ref().map(|s| s.host_id)))?;
    let profile = &plan.profile;
    let sandbox_id = sandbox_id(
        match (&slot, &plan.rootless) {
            (Some(s), _) => s.index.to_string(),
            (None, r) => format!("u{}", r.as_ref().map_or(0, |r| r.caller.uid)),
        },
        std::process::id(),
    );
    let mut events = EventLog::new(
        &sandbox_id,
        job.events.as_deref(),
        profile.events.limit.bytes(),
    )?;

    let (go_rd, go_wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let (report_rd, report_wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let (notify_sup, notify_sbx) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "socketpair".into())?;
    // A pty of the supervisor's in place of the caller's terminal (terminal.rs); every other
    // output stream through a pipe the supervisor passes on and counts (output.rs).
    let pty = Pty::for_caller(stdio.redirected())?;
    let tty = pty.as_ref().map(Pty::streams).unwrap_or_default();
    let destinations = crate::stdio::destinations(&mut stdio);
    let output = output::Pipes::open(tty, &destinations)?;
    let blocked = supervise::block_signals()?;
    let started = Instant::now();

    // 3. Clone into the new namespaces, the user namespace owned by the slot's own uid: its
    //    per-user counts are then the sandbox's, not root's. pid 1 runs as that uid from the
    //    start; whatever it mounts from the host that the uid may not reach, the supervisor has
    //    already opened (`sockets::attach_host_binds`), or does for it (memfd_noexec).
    //    Rootless: the caller owns it, as it owns everything it makes.
    //    A network namespace made ahead (a batch step worker's; `namespaces::JoinedNet`): the
    //    supervisor joins it for the clone, and the child starts in it instead of a new one.
    let mut clone_flags = plan.clone_flags;
    let joined_net = (clone_flags.contains(nix::sched::CloneFlags::CLONE_NEWNET)
        && job.bridge_port.is_none()
        && plan.rootless.is_none())
    .then(namespaces::JoinedNet::enter_prepared)
    .flatten();
    if joined_net.is_some() {
        clone_flags.remove(nix::sched::CloneFlags::CLONE_NEWNET);
    }
    let lo_ready = joined_net.is_some();
    let owner = match slot
        .as_ref()
        .map(|s| user::NamespaceOwner::become_owner(s.host_id))
        .transpose()
    {
        Ok(o) => o,
        Err(e) => {
            if let Some(joined) = joined_net {
                joined.leave();
            }
            supervise::restore_signals(&blocked);
            return Err(e);
        }
    };
    let forked = clone_into_namespaces(clone_flags.bits());
    match &forked {
        Ok(Forked::Child) => {
            owner.into_iter().for_each(user::NamespaceOwner::forget);
            drop(joined_net); // pid 1 keeps no descriptor of the supervisor's namespace
        }
        _ => {
            drop(owner); // the supervisor: root again
            if let Some(joined) = joined_net {
                joined.leave();
            }
        }
    }
    let (pid, pidfd) = match forked {
        Ok(Forked::Child) => {
            drop((go_wr, report_rd, notify_sup));
            // Each side keeps only its own ends: a write end left open in the supervisor would
            // keep it from ever seeing EOF on the program's output.
            let [stdout, stderr] = output.program_ends();
            sandbox_init(
                &plan,
                lo_ready,
                SandboxEnds {
                    go: go_rd,
                    report: report_wr,
                    notify: notify_sbx,
                    stdin: stdio.stdin.take(),
                    stdout,
                    stderr,
                    terminal: pty.map(Pty::into_slave),
                },
            )
        }
        Ok(Forked::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => {
            supervise::restore_signals(&blocked);
            return Err(clone_error(e));
        }
    };
    drop((go_rd, report_wr, notify_sbx));
    drop(stdio); // the program's stdin is the sandbox's now
    let output = (output.supervisor_ends(), destinations);
    // From here the child exists: any failure kills it before returning.
    let child = supervise::ChildGuard::new(pid);

    // 4. user: its uid/gid maps; then the sandbox builds its mounts (first go) while the
    //    supervisor makes its cgroup, moves it in (the limits hold before the program exists)
    //    and attaches the bridge port and the exec gate, then lets it start the program.
    let setup = (|| -> Result<_, Error> {
        match (&plan.rootless, &slot) {
            (Some(r), _) => rootless::write_id_maps(pid, &profile.identity, r.caller)?,
            (None, Some(s)) => user::write_id_maps(pid, &profile.identity, s.host_id)?,
            (None, None) => unreachable!("root always holds a slot"),
        }
        if plan.integrity.as_ref().is_some_and(|v| v.memfd_noexec) {
            integrity::refuse_memfd_exec(pid)?; // before pid 1 does anything
        }
        Go::MapsWritten
            .send(&go_wr)
            .map_err(|e| Error::io("release the sandbox", e))?;
        // --bpf-observe: pid 1's bpffs context, delegated for observe-only programs (only
        // the initial namespace's root may set the options) and handed back with the cgroup.
        let bpffs = if profile.bpf.observe {
            Some(bpf::delegate(bpf::receive_context(notify_sup.as_fd())?)?)
        } else {
            None
        };
        // While pid 1 mounts: the plan's digest, then the cgroup (layout, stale cleanup,
        // mkdirs, limits), off the start-up's serial path.
        let _ = plan.digest();
        let cgroup = plan.cgroup.create(&sandbox_id)?;
        // The unified hierarchy now; the v1 hierarchies pid 1 joins by itself (cheaper: no
        // global lock, see `Cgroup::admit`) with these files, before it runs anything else.
        let v1_tasks = cgroup.admit(pid)?;
        let port = namespaces::attach_bridge_port(job.bridge_port.as_ref(), pid)?;
        let gate = match &plan.integrity {
            Some(v) => integrity::attach_gate(&cgroup, v)?,
            None => None,
        };
        let v1_tasks: Vec<BorrowedFd<'_>> = v1_tasks.iter().map(|f| f.as_fd()).collect();
        watertight_sys::fdpass::send_fds(notify_sup.as_fd(), &v1_tasks)
            .map_err(|e| Error::io("hand the sandbox its cgroup files", e))?;
        if let Some(mount) = &bpffs {
            watertight_sys::fdpass::send_fd(notify_sup.as_fd(), mount.as_fd())
                .map_err(|e| Error::io("hand the sandbox its delegated bpffs", e))?;
        }
        Go::CgroupReady
            .send(&go_wr)
            .map_err(|e| Error::io("release the sandbox", e))?;
        Ok((cgroup, port, gate))
    })();
    let (cgroup, port, mut gate) = match setup {
        Ok(v) => v,
        Err(e) => {
            drop(child);
            supervise::restore_signals(&blocked);
            return Err(e);
        }
    };
    events.set_plan_digest(plan.digest().as_str());
    // For `watertight audit host`: what the sandbox is meant to be, published once it has run
    // PUBLISH_AFTER and until it is cleaned up (a failure to publish is a warning: the sandbox
    // holds without it).
    let mut published: Option<crate::plan::Published> = None;
    let mut publish = || {
        if plan.rootless.is_some() {
            return; // /run/watertight is root's, and so is `audit host`
        }
        published = plan
            .publish(&sandbox_id)
            .map_err(|e| eprintln!("watertight: warning: {e}"))
            .ok();
    };
    // go_wr stays open until the supervisor ends: its hang-up tells the sandbox the supervisor died.
    // The caller's terminal is in raw mode from here until `relay` is dropped.
    let mut relay = match pty
        .map(|p| p.into_relay(profile.terminal.escapes))
        .transpose()
    {
        Ok(r) => r,
        Err(e) => {
            drop(child);
            supervise::restore_signals(&blocked);
            return Err(e);
        }
    };

    // 7. Supervise until the sandbox's pid 1 is gone.
    let outcome: Outcome = supervise::Supervisor::new(
        supervise::Target {
            pid,
            pidfd: pidfd.as_ref().map(|f| f.as_fd()),
            cgroup: &cgroup,
            sandbox_id: &sandbox_id,
            started,
        },
        supervise::Channels {
            report: report_rd,
            notify: notify_sup,
            output,
        },
        supervise::Policy::of(profile, &job.forensics),
        &blocked,
        &mut events,
    )
    .with_terminal(relay.as_mut())
    .with_gate(gate.as_mut())
    .later(started + PUBLISH_AFTER, &mut publish)
    .run();
    drop((gate, relay));
    child.disarm();
    drop(go_wr);
    supervise::restore_signals(&blocked);

    // 8. The verdict, from what the supervisor measured, the cgroup's accounting and the
    //    events (a pure function: verdict.rs).
    supervise::record_limit_events(&outcome, &profile.limits, &mut events);
    events.finish();
    let settings = verdict::Settings {
        limits: verdict::AppliedLimits::of(&profile.limits),
        max_violations: profile.seccomp.max_violations,
        integrity: plan.integrity.is_some(),
        sandbox_id: sandbox_id.clone(),
        command: job.argv[0].clone(),
        cpu_time_by_rlimit: plan
            .rootless
            .as_ref()
            .is_some_and(|r| r.enforcement.delegation.is_none()),
    };
    let mut verdict = verdict::decide(&outcome, &settings, events.summary());
    verdict.plan_digest = plan.digest().to_string();
    if let Some(r) = &plan.rootless {
        verdict.rootless = true;
        verdict.cgroup = cgroup
            .unified_dir()
            .map(|d| d.to_string_lossy().into_owned());
        verdict.unenforced = r.enforcement.unenforced.clone();
    }

    // 9. Clean up: the box back to the caller (pid 1 is gone, and every process of its pid
    //    namespace with it: no setuid/setgid file of the caller's left by the program); the
    //    bridge port, the cgroup; the slot is freed on drop.
    let handed_back = work_box.as_ref().map(workbox::hand_back).transpose();
    if let Some(p) = port {
        p.remove()
            .map_err(|e| Error::Config(format!("remove the sandbox's bridge port: {e}")))?;
    }
    cgroup.destroy()?;
    drop((published, slot));
    handed_back?;
    Ok(verdict)
}

/// Sandboxes this process has started: a process that runs several (`batch`'s step workers)
/// gives each its own id.
static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `wt-<slot>-<pid>` for a process's first sandbox, `wt-<slot>.<n>-<pid>` for its n-th after
/// that: unique on the host while the process lives, and still ending in the supervisor's pid,
/// which the stale-entry cleanup reads (`plan/running.rs`).
fn sandbox_id(slot: String, pid: u32) -> String {
    match STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => format!("wt-{slot}-{pid}"),
        n => format!("wt-{slot}.{n}-{pid}"),
    }
}

/// Root: the stage pid 1 mounts on, reachable by the slot's uid. Rootless: nothing (its stage
/// is under a tmpfs of its own mount namespace).
fn preflight(rootless: bool) -> Result<(), Error> {
    if rootless {
        return Ok(());
    }
    std::fs::create_dir_all(mount::STAGE).ctx(|| format!("create {}", mount::STAGE))?;
    // pid 1 mounts on the stage as the slot's uid, which must be able to reach it whatever
    // umask made these directories (an init system's 077 made them root's only).
    use std::os::unix::fs::PermissionsExt;
    for dir in [mount::STAGE, "/run/watertight"] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .ctx(|| format!("make {dir} reachable (mode 0755)"))?;
    }
    Ok(())
}

/// Why clone into the namespaces failed, in the words of the fix when the host disabled user
/// namespaces (checked only then: it costs a file read on every start otherwise).
fn clone_error(e: std::io::Error) -> Error {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let rootless = !nix::unistd::geteuid().is_root();
    if rootless && read("/proc/sys/kernel/unprivileged_userns_clone").trim() == "0" {
        return Error::Config(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); enable them with sysctl -w kernel.unprivileged_userns_clone=1 or run watertight as root".into(),
        );
    }
    if rootless && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").trim() == "1" {
        return Error::Config(
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1); allow them for watertight with an AppArmor profile (userns,) or run it as root".into(),
        );
    }
    match std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
        Ok(s) if s.trim() == "0" => Error::Config(
            "user namespaces are disabled (user.max_user_namespaces = 0); enable them with sysctl -w user.max_user_namespaces=15000".into(),
        ),
        _ => Error::io("clone into new namespaces", e),
    }
}

/// The sandbox's pid 1. Never returns: exits with 0 after reporting the program's status, or
/// with 1 after reporting a setup error.
fn sandbox_init(p: &Plan, lo_ready: bool, mut ends: SandboxEnds) -> ! {
    let sys = Linux;
    let result = (|| -> Result<(), SetupError> {
        // Its /proc/self is its own only while dumpable (the supervisor's change of effective
        // uid made the memory it copied non-dumpable); made non-dumpable again before the
        // program exists (f).
        let _ = sys.set_dumpable(true);
        let _ = sys.set_parent_death_signal(Signal::SIGKILL);
        if let Some(t) = &ends.terminal {
            t.attach_stdio().at(Stage::Terminal)?; // the caller's terminal does not enter the sandbox
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .ctx(|| "reset signal mask".into())
            .at(Stage::Signals)?;
        // Default actions for pid 1 and so for the program it starts (h): done here, before the
        // seccomp filter, which would otherwise run on each of these 64 calls in the program.
        watertight_sys::process::reset_signal_dispositions();
        // a. The supervisor has written our id maps.
        let supervisor = GoPipe {
            go: &ends.go,
            notify: ends.notify.as_fd(),
        };
        supervisor.wait_for_go(Go::MapsWritten);
        // b-f. Every layer, in order.
        let layers = Confinement {
            profile: &p.profile,
            mounts: &p.mounts,
            bind_trees: &p.bind_trees,
            integrity: p.integrity.as_ref(),
            filter: &p.filter,
            bpf_observe: p.profile.bpf.observe,
            rootless: p.rootless.is_some(),
            lo_ready,
        };
        confine(&layers, ends.notify.as_fd(), &supervisor, &sys)?;
        // g. The program runs as pid 2 so that pid 1 (which the kernel shields from signals it
        // has no handler for) is us, reaping orphans and reporting the program's true status.
        // It starts the way posix_spawn starts one (sharing our memory until its execve):
        // copying this process's page tables would be most of the start-up cost.
        let program = spawn_shared_vm(&mut || exec_program(p, &ends, &sys))
            .ctx(|| "start the program".into())
            .at(Stage::Spawn)?;
        // Only the program writes its output pipes: their EOF tells the supervisor it is done.
        ends.stdin = None;
        ends.stdout = None;
        ends.stderr = None;
        let status = reap_until(program);
        report::send(&ends.report, &Report::Exited { status });
        Ok(())
    })();
    match result {
        Ok(()) => exit_now(0),
        Err(e) => {
            report::send(&ends.report, &Report::SetupFailed(e));
            exit_now(1)
        }
    }
}

/// What pid 1's layers (b-f, [`confine`]) read, borrowed from the plan.
struct Confinement<'a> {
    profile: &'a Profile,
    mounts: &'a MountPlan,
    /// Detached mount trees the mount plan attaches.
    bind_trees: &'a [OwnedFd],
    integrity: Option<&'a integrity::Verified>,
    filter: &'a CompiledFilter,
    /// `--bpf-observe`: a delegated bpffs and CAP_BPF/CAP_PERFMON in the user namespace.
    bpf_observe: bool,
    /// Without root: setgroups is denied in the sandbox's namespace (`layers/rootless.rs`).
    rootless: bool,
    /// In a network namespace made ahead, `lo` already up (`namespaces::JoinedNet`).
    lo_ready: bool,
}

/// How pid 1 waits for the supervisor between its steps (the go pipe; a recorder in tests).
trait Supervisor {
    /// Blocks until the supervisor releases the sandbox at `step`; exits (fail closed) when it
    /// died instead or sent anything else.
    fn wait_for_go(&self, step: Go);
    /// The cgroup v1 `tasks` files the supervisor sent with [`Go::CgroupReady`]; exits (fail
    /// closed) when none came.
    fn cgroup_files(&self) -> Vec<OwnedFd>;
    /// `--bpf-observe`: the delegated bpffs mount the supervisor sent after the cgroup files;
    /// exits (fail closed) when none came.
    fn bpffs_mount(&self) -> OwnedFd;
    /// Exits when the supervisor died.
    fn exit_if_gone(&self);
}

/// The sandbox's read end of the go pipe, and its end of the notify socket (the cgroup files
/// come on it). The supervisor holds the write end open while it lives, so a hang-up means it
/// died.
struct GoPipe<'a> {
    go: &'a OwnedFd,
    notify: BorrowedFd<'a>,
}

impl Supervisor for GoPipe<'_> {
    fn wait_for_go(&self, step: Go) {
        if step.receive(self.go).is_err() {
            exit_now(1);
        }
    }

    fn cgroup_files(&self) -> Vec<OwnedFd> {
        match watertight_sys::fdpass::recv_fds(self.notify) {
            Ok(Some(files)) => files,
            _ => exit_now(1),
        }
    }

    fn bpffs_mount(&self) -> OwnedFd {
        match watertight_sys::fdpass::recv_fd(self.notify) {
            Ok(Some(mount)) => mount,
            _ => exit_now(1),
        }
    }

    fn exit_if_gone(&self) {
        if report::supervisor_gone(self.go) {
            exit_now(1);
        }
    }
}

/// b-f: pid 1's layers after the first go, in the order that makes them hold; every
/// security-critical call goes through `sys`, so the order is pinned by a test against the
/// recorder (`tests` below). On success everything the program will inherit is in place, the
/// seccomp filter last.
fn confine(
    c: &Confinement<'_>,
    to_supervisor: BorrowedFd<'_>,
    supervisor: &impl Supervisor,
    sys: &impl Syscall,
) -> Result<(), SetupError> {
    // System paths (the rest are trees the supervisor made), opened before the uid change.
    let (mount_ops, _pinned_sources) =
        mount::pin_bind_sources(&c.mounts.ops, &c.mounts.stage).at(Stage::Mount)?;
    // b. audit login uid, fixed; before the uid change, which makes /proc/self root's.
    user::pin_login_uid(&c.profile.identity, sys).at(Stage::User)?;
    user::become_sandbox_user(&c.profile.identity, !c.rootless, sys).at(Stage::User)?; // b. user

    // The kernel clears the parent-death signal on a uid change: set it again, then make sure
    // the supervisor did not die in between (it holds the go pipe open while it lives).
    let _ = sys.set_parent_death_signal(Signal::SIGKILL);
    supervisor.exit_if_gone();
    if c.bpf_observe {
        // A bpffs context of our user namespace, for the supervisor to delegate (while we mount).
        bpf::hand_over_context(to_supervisor, sys).at(Stage::Bpf)?;
    }
    mount::apply(&mount_ops, c.bind_trees, sys).at(Stage::Mount)?; // c. mount, proc, dev, tmp, secrets
    namespaces::set_hostname(&c.profile.namespaces, &c.profile.hostname, sys).at(Stage::Uts)?; // d. uts
    namespaces::loopback_up(&c.profile.namespaces, c.lo_ready, sys).at(Stage::Net)?; // d. net
    sys.chdir(&c.mounts.workdir)
        .ctx(|| format!("chdir {}", c.mounts.workdir.display()))
        .at(Stage::Workdir)?;
    // e. Our cgroup is ready and holds us in the unified hierarchy; we join its v1 hierarchies
    // ourselves, then it becomes our cgroup namespace's root.
    supervisor.wait_for_go(Go::CgroupReady);
    let v1_tasks = supervisor.cgroup_files();
    sys.join_cgroups(&v1_tasks)
        .ctx(|| "join the cgroup's v1 hierarchies".into())
        .at(Stage::Cgroup)?;
    drop(v1_tasks); // nothing the program could inherit
    namespaces::enter_cgroup_namespace(&c.profile.namespaces, sys).at(Stage::Cgroup)?;
    // --bpf-observe: the delegated bpffs, attached on the read-only root's mount point.
    let kept_capabilities = if c.bpf_observe {
        let bpffs = supervisor.bpffs_mount();
        bpf::attach(bpffs.as_fd(), sys).at(Stage::Bpf)?;
        bpf::KEPT_CAPABILITIES
    } else {
        0
    };
    // f. The last layers, for pid 1 and the program alike (the program inherits them):
    // capabilities (--bpf-observe: all but CAP_BPF and CAP_PERFMON of the sandbox's user
    // namespace), securebits, no_new_privs; integrity: Landlock, MDWE; seccomp, last.
    privileges::drop_all_but(kept_capabilities, sys).at(Stage::Privileges)?;
    if let Some(v) = c.integrity {
        // exec only what was verified
        integrity::restrict_exec(&v.exec_roots, &v.write_roots, v.landlock, sys)
            .at(Stage::Integrity)?;
    }
    seccomp::install(c.filter, to_supervisor, sys).at(Stage::Seccomp)?;
    // Before the program exists, so it never finds pid 1's memory open to it (/proc/1/mem)
    // and cannot forge the status pid 1 reports. Per memory map: the program's execve
    // gets a map of its own, dumpable as usual.
    let _ = sys.set_dumpable(false);
    Ok(())
}

/// Reaps every child (orphans are reparented to pid 1) until `program` exits; returns its raw
/// wait status.
fn reap_until(program: i32) -> i32 {
    loop {
        match watertight_sys::process::wait4(-1, false) {
            Ok(Some(r)) if r.pid == program => return r.status,
            Ok(_) => continue,
            Err(_) => return 0x7f00, // no children left: cannot happen while program lives
        }
    }
}

/// The program's last steps (h-i) before execve; it exits if execve fails. It shares pid 1's
/// memory until then (CLONE_VM|CLONE_VFORK): `sys` is a generic, so these calls are direct.
fn exec_program(p: &Plan, ends: &SandboxEnds, sys: &impl Syscall) {
    if let Err(e) = before_exec(&p.rlimits, ends, sys) {
        report::send(&ends.report, &Report::SetupFailed(e));
        exit_now(126);
    }
    // i. execve, searching PATH like execvp when the command has no slash.
    let errno = exec_search(&p.argv, &p.envp);
    report::send(
        &ends.report,
        &Report::ExecFailed {
            errno: errno as i32,
        },
    );
    exit_now(if errno == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    })
}

/// h. A session of its own, its terminal and output streams, nothing else inherited, rlimits.
fn before_exec(
    rlimits: &[(Resource, u64, u64)],
    ends: &SandboxEnds,
    sys: &impl Syscall,
) -> Result<(), SetupError> {
    sys.setsid().ctx(|| "setsid".into()).at(Stage::Session)?; // h. a session of its own
    if let Some(t) = &ends.terminal {
        t.make_controlling().at(Stage::Session)?; // h. the pty, never the caller's terminal
    }
    if let Some(input) = &ends.stdin {
        nix::unistd::dup2_stdin(input.as_fd())
            .ctx(|| "redirect stdin".into())
            .at(Stage::Stdio)?;
    }
    if let Some(out) = &ends.stdout {
        nix::unistd::dup2_stdout(out.as_fd())
            .ctx(|| "redirect stdout".into())
            .at(Stage::Stdio)?;
    }
    if let Some(err) = &ends.stderr {
        nix::unistd::dup2_stderr(err.as_fd())
            .ctx(|| "redirect stderr".into())
            .at(Stage::Stdio)?;
    }
    fds::close_inherited(sys).at(Stage::Fds)?; // h. nothing but stdio survives execve
    limits::apply(rlimits, sys).at(Stage::Rlimits)?; // h. rlimits
    Ok(())
}

fn exec_search(argv: &[CString], envp: &[CString]) -> nix::errno::Errno {
    let cmd = argv[0].as_bytes();
    if cmd.contains(&b'/') {
        return nix::unistd::execve(&argv[0], argv, envp).unwrap_err();
    }
    let mut last = nix::errno::Errno::ENOENT;
    for dir in env::path_of(envp)
        .split(|&b| b == b':')
        .filter(|d| !d.is_empty())
    {
        let mut full = dir.to_vec();
        full.push(b'/');
        full.extend_from_slice(cmd);
        let Ok(path) = CString::new(full) else {
            continue;
        };
        let e = nix::unistd::execve(&path, argv, envp).unwrap_err();
        // Like execvp: remember a more telling error than "not here".
        if e != nix::errno::Errno::ENOENT && e != nix::errno::Errno::ENOTDIR {
            last = e;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::mount::MountRequest;
    use crate::profile::default_profile;
    use crate::syscall::recorder::Recorder;
    use watertight_seccomp::{CompileOptions, ViolationAction};

    /// The supervisor's go and its liveness check, logged among the calls they order.
    struct RecordedSupervisor<'a>(&'a Recorder);

    impl Supervisor for RecordedSupervisor<'_> {
        fn wait_for_go(&self, step: Go) {
            let _ = self.0.log(format!("go {step:?}"));
        }
        fn cgroup_files(&self) -> Vec<OwnedFd> {
            let _ = self.0.log("cgroup files".into());
            vec![dev_null(), dev_null()]
        }
        fn bpffs_mount(&self) -> OwnedFd {
            let _ = self.0.log("bpffs mount".into());
            dev_null()
        }
        fn exit_if_gone(&self) {
            let _ = self.0.log("supervisor alive?".into());
        }
    }

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    /// The filter `watertight run` installs by default (violations go to the supervisor).
    fn default_filter() -> CompiledFilter {
        watertight_seccomp::default_profile()
            .compile(&CompileOptions {
                violation_action: ViolationAction::UserNotify,
                ..Default::default()
            })
            .unwrap()
    }

    fn verified() -> integrity::Verified {
        integrity::Verified {
            tree: watertight_integrity::VerifiedTree {
                root: "/".into(),
                files: Vec::new(),
                unlisted: Vec::new(),
            },
            exec_roots: vec!["/usr".into()],
            write_roots: vec!["/tmp".into()],
            landlock: true,
            memfd_noexec: true,
            gate: false,
        }
    }

    /// Runs pid 1's layers against `rec` with the default profile's host-directory plan.
    fn confine_recorded(
        rec: &Recorder,
        verified: Option<&integrity::Verified>,
    ) -> Result<(), SetupError> {
        confine_recorded_with(rec, verified, false)
    }

    /// Pid 1's layers of a rootless sandbox (its own mount plan), against `rec`.
    fn confine_recorded_rootless(rec: &Recorder) -> Result<(), SetupError> {
        let profile = default_profile();
        let req = MountRequest {
            rootless: true,
            ..Default::default()
        };
        let mounts = mount::plan(&profile, &req).unwrap();
        let filter = default_filter();
        let layers = Confinement {
            profile: &profile,
            mounts: &mounts,
            bind_trees: &[],
            integrity: None,
            filter: &filter,
            bpf_observe: false,
            rootless: true,
            lo_ready: false,
        };
        let notify = dev_null();
        confine(&layers, notify.as_fd(), &RecordedSupervisor(rec), rec)
    }

    /// [`confine_recorded`], with or without `--bpf-observe`.
    fn confine_recorded_with(
        rec: &Recorder,
        verified: Option<&integrity::Verified>,
        bpf_observe: bool,
    ) -> Result<(), SetupError> {
        confine_recorded_net(rec, verified, bpf_observe, false)
    }

    /// [`confine_recorded_with`], in a network namespace made ahead (`lo_ready`) or not.
    fn confine_recorded_net(
        rec: &Recorder,
        verified: Option<&integrity::Verified>,
        bpf_observe: bool,
        lo_ready: bool,
    ) -> Result<(), SetupError> {
        let mut profile = default_profile();
        profile.bpf.observe = bpf_observe;
        let mounts = mount::plan(&profile, &MountRequest::default()).unwrap();
        let filter = default_filter();
        let layers = Confinement {
            profile: &profile,
            mounts: &mounts,
            bind_trees: &[],
            integrity: verified,
            filter: &filter,
            bpf_observe,
            rootless: false,
            lo_ready,
        };
        let notify = dev_null();
        confine(&layers, notify.as_fd(), &RecordedSupervisor(rec), rec)
    }

    /// Asserts that `calls` from `from` on are exactly calls starting with `prefixes`, in order.
    fn assert_calls_from(rec: &Recorder, from: usize, prefixes: &[&str]) {
        let calls = rec.calls.borrow();
        let got = &calls[from..];
        assert!(
            got.len() == prefixes.len() && got.iter().zip(prefixes).all(|(c, p)| c.starts_with(p)),
            "expected {prefixes:#?}\ngot {got:#?}"
        );
    }

    #[test]
    fn lo_is_brought_up_by_pid1_unless_its_namespace_was_made_ahead() {
        let own = Recorder::default();
        confine_recorded_net(&own, None, false, false).unwrap();
        assert!(own.calls.borrow().iter().any(|c| c == "up lo"));
        let ahead = Recorder::default();
        confine_recorded_net(&ahead, None, false, true).unwrap();
        assert!(!ahead.calls.borrow().iter().any(|c| c.starts_with("up ")));
    }

    #[test]
    fn pid1_layers_run_in_the_order_that_makes_them_hold() {
        let rec = Recorder::default();
        confine_recorded(&rec, None).unwrap();
        // The identity before anything else, groups before gid before uid; the supervisor
        // checked alive once the uid change reset the parent-death signal.
        let mounts_start = rec.position("supervisor alive?") + 1;
        {
            let calls = rec.calls.borrow();
            let head: Vec<&str> = calls[..mounts_start].iter().map(String::as_str).collect();
            assert_eq!(
                head,
                [
                    "loginuid 0",
                    "setgroups []",
                    "setresgid 0",
                    "setresuid 0",
                    "pdeathsig SIGKILL",
                    "supervisor alive?"
                ]
            );
            // Everything private before anything is mounted; every mount made before
            // pivot_root; after it, only the root itself made read-only.
            assert_eq!(
                calls[mounts_start],
                "mount None / None MsFlags(MS_REC | MS_PRIVATE) None"
            );
            let pivot = rec.position("pivot_root");
            assert!(pivot > mounts_start);
            let root_attrs = calls[pivot + 1]
                .strip_prefix("setattr / recursive=false attrs=0x")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .unwrap_or_else(|| panic!("not the root made read-only: {}", calls[pivot + 1]));
            assert_ne!(root_attrs & watertight_sys::mount::ATTR_RDONLY, 0);
            assert_eq!(calls[pivot + 2], "sethostname watertight");
        }
        // From the second go on, exactly: cgroup namespace, capabilities, securebits,
        // no_new_privs, seccomp last (its listener handed over), pid 1 no longer dumpable.
        let second_go = rec.position("go CgroupReady");
        assert_calls_from(
            &rec,
            second_go - 2,
            &[
                "up lo",
                "chdir ",
                "go CgroupReady",
                "cgroup files",
                "join cgroups (2 v1)",
                "unshare CloneFlags(CLONE_NEWCGROUP)",
                "clear capabilities AmbientAndBounding",
                "securebits 0x",
                "clear capabilities EffectivePermittedInheritable",
                "no_new_privs",
                "seccomp ",
                "send_fd",
                "dumpable false",
            ],
        );
        let calls = rec.calls.borrow();
        assert!(
            !calls
                .iter()
                .any(|c| c.starts_with("landlock") || c.starts_with("mdwe")),
            "integrity layers in a run without --manifest: {calls:#?}"
        );
    }

    #[test]
    fn rootless_pid1_keeps_its_groups_builds_on_its_own_tmp_and_ends_like_root() {
        let rec = Recorder::default();
        confine_recorded_rootless(&rec).unwrap();
        let calls = rec.calls.borrow();
        // No setgroups (denied in its namespace); the ids the caller's map gives it.
        assert_eq!(
            calls[..4],
            [
                "loginuid 0",
                "setresgid 0",
                "setresuid 0",
                "pdeathsig SIGKILL"
            ]
        );
        // Everything private, then a tmpfs over /tmp of its own mount namespace, the stage on it.
        let first_mount = rec.position("mount None / None");
        assert!(
            calls[first_mount + 1].starts_with("mount Some(\"tmpfs\") /tmp Some(\"tmpfs\")"),
            "{calls:#?}"
        );
        assert!(calls[first_mount + 2].starts_with("mkdir /tmp/.watertight-stage"));
        assert!(
            calls
                .iter()
                .any(|c| c == "pivot_root /tmp/.watertight-stage"),
            "{calls:#?}"
        );
        assert!(
            !calls.iter().any(|c| c.contains("/run/watertight")),
            "{calls:#?}"
        );
        drop(calls);
        // The same last layers as root, seccomp last.
        let second_go = rec.position("go CgroupReady");
        assert_calls_from(
            &rec,
            second_go,
            &[
                "go CgroupReady",
                "cgroup files",
                "join cgroups (2 v1)",
                "unshare CloneFlags(CLONE_NEWCGROUP)",
                "clear capabilities AmbientAndBounding",
                "securebits 0x",
                "clear capabilities EffectivePermittedInheritable",
                "no_new_privs",
                "seccomp ",
                "send_fd",
                "dumpable false",
            ],
        );
    }

    #[test]
    fn bpf_observe_hands_over_the_context_before_mounting_and_attaches_before_privileges() {
        let rec = Recorder::default();
        confine_recorded_with(&rec, None, true).unwrap();
        // The context goes to the supervisor as the sandbox user, before the first mount (the
        // supervisor delegates it while pid 1 mounts).
        let alive = rec.position("supervisor alive?");
        {
            let calls = rec.calls.borrow();
            assert_eq!(calls[alive + 1..alive + 3], ["fsopen bpf", "send_fd"]);
            assert!(calls[alive + 3].starts_with("mount "), "{calls:#?}");
        }
        // Its mount point is made on the new root before pivot_root.
        let mkdir = rec.position("mkdir /run/watertight/stage/sys/fs/bpf");
        assert!(mkdir < rec.position("pivot_root"));
        // After the cgroup namespace: the delegated mount attached on the read-only root, then
        // every capability but CAP_BPF and CAP_PERFMON dropped (raised into the ambient set
        // before securebits lock it), seccomp last.
        let keep = format!("{:#x}", bpf::KEPT_CAPABILITIES);
        let unshare = rec.position("unshare CloneFlags(CLONE_NEWCGROUP)");
        assert_calls_from(
            &rec,
            unshare,
            &[
                "unshare CloneFlags(CLONE_NEWCGROUP)",
                "bpffs mount",
                "attach_tree /sys/fs/bpf",
                &format!("clear capabilities AmbientAndBounding keep={keep}"),
                &format!("ambient {keep}"),
                "securebits 0x",
                &format!("clear capabilities EffectivePermittedInheritable keep={keep}"),
                "no_new_privs",
                "seccomp ",
                "send_fd",
                "dumpable false",
            ],
        );
    }

    #[test]
    fn without_bpf_observe_no_bpffs_and_no_capability_is_kept() {
        let rec = Recorder::default();
        confine_recorded(&rec, None).unwrap();
        let calls = rec.calls.borrow();
        assert!(
            !calls.iter().any(|c| c.starts_with("fsopen")
                || c.contains("bpf")
                || c.contains("keep=")
                || c.starts_with("ambient")),
            "{calls:#?}"
        );
    }

    #[test]
    fn integrity_adds_landlock_then_mdwe_after_no_new_privs_and_before_seccomp() {
        let rec = Recorder::default();
        confine_recorded(&rec, Some(&verified())).unwrap();
        // memfd_noexec is the supervisor's (integrity::refuse_memfd_exec): pid 1 starts as usual.
        assert_eq!(rec.calls.borrow()[0], "loginuid 0");
        let nnp = rec.position("no_new_privs");
        assert_calls_from(
            &rec,
            nnp,
            &[
                "no_new_privs",
                "landlock exec=[\"/usr\"] write=[\"/tmp\"]",
                "mdwe refuse_exec_gain",
                "seccomp ",
                "send_fd",
                "dumpable false",
            ],
        );
    }

    #[test]
    fn without_landlock_the_integrity_run_still_refuses_exec_gain() {
        let rec = Recorder::default();
        let weaker = integrity::Verified {
            landlock: false,
            memfd_noexec: false,
            ..verified()
        };
        confine_recorded(&rec, Some(&weaker)).unwrap();
        let nnp = rec.position("no_new_privs");
        assert_calls_from(
            &rec,
            nnp,
            &[
                "no_new_privs",
                "mdwe refuse_exec_gain",
                "seccomp ",
                "send_fd",
                "dumpable false",
            ],
        );
        assert_eq!(rec.calls.borrow()[0], "loginuid 0");
    }

    #[test]
    fn a_refused_layer_stops_pid1_before_the_filter_and_names_the_step() {
        let clean = Recorder::default();
        confine_recorded(&clean, Some(&verified())).unwrap();
        for (step, stage, message) in [
            ("setresuid", Stage::User, "setresuid(0)"),
            ("securebits", Stage::Privileges, "lock securebits"),
            ("landlock", Stage::Integrity, "landlock"),
            ("mdwe", Stage::Integrity, "PR_SET_MDWE"),
        ] {
            let rec = Recorder {
                fail_at: Some(clean.position(step)),
                ..Default::default()
            };
            let e = confine_recorded(&rec, Some(&verified())).unwrap_err();
            assert_eq!(e.stage, stage, "{step}: {e}");
            assert!(e.message.contains(message), "{step}: {e}");
            let calls = rec.calls.borrow();
            assert!(calls.last().unwrap().starts_with(step), "{calls:#?}");
            assert!(!calls.iter().any(|c| c.starts_with("seccomp")));
        }
    }

    #[test]
    fn the_program_gets_a_session_then_its_descriptors_closed_then_rlimits() {
        let rec = Recorder::default();
        let ends = SandboxEnds {
            go: dev_null(),
            report: dev_null(),
            notify: dev_null(),
            stdin: None,
            stdout: None,
            stderr: None,
            terminal: None,
        };
        let mut limits = default_profile().limits;
        limits.open_files = Some(64);
        limits.file_size = None;
        before_exec(&limits::rlimits(&limits), &ends, &rec).unwrap();
        assert_eq!(
            rec.calls.borrow().as_slice(),
            [
                "setsid",
                "cloexec_from 3",
                "setrlimit RLIMIT_CORE 0/0",
                "setrlimit RLIMIT_NOFILE 64/64"
            ]
        );

        let refused = Recorder {
            fail_at: Some(1),
            ..Default::default()
        };
        let e = before_exec(&[], &ends, &refused).unwrap_err();
        assert_eq!(e.stage, Stage::Fds, "{e}");
        assert!(e.message.contains("close-on-exec"), "{e}");
        assert_eq!(refused.calls.borrow().len(), 2, "no rlimit after a refusal");
    }
}
