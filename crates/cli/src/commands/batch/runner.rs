//! One job: a fresh box, its files copied in, each step run as `watertight run` runs it (in the
//! slot's step worker, worker.rs, or as a `watertight run` process of this same binary; either
//! way each step's isolation is exactly `run`'s), stdout judged against `expected`, the box
//! removed afterwards.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use watertight_sandbox::profile::Isolation;

use super::jobs::{Job, Step};
use super::worker::{Response, Worker};

/// The output limit of a step without `output_limit`: also bounds its stdout file.
pub const DEFAULT_OUTPUT_LIMIT: &str = "64M";

/// One step's result.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepResult {
    /// The step's name.
    pub name: String,
    /// The run's verdict status (OK RE SG TO ML OL SV XX), or `skipped` after a failed step.
    pub status: String,
    /// AC or WA when the step had `expected` and ran OK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<String>,
    /// The program's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The signal that ended the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i64>,
    /// CPU seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    /// Wall seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<f64>,
    /// Peak RSS, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_kb: Option<u64>,
    /// Bytes written to stdout + stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// The verdict's message (XX, TO, OL, SV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The sandbox plan's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// With a box size: whether the box was full when the step ended (a write got ENOSPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_full: Option<bool>,
    /// The step ran without root (the run's verdict `rootless`); absent as root.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rootless: bool,
    /// Without root: the limits and layers not enforced as root enforces them (the run's
    /// verdict `unenforced`); absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unenforced: Vec<String>,
}

/// One job's result: one line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobResult {
    /// The job's id.
    pub id: String,
    /// Overall: CE, the first failed step's status, else AC / WA / OK.
    pub verdict: String,
    /// Per step, in order.
    pub steps: Vec<StepResult>,
    /// Set when the batch itself could not run the job (verdict XX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The tier the steps ran under when the job, --isolation or --isolation-policy chose one
    /// (absent: the profile's, namespaces by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
}

/// The overall verdict: a failed step named `compile` is CE; else the first non-OK status; else
/// WA if any step judged WA, AC if any judged AC, else OK.
pub fn overall(steps: &[StepResult]) -> String {
    if let Some(s) = steps
        .iter()
        .find(|s| s.status != "OK" && s.status != "skipped")
    {
        return if s.name == "compile" {
            "CE".into()
        } else {
            s.status.clone()
        };
    }
    if steps.iter().any(|s| s.judged.as_deref() == Some("WA")) {
        "WA".into()
    } else if steps.iter().any(|s| s.judged.as_deref() == Some("AC")) {
        "AC".into()
    } else {
        "OK".into()
    }
}

/// The judge rule: equal after removing trailing spaces, tabs and CRs of each line and trailing
/// empty lines.
pub fn same_output(got: &[u8], want: &[u8]) -> bool {
    fn norm(b: &[u8]) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = b
            .split(|&c| c == b'\n')
            .map(|l| {
                let end = l
                    .iter()
                    .rposition(|c| !matches!(c, b' ' | b'\t' | b'\r'))
                    .map_or(0, |i| i + 1);
                &l[..end]
            })
            .collect();
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
    norm(got) == norm(want)
}

/// How steps run: in a long-lived step worker per `--parallel` slot (worker.rs; the default),
/// or each as a `watertight run` process of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepRunner {
    /// A step worker per slot runs its namespace-tier steps (gVisor steps still start `run`).
    Worker,
    /// Every step a `watertight run` process.
    Exec,
}

/// One `--parallel` slot's way of running steps: this binary, and its worker once started.
pub struct Steps<'a> {
    exe: &'a Path,
    runner: StepRunner,
    worker: Option<Worker>,
}

