//! Behaviour against the real kernel: limits enforced, accounting read back, freeze/thaw/kill,
//! device allowlists (v1 files and the BPF program), rollback and stale cleanup.
//!
//! Needs root and a cgroup hierarchy; each test prints why it skips otherwise. Every cgroup is
//! uniquely named (test name + pid) and removed by `Cgroup`'s drop even when an assert fails;
//! children are killed and reaped by `Worker`'s drop.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use watertight_cgroups::owner::Owner;
use watertight_cgroups::{
    cleanup_stale, detect, Cgroup, Controller, CpuQuota, DeviceBackend, DeviceRule, Error, Layout,
    Limits, Mode, Registry, DIR_PREFIX,
};

fn host_layout(test: &str) -> Option<Layout> {
    if !watertight_testkit::require_root(test) {
        return None;
    }
    match detect() {
        Ok(layout) => Some(layout),
        Err(e) => {
            println!("SKIP {test}: no usable cgroup layout: {e}");
            None
        }
    }
}

fn unique(test: &str) -> String {
    format!("t-{test}-{}", std::process::id())
}

/// A child that waits on its stdin before running `script`, so it can be placed in a cgroup
/// before it does anything. Killed and reaped on drop.
struct Worker {
    child: Child,
    release: Option<ChildStdin>,
}

