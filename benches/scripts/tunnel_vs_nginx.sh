#!/usr/bin/env bash
# Side-by-side benchmark: ringway tunnel mode vs nginx as a plain reverse proxy.
#
#   CPU 0: the proxy under test alone (ringway-balancer --workers 1, or nginx with 1 worker)
#   CPU 1: the backend (nginx `return 200`, 12 bytes), the ringway agent, the load generator
#
# For each system: wrk -t1 -c50 closed loop (req/s, p99), then, when ringway-loadgen is built, a
# fixed-rate open-loop run (coordinated-omission-corrected p99). CPU per request is utime+stime of
# all threads (/proc/PID/task/*/stat) over the requests served. ringway runs twice: io_uring and
# epoll drivers (balancer and agent both). Writes results/tunnel-vs-nginx.md.
#
# Usage: benches/scripts/tunnel_vs_nginx.sh
#   env: DURATION=10 RATE=10000 CONNS=50 ROUNDS=1 DRIVERS="uring epoll"
#   (ROUNDS > 1 repeats nginx and ringway alternately; each ratio compares runs of the same round)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
RATE=${RATE:-10000}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$ROOT/results/tunnel-vs-nginx.md}
BACKEND_PORT=${BACKEND_PORT:-18401}
NGINX_PORT=${NGINX_PORT:-18402}
RW_USERS=${RW_USERS:-18403}
RW_AGENTS=${RW_AGENTS:-18404}
HOST_HDR="bench.test"
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/ringway-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# nginx and wrk come from Debian's packages; install them when missing (as root with apt).
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing nginx and wrk with apt" >&2
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null 2>&1 || true
    fi
fi
for tool in nginx wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk)" >&2; exit 1; }
done

echo "== building release binaries" >&2
cargo build --release -q -p ringway-balancer -p ringway-agent
BIN=$ROOT/target/release
LOADGEN=""
if cargo build --release -q -p ringway-loadgen 2>/dev/null && [ -x "$BIN/ringway-loadgen" ]; then
    LOADGEN=$BIN/ringway-loadgen
fi

