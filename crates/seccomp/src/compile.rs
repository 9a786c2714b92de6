//! Profile → classic BPF program, with libseccomp.
//!
//! Only the native architecture (x86_64) is compiled in. Any other syscall ABI (i386 via
//! `int 0x80`, x32 via nr | 0x40000000) hits libseccomp's bad-architecture check and kills the
//! process: a 32-bit entry point can never bypass the filter. Profiles listing more architectures
//! parse and round-trip, but compile to the native one only.
//!
//! Rule semantics follow runc: names unknown on this architecture are skipped; conditions on
//! distinct arguments are ANDed; several conditions on the same argument are ORed (one libseccomp
//! rule each); rules whose action equals the default are dropped (libseccomp rejects them).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};

use crate::error::Error;
use crate::profile::{
    Action, ArgCondition, ArgOp, FilterFlag, KernelVersion, Profile, SyscallRule,
};
use crate::syscall_names;

/// What a refused violation-class syscall does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationAction {
    /// Fail with this errno (EPERM by default), like any other refused syscall.
    Errno(u16),
    /// Kill the whole process with SIGSYS.
    KillProcess,
    /// Ask the supervisor over a seccomp user-notification fd (the filter is installed with
    /// SECCOMP_FILTER_FLAG_NEW_LISTENER).
    UserNotify,
}

impl Default for ViolationAction {
    fn default() -> Self {
        ViolationAction::Errno(libc::EPERM as u16)
    }
}

impl ViolationAction {
    fn to_scmp(self) -> ScmpAction {
        match self {
            ViolationAction::Errno(e) => ScmpAction::Errno(i32::from(e)),
            ViolationAction::KillProcess => ScmpAction::KillProcess,
            ViolationAction::UserNotify => ScmpAction::Notify,
        }
    }

    /// The raw SECCOMP_RET_* value of this action, for hand-written filter prefixes.
    fn to_raw(self) -> u32 {
        match self {
            ViolationAction::Errno(e) => SECCOMP_RET_ERRNO | u32::from(e),
            ViolationAction::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            ViolationAction::UserNotify => libc::SECCOMP_RET_USER_NOTIF,
        }
    }
}

/// How to compile a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CompileOptions {
    /// Action for violation-class syscalls the profile refuses.
    pub violation_action: ViolationAction,
    /// Install with SECCOMP_FILTER_FLAG_LOG: every refusal is logged (audit type 1326).
    pub log_denials: bool,
    /// With a user-notification violation action: install with
    /// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it (5.19+), so that once the
    /// supervisor has read a notification only a fatal signal ends the task's wait. Not for a
    /// supervisor that freezes the caught task: the freezer cannot freeze a killable wait.
    pub wait_killable_recv: bool,
    /// Capabilities the sandboxed process keeps (`CAP_*`), for Docker's `includes.caps` /
    /// `excludes.caps`. Empty (the default) for a sandbox that drops all capabilities.
    pub capabilities: BTreeSet<String>,
    /// Exec-time integrity (`watertight run --manifest`): also refuse, with the violation action
    /// and whatever the profile allows, the syscalls that make writable aliases of executable
    /// memory or write into code (see `integrity.rs`). Off for ordinary runs.
    pub exec_integrity: bool,
}

/// A compiled filter, ready for `watertight_sys::seccomp::install_filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    program: Vec<libc::sock_filter>,
    flags: u32,
}

impl CompiledFilter {
    /// The BPF program.
    pub fn program(&self) -> &[libc::sock_filter] {
        &self.program
    }

    /// SECCOMP_FILTER_FLAG_* bits to pass at install.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether installing returns a user-notification fd.
    pub fn wants_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 != 0
    }

    pub(crate) fn from_parts(program: Vec<libc::sock_filter>, flags: u32) -> Self {
        CompiledFilter { program, flags }
    }

    /// The program as the raw 8-byte instructions (code, jt, jf, k; native endian).
    pub fn program_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.program.len() * INSN_LEN);
        for insn in &self.program {
            out.extend_from_slice(&insn.code.to_ne_bytes());
            out.push(insn.jt);
            out.push(insn.jf);
            out.extend_from_slice(&insn.k.to_ne_bytes());
        }
        out
    }
}

pub(crate) const INSN_LEN: usize = 8;
/// The kernel's BPF_MAXINSNS.
pub(crate) const MAX_INSNS: usize = 4096;

/// Parse raw 8-byte instructions back into `sock_filter`s.
pub(crate) fn program_from_bytes(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(INSN_LEN) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSN_LEN)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// Docker's Go architecture name for the machine we compile for.
fn native_go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub(crate) fn running_kernel() -> Option<KernelVersion> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    KernelVersion::from_release(release.trim())
}

