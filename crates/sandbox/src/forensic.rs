//! The forensic response to a violation, in this order: freeze the whole sandbox so no task runs
//! another instruction, capture the evidence (tasks, writable layers, events, verdict) into a
//! signed bundle, then kill every task. The writable layers are tmpfs in the sandbox's private
//! mount namespace, so killing the sandbox also rolls them back: nothing it wrote survives.
//!
//! The layers: /tmp and /dev/shm (through /proc/<pid 1>/root), read-write binds, and with a
//! writable root the overlay's upper layer (every file the program wrote or changed outside
//! /tmp). That upper layer has no path once the sandbox has pivoted into its root and detached
//! the old one, so the sandbox's pid 1 keeps it open (`layers::mount::apply`) and the capture
//! reads it through /proc/<pid 1>/fd/<n>.

use std::path::{Path, PathBuf};

use watertight_cgroups::Cgroup;

use crate::events::{EventKind, EventLog};
use crate::profile::Profile;

/// Where evidence goes, which key signs it, what is captured and how much of it at most.
#[derive(Debug, Clone)]
pub struct ForensicConfig {
    /// Where bundles are written (`--evidence-dir`).
    pub evidence_dir: PathBuf,
    /// The host's ed25519 signing key (`--evidence-key`), created if missing.
    pub key_path: PathBuf,
    /// Writable places inside the sandbox, by name and path inside (e.g. ("tmp", "/tmp")).
    pub writable: Vec<(String, PathBuf)>,
    /// The root is an overlay with a writable upper layer: capture it as layer "root".
    pub overlay_upper: bool,
    /// The evidence byte budget of one bundle (see `evidence_limit`).
    pub evidence_limit: u64,
}

impl Default for ForensicConfig {
    fn default() -> Self {
        ForensicConfig::for_profile(
            &crate::default_profile(),
            watertight_forensics::DEFAULT_EVIDENCE_DIR.into(),
            watertight_forensics::DEFAULT_KEY_PATH.into(),
            None,
        )
    }
}

impl ForensicConfig {
    /// The layers `profile` makes writable (/tmp, /dev/shm, read-write binds as `bind0`...,
    /// the overlay's upper layer with a writable root), and the budget: `limit`, or by default
    /// [`evidence_limit`] of the profile.
    pub fn for_profile(
        profile: &Profile,
        evidence_dir: PathBuf,
        key_path: PathBuf,
        limit: Option<u64>,
    ) -> ForensicConfig {
        let mut writable = vec![
            ("tmp".to_string(), PathBuf::from("/tmp")),
            ("shm".to_string(), PathBuf::from("/dev/shm")),
        ];
        // Read-write binds are writable places too: their contents go into the evidence.
        for (i, b) in profile.binds.iter().filter(|b| !b.read_only).enumerate() {
            writable.push((format!("bind{i}"), b.target.clone()));
        }
        ForensicConfig {
            evidence_dir,
            key_path,
            writable,
            overlay_upper: profile.root.writable && profile.root.source != "host",
            evidence_limit: limit.unwrap_or_else(|| evidence_limit(profile)),
        }
    }
}

/// The default evidence budget: what the sandbox's own writable layers can hold (/tmp, /dev/shm,
/// and the overlay's upper layer, which is as large as /tmp, with a writable root) plus room for
/// the tasks' /proc files. Hard links and holes cost no data, so a capture of full layers fits;
/// what the program piles up beyond that (read-write binds of host directories, millions of
/// empty files whose headers cost more than their tmpfs inodes) is cut and marked truncated.
pub fn evidence_limit(profile: &Profile) -> u64 {
    let tmp = profile.tmp.size.bytes();
    let upper = if profile.root.writable { tmp } else { 0 };
    tmp.saturating_add(profile.dev.shm_size.bytes())
        .saturating_add(upper)
        .saturating_add(watertight_forensics::TASK_FLOOR)
}

/// How the overlay's upper directory reads through /proc/<pid 1>/fd: the stage tmpfs that holds
/// it (`layers::mount::plan`: `<stage>/upper`) is detached, so the path is relative to its root.
const UPPER_LINK: &str = "/upper";

/// The supervisor's response to a violation under `on_violation = "forensic"`: freeze, capture,
/// kill (which rolls the writable layers back), then one event that says where the evidence
/// went (`evidence_captured` or `evidence_failed`). The bundle holds the verdict as it stands
/// `wall` into the run (SV); the returned path or reason goes into the final verdict.
pub fn respond_to_violation(
    cgroup: &Cgroup,
    init_host_pid: i32,
    sandbox_id: &str,
    cfg: &ForensicConfig,
    events: &mut EventLog,
    wall: std::time::Duration,
) -> Result<PathBuf, String> {
    let so_far = serde_json::json!({
        "status": "SV",
        "sandbox_id": sandbox_id,
        "message": "security violation: evidence captured before the kill",
        "wall_time_s": wall.as_secs_f64(),
    });
    let result = respond(cgroup, init_host_pid, sandbox_id, cfg, events, &so_far);
    match &result {
        Ok(path) => events.emit(
            EventKind::EvidenceCaptured,
            serde_json::json!({"bundle": path}),
        ),
        Err(e) => events.emit(EventKind::EvidenceFailed, serde_json::json!({"error": e})),
    };
    result
}

