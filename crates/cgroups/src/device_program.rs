//! The cgroup v2 device allowlist: a hand-assembled `BPF_PROG_TYPE_CGROUP_DEVICE` program (the
//! same shape runc and crun generate) and its load/attach/detach lifecycle.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where `access_type = (access << 16) | type`, walks the rules in order and returns 1 (allow)
//! at the first match, 0 (deny, the kernel answers EPERM) when none matches.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use watertight_sys::bpf::{self, BpfInsn};

use crate::{DeviceKind, DeviceRule, Error};

// Opcodes (uapi/linux/bpf.h, bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const ALU64_RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const ALU64_MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
/// BPF_JMP32 | BPF_JNE | BPF_K: compares the low 32 bits, so majors/minors above i32::MAX
/// compare correctly against the sign-extended immediate.
const JMP32_JNE_K: u8 = 0x56;
const EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx encodings (uapi BPF_DEVCG_*).
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Registers: r1 = ctx (then scratch), r2 = device type, r3 = requested access, r4 = major,
// r5 = minor, r0 = verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Assembles the allowlist program for `rules` (deny everything else).
pub fn assemble(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let mut insns = vec![
        BpfInsn::new(LDX_MEM_W, R2, R1, 0, 0),
        BpfInsn::new(ALU64_AND_K, R2, 0, 0, 0xffff),
        BpfInsn::new(LDX_MEM_W, R3, R1, 0, 0),
        BpfInsn::new(ALU64_RSH_K, R3, 0, 0, 16),
        BpfInsn::new(LDX_MEM_W, R4, R1, 4, 0),
        BpfInsn::new(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in rules {
        let mut checks: Vec<BpfInsn> = Vec::new();
        // Each check jumps to the next rule on mismatch; offsets are patched below once the
        // block length is known.
        match rule.kind {
            DeviceKind::Char => checks.push(BpfInsn::new(JMP32_JNE_K, R2, 0, 0, DEV_CHAR)),
            DeviceKind::Block => checks.push(BpfInsn::new(JMP32_JNE_K, R2, 0, 0, DEV_BLOCK)),
            DeviceKind::All => {}
        }
        let granted = (if rule.read { ACC_READ } else { 0 })
            | (if rule.write { ACC_WRITE } else { 0 })
            | (if rule.mknod { ACC_MKNOD } else { 0 });
        let denied = !granted & (ACC_READ | ACC_WRITE | ACC_MKNOD);
        if denied != 0 {
            // The request matches only if it asks for nothing outside the grant.
            checks.push(BpfInsn::new(ALU64_MOV_X, R1, R3, 0, 0));
            checks.push(BpfInsn::new(ALU64_AND_K, R1, 0, 0, denied));
            checks.push(BpfInsn::new(JMP32_JNE_K, R1, 0, 0, 0));
        }
        if let Some(major) = rule.major {
            checks.push(BpfInsn::new(JMP32_JNE_K, R4, 0, 0, major as i32));
        }
        if let Some(minor) = rule.minor {
            checks.push(BpfInsn::new(JMP32_JNE_K, R5, 0, 0, minor as i32));
        }
        let block_len = checks.len() + 2; // + "r0 = 1; exit"
        for (i, insn) in checks.iter_mut().enumerate() {
            if insn.code == JMP32_JNE_K {
                // Jump past the rest of this block: from insn i+1 to block_len.
                insn.off = (block_len - (i + 1)) as i16;
            }
        }
        insns.extend(checks);
        insns.push(BpfInsn::new(ALU64_MOV_K, R0, 0, 0, 1));
        insns.push(BpfInsn::new(EXIT, 0, 0, 0, 0));
    }
    insns.push(BpfInsn::new(ALU64_MOV_K, R0, 0, 0, 0));
    insns.push(BpfInsn::new(EXIT, 0, 0, 0, 0));
    insns
}

/// A device program attached to one unified cgroup. Detached and closed on drop.
#[derive(Debug)]
pub struct AttachedDeviceProgram {
    cgroup_dir: PathBuf,
    cgroup_fd: File,
    prog: OwnedFd,
}

impl AttachedDeviceProgram {
    /// Loads the allowlist for `rules` and attaches it to the unified cgroup at `cgroup_dir`.
    pub fn attach(cgroup_dir: &Path, rules: &[DeviceRule]) -> Result<AttachedDeviceProgram, Error> {
        let insns = assemble(rules);
        let prog = bpf::prog_load(
            bpf::PROG_TYPE_CGROUP_DEVICE,
            bpf::ATTACH_CGROUP_DEVICE,
            &insns,
            c"Apache-2.0",
            "wt_devices",
        )
        .map_err(|source| Error::DeviceProgram {
            path: cgroup_dir.to_owned(),
            source,
        })?;
        let cgroup_fd = File::open(cgroup_dir).map_err(|e| Error::read(cgroup_dir, e))?;
        // ALLOW_MULTI: programs on ancestors keep applying too, and a nested sandbox can add
        // its own narrower program below ours.
        bpf::prog_attach(
            cgroup_fd.as_fd(),
            prog.as_fd(),
            bpf::ATTACH_CGROUP_DEVICE,
            bpf::F_ALLOW_MULTI,
        )
        .map_err(|source| Error::DeviceProgram {
            path: cgroup_dir.to_owned(),
            source,
        })?;
        Ok(AttachedDeviceProgram {
            cgroup_dir: cgroup_dir.to_owned(),
            cgroup_fd,
            prog,
        })
    }

    /// Detaches the program; the fd closes when `self` drops.
    pub fn detach(self) -> Result<(), Error> {
        bpf::prog_detach(
            self.cgroup_fd.as_fd(),
            self.prog.as_fd(),
            bpf::ATTACH_CGROUP_DEVICE,
        )
        .map_err(|source| Error::DeviceProgram {
            path: self.cgroup_dir.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interprets the assembled program for one request: a tiny model of the kernel's
    /// semantics for exactly the opcodes `assemble` emits.
    fn run(insns: &[BpfInsn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let insn = insns[pc];
            let (dst, src) = (insn.dst() as usize, insn.src() as usize);
            pc += 1;
            match insn.code {
                LDX_MEM_W => regs[dst] = u64::from(ctx[insn.off as usize / 4]),
                ALU64_AND_K => regs[dst] &= insn.imm as i64 as u64,
                ALU64_RSH_K => regs[dst] >>= insn.imm,
                ALU64_MOV_X => regs[dst] = regs[src],
                ALU64_MOV_K => regs[dst] = insn.imm as i64 as u64,
                JMP32_JNE_K => {
                    if regs[dst] as u32 != insn.imm as u32 {
                        pc = (pc as i64 + i64::from(insn.off)) as usize;
                    }
                }
                EXIT => return regs[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn allowlist_semantics() {
        let rules = vec![
            DeviceRule::char_rw(1, 3),
            "c 136:* rwm".parse().unwrap(),
            "b 8:* r".parse().unwrap(),
            "a *:* m".parse().unwrap(),
            "c 4294967295:1 r".parse().unwrap(),
        ];
        let prog = assemble(&rules);
        let (c, b) = (DEV_CHAR as u32, DEV_BLOCK as u32);
        let (r, w, m) = (ACC_READ as u32, ACC_WRITE as u32, ACC_MKNOD as u32);
        assert_eq!(run(&prog, c, r | w, 1, 3), 1, "null rw");
        assert_eq!(
            run(&prog, c, r | w | m, 1, 3),
            0,
            "one rule must grant the whole request"
        );
        assert_eq!(run(&prog, c, r, 1, 5), 0, "zero not listed");
        assert_eq!(run(&prog, c, w, 136, 7), 1, "pty wildcard");
        assert_eq!(run(&prog, b, r, 8, 1), 1, "sda1 read");
        assert_eq!(run(&prog, b, w, 8, 1), 0, "sda1 write");
        assert_eq!(run(&prog, b, m, 7, 0), 1, "mknod anything");
        assert_eq!(run(&prog, c, r, u32::MAX, 1), 1, "huge major");
        assert_eq!(run(&prog, c, r, u32::MAX - 1, 1), 0);
        assert_eq!(run(&assemble(&[]), c, r, 1, 3), 0, "empty list denies");
    }
}
