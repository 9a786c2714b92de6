//! The hardening floor of `watertight-runc`: what watertight adds to every OCI config.json,
//! whatever Docker, Podman, containerd or Kubernetes asked for (docs/runtime-floor.md).
//!
//! The floor is read from `/etc/watertight/runtime.toml` ([`DEFAULT_CONFIG_PATH`]; `--config`
//! names another file; an absent default file is the built-in floor, an absent named file an
//! error). `harden` rewrites the config in memory: noNewPrivileges forced, masked and
//! read-only paths added, capabilities trimmed to the ceiling, devices and device cgroup rules
//! filtered to the allowlist, a privileged config refused (or run as configured when the floor
//! allows it and its annotation gives a reason). It returns what it added, the annotations
//! that say so, and the floor's own seccomp profile for the runtime to install as a second
//! filter. The runtime then publishes the container for `watertight audit host`, which reports
//! the floor it runs under, or that it was started under a superseded one.
//!
//! The calls the runtime makes, in order:
//!
//! ```no_run
//! use std::path::Path;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config_flag: Option<&Path> = None;
//! # let bundle = Path::new("/run/bundle");
//! # let init_pid: u32 = 1;
//! // `create`, before anything is made (an error here: one line to the log, exit 1):
//! let floor = watertight_floor::Floor::load(config_flag)?;      // --config, or None
//! let mut spec = oci_spec::runtime::Spec::load(bundle.join("config.json"))?;
//! let hardening = floor.harden(&mut spec)?;                     // refuses privileged configs
//! // ... build the container from `spec` (the hardened config) ...
//! // the state's annotations: the config's, plus
//! let annotations = hardening.annotations();                    // run.oci.watertight/floor.*
//! // in the container's init, after its own filter (if any), last before exec:
//! if let Some(profile) = hardening.seccomp_profile() {
//!     let filter = profile.compile(&watertight_seccomp::CompileOptions::default())?;
//!     // watertight_sys::seccomp::install_filter(filter.program(), filter.flags())?;
//!     // filter.wants_listener() == hardening.needs_listener: keep the listener fd for the
//!     // monitor, which acts per hardening.on_violation and records each violation:
//! }
//! if let Some(trail) = &hardening.audit_trail {
//!     let mut writer = trail.open("my-id")?;                    // JSON Lines, bounded
//!     writer.record(&serde_json::json!({"syscall": "unshare", "action": "deny"}))?;
//! }
//! // once the init process exists (host pid):
//! let digest = watertight_floor::plan_digest(&spec);           // of the hardened config
//! let entry = hardening.running_container("my-id", init_pid, bundle, &spec, Some(digest))?;
//! watertight_floor::publish(&entry)?;                           // /run/watertight/containers
//! // `delete`:
//! watertight_floor::unpublish("my-id")?;
//! # let _ = annotations;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod config;
mod error;
mod harden;
mod publish;
mod seccomp;
mod trail;

pub use config::{
    AllowedDevice, AuditTrail, Evidence, IsolationSettings, NoNewPrivs, OnViolation, PacketSockets,
    PrivilegedPolicy, SeccompSettings, Settings, BUILT_IN_VERSION, DEFAULT_AUDIT_DIR,
    DEFAULT_AUDIT_MAX_BYTES, DEFAULT_CONFIG_PATH, DEFAULT_EVIDENCE_MAX_BYTES,
    DOCKER_DEFAULT_CAPABILITIES, FLOOR_MASKED_PATHS, FLOOR_READONLY_PATHS,
};
pub use error::Error;
pub use harden::{Hardening, Restriction, ANNOTATION_PREFIX, PRIVILEGED_ANNOTATION};
/// The OCI runtime-spec types `harden` takes (the same oci-spec version).
pub use oci_spec;
pub use publish::{
    parse_start_time, plan_digest, process_start_time, publish, publish_in, read_live, unpublish,
    unpublish_in, RUNTIME_NAME,
};
pub use trail::TrailWriter;
pub use watertight_model::{RunningContainer, RUNNING_CONTAINERS_DIR};

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `bytes`: the form of every digest watertight reports.
pub(crate) fn sha256_tagged(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Bumped whenever what a setting means changes (what `harden` does with it), so the same
/// runtime.toml under new semantics has a new digest.
const SCHEMA: u32 = 1;

/// A loaded floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floor {
    /// The floor's settings, resolved.
    pub settings: Settings,
    /// The file it was read from; `None` for the built-in floor.
    pub source: Option<PathBuf>,
}

impl Floor {
    /// The floor at `path` (`--config`), or at [`DEFAULT_CONFIG_PATH`] when `None`. An absent
    /// default file is the built-in floor; an absent named file is an error.
    pub fn load(path: Option<&Path>) -> Result<Floor, Error> {
        let (path, named) = match path {
            Some(p) => (p, true),
            None => (Path::new(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| Error::Parse {
                    path: path.into(),
                    line: 0,
                    key: "(file)".into(),
                    message: "is not UTF-8 text; runtime.toml must be TOML".into(),
                })?;
                Floor::parse(path, &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(Floor::built_in()),
            Err(source) => Err(Error::Read {
                path: path.into(),
                source,
            }),
        }
    }

    /// The floor `text` describes (the contents of `path`, named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Floor, Error> {
        Ok(Floor {
            settings: config::parse(path, text)?,
            source: Some(path.into()),
        })
    }

    /// The built-in floor (no runtime.toml).
    pub fn built_in() -> Floor {
        Floor {
            settings: Settings::built_in(),
            source: None,
        }
    }

    /// The floor's `version`.
    pub fn version(&self) -> &str {
        &self.settings.version
    }

    /// `sha256:<hex>` of the floor's canonical form: the resolved settings (not `version`,
    /// which only names them) as compact JSON with sorted lists, with the schema number. Key
    /// order, comments, whitespace and spelling out a default do not change it.
    pub fn digest(&self) -> String {
        #[derive(serde::Serialize)]
        struct Canonical<'a> {
            schema: u32,
            floor: &'a Settings,
        }
        let json = serde_json::to_vec(&Canonical {
            schema: SCHEMA,
            floor: &self.settings,
        })
        .expect("plain strings, numbers and lists serialize");
        sha256_tagged(&json)
    }

    /// Applies the floor to `spec` in memory (see the crate documentation). On error nothing
    /// is changed in a way that matters: the runtime refuses the config.
    pub fn harden(&self, spec: &mut oci_spec::runtime::Spec) -> Result<Hardening, Error> {
        harden::harden(self, spec)
    }
}

#[cfg(test)]
mod tests;
