//! The supervisor's side of a run: wait for the sandbox while enforcing wall time, whole-
//! sandbox CPU time and output size, pass the caller's SIGINT/SIGTERM on as a kill, and turn
//! what happened into a verdict.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use watertight_cgroups::{Cgroup, Stats};
use watertight_sys::process::Reaped;

use crate::error::{Error, IoContext};
use crate::events::EventLog;
use crate::forensic::ForensicConfig;
use crate::profile::{Limits, OnViolation, Profile};
use crate::report::Report;
use crate::verdict::{AppliedLimits, Status, Verdict};
use crate::violation::{self, Decision, Received};

/// The caller's signals that end a run, received through a signalfd.
pub struct Signals {
    fd: SignalFd,
    old: SigSet,
}

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

pub fn restore_signals(s: &Signals) {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&s.old), None);
}

/// Kills and reaps the sandbox's pid 1 if the supervisor leaves early (an error after clone).
pub struct ChildGuard {
    pid: Option<i32>,
}

impl ChildGuard {
    pub fn new(pid: i32) -> ChildGuard {
        ChildGuard { pid: Some(pid) }
    }
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

pub struct Watch<'a> {
    pub pid: i32,
    pub pidfd: Option<BorrowedFd<'a>>,
    pub report: OwnedFd,
    /// Where the sandbox sends its seccomp listener.
    pub notify: OwnedFd,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The program's pty, when the caller has a terminal (`terminal.rs`).
    pub terminal: Option<&'a mut crate::terminal::Relay>,
    pub limits: &'a Limits,
    pub cgroup: &'a Cgroup,
    pub started: Instant,
    pub signals: &'a Signals,
    pub events: &'a mut EventLog,
    pub on_violation: OnViolation,
    /// In deny mode, violations before the sandbox is ended (0: no limit).
    pub max_violations: u64,
    pub forensics: &'a ForensicConfig,
    pub sandbox_id: &'a str,
    /// The BPF exec gate, when exec-time integrity is on: its kills become events.
    pub gate: Option<&'a mut watertight_integrity::ExecGate>,
}

/// Why the supervisor killed the sandbox, if it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    WallTime,
    CpuTime,
    Output,
    Interrupted(i32),
    /// A violation-class syscall under `kill` or `forensic`.
    Violation,
    /// `max_violations` violations under `deny`.
    TooManyViolations,
}

#[derive(Debug)]
pub struct Outcome {
    pub reaped: Option<Reaped>,
    pub reports: Vec<Report>,
    pub stop: Option<Stop>,
    pub wall: Duration,
    pub output_bytes: u64,
    pub cgroup_cpu_ns: Option<u64>,
    /// The cgroup's accounting, read once after the sandbox ended.
    pub stats: Option<Stats>,
    /// After a forensic response: the bundle, or where it could not be written.
    pub evidence: Option<Result<std::path::PathBuf, String>>,
}

/// Number of CPUs the sandbox can use at once: CPU time cannot grow faster than this.
fn parallelism(limits: &Limits) -> f64 {
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    limits.cpus.map(|c| c.min(online)).unwrap_or(online)
}

