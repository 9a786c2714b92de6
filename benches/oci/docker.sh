#!/usr/bin/env bash
# `docker run --rm` wall time with watertight-runc side by side with runc, in one hyperfine run:
#   docker/RUNTIME   /usr/bin/docker run --rm --network none --runtime RUNTIME IMAGE /bin/true
# against a private dockerd on a private containerd (as crates/cli/tests/oci_docker.rs starts
# them: everything under a temp dir, no bridge, no iptables, the vfs storage driver, the cgroupfs
# driver under a cgroup parent of its own), the image imported from a busybox-static tarball (no
# registry). Prints medians in ms and the ratio to runc. Docker's own work (API, containerd,
# shim, storage) is in every row; the difference between rows is the runtime.
# Usage: benches/oci/docker.sh [RUNS]   (as root; needs docker.io and containerd:
#   scripts/install-deps.sh; installs hyperfine and busybox-static if missing)
#   WT_RUNC=PATH   the watertight-runc to measure; default: this workspace's release build, run
#                  through a symlink named watertight-runc (argv[0] selects the runc CLI).
# /usr/local/bin/docker, if there is one, is not Debian's client: /usr/bin/docker is used.
set -euo pipefail
runs=${1:-30}
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "docker bench: dockerd needs root: run it as root" >&2; exit 2; }
for f in /usr/bin/docker /usr/sbin/dockerd /usr/bin/containerd /usr/bin/ctr; do
  [ -x "$f" ] || { echo "docker bench: $f is missing (apt-get install docker.io containerd, or scripts/install-deps.sh)" >&2; exit 2; }
done
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi
command -v runc >/dev/null || { echo "docker bench: runc is not installed (apt-get install runc)" >&2; exit 2; }

out=$(mktemp -d /tmp/wt-oci-docker.XXXXXX)
chmod 755 "$out"
cgroup_parent=wt-oci-docker-bench-$$
had_run_docker=$([ -e /run/docker ] && echo 1 || true)
had_run_containerd=$([ -e /run/containerd ] && echo 1 || true)
had_published=$([ -e /run/watertight/containers ] && echo 1 || true)
dockerd_pid=""
containerd_pid=""
D=(/usr/bin/docker -H "unix://$out/docker.sock")
export DOCKER_CONFIG=$out/client
cleanup() {
  if [ -n "$dockerd_pid" ]; then
    ids=$("${D[@]}" ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && "${D[@]}" rm -f $ids >/dev/null 2>&1 || true
    "${D[@]}" rmi -f wt-bench-busybox:latest >/dev/null 2>&1 || true
  fi
  for pid in $dockerd_pid $containerd_pid; do
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # Shims and anything else still started from the temp dir (their command lines name it).
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "$out" && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  { findmnt -rn -o TARGET | grep "^$out/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  for h in /sys/fs/cgroup/*/"$cgroup_parent" /sys/fs/cgroup/"$cgroup_parent"; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  [ -n "$had_run_docker" ] || { rmdir /run/docker/plugins /run/docker 2>/dev/null || true; }
  [ -n "$had_run_containerd" ] || { rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null || true; }
  [ -n "$had_published" ] || { rmdir /run/watertight/containers 2>/dev/null || true; }
  rm -rf "$out"
}
trap cleanup EXIT

if [ -n "${WT_RUNC:-}" ]; then
  [ -x "$WT_RUNC" ] || { echo "docker bench: WT_RUNC=$WT_RUNC is not an executable" >&2; exit 2; }
  cp "$WT_RUNC" "$out/watertight-runc"
else
  cargo build --release -q -p watertight
  cp "target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight" "$out/watertight"
  ln -s watertight "$out/watertight-runc"
fi

mkdir -p "$out/containerd" "$out/image/bin"
cat >"$out/containerd/config.toml" <<EOF
version = 2
root = "$out/containerd/root"
state = "$out/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$out/containerd/containerd.sock"
[ttrpc]
  address = "$out/containerd/containerd.sock.ttrpc"
[debug]
  address = "$out/containerd/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$out/containerd/opt"
EOF
containerd --config "$out/containerd/config.toml" >"$out/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 300); do ctr --address "$out/containerd/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
printf '{"runtimes": {"watertight": {"path": "%s"}}, "deprecated-key-path": "%s"}\n' \
  "$out/watertight-runc" "$out/key.json" >"$out/daemon.json"
/usr/sbin/dockerd --config-file "$out/daemon.json" --containerd "$out/containerd/containerd.sock" \
  --containerd-namespace wt-bench --containerd-plugins-namespace wt-bench-plugins \
  --data-root "$out/data" --exec-root "$out/exec" --pidfile "$out/dockerd.pid" \
  -H "unix://$out/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
  --userland-proxy=false --storage-driver vfs --exec-opt native.cgroupdriver=cgroupfs \
  --cgroup-parent "/$cgroup_parent" >"$out/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 600); do "${D[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done
"${D[@]}" version >/dev/null || { echo "docker bench: dockerd did not start:" >&2; tail -5 "$out/dockerd.log" >&2; exit 1; }

cp /bin/busybox "$out/image/bin/busybox"
ln -s busybox "$out/image/bin/true"
tar -C "$out/image" -cf "$out/image.tar" .
"${D[@]}" import "$out/image.tar" wt-bench-busybox:latest >/dev/null

cmds=()
for rt in runc watertight; do
  # A first run outside the timing: a runtime that cannot run the image fails with its message.
  "${D[@]}" run --rm --network none --runtime "$rt" wt-bench-busybox /bin/true
  cmds+=(-n "docker/$rt" "${D[*]} run --rm --network none --runtime $rt wt-bench-busybox /bin/true")
done
hyperfine -N --warmup 3 --runs "$runs" --export-json "$out/r.json" "${cmds[@]}" >/dev/null

python3 - "$out/r.json" <<'PY'
import json, sys
res = {r["command"]: sorted(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v[len(v) // 2] * 1000 for k, v in res.items()}
print(f"{'command':<20}{'median ms':>10}{'min ms':>9}{'vs runc':>9}")
for k, v in res.items():
    print(f"{k:<20}{med[k]:>10.1f}{v[0] * 1000:>9.1f}{med[k] / med['docker/runc']:>8.2f}x")
PY
