//! The one output sink of every report command, end to end through the binary: `--fail-on`
//! thresholds, SARIF and Prometheus of the isolation and kernel result classes, `-o FILE` written
//! through (symlink, FIFO, /dev/stdout) by every command that writes a file, and a reader that
//! closes standard output early (`watertight audit kernel | head -1`) ending the command
//! quietly. Root only for a character device node made with mknod and for `audit host`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn watertight() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
}

fn run(args: &[&str]) -> Output {
    watertight().args(args).output().expect("run watertight")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn leaky() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audit/tests/fixtures/docker/leaky.json")
        .display()
        .to_string()
}

/// A host root whose kernel fails two hardening checks: kptr_restrict (medium) and
/// dmesg_restrict (low); every other switch is absent and does not count.
fn fake_host_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let kernel = root.path().join("proc/sys/kernel");
    std::fs::create_dir_all(&kernel).unwrap();
    std::fs::write(kernel.join("osrelease"), "6.6.50\n").unwrap();
    std::fs::write(kernel.join("kptr_restrict"), "0\n").unwrap();
    std::fs::write(kernel.join("dmesg_restrict"), "0\n").unwrap();
    root
}

fn kernel_args(root: &Path) -> Vec<String> {
    vec![
        "audit".into(),
        "kernel".into(),
        "--host-root".into(),
        root.display().to_string(),
    ]
}

/// The kernel CNA records shared beside the checkout, when present.
fn records() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/kernel-vulns/cve/published"
    ));
    dir.is_dir().then_some(dir)
}

/// No panic, no abort, no "failed printing": the command ended by itself with a documented code.
fn assert_quiet_end(o: &Output, expected: i32) {
    let err = stderr(o);
    assert_eq!(o.status.signal(), None, "killed by a signal: {err}");
    assert_eq!(o.status.code(), Some(expected), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("failed printing"),
        "{err}"
    );
}

