#!/usr/bin/env bash
# The IO-runtime decision by measurement (docs/decisions/0001-io-runtime.md): the same minimal
# HTTP/1.1 keep-alive server (`runtime-variants`, benches/runtime-variants: ringway's request parser,
# a 12-byte `200`) on monoio and on compio, next to nginx answering `return 200 "hello world\n"`
# itself, in one run.
#
# For each system, in every round (nginx first, the others rotated by one place per round):
#   1. CPU per request, closed loop: the server alone on CPU 0 (taskset), `wrk -t1 -cCONNS` on
#      CPU 1 for DURATION s after a WARMUP s warm-up; utime+stime of all the server's threads
#      (/proc/PID/task/*/stat) over the requests served. Noise: the share of CPU 0 that other
#      processes used meanwhile.
#   2. p99 at a fixed rate (when ringway-loadgen is built): RATE req/s, CONNS connections, DURATION s,
#      coordinated-omission-corrected.
#   3. Memory per idle keep-alive connection: VmRSS of the server process (nginx: its worker), then
#      `idle-clients` (on CPU 1) opens IDLE_CONNS connections that each send one GET, read the
#      answer and stay open; VmRSS again SETTLE s after the last was answered. (after − before) /
#      IDLE_CONNS. It runs after the load above, so per-worker pools (compio's kernel buffer pool,
#      the BufPool) are already warm and count as the fixed cost they are, for every system alike.
# Once per round, when RINGWAY=1: the real ringway-balancer's idle figure, as idle_conns.sh measures
# it (balancer --workers 1 on CPU 0, agent and an nginx backend on CPU 1).
# Reported: per system the median and min–max over the rounds, and the median of the per-round
# ratios to nginx. Loopback only; everything started here is stopped on exit, failures included.
#
# Usage: benches/scripts/runtime_variants.sh [--out FILE]
#   env: ROUNDS=3 DURATION=10 WARMUP=2 CONNS=50 RATE=10000 IDLE_CONNS=5000 SETTLE=2 RINGWAY=1
#        BUILD=1 (0: use target/release as is), BASE_PORT=18700 (ports BASE+1 … BASE+4)
#        SYSTEMS="nginx monoio-uring monoio-epoll compio-managed compio-multishot compio-owned
#                 compio-poll-managed compio-poll-owned"
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.."
ROOT=$PWD
COMMAND="${0#"$ROOT"/} $*"
OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
RATE=${RATE:-10000}
IDLE_CONNS=${IDLE_CONNS:-5000}
SETTLE=${SETTLE:-2}
RINGWAY=${RINGWAY:-1}
BUILD=${BUILD:-1}
SYSTEMS=${SYSTEMS:-nginx monoio-uring monoio-epoll compio-managed compio-multishot compio-owned compio-poll-managed compio-poll-owned}
BASE_PORT=${BASE_PORT:-18700}
SERVER_PORT=$((BASE_PORT + 1))
BACKEND_PORT=$((BASE_PORT + 2))
RW_USERS=$((BASE_PORT + 3))
RW_AGENTS=$((BASE_PORT + 4))
HOST_HDR=bench.test
CLK_TCK=$(getconf CLK_TCK)
ENV_LINE="ROUNDS=$ROUNDS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS RATE=$RATE IDLE_CONNS=$IDLE_CONNS RINGWAY=$RINGWAY SYSTEMS=\"$SYSTEMS\""

for tool in nginx wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk)" >&2; exit 1; }
done
NOFILE=$((2 * IDLE_CONNS + 4000))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$NOFILE" ]; then
    ulimit -Hn "$NOFILE" 2>/dev/null || { echo "the open-file hard limit $(ulimit -Hn) is below $NOFILE: lower IDLE_CONNS" >&2; exit 1; }
fi
ulimit -n "$NOFILE"

