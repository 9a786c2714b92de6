//! Helpers shared by watertight's tests (a `[dev-dependencies]` entry only; never published).
//!
//! The guards decide whether a test whose prerequisite is missing skips or fails:
//!
//! | prerequisite | missing, by default | missing, in CI |
//! |---|---|---|
//! | root ([`require_root`]) | one `SKIP` line, the test returns | fails when `WATERTIGHT_REQUIRE_ROOT=1` |
//! | `../shared` data ([`require_shared`]) | one `SKIP` line | fails when `CI` is set |
//! | a tool `scripts/install-deps.sh` installs ([`require_tools`], [`require`]) | one `SKIP` line | fails when `CI` is set |
//! | a property of the host no install changes ([`host_lacks`]) | one `SKIP` line | one `SKIP` line |
//!
//! A `SKIP` line goes straight to stderr (libtest captures only `eprintln!`, so a passing test's
//! skip would be silent), and when the test binary ends it prints how many of its tests skipped
//! and why, after libtest's own `test result` line, so a plain `cargo test` shows what did not
//! run.
//!
//! `.ci/run` runs under `CI=true` and sets `WATERTIGHT_REQUIRE_ROOT=1` for the test step, so a
//! green CI means the root-only tests ran rather than skipped. The rest: the `watertight` binary
//! ([`watertight`]), world-readable scratch directories ([`world_readable_tempdir`]), C attack
//! programs ([`build_static`], [`compile_c`]), signed test trees ([`sign_tree`]) and byte-level
//! mutation for fuzzing parsers ([`mutate`]).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Set to `1` to make every root-only test fail, instead of skipping, when not run as root.
pub const REQUIRE_ROOT_VAR: &str = "WATERTIGHT_REQUIRE_ROOT";

/// Whether this process runs with effective uid 0 (read from /proc, so no unsafe geteuid call).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                == Some("0")
        })
        .unwrap_or(false)
}

/// Whether the tests run in CI: `CI` set to anything but empty, `0` or `false` (`.ci/run` runs
/// under `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Whether root-only tests must run: `WATERTIGHT_REQUIRE_ROOT=1`.
pub fn root_required() -> bool {
    std::env::var(REQUIRE_ROOT_VAR).is_ok_and(|v| v.trim() == "1")
}

/// The guard of a root-only test: true when this process is root. Otherwise prints one
/// `SKIP <test>: needs root` line and returns false (the test returns early), or panics when
/// `WATERTIGHT_REQUIRE_ROOT=1`, so CI cannot pass by skipping.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if root_required() {
        panic!(
            "{test}: needs root, and {REQUIRE_ROOT_VAR}=1 says root-only tests must run: run the \
             tests as root, or unset {REQUIRE_ROOT_VAR} to skip them"
        );
    }
    skip(
        test,
        &format!("needs root (set {REQUIRE_ROOT_VAR}=1 to make this a failure)"),
    );
    false
}

/// The guard for any prerequisite the project's setup provides (`scripts/install-deps.sh`, the
/// `../shared` data): `missing` is None when it is there, or the reason with its fix. True when
/// nothing is missing; otherwise one `SKIP` line and false, or a panic in CI ([`in_ci`]).
pub fn require(test: &str, missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    if in_ci() {
        panic!("{test}: {reason} (CI is set, so a missing prerequisite is a failure, not a skip)");
    }
    skip(test, &reason);
    false
}

/// Whether `tool` is an executable file in one of PATH's directories.
pub fn have_tool(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// [`require`] for tools on PATH: `package` names the Debian package(s) that bring them (all of
/// them are in `scripts/install-deps.sh`).
pub fn require_tools(test: &str, tools: &[&str], package: &str) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have_tool(t)).collect();
    require(
        test,
        (!missing.is_empty()).then(|| {
            format!(
                "needs {} (apt-get install {package}, or scripts/install-deps.sh)",
                missing.join(", ")
            )
        }),
    )
}

/// A skip for a property of the host that no install changes (a kernel without IA32 emulation,
/// no cgroup v1 hierarchy): one `SKIP` line, in CI too.
pub fn host_lacks(test: &str, reason: &str) {
    skip(test, reason);
}

/// The skips of this test binary, printed when it ends ([`print_skipped`]).
static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// One `SKIP` line now, past libtest's capture, and one entry in the summary at exit.
fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIP {test}: {reason}");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // Registered once, on the first skip; a binary with none prints nothing.
        let _ = watertight_sys::process::at_exit(print_skipped);
    }
    skipped.push(line);
}

/// At exit: how many of this binary's tests skipped, and why.
extern "C" fn print_skipped() {
    use std::io::Write;
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\n{} test(s) of {} did not run (skipped, counted as passed):",
        skipped.len(),
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "this test binary".into()),
    );
    for line in skipped.iter() {
        let _ = writeln!(err, "  {line}");
    }
}

/// The `shared/` folder beside the checkout (`../shared` from the workspace root), where the
/// large test data lives: the kernel CNA's CVE records, the Pod Security conformance fixtures.
/// CI has a copy of it beside its clone.
pub fn shared_dir() -> PathBuf {
    // This crate is crates/testkit: three levels up is the folder that holds the checkout.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// `shared_dir()/rel` when it exists. Otherwise one `SKIP` line and None (the test returns), or
/// a panic in CI: a test that needs the shared data must not pass without it there.
pub fn require_shared(test: &str, rel: &str) -> Option<PathBuf> {
    let path = shared_dir().join(rel);
    let present = path.exists();
    require(
        test,
        (!present).then(|| {
            format!(
                "{} is absent (the shared/ folder beside the checkout holds it)",
                path.display()
            )
        }),
    )
    .then_some(path)
}

/// The name of the running test: libtest runs each test on a thread named after it.
pub fn this_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string()
}

