//! Capture from real frozen processes, verify, and tamper detection.

mod common;

use common::{test_key, FrozenSandbox, ENV_MARKER, EVENTS, VERDICT};
use std::io::Read;
use std::path::{Path, PathBuf};
use watertight_forensics::{capture, summarize, verify, CaptureRequest, Error};

fn fill_layer(dir: &Path) {
    std::fs::write(dir.join("marker.txt"), b"the program wrote this").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/payload.bin"), vec![7u8; 100_000]).unwrap();
    // Through /proc/<pid>/root an absolute link would resolve on the host: it must be archived
    // as a link, never followed.
    std::os::unix::fs::symlink("/etc/hostname", dir.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("escape-dir")).unwrap();
}

fn capture_sandbox(sandbox: &FrozenSandbox, evidence: &Path, id: &str) -> PathBuf {
    let pids = sandbox.pids();
    let key = test_key();
    let req = CaptureRequest {
        sandbox_id: id,
        pids: &pids,
        writable_dirs: vec![("tmp".into(), sandbox.layer_via_proc())],
        events_jsonl: EVENTS,
        verdict_json: VERDICT,
        evidence_dir: evidence,
        key: &key,
        evidence_limit: 1 << 30,
        unavailable_layers: Vec::new(),
    };
    capture(&req).expect("capture")
}

fn tar_entries(tar_path: &Path) -> Vec<(String, tar::EntryType, Option<String>, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, kind, link, data)
        })
        .collect()
}

#[test]
fn bundle_holds_every_task_and_the_layer_and_verifies() {
    let Some(sandbox) = FrozenSandbox::start(3, "full") else {
        return;
    };
    fill_layer(sandbox.layer.path());
    let evidence = tempfile::tempdir().unwrap();
    let bundle = capture_sandbox(&sandbox, evidence.path(), "sb-full");

    assert!(bundle.starts_with(evidence.path()));
    let name = bundle.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("sb-full-20"), "{name}");
    // Nothing else (no partial temp dir) remains in the evidence dir.
    assert_eq!(std::fs::read_dir(evidence.path()).unwrap().count(), 1);

    let pids = sandbox.pids();
    assert_eq!(pids.len(), 3);
    let members: std::collections::HashMap<String, Vec<u8>> =
        tar_entries(&bundle.join("tasks.tar"))
            .into_iter()
            .map(|(path, kind, _, data)| {
                assert_eq!(kind, tar::EntryType::Regular);
                (path, data)
            })
            .collect();
    for pid in &pids {
        let member = |f: &str| {
            members
                .get(&format!("tasks/{pid}/{f}"))
                .unwrap_or_else(|| panic!("tasks/{pid}/{f} missing from tasks.tar"))
        };
        for f in [
            "status",
            "cmdline",
            "environ",
            "maps",
            "fds.txt",
            "mountinfo",
            "cgroup",
            "ns.txt",
            "stack",
        ] {
            member(f);
        }
        let wanted = format!("{ENV_MARKER}={}", sandbox.marker_value);
        assert!(
            member("environ")
                .split(|&b| b == 0)
                .any(|v| v == wanted.as_bytes()),
            "environ of {pid} lacks the marker"
        );
        assert_eq!(member("cmdline"), b"sleep\x001000\x00");
        let fds = String::from_utf8_lossy(member("fds.txt"));
        assert!(fds.starts_with("0 -> /dev/null\n"), "{fds}");
        let ns = String::from_utf8_lossy(member("ns.txt"));
        assert!(ns.contains("pid -> pid:["), "{ns}");
        let status = String::from_utf8_lossy(member("status"));
        assert!(status.contains(&format!("Pid:\t{pid}\n")), "{status}");
    }
    for table in ["tcp", "tcp6", "udp", "udp6", "unix", "packet"] {
        assert!(bundle.join("net").join(table).is_file(), "net/{table}");
    }
    assert_eq!(std::fs::read(bundle.join("events.jsonl")).unwrap(), EVENTS);
    assert_eq!(std::fs::read(bundle.join("verdict.json")).unwrap(), VERDICT);

    let entries = tar_entries(&bundle.join("layers/tmp.tar"));
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.0 == p)
            .unwrap_or_else(|| panic!("{p} not in tar: {entries:?}"))
    };
    assert_eq!(find("marker.txt").3, b"the program wrote this");
    assert_eq!(find("sub/payload.bin").3.len(), 100_000);
    assert!(find("sub").1.is_dir());
    let escape = find("escape");
    assert_eq!(escape.1, tar::EntryType::Symlink);
    assert_eq!(escape.2.as_deref(), Some("/etc/hostname"));
    assert!(escape.3.is_empty());
    assert_eq!(find("escape-dir").1, tar::EntryType::Symlink);
    assert!(
        !entries.iter().any(|e| e.0.starts_with("escape-dir/")),
        "followed a symlink out of the layer"
    );

    let report = verify(&bundle, &test_key().verifying_key()).expect("fresh bundle verifies");
    assert_eq!(report.sandbox_id, "sb-full");
    assert_eq!(report.signer, test_key().verifying_key().fingerprint());
    // tasks.tar, at least 6 net tables, the layer tar, events, verdict, capture.json.
    assert!(report.files >= 6 + 5, "{report:?}");

    let text = summarize(&bundle).unwrap();
    for wanted in [
        "sb-full",
        "violation ptrace(PTRACE_ATTACH, 1, 0, 0)",
        "2026-11-22T10:00:01.500Z",
        "verdict: SV security violation: ptrace",
        "marker.txt",
        "sub/payload.bin",
        r#""escape" -> "/etc/hostname""#,
        r#""sleep" "1000""#,
    ] {
        assert!(text.contains(wanted), "summary lacks {wanted:?}:\n{text}");
    }
    for pid in &pids {
        assert!(text.contains(&pid.to_string()), "summary lacks pid {pid}");
    }
}

