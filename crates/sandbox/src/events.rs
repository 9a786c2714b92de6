//! The audit trail: only high-signal events, one JSON object per line (`--events FILE`), also
//! kept in memory for the verdict's summary and the evidence bundle.
//!
//! Sources, chosen for precision: violation-class syscalls arrive through seccomp user
//! notification (the supervisor sees the syscall number, its arguments and the task, and so can
//! name them, which a SECCOMP_RET_ERRNO filter or the kernel's audit line alone cannot tie to a
//! sandbox reliably); memory, pids, time and output limits come from the cgroup's counters and
//! the supervisor's own accounting.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, IoContext};

pub struct EventLog {
    sandbox_id: String,
    file: Option<File>,
    lines: Vec<u8>,
    counts: std::collections::BTreeMap<String, u64>,
}

/// What the verdict says about the events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventSummary {
    pub total: u64,
    pub by_kind: std::collections::BTreeMap<String, u64>,
    /// The first violation-class syscall, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_violation: Option<Value>,
}

impl EventLog {
    pub fn new(sandbox_id: &str, path: Option<&Path>) -> Result<EventLog, Error> {
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ctx(|| format!("open event log {} (--events)", p.display()))?,
            ),
            None => None,
        };
        Ok(EventLog {
            sandbox_id: sandbox_id.into(),
            file,
            lines: Vec::new(),
            counts: Default::default(),
        })
    }

    /// Records one event of `kind` with extra `fields`; written through at once so a crash of the
    /// supervisor loses nothing already seen.
    pub fn emit(&mut self, kind: &str, fields: Value) -> Value {
        let mut obj = Map::new();
        obj.insert(
            "time".into(),
            json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
        );
        obj.insert("sandbox_id".into(), json!(self.sandbox_id));
        obj.insert("kind".into(), json!(kind));
        if let Value::Object(extra) = fields {
            obj.extend(extra);
        }
        let event = Value::Object(obj);
        let mut line = serde_json::to_vec(&event).expect("JSON values serialize");
        line.push(b'\n');
        if let Some(f) = &mut self.file {
            let _ = f.write_all(&line);
        }
        self.lines.extend_from_slice(&line);
        *self.counts.entry(kind.into()).or_default() += 1;
        event
    }

    pub fn bytes(&self) -> &[u8] {
        &self.lines
    }

    pub fn summary(&self) -> EventSummary {
        let first_violation = self
            .lines
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
            .find(|v| v["kind"] == "syscall_denied");
        EventSummary {
            total: self.counts.values().sum(),
            by_kind: self.counts.clone(),
            first_violation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_with_id_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut log = EventLog::new("wt-1", Some(&path)).unwrap();
        log.emit("syscall_denied", json!({"syscall": "mount"}));
        log.emit("memory_limit", json!({"oom_kills": 1}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["sandbox_id"], "wt-1");
        assert_eq!(lines[0]["syscall"], "mount");
        let s = log.summary();
        assert_eq!(s.total, 2);
        assert_eq!(s.first_violation.unwrap()["syscall"], "mount");
    }

    #[test]
    fn unwritable_log_is_named() {
        let e = EventLog::new("x", Some(Path::new("/no/such/dir/e.jsonl")))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("/no/such/dir/e.jsonl") && e.contains("--events"),
            "{e}"
        );
    }
}
