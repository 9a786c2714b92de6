//! The verdict of one run: what happened to the program, in the JSON an autograder reads
//! (`--result FILE`), and the exit code watertight itself returns.
//!
//! [`decide`] is a pure function of what the supervisor measured ([`Outcome`]), the settings
//! that decide it ([`Settings`]) and the events summary: no system call, so every rule is
//! tested without root (the table test below).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;
use watertight_cgroups::Stats;
use watertight_sys::process::Reaped;

use crate::error::{SetupError, Stage};
use crate::events::{EventKind, EventSummary};
use crate::profile::Limits;
use crate::report::Report;

/// Outcome classes, as isolate and contest judges name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Status {
    /// Exited with code 0.
    OK,
    /// Runtime error: exited with a non-zero code.
    RE,
    /// Killed by a signal.
    SG,
    /// CPU-time or wall-time limit.
    TO,
    /// Memory limit (the cgroup OOM-killed it).
    ML,
    /// Output limit.
    OL,
    /// Security violation (a violation-class syscall under `on_violation = "kill"`).
    SV,
    /// Internal error: the sandbox could not be set up or the program could not be started.
    XX,
}

/// The limits that applied, echoed in the verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppliedLimits {
    /// `limits.memory` in bytes.
    pub memory_bytes: Option<u64>,
    /// `limits.pids`: tasks in the whole sandbox.
    pub pids: Option<u64>,
    /// `limits.cpus`: CPU bandwidth in cores.
    pub cpus: Option<f64>,
    /// `limits.cpu_time` in seconds.
    pub cpu_time_s: Option<f64>,
    /// `limits.wall_time` in seconds.
    pub wall_time_s: Option<f64>,
    /// `limits.output` in bytes (stdout and stderr together).
    pub output_bytes: Option<u64>,
    /// `limits.open_files` (RLIMIT_NOFILE).
    pub open_files: Option<u64>,
    /// `limits.file_size` in bytes (RLIMIT_FSIZE).
    pub file_size_bytes: Option<u64>,
}

/// What happened to one run: the JSON written to `--result FILE` and the basis of watertight's
/// exit code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The outcome class an autograder reads first.
    pub status: Status,
    /// The program's exit code when it exited; 126/127 when it could not be executed / found.
    pub exit_code: Option<i32>,
    /// The signal number that ended the program, when one did.
    pub signal: Option<i32>,
    /// CPU time of the whole sandbox in seconds: the cgroup's count, or the reaped tasks' rusage
    /// if larger.
    pub cpu_time_s: f64,
    /// Wall time from before the clone until the sandbox's pid 1 was gone, seconds.
    pub wall_time_s: f64,
    /// Peak resident set size in KiB of pid 1 and its reaped descendants (rusage).
    pub max_rss_kb: u64,
    /// The cgroup's OOM killer killed some task of the sandbox.
    pub oom_killed: bool,
    /// Bytes the program wrote to its stdout and stderr, with or without an output limit: every
    /// stream reaches the caller through the supervisor (a pipe, or the pty for a terminal),
    /// which counts it, past the limit too (counted, not shown). 0 only when nothing was written
    /// (or the caller had no stream open for writing).
    pub output_bytes: u64,
    /// The profile's limits, so the result says what the run was judged against.
    pub limits: AppliedLimits,
    /// Set for XX (and TO/OL/SV: which limit or rule): one line for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For XX after a failed setup step inside the sandbox: which step (machine-readable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// The sandbox's name: `wt-<slot>-<supervisor pid>` (`wt-<slot>.<n>-<pid>` for the n-th sandbox of a
    /// process that runs several, a batch step worker), also in events and the cgroup's path.
    pub sandbox_id: String,
    /// The digest of the plan (policy) the sandbox ran under (`plan::PlanDigest`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plan_digest: String,
    /// The audit trail's summary (the full log is `--events`).
    pub events: crate::events::EventSummary,
    /// The signed evidence bundle, after a forensic response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// With `--box-size`: whether the box's tmpfs was full when the program ended (a write
    /// failed with ENOSPC, or the next one would have). The status stays the program's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub box_full: Option<bool>,
    /// The sandbox ran without root, through user namespaces (`layers/rootless.rs`); absent
    /// when run as root.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rootless: bool,
    /// Rootless: the sandbox's own cgroup, made in the caller's delegated cgroup2 subtree;
    /// absent when it ran in no cgroup of its own (or as root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Rootless: one line per limit or layer not enforced as the root sandbox enforces it
    /// (`memory: ...`, `pids: ...`, `cpus: ...`, `cpu_time: ...`, `devices: ...`,
    /// `integrity: ...`): why, and what stood in. Absent when empty (always as root).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unenforced: Vec<String>,
    /// The tier that ran the program and what it chose, when it is not the namespace tier
    /// (absent: `namespaces`, so verdicts of that tier read as they always did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationReport>,
}

