//! Integrity-only rules (`CompileOptions::exec_integrity`): refuse, whatever the profile allows,
//! every syscall that makes a WRITABLE ALIAS of executable memory or writes into other code.
//!
//! With PR_SET_MDWE(REFUSE_EXEC_GAIN) no single mapping is ever writable and executable, and no
//! mapping gains PROT_EXEC through mprotect. MDWE looks at one mapping's flags, though, not at
//! other mappings of the same pages: code can still be written through one view and run through
//! another. Every such pair needs a SHARED executable mapping (a private mapping's pages are
//! copied on write, so writes through another view never reach them; a private view of a FILE
//! does follow the file's writes, which the exec gate refuses for any unverified file), and
//! shared executable mappings come only from:
//!
//! - `mmap(PROT_EXEC, MAP_SHARED or MAP_SHARED_VALIDATE)`: anonymous shared memory, memfd,
//!   /dev/zero, files (refused here whatever the file: bit 0 of the flags);
//! - `mremap(old, 0, ...)`: old_size 0 makes a second mapping of the same shared pages;
//! - `shmat(SHM_EXEC)`: a SysV segment mapped executable;
//! - `mprotect`/`pkey_mprotect` adding PROT_EXEC to a shared mapping: seccomp cannot tell a
//!   shared mapping from a private one, but MDWE refuses any gain of PROT_EXEC through mprotect,
//!   and the exec gate kills mprotect(PROT_EXEC) of any file-backed mapping (shared anonymous
//!   memory is a shmem file);
//! - `personality(READ_IMPLIES_EXEC)`: afterwards PROT_READ alone maps executable, unseen by any
//!   PROT_EXEC test (here, in MDWE's mmap check and in the exec gate).
//!
//! Writes into code that bypass page protections: `ptrace` (POKETEXT uses FOLL_FORCE) is refused
//! here too, and `userfaultfd` (UFFDIO_COPY fills pages of a read+exec mapping). /proc/<pid>/mem
//! is not a syscall: Landlock refuses opening it for writing (crates/integrity).
//!
//! The rules are a prefix of the compiled program, like `no_second_listener`: independent of
//! libseccomp's rule merging and of whatever the profile says about these syscalls. Each refusal
//! gets the violation action, so the supervisor reports it (`syscall_denied`, verdict SV).

use crate::compile::{jump, stmt};

/// x86_64 syscall numbers.
const NR_MMAP: u32 = 9;
const NR_MREMAP: u32 = 25;
const NR_SHMAT: u32 = 30;
const NR_PTRACE: u32 = 101;
const NR_PERSONALITY: u32 = 135;
const NR_USERFAULTFD: u32 = 323;

const PROT_EXEC: u32 = 0x4;
/// MAP_SHARED (1) and MAP_SHARED_VALIDATE (3) both have bit 0; MAP_PRIVATE (2) has not.
const MAP_SHARED_BIT: u32 = 0x1;
const SHM_EXEC: u32 = 0o100000;
const READ_IMPLIES_EXEC: u32 = 0x0040_0000;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
/// Offset of the low (little-endian) 32 bits of `args[i]` in `struct seccomp_data`.
const fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_high(i: u32) -> u32 {
    20 + 8 * i
}

