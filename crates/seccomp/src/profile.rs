//! The Docker/OCI seccomp profile model: moby's `profiles/seccomp/default.json` format (with
//! `names`, `includes`/`excludes`, `archMap`) and the OCI runtime-spec `linux.seccomp` object,
//! plus watertight's `"watertight"` extension object (Docker ignores unknown top-level keys
//! only when decoding loosely, so profiles meant for Docker should drop it).
//!
//! Parsing is two-step: serde decodes the JSON into plain strings ([`raw`]), then
//! [`Profile::from_raw`] checks every name against the SCMP_* vocabularies and libseccomp's
//! syscall tables, so each error names the entry index and its syscalls.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::syscall_names;

/// What a rule (or the default) does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// SCMP_ACT_KILL_PROCESS: kill the whole process with SIGSYS.
    KillProcess,
    /// SCMP_ACT_KILL_THREAD: kill the calling thread.
    KillThread,
    /// SCMP_ACT_KILL: legacy spelling of KILL_THREAD (kept so a profile round-trips unchanged).
    Kill,
    /// SCMP_ACT_TRAP: send SIGSYS.
    Trap,
    /// SCMP_ACT_ERRNO: fail with `errnoRet` (EPERM when absent).
    Errno,
    /// SCMP_ACT_TRACE: notify a ptrace tracer with `errnoRet` as message.
    Trace,
    /// SCMP_ACT_ALLOW.
    Allow,
    /// SCMP_ACT_LOG: allow and log.
    Log,
    /// SCMP_ACT_NOTIFY: ask the supervisor over the user-notification fd.
    Notify,
}

const ACTIONS: &[(Action, &str)] = &[
    (Action::KillProcess, "SCMP_ACT_KILL_PROCESS"),
    (Action::KillThread, "SCMP_ACT_KILL_THREAD"),
    (Action::Kill, "SCMP_ACT_KILL"),
    (Action::Trap, "SCMP_ACT_TRAP"),
    (Action::Errno, "SCMP_ACT_ERRNO"),
    (Action::Trace, "SCMP_ACT_TRACE"),
    (Action::Allow, "SCMP_ACT_ALLOW"),
    (Action::Log, "SCMP_ACT_LOG"),
    (Action::Notify, "SCMP_ACT_NOTIFY"),
];
const ACTION_NAMES: &str = "SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY";

impl Action {
    /// The SCMP_ACT_* spelling.
    pub fn as_str(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }

    fn parse(s: &str, at: impl FnOnce() -> String) -> Result<Self, Error> {
        ACTIONS
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(a, _)| *a)
            .ok_or_else(|| Error::UnknownAction {
                at: at(),
                action: s.to_string(),
                expected: ACTION_NAMES,
            })
    }

    /// Whether the syscall proceeds (possibly after logging, tracing or asking the supervisor).
    pub fn lets_through(self) -> bool {
        matches!(
            self,
            Action::Allow | Action::Log | Action::Trace | Action::Notify
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Argument comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgOp {
    /// `SCMP_CMP_NE`: `arg != value`.
    NotEqual,
    /// `SCMP_CMP_LT`: `arg < value`.
    Less,
    /// `SCMP_CMP_LE`: `arg <= value`.
    LessOrEqual,
    /// `SCMP_CMP_EQ`: `arg == value`.
    Equal,
    /// `SCMP_CMP_GE`: `arg >= value`.
    GreaterOrEqual,
    /// `SCMP_CMP_GT`: `arg > value`.
    Greater,
    /// `(arg & value) == valueTwo` (Docker/runc order: `value` is the mask).
    MaskedEqual,
}

const OPS: &[(ArgOp, &str)] = &[
    (ArgOp::NotEqual, "SCMP_CMP_NE"),
    (ArgOp::Less, "SCMP_CMP_LT"),
    (ArgOp::LessOrEqual, "SCMP_CMP_LE"),
    (ArgOp::Equal, "SCMP_CMP_EQ"),
    (ArgOp::GreaterOrEqual, "SCMP_CMP_GE"),
    (ArgOp::Greater, "SCMP_CMP_GT"),
    (ArgOp::MaskedEqual, "SCMP_CMP_MASKED_EQ"),
];
const OP_NAMES: &str =
    "SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ";

impl ArgOp {
    /// The SCMP_CMP_* spelling.
    pub fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(o, _)| *o == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }
}

/// One condition on a syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    /// Argument index, 0..=5.
    pub index: u32,
    /// The value compared against (the mask for MASKED_EQ).
    pub value: u64,
    /// Only meaningful for MASKED_EQ (the value compared after masking). Kept as an option so
    /// a profile that spells `"valueTwo": 0` round-trips unchanged.
    pub value_two: Option<u64>,
    /// How the argument is compared.
    pub op: ArgOp,
}

