//! The compiled filters against the real kernel: each test forks a child (through
//! `watertight_sys::seccomp::probe_filter`, which only makes raw syscalls after fork), installs a
//! filter there and records what the kernel answers to dangerous and ordinary syscalls. A control
//! run without a filter shows each probe is meaningful on this kernel (the refusal comes from
//! the filter, not from missing privileges).

use watertight_seccomp::{
    default_profile, CompileOptions, CompiledFilter, Profile, ViolationAction,
};
use watertight_sys::seccomp::{probe_filter, Probe, ProbeOutcome, ProbeReport};

const EPERM: i32 = libc::EPERM;
const ENOSYS: i32 = libc::ENOSYS;
const SIGSYS: i32 = libc::SIGSYS;

fn compiled(opts: &CompileOptions) -> CompiledFilter {
    default_profile()
        .compile(opts)
        .expect("default profile compiles")
}

fn probe(filter: &CompiledFilter, probes: &[Probe]) -> ProbeReport {
    let report =
        probe_filter(Some(filter.program()), filter.flags(), probes).expect("probe child runs");
    assert_eq!(
        report.install_errno, None,
        "filter install failed: {report:?}"
    );
    report
}

fn control(probes: &[Probe]) -> ProbeReport {
    probe_filter(None, 0, probes).expect("control child runs")
}

fn assert_errno(report: &ProbeReport, probe: Probe, errno: i32) {
    assert_eq!(
        report.outcome(probe),
        ProbeOutcome::Errno(errno),
        "{probe:?}: expected errno {errno}; full report {report:?}"
    );
}

fn assert_allowed(report: &ProbeReport, probe: Probe) {
    match report.outcome(probe) {
        ProbeOutcome::Returned(_) => {}
        ProbeOutcome::Errno(e) if e != EPERM && e != ENOSYS => {}
        other => panic!("{probe:?} should pass the filter, got {other:?}; report {report:?}"),
    }
}

const DENIED_WITH_EPERM: &[Probe] = &[
    Probe::Mount,
    Probe::Umount2,
    Probe::UnshareUser,
    Probe::Setns,
    Probe::CloneNewNet,
    Probe::CloneNewUser,
    Probe::PtraceAttach,
    Probe::ProcessVmReadv,
    Probe::Bpf,
    Probe::Keyctl,
    Probe::AddKey,
    Probe::IoUringSetup,
    Probe::PerfEventOpen,
    Probe::Userfaultfd,
    Probe::SocketPacket,
    Probe::SocketPacketHighBits,
    Probe::SocketVsock,
    Probe::SocketAlg,
    Probe::PersonalityNoRandomize,
    Probe::IoctlTiocsti,
    Probe::IoctlTiocstiHighBits,
    Probe::IoctlTioclinux,
    Probe::OpenTreeAttr,
];

const ALLOWED: &[Probe] = &[
    Probe::Getpid,
    Probe::ReadBadFd,
    Probe::WriteBadFd,
    Probe::ClonePlain,
    Probe::SocketInet,
    Probe::SocketUnix,
    Probe::PersonalityQuery,
    Probe::IoctlTcgets,
    Probe::Mseal,
];

#[test]
fn control_run_shows_the_probes_reach_the_kernel() {
    let mut all: Vec<Probe> = DENIED_WITH_EPERM.to_vec();
    all.extend_from_slice(ALLOWED);
    all.push(Probe::Clone3);
    // One child per probe: an earlier probe (unshare of a user namespace) would otherwise drop
    // the capabilities a later one needs.
    for probe in &all {
        let report = control(&[*probe]);
        assert_eq!(report.exit_code, Some(0), "{report:?}");
        // Without a filter none of these answers EPERM: as root they succeed or fail for their
        // harmless arguments, so an EPERM under the filter can only come from the filter.
        if let ProbeOutcome::Errno(e) = report.outcome(*probe) {
            assert_ne!(
                e, EPERM,
                "{probe:?} is EPERM even without a filter: {report:?}"
            );
        }
    }
    let report = control(&[Probe::Clone3]);
    assert_eq!(
        report.outcome(Probe::Clone3),
        ProbeOutcome::Errno(libc::EINVAL)
    );
}

#[test]
fn default_filter_refuses_dangerous_syscalls_with_eperm() {
    let filter = compiled(&CompileOptions::default());
    let report = probe(&filter, DENIED_WITH_EPERM);
    assert_eq!(report.exit_code, Some(0), "{report:?}");
    for probe in DENIED_WITH_EPERM {
        assert_errno(&report, *probe, EPERM);
    }
}

