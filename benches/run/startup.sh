#!/usr/bin/env bash
# Startup latency of `watertight run -- /bin/true` side by side with its peers, in one run:
# plain /bin/true, the `unshare` floor (namespaces only, no cgroups, no seccomp), the kernel's
# share of watertight's default isolation (kernel-floor.c: the same system calls from a small C
# program, the bound for any implementation), and bubblewrap with equivalent isolation (no
# cgroups, no seccomp). Prints medians and ratios to the unshare floor.
# Usage: benches/run/startup.sh [RUNS]   (as root; installs hyperfine, bubblewrap, gcc if missing)
# With WT_PREVIOUS=/path/to/an/older/watertight, that binary runs in the same hyperfine run too
# (row "previous"), so a change is measured against the version before it side by side, and
# the two are also run alternately, round by round (the figure to trust on a busy machine).
set -euo pipefail
runs=${1:-300}
cd "$(dirname "$0")/../.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release -q -p watertight
wt=$PWD/target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -o "$out/kernel-floor" benches/run/kernel-floor.c
cargo run --release -q -p watertight-sandbox --example default_filter >"$out/filter.bpf"

# bubblewrap with the isolation watertight's default profile has (minus cgroups and seccomp,
# which bubblewrap does not set up itself).
bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL \
 --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib \
 --symlink usr/lib64 /lib64 --ro-bind /etc /etc --proc /proc --dev /dev --tmpfs /tmp /bin/true"

# Both binaries as fresh copies in one directory: the same binary ran 5% slower straight from
# target/ (where the linker wrote it) than as a copy, which would pass for a change's cost.
cp "$wt" "$out/watertight"
wt=$out/watertight
previous=()
if [ -n "${WT_PREVIOUS:-}" ]; then
  cp "$WT_PREVIOUS" "$out/previous"
  WT_PREVIOUS=$out/previous
  previous=(-n previous "$WT_PREVIOUS run -- /bin/true")
fi
hyperfine -N --warmup 30 --runs "$runs" --export-json "$out/r.json" \
  -n true "/bin/true" \
  -n unshare "unshare -Urpfmnui --mount-proc /bin/true" \
  -n kernel-floor "$out/kernel-floor $out/filter.bpf" \
  -n watertight "$wt run -- /bin/true" \
  "${previous[@]}" \
  -n bubblewrap "$bwrap_cmd" >/dev/null

# Wall time only: CPU time from wait4 misses bubblewrap's helper processes. On a shared VM the
# medians move by tens of percent from one minute to the next; compare ratios within one run.
python3 - "$out/r.json" <<'PY'
import json, sys
res = {r["command"]: sorted(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v[len(v) // 2] * 1000 for k, v in res.items()}
floor = med["unshare"]
print(f"{'command':<13}{'median ms':>10}{'vs unshare':>12}")
for k in ["true", "unshare", "kernel-floor", "watertight", "previous", "bubblewrap"]:
    if k in med:
        print(f"{k:<13}{med[k]:>10.2f}{med[k] / floor:>11.2f}x")
PY

# hyperfine runs one command's runs in a block, then the next: on this kind of VM the load moves
# between blocks by more than a change costs. Against the previous version, also alternate the
# two run by run (random order each round) and compare the medians of those pairs.
if [ -n "${WT_PREVIOUS:-}" ]; then
  python3 - "$wt" "$WT_PREVIOUS" "$runs" <<'PY'
import random, statistics, subprocess, sys, time
new, old, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = {new: [], old: []}
for _ in range(n):
    pair = [new, old]
    random.shuffle(pair)
    for b in pair:
        t = time.perf_counter()
        subprocess.run([b, "run", "--", "/bin/true"], check=True)
        times[b].append(time.perf_counter() - t)
m_new, m_old = statistics.median(times[new]) * 1000, statistics.median(times[old]) * 1000
# The median of each round's own ratio: a round's two runs share the machine's state of the
# moment, so this one moves least with the drift.
paired = statistics.median(a / b for a, b in zip(times[new], times[old]))
print(f"interleaved, {n} rounds: watertight {m_new:.2f} ms, previous {m_old:.2f} ms: {m_new / m_old:.3f}x"
      f" (median of the rounds' ratios {paired:.3f}x)")
PY
fi
