//! Writes the OCI bundle `watertight run --isolation gvisor -- CMD...` would hand runsc, for the
//! default profile, into DIR (`DIR/config.json`, `DIR/rootfs`): benches/run/isolation.sh runs
//! `runsc run` directly on it, side by side with watertight.
//! Usage: cargo run --example gvisor_bundle -p watertight-gvisor -- DIR CMD [ARGS...]

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), argv) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: gvisor_bundle DIR CMD [ARGS...]");
        std::process::exit(2);
    };
    let profile = watertight_sandbox::default_profile();
    let forensics = watertight_sandbox::forensic::ForensicConfig::for_profile(
        &profile,
        watertight_sandbox::forensic::DEFAULT_EVIDENCE_DIR.into(),
        watertight_sandbox::forensic::DEFAULT_KEY_PATH.into(),
        None,
    );
    let job = watertight_sandbox::Job {
        profile,
        argv,
        workdir: None,
        box_dir: None,
        stdio: Default::default(),
        env: Vec::new(),
        secrets: Vec::new(),
        events: None,
        forensics,
        bridge_port: None,
        integrity: None,
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "gvisor_bundle: {}: {e}",
            std::path::Path::new(&dir).display()
        );
        std::process::exit(1);
    }
    let result = watertight_sandbox::Plan::new(&job)
        .map_err(watertight_gvisor::Error::from)
        .and_then(|plan| {
            let inputs = watertight_gvisor::bundle::Inputs {
                root_view: None,
                box_dir: None,
                secrets: &[],
            };
            watertight_gvisor::bundle::write(&plan, &inputs, std::path::Path::new(&dir))
        });
    if let Err(e) = result {
        eprintln!("gvisor_bundle: {e}");
        std::process::exit(1);
    }
}
