#!/usr/bin/env bash
# Builds the image of the host-audit DaemonSet (deploy/Containerfile) with podman.
#
#   scripts/build-image.sh [--tag NAME]
#
# 1. cargo build --release --locked -p watertight (a no-op when the release build is current;
#    CARGO_TARGET_DIR is honoured);
# 2. checks that the binary is statically linked (the image is FROM scratch: no libc, no loader);
# 3. stages the binary, deploy/Containerfile and deploy/image-root/ in a temporary context
#    (removed on exit) and runs `podman build` on it.
#
# NAME defaults to localhost/watertight:<version>, <version> being the binary's own (the
# workspace version in Cargo.toml): exactly the image deploy/watertight-audit-daemonset.yaml
# names. Prints the image's name and id on the last line. Needs podman (scripts/install-deps.sh).
set -euo pipefail

die() {
  echo "build-image: $*" >&2
  exit 2
}

root=$(cd "$(dirname "$0")/.." && pwd)
tag=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag)
      [ $# -ge 2 ] && [ -n "$2" ] || die "--tag needs a NAME (e.g. --tag localhost/watertight:dev)"
      tag=$2
      shift 2
      ;;
    --tag=*)
      tag=${1#--tag=}
      [ -n "$tag" ] || die "--tag needs a NAME (e.g. --tag localhost/watertight:dev)"
      shift
      ;;
    -h | --help)
      sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    *) die "unknown argument \"$1\": the only option is --tag NAME" ;;
  esac
done
if [ -n "$tag" ]; then
  # An image reference: lower-case name components (the first may be host:port), then an
  # optional :tag of letters, digits, _ . - (checked before the build, not after it).
  last=${tag##*/}
  repo=$tag ref=""
  if [[ "$last" == *:* ]]; then
    ref=${last#*:}
    repo=${tag%:"$ref"}
  fi
  component='[a-z0-9]([a-z0-9._-]*[a-z0-9])?'
  [[ "$repo" =~ ^$component(:[0-9]+)?(/$component)*$ ]] &&
    { [ -z "$ref" ] && [[ "$last" != *: ]] || [[ "$ref" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; } ||
    die "--tag \"$tag\" is not an image name: lower-case name components separated by /, then an optional :tag (e.g. localhost/watertight:dev)"
fi
command -v podman >/dev/null || die "podman not found: apt-get install podman (or scripts/install-deps.sh)"
command -v file >/dev/null || die "file not found: apt-get install file (or scripts/install-deps.sh)"
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup), then run this again"

# The build, and the binary's path as cargo reports it (whatever the target dir and tuple).
bin=$(cd "$root" && cargo build --release --locked -p watertight --message-format=json-render-diagnostics |
  grep '"reason":"compiler-artifact"' | grep '"kind":\["bin"\]' | grep '"name":"watertight"' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -n "$bin" ] && [ -x "$bin" ] || die "cargo build did not report the watertight binary: run cargo build --release -p watertight and read its errors"

# FROM scratch holds no dynamic loader: a dynamically linked binary would not start at all.
kind=$(file -b "$bin")
case "$kind" in
  *"static-pie linked"* | *"statically linked"*) ;;
  *) die "$bin is not statically linked ($kind): build with .cargo/config.toml's crt-static flags (do not override RUSTFLAGS)" ;;
esac

version=$("$bin" --version | awk '{print $2}')
[ -n "$version" ] || die "$bin --version printed no version"
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
# [workspace.package] repository and license of Cargo.toml.
package_field() {
  sed -n '/^\[workspace\.package\]/,/^\[/{s/^'"$1"' *= *"\(.*\)"$/\1/p}' "$root/Cargo.toml"
}
source_url=$(package_field repository)
licenses=$(package_field license)
[ -n "$source_url" ] && [ -n "$licenses" ] || die "Cargo.toml's [workspace.package] lacks repository or license"
tag=${tag:-localhost/watertight:$version}

ctx=$(mktemp -d "${TMPDIR:-/tmp}/watertight-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/watertight"
cp "$root/deploy/Containerfile" "$ctx/Containerfile"
cp -r "$root/deploy/image-root" "$ctx/image-root"

# --layers=false: only the final image is stored (no intermediate images left behind);
# --pull=never: FROM scratch needs no registry, and none is asked.
podman build --quiet --layers=false --pull=never --network=none \
  --file "$ctx/Containerfile" \
  --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" \
  --build-arg "SOURCE=$source_url" \
  --build-arg "LICENSES=$licenses" \
  --tag "$tag" \
  "$ctx" >"$ctx/id"
echo "built $tag $(cat "$ctx/id") ($(du -h "$bin" | cut -f1) binary, version $version, revision $revision)"
