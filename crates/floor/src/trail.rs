//! The audit trail: one JSON Lines file per container, appended to in place (never replaced),
//! bounded in size. The runtime's monitor writes a record per refused violation-class call.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use crate::config::AuditTrail;
use crate::error::Error;

/// Room kept for the final `truncated` line, so the file never exceeds its bound.
const TRUNCATION_RESERVE: u64 = 128;

/// An open audit trail of one container.
#[derive(Debug)]
pub struct TrailWriter {
    file: File,
    path: PathBuf,
    written: u64,
    max_bytes: u64,
    truncated: bool,
}

impl AuditTrail {
    /// Opens (creating it and its directory, root's only) the trail of `container_id` for
    /// appending. What is already in it counts toward the bound: a container restarted under
    /// the same id continues its file. A symlink at the path is refused.
    pub fn open(&self, container_id: &str) -> Result<TrailWriter, Error> {
        crate::publish::check_id(container_id)?;
        let path = self.path_for(container_id);
        let failed = |source| Error::AuditTrail {
            path: path.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(failed)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(failed)?;
        let written = file.metadata().map_err(failed)?.len();
        Ok(TrailWriter {
            file,
            path: path.clone(),
            written,
            max_bytes: self.max_bytes,
            // Records never pass the room below the reserve; only the final marker does.
            truncated: written > self.max_bytes.saturating_sub(TRUNCATION_RESERVE),
        })
    }
}

impl TrailWriter {
    /// Appends `record` as one line. Returns `false`, writing nothing, once the trail is full:
    /// the first record that does not fit is replaced by one `{"truncated":true,...}` line.
    pub fn record(&mut self, record: &impl serde::Serialize) -> Result<bool, Error> {
        if self.truncated {
            return Ok(false);
        }
        let mut line = serde_json::to_vec(record).map_err(|e| Error::AuditTrail {
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        line.push(b'\n');
        let room = self.max_bytes.saturating_sub(TRUNCATION_RESERVE);
        if self.written + line.len() as u64 > room {
            self.truncated = true;
            if self.written < self.max_bytes {
                let marker = format!("{{\"truncated\":true,\"max_bytes\":{}}}\n", self.max_bytes);
                self.append(marker.as_bytes())?;
            }
            return Ok(false);
        }
        self.append(&line)?;
        Ok(true)
    }

    /// Whether the trail has reached its bound.
    pub fn is_full(&self) -> bool {
        self.truncated
    }

    /// The trail's file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), Error> {
        // One write per line (O_APPEND): a reader sees whole lines.
        self.file
            .write_all(bytes)
            .map_err(|source| Error::AuditTrail {
                path: self.path.clone(),
                source,
            })?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail(dir: &std::path::Path, max_bytes: u64) -> AuditTrail {
        AuditTrail {
            dir: dir.join("trail"),
            max_bytes,
        }
    }

    #[test]
    fn records_are_lines_and_the_file_stays_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let t = trail(dir.path(), 4096);
        let mut w = t.open("c1").unwrap();
        let mut kept = 0;
        while w
            .record(&serde_json::json!({"syscall": "unshare", "n": kept}))
            .unwrap()
        {
            kept += 1;
        }
        assert!(w.is_full());
        assert!(!w.record(&serde_json::json!({"late": true})).unwrap());
        let text = std::fs::read_to_string(t.path_for("c1")).unwrap();
        assert!(text.len() as u64 <= 4096, "{}", text.len());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), kept + 1);
        assert_eq!(lines.last().unwrap()["truncated"], true);

        // Reopened (a restart under the same id): the bound counts what is there.
        let mut again = t.open("c1").unwrap();
        assert!(!again
            .record(&serde_json::json!({"syscall": "bpf"}))
            .unwrap());
        assert_eq!(std::fs::read_to_string(t.path_for("c1")).unwrap(), text);
    }

    #[test]
    fn a_symlink_in_place_of_the_trail_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = trail(dir.path(), 4096);
        std::fs::create_dir_all(&t.dir).unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, t.path_for("c2")).unwrap();
        let e = t.open("c2").unwrap_err();
        assert!(
            e.to_string().contains("cannot write the audit trail"),
            "{e}"
        );
        assert!(!target.exists());
        assert!(t.open("../escape").is_err());
    }
}
