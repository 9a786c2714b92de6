//! Property/fuzz tests of the profile parser (cargo-fuzz needs nightly, so proptest stands in):
//! random text, mutations of real profiles, and generated profiles built from a mix of valid and
//! invalid names. The parser must return Ok or Err and never panic; whatever parses must
//! round-trip through its own JSON and compile (or fail to compile) without panicking.

use proptest::prelude::*;
use watertight_seccomp::{CompileOptions, Profile, DEFAULT_PROFILE_JSON};

const DOCKER_SAMPLE: &str = r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
  "syscalls": [
    {"names": ["accept", "read", "chown32"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
     "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
     "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}
  ],
  "watertight": {"violationSyscalls": ["mount", "bpf"]}
}"#;

fn check(text: &str) {
    if let Ok(profile) = Profile::from_json(text) {
        let again = Profile::from_json(&profile.to_json_pretty()).expect("own output parses");
        assert_eq!(again, profile);
        let _ = profile.compile(&CompileOptions::default());
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, String),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just("\"SCMP_ACT_NOPE\"".to_string()),
                Just("{".to_string()),
                Just("]".to_string()),
                Just(",".to_string()),
                Just("-1".to_string()),
                Just("18446744073709551616".to_string()),
                Just("\"names\": [\"wirte\"],".to_string()),
                Just("\"op\": \"SCMP_CMP_XX\",".to_string()),
                Just("\u{0}".to_string()),
                "[ -~]{0,12}".prop_map(|s| s),
            ]
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(seed: &str, mutations: &[Mutation]) -> Vec<u8> {
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
    bytes
}

const NAMES: &[&str] = &[
    "read", "mount", "socket", "chown32", "wirte", "", "clone", "ioctl", "x\u{0}y",
];
const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_BOGUS",
];
const OPS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
    "EQ",
];

fn generated_profile() -> impl Strategy<Value = serde_json::Value> {
    let arg = (
        0u32..8,
        any::<u64>(),
        proptest::option::of(any::<u64>()),
        0..OPS.len(),
    )
        .prop_map(|(index, value, two, op)| {
            let mut a = serde_json::json!({"index": index, "value": value, "op": OPS[op]});
            if let Some(two) = two {
                a["valueTwo"] = two.into();
            }
            a
        });
    let rule = (
        proptest::collection::vec(0..NAMES.len(), 0..4),
        0..ACTIONS.len(),
        proptest::option::of(0u32..5000),
        proptest::collection::vec(arg, 0..4),
    )
        .prop_map(|(names, action, errno, args)| {
            let mut r = serde_json::json!({
                "names": names.iter().map(|i| NAMES[*i]).collect::<Vec<_>>(),
                "action": ACTIONS[action],
                "args": args,
            });
            if let Some(e) = errno {
                r["errnoRet"] = e.into();
            }
            r
        });
    (
        0..ACTIONS.len(),
        proptest::collection::vec(rule, 0..6),
        any::<bool>(),
    )
        .prop_map(|(default, rules, violation)| {
            let mut p = serde_json::json!({"defaultAction": ACTIONS[default], "syscalls": rules});
            if violation {
                p["watertight"] = serde_json::json!({"violationSyscalls": ["mount", "socket"]});
            }
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn mutated_docker_sample_never_panics(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let bytes = apply(DOCKER_SAMPLE, &mutations);
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn generated_profiles_never_panic(profile in generated_profile()) {
        check(&profile.to_string());
    }
}

proptest! {
    // The shipped profile is big (compiling it costs ~6 ms): fewer cases.
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    #[test]
    fn mutated_default_profile_never_panics(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let bytes = apply(DEFAULT_PROFILE_JSON, &mutations);
        check(&String::from_utf8_lossy(&bytes));
    }
}