#[test]
fn fail_on_thresholds_decide_the_exit_code() {
    let root = fake_host_root();
    let base = kernel_args(root.path());
    let code = |fail_on: &str| {
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend(["--fail-on", fail_on]);
        let o = run(&args);
        assert!(!o.stdout.is_empty(), "{}", stderr(&o));
        o.status.code()
    };
    // Worst failing check: medium.
    assert_eq!(code("info"), Some(1));
    assert_eq!(code("low"), Some(1));
    assert_eq!(code("medium"), Some(1));
    assert_eq!(code("high"), Some(0));
    assert_eq!(code("critical"), Some(0));
    assert_eq!(code("none"), Some(0));
    assert_eq!(code("never"), Some(0));
    // Bad thresholds and formats: usage error, one line naming the flag.
    for (flag, value) in [("--fail-on", "urgent"), ("--format", "xml")] {
        let o = run(&["audit", "docker", flag, value, &leaky()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
    }
    // The same scale on the isolation audit: leaky.json has critical findings.
    assert_eq!(
        run(&["audit", "docker", "--fail-on", "critical", &leaky()])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn sarif_of_each_result_class_links_rules_and_takes_levels_from_one_scale() {
    let root = fake_host_root();
    let mut kernel: Vec<String> = kernel_args(root.path());
    kernel.extend(["--format", "sarif", "--fail-on", "none"].map(String::from));
    let kernel: Vec<&str> = kernel.iter().map(String::as_str).collect();
    let docker = ["audit", "docker", "--format", "sarif", "--fail-on", "none"];
    let leaky = leaky();
    let docker: Vec<&str> = docker.iter().copied().chain([leaky.as_str()]).collect();
    for (args, command) in [(kernel, "kernel"), (docker, "docker")] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["properties"]["command"], command);
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert!(!results.is_empty(), "{command}");
        for r in results {
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"], "{command}");
            let expected = match r["properties"]["severity"].as_str().unwrap() {
                "critical" | "high" => "error",
                "medium" => "warning",
                "low" | "info" => "note",
                other => panic!("{other} is not on the one scale"),
            };
            assert_eq!(r["level"], expected, "{command}: {r}");
        }
    }
}

#[test]
fn prometheus_of_each_result_class_parses() {
    let root = fake_host_root();
    let mut kernel: Vec<String> = kernel_args(root.path());
    kernel.extend(["--format", "prometheus", "--fail-on", "none"].map(String::from));
    let o = watertight().args(&kernel).output().unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    let samples = watertight_report::prometheus::read(&text).unwrap();
    assert!(samples
        .iter()
        .any(|s| s.name == "watertight_kernel_hardening_ok" && s.value == 0.0));
    let o = run(&[
        "audit",
        "docker",
        "--format",
        "prometheus",
        "--fail-on",
        "none",
        &leaky(),
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    watertight_report::prometheus::read(&text).unwrap();
}

#[test]
fn output_file_is_written_through_a_symlink_and_keeps_the_inode() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("report.json");
    std::fs::write(&target, "x".repeat(100_000)).unwrap();
    let inode = std::fs::metadata(&target).unwrap().ino();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = run(&[
        "audit",
        "docker",
        "--format",
        "json",
        "--fail-on",
        "none",
        "-o",
        link.to_str().unwrap(),
        &leaky(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::metadata(&target).unwrap().ino(), inode);
    // Truncated, not overwritten in part: the old, longer content is gone.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(report["command"], "docker");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn output_to_a_fifo_and_to_dev_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = run(&[
        "audit",
        "docker",
        "--format",
        "sarif",
        "--fail-on",
        "none",
        "-o",
        fifo.to_str().unwrap(),
        &leaky(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = reader.join().unwrap();
    assert!(text.contains("\"version\": \"2.1.0\""), "{text}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_file()
        .eq(&false));

    let o = run(&[
        "audit",
        "docker",
        "--format",
        "json",
        "--fail-on",
        "none",
        "-o",
        "/dev/stdout",
        &leaky(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["command"], "docker");
}

/// Standard output is a pipe whose reading end is already closed: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    Stdio::from(write)
}

#[test]
fn a_closed_stdout_ends_every_report_command_quietly() {
    let root = fake_host_root();
    let kernel = kernel_args(root.path());
    let leaky = leaky();
    let cases: Vec<(Vec<String>, i32)> = vec![
        (
            [&kernel[..], &["--fail-on".into(), "none".into()]].concat(),
            0,
        ),
        // The findings still decide the exit code.
        (
            [&kernel[..], &["--fail-on".into(), "low".into()]].concat(),
            1,
        ),
        (
            ["audit", "docker", "--format", "sarif", &leaky]
                .map(String::from)
                .to_vec(),
            1,
        ),
    ];
    for (args, code) in cases {
        let o = watertight()
            .args(&args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_quiet_end(&o, code);
        assert!(stderr(&o).is_empty(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn audit_kernel_piped_into_head_1() {
    // A report longer than a pipe's buffer, of which the reader takes one line and leaves.
    let Some(db) = records() else {
        eprintln!("SKIP: kernel CNA records absent");
        return;
    };
    let mut child = watertight()
        .args([
            "audit",
            "kernel",
            "--no-hardening",
            "--kernel-version",
            "6.6.50",
        ])
        .arg("--cve-db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "Kernel 6.6.50 (upstream release)\n");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    let o = Output {
        status,
        stdout: Vec::new(),
        stderr: err.into_bytes(),
    };
    // 6.6.50 has high-severity CVEs: the default --fail-on high decides 1.
    assert_quiet_end(&o, 1);
}

/// Every command that writes a file, each with its output flag last (the path follows it).
/// `net check` is not here: it needs a real bridge (crates/cli/tests/net_cli.rs) and emits
/// through the same `Sink::emit` as the audits.
fn file_writers(scratch: &Path) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let p = |rel: &str| scratch.join(rel).display().to_string();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audit/tests/fixtures");
    std::fs::write(
        scratch.join("pod.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x}]\n",
    )
    .unwrap();
    let report = run(&[
        "audit",
        "docker",
        "--format",
        "json",
        "--fail-on",
        "none",
        &leaky(),
    ]);
    std::fs::write(scratch.join("node.json"), &report.stdout).unwrap();
    let records = scratch.join("records");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(
        records.join("CVE-2024-1.json"),
        r#"{"containers":{"cna":{"title":"t","affected":[{"defaultStatus":"affected",
"programFiles":["fs/x.c"],"versions":[{"version":"0","lessThan":"5.0","status":"unaffected",
"versionType":"semver"}]}]}},"cveMetadata":{"cveId":"CVE-2024-1","state":"PUBLISHED"}}"#,
    )
    .unwrap();
    let key = p("release.key");
    assert_eq!(
        run(&["key", "generate", "--out", &key]).status.code(),
        Some(0)
    );
    let tree = scratch.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a"), "a").unwrap();
    let kernel = scratch.join("host/proc/sys/kernel");
    std::fs::create_dir_all(&kernel).unwrap();
    std::fs::write(kernel.join("osrelease"), "6.6.50\n").unwrap();
    let host_root = p("host");
    let mut out = vec![
        s(&["audit", "docker", "--fail-on", "none", &leaky(), "-o"]),
        s(&[
            "audit",
            "oci",
            "--fail-on",
            "none",
            &fixtures.join("oci/runc-default").display().to_string(),
            "-o",
        ]),
        s(&["audit", "k8s", "--fail-on", "none", &p("pod.yaml"), "-o"]),
        s(&["audit", "fleet", "--fail-on", "none", &p("node.json"), "-o"]),
        s(&[
            "audit",
            "kernel",
            "--fail-on",
            "none",
            "--host-root",
            &host_root,
            "-o",
        ]),
        s(&[
            "audit",
            "kernel",
            "--cve-db",
            &records.display().to_string(),
            "--index-out",
        ]),
        s(&[
            "manifest",
            "create",
            &tree.display().to_string(),
            "--key",
            &key,
            "--out",
        ]),
    ];
    if watertight_testkit::is_root() {
        let me = std::process::id().to_string();
        out.push(s(&[
            "audit",
            "host",
            "--fail-on",
            "none",
            "--pid",
            &me,
            "--reference-pid",
            &me,
            "-o",
        ]));
    }
    out
}

/// Runs one writer into `target` and checks it ended well.
fn write_to(args: &[String], target: &Path) {
    let o = watertight().args(args).arg(target).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
}

#[test]
fn every_file_writer_writes_through_fifos_and_symlinks() {
    let scratch = tempfile::tempdir().unwrap();
    for args in file_writers(scratch.path()) {
        // A FIFO, read by a thread: the output arrives, the FIFO stays a FIFO.
        let fifo = scratch.path().join("out.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_to(&args, &fifo);
        use std::os::unix::fs::FileTypeExt;
        // Checked before joining the reader: a writer that replaced the FIFO never opened it.
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo(),
            "{args:?} replaced the FIFO"
        );
        let got = reader.join().unwrap();
        assert!(!got.is_empty(), "{args:?}: nothing came through the FIFO");
        std::fs::remove_file(&fifo).unwrap();

        // A symlink to a file: still the same symlink, its target holds the output.
        let target = scratch.path().join("real.out");
        std::fs::write(&target, "old").unwrap();
        let inode = std::fs::metadata(&target).unwrap().ino();
        let link = scratch.path().join("link.out");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_to(&args, &link);
        assert_eq!(std::fs::read_link(&link).unwrap(), target, "{args:?}");
        assert_eq!(std::fs::metadata(&target).unwrap().ino(), inode, "{args:?}");
        let written = std::fs::read(&target).unwrap();
        assert!(
            written.len() > 3 && !written.starts_with(b"old"),
            "{args:?}"
        );
        std::fs::remove_file(&link).unwrap();

        // A regular file: written through (the same inode, so its links and owner stay),
        // nothing left beside it.
        write_to(&args, &target);
        assert_eq!(std::fs::metadata(&target).unwrap().ino(), inode, "{args:?}");
        std::fs::remove_file(&target).unwrap();
        let left: Vec<_> = std::fs::read_dir(scratch.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

#[test]
fn every_file_writer_writes_through_a_character_device() {
    if !watertight_testkit::require_root("every_file_writer_writes_through_a_character_device") {
        return;
    }
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    use std::os::unix::fs::FileTypeExt;
    let scratch = tempfile::tempdir().unwrap();
    // A node of our own with /dev/null's numbers (1:3), in the temp dir: /dev is never touched.
    let null = scratch.path().join("null");
    mknod(
        &null,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    for args in file_writers(scratch.path()) {
        write_to(&args, &null);
        let meta = std::fs::symlink_metadata(&null).unwrap();
        assert!(
            meta.file_type().is_char_device(),
            "{args:?} replaced the device node"
        );
        assert_eq!(meta.rdev(), makedev(1, 3), "{args:?}");
    }
}
