//! The benchmark: a sandbox of 200 tasks with a 50 MB writable layer, from the violation
//! to all tasks dead with the signed bundle on disk: freeze, capture (with syncfs), kill.
//!
//! `cargo bench -p watertight-forensics --bench capture` (root). Environment:
//! WT_BENCH_TASKS (200), WT_BENCH_LAYER_MB (50), WT_BENCH_RUNS (5),
//! WT_BENCH_EVIDENCE_DIR (a temp dir under /var/tmp: a real disk, like /var/lib).
//! Each phase's median and min over the runs is printed; a sandbox is rebuilt for every run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use watertight_cgroups::{Cgroup, Limits};
use watertight_forensics::{capture, verify, CaptureRequest, SigningKey};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A tmpfs standing in for the sandbox's /tmp, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size_mb: usize) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tmpfs mount point");
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(format!("size={}m", size_mb + 16).as_str()),
        )
        .expect("mount tmpfs (run as root)");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A layer like a build's scratch space: one big file plus many small ones.
fn fill_layer(dir: &Path, total_mb: usize) {
    let big = total_mb.saturating_sub(10).max(1) << 20;
    let chunk: Vec<u8> = (0..big).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("big.bin"), &chunk).unwrap();
    let small_dir = dir.join("objs");
    std::fs::create_dir(&small_dir).unwrap();
    for i in 0..1000 {
        std::fs::write(small_dir.join(format!("{i}.o")), &chunk[i..i + 10 * 1024]).unwrap();
    }
    std::os::unix::fs::symlink("/etc/shadow", dir.join("link")).unwrap();
}

struct Sandbox {
    cgroup: Option<Cgroup>,
    children: Vec<Child>,
}

impl Sandbox {
    fn start(layout: &watertight_cgroups::Layout, tasks: usize, run: usize) -> Sandbox {
        let name = format!("forensics-bench-{}-{run}", std::process::id());
        let cgroup = Cgroup::create(layout, &name, &Limits::default()).expect("create cgroup");
        let mut sandbox = Sandbox {
            cgroup: Some(cgroup),
            children: Vec::new(),
        };
        for _ in 0..tasks {
            let child = Command::new("sleep")
                .arg("1000")
                .env("SECRET_TOKEN", "bench")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sleep");
            let pid = child.id() as i32;
            sandbox.children.push(child);
            sandbox.cgroup().add_process(pid).expect("add process");
        }
        sandbox
    }

    fn cgroup(&self) -> &Cgroup {
        self.cgroup.as_ref().unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(c) = self.cgroup.take() {
            let _ = c.destroy();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Default)]
struct Samples {
    freeze: Vec<Duration>,
    capture: Vec<Duration>,
    kill: Vec<Duration>,
    total: Vec<Duration>,
    verify: Vec<Duration>,
    /// User + system CPU the capture consumed (all threads): on a shared, loaded machine this
    /// says more than wall time about what an idle host would see.
    capture_cpu: Vec<Duration>,
}

fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

fn stats(v: &mut [Duration]) -> String {
    v.sort();
    format!(
        "median {:>7.1} ms   min {:>7.1} ms",
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[0].as_secs_f64() * 1e3
    )
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: only time when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: the capture bench needs root (cgroups, tmpfs, /proc of other tasks)");
        return;
    }
    let tasks = env_usize("WT_BENCH_TASKS", 200);
    let layer_mb = env_usize("WT_BENCH_LAYER_MB", 50);
    let runs = env_usize("WT_BENCH_RUNS", 5).max(1);
    let evidence_root = std::env::var_os("WT_BENCH_EVIDENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let evidence = tempfile::tempdir_in(&evidence_root).expect("evidence dir");
    let layout = watertight_cgroups::detect().expect("cgroup layout");
    let tmpfs = Tmpfs::mount(layer_mb);
    fill_layer(tmpfs.0.path(), layer_mb);
    let key = SigningKey::generate().expect("key");

    println!(
        "forensic capture: {tasks} tasks, {layer_mb} MB layer (tmpfs), evidence on {}, {runs} runs",
        evidence_root.display()
    );
    let mut s = Samples::default();
    for run in 0..runs {
        let sandbox = Sandbox::start(&layout, tasks, run);
        let pid0 = sandbox.children[0].id();
        let inner = tmpfs.0.path().strip_prefix("/").unwrap();
        let layer_via_proc = Path::new(&format!("/proc/{pid0}/root")).join(inner);

        let t0 = Instant::now();
        sandbox.cgroup().freeze().expect("freeze");
        let t1 = Instant::now();
        let pids = sandbox.cgroup().pids().expect("pids");
        let req = CaptureRequest {
            sandbox_id: "bench",
            pids: &pids,
            writable_dirs: vec![("tmp".into(), layer_via_proc)],
            events_jsonl: b"{\"kind\":\"violation\",\"syscall\":\"ptrace\"}\n",
            verdict_json: b"{\"status\":\"SV\"}",
            evidence_dir: evidence.path(),
            key: &key,
            evidence_limit: 1 << 30,
            unavailable_layers: Vec::new(),
        };
        let cpu_before = cpu_time();
        let bundle = capture(&req).expect("capture");
        let t2 = Instant::now();
        s.capture_cpu.push(cpu_time() - cpu_before);
        sandbox.cgroup().kill_all().expect("kill");
        let t3 = Instant::now();
        assert_eq!(pids.len(), tasks);
        s.freeze.push(t1 - t0);
        s.capture.push(t2 - t1);
        s.kill.push(t3 - t2);
        s.total.push(t3 - t0);

        let record: watertight_forensics::record::CaptureRecord =
            serde_json::from_slice(&std::fs::read(bundle.join("capture.json")).unwrap()).unwrap();
        let seal = (t2 - t1).as_millis() as u64
            - record
                .timings_ms
                .total_before_seal
                .min((t2 - t1).as_millis() as u64);
        println!(
            "  run {run}: tasks {} ms, layers {} ms (in parallel), before seal {} ms, seal+sync {} ms",
            record.timings_ms.tasks, record.timings_ms.layers, record.timings_ms.total_before_seal, seal
        );
        let t = Instant::now();
        verify(&bundle, &key.verifying_key()).expect("bundle verifies");
        s.verify.push(t.elapsed());
        drop(sandbox);
        // Bundles stay until the end: deleting 50 MB and 2 000 inodes between runs (ext4 with
        // `discard`) slows the next run's creates, which a real evidence dir does not see.
    }
    println!("  freeze            {}", stats(&mut s.freeze));
    println!("  capture + sign    {}", stats(&mut s.capture));
    println!(
        "  capture CPU time  {}   (user+sys, all threads)",
        stats(&mut s.capture_cpu)
    );
    println!("  kill              {}", stats(&mut s.kill));
    println!(
        "  violation->dead   {}   (target < 300 ms)",
        stats(&mut s.total)
    );
    println!("  verify (after)    {}", stats(&mut s.verify));
}
