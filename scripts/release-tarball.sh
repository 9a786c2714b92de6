#!/usr/bin/env bash
# Builds the release tarball watertight-<version>-<target>.tar.gz: one directory of that name
# holding the static binary (watertight), LICENSE, README.md, man/*.1 and completions/
# (watertight.bash, _watertight, watertight.fish); beside it its .sha256 (sha256sum format) and,
# with --key, a signed manifest of the unpacked tree (watertight-<version>-<target>.manifest).
#
#   scripts/release-tarball.sh [--out DIR] [--key KEY]
#     --out DIR  where the files go (default target/release-tarball, under CARGO_TARGET_DIR when
#                that is set); made if missing
#     --key KEY  a private key from `watertight key generate`: sign the tree with it
#
# Check a download (README, "Install"):
#   sha256sum -c watertight-<version>-<target>.tar.gz.sha256
#   tar -xpzf watertight-<version>-<target>.tar.gz
#   watertight manifest verify watertight-<version>-<target> \
#     --manifest watertight-<version>-<target>.manifest --pubkey KEY.pub
# The manifest is watertight's own signed-tree format (docs/integrity.md): watertight signs
# trees, not single files, so the signature covers every file of the unpacked tree, the exact
# bytes and modes that will run. Archives of one commit are the same bytes (sorted, root-owned
# entries dated by the commit).
#
# Exit codes: 0 built (the tarball's path on stdout); 1 a build step failed; 2 usage or input error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=release-common.sh
. "$root/scripts/release-common.sh"

out= key=
while [ $# -gt 0 ]; do
  case $1 in
    --out|--key)
      if [ "$1" = --out ]; then what="a directory: --out DIR"; else what="a key file: --key KEY"; fi
      [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs $what"
      if [ "$1" = --out ]; then out=$2; else key=$2; fi
      shift 2 ;;
    --out=*) out=${1#--out=}; [ -n "$out" ] || die "--out needs a directory: --out DIR"; shift ;;
    --key=*) key=${1#--key=}; [ -n "$key" ] || die "--key needs a key file: --key KEY"; shift ;;
    -h|--help) sed -n '2,23s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument \"$1\": the options are --out DIR and --key KEY" ;;
  esac
done
if [ -n "$key" ]; then
  [ -f "$key" ] && [ -r "$key" ] ||
    die "--key $key: no readable key file there: make one with \`watertight key generate --out KEY\`"
  grep -q "BEGIN PRIVATE KEY" "$key" ||
    die "--key $key: not a private key (watertight key generate writes KEY, private, and KEY.pub): give the private half"
  case $(stat -c %a "$key") in
    ?00) ;;
    *) die "--key $key: group or others may read this private key: chmod 600 $key" ;;
  esac
  key=$(cd "$(dirname "$key")" && pwd)/$(basename "$key")
fi
for tool in tar gzip sha256sum strip; do
  command -v "$tool" >/dev/null || die "$tool not found: apt-get install tar gzip coreutils binutils (or scripts/install-deps.sh)"
done

release_facts
out=${out:-$target_dir/release-tarball}
mkdir -p "$out" || die "cannot create the output directory $out"
out=$(cd "$out" && pwd)
release_build

name=watertight-$version-$target
work=$(mktemp -d "${TMPDIR:-/tmp}/watertight-tarball.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 022
release_stage "$work/stage"
tree=$work/$name
install -d "$tree/man" "$tree/completions"
install -m 0755 "$work/stage/watertight" "$tree/watertight"
install -m 0644 "$root/LICENSE" "$root/README.md" "$tree/"
install -m 0644 "$work"/stage/man/*.1 "$tree/man/"
install -m 0644 "$work"/stage/completions/* "$tree/completions/"
find "$tree" -exec touch -h -d "@$source_date_epoch" {} +

tarball=$out/$name.tar.gz
rm -f "$tarball" "$tarball.sha256" "$out/$name.manifest"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$source_date_epoch" --format=gnu \
  -C "$work" -cf - "$name" | gzip -9n >"$tarball" || die "tar failed (see above)" 1
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "${0##*/}: $tarball ($(du -k "$tarball" | cut -f1) KiB), $name.tar.gz.sha256" >&2

if [ -n "$key" ]; then
  # Signed with the binary just built: the release signs itself with the format it verifies.
  "$bin" manifest create "$tree" --key "$key" --out "$out/$name.manifest" >&2 ||
    die "watertight manifest create failed (see above)" 1
  # The signature must hold for the tree as a user unpacks it from the tarball.
  check=$work/check
  mkdir "$check"
  tar -C "$check" -xpzf "$tarball"
  if [ -f "$key.pub" ]; then
    "$bin" manifest verify "$check/$name" --manifest "$out/$name.manifest" --pubkey "$key.pub" >&2 ||
      die "the unpacked tarball does not verify against $name.manifest" 1
  else
    echo "${0##*/}: no $key.pub beside the key: the unpacked tarball was not verified" >&2
  fi
fi
echo "$tarball"
