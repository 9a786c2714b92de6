//! Raw `bpf(2)` wrappers: load a program from hand-assembled instructions, attach it to a cgroup
//! and detach it again. Used by watertight-cgroups for the cgroup v2 device allowlist
//! (`BPF_PROG_TYPE_CGROUP_DEVICE`), which is a dozen instructions: pulling in libbpf for that
//! would cost a C build and tens of milliseconds per load.
//!
//! Only the `bpf_attr` prefixes these three commands read are declared; the kernel zero-fills
//! the rest of the union when the passed size is smaller than its own.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_PROG_LOAD` command number (uapi/linux/bpf.h `enum bpf_cmd`).
const BPF_PROG_LOAD: libc::c_int = 5;
/// `BPF_PROG_ATTACH` command number.
const BPF_PROG_ATTACH: libc::c_int = 8;
/// `BPF_PROG_DETACH` command number.
const BPF_PROG_DETACH: libc::c_int = 9;
/// `BPF_PROG_GET_NEXT_ID` command number.
const BPF_PROG_GET_NEXT_ID: libc::c_int = 11;
/// `BPF_TOKEN_CREATE` command number (Linux 6.9).
const BPF_TOKEN_CREATE: libc::c_int = 36;

/// `BPF_PROG_TYPE_CGROUP_DEVICE` (uapi `enum bpf_prog_type`).
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` (uapi `enum bpf_attach_type`).
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs may be attached to one cgroup and all must allow.
pub const F_ALLOW_MULTI: u32 = 2;

/// Size of the verifier log buffer used to explain a refused program.
const VERIFIER_LOG_BYTES: usize = 64 * 1024;

/// One eBPF instruction, laid out exactly like the kernel's `struct bpf_insn`
/// (`code`, `dst_reg:4 | src_reg:4`, `off`, `imm`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    /// Opcode: instruction class, size or operation, and source mode.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high nibble.
    pub regs: u8,
    /// Signed offset: the jump distance in instructions, or the memory offset of a load/store.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

impl BpfInsn {
    /// Builds an instruction; registers are 0..=10 and are masked to four bits.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
        BpfInsn {
            code,
            regs: (dst & 0x0f) | ((src & 0x0f) << 4),
            off,
            imm,
        }
    }

    /// The destination register.
    pub const fn dst(&self) -> u8 {
        self.regs & 0x0f
    }

    /// The source register.
    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }
}

/// A failed bpf() command, with the verifier's explanation when the kernel gave one.
#[derive(Debug, thiserror::Error)]
#[error("bpf({command}) failed: {source}{}", verifier_suffix(.verifier_log))]
pub struct BpfError {
    /// The bpf() command that failed, e.g. `BPF_PROG_LOAD`.
    pub command: &'static str,
    /// The errno the kernel returned.
    #[source]
    pub source: io::Error,
    /// Verifier log (empty unless a load was refused and the kernel explained why).
    pub verifier_log: String,
}

fn verifier_suffix(log: &str) -> String {
    let trimmed = log.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("; verifier: {}", trimmed.replace('\n', " | "))
    }
}

/// `bpf_attr` prefix read by `BPF_PROG_LOAD` (through `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `bpf_attr` prefix read by `BPF_PROG_LOAD` through `fd_array_cnt` (Linux 6.9+: the token's
/// descriptor at offset 144).
#[repr(C)]
#[derive(Default)]
struct ProgLoadTokenAttr {
    base: ProgLoadAttr,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_prog_fd: u32,
    core_relo_cnt: u32,
    fd_array: u64,
    core_relos: u64,
    core_relo_rec_size: u32,
    log_true_size: u32,
    prog_token_fd: i32,
    fd_array_cnt: u32,
}

/// `BPF_F_TOKEN_FD`: `prog_token_fd` holds a BPF token.
pub const F_TOKEN_FD: u32 = 1 << 16;

/// One program to load through a BPF token, every descriptor it names already this process's
/// own (the supervisor's vetted load for `run --bpf-observe`).
pub struct TokenLoad<'a> {
    /// `prog_type`.
    pub prog_type: u32,
    /// `expected_attach_type`.
    pub expected_attach_type: u32,
    /// The instructions, map descriptors in them rewritten to this process's.
    pub insns: &'a [BpfInsn],
    /// The license string.
    pub license: &'a CStr,
    /// `prog_name` as given (NUL-padded).
    pub name: [u8; 16],
    /// `kern_version`.
    pub kern_version: u32,
    /// The token.
    pub token: BorrowedFd<'a>,
}

