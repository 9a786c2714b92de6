//! Regression tests of the first attack review of `watertight run`: each runs the attack in a
//! real sandbox and fails on the code before the fix.

mod common;
use common::*;

/// The escape: a program interrupts its own violation-class calls with signals so that their
/// notifications vanish between the supervisor's poll and its receive. The supervisor used to
/// close its listener then; the calls failed with ENOSYS from then on, and the program stacked a
/// listener of its own that answered CONTINUE to unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET).
/// Deny mode lost within a few tries.
#[test]
fn notification_race_cannot_stack_a_listener_in_deny_mode() {
    if !require_root("notification_race_cannot_stack_a_listener_in_deny_mode") {
        return;
    }
    let o = attack("notify_race", "3", &["--on-violation=deny"]);
    let out = stdout(&o);
    assert!(
        !out.contains("ALLOWED"),
        "the race escaped the seccomp layer: {out} {}",
        stderr(&o)
    );
    // Either the program ran to the end (every call refused, stacking refused) or the supervisor
    // ended it for too many violations.
    assert!(
        (o.status.code() == Some(0) && out.starts_with("DENIED")) || o.status.code() == Some(159),
        "exit {:?}, stdout {out:?}, stderr {:?}",
        o.status.code(),
        stderr(&o)
    );
}

/// Kill mode lost the same race in about a third of the runs: twenty runs in a row must all end
/// as a security violation, none with the program reporting an escape.
#[test]
fn notification_race_never_escapes_kill_mode() {
    if !require_root("notification_race_never_escapes_kill_mode") {
        return;
    }
    for run in 0..20 {
        let o = attack("notify_race", "1", &["--on-violation=kill"]);
        assert!(
            !stdout(&o).contains("ALLOWED"),
            "run {run}: the race escaped the seccomp layer: {}",
            stdout(&o)
        );
        assert_eq!(o.status.code(), Some(159), "run {run}: {}", stderr(&o));
    }
}

/// Forensic mode: the caught task must still be frozen and captured (a killable wait would keep
/// the freezer from ever reaching FROZEN), and a withdrawn notification still counts.
#[test]
fn notification_race_never_escapes_forensic_mode() {
    if !require_root("notification_race_never_escapes_forensic_mode") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let evidence = scratch.path().join("evidence");
    let key = scratch.path().join("evidence.key");
    for run in 0..5 {
        let o = attack(
            "notify_race",
            "1",
            &[
                "--on-violation=forensic",
                &format!("--evidence-dir={}", evidence.display()),
                &format!("--evidence-key={}", key.display()),
            ],
        );
        assert!(
            !stdout(&o).contains("ALLOWED"),
            "run {run}: the race escaped the seccomp layer: {}",
            stdout(&o)
        );
        assert_eq!(o.status.code(), Some(159), "run {run}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("evidence in"),
            "run {run}: no evidence captured: {}",
            stderr(&o)
        );
    }
}

/// Every AIO context counts against the host-wide fs.aio-max-nr: one sandbox could take it all
/// and leave every other sandbox and host process with EAGAIN. io_setup answers ENOSYS.
#[test]
fn aio_contexts_are_refused() {
    if !require_root("aio_contexts_are_refused") {
        return;
    }
    let o = attack("io_setup", "", &[]);
    assert_denied("io_setup", "", &o);
    assert!(
        stdout(&o).contains("Function not implemented"),
        "{}",
        stdout(&o)
    );
}

/// Kernel memory charged to the cgroup (pipe buffers) counts in no task's RSS, so the OOM killer
/// picks the biggest task: the reaper. The verdict was XX ("ended without reporting"); an OOM
/// kill of any task in the sandbox is ML.
#[test]
fn oom_kill_of_the_reaper_is_ml() {
    if !require_root("oom_kill_of_the_reaper_is_ml") {
        return;
    }
    let (o, v) = run_with_result(
        &[
            "--memory-limit=32M",
            &format!("--bind-ro={}:/attack", attack_dir().display()),
        ],
        &["/attack/attack", "pipefill"],
    );
    assert_eq!(v["status"], "ML", "{v} {}", stderr(&o));
    assert_eq!(v["oom_killed"], true, "{v}");
    assert_eq!(o.status.code(), Some(137));
}

