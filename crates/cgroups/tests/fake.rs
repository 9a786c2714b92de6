//! The crate's cgroup logic on a fake cgroupfs (a tree in a temporary directory that records
//! every mkdir, rmdir and write): layout detection from mountinfo fixtures of a pure v2 host
//! (Debian 12's default), a pure v1 host and a hybrid host (this machine's), and on each the
//! exact files and values a sandbox's cgroup gets for its limits, device allowlist, freeze,
//! thaw and destroy. Needs no root and runs the same on any host; tests/kernel.rs checks the
//! real kernel's behaviour.

use std::path::Path;
use std::sync::Arc;

use watertight_cgroups::fake::{FakeCgroupFs, FakeOp};
use watertight_cgroups::owner::Owner;
use watertight_cgroups::{
    cleanup_stale, Cgroup, Controller, CpuQuota, DeviceBackend, DeviceRule, Error, Layout, Limits,
    Mode, Needs, Placement, Plan, Registry, DIR_PREFIX,
};

/// Debian 12 default: systemd with the unified hierarchy only.
const PURE_V2: &str = "\
22 29 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
26 23 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
29 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
";
const PURE_V2_CONTROLLERS: [&str; 8] = [
    "cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc",
];

/// A pure v1 host (CentOS 7 style): cpu and cpuacct co-mounted, a named systemd hierarchy.
const PURE_V1: &str = "\
18 61 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,devices
32 25 0:28 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,freezer
33 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
";

/// This machine (Debian 12, kernel 6.18, hybrid): v1 controllers plus cgroup2 at unified with
/// only hugetlb offered.
const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// A fake host built from `mountinfo`, and its layout detected through the fake.
struct Host {
    _dir: tempfile::TempDir,
    fake: Arc<FakeCgroupFs>,
    layout: Layout,
}

fn host(mountinfo: &str, unified_controllers: &[&str]) -> Host {
    host_with(mountinfo, unified_controllers, |fake| fake)
}

fn host_with(
    mountinfo: &str,
    unified_controllers: &[&str],
    adjust: impl FnOnce(FakeCgroupFs) -> FakeCgroupFs,
) -> Host {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = FakeCgroupFs::from_mountinfo(dir.path(), mountinfo, unified_controllers)
        .expect("fake tree");
    let fake = Arc::new(adjust(fake));
    let layout = Layout::detect_in(fake.clone(), mountinfo).expect("layout");
    Host {
        _dir: dir,
        fake,
        layout,
    }
}

/// The recorded operations as lines, with the cgroup's directory name shown as `CG`.
fn lines(ops: &[FakeOp], dir_name: &str) -> Vec<String> {
    let show = |path: &Path| path.display().to_string().replace(dir_name, "CG");
    ops.iter()
        .map(|op| match op {
            FakeOp::Mkdir(dir) => format!("mkdir {}", show(dir)),
            FakeOp::Rmdir(dir) => format!("rmdir {}", show(dir)),
            FakeOp::Write(file, value) => format!("write {} {value}", show(file)),
            FakeOp::DeviceProgram(dir, rules) => {
                format!("bpf-devices {} [{}]", show(dir), rules.join(", "))
            }
            FakeOp::OpenForWrite(file) => format!("open {}", show(file)),
        })
        .collect()
}

fn all_limits() -> Limits {
    Limits {
        memory_bytes: Some(64 << 20),
        pids_max: Some(32),
        cpu_quota: Some(CpuQuota::cpus(0.5)),
        devices: Some(vec![DeviceRule::char_rw(1, 3), DeviceRule::char_rw(1, 9)]),
    }
}

const NO_NEEDS: Needs = Needs {
    freeze: false,
    cpu_usage: false,
    bpf: false,
};

