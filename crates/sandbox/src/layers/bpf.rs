//! BPF observe layer (`watertight run --bpf-observe`; docs/bpf-observe.md): a BPF token for
//! observe-only program types, enforced by the kernel, without CAP_BPF on the host.
//!
//! The token comes from a bpffs whose superblock belongs to the sandbox's user namespace and
//! whose delegation options only a CAP_SYS_ADMIN of the initial user namespace may set. So
//! the work is split:
//! 1. pid 1 (in the sandbox's user namespace) opens a bpffs context ([`open_context`]) and hands
//!    it to the supervisor over the notify socket;
//! 2. the supervisor (root) sets the delegation options to the narrowest observe-only sets,
//!    makes the superblock and a detached read-only mount of it ([`delegate`]) and hands the
//!    mount back with the cgroup files;
//! 3. pid 1 attaches it at [`MOUNT_POINT`] ([`attach`]) and keeps CAP_BPF and CAP_PERFMON in
//!    its own user namespace ([`KEPT_CAPABILITIES`]: the program gets them as ambient
//!    capabilities); seccomp lets bpf() through only for the observer's commands.
//!
//! What the token cannot restrict (helpers: bpf_send_signal, bpf_probe_read_kernel) the
//! supervisor's vetted load does (`crate::bpf_load`); docs/bpf-observe.md has both, with the
//! measured delegation sets.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use watertight_sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};

use crate::error::{Error, IoContext};
use crate::syscall::Syscall;

/// Where the program finds the delegated bpffs (libbpf's default bpffs path).
pub const MOUNT_POINT: &str = "/sys/fs/bpf";

/// The delegation options, narrowest that work (measured on Linux 6.18, docs/bpf-observe.md):
/// - commands: maps, programs and BTF (BPF_TOKEN_CREATE needs no delegation of its own; the
///   commands that act on existing descriptors, such as BPF_RAW_TRACEPOINT_OPEN, need none);
/// - maps: the plain data maps an observer reports through;
/// - programs: tracepoint and raw_tracepoint only (kprobe, perf_event, socket filters, XDP,
///   cgroup programs, LSM, fentry/fexit: refused by the kernel with EPERM);
/// - attach types: `cgroup_inet_ingress` is the kernel's value 0, the expected_attach_type that
///   tracepoint and raw_tracepoint programs are loaded with: the kernel checks the program type
///   and the expected attach type against the token; no cgroup program type is delegated, and
///   BPF_PROG_ATTACH is neither delegated nor let through seccomp.
pub const DELEGATION: [(&CStr, &CStr); 4] = [
    (c"delegate_cmds", c"map_create:prog_load:btf_load"),
    (
        c"delegate_maps",
        c"array:hash:percpu_array:percpu_hash:ringbuf",
    ),
    (c"delegate_progs", c"tracepoint:raw_tracepoint"),
    (c"delegate_attachs", c"cgroup_inet_ingress"),
];

/// CAP_PERFMON (38) and CAP_BPF (39), kept in the sandbox's own user namespace: the kernel
/// asks for them there (ns_capable in the token's user namespace) when a token is created and
/// used; anywhere else they are a non-initial namespace's and count for nothing.
pub const KEPT_CAPABILITIES: u64 = (1 << 38) | (1 << 39);

/// Whether each BPF_PROG_LOAD is vetted before the kernel sees it: yes. The token restricts
/// program types, attach types, map types and commands, never the helpers a program calls (a
/// tracepoint program could call bpf_send_signal on whatever host process its tracepoint fires
/// in, or bpf_probe_read_kernel). So seccomp sends BPF_PROG_LOAD to the supervisor, which
/// copies the attribute and instructions once, vets its copy, loads that copy itself through
/// the task's token and injects the descriptor (`crate::bpf_load`; docs/bpf-observe.md, "The
/// helper gap"). The model's `helpers_vetted` and the audit rule `bpf-token` (critical while
/// false, high when true) read this.
pub const HELPERS_VETTED: bool = true;

/// pid 1: a bpffs context of the sandbox's user namespace, sent to the supervisor.
pub fn hand_over_context(to_supervisor: BorrowedFd<'_>, sys: &impl Syscall) -> Result<(), Error> {
    let context = sys
        .open_bpffs_context()
        .ctx(|| "fsopen(\"bpf\") in the sandbox's user namespace".into())?;
    sys.send_fd(to_supervisor, context.as_fd())
        .ctx(|| "hand the bpffs context to the supervisor".into())
}

/// The supervisor: receives the context pid 1 sent ([`hand_over_context`]).
pub fn receive_context(from_sandbox: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    watertight_sys::fdpass::recv_fd(from_sandbox)
        .map_err(|e| Error::io("receive the sandbox's bpffs context", e))?
        .ok_or_else(|| {
            Error::Config("the sandbox ended before it handed over its bpffs context".into())
        })
}

/// The supervisor (CAP_SYS_ADMIN in the initial user namespace, which the delegation options
/// need): sets [`DELEGATION`], makes the superblock and returns a detached mount of it,
/// read-only, nosuid, nodev, noexec (nothing is ever pinned in it; a token needs only its root
/// directory open).
pub fn delegate(context: OwnedFd) -> Result<OwnedFd, Error> {
    use watertight_sys::mount::{fs_config_string, fs_create, fs_mount};
    for (key, value) in DELEGATION {
        fs_config_string(context.as_fd(), key, value).map_err(|e| {
            Error::io(
                format!(
                    "set {}={} on the sandbox's bpffs",
                    key.to_string_lossy(),
                    value.to_string_lossy()
                ),
                e,
            )
        })?;
    }
    fs_create(context.as_fd()).map_err(|e| Error::io("create the sandbox's bpffs", e))?;
    fs_mount(
        context.as_fd(),
        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
    )
    .map_err(|e| Error::io("mount the sandbox's bpffs", e))
}

/// pid 1, after pivot_root: attaches the delegated bpffs at [`MOUNT_POINT`] (the mount plan
/// made the directory).
pub fn attach(mount: BorrowedFd<'_>, sys: &impl Syscall) -> Result<(), Error> {
    sys.attach_tree(mount, Path::new(MOUNT_POINT))
        .ctx(|| format!("attach the delegated bpffs at {MOUNT_POINT}"))
}
