#!/usr/bin/env bash
# Forensic capture, side by side: watertight-forensics (Rust, parallel, hash while writing)
# against the same work done with shell tools (cat/readlink per task, tar, sha256sum, then
# kill), for a sandbox of TASKS tasks with a LAYER_MB writable layer on tmpfs. Prints the
# violation-to-all-dead time of each and the ratio. Root only (cgroups, tmpfs).
#
#   benches/forensics/run.sh            # 200 tasks, 50 MB, 3 runs
#   TASKS=50 LAYER_MB=10 RUNS=5 EVIDENCE_ROOT=/var/lib/watertight benches/forensics/run.sh
set -euo pipefail

TASKS=${TASKS:-200}
LAYER_MB=${LAYER_MB:-50}
RUNS=${RUNS:-3}
EVIDENCE_ROOT=${EVIDENCE_ROOT:-/var/tmp}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root" >&2; exit 0; }
FREEZER=/sys/fs/cgroup/freezer
[ -d "$FREEZER" ] || { echo "SKIP: the shell peer uses the cgroup v1 freezer ($FREEZER absent)" >&2; exit 0; }

work=$(mktemp -d "$EVIDENCE_ROOT/wt-forensics-bench.XXXXXX")
layer=$(mktemp -d)
cg="$FREEZER/wt-forensics-shell-$$"
pids=()
cleanup() {
    if [ -d "$cg" ]; then
        for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        echo THAWED > "$cg/freezer.state" 2>/dev/null || true
    fi
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    { wait; } 2>/dev/null || true
    rmdir "$cg" 2>/dev/null || true
    umount "$layer" 2>/dev/null || true
    rm -rf "$work" "$layer"
}
trap cleanup EXIT

mount -t tmpfs -o "size=$((LAYER_MB + 16))m" tmpfs "$layer"
head -c "$(( (LAYER_MB > 10 ? LAYER_MB - 10 : 1) * 1024 * 1024 ))" /dev/urandom > "$layer/big.bin"
mkdir "$layer/objs"
for i in $(seq 1000); do head -c 10240 /dev/urandom > "$layer/objs/$i.o"; done
ln -s /etc/shadow "$layer/link"

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# watertight first, then the shell tools, with a settle between (each side deletes its output).
rust_out=$(cd "$ROOT" && WT_BENCH_TASKS=$TASKS WT_BENCH_LAYER_MB=$LAYER_MB WT_BENCH_RUNS=$RUNS WT_BENCH_EVIDENCE_DIR=$EVIDENCE_ROOT \
    CARGO_TARGET_DIR=$TARGET cargo bench -q -p watertight-forensics --bench capture 2>/dev/null)
sync
sleep 5

shell_times=()
for run in $(seq "$RUNS"); do
    mkdir "$cg"
    # Started from a subshell so they are not this shell's jobs (no "Killed" notices).
    for _ in $(seq "$TASKS"); do ( sleep 1000 & echo "$!" > "$cg/cgroup.procs" ); done
    out="$work/shell-$run"
    t0=$(ms)
    echo FROZEN > "$cg/freezer.state"
    until grep -q FROZEN "$cg/freezer.state"; do sleep 0.001; done
    mkdir -p "$out"
    for p in $(cat "$cg/cgroup.procs"); do
        d="$out/tasks/$p"; mkdir -p "$d"
        for f in status cmdline environ maps mountinfo cgroup stack; do cat "/proc/$p/$f" > "$d/$f" 2>/dev/null || true; done
        for l in /proc/$p/fd/*; do echo "${l##*/} -> $(readlink "$l")"; done > "$d/fds.txt" 2>/dev/null || true
        for l in /proc/$p/ns/*; do echo "${l##*/} -> $(readlink "$l")"; done > "$d/ns.txt" 2>/dev/null || true
    done
    mkdir -p "$out/layers"
    tar -C "$layer" -cf "$out/layers/tmp.tar" .
    (cd "$out" && find . -type f -print0 | sort -z | xargs -0 sha256sum > ../manifest-$run)
    sync -f "$out"
    for p in $(cat "$cg/cgroup.procs"); do kill -9 "$p"; done
    echo THAWED > "$cg/freezer.state"
    while [ -s "$cg/cgroup.procs" ]; do sleep 0.001; done
    t1=$(ms)
    # Exiting tasks leave the cgroup a moment after cgroup.procs is empty.
    for _ in $(seq 200); do rmdir "$cg" 2>/dev/null && break; sleep 0.01; done
    shell_times+=($((t1 - t0)))
    # Outputs stay until the end: deleting between runs (ext4 with discard) slows later creates.
done
shell_median=$(printf '%s\n' "${shell_times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "shell tools: violation->dead ${shell_times[*]} ms (median $shell_median)"
echo "$rust_out"
rust_median=$(echo "$rust_out" | awk '/violation->dead/ {print $3}')
awk -v s="$shell_median" -v r="$rust_median" 'BEGIN {printf "ratio shell/watertight: %.1fx\n", s / r}'