#[test]
fn layouts_are_detected_from_fixtures() {
    let v2 = host(PURE_V2, &PURE_V2_CONTROLLERS);
    assert_eq!(v2.layout.mode(), Mode::V2);
    assert_eq!(v2.layout.unified_root(), Some(Path::new("/sys/fs/cgroup")));
    for c in [Controller::Memory, Controller::Pids, Controller::Cpu] {
        assert_eq!(v2.layout.placement(c), Some(Placement::Unified), "{c:?}");
    }
    assert_eq!(v2.layout.device_backend(), DeviceBackend::Bpf);
    assert_eq!(v2.layout.roots(), [Path::new("/sys/fs/cgroup")]);

    let v1 = host(PURE_V1, &[]);
    assert_eq!(v1.layout.mode(), Mode::V1);
    assert_eq!(v1.layout.unified_root(), None);
    assert_eq!(
        v1.layout.placement(Controller::Cpuacct),
        Some(Placement::V1(Path::new("/sys/fs/cgroup/cpu,cpuacct")))
    );
    assert_eq!(v1.layout.device_backend(), DeviceBackend::V1);
    assert_eq!(v1.layout.roots().len(), 5, "{:?}", v1.layout.roots());

    let hybrid = host(HYBRID, &["hugetlb"]);
    assert_eq!(hybrid.layout.mode(), Mode::Hybrid);
    assert_eq!(hybrid.layout.unified_controllers(), ["hugetlb"]);
    assert_eq!(
        hybrid.layout.placement(Controller::Memory),
        Some(Placement::V1(Path::new("/sys/fs/cgroup/memory")))
    );
    // cgroup.freeze is a core cgroup2 file, but the v1 freezer wins where it is mounted.
    assert_eq!(
        hybrid.layout.placement(Controller::Freezer),
        Some(Placement::V1(Path::new("/sys/fs/cgroup/freezer")))
    );
    assert_eq!(hybrid.layout.device_backend(), DeviceBackend::V1);

    // The unified root's controllers are read through the filesystem the layout was given.
    assert!(hybrid.fake.log().is_empty(), "detection only reads");
}

#[test]
fn detection_without_cgroup_mounts_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeCgroupFs::new(dir.path()));
    let err = Layout::detect_in(fake, "22 1 0:5 / /proc rw - proc proc rw\n").unwrap_err();
    assert!(matches!(err, Error::NoHierarchy), "{err}");
}

#[test]
fn hybrid_sandbox_writes_v1_files_and_removes_every_directory() {
    let h = host(HYBRID, &["hugetlb"]);
    let needs = Needs {
        freeze: true,
        ..NO_NEEDS
    };
    let plan = Plan::new(h.layout.clone(), all_limits(), needs).unwrap();
    assert_eq!(
        plan.roots(),
        [
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/cpu",
            "/sys/fs/cgroup/devices",
            "/sys/fs/cgroup/freezer"
        ]
        .map(Path::new)
    );
    plan.delegate_controllers().unwrap();
    let cgroup = plan.create("job").unwrap();
    let name = cgroup.dir_name().to_owned();
    assert!(name.starts_with(&format!("{DIR_PREFIX}job@")), "{name}");
    assert_eq!(
        cgroup.unified_dir(),
        None,
        "no unified directory without a need for it"
    );
    cgroup.add_process(4242).unwrap();
    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());
    let cg = "/sys/fs/cgroup";
    let devices_list = h
        .fake
        .contents(
            &Path::new(cg)
                .join("devices")
                .join(&name)
                .join("devices.list"),
        )
        .unwrap();
    assert_eq!(devices_list, "c 1:3 rw\nc 1:9 rw\n");
    cgroup.destroy().unwrap();
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            format!("mkdir {cg}/memory/CG"),
            format!("mkdir {cg}/pids/CG"),
            format!("mkdir {cg}/cpu/CG"),
            format!("mkdir {cg}/devices/CG"),
            format!("mkdir {cg}/freezer/CG"),
            format!("write {cg}/memory/CG/memory.limit_in_bytes 67108864"),
            format!("write {cg}/memory/CG/memory.memsw.limit_in_bytes 67108864"),
            format!("write {cg}/pids/CG/pids.max 32"),
            format!("write {cg}/cpu/CG/cpu.cfs_period_us 100000"),
            format!("write {cg}/cpu/CG/cpu.cfs_quota_us 50000"),
            format!("write {cg}/devices/CG/devices.deny a"),
            format!("write {cg}/devices/CG/devices.allow c 1:3 rw"),
            format!("write {cg}/devices/CG/devices.allow c 1:9 rw"),
            format!("write {cg}/memory/CG/cgroup.procs 4242"),
            format!("write {cg}/pids/CG/cgroup.procs 4242"),
            format!("write {cg}/cpu/CG/cgroup.procs 4242"),
            format!("write {cg}/devices/CG/cgroup.procs 4242"),
            format!("write {cg}/freezer/CG/cgroup.procs 4242"),
            format!("write {cg}/freezer/CG/freezer.state FROZEN"),
            format!("write {cg}/freezer/CG/freezer.state THAWED"),
            format!("rmdir {cg}/freezer/CG"),
            format!("rmdir {cg}/devices/CG"),
            format!("rmdir {cg}/cpu/CG"),
            format!("rmdir {cg}/pids/CG"),
            format!("rmdir {cg}/memory/CG"),
        ]
    );
    for root in h.layout.roots() {
        assert!(
            !h.fake.host(&root.join(&name)).exists(),
            "{}",
            root.display()
        );
    }
}

