//! Helpers shared by the `watertight run` integration tests: the binary, a compiled attack
//! program, and skip rules (these tests need root and a C compiler).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn watertight() -> Command {
    Command::new(env!("CARGO_BIN_EXE_watertight"))
}

/// None (with a printed reason) when the sandbox cannot run here.
pub fn can_run(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {test}: needs root (watertight run creates cgroups and id maps)");
        return false;
    }
    true
}

/// A directory (world-readable, so the sandbox's unmapped uid can use it) holding a statically
/// linked `attack` built from tests/attacks/attack.c.
pub fn attack_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_static("attack"))
}

/// Builds tests/attacks/NAME.c into a fresh world-readable directory as a static NAME and returns
/// the directory: under cargo's per-target temp dir (not /tmp), one per test binary, so nothing
/// accumulates on the machine; leftovers of earlier test binaries are removed first.
pub fn build_static(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let prefix = format!("{name}-");
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for e in entries.flatten() {
            let entry = e.file_name().to_string_lossy().into_owned();
            let owner_gone = entry
                .strip_prefix(&prefix)
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if owner_gone {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/attacks/{name}.c"));
    let out = Command::new("cc")
        .args(["-O1", "-static", "-o"])
        .arg(dir.join(name))
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is needed to build the attack programs");
    assert!(
        out.status.success(),
        "cc {name}.c failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Signs the tree at `root` with a fresh key made in `dir`: returns (manifest, public key), as
/// `watertight run --manifest M --pubkey K` takes them.
pub fn sign_tree(dir: &Path, root: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("release.key");
    let wt = |args: &[&std::ffi::OsStr]| {
        let o = watertight().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    wt(&[
        "key".as_ref(),
        "generate".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
    ]);
    let manifest = dir.join("rootfs.manifest");
    wt(&[
        "manifest".as_ref(),
        "create".as_ref(),
        root.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "--out".as_ref(),
        manifest.as_os_str(),
    ]);
    (manifest, PathBuf::from(format!("{}.pub", key.display())))
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

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