pub fn supervise(mut w: Watch<'_>) -> Outcome {
    let wall_limit = w.limits.wall_time.map(Duration::from_secs_f64);
    let cpu_limit_ns = w.limits.cpu_time.map(|s| (s * 1e9) as u64);
    // Only a CPU-time limit needs it, and it reads the cgroup files of the supervisor's CPU quota.
    let cores = if cpu_limit_ns.is_some() {
        parallelism(w.limits)
    } else {
        1.0
    };
    let mut stop = None;
    let mut output = OutputMeter {
        limit: w.limits.output.map(|s| s.bytes()),
        bytes: 0,
    };
    let mut report_buf = Vec::new();
    let mut streams: [Option<OwnedFd>; 2] = [w.stdout, w.stderr];
    let mut report_fd = Some(w.report);
    let mut cpu_used_ns = 0u64;
    // When CPU time could first reach the limit, checked again then (no polling in between).
    let mut next_cpu_check =
        cpu_limit_ns.map(|l| w.started + Duration::from_secs_f64(l as f64 / 1e9 / cores));
    // Output is copied in 64 KiB reads; without output pipes only the small reports come
    // through, so the big buffer (16 pages to fault in) is made only for pipes or a pty.
    let buf_len = if streams.iter().any(Option::is_some) || w.terminal.is_some() {
        64 << 10
    } else {
        4 << 10
    };
    let mut buf = vec![0u8; buf_len];
    let mut notify_sock = Some(w.notify);
    // The seccomp listener is held until this function returns (the sandbox is gone by then),
    // whatever happens to it: see `violation::Responder::handle`. `listening` only says whether
    // to poll it.
    let mut listener: Option<OwnedFd> = None;
    let mut listening = false;
    let mut responder = violation::Responder::new(w.on_violation, w.max_violations);
    let mut evidence = None;

    let kill = |stop_reason: &mut Option<Stop>, why: Stop| {
        if stop_reason.is_none() {
            *stop_reason = Some(why);
        }
        let _ = nix::sys::signal::kill(Pid::from_raw(w.pid), Signal::SIGKILL);
        let _ = w.cgroup.kill_all();
    };

    let reaped = loop {
        // Reaped already? (pidfd readable, or no pidfd: poll with a short tick.)
        if let Ok(Some(r)) = watertight_sys::process::wait4(w.pid, true) {
            break Some(r);
        }
        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        if stop.is_none() {
            if let Some(l) = wall_limit {
                deadline = Some(w.started + l);
            }
            if let Some(t) = next_cpu_check {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        }
        // Counts of repeated events, for a live reader of the events file, also when idle.
        if let Some(t) = w.events.next_summary() {
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        }
        if w.pidfd.is_none() || w.gate.is_some() {
            deadline = Some(deadline.map_or(now + Duration::from_millis(10), |d| {
                d.min(now + Duration::from_millis(10))
            }));
        }
        let timeout = match deadline {
            Some(d) => PollTimeout::try_from(
                d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1,
            )
            .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };

        let mut fds: Vec<PollFd> = Vec::with_capacity(5);
        let mut kinds: Vec<u8> = Vec::with_capacity(5);
        if let Some(p) = w.pidfd {
            fds.push(PollFd::new(p, PollFlags::POLLIN));
            kinds.push(b'p');
        }
        fds.push(PollFd::new(w.signals.fd.as_fd(), PollFlags::POLLIN));
        kinds.push(b's');
        if let Some(r) = &report_fd {
            fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
            kinds.push(b'r');
        }
        if let Some(n) = &notify_sock {
            fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
            kinds.push(b'n');
        }
        if let (Some(l), true) = (&listener, listening) {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            kinds.push(b'l');
        }
        for (i, s) in streams.iter().enumerate() {
            if let Some(s) = s {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
                kinds.push(if i == 0 { b'1' } else { b'2' });
            }
        }
        for (fd, flags, tag) in w.terminal.as_deref().map_or(Vec::new(), |t| t.poll_fds()) {
            fds.push(PollFd::new(fd, flags));
            kinds.push(tag);
        }
        let _ = nix::poll::poll(&mut fds, timeout);
        let ready: Vec<(u8, PollFlags)> = fds
            .iter()
            .zip(&kinds)
            .filter_map(|(f, k)| f.revents().filter(|r| !r.is_empty()).map(|r| (*k, r)))
            .collect();
        drop(fds);

        for (k, revents) in ready {
            match k {
                b's' => {
                    if let Ok(Some(info)) = w.signals.fd.read_signal() {
                        kill(&mut stop, Stop::Interrupted(info.ssi_signo as i32));
                    }
                }
                b'n' => {
                    let sock = notify_sock.take().expect("polled");
                    if let Ok(Some(fd)) = watertight_sys::fdpass::recv_fd(sock.as_fd()) {
                        listener = Some(fd);
                        listening = true;
                    }
                }
                // Every filtered task is gone: nothing can notify any more. The fd stays open.
                b'l' if !revents.contains(PollFlags::POLLIN) => listening = false,
                b'l' => {
                    let l = listener.as_ref().expect("polled");
                    let decision = match responder.handle(l.as_fd(), w.events) {
                        // A withdrawn call was attempted all the same: under kill or forensic
                        // it ends the sandbox even though it could not be named.
                        Received::Call(d) | Received::Withdrawn(d) => Some(d),
                        Received::Nothing => None,
                    };
                    match decision {
                        None | Some(Decision::Denied) => {}
                        Some(Decision::Forensic) if stop.is_none() => {
                            stop = Some(Stop::Violation);
                            let so_far = serde_json::json!({
                                "status": "SV",
                                "sandbox_id": w.sandbox_id,
                                "message": "security violation: evidence captured before the kill",
                                "wall_time_s": w.started.elapsed().as_secs_f64(),
                            });
                            let r = crate::forensic::respond(
                                w.cgroup,
                                w.pid,
                                w.sandbox_id,
                                w.forensics,
                                w.events,
                                &so_far,
                            );
                            match &r {
                                Ok(path) => w
                                    .events
                                    .emit("evidence_captured", serde_json::json!({"bundle": path})),
                                Err(e) => w
                                    .events
                                    .emit("evidence_failed", serde_json::json!({"error": e})),
                            };
                            evidence = Some(r);
                            kill(&mut stop, Stop::Violation);
                        }
                        Some(Decision::Kill | Decision::Forensic) => {
                            kill(&mut stop, Stop::Violation)
                        }
                        Some(Decision::TooMany) => kill(&mut stop, Stop::TooManyViolations),
                    }
                }
                b'r' => {
                    let fd = report_fd.as_ref().expect("polled");
                    match nix::unistd::read(fd, &mut buf) {
                        Ok(0) | Err(_) => report_fd = None,
                        Ok(n) => report_buf.extend_from_slice(&buf[..n]),
                    }
                }
                b'1' | b'2' => {
                    let idx = (k - b'1') as usize;
                    let fd = streams[idx].as_ref().expect("polled");
                    match nix::unistd::read(fd, &mut buf) {
                        Ok(0) | Err(_) => streams[idx] = None,
                        Ok(n) => {
                            if output.forward(idx, &buf[..n]) {
                                kill(&mut stop, Stop::Output);
                            }
                        }
                    }
                }
                crate::terminal::TAG_INPUT
                | crate::terminal::TAG_MASTER
                | crate::terminal::TAG_RESIZE
                | crate::terminal::TAG_OUTPUT => {
                    let t = w.terminal.as_deref_mut().expect("polled");
                    t.on_ready(k, &mut buf, &mut |n| output.admit(n));
                    if output.exceeded() {
                        kill(&mut stop, Stop::Output);
                    }
                }
                _ => {}
            }
        }

        if let Some(g) = w.gate.as_deref_mut() {
            record_gate_events(g, w.events);
        }
        w.events.write_summaries_if_due();
        let now = Instant::now();
        if stop.is_none() {
            if wall_limit.is_some_and(|l| now >= w.started + l) {
                kill(&mut stop, Stop::WallTime);
            } else if let (Some(limit), Some(t)) = (cpu_limit_ns, next_cpu_check) {
                if now >= t {
                    cpu_used_ns = w
                        .cgroup
                        .stats()
                        .ok()
                        .and_then(|s| s.cpu_usage_ns)
                        .unwrap_or(cpu_used_ns);
                    if cpu_used_ns >= limit {
                        kill(&mut stop, Stop::CpuTime);
                    } else {
                        let left = (limit - cpu_used_ns) as f64 / 1e9 / cores;
                        next_cpu_check = Some(now + Duration::from_secs_f64(left.max(0.005)));
                    }
                }
            }
        }
    };
    let wall = w.started.elapsed();
    if let Some(g) = w.gate.as_deref_mut() {
        record_gate_events(g, w.events);
    }

    // pid 1 is gone, so every process of the sandbox is gone and every pipe end is closed:
    // drain what is left.
    if let Some(fd) = report_fd {
        while let Ok(n) = nix::unistd::read(&fd, &mut buf) {
            if n == 0 {
                break;
            }
            report_buf.extend_from_slice(&buf[..n]);
        }
    }
    for (idx, s) in streams.into_iter().enumerate() {
        let Some(fd) = s else { continue };
        while let Ok(n) = nix::unistd::read(&fd, &mut buf) {
            if n == 0 {
                break;
            }
            if output.forward(idx, &buf[..n]) && stop.is_none() {
                stop = Some(Stop::Output);
            }
        }
    }
    if let Some(t) = w.terminal {
        t.drain(&mut buf, &mut |n| output.admit(n));
        if output.exceeded() && stop.is_none() {
            stop = Some(Stop::Output);
        }
    }
    let _ = std::io::stdout().flush();
    // Read once: the CPU-time check here, the verdict and the limit events all use it.
    let stats = w.cgroup.stats().ok();
    let cgroup_cpu_ns = stats.as_ref().and_then(|s| s.cpu_usage_ns);
    if let (Some(limit), Some(used), None) = (cpu_limit_ns, cgroup_cpu_ns, stop) {
        if used >= limit {
            stop = Some(Stop::CpuTime);
        }
    }
    Outcome {
        reaped,
        reports: Report::decode_all(&report_buf),
        stop,
        wall,
        output_bytes: output.bytes,
        cgroup_cpu_ns,
        stats,
        evidence,
    }
}

/// Copies the program's output to ours and counts it against the output limit; what passes the
/// limit is counted but not written.
struct OutputMeter {
    limit: Option<u64>,
    bytes: u64,
}

impl OutputMeter {
    /// Forwards `data` from stream `idx` (0 stdout, 1 stderr); true once the limit is exceeded.
    fn forward(&mut self, idx: usize, data: &[u8]) -> bool {
        let allowed = self.admit(data.len());
        let _ = if idx == 0 {
            std::io::stdout().write_all(&data[..allowed])
        } else {
            std::io::stderr().write_all(&data[..allowed])
        };
        self.exceeded()
    }

    /// Counts `n` bytes of output; how many of them may still be written.
    fn admit(&mut self, n: usize) -> usize {
        let allowed = self
            .limit
            .map_or(n as u64, |l| l.saturating_sub(self.bytes).min(n as u64));
        self.bytes += n as u64;
        allowed as usize
    }

    fn exceeded(&self) -> bool {
        self.limit.is_some_and(|l| self.bytes > l)
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
            "exec_denied",
            key,
            || serde_json::json!({"host_pid": e.pid, "comm": e.comm, "changed_since_verified": e.changed}),
        );
    }
}

