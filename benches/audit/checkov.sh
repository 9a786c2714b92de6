#!/usr/bin/env bash
# Side by side: `watertight audit k8s` vs checkov on the same Kubernetes Pod files (the first
# N files of the pod-security-admission fixtures, ../shared/conformance/psa), timed with
# hyperfine; prints both means and the ratio.
#
#   benches/audit/checkov.sh [N]      (N defaults to 215)
#
# checkov is installed from PyPI into a virtualenv on first use
# (CHECKOV_VENV, default ~/.cache/watertight/checkov-venv). Needs python3-venv and hyperfine.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
shared="${WATERTIGHT_SHARED:-$root/../shared}"
psa="$shared/conformance/psa"
count="${1:-215}"
venv="${CHECKOV_VENV:-$HOME/.cache/watertight/checkov-venv}"
target="${CARGO_TARGET_DIR:-$root/target}"

[ -f "$psa/MANIFEST.tsv" ] || { echo "checkov.sh: $psa/MANIFEST.tsv not found (set WATERTIGHT_SHARED)" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "checkov.sh: hyperfine not installed (apt-get install hyperfine)" >&2; exit 2; }

if [ ! -x "$venv/bin/checkov" ]; then
    echo "installing checkov into $venv ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet checkov
fi
checkov_version="$("$venv/bin/checkov" --version 2>/dev/null | tail -1)"

(cd "$root" && cargo build --quiet --release -p watertight)
watertight="$target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight"

work="$(mktemp -d "${TMPDIR:-/tmp}/wt-checkov-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The first N fixtures in MANIFEST order, flattened with unique names.
while IFS=$'\t' read -r level version expect file _check; do
    cp "$psa/$level/$version/$expect/$file" "$work/${level}_${version}_${expect}_$file"
done < <(sed -n "2,$((count + 1))p" "$psa/MANIFEST.tsv")
files=$(ls "$work" | wc -l)
echo "fixture set: $files Pod files from $psa" >&2

hyperfine --style basic --export-json "$work/watertight.json" --warmup 3 --runs 30 \
    "$watertight audit k8s $work --format json --fail-on none > /dev/null" >&2
hyperfine --style basic --export-json "$work/checkov.json" --warmup 0 --runs "${CHECKOV_RUNS:-3}" \
    "$venv/bin/checkov --quiet --compact --framework kubernetes -d $work -o json > /dev/null || true" >&2

python3 - "$work/watertight.json" "$work/checkov.json" "$files" "$checkov_version" <<'PY'
import json, sys
wt = json.load(open(sys.argv[1]))["results"][0]
ck = json.load(open(sys.argv[2]))["results"][0]
files, version = sys.argv[3], sys.argv[4]
print(f"files: {files}")
print(f"watertight audit k8s: {wt['mean']*1000:.1f} ms ± {wt['stddev']*1000:.1f} ms")
print(f"checkov {version}: {ck['mean']:.2f} s ± {ck['stddev']:.2f} s")
print(f"ratio (checkov / watertight), wall clock: {ck['mean']/wt['mean']:.0f}x")
cpu = lambda r: r["user"] + r["system"]
print(f"ratio (checkov / watertight), CPU time (user+sys): {cpu(ck)/cpu(wt):.0f}x")
PY
