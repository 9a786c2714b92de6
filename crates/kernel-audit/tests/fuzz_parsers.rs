//! Property-based fuzzing (cargo-fuzz needs nightly): random and mutated inputs, seeded from real
//! records, thrown at every parser. Each must return Ok or Err, never panic.

use proptest::prelude::*;
use std::path::Path;
use watertight_kernel_audit::index;
use watertight_kernel_audit::records::parse_record;
use watertight_kernel_audit::{KernelRelease, KernelVersion, ReachabilityMap};

const RECORD: &str = r#"{"containers":{"cna":{"title":"netfilter: x","metrics":[{"cvssV3_1":{"version":"3.1","vectorString":"CVSS:3.1/AV:L","baseScore":7.8,"baseSeverity":"HIGH"}}],
"affected":[{"defaultStatus":"unaffected","programFiles":["net/netfilter/a.c"],"versions":[{"version":"abc","lessThan":"def","status":"affected","versionType":"git"},{"version":"6.1.43","lessThan":"6.1.78","status":"affected","versionType":"semver"}]},
{"defaultStatus":"affected","programFiles":["net/netfilter/a.c"],"versions":[{"version":"6.5","status":"affected"},{"version":"0","lessThan":"6.5","status":"unaffected","versionType":"semver"},{"version":"6.6.17","lessThanOrEqual":"6.6.*","status":"unaffected","versionType":"semver"},{"version":"6.8","lessThanOrEqual":"*","status":"unaffected","versionType":"original_commit_for_fix"}]}]}},
"cveMetadata":{"cveId":"CVE-2024-26581","state":"PUBLISHED"}}"#;

fn real_record() -> Vec<u8> {
    // A seed only: the built-in copy stands in when ../shared is absent.
    let path = watertight_testkit::shared_dir()
        .join("kernel-vulns/cve/published/2024/CVE-2024-26581.json");
    std::fs::read(path).unwrap_or_else(|_| RECORD.as_bytes().to_vec())
}

fn index_bytes() -> Vec<u8> {
    let record = match parse_record(RECORD.as_bytes()).unwrap() {
        watertight_kernel_audit::records::ParsedRecord::Published(r) => r,
        other => panic!("{other:?}"),
    };
    index::encode(&index::IndexBody {
        built_from: "seed".into(),
        skipped_files: 0,
        records: vec![record],
    })
}

/// Mutations: flip, insert, delete or truncate bytes of a seed.
fn mutate(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    prop::collection::vec((0..len.max(1), any::<u8>(), 0u8..4), 1..8).prop_map(move |edits| {
        let mut bytes = seed.clone();
        for (at, byte, op) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match op {
                0 if !bytes.is_empty() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                2 if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                _ => bytes.truncate(at),
            }
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn record_parser_never_panics_on_mutations(bytes in mutate(real_record())) {
        let _ = parse_record(&bytes);
    }

    #[test]
    fn record_parser_never_panics_on_small_mutations(bytes in mutate(RECORD.as_bytes().to_vec())) {
        let _ = parse_record(&bytes);
    }

    #[test]
    fn record_parser_never_panics_on_noise(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_record(&bytes);
    }

    #[test]
    fn record_parser_handles_any_version_strings(a in "\\PC{0,12}", b in "[0-9.*]{0,12}") {
        let text = RECORD.replace("6.1.43", &a.replace(['"', '\\'], "")).replace("6.6.*", &b);
        if let Ok(watertight_kernel_audit::records::ParsedRecord::Published(r)) =
            parse_record(text.as_bytes())
        {
            // Whatever parsed must be decidable.
            let _ = r.rule.is_affected(&KernelVersion::parse("6.1.50").unwrap());
            let _ = r.rule.fixed_in_branch(&KernelVersion::parse("6.1.50").unwrap());
        }
    }

    #[test]
    fn index_decoder_never_panics(bytes in mutate(index_bytes())) {
        let _ = index::decode(&bytes, Path::new("fuzz.idx"));
    }

    #[test]
    fn index_decoder_never_panics_on_valid_header_bad_body(body in prop::collection::vec(any::<u8>(), 0..256)) {
        // A correct header and checksum around random bytes reaches the body decoder.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(index::MAGIC);
        bytes.extend_from_slice(&index::FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast_hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let _ = index::decode(&bytes, Path::new("fuzz.idx"));
    }

    #[test]
    fn version_parsers_never_panic(text in "\\PC{0,24}") {
        let _ = KernelVersion::parse(&text);
        if let Ok(r) = KernelRelease::parse(&text) {
            prop_assert!(r.upstream.parts().len() >= 2);
            prop_assert!(r.release.starts_with(&r.upstream.to_string()));
        }
    }

    #[test]
    fn release_parser_on_mutated_releases(bytes in mutate(b"6.1.0-18-amd64".to_vec())) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = KernelRelease::parse(&text);
    }

    #[test]
    fn reachability_map_parser_never_panics(bytes in mutate(
        b"[[unreachable]]\nprefix = \"net/\"\nexcept = [\"net/core/\"]\nreason = \"x\"\n".to_vec()
    )) {
        let _ = ReachabilityMap::from_toml(&String::from_utf8_lossy(&bytes));
    }
}

/// CRC-32 (IEEE), bit by bit: an independent check of the header the index writes.
fn crc32fast_hash(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn independent_crc_matches_the_writer() {
    let bytes = index_bytes();
    let body = &bytes[24..];
    assert_eq!(
        u32::from_le_bytes(bytes[20..24].try_into().unwrap()),
        crc32fast_hash(body)
    );
}
