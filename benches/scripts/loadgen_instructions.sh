#!/usr/bin/env bash
# User-space instructions per request of ringway-loadgen and wrk in closed loop, counted by
# callgrind (valgrind): a count, not a time, so it holds on a shared, noisy machine.
#
#   CPU 1: nginx, 1 worker, `return 200` (12-byte body)
#   CPU 0: the generator under callgrind, -c CONNS, one thread
#
# Each generator runs twice, SHORT and LONG seconds; instructions per request is
# (Ir_long - Ir_short) / (requests_long - requests_short), so start-up and tear-down cancel out.
# For ringway-loadgen only its load thread is counted (callgrind --toggle-collect on the thread's
# start, so not the main thread's report, whose cost depends on the histograms'
# spread); wrk's binary has no symbols, so all of it is (its main thread only sleeps until the
# end and prints). Only user space (the kernel's TCP work is not: see CPU µs per request for that).
#
# Usage: benches/scripts/loadgen_instructions.sh [LOADGEN_BINARY…]
#   (SHORT=2 LONG=6 CONNS=50 PORT=18481 INSTALL=1; default binary target/release/ringway-loadgen)
# Prints one line per generator: "NAME instructions_per_request requests_long".
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=benches/scripts/lib.sh
. "$ROOT/benches/scripts/lib.sh"
SHORT=${SHORT:-2}
LONG=${LONG:-6}
CONNS=${CONNS:-50}
PORT=${PORT:-18481}
INSTALL=${INSTALL:-1}
URL="http://127.0.0.1:$PORT/"
[ $# -gt 0 ] || set -- "$ROOT/target/release/ringway-loadgen"

WORK=$(mktemp -d /tmp/ringway-loadgen-instr.XXXXXX)
chmod 755 "$WORK"
NGINX_PID=""
cleanup() {
    [ -n "$NGINX_PID" ] && stop "$NGINX_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v valgrind >/dev/null || apt_install valgrind
command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || apt_install nginx
for tool in valgrind wrk nginx jq; do
    command -v "$tool" >/dev/null || { echo "$tool is missing and could not be installed" >&2; exit 1; }
done

nginx_conf nginx "server { listen 127.0.0.1:$PORT reuseport backlog=4096; location / { return 200 \"hello world\\n\"; } }"
taskset -c 1 nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
HOST_HDR=127.0.0.1 wait_200 "$PORT"

# Instructions callgrind counted (inside function $1 if not empty) for "${@:2}" on CPU 0.
callgrind_ir() {
    local inside=()
    [ -n "$1" ] && inside=(--toggle-collect="$1")
    shift
    rm -f "$WORK"/cg.out*
    taskset -c 0 valgrind --tool=callgrind "${inside[@]}" \
        --callgrind-out-file="$WORK/cg.out.%p" "$@" \
        > "$WORK/gen.out" 2> "$WORK/cg.err"
    cat "$WORK"/cg.out.* | awk '/^summary:/ { s += $2 } END { print s + 0 }'
}
wrk_requests() { awk '/requests in/ { print $1 }' "$WORK/gen.out"; }
lg_requests() { jq '.targets[0].requests.completed + .targets[0].warmup_requests.completed' "$WORK/lg.json"; }
per_req() { awk -v a="$1" -v b="$2" -v n="$3" -v m="$4" 'BEGIN { if (m > n) printf "%.0f", (b - a) / (m - n); else print "?" }'; }

IR1=$(callgrind_ir '' wrk -t1 -c"$CONNS" -d"${SHORT}s" "$URL"); N1=$(wrk_requests)
IR2=$(callgrind_ir '' wrk -t1 -c"$CONNS" -d"${LONG}s" "$URL"); N2=$(wrk_requests)
echo "wrk $(per_req "$IR1" "$IR2" "$N1" "$N2") $N2"
# The load threads' entry (monoio's `block_on` may be inlined into it, so not that): every
# thread the generator spawns is a load thread.
LG_LOOP='*Thread*::new::thread_start*'
for bin in "$@"; do
    IR1=$(callgrind_ir "$LG_LOOP" "$bin" "$URL" -c "$CONNS" --threads 1 -d "$SHORT" --quiet --json "$WORK/lg.json"); N1=$(lg_requests)
    IR2=$(callgrind_ir "$LG_LOOP" "$bin" "$URL" -c "$CONNS" --threads 1 -d "$LONG" --quiet --json "$WORK/lg.json"); N2=$(lg_requests)
    echo "$(basename "$bin") $(per_req "$IR1" "$IR2" "$N1" "$N2") $N2"
done
