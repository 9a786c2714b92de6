//! Fuzzing without nightly: random bytes and mutations of real manifests (the
//! conformance fixtures plus built-in samples) go through parse_documents, and any
//! workload that comes out through evaluate; nothing may panic.

use std::path::Path;

use proptest::prelude::*;
use watertight_pss::{evaluate, parse_documents, Level, Version};

const BUILT_IN_SAMPLES: &[&str] = &[
    "apiVersion: v1\nkind: Pod\nmetadata: {name: a, annotations: {container.apparmor.security.beta.kubernetes.io/c: unconfined}}\nspec:\n  hostNetwork: true\n  securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}], seLinuxOptions: {type: spc_t, user: u}}\n  containers: [{name: c, ports: [{containerPort: 80}], securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN]}}}]\n  volumes: [{name: h, hostPath: {path: /}}]\n",
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n  spec:\n    template:\n      spec:\n        containers: [{name: c, livenessProbe: {httpGet: {host: evil, port: 80}}}]\n",
    "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          ephemeralContainers: [{name: e, securityContext: {procMount: Unmasked}}]\n          containers: [{name: c}]\n",
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"os\":{\"name\":\"windows\"},\"containers\":[{\"name\":\"w\",\"securityContext\":{\"windowsOptions\":{\"hostProcess\":true}}}]}}",
];

fn samples() -> &'static [String] {
    static SAMPLES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(load_samples)
}

fn load_samples() -> Vec<String> {
    let mut out: Vec<String> = BUILT_IN_SAMPLES.iter().map(|s| s.to_string()).collect();
    // Extra seeds when ../shared is there; the built-in samples suffice without it.
    let dir = watertight_testkit::shared_dir().join("conformance/psa/restricted/v1.37");
    for sub in ["pass", "fail"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    out.push(text);
                }
            }
        }
    }
    out
}

fn exercise(text: &str) {
    for name in ["fuzz.yaml", "fuzz.json"] {
        let (workloads, errors, _) = parse_documents(text, Path::new(name));
        for e in &errors {
            let line = e.to_string();
            assert!(!line.contains('\n'), "error must be one line: {line:?}");
        }
        for w in &workloads {
            for level in [Level::Baseline, Level::Restricted] {
                for version in [
                    Version::Latest,
                    Version::V { major: 1, minor: 0 },
                    Version::V {
                        major: 1,
                        minor: 24,
                    },
                ] {
                    let r = evaluate(&w.pod_meta, &w.pod_spec, level, version);
                    assert_eq!(r.allowed, r.violations.is_empty());
                }
            }
        }
    }
}

/// One mutation of a sample: cut, duplicate, splice in noise, or flip bytes.
fn mutate(sample: &str, op: u8, at: usize, len: usize, noise: &str) -> String {
    let bytes = sample.as_bytes();
    let at = at % (bytes.len() + 1);
    let end = (at + len).min(bytes.len());
    let mut out = bytes.to_vec();
    match op % 5 {
        0 => out.truncate(at),
        1 => {
            out.drain(at..end);
        }
        2 => {
            let copy = bytes[at..end].to_vec();
            out.splice(at..at, copy);
        }
        3 => {
            out.splice(at..at, noise.bytes());
        }
        _ => {
            for b in out.iter_mut().skip(at).take(len.max(1)) {
                *b ^= 0x20;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        exercise(&text);
    }

    #[test]
    fn yaml_shaped_noise_never_panics(text in "([a-zA-Z:{}\\[\\],&*<!|>'\"#\\- \n]|---\n|    |apiVersion: v1\n|kind: Pod\n|kind: List\nitems:\n|spec:\n|containers:\n){0,60}") {
        exercise(&text);
    }

    #[test]
    fn mutated_real_manifests_never_panic(
        pick in any::<prop::sample::Index>(),
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), 0usize..40, "[-:{}\\[\\]&*!\n 0-9a-z\"]{0,12}"), 1..4),
    ) {
        let all = samples();
        let mut text = all[pick.index(all.len())].clone();
        for (op, at, len, noise) in &ops {
            text = mutate(&text, *op, *at, *len, noise);
        }
        exercise(&text);
    }
}