/// Events for the limits the sandbox ran into, from the supervisor's view and the cgroup's
/// counters.
pub fn record_limit_events(
    o: &Outcome,
    stats: Option<&Stats>,
    profile: &Profile,
    events: &mut EventLog,
) {
    let l = &profile.limits;
    if let Some(s) = stats {
        if s.oom_kills.unwrap_or(0) > 0 {
            events.emit(
                "memory_limit",
                serde_json::json!({"oom_kills": s.oom_kills, "limit_bytes": l.memory.map(|m| m.bytes()), "peak_bytes": s.memory_peak_bytes}),
            );
        }
        if s.pids_limit_hits.unwrap_or(0) > 0 {
            events.emit(
                "pids_limit",
                serde_json::json!({"refused_forks": s.pids_limit_hits, "limit": l.pids}),
            );
        }
    }
    match o.stop {
        Some(Stop::WallTime) => {
            events.emit(
                "time_limit",
                serde_json::json!({"clock": "wall", "limit_s": l.wall_time}),
            );
        }
        Some(Stop::CpuTime) => {
            events.emit(
                "time_limit",
                serde_json::json!({"clock": "cpu", "limit_s": l.cpu_time}),
            );
        }
        Some(Stop::Output) => {
            events.emit("output_limit", serde_json::json!({"limit_bytes": l.output.map(|s| s.bytes()), "bytes": o.output_bytes}));
        }
        _ => {}
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Turns what happened into a verdict. The order of the checks is the order of precedence.
/// `command` is the program as given (argv[0]), for the message when it cannot be executed.
pub fn verdict(
    o: &Outcome,
    stats: Option<&Stats>,
    profile: &Profile,
    sandbox_id: &str,
    command: &std::ffi::OsStr,
) -> Verdict {
    let l = &profile.limits;
    let usage = o.reaped.map(|r| r.usage).unwrap_or_default();
    let rusage_cpu = (usage.user_us + usage.system_us) as f64 / 1e6;
    let cpu_time_s = o
        .cgroup_cpu_ns
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or(0.0)
        .max(rusage_cpu);
    let oom_killed = stats.is_some_and(|s| s.oom_kills.unwrap_or(0) > 0);
    let mut v = Verdict {
        status: Status::OK,
        exit_code: None,
        signal: None,
        cpu_time_s,
        wall_time_s: o.wall.as_secs_f64(),
        max_rss_kb: usage.max_rss_kb,
        oom_killed,
        output_bytes: o.output_bytes,
        limits: AppliedLimits {
            memory_bytes: l.memory.map(|s| s.bytes()),
            pids: l.pids,
            cpus: l.cpus,
            cpu_time_s: l.cpu_time,
            wall_time_s: l.wall_time,
            output_bytes: l.output.map(|s| s.bytes()),
            open_files: l.open_files,
            file_size_bytes: l.file_size.map(|s| s.bytes()),
        },
        message: None,
        sandbox_id: sandbox_id.to_string(),
        plan_digest: String::new(),
        events: Default::default(),
        evidence: None,
    };
    let program_status = o.reports.iter().find_map(|r| match r {
        Report::Exited { status } => Some(*status),
        _ => None,
    });
    if let Some(status) = program_status {
        if libc::WIFEXITED(status) {
            v.exit_code = Some(libc::WEXITSTATUS(status));
        } else if libc::WIFSIGNALED(status) {
            v.signal = Some(libc::WTERMSIG(status));
        }
    }
    for r in &o.reports {
        match r {
            Report::SetupFailed { stage, message } => {
                v.status = Status::XX;
                v.message = Some(format!("sandbox setup failed at {stage}: {message}"));
                return v;
            }
            Report::ExecFailed { errno } => {
                v.status = Status::XX;
                let e = nix::errno::Errno::from_raw(*errno);
                v.exit_code = Some(if e == nix::errno::Errno::ENOENT {
                    127
                } else {
                    126
                });
                // The name is the caller's (often a submission's file name): quoted and escaped,
                // so it cannot start a line or send escape codes to whoever reads the log.
                v.message = Some(format!(
                    "cannot execute {}: {}",
                    watertight_sys::text::quote(std::os::unix::ffi::OsStrExt::as_bytes(command)),
                    e.desc()
                ));
                return v;
            }
            Report::Exited { .. } => {}
        }
    }
    match o.stop {
        Some(Stop::Interrupted(sig)) => {
            v.status = Status::XX;
            v.message = Some(format!(
                "interrupted by {}: the sandbox was killed",
                signal_name(sig)
            ));
            return v;
        }
        Some(Stop::Violation) => {
            v.status = Status::SV;
            v.message = Some(match &o.evidence {
                Some(Ok(p)) => format!("security violation: evidence in {}", p.display()),
                Some(Err(e)) => format!("security violation: the sandbox was killed, but {e}"),
                None => {
                    "security violation: a forbidden system call; the sandbox was killed".into()
                }
            });
            v.evidence = o
                .evidence
                .as_ref()
                .and_then(|e| e.as_ref().ok())
                .map(|p| p.display().to_string());
            return v;
        }
        Some(Stop::TooManyViolations) => {
            v.status = Status::SV;
            v.message = Some(format!(
                "security violation: {} forbidden system calls (seccomp.max_violations); the sandbox was killed",
                profile.seccomp.max_violations
            ));
            return v;
        }
        Some(Stop::Output) => {
            v.status = Status::OL;
            v.message = Some("output limit exceeded".into());
            return v;
        }
        Some(Stop::WallTime) => {
            v.status = Status::TO;
            v.message = Some("wall-time limit exceeded".into());
            return v;
        }
        Some(Stop::CpuTime) => {
            v.status = Status::TO;
            v.message = Some("CPU-time limit exceeded".into());
            return v;
        }
        None => {}
    }
    // Any OOM kill in the cgroup, whichever task it hit: kernel memory (pipe or socket buffers)
    // is charged to the cgroup but to no task's RSS, so the OOM killer may pick the reaper, and
    // then there is no program status to report. (The reaper is not shielded with a negative
    // oom_score_adj: the program would inherit the shield, and its own /proc files are not
    // writable before execve, while it shares the reaper's non-dumpable memory.)
    if oom_killed {
        v.status = Status::ML;
        v.message = Some("memory limit exceeded".into());
        return v;
    }
    if program_status.is_none() {
        v.status = Status::XX;
        v.message = Some("the sandbox ended without reporting the program's status".into());
        return v;
    }
    // From here on the program's own status decides, and a signal is only what it is: TO, OL
    // and SV come from what the supervisor measured (above), never from a signal the program
    // can raise at itself.
    match (v.exit_code, v.signal) {
        (Some(0), _) => v.status = Status::OK,
        (Some(_), _) => v.status = Status::RE,
        // RLIMIT_CPU (the per-process backstop of --time-limit) sends SIGXCPU only once the
        // process used at least the limit, which the measured CPU time then shows.
        (_, Some(sig)) if sig == libc::SIGXCPU && l.cpu_time.is_some_and(|t| v.cpu_time_s >= t) => {
            v.status = Status::TO;
            v.message = Some("CPU-time limit exceeded".into());
        }
        (_, Some(sig)) => {
            v.status = Status::SG;
            v.message = Some(format!(
                "killed by {}{}",
                signal_name(sig),
                signal_hint(sig, l)
            ));
        }
        (None, None) => v.status = Status::XX,
    }
    v
}

/// What a signal may have meant, for the verdict's message.
fn signal_hint(sig: i32, l: &Limits) -> String {
    match sig {
        libc::SIGXFSZ => match l.file_size {
            Some(s) => format!(
                " (a write past the file-size limit of {} bytes, or the program's own signal)",
                s.bytes()
            ),
            None => String::new(),
        },
        libc::SIGSYS => {
            " (a seccomp kill: a 32-bit system call or a filter the program installed, or the program's own signal)".into()
        }
        _ => String::new(),
    }
}
