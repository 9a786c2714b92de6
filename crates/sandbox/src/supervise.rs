//! The supervisor's side of a run: wait for the sandbox while enforcing wall time, whole-
//! sandbox CPU time and output size, answer violations (the forensic response is
//! `forensic.rs`), pass the caller's SIGINT/SIGTERM on as a kill, and say what happened
//! ([`Outcome`]; the verdict is `verdict::decide`).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use watertight_cgroups::Cgroup;
use watertight_sys::process::Reaped;

use crate::error::{Error, IoContext};
use crate::events::{EventKind, EventLog};
use crate::forensic::ForensicConfig;
use crate::output::{OutputFd, OutputMeter, OutputRelay};
use crate::profile::{Limits, OnViolation, Profile};
use crate::report::Report;
use crate::terminal::{Relay, RelayFd};
use crate::violation::{self, Decision, Received};

/// The caller's signals that end a run, received through a signalfd.
pub struct Signals {
    fd: SignalFd,
    old: SigSet,
}

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGQUIT in the supervisor and opens a signalfd for them,
/// so they end the run through the supervisor's loop (the sandbox killed, verdict XX) rather
/// than killing watertight mid-setup.
pub fn block_signals() -> Result<Signals, Error> {
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
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .ctx(|| "block signals".into())?;
    let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "signalfd".into())?;
    Ok(Signals { fd, old })
}

/// Restores the signal mask `block_signals` replaced.
pub fn restore_signals(s: &Signals) {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&s.old), None);
}

/// Kills and reaps the sandbox's pid 1 if the supervisor leaves early (an error after clone).
pub struct ChildGuard {
    pid: Option<i32>,
}

impl ChildGuard {
    /// Guards the sandbox's pid 1 `pid` from here until [`ChildGuard::disarm`].
    pub fn new(pid: i32) -> ChildGuard {
        ChildGuard { pid: Some(pid) }
    }
    /// Once the supervisor has reaped pid 1: dropping the guard then does nothing.
    pub fn disarm(mut self) {
        self.pid = None;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = watertight_sys::process::wait4(pid, false);
        }
    }
}

/// The sandbox the supervisor watches.
pub struct Target<'a> {
    /// Its pid 1, on the host.
    pub pid: i32,
    /// Readable once pid 1 has exited (None: the kernel has no pidfds; a short tick instead).
    pub pidfd: Option<BorrowedFd<'a>>,
    /// The sandbox's cgroup: its CPU time and accounting, and freezing and killing every task.
    pub cgroup: &'a Cgroup,
    /// The sandbox's name, in events and evidence.
    pub sandbox_id: &'a str,
    /// When the sandbox was started (its wall time counts from here).
    pub started: Instant,
}

/// The supervisor's ends of the sandbox's channels.
pub struct Channels {
    /// What pid 1 reports (`report.rs`).
    pub report: OwnedFd,
    /// Where the sandbox sends its seccomp listener.
    pub notify: OwnedFd,
    /// The program's stdout and stderr pipes (`output::Pipes::supervisor_ends`): every stream
    /// that is not the caller's terminal, each passed on and counted; then their destinations
    /// (`stdio::destinations`: the caller's descriptors or the `--stdout`/`--stderr` files).
    pub output: ([Option<OwnedFd>; 2], [Option<OwnedFd>; 2]),
}

/// What the supervisor enforces.
pub struct Policy<'a> {
    /// The profile's `[limits]`: wall time, CPU time and output are the supervisor's to enforce.
    pub limits: &'a Limits,
    /// What a violation-class syscall gets: `seccomp.on_violation`.
    pub on_violation: OnViolation,
    /// In deny mode, violations before the sandbox is ended (0: no limit).
    pub max_violations: u64,
    /// Where evidence bundles go and which key signs them, for `forensic`.
    pub forensics: &'a ForensicConfig,
    /// `--bpf-observe`: BPF_PROG_LOAD notifications are served by the vetted load
    /// (`bpf_load.rs`), not answered as violations.
    pub bpf_observe: bool,
}

impl<'a> Policy<'a> {
    /// The profile's limits and violation response, with where evidence goes.
    pub fn of(profile: &'a Profile, forensics: &'a ForensicConfig) -> Policy<'a> {
        Policy {
            limits: &profile.limits,
            on_violation: profile.seccomp.on_violation,
            max_violations: profile.seccomp.max_violations,
            forensics,
            bpf_observe: profile.bpf.observe,
        }
    }
}

pub use crate::verdict::{Outcome, Stop};

