#!/usr/bin/env bash
# Fetches the kernel the VM tier (`watertight run --isolation vm`, crates/vm) boots: Debian's
# generic kernel (linux-image-amd64's current version; not the cloud flavour, which is built
# without 9p, the guest's shared root), downloaded with `apt-get download`
# and unpacked with `dpkg-deb -x` into a cache directory. It is never installed: installing a
# kernel package runs initramfs and boot-loader hooks that change how the host boots.
#
# Layout (what crates/vm/src/kernel.rs reads):
#   $WATERTIGHT_VM_CACHE/<release>/vmlinuz                 the kernel image
#   $WATERTIGHT_VM_CACHE/<release>/modules/                lib/modules/<release> of the package
#                                                          (dependencies: each .ko's modinfo)
#   $WATERTIGHT_VM_CACHE/current                           one line: <release>
# WATERTIGHT_VM_CACHE defaults to /var/cache/watertight-vm.
#
# Idempotent: a release already unpacked is kept and only `current` is (re)written. The
# unpacked tree appears by rename, so a concurrent run sees it whole or not at all.
# Exit: 0 ready, 77 apt cannot name or download the package (no registry reachable), 1 else.
set -euo pipefail
cache=${WATERTIGHT_VM_CACHE:-/var/cache/watertight-vm}
for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "vm-kernel: $tool not found (a Debian host is needed)" >&2; exit 77; }
done
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
  echo "vm-kernel: apt knows no linux-image-amd64 (run apt-get update)" >&2
  exit 77
fi
release=${kpkg#linux-image-}
mkdir -p "$cache"
if [ ! -f "$cache/$release/vmlinuz" ]; then
  dl=$(mktemp -d "$cache/.download.XXXXXX")
  trap 'rm -rf "$dl"' EXIT
  # apt-get download writes into the working directory.
  if ! (cd "$dl" && apt-get download "$kpkg" >/dev/null 2>&1); then
    echo "vm-kernel: apt-get download $kpkg failed (no package registry reachable?)" >&2
    exit 77
  fi
  dpkg-deb -x "$dl"/*.deb "$dl/x"
  mkdir -p "$dl/tree"
  cp "$dl/x/boot/vmlinuz-$release" "$dl/tree/vmlinuz"
  cp "$dl/x/boot/config-$release" "$dl/tree/config"
  mv "$dl/x/lib/modules/$release" "$dl/tree/modules"
  rm -rf "$cache/$release"
  mv "$dl/tree" "$cache/$release"
fi
printf '%s\n' "$release" >"$cache/.current.$$"
mv "$cache/.current.$$" "$cache/current"
echo "$cache/$release"
