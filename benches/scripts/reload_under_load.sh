#!/usr/bin/env bash
# Reload under load: ringway in classic mode serves a fixed open-loop rate (ringway-loadgen) while
# its configuration is reloaded (SIGHUP) to move a route to other static backends and back. From
# loadgen's per-interval figures (coordinated-omission-corrected p99 per INTERVAL seconds): the
# p99 of the interval in which each reload happened next to the interval before it, and the
# failed requests (there must be none). Writes results/archive/reload-under-load.md (OUT=…).
#
#   CPU 0: ringway-balancer --workers 1 (classic mode)
#   CPU 1: two nginx backends (`return 200`), ringway-loadgen
#
# Usage: benches/scripts/reload_under_load.sh
#   env: RATE=5000 DURATION=24 CONNS=50 INTERVAL=1 RELOADS=4 DRIVER=auto OUT=… INSTALL=1
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.."
ROOT=$PWD
RATE=${RATE:-5000}
DURATION=${DURATION:-24}
CONNS=${CONNS:-50}
INTERVAL=${INTERVAL:-1}
RELOADS=${RELOADS:-4}
DRIVER=${DRIVER:-auto}
INSTALL=${INSTALL:-1}
OUT=${OUT:-$ROOT/results/archive/reload-under-load.md}
BACKEND_A=${BACKEND_A:-18411}
BACKEND_B=${BACKEND_B:-18412}
USERS=${USERS:-18413}
HOST_HDR="bench.test"
CLK_TCK=$(getconf CLK_TCK)
COMMAND="RATE=$RATE DURATION=$DURATION CONNS=$CONNS INTERVAL=$INTERVAL RELOADS=$RELOADS DRIVER=$DRIVER ${0#"$ROOT"/}"

WORK=$(mktemp -d /tmp/ringway-reload.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v nginx >/dev/null || apt_install nginx
for tool in nginx taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
echo "== building release binaries" >&2
cargo build --release -q -p ringway-balancer -p ringway-loadgen
BIN=$ROOT/target/release

nginx_conf backends "server { listen 127.0.0.1:$BACKEND_A; location / { return 200 \"a\\n\"; } }
    server { listen 127.0.0.1:$BACKEND_B; location / { return 200 \"b\\n\"; } }"
taskset -c 1 nginx -p "$WORK" -c "$WORK/backends.conf" &
PIDS+=("$!")

config() { # backend port…
    local list=""
    for p in "$@"; do list="$list\"127.0.0.1:$p\", "; done
    cat > "$WORK/ringway.toml" <<TOML
[listen]
users = "127.0.0.1:$USERS"
agents = "127.0.0.1:0"
admin = "off"
[agents]
insecure_plaintext = true
[runtime]
workers = 1
io_driver = "$DRIVER"
pin = false
[[route]]
pattern = "$HOST_HDR"
backends = [${list%, }]
TOML
}
config "$BACKEND_A"
RINGWAY_LOG=warn,ringway_balancer::reload=info taskset -c 0 "$BIN/ringway-balancer" --config "$WORK/ringway.toml" \
    > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
BAL=$!
PIDS+=("$BAL")
wait_200 "$BACKEND_A"
wait_200 "$USERS"

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load: $RATE req/s for ${DURATION}s; $RELOADS reloads" >&2
taskset -c 1 "$BIN/ringway-loadgen" -q -c "$CONNS" -w 2 -d "$DURATION" -R "$RATE" \
    --interval "$INTERVAL" -H "Host: $HOST_HDR" --json "$WORK/lg.json" "http://127.0.0.1:$USERS/" \
    > "$WORK/lg.txt" 2>&1 &
LG=$!
: > "$WORK/reloads.txt"
# Reloads spread over the measured part (after the 2 s warm-up), alternating the backends.
GAP=$(awk -v d="$DURATION" -v n="$RELOADS" 'BEGIN { printf "%.2f", d / (n + 1) }')
sleep 2
for i in $(seq 1 "$RELOADS"); do
    sleep "$GAP"
    if [ $((i % 2)) = 1 ]; then config "$BACKEND_B"; else config "$BACKEND_A" "$BACKEND_B"; fi
    date +%s%3N >> "$WORK/reloads.txt"
    kill -HUP "$BAL"
done
wait "$LG" || { echo "loadgen failed:" >&2; cat "$WORK/lg.txt" >&2; exit 1; }
RELOADED_OK=$(grep -c "configuration reloaded" "$WORK/balancer.err" || true)

export COMMAND RATE DURATION CONNS INTERVAL RELOADED_OK LOAD_BEFORE
export CODE="commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
export MACHINE="$(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
export LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK/lg.json" "$WORK/reloads.txt" > "$OUT" <<'PY'
import json, os, sys
doc = json.load(open(sys.argv[1]))
reloads = [int(l) for l in open(sys.argv[2]) if l.strip()]
t = doc["targets"][0]
iv = [i for i in t["intervals"] if not i["warmup"]]
def span(i):
    start = i["round_start_unix_ms"] + i["start_us"] / 1000
    return start, start + i["length_us"] / 1000
e = os.environ
out = []
w = out.append
w("# Reload under load (classic mode)")
w("")
w(f"Command: `{e['COMMAND']}` ({e['CODE']}). Machine: {e['MACHINE']}; load average before {e['LOAD_BEFORE']}, at the end {e['LOAD']}")
w("(other processes on the two CPUs show in the load average: the figures of a busy machine are noisy).")
w("")
w(f"ringway-balancer (1 worker, CPU 0) in classic mode serves `{e['RATE']}` req/s open loop from")
w(f"ringway-loadgen ({e['CONNS']} connections, CPU 1) for {e['DURATION']} s; SIGHUP reloads alternate the route between")
w("backend b alone and backends a + b (two nginx `return 200` on CPU 1). p99 is corrected for")
w(f"coordinated omission, per {e['INTERVAL']} s interval.")
w("")
req = t["requests"]
w(f"Requests: {req['completed']} completed, **{req['error_total']} failed**; reloads applied: {e['RELOADED_OK']} of {len(reloads)}.")
w("")
w("| reload | p99 in the interval before, ms | p99 in the reload's interval, ms | ratio | p99 in the interval after, ms |")
w("|---|---|---|---|---|")
for n, at in enumerate(reloads, 1):
    k = next((j for j, i in enumerate(iv) if span(i)[0] <= at < span(i)[1]), None)
    if k is None or k == 0:
        w(f"| {n} | — | — | — | — |")
        continue
    before, during = iv[k - 1]["p99_us"] / 1000, iv[k]["p99_us"] / 1000
    after = iv[k + 1]["p99_us"] / 1000 if k + 1 < len(iv) else float("nan")
    ratio = during / before if before else float("nan")
    w(f"| {n} | {before:.2f} | {during:.2f} | {ratio:.2f} | {after:.2f} |")
w("")
w("Every interval: " + ", ".join(f"{i['p99_us'] / 1000:.2f}" for i in iv) + " (p99, ms).")
print("\n".join(out))
PY
echo "== wrote $OUT" >&2
cat "$OUT"
