//! runtime.toml parsing, the digest and `harden`, without a kernel.

use std::path::Path;

use oci_spec::runtime::Spec;

use super::*;

fn parse(text: &str) -> Result<Floor, Error> {
    Floor::parse(Path::new("/etc/watertight/runtime.toml"), text)
}

/// What Docker 20.10 writes for `docker run --device /dev/sda --cap-add NET_ADMIN busybox`
/// (abridged: the fields the floor reads).
pub(crate) const DOCKER_CONFIG: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_ADMIN"],
      "effective": ["CAP_CHOWN","CAP_NET_ADMIN"],
      "permitted": ["CAP_CHOWN","CAP_NET_ADMIN"]
    }
  },
  "root": {"path": "rootfs"},
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid","noexec","nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "devices": [
      {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 432, "uid": 0, "gid": 6}
    ],
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        {"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}
      ]
    },
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
    "maskedPaths": ["/proc/kcore", "/proc/keys"],
    "readonlyPaths": ["/proc/sys"]
  }
}"#;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).expect("test config parses")
}

fn added(h: &Hardening) -> Vec<String> {
    h.added_strings()
}

#[test]
fn an_empty_file_is_the_built_in_floor_but_for_where_it_came_from() {
    let f = parse("").unwrap();
    assert_eq!(f.settings, Settings::built_in());
    assert_eq!(f.digest(), Floor::built_in().digest());
    assert_eq!(f.version(), BUILT_IN_VERSION);
}

#[test]
fn an_absent_named_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("runtime.toml");
    let e = Floor::load(Some(&missing)).unwrap_err();
    assert!(matches!(e, Error::Read { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&missing.display().to_string()), "{text}");
    assert!(text.contains("--config"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn a_named_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runtime.toml");
    std::fs::write(&path, "version = \"v7\"\non_violation = \"kill\"\n").unwrap();
    let f = Floor::load(Some(&path)).unwrap();
    assert_eq!(f.version(), "v7");
    assert_eq!(f.settings.on_violation, OnViolation::Kill);
    assert_eq!(f.source.as_deref(), Some(path.as_path()));
}

#[test]
fn an_unknown_key_names_the_file_line_and_key_and_lists_the_known_ones() {
    let e = parse("version = \"a\"\n\n[seccomp]\nenabeld = true\n").unwrap_err();
    let Error::Parse { line, key, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((*line, key.as_str()), (4, "seccomp.enabeld"));
    let text = e.to_string();
    assert!(
        text.starts_with("/etc/watertight/runtime.toml:4: seccomp.enabeld: unknown field"),
        "{text}"
    );
    assert!(text.contains("`enabled`"), "{text}");
    assert!(text.contains("docs/runtime-floor.md"), "{text}");

    let e = parse("colour = 1\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/watertight/runtime.toml:1: colour: unknown field"),
        "{e}"
    );
}

#[test]
fn a_wrong_value_names_its_key_and_line() {
    let e = parse("# comment\non_violation = \"explode\"\n").unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("/etc/watertight/runtime.toml:2: on_violation: unknown variant `explode`"),
        "{text}"
    );
    assert!(
        text.contains("`deny`") && text.contains("`forensic`"),
        "{text}"
    );

    let e = parse("[audit_trail]\nmax_bytes = \"big\"\n").unwrap_err();
    assert!(e.to_string().contains(":2: audit_trail.max_bytes: "), "{e}");

    let e = parse("version = \n").unwrap_err();
    assert!(matches!(e, Error::Parse { line: 1, .. }), "{e:?}");
}

#[test]
fn checked_values_name_their_list_entry() {
    let e = parse("[seccomp]\nsyscalls = [\n  \"bpf\",\n  \"mount_everything\",\n]\n").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("/etc/watertight/runtime.toml:4: seccomp.syscalls[1]: \"mount_everything\" is no syscall"), "{text}");

    let e = parse("[seccomp]\nsyscalls = [\"clone\"]\n").unwrap_err();
    assert!(e.to_string().contains("use namespaces = true"), "{e}");
    let e = parse("[seccomp]\nsyscalls = [\"socket\"]\n").unwrap_err();
    assert!(e.to_string().contains("packet_sockets"), "{e}");

    let e = parse("[capabilities]\nceiling = [\"CAP_CHOWN\", \"NET_RAW\"]\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("ceiling[1]: \"NET_RAW\" is no capability"),
        "{e}"
    );

    let e = parse("[[devices.allow]]\npath = \"/dev/fuse\"\ntype = \"c\"\nmajor = 10\nminor = 229\n\n[[devices.allow]]\npath = \"/dev/x\"\ntype = \"q\"\nmajor = 1\nminor = 1\n").unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("/etc/watertight/runtime.toml:9: devices.allow[1].type:"),
        "{text}"
    );

    let e = parse("[paths]\nmasked = [\"relative/x\"]\n").unwrap_err();
    assert!(e.to_string().contains("paths.masked[0]"), "{e}");
    let e = parse("[audit_trail]\ndir = \"logs\"\n").unwrap_err();
    assert!(
        e.to_string()
            .contains(":2: audit_trail.dir: logs must be an absolute path"),
        "{e}"
    );
    let e = parse("version = \"\"\n").unwrap_err();
    assert!(e.to_string().contains(":1: version:"), "{e}");
}

