#!/usr/bin/env bash
# Side-by-side benchmark of load generators: ringway-loadgen vs wrk (and oha when installed).
#
#   CPU 1: the backend — nginx, 1 worker, `return 200` with a 12-byte body (if nginx cannot be
#          installed: python3's http.server, much slower, and the results file says so)
#   CPU 0: the load generator under test, alone: one thread, closed loop, 50 connections
#
# Each generator runs ROUNDS times, interleaved (wrk, loadgen io_uring, loadgen epoll, oha, wrk, …),
# for DURATION seconds. Reported: max req/s (median over rounds), p99 as each tool reports it, and
# the generator's own CPU per request (utime+stime from /usr/bin/time over requests completed).
# Writes results/loadgen-vs-wrk.md with the commands, the machine and the numbers.
#
# Usage: benches/scripts/loadgen_vs_wrk.sh       (DURATION=10 ROUNDS=3 CONNS=50 PORT=18480)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
PORT=${PORT:-18480}
OUT=${OUT:-$ROOT/results/loadgen-vs-wrk.md}
URL="http://127.0.0.1:$PORT/"

WORK=$(mktemp -d /tmp/ringway-loadgen-bench.XXXXXX)
chmod 755 "$WORK"
BACKEND_PID=""
cleanup() {
    if [ -n "$BACKEND_PID" ]; then kill "$BACKEND_PID" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

apt_install() { # package…
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || true
    fi
}
command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || apt_install nginx
command -v wrk >/dev/null || { echo "wrk is missing and could not be installed" >&2; exit 1; }
[ -x /usr/bin/time ] || apt_install time

echo "== building ringway-loadgen (release)" >&2
cargo build --release -q -p ringway-loadgen
LOADGEN=$ROOT/target/release/ringway-loadgen

# --- backend on CPU 1 -------------------------------------------------------------------------
BACKEND=""
if command -v nginx >/dev/null; then
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$PORT reuseport backlog=4096;
        location / { return 200 "hello world\n"; }
    }
}
NGINX
    taskset -c 1 nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
    BACKEND_PID=$!
    BACKEND="nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 1 worker, return 200 (12-byte body), pinned to CPU 1"
else
    cat > "$WORK/server.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "12"); self.end_headers()
        self.wfile.write(b"hello world\n")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
    taskset -c 1 python3 "$WORK/server.py" "$PORT" &
    BACKEND_PID=$!
    BACKEND="python3 http.server (nginx could not be installed: numbers are backend-bound), CPU 1"
fi
for _ in $(seq 1 50); do
    curl -s -o /dev/null "$URL" 2>/dev/null && break
    sleep 0.1
done

