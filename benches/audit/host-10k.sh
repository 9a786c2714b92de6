#!/usr/bin/env bash
# How long `watertight audit host` takes on a node with many processes: starts N (default
# 10000) sleeping processes, times the audit with hyperfine, and kills exactly those processes.
#
#   sudo benches/audit/host-10k.sh [N]
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
count="${1:-10000}"
target="${CARGO_TARGET_DIR:-$root/target}"
command -v hyperfine >/dev/null || { echo "host-10k.sh: hyperfine not installed" >&2; exit 2; }

(cd "$root" && cargo build --quiet --release -p watertight)
watertight="$target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight"

pids=()
cleanup() {
    # Only the processes this script started, by pid.
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -KILL "${pids[@]}" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
}
trap cleanup EXIT
for _ in $(seq "$count"); do
    sleep 3600 &
    pids+=("$!")
done
total=$(ls /proc | grep -c '^[0-9]')
echo "started $count processes; $total processes on this host" >&2

hyperfine --style basic --warmup 2 --runs 20 \
    "$watertight audit host --reference-pid $$ --format json --fail-on none > /dev/null" \
    "$watertight audit host --reference-pid $$ --format prometheus --fail-on none > /dev/null"
