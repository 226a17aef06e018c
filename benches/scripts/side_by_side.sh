#!/usr/bin/env bash
# Side-by-side benchmark: ringway tunnel mode and classic mode vs nginx, HAProxy and rathole, in one
# run, same pinning.
#
#   CPU 0: the process under test alone — nginx (1 worker), HAProxy (nbthread 1), the rathole
#          server, or ringway-balancer --workers 1
#   CPU 1: the backend (nginx `return 200`, 12-byte body), the far half of a tunnel (ringway agent,
#          1 thread; rathole client), the load generator
#
# For each system: wrk -t1 -c50 closed loop (req/s, p99), then, when ringway-loadgen is built, a
# fixed-rate open-loop run (coordinated-omission-corrected p99). CPU per request is utime+stime of
# all threads (/proc/PID/task/*/stat) of the CPU-0 process and of the far half (agent / rathole
# client) over the requests served, in each of the two runs. Ratios compare each system with the
# nginx run of the same round. Writes results/archive/side-by-side.md (OUT=…).
#
# Usage: benches/scripts/side_by_side.sh
#   env: DURATION=10 RATE=10000 CONNS=50 ROUNDS=1 WARMUP=2
#        SYSTEMS="nginx haproxy rathole ringway-uring ringway-epoll"   (nginx first: the baseline)
#        (any ringway-DRIVER where DRIVER is an --io-driver of the balancer and agent: uring, epoll, …;
#         classic-DRIVER: ringway in classic mode, the backend as the balancer's static backend)
#        OUT=results/archive/side-by-side.md TITLE="…" INSTALL=1 (0: never install missing tools)
#        RATHOLE=/path/to/rathole (default: PATH, then ~/.cargo/bin; `cargo install rathole` if absent)
#        FLAME_DIR=results/flame   after the last round's measurements of each system, one more wrk
#        run under `perf record --call-graph dwarf` of the CPU-0 process and of the far half, written
#        as flame graphs FLAME_DIR/<system>-<process>.svg (needs perf and inferno: `cargo install
#        inferno`); outside the measured runs, so the figures do not carry perf's cost
# Rounds run every system back to back: nginx first, the others in SYSTEMS order rotated by one place
# per round; ratios compare runs of the same round.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
RATE=${RATE:-10000}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-2}
SYSTEMS=${SYSTEMS:-nginx haproxy rathole ringway-uring ringway-epoll}
INSTALL=${INSTALL:-1}
OUT=${OUT:-$ROOT/results/archive/side-by-side.md}
TITLE=${TITLE:-ringway tunnel vs nginx, HAProxy and rathole}
BACKEND_PORT=${BACKEND_PORT:-18401}
NGINX_PORT=${NGINX_PORT:-18402}
RW_USERS=${RW_USERS:-18403}
RW_AGENTS=${RW_AGENTS:-18404}
HAPROXY_PORT=${HAPROXY_PORT:-18405}
RATHOLE_PORT=${RATHOLE_PORT:-18406}
RATHOLE_CONTROL=${RATHOLE_CONTROL:-18407}
HOST_HDR="bench.test"
CLK_TCK=$(getconf CLK_TCK)
COMMAND=${SIDE_BY_SIDE_COMMAND:-}
[ -z "$COMMAND" ] && COMMAND="DURATION=$DURATION RATE=$RATE CONNS=$CONNS ROUNDS=$ROUNDS WARMUP=$WARMUP SYSTEMS=\"$SYSTEMS\" ${0#"$ROOT"/}"

