#!/usr/bin/env bash
# Side-by-side benchmark: ringway tunnel mode and classic mode vs nginx, HAProxy and rathole, in one
# run, same pinning.
#
#   CPU 0: the process under test alone — nginx (1 worker), HAProxy (nbthread 1), the rathole
#          server, or ringway-balancer --workers 1
#   CPU 1: the backend (nginx `return 200`, 12-byte body), the far half of a tunnel (ringway agent,
#          1 thread; rathole client), the load generator
#
# For each system: wrk -t1 -c50 closed loop (req/s, p99), then, when ringway-loadgen is built, one
# open-loop run at each fixed rate (coordinated-omission-corrected p99). CPU per request is
# utime+stime of all threads (/proc/PID/task/*/stat) of the CPU-0 process and of the far half
# (agent / rathole client) over the requests served, in each run, plus the irq and softirq time on
# CPU 0 that the kernel billed to no task. Ratios compare each system with the nginx run of the
# same round. Writes results/archive/side-by-side.md (OUT=…). docs/benchmarks.md describes it all.
#
# Usage: benches/scripts/side_by_side.sh
#   env: DURATION=10 RATE=10000 RATES="25% 50% 75%" CONNS=50 ROUNDS=1 WARMUP=2 CAL_DURATION=5
#        SYSTEMS="nginx haproxy rathole ringway-uring ringway-epoll"   (nginx first: the baseline)
#        (any ringway-DRIVER where DRIVER is an --io-driver of the balancer and agent: uring, epoll, …;
#         classic-DRIVER: ringway in classic mode, the backend as the balancer's static backend)
#        BACKEND=tcp|unix   how every system reaches the shared backend (unix: a unix socket in
#                           the work directory; rathole relays TCP only and is skipped)
#        WORKERS="1"        worker counts to run, e.g. "1 2": nginx worker_processes N, HAProxy
#                           nbthread N, rathole N tokio workers, ringway --workers N (balancer and
#                           agent), the entrance pinned to CPUs 0..N-1
#        OUT=results/archive/side-by-side.md TITLE="…" INSTALL=1 (0: never install missing tools)
#        RATHOLE=/path/to/rathole (default: PATH, then ~/.cargo/bin; `cargo install rathole` if absent)
#        FLAME_DIR=results/flame   after the last round's measurements of each system, one more wrk
#        run under `perf record --call-graph dwarf` of the CPU-0 process and of the far half, written
#        as flame graphs FLAME_DIR/<system>-<process>.svg (needs perf and inferno: `cargo install
#        inferno`); outside the measured runs, so the figures do not carry perf's cost
# RATES: fixed rates, each a number (req/s) or N% of the slowest system's closed-loop req/s in a
# calibration pass before the rounds (each system started, wrk for CAL_DURATION s, stopped); RATE
# is always one of them (the issue-10 table's rate; RATE= for none). Rounds run every system back
# to back: nginx first, the others in SYSTEMS order rotated by one place per round.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-10}
RATE=${RATE-10000}
RATES=${RATES-25% 50% 75%}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-2}
CAL_DURATION=${CAL_DURATION:-5}
SYSTEMS=${SYSTEMS:-nginx haproxy rathole ringway-uring ringway-epoll}
BACKEND=${BACKEND:-tcp}
WORKERS=${WORKERS:-1}
INSTALL=${INSTALL:-1}
OUT=${OUT:-$ROOT/results/archive/side-by-side.md}
BACKEND_PORT=${BACKEND_PORT:-18401}
NGINX_PORT=${NGINX_PORT:-18402}
RW_USERS=${RW_USERS:-18403}
RW_AGENTS=${RW_AGENTS:-18404}
HAPROXY_PORT=${HAPROXY_PORT:-18405}
RATHOLE_PORT=${RATHOLE_PORT:-18406}
RATHOLE_CONTROL=${RATHOLE_CONTROL:-18407}
HOST_HDR="bench.test"
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)

case $BACKEND in
    tcp) TRANSPORT="TCP 127.0.0.1:$BACKEND_PORT" ;;
    unix) TRANSPORT="unix socket" ;;
    *) echo "BACKEND is tcp or unix, not $BACKEND" >&2; exit 2 ;;
