//! The capture itself: every frozen task's /proc state and the writable layers in parallel,
//! then the event log, verdict and `capture.json`, then the signed manifest.

use crate::budget::Budget;
use crate::bundle::BundleWriter;
use crate::error::Error;
use crate::record::{CaptureRecord, LayerRecord, Timings, Unreadable, CAPTURE_FILE, FORMAT};
use crate::{layer, task};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Where bundles go unless the caller names another directory.
pub const DEFAULT_EVIDENCE_DIR: &str = "/var/lib/watertight/evidence";

/// What to capture from a sandbox whose tasks are all frozen.
pub struct CaptureRequest<'a> {
    /// The sandbox's id; names the bundle directory.
    pub sandbox_id: &'a str,
    /// Host pids of every task, already frozen.
    pub pids: &'a [i32],
    /// (name, host path) of each writable dir, e.g. ("tmp", "/proc/<pid>/root/tmp"); each
    /// becomes `layers/<name>.tar`. Names use `A-Za-z0-9._-`.
    pub writable_dirs: Vec<(String, PathBuf)>,
    /// The run's event log so far (JSON Lines).
    pub events_jsonl: &'a [u8],
    /// The verdict (JSON) as known at capture time.
    pub verdict_json: &'a [u8],
    /// Bundles go in `evidence_dir/<sandbox_id>-<UTC timestamp>/`.
    pub evidence_dir: &'a Path,
    /// The host's evidence key, which signs the manifest.
    pub key: &'a watertight_integrity::SigningKey,
    /// The evidence byte budget: layer archives (headers, names, data), their `capture.json`
    /// listing and the tasks' /proc files together never take more (see `budget.rs`; the event
    /// log, verdict, manifest and the rest of `capture.json` come on top). What does not fit is
    /// cut and the bundle is marked truncated.
    pub evidence_limit: u64,
    /// (name, reason) of writable layers that exist but cannot be read (recorded as skipped).
    pub unavailable_layers: Vec<(String, String)>,
}

/// What `capture_report` wrote.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The evidence byte budget it was captured with.
    pub evidence_limit: u64,
    /// Bytes charged against the budget.
    pub evidence_used: u64,
    /// Set when the budget was reached: what did not fit first.
    pub truncated: Option<String>,
}

/// Writes a signed bundle and returns its directory. On error nothing is left behind in the
/// evidence dir, and the error names the directory the evidence could not go to.
pub fn capture(req: &CaptureRequest) -> Result<PathBuf, Error> {
    capture_report(req).map(|c| c.bundle)
}

/// [`capture`], also saying whether the evidence budget cut the bundle short.
pub fn capture_report(req: &CaptureRequest) -> Result<Captured, Error> {
    let started = Instant::now();
    let now = SystemTime::now();
    check_name(req.sandbox_id, "sandbox id")?;
    let names = req.writable_dirs.iter().map(|(n, _)| n);
    for name in names.chain(req.unavailable_layers.iter().map(|(n, _)| n)) {
        check_name(name, "writable dir name")?;
    }
    let budget = Budget::new(req.evidence_limit);
    let created = humantime::format_rfc3339_millis(now).to_string();
    let stamp: String = created.chars().filter(|c| *c != '-' && *c != ':').collect();
    let bundle = BundleWriter::create(req.evidence_dir, &format!("{}-{stamp}", req.sandbox_id))?;

    let mut pids = req.pids.to_vec();
    pids.sort_unstable();
    pids.dedup();

    // Layers (large, I/O and hashing bound) on their own threads; tasks (many small /proc
    // reads) on the rayon pool alongside.
    let (tasks, net, layers, tasks_ms, layers_ms) = std::thread::scope(|scope| {
        let layer_threads: Vec<_> = req
            .writable_dirs
            .iter()
            .map(|(name, path)| {
                let (bundle, budget) = (&bundle, &budget);
                scope.spawn(move || {
                    let t = Instant::now();
                    let r = layer::capture_layer(bundle, budget, name, path);
                    (r, t.elapsed())
                })
            })
            .collect();
        let t = Instant::now();
        let captured: Vec<task::CapturedTask> = pids
            .par_iter()
            .map(|&pid| task::read_task(pid, &budget))
            .collect();
        let mtime = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut tasks = task::write_tasks_archive(&bundle, &captured, mtime)
            .map(|()| captured.into_iter().map(|t| t.record).collect::<Vec<_>>());
        let net = match &mut tasks {
            Ok(records) => task::capture_net(&bundle, &budget, &pids, records),
            Err(_) => Ok((None, Vec::new())),
        };
        let tasks_ms = t.elapsed().as_millis() as u64;
        let mut layers = Vec::new();
        let mut layers_ms = 0;
        for handle in layer_threads {
            let (r, took) = handle.join().expect("layer capture thread panicked");
            layers_ms = layers_ms.max(took.as_millis() as u64);
            layers.push(r);
        }
        (tasks, net, layers, tasks_ms, layers_ms)
    });
    let tasks = tasks?;
    let (net_from_pid, net_files) = net?;
    let mut layers = layers.into_iter().collect::<Result<Vec<_>, _>>()?;
    for (name, reason) in &req.unavailable_layers {
        layers.push(LayerRecord {
            name: name.clone(),
            source: String::new(),
            archive: None,
            entries: Vec::new(),
            entries_not_listed: 0,
            skipped: vec![Unreadable {
                what: name.clone(),
                error: reason.clone(),
            }],
            truncated: None,
        });
    }
    let truncated = budget.truncated();

    bundle.write_file("events.jsonl", req.events_jsonl)?;
    bundle.write_file("verdict.json", req.verdict_json)?;
    let record = CaptureRecord {
        format: FORMAT.into(),
        sandbox_id: req.sandbox_id.into(),
        captured_at: created.clone(),
        host_kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        tasks,
        net_from_pid,
        net_files,
        layers,
        timings_ms: Timings {
            tasks: tasks_ms,
            layers: layers_ms,
            total_before_seal: started.elapsed().as_millis() as u64,
        },
        evidence_limit: Some(req.evidence_limit),
        evidence_used: budget.used(),
        truncated: truncated.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).expect("capture record serializes");
    bundle.write_file(CAPTURE_FILE, &json)?;
    let path = bundle.seal(
        req.sandbox_id,
        &created,
        truncated.as_ref().map(|_| req.evidence_limit),
        req.key,
    )?;
    Ok(Captured {
        bundle: path,
        evidence_limit: req.evidence_limit,
        evidence_used: budget.used(),
        truncated,
    })
}

/// Names that become path components: `A-Za-z0-9._-`, 1-128 bytes, not starting with a dot.
fn check_name(id: &str, what: &'static str) -> Result<(), Error> {
    let reason = if id.is_empty() || id.len() > 128 {
        Some("must be 1 to 128 bytes")
    } else if id.starts_with('.') {
        Some("must not start with '.'")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some("only A-Z a-z 0-9 . _ - are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::BadName {
            what,
            name: id.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}
