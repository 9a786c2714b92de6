#!/bin/sh
# Installs watertight as an OCI runtime on one node; the DaemonSet (daemonset.yaml) runs it on
# every node, and it runs by hand the same way (docs/oci-runtime-deploy.md):
#   1. the static watertight binary at /usr/local/bin/watertight, replaced atomically (a copy
#      next to it, then a rename: a container starting meanwhile runs the old or the new binary,
#      never half of one), and the symlink /usr/local/bin/watertight-runc -> watertight
#      (argv[0] selects the runc command line);
#   2. the hardening floor /etc/watertight/runtime.toml, unless the node's file was changed since
#      this script wrote it (it keeps the sha256 of what it wrote in .runtime.toml.installed);
#   3. containerd's `watertight` runtime handler: config version 2 (containerd 1.6/1.7, or no
#      config.toml yet): the tables of containerd-v2.toml between BEGIN/END markers in
#      config.toml; config version 3 (containerd 2.x): containerd-v3-dropin.toml as
#      /etc/containerd/conf.d/watertight.toml, added to config.toml's `imports` if needed;
#   4. containerd restarted (CONTAINERD_RESTART), only when its configuration changed (or a
#      restart after such a change failed: /etc/watertight/.containerd-restart-pending).
# Every check comes before the first write; a second run changes nothing and restarts nothing.
#
# Environment (all optional):
#   ROOT               the node's / as this script sees it (the DaemonSet mounts the host's
#                      directories under /host; default: empty, i.e. this machine's /)
#   SRC                the directory holding the files to install (default: this script's)
#   WATERTIGHT_BIN     the binary to install (default: $SRC/watertight)
#   FLOOR              the runtime.toml to install (default: $SRC/runtime.toml)
#   CONTAINERD_CONFIG  containerd's config file on the node (default: /etc/containerd/config.toml)
#   CONTAINERD_RESTART the shell command that restarts containerd (default: systemctl in the
#                      host's namespaces through PID 1: needs hostPID); empty: do not restart,
#                      say what to do instead
# Exit status: 0 installed (or already installed); 1 a check failed (not static, not an ELF,
# an unsupported containerd config, ...), nothing written; 2 usage; 3 the node's runtime.toml
# was changed by someone else and is kept: nothing written; 4 a step failed after some were
# applied (the message says which; rerunning is safe).
set -eu

die() {
  code=$1
  shift
  echo "install: $*" >&2
  exit "$code"
}
say() { echo "install: $*"; }

case "${1:-}" in
  "") ;;
  -h | --help)
    sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  *) die 2 "unknown argument \"$1\": install.sh takes none (its settings are environment variables, see --help)" ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
ROOT=${ROOT:-}
SRC=${SRC:-$here}
WATERTIGHT_BIN=${WATERTIGHT_BIN:-$SRC/watertight}
FLOOR=${FLOOR:-$SRC/runtime.toml}
CONTAINERD_CONFIG=${CONTAINERD_CONFIG:-/etc/containerd/config.toml}
CONTAINERD_RESTART=${CONTAINERD_RESTART-nsenter --target 1 --mount --uts --ipc --net --pid -- systemctl restart containerd}

bin_dir=$ROOT/usr/local/bin
floor_dst=$ROOT/etc/watertight/runtime.toml
floor_record=$ROOT/etc/watertight/.runtime.toml.installed
# Present from a change of containerd's configuration until containerd restarted after it: a
# restart that failed (or was left to the admin) is retried by the next run.
restart_pending=$ROOT/etc/watertight/.containerd-restart-pending
config=$ROOT$CONTAINERD_CONFIG
dropin_host=/etc/containerd/conf.d/watertight.toml
dropin=$ROOT$dropin_host
begin='# BEGIN watertight-runc: written by watertight install.sh (deploy/oci-runtime); edits between these markers are replaced'
end='# END watertight-runc'

[ -z "$ROOT" ] || [ -d "$ROOT" ] || die 1 "ROOT=$ROOT is not a directory: point it at the node's root (the DaemonSet mounts it at /host)"

# --- checks: nothing is written before all of them pass --------------------------------------

