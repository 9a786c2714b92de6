//! `watertight run`'s caller input is untrusted even when the caller is not: a submission's file
//! name, a path in a directory a submitter controls, bytes that are not UTF-8.
//! - `--secret` reads only a regular file, reached without symbolic links, within a size limit;
//!   a refusal is one line naming the secret and the fix, exit 125.
//! - Arguments, environment values and paths that are not UTF-8 work end to end, or fail with
//!   exit 125 and a message: never a panic.
//! - A name from the caller or the sandbox cannot add lines or escape codes to a message, and
//!   syscall strings in `--events` keep their bytes.

mod common;
use common::*;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

fn secret_flag(name: &str, file: &Path) -> OsString {
    let mut s = OsString::from(format!("--secret={name}="));
    s.push(file);
    s
}

/// Runs `cat /run/secrets/NAME` with the given secret flags.
fn cat_secret(name: &str, flags: &[OsString]) -> Output {
    watertight()
        .arg("run")
        .args(flags)
        .args(["--", "/bin/cat"])
        .arg(format!("/run/secrets/{name}"))
        .output()
        .unwrap()
}

/// A refusal by watertight itself: exit 125 and exactly one line on stderr holding `needles`.
fn assert_refused(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(125), "stderr {err:?}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err:?}");
    }
}

#[test]
fn secret_is_never_read_through_a_symlink() {
    if !require_root("secret_is_never_read_through_a_symlink") {
        return;
    }
    let dir = world_readable_tempdir();
    // A root-only host file, and a submitter's directory with links to it.
    let private = dir.path().join("private");
    std::fs::write(&private, "ROOT-ONLY").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let submitted = dir.path().join("submission");
    std::fs::create_dir(&submitted).unwrap();
    let link = submitted.join("token");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    // A symlink among the directories: submission/up -> the directory holding `private`.
    std::os::unix::fs::symlink(dir.path(), submitted.join("up")).unwrap();

    for path in [link, submitted.join("up/private")] {
        let o = cat_secret("token", &[secret_flag("token", &path)]);
        assert!(!stdout(&o).contains("ROOT-ONLY"), "leaked through {path:?}");
        assert_refused(&o, &["--secret \"token\"", "symbolic link", "realpath"]);
    }
    // The real path of a regular file still works.
    let o = cat_secret("token", &[secret_flag("token", &private)]);
    assert_eq!(stdout(&o), "ROOT-ONLY", "{}", stderr(&o));
}

#[test]
fn secret_must_be_a_regular_file() {
    if !require_root("secret_must_be_a_regular_file") {
        return;
    }
    let dir = world_readable_tempdir();
    let o = cat_secret("k", &[secret_flag("k", Path::new("/dev/null"))]);
    assert_refused(
        &o,
        &[
            "--secret \"k\"",
            "\"/dev/null\" is a device",
            "regular file",
        ],
    );
    let o = cat_secret("k", &[secret_flag("k", dir.path())]);
    assert_refused(&o, &["--secret \"k\"", "is a directory", "regular file"]);
}

#[test]
fn secret_size_is_limited_and_the_limit_can_be_raised() {
    if !require_root("secret_size_is_limited_and_the_limit_can_be_raised") {
        return;
    }
    let dir = world_readable_tempdir();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 2 << 20]).unwrap();
    let o = cat_secret("big", &[secret_flag("big", &big)]);
    assert!(o.stdout.is_empty());
    assert_refused(
        &o,
        &[
            "--secret \"big\"",
            "2097152 bytes",
            "limit of 1048576 bytes",
            "--secret-size-limit",
        ],
    );
    let o = cat_secret(
        "big",
        &[secret_flag("big", &big), "--secret-size-limit=4M".into()],
    );
    assert_eq!(o.stdout.len(), 2 << 20, "{}", stderr(&o));
}

/// `sh -c 'printf %s "$1" | od'`: the program prints its first argument as hex bytes.
const HEX_OF_ARG: &str = "printf %s \"$1\" | od -An -tx1 | tr -d ' \\n'";