/// Architectures libseccomp names (`SCMP_ARCH_*`).
const ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_SH",
];

/// A `SCMP_ARCH_*` architecture name, checked against libseccomp's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch(&'static str);

impl Arch {
    /// 64-bit x86.
    pub const X86_64: Arch = Arch("SCMP_ARCH_X86_64");
    /// 32-bit x86 (int 0x80 on an x86_64 kernel).
    pub const X86: Arch = Arch("SCMP_ARCH_X86");
    /// The x32 ABI (syscall numbers with bit 30 set).
    pub const X32: Arch = Arch("SCMP_ARCH_X32");

    /// Look up an `SCMP_ARCH_*` name.
    pub fn from_name(name: &str) -> Option<Arch> {
        ARCHES.iter().find(|a| **a == name).map(|a| Arch(a))
    }

    /// The SCMP_ARCH_* spelling.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

/// Filter flags the OCI runtime spec allows in `flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterFlag {
    /// `SECCOMP_FILTER_FLAG_TSYNC`: install on every thread of the process.
    Tsync,
    /// `SECCOMP_FILTER_FLAG_LOG`: log every action except allow.
    Log,
    /// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: keep speculative store bypass mitigation off.
    SpecAllow,
    /// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: a notified syscall waits killably.
    WaitKillableRecv,
}

const FLAGS: &[(FilterFlag, &str)] = &[
    (FilterFlag::Tsync, "SECCOMP_FILTER_FLAG_TSYNC"),
    (FilterFlag::Log, "SECCOMP_FILTER_FLAG_LOG"),
    (FilterFlag::SpecAllow, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
    (
        FilterFlag::WaitKillableRecv,
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ),
];
const FLAG_NAMES: &str = "SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV";

impl FilterFlag {
    /// The SECCOMP_FILTER_FLAG_* spelling.
    pub fn as_str(self) -> &'static str {
        FLAGS
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }
}

/// `"4.8"`-style kernel version of `minKernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelVersion {
    /// The major version.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
}

impl KernelVersion {
    /// Parse `"MAJOR.MINOR"`; for a kernel release string (`"6.18.44-foo"`) use
    /// [`KernelVersion::from_release`].
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let (major, minor) = s.split_once('.')?;
        Some(KernelVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// The major.minor of a `uname -r` release string.
    pub fn from_release(release: &str) -> Option<KernelVersion> {
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        Some(KernelVersion {
            major: parts.next()?.parse().ok()?,
            minor: parts.next()?.parse().ok()?,
        })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Docker's `includes`/`excludes`: a rule applies only if (includes) / unless (excludes) the
/// container holds all `caps`, runs on one of `arches` (Go names: amd64, x32, arm64, ...), and
/// runs on a kernel at least `minKernel`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleFilter {
    /// Capabilities the container must hold (Docker's `CAP_*` names).
    pub caps: Vec<String>,
    /// Architectures, as Go names (amd64, x32, arm64, ...).
    pub arches: Vec<String>,
    /// The oldest kernel the rule is for.
    pub min_kernel: Option<KernelVersion>,
}

/// One entry of `syscalls[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRule {
    /// Syscall names the rule applies to.
    pub names: Vec<String>,
    /// Legacy single-name form (`"name"`), still accepted by Docker.
    pub name: Option<String>,
    /// Free text; kept so a profile round-trips.
    pub comment: Option<String>,
    /// What the filter does when a listed syscall matches.
    pub action: Action,
    /// The errno returned with `SCMP_ACT_ERRNO` (the profile's default errno when absent).
    pub errno_ret: Option<u32>,
    /// Conditions. Conditions on distinct arguments are ANDed; several conditions on the SAME
    /// argument are ORed (each becomes its own rule), as runc does.
    pub args: Vec<ArgCondition>,
    /// The rule applies only when this filter matches.
    pub includes: Option<RuleFilter>,
    /// The rule applies unless this filter matches.
    pub excludes: Option<RuleFilter>,
}

impl SyscallRule {
    /// An unconditional rule for `names`.
    pub fn new(names: &[&str], action: Action) -> Self {
        SyscallRule {
            names: names.iter().map(|s| s.to_string()).collect(),
            name: None,
            comment: None,
            action,
            errno_ret: None,
            args: Vec::new(),
            includes: None,
            excludes: None,
        }
    }

