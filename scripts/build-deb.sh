#!/usr/bin/env bash
# Builds target/debian/watertight_<version>_<arch>.deb with plain dpkg-deb (no cargo-deb):
# the static release binary, man pages, bash/zsh/fish completions, the copyright file (DEP-5),
# README.md and the example configs. Install with `apt install ./target/debian/watertight_*.deb`.
#
#   scripts/build-deb.sh [--out DIR]     DIR: where the .deb goes (default target/debian, under
#                                        CARGO_TARGET_DIR when that is set); made if missing
#
# The release build is `cargo build --release --locked -p watertight`: up to date, it is reused.
# Exit codes: 0 built (the .deb's path on stdout); 1 a build step failed; 2 usage or input error.
# DEBFULLNAME and DEBEMAIL, when set, name the maintainer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=release-common.sh
. "$root/scripts/release-common.sh"

out=
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] && [ -n "$2" ] || die "--out needs a directory: --out DIR"; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; [ -n "$out" ] || die "--out needs a directory: --out DIR"; shift ;;
    -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument \"$1\": the only option is --out DIR" ;;
  esac
done
for tool in dpkg dpkg-deb strip gzip ldd; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install dpkg-dev binutils (or scripts/install-deps.sh)"
done

release_facts
out=${out:-$target_dir/debian}
mkdir -p "$out" || die "cannot create the output directory $out"
out=$(cd "$out" && pwd)
release_build

# A static binary needs no shared library, so the package depends on nothing; a dynamic one
# would need its libraries in Depends, which this script does not compute.
if ldd "$bin" 2>&1 | grep -q '=>'; then
  die "$bin is linked dynamically (ldd lists libraries): the package would need Depends; build with .cargo/config.toml's static flags" 1
fi

arch=$(dpkg --print-architecture)
# Debian orders 1.0~rc1 before 1.0 (a tilde), SemVer 1.0.0-rc.1 before 1.0.0 (a hyphen).
deb_version=${version/-/\~}
maintainer="${DEBFULLNAME:-watertight developers} <${DEBEMAIL:-watertight@example.invalid}>"
# `sed -n 1p`, never `head`: head exits after its first line, a writer still writing then dies of
# SIGPIPE, and pipefail turns that into a silent exit of this script (seen in CI with git log).
repository=$(sed -n 's/^repository = "\(.*\)"$/\1/p' "$root/Cargo.toml" | sed -n 1p)
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' "$root/crates/cli/Cargo.toml" | sed -n 1p)
export SOURCE_DATE_EPOCH=$source_date_epoch

work=$(mktemp -d "${TMPDIR:-/tmp}/watertight-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022
release_stage "$work/stage"
pkg=$work/pkg
doc=$pkg/usr/share/doc/watertight
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/share/man/man1" "$pkg/usr/share/lintian/overrides" \
  "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
  "$pkg/usr/share/fish/vendor_completions.d" "$doc/examples" "$pkg/lib/systemd/system"

install -m 0755 "$work/stage/watertight" "$pkg/usr/bin/watertight"
for page in "$work"/stage/man/*.1; do
  gzip -9n <"$page" >"$pkg/usr/share/man/man1/${page##*/}.gz"
done
install -m 0644 "$work/stage/completions/watertight.bash" "$pkg/usr/share/bash-completion/completions/watertight"
install -m 0644 "$work/stage/completions/_watertight" "$pkg/usr/share/zsh/vendor-completions/_watertight"
install -m 0644 "$work/stage/completions/watertight.fish" "$pkg/usr/share/fish/vendor_completions.d/watertight.fish"

# The audit as a systemd timer for nodes without Kubernetes (not enabled: the admin runs
# `systemctl enable --now watertight-audit.timer`, so no maintainer scripts).
install -m 0644 "$root/deploy/systemd/watertight-audit.service" "$root/deploy/systemd/watertight-audit.timer" \
  "$pkg/lib/systemd/system/"
