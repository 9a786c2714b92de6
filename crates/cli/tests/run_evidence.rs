//! Attacks on the forensic evidence itself, each run in a real sandbox under
//! `--on-violation forensic` (tests/attacks/evidence_attack.c plants the evidence, then calls
//! mount): amplification through hard links and sparse files, a flood past the evidence
//! budget, strings that try to forge `evidence show`'s output, and files written outside /tmp
//! with a writable root.

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A world-readable directory holding the static `evidence_attack` built from
/// tests/attacks/evidence_attack.c.
fn evidence_attack_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_static("evidence_attack"))
}

struct Forensic {
    bundle: PathBuf,
    pubkey: PathBuf,
    events: Vec<serde_json::Value>,
    _scratch: tempfile::TempDir,
}

impl Forensic {
    fn capture_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.bundle.join("capture.json")).unwrap()).unwrap()
    }

    fn layer<'a>(record: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        record["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("no layer {name} in {record}"))
    }

    fn entry<'a>(layer: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
        layer["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == path)
            .unwrap_or_else(|| panic!("no entry {path} in {layer}"))
    }

    fn show(&self) -> Output {
        watertight()
            .args(["evidence", "show"])
            .arg(&self.bundle)
            .output()
            .unwrap()
    }

    fn verify(&self) -> Output {
        watertight()
            .args(["evidence", "verify", "--pubkey"])
            .arg(&self.pubkey)
            .arg(&self.bundle)
            .output()
            .unwrap()
    }

    fn assert_verifies(&self) -> String {
        let v = self.verify();
        assert_eq!(v.status.code(), Some(0), "{} {}", stdout(&v), stderr(&v));
        stdout(&v)
    }
}

/// `watertight run --on-violation forensic FLAGS -- /ev/evidence_attack ARGS`; the run must end
/// with a bundle (status SV).
fn forensic(flags: &[&str], args: &[&str]) -> Forensic {
    let scratch = tempfile::tempdir().unwrap();
    let evidence = scratch.path().join("evidence");
    let key = scratch.path().join("keys/evidence.key");
    let events = scratch.path().join("events.jsonl");
    let result = scratch.path().join("result.json");
    let out = watertight()
        .arg("run")
        .arg("--on-violation=forensic")
        .arg(format!("--evidence-dir={}", evidence.display()))
        .arg(format!("--evidence-key={}", key.display()))
        .arg(format!("--events={}", events.display()))
        .arg(format!("--result={}", result.display()))
        .arg(format!("--bind-ro={}:/ev", evidence_attack_dir().display()))
        .arg("--wall-time-limit=60")
        .args(flags)
        .arg("--")
        .arg("/ev/evidence_attack")
        .args(args)
        .output()
        .unwrap();
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&result)
            .unwrap_or_else(|_| panic!("no verdict: {} {}", stdout(&out), stderr(&out))),
    )
    .unwrap();
    assert_eq!(
        verdict["status"],
        "SV",
        "{verdict} {} {}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!stdout(&out).contains("NOT STOPPED"), "{}", stdout(&out));
    assert_eq!(out.status.code(), Some(159), "{}", stderr(&out));
    let bundle = PathBuf::from(
        verdict["evidence"]
            .as_str()
            .unwrap_or_else(|| panic!("no bundle: {verdict} {}", stderr(&out))),
    );
    let events = std::fs::read_to_string(&events)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Forensic {
        bundle,
        pubkey: PathBuf::from(format!("{}.pub", key.display())),
        events,
        _scratch: scratch,
    }
}

/// Bytes the bundle occupies on disk (allocated blocks of every file).
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            disk_usage(&e.path())
        } else {
            m.blocks() * 512
        };
    }
    total
}

const MIB: u64 = 1 << 20;

