//! Fuzzing the profile loader without nightly: proptest mutates real partial profiles (bytes
//! flipped, inserted, deleted, truncated; lines of profile syntax spliced in, `extends` to a good,
//! a bad, a missing and a self-extending base among them) and loads them through the whole
//! merge path: chain, merge, strict deserialization, validation. Loading must give Ok or one
//! line of error naming a profile, never a panic; whatever loads writes out TOML that loads
//! back to the same profile.

use std::path::Path;

use proptest::prelude::*;
use watertight_sandbox::profile::Profile;
use watertight_testkit::mutate;

/// Partial profiles: one key, nested tables, arrays, `extends`, limits set to "none".
const SEEDS: &[&str] = &[
    "hostname = \"grader\"\n",
    "[limits]\nmemory = \"1G\"\npids = 64\nwall_time = \"none\"\ncpus = 1.5\n",
    "extends = \"base.toml\"\n[env.set]\nFOO = \"bar\"\n[env]\npass = []\n",
    "extends = \"default\"\n[[bind]]\nsource = \"/srv\"\ntarget = \"/srv\"\nread_only = true\n\n[dev]\ndevices = [\"null\", \"zero\"]\n",
    "name = \"x\"\n[root]\nhide = [\"/etc/ssh\"]\nwritable = false\n[seccomp]\non_violation = \"kill\"\nmax_violations = 0\n[tmp]\nsize = \"16M\"\n[events]\nlimit = \"4K\"\n",
];

/// Lines spliced in at a line start: keys, tables and every kind of `extends`.
const LINES: &[&str] = &[
    "extends = \"base.toml\"\n",
    "extends = \"bad.toml\"\n",
    "extends = \"loop.toml\"\n",
    "extends = \"missing.toml\"\n",
    "extends = \"default\"\n",
    "extends = 7\n",
    "[limits]\n",
    "[identity]\nslots = 0\n",
    "[[bind]]\n",
    "memory = \"none\"\n",
    "size = \"99999999999999999999T\"\n",
    "devices = [\"sda\"]\n",
    "[env.set]\n",
    "hostname = \"\"\n",
    "bind = []\n",
    "[namespaces]\nnet = false\n",
];

/// A directory with the bases the seeds and spliced lines name.
fn bases() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "base.toml",
            "extends = \"inner/base2.toml\"\n[limits]\npids = 9\n",
        ),
        (
            "inner/base2.toml",
            "hostname = \"base2\"\n[[bind]]\nsource = \"/a\"\ntarget = \"/a\"\n",
        ),
        ("bad.toml", "[limits]\nmemroy = 1\n"),
        ("loop.toml", "extends = \"loop.toml\"\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// `text` with `line` inserted at the start of the line holding byte `at`.
fn splice(text: &[u8], at: usize, line: &str) -> Vec<u8> {
    let at = at % (text.len() + 1);
    let start = text[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    [&text[..start], line.as_bytes(), &text[start..]].concat()
}

/// Writes `bytes` to `dir/file` and loads `dir/top.toml` (which is `file`, or extends it).
fn check(dir: &Path, file: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    std::fs::write(dir.join(file), bytes).unwrap();
    let top = dir.join("top.toml");
    match Profile::load(&top) {
        Ok(p) => {
            prop_assert!(p.validate().is_ok());
            let out = dir.join("effective.toml");
            std::fs::write(&out, p.to_toml()).unwrap();
            let back = Profile::load(&out);
            prop_assert_eq!(back.as_ref().ok(), Some(&p), "{:?}", back);
        }
        Err(e) => {
            let e = e.to_string();
            prop_assert!(!e.contains('\n'), "one line: {}", e);
            prop_assert!(
                e.starts_with("profile ") || e.starts_with("read profile "),
                "{}",
                e
            );
        }
    }
    Ok(())
}

/// Byte edits for `mutate`, mostly printable ASCII so that most mutants are still UTF-8 TOML and
/// reach the merge (any byte a quarter of the time).
fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    let byte = prop_oneof![3 => 0x20u8..0x7f, 1 => any::<u8>()];
    proptest::collection::vec((any::<usize>(), any::<u8>(), byte), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn mutated_partial_profiles_never_panic(
        seed in 0..SEEDS.len(),
        splices in proptest::collection::vec((any::<usize>(), 0..LINES.len()), 0..3),
        edits in edits(),
    ) {
        let dir = bases();
        let mut bytes = SEEDS[seed].as_bytes().to_vec();
        for (at, line) in splices {
            bytes = splice(&bytes, at, LINES[line]);
        }
        check(dir.path(), "top.toml", &mutate(bytes, &edits))?;
    }

    #[test]
    fn a_mutated_base_never_panics_through_extends(
        seed in 0..SEEDS.len(),
        edits in edits(),
    ) {
        let dir = bases();
        std::fs::write(dir.path().join("top.toml"), "extends = \"mutated.toml\"\nhostname = \"top\"\n").unwrap();
        check(dir.path(), "mutated.toml", &mutate(SEEDS[seed].as_bytes().to_vec(), &edits))?;
    }

    #[test]
    fn mutated_complete_profiles_never_panic(edits in edits()) {
        let dir = bases();
        let full = watertight_sandbox::default_profile().to_toml();
        check(dir.path(), "top.toml", &mutate(full.into_bytes(), &edits))?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let dir = bases();
        check(dir.path(), "top.toml", &bytes)?;
    }
}