/// BPF_PROG_LOAD of `load` through its token, without a verifier log. The error is the
/// kernel's errno, as the program that asked would have got it.
pub fn prog_load_with_token(load: &TokenLoad<'_>) -> io::Result<OwnedFd> {
    let insn_cnt =
        u32::try_from(load.insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let mut attr = ProgLoadTokenAttr {
        base: ProgLoadAttr {
            prog_type: load.prog_type,
            insn_cnt,
            insns: load.insns.as_ptr() as u64,
            license: load.license.as_ptr() as u64,
            kern_version: load.kern_version,
            prog_flags: F_TOKEN_FD,
            prog_name: load.name,
            expected_attach_type: load.expected_attach_type,
            ..ProgLoadAttr::default()
        },
        prog_token_fd: load.token.as_raw_fd(),
        ..ProgLoadTokenAttr::default()
    };
    sys_bpf(BPF_PROG_LOAD, &mut attr).map(owned_fd)
}

/// `bpf_attr` prefix read by `BPF_TOKEN_CREATE`.
#[repr(C)]
#[derive(Default)]
struct TokenCreateAttr {
    flags: u32,
    bpffs_fd: u32,
}

/// `bpf_attr` prefix read by `BPF_PROG_ATTACH` / `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` points to a live, initialised #[repr(C)] struct whose layout is a prefix of
    // the kernel's `union bpf_attr` for `cmd`, and we pass its exact size, so the kernel reads
    // only memory we own. Pointers stored inside it (instructions, license, log buffer) are
    // kept alive by the caller for the duration of this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Loads a program of `prog_type` from `insns`. On refusal the load is repeated once with the
/// verifier log enabled so the error says why.
pub fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[BpfInsn],
    license: &CStr,
    name: &str,
) -> Result<OwnedFd, BpfError> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| BpfError {
        command: "BPF_PROG_LOAD",
        source: io::Error::from_raw_os_error(libc::E2BIG),
        verifier_log: String::new(),
    })?;
    let mut prog_name = [0u8; 16];
    // The kernel accepts [A-Za-z0-9_.] and needs a terminating NUL within 16 bytes.
    for (slot, byte) in prog_name
        .iter_mut()
        .zip(
            name.bytes()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'),
        )
        .take(15)
    {
        *slot = byte;
    }
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name,
        expected_attach_type,
        ..ProgLoadAttr::default()
    };
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            let mut log = vec![0u8; VERIFIER_LOG_BYTES];
            attr.log_level = 1;
            attr.log_size = VERIFIER_LOG_BYTES as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match sys_bpf(BPF_PROG_LOAD, &mut attr) {
                // A transient refusal that passed the second time: keep the program.
                Ok(fd) => Ok(owned_fd(fd)),
                Err(_) => {
                    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                    Err(BpfError {
                        command: "BPF_PROG_LOAD",
                        source: first,
                        verifier_log: String::from_utf8_lossy(&log[..end]).into_owned(),
                    })
                }
            }
        }
    }
}

fn owned_fd(raw: libc::c_long) -> OwnedFd {
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) }
}

/// Attaches `prog` to the cgroup open at `cgroup_dir` (a directory fd in a cgroup2 hierarchy).
pub fn prog_attach(
    cgroup_dir: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> Result<(), BpfError> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup_dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    sys_bpf(BPF_PROG_ATTACH, &mut attr)
        .map(|_| ())
        .map_err(|source| BpfError {
            command: "BPF_PROG_ATTACH",
            source,
            verifier_log: String::new(),
        })
}

