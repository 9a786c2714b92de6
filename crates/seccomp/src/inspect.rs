//! What an installed seccomp filter lets through, read back from a live process: a classic BPF
//! program (as `PTRACE_SECCOMP_GET_FILTER` returns it) run over every native system call number
//! with the arguments left unknown. Every jump on an unknown value takes both ways, so the result
//! is each call's set of possible answers: a call counts as reaching the kernel when any path of
//! every filter can let it through (an over-estimate where the answer depends on arguments).

use crate::syscall_names::{highest_known_native, native_name};
use std::collections::{BTreeSet, HashSet};

/// The audit architecture of this build's native system calls (`AUDIT_ARCH_*`).
#[cfg(target_arch = "x86_64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xC000_003E;
/// The audit architecture of this build's native system calls (`AUDIT_ARCH_*`).
#[cfg(target_arch = "aarch64")]
pub const NATIVE_AUDIT_ARCH: u32 = 0xC000_00B7;

/// One classic BPF instruction, as `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class, size, mode or operation.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

/// What a filter can answer for a call, by the kernel's precedence (most restrictive first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `SECCOMP_RET_KILL_PROCESS` (and unknown actions).
    KillProcess,
    /// `SECCOMP_RET_KILL_THREAD`.
    KillThread,
    /// `SECCOMP_RET_TRAP`: SIGSYS.
    Trap,
    /// `SECCOMP_RET_ERRNO`: fails with an errno.
    Errno,
    /// `SECCOMP_RET_USER_NOTIF`: a supervisor decides.
    UserNotif,
    /// `SECCOMP_RET_TRACE`: a ptracer decides.
    Trace,
    /// `SECCOMP_RET_LOG`: allowed and logged.
    Log,
    /// `SECCOMP_RET_ALLOW`.
    Allow,
    /// The program is malformed for this input (reads outside seccomp_data, runs off its end):
    /// the kernel would have refused to install it, so this marks a reading problem.
    Invalid,
}

impl Answer {
    fn from_ret(k: u32) -> Answer {
        match k & 0xffff_0000 {
            0x8000_0000 => Answer::KillProcess,
            0x0000_0000 => Answer::KillThread,
            0x0003_0000 => Answer::Trap,
            0x0005_0000 => Answer::Errno,
            0x7fc0_0000 => Answer::UserNotif,
            0x7ff0_0000 => Answer::Trace,
            0x7ffc_0000 => Answer::Log,
            0x7fff_0000 => Answer::Allow,
            // The kernel treats unknown actions as KILL_PROCESS.
            _ => Answer::KillProcess,
        }
    }

    /// Whether the filter itself lets the call go on into the kernel (allowed or logged).
    pub fn lets_through(self) -> bool {
        matches!(self, Answer::Allow | Answer::Log)
    }

    /// Whether a tracer or a user-notification supervisor decides (it may let the call go on).
    pub fn defers(self) -> bool {
        matches!(self, Answer::Trace | Answer::UserNotif)
    }
}

/// One system call's possible answers under every filter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallOutcome {
    /// The native system call number.
    pub nr: u32,
    /// Its name.
    pub name: String,
    /// Per filter, newest first: the answers some argument values give.
    pub answers: Vec<BTreeSet<Answer>>,
    /// Every filter lets it through for some arguments.
    pub reaches_kernel: bool,
    /// It does not reach the kernel on the filters' word alone, but for some arguments every
    /// filter either lets it through or leaves it to a tracer or supervisor (which may).
    pub deferred: bool,
    /// Every filter lets it through whatever the arguments (no argument check refuses any).
    pub unconditional: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Value {
    Known(u32),
    Unknown,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    pc: usize,
    a: Value,
    x: Value,
    mem: [Value; 16],
}

