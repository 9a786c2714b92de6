//! Step workers: one long-lived `watertight batch worker` process per `--parallel` slot runs the
//! batch's namespace-tier steps one after another, each through the same code as `watertight
//! run` (`run::verdict_of`, from `run`'s own flags), so a step is isolated exactly as `run`
//! isolates it. What a worker saves is the start of a process per step (a 19 MiB static binary:
//! ~1 ms of page faults and relocations, and its exit) and re-reading what does not change
//! between steps. Nothing of a sandbox outlives its step: each step clones fresh namespaces,
//! makes and removes its own cgroup, takes and frees a slot, exactly as `run` does.
//!
//! Protocol (stdin/stdout of the worker, one JSON line each way per step): a [`Request`] holding
//! `watertight run`'s arguments, answered by a [`Response`] holding the verdict `run --result`
//! writes, or the one-line error `run` would print (exit 125). The worker's own fd 1 is pointed
//! at its stderr first, so nothing printed on the way can corrupt an answer.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::Context;
use clap::Parser;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use watertight_sandbox::profile::Isolation;

use crate::commands::run;

/// One step: `watertight run`'s arguments (without `run` itself).
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The arguments: each a JSON string, or an array of bytes when it is not UTF-8 (a path
    /// need not be).
    #[serde(with = "os_strings")]
    pub run: Vec<OsString>,
}

/// `Vec<OsString>` as JSON: text as strings, anything else as its bytes.
mod os_strings {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Arg {
        Text(String),
        Bytes(Vec<u8>),
    }

    pub fn serialize<S: Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|a| match a.to_str() {
                Some(t) => Arg::Text(t.to_string()),
                None => Arg::Bytes(a.as_bytes().to_vec()),
            })
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OsString>, D::Error> {
        Ok(Vec::<Arg>::deserialize(d)?
            .into_iter()
            .map(|a| match a {
                Arg::Text(t) => t.into(),
                Arg::Bytes(b) => OsString::from_vec(b),
            })
            .collect())
    }
}

/// The answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The verdict, as `run --result` writes it.
    Verdict(Value),
    /// watertight's own failure before the program could run (what `run` prints, exit 125).
    Error(String),
}

/// `run`'s flags alone (as main.rs parses them for `watertight run`).
#[derive(Parser)]
#[command(name = "watertight run")]
struct StepCli {
    #[command(flatten)]
    args: run::Args,
}

/// `watertight batch worker --parent PID`: serves requests on stdin until it closes. It dies
/// with the batch (SIGTERM when the thread that started it ends, which stops a running step
/// the way `run` stops on SIGTERM: the sandbox killed, its cgroup and slot cleaned up).
pub fn serve(parent: u32) -> anyhow::Result<u8> {
    // The batch blocks SIGINT and SIGTERM in its threads, and a child inherits that mask:
    // unblocked here, SIGTERM (the parent-death signal) ends the worker between steps, and
    // during a step the supervisor blocks and handles it as `run` does.
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .context("cannot reset the step worker's signal mask")?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("cannot tie the step worker to its batch (PR_SET_PDEATHSIG)")?;
    if nix::unistd::getppid().as_raw() as u32 != parent {
        anyhow::bail!("the batch that started this step worker is gone");
    }
    // Answers go to the original stdout only; fd 1 becomes the worker's stderr.
    let answers: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot keep the step worker's answer pipe")?;
    nix::unistd::dup2_stdout(std::io::stderr().as_fd())
        .context("cannot point the step worker's stdout at its stderr")?;
    let mut answers = std::io::BufWriter::new(std::fs::File::from(answers));
    // Each step's network namespace made ahead, between steps (namespaces.rs).
    watertight_sandbox::layers::namespaces::prepare_networks_ahead();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read a step request")?;
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => step(req),
            Err(e) => Response::Error(format!("a step request that is not one: {e}")),
        };
        serde_json::to_writer(&mut answers, &response)?;
        answers.write_all(b"\n")?;
        answers.flush().context("cannot answer the batch")?;
        // The next step's network namespace, made while the batch records this job and sets up
        // the next one; started while a step runs, the helper took CPU from that step.
        watertight_sandbox::layers::namespaces::prepare_next_network();
    }
    watertight_sandbox::layers::namespaces::stop_preparing_networks();
    Ok(0)
}

fn step(req: Request) -> Response {
    let argv = std::iter::once(OsString::from("watertight run")).chain(req.run);
    let cli = match StepCli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            return Response::Error(text.lines().next().unwrap_or("bad arguments").to_string());
        }
    };
    let result = run::effective_profile(&cli.args).and_then(|profile| {
        // The other tiers start helpers of their own (runsc, QEMU) and change the process's
        // mount namespace: the batch runs their steps as `watertight run` processes.
        anyhow::ensure!(
            profile.isolation == Isolation::Namespaces,
            "a step worker runs only the namespace tier, not {}",
            profile.isolation.as_str()
        );
        run::verdict_of(&cli.args, profile)
    });
    match result.and_then(|v| Ok(serde_json::to_value(v)?)) {
        Ok(v) => Response::Verdict(v),
        Err(e) => Response::Error(crate::one_line(&e)),
    }
}

/// The batch's end of one worker.
pub struct Worker {
    child: Child,
    /// None once closed (on drop).
    requests: Option<ChildStdin>,
    answers: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts `exe batch worker` (own process group: a terminal's Ctrl-C reaches the batch,
    /// which drains, not the steps).
    pub fn start(exe: &Path) -> anyhow::Result<Worker> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(exe)
            .args(["batch", "worker", "--parent"])
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .with_context(|| format!("{}: cannot start a step worker", exe.display()))?;
        let (Some(requests), Some(answers)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("a step worker without pipes");
        };
        Ok(Worker {
            child,
            requests: Some(requests),
            answers: BufReader::new(answers),
        })
    }

    /// Runs one step; an error means the worker is gone (the caller starts another).
    pub fn step(&mut self, run_args: Vec<OsString>) -> anyhow::Result<Response> {
        let mut line = serde_json::to_vec(&Request { run: run_args })?;
        line.push(b'\n');
        let sent = match self.requests.as_mut() {
            Some(r) => r.write_all(&line).and_then(|()| r.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        let mut answer = String::new();
        let read = sent.and_then(|()| self.answers.read_line(&mut answer));
        match read {
            Ok(n) if n > 0 => serde_json::from_str(&answer)
                .with_context(|| format!("a step worker's answer that is not one: {answer:?}")),
            _ => {
                let status = self.child.wait().map(|s| s.to_string());
                anyhow::bail!(
                    "the step worker ended during the step ({})",
                    status.unwrap_or_else(|e| e.to_string())
                )
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing its stdin ends it after its step; then reap it.
        drop(self.requests.take());
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn arguments_are_strings_and_bytes_only_when_not_utf8() {
        let req = Request {
            run: vec!["--box".into(), OsString::from_vec(b"/w/\xff".to_vec())],
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(text, r#"{"run":["--box",[47,119,47,255]]}"#);
        let back: Request = serde_json::from_str(&text).unwrap();
        assert_eq!(back.run, req.run);
    }

    #[test]
    fn a_bad_request_is_answered_with_one_line() {
        match step(Request {
            run: vec!["--no-such-flag".into(), "--".into(), "true".into()],
        }) {
            Response::Error(e) => assert!(e.contains("--no-such-flag") && !e.contains('\n'), "{e}"),
            r => panic!("{r:?}"),
        }
        let answer = serde_json::to_string(&Response::Error("x".into())).unwrap();
        assert_eq!(answer, r#"{"error":"x"}"#);
    }
}
