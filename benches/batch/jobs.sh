#!/usr/bin/env bash
# Throughput of tiny grading jobs, side by side in one run: N jobs of `/bin/true` and N of a
# small C program that reads its stdin (a file) and prints the sum of the numbers in it, through
#   batch-p1, -p2, -p4   `watertight batch --parallel 1|2|4` (one fresh box per job, each step
#                        run by the slot's step worker exactly as `watertight run` runs it: full
#                        isolation, cgroups and seccomp included); 4 on 2 cores covers the waits
#   batch-p2-exec        the same with --step-runner exec (each step a `watertight run` process)
#   run-loop             a shell loop of `watertight run --box B` (mkdir and rm of B each job)
#   bwrap-loop           a shell loop of bubblewrap with watertight's namespaces (no cgroups,
#                        no seccomp: bubblewrap sets up neither itself)
#   isolate-loop         a shell loop of isolate's --init, --run, --cleanup (box 0), as a grader
#                        drives it; isolate-x2: two such loops at once (boxes 0 and 1), N/2 each
#   kernel-floor(-x4)    /bin/true only: the system calls of watertight's default isolation from
#                        a small C program (benches/run/kernel-floor.c --repeat), one process or
#                        four at once: what no implementation of this isolation can beat
# isolate runs without --cg (its cgroup mode needs pure cgroup v2; this host is hybrid), so it
# sets no memory or task limit: it is measured with less isolation than watertight's.
# Prints ms/job, jobs/s and each one's speed relative to isolate-loop (x > 1: faster).
# Usage: benches/batch/jobs.sh [N]   (as root; N defaults to 1000; ROUNDS=10 interleaved rounds). Builds isolate from
# ../shared/peers/isolate-6f21daf.tar.gz into /var/cache/watertight-peers/isolate (apt-get
# installs libcap-dev, libsystemd-dev, libseccomp-dev, bubblewrap, gcc when missing); its
# config, boxes and locks live in a temporary directory removed at the end.
set -euo pipefail
n=${1:-1000}
cd "$(dirname "$0")/../.."
repo=$PWD
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v cc >/dev/null || need+=(gcc)
for p in libcap-dev libsystemd-dev libseccomp-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi

out=$(mktemp -d /tmp/wt-batch-bench.XXXXXX)
chmod 700 "$out"
iso_cache=/var/cache/watertight-peers/isolate
iso=$iso_cache/isolate/isolate
cleanup() {
  if [ -x "$iso" ]; then
    for b in 0 1; do "$iso" -b "$b" --cleanup >/dev/null 2>&1 || true; done
  fi
  rm -rf "$out"
}
trap cleanup EXIT

cargo build --release -q -p watertight
cp "$repo/target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight" "$out/watertight"
wt=$out/watertight

# isolate, built once into the cache, reading its configuration from $iso_cache/isolate.cf
# (compiled in); the file is written each run to point at this run's temporary directory.
if [ ! -x "$iso" ]; then
  mkdir -p "$iso_cache"
  tar -xzf "$repo/../shared/peers/isolate-6f21daf.tar.gz" -C "$iso_cache"
  make -s -C "$iso_cache/isolate" isolate CONFIG="$iso_cache/isolate.cf" >/dev/null
fi
mkdir -p "$out/isolate/boxes" "$out/isolate/locks"
cat >"$iso_cache/isolate.cf" <<EOF
box_root = $out/isolate/boxes
lock_root = $out/isolate/locks
cg_root = auto:/run/isolate/cgroup
first_uid = 3100000
first_gid = 3100000
num_boxes = 2
EOF

# The stdin workload: a dynamically linked C program (every tool shows the host's /usr and /lib).
mkdir -m 755 "$out/bin"
cat >"$out/sum.c" <<'EOF'
#include <stdio.h>
int main(void) { long x, s = 0; while (scanf("%ld", &x) == 1) s += x; printf("%ld\n", s); return 0; }
EOF
cc -O2 -o "$out/bin/sum" "$out/sum.c"
# The bound: the kernel's share of watertight's default isolation (benches/run/kernel-floor.c,
# its sandboxes one after another in one process, 1 or 4 such processes at once), /bin/true only.
mkdir -p /run/watertight/stage  # where kernel-floor mounts its root (watertight run makes it too)
cc -O2 -o "$out/kernel-floor" benches/run/kernel-floor.c
cargo run --release -q -p watertight-sandbox --example default_filter >"$out/filter.bpf"
printf '1 2 3\n4 5 6\n' >"$out/bin/in.txt"
chmod 644 "$out/bin/in.txt"

# The machine is shared: its load moves by more than the differences measured, so the N jobs
# of each case run in ROUNDS rounds of N/ROUNDS, every case once per round, in a new random
# order each round, and each case's times are summed over the rounds.
rounds=${ROUNDS:-10}
k=$(( n / rounds ))
[ "$k" -ge 2 ] || { echo "N must be at least $((2 * rounds)) (ROUNDS=$rounds)" >&2; exit 2; }