/// Which descriptor polled ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// pid 1 exited: the loop's wait reaps it.
    Pidfd,
    /// The caller sent a signal that ends the run.
    Signal,
    Report,
    /// The sandbox sent its seccomp listener.
    NotifySocket,
    /// A violation-class syscall is pending (or every filtered task is gone).
    Listener,
    Output(OutputFd),
    Terminal(RelayFd),
}

/// Number of CPUs the sandbox can use at once: CPU time cannot grow faster than this.
fn parallelism(limits: &Limits) -> f64 {
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    limits.cpus.map(|c| c.min(online)).unwrap_or(online)
}

/// The time limits and when each is checked next.
struct Clock {
    wall_limit: Option<Duration>,
    cpu_limit_ns: Option<u64>,
    /// CPUs the sandbox may use at once (only needed with a CPU-time limit).
    cores: f64,
    /// When CPU time could first reach the limit, checked again then (no polling in between).
    next_cpu_check: Option<Instant>,
    cpu_used_ns: u64,
}

impl Clock {
    fn new(limits: &Limits, started: Instant) -> Clock {
        let cpu_limit_ns = limits.cpu_time.map(|s| (s * 1e9) as u64);
        // Only a CPU-time limit needs it, and it reads the cgroup files of the supervisor's
        // CPU quota.
        let cores = if cpu_limit_ns.is_some() {
            parallelism(limits)
        } else {
            1.0
        };
        Clock {
            wall_limit: limits.wall_time.map(Duration::from_secs_f64),
            cpu_limit_ns,
            cores,
            next_cpu_check: cpu_limit_ns
                .map(|l| started + Duration::from_secs_f64(l as f64 / 1e9 / cores)),
            cpu_used_ns: 0,
        }
    }
}

/// Waits for the sandbox while enforcing its limits and answering its violations: one
/// `poll` over every descriptor that can wake it, each ready one handled by its own method.
pub struct Supervisor<'a> {
    target: Target<'a>,
    policy: Policy<'a>,
    signals: &'a Signals,
    events: &'a mut EventLog,
    /// The program's pty, when the caller has a terminal (`terminal.rs`).
    terminal: Option<&'a mut Relay>,
    /// The BPF exec gate, when exec-time integrity is on: its kills become events.
    gate: Option<&'a mut watertight_integrity::ExecGate>,
    report: Option<OwnedFd>,
    report_buf: Vec<u8>,
    notify: Option<OwnedFd>,
    /// The seccomp listener is held until the supervisor is done (the sandbox is gone by then),
    /// whatever happens to it: see `violation::Responder::handle`.
    listener: Option<OwnedFd>,
    /// Whether to poll the listener (false once every filtered task is gone).
    listening: bool,
    /// The program's output pipes, passed on to the caller's stdout and stderr.
    output: OutputRelay,
    /// Every byte of output, the pipes' and the terminal's, against the output limit.
    meter: OutputMeter,
    responder: violation::Responder,
    clock: Clock,
    stop: Option<Stop>,
    evidence: Option<Result<std::path::PathBuf, String>>,
    buf: Vec<u8>,
    /// Something to do once, at a time, unless pid 1 is gone by then (see [`Supervisor::later`]).
    later: Option<(Instant, &'a mut dyn FnMut())>,
}