#[test]
fn flipping_one_byte_of_any_file_names_that_file() {
    let Some(sandbox) = FrozenSandbox::start(2, "flip") else {
        return;
    };
    fill_layer(sandbox.layer.path());
    let evidence = tempfile::tempdir().unwrap();
    let bundle = capture_sandbox(&sandbox, evidence.path(), "sb-flip");
    let key = test_key().verifying_key();
    verify(&bundle, &key).expect("fresh bundle verifies");

    let files: Vec<PathBuf> = walk_files(&bundle);
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let original = std::fs::read(&file).unwrap();
        if original.is_empty() {
            continue;
        }
        let mut flipped = original.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x01;
        std::fs::write(&file, &flipped).unwrap();
        let err = verify(&bundle, &key).expect_err("tampered bundle must fail");
        assert!(err.is_tampering(), "{err}");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "error does not name {}: {err}",
            file.display()
        );
        std::fs::write(&file, &original).unwrap();
    }
    verify(&bundle, &key).expect("restored bundle verifies again");

    // A file added after signing, and one removed.
    let extra = bundle.join("net/zz-added");
    std::fs::write(&extra, b"x").unwrap();
    let err = verify(&bundle, &key).unwrap_err();
    assert!(
        matches!(err, Error::Unlisted { ref path } if *path == extra),
        "{err}"
    );
    std::fs::remove_file(&extra).unwrap();
    let gone = bundle.join("verdict.json");
    let saved = std::fs::read(&gone).unwrap();
    std::fs::remove_file(&gone).unwrap();
    let err = verify(&bundle, &key).unwrap_err();
    assert!(
        matches!(err, Error::Missing { ref path, .. } if *path == gone),
        "{err}"
    );
    std::fs::write(&gone, saved).unwrap();
    verify(&bundle, &key).unwrap();
}

#[test]
fn altered_task_file_is_named_inside_tasks_tar() {
    let Some(sandbox) = FrozenSandbox::start(2, "member") else {
        return;
    };
    let evidence = tempfile::tempdir().unwrap();
    let bundle = capture_sandbox(&sandbox, evidence.path(), "sb-member");
    let key = test_key().verifying_key();
    let archive = bundle.join("tasks.tar");
    let pid = sandbox.pids()[1];
    for name in ["environ", "stack", "fds.txt"] {
        let member = format!("tasks/{pid}/{name}");
        let (offset, size) = member_data(&archive, &member);
        assert!(size > 0, "{member} is empty");
        let original = std::fs::read(&archive).unwrap();
        let mut flipped = original.clone();
        flipped[(offset + size / 2) as usize] ^= 0x04;
        std::fs::write(&archive, &flipped).unwrap();
        let err = verify(&bundle, &key).unwrap_err();
        assert!(
            matches!(err, Error::MemberMismatch { member: ref m, .. } if *m == member),
            "{err}"
        );
        assert!(
            err.to_string().contains(&archive.display().to_string()),
            "{err}"
        );
        std::fs::write(&archive, &original).unwrap();
    }
    verify(&bundle, &key).unwrap();
}

