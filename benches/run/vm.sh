#!/usr/bin/env bash
# The VM tier's cost over the VM itself, side by side in one hyperfine run:
#   bare-qemu   qemu-system-x86_64 booting the same kernel and initramfs with the same machine
#               (microvm, same accelerator, memory, CPU model, TSC hint), whose init powers off
#               as soon as it runs (`watertight.bare_boot` on the kernel command line): no
#               modules, no 9p, no sandbox, no verdict;
#   watertight  `watertight run --isolation vm -- /bin/true`: the whole tier (cgroup for QEMU,
#               modules, 9p root, the namespace sandbox inside, the verdict port).
# Prints the medians and the ratio (goal: watertight within 10% of bare-qemu).
# Usage: benches/run/vm.sh [RUNS]   (as root; needs qemu-system-x86 and scripts/vm-kernel.sh's
#   cache; WATERTIGHT=path picks the binary, default the release build if there is one, else
#   the debug one; a debug binary's initramfs is ~4x larger, which the bare boot loads too).
set -euo pipefail
runs=${1:-5}
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { echo "vm.sh: hyperfine not found (scripts/install-deps.sh)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "vm.sh: install qemu-system-x86" >&2; exit 1; }
triple=$(rustc -vV | sed -n "s/^host: //p")
wt=${WATERTIGHT:-}
if [ -z "$wt" ]; then
  wt=target/$triple/release/watertight
  [ -x "$wt" ] || wt=target/$triple/debug/watertight
fi
[ -x "$wt" ] || { echo "vm.sh: no watertight binary: cargo build -p watertight" >&2; exit 1; }
cache=${WATERTIGHT_VM_CACHE:-/var/cache/watertight-vm}
release=$(cat "$cache/current" 2>/dev/null) || { echo "vm.sh: run scripts/vm-kernel.sh first" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# One run first: it builds (or finds) the binary's initramfs in the cache and says which
# accelerator this host gets.
"$wt" run --isolation vm --result "$out/first.json" -- /bin/true
initrd=$(ls -t "$cache"/initramfs-*.cpio | head -n 1)
accel=$(sed -n 's/.*"accelerator": "\(.*\)".*/\1/p' "$out/first.json")
mem_mib=$(( 512 + 192 + 2 * $(stat -c %s "$initrd") / 1048576 + 2 ))
cmdline="console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init watertight.bare_boot"
if [ "$accel" = tcg ]; then
  khz=$(awk -F: '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
  cmdline="$cmdline tsc_early_khz=$khz tsc=reliable"
  accel_arg=tcg,tb-size=64 cpu=max
else
  accel_arg=kvm cpu=host
fi
bare="qemu-system-x86_64 -M microvm -accel $accel_arg -cpu $cpu -m $mem_mib -smp 1 -nodefaults \
 -no-user-config -nographic -no-reboot -sandbox on -kernel $cache/$release/vmlinuz -initrd $initrd \
 -append '$cmdline' -serial file:$out/console"
echo "kernel $release, initramfs $(du -h "$initrd" | cut -f1), accelerator $accel, $runs runs each"
hyperfine -N --warmup 1 --runs "$runs" --export-json "$out/h.json" \
  -n bare-qemu "$bare" \
  -n watertight "$wt run --isolation vm -- /bin/true"
python3 - "$out/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b, w = r["bare-qemu"]["median"], r["watertight"]["median"]
print(f"median bare-qemu {b:.3f} s, watertight --isolation vm {w:.3f} s, ratio {w / b:.2f} (goal <= 1.10)")
PY