    /// Every syscall name of the rule (`names` then legacy `name`).
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .chain(self.name.as_deref())
    }
}

/// `archMap[]` entry: a main architecture and the sub-architectures that come with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchMapEntry {
    /// The main architecture.
    pub architecture: Arch,
    /// Architectures whose syscalls the filter also matches when the main one is listed.
    pub sub_architectures: Vec<Arch>,
}

/// watertight's extension object (`"watertight": {...}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatertightExtension {
    /// Syscalls whose refusal counts as a security violation: they get the compile-time
    /// `ViolationAction` instead of the profile's deny action.
    pub violation_syscalls: Vec<String>,
}

/// A seccomp profile in Docker/OCI form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// What the filter does with a syscall no rule matches.
    pub default_action: Action,
    /// The errno for a default `SCMP_ACT_ERRNO`.
    pub default_errno_ret: Option<u32>,
    /// Architectures the filter accepts; a syscall from any other is refused.
    pub architectures: Vec<Arch>,
    /// Sub-architectures that come with each main one.
    pub arch_map: Vec<ArchMapEntry>,
    /// Filter flags passed to seccomp(2).
    pub flags: Vec<FilterFlag>,
    /// The OCI `listenerPath`: where a notification listener fd would be sent (kept, not used).
    pub listener_path: Option<String>,
    /// The OCI `listenerMetadata` (kept, not used).
    pub listener_metadata: Option<String>,
    /// The rules, in profile order.
    pub syscalls: Vec<SyscallRule>,
    /// watertight's own extension object, when present.
    pub watertight: Option<WatertightExtension>,
}

impl Profile {
    /// Parse a Docker/OCI seccomp profile. Every action, operator, architecture, flag and syscall
    /// name is checked; errors name the entry (`syscalls[3] (mount, umount2)`).
    pub fn from_json(text: &str) -> Result<Profile, Error> {
        let raw: raw::Profile = serde_json::from_str(text)?;
        Profile::from_raw(raw)
    }

