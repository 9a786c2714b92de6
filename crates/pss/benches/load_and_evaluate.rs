//! Load + evaluate every conformance fixture (a few thousand pod manifests across
//! all levels and versions), the workload `watertight audit k8s` runs.
//! Run: `cargo bench -p watertight-pss --bench load_and_evaluate`.

// criterion_group! defines an undocumented pub fn in this bench crate.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use watertight_pss::{evaluate, load_path, parse_documents, Level, Version};

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/psa");
    dir.is_dir().then_some(dir)
}

fn bench(c: &mut Criterion) {
    let Some(dir) = fixtures() else {
        eprintln!("skipping: conformance fixtures not found at ../shared/conformance/psa");
        return;
    };
    let report = load_path(&dir);
    let pods = report.workloads.len() as u64;
    eprintln!("{pods} pods in {}", dir.display());

    let mut group = c.benchmark_group("pss");
    group.throughput(Throughput::Elements(pods));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("load_and_evaluate_restricted_latest", |b| {
        b.iter(|| {
            let report = load_path(&dir);
            report
                .workloads
                .iter()
                .filter(|w| {
                    evaluate(&w.pod_meta, &w.pod_spec, Level::Restricted, Version::Latest).allowed
                })
                .count()
        })
    });
    group.bench_function("evaluate_only_restricted_latest", |b| {
        b.iter(|| {
            report
                .workloads
                .iter()
                .filter(|w| {
                    evaluate(&w.pod_meta, &w.pod_spec, Level::Restricted, Version::Latest).allowed
                })
                .count()
        })
    });
    group.finish();

    // The checkov comparison point: 215 pods, parsed from text and evaluated.
    let texts: Vec<(PathBuf, String)> = report
        .workloads
        .iter()
        .take(215)
        .map(|w| {
            (
                w.file.clone(),
                std::fs::read_to_string(&w.file).expect("fixture readable"),
            )
        })
        .collect();
    let mut group = c.benchmark_group("pss_215_pods");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("parse_and_evaluate_215", |b| {
        b.iter(|| {
            let mut allowed = 0;
            for (path, text) in &texts {
                let (workloads, _, _) = parse_documents(text, path);
                for w in &workloads {
                    allowed += usize::from(
                        evaluate(&w.pod_meta, &w.pod_spec, Level::Restricted, Version::Latest)
                            .allowed,
                    );
                }
            }
            allowed
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