/// Offset and size of a member's data inside a tar file.
fn member_data(archive: &Path, member: &str) -> (u64, u64) {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in tar.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().to_str() == Some(member) {
            return (e.raw_file_position(), e.size());
        }
    }
    panic!("{member} not in {}", archive.display());
}

#[test]
fn forged_manifest_and_wrong_key_fail_the_signature() {
    let Some(sandbox) = FrozenSandbox::start(1, "forge") else {
        return;
    };
    fill_layer(sandbox.layer.path());
    let evidence = tempfile::tempdir().unwrap();
    let bundle = capture_sandbox(&sandbox, evidence.path(), "sb-forge");
    let key = test_key().verifying_key();

    // The forger edits a file and rewrites its manifest line to match: consistent hashes, but
    // the signature no longer covers the manifest.
    let target = "verdict.json";
    let forged_contents = br#"{"status":"OK"}"#;
    std::fs::write(bundle.join(target), forged_contents).unwrap();
    let manifest_path = bundle.join("manifest");
    let mut manifest =
        watertight_forensics::manifest::Manifest::parse(&std::fs::read(&manifest_path).unwrap())
            .unwrap();
    let entry = manifest
        .files
        .iter_mut()
        .find(|f| f.path == target)
        .unwrap();
    entry.size = forged_contents.len() as u64;
    entry.sha256 = sha256(forged_contents);
    std::fs::write(&manifest_path, manifest.encode()).unwrap();
    let err = verify(&bundle, &key).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    assert!(err
        .to_string()
        .contains(&manifest_path.display().to_string()));

    // Verifying with another key is refused, naming both keys.
    let other = watertight_forensics::SigningKey::from_seed([9; 32]).verifying_key();
    let err = verify(&bundle, &other).unwrap_err();
    assert!(matches!(err, Error::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains(&other.fingerprint()));
}

#[test]
fn unwritable_evidence_dir_is_a_clear_error_and_leaves_nothing() {
    let Some(sandbox) = FrozenSandbox::start(1, "nowrite") else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let a_file = scratch.path().join("regular-file");
    std::fs::write(&a_file, b"").unwrap();
    let evidence = a_file.join("evidence");
    let pids = sandbox.pids();
    let key = test_key();
    let req = CaptureRequest {
        sandbox_id: "sb-nowrite",
        pids: &pids,
        writable_dirs: vec![("tmp".into(), sandbox.layer_via_proc())],
        events_jsonl: EVENTS,
        verdict_json: VERDICT,
        evidence_dir: &evidence,
        key: &key,
        evidence_limit: 1 << 30,
        unavailable_layers: Vec::new(),
    };
    let err = capture(&req).unwrap_err();
    assert!(matches!(err, Error::EvidenceDir { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&evidence.display().to_string()), "{msg}");

    // A read-only filesystem (root ignores modes, not read-only mounts).
    let ro = scratch.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let _mount = match ReadOnlyTmpfs::mount(&ro) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIP read-only part: cannot mount tmpfs: {e}");
            return;
        }
    };
    let req = CaptureRequest {
        evidence_dir: &ro,
        ..req
    };
    let err = capture(&req).unwrap_err();
    assert!(matches!(err, Error::EvidenceDir { .. }), "{err}");
    assert!(err.to_string().contains(&ro.display().to_string()), "{err}");
    assert!(err.to_string().contains("Read-only"), "{err}");
}

