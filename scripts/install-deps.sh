#!/usr/bin/env bash
# Installs the Debian packages watertight builds and tests with (Debian 12, as root). Idempotent.
# Rust itself (stable >= 1.91, cargo) is expected on PATH: .cargo/config.toml's build.target = "host-tuple" needs Cargo 1.91.
set -euo pipefail
pkgs=(
  gcc libc6-dev pkg-config make # C toolchain for -sys crates and the attack programs in tests
  libseccomp-dev                # libseccomp: compiles seccomp profiles to BPF
  clang llvm libelf-dev zlib1g-dev bpftool  # the BPF exec gate (libbpf-rs, vmlinux.h)
  libbpf-dev                    # bpf/bpf_helpers.h: BPF C programs compiled in crates/bpf's and
                                # bpf_vet's tests, and the libbpf-tools corpus (../shared/corpora)
  nftables iproute2             # bridge anti-spoofing (nft), veth/bridges/netns in tests
  util-linux libcap2-bin        # unshare, setpriv, capsh for the live-audit tests
  openssl                       # key interoperability test (crates/integrity/tests/openssl_interop.rs)
  bubblewrap hyperfine          # peers and the timer for benches/
  python3 python3-venv          # bench scripts that compare with peers (checkov)
  groff-base lintian            # rendering the generated man pages; linting the .deb (tests/package.rs)
  qemu-system-x86 busybox-static cpio  # the pure cgroup v2 guest (scripts/cgroup2-guest.sh;
                                # its SeaBIOS firmware is a hard dependency of qemu-system-x86)
  runsc                         # gVisor for `run --isolation gvisor` (crates/gvisor; its tests and
                                # benches/run/isolation.sh): Debian's 20221219 build, ptrace platform;
                                # its Sentry's filter is read back by tests/audit_seccomp.rs
  podman file runc              # the DaemonSet image (scripts/build-image.sh: podman build;
                                # file checks the binary is static) and its test (tests/image.rs,
                                # on runc: crun 1.8 refuses hosts with hybrid cgroups); live
                                # container names from runtime metadata (tests/audit_host_names.rs)
  docker.io containerd          # real clients of watertight-runc (crates/cli/tests/oci_docker.rs,
                                # oci_containerd.rs): each test starts its own private dockerd /
                                # containerd; the host services are never started nor enabled
)
# Services these packages would start or enable on install (the tests run private instances).
services=(docker.service docker.socket containerd.service)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # A policy-rc.d answering 101 keeps invoke-rc.d from starting docker/containerd during the
  # install; one made here is removed afterwards, an existing one is left as it was.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# made by watertight scripts/install-deps.sh for one apt install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  # The postinst scripts enable the units (symlinks); disabling them works without a running systemd.
  if command -v systemctl >/dev/null; then
    systemctl disable "${services[@]}" >/dev/null 2>&1 || true
  fi
fi
# Nothing may be serving: a host dockerd/containerd would be shared state the tests must not touch.
for daemon in dockerd containerd; do
  if pid=$(pidof "$daemon"); then
    echo "install-deps: warning: a host $daemon is running (pid $pid); the tests use private instances" >&2
  fi
done
command -v cargo >/dev/null || { echo "install-deps: cargo not found: install Rust (rustup) first" >&2; exit 1; }
# The VM tier's guest kernel (`watertight run --isolation vm`, crates/cli/tests/run_vm.rs):
# downloaded and unpacked into /var/cache/watertight-vm, never installed. 77: apt cannot
# reach a registry; the VM tests then say so.
"$(dirname "$0")/vm-kernel.sh" >/dev/null || [ $? -eq 77 ]
