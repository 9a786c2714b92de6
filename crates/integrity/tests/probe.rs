//! probe_enforcement against the real kernel.

mod common;

use watertight_integrity::{probe_enforcement, Layer};

#[test]
fn every_layer_is_reported_with_a_reason() {
    let report = probe_enforcement();
    for layer in [
        Layer::Landlock,
        Layer::BpfExecGate,
        Layer::BpfLsm,
        Layer::MemfdNoexec,
    ] {
        let status = report.get(layer);
        assert!(
            !status.reason.is_empty() && !status.reason.contains('\n'),
            "{layer:?}: {:?}",
            status.reason
        );
    }
    println!("{report}");
    if common::is_root() {
        // A root probe loads the real gate object, so this is a check of this host's kernel:
        // tracing programs load wherever BTF exists, which every supported kernel has.
        let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
        assert_eq!(
            report.available(Layer::BpfExecGate),
            btf,
            "{}",
            report.get(Layer::BpfExecGate).reason
        );
        if !report.available(Layer::BpfLsm) {
            assert!(report.get(Layer::BpfLsm).reason.contains("refuses BPF LSM"));
        }
    } else {
        assert!(!report.available(Layer::BpfExecGate));
        assert!(
            report.get(Layer::BpfExecGate).reason.contains("root"),
            "{}",
            report.get(Layer::BpfExecGate).reason
        );
    }
}