/// The answers one filter can give to native call `nr` (any arguments, any instruction pointer).
pub fn answers(program: &[Insn], nr: u32) -> BTreeSet<Answer> {
    let mut out = BTreeSet::new();
    let mut seen: HashSet<State> = HashSet::new();
    let mut work = vec![State {
        pc: 0,
        a: Value::Known(0),
        x: Value::Known(0),
        mem: [Value::Known(0); 16],
    }];
    while let Some(mut s) = work.pop() {
        if !seen.insert(s.clone()) {
            continue;
        }
        let Some(insn) = program.get(s.pc) else {
            out.insert(Answer::Invalid);
            continue;
        };
        let class = insn.code & 0x07;
        let next = s.pc + 1;
        match class {
            // BPF_LD / BPF_LDX
            0x00 | 0x01 => {
                let value = match insn.code & 0xe0 {
                    0x00 => Value::Known(insn.k),                  // IMM
                    0x20 if class == 0x00 => load_abs(insn.k, nr), // ABS (LD only)
                    0x60 => match s.mem.get(insn.k as usize) {
                        // MEM
                        Some(v) => *v,
                        None => {
                            out.insert(Answer::Invalid);
                            continue;
                        }
                    },
                    0x80 => Value::Known(64), // LEN: sizeof(struct seccomp_data)
                    _ => {
                        out.insert(Answer::Invalid);
                        continue;
                    }
                };
                if value == Value::Known(u32::MAX) && insn.code & 0xe0 == 0x20 {
                    out.insert(Answer::Invalid);
                    continue;
                }
                if class == 0x00 {
                    s.a = value;
                } else {
                    s.x = value;
                }
                s.pc = next;
                work.push(s);
            }
            // BPF_ST / BPF_STX
            0x02 | 0x03 => {
                let Some(slot) = s.mem.get_mut(insn.k as usize) else {
                    out.insert(Answer::Invalid);
                    continue;
                };
                *slot = if class == 0x02 { s.a } else { s.x };
                s.pc = next;
                work.push(s);
            }
            // BPF_ALU
            0x04 => {
                let operand = if insn.code & 0x08 != 0 {
                    s.x
                } else {
                    Value::Known(insn.k)
                };
                s.a = alu(insn.code & 0xf0, s.a, operand);
                s.pc = next;
                work.push(s);
            }
            // BPF_JMP
            0x05 => {
                let op = insn.code & 0xf0;
                if op == 0x00 {
                    s.pc = next + insn.k as usize;
                    work.push(s);
                    continue;
                }
                let operand = if insn.code & 0x08 != 0 {
                    s.x
                } else {
                    Value::Known(insn.k)
                };
                let taken = match (s.a, operand) {
                    (Value::Known(a), Value::Known(b)) => Some(match op {
                        0x10 => a == b,
                        0x20 => a > b,
                        0x30 => a >= b,
                        0x40 => a & b != 0,
                        _ => {
                            out.insert(Answer::Invalid);
                            continue;
                        }
                    }),
                    _ => None,
                };
                let jt = next + insn.jt as usize;
                let jf = next + insn.jf as usize;
                if taken != Some(false) {
                    work.push(State {
                        pc: jt,
                        ..s.clone()
                    });
                }
                if taken != Some(true) {
                    work.push(State { pc: jf, ..s });
                }
            }
            // BPF_RET
            0x06 => match insn.code & 0x18 {
                0x00 => {
                    out.insert(Answer::from_ret(insn.k));
                }
                0x10 => match s.a {
                    Value::Known(a) => {
                        out.insert(Answer::from_ret(a));
                    }
                    // RET A of an unknown: any answer at all.
                    Value::Unknown => {
                        out.insert(Answer::Allow);
                        out.insert(Answer::KillProcess);
                    }
                },
                _ => {
                    out.insert(Answer::Invalid);
                }
            },
            // BPF_MISC: TAX / TXA
            _ => {
                if insn.code & 0xf8 == 0x80 {
                    s.a = s.x;
                } else {
                    s.x = s.a;
                }
                s.pc = next;
                work.push(s);
            }
        }
    }
    out
}

/// A 32-bit load from `struct seccomp_data` for native call `nr`: the number and architecture
/// are known; the instruction pointer and arguments are not. `Known(u32::MAX)` marks an offset
/// outside the structure (the kernel refuses such programs).
fn load_abs(offset: u32, nr: u32) -> Value {
    match offset {
        0 => Value::Known(nr),
        4 => Value::Known(NATIVE_AUDIT_ARCH),
        8..=60 if offset.is_multiple_of(4) => Value::Unknown,
        _ => Value::Known(u32::MAX),
    }
}