impl<'a> Steps<'a> {
    /// Steps run by `exe` (this binary) the `runner` way; a worker starts with the first step.
    pub fn new(exe: &'a Path, runner: StepRunner) -> Steps<'a> {
        Steps {
            exe,
            runner,
            worker: None,
        }
    }

    /// The verdict of `watertight run ARGS` (its `--result` JSON), or why there is none.
    fn verdict(
        &mut self,
        args: Vec<OsString>,
        isolation: Option<Isolation>,
        result: &Path,
    ) -> Result<Value, String> {
        let in_worker = self.runner == StepRunner::Worker
            && isolation.is_none_or(|i| i == Isolation::Namespaces);
        if !in_worker {
            return exec_run(self.exe, args, result);
        }
        let worker = match self.worker.as_mut() {
            Some(w) => w,
            None => self
                .worker
                .insert(Worker::start(self.exe).map_err(|e| format!("{e:#}"))?),
        };
        match worker.step(args) {
            Ok(Response::Verdict(v)) => Ok(v),
            Ok(Response::Error(e)) => Err(format!("no verdict: {e}")),
            Err(e) => {
                self.worker = None; // gone: the next step starts another
                Err(format!("no verdict: {e:#}"))
            }
        }
    }
}

/// One step as a `watertight run` process: its verdict from `--result FILE`.
fn exec_run(exe: &Path, mut args: Vec<OsString>, result: &Path) -> Result<Value, String> {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(
        at..at,
        [
            "--result".into(),
            result.as_os_str().to_owned(),
            "--exit-codes".into(),
            "verdict".into(),
        ],
    );
    // Own process group: a terminal's Ctrl-C reaches the batch, which drains, not the sandboxes.
    let output = Command::new(exe)
        .arg("run")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .output()
        .map_err(|e| format!("{}: cannot start `watertight run`: {e}", exe.display()))?;
    std::fs::read(result)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            let msg = String::from_utf8_lossy(&output.stderr);
            format!("no verdict ({}): {}", output.status, msg.trim())
        })
}

/// Runs one job in `work` (a private directory of the batch's) with `steps`.
pub fn run_job(steps: &mut Steps<'_>, work: &Path, job: &Job) -> JobResult {
    let dir = work.join(format!("job-{}", job.index));
    let result = run_in(steps, &dir, job);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(steps) => JobResult {
            id: job.id.clone(),
            verdict: overall(&steps),
            steps,
            message: None,
            isolation: job.isolation.map(|i| i.as_str().to_string()),
        },
        Err(e) => JobResult {
            id: job.id.clone(),
            verdict: "XX".into(),
            steps: Vec::new(),
            message: Some(format!("{e:#}")),
            isolation: job.isolation.map(|i| i.as_str().to_string()),
        },
    }
}

fn run_in(steps: &mut Steps<'_>, dir: &Path, job: &Job) -> anyhow::Result<Vec<StepResult>> {
    use anyhow::Context;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("{}: cannot make the job's directory", dir.display()))?;
    let boxd = dir.join("box");
    std::fs::DirBuilder::new().mode(0o700).create(&boxd)?;
    for (name, src) in &job.files {
        std::fs::copy(src, boxd.join(name))
            .with_context(|| format!("files.{name}: cannot copy {}", src.display()))?;
    }
    let mut out = Vec::new();
    let mut failed = false;
    for (i, step) in job.steps.iter().enumerate() {
        if failed {
            out.push(StepResult {
                name: step.name.clone(),
                status: "skipped".into(),
                ..empty(step)
            });
            continue;
        }
        let r = run_step(steps, dir, &boxd, job, i, step)?;
        failed = r.status != "OK";
        out.push(r);
    }
    Ok(out)
}

fn empty(step: &Step) -> StepResult {
    StepResult {
        name: step.name.clone(),
        ..StepResult::default()
    }
}

/// `watertight run`'s arguments for one step (without `--result`, which only a step run as
/// its own process needs).
fn run_args(boxd: &Path, job: &Job, step: &Step, stdout: &Path, stderr: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["--box".into(), boxd.into()];
    if let Some(s) = &job.box_size {
        a.extend(["--box-size".into(), s.into()]);
    }
    if let Some(i) = job.isolation {
        a.extend(["--isolation".into(), i.as_str().into()]);
    }
    let stdin = step.stdin.as_deref().unwrap_or(Path::new("/dev/null"));
    a.extend(["--stdin".into(), stdin.into()]);
    a.extend([
        "--stdout".into(),
        stdout.into(),
        "--stderr".into(),
        stderr.into(),
    ]);
    if let Some(t) = step.time_limit {
        a.extend(["--time-limit".into(), t.to_string().into()]);
    }
    if let Some(t) = step.wall_time_limit {
        a.extend(["--wall-time-limit".into(), t.to_string().into()]);
    }
    if let Some(m) = &step.memory_limit {
        a.extend(["--memory-limit".into(), m.into()]);
    }
    let output_limit = step.output_limit.as_deref().unwrap_or(DEFAULT_OUTPUT_LIMIT);
    a.extend(["--output-limit".into(), output_limit.into(), "--".into()]);
    a.extend(step.argv.iter().map(OsString::from));
    a
}

