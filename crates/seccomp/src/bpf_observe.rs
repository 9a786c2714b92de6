//! `watertight run --bpf-observe`: bpf() let through for the commands a BPF observer needs and
//! nothing else. What the program may create is the BPF token's to decide (the kernel checks
//! the delegation options of the sandbox's bpffs); BPF_PROG_LOAD goes to the supervisor (the
//! violation action), which vets each program before it loads it. Every other bpf() command,
//! and bpf() in every sandbox without the flag, stays a violation as before.

use crate::default::low32_set_conditions;
use crate::profile::{Action, Profile, SyscallRule};

/// The bpf() commands (uapi `enum bpf_cmd`) an observer needs that the filter lets through:
/// make maps through the token, read and write its own maps, attach a raw tracepoint, ask
/// about its objects. BPF_PROG_LOAD is not among them: it gets the violation action, which in
/// `watertight run` is a user notification the supervisor serves with its vetted load (the
/// sandbox crate's `bpf_load.rs`: a token cannot restrict helpers). Every other command
/// (BPF_PROG_ATTACH, BPF_OBJ_PIN/GET, BPF_PROG_TEST_RUN, iterating the host's program/map ids
/// and opening them by id, ...) stays a violation.
pub const BPF_OBSERVE_COMMANDS: &[(u64, &str)] = &[
    (0, "BPF_MAP_CREATE"),
    (1, "BPF_MAP_LOOKUP_ELEM"),
    (2, "BPF_MAP_UPDATE_ELEM"),
    (3, "BPF_MAP_DELETE_ELEM"),
    (4, "BPF_MAP_GET_NEXT_KEY"),
    (15, "BPF_OBJ_GET_INFO_BY_FD"),
    (17, "BPF_RAW_TRACEPOINT_OPEN"),
    (18, "BPF_BTF_LOAD"),
    (21, "BPF_MAP_LOOKUP_AND_DELETE_ELEM"),
    (22, "BPF_MAP_FREEZE"),
    (28, "BPF_LINK_CREATE"),
    (36, "BPF_TOKEN_CREATE"),
];

/// The two rules that let [`BPF_OBSERVE_COMMANDS`] through and refuse every other command with
/// an explicit rule (a violation syscall allowed only under conditions needs one: without it
/// the rest would get the default action, not the violation action). Both match the low 32
/// bits of the command, which is all the kernel reads (an `int`).
pub fn bpf_observe_rules() -> [SyscallRule; 2] {
    let mut commands: Vec<u64> = BPF_OBSERVE_COMMANDS.iter().map(|(c, _)| *c).collect();
    commands.sort_unstable();
    let allowed: Vec<_> = commands.iter().map(|c| *c..=*c).collect();
    let mut refused = Vec::new();
    let mut next = 0u64;
    for c in &commands {
        if *c > next {
            refused.push(next..=*c - 1);
        }
        next = c + 1;
    }
    refused.push(next..=u64::from(u32::MAX));

    let mut allow = SyscallRule::new(&["bpf"], Action::Allow);
    allow.comment = Some(
        "--bpf-observe: the commands an observer needs but BPF_PROG_LOAD; what it may create is \
         the BPF token's to decide"
            .into(),
    );
    allow.args = low32_set_conditions(0, &allowed);
    let mut refuse = SyscallRule::new(&["bpf"], Action::Errno);
    refuse.errno_ret = Some(libc::EPERM as u32);
    refuse.comment = Some(
        "--bpf-observe: BPF_PROG_LOAD (served by the supervisor's vetted load) and every other \
         bpf() command: the violation action"
            .into(),
    );
    refuse.args = low32_set_conditions(0, &refused);
    [allow, refuse]
}

impl Profile {
    /// This profile with [`bpf_observe_rules`] added (`watertight run --bpf-observe`).
    pub fn with_bpf_observe(mut self) -> Profile {
        self.syscalls.extend(bpf_observe_rules());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(rule: &SyscallRule, cmd: u64) -> bool {
        rule.args
            .iter()
            .any(|a| cmd & a.value == a.value_two.unwrap())
    }

    #[test]
    fn every_command_is_either_allowed_or_refused_never_both() {
        let [allow, refuse] = bpf_observe_rules();
        for cmd in (0..=64u64).chain([u64::from(u32::MAX), 0x1_0000_0005]) {
            let listed = BPF_OBSERVE_COMMANDS
                .iter()
                .any(|(c, _)| *c == cmd & 0xffff_ffff);
            assert_eq!(matches(&allow, cmd), listed, "cmd {cmd:#x}");
            assert_eq!(matches(&refuse, cmd), !listed, "cmd {cmd:#x}");
        }
        // BPF_PROG_LOAD (5: to the supervisor's vetted load), BPF_PROG_ATTACH (8), BPF_OBJ_GET
        // (7), BPF_PROG_GET_FD_BY_ID (13): the violation action.
        for cmd in [5, 7, 8, 13, 14] {
            assert!(matches(&refuse, cmd));
        }
    }
}