#[test]
fn non_utf8_argument_reaches_the_program() {
    if !require_root("non_utf8_argument_reaches_the_program") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result.json");
    let o = watertight()
        .arg("run")
        .arg(format!("--result={}", result.display()))
        .args(["--", "/bin/sh", "-c", HEX_OF_ARG, "sh"])
        .arg(OsStr::from_bytes(b"\xff\xfe"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "fffe");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(v["status"], "OK");
}

#[test]
fn non_utf8_environment_reaches_the_program() {
    if !require_root("non_utf8_environment_reaches_the_program") {
        return;
    }
    // --env K=V, and TERM, which the default profile passes through from the caller.
    let mut env_flag = OsString::from("--env=K=");
    env_flag.push(OsStr::from_bytes(b"\xff\xfe"));
    let o = watertight()
        .arg("run")
        .arg(env_flag)
        .env("TERM", OsStr::from_bytes(b"\xfe\x80"))
        .args(["--", "/bin/sh", "-c"])
        .arg(
            "printf %s \"$K\" | od -An -tx1 | tr -d ' \\n'; echo; printf %s \"$TERM\" | od -An -tx1 | tr -d ' \\n'",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "fffe\nfe80");
}

#[test]
fn non_utf8_paths_work() {
    if !require_root("non_utf8_paths_work") {
        return;
    }
    let dir = world_readable_tempdir();
    let p = |name: &[u8]| dir.path().join(OsStr::from_bytes(name));
    let src = p(b"src\xff");
    std::fs::create_dir(&src).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(src.join("f"), "inside").unwrap();
    let (result, events) = (p(b"result\xfe.json"), p(b"events\xfe.jsonl"));

    let mut bind = OsString::from("--bind-ro=");
    bind.push(&src);
    bind.push(":");
    bind.push(OsStr::from_bytes(b"/w\xfe"));
    let mut workdir = OsString::from("--workdir=");
    workdir.push(OsStr::from_bytes(b"/w\xfe"));
    let (mut result_flag, mut events_flag) =
        (OsString::from("--result="), OsString::from("--events="));
    result_flag.push(&result);
    events_flag.push(&events);
    let o = watertight()
        .arg("run")
        .args([bind, workdir, result_flag, events_flag])
        .args([
            "--",
            "/bin/sh",
            "-c",
            "pwd | od -An -tx1 | tr -d ' \\n'; cat f",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "2f77fe0ainside");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(v["status"], "OK");
    assert!(events.exists());
}

#[test]
fn non_utf8_path_a_profile_cannot_hold_is_refused_with_a_message() {
    if !require_root("non_utf8_path_a_profile_cannot_hold_is_refused_with_a_message") {
        return;
    }
    let dir = world_readable_tempdir();
    let rootfs = dir.path().join(OsStr::from_bytes(b"root\xff"));
    std::fs::create_dir(&rootfs).unwrap();
    let mut flag = OsString::from("--rootfs=");
    flag.push(&rootfs);
    let o = watertight()
        .arg("run")
        .arg(flag)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert_refused(&o, &["--rootfs \"", "root\\xff\"", "not valid UTF-8"]);
}

#[test]
fn command_name_cannot_inject_lines_or_escape_codes() {
    if !require_root("command_name_cannot_inject_lines_or_escape_codes") {
        return;
    }
    let name = "/submissions/a.out\n\x1b[32mwatertight: OK exit=0\x1b[0m";
    let (o, v) = run_with_result(&[], &[name]);
    assert_eq!(o.status.code(), Some(127));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(!o.stderr.contains(&0x1b), "{err:?}");
    let shown = r#"cannot execute "/submissions/a.out\n\x1b[32mwatertight: OK exit=0\x1b[0m": No such file or directory"#;
    assert!(err.contains(shown), "{err:?}");
    assert_eq!(v["message"].as_str(), Some(shown));
}

#[test]
fn caller_paths_in_errors_are_escaped() {
    if !require_root("caller_paths_in_errors_are_escaped") {
        return;
    }
    let o = watertight()
        .arg("run")
        .arg("--bind=/no/such\x1b[2J\nwatertight OK:/x")
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(!o.stderr.contains(&0x1b), "{:?}", stderr(&o));
    assert_refused(&o, &[r#"bind source "/no/such\x1b[2J\nwatertight OK""#]);
}

#[test]
fn rejected_flag_values_are_escaped() {
    // clap's own errors quote the offending value: no line or escape code may come through.
    let o = watertight()
        .args([
            "run",
            "--on-violation=\x1b[31mkill\nwatertight OK",
            "--",
            "/bin/true",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err:?}");
    assert!(!o.stderr.contains(&0x1b), "{err:?}");
    assert!(err.contains(r"'\x1b[31mkill\nwatertight OK'"), "{err:?}");
}

#[test]
fn non_utf8_syscall_strings_keep_their_bytes_in_events() {
    if !require_root("non_utf8_syscall_strings_keep_their_bytes_in_events") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let o = watertight()
        .arg("run")
        .arg("--on-violation=deny")
        .arg(format!("--events={}", events.display()))
        .args(["--", "/usr/bin/python3", "-c"])
        .arg(r#"import ctypes; ctypes.CDLL(None).umount2(b"/\xff\xfe\\x\n", 0)"#)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&events).unwrap();
    let umount = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["syscall"] == "umount2")
        .unwrap_or_else(|| panic!("no umount2 event in {text}"));
    // Lossless text: `\xNN` a byte that is not UTF-8, `\\` a backslash.
    assert_eq!(umount["arg_strings"]["0"], "/\\xff\\xfe\\\\x\n", "{umount}");
}
