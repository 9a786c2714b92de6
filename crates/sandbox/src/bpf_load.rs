//! `run --bpf-observe`: the supervisor's vetted BPF_PROG_LOAD, which closes the helper gap of
//! BPF tokens (docs/bpf-observe.md). The sandbox's seccomp filter sends every
//! `bpf(BPF_PROG_LOAD)` to the supervisor (the violation action, a user notification); the
//! supervisor:
//!
//! 1. copies the attribute **once** from the task's memory, then the instructions and the
//!    license, and checks that the notification is still pending (so that memory was the
//!    blocked task's); from then on it reads only its own copy;
//! 2. vets its copy ([`vet`]): a delegated program type and attach type, nothing it cannot
//!    check (BTF, func/line info, fd_array, other flags), every helper call on the allowlist
//!    ([`ALLOWED_HELPERS`]: observing, never acting), no kfunc calls;
//! 3. takes the descriptors the program names (the token, the maps of `ld_imm64`) from the task
//!    with pidfd_getfd, rewrites its copy to them, loads the copy through the task's token from
//!    a child in the sandbox's cgroup and user namespace with only CAP_BPF and CAP_PERFMON there
//!    (so the kernel applies the token's delegation as to the program itself, and charges the
//!    sandbox) and installs the
//!    program's descriptor in the task as the call's return value
//!    (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND).
//!
//! What the kernel verifies is exactly what was vetted: no time-of-check/time-of-use window.
//! If the supervisor dies, the call fails (ENOSYS) like every notified call. The fuller vetter
//! (per-program-type helper sets, signatures) belongs to the `watertight-bpf` crate: [`vet`] is
//! the seam it replaces.

use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use watertight_sys::bpf::BpfInsn;

/// BPF_PROG_LOAD (uapi `enum bpf_cmd`).
pub const BPF_PROG_LOAD: u64 = 5;
/// The program types `layers::bpf::DELEGATION` delegates: tracepoint (5), raw_tracepoint (17).
pub const PROGRAM_TYPES: [u32; 2] = [5, 17];
/// The most instructions a program may have. Below the kernel's 1M: the supervisor waits for
/// each load's verification (in its loader child, which joins the sandbox's cgroup).
pub const MAX_INSNS: u32 = 65_536;
/// The bytes of `union bpf_attr` this copy understands (through `fd_array_cnt`); a longer
/// attribute must be zero beyond them, as the kernel requires of what it does not know.
const KNOWN_ATTR: usize = 152;
/// The longest attribute copied (the kernel accepts at most a page).
const MAX_ATTR: usize = 4096;

/// Helpers an observer in a sandbox may call, by name in the one helper table
/// (`watertight_bpf::helpers`, every id of the kernel with its class): observing and output
/// helpers that only read what the program is given or report what it saw. Stricter than the
/// gatekeeper's built-in policy, which admits every observe and output helper: a tenant's
/// program fires in every host task's context, so reading arbitrary memory is refused here too.
/// Everything else is refused, among them bpf_send_signal and bpf_send_signal_thread (act on
/// whatever host task a tracepoint fires in), bpf_probe_read_kernel/_user and bpf_probe_read
/// (read any memory), bpf_probe_write_user, bpf_override_return, bpf_get_current_task,
/// bpf_d_path.
pub const ALLOWED_HELPERS: &[&str] = &[
    "map_lookup_elem",
    "map_update_elem",
    "map_delete_elem",
    "ktime_get_ns",
    "get_prandom_u32",
    "get_smp_processor_id",
    "get_current_pid_tgid",
    "get_current_uid_gid",
    "get_current_comm",
    "get_current_cgroup_id",
    "ktime_get_boot_ns",
    "ringbuf_output",
    "ringbuf_reserve",
    "ringbuf_submit",
    "ringbuf_discard",
    "ringbuf_query",
];

/// Whether a `call` with this `imm` calls an allowed helper; otherwise the refusal's words
/// (`helper send_signal (109, act)`).
fn helper_allowed(imm: i32) -> Result<(), String> {
    let helper = u32::try_from(imm)
        .ok()
        .and_then(watertight_bpf::helpers::by_id);
    match helper {
        Some(h) if ALLOWED_HELPERS.contains(&h.name.as_str()) => Ok(()),
        Some(h) => Err(format!("helper {} ({}, {})", h.name, h.id, h.class)),
        None => Err(format!(
            "helper {imm}, which the helper table does not know"
        )),
    }
}

