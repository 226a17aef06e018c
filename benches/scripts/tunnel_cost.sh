#!/usr/bin/env bash
# User-space instructions per request of ringway-balancer and ringway-agent on the tunnel path,
# counted by callgrind (valgrind): a count, not a time, so it holds on a shared, noisy machine.
#
#   nginx (1 worker, `return 200`, 12-byte body) ← ringway-agent ⇄ tunnel ⇄ ringway-balancer ← driver
#
# Both ringway processes run under `valgrind --tool=callgrind` with `--io-driver epoll`: valgrind
# does not implement io_uring's syscalls, so the io_uring driver cannot run under it (the epoll
# driver's user-space path is what is counted; the io_uring driver differs in the runtime's
# submission code only). The tunnel is plaintext (`--insecure-plaintext` on both sides: the
# balancer refuses an agent listener without it unless TLS is configured), so no TLS cost is in
# the figures. One balancer worker, one agent thread.
#
# The driver (python, below) opens CONNS keep-alive connections and sends WARMUP requests, then
# zeroes both processes' counters (`callgrind_control --zero`), sends REQUESTS more over the same
# connections (each connection one request at a time, closed loop), dumps the counters
# (`callgrind_control --dump`) and only then closes. So start-up, the tunnel's hello, the first
# connections, allocator warm-up and shutdown are all outside the count; every thread of each
# process is counted (the balancer's and the agent's timers tick meanwhile: a few hundred
# instructions per 100 ms, noise below 0.1 % at these rates).
#
# Usage: benches/scripts/tunnel_cost.sh  (REQUESTS=20000 WARMUP=2000 CONNS=50 ROUNDS=3 BUILD=1 INSTALL=1)
# Prints "balancer Ir/request", "agent Ir/request" and the requests counted; with CG_KEEP=DIR the
# callgrind dumps are kept there (callgrind_annotate DIR/balancer.out).
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=benches/scripts/lib.sh
. "$ROOT/benches/scripts/lib.sh"
REQUESTS=${REQUESTS:-20000}
WARMUP=${WARMUP:-2000}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
BACKEND_PORT=${BACKEND_PORT:-18581}
USERS_PORT=${USERS_PORT:-18582}
AGENTS_PORT=${AGENTS_PORT:-18583}
BIN=$ROOT/target/release
HOST_HDR=bench.test

command -v valgrind >/dev/null || apt_install valgrind
command -v nginx >/dev/null || apt_install nginx
for tool in valgrind callgrind_control nginx python3 curl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p ringway-balancer -p ringway-agent
fi

WORK=$(mktemp -d /tmp/ringway-tunnel-cost.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
    rm -rf "$WORK"
}
trap cleanup EXIT

nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\\n\"; } }"
nginx -c "$WORK/backend.conf" -p "$WORK" &
PIDS+=($!)

CG=(valgrind --tool=callgrind --dump-instr=no --collect-jumps=no --compress-strings=no --compress-pos=no)

# The dump callgrind_control wrote (NAME.out.1; NAME.out is the one at exit).
dump_of() { ls "$WORK/$1.out".* | sort -V | tail -n 1; }
ir_of() { awk '/^(summary|totals):/ { print $2; exit }' "$(dump_of "$1")"; }

# One round: both processes started under callgrind, warmed up, counted, stopped. Prints
# "BALANCER_IR AGENT_IR REQUESTS".
one_round() { # round
    rm -f "$WORK"/balancer.out* "$WORK"/agent.out*
    RINGWAY_LOG=warn "${CG[@]}" --callgrind-out-file="$WORK/balancer.out" \
        "$BIN/ringway-balancer" --workers 1 --io-driver epoll --insecure-plaintext \
        --listen "127.0.0.1:$USERS_PORT" --agent-listen "127.0.0.1:$AGENTS_PORT" \
        --route "$HOST_HDR" --token bench --admin-listen off \
        > "$WORK/balancer.log" 2>&1 &
    local bal=$!
    RINGWAY_LOG=warn RUST_LOG=warn "${CG[@]}" --callgrind-out-file="$WORK/agent.out" \
        "$BIN/ringway-agent" --balancer "127.0.0.1:$AGENTS_PORT" --insecure-plaintext \
        --token bench --route "$HOST_HDR" --backend "127.0.0.1:$BACKEND_PORT" --workers 1 \
        --io-driver epoll > "$WORK/agent.log" 2>&1 &
    local agent=$!
    PIDS+=("$bal" "$agent")
    # Under valgrind start-up takes seconds: wait up to 60 s for the first 200 through the tunnel.
    local ok=""
    for _ in $(seq 1 600); do
        if [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' -H "Host: $HOST_HDR" "http://127.0.0.1:$USERS_PORT/")" = 200 ]; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || { echo "no 200 through the tunnel" >&2; tail -n 20 "$WORK"/*.log >&2; exit 1; }
    python3 - "$USERS_PORT" "$CONNS" "$WARMUP" "$REQUESTS" "$bal" "$agent" > "$WORK/driver.out" <<'PY'
import asyncio, subprocess, sys

port, conns, warmup, requests = (int(a) for a in sys.argv[1:5])
pids = sys.argv[5:]
REQ = b"GET / HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: tunnel-cost\r\nAccept: */*\r\n\r\n"

async def one(reader, writer):
    writer.write(REQ)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected response: {head[:60]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)

async def run(conns_rw, total):
    per = [total // len(conns_rw) + (1 if i < total % len(conns_rw) else 0) for i in range(len(conns_rw))]
    async def loop(rw, n):
        for _ in range(n):
            await one(*rw)
    await asyncio.gather(*(loop(rw, n) for rw, n in zip(conns_rw, per)))

def control(flag):
    for pid in pids:
        subprocess.run(["callgrind_control", flag, pid], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

async def main():
    rws = [await asyncio.open_connection("127.0.0.1", port) for _ in range(conns)]
    await run(rws, warmup)
    control("--zero")
    await run(rws, requests)
    control("--dump")
    for _, w in rws:
        w.close()
    print(requests)

asyncio.run(main())
PY
    if [ -n "${CG_KEEP:-}" ]; then
        mkdir -p "$CG_KEEP"
        cp "$(dump_of balancer)" "$CG_KEEP/balancer.$1.out"
        cp "$(dump_of agent)" "$CG_KEEP/agent.$1.out"
    fi
    echo "$(ir_of balancer) $(ir_of agent) $(cat "$WORK/driver.out")"
    stop "$bal" "$agent"
    PIDS=("${PIDS[@]:0:1}")
}

echo "method: per round, callgrind counters zeroed after $WARMUP warm-up requests and dumped after $REQUESTS more;"
echo "  $CONNS keep-alive connections, one request at a time each; epoll driver (valgrind has no io_uring);"
echo "  Ir/request varies by ~1 % between rounds with how many requests share a tunnel read: median of $ROUNDS"
: > "$WORK/rounds"
for round in $(seq 1 "$ROUNDS"); do
    one_round "$round" | tee -a "$WORK/rounds" | awk -v r="$round" '{ printf "round %d: balancer %.0f agent %.0f Ir/request\n", r, $1 / $3, $2 / $3 }'
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
B=$(awk '{ printf "%.0f\n", $1 / $3 }' "$WORK/rounds" | median)
A=$(awk '{ printf "%.0f\n", $2 / $3 }' "$WORK/rounds" | median)
echo "balancer Ir/request $B"
echo "agent Ir/request $A"
echo "requests per round $REQUESTS"
