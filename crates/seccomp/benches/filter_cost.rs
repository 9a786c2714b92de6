//! Per-syscall cost of the default filter at run time: time getpid (short path: one binary-tree
//! lookup) and isatty/ioctl(TCGETS) (the longest path: the ioctl request check) before and after
//! installing the filter in this very process, and print the overhead. Run with
//! `cargo bench -p watertight-seccomp --bench filter_cost`.

use std::hint::black_box;
use std::time::Instant;

use watertight_seccomp::{default_profile, CompileOptions};

const ITERATIONS: u32 = 2_000_000;

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

fn measure() -> (f64, f64) {
    let getpid = per_call_ns(|| {
        black_box(nix::unistd::getpid());
    });
    let ioctl = per_call_ns(|| {
        // stdin may or may not be a tty; either way the kernel runs the ioctl path.
        black_box(nix::unistd::isatty(std::io::stdin()).ok());
    });
    (getpid, ioctl)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let profile = match std::env::var("FILTER_COST_PROFILE") {
        Ok(path) => watertight_seccomp::Profile::from_json(
            &std::fs::read_to_string(&path).expect("read FILTER_COST_PROFILE"),
        )
        .expect("parse FILTER_COST_PROFILE"),
        Err(_) => default_profile(),
    };
    let filter = profile
        .compile(&CompileOptions::default())
        .expect("profile compiles");
    let (getpid_before, ioctl_before) = measure();
    nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
    watertight_sys::seccomp::install_filter(filter.program(), filter.flags())
        .expect("install the default filter");
    let (getpid_after, ioctl_after) = measure();
    println!("filter: {} BPF instructions", filter.program().len());
    println!(
        "getpid        : {getpid_before:7.1} ns -> {getpid_after:7.1} ns  (+{:.1} ns, x{:.2})",
        getpid_after - getpid_before,
        getpid_after / getpid_before
    );
    println!(
        "ioctl(TCGETS) : {ioctl_before:7.1} ns -> {ioctl_after:7.1} ns  (+{:.1} ns, x{:.2})",
        ioctl_after - ioctl_before,
        ioctl_after / ioctl_before
    );
}