/// The `watertight` binary cargo built for the integration tests (`CARGO_BIN_EXE_watertight`,
/// which cargo sets when it runs them; beside the test binary's `deps/` folder otherwise).
pub fn watertight_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CARGO_BIN_EXE_watertight") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("watertight"))
        .expect("the test binary lies in <target>/<profile>/deps/")
}

/// A `watertight` command, ready for arguments.
pub fn watertight() -> Command {
    Command::new(watertight_bin())
}

/// Stdout of a finished command, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr of a finished command, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stdout of a finished command as JSON; panics with both streams when it is not.
pub fn stdout_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(o), stderr(o)))
}

/// A fresh temporary directory with mode 0755, so that a sandbox's unmapped uid can read what a
/// test puts there (tempfile makes them 0700). Removed on drop.
pub fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod 0755 on a temporary directory");
    dir
}

/// Compiles the C file `src` with `cc -O1 FLAGS -o out src`, panicking with the compiler's
/// output when it fails.
pub fn compile_c(src: &Path, out: &Path, flags: &[&str]) {
    let o = Command::new("cc")
        .arg("-O1")
        .args(flags)
        .arg("-o")
        .arg(out)
        .arg(src)
        .output()
        .expect("a C compiler (cc, from gcc) is needed to build the attack programs");
    assert!(
        o.status.success(),
        "cc {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Builds `src` (tests/attacks/NAME.c) into a fresh world-readable directory under `tmp` as a
/// static NAME and returns the directory. `tmp` is cargo's per-target temp dir
/// (`CARGO_TARGET_TMPDIR`, not /tmp), one directory per test process, so nothing accumulates on
/// the machine: the leftovers of earlier test processes are removed first.
pub fn build_static(src: &Path, tmp: &Path) -> PathBuf {
    let name = src
        .file_stem()
        .and_then(OsStr::to_str)
        .expect("a C source named NAME.c");
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
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    compile_c(src, &dir.join(name), &["-static"]);
    dir
}

/// Signs the tree at `root` with a fresh key made in `dir`: returns (manifest, public key), as
/// `watertight run --manifest M --pubkey K` takes them.
pub fn sign_tree(dir: &Path, root: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("release.key");
    let wt = |args: &[&OsStr]| {
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

/// Applies byte-level edits to a fuzzing sample: each `(position, operation, value)` overwrites,
/// inserts, deletes or truncates at `position` modulo the length (operation modulo 4).
pub fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, op, val) in edits {
        if bytes.is_empty() {
            bytes.push(val);
            continue;
        }
        let i = pos % bytes.len();
        match op % 4 {
            0 => bytes[i] = val,
            1 => bytes.insert(i, val),
            2 => {
                bytes.remove(i);
            }
            _ => bytes.truncate(i),
        }
    }
    bytes
}

/// The guard of a test that compiles BPF C: clang and libbpf's headers (`bpf/bpf_helpers.h`),
/// both from `scripts/install-deps.sh`. True when both are there; otherwise [`require`]'s SKIP
/// line (a failure in CI).
pub fn require_bpf_toolchain(test: &str) -> bool {
    require_tools(test, &["clang"], "clang libbpf-dev")
        && require(
            test,
            (!Path::new("/usr/include/bpf/bpf_helpers.h").exists())
                .then(|| "needs libbpf's headers (apt-get install libbpf-dev)".into()),
        )
}

/// Compiles the BPF C file `src` into the object `out` as libbpf expects it (`clang -g -O2
/// -target bpf`: BTF for `.maps`, the host's multiarch include directory for `asm/types.h`),
/// panicking with clang's output when it fails.
pub fn compile_bpf(src: &Path, out: &Path) {
    let o = Command::new("clang")
        .args([
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-I/usr/include/x86_64-linux-gnu",
            "-c",
        ])
        .arg(src)
        .arg("-o")
        .arg(out)
        .output()
        .expect("clang (scripts/install-deps.sh) compiles the BPF test programs");
    assert!(
        o.status.success(),
        "clang {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `severity rule[namespace]` of each entry of a findings-shaped JSON list (a report's
/// `findings` or `accepted`): the set a test pins, whatever the messages say. Not a list: empty.
pub fn finding_keys(list: &serde_json::Value) -> std::collections::BTreeSet<String> {
    list.as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let ns = f["namespace"]
                .as_str()
                .map(|n| format!("[{n}]"))
                .unwrap_or_default();
            format!(
                "{} {}{ns}",
                f["severity"].as_str().unwrap_or("?"),
                f["rule"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// `watertight audit k8s --format json --pss-level baseline EXTRA... PATH`: its exit code and
/// JSON report (a panic naming stderr when the report is not JSON). The shipped manifests'
/// tests pin what it finds and accepts.
pub fn audit_k8s_json(path: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = watertight()
        .args([
            "audit",
            "k8s",
            "--format",
            "json",
            "--pss-level",
            "baseline",
        ])
        .args(extra)
        .arg(path)
        .output()
        .expect("run watertight");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutate_applies_each_operation() {
        let sample = b"abcd".to_vec();
        assert_eq!(mutate(sample.clone(), &[(1, 0, b'X')]), b"aXcd");
        assert_eq!(mutate(sample.clone(), &[(1, 1, b'X')]), b"aXbcd");
        assert_eq!(mutate(sample.clone(), &[(5, 2, 0)]), b"acd");
        assert_eq!(mutate(sample, &[(2, 3, 0)]), b"ab");
        assert_eq!(mutate(Vec::new(), &[(0, 0, b'Y')]), b"Y");
    }

    #[test]
    fn tools_are_found_on_path() {
        assert!(have_tool("sh"));
        assert!(!have_tool("no-such-tool-watertight"));
    }
}
