//! `watertight run --isolation vm` (crates/vm): real QEMU microvm guests booting the Debian
//! kernel that scripts/vm-kernel.sh caches, under TCG on this project's CI machine (nested KVM
//! does not run guests there) and KVM where it does. Each boot takes seconds under TCG, so the
//! guests here are few and one at a time (`BOOT`): a hello world with the isolation checks, a
//! non-zero exit, a memory hog. The bad-input cases boot nothing.

mod common;

use std::path::Path;
use std::sync::Mutex;

use common::{require, require_root, require_tools, run_with_result, stderr, stdout, watertight};

/// One guest at a time: parallel TCG boots on two cores would only slow each other.
static BOOT: Mutex<()> = Mutex::new(());

/// The kernel cache the VM tier reads (scripts/vm-kernel.sh fills it; install-deps runs it).
fn kernel_cache_ready() -> Option<String> {
    let cache = std::env::var_os("WATERTIGHT_VM_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/cache/watertight-vm".into());
    (!cache.join("current").is_file()).then(|| {
        format!(
            "no guest kernel in {}: run scripts/vm-kernel.sh (scripts/install-deps.sh does)",
            cache.display()
        )
    })
}

/// Root, QEMU and the cached kernel, or a skip (a failure in CI).
fn can_boot(test: &str) -> bool {
    require_root(test)
        && require_tools(test, &["qemu-system-x86_64"], "qemu-system-x86")
        && require(test, kernel_cache_ready())
}

/// What a VM run leaves nowhere: QEMU's cgroups and the run directories.
fn assert_nothing_left() {
    let cgroups: Vec<_> = common::watertight_cgroups()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("watertight-vm-"))
        .collect();
    assert!(cgroups.is_empty(), "QEMU cgroups left: {cgroups:?}");
    let own = "watertight-vm.";
    let dirs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(own))
        .map(|e| e.path())
        .collect();
    // Another test binary's VM run may be in flight; only this binary's runs are serialized,
    // so a leftover is one that no running QEMU holds.
    let held = |p: &Path| {
        std::fs::read_dir("/proc").unwrap().flatten().any(|pr| {
            std::fs::read(pr.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*p.to_string_lossy()))
        })
    };
    let left: Vec<_> = dirs.iter().filter(|d| !held(d)).collect();
    assert!(left.is_empty(), "run directories left: {left:?}");
}