/// Everything outside the profile and options that changes the compiled program (fixed for the
/// life of the process, so computed once).
pub(crate) fn environment_fingerprint() -> &'static str {
    static FINGERPRINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        format!(
            "libseccomp={} arch={} kernel={}",
            syscall_names::libseccomp_version(),
            std::env::consts::ARCH,
            running_kernel().map(|k| k.to_string()).unwrap_or_default()
        )
    })
}

fn scmp_action(action: Action, errno_ret: Option<u32>, default_errno: u32) -> ScmpAction {
    match action {
        Action::KillProcess => ScmpAction::KillProcess,
        Action::KillThread | Action::Kill => ScmpAction::KillThread,
        Action::Trap => ScmpAction::Trap,
        Action::Errno => ScmpAction::Errno(errno_ret.unwrap_or(default_errno) as i32),
        Action::Trace => ScmpAction::Trace(errno_ret.unwrap_or(0) as u16),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    }
}

fn scmp_condition(c: &ArgCondition) -> ScmpArgCompare {
    let op = match c.op {
        ArgOp::NotEqual => ScmpCompareOp::NotEqual,
        ArgOp::Less => ScmpCompareOp::Less,
        ArgOp::LessOrEqual => ScmpCompareOp::LessOrEqual,
        ArgOp::Equal => ScmpCompareOp::Equal,
        ArgOp::GreaterOrEqual => ScmpCompareOp::GreaterEqual,
        ArgOp::Greater => ScmpCompareOp::Greater,
        // Docker/runc order: `value` is the mask, `valueTwo` the expected masked value.
        ArgOp::MaskedEqual => ScmpCompareOp::MaskedEqual(c.value),
    };
    let datum = match c.op {
        ArgOp::MaskedEqual => c.value_two.unwrap_or(0),
        _ => c.value,
    };
    ScmpArgCompare::new(c.index, op, datum)
}

/// Condition sets for one profile rule: one set if every condition is on a distinct argument,
/// else one single-condition set per condition (runc's OR semantics).
fn condition_sets(args: &[ArgCondition]) -> Vec<Vec<ScmpArgCompare>> {
    let mut seen = [0u8; 6];
    for a in args {
        seen[a.index as usize] += 1;
    }
    if seen.iter().any(|n| *n > 1) {
        args.iter().map(|a| vec![scmp_condition(a)]).collect()
    } else {
        vec![args.iter().map(scmp_condition).collect()]
    }
}

/// Per native syscall number: what the compiled rules already say about it.
#[derive(Default)]
struct SyscallState {
    lets_through: bool,
    unconditional: bool,
}

impl Profile {
    /// Compile to a BPF program for the native architecture.
    pub fn compile(&self, opts: &CompileOptions) -> Result<CompiledFilter, Error> {
        let (ctx, flags) = self.build(opts)?;
        let mut program = export(&ctx)?;
        if matches!(
            self.default_action,
            Action::Errno | Action::Kill | Action::KillThread | Action::KillProcess | Action::Trap
        ) {
            program = unknown_syscalls_enosys(program, syscall_names::highest_known_native());
        }
        if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 != 0 {
            program = no_second_listener(program);
        }
        if opts.exec_integrity {
            program =
                crate::integrity::exec_integrity_prefix(program, opts.violation_action.to_raw());
        }
        if program.len() > MAX_INSNS {
            return Err(Error::ProgramTooLarge {
                len: program.len(),
                max: MAX_INSNS,
            });
        }
        Ok(CompiledFilter { program, flags })
    }