#[test]
fn the_digest_ignores_key_order_comments_and_spelled_out_defaults_but_not_policy() {
    let a = parse(
        "version = \"2026-12\"\non_violation = \"deny\"\n[seccomp]\nnamespaces = true\nsyscalls = [\"bpf\", \"keyctl\"]\n",
    )
    .unwrap();
    let b = parse(
        "# the same floor, written differently\n[seccomp]\nsyscalls = [\"keyctl\", \"bpf\", \"bpf\"]\n\n[capabilities]\nceiling = [\"CAP_AUDIT_WRITE\",\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FOWNER\",\"CAP_FSETID\",\"CAP_KILL\",\"CAP_MKNOD\",\"CAP_NET_BIND_SERVICE\",\"CAP_NET_RAW\",\"CAP_SETFCAP\",\"CAP_SETGID\",\"CAP_SETPCAP\",\"CAP_SETUID\",\"CAP_SYS_CHROOT\"]\n",
    )
    .unwrap();
    assert_eq!(a.digest(), b.digest());
    assert!(a.digest().starts_with("sha256:") && a.digest().len() == 71);
    assert_ne!(a.digest(), Floor::built_in().digest());
    let stricter = parse("[seccomp]\nsyscalls = [\"bpf\", \"keyctl\", \"ptrace\"]\n").unwrap();
    assert_ne!(a.digest(), stricter.digest());
    let other_action =
        parse("on_violation = \"forensic\"\n[seccomp]\nsyscalls = [\"bpf\", \"keyctl\"]\n")
            .unwrap();
    assert_ne!(a.digest(), other_action.digest());
}