impl<'a> Supervisor<'a> {
    /// A supervisor of `target` that reads `channels`; the signalfd of [`block_signals`] and the
    /// event log are borrowed for the run.
    pub fn new(
        target: Target<'a>,
        channels: Channels,
        policy: Policy<'a>,
        signals: &'a Signals,
        events: &'a mut EventLog,
    ) -> Supervisor<'a> {
        Supervisor {
            clock: Clock::new(policy.limits, target.started),
            output: OutputRelay::new(channels.output.0, channels.output.1),
            meter: OutputMeter::new(policy.limits.output.map(|s| s.bytes())),
            responder: violation::Responder::new(policy.on_violation, policy.max_violations)
                .serving_bpf_loads(policy.bpf_observe.then(|| target.cgroup.dirs().to_vec())),
            target,
            policy,
            signals,
            events,
            terminal: None,
            gate: None,
            report: Some(channels.report),
            report_buf: Vec::new(),
            notify: Some(channels.notify),
            listener: None,
            listening: false,
            stop: None,
            evidence: None,
            buf: Vec::new(),
            later: None,
        }
    }

    /// Does `action` once at `at` if the sandbox still runs then. For work that is not
    /// enforcement and need not be paid by short runs: done right after the sandbox's release,
    /// it ran on the core the woken sandbox was queued on and delayed its start.
    pub fn later(mut self, at: Instant, action: &'a mut dyn FnMut()) -> Self {
        self.later = Some((at, action));
        self
    }

    /// Relays the program's pty to the caller's terminal.
    pub fn with_terminal(mut self, terminal: Option<&'a mut Relay>) -> Supervisor<'a> {
        self.terminal = terminal;
        self
    }

    /// Records the exec gate's kills as events.
    pub fn with_gate(mut self, gate: Option<&'a mut watertight_integrity::ExecGate>) -> Self {
        self.gate = gate;
        self
    }

    /// Supervises until the sandbox's pid 1 is gone; what happened, for the verdict.
    pub fn run(mut self) -> Outcome {
        // A pty's output is copied in 64 KiB reads; the output pipes are spliced (no copy), so
        // otherwise only the small reports come through here and the big buffer (16 pages to
        // fault in) is not made (the relay grows it if it has to copy).
        self.buf = vec![
            0u8;
            if self.terminal.is_some() {
                64 << 10
            } else {
                4 << 10
            }
        ];
        let reaped = loop {
            // Reaped already? (pidfd readable, or no pidfd: poll with a short tick.)
            if let Ok(Some(r)) = watertight_sys::process::wait4(self.target.pid, true) {
                break Some(r);
            }
            for (ready, revents) in self.poll() {
                self.on_ready(ready, revents);
            }
            self.record_gate_events();
            self.events.write_summaries_if_due();
            self.check_time();
            if self
                .later
                .as_ref()
                .is_some_and(|(at, _)| Instant::now() >= *at)
            {
                if let Some((_, action)) = self.later.take() {
                    action();
                }
            }
        };
        let wall = self.target.started.elapsed();
        self.record_gate_events();
        self.finish(reaped, wall)
    }

    /// When the loop must wake up even if nothing is ready.
    fn timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        let mut wake_by = |t: Instant| deadline = Some(deadline.map_or(t, |d| d.min(t)));
        if self.stop.is_none() {
            if let Some(l) = self.clock.wall_limit {
                wake_by(self.target.started + l);
            }
            if let Some(t) = self.clock.next_cpu_check {
                wake_by(t);
            }
        }
        if let Some((t, _)) = &self.later {
            wake_by(*t);
        }
        // Counts of repeated events, for a live reader of the events file, also when idle.
        if let Some(t) = self.events.next_summary() {
            wake_by(t);
        }
        // No pidfd to say pid 1 exited, or gate events to collect: a short tick.
        if self.target.pidfd.is_none() || self.gate.is_some() {
            wake_by(now + Duration::from_millis(10));
        }
        match deadline {
            Some(d) => PollTimeout::try_from(
                d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1,
            )
            .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        }
    }

    /// Waits until a descriptor is ready or the next deadline; which ones are ready.
    fn poll(&self) -> Vec<(Ready, PollFlags)> {
        let timeout = self.timeout();
        let mut watched: Vec<(BorrowedFd<'_>, PollFlags, Ready)> = Vec::with_capacity(8);
        if let Some(p) = self.target.pidfd {
            watched.push((p, PollFlags::POLLIN, Ready::Pidfd));
        }
        watched.push((self.signals.fd.as_fd(), PollFlags::POLLIN, Ready::Signal));
        if let Some(r) = &self.report {
            watched.push((r.as_fd(), PollFlags::POLLIN, Ready::Report));
        }
        if let Some(n) = &self.notify {
            watched.push((n.as_fd(), PollFlags::POLLIN, Ready::NotifySocket));
        }
        if let (Some(l), true) = (&self.listener, self.listening) {
            watched.push((l.as_fd(), PollFlags::POLLIN, Ready::Listener));
        }
        for (fd, flags, which) in self.output.poll_fds() {
            watched.push((fd, flags, Ready::Output(which)));
        }
        if let Some(t) = self.terminal.as_deref() {
            for (fd, flags, which) in t.poll_fds() {
                watched.push((fd, flags, Ready::Terminal(which)));
            }
        }
        let mut fds: Vec<PollFd> = watched
            .iter()
            .map(|(fd, flags, _)| PollFd::new(*fd, *flags))
            .collect();
        let _ = nix::poll::poll(&mut fds, timeout);
        fds.iter()
            .zip(watched.iter().map(|(_, _, kind)| *kind))
            .filter_map(|(f, k)| f.revents().filter(|r| !r.is_empty()).map(|r| (k, r)))
            .collect()
    }

    fn on_ready(&mut self, ready: Ready, revents: PollFlags) {
        match ready {
            Ready::Pidfd => {} // the loop's wait reaps it
            Ready::Signal => self.on_signal(),
            Ready::Report => self.on_report(),
            Ready::NotifySocket => self.on_notify_socket(),
            // Every filtered task is gone: nothing can notify any more. The fd stays open.
            Ready::Listener if !revents.contains(PollFlags::POLLIN) => self.listening = false,
            Ready::Listener => self.on_violation(),
            Ready::Output(which) => self.on_output(which),
            Ready::Terminal(which) => self.on_terminal(which),
        }
    }

    fn on_signal(&mut self) {
        if let Ok(Some(info)) = self.signals.fd.read_signal() {
            self.kill(Stop::Interrupted(info.ssi_signo as i32));
        }
    }

    fn on_report(&mut self) {
        let fd = self.report.as_ref().expect("polled");
        match nix::unistd::read(fd, &mut self.buf) {
            Ok(0) | Err(_) => self.report = None,
            Ok(n) => self.report_buf.extend_from_slice(&self.buf[..n]),
        }
    }

    fn on_notify_socket(&mut self) {
        let sock = self.notify.take().expect("polled");
        if let Ok(Some(fd)) = watertight_sys::fdpass::recv_fd(sock.as_fd()) {
            self.listener = Some(fd);
            self.listening = true;
        }
    }

    /// A violation-class syscall: recorded, then answered as `on_violation` says.
    fn on_violation(&mut self) {
        let l = self.listener.as_ref().expect("polled");
        let decision = match self.responder.handle(l.as_fd(), self.events) {
            // A withdrawn call was attempted all the same: under kill or forensic it ends the
            // sandbox even though it could not be named.
            Received::Call(d) | Received::Withdrawn(d) => d,
            Received::Nothing | Received::Served => return,
        };
        match decision {
            Decision::Denied => {}
            Decision::Forensic if self.stop.is_none() => {
                self.stop = Some(Stop::Violation);
                let t = &self.target;
                self.evidence = Some(crate::forensic::respond_to_violation(
                    t.cgroup,
                    t.pid,
                    t.sandbox_id,
                    self.policy.forensics,
                    self.events,
                    t.started.elapsed(),
                ));
                self.kill(Stop::Violation);
            }
            Decision::Kill | Decision::Forensic => self.kill(Stop::Violation),
            Decision::TooMany => self.kill(Stop::TooManyViolations),
        }
    }

    fn on_output(&mut self, which: OutputFd) {
        self.output.on_ready(which, &mut self.meter, &mut self.buf);
        if self.meter.exceeded() {
            self.kill(Stop::Output);
        }
    }

    fn on_terminal(&mut self, which: RelayFd) {
        let t = self.terminal.as_deref_mut().expect("polled");
        t.on_ready(which, &mut self.buf, &mut |n| self.meter.admit(n));
        if self.meter.exceeded() {
            self.kill(Stop::Output);
        }
    }

    /// Kills the whole sandbox; the first reason is the one the verdict gives.
    ///
    /// After a violation, the sandbox is frozen first. SIGKILL reaches the tasks one by one
    /// (pid 1's death kills the rest of its pid namespace, `cgroup.kill` walks the cgroup), and
    /// a task killed early, such as the one blocked in the refused call, wakes its parent,
    /// which could run on (measured once under CI load: the shell that started the violating
    /// program printed its next line) before its own SIGKILL arrived. A frozen task runs no
    /// more user code; SIGKILL ends it where it stands. A freeze that fails changes nothing:
    /// the kill follows either way.
    fn kill(&mut self, why: Stop) {
        if self.stop.is_none() {
            self.stop = Some(why);
        }
        if matches!(why, Stop::Violation | Stop::TooManyViolations) {
            let _ = self.target.cgroup.freeze();
        }
        let _ = nix::sys::signal::kill(Pid::from_raw(self.target.pid), Signal::SIGKILL);
        let _ = self.target.cgroup.kill_all();
    }

    /// The wall-time limit, and the CPU-time limit when it could have been reached.
    fn check_time(&mut self) {
        if self.stop.is_some() {
            return;
        }
        let now = Instant::now();
        if let Some(why) = self.time_exceeded(now) {
            self.kill(why);
        }
    }

    fn time_exceeded(&mut self, now: Instant) -> Option<Stop> {
        let c = &mut self.clock;
        if c.wall_limit.is_some_and(|l| now >= self.target.started + l) {
            return Some(Stop::WallTime);
        }
        let (Some(limit), Some(t)) = (c.cpu_limit_ns, c.next_cpu_check) else {
            return None;
        };
        if now < t {
            return None;
        }
        c.cpu_used_ns = self
            .target
            .cgroup
            .stats()
            .ok()
            .and_then(|s| s.cpu_usage_ns)
            .unwrap_or(c.cpu_used_ns);
        if c.cpu_used_ns >= limit {
            return Some(Stop::CpuTime);
        }
        let left = (limit - c.cpu_used_ns) as f64 / 1e9 / c.cores;
        c.next_cpu_check = Some(now + Duration::from_secs_f64(left.max(0.005)));
        None
    }

    fn record_gate_events(&mut self) {
        if let Some(g) = self.gate.as_deref_mut() {
            record_gate_events(g, self.events);
        }
    }

    /// pid 1 is gone, so every process of the sandbox is gone and every pipe end is closed:
    /// drains what is left, reads the cgroup's accounting once, and says what happened.
    fn finish(mut self, reaped: Option<Reaped>, wall: Duration) -> Outcome {
        if let Some(fd) = self.report.take() {
            while let Ok(n) = nix::unistd::read(&fd, &mut self.buf) {
                if n == 0 {
                    break;
                }
                self.report_buf.extend_from_slice(&self.buf[..n]);
            }
        }
        // What is left in the output pipes; a full reader is waited for no longer than the
        // program could have run.
        let deadline = self.clock.wall_limit.map(|l| self.target.started + l);
        self.output.drain(
            &mut self.meter,
            &mut self.buf,
            deadline,
            self.signals.fd.as_fd(),
        );
        if let Some(t) = self.terminal.take() {
            t.drain(&mut self.buf, &mut |n| self.meter.admit(n));
        }
        // Output that passed the limit while the program exited is still OL.
        if self.meter.exceeded() && self.stop.is_none() {
            self.stop = Some(Stop::Output);
        }
        let _ = std::io::stdout().flush();
        // Read once: the CPU-time check here, the verdict and the limit events all use it.
        let stats = self.target.cgroup.stats().ok();
        let cgroup_cpu_ns = stats.as_ref().and_then(|s| s.cpu_usage_ns);
        if let (Some(limit), Some(used), None) = (self.clock.cpu_limit_ns, cgroup_cpu_ns, self.stop)
        {
            if used >= limit {
                self.stop = Some(Stop::CpuTime);
            }
        }
        // The listener is closed only now, with the sandbox gone.
        drop(self.listener.take());
        Outcome {
            reaped,
            reports: Report::decode_all(&self.report_buf),
            stop: self.stop,
            wall,
            output_bytes: self.meter.bytes,
            cgroup_cpu_ns,
            stats,
            evidence: self.evidence.take(),
        }
    }
}