#[test]
fn hello_world_runs_in_a_guest_that_sees_neither_host_processes_nor_host_files() {
    let test = "hello_world_runs_in_a_guest";
    if !can_boot(test) {
        return;
    }
    let _boot = BOOT.lock().unwrap_or_else(|e| e.into_inner());
    // A host file outside what the guest shares with the host (its /tmp is its own) and a host
    // process with a name to look for.
    let marker = tempfile::Builder::new()
        .prefix("wt-vm-marker.")
        .tempfile_in("/tmp")
        .unwrap();
    let mut host_sleeper = std::process::Command::new("sleep")
        .arg("600.424242")
        .spawn()
        .unwrap();
    // A host file only root may read, in a directory the guest is shown: QEMU serves the
    // shared root as a uid of its own (no account's), so the guest cannot read it, whatever its
    // own uid.
    // Not under /tmp: the guest mounts its own /tmp (and /run, /dev, /proc, /sys) over the
    // host's.
    let shown = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(
        shown.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let secret = shown.path().join("secret");
    std::fs::write(&secret, "host-secret\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let script = format!(
        "echo hello; uname -r; \
         for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done | grep -c '600[.]424242'; \
         test -e {} && echo HOST-TMP-VISIBLE; cat /shown/secret 2>/dev/null; exit 0",
        marker.path().display()
    );
    let bind = format!("--bind-ro={}:/shown", shown.path().display());
    let (o, v) = run_with_result(&["--isolation=vm", &bind], &["/bin/sh", "-c", &script]);
    let _ = host_sleeper.kill();
    let _ = host_sleeper.wait();
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(v["status"], "OK", "verdict {v}; stderr {}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(lines.first(), Some(&"hello"), "stdout {out:?}");
    assert_eq!(v["isolation"], "vm");
    let accel = v["accelerator"].as_str().unwrap();
    assert!(accel == "tcg" || accel == "kvm", "{v}");
    assert!(v["boot_s"].as_f64().is_some_and(|b| b > 0.0), "{v}");
    // Its own kernel: the guest's release, not the host's.
    let host_release = nix::sys::utsname::uname().unwrap();
    let host_release = host_release.release().to_string_lossy();
    assert_eq!(lines.get(1).copied(), v["guest_kernel"].as_str(), "{out:?}");
    assert_ne!(lines.get(1).copied(), Some(&*host_release));
    // No host process in the guest's /proc: grep -c counts 0 (and exits 1: the `;` goes on).
    assert_eq!(
        lines.get(2),
        Some(&"0"),
        "the host's sleep is visible: {out:?}"
    );
    assert!(!out.contains("HOST-TMP-VISIBLE"), "{out:?}");
    assert!(
        !out.contains("host-secret"),
        "a root-only host file was read: {out:?}"
    );
    println!(
        "vm hello: accelerator {accel}, guest boot {} s, VM wall {} s",
        v["boot_s"], v["vm_wall_time_s"]
    );
    drop(marker);
    assert_nothing_left();
}

#[test]
fn a_non_zero_exit_is_re_with_the_programs_code() {
    if !can_boot("a_non_zero_exit_is_re") {
        return;
    }
    let _boot = BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let (o, v) = run_with_result(&["--isolation=vm"], &["/bin/sh", "-c", "exit 3"]);
    assert_eq!(v["status"], "RE", "verdict {v}; stderr {}", stderr(&o));
    assert_eq!(v["exit_code"], 3);
    assert_eq!(o.status.code(), Some(3));
    assert_nothing_left();
}

#[test]
fn stdin_stdout_and_stderr_files_cross_the_vm_boundary() {
    if !can_boot("stdin_stdout_and_stderr_files_cross_the_vm_boundary") {
        return;
    }
    // Root's own 0600 files in a 0700 directory: the input reaches the guest by the copy in the
    // job share, not through the root share (which QEMU reads as a uid of its own).
    let dir = tempfile::tempdir().unwrap();
    let (input, out, err) = (
        dir.path().join("in.txt"),
        dir.path().join("out.txt"),
        dir.path().join("err.txt"),
    );
    std::fs::write(&input, "41\n").unwrap();
    std::fs::write(&out, "stale output that must go\n").unwrap();
    for f in [&input, &out] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let _boot = BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let (o, v) = run_with_result(
        &[
            "--isolation=vm",
            &format!("--stdin={}", input.display()),
            &format!("--stdout={}", out.display()),
            &format!("--stderr={}", err.display()),
        ],
        &[
            "/bin/sh",
            "-c",
            "read a; echo $((a + 1)); echo to-stderr >&2",
        ],
    );
    assert_eq!(v["status"], "OK", "verdict {v}; stderr {}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "42\n");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "to-stderr\n");
    assert_eq!(stdout(&o), "", "the program's stdout went to the caller's");
    // An unreadable --stdin is refused before any guest boots, naming the flag.
    let o = watertight()
        .args([
            "run",
            "--isolation=vm",
            "--stdin=/nonexistent/in.txt",
            "--",
            "/bin/true",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("stdin"), "{}", stderr(&o));
    assert_nothing_left();
}

#[test]
fn the_guest_sandboxs_event_log_and_secrets_cross_the_boundary() {
    if !can_boot("the_guest_sandboxs_event_log_and_secrets_cross_the_boundary") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    // Appended to, as by the namespace tier: an earlier line stays.
    std::fs::write(&events, "{\"kind\":\"earlier\"}\n").unwrap();
    // A root-only secret, shown at /run/secrets/NAME in the guest's sandbox.
    let secret = dir.path().join("token");
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let _boot = BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let (o, v) = run_with_result(
        &[
            "--isolation=vm",
            &format!("--events={}", events.display()),
            &format!("--secret=token={}", secret.display()),
        ],
        &[
            "/bin/sh",
            "-c",
            "cat /run/secrets/token; /usr/bin/unshare -U /bin/true 2>/dev/null; exit 0",
        ],
    );
    assert_eq!(v["isolation"], "vm", "verdict {v}; stderr {}", stderr(&o));
    assert_eq!(stdout(&o), "s3cret\n", "verdict {v}; stderr {}", stderr(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "earlier");
    let denied = lines
        .iter()
        .find(|e| e["kind"] == "syscall_denied")
        .unwrap_or_else(|| panic!("no syscall_denied event in {lines:?}; verdict {v}"));
    assert_eq!(denied["syscall"], "unshare", "{denied}");
    assert_nothing_left();
}

#[test]
fn a_memory_hog_is_ml() {
    if !can_boot("a_memory_hog_is_ml") {
        return;
    }
    let dir = common::attack_dir();
    let _boot = BOOT.lock().unwrap_or_else(|e| e.into_inner());
    // --bind-ro names a host path, which the guest reaches through its read-only root. 256 MiB:
    // past the 64M limit, and within the guest's RAM (the limit plus ~330 MiB here), so the
    // guest kernel's overcommit check lets malloc succeed and the cgroup does the stopping.
    let (o, v) = run_with_result(
        &[
            "--isolation=vm",
            "--memory-limit=64M",
            &format!("--bind-ro={}:/attack", dir.display()),
        ],
        &["/attack/attack", "hog", "256"],
    );
    assert_eq!(v["status"], "ML", "verdict {v}; stderr {}", stderr(&o));
    assert_eq!(v["oom_killed"], true);
    assert_eq!(o.status.code(), Some(137));
    assert_nothing_left();
}

#[test]
fn no_kernel_or_no_qemu_is_one_line_and_exit_125() {
    let empty = tempfile::tempdir().unwrap();
    let o = watertight()
        .env("WATERTIGHT_VM_CACHE", empty.path())
        .args(["run", "--isolation=vm", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("scripts/vm-kernel.sh"), "{err}");

    // PATH without QEMU (watertight is started by its full path).
    let o = watertight()
        .env("PATH", empty.path())
        .args(["run", "--isolation=vm", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("qemu-system-x86"), "{err}");
}

#[test]
fn flags_the_guest_cannot_honour_are_refused() {
    let o = watertight()
        .args(["run", "--isolation=vm", "--bind=/etc:/x", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("--bind") && err.contains("--isolation vm"),
        "{err}"
    );
}