/// What a tier other than namespaces says about how it ran the program (docs/isolation.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IsolationReport {
    /// The tier (`gvisor`).
    pub tier: crate::profile::Isolation,
    /// The tier's platform: for gVisor the runsc platform (`ptrace`, `systrap`).
    pub platform: String,
    /// Why that platform: one line for people.
    pub platform_reason: String,
}

/// What watertight's exit code says (`--exit-codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExitCodes {
    /// The program's own exit code, as `timeout` passes it on; watertight's verdicts take codes
    /// the program could also exit with (124, 137, 153, 159, ...): `--result` is the authority.
    #[default]
    Program,
    /// One code per status, none of which the program can produce by itself: OK 0, RE 1, SG 2,
    /// TO 3, ML 4, OL 5, SV 6; XX 125 (126/127 when the command could not be executed / was not
    /// found). A CI gate can tell the program's failures from the sandbox's decisions.
    Verdict,
}

impl AppliedLimits {
    /// The limits of a profile, as the verdict echoes them.
    pub fn of(l: &Limits) -> AppliedLimits {
        AppliedLimits {
            memory_bytes: l.memory.map(|s| s.bytes()),
            pids: l.pids,
            cpus: l.cpus,
            cpu_time_s: l.cpu_time,
            wall_time_s: l.wall_time,
            output_bytes: l.output.map(|s| s.bytes()),
            open_files: l.open_files,
            file_size_bytes: l.file_size.map(|s| s.bytes()),
        }
    }
}

impl Verdict {
    /// XX: 126/127 when the command could not be executed / was not found (as `env` and
    /// `timeout`), else 125.
    /// watertight's exit code under `mode`.
    pub fn exit_code_as(&self, mode: ExitCodes) -> u8 {
        exit_code_of(self.status, self.exit_code, self.signal, mode)
    }

    /// watertight's own exit code: the program's exit code when it exited; 128+N when signal N
    /// killed it; 124 for a time limit (as `timeout`); 137 for the memory limit (the OOM kill is
    /// SIGKILL); 153 for the output limit (128+SIGXFSZ); 159 for a security violation
    /// (128+SIGSYS); 125 when watertight itself failed; 126/127 when the command could not be
    /// executed / was not found (as `env` and `timeout`).
    pub fn exit_code(&self) -> u8 {
        exit_code_of(self.status, self.exit_code, self.signal, ExitCodes::Program)
    }
}

fn internal_error_code(exit_code: Option<i32>) -> u8 {
    match exit_code {
        Some(c @ (126 | 127)) => c as u8,
        _ => 125,
    }
}