fn run_step(
    steps: &mut Steps<'_>,
    dir: &Path,
    boxd: &Path,
    job: &Job,
    i: usize,
    step: &Step,
) -> anyhow::Result<StepResult> {
    let stdout = dir.join(format!("{i}.out"));
    let stderr = dir.join(format!("{i}.err"));
    let args = run_args(boxd, job, step, &stdout, &stderr);
    let mut r = empty(step);
    let v = match steps.verdict(args, job.isolation, &dir.join(format!("{i}.verdict.json"))) {
        Ok(v) => v,
        Err(message) => {
            r.status = "XX".into();
            r.message = Some(message);
            return Ok(r);
        }
    };
    r.status = v["status"].as_str().unwrap_or("XX").to_string();
    r.exit_code = v["exit_code"].as_i64();
    r.signal = v["signal"].as_i64();
    r.time = v["cpu_time_s"].as_f64();
    r.wall = v["wall_time_s"].as_f64();
    r.memory_kb = v["max_rss_kb"].as_u64();
    r.output_bytes = v["output_bytes"].as_u64();
    r.message = v["message"].as_str().map(str::to_string);
    r.plan_digest = v["plan_digest"].as_str().map(str::to_string);
    r.box_full = v["box_full"].as_bool();
    r.rootless = v["rootless"].as_bool().unwrap_or(false);
    r.unenforced = v["unenforced"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let (Some(expected), "OK") = (&step.expected, r.status.as_str()) {
        let want = std::fs::read(expected)?;
        let got = read_capped(&stdout, want.len() as u64 * 2 + 65536)?;
        r.judged = Some(if same_output(&got, &want) { "AC" } else { "WA" }.into());
    }
    Ok(r)
}

/// At most `cap` bytes of `path`, opened without following a symbolic link.
fn read_capped(path: &PathBuf, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let mut buf = Vec::new();
    f.take(cap).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, status: &str, judged: Option<&str>) -> StepResult {
        StepResult {
            name: name.into(),
            status: status.into(),
            judged: judged.map(Into::into),
            ..StepResult::default()
        }
    }

    #[test]
    fn overall_verdicts() {
        assert_eq!(
            overall(&[s("compile", "RE", None), s("t", "skipped", None)]),
            "CE"
        );
        assert_eq!(
            overall(&[
                s("compile", "OK", None),
                s("t1", "OK", Some("AC")),
                s("t2", "TO", None)
            ]),
            "TO"
        );
        assert_eq!(
            overall(&[s("t1", "OK", Some("AC")), s("t2", "OK", Some("WA"))]),
            "WA"
        );
        assert_eq!(
            overall(&[s("t1", "OK", Some("AC")), s("t2", "OK", None)]),
            "AC"
        );
        assert_eq!(overall(&[s("t1", "OK", None)]), "OK");
        assert_eq!(
            overall(&[s("t1", "ML", None), s("compile", "skipped", None)]),
            "ML"
        );
    }

    #[test]
    fn judge_ignores_trailing_whitespace_per_line_and_trailing_blank_lines() {
        assert!(same_output(b"1 2 \r\n3\t\n\n\n", b"1 2\n3"));
        assert!(same_output(b"", b"\n"));
        assert!(!same_output(b"1  2\n", b"1 2\n"));
        assert!(!same_output(b" 1\n", b"1\n"));
        assert!(!same_output(b"1\n\n2\n", b"1\n2\n"));
        assert!(!same_output(b"12", b"1\n2"));
    }
}
