#!/usr/bin/env bash
# Where CPU 0's irq and softirq time goes during a fixed-rate run, per system: side_by_side.sh's
# pinning (entrance on CPU 0; backend, agent and ringway-loadgen on CPU 1), then
# `perf record -C 0` of the softirq and IPI tracepoints, each handler's time summed by the context
# it ran in: the entrance's own threads, the idle CPU, or another task. Prints a table; the CPU 0
# split of side_by_side.sh's report (docs/benchmarks.md) says how much of it the kernel billed to
# no task, this says what it was.
#
# Usage: benches/scripts/cpu0_softirq.sh        env: RATE=10000 DURATION=8 SYSTEMS="ringway-uring ringway-epoll nginx"
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
RATE=${RATE:-10000}
DURATION=${DURATION:-8}
SYSTEMS=${SYSTEMS:-ringway-uring ringway-epoll nginx}
INSTALL=0
HOST_HDR=bench.test
BIN=$PWD/target/release
for tool in perf nginx wrk; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }; done
cargo build --release -q -p ringway-balancer -p ringway-agent -p ringway-loadgen
WORK=$(mktemp -d /tmp/ringway-cpu0-softirq.XXXXXX)
chmod 755 "$WORK"
PIDS=()
trap 'stop "${PIDS[@]+"${PIDS[@]}"}"; rm -rf "$WORK"' EXIT

nginx_conf backend 'server { listen 127.0.0.1:18411; location / { return 200 "hello world\n"; } }'
taskset -c 1 nginx -p "$WORK" -c "$WORK/backend.conf" &
PIDS+=($!)
wait_200 18411

# probe NAME ENTRANCE-PID PORT: one fixed-rate run with perf on CPU 0
probe() {
    local name=$1 pid=$2 port=$3
    taskset -c 1 wrk -t1 -c50 -d1s -H "Host: $HOST_HDR" "http://127.0.0.1:$port/" > /dev/null
    taskset -c 1 "$BIN/ringway-loadgen" -q -c 50 -w 1 -d $((DURATION + 2)) -R "$RATE" --spin-us 0 -H "Host: $HOST_HDR" \
        "http://127.0.0.1:$port/" > /dev/null 2>&1 &
    local lg=$!
    sleep 1.5
    perf record -q -C 0 -o "$WORK/perf.data" \
        -e irq:softirq_entry -e irq:softirq_exit \
        -e irq_vectors:reschedule_entry -e irq_vectors:reschedule_exit \
        -e irq_vectors:call_function_single_entry -e irq_vectors:call_function_single_exit \
        -- sleep "$DURATION" > /dev/null 2>&1
    wait "$lg" || true
    perf script -i "$WORK/perf.data" -F tid,time,event,trace 2> /dev/null > "$WORK/perf.txt"
    local tids=("/proc/$pid/task/"*)
    python3 - "$name" "${tids[*]##*/}" "$RATE" "$DURATION" "$WORK/perf.txt" <<'PY'
import collections, re, sys
name, tids, rate, secs, path = sys.argv[1], set(sys.argv[2].split()), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
reqs = rate * secs
started, spent, count = {}, collections.Counter(), collections.Counter()
for line in open(path):
    m = re.match(r"\s*(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
    if not m:
        continue
    tid, ts, event, rest = m.group(1), float(m.group(2)), m.group(3), m.group(4)
    context = "the entrance" if tid in tids else "idle" if tid == "0" else "another task"
    group, edge = event.split(":")[1].rsplit("_", 1)
    if group == "softirq":
        action = re.search(r"action=(\w+)", rest)
        group = "softirq " + (action.group(1) if action else "?")
    else:
        group = "IPI " + group
    if edge == "entry":
        started[group] = (ts, context)
    elif group in started:
        t0, ctx = started.pop(group)
        spent[(group, ctx)] += ts - t0
        count[(group, ctx)] += 1
print(f"| {name} | {rate} | " + "; ".join(
    f"{g} in {c}: {v / secs * 100:.1f} % of CPU 0, {v * 1e6 / reqs:.2f} µs/req ({count[(g, c)] / reqs:.2f}/req)"
    for (g, c), v in spent.most_common() if v * 1e6 / reqs >= 0.01) + " |")
PY
}

echo "| system | req/s | irq and softirq handlers on CPU 0, by the context they ran in |"
echo "|---|---|---|"
for system in $SYSTEMS; do
    case $system in
        ringway-*)
            driver=${system#ringway-}
            RINGWAY_LOG=warn taskset -c 0 "$BIN/ringway-balancer" --workers 1 --io-driver "$driver" \
                --listen 127.0.0.1:18413 --agent-listen 127.0.0.1:18414 --insecure-plaintext \
                --route "$HOST_HDR" --token bench > /dev/null 2> "$WORK/balancer.err" &
            bal=$!
            RINGWAY_LOG=warn taskset -c 1 "$BIN/ringway-agent" --balancer 127.0.0.1:18414 --insecure-plaintext \
                --token bench --route "$HOST_HDR" --backend 127.0.0.1:18411 --workers 1 --io-driver "$driver" \
                > /dev/null 2> "$WORK/agent.err" &
            agent=$!
            PIDS+=("$bal" "$agent")
            wait_200 18413
            probe "$system" "$bal" 18413
            stop "$agent" "$bal"
            ;;
        nginx)
            nginx_conf proxy 'upstream be { server 127.0.0.1:18411; keepalive 64; }
                server { listen 127.0.0.1:18412; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }'
            taskset -c 0 nginx -p "$WORK" -c "$WORK/proxy.conf" &
            master=$!
            PIDS+=("$master")
            wait_200 18412
            probe nginx "$(nginx_worker "$master")" 18412
            stop "$master"
            ;;
        *) echo "unknown system $system (ringway-DRIVER or nginx)" >&2; exit 2 ;;
    esac
done