    /// Pretty JSON in the same format (round-trips through [`Profile::from_json`]).
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.to_raw())
            .expect("serializing plain strings and integers cannot fail");
        text.push('\n');
        text
    }

    /// Compact JSON; also the canonical form hashed by the filter cache.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_raw())
            .expect("serializing plain strings and integers cannot fail")
    }

    /// The violation-class syscall names (empty without the extension).
    pub fn violation_syscalls(&self) -> &[String] {
        self.watertight
            .as_ref()
            .map(|w| w.violation_syscalls.as_slice())
            .unwrap_or(&[])
    }

    fn from_raw(raw: raw::Profile) -> Result<Profile, Error> {
        let default_action = Action::parse(&raw.default_action, || "defaultAction".into())?;
        if raw.default_errno_ret.is_some() && default_action != Action::Errno {
            return Err(Error::invalid(
                "defaultErrnoRet",
                format!("is set but defaultAction is {default_action}; it only applies to SCMP_ACT_ERRNO"),
            ));
        }
        let architectures = raw
            .architectures
            .iter()
            .enumerate()
            .map(|(i, a)| parse_arch(a, || format!("architectures[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let arch_map = raw
            .arch_map
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(ArchMapEntry {
                    architecture: parse_arch(&m.architecture, || {
                        format!("archMap[{i}].architecture")
                    })?,
                    sub_architectures: m
                        .sub_architectures
                        .iter()
                        .enumerate()
                        .map(|(j, a)| {
                            parse_arch(a, || format!("archMap[{i}].subArchitectures[{j}]"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let flags = raw
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| {
                FLAGS
                    .iter()
                    .find(|(_, n)| n == f)
                    .map(|(flag, _)| *flag)
                    .ok_or_else(|| Error::UnknownFlag {
                        at: format!("flags[{i}]"),
                        flag: f.clone(),
                        expected: FLAG_NAMES,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let syscalls = raw
            .syscalls
            .into_iter()
            .enumerate()
            .map(|(i, r)| parse_rule(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let watertight = match raw.watertight {
            None => None,
            Some(ext) => {
                for (i, name) in ext.violation_syscalls.iter().enumerate() {
                    check_syscall_name(name, || format!("watertight.violationSyscalls[{i}]"))?;
                }
                Some(WatertightExtension {
                    violation_syscalls: ext.violation_syscalls,
                })
            }
        };
        Ok(Profile {
            default_action,
            default_errno_ret: raw.default_errno_ret,
            architectures,
            arch_map,
            flags,
            listener_path: raw.listener_path,
            listener_metadata: raw.listener_metadata,
            syscalls,
            watertight,
        })
    }

    fn to_raw(&self) -> raw::Profile {
        raw::Profile {
            default_action: self.default_action.as_str().to_string(),
            default_errno_ret: self.default_errno_ret,
            architectures: self.architectures.iter().map(|a| a.0.to_string()).collect(),
            arch_map: self
                .arch_map
                .iter()
                .map(|m| raw::ArchMap {
                    architecture: m.architecture.0.to_string(),
                    sub_architectures: m
                        .sub_architectures
                        .iter()
                        .map(|a| a.0.to_string())
                        .collect(),
                })
                .collect(),
            flags: self.flags.iter().map(|f| f.as_str().to_string()).collect(),
            listener_path: self.listener_path.clone(),
            listener_metadata: self.listener_metadata.clone(),
            syscalls: self.syscalls.iter().map(rule_to_raw).collect(),
            watertight: self.watertight.as_ref().map(|w| raw::Watertight {
                violation_syscalls: w.violation_syscalls.clone(),
            }),
        }
    }
}

impl Serialize for Profile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Profile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = raw::Profile::deserialize(deserializer)?;
        Profile::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

fn parse_arch(name: &str, at: impl FnOnce() -> String) -> Result<Arch, Error> {
    Arch::from_name(name).ok_or_else(|| Error::UnknownArch {
        at: at(),
        arch: name.to_string(),
    })
}

fn check_syscall_name(name: &str, at: impl FnOnce() -> String) -> Result<(), Error> {
    if syscall_names::is_known(name) {
        Ok(())
    } else {
        Err(Error::UnknownSyscall {
            at: at(),
            name: name.to_string(),
            libseccomp: syscall_names::libseccomp_version(),
        })
    }
}

/// `syscalls[3] (mount, umount2)`: the entry index and (up to 4 of) its names.
fn rule_location(index: usize, raw: &raw::Syscall) -> String {
    let names: Vec<&str> = raw
        .names
        .iter()
        .map(String::as_str)
        .chain(raw.name.as_deref())
        .collect();
    let shown = names.iter().take(4).copied().collect::<Vec<_>>().join(", ");
    let more = if names.len() > 4 {
        format!(", ... {} more", names.len() - 4)
    } else {
        String::new()
    };
    format!("syscalls[{index}] ({shown}{more})")
}

fn parse_rule(index: usize, raw: raw::Syscall) -> Result<SyscallRule, Error> {
    let at = rule_location(index, &raw);
    if raw.names.is_empty() && raw.name.is_none() {
        return Err(Error::invalid(
            at,
            "has no syscall names; give \"names\": [\"...\"]",
        ));
    }
    for (j, name) in raw.names.iter().enumerate() {
        check_syscall_name(name, || format!("{at}.names[{j}]"))?;
    }
    if let Some(name) = &raw.name {
        check_syscall_name(name, || format!("{at}.name"))?;
    }
    let action = Action::parse(&raw.action, || format!("{at}.action"))?;
    if raw.errno_ret.is_some() && !matches!(action, Action::Errno | Action::Trace) {
        return Err(Error::invalid(
            format!("{at}.errnoRet"),
            format!("is set but action is {action}; it only applies to SCMP_ACT_ERRNO and SCMP_ACT_TRACE"),
        ));
    }
    if let (Action::Trace, Some(v)) = (action, raw.errno_ret) {
        if v > u32::from(u16::MAX) {
            return Err(Error::invalid(
                format!("{at}.errnoRet"),
                format!("{v} does not fit the 16-bit SCMP_ACT_TRACE message"),
            ));
        }
    }
    if let (Action::Errno, Some(v)) = (action, raw.errno_ret) {
        if v > 4095 {
            return Err(Error::invalid(
                format!("{at}.errnoRet"),
                format!("{v} is not an errno (1..=4095)"),
            ));
        }
    }
    let args = raw
        .args
        .iter()
        .enumerate()
        .map(|(j, a)| {
            let where_ = format!("{at}.args[{j}]");
            if a.index > 5 {
                return Err(Error::invalid(
                    where_,
                    format!(
                        "index {} is out of range; syscalls have arguments 0..=5",
                        a.index
                    ),
                ));
            }
            let op = OPS
                .iter()
                .find(|(_, n)| *n == a.op)
                .map(|(o, _)| *o)
                .ok_or_else(|| Error::UnknownOp {
                    at: format!("{where_}.op"),
                    op: a.op.clone(),
                    expected: OP_NAMES,
                })?;
            Ok(ArgCondition {
                index: a.index,
                value: a.value,
                value_two: a.value_two,
                op,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let includes = parse_filter(&at, "includes", raw.includes)?;
    let excludes = parse_filter(&at, "excludes", raw.excludes)?;
    Ok(SyscallRule {
        names: raw.names,
        name: raw.name,
        comment: raw.comment,
        action,
        errno_ret: raw.errno_ret,
        args,
        includes,
        excludes,
    })
}

fn parse_filter(
    at: &str,
    which: &str,
    raw: Option<raw::Filter>,
) -> Result<Option<RuleFilter>, Error> {
    let Some(raw) = raw else { return Ok(None) };
    for (k, cap) in raw.caps.iter().enumerate() {
        if !crate::caps::is_known(cap) {
            return Err(Error::invalid(
                format!("{at}.{which}.caps[{k}]"),
                format!("unknown capability {cap:?}; expected a name such as CAP_SYS_ADMIN"),
            ));
        }
    }
    let min_kernel = match raw.min_kernel {
        None => None,
        Some(s) => Some(KernelVersion::parse(&s).ok_or_else(|| {
            Error::invalid(
                format!("{at}.{which}.minKernel"),
                format!("{s:?} is not a MAJOR.MINOR kernel version such as \"4.8\""),
            )
        })?),
    };
    Ok(Some(RuleFilter {
        caps: raw.caps,
        arches: raw.arches,
        min_kernel,
    }))
}

fn rule_to_raw(rule: &SyscallRule) -> raw::Syscall {
    let filter = |f: &Option<RuleFilter>| {
        f.as_ref().map(|f| raw::Filter {
            caps: f.caps.clone(),
            arches: f.arches.clone(),
            min_kernel: f.min_kernel.map(|k| k.to_string()),
        })
    };
    raw::Syscall {
        names: rule.names.clone(),
        name: rule.name.clone(),
        comment: rule.comment.clone(),
        action: rule.action.as_str().to_string(),
        errno_ret: rule.errno_ret,
        args: rule
            .args
            .iter()
            .map(|a| raw::Arg {
                index: a.index,
                value: a.value,
                value_two: a.value_two,
                op: a.op.as_str().to_string(),
            })
            .collect(),
        includes: filter(&rule.includes),
        excludes: filter(&rule.excludes),
    }
}

impl RuleFilter {
    /// Whether the rule this filter belongs to applies, per Docker's semantics.
    pub(crate) fn matches(
        &self,
        caps: &BTreeSet<String>,
        go_arch: &str,
        kernel: Option<KernelVersion>,
    ) -> bool {
        let caps_ok = self.caps.iter().all(|c| caps.contains(c));
        let arch_ok = self.arches.is_empty() || self.arches.iter().any(|a| a == go_arch);
        let kernel_ok = match (self.min_kernel, kernel) {
            (None, _) => true,
            (Some(min), Some(k)) => k >= min,
            (Some(_), None) => false,
        };
        caps_ok && arch_ok && kernel_ok
    }

    /// Docker's excludes: the rule is dropped if ANY listed item matches.
    pub(crate) fn excludes(
        &self,
        caps: &BTreeSet<String>,
        go_arch: &str,
        kernel: Option<KernelVersion>,
    ) -> bool {
        let cap_hit = self.caps.iter().any(|c| caps.contains(c));
        let arch_hit = self.arches.iter().any(|a| a == go_arch);
        let kernel_hit = match (self.min_kernel, kernel) {
            (Some(min), Some(k)) => k >= min,
            _ => false,
        };
        cap_hit || arch_hit || kernel_hit
    }
}

/// The JSON shape, strings unchecked. Unknown keys are errors so a misspelt key is not silently
/// ignored.
pub(crate) mod raw {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Profile {
        pub default_action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default_errno_ret: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub architectures: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub arch_map: Vec<ArchMap>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub flags: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub listener_path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub listener_metadata: Option<String>,
        #[serde(default)]
        pub syscalls: Vec<Syscall>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub watertight: Option<Watertight>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct ArchMap {
        pub architecture: String,
        #[serde(default)]
        pub sub_architectures: Vec<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Syscall {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub comment: Option<String>,
        pub action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub errno_ret: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub args: Vec<Arg>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub includes: Option<Filter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub excludes: Option<Filter>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Arg {
        pub index: u32,
        pub value: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub value_two: Option<u64>,
        pub op: String,
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Filter {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub caps: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub arches: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub min_kernel: Option<String>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Watertight {
        #[serde(default)]
        pub violation_syscalls: Vec<String>,
    }
}
