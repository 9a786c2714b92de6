//! Fuzzing without nightly: proptest throws random and mutated inputs (seeded from real samples)
//! at every parser and requires Ok or Err, never a panic.

mod common;

use proptest::prelude::*;
use std::path::Path;
use watertight_integrity::{Entry, Manifest, SignedManifest, SigningKey, VerifyingKey};
use watertight_testkit::mutate;

fn sample_manifest() -> Vec<u8> {
    let entries = vec![
        Entry::Dir {
            path: "bin".into(),
            mode: 0o755,
        },
        Entry::File {
            path: "bin/a b".into(),
            mode: 0o755,
            size: 3,
            sha256: "0".repeat(64),
        },
        Entry::Symlink {
            path: "bin/l".into(),
            target: "a b".into(),
        },
        Entry::File {
            path: "ütf".into(),
            mode: 0o644,
            size: 0,
            sha256: "f".repeat(64),
        },
    ];
    Manifest {
        format: "watertight-manifest/1".into(),
        entries,
    }
    .sign(&common::key(5))
    .to_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedManifest::from_bytes(&bytes);
    }

    #[test]
    fn manifest_parser_never_panics_on_mutated_samples(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        let pk = common::key(5).verifying_key();
        let sample = sample_manifest();
        let mutated = mutate(sample.clone(), &edits);
        if let Ok(parsed) = SignedManifest::from_bytes(&mutated) {
            // Anything that parses re-encodes to itself, and verifies only if unchanged.
            prop_assert_eq!(parsed.to_bytes(), mutated.clone());
            if parsed.verify(&pk).is_ok() {
                prop_assert_eq!(mutated, sample);
            }
        }
    }

    #[test]
    fn key_parsers_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6), text in ".{0,200}") {
        let k = SigningKey::from_seed([6; 32]);
        let origin = Path::new("fuzz.key");
        for sample in [k.to_pem(), k.verifying_key().to_pem(), text] {
            let mutated = mutate(sample.into_bytes(), &edits);
            let s = String::from_utf8_lossy(&mutated);
            let _ = SigningKey::from_pem(&s, origin);
            let _ = VerifyingKey::from_pem(&s, origin);
        }
    }
}