#[test]
fn default_filter_allows_ordinary_syscalls() {
    let filter = compiled(&CompileOptions::default());
    let report = probe(&filter, ALLOWED);
    assert_eq!(report.exit_code, Some(0), "{report:?}");
    for probe in ALLOWED {
        assert_allowed(&report, *probe);
    }
}

#[test]
fn clone3_answers_enosys_so_glibc_falls_back_to_clone() {
    let filter = compiled(&CompileOptions::default());
    let report = probe(&filter, &[Probe::Clone3]);
    assert_errno(&report, Probe::Clone3, ENOSYS);
}

#[test]
fn syscalls_newer_than_the_build_answer_enosys() {
    // The kernel itself answers ENOSYS for an unassigned number; under the filter it must stay
    // ENOSYS (not EPERM), so programs probing a new syscall fall back.
    let control = control(&[Probe::Unassigned]);
    assert_eq!(
        control.outcome(Probe::Unassigned),
        ProbeOutcome::Errno(ENOSYS)
    );
    for opts in [
        CompileOptions::default(),
        CompileOptions {
            violation_action: ViolationAction::KillProcess,
            ..Default::default()
        },
    ] {
        let filter = compiled(&opts);
        let report = probe(&filter, &[Probe::Unassigned, Probe::Getpid]);
        assert_errno(&report, Probe::Unassigned, ENOSYS);
        assert_allowed(&report, Probe::Getpid);
    }
}

#[test]
fn kill_process_violation_action_kills_with_sigsys() {
    let opts = CompileOptions {
        violation_action: ViolationAction::KillProcess,
        ..Default::default()
    };
    let filter = compiled(&opts);
    for dangerous in [
        Probe::Mount,
        Probe::UnshareUser,
        Probe::CloneNewNet,
        Probe::PtraceAttach,
        Probe::Bpf,
        Probe::IoUringSetup,
        Probe::SocketPacket,
        Probe::OpenTreeAttr,
    ] {
        // Getpid first shows the child was alive and filtered before the violation.
        let report = probe(&filter, &[Probe::Getpid, dangerous, Probe::Getpid]);
        assert_eq!(report.signal, Some(SIGSYS), "{dangerous:?}: {report:?}");
        assert_eq!(report.killed_at(), Some(dangerous), "{report:?}");
    }
    // A refusal outside the violation class still gets the profile's EPERM, and clone without
    // namespace flags still works.
    let report = probe(
        &filter,
        &[Probe::SocketVsock, Probe::ClonePlain, Probe::Clone3],
    );
    assert_eq!(report.signal, None, "{report:?}");
    assert_errno(&report, Probe::SocketVsock, EPERM);
    assert_allowed(&report, Probe::ClonePlain);
    assert_errno(&report, Probe::Clone3, ENOSYS);
}

#[test]
fn user_notify_violation_action_reaches_the_listener() {
    let opts = CompileOptions {
        violation_action: ViolationAction::UserNotify,
        ..Default::default()
    };
    let filter = compiled(&opts);
    assert!(filter.wants_listener());
    // The probe child closes the listener right after install; the kernel then answers every
    // notify rule with ENOSYS, which shows those syscalls went to the notifier.
    let report = probe(
        &filter,
        &[Probe::Mount, Probe::Bpf, Probe::SocketVsock, Probe::Getpid],
    );
    assert_errno(&report, Probe::Mount, ENOSYS);
    assert_errno(&report, Probe::Bpf, ENOSYS);
    assert_errno(&report, Probe::SocketVsock, EPERM);
    assert_allowed(&report, Probe::Getpid);
}

/// The supervisor's listener is gone (the probe child closes it at once, as a supervisor that died
/// or dropped it would): a violation-class call must still never run, and no listener of the
/// program's own may take over. Before the guard, the kernel let the program stack one (the old
/// one was detached), and that listener could answer CONTINUE.
#[test]
fn no_second_listener_can_be_stacked_even_when_ours_is_gone() {
    let opts = CompileOptions {
        violation_action: ViolationAction::UserNotify,
        ..Default::default()
    };
    let filter = compiled(&opts);
    assert!(filter.wants_listener());
    let report = probe(
        &filter,
        &[Probe::StackListener, Probe::UnshareUser, Probe::Mount],
    );
    assert_errno(&report, Probe::StackListener, EPERM);
    assert_errno(&report, Probe::UnshareUser, ENOSYS);
    assert_errno(&report, Probe::Mount, ENOSYS);
    // The guard is ours, not the kernel's: the same probe without our filter stacks a listener.
    assert_allowed(&control(&[Probe::StackListener]), Probe::StackListener);
}

/// After the supervisor has read a notification, only a fatal signal ends the wait (Linux 5.19+).
#[test]
fn violation_listener_waits_killably_after_receive() {
    let opts = CompileOptions {
        violation_action: ViolationAction::UserNotify,
        wait_killable_recv: true,
        ..Default::default()
    };
    let filter = compiled(&opts);
    assert_ne!(
        filter.flags() & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32,
        0,
        "this kernel (>= 5.19) supports SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
    );
}