/// TO and OL come from what the supervisor measured, never from a signal the program raised at
/// itself: a self-sent SIGXCPU or SIGXFSZ is SG.
#[test]
fn self_raised_limit_signals_are_not_limit_verdicts() {
    if !require_root("self_raised_limit_signals_are_not_limit_verdicts") {
        return;
    }
    for (sig, name) in [(24, "SIGXCPU"), (25, "SIGXFSZ")] {
        let (o, v) = run_with_result(
            &[
                "--time-limit=5",
                &format!("--bind-ro={}:/attack", attack_dir().display()),
            ],
            &["/attack/attack", "raise", &sig.to_string()],
        );
        assert_eq!(v["status"], "SG", "{name}: {v} {}", stderr(&o));
        assert_eq!(v["signal"], sig, "{name}: {v}");
    }
}

/// A real CPU-time overrun is still TO (the supervisor's measurement, not the signal).
#[test]
fn a_real_cpu_overrun_is_still_to() {
    if !require_root("a_real_cpu_overrun_is_still_to") {
        return;
    }
    let (_, v) = run_with_result(
        &[
            "--time-limit=0.3",
            &format!("--bind-ro={}:/attack", attack_dir().display()),
        ],
        &["/attack/attack", "spin"],
    );
    assert_eq!(v["status"], "TO", "{v}");
}