esac
for n in $WORKERS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "WORKERS holds worker counts (1 2 …), not $n" >&2; exit 2; }
done
for r in $RATES $RATE; do
    [[ $r =~ ^[1-9][0-9]*%?$ ]] || { echo "RATES holds req/s or N% (25% 10000 …), not $r" >&2; exit 2; }
done
if [ "$BACKEND" = unix ]; then
    TITLE=${TITLE:-ringway tunnel vs nginx, HAProxy and rathole, unix-socket backend}
else
    TITLE=${TITLE:-ringway tunnel vs nginx, HAProxy and rathole}
fi
COMMAND=${SIDE_BY_SIDE_COMMAND:-}
# shellcheck disable=SC2089 # the command line as text, for the report
[ -z "$COMMAND" ] && COMMAND="BACKEND=$BACKEND WORKERS=\"$WORKERS\" DURATION=$DURATION RATE=$RATE RATES=\"$RATES\" CONNS=$CONNS ROUNDS=$ROUNDS WARMUP=$WARMUP SYSTEMS=\"$SYSTEMS\" ${0#"$ROOT"/}"

WORK=$(mktemp -d /tmp/ringway-side-by-side.XXXXXX)
chmod 755 "$WORK"
SOCK=$WORK/backend.sock
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # Everything this script started: the systems, the backend, perf, and any job still running.
    local jobs
    mapfile -t jobs < <(jobs -p)
    stop "${PIDS[@]+"${PIDS[@]}"}" "${jobs[@]+"${jobs[@]}"}"
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wants() { [[ " $SYSTEMS " == *" $1 "* ]]; }
wants_prefix() { [[ " $SYSTEMS " == *" $1"* ]]; }
plural() { if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; } # n word

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
if wants rathole && [ "$BACKEND" = unix ]; then
    RATHOLE=""
    SKIPPED+=("rathole: it relays to TCP addresses only and cannot reach a unix-socket backend (BACKEND=unix)")
elif wants rathole && [ -z "$RATHOLE" ]; then
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
available() { # system
    case $1 in
        haproxy) command -v haproxy >/dev/null ;;
        rathole) [ -n "$RATHOLE" ] ;;
        *) true ;;
    esac
}

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

# ---- pinning ----
# With N workers the entrance gets CPUs 0..N-1 (ENTRANCE_CPUS, a taskset list, and E_SET, the same
# as a space-separated list); the backend, the far half and the load generator get CPU N, or the
# last CPU when the entrance already covers all (then the two share it: REST_CPU). OVERLAP=1 then.
pin_for() { # workers
    local n=$1 last=$((NPROC - 1)) top
    top=$(( n - 1 < last ? n - 1 : last ))
    ENTRANCE_CPUS=0; [ "$top" -gt 0 ] && ENTRANCE_CPUS="0-$top"
    E_SET=$(seq -s ' ' 0 "$top")
    if [ "$n" -le "$last" ]; then REST_CPU=$n; OVERLAP=0; else REST_CPU=$last; OVERLAP=1; fi
}

# ---- measuring ----
# Runs a load generator on the REST CPU; its own CPU (clock ticks) goes to $WORK/gen.ticks ("" if
# unknown).
on_rest() { # command…
    if [ -x /usr/bin/time ]; then
        local rc=0
        taskset -c "$REST_CPU" /usr/bin/time -f '%U %S' -o "$WORK/gen.time" "$@" || rc=$?
        awk -v hz="$CLK_TCK" '{ printf "%.0f", ($1 + $2) * hz }' "$WORK/gen.time" > "$WORK/gen.ticks" 2>/dev/null || : > "$WORK/gen.ticks"
        return $rc
    fi
    : > "$WORK/gen.ticks"
    taskset -c "$REST_CPU" "$@"
}

