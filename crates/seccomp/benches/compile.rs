//! Cost of turning a profile into a filter on the sandbox start path: parse the shipped JSON,
//! compile with libseccomp, and load from the on-disk cache instead.

// criterion_group! defines an undocumented pub fn in this bench crate.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use watertight_seccomp::{
    compile_cached, default_profile, CompileOptions, Profile, ViolationAction, DEFAULT_PROFILE_JSON,
};

fn benches(c: &mut Criterion) {
    let profile = default_profile();
    let opts = CompileOptions::default();
    let notify = CompileOptions {
        violation_action: ViolationAction::UserNotify,
        ..Default::default()
    };
    let filter = profile.compile(&opts).expect("compiles");
    println!(
        "default profile: {} BPF instructions, flags {:#x}",
        filter.program().len(),
        filter.flags()
    );

    c.bench_function("parse default.json", |b| {
        b.iter(|| Profile::from_json(DEFAULT_PROFILE_JSON).expect("parses"))
    });
    c.bench_function("construct default_profile()", |b| b.iter(default_profile));
    c.bench_function("compile default (errno)", |b| {
        b.iter(|| profile.compile(&opts).expect("compiles"))
    });
    c.bench_function("compile default (user notify)", |b| {
        b.iter(|| profile.compile(&notify).expect("compiles"))
    });
    c.bench_function("to_json default", |b| b.iter(|| profile.to_json()));
    c.bench_function("cache_key default", |b| {
        b.iter(|| watertight_seccomp::cache_key(&profile, &opts))
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    compile_cached(&profile, &opts, &cache).expect("fills the cache");
    c.bench_function("compile_cached default (hit)", |b| {
        b.iter(|| compile_cached(&profile, &opts, &cache).expect("hit"))
    });
}

criterion_group!(name = group; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(group);
