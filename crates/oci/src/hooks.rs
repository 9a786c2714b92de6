//! OCI hooks: each runs with the container's state JSON on stdin, its own env and args, and a
//! timeout (killed when it passes).

use serde_json::Value;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// Runs every hook of `kind` (`prestart`, `createRuntime`, ...) in `hooks` (the config's
/// `hooks` object) in order; the first failure stops the list.
pub fn run(kind: &'static str, hooks: &Value, state: &Value) -> Result<(), Error> {
    let Some(list) = hooks.get(kind).and_then(Value::as_array) else {
        return Ok(());
    };
    let state_text = state.to_string();
    for (index, hook) in list.iter().enumerate() {
        let path = hook
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let fail = |reason: String| Error::Hook {
            kind,
            index,
            path: path.clone(),
            reason,
        };
        if !path.starts_with('/') {
            return Err(fail("path must be absolute".into()));
        }
        let args: Vec<String> = hook
            .get("args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut cmd = Command::new(&path);
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
        cmd.env_clear();
        for e in hook
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some((k, v)) = e.as_str().and_then(|e| e.split_once('=')) {
                cmd.env(k, v);
            }
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its stdin is not an error.
            let _ = stdin.write_all(state_text.as_bytes());
        }
        let timeout = hook
            .get("timeout")
            .and_then(Value::as_u64)
            .filter(|t| *t > 0)
            .map(Duration::from_secs);
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(fail(format!("wait: {e}"))),
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "timed out after {} s",
                    timeout.map(|t| t.as_secs()).unwrap_or(0)
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !status.success() {
            return Err(fail(format!("exited with {status}")));
        }
    }
    Ok(())
}
