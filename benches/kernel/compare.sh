#!/usr/bin/env bash
# Side by side: watertight audit kernel (from the records, from its index) against a plain Python
# reading of the same kernel CNA records with the same semantics. Prints wall and CPU times and
# ratios, and checks that every reader gives the known answers.
#
# usage: benches/kernel/compare.sh [RECORDS_DIR]    (default: ../shared/kernel-vulns/cve/published)
# needs: a release build (built here unless WATERTIGHT=/path/to/watertight), python3, GNU time
# (/usr/bin/time, Debian package `time`), optionally hyperfine (Debian package).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
records=${1:-$root/../shared/kernel-vulns/cve/published}
if [ ! -d "$records" ]; then
    echo "SKIP: kernel CNA records not found at $records" >&2
    exit 0
fi
if [ -n "${WATERTIGHT:-}" ]; then
    wt=$WATERTIGHT
else
    target=${CARGO_TARGET_DIR:-$root/target}
    (cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p watertight)
    wt=$target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
index=$work/kernel-cves.idx

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$wt" audit kernel --cve-db "$records" --index-out "$index"

# Known answers, from every reader.
declare -A known=([6.1.100]=5369 [6.6.50]=5640 [5.15.0]=8060 [6.18.44]=211)
for v in "${!known[@]}"; do
    for src in "--cve-db $records" "--cve-index $index"; do
        # shellcheck disable=SC2086
        got=$("$wt" audit kernel $src --kernel-version "$v" --format prometheus --no-hardening --fail-on never \
              | sed -n "s/^watertight_kernel_cves_affected_total{kernel=\"$v\"} //p")
        [ "$got" = "${known[$v]}" ] || { echo "MISMATCH watertight $src $v: $got != ${known[$v]}" >&2; exit 1; }
    done
done
py_out=$(python3 "$here/python_reader.py" "$records" 6.1.100 6.6.50 5.15.0 6.18.44)
echo "$py_out" | tail -n +2 | while read -r v n _; do
    [ "$n" = "${known[$v]}" ] || { echo "MISMATCH python $v: $n != ${known[$v]}" >&2; exit 1; }
done
echo "known answers: all readers agree (6.1.100=5369 6.6.50=5640 5.15.0=8060 6.18.44=211)"

cpu() { # command... -> "wall cpu" in seconds (cpu = user + sys), best of 3 by wall
    local best_wall="" best_cpu="" out=$work/time.txt
    for _ in 1 2 3; do
        /usr/bin/time -o "$out" -f "%e %U %S" "$@" >/dev/null 2>&1
        read -r wall user sys < "$out"
        if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN{exit !(a < b)}'; then
            best_wall=$wall
            best_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')
        fi
    done
    echo "$best_wall $best_cpu"
}

wt_records=$(cpu "$wt" audit kernel --cve-db "$records" --kernel-version 6.1.100 --format json --no-hardening --fail-on never)
wt_index=$(cpu "$wt" audit kernel --cve-index "$index" --kernel-version 6.1.100 --format json --no-hardening --fail-on never)
py=$(cpu python3 "$here/python_reader.py" "$records" 6.1.100)
py_load=$(echo "$py_out" | head -1 | cut -d= -f2)
py_decide=$(echo "$py_out" | sed -n 2p | awk '{print $3}')

printf '\n%-44s %10s %12s\n' "load all records + decide 6.1.100 (+ report)" "wall s" "cpu s"
printf '%-44s %10s %12s\n' "watertight, from records" ${wt_records}
printf '%-44s %10s %12s\n' "watertight, from index ($(stat -c %s "$index") bytes)" ${wt_index}
printf '%-44s %10s %12s\n' "python3 json (load ${py_load}s, decide ${py_decide}s)" ${py}
awk -v p="${py%% *}" -v r="${wt_records%% *}" -v i="${wt_index%% *}" 'BEGIN {
    printf "\nratio python/watertight-records: %.1fx   python/watertight-index: %.0fx\n", p / r, p / i }'

if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 1 --runs 10 \
        -n records "$wt audit kernel --cve-db $records --kernel-version 6.1.100 --format json --no-hardening --fail-on never" \
        -n index "$wt audit kernel --cve-index $index --kernel-version 6.1.100 --format json --no-hardening --fail-on never"
fi
