#!/usr/bin/env bash
# Boots the Debian 12 cloud kernel (6.1) under QEMU/TCG on a pure cgroup v2 hierarchy and runs a
# series of `watertight run` cases there, one parseable line per case on stdout:
#
#   WTCASE <name> exit=<code> verdict=<verdict JSON on one line, or -> out=<program output>
#
# plus WTINFO lines (kernel, controllers) and WTERR lines (watertight's stderr of a case).
# crates/cli/tests/run_cgroup2_guest.rs runs this and checks each case; docs/cgroups.md says
# what it proves. Needs no root: the kernel package is only downloaded and unpacked, never
# installed (installing a kernel image would change the host's boot setup).
#
# Usage: scripts/cgroup2-guest.sh [WATERTIGHT_BINARY]
#   default binary: target/x86_64-unknown-linux-gnu/debug/watertight (statically linked).
# Environment: WT_GUEST_CACHE (default target/cgroup2-guest: the kernel .deb and vmlinuz are
#   kept there, so later runs need no download), WT_GUEST_TIMEOUT (seconds, default 600),
#   WT_GUEST_SMP (vCPUs, default 1), WT_GUEST_CPU (QEMU CPU model, default max: see below).
# Exit: 0 the guest ran (the cases' results are in the output), 77 something needed is missing
#   here (qemu, busybox-static, cpio, cc, the kernel package), 1 anything else.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
watertight=${1:-$repo/target/x86_64-unknown-linux-gnu/debug/watertight}
cache=${WT_GUEST_CACHE:-$repo/target/cgroup2-guest}
timeout_s=${WT_GUEST_TIMEOUT:-600}
smp=${WT_GUEST_SMP:-1}
cpu_model=${WT_GUEST_CPU:-max}

missing() { echo "cgroup2-guest: $*" >&2; exit 77; }
fail() { echo "cgroup2-guest: $*" >&2; exit 1; }

for tool in qemu-system-x86_64 cpio gzip cc objcopy readelf dpkg-deb apt-get apt-cache timeout; do
  command -v "$tool" >/dev/null || missing "$tool not found (scripts/install-deps.sh installs it)"
done
# A static executable has no program interpreter (the guest has no libc or loader).
is_static() { ! readelf -lW "$1" 2>/dev/null | grep -q "program interpreter"; }
busybox=/bin/busybox
[ -x "$busybox" ] && is_static "$busybox" ||
  missing "a static /bin/busybox is needed (Debian package busybox-static)"
[ -x "$watertight" ] || fail "$watertight not found: cargo build -p watertight first"
is_static "$watertight" || fail "$watertight is not statically linked (the guest has no libc)"