/// Why a program was refused: the errno the task gets and the reason the event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// EPERM for what the policy forbids, EINVAL for what the vetted load does not handle.
    pub errno: i32,
    /// One line for the event (`instruction 1 calls helper send_signal (109, act), which is
    /// not allowed`).
    pub reason: String,
}

fn refuse(errno: i32, reason: impl Into<String>) -> Refusal {
    Refusal {
        errno,
        reason: reason.into(),
    }
}

/// What became of one notified BPF_PROG_LOAD.
#[derive(Debug)]
pub enum Served {
    /// Loaded: the task got the program's descriptor.
    Loaded,
    /// The kernel refused the vetted copy (the verifier, the token) or the task left the call:
    /// answered with the kernel's errno, not a violation.
    Failed(i32),
    /// The policy refused it: a violation (the caller records it and answers as
    /// `on_violation` says).
    Refused(Refusal),
}

/// The fields of the copied attribute the load reads (little-endian offsets of
/// `union bpf_attr` for BPF_PROG_LOAD).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attr {
    /// `prog_type`.
    pub prog_type: u32,
    /// `insn_cnt`.
    pub insn_cnt: u32,
    /// `insns` (an address in the task).
    pub insns: u64,
    /// `license` (an address in the task).
    pub license: u64,
    /// `kern_version`.
    pub kern_version: u32,
    /// `prog_flags`.
    pub prog_flags: u32,
    /// `prog_name`.
    pub prog_name: [u8; 16],
    /// `expected_attach_type`.
    pub expected_attach_type: u32,
    /// `prog_token_fd` (a descriptor of the task).
    pub prog_token_fd: i32,
    /// Set when any field the vetted load does not handle is non-zero: its name.
    pub unsupported: Option<&'static str>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

impl Attr {
    /// Reads the attribute from `bytes` (the task's, as long as it said, at most a page).
    pub fn parse(bytes: &[u8]) -> Result<Attr, Refusal> {
        if bytes[KNOWN_ATTR.min(bytes.len())..].iter().any(|b| *b != 0) {
            return Err(refuse(
                libc::E2BIG,
                "attribute fields past fd_array_cnt are set",
            ));
        }
        let mut b = [0u8; KNOWN_ATTR];
        let n = bytes.len().min(KNOWN_ATTR);
        b[..n].copy_from_slice(&bytes[..n]);
        // The verifier log (log_level, log_size, log_buf) is accepted and not produced: the
        // vetted copy loads without one, and the task's buffer stays as it was.
        let unsupported = [
            (64, "prog_ifindex"),
            (72, "prog_btf_fd"),
            (88, "func_info_cnt"),
            (104, "line_info_cnt"),
            (108, "attach_btf_id"),
            (112, "attach_prog_fd"),
            (116, "core_relo_cnt"),
            (148, "fd_array_cnt"),
        ]
        .into_iter()
        .find(|(off, _)| u32_at(&b, *off) != 0)
        .map(|(_, name)| name)
        .or_else(|| (u64_at(&b, 120) != 0).then_some("fd_array"));
        Ok(Attr {
            prog_type: u32_at(&b, 0),
            insn_cnt: u32_at(&b, 4),
            insns: u64_at(&b, 8),
            license: u64_at(&b, 16),
            kern_version: u32_at(&b, 40),
            prog_flags: u32_at(&b, 44),
            prog_name: b[48..64].try_into().expect("16 bytes"),
            expected_attach_type: u32_at(&b, 68),
            prog_token_fd: u32_at(&b, 144) as i32,
            unsupported,
        })
    }
}

