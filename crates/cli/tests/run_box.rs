//! `watertight run` as an autograder runs it (isolate's flow): a box the program works in and
//! the caller reads back without chown, `--stdin`/`--stdout` files opened by watertight, the
//! caller's directory (with the expected output beside) out of the program's reach by default,
//! and a default wall-time limit that ends a program that never does.

mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The submission: echoes stdin upper-cased to stdout, reports what else it can read, writes a
/// result file and a would-be setuid file into its working directory (the box).
const SUBMISSION: &str = r#"
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static void probe(const char *path) {
    int fd = open(path, O_RDONLY);
    fprintf(stderr, "%s %s\n", fd >= 0 ? "READ" : "hidden", path);
    if (fd >= 0) close(fd);
}
int main(int argc, char **argv) {
    int c;
    while ((c = getchar()) != EOF) putchar(toupper(c));
    char cwd[4096];
    fprintf(stderr, "cwd %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
    probe("../expected.txt");
    for (int i = 1; i < argc; i++) probe(argv[i]);
    FILE *f = fopen("result.txt", "w");
    if (!f) return 3;
    fputs("graded\n", f);
    fclose(f);
    int s = open("suid", O_WRONLY | O_CREAT, 0755);
    if (s < 0 || fchmod(s, 04755) != 0) return 4;
    struct stat st;
    fstat(s, &st);
    fprintf(stderr, "suid-bit %s\n", (st.st_mode & 04000) ? "set" : "refused");
    close(s);
    return 0;
}
"#;

/// A grader's directory: world-readable (so only the sandbox's rules keep the program out),
/// with expected.txt and in.txt, and a private directory `boxes` for the box.
struct Grader {
    dir: tempfile::TempDir,
}

impl Grader {
    fn new() -> Grader {
        let dir = world_readable_tempdir();
        std::fs::write(dir.path().join("expected.txt"), "HELLO BOX\n").unwrap();
        std::fs::write(dir.path().join("in.txt"), "hello box\n").unwrap();
        std::fs::write(dir.path().join("submission.c"), SUBMISSION).unwrap();
        std::fs::create_dir(dir.path().join("boxes")).unwrap();
        std::fs::set_permissions(
            dir.path().join("boxes"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Grader { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `watertight run ARGS` from the grader's directory, with the verdict in v.json.
    fn run(&self, args: &[&str]) -> (std::process::Output, serde_json::Value) {
        let result = self.path("v.json");
        let _ = std::fs::remove_file(&result);
        let o = watertight()
            .current_dir(self.dir.path())
            .arg("run")
            .arg(format!("--result={}", result.display()))
            .args(args)
            .output()
            .unwrap();
        let v = std::fs::read_to_string(&result)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null);
        (o, v)
    }

    /// The compile step: the source in through --stdin, cc inside the sandbox (the host's
    /// read-only /usr), a.out out into the box.
    fn compile(&self) {
        let (o, v) = self.run(&[
            "--box=boxes/box",
            "--stdin=submission.c",
            "--wall-time-limit=120",
            "--",
            "/bin/sh",
            "-c",
            "cat > prog.c && cc -O1 -o a.out prog.c",
        ]);
        assert_eq!(v["status"], "OK", "{v} {}", stderr(&o));
    }
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn caller() -> (u32, u32) {
    (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    )
}

fn mounted(path: &Path) -> bool {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(needle.as_str()))
}

#[test]
fn a_grader_compiles_runs_and_reads_back_the_box() {
    if !require_root("a_grader_compiles_runs_and_reads_back_the_box")
        || !require_tools(
            "a_grader_compiles_runs_and_reads_back_the_box",
            &["cc"],
            "gcc",
        )
    {
        return;
    }
    let g = Grader::new();
    g.compile();
    let expected = g.path("expected.txt");
    let expected = expected.to_str().unwrap();
    let (o, v) = g.run(&[
        "--box=boxes/box",
        "--stdin=in.txt",
        "--stdout=out.txt",
        "--stderr=err.txt",
        "--",
        "./a.out",
        expected,
        "/box/../expected.txt",
    ]);
    let err = std::fs::read_to_string(g.path("err.txt")).unwrap();
    assert_eq!(v["status"], "OK", "{v} {} {err}", stderr(&o));
    assert!(o.stdout.is_empty() && stderr(&o).is_empty(), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(g.path("out.txt")).unwrap(),
        "HELLO BOX\n"
    );
    assert_eq!(v["output_bytes"], 10 + err.len(), "{v}");
    assert!(err.contains("cwd /box\n"), "{err}");
    assert!(
        !err.contains("READ"),
        "the program read a grader file: {err}"
    );
    assert!(err.contains(&format!("hidden {expected}")), "{err}");
    // Control: the program's own chmod took inside; watertight cleared it after the run.
    assert!(err.contains("suid-bit set"), "{err}");
    let boxed = g.path("boxes/box");
    assert_eq!(
        std::fs::read_to_string(boxed.join("result.txt")).unwrap(),
        "graded\n"
    );
    for name in ["prog.c", "a.out", "result.txt", "suid"] {
        assert_eq!(owner(&boxed.join(name)), caller(), "{name}");
    }
    assert_eq!(owner(&boxed), caller());
    assert_eq!(owner(&g.path("out.txt")), caller());
    let suid = std::fs::metadata(boxed.join("suid")).unwrap().mode() & 0o7777;
    assert_eq!(suid, 0o755, "setuid bit left on a file of the caller's");
    assert!(!mounted(&boxed), "the box is still mounted on the host");
    let id = v["sandbox_id"].as_str().unwrap();
    assert!(id.starts_with("wt-"), "{v}");
    let prefix = format!("watertight-{id}@");
    let left: Vec<_> = watertight_cgroups()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

#[test]
fn the_callers_directory_is_out_of_reach_unless_bind_cwd() {
    if !require_root("the_callers_directory_is_out_of_reach_unless_bind_cwd") {
        return;
    }
    let g = Grader::new();
    let script = "pwd; cat expected.txt; cat \"$1\"";
    let expected = g.path("expected.txt");
    let expected = expected.to_str().unwrap();
    let (o, v) = g.run(&["--", "/bin/sh", "-c", script, "sh", expected]);
    assert_eq!(v["status"], "RE", "{v}");
    assert_eq!(stdout(&o), "/tmp\n", "{}", stderr(&o));
    // Control: the same program with --bind-cwd reads it (so the test can fail).
    let (o, v) = g.run(&["--bind-cwd", "--", "/bin/sh", "-c", script, "sh", expected]);
    assert_eq!(v["status"], "OK", "{v} {}", stderr(&o));
    let cwd = std::fs::canonicalize(g.dir.path()).unwrap();
    assert_eq!(
        stdout(&o),
        format!("{}\nHELLO BOX\nHELLO BOX\n", cwd.display())
    );
}

#[test]
fn the_output_limit_holds_with_stdout_to_a_file() {
    if !require_root("the_output_limit_holds_with_stdout_to_a_file") {
        return;
    }
    let g = Grader::new();
    std::fs::write(g.path("out.txt"), "x".repeat(5000)).unwrap();
    let ino = std::fs::metadata(g.path("out.txt")).unwrap().ino();
    let (o, v) = g.run(&[
        "--stdout=out.txt",
        "--output-limit=1K",
        "--",
        "/bin/sh",
        "-c",
        "head -c 100000 /dev/zero",
    ]);
    assert_eq!(v["status"], "OL", "{v} {}", stderr(&o));
    // OL ends the sandbox: what it wrote until then is counted, past the limit.
    assert!(v["output_bytes"].as_u64().unwrap() > 1024, "{v}");
    let m = std::fs::metadata(g.path("out.txt")).unwrap();
    assert_eq!(
        (m.len(), m.ino()),
        (1024, ino),
        "truncated and written through"
    );
    assert!(o.stdout.is_empty());
    // Control: under the limit, everything arrives.
    let (_, v) = g.run(&[
        "--stdout=out.txt",
        "--",
        "/bin/sh",
        "-c",
        "head -c 1000 /dev/zero",
    ]);
    assert_eq!(v["status"], "OK", "{v}");
    assert_eq!(std::fs::metadata(g.path("out.txt")).unwrap().len(), 1000);
}

#[test]
fn bad_stream_files_and_boxes_are_one_line_and_exit_125() {
    if !require_root("bad_stream_files_and_boxes_are_one_line_and_exit_125") {
        return;
    }
    let g = Grader::new();
    std::fs::write(g.path("out.txt"), "keep").unwrap();
    let (o, v) = g.run(&["--stdin=missing.txt", "--stdout=out.txt", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125), "{o:?}");
    assert_eq!(v, serde_json::Value::Null, "no run, no verdict");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--stdin \"missing.txt\"") && err.contains("pass an existing file"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(g.path("out.txt")).unwrap(), "keep");
    // A box whose parent other users can search (the grader's world-readable directory).
    let (o, _) = g.run(&["--box=box", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125), "{o:?}");
    let err = stderr(&o);
    assert!(
        err.lines().count() == 1 && err.contains("--box \"box\"") && err.contains("chmod go-x"),
        "{err}"
    );
    // Control: a good run exits 0.
    let (o, _) = g.run(&["--stdin=in.txt", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_program_that_never_ends_ends_at_the_default_wall_limit() {
    if !require_root("a_program_that_never_ends_ends_at_the_default_wall_limit") {
        return;
    }
    let g = Grader::new();
    let (o, v) = g.run(&["--", "sleep", "infinity"]);
    assert_eq!(v["status"], "TO", "{v} {}", stderr(&o));
    assert_eq!(o.status.code(), Some(124));
    // Control: the limit is the built-in one, and `none` turns it off (a program that ends by
    // itself shows it: TO would mean a limit was still there).
    assert_eq!(v["limits"]["wall_time_s"], 10.0, "{v}");
    let (o, v) = g.run(&["--wall-time-limit=none", "--", "true"]);
    assert_eq!(v["status"], "OK", "{v} {}", stderr(&o));
    assert!(v["limits"]["wall_time_s"].is_null(), "{v}");
}