/// watertight's exit code under `mode` for a verdict known by its status, exit code and signal
/// alone: one that crossed a boundary as JSON (a VM guest's, crates/vm). The same rules as
/// [`Verdict::exit_code_as`], which calls it.
pub fn exit_code_of(
    status: Status,
    exit_code: Option<i32>,
    signal: Option<i32>,
    mode: ExitCodes,
) -> u8 {
    match (mode, status) {
        (_, Status::XX) => internal_error_code(exit_code),
        (ExitCodes::Program, Status::OK) => 0,
        (ExitCodes::Program, Status::RE) => exit_code.unwrap_or(1).clamp(0, 255) as u8,
        (ExitCodes::Program, Status::SG) => (128 + signal.unwrap_or(0)).clamp(0, 255) as u8,
        (ExitCodes::Program, Status::TO) => 124,
        (ExitCodes::Program, Status::ML) => 137,
        (ExitCodes::Program, Status::OL) => 153,
        (ExitCodes::Program, Status::SV) => 159,
        (ExitCodes::Verdict, Status::OK) => 0,
        (ExitCodes::Verdict, Status::RE) => 1,
        (ExitCodes::Verdict, Status::SG) => 2,
        (ExitCodes::Verdict, Status::TO) => 3,
        (ExitCodes::Verdict, Status::ML) => 4,
        (ExitCodes::Verdict, Status::OL) => 5,
        (ExitCodes::Verdict, Status::SV) => 6,
    }
}

/// Why the supervisor killed the sandbox, if it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// `limits.wall_time` passed.
    WallTime,
    /// `limits.cpu_time` passed (the cgroup's CPU time).
    CpuTime,
    /// `limits.output` passed.
    Output,
    /// watertight itself got this signal (e.g. SIGINT, SIGTERM) and killed the sandbox.
    Interrupted(i32),
    /// A violation-class syscall under `kill` or `forensic`.
    Violation,
    /// `max_violations` violations under `deny`.
    TooManyViolations,
}

/// What the supervisor measured of one run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The sandbox's pid 1, reaped (None: it could not be waited for).
    pub reaped: Option<Reaped>,
    /// What the sandbox reported (`report.rs`).
    pub reports: Vec<Report>,
    /// Why the supervisor killed the sandbox, if it did: decides TO, OL and SV before the
    /// program's own status.
    pub stop: Option<Stop>,
    /// Wall time from before the clone until pid 1 was reaped.
    pub wall: Duration,
    /// Bytes of output the supervisor took from the program (pipes and pty together), for the
    /// verdict.
    pub output_bytes: u64,
    /// The cgroup's CPU time in nanoseconds, if it could be read.
    pub cgroup_cpu_ns: Option<u64>,
    /// The cgroup's accounting, read once after the sandbox ended.
    pub stats: Option<Stats>,
    /// After a forensic response: the bundle, or where it could not be written.
    pub evidence: Option<Result<PathBuf, String>>,
}

/// What, besides the outcome, the verdict depends on.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The limits that applied, echoed in the verdict and used to explain a signal.
    pub limits: AppliedLimits,
    /// `seccomp.max_violations`, for the message when it ended the run.
    pub max_violations: u64,
    /// Exec-time integrity was on: a refused code-injection syscall is a violation.
    pub integrity: bool,
    /// The sandbox's name, echoed in the verdict.
    pub sandbox_id: String,
    /// The program as given (argv[0]), for the message when it cannot be executed.
    pub command: OsString,
    /// Rootless without a cgroup: RLIMIT_CPU is the CPU-time limit itself (whole seconds, on
    /// the kernel's tick-based clock, which runs ahead of the precise rusage measurement), so a
    /// SIGXCPU once the measured time is within [`RLIMIT_CPU_SLACK`] of the limit is TO.
    pub cpu_time_by_rlimit: bool,
}

