//! The audit trail: only high-signal events, one JSON object per line (`--events FILE`), also
//! kept in memory for the verdict's summary and the evidence bundle.
//!
//! Sources, chosen for precision: violation-class syscalls arrive through seccomp user
//! notification (the supervisor sees the syscall number, its arguments and the task, and so can
//! name them, which a SECCOMP_RET_ERRNO filter or the kernel's audit line alone cannot tie to a
//! sandbox reliably); memory, pids, time and output limits come from the cgroup's counters and
//! the supervisor's own accounting.
//!
//! What a flood of events costs the host is bounded (the supervisor is root and no cgroup of the
//! sandbox is charged for its memory or its writes):
//! - repeats of one kind of event (one aggregation key: for `syscall_denied` the syscall and the
//!   action) are written in full only [`FULL_EVENTS_PER_KEY`] times, then counted; an
//!   `events_suppressed` event per key carries the exact count, written at most once every
//!   [`SUMMARY_INTERVAL`] while repeats go on and once more when the run ends;
//! - the in-memory copy holds at most [`MEMORY_LIMIT`] bytes, the file at most its limit
//!   (`--events-limit`), each ended by one `events_truncated` event; the counts stay exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, IoContext};

/// Events of one aggregation key written in full before repeats are only counted.
pub const FULL_EVENTS_PER_KEY: u64 = 10;
/// How often, at most, the counts of suppressed repeats are written while they go on.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes of events kept in memory (for the evidence bundle).
pub const MEMORY_LIMIT: u64 = 1 << 20;
/// The smallest allowed limit of the events file: room for a few events and the truncation one.
pub const MIN_FILE_LIMIT: u64 = 4 << 10;
/// Distinct aggregation keys tracked; a new key beyond them shares one key per kind
/// (`"other_keys": true`), so the table cannot grow with the sandbox's inventiveness.
const MAX_KEYS: usize = 1024;
/// Room kept free under each limit for the `events_truncated` event (about 200 bytes).
const TRUNCATION_RESERVE: u64 = 512;

/// The kinds of events a run records (the `kind` field of each line). Decisions read these
/// typed counts, never a kind's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A violation-class syscall reached the supervisor (seccomp user notification).
    SyscallDenied,
    /// `max_violations` reached in deny mode: the sandbox is killed.
    ViolationLimit,
    /// The BPF exec gate killed a task that executed or mapped an unverified file.
    ExecDenied,
    /// The cgroup OOM-killed a task.
    MemoryLimit,
    /// pids.max refused forks.
    PidsLimit,
    /// The wall-time or CPU-time limit ended the run.
    TimeLimit,
    /// The output limit ended the run.
    OutputLimit,
    /// A forensic response wrote its bundle.
    EvidenceCaptured,
    /// A forensic response could not write its bundle.
    EvidenceFailed,
    /// The bundle was cut at the evidence budget.
    EvidenceTruncated,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 10] = [
        EventKind::SyscallDenied,
        EventKind::ViolationLimit,
        EventKind::ExecDenied,
        EventKind::MemoryLimit,
        EventKind::PidsLimit,
        EventKind::TimeLimit,
        EventKind::OutputLimit,
        EventKind::EvidenceCaptured,
        EventKind::EvidenceFailed,
        EventKind::EvidenceTruncated,
    ];

    /// The name in the events file and the verdict's `by_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SyscallDenied => "syscall_denied",
            EventKind::ViolationLimit => "violation_limit",
            EventKind::ExecDenied => "exec_denied",
            EventKind::MemoryLimit => "memory_limit",
            EventKind::PidsLimit => "pids_limit",
            EventKind::TimeLimit => "time_limit",
            EventKind::OutputLimit => "output_limit",
            EventKind::EvidenceCaptured => "evidence_captured",
            EventKind::EvidenceFailed => "evidence_failed",
            EventKind::EvidenceTruncated => "evidence_truncated",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sandbox's audit trail: writes each event to the `--events` file and to memory within