impl Worker {
    fn spawn(script: &str) -> Worker {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ready; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let release = child.stdin.take();
        Worker { child, release }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn start(&mut self) {
        let mut stdin = self.release.take().expect("started once");
        stdin.write_all(b"go\n").expect("release child");
    }

    /// Waits for exit (bounded) and returns the status and stderr.
    fn finish(&mut self, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return (status, stderr);
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit in {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal_of(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

fn assert_gone(dirs: &[PathBuf]) {
    for dir in dirs {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

#[test]
fn memory_limit_oom_kills_and_is_counted() {
    let Some(layout) = host_layout("memory_limit_oom_kills_and_is_counted") else {
        return;
    };
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        ..Limits::default()
    };
    let cgroup = Cgroup::create(&layout, &unique("oom"), &limits).expect("create");
    // dd fills a 200 MiB buffer from /dev/zero, touching every page.
    let mut worker = Worker::spawn("exec dd if=/dev/zero of=/dev/null bs=200M count=1");
    cgroup.add_process(worker.pid()).expect("add");
    worker.start();
    let (status, stderr) = worker.finish(Duration::from_secs(30));
    assert_eq!(
        signal_of(status),
        Some(9),
        "expected OOM SIGKILL, got {status:?}: {stderr}"
    );
    let stats = cgroup.stats().expect("stats");
    assert!(stats.oom_kills >= Some(1), "{stats:?}");
    if layout.v1_root(Controller::Memory).is_none() {
        // v2 memory.events max counts reclaim at the limit. (v1 failcnt stays 0 on 6.x
        // kernels, measured here; see docs/cgroups.md.)
        assert!(stats.memory_limit_hits >= Some(1), "{stats:?}");
    }
    let peak = stats.memory_peak_bytes.expect("peak");
    assert!(peak <= 64 << 20 && peak > 32 << 20, "peak {peak}");
    let dirs = cgroup.dirs().to_vec();
    cgroup.destroy().expect("destroy");
    assert_gone(&dirs);
}

#[test]
fn pids_limit_stops_fork_loop() {
    let Some(layout) = host_layout("pids_limit_stops_fork_loop") else {
        return;
    };
    let limits = Limits {
        pids_max: Some(8),
        ..Limits::default()
    };
    let cgroup = Cgroup::create(&layout, &unique("pids"), &limits).expect("create");
    let mut worker = Worker::spawn("for i in $(seq 40); do sleep 30 & done; wait");
    cgroup.add_process(worker.pid()).expect("add");
    worker.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = cgroup.stats().expect("stats");
        if stats.pids_limit_hits.unwrap_or(0) > 0 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(stats.pids_limit_hits > Some(0), "{stats:?}");
    assert!(stats.pids_current <= Some(8), "{stats:?}");
    assert!(cgroup.pids().expect("pids").len() <= 8);
    let dirs = cgroup.dirs().to_vec();
    cgroup
        .destroy()
        .expect("destroy kills the loop and its children");
    assert_gone(&dirs);
    // The shell either died of SIGKILL or already gave up when fork failed; either way it is
    // gone once destroy returns.
    worker.finish(Duration::from_secs(5));
}

#[test]
fn cpu_quota_is_written() {
    let Some(layout) = host_layout("cpu_quota_is_written") else {
        return;
    };
    let limits = Limits {
        cpu_quota: Some(CpuQuota {
            quota_us: 25_000,
            period_us: 50_000,
        }),
        ..Limits::default()
    };
    let cgroup = Cgroup::create(&layout, &unique("cpu"), &limits).expect("create");
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    match layout.v1_root(Controller::Cpu) {
        Some(root) => {
            let dir = watertight_cgroups::dir_in(root, cgroup.dir_name());
            assert_eq!(read(dir.join("cpu.cfs_quota_us")).trim(), "25000");
            assert_eq!(read(dir.join("cpu.cfs_period_us")).trim(), "50000");
        }
        None => {
            let dir = cgroup.unified_dir().expect("unified");
            assert_eq!(read(dir.join("cpu.max")).trim(), "25000 50000");
        }
    }
    cgroup.destroy().expect("destroy");
}

/// Reads the worker's counter file; the shell rewrites it constantly, so retry on a torn read.
fn read_counter(path: &Path) -> u64 {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(n) = text.trim().parse() {
                return n;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("counter file {} never readable", path.display());
}

fn freeze_stops_and_thaw_resumes(layout: &Layout, name: &str) {
    let cgroup = Cgroup::create(layout, name, &Limits::default()).expect("create");
    let counter = std::env::temp_dir().join(format!("{name}.counter"));
    let _ = std::fs::remove_file(&counter);
    let mut worker = Worker::spawn(&format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}.tmp; mv {0}.tmp {0}; done",
        counter.display()
    ));
    cgroup.add_process(worker.pid()).expect("add");
    worker.start();
    let started = Instant::now();
    while read_counter_opt(&counter).unwrap_or(0) < 5 {
        if started.elapsed() > Duration::from_secs(10) {
            let frozen = cgroup.is_frozen();
            let (status, stderr) = worker.finish(Duration::from_millis(1));
            panic!("worker never counted: frozen={frozen:?} status={status:?} stderr={stderr}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cgroup.freeze().expect("freeze");
    assert!(cgroup.is_frozen().expect("state"));
    let frozen_at = read_counter(&counter);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        read_counter(&counter),
        frozen_at,
        "counter advanced while frozen"
    );
    cgroup.thaw().expect("thaw");
    assert!(!cgroup.is_frozen().expect("state"));
    let thawed = Instant::now();
    while read_counter(&counter) <= frozen_at {
        assert!(
            thawed.elapsed() < Duration::from_secs(10),
            "counter did not resume after thaw"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Freeze again and kill while frozen: kill_all must still empty the cgroup.
    cgroup.freeze().expect("refreeze");
    cgroup.kill_all().expect("kill_all");
    assert!(cgroup.pids().expect("pids").is_empty());
    let (status, _) = worker.finish(Duration::from_secs(5));
    assert_eq!(signal_of(status), Some(9));
    let dirs = cgroup.dirs().to_vec();
    cgroup.destroy().expect("destroy");
    assert_gone(&dirs);
    let _ = std::fs::remove_file(&counter);
    let _ = std::fs::remove_file(counter.with_extension("counter.tmp"));
}

fn read_counter_opt(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn freeze_thaw_and_kill_on_host_layout() {
    let Some(layout) = host_layout("freeze_thaw_and_kill_on_host_layout") else {
        return;
    };
    freeze_stops_and_thaw_resumes(&layout, &unique("freeze"));
}

/// The unified hierarchy alone, as a pure cgroup v2 host would use it (core files only, since
/// this host's cgroup2 root offers no controllers).
fn unified_only_layout(test: &str) -> Option<Layout> {
    let host = host_layout(test)?;
    let Some(root) = host.unified_root() else {
        println!("SKIP {test}: no cgroup2 mount");
        return None;
    };
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    let mountinfo = format!(
        "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
        root.display()
    );
    Some(Layout::from_mountinfo(&mountinfo, &controllers).expect("layout"))
}

#[test]
fn freeze_thaw_and_kill_on_cgroup2_core_files() {
    let test = "freeze_thaw_and_kill_on_cgroup2_core_files";
    let Some(layout) = unified_only_layout(test) else {
        return;
    };
    assert_eq!(layout.mode(), Mode::V2);
    freeze_stops_and_thaw_resumes(&layout, &unique("freeze2"));
}

#[test]
fn pure_v2_layout_gives_clone_into_cgroup_dir_and_id() {
    let Some(layout) = unified_only_layout("pure_v2_layout_gives_clone_into_cgroup_dir_and_id")
    else {
        return;
    };
    let cgroup = Cgroup::create(&layout, &unique("v2dir"), &Limits::default()).expect("create");
    let dir = cgroup
        .v2_dir()
        .expect("v2 dir on a unified-only layout")
        .to_owned();
    assert_eq!(
        cgroup.unified_id(),
        Some(std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(&dir).unwrap()
        ))
    );
    let mut worker = Worker::spawn("exec sleep 30");
    cgroup.add_process(worker.pid()).expect("add");
    assert_eq!(cgroup.pids().expect("pids"), vec![worker.pid()]);
    worker.start();
    let stats = cgroup.stats().expect("stats");
    assert!(stats.cpu_usage_ns.is_some(), "{stats:?}");
    cgroup.destroy().expect("destroy");
    assert!(!dir.exists());
    let (status, _) = worker.finish(Duration::from_secs(5));
    assert_eq!(signal_of(status), Some(9));

    // A limit whose controller the cgroup2 root does not offer is refused before any mkdir.
    if !layout.unified_controllers().iter().any(|c| c == "memory") {
        let name = unique("v2mem");
        let err = Cgroup::create(
            &layout,
            &name,
            &Limits {
                memory_bytes: Some(64 << 20),
                ..Limits::default()
            },
        )
        .expect_err("no memory controller");
        assert!(
            matches!(
                err,
                Error::ControllerMissing {
                    controller: "memory",
                    ..
                }
            ),
            "{err}"
        );
        let prefix = format!("{DIR_PREFIX}{name}");
        let unified = layout.unified_root().unwrap();
        assert!(!std::fs::read_dir(unified)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix)));
    }
}

#[test]
fn hybrid_v2_dir_is_none_but_unified_id_is_set() {
    let Some(layout) = host_layout("hybrid_v2_dir_is_none_but_unified_id_is_set") else {
        return;
    };
    if layout.mode() != Mode::Hybrid {
        println!(
            "SKIP hybrid_v2_dir_is_none_but_unified_id_is_set: host is {:?}",
            layout.mode()
        );
        return;
    }
    let cgroup = Cgroup::create(&layout, &unique("hyb"), &Limits::default()).expect("create");
    assert!(cgroup.v2_dir().is_none());
    assert!(cgroup.unified_id().is_some());
    assert!(cgroup.dirs().len() > 1);
    cgroup.destroy().expect("destroy");
}

/// Runs `: < /dev/<node>` inside `cgroup` and returns whether the open succeeded, plus stderr.
fn can_open(cgroup: &Cgroup, node: &str) -> (bool, String) {
    let mut worker = Worker::spawn(&format!(": < /dev/{node}"));
    cgroup.add_process(worker.pid()).expect("add");
    worker.start();
    let (status, stderr) = worker.finish(Duration::from_secs(10));
    (status.success(), stderr)
}

fn device_allowlist_is_enforced(layout: &Layout, name: &str) -> Cgroup {
    let limits = Limits {
        devices: Some(vec![DeviceRule::char_rw(1, 5)]), // /dev/zero only
        ..Limits::default()
    };
    let cgroup = Cgroup::create(layout, name, &limits).expect("create");
    let (ok, stderr) = can_open(&cgroup, "null");
    assert!(!ok, "/dev/null must be denied");
    assert!(
        stderr.contains("Operation not permitted"),
        "expected EPERM, got {stderr:?}"
    );
    let (ok, stderr) = can_open(&cgroup, "zero");
    assert!(ok, "/dev/zero must be allowed: {stderr}");
    cgroup
}

#[test]
fn v1_device_allowlist() {
    let Some(layout) = host_layout("v1_device_allowlist") else {
        return;
    };
    if layout.device_backend() != DeviceBackend::V1 {
        println!("SKIP v1_device_allowlist: no v1 devices hierarchy on this host");
        return;
    }
    let cgroup = device_allowlist_is_enforced(&layout, &unique("dev1"));
    assert!(!cgroup.has_device_program());
    cgroup.destroy().expect("destroy");
}

#[test]
fn bpf_device_allowlist_on_unified_hierarchy() {
    let Some(layout) = host_layout("bpf_device_allowlist_on_unified_hierarchy") else {
        return;
    };
    let layout = match layout.with_device_backend(DeviceBackend::Bpf) {
        Ok(layout) => layout,
        Err(e) => {
            println!("SKIP bpf_device_allowlist_on_unified_hierarchy: {e}");
            return;
        }
    };
    let name = unique("devbpf");
    let cgroup = device_allowlist_is_enforced(&layout, &name);
    assert!(cgroup.has_device_program());
    let dirs = cgroup.dirs().to_vec();
    cgroup.destroy().expect("destroy detaches and removes");
    assert_gone(&dirs);
    // The host itself is untouched: /dev/null still opens outside the sandbox.
    assert!(std::fs::File::open("/dev/null").is_ok());
}

#[test]
fn kill_all_empties_and_destroy_leaves_nothing() {
    let Some(layout) = host_layout("kill_all_empties_and_destroy_leaves_nothing") else {
        return;
    };
    let limits = Limits {
        memory_bytes: Some(128 << 20),
        pids_max: Some(64),
        cpu_quota: Some(CpuQuota::cpus(0.5)),
        devices: (layout.device_backend() != DeviceBackend::Unavailable)
            .then(DeviceRule::container_defaults),
    };
    let cgroup = Cgroup::create(&layout, &unique("kill"), &limits).expect("create");
    let mut worker = Worker::spawn("sleep 30 & sleep 30 & sleep 30 & wait");
    cgroup.add_process(worker.pid()).expect("add");
    worker.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cgroup.pids().expect("pids").len() < 4 {
        assert!(Instant::now() < deadline, "children never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    cgroup.kill_all().expect("kill_all");
    assert!(cgroup.pids().expect("pids").is_empty());
    for dir in cgroup.dirs() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.trim().is_empty(),
            "{} still has {procs}",
            dir.display()
        );
    }
    let dirs = cgroup.dirs().to_vec();
    assert!(dirs.len() >= 2 || layout.mode() == Mode::V2);
    cgroup.destroy().expect("destroy");
    assert_gone(&dirs);
    let (status, _) = worker.finish(Duration::from_secs(5));
    assert_eq!(signal_of(status), Some(9));
}

#[test]
fn drop_removes_the_cgroup() {
    let Some(layout) = host_layout("drop_removes_the_cgroup") else {
        return;
    };
    let dirs = {
        let cgroup = Cgroup::create(&layout, &unique("drop"), &Limits::default()).expect("create");
        cgroup.dirs().to_vec()
    };
    assert!(!dirs.is_empty());
    assert_gone(&dirs);
}

/// An owner that certainly ran and is gone: our own reaped child.
fn dead_owner() -> Owner {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("reap");
    Owner { pid, start_time: 1 }
}

#[test]
fn registry_finds_a_dead_supervisors_cgroup_and_keeps_live_ones() {
    let Some(layout) = host_layout("registry_finds_a_dead_supervisors_cgroup") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::open(dir.path().join("registry")).expect("open");
    let dead = dead_owner();
    // What a supervisor killed after its mkdirs leaves: the entry and the directories.
    let stale_name = format!("{DIR_PREFIX}{}@{}", unique("reg-stale"), dead.tag());
    std::fs::write(dir.path().join("registry").join(&stale_name), b"").expect("entry");
    let mut stale_dirs = Vec::new();
    for root in layout.roots() {
        let d = root.join(&stale_name);
        std::fs::create_dir(&d).expect("stale dir");
        stale_dirs.push(d);
    }
    let live = registry
        .create(
            &layout,
            &unique("reg-live"),
            &Limits::default(),
            watertight_cgroups::Needs::ALL,
        )
        .expect("live");
    let entries = || {
        std::fs::read_dir(dir.path().join("registry"))
            .unwrap()
            .count()
    };
    assert_eq!(entries(), 2, "the live cgroup is registered too");

    assert_eq!(registry.cleanup_stale(&layout).expect("cleanup"), 1);
    assert_gone(&stale_dirs);
    assert_eq!(entries(), 1, "only the live entry is left");
    for d in live.dirs() {
        assert!(d.exists(), "live cgroup {} was removed", d.display());
    }
    live.destroy().expect("destroy live");
    assert_eq!(entries(), 0, "destroy removes the entry");
}

#[test]
fn cleanup_stale_removes_dead_owners_only() {
    let Some(layout) = host_layout("cleanup_stale_removes_dead_owners_only") else {
        return;
    };
    let dead = dead_owner();
    let stale_name = format!("{}@{}", unique("stale"), dead.tag());
    let mut stale_dirs = Vec::new();
    for root in layout.roots() {
        let dir = root.join(format!("{DIR_PREFIX}{stale_name}"));
        std::fs::create_dir(&dir).expect("stale dir");
        stale_dirs.push(dir);
    }
    // Leave a process in the stale cgroup, as a killed supervisor would.
    let mut orphan = Worker::spawn("exec sleep 30");
    for dir in &stale_dirs {
        std::fs::write(dir.join("cgroup.procs"), orphan.pid().to_string()).expect("place orphan");
    }
    orphan.start();
    let live = Cgroup::create(&layout, &unique("live"), &Limits::default()).expect("live");

    let removed = cleanup_stale(&layout).expect("cleanup_stale");
    assert!(removed >= 1, "removed {removed}");
    assert_gone(&stale_dirs);
    for dir in live.dirs() {
        assert!(dir.exists(), "live cgroup {} was removed", dir.display());
    }
    let (status, _) = orphan.finish(Duration::from_secs(5));
    assert_eq!(signal_of(status), Some(9), "orphan must be killed");
    live.destroy().expect("destroy live");
}

#[test]
fn bad_names_and_duplicates_are_refused_cleanly() {
    let Some(layout) = host_layout("bad_names_and_duplicates_are_refused_cleanly") else {
        return;
    };
    for name in ["", "../escape", "a/b", ".hidden", "with space", "x@1-2"] {
        let err = Cgroup::create(&layout, name, &Limits::default()).expect_err(name);
        assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
        assert!(err.to_string().contains("[A-Za-z0-9._-]"));
    }
    let name = unique("dup");
    let first = Cgroup::create(&layout, &name, &Limits::default()).expect("first");
    let err = Cgroup::create(&layout, &name, &Limits::default()).expect_err("duplicate");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    for dir in first.dirs() {
        assert!(
            dir.exists(),
            "failed duplicate removed the first cgroup's {}",
            dir.display()
        );
    }
    first.destroy().expect("destroy");
}

/// A hybrid layout whose memory controller is claimed to live in the pids hierarchy: the memory
/// limit write fails after several directories exist, and all of them must be rolled back.
#[test]
fn failed_limit_write_rolls_back_every_hierarchy() {
    let test = "failed_limit_write_rolls_back_every_hierarchy";
    let Some(host) = host_layout(test) else {
        return;
    };
    let (Some(unified), Some(pids)) = (host.unified_root(), host.v1_root(Controller::Pids)) else {
        println!("SKIP {test}: needs a cgroup2 mount and a v1 pids hierarchy");
        return;
    };
    let mountinfo = format!(
        "1 0 0:1 / {} rw - cgroup2 cgroup2 rw\n2 0 0:2 / {} rw - cgroup cgroup rw,pids,memory\n",
        unified.display(),
        pids.display()
    );
    let layout = Layout::from_mountinfo(&mountinfo, "").expect("layout");
    let name = unique("rollback");
    let err = Cgroup::create(
        &layout,
        &name,
        &Limits {
            memory_bytes: Some(64 << 20),
            ..Limits::default()
        },
    )
    .expect_err("memory.limit_in_bytes is not in the pids hierarchy");
    assert!(err.to_string().contains("memory.limit_in_bytes"), "{err}");
    for root in [unified, pids] {
        let leftovers: Vec<_> = std::fs::read_dir(root)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| {
                        n.to_string_lossy()
                            .starts_with(&format!("{DIR_PREFIX}{name}"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "left behind in {}: {leftovers:?}",
            root.display()
        );
    }
}

/// Bind-mounts a real hierarchy read-only; unmounted on drop.
struct ReadOnlyMount {
    target: PathBuf,
}

impl ReadOnlyMount {
    fn new(source: &Path, name: &str) -> Result<ReadOnlyMount, String> {
        use nix::mount::{mount, MsFlags};
        let target = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        let guard = ReadOnlyMount { target };
        mount(
            Some(source),
            &guard.target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| e.to_string())?;
        mount(
            None::<&str>,
            &guard.target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| e.to_string())?;
        Ok(guard)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.target);
    }
}

#[test]
fn read_only_hierarchy_gives_clear_error_and_rolls_back() {
    let test = "read_only_hierarchy_gives_clear_error_and_rolls_back";
    let Some(host) = host_layout(test) else {
        return;
    };
    let (Some(memory), Some(pids)) = (
        host.v1_root(Controller::Memory),
        host.v1_root(Controller::Pids),
    ) else {
        println!("SKIP {test}: needs v1 memory and pids hierarchies");
        return;
    };
    let ro = match ReadOnlyMount::new(pids, &format!("wt-ro-pids-{}", std::process::id())) {
        Ok(ro) => ro,
        Err(e) => {
            println!("SKIP {test}: cannot make a read-only bind mount: {e}");
            return;
        }
    };
    let mountinfo = format!(
        "1 0 0:1 / {} rw - cgroup cgroup rw,memory\n2 0 0:2 / {} ro - cgroup cgroup rw,pids\n",
        memory.display(),
        ro.target.display()
    );
    let layout = Layout::from_mountinfo(&mountinfo, "").expect("layout");
    let name = unique("ro");
    let err = Cgroup::create(
        &layout,
        &name,
        &Limits {
            memory_bytes: Some(64 << 20),
            pids_max: Some(10),
            ..Limits::default()
        },
    )
    .expect_err("read-only pids hierarchy");
    assert!(err.to_string().contains("read-only"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(memory)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name())
                .filter(|n| {
                    n.to_string_lossy()
                        .starts_with(&format!("{DIR_PREFIX}{name}"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "memory cgroup left behind: {leftovers:?}"
    );
}

#[test]
fn add_process_rejects_bad_and_exited_pids() {
    let Some(layout) = host_layout("add_process_rejects_bad_and_exited_pids") else {
        return;
    };
    let cgroup = Cgroup::create(&layout, &unique("badpid"), &Limits::default()).expect("create");
    for pid in [0, -1] {
        let err = cgroup.add_process(pid).expect_err("invalid pid");
        assert!(matches!(err, Error::InvalidPid { .. }), "{err}");
    }
    let mut child = Command::new("true").spawn().expect("spawn true");
    let gone = child.id() as i32;
    child.wait().expect("reap");
    let err = cgroup.add_process(gone).expect_err("exited pid");
    assert!(err.to_string().contains("already exited"), "{err}");
    cgroup.destroy().expect("destroy");
}

/// This host's v1 hierarchies alone, as a pure cgroup v1 host would use them: no cgroup.kill, so
/// kill_all goes through pidfd-checked SIGKILL and a frozen v1 freezer must be thawed.
fn v1_only_layout(test: &str) -> Option<Layout> {
    let host = host_layout(test)?;
    let mut mountinfo = String::new();
    for (i, controller) in [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpuacct,
        Controller::Freezer,
    ]
    .into_iter()
    .enumerate()
    {
        let Some(root) = host.v1_root(controller) else {
            println!("SKIP {test}: no v1 {} hierarchy", controller.name());
            return None;
        };
        mountinfo.push_str(&format!(
            "{i} 0 0:{i} / {} rw - cgroup cgroup rw,{}\n",
            root.display(),
            controller.name()
        ));
    }
    Some(Layout::from_mountinfo(&mountinfo, "").expect("layout"))
}

#[test]
fn freeze_thaw_and_kill_on_pure_v1_layout() {
    let Some(layout) = v1_only_layout("freeze_thaw_and_kill_on_pure_v1_layout") else {
        return;
    };
    assert_eq!(layout.mode(), Mode::V1);
    freeze_stops_and_thaw_resumes(&layout, &unique("freeze1"));
}

#[test]
fn pure_v1_layout_kills_forking_children_and_reads_cpuacct() {
    let Some(layout) = v1_only_layout("pure_v1_layout_kills_forking_children_and_reads_cpuacct")
    else {
        return;
    };
    let cgroup = Cgroup::create(
        &layout,
        &unique("v1kill"),
        &Limits {
            pids_max: Some(32),
            ..Limits::default()
        },
    )
    .expect("create");
    assert_eq!(cgroup.unified_id(), None);
    assert!(cgroup.v2_dir().is_none());
    // A shell that keeps forking short-lived children while kill_all runs.
    let mut worker = Worker::spawn("while :; do sleep 5 & sleep 0.01; done");
    cgroup.add_process(worker.pid()).expect("add");
    worker.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cgroup.pids().expect("pids").len() < 5 {
        assert!(Instant::now() < deadline, "children never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(cgroup.stats().expect("stats").cpu_usage_ns > Some(0));
    cgroup.kill_all().expect("kill_all");
    for dir in cgroup.dirs() {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.trim().is_empty(),
            "{} still has {procs}",
            dir.display()
        );
    }
    let (status, _) = worker.finish(Duration::from_secs(5));
    assert_eq!(signal_of(status), Some(9));
    let dirs = cgroup.dirs().to_vec();
    cgroup.destroy().expect("destroy");
    assert_gone(&dirs);
}