# Jobs files: one round's jobs of each workload.
python3 - "$out" "$k" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
with open(f"{out}/true.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"t{i}", "steps": [{"name": "run", "argv": ["/bin/true"]}]}) + "\n")
with open(f"{out}/sum.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"s{i}", "files": {"sum": "bin/sum"},
                            "steps": [{"name": "run", "argv": ["./sum"], "stdin": "bin/in.txt"}]}) + "\n")
PY

bwrap_base="bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL \
 --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib \
 --symlink usr/lib64 /lib64 --ro-bind /etc /etc --proc /proc --dev /dev --tmpfs /tmp \
 --ro-bind $out/bin /bench"

# Each case as one shell command that runs one round's K jobs.
declare -A cmd
for w in true sum; do
  if [ "$w" = true ]; then
    run_argv="/bin/true"; stdin_flag=""; bw_stdin="</dev/null"; bw_argv="/bin/true"
    iso_job="$iso -b \$b --init >/dev/null; $iso -b \$b --run -- /bin/true >/dev/null 2>&1; $iso -b \$b --cleanup"
  else
    run_argv="/bench/sum"; stdin_flag="--stdin $out/bin/in.txt"; bw_stdin="<$out/bin/in.txt"
    bw_argv="/bench/sum"
    iso_job="cp $out/bin/sum $out/bin/in.txt \$($iso -b \$b --init)/box/; $iso -b \$b --stdin=in.txt --run -- ./sum >/dev/null 2>&1; $iso -b \$b --cleanup"
  fi
  for p in 1 2 4; do
    cmd[$w/batch-p$p]="rm -f $out/res.jsonl; $wt batch --parallel $p --work $out --results $out/res.jsonl $out/$w.jsonl 2>/dev/null && ! grep -v '\"verdict\":\"OK\"' $out/res.jsonl"
  done
  cmd[$w/batch-p2-exec]="rm -f $out/res.jsonl; $wt batch --parallel 2 --step-runner exec --work $out --results $out/res.jsonl $out/$w.jsonl 2>/dev/null && ! grep -v '\"verdict\":\"OK\"' $out/res.jsonl"
  cmd[$w/run-loop]="for i in \$(seq $k); do $wt run --box $out/runs/b --bind-ro $out/bin:/bench $stdin_flag -- $run_argv >/dev/null; rm -rf $out/runs/b; done"
  cmd[$w/bwrap-loop]="for i in \$(seq $k); do $bwrap_base $bw_argv $bw_stdin >/dev/null; done"
  cmd[$w/isolate-loop]="b=0; for i in \$(seq $k); do $iso_job; done"
  cmd[$w/isolate-x2]="for b in 0 1; do (for i in \$(seq $((k / 2))); do $iso_job; done) & done; wait"
  if [ "$w" = true ]; then
    cmd[$w/kernel-floor]="$out/kernel-floor $out/filter.bpf --repeat $k"
    cmd[$w/kernel-floor-x4]="for j in 1 2 3 4; do $out/kernel-floor $out/filter.bpf --repeat $((k / 4)) & done; wait"
  fi
done
mkdir -m 700 "$out/runs"

results=$out/results.txt
: >"$results"
for r in $(seq "$rounds"); do
  for c in $(printf '%s\n' "${!cmd[@]}" | shuf); do
    t0=$(date +%s%N)
    bash -c "${cmd[$c]}" || { echo "$c failed" >&2; exit 1; }
    t1=$(date +%s%N)
    echo "$c $(( (t1 - t0) / 1000 ))" >>"$results"
  done
done

python3 - "$results" "$k" "$rounds" <<'PY'
import collections, sys
k, rounds = int(sys.argv[2]), int(sys.argv[3])
us = collections.Counter()
for line in open(sys.argv[1]):
    c, t = line.split()
    us[c] += int(t)
n = k * rounds
order = ["batch-p1", "batch-p2", "batch-p4", "batch-p2-exec", "run-loop", "bwrap-loop", "isolate-loop", "isolate-x2", "kernel-floor", "kernel-floor-x4"]
print(f"{n} jobs per case ({rounds} interleaved rounds of {k})")
print(f"{'workload':<9}{'case':<14}{'ms/job':>8}{'jobs/s':>9}{'vs isolate':>12}")
for w in ["true", "sum"]:
    base = us[f"{w}/isolate-loop"]
    for name in order:
        if f"{w}/{name}" not in us:
            continue
        t = us[f"{w}/{name}"]
        print(f"{w:<9}{name:<14}{t / n / 1000:>8.2f}{n / (t / 1e6):>9.0f}{base / t:>11.2f}x")
PY