fn alu(op: u16, a: Value, b: Value) -> Value {
    let (Value::Known(a), Value::Known(b)) = (a, b) else {
        return Value::Unknown;
    };
    Value::Known(match op {
        0x00 => a.wrapping_add(b),
        0x10 => a.wrapping_sub(b),
        0x20 => a.wrapping_mul(b),
        0x30 => a.checked_div(b).unwrap_or(0),
        0x40 => a | b,
        0x50 => a & b,
        0x60 => a.checked_shl(b).unwrap_or(0),
        0x70 => a.checked_shr(b).unwrap_or(0),
        0x80 => a.wrapping_neg(),
        0x90 => a.checked_rem(b).unwrap_or(0),
        0xa0 => a ^ b,
        _ => return Value::Unknown,
    })
}

/// Every native call this build knows a name for, decided under all `filters` (newest first).
pub fn outcomes(filters: &[Vec<Insn>]) -> Vec<CallOutcome> {
    let highest = u32::try_from(highest_known_native()).unwrap_or(0);
    (0..=highest)
        .filter_map(|nr| {
            let name = native_name(nr as i32)?;
            let answers: Vec<BTreeSet<Answer>> = filters.iter().map(|f| answers(f, nr)).collect();
            let reaches_kernel = answers
                .iter()
                .all(|set| set.iter().any(|a| a.lets_through()));
            let deferred = !reaches_kernel
                && answers
                    .iter()
                    .all(|set| set.iter().any(|a| a.lets_through() || a.defers()));
            let unconditional = answers
                .iter()
                .all(|set| set.iter().all(|a| a.lets_through()));
            Some(CallOutcome {
                nr,
                name,
                answers,
                reaches_kernel,
                deferred,
                unconditional,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{default_profile, CompileOptions};

    fn default_filter() -> Vec<Insn> {
        let compiled = default_profile()
            .compile(&CompileOptions::default())
            .unwrap();
        compiled
            .program()
            .iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect()
    }

    #[test]
    fn the_default_allowlist_reads_back_as_compiled() {
        let filter = default_filter();
        let all = outcomes(std::slice::from_ref(&filter));
        let reaches = |name: &str| {
            all.iter()
                .find(|o| o.name == name)
                .unwrap_or_else(|| panic!("{name} not listed"))
                .reaches_kernel
        };
        for allowed in ["read", "write", "mmap", "futex", "exit_group", "clone"] {
            assert!(reaches(allowed), "{allowed}");
        }
        for refused in [
            "bpf",
            "keyctl",
            "io_uring_setup",
            "userfaultfd",
            "kexec_load",
            "mount",
            "init_module",
            "perf_event_open",
        ] {
            assert!(!reaches(refused), "{refused}");
        }
        // clone is allowed only without namespace flags: both answers are possible.
        let clone = all.iter().find(|o| o.name == "clone").unwrap();
        assert!(clone.answers[0].len() > 1, "{:?}", clone.answers);
        // A second, stricter filter wins: everything it refuses stops reaching the kernel.
        let deny_read = vec![
            Insn {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            },
            Insn {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: 0,
            },
            Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x0005_0001,
            },
            Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ];
        let both = outcomes(&[deny_read, filter]);
        assert!(
            !both
                .iter()
                .find(|o| o.name == "read")
                .unwrap()
                .reaches_kernel
        );
        assert!(
            both.iter()
                .find(|o| o.name == "write")
                .unwrap()
                .reaches_kernel
        );
    }

    #[test]
    fn malformed_programs_are_marked_not_trusted() {
        // Falls off the end; loads outside seccomp_data.
        assert!(answers(
            &[Insn {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0
            }],
            0
        )
        .contains(&Answer::Invalid));
        assert!(answers(
            &[
                Insn {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 200
                },
                Insn {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000
                }
            ],
            0
        )
        .contains(&Answer::Invalid));
        assert_eq!(answers(&[], 0), BTreeSet::from([Answer::Invalid]));
    }
}
