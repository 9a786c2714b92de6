//! Unit tests of parsing, errors, the argument-range encoding and the cache entry format.

use super::*;

fn parse_err(json: &str) -> Error {
    Profile::from_json(json).expect_err("profile must be rejected")
}

#[test]
fn malformed_json_is_a_json_error() {
    let err = parse_err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [ {"#);
    assert!(matches!(err, Error::Json(_)), "{err}");
    assert!(
        err.to_string()
            .contains("not a valid Docker/OCI seccomp JSON"),
        "{err}"
    );
}

#[test]
fn misspelt_key_is_rejected() {
    let err = parse_err(r#"{"defaultaction": "SCMP_ACT_ERRNO"}"#);
    assert!(err.to_string().contains("defaultaction"), "{err}");
}

#[test]
fn unknown_action_names_entry_and_syscalls() {
    let err = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount", "umount2"], "action": "SCMP_ACT_DENY"}]}"#,
    );
    match &err {
        Error::UnknownAction { at, action, .. } => {
            assert_eq!(at, "syscalls[1] (mount, umount2).action");
            assert_eq!(action, "SCMP_ACT_DENY");
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(
        err.to_string().contains("SCMP_ACT_ALLOW"),
        "lists the valid actions: {err}"
    );
    let err = parse_err(r#"{"defaultAction": "ALLOW"}"#);
    assert!(
        matches!(err, Error::UnknownAction { ref at, .. } if at == "defaultAction"),
        "{err}"
    );
}

#[test]
fn unknown_syscall_names_entry_and_name() {
    let err = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "wirte"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    match &err {
        Error::UnknownSyscall { at, name, .. } => {
            assert_eq!(at, "syscalls[0] (read, wirte).names[1]");
            assert_eq!(name, "wirte");
        }
        other => panic!("wrong error: {other}"),
    }
    let err = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "watertight": {"violationSyscalls": ["mont"]}}"#,
    );
    assert!(
        matches!(err, Error::UnknownSyscall { ref name, .. } if name == "mont"),
        "{err}"
    );
}

#[test]
fn syscalls_of_other_architectures_are_known() {
    // Docker's default.json names 32-bit and ARM syscalls; they must parse.
    for name in ["chown32", "socketcall", "arm_fadvise64_64", "read"] {
        assert!(is_known_syscall(name), "{name}");
    }
    assert!(!is_known_syscall("no_such_syscall"));
    assert!(!is_known_syscall(""));
    assert!(!is_known_syscall("read\0"));
}

#[test]
fn bad_op_and_bad_index_are_named() {
    let err = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}]}"#,
    );
    match &err {
        Error::UnknownOp { at, op, .. } => {
            assert_eq!(at, "syscalls[0] (socket).args[0].op");
            assert_eq!(op, "SCMP_CMP_EQUAL");
        }
        other => panic!("wrong error: {other}"),
    }
    let err = parse_err(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(
        err.to_string().contains("syscalls[0] (socket).args[0]"),
        "{err}"
    );
    assert!(err.to_string().contains("0..=5"), "{err}");
}

#[test]
fn other_structural_errors() {
    for (json, needle) in [
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86_64"]}"#,
            "architectures[0]",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}"#,
            "flags[0]",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#,
            "defaultErrnoRet",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#,
            "no syscall names",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#,
            "errnoRet",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
            "not an errno",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}"#,
            "minKernel",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}}]}"#,
            "CAP_NOPE",
        ),
    ] {
        let err = parse_err(json);
        assert!(err.to_string().contains(needle), "{json}: {err}");
    }
}

#[test]
fn docker_style_profile_round_trips_unchanged() {
    let json = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [
    {
      "architecture": "SCMP_ARCH_X86_64",
      "subArchitectures": [
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32"
      ]
    }
  ],
  "flags": [
    "SECCOMP_FILTER_FLAG_LOG"
  ],
  "syscalls": [
    {
      "names": [
        "read",
        "chown32"
      ],
      "action": "SCMP_ACT_ALLOW",
      "includes": {},
      "excludes": {}
    },
    {
      "names": [
        "clone"
      ],
      "action": "SCMP_ACT_ALLOW",
      "args": [
        {
          "index": 0,
          "value": 2114060288,
          "valueTwo": 0,
          "op": "SCMP_CMP_MASKED_EQ"
        }
      ],
      "excludes": {
        "caps": [
          "CAP_SYS_ADMIN"
        ],
        "arches": [
          "s390",
          "s390x"
        ]
      }
    },
    {
      "names": [
        "ptrace"
      ],
      "action": "SCMP_ACT_ALLOW",
      "includes": {
        "minKernel": "4.8"
      }
    }
  ]
}
"#;
    let profile = Profile::from_json(json).expect("parses");
    assert_eq!(profile.to_json_pretty(), json);
}

