#!/usr/bin/env bash
# The OCI runtime-tools validation suite, for several runtimes side by side: one row per test
# program with each runtime's verdict (ok: every assertion passed; not ok: N of M failed; none:
# the program ended before any assertion, which counts as a failure), then each runtime's totals
# and the programs that pass with the first runtime but not with another (the issue's goal:
# every program runc passes passes with watertight).
#
# Usage: benches/oci/validation.sh [RUNTIME...]    (as root)
#   RUNTIME: a path or a name on PATH. Default: runc, then watertight-runc (PATH, else
#   /usr/local/bin/watertight-runc) and crun where present.
#   WT_OCI_PROGRAMS="create state ..." runs only those programs.
#   WT_OCI_RESULTS=DIR keeps each runtime's raw output there (default: a temporary directory).
# The suite is built once by ../shared/peers/oci-validation.sh (Go from PyPI, cached under
# /var/cache/watertight-peers); each runtime takes 2-3 minutes here.
set -euo pipefail
cd "$(dirname "$0")/../.."
peer=${WT_OCI_VALIDATION:-$(cd .. && pwd)/shared/peers/oci-validation.sh}
[ -x "$peer" ] || { echo "validation: $peer not found: set WT_OCI_VALIDATION to oci-validation.sh" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "validation: the suite makes namespaces and cgroups: run it as root" >&2; exit 2; }

runtimes=("$@")
if [ ${#runtimes[@]} -eq 0 ]; then
  runtimes=(runc)
  if command -v watertight-runc >/dev/null; then runtimes+=(watertight-runc)
  elif [ -x /usr/local/bin/watertight-runc ]; then runtimes+=(/usr/local/bin/watertight-runc); fi
  command -v crun >/dev/null && runtimes+=(crun)
fi
if [ -n "${WT_OCI_RESULTS:-}" ]; then out=$WT_OCI_RESULTS; mkdir -p "$out"
else out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
paths=()
for r in "${runtimes[@]}"; do
  p=$(command -v "$r" || true)
  [ -n "$p" ] && [ -x "$p" ] || { echo "validation: runtime \"$r\" is not an executable (a path, or a name on PATH)" >&2; exit 2; }
  # The peer script resolves symlinks (readlink -f), which would turn watertight-runc into
  # watertight, whose argv[0] then no longer selects the runc command line: such a runtime runs
  # as a copy under its own name.
  real=$(readlink -f "$p")
  if [ "$(basename "$real")" != "$(basename "$p")" ]; then
    mkdir -p "$out/bin"
    cp "$real" "$out/bin/$(basename "$p")"
    p=$out/bin/$(basename "$p")
  fi
  paths+=("$p")
done
read -r -a progs <<<"${WT_OCI_PROGRAMS:-}"
for i in "${!paths[@]}"; do
  echo "validation: ${runtimes[$i]} (${paths[$i]}) ..." >&2
  # The peer script keeps going past failing programs and always ends with its total line.
  "$peer" "${paths[$i]}" "${progs[@]}" >"$out/$i.txt" 2>"$out/$i.err" || {
    echo "validation: the suite did not run for ${runtimes[$i]}: $(tail -1 "$out/$i.err")" >&2; exit 1; }
done

python3 - "$out" "${runtimes[@]}" <<'PY'
import re, sys
out, names = sys.argv[1], sys.argv[2:]
# Runtimes by file name when those are distinct (/usr/sbin/runc -> runc), else as given.
short = [n.rsplit("/", 1)[-1] for n in names]
if len(set(short)) == len(short):
    names = short
line = re.compile(r"^(\S+)\s+(\d+) ok\s+(\d+) not ok$")
res = []  # per runtime: {program: (ok, bad)}
for i in range(len(names)):
    res.append({m[1]: (int(m[2]), int(m[3])) for m in map(line.match, open(f"{out}/{i}.txt")) if m})
progs = list(dict.fromkeys(p for r in res for p in r))
def verdict(r, p):
    if p not in r: return "-"
    ok, bad = r[p]
    if ok == 0 and bad == 0: return "none"
    return "ok" if bad == 0 else f"not ok {bad}/{ok + bad}"
passes = lambda r, p: p in r and r[p][0] > 0 and r[p][1] == 0
w = max(len(n) for n in names) + 2
w = max(w, 14)
print(f"{'program':<36}" + "".join(f"{n:>{w}}" for n in names))
for p in progs:
    print(f"{p:<36}" + "".join(f"{verdict(r, p):>{w}}" for r in res))
print()
for n, r in zip(names, res):
    full = sum(passes(r, p) for p in progs)
    ok = sum(v[0] for v in r.values()); bad = sum(v[1] for v in r.values())
    print(f"{n}: {full} of {len(progs)} programs fully pass; assertions {ok} ok, {bad} not ok")
for n, r in zip(names[1:], res[1:]):
    lost = [p for p in progs if passes(res[0], p) and not passes(r, p)]
    gained = [p for p in progs if passes(r, p) and not passes(res[0], p)]
    print(f"{n} vs {names[0]}: {len(lost)} passing with {names[0]} fail" + (f" ({', '.join(lost)})" if lost else "")
          + f"; {len(gained)} more pass" + (f" ({', '.join(gained)})" if gained else ""))
PY