# The BPF gatekeeper (`bpf load --hold` from /etc/watertight/bpf.d), not enabled either:
# `systemctl enable --now watertight-bpf-gatekeeper.service` once objects and key are in place.
install -m 0644 "$root/deploy/bpf-gatekeeper/watertight-bpf-gatekeeper.service" "$pkg/lib/systemd/system/"

# Documentation: README, the example configs the repository ships, and the default profile as
# TOML (what `watertight profile show default` prints: the start of a custom profile).
install -m 0644 "$root/README.md" "$doc/README.md"
install -m 0644 "$root/deploy/watertight-audit-daemonset.yaml" "$doc/examples/watertight-audit-daemonset.yaml"
install -m 0644 "$root/crates/seccomp/profiles/default.json" "$doc/examples/seccomp-default.json"
"$bin" profile show default >"$doc/examples/profile-default.toml"
chmod 0644 "$doc/examples/profile-default.toml"
# The static binary holds copies of the C libraries it links, which lintian reports as errors
# (embedded-library): that is the design (README: its start-up is part of every sandbox's), and
# it means a fix in one of them needs a rebuild of watertight.
cat >"$pkg/usr/share/lintian/overrides/watertight" <<'LINTIAN'
# Linked statically on purpose (.cargo/config.toml): zlib (for libbpf and libelf) and
# unsafe-libyaml (serde_norway's Rust translation of libyaml) are compiled in; a fix in either
# needs a rebuild of watertight.
embedded-library libyaml [usr/bin/watertight]
embedded-library zlib [usr/bin/watertight]
# A static-PIE executable is ET_DYN without an interpreter: it needs no shared library at all.
shared-library-lacks-prerequisites [usr/bin/watertight]
LINTIAN
chmod 0644 "$pkg/usr/share/lintian/overrides/watertight"
first_year=$({ git -C "$root" log --reverse --format=%cd --date=format:%Y 2>/dev/null || true; } | sed -n 1p)
last_year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
years=${first_year:-$last_year}
[ "$years" = "$last_year" ] || years=$years-$last_year
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: watertight
Source: $repository
Comment: /usr/bin/watertight is linked statically. Besides watertight's own code it contains
 the Rust crates of Cargo.lock (each under its own license, mostly MIT or Apache-2.0), the GNU C
 library (LGPL-2.1+), libseccomp (LGPL-2.1), libbpf (LGPL-2.1 or BSD-2-Clause), libelf
 (elfutils: LGPL-3+ or GPL-2+) and zlib (Zlib).

Files: *
Copyright: $years the watertight developers
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not use
 this file except in compliance with the License. You may obtain a copy of the
 License at http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software distributed
 under the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR
 CONDITIONS OF ANY KIND, either express or implied. See the License for the
 specific language governing permissions and limitations under the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0".
EOF
chmod 0644 "$doc/copyright"
# A native package (no Debian revision) ships its changelog as changelog.gz.
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf '%s\n' \
  "watertight ($deb_version) unstable; urgency=medium" "" \
  "  * Release $version, built by scripts/build-deb.sh from commit $commit." "" \
  " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")" |
  gzip -9n >"$doc/changelog.gz"

installed_kib=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: watertight
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kib
Section: admin
Priority: optional
Homepage: $repository
Description: sandbox for untrusted programs and container isolation auditor
$(printf '%s\n' "$description" | fold -s -w 72 | sed 's/ *$//; s/^/ /')
 .
 watertight run starts a program in a layered sandbox (user, pid, mount, net,
 uts, ipc and cgroup namespaces, a read-only root, no capabilities, a seccomp
 allowlist, cgroup limits) and reports a verdict; watertight audit finds
 isolation leaks on a live node, in Kubernetes, Docker and OCI configurations
 and in the kernel; watertight net guards container bridges against spoofing.
 .
 The binary is linked statically and needs no other package.
EOF
(cd "$pkg" && find lib usr -type f -print0 | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/md5sums"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/watertight_${deb_version}_$arch.deb
dpkg-deb --root-owner-group --build "$pkg" "$deb" >&2 || die "dpkg-deb --build failed (see above)" 1
echo "${0##*/}: $deb ($(du -k "$deb" | cut -f1) KiB)" >&2
echo "$deb"
