//! Helpers shared by the `watertight` integration tests: compiled attack programs, sandbox runs
//! and their verdicts. The guards, the binary and signing come from `watertight_testkit`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

// Each test file uses its own subset of these.
#[allow(unused_imports)]
pub use watertight_testkit::{
    require, require_root, require_tools, sign_tree, stderr, stdout, watertight,
    world_readable_tempdir,
};

/// A directory (world-readable, so the sandbox's unmapped uid can use it) holding a statically
/// linked `attack` built from tests/attacks/attack.c.
pub fn attack_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_static("attack"))
}

/// A root directory for `--rootfs` (mode 0755) holding only the attack program, at /attack.
pub fn attack_rootfs() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::copy(attack_dir().join("attack"), root.path().join("attack")).unwrap();
    root
}

/// tests/attacks/NAME.c, the source of an attack program.
pub fn attack_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/attacks/{name}.c"))
}

/// Builds tests/attacks/NAME.c as a static NAME in a fresh world-readable directory under cargo's
/// per-target temp dir and returns the directory (`watertight_testkit::build_static`).
pub fn build_static(name: &str) -> PathBuf {
    watertight_testkit::build_static(&attack_source(name), Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// Whether this kernel has every integrity layer (Landlock, the BPF exec gate, memfd_noexec), as
/// `watertight manifest probe` sees them.
pub fn integrity_available() -> bool {
    let o = watertight()
        .args(["manifest", "probe", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let on = |name: &str| {
        v["layers"].as_array().is_some_and(|ls| {
            ls.iter()
                .any(|l| l["layer"] == name && l["available"] == true)
        })
    };
    on("landlock") && on("bpf_exec_gate") && on("memfd_noexec")
}

/// Runs `attack NAME ARG` in a default sandbox with extra watertight flags.
pub fn attack(name: &str, arg: &str, flags: &[&str]) -> Output {
    let dir = attack_dir();
    watertight()
        .arg("run")
        .arg(format!("--bind-ro={}:/attack", dir.display()))
        .args(flags)
        .args(["--", "/attack/attack", name, arg])
        .output()
        .unwrap()
}

/// Asserts the attack was stopped: the attack program printed DENIED and exited 0.
pub fn assert_denied(name: &str, arg: &str, o: &Output) {
    let out = stdout(o);
    assert!(
        o.status.code() == Some(0) && out.starts_with("DENIED"),
        "attack {name} {arg} was not stopped: exit {:?}, stdout {out:?}, stderr {:?}",
        o.status.code(),
        stderr(o)
    );
}

/// Runs a shell command in a default sandbox and returns the output.
pub fn sh(script: &str, flags: &[&str]) -> Output {
    watertight()
        .arg("run")
        .args(flags)
        .args(["--", "/bin/sh", "-c", script])
        .output()
        .unwrap()
}

/// The verdict JSON of a run with --result.
pub fn run_with_result(flags: &[&str], cmd: &[&str]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result.json");
    let o = watertight()
        .arg("run")
        .arg(format!("--result={}", result.display()))
        .args(flags)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&result)
        .unwrap_or_else(|_| panic!("no result file; stderr {}", stderr(&o)));
    (o, serde_json::from_str(&text).unwrap())
}

/// watertight's cgroups on this host (every hierarchy), to check nothing is left behind.
pub fn watertight_cgroups() -> Vec<PathBuf> {
    // Sandbox cgroups are `watertight-*` directories right under each hierarchy's root (and a
    // leftover `watertight` directory of any kind counts too).
    let mut v = Vec::new();
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return v;
    };
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup")];
    dirs.extend(roots.flatten().map(|r| r.path()).filter(|p| p.is_dir()));
    for d in dirs {
        if let Ok(entries) = std::fs::read_dir(&d) {
            v.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("watertight"))
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.path()),
            );
        }
    }
    v.sort();
    v
}