#[test]
fn harden_applies_each_step_and_records_it() {
    let floor = Floor::built_in();
    let mut s = spec(DOCKER_CONFIG);
    let h = floor.harden(&mut s).unwrap();
    let added = added(&h);
    for expected in [
        "no-new-privileges",
        "masked-path:/proc/acpi",
        "masked-path:/sys/devices/virtual/powercap",
        "readonly-path:/proc/sysrq-trigger",
        "capability-dropped:CAP_NET_ADMIN",
        "device-removed:/dev/sda",
        "device-rule-removed:c 10:200 rwm",
        "device-rule-removed:b 8:0 rwm",
        "seccomp-filter:deny",
    ] {
        assert!(
            added.iter().any(|a| a == expected),
            "{expected} not in {added:?}"
        );
    }
    // What the config already had is not "added".
    assert!(
        !added.iter().any(|a| a == "masked-path:/proc/kcore"),
        "{added:?}"
    );
    assert!(
        !added.iter().any(|a| a == "device-rule-deny-all"),
        "{added:?}"
    );

    let process = s.process().as_ref().unwrap();
    assert_eq!(process.no_new_privileges(), Some(true));
    let caps = process.capabilities().as_ref().unwrap();
    for set in [caps.bounding(), caps.effective(), caps.permitted()] {
        assert!(!set
            .as_ref()
            .unwrap()
            .contains(&oci_spec::runtime::Capability::NetAdmin));
    }
    assert!(caps
        .effective()
        .as_ref()
        .unwrap()
        .contains(&oci_spec::runtime::Capability::Chown));
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.devices().as_ref().unwrap().is_empty());
    let masked = linux.masked_paths().as_ref().unwrap();
    for p in FLOOR_MASKED_PATHS {
        assert!(masked.iter().any(|m| m == p), "{p}");
    }
    let rules: Vec<String> = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.allow(), r))
        .collect();
    assert_eq!(rules.len(), 6, "{rules:?}");
    // The container's own profile is left alone; the floor's is separate.
    assert!(linux.seccomp().is_some());
    let profile = h.seccomp_profile().unwrap();
    assert_eq!(profile.default_action, watertight_seccomp::Action::Allow);
    assert!(!h.needs_listener);

    let notes = h.annotations();
    assert_eq!(notes["run.oci.watertight/floor.digest"], floor.digest());
    assert_eq!(notes["run.oci.watertight/floor.version"], "built-in");
    assert_eq!(notes["run.oci.watertight/floor.on_violation"], "deny");
    let listed: Vec<String> =
        serde_json::from_str(&notes["run.oci.watertight/floor.added"]).unwrap();
    assert_eq!(listed, added);

    // Hardening a hardened config adds nothing but the filter (which is never in the config).
    let again = floor.harden(&mut s).unwrap();
    assert_eq!(
        added_strings(&again),
        vec!["seccomp-filter:deny".to_string()]
    );
}

fn added_strings(h: &Hardening) -> Vec<String> {
    h.added_strings()
}

#[test]
fn a_config_allowing_every_device_it_does_not_name_gets_a_deny_all_first() {
    let mut s = spec(
        r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
            "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"},
                     "resources":{"devices":[{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}}}"#,
    );
    let h = Floor::built_in().harden(&mut s).unwrap();
    assert!(
        added(&h).contains(&"device-rule-deny-all".to_string()),
        "{:?}",
        added(&h)
    );
    let rules = s
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(!rules[0].allow() && rules[0].major().is_none());
    assert!(rules[1..].iter().all(|r| r.allow()));
    // No process: nothing to force there, and no panic.
    assert!(!added(&h).contains(&"no-new-privileges".to_string()));
}

