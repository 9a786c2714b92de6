//! Real programs under the default filter: a shell pipeline, an interpreter using threads,
//! sockets and subprocesses, a C compiler and linker, and make. Each runs as a child that
//! installs the filter right before execve (`command_with_filter`). Also: tools that need what
//! the filter refuses (unshare, mount) fail inside it.

use std::path::Path;
use std::process::{Command, Output};

use watertight_seccomp::{default_profile, CompileOptions};
use watertight_sys::seccomp::command_with_filter;

fn run_filtered(program: &str, args: &[&str], dir: Option<&Path>) -> Option<Output> {
    let Some(path) = which(program) else {
        // Every program here comes with scripts/install-deps.sh (or Rust itself): a failure in CI.
        let missing = format!("{program} is not installed (scripts/install-deps.sh installs it)");
        watertight_testkit::require(&watertight_testkit::this_test(), Some(missing));
        return None;
    };
    let filter = default_profile()
        .compile(&CompileOptions::default())
        .expect("default profile compiles");
    let mut cmd = Command::new(path);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    command_with_filter(&mut cmd, filter.program().to_vec(), filter.flags());
    Some(cmd.output().expect("spawn the filtered program"))
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        return Some(program.into()).filter(|p: &std::path::PathBuf| p.is_file());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed under the default filter: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shell_pipeline_runs() {
    let script = "set -e; echo hello | tr a-z A-Z; d=$(mktemp -d); echo x > $d/f; \
                  ln -s $d/f $d/l; cat $d/l >/dev/null; rm -r $d; ls / >/dev/null; \
                  sleep 0.01 & wait";
    let Some(out) = run_filtered("sh", &["-c", script], None) else {
        return;
    };
    assert_success(&out, "sh pipeline");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\n");
}

#[test]
fn python_with_threads_sockets_and_subprocesses_runs() {
    let code = r#"
import os, socket, subprocess, tempfile, threading, json, hashlib
results = []
t = threading.Thread(target=lambda: results.append(sum(range(1000))))
t.start(); t.join()
a, b = socket.socketpair(); a.sendall(b"ping"); assert b.recv(4) == b"ping"
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(("127.0.0.1", 0)); s.listen(); s.close()
out = subprocess.run(["echo", "sub"], capture_output=True, check=True).stdout
with tempfile.TemporaryDirectory() as d:
    open(os.path.join(d, "f"), "w").write("x")
print(json.dumps({"sum": results[0], "sub": out.decode().strip(), "h": hashlib.sha256(b"").hexdigest()[:4]}))
"#;
    let Some(out) = run_filtered("python3", &["-c", code], None) else {
        return;
    };
    assert_success(&out, "python3");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"sub\": \"sub\""));
}

#[test]
fn c_compiler_and_make_build_and_run_a_program() {
    if !watertight_testkit::require_tools(
        "c_compiler_and_make_build_and_run_a_program",
        &["cc", "make"],
        "gcc make",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("hello.c"),
        "#include <stdio.h>\nint main(void){puts(\"built\");return 0;}\n",
    )
    .expect("write source");
    std::fs::write(
        dir.path().join("Makefile"),
        "hello: hello.c\n\tcc -O2 -o hello hello.c\n",
    )
    .expect("write Makefile");
    let out = run_filtered("make", &["-s"], Some(dir.path())).expect("make exists");
    assert_success(&out, "make + cc");
    let hello = dir.path().join("hello");
    let out =
        run_filtered(hello.to_str().expect("utf-8 path"), &[], None).expect("make built ./hello");
    assert_success(&out, "the built program");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "built\n");
}

#[test]
fn namespace_and_mount_tools_fail_inside() {
    if let Some(out) = run_filtered("unshare", &["--user", "--map-root-user", "true"], None) {
        assert!(!out.status.success(), "unshare succeeded under the filter");
    }
    if let Some(out) = run_filtered("sh", &["-c", "mount -t tmpfs none /mnt"], None) {
        assert!(!out.status.success(), "mount succeeded under the filter");
    }
}

#[test]
fn rustc_compiles_a_program() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("main.rs");
    std::fs::write(
        &src,
        "fn main() { println!(\"{}\", std::thread::spawn(|| 6 * 7).join().unwrap()); }\n",
    )
    .expect("write source");
    let out_bin = dir.path().join("main");
    let Some(out) = run_filtered(
        "rustc",
        &[
            "-O",
            "-o",
            out_bin.to_str().expect("utf-8"),
            src.to_str().expect("utf-8"),
        ],
        None,
    ) else {
        return;
    };
    assert_success(&out, "rustc");
    let out = run_filtered(out_bin.to_str().expect("utf-8"), &[], None).expect("built binary");
    assert_success(&out, "the rustc-built program");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}