#[test]
fn hybrid_sandbox_with_bpf_gets_a_unified_directory_first() {
    let h = host(HYBRID, &["hugetlb"]);
    let limits = Limits {
        memory_bytes: Some(1 << 30),
        ..Limits::default()
    };
    let needs = Needs {
        bpf: true,
        cpu_usage: true,
        ..NO_NEEDS
    };
    let cgroup = Cgroup::create_with(&h.layout, "gate", &limits, needs).unwrap();
    let name = cgroup.dir_name().to_owned();
    let unified = Path::new("/sys/fs/cgroup/unified").join(&name);
    assert_eq!(cgroup.unified_dir(), Some(unified.as_path()));
    assert!(cgroup.unified_id().is_some());
    assert_eq!(
        cgroup.v2_dir(),
        None,
        "hybrid: clone3 into the unified cgroup would skip v1"
    );
    // CPU usage comes from the unified cpu.stat, so no cpuacct directory.
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            "mkdir /sys/fs/cgroup/unified/CG",
            "mkdir /sys/fs/cgroup/memory/CG",
            "mkdir /sys/fs/cgroup/pids/CG",
            "write /sys/fs/cgroup/memory/CG/memory.limit_in_bytes 1073741824",
            "write /sys/fs/cgroup/memory/CG/memory.memsw.limit_in_bytes 1073741824",
        ]
    );
    h.fake
        .set(
            &unified.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\n",
        )
        .unwrap();
    assert_eq!(cgroup.stats().unwrap().cpu_usage_ns, Some(1_500_000));
}

/// `admit`: the unified hierarchy by the caller (`cgroup.procs`), each v1 hierarchy handed over
/// as its open `tasks` file, which `join_self` writes "0" to (the caller itself).
#[test]
fn admit_moves_in_the_unified_hierarchy_and_hands_over_v1_tasks_files() {
    let h = host(HYBRID, &["hugetlb"]);
    let limits = Limits {
        memory_bytes: Some(1 << 30),
        ..Limits::default()
    };
    let needs = Needs {
        bpf: true,
        ..NO_NEEDS
    };
    let cgroup = Cgroup::create_with(&h.layout, "admit", &limits, needs).unwrap();
    let name = cgroup.dir_name().to_owned();
    let before = h.fake.log().len();
    let tasks = cgroup.admit(4242).unwrap();
    assert_eq!(
        lines(&h.fake.log()[before..], &name),
        [
            "write /sys/fs/cgroup/unified/CG/cgroup.procs 4242",
            "open /sys/fs/cgroup/memory/CG/tasks",
            "open /sys/fs/cgroup/pids/CG/tasks",
        ]
    );
    assert_eq!(tasks.len(), 2);
    watertight_cgroups::join_self(&tasks).unwrap();
    for controller in ["memory", "pids"] {
        let file = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&name)
            .join("tasks");
        assert_eq!(
            h.fake.contents(&file).unwrap(),
            "0",
            "{controller}: written through the fd"
        );
    }
    assert!(matches!(cgroup.admit(0), Err(Error::InvalidPid { pid: 0 })));
    cgroup.destroy().unwrap();

    // Pure v2: nothing to hand over.
    let v2 = host(PURE_V2, &PURE_V2_CONTROLLERS);
    let plan = Plan::new(v2.layout.clone(), all_limits(), NO_NEEDS).unwrap();
    plan.delegate_controllers().unwrap();
    let cgroup = plan.create("admit").unwrap();
    let name = cgroup.dir_name().to_owned();
    let before = v2.fake.log().len();
    assert!(cgroup.admit(77).unwrap().is_empty());
    assert_eq!(
        lines(&v2.fake.log()[before..], &name),
        ["write /sys/fs/cgroup/CG/cgroup.procs 77"]
    );
    cgroup.destroy().unwrap();
}