# An unsigned little-endian integer of SIZE bytes at OFFSET of FILE.
uint() { od -An -j "$2" -N "$3" -t "u$3" "$1" | tr -d ' \n'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# Static: a 64-bit little-endian ELF without a PT_INTERP program header (no dynamic loader;
# a static-PIE has PT_DYNAMIC but no interpreter). Status 0 static, 1 dynamic, 2 not such an ELF.
elf_static() {
  [ "$(od -An -N4 -t x1 "$1" | tr -d ' \n')" = 7f454c46 ] || return 2
  [ "$(uint "$1" 4 1)" = 2 ] && [ "$(uint "$1" 5 1)" = 1 ] || return 2
  phoff=$(uint "$1" 32 8)
  phentsize=$(uint "$1" 54 2)
  phnum=$(uint "$1" 56 2)
  i=0
  while [ "$i" -lt "$phnum" ]; do
    [ "$(uint "$1" $((phoff + i * phentsize)) 4)" != 3 ] || return 1
    i=$((i + 1))
  done
  return 0
}

[ -f "$WATERTIGHT_BIN" ] && [ -x "$WATERTIGHT_BIN" ] ||
  die 1 "$WATERTIGHT_BIN is not an executable file: set WATERTIGHT_BIN to the static watertight binary"
static=0
elf_static "$WATERTIGHT_BIN" || static=$?
[ "$static" != 2 ] || die 1 "$WATERTIGHT_BIN is not a 64-bit little-endian ELF executable: set WATERTIGHT_BIN to the static watertight binary"
[ "$static" != 1 ] || die 1 "$WATERTIGHT_BIN is dynamically linked (it names a loader): containers would depend on the node's libc; install the static build (cargo build --release: .cargo/config.toml links it statically)"
version=$("$WATERTIGHT_BIN" --version 2>/dev/null | head -n 1) || version=""
case "$version" in
  watertight\ *) ;;
  *) die 1 "$WATERTIGHT_BIN does not run as watertight (\`--version\` said \"$version\"): set WATERTIGHT_BIN to the watertight binary" ;;
esac
[ -f "$FLOOR" ] && [ -r "$FLOOR" ] || die 1 "the floor $FLOOR is not a readable file: set FLOOR to the runtime.toml to install"
[ ! -d "$bin_dir/watertight-runc" ] || die 1 "$bin_dir/watertight-runc is a directory: remove it, the installer puts a symlink there"

# The floor: write it when the node has none or still has what this script wrote last; keep a
# file someone changed since (or wrote without it), unless it is already what we would write.
floor_new=$(sha "$FLOOR")
floor_action=write
if [ -e "$floor_dst" ] || [ -L "$floor_dst" ]; then
  floor_now=$(sha "$floor_dst" 2>/dev/null) || floor_now=unreadable
  recorded=$(cat "$floor_record" 2>/dev/null) || recorded=""
  if [ "$floor_now" = "$floor_new" ]; then
    floor_action=same
  elif [ -L "$floor_dst" ] || [ "$floor_now" != "$recorded" ]; then
    die 3 "$floor_dst was changed on this node since the installer wrote it (or not written by it): nothing was installed; keep your floor by moving its content into the installer's runtime.toml (the DaemonSet's ConfigMap watertight-runtime-floor), or remove the file, then rerun"
  fi
fi

# containerd: which form its config takes, and the new content of config.toml.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
config_version=""
if [ -f "$config" ]; then
  # `version` is a top-level key: it can only come before the first table header.
  config_version=$(awk '/^[[:space:]]*\[/ { exit } match($0, /^[[:space:]]*version[[:space:]]*=[[:space:]]*[0-9]+/) { v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[^0-9].*$/, "", v); print v; exit }' "$config")
  if [ -z "$config_version" ] && grep -Evq '^[[:space:]]*(#.*)?$' "$config"; then
    die 1 "$CONTAINERD_CONFIG has settings but no \`version = 2\` or \`version = 3\` line (a version 1 config): convert it with \`containerd config migrate\`, then rerun"
  fi
elif [ -e "$config" ]; then
  die 1 "$CONTAINERD_CONFIG is not a regular file: point CONTAINERD_CONFIG at containerd's config file"
fi
case "$config_version" in
  "" | 2) mode=v2 ;;
  3) mode=v3 ;;
  *) die 1 "$CONTAINERD_CONFIG has \`version = $config_version\`: the installer knows containerd's versions 2 (containerd 1.6/1.7) and 3 (containerd 2.x)" ;;
esac

# config.toml without this script's block and without trailing blank lines.
if [ -f "$config" ]; then
  awk -v b="$begin" -v e="$end" '
    $0 == b { skip = 1; next }
    $0 == e { skip = 0; next }
    skip { next }
    /^[[:space:]]*$/ { blank++; next }
    { while (blank > 0) { print ""; blank-- } print }' "$config" >"$tmp/stripped"
else
  : >"$tmp/stripped"
fi
if grep -Eq "runtimes\.[\"']?watertight[\"']?[].]" "$tmp/stripped"; then
  die 1 "$CONTAINERD_CONFIG defines the runtime handler \"watertight\" itself (outside the installer's block): remove those tables, the installer writes its own"
fi
if [ "$mode" = v2 ]; then
  {
    if grep -Evq '^[[:space:]]*(#.*)?$' "$tmp/stripped"; then
      cat "$tmp/stripped"
    else
      cat "$tmp/stripped"
      echo "version = 2"
    fi
    echo
    echo "$begin"
    grep -v '^#' "$SRC/containerd-v2.toml" | sed '/^[[:space:]]*$/d'
    echo "$end"
  } >"$tmp/config"
