//! Runs the `nft` program: applies scripts as one transaction and reads tables back as JSON.
//!
//! `nft` runs as a child process, so it acts in the network namespace of the calling thread.

use crate::error::{Error, Result};
use std::io::Write;
use std::process::{Command, Stdio};

fn nft() -> Command {
    let mut cmd = Command::new("nft");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn spawn_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NftMissing
    } else {
        Error::io("cannot run nft", e)
    }
}

fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // nft prints "file:line:col: Error: ..." followed by the offending line and a caret line;
    // keep the error lines and the text they point at.
    lines
        .iter()
        .filter(|l| !l.chars().all(|c| c == '^' || c == '~' || c == ' '))
        .take(4)
        .cloned()
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Applies `script` with `nft -f -`. nft parses the whole script and commits it in one kernel
/// transaction, so either all of it takes effect or none.
pub fn apply(script: &str, action: &str) -> Result<()> {
    let mut child = nft().args(["-f", "-"]).spawn().map_err(spawn_error)?;
    {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| Error::io("cannot write the ruleset to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("cannot wait for nft", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nft {
            action: action.to_string(),
            stderr: one_line(&out.stderr),
        })
    }
}

/// `nft -j list table bridge <table>`; `None` when the table does not exist.
pub fn list_table_json(table: &str) -> Result<Option<serde_json::Value>> {
    let out = nft()
        .args(["-j", "list", "table", "bridge", table])
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(Error::Nft {
            action: format!("list table bridge {table}"),
            stderr: one_line(&out.stderr),
        });
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| Error::RulesetJson(e.to_string()))
}

/// `nft --version`'s line, e.g. `nftables v1.0.6 (Lester Gooch #5)`.
pub fn version() -> Result<String> {
    let out = nft()
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(Error::Nft {
            action: "print its version".into(),
            stderr: one_line(&out.stderr),
        })
    }
}

/// Whether `nft` is installed and can talk to the kernel here.
pub fn probe() -> Result<()> {
    let out = nft()
        .args(["list", "tables", "bridge"])
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nft {
            action: "list tables".into(),
            stderr: one_line(&out.stderr),
        })
    }
}
