//! The verdict of one run: what happened to the program, in the JSON an autograder reads
//! (`--result FILE`), and the exit code watertight itself returns.

use serde::Serialize;

/// Outcome classes, as isolate and contest judges name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
    pub cpu_time_s: Option<f64>,
    pub wall_time_s: Option<f64>,
    pub output_bytes: Option<u64>,
    pub open_files: Option<u64>,
    pub file_size_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_time_s: f64,
    pub wall_time_s: f64,
    pub max_rss_kb: u64,
    pub oom_killed: bool,
    pub output_bytes: u64,
    pub limits: AppliedLimits,
    /// Set for XX (and TO/OL/SV: which limit or rule): one line for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub sandbox_id: String,
    /// The digest of the plan (policy) the sandbox ran under (`plan::PlanDigest`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plan_digest: String,
    /// The audit trail's summary (the full log is `--events`).
    pub events: crate::events::EventSummary,
    /// The signed evidence bundle, after a forensic response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
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

impl Verdict {
    /// XX: 126/127 when the command could not be executed / was not found (as `env` and
    /// `timeout`), else 125.
    fn internal_error_code(&self) -> u8 {
        match self.exit_code {
            Some(c @ (126 | 127)) => c as u8,
            _ => 125,
        }
    }

    /// watertight's exit code under `mode`.
    pub fn exit_code_as(&self, mode: ExitCodes) -> u8 {
        match mode {
            ExitCodes::Program => self.exit_code(),
            ExitCodes::Verdict => match self.status {
                Status::OK => 0,
                Status::RE => 1,
                Status::SG => 2,
                Status::TO => 3,
                Status::ML => 4,
                Status::OL => 5,
                Status::SV => 6,
                Status::XX => self.internal_error_code(),
            },
        }
    }

    /// watertight's own exit code: the program's exit code when it exited; 128+N when signal N
    /// killed it; 124 for a time limit (as `timeout`); 137 for the memory limit (the OOM kill is
    /// SIGKILL); 153 for the output limit (128+SIGXFSZ); 159 for a security violation
    /// (128+SIGSYS); 125 when watertight itself failed; 126/127 when the command could not be
    /// executed / was not found (as `env` and `timeout`).
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Status::OK => 0,
            Status::RE => self.exit_code.unwrap_or(1).clamp(0, 255) as u8,
            Status::SG => (128 + self.signal.unwrap_or(0)).clamp(0, 255) as u8,
            Status::TO => 124,
            Status::ML => 137,
            Status::OL => 153,
            Status::SV => 159,
            Status::XX => self.internal_error_code(),
        }
    }
}