#[test]
fn legacy_single_name_is_accepted() {
    let profile = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "mount", "action": "SCMP_ACT_KILL"}]}"#,
    )
    .expect("parses");
    assert_eq!(
        profile.syscalls[0].all_names().collect::<Vec<_>>(),
        ["mount"]
    );
    assert_eq!(profile.syscalls[0].action, Action::Kill);
    profile
        .compile(&CompileOptions::default())
        .expect("compiles");
}

#[test]
fn profile_without_native_arch_is_refused_at_compile() {
    let profile = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
    )
    .expect("parses");
    let err = profile
        .compile(&CompileOptions::default())
        .expect_err("refused");
    assert!(err.to_string().contains("SCMP_ARCH_X86_64"), "{err}");
}

/// Reference for the argument encoding: whether `value` (64 bits) satisfies any condition.
fn matches_any(conditions: &[ArgCondition], value: u64) -> bool {
    conditions.iter().any(|c| {
        assert_eq!(c.op, ArgOp::MaskedEqual);
        value & c.value == c.value_two.expect("masked conditions carry valueTwo")
    })
}

#[test]
fn low32_set_conditions_match_exactly_the_ranges() {
    let ranges = [0..=16u64, 18..=37, 39..=39, 41..=63];
    let conditions = low32_set_conditions(0, &ranges);
    for v in 0..200u64 {
        let expected = ranges.iter().any(|r| r.contains(&v));
        assert_eq!(matches_any(&conditions, v), expected, "value {v}");
        // The upper 32 bits never matter: the kernel truncates int arguments.
        assert_eq!(
            matches_any(&conditions, v | (0xdead_beef << 32)),
            expected,
            "value {v} with high bits"
        );
    }
    let ioctl = low32_set_conditions(1, &[0..=0x5411, 0x5413..=0x541b, 0x541d..=0xffff_ffff]);
    for v in [
        0u64,
        1,
        0x5411,
        0x5413,
        0x541b,
        0x541d,
        0x5401,
        0x8000_0000,
        0xffff_ffff,
    ] {
        assert!(matches_any(&ioctl, v), "{v:#x}");
    }
    for v in [0x5412u64, 0x541c, 0x1_0000_5412, 0xffff_ffff_0000_541c] {
        assert!(!matches_any(&ioctl, v), "{v:#x}");
    }
    assert!(ioctl.len() < 40, "{} conditions", ioctl.len());
}

#[test]
fn default_profile_refuses_what_the_brief_lists() {
    let profile = default_profile();
    let allowed: std::collections::BTreeSet<&str> = profile
        .syscalls
        .iter()
        .filter(|r| r.action == Action::Allow && r.args.is_empty())
        .flat_map(|r| r.all_names())
        .collect();
    for refused in [
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "clone",
        "clone3",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kexec_load",
        "kexec_file_load",
        "bpf",
        "keyctl",
        "add_key",
        "request_key",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "userfaultfd",
        "perf_event_open",
        "open_by_handle_at",
        "name_to_handle_at",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "open_tree",
        "move_mount",
        "mount_setattr",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "iopl",
        "ioperm",
        "swapon",
        "swapoff",
        "acct",
        "quotactl",
        "settimeofday",
        "clock_settime",
        "adjtimex",
        "personality",
        "socket",
        "ioctl",
        "lookup_dcookie",
        "vhangup",
        "syslog",
        "nfsservctl",
        "kcmp",
        "uselib",
        "sysfs",
        "_sysctl",
    ] {
        assert!(
            !allowed.contains(refused),
            "{refused} is allowed unconditionally"
        );
    }
    for name in ALLOWED {
        assert!(is_known_syscall(name), "{name}");
    }
}

