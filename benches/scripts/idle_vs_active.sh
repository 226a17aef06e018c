#!/usr/bin/env bash
# Do idle keep-alive connections slow the active ones? ringway's tunnel (balancer 1 worker on
# CPU 0; agent, nginx `return 200` backend and wrk on CPU 1) under `wrk -t1 -c50`, three phases
# back to back: (A) no idle connections, (B) with IDLE idle keep-alive connections open (each sent
# one GET, then stays open: `idle-clients`), (C) after they closed. Reported per phase: req/s,
# p99, the balancer's CPU µs per request; and B / A. Loopback only; everything started here is
# stopped on exit.
#
# Usage: benches/scripts/idle_vs_active.sh [--out FILE]
#   env: IDLE=10000 DURATION=10 BUILD=1 (0: use target/release as is), BASE_PORT=18600
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
ROOT=$PWD
COMMAND="${0#"$ROOT"/} $*"
OUT=""
[ "${1:-}" = "--out" ] && OUT=$2
IDLE=${IDLE:-10000}
DURATION=${DURATION:-10}
BUILD=${BUILD:-1}
BASE_PORT=${BASE_PORT:-18600}
INSTALL=0
CLK_TCK=$(getconf CLK_TCK)
HOST_HDR=bench.local
BACKEND_PORT=$((BASE_PORT + 1)) USERS=$((BASE_PORT + 2)) AGENTS=$((BASE_PORT + 3))
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n $((IDLE + 4096)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p ringway-balancer -p ringway-agent -p ringway-benches --bin idle-clients
fi
BIN=$ROOT/target/release

cat > "$WORK/backend.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/backend.pid;
error_log $WORK/backend.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/b1; proxy_temp_path $WORK/b2; fastcgi_temp_path $WORK/b3;
    uwsgi_temp_path $WORK/b4; scgi_temp_path $WORK/b5;
    keepalive_requests 10000000;
    server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 "hello world\\n"; } }
}
CONF
taskset -c 1 nginx -p "$WORK" -c "$WORK/backend.conf" &
PIDS+=($!)
RINGWAY_LOG=warn taskset -c 0 "$BIN/ringway-balancer" --workers 1 --admin-listen off \
    --listen "127.0.0.1:$USERS" --agent-listen "127.0.0.1:$AGENTS" --insecure-plaintext --route "$HOST_HDR" \
    --idle-timeout 10m --max-connections-per-worker $((IDLE + 1000)) \
    > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
BAL=$!
PIDS+=("$BAL")
RINGWAY_LOG=warn taskset -c 1 "$BIN/ringway-agent" --balancer "127.0.0.1:$AGENTS" --insecure-plaintext --route "$HOST_HDR" \
    --backend "127.0.0.1:$BACKEND_PORT" --workers 1 > /dev/null 2> "$WORK/agent.err" &
PIDS+=($!)
for _ in $(seq 1 100); do
    [ "$(curl -s -m 1 -o /dev/null -w '%{http_code}' -H "Host: $HOST_HDR" "http://127.0.0.1:$USERS/")" = 200 ] && break
    sleep 0.1
done

phase() { # name → a row: name req/s p99 µs/req
    taskset -c 1 wrk -t1 -c50 -d2s -H "Host: $HOST_HDR" "http://127.0.0.1:$USERS/" > /dev/null
    local t0 t1 out n rps p99
    t0=$(cpu_ticks "$BAL")
    out=$(taskset -c 1 wrk -t1 -c50 "-d${DURATION}s" --latency -H "Host: $HOST_HDR" "http://127.0.0.1:$USERS/")
    t1=$(cpu_ticks "$BAL")
    n=$(echo "$out" | awk '/requests in/ { print $1 }')
    rps=$(echo "$out" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    echo "$1 $rps $p99 $(us_per_req $((t1 - t0)) "$n")"
}

A=$(phase "A")
echo "== $A; opening $IDLE idle connections" >&2
taskset -c 1 "$BIN/idle-clients" "127.0.0.1:$USERS" --conns "$IDLE" --host "$HOST_HDR" > "$WORK/clients.out" 2> "$WORK/clients.err" &
CLIENTS=$!
PIDS+=("$CLIENTS")
until grep -qs '^ready' "$WORK/clients.out"; do
    kill -0 "$CLIENTS" 2>/dev/null || { cat "$WORK/clients.err" >&2; exit 1; }
    sleep 0.2
done
OPEN=$(ss -Htn state established "( sport = :$USERS )" | wc -l)
B=$(phase "B")
echo "== $B ($OPEN connections open on the user port); closing them" >&2
stop "$CLIENTS"
C=$(phase "C")
echo "== $C" >&2

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "?" }'; }
read -r _ a_rps a_p99 a_us <<< "$A"
read -r _ b_rps b_p99 b_us <<< "$B"
read -r _ c_rps c_p99 c_us <<< "$C"
table=$(cat <<TABLE
| phase | idle connections open | req/s (wrk -c50) | p99 | balancer CPU µs/req |
|---|---:|---:|---:|---:|
| A: none | 0 | $a_rps | $a_p99 | $a_us |
| B: with idle connections | $OPEN | $b_rps | $b_p99 | $b_us |
| C: after they closed | 0 | $c_rps | $c_p99 | $c_us |
| B / A | | $(ratio "$a_rps" "$b_rps") | | $(ratio "$a_us" "$b_us") |
TABLE
)
echo "$table"
if [ -n "$OUT" ]; then
    {
        echo "# Idle connections next to active ones"
        echo
        echo "- command: \`$COMMAND\` (IDLE=$IDLE, DURATION=$DURATION)"
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD)"
        echo "- machine: $(nproc) CPUs, $(uname -sr), load before $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "- setup: ringway-balancer --workers 1 on CPU 0; agent, nginx backend, wrk -t1 -c50 and idle-clients on CPU 1"
        echo
        echo "$table"
    } > "$OUT"
    echo "== wrote $OUT" >&2
fi
