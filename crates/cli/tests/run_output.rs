//! The verdict's `output_bytes` counts what the program wrote to stdout and stderr, with and
//! without an output limit, whatever the caller's streams are: pipes, files (truncated or
//! appended), /dev/null, a socket, one file for both (`2>&1`, the program's order kept). The
//! relay that counts never holds up the supervisor (a reader that never reads does not stop the
//! wall-time limit), and a reader that goes away still ends a writer with SIGPIPE. Before this,
//! `output_bytes` was 0 unless an output limit was set (the output was counted only when it went
//! through the supervisor, which it did only then).

mod common;
use common::*;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes `out` bytes to stdout, then `err` bytes to stderr.
fn writer(out: usize, err: usize) -> String {
    format!("head -c {out} /dev/zero; head -c {err} /dev/zero >&2")
}

/// `watertight run --result FILE FLAGS -- /bin/sh -c SCRIPT`, ready for its streams.
fn sandboxed(result: &std::path::Path, flags: &[&str], script: &str) -> Command {
    let mut cmd = watertight();
    cmd.arg("run")
        .arg(format!("--result={}", result.display()))
        .args(flags)
        .args(["--", "/bin/sh", "-c", script]);
    cmd
}

fn verdict(result: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(result).unwrap()).unwrap()
}

const OUT: usize = 300_000; // more than a pipe holds: the relay moves it in several steps
const ERR: usize = 70_000;

#[test]
fn pipes_are_counted_with_and_without_a_limit() {
    if !require_root("pipes_are_counted_with_and_without_a_limit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    for flags in [&[][..], &["--output-limit=1M"][..]] {
        let o = sandboxed(&result, flags, &writer(OUT, ERR))
            .output()
            .unwrap();
        let v = verdict(&result);
        assert_eq!(v["status"], "OK", "{flags:?}: {v}");
        assert_eq!(o.stdout.len(), OUT, "{flags:?}");
        assert_eq!(o.stderr.len(), ERR, "{flags:?}");
        assert_eq!(v["output_bytes"], OUT + ERR, "{flags:?}: {v}");
    }
}

#[test]
fn files_and_dev_null_are_counted() {
    if !require_root("files_and_dev_null_are_counted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    for flags in [&[][..], &["--output-limit=1M"][..]] {
        // Truncated files, one per stream.
        let o = sandboxed(&result, flags, &writer(OUT, ERR))
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        assert!(o.success());
        assert_eq!(std::fs::metadata(&out_path).unwrap().len(), OUT as u64);
        assert_eq!(std::fs::metadata(&err_path).unwrap().len(), ERR as u64);
        assert_eq!(verdict(&result)["output_bytes"], OUT + ERR, "{flags:?}");

        // A file opened for appending (`>>`), which splice refuses: written all the same.
        std::fs::write(&out_path, b"before\n").unwrap();
        let append = std::fs::OpenOptions::new()
            .append(true)
            .open(&out_path)
            .unwrap();
        let o = sandboxed(&result, flags, &writer(OUT, 0))
            .stdout(append)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(o.success());
        let text = std::fs::read(&out_path).unwrap();
        assert_eq!(text.len(), 7 + OUT);
        assert!(text.starts_with(b"before\n"));
        assert_eq!(verdict(&result)["output_bytes"], OUT, "{flags:?}");

        // /dev/null for both.
        let o = sandboxed(&result, flags, &writer(OUT, ERR))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(o.success());
        assert_eq!(verdict(&result)["output_bytes"], OUT + ERR, "{flags:?}");
    }
}

#[test]
fn one_file_for_both_streams_keeps_the_programs_order() {
    if !require_root("one_file_for_both_streams_keeps_the_programs_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    let path = dir.path().join("both");
    let script = "i=0; while [ $i -lt 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
    let expected: String = (0..300).map(|i| format!("out{i}\nerr{i}\n")).collect();
    for flags in [&[][..], &["--output-limit=1M"][..]] {
        let file = std::fs::File::create(&path).unwrap();
        let o = sandboxed(&result, flags, script)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .status()
            .unwrap();
        assert!(o.success());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            expected,
            "{flags:?}"
        );
        assert_eq!(
            verdict(&result)["output_bytes"],
            expected.len(),
            "{flags:?}"
        );
    }
}

#[test]
fn past_the_limit_output_is_counted_not_shown() {
    if !require_root("past_the_limit_output_is_counted_not_shown") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    let path = dir.path().join("out");
    let o = sandboxed(&result, &["--output-limit=100K"], &writer(OUT, ERR))
        .stdout(std::fs::File::create(&path).unwrap())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(o.code(), Some(153));
    let v = verdict(&result);
    assert_eq!(v["status"], "OL", "{v}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        100 << 10,
        "exactly the limit shown"
    );
    assert!(v["output_bytes"].as_u64().unwrap() > 100 << 10, "{v}");
}

#[test]
fn a_socket_is_counted_and_waited_for() {
    if !require_root("a_socket_is_counted_and_waited_for") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut child = sandboxed(&result, &[], &writer(3_000_000, 0))
        .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .spawn()
        .unwrap();
    // A slow reader: the sandbox's writes wait, the bytes all arrive.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    (&ours).read_to_end(&mut got).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(got.len(), 3_000_000);
    assert_eq!(verdict(&result)["output_bytes"], 3_000_000);
}

#[test]
fn a_reader_that_never_reads_does_not_hold_the_wall_time_limit() {
    if !require_root("a_reader_that_never_reads_does_not_hold_the_wall_time_limit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    // We hold the read end of its stdout and never read it.
    let mut child = sandboxed(&result, &["--wall-time-limit=1"], "yes")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("watertight waited for the reader past its wall-time limit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(124));
    let v = verdict(&result);
    assert_eq!(v["status"], "TO", "{v}");
    assert!(v["output_bytes"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn a_reader_that_goes_away_ends_the_writer_with_sigpipe() {
    if !require_root("a_reader_that_goes_away_ends_the_writer_with_sigpipe") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    // `watertight run -- yes | head -c 10`, through a shell.
    let o = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "'{}' run --result='{}' --wall-time-limit=20 -- yes | head -c 10",
            watertight_testkit::watertight_bin().display(),
            result.display()
        ))
        .output()
        .unwrap();
    assert_eq!(o.stdout, b"y\ny\ny\ny\ny\n");
    let v = verdict(&result);
    assert_eq!(
        (v["status"].as_str(), v["signal"].as_i64()),
        (Some("SG"), Some(13)),
        "{v}"
    );
}

#[test]
fn a_stdout_not_open_for_writing_is_left_to_the_program() {
    if !require_root("a_stdout_not_open_for_writing_is_left_to_the_program") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("v.json");
    // Its writes fail as they would without watertight, and only stderr counts.
    let o = watertight()
        .arg("run")
        .arg(format!("--result={}", result.display()))
        .args(["--", "/bin/sh", "-c", "echo hi; echo rc=$? >&2"])
        .stdout(std::fs::File::open("/dev/null").unwrap())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(err.ends_with("rc=1\n"), "{err}");
    assert_eq!(verdict(&result)["output_bytes"], err.len());
}
