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

/// A BPF program named by the kernel's id and tag together (a published sandbox's own programs:
/// its exec gate, its device-cgroup program).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfProgramRef {
    /// The kernel's program id.
    pub id: u32,
    /// The kernel's tag: 16 hex digits, no colons.
    pub tag: String,
}

/// Every BPF program loaded on a host, as `watertight audit host` found it, with what it needs to
/// judge each one: the gatekeeper's registry and the programs watertight's own sandboxes
/// published. Host-level: it belongs to no workload.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostBpf {
    /// Why the programs could not be enumerated (`BPF_PROG_GET_NEXT_ID` needs CAP_SYS_ADMIN);
    /// `None` when they were. When set, `programs` is empty and says nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_taken: Option<String>,
    /// Every program the kernel listed, by id.
    pub programs: Vec<BpfProgram>,
    /// Programs the kernel listed whose details could not be read (they may be anything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<u32>,
    /// The gatekeeper's records ([`BPF_REGISTRY_DIR`]).
    pub registry: Vec<LoadedBpfProgram>,
    /// Registry files that could not be read or parsed, one line each (`<file>: <why>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_errors: Vec<String>,
    /// The programs each running watertight sandbox published as its own
    /// ([`crate::RunningSandbox::bpf_programs`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandboxes: Vec<SandboxBpf>,
}

impl HostBpf {
    /// Whether the gatekeeper's registry records this program: the same id and the same tag
    /// (an id alone could be a later program's, a record outliving its own).
    pub fn recorded(&self, p: &BpfProgram) -> bool {
        self.registry
            .iter()
            .any(|r| r.id == p.id && r.tag.eq_ignore_ascii_case(&p.tag))
    }

    /// Whether a running watertight sandbox published this program (id and tag) as its own.
    pub fn published_by_sandbox(&self, p: &BpfProgram) -> bool {
        self.sandboxes.iter().any(|s| {
            s.programs
                .iter()
                .any(|o| o.id == p.id && o.tag.eq_ignore_ascii_case(&p.tag))
        })
    }
}

/// The BPF programs one running watertight sandbox's supervisor holds as its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxBpf {
    /// The sandbox's id (`wt-<slot>-<supervisor pid>`; `wt-<slot>.<n>-<pid>` for a step worker's n-th).
    pub sandbox_id: String,
    /// Its supervisor's pid (on the audited host).
    pub supervisor_pid: u32,
    /// The programs it published.
    pub programs: Vec<BpfProgramRef>,
}

/// One loaded BPF program, as `bpftool prog show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfProgram {
    /// The kernel's program id.
    pub id: u32,
    /// The kernel's tag: 16 hex digits, no colons.
    pub tag: String,
    /// The program type as bpftool names it (`tracepoint`, `raw_tracepoint`, `tracing`,
    /// `cgroup_device`, ...; `unknown` for a type this build does not know).
    pub prog_type: String,
    /// The program's name (at most 15 bytes; empty when it was loaded without one).
    pub name: String,
    /// The uid that loaded it.
    pub uid: u32,
    /// When it was loaded, seconds since the Unix epoch (from the kernel's boot-time clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<u64>,
    /// The processes holding a descriptor of it, or of a link to it (`prog_id:` in
    /// `/proc/PID/fdinfo`). Empty: only attachments or pins keep it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<BpfHolder>,
}

/// A process holding a BPF program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfHolder {
    /// Its pid on the audited host.
    pub pid: u32,
    /// Its name (`/proc/PID/comm`).
    pub name: String,
    /// The workload it belongs to (the id the host report uses), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Whether that workload is a container, pod or sandbox rather than a host process.
    #[serde(default)]
    pub in_container: bool,
}