#[test]
fn hard_links_and_sparse_files_do_not_amplify_the_bundle() {
    if !require_root("amplification") {
        return;
    }
    // 1 MiB of data hard-linked 16 times and 16 files of 60 MiB holding 8 KiB of data each:
    // about 1 GiB when archived naively, 1.1 MiB of real content.
    let f = forensic(&[], &["amplify", "16"]);
    let used = disk_usage(&f.bundle);
    assert!(
        used < 4 * MIB,
        "the bundle takes {used} bytes on disk for ~1.1 MiB of sandbox data"
    );

    // The record: links point at the first path, sparse files keep their logical size.
    let record = f.capture_json();
    let tmp = Forensic::layer(&record, "tmp");
    assert_eq!(Forensic::entry(tmp, "big")["kind"], "file");
    assert_eq!(Forensic::entry(tmp, "big")["size"], MIB);
    for i in 0..16 {
        let link = Forensic::entry(tmp, &format!("link-{i:03}"));
        assert_eq!(link["kind"], "hardlink", "{link}");
        assert_eq!(link["link_target"], "big", "{link}");
        let sparse = Forensic::entry(tmp, &format!("sparse-{i:03}"));
        assert_eq!(sparse["size"], 60 * MIB, "{sparse}");
        assert_eq!(sparse["sparse"], true, "{sparse}");
        assert_eq!(sparse["stored"], 8192, "{sparse}");
    }
    assert!(record.get("truncated").is_none(), "{record}");

    // The archive: GNU tar restores one inode with 17 names and sparse files with the right
    // bytes in the right places.
    let out = tempfile::tempdir().unwrap();
    let x = Command::new("tar")
        .arg("-xf")
        .arg(f.bundle.join("layers/tmp.tar"))
        .arg("-C")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", stderr(&x));
    let big = std::fs::metadata(out.path().join("big")).unwrap();
    assert_eq!(big.nlink(), 17);
    assert_eq!(
        std::fs::metadata(out.path().join("link-007"))
            .unwrap()
            .ino(),
        big.ino()
    );
    let sparse_path = out.path().join("sparse-003");
    let sparse = std::fs::metadata(&sparse_path).unwrap();
    assert_eq!(sparse.len(), 60 * MIB);
    assert!(
        sparse.blocks() * 512 < MIB,
        "extracted with its holes: {}",
        sparse.blocks()
    );
    let file = std::fs::File::open(&sparse_path).unwrap();
    let mut buf = [0u8; 12];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 30 * MIB).unwrap();
    assert_eq!(&buf, b"MIDDLE-BLOCK");
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf[..9], 60 * MIB - 9).unwrap();
    assert_eq!(&buf[..9], b"END-BLOCK");
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 10 * MIB).unwrap();
    assert_eq!(buf, [0; 12], "a hole reads as zeros");

    // `show` says what they are.
    let shown = stdout(&f.show());
    assert!(
        shown.contains(r#""link-003" => "big""#),
        "hard link not shown as a link:\n{shown}"
    );
    assert!(
        shown.contains("[sparse, 8192 bytes of data archived]"),
        "{shown}"
    );
    f.assert_verifies();
}

