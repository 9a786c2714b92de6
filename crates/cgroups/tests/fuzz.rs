//! Fuzzing every parser with proptest (cargo-fuzz needs nightly): random bytes and mutations
//! of real samples must give Ok or Err, never a panic.

use proptest::prelude::*;
use watertight_cgroups::owner::{parse_dir_name, parse_start_time};
use watertight_cgroups::stats::{flat_keyed_value, parse_pids, parse_u64_or_max};
use watertight_cgroups::{parse_freezer_state, parse_mountinfo, DeviceRule, Layout, Limits};

/// Real samples: this host's mountinfo and /proc/self/stat when readable, plus fixed copies of
/// the cgroup files the crate reads.
fn samples() -> Vec<String> {
    let mut samples = vec![
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
         32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct\n"
            .to_owned(),
        "low 0\nhigh 0\nmax 17\noom 2\noom_kill 1\noom_group_kill 0\n".to_owned(),
        "usage_usec 94201\nuser_usec 50000\nsystem_usec 44201\nnr_periods 0\n".to_owned(),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n".to_owned(),
        "populated 1\nfrozen 0\n".to_owned(),
        "67108864\n".to_owned(),
        "max\n".to_owned(),
        "1234\n5678\n".to_owned(),
        "FREEZING\n".to_owned(),
        "c 1:3 rwm".to_owned(),
        "b *:* m".to_owned(),
        "job-1@4242-987654".to_owned(),
        r#"{"memory_bytes":67108864,"pids_max":64,"cpu_quota":{"quota_us":50000,"period_us":100000},"devices":[{"kind":"char","major":1,"minor":3,"read":true,"write":true,"mknod":false}]}"#.to_owned(),
    ];
    for path in ["/proc/self/mountinfo", "/proc/self/stat"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            samples.push(text);
        }
    }
    samples
}

fn exercise(text: &str) {
    let _ = parse_mountinfo(text);
    let _ = Layout::from_mountinfo(text, text);
    let _ = Layout::from_mountinfo(text, "memory pids cpu");
    for key in ["oom_kill", "max", "usage_usec", "frozen", ""] {
        let _ = flat_keyed_value(text, key);
    }
    let _ = parse_u64_or_max(text);
    let _ = parse_pids(text);
    let _ = parse_start_time(text);
    let _ = parse_dir_name(text);
    let _ = parse_freezer_state(text);
    if let Ok(rule) = text.parse::<DeviceRule>() {
        // A parsed rule must print back to something that parses to the same rule.
        assert_eq!(rule.to_string().parse::<DeviceRule>().ok(), Some(rule));
        let _ = rule.v1_allow_lines();
    }
    if let Ok(limits) = serde_json::from_str::<Limits>(text) {
        let _ = limits.validate();
    }
}

/// Applies random byte edits (overwrite, insert, delete) to a sample.
fn mutate(sample: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes = sample.as_bytes().to_vec();
    for &(position, byte, op) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            position % (bytes.len() + 1)
        };
        match op % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        exercise(&text);
    }

    #[test]
    fn structured_noise_never_panics(text in "[0-9a-z:@*()/ ,=\\-\\n]{0,120}") {
        exercise(&text);
    }

    #[test]
    fn mutated_samples_never_panic(
        index in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..12),
    ) {
        let samples = samples();
        let sample = index.get(&samples);
        exercise(&mutate(sample, &edits));
    }
}
