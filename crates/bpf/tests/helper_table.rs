//! The helper table covers every helper id of the running kernel: `enum bpf_func_id` read from
//! /sys/kernel/btf/vmlinux by this crate's BTF reader, and cross-checked with bpftool's dump of
//! the same enum.

use std::collections::BTreeMap;
use std::process::Command;
use watertight_bpf::btf::Btf;
use watertight_bpf::helpers;
use watertight_testkit::{host_lacks, require_tools, this_test};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn kernel_ids() -> Option<BTreeMap<i64, String>> {
    let Ok(bytes) = std::fs::read(VMLINUX) else {
        host_lacks(
            &this_test(),
            "the kernel has no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)",
        );
        return None;
    };
    let btf = Btf::parse(&bytes).expect("the kernel's BTF parses");
    let values = btf
        .enum_values("bpf_func_id")
        .expect("enum bpf_func_id is in vmlinux BTF");
    Some(
        values
            .iter()
            .filter_map(|(n, v)| n.strip_prefix("BPF_FUNC_").map(|n| (*v, n.to_string())))
            .collect(),
    )
}

#[test]
fn every_helper_id_of_the_running_kernel_is_in_the_table() {
    let Some(ids) = kernel_ids() else { return };
    assert!(ids.len() > 200, "{} ids", ids.len());
    let mut missing = Vec::new();
    for (id, name) in &ids {
        match helpers::by_id(*id as u32) {
            Some(h) => assert_eq!(&h.name, name, "helper id {id}"),
            None => missing.push(format!("{id} {name}")),
        }
    }
    assert!(
        missing.is_empty(),
        "the running kernel has helpers data/helpers.toml lacks (add each with its class and source): {missing:?}"
    );
}

#[test]
fn the_btf_reader_agrees_with_bpftool_on_the_kernel_enum() {
    let Some(ids) = kernel_ids() else { return };
    if !require_tools(&this_test(), &["bpftool"], "bpftool") {
        return;
    }
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", VMLINUX])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // "	'BPF_FUNC_map_lookup_elem' val=1"
    let from_bpftool: BTreeMap<i64, String> = text
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("'BPF_FUNC_")?;
            let (name, val) = rest.split_once("' val=")?;
            Some((val.trim().parse().ok()?, name.to_string()))
        })
        .collect();
    assert_eq!(ids, from_bpftool);
}

#[test]
fn docs_state_the_tables_class_counts() {
    use watertight_bpf::HelperClass;
    let count = |c: HelperClass| helpers::all().iter().filter(|h| h.class == c).count();
    let line = format!(
        "Of the {} ids: {} observe, {} output, {} act, {} control.",
        helpers::all().len(),
        count(HelperClass::Observe),
        count(HelperClass::Output),
        count(HelperClass::Act),
        count(HelperClass::Control)
    );
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/bpf.md")).unwrap();
    assert!(docs.contains(&line), "docs/bpf.md should say: {line}");
}
