//! The record the BPF gatekeeper (`watertight bpf load`) leaves for every program it loaded, so
//! that `watertight audit host` can tell a vetted, signed program from any other program loaded
//! on the host.
//!
//! One JSON file per program under [`BPF_REGISTRY_DIR`], named `<id>.json`. The kernel never
//! reuses a program id while the program exists, and the record also carries the program's tag
//! (the kernel's hash of its instructions), so a record outliving its program cannot vouch for a
//! later program that happens to get the same id.

use serde::{Deserialize, Serialize};

/// Where `watertight bpf load` records what it loaded (tmpfs: gone with the programs at reboot).
pub const BPF_REGISTRY_DIR: &str = "/run/watertight/bpf/loaded";

/// One program loaded by the gatekeeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedBpfProgram {
    /// The kernel's program id (`bpftool prog show id N`).
    pub id: u32,
    /// The kernel's tag of the program: 16 hex digits, as `bpftool` prints it without colons.
    pub tag: String,
    /// The program's name in the object (the kernel keeps its first 15 bytes).
    pub name: String,
    /// The program type, in libbpf's section spelling (`tracepoint`, `raw_tp`, `tp_btf`, ...).
    pub prog_type: String,
    /// What it is attached to (`sched:sched_process_exec`), when it is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// The object file it came from, as given to `bpf load`.
    pub object: String,
    /// SHA-256 of the exact object bytes that were vetted, signed and loaded (hex).
    pub object_sha256: String,
    /// The fingerprint of the key whose signature admitted the object (`sha256:...`).
    pub signer: String,
    /// Where its link (or the program, when it has no link) is pinned on a bpffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// When it was loaded, seconds since the Unix epoch.
    pub loaded_at: u64,
}

/// A BPF token a workload can create: a bpffs of its own user namespace whose delegation
/// options (set by the initial namespace's root) let it load some BPF program types without
/// CAP_BPF on the host (`watertight run --bpf-observe`). Tracing programs run in the context of
/// every process on the host, whoever loaded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfToken {
    /// Where the delegated bpffs is mounted, inside the workload.
    pub mount: String,
    /// `delegate_cmds`: the bpf() commands the token allows.
    pub commands: Vec<String>,
    /// `delegate_maps`: the map types.
    pub maps: Vec<String>,
    /// `delegate_progs`: the program types.
    pub programs: Vec<String>,
    /// `delegate_attachs`: the expected attach types.
    pub attach_types: Vec<String>,
    /// Whether every program's helper calls are checked before it is loaded (a token cannot
    /// restrict helpers: without the check a tracing program may call bpf_send_signal on any
    /// host process or read kernel memory with bpf_probe_read_kernel).
    pub helpers_vetted: bool,
}