/// The policy, on the supervisor's own copy: the attribute, then every instruction. Returns
/// the task's map descriptors the program names (`ld_imm64` with BPF_PSEUDO_MAP_FD or
/// BPF_PSEUDO_MAP_VALUE), each with the index of its instruction.
pub fn vet(attr: &Attr, insns: &[BpfInsn]) -> Result<Vec<(usize, i32)>, Refusal> {
    if !PROGRAM_TYPES.contains(&attr.prog_type) || attr.expected_attach_type != 0 {
        return Err(refuse(
            libc::EPERM,
            format!(
                "program type {} (attach type {}) is not delegated",
                attr.prog_type, attr.expected_attach_type
            ),
        ));
    }
    if attr.prog_flags != watertight_sys::bpf::F_TOKEN_FD {
        return Err(refuse(
            libc::EPERM,
            format!(
                "prog_flags {:#x}: only a load through the token (BPF_F_TOKEN_FD) is served",
                attr.prog_flags
            ),
        ));
    }
    if let Some(field) = attr.unsupported {
        return Err(refuse(
            libc::EINVAL,
            format!("{field} is set: the vetted load takes no BTF, func/line info or fd_array"),
        ));
    }
    let mut maps = Vec::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = insns[i];
        match insn.code {
            // BPF_JMP | BPF_CALL
            0x85 => match insn.src() {
                0 => {
                    if let Err(helper) = helper_allowed(insn.imm) {
                        return Err(refuse(
                            libc::EPERM,
                            format!("instruction {i} calls {helper}, which is not allowed"),
                        ));
                    }
                }
                1 => {} // a call to a function of the program itself
                s => {
                    return Err(refuse(
                        libc::EPERM,
                        format!("instruction {i}: call with src_reg {s} (kfunc) is not allowed"),
                    ))
                }
            },
            // Any other call encoding (BPF_JMP32 | BPF_CALL, a register call): the verifier
            // refuses them; so does this, rather than depend on it.
            0x86 | 0x8d | 0x8e => {
                return Err(refuse(
                    libc::EPERM,
                    format!(
                        "instruction {i}: call encoding {:#x} is not allowed",
                        insn.code
                    ),
                ))
            }
            // BPF_LD | BPF_IMM | BPF_DW: two instructions
            0x18 => {
                match insn.src() {
                    0 | 4 => {} // a constant; the address of a function of the program
                    1 | 2 => maps.push((i, insn.imm)),
                    s => {
                        return Err(refuse(
                            libc::EINVAL,
                            format!("instruction {i}: ld_imm64 with src_reg {s} is not served"),
                        ))
                    }
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(maps)
}

/// Reads `len` bytes at `addr` of task `pid`.
fn read_task(pid: u32, addr: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(format!("/proc/{pid}/mem"))?;
    f.seek(SeekFrom::Start(addr))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// Serves one notified BPF_PROG_LOAD (`args`: the call's arguments) of task `pid`, whose
/// sandbox's cgroup has the directories `cgroup` (the loader joins them).
pub fn serve(
    listener: BorrowedFd<'_>,
    id: u64,
    pid: u32,
    args: [u64; 6],
    cgroup: &[std::path::PathBuf],
) -> Served {
    let fault = |_| Served::Failed(libc::EFAULT);
    // 1. One copy of everything the load reads.
    let size = (args[2] as u32 as usize).min(MAX_ATTR);
    let attr = match read_task(pid, args[1], size).map_err(fault) {
        Ok(b) => match Attr::parse(&b) {
            Ok(a) => a,
            Err(r) => return Served::Refused(r),
        },
        Err(f) => return f,
    };
    if attr.insn_cnt == 0 || attr.insn_cnt > MAX_INSNS {
        return Served::Failed(libc::E2BIG);
    }
    let raw = match read_task(pid, attr.insns, attr.insn_cnt as usize * 8) {
        Ok(b) => b,
        Err(_) => return Served::Failed(libc::EFAULT),
    };
    let mut insns: Vec<BpfInsn> = raw
        .chunks_exact(8)
        .map(|c| BpfInsn {
            code: c[0],
            regs: c[1],
            off: i16::from_le_bytes([c[2], c[3]]),
            imm: i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let license = match read_task(pid, attr.license, 128)
        .ok()
        .or_else(|| read_task(pid, attr.license, 16).ok())
    {
        Some(b) => {
            let end = b.iter().position(|c| *c == 0).unwrap_or(0);
            CString::new(&b[..end]).unwrap_or_default()
        }
        None => return Served::Failed(libc::EFAULT),
    };
    // The memory read was the blocked task's only if it still waits in this very call.
    if !watertight_sys::seccomp::notif_id_valid(listener, id).unwrap_or(false) {
        return Served::Failed(libc::EINTR);
    }
    // 2. The policy, on the copy.
    let maps = match vet(&attr, &insns) {
        Ok(m) => m,
        Err(r) => return Served::Refused(r),
    };
    // 3. The task's descriptors, taken into the supervisor; the copy rewritten to them.
    let Ok(pidfd) = watertight_sys::process::pidfd_open(pid) else {
        return Served::Failed(libc::ESRCH);
    };
    let take = |fd: i32| watertight_sys::process::pidfd_getfd(pidfd.as_fd(), fd);
    let Ok(token) = take(attr.prog_token_fd) else {
        return Served::Failed(libc::EBADF);
    };
    let mut held: Vec<OwnedFd> = Vec::new();
    for (index, fd) in maps {
        match take(fd) {
            Ok(ours) => {
                use std::os::fd::AsRawFd;
                insns[index].imm = ours.as_raw_fd();
                held.push(ours);
            }
            Err(_) => return Served::Failed(libc::EBADF),
        }
    }
    // pidfd_getfd took from the process the pid named: make sure it still is the waiting task.
    if !watertight_sys::seccomp::notif_id_valid(listener, id).unwrap_or(false) {
        return Served::Failed(libc::EINTR);
    }
    let load = watertight_sys::bpf::TokenLoad {
        prog_type: attr.prog_type,
        expected_attach_type: attr.expected_attach_type,
        insns: &insns,
        license: &license,
        name: attr.prog_name,
        kern_version: attr.kern_version,
        token: token.as_fd(),
    };
    let prog = match load_as_the_sandbox(pid, cgroup, &load) {
        Ok(p) => p,
        Err(e) => return Served::Failed(e.raw_os_error().unwrap_or(libc::EINVAL)),
    };
    drop(held);
    // The program's descriptor becomes the call's return value in the task, in one step.
    match watertight_sys::seccomp::notif_addfd_send(listener, id, prog.as_fd()) {
        Ok(_) => Served::Loaded,
        Err(_) => Served::Failed(libc::EINTR), // the task left the call: the program goes
    }
}

/// Loads `load` from a short-lived child that joins the sandbox's cgroup (`cgroup`: the
/// program's kernel memory and the verifier's CPU time are then the sandbox's, within its
/// limits), enters the user namespace of task `pid` and holds only CAP_BPF and CAP_PERFMON
/// there (`layers::bpf::KEPT_CAPABILITIES`), as the program itself would: the kernel then
/// applies the token's delegation to this load too (a type or attach type the token does not
/// delegate is EPERM), where the supervisor's own capabilities would load anything. A fork, not
/// a thread or a shared-memory child: a process whose memory is shared cannot enter another
/// user namespace. The program's descriptor comes back over a socket pair.
fn load_as_the_sandbox(
    pid: u32,
    cgroup: &[std::path::PathBuf],
    load: &watertight_sys::bpf::TokenLoad<'_>,
) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use watertight_sys::process::{exit_now, fork, Forked};
    let userns = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    match fork()? {
        Forked::Child => {
            drop(ours);
            let loaded = join_cgroup(cgroup)
                .and_then(|()| {
                    nix::sched::setns(&userns, nix::sched::CloneFlags::CLONE_NEWUSER)
                        .map_err(std::io::Error::from)
                })
                .and_then(|()| {
                    watertight_sys::process::clear_capability_sets_except(
                        crate::layers::bpf::KEPT_CAPABILITIES,
                    )
                })
                .and_then(|()| watertight_sys::bpf::prog_load_with_token(load));
            match loaded {
                Ok(prog) => {
                    let sent = watertight_sys::fdpass::send_fd(theirs.as_fd(), prog.as_fd());
                    exit_now(if sent.is_ok() { 0 } else { 1 })
                }
                Err(e) => exit_now(e.raw_os_error().unwrap_or(libc::EINVAL).clamp(1, 255)),
            }
        }
        Forked::Parent { pid: child, .. } => {
            drop(theirs);
            let status = watertight_sys::process::wait4(child, false)?;
            let code = status.map(|r| r.status).unwrap_or(0x7f00);
            let exited = libc::WIFEXITED(code);
            match (exited, libc::WEXITSTATUS(code)) {
                (true, 0) => watertight_sys::fdpass::recv_fd(ours.as_fd())?
                    .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EIO)),
                (true, errno) => Err(std::io::Error::from_raw_os_error(errno)),
                (false, _) => Err(std::io::Error::from_raw_os_error(libc::EIO)),
            }
        }
    }
}

/// Moves the calling (single-threaded) process into every directory of the sandbox's cgroup:
/// through `tasks` in a cgroup v1 hierarchy (a process moving itself takes no global lock),
/// `cgroup.procs` in the unified one; "0" is the writer itself. A refusal (the pids limit
/// reached) fails the load.
fn join_cgroup(dirs: &[std::path::PathBuf]) -> std::io::Result<()> {
    for dir in dirs {
        let tasks = dir.join("tasks");
        let file = if tasks.exists() {
            tasks
        } else {
            dir.join("cgroup.procs")
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"0"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(prog_type: u32) -> Attr {
        Attr {
            prog_type,
            insn_cnt: 2,
            prog_flags: watertight_sys::bpf::F_TOKEN_FD,
            ..Attr::default()
        }
    }

    const EXIT0: [BpfInsn; 2] = [
        BpfInsn::new(0xb7, 0, 0, 0, 0),
        BpfInsn::new(0x95, 0, 0, 0, 0),
    ];

    fn call(helper: i32) -> Vec<BpfInsn> {
        vec![BpfInsn::new(0x85, 0, 0, 0, helper), EXIT0[0], EXIT0[1]]
    }

    #[test]
    fn every_allowed_helper_is_in_the_table_as_observe_or_output() {
        use watertight_bpf::HelperClass;
        for name in ALLOWED_HELPERS {
            let h = watertight_bpf::helpers::by_name(name)
                .unwrap_or_else(|| panic!("{name} is not in the helper table"));
            assert!(
                matches!(h.class, HelperClass::Observe | HelperClass::Output),
                "{name} is {}",
                h.class
            );
            assert!(helper_allowed(h.id as i32).is_ok(), "{name}");
        }
    }

    #[test]
    fn observing_helpers_pass_and_acting_or_reading_ones_are_refused() {
        assert_eq!(vet(&attr(5), &EXIT0), Ok(vec![]));
        assert_eq!(vet(&attr(17), &call(14)), Ok(vec![]));
        for (helper, name) in [
            (109, "send_signal"),
            (117, "send_signal_thread"),
            (113, "probe_read_kernel"),
            (4, "probe_read"),
            (36, "probe_write_user"),
            (58, "override_return"),
            (35, "get_current_task"),
            (6, "trace_printk"),
            (-1, "no such helper"),
        ] {
            let r = vet(&attr(5), &call(helper)).unwrap_err();
            assert_eq!(r.errno, libc::EPERM, "{name}");
            let named = if helper < 0 {
                format!("helper {helper}, which the helper table does not know")
            } else {
                format!("helper {name} ({helper}, ")
            };
            assert!(r.reason.contains(&named), "{name}: {r:?}");
        }
        // A kfunc call (src_reg 2), a 32-bit-class call, a register call.
        let kfunc = [BpfInsn::new(0x85, 0, 2, 0, 1234), EXIT0[0], EXIT0[1]];
        assert!(vet(&attr(5), &kfunc).unwrap_err().reason.contains("kfunc"));
        for code in [0x86, 0x8d] {
            let odd = [BpfInsn::new(code, 0, 0, 0, 109), EXIT0[0], EXIT0[1]];
            assert_eq!(vet(&attr(5), &odd).unwrap_err().errno, libc::EPERM);
        }
    }

    #[test]
    fn the_second_half_of_ld_imm64_is_never_read_as_a_call() {
        // ld_imm64 r1 = 0x85..., whose second half looks like `call 109`.
        let insns = [
            BpfInsn::new(0x18, 1, 0, 0, 0),
            BpfInsn::new(0x85, 0, 0, 0, 109),
            EXIT0[0],
            EXIT0[1],
        ];
        assert_eq!(vet(&attr(5), &insns), Ok(vec![]));
        // Map references are collected with their instruction.
        let map = [
            BpfInsn::new(0x18, 1, 1, 0, 7),
            BpfInsn::new(0, 0, 0, 0, 0),
            EXIT0[0],
            EXIT0[1],
        ];
        assert_eq!(vet(&attr(5), &map), Ok(vec![(0, 7)]));
    }

    #[test]
    fn types_flags_and_fields_it_cannot_check_are_refused() {
        assert!(vet(&attr(2), &EXIT0).unwrap_err().reason.contains("type 2"));
        let mut a = attr(5);
        a.expected_attach_type = 1;
        assert_eq!(vet(&a, &EXIT0).unwrap_err().errno, libc::EPERM);
        let mut a = attr(5);
        a.prog_flags = 0;
        assert!(vet(&a, &EXIT0)
            .unwrap_err()
            .reason
            .contains("BPF_F_TOKEN_FD"));
        // prog_btf_fd at offset 72, fd_array at 120; bytes past 152 must be zero.
        let mut bytes = vec![0u8; 200];
        bytes[0] = 5; // tracepoint
        bytes[44..48].copy_from_slice(&watertight_sys::bpf::F_TOKEN_FD.to_le_bytes());
        bytes[72] = 3;
        let a = Attr::parse(&bytes).unwrap();
        assert_eq!(a.unsupported, Some("prog_btf_fd"));
        assert_eq!(vet(&a, &EXIT0).unwrap_err().errno, libc::EINVAL);
        bytes[72] = 0;
        bytes[120] = 1;
        assert_eq!(Attr::parse(&bytes).unwrap().unsupported, Some("fd_array"));
        bytes[120] = 0;
        bytes[160] = 1;
        assert_eq!(Attr::parse(&bytes).unwrap_err().errno, libc::E2BIG);
        // A short attribute is zero-filled, as the kernel does.
        assert_eq!(Attr::parse(&bytes[..8]).unwrap().prog_flags, 0);
    }
}
