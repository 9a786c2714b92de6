//! The forensic response to a violation, in this order: freeze the whole sandbox so no task runs
//! another instruction, capture the evidence (tasks, writable layers, events, verdict) into a
//! signed bundle, then kill every task. The writable layers are tmpfs in the sandbox's private
//! mount namespace, so killing the sandbox also rolls them back: nothing it wrote survives.

use std::path::{Path, PathBuf};

use watertight_cgroups::Cgroup;

use crate::events::EventLog;

/// Where evidence goes and which key signs it.
#[derive(Debug, Clone)]
pub struct ForensicConfig {
    pub evidence_dir: PathBuf,
    pub key_path: PathBuf,
    /// Writable places inside the sandbox, by name and path inside (e.g. ("tmp", "/tmp")).
    pub writable: Vec<(String, PathBuf)>,
}

impl Default for ForensicConfig {
    fn default() -> Self {
        ForensicConfig {
            evidence_dir: watertight_forensics::DEFAULT_EVIDENCE_DIR.into(),
            key_path: watertight_forensics::DEFAULT_KEY_PATH.into(),
            writable: vec![
                ("tmp".into(), "/tmp".into()),
                ("shm".into(), "/dev/shm".into()),
            ],
        }
    }
}

/// Freezes, captures and kills. Returns the bundle path, or an error saying where the evidence
/// could not go; the sandbox is killed either way.
pub fn respond(
    cgroup: &Cgroup,
    init_host_pid: i32,
    sandbox_id: &str,
    cfg: &ForensicConfig,
    events: &EventLog,
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
        let writable_dirs = cfg
            .writable
            .iter()
            .map(|(name, inside)| {
                (
                    name.clone(),
                    root.join(inside.strip_prefix("/").unwrap_or(inside)),
                )
            })
            .collect();
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
        };
        // The forensics error already names where the evidence could not go.
        watertight_forensics::capture(&req).map_err(|e| e.to_string())
    })();
    // Whatever happened above, the sandbox never runs again.
    let _ = cgroup.kill_all();
    result
}

pub use watertight_forensics::{DEFAULT_EVIDENCE_DIR, DEFAULT_KEY_PATH};
