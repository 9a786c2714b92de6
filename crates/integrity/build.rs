//! Compiles the BPF programs in bpf/ with clang into objects that src/gate/ embeds and loads with
//! libbpf-rs. Needs clang (Debian `clang`); kernel types come from the committed, trimmed
//! bpf/wt_kernel_types.h (CO-RE), so neither vmlinux.h nor bpftool is needed at build time.

use std::ffi::OsString;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bpf_dir = manifest_dir.join("bpf");
    for name in ["exec_gate", "lsm_probe"] {
        let source = bpf_dir.join(format!("{name}.bpf.c"));
        let object = out_dir.join(format!("{name}.bpf.o"));
        if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
            .source(&source)
            .obj(&object)
            .clang_args([
                OsString::from("-I"),
                bpf_dir.clone().into_os_string(),
                OsString::from("-Wall"),
            ])
            .build()
        {
            panic!(
                "compiling {} with clang failed (needs Debian packages clang, libelf-dev, zlib1g-dev, pkg-config): {e:#}",
                source.display()
            );
        }
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        bpf_dir.join("wt_kernel_types.h").display()
    );
}