# Snapshot of every counter a run compares: S_P (entrance), S_F (far half), S_B (backend workers)
# in ticks, S_E / S_R the cpu_cols of the entrance's CPUs and of the REST CPU.
snapshot() {
    S_P=$(ticks_of "$SYS_PROXY"); S_F=$(ticks_of "$SYS_FAR"); S_B=$(ticks_of "$BACKEND_WORKERS")
    S_E=$(cpu_cols "$E_SET"); S_R=$(cpu_cols "$REST_CPU"); S_ALL=$(cpu_cols "$(seq -s ' ' 0 $((NPROC - 1)))")
}

ticks_of() { local p; read -r -a p <<< "$1"; cpu_ticks "${p[@]+"${p[@]}"}"; } # "pid …"

keep_snapshot() { A_P=$S_P; A_F=$S_F; A_B=$S_B; A_E=$S_E; A_R=$S_R; A_ALL=$S_ALL; }

# After a run between snapshot A (the A_* copies) and snapshot S_*: D_P, D_F (ticks); OTHERS0 and
# OTHERS1 (%: other tasks' user+system and steal on the entrance's CPUs / on the REST CPU); IRQ0
# (ticks of irq+softirq on the entrance's CPUs billed to no task: cpu_split); STEAL0 (%); ACCT0,
# the entrance CPUs' time in % of the run: "process / other tasks / unbilled irq+softirq / steal".
deltas() {
    D_P=$((S_P - A_P)); D_F=$((S_F - A_F))
    local gen known_rest split total
    gen=$(cat "$WORK/gen.ticks" 2>/dev/null || true)
    known_rest=$((S_B - A_B + D_F + ${gen:-0}))
    if [ "$OVERLAP" = 1 ]; then
        # The entrance shares a CPU with everything else: count the whole machine.
        split=$(cpu_split "$A_ALL" "$S_ALL" $((D_P + known_rest)))
        total=$(awk -v a="$A_ALL" -v b="$S_ALL" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[4] - x[4] }')
    else
        split=$(cpu_split "$A_E" "$S_E" "$D_P")
        total=$(awk -v a="$A_E" -v b="$S_E" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[4] - x[4] }')
    fi
    local unbilled_pct
    read -r OTHERS0 IRQ0 unbilled_pct STEAL0 <<< "$split"
    ACCT0=$(awk -v p="$D_P" -v t="$total" -v o="$OTHERS0" -v s="$STEAL0" -v n="$unbilled_pct" \
        'BEGIN { if (t <= 0) t = 1; printf "%.0f/%.0f/%.0f/%.0f", p / t * 100, (o > s ? o - s : 0), n, s }')
    if [ "$OVERLAP" = 1 ]; then
        OTHERS1=$OTHERS0
    elif [ -n "$gen" ]; then
        read -r OTHERS1 _ <<< "$(cpu_split "$A_R" "$S_R" "$known_rest")"
    else
        OTHERS1="?"
    fi
}

# p99 (ms, corrected), achieved rate, requests done and notes from a ringway-loadgen --json report.
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
print(f"{p99 / 1000:.2f}|{t['achieved_rate']:.0f}|{done}|{'; '.join(notes)}")
PY
}

# One line of $WORK/runs.tsv (side_by_side_report.py documents the fields) and of the log.
record() { # run rps p99 requests notes
    local run=$1 rps=$2 p99=$3 reqs=$4 notes=$5
    local pus fus="—" ius all
    pus=$(us_per_req "$D_P" "$reqs")
    [ -n "$SYS_FAR" ] && fus=$(us_per_req "$D_F" "$reqs")
    ius=$(us_per_req "$IRQ0" "$reqs")
    all=$(us_per_req $((D_P + IRQ0)) "$reqs")
    echo "   $SYS_LABEL, $run: $rps req/s, p99 $p99 ms, CPU 0 $pus µs/req (+ irq/softirq $ius = $all), far $fus µs/req;" \
        "CPU 0 process/others/irq+softirq/steal $ACCT0 %, others on CPU 1 $OTHERS1 % $notes" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$N" "$SYS_KEY" "$SYS_LABEL" "$run" \
        "$rps" "$p99" "$pus" "$fus" "$ius" "$OTHERS0" "$OTHERS1" "$ACCT0" "$notes" >> "$WORK/runs.tsv"
}