else
  # Covered already: an import of this drop-in, or of every *.toml in its directory, at the top
  # level (before the first table header).
  if awk '/^[[:space:]]*\[/ { exit } { print }' "$tmp/stripped" |
    grep -Eq "[\"']/etc/containerd/conf\.d/(\*|watertight)\.toml[\"']"; then
    cp "$tmp/stripped" "$tmp/config"
  elif awk '/^[[:space:]]*\[/ { exit } /^[[:space:]]*imports[[:space:]]*=[[:space:]]*\[/ { found = 1 } END { exit !found }' "$tmp/stripped"; then
    awk -v p="$dropin_host" '
      !done && /^[[:space:]]*\[/ { top_over = 1 }
      !done && !top_over && /^[[:space:]]*imports[[:space:]]*=[[:space:]]*\[/ { sub(/\[/, "[\"" p "\", "); done = 1 }
      { print }' "$tmp/stripped" >"$tmp/config"
  else
    awk -v p="$dropin_host" '
      { print }
      !done && /^[[:space:]]*version[[:space:]]*=/ { print "imports = [\"" p "\"]"; done = 1 }' "$tmp/stripped" >"$tmp/config"
  fi
fi
config_changed=0
cmp -s "$tmp/config" "$config" 2>/dev/null || config_changed=1
dropin_changed=0
if [ "$mode" = v3 ]; then
  cmp -s "$SRC/containerd-v3-dropin.toml" "$dropin" 2>/dev/null || dropin_changed=1
elif [ -e "$dropin" ]; then
  dropin_changed=1 # a version 3 drop-in left from before: it goes
fi

# --- apply -------------------------------------------------------------------------------------
step="the binary"
trap 'status=$?; rm -rf "$tmp"; [ "$status" = 0 ] || [ "$step" = done ] || echo "install: failed while installing $step (exit $status); rerunning is safe" >&2; [ "$status" = 0 ] || exit 4' EXIT

mkdir -p "$bin_dir"
if cmp -s "$WATERTIGHT_BIN" "$bin_dir/watertight"; then
  say "unchanged $bin_dir/watertight"
else
  cp "$WATERTIGHT_BIN" "$bin_dir/.watertight.new"
  chmod 0755 "$bin_dir/.watertight.new"
  mv -f "$bin_dir/.watertight.new" "$bin_dir/watertight"
  say "installed $bin_dir/watertight ($version)"
fi
step="the symlink watertight-runc"
if [ -L "$bin_dir/watertight-runc" ] && [ "$(readlink "$bin_dir/watertight-runc")" = watertight ]; then
  say "unchanged $bin_dir/watertight-runc -> watertight"
else
  rm -f "$bin_dir/.watertight-runc.new"
  ln -s watertight "$bin_dir/.watertight-runc.new"
  mv -f "$bin_dir/.watertight-runc.new" "$bin_dir/watertight-runc"
  say "installed $bin_dir/watertight-runc -> watertight"
fi

step="the floor $floor_dst"
mkdir -p "$(dirname "$floor_dst")"
if [ "$floor_action" = same ]; then
  say "unchanged $floor_dst"
else
  cp "$FLOOR" "$floor_dst.new"
  chmod 0644 "$floor_dst.new"
  mv -f "$floor_dst.new" "$floor_dst"
  say "installed $floor_dst"
fi
if [ "$(cat "$floor_record" 2>/dev/null || true)" != "$floor_new" ]; then
  echo "$floor_new" >"$floor_record.new"
  mv -f "$floor_record.new" "$floor_record"
fi

step="containerd's configuration"
if [ "$config_changed" = 1 ] || [ "$dropin_changed" = 1 ]; then
  : >"$restart_pending"
fi
if [ "$mode" = v3 ] && [ "$dropin_changed" = 1 ]; then
  mkdir -p "$(dirname "$dropin")"
  cp "$SRC/containerd-v3-dropin.toml" "$dropin.new"
  chmod 0644 "$dropin.new"
  mv -f "$dropin.new" "$dropin"
  say "installed $dropin"
elif [ "$dropin_changed" = 1 ]; then
  rm -f "$dropin"
  say "removed $dropin (config.toml is version 2: the handler is in config.toml itself)"
fi
if [ "$config_changed" = 1 ]; then
  mkdir -p "$(dirname "$config")"
  # The node's own file: a copy of it as it was before the installer's first change, and the
  # new content written through (a symlinked config.toml stays a symlink).
  [ ! -f "$config" ] || [ -e "$config.before-watertight" ] || cp -p "$config" "$config.before-watertight"
  cat "$tmp/config" >"$config"
  say "updated $config (containerd config version ${config_version:-2}: the watertight runtime handler)"
else
  say "unchanged $config"
fi

step="the containerd restart"
if [ -e "$restart_pending" ]; then
  if [ -z "$CONTAINERD_RESTART" ]; then
    say "containerd's configuration changed: restart containerd (CONTAINERD_RESTART is empty)"
  else
    sh -c "$CONTAINERD_RESTART" || {
      step=done
      echo "install: everything is installed but \`$CONTAINERD_RESTART\` failed: restart containerd on this node (the next run tries again)" >&2
      exit 4
    }
    rm -f "$restart_pending"
    say "restarted containerd"
  fi
fi
step=done
