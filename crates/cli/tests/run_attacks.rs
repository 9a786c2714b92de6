//! Real attack programs inside real sandboxes: each must fail. Needs root and `cc`.

mod common;
use common::*;

#[test]
fn dangerous_syscalls_are_refused() {
    if !require_root("dangerous_syscalls_are_refused") {
        return;
    }
    let names = [
        "mount",
        "umount",
        "pivot_root",
        "chroot",
        "unshare",
        "unshare_mount",
        "setns",
        "clone_newuser",
        "clone3",
        "ptrace",
        "ptrace_traceme",
        "process_vm_readv",
        "kexec_load",
        "kexec_file_load",
        "bpf",
        "keyctl",
        "add_key",
        "request_key",
        "io_uring",
        "userfaultfd",
        "perf_event_open",
        "open_by_handle_at",
        "fsopen",
        "open_tree",
        "move_mount",
        "fsmount",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "iopl",
        "ioperm",
        "personality",
        "af_packet",
        "af_vsock",
        "af_alg",
        "syslog",
        "mknod_block",
    ];
    let mut failures = Vec::new();
    for name in names {
        let o = attack(name, "", &[]);
        let out = stdout(&o);
        if !(o.status.code() == Some(0) && out.starts_with("DENIED")) {
            failures.push(format!(
                "{name}: exit {:?} {out:?} {}",
                o.status.code(),
                stderr(&o)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "attacks not stopped:\n{}",
        failures.join("\n")
    );
}

#[test]
fn clone3_reports_enosys_so_libc_falls_back() {
    if !require_root("clone3_reports_enosys") {
        return;
    }
    let o = attack("clone3", "", &[]);
    assert!(
        stdout(&o).contains("Function not implemented"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn kernel_interfaces_in_proc_are_closed() {
    if !require_root("kernel_interfaces_in_proc_are_closed") {
        return;
    }
    for (name, arg) in [
        ("write", "/proc/sysrq-trigger"),
        ("write", "/proc/sys/kernel/core_pattern"),
        ("open", "/proc/kcore"),
        ("open", "/proc/kmsg"),
        ("open", "/dev/kmsg"),
        ("open", "/proc/keys"),
        ("open", "/proc/kallsyms"),
        ("exe", ""),
    ] {
        assert_denied(name, arg, &attack(name, arg, &[]));
    }
}

#[test]
fn no_block_devices_reachable() {
    if !require_root("no_block_devices_reachable") {
        return;
    }
    for dev in [
        "/dev/sda",
        "/dev/vda",
        "/dev/nvme0n1",
        "/dev/mem",
        "/dev/port",
    ] {
        assert_denied("open", dev, &attack("open", dev, &[]));
    }
    assert_denied("mknod_block", "", &attack("mknod_block", "", &[]));
}

#[test]
fn host_processes_are_invisible() {
    if !require_root("host_processes_are_invisible") {
        return;
    }
    // pid 1 (watertight's reaper) and the attack program itself.
    assert_denied("processes", "2", &attack("processes", "2", &[]));
}

#[test]
fn reaper_memory_is_closed_to_the_program() {
    if !require_root("reaper_memory_is_closed_to_the_program") {
        return;
    }
    // pid 1 reports the program's exit status; a program that could write its memory could
    // forge its own verdict. pid 1 is not dumpable from before the program exists.
    let o = sh(
        "for f in mem maps environ; do cat /proc/1/$f >/dev/null 2>&1 && echo open $f; done; echo done",
        &[],
    );
    let out = stdout(&o);
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains("open"), "{out}");
}

#[test]
fn host_loopback_tcp_is_unreachable() {
    if !require_root("host_loopback_tcp_is_unreachable") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    assert_denied("tcp", &port, &attack("tcp", &port, &[]));
}

#[test]
fn host_abstract_unix_socket_is_unreachable() {
    if !require_root("host_abstract_unix_socket_is_unreachable") {
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let name = format!("watertight-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    assert_denied("abstract", &name, &attack("abstract", &name, &[]));
}

#[test]
fn host_secrets_are_hidden() {
    if !require_root("host_secrets_are_hidden") {
        return;
    }
    if std::path::Path::new("/etc/shadow").exists() {
        assert_denied("open", "/etc/shadow", &attack("open", "/etc/shadow", &[]));
    }
}

#[test]
fn hidden_directories_are_empty_and_read_only() {
    if !require_root("hidden_directories_are_empty_and_read_only") {
        return;
    }
    // The built-in profile hides these; each shows as an empty directory nothing can be
    // written to (one read-only tmpfs, bound over the later ones).
    for dir in ["/etc/ssh", "/proc/acpi", "/proc/sysvipc"] {
        if !std::path::Path::new(dir).is_dir() {
            continue;
        }
        let o = sh(
            &format!("ls -A {dir} | wc -l; touch {dir}/wt-test 2>&1 || true"),
            &[],
        );
        let out = stdout(&o);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("0"), "{dir} is not empty: {out}");
        assert!(out.contains("Read-only file system"), "{dir}: {out}");
        assert_denied(
            "write",
            &format!("{dir}/wt-test"),
            &attack("write", &format!("{dir}/wt-test"), &[]),
        );
    }
}

#[test]
fn root_is_read_only() {
    if !require_root("root_is_read_only") {
        return;
    }
    for target in [
        "/usr/wt-test",
        "/etc/wt-test",
        "/wt-test",
        "/bin/wt-test",
        "/dev/wt-test",
    ] {
        assert_denied("write", target, &attack("write", target, &[]));
    }
    assert!(!std::path::Path::new("/usr/wt-test").exists());
    assert!(!std::path::Path::new("/etc/wt-test").exists());
}

#[test]
fn rootfs_is_read_only_and_host_dir_unchanged() {
    if !require_root("rootfs_is_read_only") {
        return;
    }
    let root = attack_rootfs();
    let before: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let rootfs = format!("--rootfs={}", root.path().display());
    for target in ["/x", "/attack"] {
        let o = watertight()
            .args(["run", &rootfs, "--", "/attack", "write", target])
            .output()
            .unwrap();
        assert_denied("write", target, &o);
    }
    // With a writable root the write succeeds, into the throwaway layer only.
    let o = watertight()
        .args([
            "run",
            &rootfs,
            "--writable-root",
            "--",
            "/attack",
            "write",
            "/x",
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&o).starts_with("ALLOWED"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
    let after: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "the host directory changed");
}

#[test]
fn inherited_descriptors_are_closed() {
    if !require_root("inherited_descriptors_are_closed") {
        return;
    }
    let script = format!(
        "exec 7</etc/hostname; exec {} run --bind-ro={}:/attack -- /attack/attack fd 7",
        env!("CARGO_BIN_EXE_watertight"),
        attack_dir().display()
    );
    let o = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_denied("fd", "7", &o);
}

#[test]
fn privileges_are_gone() {
    if !require_root("privileges_are_gone") {
        return;
    }
    let o = sh(
        "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status",
        &[],
    );
    let out = stdout(&o);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{set}:\t0000000000000000")),
            "{set} not empty:\n{out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn program_starts_with_default_signal_actions() {
    if !require_root("program_starts_with_default_signal_actions") {
        return;
    }
    // Found by hand: the supervisor (Rust) ignores SIGPIPE, and the program inherited that, so
    // `yes | head -1` saw EPIPE instead of dying of SIGPIPE as it does on a terminal.
    let o = sh("grep -E '^Sig(Ign|Blk):' /proc/self/status", &[]);
    let out = stdout(&o);
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
}

#[test]
fn sandbox_uid_is_not_host_root() {
    if !require_root("sandbox_uid_is_not_host_root") {
        return;
    }
    let o = sh("cat /proc/self/uid_map", &[]);
    let fields: Vec<u64> = stdout(&o)
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 3, "{}", stdout(&o));
    assert_eq!(fields[2], 1, "exactly one uid mapped");
    assert!(fields[1] >= 1000, "mapped to host uid {}", fields[1]);
}

#[test]
fn violation_kill_mode_reports_sv() {
    if !require_root("violation_kill_mode_reports_sv") {
        return;
    }
    let dir = attack_dir();
    let (o, v) = run_with_result(
        &[
            &format!("--bind-ro={}:/attack", dir.display()),
            "--on-violation=kill",
        ],
        &["/attack/attack", "mount"],
    );
    assert_eq!(v["status"], "SV", "{v}");
    assert_eq!(o.status.code(), Some(159));
}

#[test]
fn concurrent_sandboxes_never_share_a_host_uid() {
    if !require_root("concurrent_sandboxes_never_share_a_host_uid") {
        return;
    }
    // Each sandbox holds its slot while it sleeps, so all eight overlap.
    let children: Vec<_> = (0..8)
        .map(|_| {
            watertight()
                .args([
                    "run",
                    "--",
                    "/bin/sh",
                    "-c",
                    "cat /proc/self/uid_map; sleep 1",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut host_uids: Vec<String> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    host_uids.sort();
    let n = host_uids.len();
    host_uids.dedup();
    assert_eq!(
        host_uids.len(),
        n,
        "two sandboxes shared a host uid: {host_uids:?}"
    );
}