/// With the default exit codes the program's own 159 reads like a security violation; with
/// --exit-codes verdict no exit of the program can produce a code of a sandbox decision.
#[test]
fn verdict_exit_codes_cannot_be_forged_by_the_program() {
    if !require_root("verdict_exit_codes_cannot_be_forged_by_the_program") {
        return;
    }
    let bind = format!("--bind-ro={}:/attack", attack_dir().display());
    for code in ["159", "125", "124", "137", "6"] {
        let (o, v) = run_with_result(
            &[&bind, "--exit-codes=verdict"],
            &["/attack/attack", "exit", code],
        );
        assert_eq!(v["status"], "RE", "{v}");
        assert_eq!(o.status.code(), Some(1), "program exit {code}");
    }
    let (o, v) = run_with_result(
        &[&bind, "--exit-codes=verdict", "--on-violation=kill"],
        &["/attack/attack", "mount"],
    );
    assert_eq!(v["status"], "SV", "{v}");
    assert_eq!(o.status.code(), Some(6));
    let o = watertight()
        .args(["run", "--exit-codes=verdict", "--", "/no/such/program"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
}

/// The audit login uid of a task started without one may be set once without privilege: the
/// program could choose whom the host's audit log blames. pid 1 fixes it before the program runs.
#[test]
fn login_uid_cannot_be_chosen_by_the_program() {
    if !require_root("login_uid_cannot_be_chosen_by_the_program") {
        return;
    }
    // The sandbox inherits this test's login uid. Unset (a process under an init system, as
    // here and in CI), the program could set it; set, the kernel already refuses a change.
    let o = sh(
        "echo 0 > /proc/self/loginuid 2>/dev/null && echo CHANGED; cat /proc/self/loginuid",
        &[],
    );
    let out = stdout(&o);
    let own = std::fs::read_to_string("/proc/self/loginuid").unwrap_or_default();
    if own.trim() == "4294967295" {
        assert!(
            !out.contains("CHANGED"),
            "the program set its login uid: {out}"
        );
        assert_eq!(out.trim(), "0", "pinned to the sandbox uid: {out}");
    } else {
        assert!(!out.contains("CHANGED"), "{out}");
        assert_eq!(out.trim(), own.trim(), "inherited from the caller: {out}");
    }
}

/// Host-wide counters and identifiers are masked: each is a covert channel between sandboxes or
/// a fingerprint of the host.
#[test]
fn host_wide_views_are_masked() {
    if !require_root("host_wide_views_are_masked") {
        return;
    }
    let files = [
        "/proc/sys/kernel/random/boot_id",
        "/proc/interrupts",
        "/proc/zoneinfo",
        "/proc/iomem",
        "/proc/diskstats",
        "/proc/sys/fs/aio-nr",
        "/proc/locks",
        "/proc/vmstat",
    ];
    let script = files
        .iter()
        .map(|f| format!("printf '%s %s\\n' {f} $(wc -c < {f})"))
        .collect::<Vec<_>>()
        .join("; ")
        + "; printf 'pressure %s\\n' $(ls /proc/pressure | wc -l)";
    let o = sh(&script, &[]);
    let out = stdout(&o);
    for f in files {
        assert!(
            out.lines().any(|l| l == format!("{f} 0")),
            "{f} is readable inside: {out} {}",
            stderr(&o)
        );
    }
    assert!(out.contains("pressure 0"), "{out}");
    // Still there and readable: what ordinary programs read.
    let o = sh("head -1 /proc/meminfo; head -1 /proc/stat", &[]);
    assert!(stdout(&o).contains("MemTotal"), "{}", stdout(&o));
}

/// The kernel's pty count is host-wide (kernel.pty.max, less what the host's own devpts keeps
/// in reserve): one sandbox opened 3,071 and every other sandbox got ENOSPC. Its devpts has a
/// `max=`.
#[test]
fn ptys_are_bounded_per_sandbox() {
    if !require_root("ptys_are_bounded_per_sandbox") {
        return;
    }
    let o = attack("ptys", "64", &[]);
    assert_denied("ptys", "64", &o);
}

/// A directory (world-searchable, so the sandbox's unmapped uid may enter it) with a host unix
/// socket that accepts connections from anyone.
fn dir_with_host_socket() -> (tempfile::TempDir, std::os::unix::net::UnixListener) {
    use std::os::unix::fs::PermissionsExt;
    let dir = world_readable_tempdir();
    let sock = dir.path().join("host.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    (dir, listener)
}

fn attack_in(dir: &std::path::Path, name: &str, arg: &str, flags: &[&str]) -> std::process::Output {
    watertight()
        .current_dir(dir)
        .args(["run", "--bind-cwd"])
        .arg(format!("--bind-ro={}:/attack", attack_dir().display()))
        .args(flags)
        .args(["--", "/attack/attack", name, arg])
        .output()
        .unwrap()
}

/// The caller's working directory, bound with --bind-cwd (by default before it was opt-in): a
/// host service listening on a socket in it was reachable despite the network namespace (a read-only bind does not stop connect()).
#[test]
fn host_socket_in_the_working_directory_is_unreachable() {
    if !require_root("host_socket_in_the_working_directory_is_unreachable") {
        return;
    }
    let (dir, _listener) = dir_with_host_socket();
    let sock = dir.path().join("host.sock");
    let o = attack_in(dir.path(), "unix", sock.to_str().unwrap(), &[]);
    assert_denied("unix", "host.sock", &o);
    // Asked for: reachable.
    let o = attack_in(
        dir.path(),
        "unix",
        sock.to_str().unwrap(),
        &["--host-sockets=allow"],
    );
    assert!(stdout(&o).starts_with("ALLOWED"), "{}", stdout(&o));
}

/// The refusal is the kernel's (an idmapped bind maps no owner, so no socket in it is
/// writable): a socket the host creates under the bound tree after the sandbox started is just
/// as unreachable.
#[test]
fn host_socket_created_after_the_start_is_unreachable() {
    if !require_root("host_socket_created_after_the_start_is_unreachable") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = world_readable_tempdir();
    let sock = dir.path().join("late.sock");
    let child = watertight()
        .current_dir(dir.path())
        .args(["run", "--bind-cwd"])
        .arg(format!("--bind-ro={}:/attack", attack_dir().display()))
        .args(["--", "/attack/attack", "unix"])
        .arg(format!("{},1500", sock.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_denied("unix", "late.sock", &o);
}

/// A writable bind cannot be idmapped without losing its writes: its sockets are masked.
#[test]
fn host_socket_in_a_writable_bind_is_unreachable() {
    if !require_root("host_socket_in_a_writable_bind_is_unreachable") {
        return;
    }
    let (dir, _listener) = dir_with_host_socket();
    let o = attack(
        "unix",
        "/shared/host.sock",
        &[&format!("--bind={}:/shared", dir.path().display())],
    );
    assert_denied("unix", "/shared/host.sock", &o);
}

/// Per-user kernel counts (inotify instances, POSIX message queue bytes, queued signals) are
/// charged by the kernel to the owner of the sandbox's user namespace. Owned by root, one
/// sandbox took all 128 of root's inotify instances, its message-queue budget and its pending
/// signals, and every other sandbox and host root got EMFILE/EAGAIN. Owned by the sandbox's own
/// host uid, a sandbox exhausts only its own.
#[test]
fn per_user_kernel_counts_are_the_sandboxs_own() {
    if !require_root("per_user_kernel_counts_are_the_sandboxs_own") {
        return;
    }
    use std::io::BufRead;
    let host_attack = attack_dir().join("attack");
    // A root directory (read-only, or an overlay) used to leave the namespace root's: pid 1
    // mounted it by host paths only root may reach.
    let rootfs = tempfile::tempdir().unwrap();
    let rootfs_flag = format!("--rootfs={}", rootfs.path().display());
    let roots: [&[&str]; 3] = [&[], &[&rootfs_flag], &[&rootfs_flag, "--writable-root"]];
    for root in roots {
        for kind in ["inotify", "mqueue", "sigpending"] {
            let mut holder = watertight()
                .arg("run")
                .args(root)
                .arg(format!("--bind-ro={}:/attack", attack_dir().display()))
                .args(["--", "/attack/attack", "hold", kind])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufReader::new(holder.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(line.starts_with("HOLDING"), "{root:?} {kind}: {line}");
            // While the first sandbox holds all it may: another sandbox and host root still get one.
            let other = attack("grab", kind, root);
            let host = std::process::Command::new(&host_attack)
                .args(["grab", kind])
                .output()
                .unwrap();
            let _ = holder.kill();
            let _ = holder.wait();
            assert!(
                stdout(&other).starts_with("ALLOWED"),
                "{root:?} {kind}: a second sandbox was starved ({line}): {}",
                stdout(&other)
            );
            assert!(
                stdout(&host).starts_with("ALLOWED"),
                "{root:?} {kind}: host root was starved ({line}): {}",
                stdout(&host)
            );
        }
    }
}

/// The binds and the user namespace's owner moved around: a root directory (`--rootfs`) under a
/// directory only root may enter (a tempdir is 0700) must still be mounted, because pid 1 opens
/// its entries before it takes the sandbox's uid.
#[test]
fn rootfs_under_a_root_only_directory_runs() {
    if !require_root("rootfs_under_a_root_only_directory_runs") {
        return;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let missing = busybox
        .is_none()
        .then(|| "needs busybox (apt-get install busybox-static)".into());
    if !require("rootfs_under_a_root_only_directory_runs", missing) {
        return;
    }
    let busybox = busybox.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    // Read-only (each entry bound) and writable (an overlay over the whole directory).
    for extra in [None, Some("--writable-root")] {
        let o = watertight()
            .arg("run")
            .arg(format!("--rootfs={}", rootfs.display()))
            .args(extra)
            .args([
                "--",
                "/bin/busybox",
                "sh",
                "-c",
                "echo inside > /made; cat /made",
            ])
            .output()
            .unwrap();
        let expected = if extra.is_some() { "inside" } else { "" };
        assert_eq!(stdout(&o).trim(), expected, "{extra:?}: {}", stderr(&o));
    }
    assert!(
        !rootfs.join("made").exists(),
        "the overlay wrote through to its lower layer"
    );
}
