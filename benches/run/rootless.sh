#!/usr/bin/env bash
# Start-up of `watertight run -- /bin/true` without root (user namespaces, docs/batch.md
# "Without root") side by side with the same run as root and with bubblewrap as the same
# unprivileged user, in one hyperfine run; prints medians and ratios to the root run.
# The unprivileged caller is nobody (uid 65534, no groups) through setpriv, whose own cost is
# the `setpriv /bin/true` row; `rootless-no-cache` has no runtime directory (no seccomp cache). No delegated cgroup: the rootless run has rlimits in its place.
# Usage: benches/run/rootless.sh [RUNS]   (as root; installs hyperfine, bubblewrap if missing)
set -euo pipefail
runs=${1:-50}
cd "$(dirname "$0")/../.."
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi
cargo build --release -q -p watertight
wt=$PWD/target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# A copy nobody can execute (the checkout may lie under a private directory).
chmod 755 "$out"
cp "$wt" "$out/watertight"
wt=$out/watertight
# nobody's runtime directory (systemd's /run/user/UID stands for it): where a rootless run caches
# its compiled seccomp filter, as it does in a user session.
mkdir -m 700 "$out/run" && chown 65534 "$out/run"
as_user="env XDG_RUNTIME_DIR=$out/run setpriv --reuid=65534 --regid=65534 --clear-groups"
bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --cap-drop ALL \
 --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib \
 --symlink usr/lib64 /lib64 --ro-bind /etc /etc --proc /proc --dev /dev --tmpfs /tmp /bin/true"
cd /
hyperfine -N --warmup 10 --runs "$runs" --export-json "$out/r.json" \
  -n setpriv "$as_user /bin/true" \
  -n root "$wt run -- /bin/true" \
  -n rootless "$as_user $wt run -- /bin/true" \
  -n rootless-no-cache "env -u XDG_RUNTIME_DIR setpriv --reuid=65534 --regid=65534 --clear-groups $wt run -- /bin/true" \
  -n bubblewrap-user "$as_user $bwrap_cmd" >/dev/null

python3 - "$out/r.json" <<'PY'
import json, sys
res = {r["command"]: sorted(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v[len(v) // 2] * 1000 for k, v in res.items()}
base = med["root"]
print(f"{'command':<17}{'median ms':>10}{'vs root':>10}")
for k in ["setpriv", "root", "rootless", "rootless-no-cache", "bubblewrap-user"]:
    print(f"{k:<17}{med[k]:>10.2f}{med[k] / base:>9.2f}x")
PY
