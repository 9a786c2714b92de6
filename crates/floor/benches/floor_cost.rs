//! What the floor costs a container: `harden` of a Docker-written config and compiling the
//! floor's filter (once per `create`), and, per syscall for the container's life, the second
//! filter on top of the container's own. The per-call numbers time getpid (a syscall the
//! floor's filter lets through) and ioctl(TCGETS) in this very
//! process: without a filter, under the container's own (watertight's default allowlist, as
//! long as Docker's), then with the floor's filter installed after it. Run with
//! `cargo bench -p watertight-floor --bench floor_cost`.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use watertight_floor::oci_spec::runtime::Spec;
use watertight_floor::Floor;
use watertight_seccomp::{default_profile, CompileOptions};

const ITERATIONS: u32 = 2_000_000;

const CONFIG: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
  "process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["sh"],
    "capabilities":{"bounding":["CAP_CHOWN","CAP_NET_ADMIN","CAP_NET_RAW"],"effective":["CAP_CHOWN"]}},
  "linux":{"devices":[{"path":"/dev/sda","type":"b","major":8,"minor":0}],
    "resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":200,"access":"rwm"}]},
    "seccomp":{"defaultAction":"SCMP_ACT_ERRNO"},"maskedPaths":["/proc/kcore"]}}"#;

fn per_call_ns(mut f: impl FnMut()) -> f64 {
    // Best of 5 rounds: the least disturbed by the scheduler on a 2-core VM.
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn per_create_us(mut f: impl FnMut()) -> f64 {
    let rounds = 200;
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

fn measure() -> (f64, f64) {
    let getpid = per_call_ns(|| {
        black_box(nix::unistd::getpid());
    });
    let ioctl = per_call_ns(|| {
        black_box(nix::unistd::isatty(std::io::stdin()).ok());
    });
    (getpid, ioctl)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let floor = Floor::parse(Path::new("runtime.toml"), "").expect("the built-in floor");
    let template: Spec = serde_json::from_str(CONFIG).expect("the config parses");
    let harden = per_create_us(|| {
        let mut spec = template.clone();
        black_box(floor.harden(&mut spec).expect("hardens"));
    });
    let mut spec = template.clone();
    let hardening = floor.harden(&mut spec).expect("hardens");
    let profile = hardening.seccomp_profile().expect("the floor has a filter");
    let compile = per_create_us(|| {
        black_box(
            profile
                .compile(&CompileOptions::default())
                .expect("compiles"),
        );
    });
    let floor_filter = profile
        .compile(&CompileOptions::default())
        .expect("compiles");
    let own = default_profile()
        .compile(&CompileOptions::default())
        .expect("the container's own compiles");
    println!("per create: harden {harden:.1} us, compile the floor's filter {compile:.1} us ({} BPF instructions)", floor_filter.program().len());

    let (getpid_none, ioctl_none) = measure();
    nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
    watertight_sys::seccomp::install_filter(own.program(), own.flags())
        .expect("install the container's own filter");
    let (getpid_own, ioctl_own) = measure();
    watertight_sys::seccomp::install_filter(floor_filter.program(), floor_filter.flags())
        .expect("install the floor's filter");
    let (getpid_floor, ioctl_floor) = measure();
    for (name, none, own, floor) in [
        ("getpid", getpid_none, getpid_own, getpid_floor),
        ("ioctl ", ioctl_none, ioctl_own, ioctl_floor),
    ] {
        println!(
            "{name}: no filter {none:6.1} ns, own filter {own:6.1} ns, own + floor {floor:6.1} ns (the floor adds {:+.1} ns: x{:.2} the time under the own filter alone)",
            floor - own,
            floor / own
        );
    }
}