WORK=$(mktemp -d /tmp/ringway-side-by-side.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wants() { [[ " $SYSTEMS " == *" $1 "* ]]; }
wants_prefix() { [[ " $SYSTEMS " == *" $1"* ]]; }

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then apt_install nginx wrk; fi
for tool in nginx wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk)" >&2; exit 1; }
done
SKIPPED=()
if [ -n "${FLAME_DIR:-}" ]; then
    for tool in perf inferno-collapse-perf inferno-flamegraph; do
        command -v "$tool" >/dev/null || { echo "FLAME_DIR needs $tool (apt-get install linux-perf; cargo install inferno)" >&2; exit 1; }
    done
    case $FLAME_DIR in /*) ;; *) FLAME_DIR=$ROOT/$FLAME_DIR ;; esac
fi
if wants haproxy && ! command -v haproxy >/dev/null; then apt_install haproxy; fi
if wants haproxy && ! command -v haproxy >/dev/null; then
    SKIPPED+=("haproxy: not installed (apt-get install haproxy)")
fi
RATHOLE=${RATHOLE:-}
if wants rathole && [ -z "$RATHOLE" ]; then
    RATHOLE=$(command -v rathole || true)
    [ -z "$RATHOLE" ] && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/rathole" ] && RATHOLE=${CARGO_HOME:-$HOME/.cargo}/bin/rathole
    if [ -z "$RATHOLE" ] && [ "$INSTALL" = 1 ]; then
        # Not --locked: its dependencies resolve to current versions.
        echo "== installing rathole with cargo install (a few minutes)" >&2
        cargo install rathole >&2 || true
        [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/rathole" ] && RATHOLE=${CARGO_HOME:-$HOME/.cargo}/bin/rathole
    fi
    [ -z "$RATHOLE" ] && SKIPPED+=("rathole: not installed (cargo install rathole)")
fi

# Others edit ringway while benchmarks run: record which code the release build is made of.
RINGWAY_CODE="commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
DIRTY=$(git status --porcelain -- balancer agent core tuning loadgen Cargo.toml Cargo.lock 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ')
[ -n "$DIRTY" ] && RINGWAY_CODE="$RINGWAY_CODE + uncommitted changes in ${DIRTY% }"
echo "== building release binaries" >&2
cargo build --release -q -p ringway-balancer -p ringway-agent
BIN=$ROOT/target/release
LOADGEN=""
if cargo build --release -q -p ringway-loadgen 2>/dev/null && [ -x "$BIN/ringway-loadgen" ]; then
    LOADGEN=$BIN/ringway-loadgen
fi




# Runs a load generator on CPU 1; its own CPU (clock ticks) goes to $WORK/gen.ticks ("" if unknown).
on_cpu1() { # command…
    if [ -x /usr/bin/time ]; then
        local rc=0
        taskset -c 1 /usr/bin/time -f '%U %S' -o "$WORK/gen.time" "$@" || rc=$?
        awk -v hz="$CLK_TCK" '{ printf "%.0f", ($1 + $2) * hz }' "$WORK/gen.time" > "$WORK/gen.ticks" 2>/dev/null || : > "$WORK/gen.ticks"
        return $rc
    fi
    : > "$WORK/gen.ticks"
    taskset -c 1 "$@"
}

# Snapshot of every counter measure() compares: S_P (CPU-0 process), S_F (far half), S_B (backend
# worker) in ticks, S_C0 / S_C1 the two CPUs' "busy total".
snapshot() { # proxy far
    S_P=$(cpu_ticks "$1"); S_F=$(cpu_ticks "$2"); S_B=$(cpu_ticks "$BACKEND_WORKER")
    S_C0=$(cpu_busy 0); S_C1=$(cpu_busy 1)
}

# After a run between snapshot A (the A_* copies) and snapshot S_*: sets D_P, D_F (ticks) and
# OTHERS0, OTHERS1 (%: CPU 0 less the process under test; CPU 1 less backend, far half, generator).
deltas() {
    D_P=$((S_P - A_P)); D_F=$((S_F - A_F))
    OTHERS0=$(others_pct "$A_C0" "$S_C0" "$D_P")
    local gen
    gen=$(cat "$WORK/gen.ticks" 2>/dev/null || true)
    if [ -n "$gen" ]; then
        OTHERS1=$(others_pct "$A_C1" "$S_C1" $((S_B - A_B + D_F + gen)))
    else
        OTHERS1="?"
    fi
}

keep_snapshot() { A_P=$S_P; A_F=$S_F; A_B=$S_B; A_C0=$S_C0; A_C1=$S_C1; }






# p99 (ms, corrected), achieved rate and failures from a ringway-loadgen --json report.
loadgen_summary() { # json
    python3 - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
t = doc["targets"][0]
p99 = next(p["value"] for p in t["latency_us"]["corrected"]["percentiles"] if p["percentile"] == 99.0)
notes = []
if t["requests"]["error_total"]:
    notes.append(f"loadgen errors {t['requests']['error_total']}")
if t["rate_shortfall"]:
    notes.append(f"rate shortfall: {t['achieved_rate']:.0f} req/s")
# CPU is sampled around the whole run, warm-up included: count its requests too.
done = t["requests"]["completed"] + t["warmup_requests"]["completed"]
print(f"{p99 / 1000:.2f}|{done}|{'; '.join(notes)}")
PY
}

# measure KEY LABEL PORT PROXY_PID [FAR_PID]: one row of $WORK/rows.tsv
measure() {
    local key=$1 label=$2 port=$3 proxy=$4 far=${5:-}
    local url="http://127.0.0.1:$port/"
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HDR" "$url" >/dev/null
    snapshot "$proxy" "$far"; keep_snapshot
    on_cpu1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST_HDR" "$url" > "$WORK/wrk.txt"
    snapshot "$proxy" "$far"; deltas
    local others0=$OTHERS0 others1=$OTHERS1
    local reqs rps p99 errors
    reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
    rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v = v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v = v * 1000 }; printf "%.2f", v }' "$WORK/wrk.txt")
    errors=$(awk '/Non-2xx|Socket errors/ { print "wrk: " $0 }' "$WORK/wrk.txt" | tr '\n' ' ' | tr -s ' ')
    local pus fus="—"
    pus=$(us_per_req "$D_P" "$reqs")
    [ -n "$far" ] && fus=$(us_per_req "$D_F" "$reqs")

    local fixed="—" fpus="—" ffus="—"
    if [ -n "$LOADGEN" ]; then
        snapshot "$proxy" "$far"; keep_snapshot
        if on_cpu1 "$LOADGEN" -q -c "$CONNS" -w 1 -d "$DURATION" -R "$RATE" -H "Host: $HOST_HDR" \
            --json "$WORK/lg.json" "$url" > "$WORK/lg.txt" 2>&1; then
            snapshot "$proxy" "$far"; deltas
            others0="$others0 / $OTHERS0"; others1="$others1 / $OTHERS1"
            local summary done notes
            summary=$(loadgen_summary "$WORK/lg.json")
            IFS='|' read -r fixed done notes <<< "$summary"
            fpus=$(us_per_req "$D_P" "$done")
            [ -n "$far" ] && ffus=$(us_per_req "$D_F" "$done")
            [ -n "$notes" ] && errors="$errors $notes"
        else
            fixed="?"
            errors="$errors loadgen failed: $(tail -n 1 "$WORK/lg.txt")"
        fi
    fi
    if [ -n "${FLAME_DIR:-}" ] && [ "$ROUND" = "$ROUNDS" ]; then
        flame "$key" "$url" "$proxy" "$far"
    fi
    echo "   $label: $rps req/s, p99 $p99 ms, CPU0 $pus µs/req, far $fus µs/req; at $RATE req/s: p99 $fixed ms, CPU0 $fpus, far $ffus; others on CPU 0: $others0 %, on CPU 1: $others1 % $errors" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$key" "$label" "$rps" "$p99" "$pus" "$fus" \
        "$fixed" "$fpus" "$ffus" "$others0" "$others1" "$errors" >> "$WORK/rows.tsv"
}

# flame KEY URL PROXY_PID [FAR_PID]: FLAME_DIR/KEY-entrance.svg (and KEY-far.svg) from perf samples
# taken during a closed-loop wrk run of its own.
flame() {
    local key=$1 url=$2 proxy=$3 far=${4:-}
    local secs=$(( DURATION < 5 ? DURATION : 5 ))
    mkdir -p "$FLAME_DIR"
    local recs=()
    perf record -q -F 499 --call-graph dwarf,16384 -p "$proxy" -o "$WORK/perf-entrance.data" -- sleep "$secs" \
        > /dev/null 2>&1 &
    recs+=($!)
    if [ -n "$far" ]; then
        perf record -q -F 499 --call-graph dwarf,16384 -p "$far" -o "$WORK/perf-far.data" -- sleep "$secs" \
            > /dev/null 2>&1 &
        recs+=($!)
    fi
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${secs}s" -H "Host: $HOST_HDR" "$url" > /dev/null
    wait "${recs[@]}" || true
    local part
    for part in entrance far; do
        [ -f "$WORK/perf-$part.data" ] || continue
        perf script -i "$WORK/perf-$part.data" 2> /dev/null | inferno-collapse-perf 2> /dev/null \
            | inferno-flamegraph --title "$key: $part ($(date -u +%F), wrk -t1 -c$CONNS)" \
            > "$FLAME_DIR/$key-$part.svg" 2> /dev/null \
            && echo "   flame graph: $FLAME_DIR/$key-$part.svg" >&2
        rm -f "$WORK/perf-$part.data"
    done
}

# ---- the systems ----
run_nginx() {
    echo "== nginx reverse proxy on CPU 0 (port $NGINX_PORT)" >&2
    nginx_conf proxy "upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
        server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
    taskset -c 0 nginx -p "$WORK" -c "$WORK/proxy.conf" &
    local master=$!
    PIDS+=("$master")
    wait_200 "$NGINX_PORT"
    measure nginx "nginx $NGINX_VERSION reverse proxy (1 worker, upstream keepalive)" "$NGINX_PORT" "$(nginx_worker "$master")"
    stop "$master"
}

run_haproxy() {
    echo "== HAProxy reverse proxy on CPU 0 (port $HAPROXY_PORT)" >&2
    cat > "$WORK/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
    pidfile $WORK/haproxy.pid
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
frontend users
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend origin
backend origin
    http-reuse always
    server b1 127.0.0.1:$BACKEND_PORT
CFG
    taskset -c 0 haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_200 "$HAPROXY_PORT"
    measure haproxy "HAProxy $HAPROXY_VERSION reverse proxy (nbthread 1, http-reuse always)" "$HAPROXY_PORT" "$pid"
    stop "$pid"
}

run_rathole() {
    echo "== rathole TCP tunnel: server on CPU 0 (port $RATHOLE_PORT), client on CPU 1" >&2
    cat > "$WORK/rathole-server.toml" <<TOML
[server]
bind_addr = "127.0.0.1:$RATHOLE_CONTROL"
[server.transport]
type = "tcp"
[server.services.bench]
token = "bench"
bind_addr = "127.0.0.1:$RATHOLE_PORT"
TOML
    cat > "$WORK/rathole-client.toml" <<TOML
[client]
remote_addr = "127.0.0.1:$RATHOLE_CONTROL"
[client.transport]
type = "tcp"
[client.services.bench]
token = "bench"
local_addr = "127.0.0.1:$BACKEND_PORT"
TOML
    RUST_LOG=warn TOKIO_WORKER_THREADS=1 taskset -c 0 "$RATHOLE" --server "$WORK/rathole-server.toml" > "$WORK/rathole-server.out" 2>&1 &
    local server=$!
    PIDS+=("$server")
    RUST_LOG=warn TOKIO_WORKER_THREADS=1 taskset -c 1 "$RATHOLE" --client "$WORK/rathole-client.toml" > "$WORK/rathole-client.out" 2>&1 &
    local client=$!
    PIDS+=("$client")
    wait_200 "$RATHOLE_PORT"
    measure rathole "rathole $RATHOLE_VERSION TCP tunnel (server + client, 1 tokio worker each)" "$RATHOLE_PORT" "$server" "$client"
    stop "$client" "$server"
}

run_ringway() { # driver
    local driver=$1
    echo "== ringway tunnel, $driver: balancer on CPU 0, agent on CPU 1" >&2
    RINGWAY_LOG=warn taskset -c 0 "$BIN/ringway-balancer" --workers 1 --io-driver "$driver" \
        --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" --insecure-plaintext \
        --route "$HOST_HDR" --token bench > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
    local bal=$!
    PIDS+=("$bal")
    RINGWAY_LOG=warn RUST_LOG=warn taskset -c 1 "$BIN/ringway-agent" --balancer "127.0.0.1:$RW_AGENTS" --insecure-plaintext \
        --token bench --route "$HOST_HDR" --backend "127.0.0.1:$BACKEND_PORT" --workers 1 \
        --io-driver "$driver" > /dev/null 2> "$WORK/agent.err" &
    local agent=$!
    PIDS+=("$agent")
    wait_200 "$RW_USERS"
    measure "ringway-$driver" "ringway tunnel, $driver (balancer 1 worker + agent 1 thread)" "$RW_USERS" "$bal" "$agent"
    stop "$agent" "$bal"
}

run_classic() { # driver
    local driver=$1
    echo "== ringway classic mode, $driver: balancer on CPU 0, static backend" >&2
    RINGWAY_LOG=warn taskset -c 0 "$BIN/ringway-balancer" --workers 1 --io-driver "$driver" \
        --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" --insecure-plaintext --admin-listen off \
        --backend "$HOST_HDR=127.0.0.1:$BACKEND_PORT" > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
    local bal=$!
    PIDS+=("$bal")
    wait_200 "$RW_USERS"
    measure "classic-$driver" "ringway classic mode, $driver (balancer 1 worker, static backend)" "$RW_USERS" "$bal"
    stop "$bal"
}

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*\///')
HAPROXY_VERSION=""
wants haproxy && command -v haproxy >/dev/null && HAPROXY_VERSION=$(haproxy -v 2>/dev/null | awk 'NR == 1 { sub(/-.*/, "", $3); print $3 }' || true)
RATHOLE_VERSION=""
[ -n "$RATHOLE" ] && RATHOLE_VERSION=$("$RATHOLE" --version 2>/dev/null | awk '/Build Version/ { print $3 }' || true)