# --- one run of each generator: prints "req/s p99_ms cpu_us_per_request backend_cpu_us_per_request"
cpu_of() { # file written by /usr/bin/time -f "%U %S"
    tail -n1 "$1" | awk '{ print ($1 + $2) }'
}
CLK_TCK=$(getconf CLK_TCK)
backend_ticks() { # utime+stime of the backend and its children (nginx workers), all threads
    local pids
    pids="$BACKEND_PID $(pgrep -P "$BACKEND_PID" | tr '\n' ' ')"
    for p in $pids; do cat /proc/"$p"/task/*/stat 2>/dev/null; done | sed 's/^.*) //' | awk '{ s += $12 + $13 } END { print s + 0 }'
}
per_request() { # seconds requests → µs per request
    awk -v c="$1" -v n="$2" 'BEGIN { printf "%.2f", c * 1e6 / n }'
}
backend_us() { # ticks_before ticks_after requests
    per_request "$(awk -v a="$1" -v b="$2" -v t="$CLK_TCK" 'BEGIN { print (b - a) / t }')" "$3"
}
# Runs one generator ("$@") alone on CPU 0 under /usr/bin/time, its stdout into $WORK/gen.out;
# B0 and B1 are the backend's CPU ticks before and after.
run_generator() {
    B0=$(backend_ticks)
    /usr/bin/time -f "%U %S" -o "$WORK/time" taskset -c 0 "$@" > "$WORK/gen.out"
    B1=$(backend_ticks)
}
result_line() { # rps p99_ms requests, of the last run_generator → the four columns
    echo "$1 $2 $(per_request "$(cpu_of "$WORK/time")" "$3") $(backend_us "$B0" "$B1" "$3")"
}
run_wrk() {
    run_generator wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL"
    local out="$WORK/gen.out"
    result_line \
        "$(awk '/Requests\/sec/ { print $2 }' "$out")" \
        "$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; print v }' "$out")" \
        "$(awk '/requests in/ { print $1 }' "$out")"
}
run_loadgen() { # driver
    run_generator "$LOADGEN" "$URL" -t 1 -c "$CONNS" -d "$DURATION" \
        --io-driver "$1" --quiet --json "$WORK/lg.json"
    local json="$WORK/lg.json"
    result_line \
        "$(jq '.targets[0].throughput | . * 100 | round / 100' "$json")" \
        "$(jq '.targets[0].latency_us.corrected.percentiles[] | select(.percentile == 99) | .value / 1000' "$json")" \
        "$(jq '.targets[0].requests.completed + .targets[0].warmup_requests.completed' "$json")"
}
run_oha() {
    run_generator oha --no-tui -j -c "$CONNS" -z "${DURATION}s" "$URL"
    local json="$WORK/gen.out"
    result_line \
        "$(jq '.summary.requestsPerSec' "$json")" \
        "$(jq '.latencyPercentiles.p99 * 1000' "$json")" \
        "$(jq '[.statusCodeDistribution[]] | add' "$json")"
}

TOOLS=(wrk loadgen-uring loadgen-epoll)
command -v oha >/dev/null && TOOLS+=(oha)
declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    for tool in "${TOOLS[@]}"; do
        case $tool in
            wrk) line=$(run_wrk) ;;
            loadgen-uring) line=$(run_loadgen uring) ;;
            loadgen-epoll) line=$(run_loadgen epoll) ;;
            oha) line=$(run_oha) ;;
        esac
        echo "round $round  $tool  req/s p99_ms gen_cpu_us/req backend_cpu_us/req: $line" >&2
        RESULTS[$tool]+="$line"$'\n'
    done
done

median_col() { # tool column
    printf '%s' "${RESULTS[$1]}" | awk -v c="$2" 'NF { print $c }' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
all_col() { # tool column
    printf '%s' "${RESULTS[$1]}" | awk -v c="$2" 'NF { printf "%s%s", sep, $c; sep = ", " }'
}
WRK_RPS=$(median_col wrk 1)
{
    echo "# ringway-loadgen vs wrk: max closed-loop req/s on one pinned core"
    echo
    echo "Generated by \`benches/scripts/loadgen_vs_wrk.sh\` (DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS) on $(date -u +%Y-%m-%dT%H:%MZ)."
    echo
    echo "- machine: $(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "- backend: $BACKEND"
    echo "- generators, each alone on CPU 0 (\`taskset -c 0\`), one thread, $CONNS connections, closed loop, ${DURATION} s, rounds interleaved:"
    echo "  - \`wrk -t1 -c$CONNS -d${DURATION}s --latency $URL\` ($(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'))"
    echo "  - \`ringway-loadgen $URL -t 1 -c $CONNS -d $DURATION --io-driver uring|epoll\` (release build)"
    if command -v oha >/dev/null; then echo "  - \`oha --no-tui -c $CONNS -z ${DURATION}s $URL\`"; else echo "  - oha: not installed, not run"; fi
    echo
    echo "| generator | req/s (median) | req/s (each round) | vs wrk | p99 ms (median) | generator CPU µs/request | backend CPU µs/request |"
    echo "|---|---|---|---|---|---|---|"
    for tool in "${TOOLS[@]}"; do
        rps=$(median_col "$tool" 1)
        echo "| $tool | $rps | $(all_col "$tool" 1) | $(awk -v a="$rps" -v b="$WRK_RPS" 'BEGIN { printf "%.2fx", a / b }') | $(median_col "$tool" 2) | $(median_col "$tool" 3) | $(median_col "$tool" 4) |"
    done
    echo
    echo "p99: wrk's and oha's are uncorrected (closed loop); ringway-loadgen's closed-loop corrected"
    echo "and uncorrected latencies are the same thing (a request is due when it is written)."
    echo "Generator CPU per request = utime+stime of the generator process (\`/usr/bin/time\`) over the"
    echo "requests it completed; it says how much load one core can generate when the backend is not"
    echo "the limit. Backend CPU per request = utime+stime of the nginx master and worker over the"
    echo "same requests (/proc/PID/task/*/stat, ${CLK_TCK} Hz ticks); medians are per column."
} > "$OUT"
cat "$OUT"
