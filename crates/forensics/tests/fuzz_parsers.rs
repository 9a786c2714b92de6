//! proptest fuzzing (cargo-fuzz needs nightly): random and mutated inputs, seeded from real
//! samples, thrown at every parser; each must return Ok or Err, never panic.

use proptest::prelude::*;
use watertight_forensics::manifest::{FileEntry, Manifest, SignatureFile};

fn sample_manifest() -> Vec<u8> {
    Manifest {
        sandbox_id: "sb-7".into(),
        created: "2026-11-22T10:00:00.123Z".into(),
        signer: format!("sha256:{}", "ab".repeat(32)),
        truncated: None,
        files: vec![
            FileEntry {
                path: "capture.json".into(),
                size: 812,
                sha256: [3; 32],
            },
            FileEntry {
                path: "layers/tmp.tar".into(),
                size: 52_428_800,
                sha256: [4; 32],
            },
            FileEntry {
                path: "tasks/4242/status".into(),
                size: 1400,
                sha256: [5; 32],
            },
        ],
    }
    .encode()
}

fn sample_signature() -> Vec<u8> {
    SignatureFile {
        signer: format!("sha256:{}", "ab".repeat(32)),
        signature: [9; 64],
    }
    .encode()
}

/// Byte-level mutations of a seed: flips, deletions, insertions, truncation, duplication.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    prop::collection::vec((0usize..6, 0usize..len.max(1), any::<u8>()), 1..8).prop_map(move |ops| {
        let mut b = seed.clone();
        for (op, at, byte) in ops {
            let at = at.min(b.len());
            match op {
                0 if at < b.len() => b[at] ^= byte | 1,
                1 if at < b.len() => {
                    b.remove(at);
                }
                2 => b.insert(at, byte),
                3 => b.truncate(at),
                4 => {
                    let tail = b[at..].to_vec();
                    b.extend_from_slice(&tail);
                }
                _ => b.insert(at, b"\n /.:-0af"[byte as usize % 9]),
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn manifest_parser_never_panics_on_mutations(bytes in mutated(sample_manifest())) {
        if let Ok(m) = Manifest::parse(&bytes) {
            // Anything accepted is canonical: it re-encodes to exactly the same bytes.
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn manifest_parser_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::parse(&bytes);
    }

    #[test]
    fn manifest_round_trips(
        id in "[A-Za-z0-9._-]{1,20}",
        paths in prop::collection::btree_set("[a-z0-9_-]{1,8}(/[a-z0-9._-]{1,8}){0,3}", 0..20),
        size in any::<u64>(),
    ) {
        let files: Vec<FileEntry> = paths
            .into_iter()
            .filter(|p| p.split('/').all(|c| c != "." && c != ".."))
            .map(|path| FileEntry { path, size, sha256: [size as u8; 32] })
            .collect();
        let m = Manifest {
            sandbox_id: id,
            created: "2026-11-22T10:00:00Z".into(),
            signer: format!("sha256:{}", "01".repeat(32)),
            truncated: None,
            files,
        };
        prop_assert_eq!(Manifest::parse(&m.encode()).unwrap(), m);
    }

    #[test]
    fn signature_parser_never_panics(bytes in mutated(sample_signature())) {
        if let Ok(s) = SignatureFile::parse(&bytes) {
            prop_assert_eq!(s.encode(), bytes);
        }
    }

    #[test]
    fn signature_parser_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = SignatureFile::parse(&bytes);
    }
}

proptest! {
    // Each case writes a small bundle to disk: fewer cases.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `evidence show` reads capture.json, events.jsonl and verdict.json as found (unverified),
    /// so it must survive any content in them.
    #[test]
    fn summary_survives_any_bundle_contents(
        events in mutated(br#"{"time":"t","kind":"violation","pid":5,"syscall":"ptrace","args":[1,"x",null]}
{"kind":"start"}
"#.to_vec()),
        verdict in mutated(br#"{"status":"SV","message":"m"}"#.to_vec()),
        capture in mutated(br#"{"format":"watertight-evidence/1","sandbox_id":"s","captured_at":"t","host_kernel":"6","tasks":[{"pid":1,"ppid":0,"comm":"c","state":"S","uids":"0","cmdline":["a"],"files":[],"unreadable":[]}],"net_from_pid":1,"net_files":["tcp"],"layers":[{"name":"tmp","source":"/x","archive":null,"entries":[{"path":"a","kind":"file","size":1,"mode":420,"mtime":0}],"skipped":[]}],"timings_ms":{"tasks":1,"layers":1,"total_before_seal":2}}"#.to_vec()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest"), b"").unwrap();
        std::fs::write(dir.path().join("events.jsonl"), &events).unwrap();
        std::fs::write(dir.path().join("verdict.json"), &verdict).unwrap();
        std::fs::write(dir.path().join("capture.json"), &capture).unwrap();
        if let Ok(text) = watertight_forensics::summarize(dir.path()) {
            prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{}", text);
        }
    }

    /// Whatever strings the sandbox plants (comm, argv, paths, link targets, event strings),
    /// `evidence show` has the same lines as with plain ones and no control character.
    #[test]
    fn planted_strings_cannot_change_the_summary_structure(
        planted in prop::collection::vec(any::<String>(), 6),
    ) {
        let render = |v: &[String]| {
            let capture = serde_json::json!({
                "format": "watertight-evidence/1", "sandbox_id": "s", "captured_at": "t",
                "host_kernel": "6",
                "tasks": [{"pid": 1, "ppid": 0, "comm": v[0], "state": "S", "uids": "0",
                           "cmdline": [v[1], v[2]], "files": [], "unreadable": []}],
                "net_from_pid": null, "net_files": [],
                "layers": [{"name": "tmp", "source": "/x", "archive": null, "skipped": [],
                            "entries": [{"path": v[3], "kind": "symlink", "size": 0,
                                         "mode": 511, "mtime": 0, "link_target": v[4]}]}],
                "timings_ms": {"tasks": 1, "layers": 1, "total_before_seal": 2}});
            let event = serde_json::json!({"time": "t", "kind": "syscall_denied", "pid": 1,
                "comm": v[5], "syscall": "mount", "args": ["0x1"], "arg_strings": {"0": v[2]}});
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("manifest"), b"").unwrap();
            std::fs::write(dir.path().join("events.jsonl"), format!("{event}\n")).unwrap();
            std::fs::write(dir.path().join("verdict.json"), br#"{"status":"SV"}"#).unwrap();
            std::fs::write(dir.path().join("capture.json"), capture.to_string()).unwrap();
            watertight_forensics::summarize(dir.path()).unwrap()
        };
        let plain = render(&vec!["x".to_string(); 6]);
        let text = render(&planted);
        prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{}", text);
        let starts = |t: &str| t.lines().map(|l| l.chars().take(4).collect::<String>()).collect::<Vec<_>>();
        prop_assert_eq!(starts(&plain), starts(&text), "{}", text);
    }

    /// A manifest with any content, correctly signed, still never panics verification.
    #[test]
    fn verify_survives_signed_garbage(body in mutated(sample_manifest())) {
        let dir = tempfile::tempdir().unwrap();
        let key = watertight_forensics::SigningKey::from_seed([1; 32]);
        std::fs::write(dir.path().join("manifest"), &body).unwrap();
        let sig = sign_for_test(&key, &body);
        std::fs::write(dir.path().join("manifest.sig"), sig.encode()).unwrap();
        let result = watertight_forensics::verify(dir.path(), &key.verifying_key());
        prop_assert!(result.is_err(), "files listed in a garbage manifest do not exist");
    }
}

fn sign_for_test(key: &watertight_forensics::SigningKey, body: &[u8]) -> SignatureFile {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use ed25519_dalek::Signer;
    let dalek = ed25519_dalek::SigningKey::from_pkcs8_pem(&key.to_pem()).unwrap();
    SignatureFile {
        signer: key.verifying_key().fingerprint(),
        signature: dalek.sign(body).to_bytes(),
    }
}