# The running system ($SYS_* from start_system): wrk closed loop, then each fixed rate.
measure() {
    local url="http://127.0.0.1:$SYS_PORT/"
    taskset -c "$REST_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HDR" "$url" >/dev/null
    snapshot; keep_snapshot
    on_rest wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST_HDR" "$url" > "$WORK/wrk.txt"
    snapshot; deltas
    local reqs rps p99 errors
    reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk.txt")
    rps=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v = v / 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v = v * 1000 }; printf "%.2f", v }' "$WORK/wrk.txt")
    errors=$(awk '/Non-2xx|Socket errors/ { print "wrk: " $0 }' "$WORK/wrk.txt" | tr '\n' ' ' | tr -s ' ')
    record wrk "$rps" "$p99" "$reqs" "$errors"

    local rate
    if [ -n "$LOADGEN" ]; then
        for rate in ${FIXED_RATES[$N]}; do
            snapshot; keep_snapshot
            # --spin-us 0: the generator shares its CPU with the backend and the far half, and a
            # spinning generator would take that CPU from them (docs/loadgen.md).
            if on_rest "$LOADGEN" -q -c "$CONNS" -w 1 -d "$DURATION" -R "$rate" --spin-us 0 -H "Host: $HOST_HDR" \
                --json "$WORK/lg.json" "$url" > "$WORK/lg.txt" 2>&1; then
                snapshot; deltas
                local p99f achieved completed notes
                IFS='|' read -r p99f achieved completed notes <<< "$(loadgen_summary "$WORK/lg.json")"
                record "$rate" "$achieved" "$p99f" "$completed" "$notes"
            else
                snapshot; deltas
                record "$rate" "?" "?" 0 "loadgen failed: $(tail -n 1 "$WORK/lg.txt")"
            fi
        done
    fi
    if [ -n "${FLAME_DIR:-}" ] && [ "$ROUND" = "$ROUNDS" ]; then
        flame "$url"
    fi
}

# FLAME_DIR/KEY-entrance.svg (and KEY-far.svg) from perf samples taken during a closed-loop wrk run
# of its own. With several worker counts the file names carry the count: KEY-wN-entrance.svg.
flame() { # url
    local url=$1 secs=$(( DURATION < 5 ? DURATION : 5 )) name=$SYS_KEY
    [ "$(wc -w <<< "$WORKERS")" -gt 1 ] && name=$SYS_KEY-w$N
    mkdir -p "$FLAME_DIR"
    local recs=() part pids
    for part in entrance far; do
        if [ "$part" = entrance ]; then pids=$SYS_PROXY; else pids=$SYS_FAR; fi
        [ -n "$pids" ] || continue
        perf record -q -F 499 --call-graph dwarf,16384 -p "$(tr ' ' , <<< "$pids")" -o "$WORK/perf-$part.data" \
            -- sleep "$secs" > /dev/null 2>&1 &
        recs+=($!)
        PIDS+=($!)
    done
    taskset -c "$REST_CPU" wrk -t1 -c"$CONNS" -d"${secs}s" -H "Host: $HOST_HDR" "$url" > /dev/null
    wait "${recs[@]}" || true
    for part in entrance far; do
        [ -f "$WORK/perf-$part.data" ] || continue
        perf script -i "$WORK/perf-$part.data" 2> /dev/null | inferno-collapse-perf 2> /dev/null \
            | inferno-flamegraph --title "$SYS_KEY: $part ($(date -u +%F), wrk -t1 -c$CONNS, $(plural "$N" worker), backend over $TRANSPORT)" \
            > "$FLAME_DIR/$name-$part.svg" 2> /dev/null \
            && echo "   flame graph: $FLAME_DIR/$name-$part.svg" >&2
        rm -f "$WORK/perf-$part.data"
    done
}

