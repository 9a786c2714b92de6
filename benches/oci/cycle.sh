#!/usr/bin/env bash
# Container start-up with watertight-runc side by side with runc (and crun where installed), in
# one hyperfine run:
#   cycle/RUNTIME   `create` + `start` + wait for the exit + `delete` of a /bin/true bundle (its
#                   root: busybox-static), driven by cycle.c as containerd-shim-runc-v2 drives it
#   podman/RUNTIME  `podman --runtime RUNTIME run --rm IMAGE /bin/true`, the image imported from a
#                   busybox-static tarball (no registry)
# Prints medians in ms and ratios to crun (to runc when crun is absent). The issue's goal:
# faster than crun (crun 37.5 ms and runc 57 ms measured here for the bundle cycle).
# Usage: benches/oci/cycle.sh [RUNS]   (as root; installs hyperfine, busybox-static, gcc if missing)
#   WT_RUNC=PATH   the watertight-runc to measure; default: this workspace's release build, run
#                  through a symlink named watertight-runc (argv[0] selects the runc CLI).
#   WT_PODMAN=0    skips the podman rows (the cycle rows alone take a fraction of the time).
#   WT_CRUN=PATH   a crun that is not on PATH (e.g. unpacked from Debian's package with
#                  `dpkg -x`; export LD_LIBRARY_PATH for its libyajl if that is not installed).
# podman runs under a temporary --root/--runroot/--tmpdir with --cgroup-manager cgroupfs,
# --events-backend none and --network none (the network set-up is the same for every runtime
# and only adds noise; without it nothing is left in the host's CNI state), all removed on exit.
set -euo pipefail
runs=${1:-100}
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "cycle: containers need root here: run it as root" >&2; exit 2; }
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx true || need+=(busybox-static)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}" >/dev/null; fi
command -v runc >/dev/null || { echo "cycle: runc is not installed (apt-get install runc)" >&2; exit 2; }

out=$(mktemp -d /tmp/wt-oci-cycle.XXXXXX)
chmod 755 "$out"
# podman's cgroupfs manager puts containers and conmon under --cgroup-parent (default
# libpod_parent, which it never removes): one of our own, removed on exit.
cgroup_parent=wt-oci-cycle-$$
podman_flags=(--root "$out/podman/root" --runroot "$out/podman/run" --tmpdir "$out/podman/tmp"
  --cgroup-manager cgroupfs --events-backend none --storage-driver overlay)