WORK=$(mktemp -d /tmp/ringway-runtime-variants.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        pkill -TERM -P "$p" 2>/dev/null || true # an nginx master's worker
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RINGWAY_CODE="commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
DIRTY=$(git status --porcelain -- core io balancer agent benches Cargo.toml Cargo.lock 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ')
[ -n "$DIRTY" ] && RINGWAY_CODE="$RINGWAY_CODE + uncommitted changes in ${DIRTY% }"
BIN=$ROOT/target/release
if [ "$BUILD" = 1 ]; then
    echo "== building release binaries" >&2
    cargo build --release -q -p ringway-runtime-variants -p ringway-benches -p ringway-balancer \
        -p ringway-agent -p ringway-loadgen
fi
for b in runtime-variants idle-clients; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (run without BUILD=0)" >&2; exit 1; }
done
LOADGEN=""
[ -x "$BIN/ringway-loadgen" ] && LOADGEN=$BIN/ringway-loadgen
if [ "$RINGWAY" = 1 ] && { [ ! -x "$BIN/ringway-balancer" ] || [ ! -x "$BIN/ringway-agent" ]; }; then
    echo "== ringway-balancer/agent not built: skipping the balancer's idle figure" >&2
    RINGWAY=0
fi

# ---- helpers ----








# An io_uring runtime's listening socket can outlive its process for a moment (the kernel tears
# the ring down asynchronously): wait until nothing listens on PORT before the next system binds it.
wait_port_free() { # port
    for _ in $(seq 1 100); do
        [ -z "$(ss -Hltn "( sport = :$1 )")" ] && return 0
        sleep 0.1
    done
    echo "port $1 is still in use" >&2
    return 1
}


# idle_bytes PORT PID: sets IDLE to the bytes of RSS growth per idle connection; notes to
# $WORK/idle.notes.
idle_bytes() {
    local port=$1 pid=$2
    local before after ok failed open
    before=$(rss_kib "$pid")
    taskset -c 1 "$BIN/idle-clients" "127.0.0.1:$port" --conns "$IDLE_CONNS" --host "$HOST_HDR" \
        > "$WORK/clients.out" 2> "$WORK/clients.err" &
    local client=$!
    PIDS+=("$client")
    local deadline=$((SECONDS + 300))
    until grep -qs '^ready' "$WORK/clients.out"; do
        if ! kill -0 "$client" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
            echo "idle-clients did not get ready against port $port:" >&2
            cat "$WORK/clients.err" >&2
            exit 1
        fi
        sleep 0.2
    done
    sleep "$SETTLE"
    after=$(rss_kib "$pid")
    read -r _ ok failed < "$WORK/clients.out"
    open=$(ss -Htn state established "( sport = :$port )" | wc -l)
    stop "$client"
    : > "$WORK/idle.notes"
    [ "$failed" != 0 ] && echo "$failed idle connections failed: $(head -n 1 "$WORK/clients.err")" > "$WORK/idle.notes"
    [ "$open" -lt "$ok" ] && echo "only $open of $ok still open" >> "$WORK/idle.notes"
    IDLE=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "?" }')
}

# p99 (ms, corrected) and requests (warm-up included) from a ringway-loadgen --json report.
loadgen_summary() { # json
    python3 - "$1" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["targets"][0]
p99 = next(p["value"] for p in t["latency_us"]["corrected"]["percentiles"] if p["percentile"] == 99.0)
notes = []
if t["requests"]["error_total"]:
    notes.append(f"loadgen errors {t['requests']['error_total']}")
if t["rate_shortfall"]:
    notes.append(f"rate shortfall: {t['achieved_rate']:.0f} req/s")
print(f"{p99 / 1000:.2f}|{t['requests']['completed'] + t['warmup_requests']['completed']}|{'; '.join(notes)}")
PY
}

# measure KEY PID: one row of $WORK/rows.tsv (the server listens on SERVER_PORT).
measure() {
    local key=$1 pid=$2
    local url="http://127.0.0.1:$SERVER_PORT/"
    wait_200 "$SERVER_PORT" || exit 1
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HDR" "$url" > /dev/null
    local t0 c0 t1 c1
    t0=$(cpu_ticks "$pid"); c0=$(cpu_busy 0)
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST_HDR" "$url" > "$WORK/wrk.txt"
    t1=$(cpu_ticks "$pid"); c1=$(cpu_busy 0)
    local reqs rps p99 us noise notes=""
    reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
    rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v = v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v = v * 1000 }; printf "%.2f", v }' "$WORK/wrk.txt")
    us=$(us_per_req $((t1 - t0)) "$reqs")
    noise=$(others_pct "$c0" "$c1" $((t1 - t0)))
    notes=$(awk '/Non-2xx|Socket errors/ { print "wrk: " $0 }' "$WORK/wrk.txt" | tr '\n' ' ' | tr -s ' ')
    local lg_p99="—" lg_us="—"
    if [ -n "$LOADGEN" ]; then
        t0=$(cpu_ticks "$pid")
        if taskset -c 1 "$LOADGEN" -q -c "$CONNS" -w 1 -d "$DURATION" -R "$RATE" --spin-us 0 -H "Host: $HOST_HDR" \
            --json "$WORK/lg.json" "$url" > "$WORK/lg.txt" 2>&1; then
            t1=$(cpu_ticks "$pid")
            local summary lg_reqs lg_notes
            summary=$(loadgen_summary "$WORK/lg.json")
            IFS='|' read -r lg_p99 lg_reqs lg_notes <<< "$summary"
            lg_us=$(us_per_req $((t1 - t0)) "$lg_reqs")
            [ -n "$lg_notes" ] && notes="$notes $lg_notes"
        else
            notes="$notes loadgen failed: $(tail -n 1 "$WORK/lg.txt")"
        fi
    fi
    idle_bytes "$SERVER_PORT" "$pid"
    local idle=$IDLE
    notes="$notes $(tr '\n' ' ' < "$WORK/idle.notes")"
    notes=$(echo "$notes" | tr -s ' ' | sed 's/^ //; s/ $//')
    echo "   $key: $rps req/s, p99 $p99 ms, $us µs/req (others on CPU 0: $noise %), fixed-rate p99 $lg_p99 ms, idle $idle B/conn ${notes:+($notes)}" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$key" "$rps" "$p99" "$us" "$noise" "$lg_p99" "$lg_us" "$idle" "$notes" >> "$WORK/rows.tsv"
}