fn record_gate_events(g: &mut watertight_integrity::ExecGate, events: &mut EventLog) {
    for e in g.poll_events() {
        // Repeats are grouped by file and kind of use, so each refused file is named.
        let mut key = serde_json::Map::new();
        key.insert("dev".into(), e.dev.into());
        key.insert("ino".into(), e.ino.into());
        key.insert("what".into(), format!("{:?}", e.what).to_lowercase().into());
        events.record(
            EventKind::ExecDenied,
            key,
            || serde_json::json!({"host_pid": e.pid, "comm": e.comm, "changed_since_verified": e.changed}),
        );
    }
}

/// Events for the limits the sandbox ran into, from the supervisor's view and the cgroup's
/// counters.
pub fn record_limit_events(o: &Outcome, limits: &Limits, events: &mut EventLog) {
    let l = limits;
    if let Some(s) = &o.stats {
        if s.oom_kills.unwrap_or(0) > 0 {
            events.emit(
                EventKind::MemoryLimit,
                serde_json::json!({"oom_kills": s.oom_kills, "limit_bytes": l.memory.map(|m| m.bytes()), "peak_bytes": s.memory_peak_bytes}),
            );
        }
        if s.pids_limit_hits.unwrap_or(0) > 0 {
            events.emit(
                EventKind::PidsLimit,
                serde_json::json!({"refused_forks": s.pids_limit_hits, "limit": l.pids}),
            );
        }
    }
    match o.stop {
        Some(Stop::WallTime) => {
            events.emit(
                EventKind::TimeLimit,
                serde_json::json!({"clock": "wall", "limit_s": l.wall_time}),
            );
        }
        Some(Stop::CpuTime) => {
            events.emit(
                EventKind::TimeLimit,
                serde_json::json!({"clock": "cpu", "limit_s": l.cpu_time}),
            );
        }
        Some(Stop::Output) => {
            events.emit(EventKind::OutputLimit, serde_json::json!({"limit_bytes": l.output.map(|s| s.bytes()), "bytes": o.output_bytes}));
        }
        _ => {}
    }
}
