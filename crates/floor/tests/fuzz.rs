//! Property/fuzz tests (cargo-fuzz needs nightly, so proptest stands in) of the runtime.toml
//! parser and of `harden` on arbitrary config.json: random text, mutations of a real file, and
//! generated configs mixing ordinary and privileged fields. Nothing may panic; every error is one
//! line; whatever `harden` accepts comes out under the floor (noNewPrivileges, the masked and
//! read-only paths, capabilities within the ceiling, a deny-all first device rule), a second
//! `harden` adds nothing more, and the floor's filter compiles.

use std::path::Path;

use oci_spec::runtime::Spec;
use proptest::prelude::*;
use watertight_floor::{Floor, Restriction, FLOOR_MASKED_PATHS, FLOOR_READONLY_PATHS};

const SAMPLE_TOML: &str = r#"# the node's floor
version = "2026-12-03"
no_new_privs = "force"
on_violation = "forensic"
privileged = "allow-annotated"

[seccomp]
enabled = true
syscalls = ["bpf", "keyctl", "mount", "unshare"]
namespaces = true
packet_sockets = "refuse"

[[devices.allow]]
path = "/dev/fuse"
type = "c"
major = 10
minor = 229
access = "rwm"

[paths]
masked = ["/proc/kallsyms"]
readonly = ["/proc/pressure"]

[capabilities]
ceiling = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

[audit_trail]
enabled = true
dir = "/var/log/watertight/containers"
max_bytes = 1048576
"#;

const PATH: &str = "/etc/watertight/runtime.toml";

fn check_toml(text: &str) {
    match Floor::parse(Path::new(PATH), text) {
        Ok(floor) => {
            assert_eq!(floor.digest(), floor.clone().digest());
            let mut spec: Spec = serde_json::from_str(DOCKER_CONFIG).unwrap();
            if let Ok(h) = floor.harden(&mut spec) {
                if let Some(p) = h.seccomp_profile() {
                    p.compile(&watertight_seccomp::CompileOptions::default())
                        .expect("the floor's filter compiles");
                }
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.starts_with(PATH), "{text}");
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, String),
    Truncate(usize),
}

fn mutation(inserts: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::sample::select(inserts).prop_map(str::to_string),
                "[ -~]{0,12}".prop_map(|s| s),
            ]
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

const TOML_INSERTS: &[&str] = &[
    "\n[seccomp]\n",
    "\n[[devices.allow]]\n",
    "\"clone\", ",
    "\"CAP_SYS_ADMIN\", ",
    " = ",
    "\nmajor = -1\n",
    "\nmax_bytes = 0\n",
    "[",
    "]",
    "\"",
    "\u{0}",
    "\nunknown = 1\n",
];

const JSON_INSERTS: &[&str] = &[
    "\"CAP_SYS_ADMIN\", ",
    "{\"allow\": true, \"access\": \"rwm\"}, ",
    "{\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\"}, ",
    "null",
    "-1",
    "{",
    "]",
    ",",
];

fn apply(seed: &str, mutations: &[Mutation]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] ^= b | 1;
                }
            }
            Mutation::Delete(i, n) => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Mutation::Insert(i, s) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, s.bytes());
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const DOCKER_CONFIG: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/",
    "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_RAW", "CAP_NET_ADMIN"], "effective": ["CAP_CHOWN"]}},
  "root": {"path": "rootfs"},
  "mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]}],
  "linux": {
    "devices": [{"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}],
    "resources": {"devices": [{"allow": false, "access": "rwm"},
                              {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}]},
    "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
    "maskedPaths": ["/proc/kcore"]
  }
}"#;

const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_KILL",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_BPF",
];
const ACCESS: &[&str] = &["rwm", "r", "m", "", "rw", "x", "mmm"];
const TYPES: &[&str] = &["a", "b", "c", "u", "p"];
const DESTS: &[&str] = &[
    "/sys",
    "/proc/sys",
    "/proc/sys/net",
    "/dev",
    "/data",
    "/sys/",
];

fn caps() -> impl Strategy<Value = Option<Vec<&'static str>>> {
    proptest::option::of(proptest::collection::vec(
        proptest::sample::select(CAPS),
        0..4,
    ))
}

