//! Exec-gate cost on the real kernel (root): per exec inside the gated cgroup, per exec outside
//! it, and per syscall elsewhere on the host, each with the gate attached vs not.
//!
//!   cargo bench -p watertight-integrity --bench exec_overhead
//!
//! Method: a verified `sh` loop execs a verified `true` N times (fork+exec+exit each), timed
//! with and without the gate, inside and outside the cgroup; `dd bs=1` makes 2 syscalls per byte
//! outside the cgroup (the sys_enter program runs on every syscall on the host). Best of 5.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use watertight_integrity::{verify_tree, ExecGate, Manifest, SigningKey};

const EXECS: u32 = 1000;
const DD_BYTES: u32 = 1_000_000;

fn copy_exec(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Cgroup(PathBuf);
impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn best_of(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().unwrap()
}

fn exec_loop(tree: &Path, cgroup: Option<&Path>) -> Duration {
    let script = format!(
        "{}i=0; while [ $i -lt {EXECS} ]; do {}/bin/true; i=$((i+1)); done",
        cgroup
            .map(|c| format!("echo $$ > {}/cgroup.procs; ", c.display()))
            .unwrap_or_default(),
        tree.display()
    );
    let start = Instant::now();
    let status = Command::new(tree.join("bin/sh"))
        .args(["-c", &script])
        .env("LD_LIBRARY_PATH", tree.join("lib"))
        .status()
        .unwrap();
    assert!(status.success(), "exec loop failed: {status:?}");
    start.elapsed()
}

fn dd_syscalls() -> Duration {
    let start = Instant::now();
    let status = Command::new("dd")
        .args([
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1",
            &format!("count={DD_BYTES}"),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    start.elapsed()
}

fn main() {
    // `cargo test --all-targets` runs bench targets without `--bench`: measure only on request.
    if !std::env::args().any(|a| a == "--bench") {
        println!("exec_overhead: measures only under `cargo bench` (skipped in test mode)");
        return;
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root || !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        eprintln!("SKIP exec_overhead: needs root and cgroup2 at /sys/fs/cgroup/unified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    copy_exec(Path::new("/usr/bin/true"), &tree.join("bin/true"));
    copy_exec(
        &std::fs::canonicalize("/bin/sh").unwrap(),
        &tree.join("bin/sh"),
    );
    copy_exec(
        &std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap(),
        &tree.join("lib/libc.so.6"),
    );
    let key = SigningKey::from_seed([42; 32]);
    let signed = Manifest::create(&tree, &key).unwrap();
    let verified = verify_tree(&tree, &signed, &key.verifying_key()).unwrap();

    let cg = Cgroup(PathBuf::from(format!(
        "/sys/fs/cgroup/unified/wt-bench-{}",
        std::process::id()
    )));
    std::fs::create_dir(&cg.0).unwrap();
    let id = std::fs::metadata(&cg.0).unwrap().ino();

    let measure = || {
        (
            best_of(5, || exec_loop(&tree, Some(&cg.0))),
            best_of(5, || exec_loop(&tree, None)),
            best_of(5, dd_syscalls),
        )
    };
    let (in_off, out_off, dd_off) = measure();
    let start = Instant::now();
    let mut gate = ExecGate::attach(id, &verified).unwrap();
    let attach = start.elapsed();
    let (in_on, out_on, dd_on) = measure();
    let events = gate.poll_events();
    assert!(
        events.is_empty(),
        "verified loop must not be refused: {events:?}"
    );
    drop(gate);

    let per = |d: Duration, n: u32| d.as_secs_f64() * 1e9 / f64::from(n);
    let row = |name: &str, off: Duration, on: Duration, n: u32, unit: &str| {
        println!(
            "{name:<34} {:>9.0} ns -> {:>9.0} ns  (+{:>6.0} ns {unit}, x{:.3})",
            per(off, n),
            per(on, n),
            per(on, n) - per(off, n),
            on.as_secs_f64() / off.as_secs_f64()
        );
    };
    println!(
        "gate attach (load + verify keys + attach): {:.1} ms for {} files",
        attach.as_secs_f64() * 1e3,
        verified.files.len()
    );
    row(
        "fork+exec in the gated cgroup",
        in_off,
        in_on,
        EXECS,
        "per exec",
    );
    row(
        "fork+exec outside the cgroup",
        out_off,
        out_on,
        EXECS,
        "per exec",
    );
    row(
        "syscall outside (dd bs=1)",
        dd_off,
        dd_on,
        DD_BYTES * 2,
        "per syscall",
    );
}