cleanup() {
  # Whatever a failed cycle left: containers under our state roots, the image store's mounts.
  for r in "$out"/state/*; do
    [ -d "$r" ] || continue
    for id in $(ls "$r" 2>/dev/null); do "${rt_of[$(basename "$r")]:-true}" --root "$r" delete --force "$id" >/dev/null 2>&1 || true; done
  done
  if [ -d "$out/podman" ]; then
    podman "${podman_flags[@]}" rm -af >/dev/null 2>&1 || true
    podman "${podman_flags[@]}" rmi -af >/dev/null 2>&1 || true
  fi
  # The containers' and conmon's cgroups (podman leaves its parent behind): every hierarchy,
  # deepest first; rmdir removes only empty ones.
  for h in /sys/fs/cgroup/*/"$cgroup_parent" /sys/fs/cgroup/"$cgroup_parent"; do
    [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  { findmnt -rn -o TARGET | grep "^$out/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$out"
}
declare -A rt_of
trap cleanup EXIT

# The runtimes, each as a fresh copy in one directory (benches/run/startup.sh: a binary ran 5%
# slower straight from where the linker wrote it than as a copy).
names=(runc)
rt_of[runc]=$(command -v runc)
if [ -n "${WT_RUNC:-}" ]; then
  [ -x "$WT_RUNC" ] || { echo "cycle: WT_RUNC=$WT_RUNC is not an executable" >&2; exit 2; }
  cp "$WT_RUNC" "$out/watertight-runc"
else
  cargo build --release -q -p watertight
  cp "target/$(rustc -vV | sed -n "s/^host: //p")/release/watertight" "$out/watertight"
  ln -s watertight "$out/watertight-runc"
  "$out/watertight-runc" --version >/dev/null 2>&1 && "$out/watertight-runc" state --help >/dev/null 2>&1 || {
    echo "cycle: this build of watertight has no runc CLI (watertight oci) yet: set WT_RUNC=PATH" >&2; exit 2; }
fi
names+=(watertight-runc)
rt_of[watertight-runc]=$out/watertight-runc
if [ -n "${WT_CRUN:-}" ]; then
  [ -x "$WT_CRUN" ] || { echo "cycle: WT_CRUN=$WT_CRUN is not an executable" >&2; exit 2; }
  names+=(crun); rt_of[crun]=$WT_CRUN
elif command -v crun >/dev/null; then names+=(crun); rt_of[crun]=$(command -v crun); fi
base=runc
[ -n "${rt_of[crun]:-}" ] && base=crun

# The bundle: busybox-static as /bin/true, `runc spec`'s config (namespaces, masked paths, a
# read-only root) without a terminal.
mkdir -p "$out/bundle/rootfs/bin" "$out/bin"
cp /bin/busybox "$out/bundle/rootfs/bin/busybox"
ln -s busybox "$out/bundle/rootfs/bin/true"
(cd "$out/bundle" && runc spec)
python3 - "$out/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
cc -O2 -Wall -o "$out/bin/cycle" benches/oci/cycle.c

# A first cycle of each, outside the timing: a runtime that cannot run the bundle fails here
# with its own message instead of as a hyperfine error. crun is a peer, not the subject: when it
# cannot (crun 1.8 refuses hybrid cgroup v1/v2 hosts), it is left out and the ratios are to runc.
for n in "${names[@]}"; do
  mkdir -p "$out/state/$n"
  "$out/bin/cycle" "${rt_of[$n]}" "$out/bundle" probe --root "$out/state/$n" && continue
  if [ "$n" = crun ]; then
    echo "cycle: crun cannot run the /bin/true bundle on this host (its error above): left out" >&2
    names=("${names[@]/crun/}")
    base=runc
  else
    echo "cycle: $n cannot run the /bin/true bundle (its error above)" >&2
    exit 1
  fi
done
read -r -a names <<<"${names[*]}"

cmds=()
for n in "${names[@]}"; do
  # One id for every run: a run deletes its container before the next starts. Each runtime
  # keeps its state in a --root of its own under $out.
  cmds+=(-n "cycle/$n" "$out/bin/cycle ${rt_of[$n]} $out/bundle bench --root $out/state/$n")
done
if [ "${WT_PODMAN:-1}" != 0 ] && command -v podman >/dev/null; then
  tar -C "$out/bundle/rootfs" -cf "$out/rootfs.tar" .
  podman "${podman_flags[@]}" import -q "$out/rootfs.tar" localhost/wt-bench-busybox:latest >/dev/null
  # The runtime's own rlimits must not exceed ours: root here lacks CAP_SYS_RESOURCE and
  # podman's defaults (nofile 1048576) would be refused by every runtime.
  for n in "${names[@]}"; do
    cmds+=(-n "podman/$n" "podman ${podman_flags[*]} --runtime ${rt_of[$n]} run --rm --network none \
--cgroup-parent /$cgroup_parent --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/wt-bench-busybox /bin/true")
  done
fi

hyperfine -N --warmup 5 --runs "$runs" --export-json "$out/r.json" "${cmds[@]}" >/dev/null

python3 - "$out/r.json" "$base" "${WT_RUNC:+watertight-runc=$WT_RUNC}" <<'PY'
import json, sys
res = {r["command"]: sorted(r["times"]) for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v[len(v) // 2] * 1000 for k, v in res.items()}
base = sys.argv[2]
if sys.argv[3]:
    print(f"({sys.argv[3]})")
print(f"{'command':<24}{'median ms':>10}{'vs ' + base:>10}")
for k in med:
    kind = k.split("/")[0]
    print(f"{k:<24}{med[k]:>10.2f}{med[k] / med[kind + '/' + base]:>9.2f}x")
PY
