//! `capture.json`: what the capture saw, for `evidence show` and for people reading the bundle.
//! It is a bundle file like any other, so the manifest signature covers it.

use serde::{Deserialize, Serialize};

pub const CAPTURE_FILE: &str = "capture.json";
pub const FORMAT: &str = "watertight-evidence/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureRecord {
    pub format: String,
    pub sandbox_id: String,
    /// RFC 3339 UTC time the capture started.
    pub captured_at: String,
    pub host_kernel: String,
    pub tasks: Vec<TaskRecord>,
    /// The pid whose /proc/<pid>/net was saved under `net/`, if any task's was readable.
    pub net_from_pid: Option<i32>,
    pub net_files: Vec<String>,
    pub layers: Vec<LayerRecord>,
    /// Milliseconds spent on each phase before the manifest was written.
    pub timings_ms: Timings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub tasks: u64,
    pub layers: u64,
    pub total_before_seal: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub pid: i32,
    pub ppid: Option<i32>,
    pub comm: String,
    pub state: String,
    /// Real, effective, saved and filesystem uid as the host sees them.
    pub uids: String,
    pub cmdline: Vec<String>,
    /// Files saved as `tasks/<pid>/<name>` members of `tasks.tar`, with their hashes (so
    /// `verify` can name the member that was altered).
    pub files: Vec<TaskFile>,
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFile {
    pub name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unreadable {
    pub what: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub name: String,
    /// The host path it was read through (e.g. /proc/<pid>/root/tmp).
    pub source: String,
    /// Bundle path of the archive, absent when the layer could not be opened at all.
    pub archive: Option<String>,
    /// The first `MAX_LISTED_ENTRIES` entries in walk order (the archive holds them all).
    pub entries: Vec<LayerEntry>,
    /// Archived entries beyond the listing limit (a program can create millions of files).
    #[serde(default)]
    pub entries_not_listed: u64,
    /// Entries left out of the archive and why (sockets, unreadable files).
    pub skipped: Vec<Unreadable>,
}

/// Layer entries listed in `capture.json`; the rest are only counted.
pub const MAX_LISTED_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerEntry {
    pub path: String,
    /// file, dir, symlink, fifo, char, block
    pub kind: String,
    pub size: u64,
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}