fn generated_config() -> impl Strategy<Value = serde_json::Value> {
    let rule = (
        any::<bool>(),
        proptest::option::of(proptest::sample::select(TYPES)),
        proptest::option::of(-2i64..300),
        proptest::option::of(-2i64..300),
        proptest::option::of(proptest::sample::select(ACCESS)),
    )
        .prop_map(|(allow, t, major, minor, access)| {
            let mut r = serde_json::json!({ "allow": allow });
            if let Some(t) = t {
                r["type"] = t.into();
            }
            if let Some(m) = major {
                r["major"] = m.into();
            }
            if let Some(m) = minor {
                r["minor"] = m.into();
            }
            if let Some(a) = access {
                r["access"] = a.into();
            }
            r
        });
    let device = (
        proptest::sample::select(&["/dev/null", "/dev/sda", "/dev/fuse", "/dev/kvm"][..]),
        proptest::sample::select(&["b", "c", "u", "p"][..]),
        -1i64..300,
        -1i64..300,
    )
        .prop_map(|(path, t, major, minor)| {
            serde_json::json!({"path": path, "type": t, "major": major, "minor": minor})
        });
    let mount = (
        proptest::sample::select(DESTS),
        proptest::sample::select(&["bind", "sysfs", "proc", "tmpfs"][..]),
        proptest::sample::select(&["/dev", "/sys", "sysfs", "/srv"][..]),
        any::<bool>(),
    )
        .prop_map(|(dest, t, source, ro)| {
            let options: Vec<&str> = if ro { vec!["rbind", "ro"] } else { vec!["rbind"] };
            serde_json::json!({"destination": dest, "type": t, "source": source, "options": options})
        });
    (
        (any::<bool>(), caps(), caps(), caps(), caps(), proptest::option::of(any::<bool>())),
        proptest::option::of(proptest::collection::vec(rule, 0..6)),
        proptest::option::of(proptest::collection::vec(device, 0..3)),
        proptest::collection::vec(mount, 0..3),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(&["/proc/kcore", "/proc/acpi", "/x"][..]),
            0..3,
        )),
    )
        .prop_map(
            |(
                (has_process, bounding, effective, permitted, ambient, nnp),
                rules,
                devices,
                mounts,
                (has_linux, seccomp, annotated),
                masked,
            )| {
                let mut c = serde_json::json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "mounts": mounts});
                if has_process {
                    let mut caps = serde_json::json!({});
                    for (k, v) in [
                        ("bounding", bounding),
                        ("effective", effective),
                        ("permitted", permitted),
                        ("ambient", ambient),
                    ] {
                        if let Some(v) = v {
                            caps[k] = v.into();
                        }
                    }
                    c["process"] = serde_json::json!({"user": {"uid": 0, "gid": 0}, "cwd": "/", "capabilities": caps});
                    if let Some(n) = nnp {
                        c["process"]["noNewPrivileges"] = n.into();
                    }
                }
                if has_linux {
                    let mut l = serde_json::json!({});
                    if let Some(r) = rules {
                        l["resources"] = serde_json::json!({ "devices": r });
                    }
                    if let Some(d) = devices {
                        l["devices"] = d.into();
                    }
                    if seccomp {
                        l["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"});
                    }
                    if let Some(m) = masked {
                        l["maskedPaths"] = m.into();
                    }
                    c["linux"] = l;
                }
                if annotated {
                    c["annotations"] =
                        serde_json::json!({"run.oci.watertight/privileged": "a test that needs it"});
                }
                c
            },
        )
}

/// `harden` on `spec` under `floor`: no panic, one-line errors, and a config under the floor.
fn check_harden(floor: &Floor, mut spec: Spec) {
    let before = serde_json::to_value(&spec).unwrap();
    let h = match floor.harden(&mut spec) {
        Ok(h) => h,
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(text.starts_with("config.json "), "{text}");
            assert_eq!(
                serde_json::to_value(&spec).unwrap(),
                before,
                "refused but changed"
            );
            return;
        }
    };
    if h.added
        .iter()
        .any(|r| matches!(r, Restriction::PrivilegedExempt(_)))
    {
        assert_eq!(serde_json::to_value(&spec).unwrap(), before);
        return;
    }
    if let Some(p) = spec.process() {
        assert_eq!(p.no_new_privileges(), Some(true));
        if let Some(caps) = p.capabilities() {
            for set in [
                caps.bounding(),
                caps.effective(),
                caps.permitted(),
                caps.inheritable(),
                caps.ambient(),
            ]
            .into_iter()
            .flatten()
            {
                for c in set {
                    let name = serde_json::to_value(c).unwrap();
                    assert!(
                        floor
                            .settings
                            .capability_ceiling
                            .contains(name.as_str().unwrap()),
                        "{name} above the ceiling"
                    );
                }
            }
        }
    }
    let linux = spec.linux().as_ref().expect("harden makes linux");
    let masked = linux.masked_paths().as_ref().unwrap();
    assert!(FLOOR_MASKED_PATHS
        .iter()
        .all(|p| masked.iter().any(|m| m == p)));
    let readonly = linux.readonly_paths().as_ref().unwrap();
    assert!(FLOOR_READONLY_PATHS
        .iter()
        .all(|p| readonly.iter().any(|m| m == p)));
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(!rules[0].allow() && rules[0].major().is_none() && rules[0].minor().is_none());
    if let Some(p) = h.seccomp_profile() {
        p.compile(&watertight_seccomp::CompileOptions::default())
            .expect("the floor's filter compiles");
    }
    let once = serde_json::to_value(&spec).unwrap();
    let again = floor
        .harden(&mut spec)
        .expect("a hardened config hardens again");
    assert!(
        again
            .added
            .iter()
            .all(|r| matches!(r, Restriction::SeccompFilter(_))),
        "{:?}",
        again.added
    );
    assert_eq!(serde_json::to_value(&spec).unwrap(), once);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check_toml(&text);
    }

    #[test]
    fn a_mutated_runtime_toml_never_panics(mutations in proptest::collection::vec(mutation(TOML_INSERTS), 1..6)) {
        check_toml(&apply(SAMPLE_TOML, &mutations));
    }

    #[test]
    fn harden_holds_on_generated_configs(config in generated_config(), allow in any::<bool>()) {
        let floor = if allow {
            Floor::parse(Path::new(PATH), SAMPLE_TOML).unwrap()
        } else {
            Floor::built_in()
        };
        let spec: Spec = serde_json::from_value(config).expect("generated configs are specs");
        check_harden(&floor, spec);
    }

    #[test]
    fn harden_holds_on_mutated_docker_configs(mutations in proptest::collection::vec(mutation(JSON_INSERTS), 1..5)) {
        let text = apply(DOCKER_CONFIG, &mutations);
        if let Ok(spec) = serde_json::from_str::<Spec>(&text) {
            check_harden(&Floor::built_in(), spec);
        }
    }
}

#[test]
fn the_sample_parses() {
    let floor = Floor::parse(Path::new(PATH), SAMPLE_TOML).unwrap();
    assert_eq!(floor.version(), "2026-12-03");
    assert_eq!(floor.settings.allowed_devices.len(), 1);
}