run_nginx() {
    wait_port_free "$SERVER_PORT" || exit 1
    nginx_conf server "server { listen 127.0.0.1:$SERVER_PORT; location / { return 200 \"hello world\\n\"; } }"
    taskset -c 0 nginx -p "$WORK" -c "$WORK/server.conf" &
    local master=$!
    PIDS+=("$master")
    measure nginx "$(nginx_worker "$master")"
    stop "$master"
}

run_variant() { # variant
    wait_port_free "$SERVER_PORT" || exit 1
    taskset -c 0 "$BIN/runtime-variants" "$1" --listen "127.0.0.1:$SERVER_PORT" --cpu 0 \
        > /dev/null 2> "$WORK/$1.err" &
    local pid=$!
    PIDS+=("$pid")
    measure "$1" "$pid"
    stop "$pid"
    # What the server said about itself (driver, size of a connection's future): the first round's.
    [ -s "$WORK/$1.said" ] || grep -h 'runtime-variants:' "$WORK/$1.err" | sed 's/^runtime-variants: //' | tr '\n' ';' > "$WORK/$1.said"
}

run_balancer() { # the real balancer's idle figure, as idle_conns.sh measures it
    wait_port_free "$RW_USERS" || exit 1
    nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\\n\"; } }"
    taskset -c 1 nginx -p "$WORK" -c "$WORK/backend.conf" &
    local backend=$!
    PIDS+=("$backend")
    RINGWAY_LOG=warn taskset -c 0 "$BIN/ringway-balancer" --workers 1 --no-pin \
        --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" --insecure-plaintext \
        --route "$HOST_HDR" --token bench --idle-timeout 600s \
        --max-connections-per-worker $((IDLE_CONNS + CONNS + 1000)) \
        > /dev/null 2> "$WORK/balancer.err" &
    local balancer=$!
    PIDS+=("$balancer")
    RINGWAY_LOG=warn taskset -c 1 "$BIN/ringway-agent" --balancer "127.0.0.1:$RW_AGENTS" --insecure-plaintext --token bench \
        --route "$HOST_HDR" --backend "127.0.0.1:$BACKEND_PORT" --workers 1 \
        > /dev/null 2> "$WORK/agent.err" &
    local agent=$!
    PIDS+=("$agent")
    wait_200 "$RW_USERS" || exit 1
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HDR" "http://127.0.0.1:$RW_USERS/" > /dev/null
    idle_bytes "$RW_USERS" "$balancer"
    local idle=$IDLE
    echo "   ringway-balancer: idle $idle B/conn" >&2
    printf '%s\t%s\t—\t—\t—\t—\t—\t—\t%s\t%s\n' "$ROUND" "ringway-balancer" "$idle" "$(tr '\n' ' ' < "$WORK/idle.notes")" >> "$WORK/rows.tsv"
    stop "$agent" "$balancer" "$backend"
}

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*\///')
LOADS=()
: > "$WORK/rows.tsv"
rest=()
for s in $SYSTEMS; do [ "$s" != nginx ] && rest+=("$s"); done
for ROUND in $(seq 1 "$ROUNDS"); do
    LOADS+=("$(cut -d' ' -f1-3 /proc/loadavg)")
    echo "== round $ROUND of $ROUNDS (load ${LOADS[-1]})" >&2
    order=()
    [[ " $SYSTEMS " == *" nginx "* ]] && order+=(nginx)
    for i in "${!rest[@]}"; do order+=("${rest[$(( (i + ROUND - 1) % ${#rest[@]} ))]}"); done
    for system in "${order[@]}"; do
        case $system in
            nginx) run_nginx ;;
            *) run_variant "$system" ;;
        esac
    done
    [ "$RINGWAY" = 1 ] && run_balancer