/// their limits, aggregates repeats, and keeps exact counts for the verdict.
pub struct EventLog {
    sandbox_id: String,
    /// The digest of the plan the sandbox runs under, on every event (`plan::PlanDigest`).
    plan_digest: Option<String>,
    file: Option<Output<File>>,
    memory: Output<Vec<u8>>,
    counts: BTreeMap<EventKind, u64>,
    keys: BTreeMap<String, KeyState>,
    suppressed: u64,
    first_violation: Option<Value>,
    /// Every syscall refused as a violation, by name: exact whatever the key and memory limits
    /// (bounded by the kernel's syscall table), for decisions such as integrity's.
    denied_syscalls: BTreeSet<String>,
    /// When the counts of suppressed repeats were last written.
    last_summary: Instant,
    /// Some key has repeats not yet in an `events_suppressed` event.
    unreported: bool,
}

/// One place events go, with its byte limit.
struct Output<W> {
    sink: W,
    /// Bytes written by this run.
    written: u64,
    limit: u64,
    truncated: bool,
}

trait Sink {
    fn put(&mut self, line: &[u8]);
    fn name(&self) -> &'static str;
}

impl Sink for File {
    fn put(&mut self, line: &[u8]) {
        // A failed write (a closed pipe, a full disk) loses that line only; the run goes on and
        // the verdict's counts stay exact.
        let _ = self.write_all(line);
    }
    fn name(&self) -> &'static str {
        "file"
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, line: &[u8]) {
        self.extend_from_slice(line);
    }
    fn name(&self) -> &'static str {
        "memory"
    }
}

impl<W: Sink> Output<W> {
    fn new(sink: W, limit: u64) -> Output<W> {
        Output {
            sink,
            written: 0,
            limit,
            truncated: false,
        }
    }

    /// Writes `line`, or, the first time it would pass the limit, the truncation event instead;
    /// after that nothing.
    fn write(&mut self, line: &[u8], sandbox_id: &str) {
        if self.truncated {
            return;
        }
        let len = line.len() as u64;
        if self.written + len + TRUNCATION_RESERVE <= self.limit {
            self.sink.put(line);
            self.written += len;
            return;
        }
        self.truncated = true;
        let note = serialize(
            sandbox_id,
            None,
            "events_truncated",
            json!({
                "output": self.sink.name(),
                "limit_bytes": self.limit,
                "written_bytes": self.written,
                "message": "event limit reached: later events are not written here; the verdict's counts stay exact",
            }),
        )
        .1;
        self.sink.put(&note);
        self.written += note.len() as u64;
    }
}

/// Repeats of one aggregation key.
struct KeyState {
    /// `of_kind` and the key's own fields, as the `events_suppressed` event shows them.
    fields: Map<String, Value>,
    /// Events of this key so far, written or not.
    seen: u64,
    /// Of those, counted only.
    suppressed: u64,
    first_suppressed: Option<SystemTime>,
    last_suppressed: Option<SystemTime>,
    /// `suppressed` as of the last `events_suppressed` event of this key.
    reported: u64,
}

/// What the verdict says about the events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventSummary {
    /// Every event that happened, written in full or only counted.
    pub total: u64,
    /// Exact count of each kind of event, suppressed repeats included.
    pub by_kind: BTreeMap<EventKind, u64>,
    /// The first violation-class syscall, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_violation: Option<Value>,
    /// Events only counted (repeats past the first few of their kind: see `events_suppressed`).
    #[serde(skip_serializing_if = "is_zero")]
    pub suppressed: u64,
    /// The events file reached its limit (`events_truncated`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub file_truncated: bool,
    /// Every syscall refused as a violation, by name: exact whatever the key and memory limits
    /// (for decisions such as integrity's; not in the JSON, `first_violation` and the events
    /// file name them).
    #[serde(skip)]
    pub denied_syscalls: BTreeSet<String>,
}

