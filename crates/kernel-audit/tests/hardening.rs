//! Hardening checks against a fake /proc + /sys tree, and once against this host.

use std::fs;
use std::path::Path;
use watertight_kernel_audit::hardening::{CheckStatus, HardeningCheck};
use watertight_kernel_audit::HardeningReader;

fn put(root: &Path, rel: &str, value: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("{value}\n")).unwrap();
}

fn sysctl(root: &Path, name: &str, value: &str) {
    put(root, &format!("proc/sys/{}", name.replace('.', "/")), value);
}

fn check<'a>(checks: &'a [HardeningCheck], name: &str) -> &'a HardeningCheck {
    checks.iter().find(|c| c.name == name).expect(name)
}

#[test]
fn weak_tree_fails_where_it_should() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    sysctl(r, "kernel.unprivileged_bpf_disabled", "0");
    sysctl(r, "user.max_user_namespaces", "0");
    sysctl(r, "kernel.kptr_restrict", "0");
    sysctl(r, "kernel.perf_event_paranoid", "1");
    sysctl(r, "kernel.io_uring_disabled", "0");
    sysctl(r, "vm.unprivileged_userfaultfd", "1");
    sysctl(r, "dev.tty.legacy_tiocsti", "1");
    sysctl(r, "kernel.sysrq", "1");
    sysctl(r, "fs.protected_symlinks", "garbage");
    put(r, "sys/kernel/security/lsm", "capability,yama");
    put(
        r,
        "sys/kernel/security/lockdown",
        "[none] integrity confidentiality",
    );

    let checks = HardeningReader::new(r).read();
    for name in [
        "kernel.unprivileged_bpf_disabled",
        "user.max_user_namespaces",
        "kernel.kptr_restrict",
        "kernel.perf_event_paranoid",
        "kernel.io_uring_disabled",
        "vm.unprivileged_userfaultfd",
        "dev.tty.legacy_tiocsti",
        "kernel.sysrq",
        "lsm.landlock",
        "lsm.mac",
        "lockdown",
    ] {
        assert_eq!(check(&checks, name).status, CheckStatus::Fail, "{name}");
    }
    let bpf = check(&checks, "kernel.unprivileged_bpf_disabled");
    assert_eq!(bpf.current.as_deref(), Some("0"));
    assert_eq!(bpf.expected, ">= 1");
    assert!(check(&checks, "user.max_user_namespaces")
        .breaks
        .as_deref()
        .unwrap()
        .contains("user-namespaced pods"));
    assert_eq!(check(&checks, "lockdown").current.as_deref(), Some("none"));
    assert_eq!(
        check(&checks, "fs.protected_symlinks").status,
        CheckStatus::Unreadable
    );
    // Switches this fake kernel lacks are absent, not failures.
    assert_eq!(
        check(&checks, "kernel.yama.ptrace_scope").status,
        CheckStatus::Absent
    );
}

#[test]
fn hardened_tree_passes() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for (name, value) in [
        ("kernel.unprivileged_bpf_disabled", "2"),
        ("user.max_user_namespaces", "15000"),
        ("kernel.kptr_restrict", "1"),
        ("kernel.dmesg_restrict", "1"),
        ("kernel.perf_event_paranoid", "3"),
        ("kernel.io_uring_disabled", "1"),
        ("vm.unprivileged_userfaultfd", "0"),
        ("kernel.kexec_load_disabled", "1"),
        ("kernel.yama.ptrace_scope", "1"),
        ("fs.protected_symlinks", "1"),
        ("fs.protected_hardlinks", "1"),
        ("fs.protected_fifos", "2"),
        ("fs.protected_regular", "2"),
        ("dev.tty.legacy_tiocsti", "0"),
        ("kernel.sysrq", "176"),
        ("kernel.randomize_va_space", "2"),
        ("fs.suid_dumpable", "0"),
        ("vm.mmap_min_addr", "65536"),
        ("net.core.bpf_jit_harden", "1"),
        ("vm.memfd_noexec", "1"),
    ] {
        sysctl(r, name, value);
    }
    put(
        r,
        "sys/kernel/security/lsm",
        "lockdown,capability,landlock,yama,apparmor,bpf",
    );
    put(
        r,
        "sys/kernel/security/lockdown",
        "none [integrity] confidentiality",
    );
    let checks = HardeningReader::new(r).read();
    let not_passing: Vec<_> = checks
        .iter()
        .filter(|c| c.status != CheckStatus::Pass)
        .map(|c| &c.name)
        .collect();
    assert!(not_passing.is_empty(), "{not_passing:?}");
    assert_eq!(
        check(&checks, "lockdown").current.as_deref(),
        Some("integrity")
    );
}

#[test]
fn empty_root_reports_everything_absent() {
    let root = tempfile::tempdir().unwrap();
    let checks = HardeningReader::new(root.path()).read();
    assert!(checks.iter().all(|c| c.status == CheckStatus::Absent));
    assert!(check(&checks, "lockdown")
        .note
        .as_deref()
        .unwrap()
        .contains("securityfs is not mounted"));
    assert!(check(&checks, "kernel.kptr_restrict")
        .note
        .as_deref()
        .unwrap()
        .contains("lacks the switch"));
}

#[test]
fn live_host() {
    if !Path::new("/proc/sys/kernel/osrelease").exists() {
        watertight_testkit::host_lacks("live_host", "no /proc on this host");
        return;
    }
    let checks = HardeningReader::new("/").read();
    // Every kernel since 2.6 has these; their values are whatever this host says.
    for name in [
        "kernel.kptr_restrict",
        "kernel.randomize_va_space",
        "fs.protected_symlinks",
    ] {
        let c = check(&checks, name);
        assert!(
            matches!(c.status, CheckStatus::Pass | CheckStatus::Fail),
            "{name}: {c:?}"
        );
        let live = fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).unwrap();
        assert_eq!(c.current.as_deref(), Some(live.trim()));
    }
    // The LSM list, when securityfs is mounted, is reported as read.
    if let Ok(lsm) = fs::read_to_string("/sys/kernel/security/lsm") {
        assert_eq!(
            check(&checks, "lsm.landlock").current.as_deref(),
            Some(lsm.trim())
        );
    } else {
        eprintln!("note: securityfs not mounted; LSM checks are absent");
    }
}
