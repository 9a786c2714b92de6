//! What crosses the VM boundary: the job goes in as `job.json` on a read-only 9p share, and one
//! JSON line comes back on the `wt.verdict` virtio-serial port.

use serde::{Deserialize, Serialize};
use watertight_sandbox::Profile;

/// The 9p mount tag of the shared root (the host's `/`, read-only).
pub const ROOT_TAG: &str = "wtroot";
/// The 9p mount tag of the job directory (read-only).
pub const JOB_TAG: &str = "wtjob";
/// The job file's name in the job directory.
pub const JOB_FILE: &str = "job.json";
/// The program's stdin (`--stdin FILE`, copied) in the job directory, when [`GuestJob::stdin`].
pub const STDIN_FILE: &str = "stdin";

/// The job directory's file holding the `index`th of [`GuestJob::secrets`].
pub fn secret_file(index: usize) -> String {
    format!("secret-{index}")
}
/// virtio-serial port names (the guest finds them in /sys/class/virtio-ports/*/name).
pub const VERDICT_PORT: &str = "wt.verdict";
/// The program's stdout.
pub const STDOUT_PORT: &str = "wt.stdout";
/// The program's stderr.
pub const STDERR_PORT: &str = "wt.stderr";
/// The sandbox's event log (JSON Lines), when the caller asked for one (`--events`).
pub const EVENTS_PORT: &str = "wt.events";

/// The run the guest's init performs: the effective profile and the command, as bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct GuestJob {
    /// The effective profile (its limits apply inside the guest).
    pub profile: Profile,
    /// The program and its arguments.
    pub argv: Vec<Vec<u8>>,
    /// `--env` assignments.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// `--workdir`.
    pub workdir: Option<Vec<u8>>,
    /// The job directory holds [`STDIN_FILE`] for the program's stdin (else /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// The sandbox writes its event log to [`EVENTS_PORT`].
    #[serde(default)]
    pub events: bool,
    /// `--secret` names, in order; their bytes are the job directory's [`secret_file`]s.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// The guest's one line: the namespace tier's verdict inside the guest, or why there is none.
#[derive(Debug, Serialize, Deserialize)]
pub struct GuestReport {
    /// The verdict JSON of the sandbox run inside the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<serde_json::Value>,
    /// The guest's uptime when its init started, seconds: the kernel's boot.
    pub boot_s: f64,
    /// The guest kernel's release.
    pub kernel: String,
    /// Set when the guest could not run the program: which step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