/// Freezes, captures and kills. Returns the bundle path, or an error saying where the evidence
/// could not go; the sandbox is killed either way. A bundle cut short by the evidence budget is
/// also an `evidence_truncated` event.
pub fn respond(
    cgroup: &Cgroup,
    init_host_pid: i32,
    sandbox_id: &str,
    cfg: &ForensicConfig,
    events: &mut EventLog,
    verdict_so_far: &serde_json::Value,
) -> Result<PathBuf, String> {
    let result = (|| {
        cgroup
            .freeze()
            .map_err(|e| format!("freeze the sandbox: {e}"))?;
        let pids = cgroup
            .pids()
            .map_err(|e| format!("list the sandbox's tasks: {e}"))?;
        let root = Path::new("/proc")
            .join(init_host_pid.to_string())
            .join("root");
        let mut writable_dirs: Vec<(String, PathBuf)> = cfg
            .writable
            .iter()
            .map(|(name, inside)| {
                (
                    name.clone(),
                    root.join(inside.strip_prefix("/").unwrap_or(inside)),
                )
            })
            .collect();
        let mut unavailable_layers = Vec::new();
        if cfg.overlay_upper {
            match find_upper(init_host_pid) {
                Ok(path) => writable_dirs.push(("root".into(), path)),
                Err(reason) => unavailable_layers.push(("root".into(), reason)),
            }
        }
        let key = watertight_forensics::load_or_create_host_key(&cfg.key_path)
            .map_err(|e| format!("evidence key {}: {e}", cfg.key_path.display()))?;
        let verdict = serde_json::to_vec_pretty(verdict_so_far).unwrap_or_default();
        let req = watertight_forensics::CaptureRequest {
            sandbox_id,
            pids: &pids,
            writable_dirs,
            events_jsonl: events.bytes(),
            verdict_json: &verdict,
            evidence_dir: &cfg.evidence_dir,
            key: &key,
            evidence_limit: cfg.evidence_limit,
            unavailable_layers,
        };
        // The forensics error already names where the evidence could not go.
        watertight_forensics::capture_report(&req).map_err(|e| e.to_string())
    })();
    // Whatever happened above, the sandbox never runs again.
    let _ = cgroup.kill_all();
    let captured = result?;
    if let Some(first_cut) = &captured.truncated {
        events.emit(
            EventKind::EvidenceTruncated,
            serde_json::json!({
                "bundle": captured.bundle,
                "evidence_limit": captured.evidence_limit,
                "first_cut": first_cut,
            }),
        );
    }
    Ok(captured.bundle)
}

/// The descriptor of the overlay's upper directory that the sandbox's pid 1 holds: an O_PATH
/// directory whose link reads [`UPPER_LINK`] and beside which lies the overlay's own work
/// directory (`../work/work`, which overlayfs creates). pid 1's other O_PATH descriptors are
/// the bind sources, host paths; the second check keeps a host directory that happens to be
/// named /upper from being taken for it. Only pid 1 (watertight's own code, not dumpable, never
/// run by the program) holds descriptors there.
fn find_upper(init_host_pid: i32) -> Result<PathBuf, String> {
    let fd_dir = PathBuf::from(format!("/proc/{init_host_pid}/fd"));
    let entries =
        std::fs::read_dir(&fd_dir).map_err(|e| format!("cannot list {}: {e}", fd_dir.display()))?;
    for entry in entries.flatten() {
        if !std::fs::read_link(entry.path()).is_ok_and(|l| l == Path::new(UPPER_LINK)) {
            continue;
        }
        let info = std::fs::read_to_string(
            Path::new(&format!("/proc/{init_host_pid}/fdinfo")).join(entry.file_name()),
        )
        .unwrap_or_default();
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        let is_path_fd = u32::from_str_radix(&field("flags:"), 8)
            .is_ok_and(|flags| flags & libc::O_PATH as u32 != 0);
        let beside_work = entry.path().join("../work/work").is_dir();
        if is_path_fd && beside_work && entry.path().is_dir() {
            return Ok(entry.path());
        }
    }
    Err(format!(
        "the overlay's upper layer (files written outside /tmp) could not be found: the sandbox's pid 1 holds no descriptor of it in {}",
        fd_dir.display()
    ))
}

pub use watertight_forensics::{DEFAULT_EVIDENCE_DIR, DEFAULT_KEY_PATH};
