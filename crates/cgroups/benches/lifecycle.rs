//! Latency of one sandbox's cgroup lifecycle on this host: create, create + add a process +
//! destroy, and the same with a device allowlist through v1 files and through the BPF program.
//! Needs root and a cgroup hierarchy; prints a reason and measures nothing otherwise.

// criterion_group! defines an undocumented pub fn in this bench crate.
#![allow(missing_docs)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use watertight_cgroups::{detect, Cgroup, CpuQuota, DeviceBackend, DeviceRule, Layout, Limits};

fn sandbox_limits(devices: bool) -> Limits {
    Limits {
        memory_bytes: Some(256 << 20),
        pids_max: Some(128),
        cpu_quota: Some(CpuQuota::cpus(1.0)),
        devices: devices.then(DeviceRule::container_defaults),
    }
}

fn spawn_sleeper() -> Child {
    Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sleep")
}

/// Times create + add_process + destroy; the child is spawned and reaped outside the clock.
fn time_full_cycle(layout: &Layout, limits: &Limits, iters: u64, tag: &str) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let mut child = spawn_sleeper();
        let start = Instant::now();
        let cgroup = Cgroup::create(layout, &format!("bench-{tag}-{i}"), limits).expect("create");
        cgroup.add_process(child.id() as i32).expect("add");
        cgroup.destroy().expect("destroy");
        total += start.elapsed();
        let _ = child.wait();
    }
    total
}

fn lifecycle(c: &mut Criterion) {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping cgroup benches: need root to create cgroups");
        return;
    }
    let layout = match detect() {
        Ok(layout) => layout,
        Err(e) => {
            eprintln!("skipping cgroup benches: {e}");
            return;
        }
    };
    let mut group = c.benchmark_group("cgroup");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    group.bench_function("detect", |b| b.iter(|| detect().unwrap()));
    let plain = sandbox_limits(false);
    // The startup path: create (+ add), with teardown outside the clock.
    group.bench_function("create/limits", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let start = Instant::now();
                let cgroup = Cgroup::create(&layout, &format!("bench-create-{i}"), &plain).unwrap();
                total += start.elapsed();
                cgroup.destroy().unwrap();
            }
            total
        })
    });
    group.bench_function("create+add/limits", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let mut child = spawn_sleeper();
                let start = Instant::now();
                let cgroup = Cgroup::create(&layout, &format!("bench-add-{i}"), &plain).unwrap();
                cgroup.add_process(child.id() as i32).unwrap();
                total += start.elapsed();
                cgroup.destroy().unwrap();
                let _ = child.wait();
            }
            total
        })
    });
    let mut n = 0u64;
    group.bench_function("create+destroy/limits", |b| {
        b.iter(|| {
            n += 1;
            Cgroup::create(&layout, &format!("bench-empty-{n}"), &plain)
                .unwrap()
                .destroy()
                .unwrap()
        })
    });
    group.bench_function("create+add+destroy/limits", |b| {
        b.iter_custom(|iters| time_full_cycle(&layout, &plain, iters, "plain"))
    });
    let with_devices = sandbox_limits(true);
    if layout.device_backend() == DeviceBackend::V1 {
        group.bench_function("create+add+destroy/limits+v1-devices", |b| {
            b.iter_custom(|iters| time_full_cycle(&layout, &with_devices, iters, "v1dev"))
        });
    }
    if let Ok(bpf_layout) = layout.clone().with_device_backend(DeviceBackend::Bpf) {
        group.bench_function("create+add+destroy/limits+bpf-devices", |b| {
            b.iter_custom(|iters| time_full_cycle(&bpf_layout, &with_devices, iters, "bpfdev"))
        });
    }
    // What a pure cgroup v2 host does without controllers: the unified hierarchy alone.
    if let Some(root) = layout.unified_root() {
        let mountinfo = format!("1 0 0:1 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let unified_only = Layout::from_mountinfo(&mountinfo, "").expect("unified-only layout");
        group.bench_function("create+add+destroy/unified-only", |b| {
            b.iter_custom(|iters| time_full_cycle(&unified_only, &Limits::default(), iters, "v2"))
        });
    }
    group.finish();
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
