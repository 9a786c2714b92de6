//! Manifests and tree verification: round trips, determinism, and every kind of bad input.

mod common;

use common::key;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use watertight_integrity::{
    verify_tree, Error, Manifest, SignedManifest, SigningKey, TreeProblem, VerifyingKey,
};

fn sample_tree(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/app")).unwrap();
    std::fs::write(root.join("bin/server"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        root.join("bin/server"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(root.join("etc/app/config.toml"), b"port = 8080\n").unwrap();
    std::fs::write(root.join("etc/big.bin"), vec![0xabu8; 3 * 1024 * 1024 + 17]).unwrap();
    std::fs::write(root.join("etc/empty"), b"").unwrap();
    std::os::unix::fs::symlink("server", root.join("bin/alias")).unwrap();
}

fn signed_sample() -> (tempfile::TempDir, SigningKey, SignedManifest) {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let k = key(1);
    let signed = Manifest::create(dir.path(), &k).unwrap();
    (dir, k, signed)
}

fn problem(err: Error) -> (String, TreeProblem) {
    match err {
        Error::Tree { path, problem, .. } => (path, problem),
        other => panic!("expected a tree problem, got: {other}"),
    }
}

#[test]
fn create_then_verify_round_trips_and_is_deterministic() {
    let (dir, k, signed) = signed_sample();
    let bytes = signed.to_bytes();
    assert_eq!(
        Manifest::create(dir.path(), &k).unwrap().to_bytes(),
        bytes,
        "same tree, same bytes"
    );
    let parsed = SignedManifest::from_bytes(&bytes).unwrap();
    assert_eq!(parsed.to_bytes(), bytes);
    let tree = verify_tree(dir.path(), &parsed, &k.verifying_key()).unwrap();
    let paths: Vec<&str> = tree.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bin/server",
            "etc/app/config.toml",
            "etc/big.bin",
            "etc/empty"
        ]
    );
    let entries = &parsed.verify(&k.verifying_key()).unwrap().entries;
    assert_eq!(entries.len(), 8, "3 dirs, 4 files, 1 symlink: {entries:?}");
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"format\":\"watertight-manifest/1\",\"entries\":[{\"kind\":\"dir\",\"path\":\"bin\",\"mode\":"));
    assert!(
        text.contains(
            "\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""
        ),
        "empty file hash"
    );
}

#[test]
fn altered_file_is_named() {
    let (dir, k, signed) = signed_sample();
    std::fs::write(dir.path().join("etc/app/config.toml"), b"port = 6666\n").unwrap();
    let err = verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("etc/app/config.toml: content altered"),
        "{msg}"
    );
    assert!(
        matches!(problem(err), (p, TreeProblem::ContentAltered { .. }) if p == "etc/app/config.toml")
    );
}

#[test]
fn missing_file_is_named() {
    let (dir, k, signed) = signed_sample();
    std::fs::remove_file(dir.path().join("etc/empty")).unwrap();
    let (path, p) = problem(verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap_err());
    assert_eq!((path.as_str(), p), ("etc/empty", TreeProblem::Missing));
}

