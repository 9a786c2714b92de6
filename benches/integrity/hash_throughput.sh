#!/usr/bin/env bash
# Manifest creation throughput vs sha256sum and b3sum on the same tree, from page cache.
#
#   bash benches/integrity/hash_throughput.sh [SIZE_MIB]   (default 1024)
#
# Builds the release CLI, makes a tree of SIZE_MIB (mixed: a few 64 MiB files, many 1 MiB files,
# many 16 KiB files), reads it once to warm the page cache, then times each tool 3 times and
# prints the best run as GB/s (10^9 bytes) and the ratio against `watertight manifest create`.
# Peers: sha256sum (coreutils, one file at a time), sha256sum via xargs -P$(nproc) (same work
# spread over all cores), b3sum (BLAKE3, Debian package b3sum; a different, faster hash).
set -euo pipefail
size_mib=${1:-1024}
here=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
work=$(mktemp -d /tmp/wt-hashbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

(cd "$here" && cargo build --release -q -p watertight)
wt=$target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight

tree=$work/tree
mkdir -p "$tree/big" "$tree/mid" "$tree/small"
big=$(( size_mib / 2 / 64 )); mid=$(( size_mib * 3 / 8 )); small=$(( size_mib * 64 / 8 ))
for i in $(seq 1 "$big"); do head -c $((64 << 20)) /dev/urandom > "$tree/big/$i"; done
for i in $(seq 1 "$mid"); do head -c $((1 << 20)) /dev/urandom > "$tree/mid/$i"; done
for i in $(seq 1 "$small"); do head -c $((16 << 10)) /dev/urandom > "$tree/small/$i"; done
bytes=$(du -sb "$tree" | cut -f1)
files=$(find "$tree" -type f | wc -l)
cat $(find "$tree" -type f) > /dev/null   # warm the page cache

"$wt" key generate --out "$work/bench.key" > /dev/null

best() { # "wall cpu" seconds of the fastest (by wall) of 3 runs of "$@"; cpu = user + sys
  local b="" bc=""
  for _ in 1 2 3; do
    local t w c
    t=$( { TIMEFORMAT='%R %U %S'; time "$@" > /dev/null 2>&1; } 2>&1 )
    w=$(echo "$t" | awk '{print $1}'); c=$(echo "$t" | awk '{print $2 + $3}')
    if [ -z "$b" ] || [ "$(echo "$w < $b" | bc -l)" = 1 ]; then b=$w; bc=$c; fi
  done
  echo "$b $bc"
}

printf 'tree: %s files, %.2f GB, %s cores, load average %s\n' "$files" "$(echo "$bytes / 1000000000" | bc -l)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
t_wt=$(best "$wt" manifest create "$tree" --key "$work/bench.key" --out "$work/m.manifest")
rm -f "$work/m.manifest"
t_sha=$(best sh -c "cd '$tree' && find . -type f -print0 | xargs -0 sha256sum")
t_shap=$(best sh -c "cd '$tree' && find . -type f -print0 | xargs -0 -n 64 -P $(nproc) sha256sum")
if command -v b3sum > /dev/null; then
  t_b3=$(best sh -c "cd '$tree' && find . -type f -print0 | xargs -0 b3sum")
else
  t_b3=""
fi
# Wall-clock GB/s is what a user sees; CPU GB/s (bytes per CPU-second) is the hashing speed
# itself and does not depend on what else the machine runs.
row() {
  local w=${2% *} c=${2#* }
  printf '%-44s %7.3f s  %6.2f GB/s wall  %6.2f GB/s per CPU-second  wall x%.2f vs watertight\n' \
    "$1" "$w" "$(echo "$bytes / $w / 1000000000" | bc -l)" "$(echo "$bytes / $c / 1000000000" | bc -l)" "$(echo "$w / ${t_wt% *}" | bc -l)"
}
row "watertight manifest create (sha256, rayon)" "$t_wt"
row "sha256sum (one process)" "$t_sha"
row "sha256sum (xargs -P $(nproc))" "$t_shap"
if [ -n "$t_b3" ]; then row "b3sum (BLAKE3, multithreaded)" "$t_b3"; else echo "b3sum: not installed (apt-get install b3sum)"; fi
