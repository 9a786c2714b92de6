//! The floor's own seccomp profile: a deny list (everything not listed is allowed), installed by
//! the runtime as a second filter after the container's own. The kernel runs every installed
//! filter and takes the most restrictive answer, so the container's profile can narrow the
//! floor but never widen it: a profile that allows unshare still meets this one.

use watertight_seccomp::{Action, Arch, ArgCondition, ArgOp, FilterFlag, Profile, SyscallRule};

use crate::config::{PacketSockets, SeccompSettings};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_PACKET: u64 = 17;
const LOW_32_BITS: u64 = 0xffff_ffff;
/// CLONE_NEWTIME: only unshare (and clone3) take it; on clone it overlaps the exit signal.
const CLONE_NEWTIME: u64 = 0x80;

/// The floor's profile, or `None` when `seccomp.enabled = false`. `notify`: violation-class
/// calls go to the runtime's user-notification listener instead of failing with EPERM. `log`:
/// the filter is installed with SECCOMP_FILTER_FLAG_LOG, so each of its refusals is an audit
/// record (type 1326: pid, syscall number) in the kernel log, for the audit trail when no
/// listener sees them.
pub(crate) fn profile(settings: &SeccompSettings, notify: bool, log: bool) -> Option<Profile> {
    if !settings.enabled {
        return None;
    }
    let violation = |names: &[&str], comment: &str| {
        let mut r = SyscallRule::new(names, Action::Errno);
        if notify {
            r.action = Action::Notify;
        } else {
            r.errno_ret = Some(EPERM);
        }
        r.comment = Some(comment.to_string());
        r
    };
    let mut syscalls = Vec::new();
    if !settings.syscalls.is_empty() {
        let names: Vec<&str> = settings.syscalls.iter().map(String::as_str).collect();
        syscalls.push(violation(
            &names,
            "watertight floor: violation-class syscalls (runtime.toml seccomp.syscalls)",
        ));
    }
    if settings.namespaces {
        let flags: Vec<u64> = watertight_seccomp::CLONE_NAMESPACE_FLAGS.to_vec();
        let mut clone = violation(
            &["clone"],
            "watertight floor: clone with any CLONE_NEW* flag (conditions on one argument are ORed)",
        );
        clone.args = flags.iter().map(|f| masked(0, *f, *f)).collect();
        syscalls.push(clone);
        if !settings.syscalls.contains("unshare") {
            let mut unshare = violation(
                &["unshare"],
                "watertight floor: unshare with any CLONE_NEW* flag",
            );
            unshare.args = flags
                .iter()
                .chain(std::iter::once(&CLONE_NEWTIME))
                .map(|f| masked(0, *f, *f))
                .collect();
            syscalls.push(unshare);
        }
        let mut clone3 = SyscallRule::new(&["clone3"], Action::Errno);
        clone3.errno_ret = Some(ENOSYS);
        clone3.comment = Some(
            "watertight floor: seccomp cannot read clone3's flags (in memory); ENOSYS makes \
             libc fall back to clone, whose flags it checks"
                .into(),
        );
        syscalls.push(clone3);
    }
    if settings.packet_sockets == PacketSockets::Refuse {
        let mut packet = violation(
            &["socket"],
            "watertight floor: raw packet sockets (AF_PACKET)",
        );
        packet.args = vec![masked(0, LOW_32_BITS, AF_PACKET)];
        syscalls.push(packet);
    }
    Some(Profile {
        default_action: Action::Allow,
        default_errno_ret: None,
        // Only the native ABI is compiled in; any other (i386 int 0x80, x32) is killed, so a
        // 32-bit entry point cannot reach the refused calls under other numbers.
        architectures: vec![Arch::X86_64],
        arch_map: Vec::new(),
        flags: if log {
            vec![FilterFlag::Log]
        } else {
            Vec::new()
        },
        listener_path: None,
        listener_metadata: None,
        syscalls,
        watertight: None,
    })
}

fn masked(index: u32, mask: u64, value: u64) -> ArgCondition {
    ArgCondition {
        index,
        value: mask,
        value_two: Some(value),
        op: ArgOp::MaskedEqual,
    }
}