/// How far below the CPU-time limit the precise measurement may be when RLIMIT_CPU (tick-based)
/// sent SIGXCPU at the limit: the tick clock ran 16% ahead on a busy VM (`layers/limits.rs`).
pub const RLIMIT_CPU_SLACK: f64 = 0.8;

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Turns what happened into a verdict. The order of the checks is the order of precedence:
/// what the sandbox reported failing, what the supervisor stopped it for, the cgroup's OOM
/// kills, the program's own status; then the integrity rules, which turn an ordinary end
/// (OK, RE, SG) into SV.
pub fn decide(o: &Outcome, settings: &Settings, events: EventSummary) -> Verdict {
    let mut v = measured(o, settings, events);
    let status = program_verdict(o, settings, &mut v);
    v.status = status;
    if matches!(v.status, Status::OK | Status::RE | Status::SG) {
        integrity_rules(settings, &mut v);
    }
    v
}

/// The verdict's numbers, before any status is decided.
fn measured(o: &Outcome, settings: &Settings, events: EventSummary) -> Verdict {
    let usage = o.reaped.map(|r| r.usage).unwrap_or_default();
    let rusage_cpu = (usage.user_us + usage.system_us) as f64 / 1e6;
    let cpu_time_s = o
        .cgroup_cpu_ns
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or(0.0)
        .max(rusage_cpu);
    let mut v = Verdict {
        status: Status::OK,
        exit_code: None,
        signal: None,
        cpu_time_s,
        wall_time_s: o.wall.as_secs_f64(),
        max_rss_kb: usage.max_rss_kb,
        oom_killed: o
            .stats
            .as_ref()
            .is_some_and(|s| s.oom_kills.unwrap_or(0) > 0),
        output_bytes: o.output_bytes,
        limits: settings.limits.clone(),
        message: None,
        stage: None,
        sandbox_id: settings.sandbox_id.clone(),
        plan_digest: String::new(),
        events,
        evidence: None,
        box_full: None,
        rootless: false,
        cgroup: None,
        unenforced: Vec::new(),
        isolation: None,
    };
    if let Some(status) = program_status(o) {
        if libc::WIFEXITED(status) {
            v.exit_code = Some(libc::WEXITSTATUS(status));
        } else if libc::WIFSIGNALED(status) {
            v.signal = Some(libc::WTERMSIG(status));
        }
    }
    v
}

/// The program's wait status, as the sandbox's pid 1 reported it.
fn program_status(o: &Outcome) -> Option<i32> {
    o.reports.iter().find_map(|r| match r {
        Report::Exited { status } => Some(*status),
        _ => None,
    })
}