    /// The filter as libseccomp's human-readable pseudo-filter code (PFC), for reviewing what a
    /// profile compiles to (without the 6-instruction ENOSYS prefix `compile` adds).
    pub fn explain(&self, opts: &CompileOptions) -> Result<String, Error> {
        let (ctx, _) = self.build(opts)?;
        let mut file = memfd("watertight-seccomp-pfc")?;
        ctx.export_pfc(&file)
            .map_err(|e| Error::libseccomp("export the pseudo-filter code", e))?;
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| Error::io("read back the pseudo-filter code", e))?;
        Ok(text)
    }

    /// Build the libseccomp context and the install flags.
    fn build(&self, opts: &CompileOptions) -> Result<(ScmpFilterContext, u32), Error> {
        let default_errno = self.default_errno_ret.unwrap_or(libc::EPERM as u32);
        let default_action = scmp_action(self.default_action, None, default_errno);
        let violation_action = opts.violation_action.to_scmp();
        let violation_names: BTreeSet<&str> = self
            .violation_syscalls()
            .iter()
            .map(String::as_str)
            .collect();

        if !self.architectures.is_empty()
            && !self
                .architectures
                .iter()
                .any(|a| *a == crate::profile::Arch::X86_64 || a.as_str() == "SCMP_ARCH_NATIVE")
            && ScmpArch::native() == ScmpArch::X8664
        {
            return Err(Error::invalid(
                "architectures",
                "does not include SCMP_ARCH_X86_64, the architecture of this machine; add it",
            ));
        }

        let mut ctx = ScmpFilterContext::new(default_action)
            .map_err(|e| Error::libseccomp("create a filter context", e))?;
        // Any non-native ABI (i386, x32) kills: the filter only speaks x86_64.
        ctx.set_act_badarch(ScmpAction::KillProcess)
            .map_err(|e| Error::libseccomp("set the bad-architecture action", e))?;
        // Binary tree of syscall numbers instead of a linear chain: O(log n) per syscall.
        ctx.set_ctl_optimize(2)
            .map_err(|e| Error::libseccomp("enable binary-tree optimization", e))?;

        let go_arch = native_go_arch();
        let kernel = running_kernel();
        let mut state: BTreeMap<i32, SyscallState> = BTreeMap::new();
        let mut uses_notify = opts.violation_action == ViolationAction::UserNotify
            || self.default_action == Action::Notify;

        for (index, rule) in self.syscalls.iter().enumerate() {
            if let Some(bad) = rule.args.iter().find(|a| a.index > 5) {
                return Err(Error::invalid(
                    format!("syscalls[{index}].args"),
                    format!(
                        "index {} is out of range; syscalls have arguments 0..=5",
                        bad.index
                    ),
                ));
            }
            if !rule_applies(rule, &opts.capabilities, go_arch, kernel) {
                continue;
            }
            for name in rule.all_names() {
                let Some(sys) = syscall_names::native(name) else {
                    continue;
                };
                let is_violation = violation_names.contains(name);
                // A rule's ERRNO without errnoRet is EPERM, whatever defaultErrnoRet says (runc).
                let action = if is_violation && !rule.action.lets_through() {
                    violation_action
                } else {
                    scmp_action(rule.action, rule.errno_ret, libc::EPERM as u32)
                };
                if action == default_action {
                    continue;
                }
                uses_notify |= action == ScmpAction::Notify;
                let entry = state.entry(i32::from(sys)).or_default();
                entry.lets_through |= rule.action.lets_through();
                for conditions in condition_sets(&rule.args) {
                    if conditions.is_empty() {
                        entry.unconditional = true;
                        ctx.add_rule(action, sys)
                    } else {
                        ctx.add_rule_conditional(action, sys, &conditions)
                    }
                    .map_err(|e| {
                        Error::libseccomp(
                            format!("add rule syscalls[{index}] for {name} ({})", rule.action),
                            e,
                        )
                    })?;
                }
            }
        }

        // Violation-class syscalls the profile never lets through: refuse them with the
        // violation action rather than the default.
        if violation_action != default_action {
            for name in &violation_names {
                let Some(sys) = syscall_names::native(name) else {
                    continue;
                };
                let entry = state.entry(i32::from(sys)).or_default();
                if entry.lets_through || entry.unconditional {
                    continue;
                }
                entry.unconditional = true;
                ctx.add_rule(violation_action, sys).map_err(|e| {
                    Error::libseccomp(format!("add the violation rule for {name}"), e)
                })?;
            }
        }

        let mut flags = 0u32;
        if opts.log_denials || self.flags.contains(&FilterFlag::Log) {
            flags |= libc::SECCOMP_FILTER_FLAG_LOG as u32;
        }
        if self.flags.contains(&FilterFlag::SpecAllow) {
            flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
        }
        if uses_notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
            // Once the supervisor has read a notification, only a fatal signal may end the wait:
            // the task stays in the call it was caught in, so the strings read from its memory
            // stay true. Linux 5.19+; older kernels refuse the flag.
            if self.flags.contains(&FilterFlag::WaitKillableRecv)
                || (opts.wait_killable_recv
                    && opts.violation_action == ViolationAction::UserNotify
                    && kernel.is_some_and(|k| {
                        k >= KernelVersion {
                            major: 5,
                            minor: 19,
                        }
                    }))
            {
                flags |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;
            }
        }
        if self.flags.contains(&FilterFlag::Tsync) {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
            if uses_notify {
                // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC failures are ESRCH.
                flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
            }
        }
        Ok((ctx, flags))
    }
}

fn rule_applies(
    rule: &SyscallRule,
    caps: &BTreeSet<String>,
    go_arch: &str,
    kernel: Option<KernelVersion>,
) -> bool {
    let included = rule
        .includes
        .as_ref()
        .is_none_or(|f| f.matches(caps, go_arch, kernel));
    let excluded = rule
        .excludes
        .as_ref()
        .is_some_and(|f| f.excludes(caps, go_arch, kernel));
    included && !excluded
}

