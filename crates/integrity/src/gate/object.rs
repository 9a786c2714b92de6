//! The compiled BPF objects (built by build.rs) and loading them with libbpf-rs.

use crate::{Error, Result};
use libbpf_rs::{Object, ObjectBuilder, OpenObject};

/// bpf/exec_gate.bpf.c compiled by clang (target bpf, CO-RE).
pub(crate) static EXEC_GATE_OBJECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/exec_gate.bpf.o"));
/// bpf/lsm_probe.bpf.c: one empty `lsm/bprm_check_security` program, loaded only to learn
/// whether this kernel accepts BPF LSM programs.
pub(crate) static LSM_PROBE_OBJECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lsm_probe.bpf.o"));

pub(crate) fn open(bytes: &'static [u8], step: &'static str) -> Result<OpenObject> {
    ObjectBuilder::default()
        .open_memory(bytes)
        .map_err(|e| bpf_error(step, e))
}

pub(crate) fn load(open: OpenObject, step: &'static str) -> Result<Object> {
    open.load().map_err(|e| bpf_error(step, e))
}

/// Turns a libbpf error into one line, with the fix for the common case (not root).
pub(crate) fn bpf_error(step: &'static str, e: libbpf_rs::Error) -> Error {
    let mut reason = format!("{e:#}");
    if matches!(e.kind(), libbpf_rs::ErrorKind::PermissionDenied) && !is_root() {
        reason.push_str("; loading BPF programs needs root (CAP_BPF and CAP_PERFMON)");
    }
    Error::Bpf { step, reason }
}

pub(crate) fn is_root() -> bool {
    // Effective uid from /proc avoids an unsafe geteuid call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