/// The status before the integrity rules; sets the message (and exit code, stage, evidence)
/// that go with it.
fn program_verdict(o: &Outcome, settings: &Settings, v: &mut Verdict) -> Status {
    for r in &o.reports {
        match r {
            Report::SetupFailed(e @ SetupError { stage, .. }) => {
                v.message = Some(e.to_string());
                v.stage = Some(*stage);
                return Status::XX;
            }
            Report::ExecFailed { errno } => {
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
                    watertight_sys::text::quote(std::os::unix::ffi::OsStrExt::as_bytes(
                        settings.command.as_os_str()
                    )),
                    e.desc()
                ));
                return Status::XX;
            }
            Report::Exited { .. } => {}
        }
    }
    if let Some(stop) = o.stop {
        let (status, message) = match stop {
            Stop::Interrupted(sig) => (
                Status::XX,
                format!("interrupted by {}: the sandbox was killed", signal_name(sig)),
            ),
            Stop::Violation => {
                v.evidence = o
                    .evidence
                    .as_ref()
                    .and_then(|e| e.as_ref().ok())
                    .map(|p| p.display().to_string());
                let message = match &o.evidence {
                    Some(Ok(p)) => format!("security violation: evidence in {}", p.display()),
                    Some(Err(e)) => format!("security violation: the sandbox was killed, but {e}"),
                    None => {
                        "security violation: a forbidden system call; the sandbox was killed".into()
                    }
                };
                (Status::SV, message)
            }
            Stop::TooManyViolations => (
                Status::SV,
                format!(
                    "security violation: {} forbidden system calls (seccomp.max_violations); the sandbox was killed",
                    settings.max_violations
                ),
            ),
            Stop::Output => (Status::OL, "output limit exceeded".into()),
            Stop::WallTime => (Status::TO, "wall-time limit exceeded".into()),
            Stop::CpuTime => (Status::TO, "CPU-time limit exceeded".into()),
        };
        v.message = Some(message);
        return status;
    }
    // Any OOM kill in the cgroup, whichever task it hit: kernel memory (pipe or socket buffers)
    // is charged to the cgroup but to no task's RSS, so the OOM killer may pick the reaper, and
    // then there is no program status to report. (The reaper is not shielded with a negative
    // oom_score_adj: the program would inherit the shield, and its own /proc files are not
    // writable before execve, while it shares the reaper's non-dumpable memory.)
    if v.oom_killed {
        v.message = Some("memory limit exceeded".into());
        return Status::ML;
    }
    if program_status(o).is_none() {
        v.message = Some("the sandbox ended without reporting the program's status".into());
        return Status::XX;
    }
    // From here on the program's own status decides, and a signal is only what it is: TO, OL
    // and SV come from what the supervisor measured (above), never from a signal the program
    // can raise at itself.
    let l = &settings.limits;
    match (v.exit_code, v.signal) {
        (Some(0), _) => Status::OK,
        (Some(_), _) => Status::RE,
        // RLIMIT_CPU (the per-process backstop of --time-limit) sends SIGXCPU only once the
        // process used at least the limit, which the measured CPU time then shows.
        (_, Some(sig))
            if sig == libc::SIGXCPU
                && l.cpu_time_s.is_some_and(|t| {
                    let reached = if settings.cpu_time_by_rlimit {
                        t * RLIMIT_CPU_SLACK
                    } else {
                        t
                    };
                    v.cpu_time_s >= reached
                }) =>
        {
            v.message = Some("CPU-time limit exceeded".into());
            Status::TO
        }
        (_, Some(sig)) => {
            v.message = Some(format!(
                "killed by {}{}",
                signal_name(sig),
                signal_hint(sig, l)
            ));
            Status::SG
        }
        (None, None) => Status::XX,
    }
}

/// Exec-time integrity: a task the exec gate killed ran unverified code, and a refused
/// code-injection syscall was an attempt to; either is a violation, whatever the program's own
/// exit looked like.
fn integrity_rules(settings: &Settings, v: &mut Verdict) {
    if v.events.count(EventKind::ExecDenied) > 0 {
        v.status = Status::SV;
        v.message = Some("security violation: an unverified file was executed or mapped as code (the BPF exec gate killed the task)".into());
        return;
    }
    if !settings.integrity {
        return;
    }
    let denied = v.events.denied_syscalls.iter().map(String::as_str);
    if let Some(call) = crate::layers::integrity::code_injection_attempt(denied) {
        v.message = Some(format!("security violation: {call} refused: an attempt to run code that is in no verified file (writable alias of executable memory, or a write into code)"));
        v.status = Status::SV;
    }
}