# The kernel: the version the linux-image-cloud-amd64 metapackage depends on, downloaded once.
mkdir -p "$cache"
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || missing "apt knows no linux-image-cloud-amd64 (apt-get update?)"
kdir=$cache/$kpkg
if [ ! -f "$kdir/vmlinuz" ]; then
  dl=$(mktemp -d "$cache/download.XXXXXX")
  # apt-get download writes into the working directory.
  if ! (cd "$dl" && apt-get download "$kpkg" >/dev/null 2>&1); then
    rm -rf "$dl"
    missing "apt-get download $kpkg failed (no package registry reachable?)"
  fi
  mkdir -p "$dl/x"
  dpkg-deb -x "$dl"/*.deb "$dl/x"
  mkdir -p "$kdir"
  # vmlinuz appears last and whole (rename), so a concurrent run sees it complete or not at all.
  cp "$dl"/x/boot/config-* "$dl/config"
  cp "$dl"/x/boot/vmlinuz-* "$dl/vmlinuz"
  mv "$dl/config" "$kdir/config"
  mv "$dl/vmlinuz" "$kdir/vmlinuz"
  rm -rf "$dl"
fi

work=$(mktemp -d "$cache/run.XXXXXX")
qemu_pid=
cleanup() {
  # qemu_pid is timeout(1), which passes TERM on to qemu.
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill -TERM "$qemu_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The initramfs: busybox, watertight (debug info stripped: 200 MiB -> ~30), the attack program of
# the run tests, and /init.
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,newroot}
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
objcopy --strip-debug "$watertight" "$root/usr/bin/watertight"
cc -O1 -static -o "$root/usr/bin/wt-attack" "$repo/crates/cli/tests/attacks/attack.c"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
cat >"$root/init" <<'INIT'
#!/bin/sh
# pivot_root(2) refuses the initramfs itself (a mount without a parent), and watertight
# pivots into its sandbox root from a copy of this root: move everything onto a tmpfs first.
if [ ! -e /.on-tmpfs ]; then
  mount -t tmpfs -o size=600m,mode=0755 root /newroot
  cp -a /bin /sbin /usr /etc /init /newroot/
  mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
  touch /newroot/.on-tmpfs
  exec switch_root /newroot /init
fi
export PATH=/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
dmesg -n 1
echo "WTINFO boot_s=$(cut -d' ' -f1 /proc/uptime)"
cg=/sys/fs/cgroup
echo "WTINFO kernel=$(uname -r) controllers=$(tr ' ' , <$cg/cgroup.controllers) subtree=$(tr ' ' , <$cg/cgroup.subtree_control)"

# What a stuck run is doing, then kill it: a hang shows up as a WTHANG line and a failed case,
# not as the whole guest running into the host's timeout.
hang() {
  name=$1 pid=$2
  echo "WTHANG $name watertight pid $pid did not end within 60 s"
  for d in $cg/watertight-*; do
    [ -d "$d" ] && echo "WTHANG $name $d procs=$(tr '\n' , <$d/cgroup.procs) $(tr '\n' ' ' <$d/cgroup.events)"
  done
  for t in /proc/[0-9]*; do
    [ "$(cat $t/cgroup 2>/dev/null)" = "0::/" ] && [ "${t#/proc/}" != "$pid" ] && continue
    echo "WTHANG $name ${t#/proc/} $(tr '\0' ' ' <$t/cmdline | head -c 80) state=$(awk '/^State/ {print $2}' $t/status) wchan=$(cat $t/wchan) cgroup=$(cat $t/cgroup) $(grep -E '^(SigPnd|ShdPnd|SigBlk)' $t/status | tr '\n\t' '  ')"
    for th in $t/task/*; do
      echo "WTHANG $name   task ${th##*/} wchan=$(cat $th/wchan) $(head -n 8 $th/stack 2>/dev/null | awk '{print $2}' | tr '\n' ' ')"
    done
  done
  echo "WTHANG $name supervisor fds: $(ls -l /proc/$pid/fd | awk '{print $(NF)}' | tr '\n' ' ')"
  echo "WTHANG $name kernel: $(dmesg | grep -i 'crng\|random' | tr '\n' ' ')"
  [ -s /tmp/events.jsonl ] && echo "WTHANG $name events $(tr '\n' ' ' </tmp/events.jsonl | head -c 1500)"
  for d in $cg/watertight-*; do
    [ -d "$d" ] || continue
    echo 1 >$d/cgroup.kill
    sleep 1
    echo "WTHANG $name after cgroup.kill: procs=$(tr '\n' , <$d/cgroup.procs) $(tr '\n' ' ' <$d/cgroup.events)"
  done
  kill -KILL "$pid"
}

# case NAME [watertight run flags...] -- CMD...: one WTCASE line.
case_() {
  name=$1; shift
  rm -f /tmp/verdict.json
  watertight run --result=/tmp/verdict.json "$@" >/tmp/out 2>/tmp/err &
  pid=$!
  deadline=$(($(cut -d. -f1 /proc/uptime) + 60))
  while :; do
    state=$(awk '/^State/ {print $2}' /proc/$pid/status 2>/dev/null)
    [ "$state" = S ] || [ "$state" = R ] || [ "$state" = D ] || break
    [ "$(cut -d. -f1 /proc/uptime)" -lt $deadline ] || { hang "$name" $pid; break; }
    sleep 0.1
  done
  wait $pid
  code=$?
  verdict=-
  [ -s /tmp/verdict.json ] && verdict=$(tr -d '\n' </tmp/verdict.json)
  echo "WTCASE $name exit=$code verdict=$verdict out=$(head -c 300 /tmp/out | tr '\n' ' ')"
  [ -s /tmp/err ] && echo "WTERR $name $(head -c 600 /tmp/err | tr '\n' ' ')"
}

# The root delegates no controller yet: watertight must enable what it needs itself.
case_ plain -- /bin/true
echo "WTCASE delegated exit=0 verdict=- out=subtree=$(tr ' ' , <$cg/cgroup.subtree_control)"
# From here on as on a booted host: every controller the root offers is delegated.
for c in $(cat $cg/cgroup.controllers); do echo "+$c" >$cg/cgroup.subtree_control; done

case_ memory --memory-limit=64M -- wt-attack hog 512
case_ pids --pids-limit=32 --wall-time-limit=60 -- wt-attack forkbomb
case_ cputime --time-limit=1 --wall-time-limit=60 -- wt-attack spin

# The limit files while a sandbox runs (it spins under a quarter of a CPU until its wall time).
watertight run --memory-limit=48M --pids-limit=20 --cpus=0.25 --wall-time-limit=8 \
  -- wt-attack spin >/dev/null 2>/tmp/err-files &
