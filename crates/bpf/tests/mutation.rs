//! The ELF and BTF readers never panic: a real object (compiled by clang here) with random
//! bytes changed, with bytes changed inside its .BTF section, and cut at every length, always
//! ends in a result or an error. Each case is small, so the whole is bounded (no timing is
//! asserted).

use proptest::prelude::*;
use std::sync::OnceLock;
use watertight_bpf::{vet, Policy};

const SOURCE: &str = r#"
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, int); };
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1); __type(key, int); __array(values, struct inner); } outer SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
static __attribute__((noinline)) int sub(int x) { return bpf_get_prandom_u32() + x; }
static long cb(__u32 i, void *ctx) { bpf_ktime_get_ns(); return 0; }
SEC("tp/syscalls/sys_enter_openat") int prog(void *ctx) {
    __u64 id = bpf_get_current_pid_tgid();
    bpf_loop(2, cb, (void *)0, 0);
    bpf_ringbuf_output(&events, &id, sizeof(id), 0);
    return sub(1);
}
"#;

/// The compiled object, or `None` (skipped locally, a failure in CI) without clang.
fn object() -> Option<&'static [u8]> {
    let test = watertight_testkit::this_test();
    if !watertight_testkit::require_bpf_toolchain(&test) {
        return None;
    }
    static OBJ: OnceLock<Vec<u8>> = OnceLock::new();
    Some(OBJ.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("m.c");
        let obj = dir.path().join("m.o");
        std::fs::write(&src, SOURCE).unwrap();
        watertight_testkit::compile_bpf(&src, &obj);
        std::fs::read(&obj).unwrap()
    }))
}

fn btf_range(obj: &[u8]) -> std::ops::Range<usize> {
    // The .BTF section starts with its magic 0xeb9f (little-endian), version 1.
    let start = obj
        .windows(4)
        .position(|w| w == [0x9f, 0xeb, 0x01, 0x00])
        .expect("the object has a .BTF section");
    let len = u32::from_le_bytes(obj[start + 16..start + 20].try_into().unwrap()) as usize
        + u32::from_le_bytes(obj[start + 8..start + 12].try_into().unwrap()) as usize
        + 24;
    start..(start + len).min(obj.len())
}

#[test]
fn the_unmutated_object_vets() {
    let Some(obj) = object() else { return };
    let v = vet(obj, &Policy::builtin()).unwrap();
    assert_eq!(v.programs.len(), 1);
    assert_eq!(v.maps.len(), 2);
}

#[test]
fn every_truncation_is_an_error_or_a_result() {
    let Some(obj) = object() else { return };
    for len in 0..obj.len() {
        let _ = vet(&obj[..len], &Policy::builtin());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_byte_edits_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24)) {
        let Some(obj) = object() else { return Ok(()) };
        let mut bytes = obj.to_vec();
        for (i, b) in edits {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        let _ = vet(&bytes, &Policy::builtin());
    }

    #[test]
    fn btf_edits_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let Some(obj) = object() else { return Ok(()) };
        let range = btf_range(obj);
        let mut bytes = obj.to_vec();
        for (i, b) in edits {
            let at = range.start + i.index(range.len());
            bytes[at] = b;
        }
        let _ = vet(&bytes, &Policy::builtin());
        // The BTF reader on its own too.
        let _ = watertight_bpf::btf::Btf::parse(&bytes[range.clone()]);
    }
}

/// The section headers of type SHT_REL: (header offset in the file, sh_size).
fn rel_headers(obj: &[u8]) -> Vec<(usize, u64)> {
    let u64_at = |o: usize| u64::from_le_bytes(obj[o..o + 8].try_into().unwrap());
    let shoff = u64_at(40) as usize;
    let shentsize = u16::from_le_bytes([obj[58], obj[59]]) as usize;
    let shnum = u16::from_le_bytes([obj[60], obj[61]]) as usize;
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .filter(|&h| u32::from_le_bytes(obj[h + 4..h + 8].try_into().unwrap()) == 9)
        .map(|h| (h, u64_at(h + 32)))
        .collect()
}

#[test]
fn an_unreadable_relocation_section_is_an_error_not_a_dropped_call() {
    let Some(obj) = object() else { return };
    let rels = rel_headers(obj);
    assert!(!rels.is_empty(), "the object has relocation sections");
    let mut refused = 0;
    for (header, size) in rels {
        // A size that is not a whole number of entries, then past the end of the file.
        for bad in [size + 3, obj.len() as u64 * 2] {
            let mut bytes = obj.to_vec();
            bytes[header + 32..header + 40].copy_from_slice(&bad.to_le_bytes());
            match vet(&bytes, &Policy::builtin()) {
                Err(e) => {
                    assert!(e.to_string().contains("relocation"), "{e}");
                    refused += 1;
                }
                // A relocation section of a non-executable section (.BTF.ext's) is not read.
                Ok(v) => assert_eq!(v.programs[0].kfuncs.len(), 0),
            }
        }
    }
    // At least the program section's relocations, cut past the end of the file. (A size that
    // is not a whole number of entries reads as whole entries, as libbpf reads it.)
    assert!(refused >= 1, "{refused} refused");
}