impl EventSummary {
    /// Events of `kind` in this run, written in full or only counted.
    pub fn count(&self, kind: EventKind) -> u64 {
        self.by_kind.get(&kind).copied().unwrap_or(0)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn now_rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// One event as a JSON object and as its line.
fn serialize(
    sandbox_id: &str,
    plan_digest: Option<&str>,
    kind: &str,
    fields: Value,
) -> (Value, Vec<u8>) {
    let mut obj = Map::new();
    obj.insert("time".into(), json!(now_rfc3339(SystemTime::now())));
    obj.insert("sandbox_id".into(), json!(sandbox_id));
    if let Some(d) = plan_digest {
        obj.insert("plan_digest".into(), json!(d));
    }
    obj.insert("kind".into(), json!(kind));
    if let Value::Object(extra) = fields {
        obj.extend(extra);
    }
    let event = Value::Object(obj);
    let mut line = serde_json::to_vec(&event).expect("JSON values serialize");
    line.push(b'\n');
    (event, line)
}

impl EventLog {
    /// `path`: the `--events` file, opened for appending (it may be a pipe or /dev/stdout: it is
    /// written through, never replaced); this run writes at most `file_limit` bytes to it.
    pub fn new(sandbox_id: &str, path: Option<&Path>, file_limit: u64) -> Result<EventLog, Error> {
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
            plan_digest: None,
            file: file.map(|f| Output::new(f, file_limit.max(MIN_FILE_LIMIT))),
            memory: Output::new(Vec::new(), MEMORY_LIMIT),
            counts: Default::default(),
            keys: Default::default(),
            denied_syscalls: Default::default(),
            suppressed: 0,
            first_violation: None,
            last_summary: Instant::now(),
            unreported: false,
        })
    }

    /// Every event from now on names the plan the sandbox runs under, so an event log (and the
    /// evidence bundle that holds it) says which policy it came from.
    pub fn set_plan_digest(&mut self, digest: &str) {
        self.plan_digest = Some(digest.into());
    }

    /// Records one event of `kind` with extra `fields`, grouped with the earlier ones of its
    /// kind (for one-off events such as limits reached).
    pub fn emit(&mut self, kind: EventKind, fields: Value) -> Option<Value> {
        self.record(kind, Map::new(), || fields)
    }

    /// Records one event of `kind` whose repeats are grouped by `key` (field name to value, shown
    /// in the `events_suppressed` event). The first [`FULL_EVENTS_PER_KEY`] of a key are written
    /// in full with the key's fields and `fields()` (called only then: it may be costly) and
    /// returned; later ones are only counted. Written through at once, so a crash of the
    /// supervisor loses nothing already written.
    pub fn record(
        &mut self,
        kind: EventKind,
        key: Map<String, Value>,
        fields: impl FnOnce() -> Value,
    ) -> Option<Value> {
        // No allocation for a kind already counted: this runs once per call of a flood.
        *self.counts.entry(kind).or_insert(0) += 1;
        if kind == EventKind::SyscallDenied {
            if let Some(Value::String(name)) = key.get("syscall") {
                if !self.denied_syscalls.contains(name) {
                    self.denied_syscalls.insert(name.clone());
                }
            }
        }
        let mut id = String::with_capacity(64);
        id.push_str(kind.as_str());
        id.push('\0');
        id.push_str(&serde_json::to_string(&key).expect("JSON values serialize"));
        let (id, key) = if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(&id) {
            let mut other = Map::new();
            other.insert("other_keys".into(), json!(true));
            (format!("{kind}\0other"), other)
        } else {
            (id, key)
        };
        let state = self.keys.entry(id).or_insert_with(|| {
            let mut fields = Map::new();
            fields.insert("of_kind".into(), json!(kind.as_str()));
            fields.extend(key.clone());
            KeyState {
                fields,
                seen: 0,
                suppressed: 0,
                first_suppressed: None,
                last_suppressed: None,
                reported: 0,
            }
        });
        state.seen += 1;
        if state.seen > FULL_EVENTS_PER_KEY {
            let now = SystemTime::now();
            state.suppressed += 1;
            state.first_suppressed.get_or_insert(now);
            state.last_suppressed = Some(now);
            self.suppressed += 1;
            self.unreported = true;
            self.write_summaries_if_due();
            return None;
        }
        let mut all = key;
        if let Value::Object(extra) = fields() {
            all.extend(extra);
        }
        let event = self.write(kind.as_str(), Value::Object(all));
        if kind == EventKind::SyscallDenied && self.first_violation.is_none() {
            self.first_violation = Some(event.clone());
        }
        Some(event)
    }

    /// Writes a bookkeeping event of the log itself (not counted in the summary).
    fn write(&mut self, kind: &str, fields: Value) -> Value {
        let (event, line) = serialize(&self.sandbox_id, self.plan_digest.as_deref(), kind, fields);
        if let Some(f) = &mut self.file {
            f.write(&line, &self.sandbox_id);
        }
        self.memory.write(&line, &self.sandbox_id);
        event
    }