#[test]
fn cache_entries_round_trip_and_reject_corruption() {
    let filter = default_profile()
        .compile(&CompileOptions::default())
        .expect("compiles");
    let entry = cache::encode_entry(&filter);
    assert_eq!(cache::decode_entry(&entry), Some(filter.clone()));
    // Truncated, extended, bit-flipped anywhere: all ignored.
    assert_eq!(cache::decode_entry(&entry[..entry.len() - 1]), None);
    let mut longer = entry.clone();
    longer.extend_from_slice(&[0; 8]);
    assert_eq!(cache::decode_entry(&longer), None);
    for at in [0, 9, 17, 30, entry.len() - 1] {
        let mut flipped = entry.clone();
        flipped[at] ^= 0x40;
        assert_eq!(cache::decode_entry(&flipped), None, "flip at {at}");
    }
    assert_eq!(cache::decode_entry(&[]), None);
}

#[test]
fn cache_key_depends_on_profile_and_options() {
    let profile = default_profile();
    let base = cache_key(&profile, &CompileOptions::default());
    assert_eq!(base, cache_key(&profile, &CompileOptions::default()));
    let kill = CompileOptions {
        violation_action: ViolationAction::KillProcess,
        ..Default::default()
    };
    assert_ne!(base, cache_key(&profile, &kill));
    let log = CompileOptions {
        log_denials: true,
        ..Default::default()
    };
    assert_ne!(base, cache_key(&profile, &log));
    let killable = CompileOptions {
        wait_killable_recv: true,
        ..Default::default()
    };
    assert_ne!(base, cache_key(&profile, &killable));
    let mut other = profile.clone();
    other.default_errno_ret = Some(38);
    assert_ne!(base, cache_key(&other, &CompileOptions::default()));
}

#[test]
fn corrupt_cache_entry_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache_dir = dir.path().join("c");
    let profile = default_profile();
    let opts = CompileOptions::default();
    let (fresh, _) = compile_cached_with_outcome(&profile, &opts, &cache_dir).expect("miss");
    let entry = cache_dir.join(format!("{}.bpf", cache_key(&profile, &opts)));
    std::fs::write(&entry, b"WTSECBPF garbage").expect("corrupt the entry");
    let (again, outcome) =
        compile_cached_with_outcome(&profile, &opts, &cache_dir).expect("recompiles");
    assert_eq!(outcome, CacheOutcome::Miss);
    assert_eq!(again, fresh);
    let (_, outcome) = compile_cached_with_outcome(&profile, &opts, &cache_dir).expect("hit");
    assert_eq!(outcome, CacheOutcome::Hit);
}

#[test]
fn unsafe_cache_dir_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err =
        compile_cached(&default_profile(), &CompileOptions::default(), &open).expect_err("refused");
    assert!(matches!(err, Error::Cache { .. }), "{err}");
    assert!(err.to_string().contains("chmod go-w"), "{err}");

    let file = dir.path().join("file");
    std::fs::write(&file, b"").expect("touch");
    let err =
        compile_cached(&default_profile(), &CompileOptions::default(), &file).expect_err("refused");
    assert!(err.to_string().contains("not a directory"), "{err}");

    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: the foreign-owner case needs root to chown");
        return;
    }
    let other_owner = dir.path().join("nobody");
    std::fs::create_dir(&other_owner).expect("mkdir");
    std::os::unix::fs::chown(&other_owner, Some(65534), Some(65534)).expect("chown as root");
    let err = compile_cached(&default_profile(), &CompileOptions::default(), &other_owner)
        .expect_err("refused");
    assert!(err.to_string().contains("owned by uid 65534"), "{err}");
}

#[test]
fn explain_shows_the_compiled_rules() {
    let text = default_profile()
        .explain(&CompileOptions::default())
        .expect("explains");
    assert!(text.contains("filter for arch x86_64"), "{text}");
    assert!(text.contains("syscall \"ioctl\""), "{text}");
    assert!(text.contains("action ERRNO(38)"), "clone3's ENOSYS: {text}");
    assert!(text.contains("default action"), "{text}");
}

#[test]
fn refusing_profiles_get_the_enosys_prefix_and_allowing_ones_do_not() {
    let refusing = default_profile()
        .compile(&CompileOptions::default())
        .expect("compiles");
    let ret_enosys = libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0x0005_0000 | libc::ENOSYS as u32,
    };
    assert_eq!(refusing.program()[5], ret_enosys);
    assert!(
        refusing.program()[4].k >= 469,
        "highest known syscall: {}",
        refusing.program()[4].k
    );
    let allowing = Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("parses")
    .compile(&CompileOptions::default())
    .expect("compiles");
    assert!(!allowing.program().contains(&ret_enosys));
}
