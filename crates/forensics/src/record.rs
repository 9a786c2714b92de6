//! `capture.json`: what the capture saw, for `evidence show` and for people reading the bundle.
//! It is a bundle file like any other, so the manifest signature covers it.
//!
//! Strings that came from the sandbox (comm, cmdline, layer paths, link targets, skipped paths)
//! are in the lossless text form of `text::from_bytes`: `\\` is a backslash, `\xNN` a byte
//! that is not UTF-8.

use serde::{Deserialize, Serialize};

/// The record's file name in a bundle.
pub const CAPTURE_FILE: &str = "capture.json";
/// The record format this build writes.
pub const FORMAT: &str = "watertight-evidence/1";

/// `capture.json`: what was captured from each task and layer, and how long it took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureRecord {
    /// The format tag, [`FORMAT`].
    pub format: String,
    /// The sandbox captured.
    pub sandbox_id: String,
    /// RFC 3339 UTC time the capture started.
    pub captured_at: String,
    /// The host's kernel release.
    pub host_kernel: String,
    /// Every task of the sandbox, as frozen.
    pub tasks: Vec<TaskRecord>,
    /// The pid whose /proc/<pid>/net was saved under `net/`, if any task's was readable.
    pub net_from_pid: Option<i32>,
    /// The files saved from that /proc/<pid>/net.
    pub net_files: Vec<String>,
    /// Every writable layer.
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

/// Milliseconds spent on each phase of a capture.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Reading the tasks' /proc files.
    pub tasks: u64,
    /// Archiving the writable layers.
    pub layers: u64,
    /// Everything before the manifest was written and signed.
    pub total_before_seal: u64,
}

/// One task of the sandbox, as /proc showed it while frozen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Host pid.
    pub pid: i32,
    /// Host pid of the parent, when readable.
    pub ppid: Option<i32>,
    /// The command name.
    pub comm: String,
    /// The scheduler state from /proc/<pid>/status.
    pub state: String,
    /// Real, effective, saved and filesystem uid as the host sees them.
    pub uids: String,
    /// The arguments, lossily decoded.
    pub cmdline: Vec<String>,
    /// Files saved as `tasks/<pid>/<name>` members of `tasks.tar`, with their hashes (so
    /// `verify` can name the member that was altered).
    pub files: Vec<TaskFile>,
    /// /proc files that could not be read, and why.
    pub unreadable: Vec<Unreadable>,
    /// Files kept only in part (larger than the per-file cap or the budget left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<Unreadable>,
}

/// One /proc file saved for a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFile {
    /// The file name under /proc/<pid>/.
    pub name: String,
    /// Bytes saved.
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Something that was not captured, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unreadable {
    /// The file or entry.
    pub what: String,
    /// Why.
    pub error: String,
}

/// One writable layer, archived as `layers/<name>.tar`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The layer's name, e.g. `tmp`.
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

/// One entry of a layer's archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerEntry {
    /// Relative to the layer's root.
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
    /// Permission bits.
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// A symlink's target, or a hard link's first path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}