files=
for _ in $(seq 100); do
  d=$(ls -d $cg/watertight-* 2>/dev/null | head -n 1)
  # cgroup files report size 0, so read them rather than test -s.
  if [ -n "$d" ] && [ -n "$(cat "$d/cgroup.procs" 2>/dev/null)" ]; then
    sleep 2 # let the quota throttle it
    files="memory.max=$(cat $d/memory.max) memory.swap.max=$(cat $d/memory.swap.max)"
    files="$files pids.max=$(cat $d/pids.max) cpu.max=$(tr ' ' , <$d/cpu.max)"
    files="$files nr_throttled=$(awk '$1 == "nr_throttled" {print $2}' $d/cpu.stat)"
    files="$files controllers=$(tr ' ' , <$d/cgroup.controllers)"
    break
  fi
  sleep 0.1
done
wait $!
echo "WTCASE files exit=$? verdict=- out=$files"
[ -s /tmp/err-files ] && echo "WTERR files $(head -c 600 /tmp/err-files | tr '\n' ' ')"

# Devices: the guest's /dev/full becomes the zero device (1:5). A profile that lists only null
# and full shows this node as /dev/full, but the allowlist grants 1:7, so the cgroup's BPF
# device program must refuse it; /dev/null (1:3) is granted.
rm /dev/full && mknod -m 666 /dev/full c 1 5
watertight profile show default |
  sed -E '/^    "(zero|random|urandom|tty)",$/d' >/tmp/devices.toml
case_ device_refused --profile=/tmp/devices.toml -- wt-attack open /dev/full
case_ device_null --profile=/tmp/devices.toml -- wt-attack write /dev/null
# The control: with zero (1:5) listed too, the same node opens.
watertight profile show default |
  sed -E '/^    "(random|urandom|tty)",$/d' >/tmp/devices-zero.toml
case_ device_granted --profile=/tmp/devices-zero.toml -- wt-attack open /dev/full

# The forensic response freezes the sandbox through cgroup.freeze, captures, then kills it
# with cgroup.kill; a bundle in the verdict means the freeze succeeded.
case_ forensic --on-violation=forensic --evidence-dir=/tmp/evidence --events=/tmp/events.jsonl \
  --evidence-key=/tmp/evidence.key --wall-time-limit=60 \
  -- /bin/sh -c 'sleep 30 & wt-attack mount; echo after-violation'

# Exec-time integrity on 6.1: which layers this kernel offers, and what a verified run does
# when some are missing (refuse with one line, exit 125, unless told to run weaker).
watertight manifest probe | while read -r layer state rest; do
  echo "WTINFO probe $layer=$state $rest"
done
mkdir -p /tmp/img/bin && cp /bin/busybox /tmp/img/bin/ && ln -s busybox /tmp/img/bin/true
watertight key generate --out /tmp/img.key >/dev/null 2>&1
watertight manifest create --key /tmp/img.key --out /tmp/img.manifest /tmp/img >/dev/null 2>&1
case_ integrity --rootfs=/tmp/img --manifest=/tmp/img.manifest --pubkey=/tmp/img.key.pub -- /bin/true
case_ integrity_weaker --rootfs=/tmp/img --manifest=/tmp/img.manifest --pubkey=/tmp/img.key.pub \
  --allow-weaker-integrity -- /bin/true

left=$(ls -d $cg/watertight-* 2>/dev/null | wc -l)
registry=$(ls /run/watertight/cgroups 2>/dev/null | wc -l)
echo "WTCASE leftovers exit=0 verdict=- out=cgroups=$left registry=$registry"
echo "WTINFO uptime_s=$(cut -d' ' -f1 /proc/uptime)"
echo WTDONE
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# Kernel messages stay off the console (loglevel=1) so they cannot split the case lines.
append="console=ttyS0 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 panic=-1 quiet loglevel=1 rdinit=/init"
start=$(date +%s.%N)
# -cpu max gives the guest RDRAND, which seeds the kernel's CRNG at boot (the default qemu64
# model has none, and a TCG guest gathers entropy slowly): watertight's static binary reads
# randomness through the getrandom crate's /dev/random-polling fallback, which would otherwise
# block the forensic key generation until the CRNG is ready (see docs/cgroups.md).
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu "$cpu_model" -m 1024 -smp "$smp" \
  -display none -serial stdio -monitor none -nic none -no-reboot \
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" -append "$append" </dev/null &
qemu_pid=$!
status=0
wait "$qemu_pid" || status=$?
qemu_pid=
end=$(date +%s.%N)
echo "WTINFO wall_s=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') qemu_exit=$status"
[ "$status" -eq 0 ] || fail "qemu exited with $status (124: stopped after ${timeout_s}s)"