echo "== backend: nginx return 200 on CPU 1 (port $BACKEND_PORT)" >&2
nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\\n\"; } }"
taskset -c 1 nginx -p "$WORK" -c "$WORK/backend.conf" &
BACKEND_MASTER=$!
PIDS+=("$BACKEND_MASTER")
wait_200 "$BACKEND_PORT"
BACKEND_WORKER=$(nginx_worker "$BACKEND_MASTER")

: > "$WORK/rows.tsv"
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
START=$(date +%s)
for ROUND in $(seq 1 "$ROUNDS"); do
    # nginx (the baseline) first; the others rotate by one place per round, so that none is always
    # the one right after nginx or the last.
    read -r -a rest <<< "$(printf '%s ' $SYSTEMS | sed 's/\bnginx //')"
    order=()
    wants nginx && order+=(nginx)
    for i in "${!rest[@]}"; do order+=("${rest[$(( (i + ROUND - 1) % ${#rest[@]} ))]}"); done
    for system in "${order[@]}"; do
        case $system in
            nginx) run_nginx ;;
            haproxy) if command -v haproxy >/dev/null; then run_haproxy; fi ;;
            rathole) if [ -n "$RATHOLE" ]; then run_rathole; fi ;;
            ringway-*) run_ringway "${system#ringway-}" ;;
            classic-*) run_classic "${system#classic-}" ;;
            *) echo "unknown system $system" >&2; exit 2 ;;
        esac
    done