done

# ---- report ----
for s in $SYSTEMS; do
    [ -s "$WORK/$s.said" ] && printf '%s\t%s\n' "$s" "$(cat "$WORK/$s.said")" >> "$WORK/said.tsv"
done
: >> "$WORK/said.tsv"
python3 - "$WORK/rows.tsv" "$WORK/said.tsv" > "$WORK/table.md" <<'PY'
import statistics, sys

rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
said = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[2]) if "\t" in l)
COLS = {"rps": 2, "p99": 3, "us": 4, "noise": 5, "lg_p99": 6, "lg_us": 7, "idle": 8}

def num(v):
    try:
        return float(v)
    except ValueError:
        return None

systems = list(dict.fromkeys(r[1] for r in rows))
by = {(r[0], r[1]): r for r in rows}

def values(system, col):
    return [v for r in rows if r[1] == system for v in [num(r[COLS[col]])] if v is not None]

def cell(system, col, digits):
    vs = values(system, col)
    if not vs:
        return "—"
    med = statistics.median(vs)
    f = f"{{:.{digits}f}}"
    return f"{f.format(med)} ({f.format(min(vs))}–{f.format(max(vs))})" if len(vs) > 1 else f.format(med)

def ratio(system, col, base="nginx"):
    rs = []
    for r in rows:
        if r[1] != system:
            continue
        b = by.get((r[0], base))
        if b is None:
            continue
        x, y = num(r[COLS[col]]), num(b[COLS[col]])
        if x is not None and y:
            rs.append(x / y)
    if not rs:
        return "—"
    med = statistics.median(rs)
    return f"{med:.2f}× ({min(rs):.2f}–{max(rs):.2f})" if len(rs) > 1 else f"{med:.2f}×"