    /// When the counts of repeats not yet written are due (None: nothing to write). The
    /// supervisor wakes up then, so a live reader sees them even after a flood stops.
    pub fn next_summary(&self) -> Option<Instant> {
        self.unreported
            .then(|| self.last_summary + SUMMARY_INTERVAL)
    }

    /// Writes the `events_suppressed` events that are due (see [`EventLog::next_summary`]).
    pub fn write_summaries_if_due(&mut self) {
        if self.next_summary().is_some_and(|t| Instant::now() >= t) {
            self.write_summaries(false);
        }
    }

    /// Writes the final counts: one `events_suppressed` event (`"final": true`) per key with
    /// repeats. Call once, when the run ends.
    pub fn finish(&mut self) {
        self.write_summaries(true);
    }

    fn write_summaries(&mut self, last: bool) {
        let due: Vec<Value> = self
            .keys
            .values_mut()
            .filter(|s| s.suppressed > 0 && (last || s.suppressed != s.reported))
            .map(|s| {
                s.reported = s.suppressed;
                let mut f = s.fields.clone();
                f.insert("total".into(), json!(s.seen));
                f.insert("suppressed".into(), json!(s.suppressed));
                f.insert(
                    "first_suppressed".into(),
                    json!(s.first_suppressed.map(now_rfc3339)),
                );
                f.insert(
                    "last_suppressed".into(),
                    json!(s.last_suppressed.map(now_rfc3339)),
                );
                f.insert("final".into(), json!(last));
                Value::Object(f)
            })
            .collect();
        for fields in due {
            self.write("events_suppressed", fields);
        }
        self.last_summary = Instant::now();
        self.unreported = false;
    }

    /// The names of the syscalls refused as violations in this run.
    pub fn denied_syscalls(&self) -> impl Iterator<Item = &str> {
        self.denied_syscalls.iter().map(String::as_str)
    }

    /// The events kept in memory: at most [`MEMORY_LIMIT`] bytes, the first ones.
    pub fn bytes(&self) -> &[u8] {
        &self.memory.sink
    }

    /// What the verdict says about this run's events; exact whatever was truncated or suppressed.
    pub fn summary(&self) -> EventSummary {
        EventSummary {
            total: self.counts.values().sum(),
            by_kind: self.counts.clone(),
            first_violation: self.first_violation.clone(),
            suppressed: self.suppressed,
            file_truncated: self.file.as_ref().is_some_and(|f| f.truncated),
            denied_syscalls: self.denied_syscalls.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_serialize_as_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        let mut log = EventLog::new("wt-1", None, 1 << 20).unwrap();
        log.emit(EventKind::ExecDenied, json!({}));
        let summary = serde_json::to_value(log.summary()).unwrap();
        assert_eq!(summary["by_kind"], json!({"exec_denied": 1}));
    }

    #[test]
    fn denied_syscall_names_survive_a_full_key_table() {
        let mut log = EventLog::new("wt-1", None, 1 << 20).unwrap();
        for ino in 0..(MAX_KEYS as u64 + 10) {
            let mut key = Map::new();
            key.insert("ino".into(), json!(ino));
            log.record(EventKind::ExecDenied, key, || json!({}));
        }
        let mut key = Map::new();
        key.insert("syscall".into(), json!("mmap"));
        log.record(EventKind::SyscallDenied, key, || json!({}));
        assert_eq!(log.denied_syscalls().collect::<Vec<_>>(), ["mmap"]);
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn key(syscall: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("syscall".into(), json!(syscall));
        m.insert("action".into(), json!("deny"));
        m
    }

    #[test]
    fn events_are_json_lines_with_id_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut log = EventLog::new("wt-1", Some(&path), 1 << 20).unwrap();
        log.emit(EventKind::SyscallDenied, json!({"syscall": "mount"}));
        log.emit(EventKind::MemoryLimit, json!({"oom_kills": 1}));
        let lines = lines(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["sandbox_id"], "wt-1");
        assert_eq!(lines[0]["syscall"], "mount");
        let s = log.summary();
        assert_eq!(s.total, 2);
        assert_eq!(s.first_violation.unwrap()["syscall"], "mount");
    }

    #[test]
    fn repeats_are_counted_after_the_first_few() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut log = EventLog::new("wt-1", Some(&path), 1 << 20).unwrap();
        let mut built = 0;
        for _ in 0..1000 {
            log.record(EventKind::SyscallDenied, key("mount"), || {
                built += 1;
                json!({"nr": 165})
            });
        }
        log.record(EventKind::SyscallDenied, key("bpf"), || json!({"nr": 321}));
        log.finish();
        assert_eq!(
            built, FULL_EVENTS_PER_KEY,
            "details are built only when written"
        );
        let lines = lines(&path);
        let full = lines.iter().filter(|e| e["kind"] == "syscall_denied");
        assert_eq!(full.count() as u64, FULL_EVENTS_PER_KEY + 1);
        let summaries: Vec<&Value> = lines
            .iter()
            .filter(|e| e["kind"] == "events_suppressed")
            .collect();
        assert_eq!(summaries.len(), 1, "{summaries:?}");
        let s = summaries[0];
        assert_eq!(s["of_kind"], "syscall_denied");
        assert_eq!(s["syscall"], "mount");
        assert_eq!(s["action"], "deny");
        assert_eq!(s["total"], 1000);
        assert_eq!(s["suppressed"], 1000 - FULL_EVENTS_PER_KEY);
        assert_eq!(s["final"], true);
        assert!(s["first_suppressed"].is_string() && s["last_suppressed"].is_string());
        let sum = log.summary();
        assert_eq!(sum.count(EventKind::SyscallDenied), 1001);
        assert_eq!(sum.total, 1001);
        assert_eq!(sum.suppressed, 1000 - FULL_EVENTS_PER_KEY);
    }