#[test]
fn log_denials_sets_the_log_flag_and_installs() {
    let opts = CompileOptions {
        log_denials: true,
        ..Default::default()
    };
    let filter = compiled(&opts);
    assert_ne!(filter.flags() & watertight_sys::seccomp::FILTER_FLAG_LOG, 0);
    let report = probe(&filter, &[Probe::Mount]);
    assert_errno(&report, Probe::Mount, EPERM);
}

#[test]
fn x32_abi_cannot_bypass_the_filter() {
    let filter = compiled(&CompileOptions::default());
    // Both an allowed and a denied call through the x32 ABI end the process: the filter only
    // admits x86_64 (this kernel may not even build x32; without a filter it answers ENOSYS).
    for x32 in [Probe::X32Mount, Probe::X32Getpid] {
        let report = probe(&filter, &[Probe::Getpid, x32]);
        assert_eq!(report.signal, Some(SIGSYS), "{x32:?}: {report:?}");
        assert_eq!(report.killed_at(), Some(x32));
    }
}

#[test]
fn i386_abi_cannot_bypass_the_filter() {
    let control = control(&[Probe::I386Getpid]);
    if control.exit_code != Some(0)
        || !matches!(
            control.outcome(Probe::I386Getpid),
            ProbeOutcome::Returned(_)
        )
    {
        watertight_testkit::host_lacks(
            &watertight_testkit::this_test(),
            &format!(
                "this kernel does not run int 0x80 syscalls (IA32 emulation off): {control:?}"
            ),
        );
        return;
    }
    let filter = compiled(&CompileOptions::default());
    let report = probe(&filter, &[Probe::Getpid, Probe::I386Getpid]);
    assert_eq!(report.signal, Some(SIGSYS), "{report:?}");
    assert_eq!(report.killed_at(), Some(Probe::I386Getpid));
}

#[test]
fn docker_format_profile_with_argument_conditions_works() {
    // A Docker-style profile: allow by default, refuse personality(ADDR_NO_RANDOMIZE) by a
    // masked condition and socket(AF_UNIX) by equality, with a custom errno.
    let json = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 13,
                "args": [{"index": 0, "value": 262144, "valueTwo": 262144, "op": "SCMP_CMP_MASKED_EQ"}]
            },
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
                "includes": {},
                "excludes": {"caps": ["CAP_SYS_ADMIN"]}
            },
            {
                "names": ["mount"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 38,
                "includes": {"minKernel": "4.8", "arches": ["amd64"]}
            }
        ]
    }"#;
    let profile = Profile::from_json(json).expect("Docker profile parses");
    let filter = profile
        .compile(&CompileOptions::default())
        .expect("compiles");
    let report = probe(
        &filter,
        &[
            Probe::PersonalityQuery,
            Probe::PersonalityNoRandomize,
            Probe::SocketUnix,
            Probe::SocketInet,
            Probe::Mount,
        ],
    );
    assert_allowed(&report, Probe::PersonalityQuery);
    assert_errno(&report, Probe::PersonalityNoRandomize, libc::EACCES);
    assert_errno(&report, Probe::SocketUnix, EPERM);
    assert_allowed(&report, Probe::SocketInet);
    assert_errno(&report, Probe::Mount, ENOSYS);

    // With CAP_SYS_ADMIN kept, Docker's `excludes` drops the socket rule.
    let opts = CompileOptions {
        capabilities: ["CAP_SYS_ADMIN".to_string()].into_iter().collect(),
        ..Default::default()
    };
    let filter = profile.compile(&opts).expect("compiles");
    let report = probe(&filter, &[Probe::SocketUnix]);
    assert_allowed(&report, Probe::SocketUnix);
}

#[test]
fn cached_filter_behaves_like_the_fresh_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("seccomp-cache");
    let opts = CompileOptions::default();
    let (first, outcome1) =
        watertight_seccomp::compile_cached_with_outcome(&default_profile(), &opts, &cache)
            .expect("miss");
    let (second, outcome2) =
        watertight_seccomp::compile_cached_with_outcome(&default_profile(), &opts, &cache)
            .expect("hit");
    assert_eq!(outcome1, watertight_seccomp::CacheOutcome::Miss);
    assert_eq!(outcome2, watertight_seccomp::CacheOutcome::Hit);
    assert_eq!(first, second);
    let report = probe(&second, &[Probe::Mount, Probe::Getpid]);
    assert_errno(&report, Probe::Mount, EPERM);
    assert_allowed(&report, Probe::Getpid);
}