#[test]
fn full_evidence_dir_is_a_clear_error_and_removes_the_partial_bundle() {
    let Some(sandbox) = FrozenSandbox::start(1, "full-disk") else {
        return;
    };
    // A 1 MiB tmpfs cannot hold a 4 MB layer archive.
    std::fs::write(sandbox.layer.path().join("big"), vec![1u8; 4 << 20]).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let small = scratch.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let _mount = match SmallTmpfs::mount(&small) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIP: cannot mount tmpfs: {e}");
            return;
        }
    };
    let pids = sandbox.pids();
    let key = test_key();
    let req = CaptureRequest {
        sandbox_id: "sb-fulldisk",
        pids: &pids,
        writable_dirs: vec![("tmp".into(), sandbox.layer_via_proc())],
        events_jsonl: EVENTS,
        verdict_json: VERDICT,
        evidence_dir: &small,
        key: &key,
        evidence_limit: 1 << 30,
        unavailable_layers: Vec::new(),
    };
    let err = capture(&req).unwrap_err();
    assert!(matches!(err, Error::EvidenceDir { .. }), "{err}");
    assert!(
        err.to_string().contains(&small.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&small).unwrap().count(),
        0,
        "partial bundle left behind"
    );
}

#[test]
fn bad_sandbox_id_is_refused_before_writing() {
    let evidence = tempfile::tempdir().unwrap();
    let key = test_key();
    for id in ["", "../escape", "a/b", ".hidden", "sp ace"] {
        let req = CaptureRequest {
            sandbox_id: id,
            pids: &[],
            writable_dirs: vec![],
            events_jsonl: b"",
            verdict_json: b"{}",
            evidence_dir: evidence.path(),
            key: &key,
            evidence_limit: 1 << 30,
            unavailable_layers: Vec::new(),
        };
        let err = capture(&req).unwrap_err();
        assert!(matches!(err, Error::BadName { .. }), "{id}: {err}");
    }
    assert_eq!(std::fs::read_dir(evidence.path()).unwrap().count(), 0);
}

#[test]
fn vanished_pids_and_missing_layers_are_recorded_not_fatal() {
    let evidence = tempfile::tempdir().unwrap();
    let key = test_key();
    // pid 0x3fffff is above any pid_max default: never a live task.
    let req = CaptureRequest {
        sandbox_id: "sb-gone",
        pids: &[4_194_303],
        writable_dirs: vec![("tmp".into(), PathBuf::from("/nonexistent/watertight/layer"))],
        events_jsonl: b"",
        verdict_json: b"{}",
        evidence_dir: evidence.path(),
        key: &key,
        evidence_limit: 1 << 30,
        unavailable_layers: Vec::new(),
    };
    let bundle = capture(&req).unwrap();
    verify(&bundle, &key.verifying_key()).unwrap();
    let record: watertight_forensics::record::CaptureRecord =
        serde_json::from_slice(&std::fs::read(bundle.join("capture.json")).unwrap()).unwrap();
    assert_eq!(record.tasks[0].unreadable.len(), 9, "{:?}", record.tasks[0]);
    assert!(record.tasks[0].files.is_empty());
    assert!(record.layers[0].archive.is_none());
    assert!(!record.layers[0].skipped.is_empty());
    let text = summarize(&bundle).unwrap();
    assert!(text.contains("no violation event"), "{text}");
}

#[test]
fn host_key_is_created_once_with_private_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/evidence.key");
    let first = watertight_forensics::load_or_create_host_key(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pub_path = dir.path().join("nested/evidence.key.pub");
    let public = watertight_forensics::VerifyingKey::load(&pub_path).unwrap();
    assert_eq!(public, first.verifying_key());
    std::fs::remove_file(&pub_path).unwrap();
    let second = watertight_forensics::load_or_create_host_key(&path).unwrap();
    assert_eq!(second.verifying_key(), first.verifying_key());
    assert!(pub_path.is_file(), "missing .pub is restored");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = watertight_forensics::load_or_create_host_key(&path).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A tmpfs mounted read-only on `dir`, unmounted on drop.
struct ReadOnlyTmpfs(PathBuf);

impl ReadOnlyTmpfs {
    fn mount(dir: &Path) -> nix::Result<Self> {
        use nix::mount::{mount, MsFlags};
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=1m"),
        )?;
        Ok(Self(dir.to_path_buf()))
    }
}

impl Drop for ReadOnlyTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A 1 MiB tmpfs on `dir`, unmounted on drop.
struct SmallTmpfs(PathBuf);

impl SmallTmpfs {
    fn mount(dir: &Path) -> nix::Result<Self> {
        use nix::mount::{mount, MsFlags};
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("size=1m"),
        )?;
        Ok(Self(dir.to_path_buf()))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}