    #[test]
    fn summaries_are_due_a_second_after_the_last() {
        let mut log = EventLog::new("wt-1", None, 1 << 20).unwrap();
        assert_eq!(log.next_summary(), None);
        for _ in 0..=FULL_EVENTS_PER_KEY {
            log.record(EventKind::SyscallDenied, key("mount"), || json!({}));
        }
        let due = log.next_summary().expect("a repeat was counted");
        assert!(due <= Instant::now() + SUMMARY_INTERVAL);
        log.last_summary -= SUMMARY_INTERVAL;
        log.write_summaries_if_due();
        assert_eq!(log.next_summary(), None);
        let text = String::from_utf8_lossy(log.bytes()).into_owned();
        assert!(
            text.contains(r#""kind":"events_suppressed""#) && text.contains(r#""final":false"#),
            "{text}"
        );
    }

    #[test]
    fn file_and_memory_stop_at_their_limits_with_one_truncation_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let limit = 8 << 10;
        let mut log = EventLog::new("wt-1", Some(&path), limit).unwrap();
        let big = "x".repeat(1500);
        for i in 0..20_000 {
            // Distinct keys (the first 1024, then one shared key): written in full until the
            // limits (about 1.6 MiB of them).
            log.record(
                EventKind::SyscallDenied,
                key(&format!("s{i}")),
                || json!({"pad": big}),
            );
        }
        log.finish();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= limit, "{size} > {limit}");
        let lines = lines(&path);
        let last = lines.last().unwrap();
        assert_eq!(last["kind"], "events_truncated", "{last}");
        assert_eq!(last["output"], "file");
        assert_eq!(
            lines
                .iter()
                .filter(|e| e["kind"] == "events_truncated")
                .count(),
            1
        );
        assert!(log.bytes().len() as u64 <= MEMORY_LIMIT);
        assert!(String::from_utf8_lossy(log.bytes()).contains(r#""output":"memory""#));
        let s = log.summary();
        assert_eq!(s.count(EventKind::SyscallDenied), 20_000);
        assert!(s.file_truncated);
        assert!(log.keys.len() <= MAX_KEYS + 1, "{}", log.keys.len());
    }

    #[test]
    fn unwritable_log_is_named() {
        let e = EventLog::new("x", Some(Path::new("/no/such/dir/e.jsonl")), 1 << 20)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("/no/such/dir/e.jsonl") && e.contains("--events"),
            "{e}"
        );
    }
}