print("| system | req/s (wrk) | p99 wrk (ms) | CPU µs/request | vs nginx | p99 at fixed rate (ms) | bytes / idle conn | vs nginx | others on CPU 0 (%, max) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in systems:
    noise = values(s, "noise")
    print(f"| {s} | {cell(s, 'rps', 0)} | {cell(s, 'p99', 2)} | {cell(s, 'us', 2)} | {ratio(s, 'us')} "
          f"| {cell(s, 'lg_p99', 2)} | {cell(s, 'idle', 0)} | {ratio(s, 'idle')} | {max(noise):.0f} |" if noise else
          f"| {s} | — | — | — | — | — | {cell(s, 'idle', 0)} | {ratio(s, 'idle')} | — |")
print()
print("Per round (µs/request · bytes/idle conn · others on CPU 0 %):")
print()
rounds = list(dict.fromkeys(r[0] for r in rows))
print("| system | " + " | ".join(f"round {r}" for r in rounds) + " |")
print("|---|" + "---:|" * len(rounds))
for s in systems:
    cells = []
    for rd in rounds:
        r = by.get((rd, s))
        cells.append("—" if r is None else f"{r[4]} · {r[8]} · {r[5]}")
    print(f"| {s} | " + " | ".join(cells) + " |")
notes = [(r[0], r[1], r[9]) for r in rows if len(r) > 9 and r[9].strip()]
if notes:
    print()
    for rd, s, n in notes:
        print(f"- round {rd}, {s}: {n}")
if said:
    print()
    print("What each variant reported at start (driver; size of one connection's future):")
    print()
    for s, t in said.items():
        print(f"- {s}: {t.rstrip(';').replace(';', '; ')}")
PY
cat "$WORK/table.md"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    {
        echo "# Runtime variants: idle memory and CPU per request, monoio vs compio vs nginx"
        echo
        echo "- command: \`$ENV_LINE $COMMAND\`"
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- ringway: $RINGWAY_CODE (release build)"
        echo "- versions: nginx $NGINX_VERSION, monoio $(grep -A1 '^name = "monoio"$' Cargo.lock | awk -F'"' '/version/ { print $2 }'), compio $(grep -A1 '^name = "compio"$' Cargo.lock | awk -F'"' '/version/ { print $2 }'), $(rustc -V 2>/dev/null || echo 'rustc ?')"
        echo "- machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
        echo "- load average at the start of each round: $(printf '%s; ' "${LOADS[@]}" | sed 's/; $//')"
        echo "- per system and round: wrk -t1 -c$CONNS -d${DURATION}s (after ${WARMUP} s warm-up), ${LOADGEN:+ringway-loadgen -c $CONNS -R $RATE -d $DURATION, }then $IDLE_CONNS idle keep-alive connections (one GET each)"
        echo
        cat "$WORK/table.md"
        echo
        echo "Cells: median (min–max) over $ROUNDS rounds; \"vs nginx\": median of the per-round ratios. The"
        echo "server under test runs alone on CPU 0; wrk, ringway-loadgen and idle-clients run on CPU 1. CPU"
        echo "µs/request = utime+stime of all the server's threads over the requests wrk completed. \"others on"
        echo "CPU 0\": the share of CPU 0 that processes other than the server used during the wrk run"
        echo "(other builds on this machine): a round with a high figure was disturbed. bytes / idle conn ="
        echo "(VmRSS after − before) × 1024 / connections, the reading taken ${SETTLE} s after the last"
        echo "connection was answered. ringway-balancer: the real balancer (\`--workers 1\`) in front of an"
        echo "agent and an nginx backend, idle figure only. Produced by \`benches/scripts/runtime_variants.sh\`."
    } > "$OUT"
    echo "== wrote $OUT" >&2
fi