#[test]
fn pure_v2_sandbox_delegates_writes_v2_files_and_asks_for_a_device_program() {
    let h = host(PURE_V2, &PURE_V2_CONTROLLERS);
    let needs = Needs {
        freeze: true,
        ..NO_NEEDS
    };
    let plan = Plan::new(h.layout.clone(), all_limits(), needs).unwrap();
    assert_eq!(plan.roots(), [Path::new("/sys/fs/cgroup")]);
    plan.delegate_controllers().unwrap();
    // Once delegated, a second sandbox reads subtree_control and writes nothing there.
    plan.delegate_controllers().unwrap();
    let cgroup = plan.create("job").unwrap();
    let name = cgroup.dir_name().to_owned();
    let dir = Path::new("/sys/fs/cgroup").join(&name);
    assert_eq!(cgroup.v2_dir(), Some(dir.as_path()), "clone3 target");
    assert!(
        !cgroup.has_device_program(),
        "the fake loads no BPF program"
    );
    cgroup.add_process(77).unwrap();
    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    cgroup.thaw().unwrap();
    cgroup.destroy().unwrap();
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            "write /sys/fs/cgroup/cgroup.subtree_control +memory +pids +cpu",
            "mkdir /sys/fs/cgroup/CG",
            "write /sys/fs/cgroup/CG/memory.max 67108864",
            "write /sys/fs/cgroup/CG/memory.swap.max 0",
            "write /sys/fs/cgroup/CG/pids.max 32",
            "write /sys/fs/cgroup/CG/cpu.max 50000 100000",
            "bpf-devices /sys/fs/cgroup/CG [c 1:3 rw, c 1:9 rw]",
            "write /sys/fs/cgroup/CG/cgroup.procs 77",
            "write /sys/fs/cgroup/CG/cgroup.freeze 1",
            "write /sys/fs/cgroup/CG/cgroup.freeze 0",
            "rmdir /sys/fs/cgroup/CG",
        ]
    );
}

#[test]
fn pure_v2_already_delegated_root_is_left_alone() {
    let h = host(PURE_V2, &PURE_V2_CONTROLLERS);
    h.fake
        .set(
            Path::new("/sys/fs/cgroup/cgroup.subtree_control"),
            "cpu memory pids\n",
        )
        .unwrap();
    let limits = Limits {
        pids_max: Some(8),
        ..Limits::default()
    };
    let cgroup = Cgroup::create_with(&h.layout, "quiet", &limits, NO_NEEDS).unwrap();
    let name = cgroup.dir_name().to_owned();
    drop(cgroup);
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            "mkdir /sys/fs/cgroup/CG",
            "write /sys/fs/cgroup/CG/pids.max 8",
            "rmdir /sys/fs/cgroup/CG",
        ]
    );
}