done
LOAD_AFTER=$(cut -d" " -f1-3 /proc/loadavg)
ELAPSED=$(( $(date +%s) - START ))

# ---- report ----
export RINGWAY_CODE
export TITLE COMMAND DURATION RATE CONNS WARMUP CLK_TCK LOAD_BEFORE LOAD_AFTER ELAPSED
export MACHINE="$(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
export VERSIONS="nginx $NGINX_VERSION${HAPROXY_VERSION:+, HAProxy $HAPROXY_VERSION}${RATHOLE_VERSION:+, rathole $RATHOLE_VERSION}, wrk $(wrk -v 2>&1 | awk 'NR == 1 { sub(/^[^0-9]*/, "", $2); sub(/-.*/, "", $2); print $2 }')"
export SKIPPED_TEXT
SKIPPED_TEXT=$(printf '%s\n' "${SKIPPED[@]+"${SKIPPED[@]}"}")
export WANTS_RINGWAY=0
if wants_prefix ringway-; then WANTS_RINGWAY=1; fi
export WANTS_CLASSIC=0
if wants_prefix classic-; then WANTS_CLASSIC=1; fi
python3 "$ROOT/benches/scripts/side_by_side_report.py" "$WORK/rows.tsv" > "$OUT"
echo "== wrote $OUT" >&2
cat "$OUT"