# ---- the backend and the systems ----
# The shared backend: nginx `return 200` with 1 worker on the REST CPU, on 127.0.0.1:BACKEND_PORT,
# or with BACKEND=unix on $SOCK only (so a system that would still dial TCP gets no 200).
start_backend() {
    local listen="listen 127.0.0.1:$BACKEND_PORT;"
    [ "$BACKEND" = unix ] && listen="listen unix:$SOCK;"
    rm -f "$SOCK"
    nginx_conf backend "server { $listen location / { return 200 \"hello world\\n\"; } }"
    taskset -c "$REST_CPU" nginx -p "$WORK" -c "$WORK/backend.conf" &
    BACKEND_MASTER=$!
    PIDS+=("$BACKEND_MASTER")
    if [ "$BACKEND" = tcp ]; then
        wait_200 "$BACKEND_PORT"
    else
        local code=""
        for _ in $(seq 1 150); do
            code=$(curl -s -m 1 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H "Host: $HOST_HDR" http://localhost/ || true)
            [ "$code" = 200 ] && break
            sleep 0.1
        done
        [ "$code" = 200 ] || { echo "backend: no 200 on $SOCK" >&2; return 1; }
        # The master (root) made the socket; nginx's proxy worker runs as nobody.
        chmod 666 "$SOCK"
    fi
    BACKEND_WORKERS=$(nginx_workers "$BACKEND_MASTER" 1 | tr '\n' ' ')
}

# Starts SYSTEM with N workers, waits for a 200 through it, and sets SYS_KEY, SYS_LABEL, SYS_PORT,
# SYS_PROXY (entrance pids), SYS_FAR (far-half pid, "" for a proxy) and SYS_STARTED (what to stop).
start_system() { # system
    SYS_KEY=$1 SYS_FAR="" SYS_STARTED=()
    case $1 in
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
        rathole) start_rathole ;;
        ringway-*) start_ringway "${1#ringway-}" ;;
        classic-*) start_classic "${1#classic-}" ;;
        *) echo "unknown system $1" >&2; exit 2 ;;
    esac
    PIDS+=("${SYS_STARTED[@]}")
    wait_200 "$SYS_PORT"
    if [ "$1" = nginx ]; then SYS_PROXY=$(nginx_workers "${SYS_STARTED[0]}" "$N" | tr '\n' ' '); fi
}

stop_system() { stop "${SYS_STARTED[@]}"; }

start_nginx() {
    local upstream="127.0.0.1:$BACKEND_PORT"
    [ "$BACKEND" = unix ] && upstream="unix:$SOCK"
    echo "== nginx reverse proxy on CPU $ENTRANCE_CPUS (port $NGINX_PORT)" >&2
    nginx_conf proxy "upstream be { server $upstream; keepalive 64; }
        server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }" "$N"
    taskset -c "$ENTRANCE_CPUS" nginx -p "$WORK" -c "$WORK/proxy.conf" &
    SYS_STARTED=($!) SYS_PORT=$NGINX_PORT
    SYS_LABEL="nginx $NGINX_VERSION reverse proxy ($(plural "$N" worker), upstream keepalive)"
}

start_haproxy() {
    local server="127.0.0.1:$BACKEND_PORT"
    [ "$BACKEND" = unix ] && server=$SOCK
    echo "== HAProxy reverse proxy on CPU $ENTRANCE_CPUS (port $HAPROXY_PORT)" >&2
    cat > "$WORK/haproxy.cfg" <<CFG
global
    nbthread $N
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
    server b1 $server
CFG
    taskset -c "$ENTRANCE_CPUS" haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.out" 2>&1 &
    SYS_STARTED=($!) SYS_PROXY=$! SYS_PORT=$HAPROXY_PORT
    SYS_LABEL="HAProxy $HAPROXY_VERSION reverse proxy (nbthread $N, http-reuse always)"
}