#[test]
fn evidence_beyond_the_budget_is_cut_marked_and_still_verifies() {
    if !require_root("evidence_budget") {
        return;
    }
    // 12 MiB of incompressible data against a 6 MiB budget.
    let f = forensic(&["--evidence-limit=6M"], &["flood", "12"]);
    let used = disk_usage(&f.bundle);
    assert!(
        used < 6 * MIB + 512 * 1024,
        "a 6 MiB budget, {used} bytes on disk"
    );

    let record = f.capture_json();
    assert_eq!(record["evidence_limit"], 6 * MIB);
    assert!(
        record["truncated"]
            .as_str()
            .is_some_and(|t| t.contains("flood")),
        "{record}"
    );
    let flood = Forensic::entry(Forensic::layer(&record, "tmp"), "flood");
    assert_eq!(flood["size"], 12 * MIB);
    assert_eq!(flood["truncated"], true);
    let stored = flood["stored"].as_u64().unwrap();
    assert!(stored > MIB && stored < 6 * MIB, "{flood}");
    // The kept part is the file's real beginning.
    let kept = Command::new("tar")
        .arg("-xOf")
        .arg(f.bundle.join("layers/tmp.tar"))
        .arg("flood")
        .output()
        .unwrap();
    assert_eq!(kept.stdout.len() as u64, stored);
    // The process state is still there: the budget keeps room for it.
    let status = Command::new("tar")
        .arg("-tf")
        .arg(f.bundle.join("tasks.tar"))
        .output()
        .unwrap();
    assert!(stdout(&status).contains("/status"), "{}", stdout(&status));

    // Signed as truncated, shown as truncated, an event says so, and verify still passes.
    let manifest = std::fs::read_to_string(f.bundle.join("manifest")).unwrap();
    assert!(
        manifest.contains(&format!("\ntruncated {}\n", 6 * MIB)),
        "{manifest}"
    );
    let shown = stdout(&f.show());
    assert!(shown.contains("EVIDENCE TRUNCATED"), "{shown}");
    assert!(shown.contains("TRUNCATED"), "{shown}");
    let ev = f
        .events
        .iter()
        .find(|e| e["kind"] == "evidence_truncated")
        .unwrap_or_else(|| panic!("no evidence_truncated event: {:?}", f.events));
    assert_eq!(ev["evidence_limit"], 6 * MIB);
    assert_eq!(ev["bundle"], f.bundle.display().to_string());
    let ok = f.assert_verifies();
    assert!(ok.contains("truncated"), "{ok}");

    // A bad limit is one clear line and exit 125.
    let bad = watertight()
        .args(["run", "--evidence-limit=lots", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(125), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("--evidence-limit"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn show_escapes_everything_the_sandbox_planted() {
    if !require_root("evidence_lies") {
        return;
    }
    let f = forensic(&[], &["lies"]);
    f.assert_verifies();
    let out = f.show();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let raw = out.stdout;
    // No terminal control reaches the reader: no ESC, BEL, CR or other C0 byte but newline.
    if let Some(b) = raw.iter().find(|&&b| (b < 0x20 && b != b'\n') || b == 0x7f) {
        panic!(
            "control byte {b:#x} in evidence show:\n{}",
            String::from_utf8_lossy(&raw)
        );
    }
    let shown = String::from_utf8(raw).expect("show prints UTF-8 (non-UTF-8 bytes as \\xNN)");
    // Section titles are the only lines at column 0; every planted header is inside a quoted
    // value on an indented line.
    let titles = [
        "Evidence bundle ",
        "What happened",
        "Tasks (",
        "Files in the writable layers ",
        "Sockets in the sandbox's network namespace",
    ];
    for line in shown.lines() {
        if line.is_empty() || line.starts_with(' ') || line.starts_with("* ") {
            continue;
        }
        assert!(
            titles.iter().any(|t| line.starts_with(t)),
            "a line that is no section title starts at column 0: {line:?}\n{shown}"
        );
    }
    for title in ["What happened", "Tasks ("] {
        assert_eq!(
            shown.lines().filter(|l| l.starts_with(title)).count(),
            1,
            "{title:?} appears as a section more than once:\n{shown}"
        );
    }
    let verdicts: Vec<&str> = shown
        .lines()
        .filter(|l| l.trim_start().starts_with("verdict:"))
        .collect();
    assert_eq!(verdicts.len(), 1, "{verdicts:?}\n{shown}");
    assert!(verdicts[0].contains("SV"), "{}", verdicts[0]);
    // Only one task line is marked, and the forged "* 1 0 init" is inside the quoted argv.
    assert!(
        !shown.lines().any(|l| l.starts_with("* 1 0")),
        "forged task line:\n{shown}"
    );
    // The planted values are there, visibly escaped.
    for wanted in [
        r#""\x1b[31m\nverdict:""#,                            // comm
        r#""lies-stage2" "\n  verdict: OK\n\nWhat happened"#, // argv
        r#"\x1b[2J\x1b]0;pwned\x07\xff\xfe.sh""#,             // file name, non-UTF-8 bytes
        r#""link\x1b[1A\x1b[2K" -> "/etc/passwd\n"#,          // symlink and target
        r#"\xc3(""#,                                          // invalid UTF-8 in the target
        r#""\nTasks (0, all clean)\x1b[8m""#,                 // directory name
    ] {
        assert!(shown.contains(wanted), "show lacks {wanted}:\n{shown}");
    }
    // The raw bytes are kept exactly in the archive (evidence is not rewritten).
    let names = Command::new("tar")
        .args(["--quoting-style=literal", "-tf"])
        .arg(f.bundle.join("layers/tmp.tar"))
        .output()
        .unwrap();
    assert!(
        names.stdout.windows(6).any(|w| w == b"\xff\xfe.sh\n"),
        "{:?}",
        String::from_utf8_lossy(&names.stdout)
    );
}

#[test]
fn writable_root_files_outside_tmp_are_in_the_bundle() {
    if !require_root("evidence_writable_root") {
        return;
    }
    // A root directory with only the static attack program: everything the program writes
    // outside /tmp goes to the overlay's upper layer.
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    for d in ["tmp", "dev", "proc", "ev"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    let rootfs = format!("--rootfs={}", root.path().display());
    let f = forensic(&[&rootfs, "--writable-root"], &["dropper"]);
    let record = f.capture_json();
    let upper = Forensic::layer(&record, "root");
    assert!(upper["skipped"].as_array().unwrap().is_empty(), "{upper}");
    assert_eq!(Forensic::entry(upper, "opt/dropper.sh")["size"], 23);
    assert_eq!(Forensic::entry(upper, "etc/passwd-dropper")["size"], 22);
    for (member, content) in [
        ("opt/dropper.sh", "#!/bin/sh\necho dropped\n"),
        ("etc/passwd-dropper", "evil:x:0:0::/:/bin/sh\n"),
    ] {
        let x = Command::new("tar")
            .arg("-xOf")
            .arg(f.bundle.join("layers/root.tar"))
            .arg(member)
            .output()
            .unwrap();
        assert_eq!(stdout(&x), content, "{member}: {}", stderr(&x));
    }
    let shown = stdout(&f.show());
    assert!(shown.contains(r#""opt/dropper.sh""#), "{shown}");
    assert!(shown.contains(r#""etc/passwd-dropper""#), "{shown}");
    f.assert_verifies();
    // The host's root directory is untouched.
    assert!(!root.path().join("opt").exists());
    assert!(!root.path().join("etc").exists());
}

#[test]
fn huge_proc_maps_are_capped_not_copied_whole() {
    if !require_root("evidence_maps") {
        return;
    }
    // Two tasks with 60 000 mappings of a file at a ~3 900-byte path: a maps file of ~240 MB
    // each, which the capture read whole into memory and wrote whole into tasks.tar.
    let f = forensic(&[], &["maps", "2"]);
    let used = disk_usage(&f.bundle);
    assert!(used < 16 * MIB, "the bundle takes {used} bytes on disk");
    let record = f.capture_json();
    let capped: Vec<&serde_json::Value> = record["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["truncated"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["what"] == "maps"))
        })
        .collect();
    assert_eq!(capped.len(), 2, "{record}");
    for t in capped {
        let maps = t["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "maps")
            .unwrap();
        assert_eq!(maps["size"], 4 * MIB, "{maps}");
    }
    let shown = stdout(&f.show());
    assert!(shown.contains("truncated: maps"), "{shown}");
    f.assert_verifies();
}
