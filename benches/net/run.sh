#!/usr/bin/env bash
# Throughput (iperf3, TCP) and latency (ping) between two ports of one bridge, with the bridge
# guarded by `watertight net guard` over 2, 64 and 256 ports, against the same bridge unguarded.
# Everything lives in network namespaces this script creates and removes (also on Ctrl-C/error).
#
# Needs root, iproute2, nftables, iperf3, iputils-ping, python3 (hyperfine for the apply timing).
# Usage: benches/net/run.sh [seconds-per-iperf-run]   (WATERTIGHT=/path/to/watertight to skip the build)
set -euo pipefail

SECS=${1:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for tool in ip nft iperf3 ping python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install iproute2 nftables iperf3 iputils-ping python3" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces, nftables)" >&2; exit 2; }
if [ -z "${WATERTIGHT:-}" ]; then
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build -q --release -p watertight)
    WATERTIGHT=$TARGET/$(rustc -vV | sed -n "s/^host: //p")/release/watertight
fi

P=wtbench$$
BR=$P-br A=$P-a B=$P-b
WORK=$(mktemp -d)
cleanup() {
    [ -f "$WORK/iperf.pid" ] && kill "$(cat "$WORK/iperf.pid")" 2>/dev/null || true
    for ns in $A $B $BR; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# One topology per port count: hosts a (10.213.9.1) and b (10.213.9.2) plus N-2 idle guarded ports.
build() {
    local n=$1
    ip netns add $BR; ip netns add $A; ip netns add $B
    ip -n $BR link add br0 type bridge
    ip -n $BR link set br0 up
    local i=1
    for ns in $A $B; do
        ip -n $BR link add p$i type veth peer name eth0 netns $ns
        ip -n $BR link set p$i master br0 up
        ip -n $ns link set eth0 address 02:13:09:00:00:0$i
        ip -n $ns addr add 10.213.9.$i/24 dev eth0
        ip -n $ns link set eth0 up
        ip -n $ns link set lo up
        printf '[[port]]\niface = "p%d"\nmac = "02:13:09:00:00:0%d"\nipv4 = ["10.213.9.%d"]\n\n' $i $i $i
        i=$((i + 1))
    done > "$WORK/ports.toml"
    for ((j = 3; j <= n; j++)); do
        ip -n $BR link add x$j type veth peer name y$j
        ip -n $BR link set x$j master br0
        printf '[[port]]\niface = "x%d"\nmac = "02:13:0a:00:%02x:%02x"\nipv4 = ["10.213.%d.%d"]\nipv6 = ["fd00:213::%x"]\n\n' \
            $j $((j / 256)) $((j % 256)) $((10 + j / 250)) $((j % 250 + 1)) $j >> "$WORK/ports.toml"
    done
}

teardown() {
    [ -f "$WORK/iperf.pid" ] && kill "$(cat "$WORK/iperf.pid")" 2>/dev/null || true
    rm -f "$WORK/iperf.pid"
    sleep 0.2
    for ns in $A $B $BR; do ip netns del "$ns" 2>/dev/null || true; done
}

measure() {
    ip netns exec $B iperf3 -s -D -1 -B 10.213.9.2 --pidfile "$WORK/iperf.pid" >/dev/null
    sleep 0.3
    local gbps rtt
    ip netns exec $A ping -c 3 -q 10.213.9.2 >/dev/null
    gbps=$(ip netns exec $A iperf3 -c 10.213.9.2 -t "$SECS" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))')
    rtt=$(ip netns exec $A ping -c 300 -i 0.005 -q 10.213.9.2 | awk -F'/' '/^rtt/ { print $5 }')
    echo "$gbps $rtt"
}

median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Same topology for both modes; the modes alternate REPS times so background load hits both alike.
REPS=${REPS:-3}
printf '%-6s %-8s %12s %14s   (median of %d runs, %ss each)\n' ports guard "TCP Gbit/s" "ping avg ms" "$REPS" "$SECS"
declare -A RES
for n in 2 64 256; do
    build $n
    declare -A G R
    G[none]="" G[guard]="" R[none]="" R[guard]=""
    for ((rep = 0; rep < REPS; rep++)); do
        for mode in none guard; do
            if [ $mode = guard ]; then
                ip netns exec $BR "$WATERTIGHT" net guard --bridge br0 --bindings "$WORK/ports.toml" >/dev/null
            else
                ip netns exec $BR "$WATERTIGHT" net guard --bridge br0 --remove >/dev/null
            fi
            read -r gbps rtt < <(measure)
            rm -f "$WORK/iperf.pid"
            G[$mode]+="$gbps " R[$mode]+="$rtt "
        done
    done
    for mode in none guard; do
        gbps=$(echo ${G[$mode]} | median) rtt=$(echo ${R[$mode]} | median)
        RES[$n-$mode]="$gbps $rtt"
        printf '%-6s %-8s %12s %14s\n' $n $mode "$gbps" "$rtt"
    done
    ip netns exec $BR "$WATERTIGHT" net guard --bridge br0 --remove >/dev/null
    teardown
done
echo
echo "guarded / unguarded (throughput ratio, latency ratio):"
for n in 2 64 256; do
    read -r g0 r0 <<< "${RES[$n-none]}"
    read -r g1 r1 <<< "${RES[$n-guard]}"
    python3 -c "print('  %4d ports: throughput x%.3f, latency x%.3f' % ($n, $g1 / $g0, $r1 / $r0))"
done

# How long applying and checking a 256-port guard takes (one nft transaction; check renders the
# expected table in a scratch namespace and compares).
if command -v hyperfine >/dev/null; then
    build 256
    echo
    hyperfine -N --warmup 2 --runs 10 --export-markdown "$WORK/apply.md" \
        "ip netns exec $BR $WATERTIGHT net guard --bridge br0 --bindings $WORK/ports.toml" \
        "ip netns exec $BR $WATERTIGHT net check --bridge br0 --bindings $WORK/ports.toml" >/dev/null
    cat "$WORK/apply.md"
    teardown
fi
