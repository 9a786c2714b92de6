#!/usr/bin/env bash
# Vetting time of `watertight bpf vet`'s library (watertight_bpf::vet, release build): the whole
# libbpf-tools corpus (../shared/corpora/build-libbpf-tools.sh, 53 objects) and one generated
# object of about 1 MB (many tracepoint programs, each with subprogram calls and helper calls).
# Prints the time per pass; no threshold. Usage: benches/bpf/vet.sh [ITERATIONS] (default 20).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
iterations=${1:-20}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$root/../shared/corpora/build-libbpf-tools.sh" "$tmp/corpus" >/dev/null

# The generated object: 600 programs, each calling a subprogram and 8 helpers.
{
  printf '#include <linux/types.h>\n#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
  printf 'char LICENSE[] SEC("license") = "GPL";\n'
  printf 'struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, __u64); __type(value, __u64); } m SEC(".maps");\n'
  printf 'static __attribute__((noinline)) __u64 sub(__u64 x) { return x ^ bpf_ktime_get_ns(); }\n'
  for i in $(seq 1 600); do
    printf 'SEC("tp/syscalls/sys_enter_openat") int p%d(void *ctx) {\n' "$i"
    printf '  __u64 k = bpf_get_current_pid_tgid() + %d, v = sub(k); char c[16];\n' "$i"
    printf '  bpf_get_current_comm(c, sizeof(c)); v += c[%d %% 16];\n' "$i"
    printf '  bpf_probe_read_kernel(&v, sizeof(v), (void *)k); bpf_map_update_elem(&m, &k, &v, 0);\n'
    printf '  if (bpf_map_lookup_elem(&m, &v)) bpf_map_delete_elem(&m, &k);\n'
    printf '  return bpf_get_smp_processor_id() + bpf_get_prandom_u32();\n}\n'
  done
} > "$tmp/large.bpf.c"
clang -g -O2 -target bpf -I/usr/include/x86_64-linux-gnu -c "$tmp/large.bpf.c" -o "$tmp/large.bpf.o"

cd "$root"
cargo build -q --release -p watertight-bpf --example vet
vet=$(find target -path '*release/examples/vet' -type f | head -1)
echo "corpus:    $("$vet" --iterations "$iterations" "$tmp"/corpus/*.bpf.o)"
echo "1 MB-ish:  $("$vet" --iterations "$iterations" "$tmp/large.bpf.o")"