#[test]
fn pure_v2_missing_controller_file_is_delegated_and_retried() {
    // A plan created without delegating first (as a parent made by another tool would be):
    // memory.max is missing, so the write delegates the controllers and tries again.
    let h = host(PURE_V2, &PURE_V2_CONTROLLERS);
    let limits = Limits {
        memory_bytes: Some(1 << 20),
        ..Limits::default()
    };
    let plan = Plan::new(h.layout.clone(), limits, NO_NEEDS).unwrap();
    let cgroup = plan.create("late").unwrap();
    let name = cgroup.dir_name().to_owned();
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            "mkdir /sys/fs/cgroup/CG",
            "write /sys/fs/cgroup/cgroup.subtree_control +memory +pids +cpu",
            "write /sys/fs/cgroup/CG/memory.max 1048576",
            "write /sys/fs/cgroup/CG/memory.swap.max 0",
        ]
    );
}

#[test]
fn pure_v1_sandbox_uses_comounted_cpu_and_reads_its_stats() {
    let h = host(PURE_V1, &[]);
    let limits = Limits {
        memory_bytes: Some(8 << 20),
        pids_max: Some(16),
        cpu_quota: Some(CpuQuota {
            quota_us: 20_000,
            period_us: 50_000,
        }),
        devices: None,
    };
    let needs = Needs {
        cpu_usage: true,
        ..NO_NEEDS
    };
    let cgroup = Cgroup::create_with(&h.layout, "v1", &limits, needs).unwrap();
    let name = cgroup.dir_name().to_owned();
    let cpu = Path::new("/sys/fs/cgroup/cpu,cpuacct").join(&name);
    let memory = Path::new("/sys/fs/cgroup/memory").join(&name);
    let pids = Path::new("/sys/fs/cgroup/pids").join(&name);
    // cpu and cpuacct share one directory: one mkdir, one cgroup.procs write.
    assert_eq!(cgroup.dirs().len(), 3, "{:?}", cgroup.dirs());
    for (file, text) in [
        (cpu.join("cpuacct.usage"), "2500000\n"),
        (memory.join("memory.max_usage_in_bytes"), "4194304\n"),
        (memory.join("memory.usage_in_bytes"), "1048576\n"),
        (
            memory.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        ),
        (memory.join("memory.failcnt"), "3\n"),
        (memory.join("memory.memsw.failcnt"), "4\n"),
        (pids.join("pids.current"), "5\n"),
        (pids.join("pids.events"), "max 6\n"),
    ] {
        h.fake.set(&file, text).unwrap();
    }
    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.cpu_usage_ns, Some(2_500_000));
    assert_eq!(stats.memory_peak_bytes, Some(4 << 20));
    assert_eq!(stats.memory_current_bytes, Some(1 << 20));
    assert_eq!(stats.oom_kills, Some(2));
    assert_eq!(stats.memory_limit_hits, Some(7));
    assert_eq!(stats.pids_current, Some(5));
    assert_eq!(stats.pids_limit_hits, Some(6));
    cgroup.destroy().unwrap();
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            "mkdir /sys/fs/cgroup/memory/CG",
            "mkdir /sys/fs/cgroup/pids/CG",
            "mkdir /sys/fs/cgroup/cpu,cpuacct/CG",
            "write /sys/fs/cgroup/memory/CG/memory.limit_in_bytes 8388608",
            "write /sys/fs/cgroup/memory/CG/memory.memsw.limit_in_bytes 8388608",
            "write /sys/fs/cgroup/pids/CG/pids.max 16",
            "write /sys/fs/cgroup/cpu,cpuacct/CG/cpu.cfs_period_us 50000",
            "write /sys/fs/cgroup/cpu,cpuacct/CG/cpu.cfs_quota_us 20000",
            "rmdir /sys/fs/cgroup/cpu,cpuacct/CG",
            "rmdir /sys/fs/cgroup/pids/CG",
            "rmdir /sys/fs/cgroup/memory/CG",
        ]
    );
}

