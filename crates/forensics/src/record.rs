//! `capture.json`: what the capture saw, for `evidence show` and for people reading the bundle.
//! It is a bundle file like any other, so the manifest signature covers it.
//!
//! Strings that came from the sandbox (comm, cmdline, layer paths, link targets, skipped paths)
//! are in the lossless text form of `text::from_bytes`: `\\` is a backslash, `\xNN` a byte
//! that is not UTF-8.

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
    /// The evidence byte budget of this bundle (absent in bundles from before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_limit: Option<u64>,
    /// Bytes charged against it.
    #[serde(default)]
    pub evidence_used: u64,
    /// Set when the budget was reached: what did not fit first. The evidence is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub tasks: u64,
    pub layers: u64,
    pub total_before_seal: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// Files kept only in part (larger than the per-file cap or the budget left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<Unreadable>,
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
    /// Set when the evidence budget stopped this layer's archive: where, and that the rest of
    /// the layer was not walked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
}

/// Layer entries listed in `capture.json`; the rest are only counted.
pub const MAX_LISTED_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerEntry {
    pub path: String,
    /// file, hardlink (`link_target` is the first path of the same inode, archived as a tar link
    /// entry), dir, symlink, fifo, char, block, whiteout (an overlay deletion: char device 0:0)
    pub kind: String,
    /// Logical size (for a hard link: of the inode).
    pub size: u64,
    /// Data bytes archived, when that differs from `size`: a sparse file's data extents (stored
    /// as a GNU sparse tar entry, holes not written) or a file cut short by the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
    /// The file has holes; the archive keeps only its data extents.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    /// Only part of the data fit in the evidence budget.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}