start_rathole() {
    echo "== rathole TCP tunnel: server on CPU $ENTRANCE_CPUS (port $RATHOLE_PORT), client on CPU $REST_CPU" >&2
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
    RUST_LOG=warn TOKIO_WORKER_THREADS=$N taskset -c "$ENTRANCE_CPUS" "$RATHOLE" --server "$WORK/rathole-server.toml" \
        > "$WORK/rathole-server.out" 2>&1 &
    SYS_PROXY=$!
    RUST_LOG=warn TOKIO_WORKER_THREADS=$N taskset -c "$REST_CPU" "$RATHOLE" --client "$WORK/rathole-client.toml" \
        > "$WORK/rathole-client.out" 2>&1 &
    SYS_FAR=$!
    SYS_STARTED=("$SYS_FAR" "$SYS_PROXY") SYS_PORT=$RATHOLE_PORT
    SYS_LABEL="rathole $RATHOLE_VERSION TCP tunnel (server + client, $(plural "$N" "tokio worker") each)"
}

start_ringway() { # driver
    local driver=$1 backend="127.0.0.1:$BACKEND_PORT"
    [ "$BACKEND" = unix ] && backend="unix:$SOCK"
    echo "== ringway tunnel, $driver: balancer on CPU $ENTRANCE_CPUS, agent on CPU $REST_CPU" >&2
    RINGWAY_LOG=warn taskset -c "$ENTRANCE_CPUS" "$BIN/ringway-balancer" --workers "$N" --io-driver "$driver" \
        --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" --insecure-plaintext \
        --route "$HOST_HDR" --token bench > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
    SYS_PROXY=$!
    RINGWAY_LOG=warn RUST_LOG=warn taskset -c "$REST_CPU" "$BIN/ringway-agent" --balancer "127.0.0.1:$RW_AGENTS" --insecure-plaintext \
        --token bench --route "$HOST_HDR" --backend "$backend" --workers "$N" \
        --io-driver "$driver" > /dev/null 2> "$WORK/agent.err" &
    SYS_FAR=$!
    SYS_STARTED=("$SYS_FAR" "$SYS_PROXY") SYS_PORT=$RW_USERS
    SYS_LABEL="ringway tunnel, $driver (balancer $(plural "$N" worker) + agent $(plural "$N" thread))"
}

start_classic() { # driver
    local driver=$1 backend="127.0.0.1:$BACKEND_PORT"
    [ "$BACKEND" = unix ] && backend="unix:$SOCK"
    echo "== ringway classic mode, $driver: balancer on CPU $ENTRANCE_CPUS, static backend" >&2
    RINGWAY_LOG=warn taskset -c "$ENTRANCE_CPUS" "$BIN/ringway-balancer" --workers "$N" --io-driver "$driver" \
        --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" --insecure-plaintext --admin-listen off \
        --backend "$HOST_HDR=$backend" > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
    SYS_STARTED=($!) SYS_PROXY=$! SYS_PORT=$RW_USERS
    SYS_LABEL="ringway classic mode, $driver (balancer $(plural "$N" worker), static backend)"
}

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*\///')
HAPROXY_VERSION=""
wants haproxy && command -v haproxy >/dev/null && HAPROXY_VERSION=$(haproxy -v 2>/dev/null | awk 'NR == 1 { sub(/-.*/, "", $3); print $3 }' || true)
RATHOLE_VERSION=""
[ -n "$RATHOLE" ] && RATHOLE_VERSION=$("$RATHOLE" --version 2>/dev/null | awk '/Build Version/ { print $3 }' || true)