/// `program` prefixed with the integrity-only rules; `violation` is the raw SECCOMP_RET_* value
/// a refused call gets.
pub(crate) fn exec_integrity_prefix(
    program: Vec<libc::sock_filter>,
    violation: u32,
) -> Vec<libc::sock_filter> {
    if std::env::consts::ARCH != "x86_64" {
        return program;
    }
    let (ld, jeq, jset, ja, ret) = (
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
        libc::BPF_JMP | libc::BPF_JA,
        libc::BPF_RET | libc::BPF_K,
    );
    // Jumps are relative to the next instruction. REFUSE is the last instruction of the prefix,
    // PASS (the original program) follows it; both are reached from instruction i with
    // `to_refuse(i)` / `to_pass(i)`.
    const LEN: usize = 24;
    const REFUSE: usize = LEN - 1;
    let to = |from: usize, target: usize| (target - from - 1) as u8;
    let to_refuse = |from: usize| to(from, REFUSE);
    let to_pass = |from: usize| to(from, LEN);
    let prefix = vec![
        /* 0 */ stmt(ld, SECCOMP_DATA_ARCH),
        // Not x86_64: into the original program (which kills foreign architectures).
        /* 1 */
        jump(jeq, AUDIT_ARCH_X86_64, 0, to_pass(1)),
        /* 2 */ stmt(ld, SECCOMP_DATA_NR),
        /* 3 */ jump(jeq, NR_MMAP, to(3, 10), 0),
        /* 4 */ jump(jeq, NR_MREMAP, to(4, 14), 0),
        /* 5 */ jump(jeq, NR_SHMAT, to(5, 18), 0),
        /* 6 */ jump(jeq, NR_PERSONALITY, to(6, 20), 0),
        /* 7 */ jump(jeq, NR_PTRACE, to_refuse(7), 0),
        /* 8 */ jump(jeq, NR_USERFAULTFD, to_refuse(8), 0),
        /* 9 */ stmt(ja, (LEN - 10) as u32),
        // mmap: PROT_EXEC (args[2]) and a shared mapping type (args[3]).
        /* 10 */
        stmt(ld, arg_low(2)),
        /* 11 */ jump(jset, PROT_EXEC, 0, to_pass(11)),
        /* 12 */ stmt(ld, arg_low(3)),
        /* 13 */ jump(jset, MAP_SHARED_BIT, to_refuse(13), to_pass(13)),
        // mremap: old_size (args[1]) == 0, all 64 bits.
        /* 14 */
        stmt(ld, arg_low(1)),
        /* 15 */ jump(jeq, 0, 0, to_pass(15)),
        /* 16 */ stmt(ld, arg_high(1)),
        /* 17 */ jump(jeq, 0, to_refuse(17), to_pass(17)),
        // shmat: SHM_EXEC in shmflg (args[2], an int).
        /* 18 */
        stmt(ld, arg_low(2)),
        /* 19 */ jump(jset, SHM_EXEC, to_refuse(19), to_pass(19)),
        // personality: READ_IMPLIES_EXEC in the persona (args[0], an unsigned int), except the
        // query 0xffffffff, which changes nothing.
        /* 20 */
        stmt(ld, arg_low(0)),
        /* 21 */ jump(jeq, u32::MAX, to_pass(21), 0),
        /* 22 */ jump(jset, READ_IMPLIES_EXEC, to_refuse(22), to_pass(22)),
        /* 23 = REFUSE */ stmt(ret, violation),
    ];
    debug_assert_eq!(prefix.len(), LEN);
    let mut out = Vec::with_capacity(program.len() + LEN);
    out.extend(prefix);
    out.extend(program);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: u32 = 0x7fc0_0000;
    /// What the prefix returns for a call: Some(ret) when it decides, None when it falls
    /// through into the original program (here one `ret ALLOW`).
    fn run(arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
        let allow = libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        };
        let prog = exec_integrity_prefix(vec![allow], REFUSED);
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        // A classic-BPF interpreter for the instructions the prefix uses.
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = prog[pc];
            let code = u32::from(insn.code);
            pc += 1;
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                let o = insn.k as usize;
                acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
            } else if code == libc::BPF_JMP | libc::BPF_JA {
                pc += insn.k as usize;
            } else if code == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K {
                pc += usize::from(if acc == insn.k { insn.jt } else { insn.jf });
            } else if code == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K {
                pc += usize::from(if acc & insn.k != 0 { insn.jt } else { insn.jf });
            } else if code == libc::BPF_RET | libc::BPF_K {
                return (pc - 1 != prog.len() - 1).then_some(insn.k);
            } else {
                panic!("unexpected instruction {code:#x} at {}", pc - 1);
            }
        }
    }

    #[test]
    fn refuses_exactly_the_code_aliasing_calls() {
        let x = AUDIT_ARCH_X86_64;
        let exec_shared = [0, 4096, 5, 0x21, u64::MAX, 0];
        assert_eq!(
            run(x, NR_MMAP, exec_shared),
            Some(REFUSED),
            "shared anonymous r-x"
        );
        assert_eq!(
            run(x, NR_MMAP, [0, 4096, 5, 0x3, 3, 0]),
            Some(REFUSED),
            "MAP_SHARED_VALIDATE"
        );
        assert_eq!(
            run(x, NR_MMAP, [0, 4096, 5, 0x2, 3, 0]),
            None,
            "private r-x (ld.so)"
        );
        assert_eq!(run(x, NR_MMAP, [0, 4096, 3, 0x1, 3, 0]), None, "shared rw-");
        assert_eq!(
            run(x, NR_MREMAP, [1 << 20, 0, 4096, 1, 0, 0]),
            Some(REFUSED)
        );
        assert_eq!(run(x, NR_MREMAP, [1 << 20, 1 << 32, 4096, 1, 0, 0]), None);
        assert_eq!(run(x, NR_MREMAP, [1 << 20, 4096, 8192, 1, 0, 0]), None);
        assert_eq!(run(x, NR_SHMAT, [1, 0, 0o110000, 0, 0, 0]), Some(REFUSED));
        assert_eq!(
            run(x, NR_SHMAT, [1, 0, 0o10000, 0, 0, 0]),
            None,
            "SHM_RDONLY"
        );
        assert_eq!(
            run(x, NR_PERSONALITY, [0x0040_0000, 0, 0, 0, 0, 0]),
            Some(REFUSED)
        );
        assert_eq!(
            run(x, NR_PERSONALITY, [0xffff_ffff, 0, 0, 0, 0, 0]),
            None,
            "query"
        );
        assert_eq!(run(x, NR_PERSONALITY, [0, 0, 0, 0, 0, 0]), None);
        assert_eq!(run(x, NR_PTRACE, [0; 6]), Some(REFUSED));
        assert_eq!(run(x, NR_USERFAULTFD, [0; 6]), Some(REFUSED));
        assert_eq!(run(x, 39, exec_shared), None, "getpid");
        assert_eq!(
            run(0x4000_0003, NR_MMAP, exec_shared),
            None,
            "i386: the program decides"
        );
    }
}
