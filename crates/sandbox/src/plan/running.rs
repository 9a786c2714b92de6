//! The plan of a running sandbox, published for `watertight audit host`
//! (`watertight_model::RUNNING_SANDBOXES_DIR`): the auditor compares what it measures of the
//! sandbox's processes from /proc with what this says was planned, and reports the plan's
//! digest, so an operator can find sandboxes still running under a superseded policy.

use std::path::PathBuf;

use watertight_model::{RunningSandbox, RUNNING_SANDBOXES_DIR};

use super::Plan;
use crate::error::{Error, IoContext};

/// The published entry; removed when dropped (a supervisor killed before that leaves a stale
/// entry, which the next publish removes: its supervisor pid is gone).
pub struct Published {
    path: PathBuf,
}

impl Plan {
    /// Publishes this plan for the running sandbox `sandbox_id`.
    pub fn publish(&self, sandbox_id: &str) -> Result<Published, Error> {
        let dir = PathBuf::from(RUNNING_SANDBOXES_DIR);
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        remove_stale(&dir);
        let entry = RunningSandbox {
            sandbox_id: sandbox_id.into(),
            supervisor_pid: std::process::id(),
            plan_digest: self.digest().to_string(),
            workload: self.workload(),
        };
        let json = serde_json::to_vec_pretty(&entry)
            .map_err(|e| Error::Config(format!("encode the published plan: {e}")))?;
        // Root's only, and whole or absent for a reader (our own state file, so a rename).
        let path = dir.join(format!("{sandbox_id}.json"));
        let partial = dir.join(format!(".{sandbox_id}.json.partial"));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)?;
            f.write_all(&json)?;
            std::fs::rename(&partial, &path)
        };
        write().ctx(|| format!("write {}", path.display()))?;
        Ok(Published { path })
    }
}

/// Removes entries whose supervisor no longer exists (named `wt-<slot>-<pid>.json`, or
/// `.wt-<slot>-<pid>.json.partial` when it died while writing one).
fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .map(|n| n.trim_start_matches('.').trim_end_matches(".partial"))
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.rsplit('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_of_dead_supervisors_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let live = format!("wt-1-{}.json", std::process::id());
        // pid_max is at most 2^22: these supervisors cannot exist.
        for name in [
            live.as_str(),
            "wt-0-99999999.json",
            ".wt-2-99999998.json.partial",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"{}").unwrap();
        }
        remove_stale(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["notes.txt".to_string(), live]);
    }
}