/// What a signal may have meant, for the verdict's message.
fn signal_hint(sig: i32, l: &AppliedLimits) -> String {
    match sig {
        libc::SIGXFSZ => match l.file_size_bytes {
            Some(bytes) => format!(
                " (a write past the file-size limit of {bytes} bytes, or the program's own signal)"
            ),
            None => String::new(),
        },
        libc::SIGSYS => {
            " (a seccomp kill: a 32-bit system call or a filter the program installed, or the program's own signal)".into()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use watertight_sys::process::Usage;

    use super::*;

    /// A raw wait status: exited with `code`.
    fn exited(code: i32) -> i32 {
        code << 8
    }

    /// A raw wait status: killed by `sig`.
    fn killed(sig: i32) -> i32 {
        sig
    }

    fn ran(status: i32) -> Outcome {
        Outcome {
            reaped: Some(Reaped {
                pid: 4242,
                status: 0,
                usage: Usage::default(),
            }),
            reports: vec![Report::Exited { status }],
            wall: Duration::from_millis(20),
            ..Outcome::default()
        }
    }

    fn settings() -> Settings {
        Settings {
            limits: AppliedLimits {
                memory_bytes: Some(64 << 20),
                cpu_time_s: Some(1.0),
                wall_time_s: Some(5.0),
                output_bytes: Some(1000),
                file_size_bytes: Some(4096),
                ..AppliedLimits::default()
            },
            max_violations: 3,
            integrity: false,
            sandbox_id: "wt-0-1".into(),
            command: "./prog".into(),
            cpu_time_by_rlimit: false,
        }
    }

    #[test]
    fn rootless_rlimit_cpu_at_the_limit_is_a_time_limit_even_a_tick_early() {
        // RLIMIT_CPU 1 s (tick clock) fired while rusage measured 0.978 s.
        let o = Outcome {
            cgroup_cpu_ns: Some(978_000_000),
            ..ran(killed(libc::SIGXCPU))
        };
        let by_rlimit = Settings {
            cpu_time_by_rlimit: true,
            ..settings()
        };
        let v = decide(&o, &by_rlimit, EventSummary::default());
        assert_eq!(v.status, Status::TO, "{v:?}");
        // Far below the limit it is the program's own signal, as with root.
        let early = Outcome {
            cgroup_cpu_ns: Some(100_000_000),
            ..ran(killed(libc::SIGXCPU))
        };
        assert_eq!(
            decide(&early, &by_rlimit, EventSummary::default()).status,
            Status::SG
        );
        assert_eq!(
            decide(&o, &settings(), EventSummary::default()).status,
            Status::SG
        );
    }

    fn events(kinds: &[(EventKind, u64)], denied: &[&str]) -> EventSummary {
        EventSummary {
            total: kinds.iter().map(|(_, n)| n).sum(),
            by_kind: kinds.iter().copied().collect::<BTreeMap<_, _>>(),
            denied_syscalls: denied.iter().map(|s| s.to_string()).collect(),
            ..EventSummary::default()
        }
    }

    struct Case {
        name: &'static str,
        outcome: Outcome,
        settings: Settings,
        events: EventSummary,
        status: Status,
        /// watertight's exit code, `--exit-codes program` and `--exit-codes verdict`.
        codes: (u8, u8),
        /// A part of the message (empty: no message).
        message: &'static str,
        stage: Option<Stage>,
    }

    fn case(name: &'static str, outcome: Outcome, status: Status, codes: (u8, u8)) -> Case {
        Case {
            name,
            outcome,
            settings: settings(),
            events: EventSummary::default(),
            status,
            codes,
            message: "",
            stage: None,
        }
    }

    impl Case {
        fn says(mut self, message: &'static str) -> Case {
            self.message = message;
            self
        }
        fn with_events(mut self, events: EventSummary) -> Case {
            self.events = events;
            self
        }
        fn with_settings(mut self, f: impl FnOnce(&mut Settings)) -> Case {
            f(&mut self.settings);
            self
        }
        fn at_stage(mut self, stage: Stage) -> Case {
            self.stage = Some(stage);
            self
        }
    }

    fn cases() -> Vec<Case> {
        let oom = Outcome {
            stats: Some(Stats {
                oom_kills: Some(1),
                ..Stats::default()
            }),
            ..ran(killed(libc::SIGKILL))
        };
        let oom_reaper = Outcome {
            reports: vec![],
            ..oom_of(ran(0))
        };
        let cpu_over = Outcome {
            cgroup_cpu_ns: Some(1_200_000_000),
            ..ran(killed(libc::SIGXCPU))
        };
        let cpu_under = Outcome {
            cgroup_cpu_ns: Some(100_000_000),
            ..ran(killed(libc::SIGXCPU))
        };
        let stopped = |stop: Stop, status: i32| Outcome {
            stop: Some(stop),
            ..ran(status)
        };
        let setup_failed = Outcome {
            reports: vec![Report::SetupFailed(SetupError {
                stage: Stage::Seccomp,
                message: "seccomp(SET_MODE_FILTER): EINVAL".into(),
            })],
            stop: Some(Stop::Interrupted(libc::SIGTERM)),
            ..Outcome::default()
        };
        let exec_failed = |errno| Outcome {
            reports: vec![Report::ExecFailed { errno }],
            ..Outcome::default()
        };
        let forensic = Outcome {
            evidence: Some(Ok(PathBuf::from("/var/lib/watertight/evidence/wt-0-1.tar"))),
            ..stopped(Stop::Violation, killed(libc::SIGKILL))
        };
        let gate = events(&[(EventKind::ExecDenied, 1)], &[]);
        let injection = events(&[(EventKind::SyscallDenied, 2)], &["mount", "mremap"]);
        let integrity = |s: &mut Settings| s.integrity = true;
        vec![
            case("exit 0", ran(exited(0)), Status::OK, (0, 0)),
            case("exit 3", ran(exited(3)), Status::RE, (3, 1)),
            case("OOM kill by SIGKILL", oom, Status::ML, (137, 4)).says("memory limit"),
            case("OOM killed the reaper", oom_reaper, Status::ML, (137, 4)),
            case("SIGKILL without OOM", ran(killed(9)), Status::SG, (137, 2)).says("SIGKILL"),
            case(
                "SIGSYS under deny",
                ran(killed(libc::SIGSYS)),
                Status::SG,
                (159, 2),
            )
            .says("a seccomp kill"),
            case("self-raised SIGXCPU", cpu_under, Status::SG, (152, 2)).says("SIGXCPU"),
            case("SIGXCPU past the CPU limit", cpu_over, Status::TO, (124, 3))
                .says("CPU-time limit"),
            case("SIGXFSZ", ran(killed(libc::SIGXFSZ)), Status::SG, (153, 2))
                .says("file-size limit of 4096 bytes"),
            case(
                "CPU time measured over the limit",
                stopped(Stop::CpuTime, killed(9)),
                Status::TO,
                (124, 3),
            )
            .says("CPU-time limit"),
            case(
                "wall time",
                stopped(Stop::WallTime, killed(9)),
                Status::TO,
                (124, 3),
            )
            .says("wall-time limit"),
            case(
                "output limit racing a clean exit",
                stopped(Stop::Output, exited(0)),
                Status::OL,
                (153, 5),
            )
            .says("output limit"),
            case(
                "violation under kill",
                stopped(Stop::Violation, killed(9)),
                Status::SV,
                (159, 6),
            )
            .says("forbidden system call"),
            case("violation under forensic", forensic, Status::SV, (159, 6))
                .says("evidence in /var/lib/watertight/evidence/wt-0-1.tar"),
            case(
                "max_violations",
                stopped(Stop::TooManyViolations, killed(9)),
                Status::SV,
                (159, 6),
            )
            .says("3 forbidden system calls (seccomp.max_violations)"),
            case(
                "exec gate kill over exit 0",
                ran(exited(0)),
                Status::SV,
                (159, 6),
            )
            .with_events(gate.clone())
            .says("BPF exec gate"),
            case(
                "exec gate kill over SIGKILL",
                ran(killed(9)),
                Status::SV,
                (159, 6),
            )
            .with_events(gate.clone()),
            case(
                "exec gate does not hide a time limit",
                stopped(Stop::WallTime, killed(9)),
                Status::TO,
                (124, 3),
            )
            .with_events(gate),
            case(
                "code injection under integrity",
                ran(exited(1)),
                Status::SV,
                (159, 6),
            )
            .with_events(injection.clone())
            .with_settings(integrity)
            .says("mremap refused"),
            case(
                "code injection name without integrity",
                ran(exited(1)),
                Status::RE,
                (1, 1),
            )
            .with_events(injection),
            case(
                "interrupted",
                stopped(Stop::Interrupted(libc::SIGINT), killed(9)),
                Status::XX,
                (125, 125),
            )
            .says("interrupted by SIGINT"),
            case(
                "setup failure after a signal",
                setup_failed,
                Status::XX,
                (125, 125),
            )
            .says("sandbox setup failed at seccomp: seccomp(SET_MODE_FILTER): EINVAL")
            .at_stage(Stage::Seccomp),
            case(
                "command not found",
                exec_failed(libc::ENOENT),
                Status::XX,
                (127, 127),
            )
            .says("cannot execute \"./prog\": No such file"),
            case(
                "command not executable",
                exec_failed(libc::EACCES),
                Status::XX,
                (126, 126),
            ),
            case("no status", Outcome::default(), Status::XX, (125, 125))
                .says("without reporting the program's status"),
        ]
    }

    fn oom_of(o: Outcome) -> Outcome {
        Outcome {
            stats: Some(Stats {
                oom_kills: Some(1),
                ..Stats::default()
            }),
            ..o
        }
    }

    #[test]
    fn verdict_table() {
        let mut failures = Vec::new();
        for c in cases() {
            let v = decide(&c.outcome, &c.settings, c.events.clone());
            let got = (
                v.status,
                (
                    v.exit_code_as(ExitCodes::Program),
                    v.exit_code_as(ExitCodes::Verdict),
                ),
                v.stage,
            );
            let message_ok = match (c.message, &v.message) {
                ("", _) => true,
                (part, Some(m)) => m.contains(part),
                (_, None) => false,
            };
            if got != (c.status, c.codes, c.stage) || !message_ok {
                failures.push(format!(
                    "{}: got {:?} {:?} {:?} {:?}; want {:?} {:?} {:?} {:?}",
                    c.name,
                    v.status,
                    got.1,
                    v.stage,
                    v.message,
                    c.status,
                    c.codes,
                    c.stage,
                    c.message
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_json_carries_stage_evidence_and_event_counts_by_name() {
        let c = cases()
            .into_iter()
            .find(|c| c.name == "setup failure after a signal")
            .unwrap();
        let v = decide(
            &c.outcome,
            &c.settings,
            events(&[(EventKind::ExecDenied, 2)], &["mmap"]),
        );
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["status"], "XX");
        assert_eq!(json["stage"], "seccomp");
        assert_eq!(json["events"]["by_kind"]["exec_denied"], 2);
        assert!(json["events"].get("denied_syscalls").is_none(), "{json}");
        let ok = decide(&ran(exited(0)), &settings(), EventSummary::default());
        let json = serde_json::to_value(&ok).unwrap();
        assert!(
            json.get("stage").is_none() && json.get("evidence").is_none(),
            "{json}"
        );

        let forensic = cases()
            .into_iter()
            .find(|c| c.name == "violation under forensic")
            .unwrap();
        let v = decide(
            &forensic.outcome,
            &forensic.settings,
            EventSummary::default(),
        );
        assert_eq!(
            v.evidence.as_deref(),
            Some("/var/lib/watertight/evidence/wt-0-1.tar")
        );
    }

    #[test]
    fn measured_numbers_come_from_the_cgroup_and_rusage() {
        let mut o = ran(exited(0));
        o.reaped.as_mut().unwrap().usage = Usage {
            user_us: 300_000,
            system_us: 100_000,
            max_rss_kb: 2048,
        };
        o.cgroup_cpu_ns = Some(250_000_000);
        o.output_bytes = 17;
        let v = decide(&o, &settings(), EventSummary::default());
        assert!((v.cpu_time_s - 0.4).abs() < 1e-9, "the larger of the two");
        assert_eq!((v.max_rss_kb, v.output_bytes), (2048, 17));
        assert_eq!(v.limits, settings().limits);
        assert_eq!(v.sandbox_id, "wt-0-1");
    }
}