#[test]
fn extra_executable_is_named_and_extra_data_is_tolerated() {
    let (dir, k, signed) = signed_sample();
    std::fs::write(dir.path().join("etc/notes.txt"), b"data").unwrap();
    let tree = verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap();
    assert_eq!(tree.unlisted, ["etc/notes.txt"]);
    std::fs::write(dir.path().join("bin/implant"), b"\x7fELF").unwrap();
    std::fs::set_permissions(
        dir.path().join("bin/implant"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let (path, p) = problem(verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap_err());
    assert_eq!(
        (path.as_str(), p),
        ("bin/implant", TreeProblem::ExtraExecutable)
    );
}

#[test]
fn mode_size_kind_and_symlink_changes_are_named() {
    let (dir, k, signed) = signed_sample();
    let pk = k.verifying_key();
    std::fs::set_permissions(
        dir.path().join("bin/server"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let (path, p) = problem(verify_tree(dir.path(), &signed, &pk).unwrap_err());
    assert_eq!(
        (path.as_str(), p),
        (
            "bin/server",
            TreeProblem::ModeChanged {
                expected: 0o755,
                actual: 0o777
            }
        )
    );

    let (dir, k, signed) = signed_sample();
    std::fs::write(dir.path().join("etc/empty"), b"now not empty").unwrap();
    let (path, p) = problem(verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap_err());
    assert_eq!(
        (path.as_str(), p),
        (
            "etc/empty",
            TreeProblem::SizeChanged {
                expected: 0,
                actual: 13
            }
        )
    );

    let (dir, k, signed) = signed_sample();
    std::fs::remove_file(dir.path().join("bin/alias")).unwrap();
    std::os::unix::fs::symlink("/bin/busybox", dir.path().join("bin/alias")).unwrap();
    let (path, p) = problem(verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap_err());
    assert_eq!(path, "bin/alias");
    assert!(matches!(p, TreeProblem::TargetChanged { .. }), "{p}");

    let (dir, k, signed) = signed_sample();
    std::fs::remove_file(dir.path().join("etc/empty")).unwrap();
    std::fs::create_dir(dir.path().join("etc/empty")).unwrap();
    let (path, p) = problem(verify_tree(dir.path(), &signed, &k.verifying_key()).unwrap_err());
    assert_eq!(path, "etc/empty");
    assert!(
        matches!(
            p,
            TreeProblem::KindChanged {
                expected: "regular file",
                actual: "directory"
            }
        ),
        "{p}"
    );
}

#[test]
fn first_problem_is_reported_with_a_count_of_the_rest() {
    let (dir, k, signed) = signed_sample();
    std::fs::remove_file(dir.path().join("etc/empty")).unwrap();
    std::fs::write(dir.path().join("bin/server"), b"#!/bin/sh\necho ho\n").unwrap();
    let msg = verify_tree(dir.path(), &signed, &k.verifying_key())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bin/server: content altered") && msg.ends_with("(and 1 more problem)"),
        "{msg}"
    );
}

#[test]
fn wrong_key_is_refused_naming_both_fingerprints() {
    let (dir, _k, signed) = signed_sample();
    let other = key(2).verifying_key();
    let msg = verify_tree(dir.path(), &signed, &other)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("signed by key sha256:") && msg.contains(&other.fingerprint()),
        "{msg}"
    );
}

#[test]
fn every_single_byte_alteration_is_refused() {
    let (_dir, k, signed) = signed_sample();
    let pk = k.verifying_key();
    let bytes = signed.to_bytes();
    for i in (0..bytes.len()).step_by(7) {
        let mut altered = bytes.clone();
        altered[i] ^= 0x01;
        let outcome = SignedManifest::from_bytes(&altered).and_then(|s| s.verify(&pk).map(|_| ()));
        assert!(outcome.is_err(), "flipping byte {i} was accepted");
    }
}

#[test]
fn truncated_manifest_is_refused_clearly() {
    let (_dir, _k, signed) = signed_sample();
    let bytes = signed.to_bytes();
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 90, bytes.len() - 1] {
        let err = SignedManifest::from_bytes(&bytes[..cut])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("manifest is malformed:"),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn non_canonical_but_valid_json_is_refused() {
    let k = key(3);
    let m = Manifest {
        format: "watertight-manifest/1".into(),
        entries: vec![],
    };
    let body = b"{ \"format\":\"watertight-manifest/1\",\"entries\":[]}".to_vec();
    let good = m.sign(&k).to_bytes();
    let sig_line = &good[good.iter().position(|&b| b == b'\n').unwrap()..];
    let mut forged = body;
    forged.extend_from_slice(sig_line);
    let err = SignedManifest::from_bytes(&forged).unwrap_err().to_string();
    assert!(err.contains("canonical"), "{err}");
}

#[test]
fn unsafe_paths_in_a_signed_manifest_are_refused() {
    let k = key(4);
    for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", ""] {
        let m = Manifest {
            format: "watertight-manifest/1".into(),
            entries: vec![watertight_integrity::Entry::Symlink {
                path: bad.into(),
                target: "x".into(),
            }],
        };
        let err = SignedManifest::from_bytes(&m.sign(&k).to_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("path"), "{bad:?}: {err}");
    }
}

#[test]
fn setuid_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    std::fs::set_permissions(
        dir.path().join("bin/server"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let err = Manifest::create(dir.path(), &key(1)).unwrap_err();
    assert!(matches!(err, Error::SetId { mode: 0o4755, .. }), "{err}");
    assert!(
        err.to_string().contains("bin/server") && err.to_string().contains("chmod ug-s"),
        "{err}"
    );
}

#[test]
fn device_node_fifo_and_socket_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    nix::unistd::mkfifo(
        &dir.path().join("etc/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let err = Manifest::create(dir.path(), &key(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("etc/pipe: FIFO in the image"), "{err}");
    std::fs::remove_file(dir.path().join("etc/pipe")).unwrap();

    if common::require_root("device node part of special_files_are_refused") {
        nix::sys::stat::mknod(
            &dir.path().join("etc/null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        let err = Manifest::create(dir.path(), &key(1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("etc/null: character device in the image"),
            "{err}"
        );
    }
}

#[test]
fn not_a_directory_and_missing_root_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = Manifest::create(&file, &key(1)).unwrap_err().to_string();
    assert!(err.contains("is not a directory"), "{err}");
    let err = Manifest::create(&dir.path().join("nope"), &key(1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn keys_save_load_and_refuse_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.key");
    let k = SigningKey::generate().unwrap();
    let pub_path = k.save(&path).unwrap();
    assert_eq!(pub_path, dir.path().join("release.key.pub"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        SigningKey::load(&path).unwrap().verifying_key(),
        k.verifying_key()
    );
    assert_eq!(VerifyingKey::load(&pub_path).unwrap(), k.verifying_key());
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));

    let err = k.save(&path).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = SigningKey::load(&path).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The private key where the public one is expected, and the other way round.
    let err = VerifyingKey::load(&path).unwrap_err().to_string();
    assert!(err.contains("pass the .pub file"), "{err}");
    let garbled = dir.path().join("garbled.key");
    std::fs::write(
        &garbled,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::set_permissions(&garbled, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = SigningKey::load(&garbled).unwrap_err().to_string();
    assert!(
        err.contains("garbled.key is not a valid ed25519 private key"),
        "{err}"
    );
    let err = SigningKey::load(&dir.path().join("absent.key"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.key"), "{err}");
}
