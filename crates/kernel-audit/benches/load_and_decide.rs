//! Load all published records and decide one version; load the index and decide one version.
//! Skips (prints why) when the shared records are absent.

// criterion_group! defines an undocumented pub fn in this bench crate.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use watertight_kernel_audit::{CveDatabase, KernelVersion};

fn records_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/kernel-vulns/cve/published"
    ));
    dir.is_dir().then_some(dir)
}

fn benches(c: &mut Criterion) {
    let Some(dir) = records_dir() else {
        eprintln!("SKIP: kernel CNA records absent under ../shared");
        return;
    };
    let version = KernelVersion::parse("6.1.100").unwrap();
    let mut group = c.benchmark_group("kernel_cves");
    group.sample_size(10);
    group.bench_function("records_load_and_decide", |b| {
        b.iter(|| {
            let db = CveDatabase::from_records_dir(&dir).unwrap();
            db.affected_count(&version)
        })
    });
    let db = CveDatabase::from_records_dir(&dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("kernel-cves.idx");
    db.write_index(&index).unwrap();
    group.sample_size(30);
    group.bench_function("index_load_and_decide", |b| {
        b.iter(|| {
            let db = CveDatabase::from_index(&index).unwrap();
            db.affected_count(&version)
        })
    });
    group.bench_function("decide_only", |b| b.iter(|| db.affected_count(&version)));
    group.bench_function("full_report_from_loaded", |b| {
        let map = watertight_kernel_audit::TierMaps::built_in();
        let release = watertight_kernel_audit::KernelRelease::parse("6.1.100").unwrap();
        b.iter(|| {
            watertight_kernel_audit::audit(watertight_kernel_audit::AuditInput {
                release: &release,
                assume_upstream: false,
                database: Some(&db),
                reachability: &map,
                isolation: watertight_kernel_audit::IsolationTier::Namespaces,
                hardening: Vec::new(),
            })
            .affected_count
        })
    });
    group.finish();
}

criterion_group!(kernel, benches);
criterion_main!(kernel);
