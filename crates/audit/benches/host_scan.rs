//! The live host scan and the rules over it, on this machine's /proc. For the 10,000-process
//! measurement see benches/audit/host-10k.sh.

// criterion_group! defines an undocumented pub fn in this bench crate.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use watertight_audit::sources::host::{parse_mountinfo, parse_status, scan, HostOptions};

fn host_scan(c: &mut Criterion) {
    let opts = HostOptions {
        reference_pid: std::process::id(),
        ..HostOptions::default()
    };
    let processes = scan(&opts).map(|s| s.processes).unwrap_or(0);
    c.bench_function(&format!("scan /proc ({processes} processes)"), |b| {
        b.iter(|| scan(&opts).unwrap())
    });
    let scanned = scan(&opts).unwrap();
    c.bench_function("rules over the scanned workloads", |b| {
        b.iter(|| watertight_audit::audit_workloads(&scanned.workloads))
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    c.bench_function("parse /proc/PID/status", |b| {
        b.iter(|| parse_status(&status))
    });
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    c.bench_function("parse /proc/PID/mountinfo", |b| {
        b.iter(|| parse_mountinfo(&mountinfo))
    });
}

criterion_group!(benches, host_scan);
criterion_main!(benches);