/// Detaches `prog` (attached with [`F_ALLOW_MULTI`] or without flags) from the cgroup.
pub fn prog_detach(
    cgroup_dir: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<(), BpfError> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup_dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        ..ProgAttachAttr::default()
    };
    sys_bpf(BPF_PROG_DETACH, &mut attr)
        .map(|_| ())
        .map_err(|source| BpfError {
            command: "BPF_PROG_DETACH",
            source,
            verifier_log: String::new(),
        })
}

/// Whether this kernel knows `BPF_TOKEN_CREATE` (BPF tokens, Linux 6.9), asked without creating
/// anything: the command is given a descriptor that cannot be open (`u32::MAX`), which a kernel
/// with tokens refuses with EBADF and one without refuses with EINVAL (an unknown command).
/// `Ok(true)`: known; `Ok(false)`: unknown; `Err`: another answer (ENOSYS: no bpf() at all;
/// EPERM: an LSM refused the call), which tells nothing about tokens.
pub fn token_create_supported() -> io::Result<bool> {
    let mut attr = TokenCreateAttr {
        flags: 0,
        bpffs_fd: u32::MAX,
    };
    match sys_bpf(BPF_TOKEN_CREATE, &mut attr) {
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
        // No descriptor can be u32::MAX; should a kernel hand out a token all the same, close it.
        Ok(fd) => {
            drop(owned_fd(fd));
            Ok(true)
        }
    }
}

/// `bpf_attr` prefix read by `BPF_PROG_GET_NEXT_ID`.
#[repr(C)]
#[derive(Default)]
struct GetNextIdAttr {
    start_id: u32,
    next_id: u32,
}

/// The id of the first loaded BPF program whose id is greater than `start` (`Ok(None)`: there
/// is none). Unlike libbpf's iterators this says why it stopped: EPERM without CAP_SYS_ADMIN in
/// the initial user namespace, so an auditor can tell "none" from "not allowed to look".
pub fn prog_get_next_id(start: u32) -> io::Result<Option<u32>> {
    let mut attr = GetNextIdAttr {
        start_id: start,
        next_id: 0,
    };
    match sys_bpf(BPF_PROG_GET_NEXT_ID, &mut attr) {
        Ok(_) => Ok(Some(attr.next_id)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_matches_kernel_layout() {
        assert_eq!(std::mem::size_of::<BpfInsn>(), 8);
        let insn = BpfInsn::new(0x61, 2, 1, 4, -7);
        assert_eq!((insn.dst(), insn.src()), (2, 1));
        assert_eq!(insn.regs, 0x12);
    }

    #[test]
    fn attr_prefixes_have_kernel_offsets() {
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<ProgAttachAttr>(), 20);
        assert_eq!(std::mem::size_of::<TokenCreateAttr>(), 8);
        assert_eq!(std::mem::size_of::<ProgLoadTokenAttr>(), 152);
        assert_eq!(std::mem::offset_of!(ProgLoadTokenAttr, prog_token_fd), 144);
    }

    #[test]
    fn token_support_follows_the_kernel_version() {
        let release = nix::sys::utsname::uname().unwrap();
        let release = release.release().to_string_lossy().into_owned();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().unwrap().parse().unwrap();
        let minor: u32 = parts.next().unwrap().parse().unwrap();
        match token_create_supported() {
            Ok(known) => assert_eq!(known, (major, minor) >= (6, 9), "kernel {release}"),
            // No bpf() at all, or an LSM in the way: no answer, and never a token.
            Err(e) => assert!(
                matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)),
                "{e}"
            ),
        }
    }

    #[test]
    fn refused_program_reports_verifier_log() {
        // `exit` without setting r0: the verifier must refuse it (or bpf() is unavailable, which
        // is also an error). Either way the call fails cleanly rather than returning an fd.
        let insns = [BpfInsn::new(0x95, 0, 0, 0, 0)];
        let err = prog_load(
            PROG_TYPE_CGROUP_DEVICE,
            ATTACH_CGROUP_DEVICE,
            &insns,
            c"GPL",
            "t",
        )
        .expect_err("program without r0 must be refused");
        assert_eq!(err.command, "BPF_PROG_LOAD");
        if err.source.raw_os_error() == Some(libc::EACCES) {
            assert!(err.verifier_log.contains("R0"), "log: {}", err.verifier_log);
        }
    }
}