/// One BPF instruction without jumps (load, return).
pub(crate) fn stmt(code: u32, k: u32) -> libc::sock_filter {
    jump(code, k, 0, 0)
}

/// One BPF conditional jump: `jt`/`jf` instructions ahead when true/false.
pub(crate) fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

/// Prefix `program` so that x86_64 syscall numbers above `highest_known` (syscalls newer than
/// this build, which no profile can name) fail with ENOSYS instead of the refusing default: a
/// program probing a new syscall then falls back as on an older kernel, where EPERM would read as
/// "forbidden" (runc patches its filters the same way). Everything else, including x32 numbers
/// (bit 30) and foreign architectures, falls through to the unchanged libseccomp program; its
/// jumps are relative, so prepending keeps them valid.
fn unknown_syscalls_enosys(
    program: Vec<libc::sock_filter>,
    highest_known: i32,
) -> Vec<libc::sock_filter> {
    if std::env::consts::ARCH != "x86_64" || highest_known <= 0 {
        return program;
    }
    let (ld, jeq, jgt, jge, ret) = (
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K,
        libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
        libc::BPF_RET | libc::BPF_K,
    );
    let mut out = Vec::with_capacity(program.len() + 6);
    out.extend([
        stmt(ld, SECCOMP_DATA_ARCH),
        // Not x86_64: skip the 4 instructions below, into the original program.
        jump(jeq, AUDIT_ARCH_X86_64, 0, 4),
        stmt(ld, SECCOMP_DATA_NR),
        // x32 (and negative) numbers: to the original program, which kills them.
        jump(jge, X32_SYSCALL_BIT, 2, 0),
        jump(jgt, highest_known as u32, 0, 1),
        stmt(ret, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ]);
    out.extend(program);
    out
}

const NR_SECCOMP_X86_64: u32 = 317;
/// Offset of the low 32 bits of `args[1]` in `struct seccomp_data` (little endian).
const SECCOMP_DATA_ARG1_LOW: u32 = 24;

/// Prefix `program` so that seccomp() with SECCOMP_FILTER_FLAG_NEW_LISTENER fails with EPERM in
/// the kernel, whatever the profile allows and whether or not the supervisor's listener is still
/// open. A filter stacked later whose listener answered SECCOMP_USER_NOTIF_FLAG_CONTINUE would
/// otherwise win the tie against ours (equal actions: the newest filter's listener is asked) and
/// let violation-class calls through. With no second listener possible, a violation-class call
/// ends only in our supervisor's answer (EPERM, or a kill) or, if our listener is gone, in the
/// kernel's ENOSYS: never in the call running. The flag is an `unsigned int`: only the low 32
/// bits of the argument are read, as the kernel reads them.
fn no_second_listener(program: Vec<libc::sock_filter>) -> Vec<libc::sock_filter> {
    if std::env::consts::ARCH != "x86_64" {
        return program;
    }
    let (ld, jeq, jset, ret) = (
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
        libc::BPF_RET | libc::BPF_K,
    );
    let mut out = Vec::with_capacity(program.len() + 7);
    out.extend([
        stmt(ld, SECCOMP_DATA_ARCH),
        // Not x86_64: into the original program (which kills foreign architectures).
        jump(jeq, AUDIT_ARCH_X86_64, 0, 5),
        stmt(ld, SECCOMP_DATA_NR),
        jump(jeq, NR_SECCOMP_X86_64, 0, 3),
        stmt(ld, SECCOMP_DATA_ARG1_LOW),
        jump(jset, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32, 0, 1),
        stmt(ret, SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]);
    out.extend(program);
    out
}

fn memfd(name: &str) -> Result<std::fs::File, Error> {
    let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| Error::io("create a memfd for the libseccomp export", e.into()))?;
    Ok(std::fs::File::from(fd))
}

/// Export the program through a memfd (libseccomp 2.5 has no in-memory export).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, Error> {
    let mut file = memfd("watertight-seccomp")?;
    ctx.export_bpf(&file)
        .map_err(|e| Error::libseccomp("export the BPF program", e))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| Error::io("read back the exported BPF program", e))?;
    let program = program_from_bytes(&bytes).ok_or_else(|| {
        Error::invalid(
            "(export)",
            format!(
                "libseccomp exported {} bytes, not whole BPF instructions",
                bytes.len()
            ),
        )
    })?;
    if program.len() > MAX_INSNS {
        return Err(Error::ProgramTooLarge {
            len: program.len(),
            max: MAX_INSNS,
        });
    }
    Ok(program)
}