# ---- calibration: each system's closed-loop max, for the N% rates ----
# FIXED_RATES[N]: the fixed rates (req/s, ascending) for N workers.
declare -A FIXED_RATES
: > "$WORK/calibration.tsv"
ROUND=0
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
START=$(date +%s)
for N in $WORKERS; do
    pin_for "$N"
    slowest=""
    if [ -n "$LOADGEN" ] && [[ " $RATES $RATE " == *%* ]]; then
        echo "== calibration, $(plural "$N" worker): wrk -t1 -c$CONNS for ${CAL_DURATION}s per system" >&2
        start_backend
        for system in $SYSTEMS; do
            available "$system" || continue
            start_system "$system"
            taskset -c "$REST_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "Host: $HOST_HDR" "http://127.0.0.1:$SYS_PORT/" > /dev/null
            rps=$(taskset -c "$REST_CPU" wrk -t1 -c"$CONNS" -d"${CAL_DURATION}s" -H "Host: $HOST_HDR" "http://127.0.0.1:$SYS_PORT/" \
                | awk '/Requests\/sec/ { printf "%.0f", $2 }' || true)
            rps=${rps:-0}
            stop_system
            echo "   $SYS_LABEL: $rps req/s" >&2
            printf '%s\t%s\t%s\t%s\n' "$N" "$SYS_KEY" "$SYS_LABEL" "$rps" >> "$WORK/calibration.tsv"
            if [ -z "$slowest" ] || [ "$rps" -lt "$slowest" ]; then slowest=$rps; fi
        done
        stop "$BACKEND_MASTER"
    fi
    rates=""
    for r in $RATES $RATE; do
        # N% of the slowest, to the nearest 100 req/s (at least 100)
        [[ $r == *% ]] && r=$(awk -v p="${r%\%}" -v s="$slowest" 'BEGIN { v = int(s * p / 100 / 100 + 0.5) * 100; print (v < 100 ? 100 : v) }')
        rates="$rates $r"
    done
    FIXED_RATES[$N]=$(tr ' ' '\n' <<< "$rates" | awk 'NF' | sort -n -u | tr '\n' ' ')
    [ -n "$LOADGEN" ] && echo "== fixed rates, $(plural "$N" worker): ${FIXED_RATES[$N]}(RATES=\"$RATES\" RATE=$RATE${slowest:+, slowest $slowest req/s})" >&2
    printf '%s\t%s\t%s\n' "$N" "${slowest:-}" "${FIXED_RATES[$N]}" >> "$WORK/rates.tsv"
done

# ---- the rounds ----
: > "$WORK/runs.tsv"
for ROUND in $(seq 1 "$ROUNDS"); do
    # nginx (the baseline) first; the others rotate by one place per round, so that none is always
    # the one right after nginx or the last.
    # shellcheck disable=SC2086 # the list, split
    read -r -a rest <<< "$(printf '%s ' $SYSTEMS | sed 's/\bnginx //')"
    order=()
    wants nginx && order+=(nginx)
    for i in "${!rest[@]}"; do order+=("${rest[$(( (i + ROUND - 1) % ${#rest[@]} ))]}"); done
    for N in $WORKERS; do
        pin_for "$N"
        start_backend
        for system in "${order[@]}"; do
            available "$system" || continue
            start_system "$system"
            measure
            stop_system
        done
        stop "$BACKEND_MASTER"
    done
done
LOAD_AFTER=$(cut -d" " -f1-3 /proc/loadavg)
ELAPSED=$(( $(date +%s) - START ))

# ---- report ----
# shellcheck disable=SC2090 # COMMAND is text
export RINGWAY_CODE TITLE COMMAND DURATION RATE RATES CONNS WARMUP CAL_DURATION CLK_TCK LOAD_BEFORE LOAD_AFTER ELAPSED
export BACKEND TRANSPORT WORKERS NPROC
MACHINE="$NPROC CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
# (`wrk -v` exits with 1)
WRK_VERSION=$(wrk -v 2>&1 | awk 'NR == 1 { sub(/^[^0-9]*/, "", $2); sub(/-.*/, "", $2); print $2 }' || true)
VERSIONS="nginx $NGINX_VERSION${HAPROXY_VERSION:+, HAProxy $HAPROXY_VERSION}${RATHOLE_VERSION:+, rathole $RATHOLE_VERSION}, wrk $WRK_VERSION"
SKIPPED_TEXT=$(printf '%s\n' "${SKIPPED[@]+"${SKIPPED[@]}"}")
WANTS_RINGWAY=0
if wants_prefix ringway-; then WANTS_RINGWAY=1; fi
WANTS_CLASSIC=0
if wants_prefix classic-; then WANTS_CLASSIC=1; fi
export MACHINE VERSIONS SKIPPED_TEXT WANTS_RINGWAY WANTS_CLASSIC
python3 "$ROOT/benches/scripts/side_by_side_report.py" "$WORK/runs.tsv" "$WORK/calibration.tsv" "$WORK/rates.tsv" > "$OUT"
echo "== wrote $OUT" >&2
cat "$OUT"