#[test]
fn without_swap_accounting_no_swap_file_is_written() {
    for (mountinfo, controllers, expected) in [
        (
            HYBRID,
            &["hugetlb"][..],
            "write /sys/fs/cgroup/memory/CG/memory.limit_in_bytes 4096",
        ),
        (
            PURE_V2,
            &PURE_V2_CONTROLLERS[..],
            "write /sys/fs/cgroup/CG/memory.max 4096",
        ),
    ] {
        let h = host_with(
            mountinfo,
            controllers,
            FakeCgroupFs::without_swap_accounting,
        );
        let limits = Limits {
            memory_bytes: Some(4096),
            ..Limits::default()
        };
        let plan = Plan::new(h.layout.clone(), limits, NO_NEEDS).unwrap();
        plan.delegate_controllers().unwrap();
        h.fake.take_log();
        let cgroup = plan.create("noswap").unwrap();
        let writes: Vec<String> = lines(&h.fake.log(), cgroup.dir_name())
            .into_iter()
            .filter(|l| l.starts_with("write"))
            .collect();
        assert_eq!(writes, [expected]);
    }
}

#[test]
fn a_failed_limit_write_removes_every_directory_made() {
    // The layout says pids lives in a v1 hierarchy whose directories have no pids files (as
    // when the controller went away): pids.max fails after three mkdirs.
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeCgroupFs::new(dir.path());
    fake.mount_v1(Path::new("/cg/memory"), &["memory"]).unwrap();
    fake.mount_v1(Path::new("/cg/pids"), &[]).unwrap();
    fake.mount_v1(Path::new("/cg/freezer"), &["freezer"])
        .unwrap();
    let fake = Arc::new(fake);
    let mountinfo = "\
1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory
2 0 0:2 / /cg/pids rw - cgroup cgroup rw,pids
3 0 0:3 / /cg/freezer rw - cgroup cgroup rw,freezer
";
    let layout = Layout::detect_in(fake.clone(), mountinfo).unwrap();
    let limits = Limits {
        memory_bytes: Some(1 << 20),
        pids_max: Some(4),
        ..Limits::default()
    };
    let err = Cgroup::create_with(&layout, "broken", &limits, Needs::ALL).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::Write { .. }) && message.contains("pids.max"),
        "{message}"
    );
    assert!(message.contains("is the controller enabled?"), "{message}");
    let log = fake.log();
    let made: Vec<_> = log
        .iter()
        .filter_map(|op| match op {
            FakeOp::Mkdir(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let removed: Vec<_> = log
        .iter()
        .filter_map(|op| match op {
            FakeOp::Rmdir(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(made.len(), 3, "{log:?}");
    assert_eq!(removed, made.iter().rev().cloned().collect::<Vec<_>>());
}

#[test]
fn an_existing_directory_is_refused_and_left_alone() {
    let h = host(HYBRID, &["hugetlb"]);
    let first = Cgroup::create_with(&h.layout, "twice", &Limits::default(), NO_NEEDS).unwrap();
    h.fake.take_log();
    let err = Cgroup::create_with(&h.layout, "twice", &Limits::default(), NO_NEEDS).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert!(h.fake.log().is_empty(), "{:?}", h.fake.log());
    for dir in first.dirs() {
        assert!(h.fake.host(dir).is_dir());
    }
}

#[test]
fn bad_limits_and_missing_controllers_fail_before_any_change() {
    let h = host(PURE_V1, &[]);
    let tiny = Limits {
        memory_bytes: Some(1024),
        ..Limits::default()
    };
    let err = Plan::new(h.layout.clone(), tiny, NO_NEEDS).unwrap_err();
    assert!(err.to_string().contains("4096"), "{err}");
    // Pure v1 without a cgroup2 mount cannot run a BPF program.
    let v1_only = h.layout.clone().with_device_backend(DeviceBackend::Bpf);
    assert!(v1_only.is_err());
    let hybrid = host(HYBRID, &["hugetlb"]);
    let cpu_less = Layout::detect_in(
        hybrid.fake.clone(),
        &HYBRID.replace(" rw,cpu\n", " rw,cpuset2\n"),
    )
    .unwrap();
    let quota = Limits {
        cpu_quota: Some(CpuQuota::cpus(1.0)),
        ..Limits::default()
    };
    let err = Plan::new(cpu_less, quota, NO_NEEDS).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ControllerMissing {
                controller: "cpu",
                ..
            }
        ),
        "{err}"
    );
    assert!(h.fake.log().is_empty() && hybrid.fake.log().is_empty());
}

#[test]
fn stale_cgroups_of_dead_owners_are_removed_through_the_fake() {
    let h = host(HYBRID, &["hugetlb"]);
    let me = Owner::current().unwrap();
    // Same pid, other start time: a recycled pid, so the owner is dead.
    let dead = format!("{DIR_PREFIX}old@{}-{}", me.pid, me.start_time + 1);
    let alive = Cgroup::create_with(&h.layout, "alive", &Limits::default(), NO_NEEDS).unwrap();
    for root in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"] {
        watertight_cgroups::CgroupFs::mkdir(&*h.fake, &Path::new(root).join(&dead)).unwrap();
    }
    h.fake.take_log();
    assert_eq!(cleanup_stale(&h.layout).unwrap(), 1);
    assert_eq!(
        lines(&h.fake.log(), &dead),
        [
            "rmdir /sys/fs/cgroup/pids/CG",
            "rmdir /sys/fs/cgroup/memory/CG"
        ]
    );
    for dir in alive.dirs() {
        assert!(h.fake.host(dir).is_dir(), "a live owner's cgroup is kept");
    }

    // The registry finds the same through its entry, and removes the entry too.
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(registry_dir.path()).unwrap();
    let plan = Plan::new(h.layout.clone(), Limits::default(), NO_NEEDS).unwrap();
    let cgroup = registry.create_planned(&plan, "registered").unwrap();
    let entry = registry_dir.path().join(cgroup.dir_name());
    assert!(entry.is_file());
    cgroup.destroy().unwrap();
    assert!(!entry.exists());
}

#[test]
fn pure_v2_kill_uses_cgroup_kill_and_stats_come_from_v2_files() {
    let h = host(PURE_V2, &PURE_V2_CONTROLLERS);
    let limits = Limits {
        memory_bytes: Some(32 << 20),
        pids_max: Some(10),
        ..Limits::default()
    };
    let cgroup = Cgroup::create_with(&h.layout, "kill", &limits, NO_NEEDS).unwrap();
    let name = cgroup.dir_name().to_owned();
    let dir = Path::new("/sys/fs/cgroup").join(&name);
    for (file, text) in [
        ("memory.peak", "30000000\n"),
        ("memory.current", "1000\n"),
        (
            "memory.events",
            "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n",
        ),
        ("pids.current", "3\n"),
        ("pids.events", "max 4\n"),
        (
            "cpu.stat",
            "usage_usec 250\nuser_usec 200\nsystem_usec 50\n",
        ),
    ] {
        h.fake.set(&dir.join(file), text).unwrap();
    }
    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.memory_peak_bytes, Some(30_000_000));
    assert_eq!(stats.memory_current_bytes, Some(1000));
    assert_eq!(stats.memory_limit_hits, Some(9));
    assert_eq!(stats.oom_kills, Some(1));
    assert_eq!(stats.pids_current, Some(3));
    assert_eq!(stats.pids_limit_hits, Some(4));
    assert_eq!(stats.cpu_usage_ns, Some(250_000));
    // A kernel without memory.peak (before 5.19) gives no peak, not an error.
    h.fake.remove(&dir.join("memory.peak")).unwrap();
    assert_eq!(cgroup.stats().unwrap().memory_peak_bytes, None);

    // Pids only the unified directory lists are reached by cgroup.kill, never by a signal
    // (no real process has these pids' membership).
    h.fake
        .set(&dir.join("cgroup.procs"), "4242\n4243\n")
        .unwrap();
    assert_eq!(cgroup.pids().unwrap(), [4242, 4243]);
    h.fake.take_log();
    cgroup.destroy().unwrap();
    assert_eq!(
        lines(&h.fake.log(), &name),
        [
            "write /sys/fs/cgroup/CG/cgroup.kill 1",
            "rmdir /sys/fs/cgroup/CG"
        ]
    );
}
