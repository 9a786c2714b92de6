//! The BPF exec gate against the real kernel (root only; skips with a reason otherwise).

mod common;

use common::{exec_tree, key, require_root, TestCgroup};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;
use watertight_integrity::{verify_tree, ExecEvent, ExecGate, ExecWhat, Manifest};

const MEMFD_HELPER_ENV: &str = "WT_TEST_MEMFD_HELPER";

/// Gate tests run one at a time: the cleanup check attributes new `wt_*` BPF ids to the test
/// that loaded them.
static GATE_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    GATE_TESTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// BPF object ids whose names start with `wt_`, from `bpftool -j {prog|map} show`.
fn wt_object_ids(kind: &str) -> BTreeSet<u64> {
    let out = Command::new("bpftool")
        .args(["-j", kind, "show"])
        .output()
        .expect("bpftool runs");
    assert!(out.status.success(), "bpftool {kind} show failed");
    let items: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    items
        .as_array()
        .expect("array")
        .iter()
        .filter(|i| i["name"].as_str().is_some_and(|n| n.starts_with("wt_")))
        .filter_map(|i| i["id"].as_u64())
        .collect()
}

/// Whether the gate tests can run: root (BPF programs, cgroups; a failure with
/// WATERTIGHT_REQUIRE_ROOT=1 otherwise) and bpftool to check cleanup (a failure in CI).
fn able(test: &str) -> bool {
    require_root(test) && watertight_testkit::require_tools(test, &["bpftool"], "bpftool")
}

fn killed(status: ExitStatus) -> bool {
    status.signal() == Some(9)
}

fn event_for(events: &[ExecEvent], pid: u32, what: ExecWhat) -> bool {
    events.iter().any(|e| e.pid == pid && e.what == what)
}

fn run_in(cg: &TestCgroup, argv: &[&str], lib: &Path) -> (u32, ExitStatus) {
    let mut child = cg
        .command(argv)
        .env("LD_LIBRARY_PATH", lib)
        .spawn()
        .expect("spawn sh");
    let pid = child.id();
    (pid, child.wait().expect("wait"))
}