#[test]
fn an_allowed_device_survives_with_its_access() {
    let floor = parse(
        "[[devices.allow]]\npath = \"/dev/fuse\"\ntype = \"c\"\nmajor = 10\nminor = 229\naccess = \"rw\"\n",
    )
    .unwrap();
    let mut s = spec(
        r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
            "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"},
                     "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229}],
                     "resources":{"devices":[{"allow":false,"access":"rwm"},
                                             {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"},
                                             {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"}]}}}"#,
    );
    let h = floor.harden(&mut s).unwrap();
    assert_eq!(
        s.linux()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        added(&h)
            .iter()
            .filter(|a| a.starts_with("device"))
            .collect::<Vec<_>>(),
        vec!["device-rule-removed:c 10:229 rwm"]
    );
}

const PRIVILEGED: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
  "process":{"user":{"uid":0,"gid":0},"cwd":"/","capabilities":{"bounding":["CAP_SYS_ADMIN"]}},
  "linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#;

#[test]
fn a_privileged_config_is_refused_with_its_field_and_left_unchanged() {
    let mut s = spec(PRIVILEGED);
    let before = serde_json::to_value(&s).unwrap();
    let e = Floor::built_in().harden(&mut s).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("config.json process.capabilities.bounding: holds CAP_SYS_ADMIN"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    assert_eq!(serde_json::to_value(&s).unwrap(), before);
}

#[test]
fn each_privileged_signal_is_named() {
    let cases = [
        (
            r#"{"ociVersion":"1.0.2","root":{"path":"r"},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"},"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}"#,
            "linux.resources.devices[0]: allows every host device",
        ),
        (
            r#"{"ociVersion":"1.0.2","root":{"path":"r"},"mounts":[{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid"]}],"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#,
            "mounts[0]: mounts /sys writable",
        ),
        (
            r#"{"ociVersion":"1.0.2","root":{"path":"r"},"mounts":[{"destination":"/dev","type":"bind","source":"/dev","options":["rbind"]}],"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}"#,
            "mounts[0]: binds the host's /dev",
        ),
    ];
    for (json, expected) in cases {
        let e = Floor::built_in().harden(&mut spec(json)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("config.json {expected}")),
            "{e}"
        );
    }
    // No seccomp is privileged only when the floor's own filter is off.
    let bare = r#"{"ociVersion":"1.0.2","root":{"path":"r"}}"#;
    assert!(Floor::built_in().harden(&mut spec(bare)).is_ok());
    let off = parse("[seccomp]\nenabled = false\n").unwrap();
    let e = off.harden(&mut spec(bare)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("config.json linux.seccomp: is absent"),
        "{e}"
    );
}

#[test]
fn allow_annotated_runs_an_annotated_privileged_config_as_configured() {
    let floor = parse("privileged = \"allow-annotated\"\n").unwrap();
    let e = floor.harden(&mut spec(PRIVILEGED)).unwrap_err();
    assert!(e.to_string().contains(PRIVILEGED_ANNOTATION), "{e}");

    let mut s = spec(PRIVILEGED);
    s.set_annotations(Some(
        [(PRIVILEGED_ANNOTATION.to_string(), "  ".to_string())].into(),
    ));
    assert!(floor.harden(&mut s).is_err(), "a blank reason is no reason");

    s.set_annotations(Some(
        [(
            PRIVILEGED_ANNOTATION.to_string(),
            "CNI plugin installer".to_string(),
        )]
        .into(),
    ));
    let before = serde_json::to_value(&s).unwrap();
    let h = floor.harden(&mut s).unwrap();
    assert_eq!(
        added(&h),
        vec!["privileged-exempt:CNI plugin installer".to_string()]
    );
    assert!(h.seccomp_profile().is_none());
    assert_eq!(serde_json::to_value(&s).unwrap(), before);
    // Under the default policy the annotation changes nothing.
    assert!(Floor::built_in().harden(&mut s).is_err());
}

#[test]
fn violations_go_to_the_listener_only_when_the_monitor_needs_them_and_can_have_one() {
    let kill = parse("on_violation = \"kill\"\n").unwrap();
    let h = kill.harden(&mut spec(DOCKER_CONFIG)).unwrap();
    assert!(h.needs_listener);
    assert!(added(&h).contains(&"seccomp-filter:notify".to_string()));
    let filter = h
        .seccomp_profile()
        .unwrap()
        .compile(&watertight_seccomp::CompileOptions::default())
        .unwrap();
    assert!(filter.wants_listener());

    let own_listener = DOCKER_CONFIG.replace(
        r#""defaultAction": "SCMP_ACT_ERRNO","#,
        r#""defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock","#,
    );
    let h = kill.harden(&mut spec(&own_listener)).unwrap();
    assert!(!h.needs_listener);
    let filter = h
        .seccomp_profile()
        .unwrap()
        .compile(&watertight_seccomp::CompileOptions::default())
        .unwrap();
    assert!(!filter.wants_listener());

    let deny = Floor::built_in().harden(&mut spec(DOCKER_CONFIG)).unwrap();
    let filter = deny
        .seccomp_profile()
        .unwrap()
        .compile(&watertight_seccomp::CompileOptions::default())
        .unwrap();
    assert!(!filter.wants_listener());
    // Refusals nobody listens to go to the kernel log, for the audit trail.
    const LOG: u32 = 2; // SECCOMP_FILTER_FLAG_LOG
    assert_eq!(filter.flags() & LOG, LOG);
    let kill_filter = kill
        .harden(&mut spec(DOCKER_CONFIG))
        .unwrap()
        .seccomp_profile()
        .unwrap()
        .compile(&watertight_seccomp::CompileOptions::default())
        .unwrap();
    assert_eq!(kill_filter.flags() & LOG, 0);
    let no_trail = parse("[audit_trail]\nenabled = false\n").unwrap();
    let quiet = no_trail
        .harden(&mut spec(DOCKER_CONFIG))
        .unwrap()
        .seccomp_profile()
        .unwrap()
        .compile(&watertight_seccomp::CompileOptions::default())
        .unwrap();
    assert_eq!(quiet.flags() & LOG, 0);
}

#[test]
fn the_floor_filter_can_be_turned_off_and_the_audit_trail_bounded() {
    let f = parse(
        "[seccomp]\nenabled = false\n[audit_trail]\nmax_bytes = 65536\ndir = \"/var/log/wt\"\n",
    )
    .unwrap();
    let h = f.harden(&mut spec(DOCKER_CONFIG)).unwrap();
    assert!(h.seccomp_profile().is_none());
    assert!(!added(&h).iter().any(|a| a.starts_with("seccomp")));
    let trail = h.audit_trail.unwrap();
    assert_eq!(trail.max_bytes, 65536);
    assert_eq!(trail.path_for("abc"), Path::new("/var/log/wt/abc.jsonl"));
    let off = parse("[audit_trail]\nenabled = false\n").unwrap();
    assert!(off.settings.audit_trail.is_none());
}

#[test]
fn the_plan_digest_is_stable_and_changes_with_every_restriction_the_floor_adds() {
    let mut a = spec(DOCKER_CONFIG);
    let b = spec(DOCKER_CONFIG);
    // oci-spec keeps capability sets in HashSets: two loads iterate them in other orders.
    assert_eq!(crate::plan_digest(&a), crate::plan_digest(&b));
    assert!(crate::plan_digest(&a).starts_with("sha256:"));
    let before = crate::plan_digest(&a);
    let h = Floor::built_in().harden(&mut a).unwrap();
    assert!(!added(&h).is_empty());
    assert_ne!(crate::plan_digest(&a), before);
    // Annotations are a map: the order they were inserted in does not change the digest.
    let mut x = spec(DOCKER_CONFIG);
    let mut y = spec(DOCKER_CONFIG);
    let pairs = [
        ("a.one".to_string(), "1".to_string()),
        ("b.two".into(), "2".into()),
    ];
    x.set_annotations(Some(pairs.iter().cloned().collect()));
    y.set_annotations(Some(pairs.iter().rev().cloned().collect()));
    assert_eq!(crate::plan_digest(&x), crate::plan_digest(&y));
}

#[test]
fn isolation_names_an_absolute_policy_and_enters_the_digest() {
    let f = parse("[isolation]\npolicy = \"/etc/watertight/isolation.toml\"\n").unwrap();
    let i = f.settings.isolation.as_ref().unwrap();
    assert_eq!(i.policy, Path::new("/etc/watertight/isolation.toml"));
    assert_eq!(i.runsc, None);
    // A floor that may hand containers to gVisor is another policy.
    assert_ne!(f.digest(), Floor::built_in().digest());
    let with_runsc =
        parse("[isolation]\npolicy = \"/etc/watertight/isolation.toml\"\nrunsc = \"/opt/runsc\"\n")
            .unwrap();
    assert_eq!(
        with_runsc.settings.isolation.unwrap().runsc.as_deref(),
        Some(Path::new("/opt/runsc"))
    );
    for (text, key) in [
        (
            "[isolation]\nrunsc = \"/usr/bin/runsc\"\n",
            "isolation.policy",
        ),
        (
            "[isolation]\npolicy = \"isolation.toml\"\n",
            "isolation.policy",
        ),
        (
            "[isolation]\npolicy = \"/p.toml\"\nrunsc = \"runsc\"\n",
            "isolation.runsc",
        ),
        (
            "[isolation]\npolicy = \"/p.toml\"\ntier = \"vm\"\n",
            "isolation.tier",
        ),
    ] {
        let e = parse(text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(key), "{text:?}: {shown}");
        assert!(!shown.contains('\n'), "{shown}");
    }
}