# utime + stime of every thread of a process, in clock ticks.
cpu_ticks() {
    cat /proc/"$1"/task/*/stat 2>/dev/null | sed 's/^.*) //' | awk '{ s += $12 + $13 } END { print s + 0 }'
}

wait_200() { # port
    for _ in $(seq 1 100); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST_HDR" "http://127.0.0.1:$1/")" = 200 ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "no 200 from port $1" >&2
    return 1
}

nginx_conf() { # name listen-body
    cat > "$WORK/$1.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $WORK/$1-body;
    proxy_temp_path $WORK/$1-proxy;
    fastcgi_temp_path $WORK/$1-fcgi;
    uwsgi_temp_path $WORK/$1-uwsgi;
    scgi_temp_path $WORK/$1-scgi;
    keepalive_requests 10000000;
    $2
}
CONF
}

# The nginx worker of a master started with `daemon off`.
nginx_worker() {
    for _ in $(seq 1 50); do
        local w
        w=$(pgrep -P "$1" | head -n 1 || true)
        if [ -n "$w" ]; then echo "$w"; return 0; fi
        sleep 0.1
    done
    return 1
}

RESULTS=()
# measure NAME PORT PROXY_PID [AGENT_PID]
measure() {
    local name=$1 port=$2 proxy=$3 agent=${4:-}
    local url="http://127.0.0.1:$port/"
    taskset -c 1 wrk -t1 -c"$CONNS" -d2s -H "Host: $HOST_HDR" "$url" >/dev/null # warm-up
    local p0 a0 p1 a1
    p0=$(cpu_ticks "$proxy"); a0=0; [ -n "$agent" ] && a0=$(cpu_ticks "$agent")
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST_HDR" "$url" > "$WORK/wrk.txt"
    p1=$(cpu_ticks "$proxy"); a1=0; [ -n "$agent" ] && a1=$(cpu_ticks "$agent")
    local reqs rps p99 errors
    reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
    rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v = v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v = v * 1000 }; printf "%.2f", v }' "$WORK/wrk.txt")
    errors=$(awk '/Non-2xx|Socket errors/ { print }' "$WORK/wrk.txt" | tr '\n' ' ')
    local pus aus
    pus=$(awk -v t=$((p1 - p0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    aus="—"
    [ -n "$agent" ] && aus=$(awk -v t=$((a1 - a0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    local fixed="—"
    if [ -n "$LOADGEN" ]; then
        if taskset -c 1 "$LOADGEN" -c "$CONNS" -d "$DURATION" -R "$RATE" -H "Host: $HOST_HDR" --json "$WORK/lg.json" "$url" > "$WORK/lg.txt" 2>&1; then
            fixed=$(python3 - "$WORK/lg.json" <<'PY' 2>/dev/null || echo "?"
import json, sys
def find(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k.lower() in ("p99", "p99_ms", "p99_us", "p99_ns") and isinstance(v, (int, float)):
                return k.lower(), v
        for v in o.values():
            r = find(v)
            if r: return r
    if isinstance(o, list):
        for v in o:
            r = find(v)
            if r: return r
k, v = find(json.load(open(sys.argv[1])))
scale = {"p99_us": 1e-3, "p99_ns": 1e-6}.get(k, 1.0)
print(f"{v * scale:.2f}")
PY
)
        fi
    fi
    echo "   $name: $rps req/s, p99 $p99 ms, proxy $pus µs/req, agent $aus µs/req, fixed-rate p99 $fixed ms $errors" >&2
    RESULTS+=("$name|$rps|$p99|$fixed|$pus|$aus|$errors")
}

echo "== backend: nginx return 200 on CPU 1 (port $BACKEND_PORT)" >&2
nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\\n\"; } }"
taskset -c 1 nginx -p "$WORK" -c "$WORK/backend.conf" &
PIDS+=($!)
wait_200 "$BACKEND_PORT"

LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
for ROUND in $(seq 1 "$ROUNDS"); do
    echo "== nginx reverse proxy on CPU 0 (port $NGINX_PORT)" >&2
    nginx_conf proxy "upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
        server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
    taskset -c 0 nginx -p "$WORK" -c "$WORK/proxy.conf" &
    NGINX_MASTER=$!
    PIDS+=($NGINX_MASTER)
    wait_200 "$NGINX_PORT"
    NGINX_WORKER=$(nginx_worker "$NGINX_MASTER")
    measure "r$ROUND nginx 1.22 reverse proxy (1 worker, upstream keepalive)" "$NGINX_PORT" "$NGINX_WORKER"
    kill "$NGINX_MASTER"; wait "$NGINX_MASTER" 2>/dev/null || true

    for driver in ${DRIVERS:-uring epoll}; do
        echo "== ringway tunnel, $driver: balancer on CPU 0, agent on CPU 1" >&2
        RINGWAY_LOG=warn taskset -c 0 "$BIN/ringway-balancer" --workers 1 --io-driver "$driver" \
            --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" \
            --route "$HOST_HDR" --token bench > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
        BAL=$!
        PIDS+=($BAL)
        RINGWAY_LOG=warn RUST_LOG=warn taskset -c 1 "$BIN/ringway-agent" --balancer "127.0.0.1:$RW_AGENTS" \
            --token bench --route "$HOST_HDR" --backend "127.0.0.1:$BACKEND_PORT" --workers 1 \
            --io-driver "$driver" > /dev/null 2> "$WORK/agent.err" &
        AGENT=$!
        PIDS+=($AGENT)
        wait_200 "$RW_USERS"
        measure "r$ROUND ringway tunnel, $driver (balancer 1 worker + agent 1 thread)" "$RW_USERS" "$BAL" "$AGENT"
        kill "$AGENT" "$BAL"; wait "$AGENT" "$BAL" 2>/dev/null || true
    done
done
LOAD_AFTER=$(cut -d" " -f1-3 /proc/loadavg)

# ---- report ----
{
    echo "# ringway tunnel vs nginx reverse proxy"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs ($(uname -r)); nginx $(nginx -v 2>&1 | sed 's/.*\///')."
    echo
    echo "Command: \`DURATION=$DURATION RATE=$RATE CONNS=$CONNS ROUNDS=$ROUNDS DRIVERS=\"${DRIVERS:-uring epoll}\" benches/scripts/tunnel_vs_nginx.sh\` (release builds)."
    echo
    echo "Host load average (1/5/15 min) before: $LOAD_BEFORE, after: $LOAD_AFTER (other work on the"
    echo "machine during the run adds noise; rows of the same round ran back to back)."
    echo
    echo "Setup: the proxy under test alone on CPU 0 (\`taskset -c 0\`: nginx with 1 worker, or"
    echo "\`ringway-balancer --workers 1\`); the backend (nginx \`return 200\`, 12-byte body), the ringway"
    echo "agent (1 thread) and the load generator on CPU 1. Load: \`wrk -t1 -c$CONNS -d${DURATION}s\`,"
    echo "keep-alive GETs, after a 2 s warm-up; fixed-rate p99 from \`ringway-loadgen -c $CONNS -R $RATE\`"
    echo "(coordinated-omission corrected; — when the load generator was not available)."
    echo "CPU µs/request = utime+stime of all the process's threads (/proc/PID/task/*/stat, $CLK_TCK Hz"
    echo "ticks) during the wrk run, divided by the requests wrk completed."
    echo
    echo "| system | req/s (wrk) | p99 ms (wrk) | p99 ms at $RATE req/s | proxy CPU µs/req | agent CPU µs/req | tunnel total µs/req | total / nginx | balancer / nginx |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r name rps p99 fixed pus aus errors <<< "$r"
        if [[ "$name" == *nginx* ]]; then NGINX_US=$pus; fi
        if [ "$aus" = "—" ]; then
            total=$pus; rt="1.00"; rb="—"
        else
            total=$(awk -v a="$pus" -v b="$aus" 'BEGIN { printf "%.2f", a + b }')
            rt=$(awk -v t="$total" -v n="$NGINX_US" 'BEGIN { printf "%.2f", t / n }')
            rb=$(awk -v t="$pus" -v n="$NGINX_US" 'BEGIN { printf "%.2f", t / n }')
        fi
        echo "| $name | $rps | $p99 | $fixed | $pus | $aus | $total | $rt | $rb |"
        [ -n "${errors// /}" ] && echo "|   ↳ errors: $errors | | | | | | | | |"
    done
    echo
    echo "Targets (issue 3): tunnel total (balancer + agent) ≤ nginx's CPU/request (ratio ≤ 1.00);"
    echo "balancer alone ≤ half of nginx (ratio ≤ 0.50)."
} > "$OUT"
echo "== wrote $OUT" >&2
cat "$OUT"