#[test]
fn exec_gate_allows_verified_and_kills_everything_else() {
    if !able("exec_gate") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    exec_tree(&tree);
    let lib = tree.join("lib");
    let outside = dir.path().join("outside");
    common::copy_exec(&tree.join("bin/true"), &outside.join("true-copy"));
    common::copy_exec(&tree.join("lib/libc.so.6"), &outside.join("libpreload.so"));

    let signing = key(7);
    let signed = Manifest::create(&tree, &signing).unwrap();
    let verified = verify_tree(&tree, &signed, &signing.verifying_key()).unwrap();
    let cg = TestCgroup::create().expect("create a cgroup2 test cgroup");

    let progs_before = wt_object_ids("prog");
    let maps_before = wt_object_ids("map");
    let mut gate = ExecGate::attach(cg.id(), &verified).expect("attach gate");
    assert_eq!(gate.allowed_keys(), 5, "true, sh, libc, ld.so, etc/motd");
    let ours_progs: BTreeSet<u64> = wt_object_ids("prog")
        .difference(&progs_before)
        .copied()
        .collect();
    let ours_maps: BTreeSet<u64> = wt_object_ids("map")
        .difference(&maps_before)
        .copied()
        .collect();
    assert!(
        ours_progs.len() >= 2,
        "wt_exec and wt_sys_enter loaded: {ours_progs:?}"
    );
    assert!(
        ours_maps.len() >= 3,
        "config, allowed, events maps: {ours_maps:?}"
    );

    let t = |p: &str| tree.join(p).display().to_string();
    let copy = outside.join("true-copy").display().to_string();

    // A verified binary (loader, libc and binary all verified) runs normally.
    let (_, status) = run_in(&cg, &[&t("bin/true")], &lib);
    assert!(status.success(), "verified bin/true: {status:?}");
    let (_, status) = run_in(
        &cg,
        &[&t("bin/sh"), "-c", &format!("exec {}", t("bin/true"))],
        &lib,
    );
    assert!(
        status.success(),
        "verified sh exec'ing verified true: {status:?}"
    );
    assert!(gate.poll_events().is_empty(), "no events for verified code");

    // An unverified copy is killed at exec, with an event.
    let (pid, status) = run_in(&cg, &[&copy], &lib);
    assert!(killed(status), "copy must be SIGKILLed: {status:?}");
    let events = gate.wait_events(Duration::from_secs(2));
    assert!(
        event_for(&events, pid, ExecWhat::Exec),
        "exec event for {pid}: {events:?}"
    );

    // The same copy through the (verified) dynamic loader: killed when mapped PROT_EXEC.
    let (pid, status) = run_in(&cg, &[&t("lib64/ld-linux-x86-64.so.2"), &copy], &lib);
    assert!(killed(status), "ld.so ./copy must be SIGKILLed: {status:?}");
    let events = gate.wait_events(Duration::from_secs(2));
    assert!(
        event_for(&events, pid, ExecWhat::Mmap),
        "mmap event for {pid}: {events:?}"
    );

    // LD_PRELOAD of an unverified library: killed when ld.so maps it.
    let preload = outside.join("libpreload.so").display().to_string();
    let mut child = cg
        .command(&[&t("bin/true")])
        .env("LD_LIBRARY_PATH", &lib)
        .env("LD_PRELOAD", &preload)
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(
        killed(status),
        "LD_PRELOAD of an unverified library must be SIGKILLed: {status:?}"
    );
    let events = gate.wait_events(Duration::from_secs(2));
    assert!(
        event_for(&events, pid, ExecWhat::Mmap),
        "mmap event for {pid}: {events:?}"
    );

    // memfd exec of verified bytes: the memfd inode is not verified.
    let me = std::env::current_exe().unwrap();
    let mut child = Command::new(me)
        .args([
            "--exact",
            "memfd_exec_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            MEMFD_HELPER_ENV,
            format!("{}\n{}", cg.path.display(), t("bin/true")),
        )
        .env("LD_LIBRARY_PATH", &lib)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(killed(status), "memfd exec must be SIGKILLed: {status:?}");
    let events = gate.wait_events(Duration::from_secs(2));
    assert!(
        event_for(&events, pid, ExecWhat::Exec),
        "exec event for memfd {pid}: {events:?}"
    );

    // Outside the cgroup the gate changes nothing.
    let status = Command::new(&copy).status().unwrap();
    assert!(
        status.success(),
        "unverified copy outside the sandbox runs: {status:?}"
    );
    assert!(gate.poll_events().is_empty());

    drop(gate);
    // The kernel frees programs and maps after an RCU grace period, not at close(): poll.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (progs_after, maps_after) = loop {
        let (p, m) = (wt_object_ids("prog"), wt_object_ids("map"));
        if (ours_progs.is_disjoint(&p) && ours_maps.is_disjoint(&m))
            || std::time::Instant::now() > deadline
        {
            break (p, m);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        ours_progs.is_disjoint(&progs_after),
        "programs left after drop: {ours_progs:?}"
    );
    assert!(
        ours_maps.is_disjoint(&maps_after),
        "maps left after drop: {ours_maps:?}"
    );
}

/// Not a test on its own: the gate test re-runs this binary with MEMFD_HELPER_ENV set, so the
/// process joins the cgroup and then execs a memfd copy of a verified binary.
#[test]
fn memfd_exec_helper() {
    let Ok(spec) = std::env::var(MEMFD_HELPER_ENV) else {
        return;
    };
    let (cgroup, binary) = spec.split_once('\n').expect("cgroup\\nbinary");
    std::fs::write(
        Path::new(cgroup).join("cgroup.procs"),
        std::process::id().to_string(),
    )
    .unwrap();
    let fd =
        nix::sys::memfd::memfd_create(c"wt-memfd", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
    let mut file = std::fs::File::from(fd);
    std::io::copy(&mut std::fs::File::open(binary).unwrap(), &mut file).unwrap();
    let lib = std::env::var("LD_LIBRARY_PATH").unwrap();
    let env = [std::ffi::CString::new(format!("LD_LIBRARY_PATH={lib}")).unwrap()];
    let err = nix::unistd::fexecve(&file, &[c"true"], &env).unwrap_err();
    panic!("fexecve failed: {err}");
}

#[test]
fn attach_refuses_the_cgroup_root_and_unknown_ids() {
    if !able("exec_gate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let signing = key(9);
    let signed = Manifest::create(dir.path(), &signing).unwrap();
    let verified = verify_tree(dir.path(), &signed, &signing.verifying_key()).unwrap();
    let err = ExecGate::attach(1, &verified).unwrap_err().to_string();
    assert!(err.contains("cgroup2 root"), "{err}");
    let err = ExecGate::attach(u64::MAX, &verified)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no cgroup with that id"), "{err}");
}

/// Unmounts on drop.
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn read_only_overlay_of_the_verified_tree_runs_when_both_views_are_allowed() {
    if !able("exec_gate_overlay") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lower = dir.path().join("lower");
    let empty = dir.path().join("empty");
    let merged = dir.path().join("merged");
    exec_tree(&lower);
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&merged).unwrap();
    // Two lower layers and no upper: a read-only overlay (no copy-up can happen).
    let opts = format!("lowerdir={}:{}", lower.display(), empty.display());
    let ok = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        watertight_testkit::host_lacks("exec_gate_overlay", "cannot mount overlayfs here");
        return;
    }
    let _mount = Mount(merged.clone());

    let signing = key(8);
    let signed = Manifest::create(&lower, &signing).unwrap();
    let lower_tree = verify_tree(&lower, &signed, &signing.verifying_key()).unwrap();
    let merged_tree = verify_tree(&merged, &signed, &signing.verifying_key()).unwrap();
    assert_ne!(
        lower_tree.files[0].dev, merged_tree.files[0].dev,
        "overlay has its own device"
    );

    let cg = TestCgroup::create().expect("create a cgroup2 test cgroup");
    let mut gate = ExecGate::attach(cg.id(), &merged_tree).unwrap();
    assert_eq!(
        gate.allow_tree(&lower_tree).unwrap(),
        lower_tree.files.len()
    );

    let lib = merged.join("lib");
    let true_bin = merged.join("bin/true").display().to_string();
    let (_, status) = run_in(&cg, &[&true_bin], &lib);
    assert!(
        status.success(),
        "verified binary through the overlay: {status:?}"
    );
    assert!(gate.poll_events().is_empty());

    // The lower view alone is also allowed now, the host's own copy is not.
    let (_, status) = run_in(
        &cg,
        &[&lower.join("bin/true").display().to_string()],
        &lower.join("lib"),
    );
    assert!(status.success(), "lower view: {status:?}");
    let (pid, status) = run_in(&cg, &["/usr/bin/true"], &lib);
    assert!(
        killed(status),
        "host binary in the sandbox cgroup: {status:?}"
    );
    assert!(event_for(
        &gate.wait_events(Duration::from_secs(2)),
        pid,
        ExecWhat::Exec
    ));
}

/// mprotect(PROT_EXEC) of a mapping of an unverified file. The driver is Debian's python3: it
/// loads ctypes (its own shared objects) BEFORE joining the cgroup, then maps the file and calls
/// mprotect through libc, so the only gated act is the mprotect itself.
const MPROTECT_DRIVER: &str = r#"
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
open(sys.argv[1] + "/cgroup.procs", "w").write(str(os.getpid()))
fd = os.open(sys.argv[2], os.O_RDONLY)
m = mmap.mmap(fd, 4096, access=mmap.ACCESS_COPY)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
rc = libc.mprotect(ctypes.c_void_p(addr), 4096, mmap.PROT_READ | mmap.PROT_EXEC)
print("mprotect returned", rc, flush=True)
sys.exit(3)
"#;

#[test]
fn mprotect_exec_of_an_unverified_mapping_is_killed() {
    if !able("exec_gate_mprotect") {
        return;
    }
    let missing = (!Path::new("/usr/bin/python3").exists())
        .then(|| "needs /usr/bin/python3 (Debian python3) as the driver".to_string());
    if !watertight_testkit::require("exec_gate_mprotect", missing) {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    exec_tree(&tree);
    let unverified = dir.path().join("unverified.so");
    common::copy_exec(&tree.join("lib/libc.so.6"), &unverified);
    let signing = key(10);
    let signed = Manifest::create(&tree, &signing).unwrap();
    let verified = verify_tree(&tree, &signed, &signing.verifying_key()).unwrap();
    let cg = TestCgroup::create().expect("create a cgroup2 test cgroup");
    let mut gate = ExecGate::attach(cg.id(), &verified).unwrap();

    let mut child = Command::new("/usr/bin/python3")
        .args(["-S", "-c", MPROTECT_DRIVER])
        .arg(&cg.path)
        .arg(&unverified)
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(
        killed(status),
        "mprotect(PROT_EXEC) of an unverified file must be SIGKILLed: {status:?}"
    );
    let events = gate.wait_events(Duration::from_secs(2));
    assert!(
        event_for(&events, pid, ExecWhat::Mprotect),
        "mprotect event for {pid}: {events:?}"
    );
}

#[test]
fn verified_file_rewritten_in_place_is_killed_and_refused_at_attach() {
    if !able("exec_gate_rewrite") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    exec_tree(&tree);
    let lib = tree.join("lib");
    let signing = key(11);
    let signed = Manifest::create(&tree, &signing).unwrap();
    let verified = verify_tree(&tree, &signed, &signing.verifying_key()).unwrap();
    let cg = TestCgroup::create().expect("create a cgroup2 test cgroup");
    let mut gate = ExecGate::attach(cg.id(), &verified).unwrap();
    let t = |p: &str| tree.join(p).display().to_string();
    let (_, status) = run_in(&cg, &[&t("bin/true")], &lib);
    assert!(
        status.success(),
        "verified bin/true before the rewrite: {status:?}"
    );

    // Rewritten in place with the very same bytes: same inode, same content, new ctime. The
    // gate cannot know the bytes are equal; what was verified is not what is there now.
    let victim = tree.join("bin/true");
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&victim).unwrap());
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes).unwrap();
    assert_eq!(
        ino,
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&victim).unwrap())
    );
    let (pid, status) = run_in(&cg, &[&t("bin/true")], &lib);
    assert!(
        killed(status),
        "rewritten bin/true must be SIGKILLed: {status:?}"
    );
    let events = gate.wait_events(Duration::from_secs(2));
    assert!(
        events
            .iter()
            .any(|e| e.pid == pid && e.what == ExecWhat::Exec && e.changed),
        "exec event marked changed for {pid}: {events:?}"
    );
    drop(gate);

    // The same tree verification no longer matches the kernel's inode: attach refuses.
    let err = ExecGate::attach(cg.id(), &verified).expect_err("a stale verification");
    assert!(
        err.to_string().contains("changed after verification"),
        "{err}"
    );
}
