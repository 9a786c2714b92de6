#!/usr/bin/env bash
# `watertight run -- /bin/true` per isolation tier, side by side in one hyperfine run, with
# `runsc run` straight on the same OCI bundle the gVisor tier writes (examples/gvisor_bundle.rs)
# and the same runsc flags, so the ratio gvisor / runsc is what watertight adds around runsc
# (its plan, private mount namespace and work tmpfs, outer cgroup, log parsing, clean-up).
# The goal: within 10% of bare runsc. Also bare runsc without --debug-log, to show what the
# log watertight reads (wait status, unimplemented syscalls) costs runsc itself.
# Usage: benches/run/isolation.sh [RUNS]   (as root; installs hyperfine and runsc if missing)
set -euo pipefail
runs=${1:-30}
cd "$(dirname "$0")/../.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v runsc >/dev/null || need+=(runsc)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release -q -p watertight
cargo build --release -q -p watertight-gvisor --example gvisor_bundle
target=$PWD/target/$(rustc -vV | sed -n "s/^host: //p")/release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cp "$target/watertight" "$out/watertight"
wt=$out/watertight
"$target/examples/gvisor_bundle" "$out/bundle" /bin/true
mkdir -p "$out/state" "$out/logs"
# The platform watertight chose (its verdict says; the cache holds it after a first run).
"$wt" run --isolation gvisor --result "$out/v.json" -- /bin/true
platform=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["isolation"]["platform"])' "$out/v.json")
runsc_flags="--platform=$platform --network=none --ignore-cgroups --oci-seccomp --root $out/state"

hyperfine -N --warmup 3 --runs "$runs" --export-json "$out/r.json" \
  -n namespaces "$wt run -- /bin/true" \
  -n gvisor "$wt run --isolation gvisor -- /bin/true" \
  -n runsc "runsc $runsc_flags --debug-log=$out/logs/ run --bundle $out/bundle bench" \
  -n runsc-nolog "runsc $runsc_flags run --bundle $out/bundle bench" >/dev/null

python3 - "$out/r.json" <<'PY'
import json, sys
res = {r["command"]: sorted(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v[len(v) // 2] * 1000 for k, v in res.items()}
print(f"{'command':<13}{'median ms':>10}{'vs runsc':>10}")
for k in ["namespaces", "gvisor", "runsc", "runsc-nolog"]:
    print(f"{k:<13}{med[k]:>10.2f}{med[k] / med['runsc']:>9.2f}x")
ratio = med["gvisor"] / med["runsc"]
print(f"gvisor tier / bare runsc (same bundle, same flags): {ratio:.3f} "
      f"({'within' if ratio <= 1.10 else 'NOT within'} the 10% goal)")
print(f"gvisor tier / namespaces tier: {med['gvisor'] / med['namespaces']:.1f}x")
PY
