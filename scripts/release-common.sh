# Sourced by scripts/build-deb.sh and scripts/release-tarball.sh (not run on its own): builds the
# release binary once and lays out what both ship. Expects `set -euo pipefail` and $root (the
# checkout) from the caller.

# One line on stderr naming the problem and the fix, then exit 2 (usage or input error) or the
# code given as $2.
die() {
  echo "${0##*/}: $1" >&2
  exit "${2:-2}"
}

# The build's facts: $version (Cargo metadata of the watertight package), $target (the host tuple
# .cargo/config.toml builds for), $target_dir (cargo's), $bin (the release binary),
# $source_date_epoch (the last commit's time, or SOURCE_DATE_EPOCH when set: file dates, the man
# pages' date and the changelog come from it, so the same commit gives the same archives).
release_facts() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  local id
  # cargo runs from the checkout: it reads .cargo/config.toml (the static flags, build.target)
  # from the working directory, not from the manifest's.
  id=$(cd "$root" && cargo pkgid --locked -p watertight) ||
    die "cargo pkgid -p watertight failed (see above): run from a watertight checkout"
  version=${id##*[#@]}
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]] ||
    die "cannot read the version from cargo pkgid ($id)"
  target=$(rustc -vV | sed -n 's/^host: //p')
  [ -n "$target" ] || die "rustc -vV names no host tuple"
  case ${CARGO_TARGET_DIR:-} in
    "") target_dir=$root/target ;;
    /*) target_dir=$CARGO_TARGET_DIR ;;
    *) target_dir=$root/$CARGO_TARGET_DIR ;;
  esac
  bin=$target_dir/$target/release/watertight
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    source_date_epoch=$SOURCE_DATE_EPOCH
  else
    source_date_epoch=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
  fi
}

# The release binary, built unless cargo finds it up to date (then this takes about a second, so
# the .deb and the tarball of one checkout share one build). Checks it is the version Cargo says.
release_build() {
  echo "${0##*/}: cargo build --release --locked -p watertight" >&2
  (cd "$root" && cargo build --release --locked -p watertight) >&2 ||
    die "cargo build --release failed (see above)" 1
  [ -x "$bin" ] || die "no binary at $bin after the build (CARGO_TARGET_DIR or build.target changed?)" 1
  local said
  said=$("$bin" --version)
  [ "$said" = "watertight $version" ] ||
    die "$bin --version says \"$said\", Cargo says $version: rebuild" 1
}

# Installs into $1 what the binary generates and the files of the checkout, in a layout each
# caller moves into place: $1/watertight (stripped: the symbol table is not needed to run, and
# Debian's policy strips shipped binaries), $1/man/*.1, $1/completions/{watertight.bash,
# _watertight,watertight.fish}.
release_stage() {
  local dir=$1
  mkdir -p "$dir/man" "$dir/completions"
  install -m 0755 "$bin" "$dir/watertight"
  # The flags Debian's dh_strip uses for programs.
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$dir/watertight" ||
    die "strip failed (binutils, from scripts/install-deps.sh)" 1
  SOURCE_DATE_EPOCH=$source_date_epoch "$dir/watertight" man --out "$dir/man" >/dev/null
  "$dir/watertight" completions bash >"$dir/completions/watertight.bash"
  "$dir/watertight" completions zsh >"$dir/completions/_watertight"
  "$dir/watertight" completions fish >"$dir/completions/watertight.fish"
  chmod 0644 "$dir"/man/*.1 "$dir"/completions/*
  touch -h -d "@$source_date_epoch" "$dir/watertight" "$dir"/man/*.1 "$dir"/completions/*
}
