#!/usr/bin/env bash
# ringway-loadgen vs wrk vs oha, and ringway-loadgen's own schedule precision.
#
#   CPU 1: the backend — nginx, 1 worker, `return 200` with a 12-byte body
#   CPU 0: the load generator under test, alone (`taskset -c 0`)
#
# 1. Closed loop, ROUNDS rounds interleaved (wrk, loadgen, oha, floor, wrk, …), DURATION s each,
#    CONNS connections, one thread: req/s and the generator's CPU per request, per round, medians,
#    and the ratios loadgen / wrk and loadgen / oha of the same round. `floor-gen` (benches/src/bin)
#    is the least a closed-loop generator can do (write, read, a share of epoll_wait; no parsing,
#    no clock, no histogram): its CPU per request is the kernel's TCP work on this host, the floor
#    under every generator; each generator's ratio to it is its own overhead.
# 2. Open loop at OHA_RATE req/s: `oha -q RATE --latency-correction` vs `ringway-loadgen -R RATE`
#    (ROUNDS rounds): achieved rate, CPU per request, corrected p50/p99.
# 3. Open loop at LAG_RATES (1k, 10k, 20k, 50k) with each `--spin-us` of SPINS, LAG_ROUNDS rounds of
#    the grid interleaved: send-lag p50/p90/p99/p99.9/max, achieved rate, corrected p50, CPU per
#    request, each the median of the rounds, and every round's p99.
# 4. User-space instructions per request (callgrind; benches/scripts/loadgen_instructions.sh),
#    unless CALLGRIND=0.
# CPU per request = the generator's task-clock (`perf stat`, ns) or, without perf, utime+stime
# (`/usr/bin/time`, 10 ms ticks) over the requests it completed, warm-up included. The busy share
# of each CPU over the run is printed as the noise indicator. Writes OUT (default
# results/loadgen-vs-wrk-oha.md) with the commands and every figure.
#
# Usage: benches/scripts/loadgen_vs_wrk.sh
#   (DURATION=5 ROUNDS=3 CONNS=50 PORT=18480 INSTALL=1 OHA_RATE=10000 CALLGRIND=1
#    LAG_RATES="1000 10000 20000 50000" SPINS="auto 0 30" LAG_ROUNDS=3 STALL_SECONDS=4 OHA=oha)
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
# shellcheck source=benches/scripts/lib.sh
. "$ROOT/benches/scripts/lib.sh"
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
PORT=${PORT:-18480}
INSTALL=${INSTALL:-1}
OHA_RATE=${OHA_RATE:-10000}
CALLGRIND=${CALLGRIND:-1}
LAG_RATES=${LAG_RATES:-"1000 10000 20000 50000"}
SPINS=${SPINS:-"auto 0 30"}
LAG_ROUNDS=${LAG_ROUNDS:-3}
OHA=${OHA:-oha}
OUT=${OUT:-$ROOT/results/loadgen-vs-wrk-oha.md}
URL="http://127.0.0.1:$PORT/"
CLK_TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/ringway-loadgen-vs.XXXXXX)
chmod 755 "$WORK"
NGINX_PID=""
cleanup() {
    [ -n "$NGINX_PID" ] && stop "$NGINX_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || apt_install nginx
[ -x /usr/bin/time ] || apt_install time
for tool in wrk nginx jq /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "$tool is missing and could not be installed" >&2; exit 1; }
done
HAVE_OHA=0
if command -v "$OHA" >/dev/null; then HAVE_OHA=1; else echo "== $OHA not found: oha columns left out (cargo install oha --locked)" >&2; fi
CPU_CLOCK="/usr/bin/time (utime+stime, ${CLK_TCK} Hz ticks)"
if perf stat -x, -e task-clock -o /dev/null true 2>/dev/null; then CPU_CLOCK="perf stat -e task-clock (ns)"; fi

echo "== building ringway-loadgen and floor-gen (release)" >&2
cargo build --release -q -p ringway-loadgen -p ringway-benches -p ringway-tuning --bin ringway-loadgen --bin floor-gen --bin ringway-tune
LOADGEN=$ROOT/target/release/ringway-loadgen
FLOOR=$ROOT/target/release/floor-gen
TUNE=$ROOT/target/release/ringway-tune
# The host's noise on the generator's CPU: share of a spin the vCPU was taken away, and how late
# 1 ms sleeps wake ("stalled % / wake p50 / wake p99", µs).
stall_probe() {
    "$TUNE" --probe-stalls "${STALL_SECONDS:-4}" --probe-cpu 0 --json |
        jq -r '.stall_probe | "\(.stalled_percent * 100 | round / 100) % of the CPU taken (\(.gaps_over_1ms) gaps over 1 ms, longest \(.max_gap_us) µs); 1 ms sleeps woke late p50 \(.wake_late_us.p50) µs, p99 \(.wake_late_us.p99) µs"'
}

nginx_conf nginx "server { listen 127.0.0.1:$PORT reuseport backlog=4096; location / { return 200 \"hello world\\n\"; } }"
taskset -c 1 nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
HOST_HDR=127.0.0.1 wait_200 "$PORT"

# Runs "$@" on CPU 0 (stdout to $WORK/gen.out); sets GEN_CPU (seconds of CPU it used).
run_pinned() {
    if [ "${CPU_CLOCK#perf}" != "$CPU_CLOCK" ]; then
        perf stat -x, -e task-clock -o "$WORK/perf" taskset -c 0 "$@" > "$WORK/gen.out"
        GEN_CPU=$(awk -F, '$3 == "task-clock" { printf "%.6f", $1 / 1000 }' "$WORK/perf")
    else
        /usr/bin/time -f "%U %S" -o "$WORK/time" taskset -c 0 "$@" > "$WORK/gen.out"
        GEN_CPU=$(tail -n1 "$WORK/time" | awk '{ print $1 + $2 }')
    fi
}
per_req() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "?" }'; }
lg_done() { jq '.targets[0].requests.completed + .targets[0].warmup_requests.completed' "$1"; }

# Closed loop: "req/s cpu_us_per_request" of one run.
run_wrk() {
    run_pinned wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL"
    echo "$(awk '/Requests\/sec/ { print $2 }' "$WORK/gen.out") $(per_req "$GEN_CPU" "$(awk '/requests in/ { print $1 }' "$WORK/gen.out")")"
}
run_loadgen_closed() {
    run_pinned "$LOADGEN" "$URL" -c "$CONNS" --threads 1 -d "$DURATION" --quiet --json "$WORK/lg.json"
    echo "$(jq '.targets[0].throughput | . * 10 | round / 10' "$WORK/lg.json") $(per_req "$GEN_CPU" "$(lg_done "$WORK/lg.json")")"
}
run_floor() {
    run_pinned "$FLOOR" "127.0.0.1:$PORT" --host 127.0.0.1 --conns "$CONNS" --duration "$DURATION"
    echo "$(awk '$1 == "req/s" { print $2 }' "$WORK/gen.out") $(per_req "$GEN_CPU" "$(awk '$1 == "requests" { print $2 }' "$WORK/gen.out")")"
}
# oha's `--output-format json` (its documented schema): summary.requestsPerSec,
# statusCodeDistribution (responses per status), latencyPercentiles.p50/.p99 (seconds).
oha_done() { jq '[.statusCodeDistribution[]] | add // 0' "$WORK/gen.out"; }
run_oha_closed() {
    run_pinned "$OHA" -z "${DURATION}s" -c "$CONNS" --no-tui --output-format json "$URL"
    echo "$(jq '.summary.requestsPerSec | . * 10 | round / 10' "$WORK/gen.out") $(per_req "$GEN_CPU" "$(oha_done)")"
}
# Open loop at OHA_RATE: "achieved cpu_us_per_request p50_us p99_us".
run_oha_rate() {
    run_pinned "$OHA" -z "${DURATION}s" -c "$CONNS" -q "$OHA_RATE" --latency-correction --no-tui \
        --output-format json "$URL"
    echo "$(jq '.summary.requestsPerSec | round' "$WORK/gen.out") $(per_req "$GEN_CPU" "$(oha_done)") $(jq '.latencyPercentiles | "\(.p50 * 1e6 | round) \(.p99 * 1e6 | round)"' -r "$WORK/gen.out")"
}
run_loadgen_rate() {
    run_pinned "$LOADGEN" "$URL" -R "$OHA_RATE" -c "$CONNS" --threads 1 -d "$DURATION" --quiet --json "$WORK/lg.json"
    jq -r --arg cpu "$(per_req "$GEN_CPU" "$(lg_done "$WORK/lg.json")")" '.targets[0] | [ (.achieved_rate | round), $cpu,
        (.latency_us.corrected.percentiles[] | select(.percentile == 50 or .percentile == 99) | .value) ] | join(" ")' "$WORK/lg.json"
}
# Open loop: "achieved p50 p90 p99 p99.9 max corrected_p50 cpu_us_per_request" (µs).
run_lag() { # rate spin_us
    run_pinned "$LOADGEN" "$URL" -R "$1" -c "$CONNS" --threads 1 -w 1 -d "$DURATION" \
        --spin-us "$2" --quiet --json "$WORK/lag.json"
    jq -r --arg cpu "$(per_req "$GEN_CPU" "$(lg_done "$WORK/lag.json")")" '.targets[0] | [ (.achieved_rate | round),
        .send_lag_us.p50, .send_lag_us.p90, .send_lag_us.p99, .send_lag_us.p99_9, .send_lag_us.max,
        (.latency_us.corrected.percentiles[] | select(.percentile == 50) | .value), $cpu ] | join(" ")' \
        "$WORK/lag.json"
}

echo "== stall probe (before)" >&2
STALLS_BEFORE=$(stall_probe)
B0=$(cpu_busy 0); C0=$(cpu_busy 1); T0=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
declare -a WRK LG OHC OHR LGR FL
for round in $(seq 1 "$ROUNDS"); do
    WRK[round]=$(run_wrk)
    LG[round]=$(run_loadgen_closed)
    OHC[round]="? ?"
    [ "$HAVE_OHA" = 1 ] && OHC[round]=$(run_oha_closed)
    FL[round]=$(run_floor)
    echo "round $round: wrk ${WRK[round]}  loadgen ${LG[round]}  oha ${OHC[round]}  floor ${FL[round]}  (req/s cpu_us/req)" >&2
done
for round in $(seq 1 "$ROUNDS"); do
    OHR[round]="? ? ? ?"
    [ "$HAVE_OHA" = 1 ] && OHR[round]=$(run_oha_rate)
    LGR[round]=$(run_loadgen_rate)
    echo "open loop $OHA_RATE req/s, round $round: oha ${OHR[round]}  loadgen ${LGR[round]}" >&2
done
# LAG_ROUNDS rounds of the whole grid, interleaved (round-major), so that a host stall falls on
# one cell's round and the median of the rounds reads past it.
declare -A LAG
for lround in $(seq 1 "$LAG_ROUNDS"); do
    for rate in $LAG_RATES; do
        for spin in $SPINS; do
            LAG[$rate,$spin,$lround]=$(run_lag "$rate" "$spin")
            echo "open loop $rate req/s, spin $spin µs, round $lround: ${LAG[$rate,$spin,$lround]}" >&2
        done
    done
done
B1=$(cpu_busy 0); C1=$(cpu_busy 1); T1=$(date +%s)
echo "== stall probe (after)" >&2
STALLS_AFTER=$(stall_probe)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
INSTR=""
if [ "$CALLGRIND" = 1 ] && command -v valgrind >/dev/null; then
    echo "== callgrind: instructions per request" >&2
    INSTR=$(PORT=$((PORT + 1)) CONNS=$CONNS "$ROOT/benches/scripts/loadgen_instructions.sh" "$LOADGEN" || true)
fi
# Busy share of each CPU over the whole run (the generator and nginx included).
busy_pct() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (y[1] - x[1]) / (t > 0 ? t : 1) * 100 }'; }

median() { sort -g | awk '$1 != "?" { a[++n] = $1 } END { if (n) print a[int((n + 1) / 2)]; else print "?" }'; }
col() { # column array-values… → one value per line
    local c=$1; shift
    printf '%s\n' "$@" | awk -v c="$c" '{ print $c }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "?" && b != "?" && b > 0) printf "%.2f", a / b; else print "?" }'; }
R_RPS_W=(); R_CPU_W=(); R_RPS_O=(); R_CPU_O=(); R_CPU_OR=(); F_LG=(); F_WRK=(); F_OHA=(); F_RPS=()
for round in $(seq 1 "$ROUNDS"); do
    R_RPS_W+=("$(ratio "$(col 1 "${LG[round]}")" "$(col 1 "${WRK[round]}")")")
    R_CPU_W+=("$(ratio "$(col 2 "${LG[round]}")" "$(col 2 "${WRK[round]}")")")
    R_RPS_O+=("$(ratio "$(col 1 "${LG[round]}")" "$(col 1 "${OHC[round]}")")")
    R_CPU_O+=("$(ratio "$(col 2 "${LG[round]}")" "$(col 2 "${OHC[round]}")")")
    R_CPU_OR+=("$(ratio "$(col 2 "${LGR[round]}")" "$(col 2 "${OHR[round]}")")")
    F_LG+=("$(ratio "$(col 2 "${LG[round]}")" "$(col 2 "${FL[round]}")")")
    F_WRK+=("$(ratio "$(col 2 "${WRK[round]}")" "$(col 2 "${FL[round]}")")")
    F_OHA+=("$(ratio "$(col 2 "${OHC[round]}")" "$(col 2 "${FL[round]}")")")
    F_RPS+=("$(ratio "$(col 1 "${FL[round]}")" "$(col 1 "${WRK[round]}")")")
done
med() { printf '%s\n' "$@" | median; }

{
    echo "# ringway-loadgen vs wrk vs oha: closed-loop speed, CPU per request, schedule precision"
    echo
    echo "Generated by \`benches/scripts/loadgen_vs_wrk.sh\` (DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS OHA_RATE=$OHA_RATE LAG_ROUNDS=$LAG_ROUNDS) on $(date -u +%Y-%m-%dT%H:%MZ), $((T1 - T0)) s."
    echo
    echo "- machine: $(nproc) CPUs, kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "- **shared**: load average $LOAD_BEFORE before, $LOAD_AFTER after; CPU 0 (generator) was"
    echo "  $(busy_pct "$B0" "$B1") % busy and CPU 1 (nginx) $(busy_pct "$C0" "$C1") % busy over the run, everything included."
    echo "  Compare figures of the same round (the ratios), not absolute numbers across runs."
    echo "- **host noise on CPU 0** (\`ringway-tune --probe-stalls ${STALL_SECONDS:-4} --probe-cpu 0\`, half spinning, half 1 ms sleeps):"
    echo "  before: $STALLS_BEFORE;"
    echo "  after: $STALLS_AFTER."
    echo "  A vCPU taken away or woken late shows in every latency and send-lag figure below."
    echo "- backend: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), 1 worker, \`return 200\` (12-byte body), \`taskset -c 1\`"
    echo "- CPU per request: $CPU_CLOCK of the generator process / requests it completed"
    echo "- generators on CPU 0 (\`taskset -c 0\`), release build, rounds interleaved:"
    echo "  - \`wrk -t1 -c$CONNS -d${DURATION}s $URL\` ($(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'))"
    echo "  - \`ringway-loadgen $URL -c $CONNS --threads 1 -d $DURATION\` (closed loop)"
    if [ "$HAVE_OHA" = 1 ]; then
        echo "  - \`oha -z ${DURATION}s -c $CONNS --no-tui --output-format json $URL\` ($("$OHA" --version | head -n1))"
        echo "  - \`oha -z ${DURATION}s -c $CONNS -q $OHA_RATE --latency-correction --no-tui --output-format json $URL\` vs \`ringway-loadgen $URL -R $OHA_RATE -c $CONNS --threads 1 -d $DURATION\`"
    else
        echo "  - oha: not installed, not run"
    fi
    echo "  - \`floor-gen 127.0.0.1:$PORT --host 127.0.0.1 --conns $CONNS --duration $DURATION\` (the floor: benches/src/bin/floor-gen.rs)"
    echo "  - \`ringway-loadgen $URL -R RATE -c $CONNS --threads 1 -w 1 -d $DURATION --spin-us N\` (send-lag)"
    echo
    echo "## Closed loop: req/s and generator CPU µs per request"
    echo
    echo "| round | wrk req/s | loadgen req/s | oha req/s | loadgen / wrk | loadgen / oha | wrk CPU µs/req | loadgen CPU µs/req | oha CPU µs/req | loadgen / wrk CPU | loadgen / oha CPU |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for round in $(seq 1 "$ROUNDS"); do
        i=$((round - 1))
        echo "| $round | $(col 1 "${WRK[round]}") | $(col 1 "${LG[round]}") | $(col 1 "${OHC[round]}") | ${R_RPS_W[i]} | ${R_RPS_O[i]} | $(col 2 "${WRK[round]}") | $(col 2 "${LG[round]}") | $(col 2 "${OHC[round]}") | ${R_CPU_W[i]} | ${R_CPU_O[i]} |"
    done
    echo "| **median** | $(col 1 "${WRK[@]}" | median) | $(col 1 "${LG[@]}" | median) | $(col 1 "${OHC[@]}" | median) | **$(med "${R_RPS_W[@]}")** | **$(med "${R_RPS_O[@]}")** | $(col 2 "${WRK[@]}" | median) | $(col 2 "${LG[@]}" | median) | $(col 2 "${OHC[@]}" | median) | **$(med "${R_CPU_W[@]}")** | **$(med "${R_CPU_O[@]}")** |"
    echo
    echo "Ratios are per round (same minute, same machine state); the median ratio is the median of those."
    echo
    echo "## Closed loop against the floor"
    echo
    echo "floor-gen writes, reads and counts bytes, nothing else (three system calls a request, no"
    echo "clock, no parsing, no histogram): its CPU per request is what the kernel's TCP work costs a"
    echo "generator on this host, whoever the generator is. On loopback that includes the receive path"
    echo "of the server's side, which runs in the sender's context. A generator's ratio to it is its own"
    echo "overhead; a target below the floor (generator CPU / wrk's under floor / wrk) no generator meets."
    echo
    echo "| round | floor req/s | floor CPU µs/req | floor / wrk req/s | wrk / floor CPU | loadgen / floor CPU | oha / floor CPU | floor / wrk CPU |"
    echo "|---|---|---|---|---|---|---|---|"
    for round in $(seq 1 "$ROUNDS"); do
        i=$((round - 1))
        echo "| $round | $(col 1 "${FL[round]}") | $(col 2 "${FL[round]}") | ${F_RPS[i]} | ${F_WRK[i]} | ${F_LG[i]} | ${F_OHA[i]} | $(ratio "$(col 2 "${FL[round]}")" "$(col 2 "${WRK[round]}")") |"
    done
    F_W=(); for round in $(seq 1 "$ROUNDS"); do F_W+=("$(ratio "$(col 2 "${FL[round]}")" "$(col 2 "${WRK[round]}")")"); done
    echo "| **median** | $(col 1 "${FL[@]}" | median) | $(col 2 "${FL[@]}" | median) | **$(med "${F_RPS[@]}")** | **$(med "${F_WRK[@]}")** | **$(med "${F_LG[@]}")** | **$(med "${F_OHA[@]}")** | **$(med "${F_W[@]}")** |"
    echo
    echo "## Open loop at $OHA_RATE req/s: oha (latency-corrected) vs ringway-loadgen"
    echo
    echo "| round | oha achieved | loadgen achieved | oha CPU µs/req | loadgen CPU µs/req | loadgen / oha CPU | oha p50 / p99 µs | loadgen corrected p50 / p99 µs |"
    echo "|---|---|---|---|---|---|---|---|"
    for round in $(seq 1 "$ROUNDS"); do
        o=${OHR[round]}; l=${LGR[round]}
        echo "| $round | $(col 1 "$o") | $(col 1 "$l") | $(col 2 "$o") | $(col 2 "$l") | ${R_CPU_OR[round - 1]} | $(col 3 "$o") / $(col 4 "$o") | $(col 3 "$l") / $(col 4 "$l") |"
    done
    echo "| **median** | | | $(col 2 "${OHR[@]}" | median) | $(col 2 "${LGR[@]}" | median) | **$(med "${R_CPU_OR[@]}")** | | |"
    echo
    echo "## Open loop: send-lag (written − intended start), µs"
    echo
    echo "Each cell is the median over $LAG_ROUNDS rounds of the grid (interleaved: every cell once, then"
    echo "again); \"p99 of the rounds\" lists each round's p99, lowest first, so a round that a host stall"
    echo "fell on shows as one outlier."
    echo
    echo "| rate asked | --spin-us | achieved req/s | p50 | p90 | p99 | p99.9 | max | corrected p50 | generator CPU µs/req | p99 of the rounds |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for rate in $LAG_RATES; do
        for spin in $SPINS; do
            cells=()
            for lround in $(seq 1 "$LAG_ROUNDS"); do cells+=("${LAG[$rate,$spin,$lround]}"); done
            row=""
            for c in 1 2 3 4 5 6 7 8; do row="$row | $(col "$c" "${cells[@]}" | median)"; done
            echo "| $rate | $spin$row | $(col 4 "${cells[@]}" | sort -g | paste -sd, - | sed 's/,/, /g') |"
        done
    done
    echo
    if [ -n "$INSTR" ]; then
        echo "## User-space instructions per request (callgrind, closed loop, -c $CONNS)"
        echo
        echo "\`benches/scripts/loadgen_instructions.sh\`: (Ir of a 6 s run − Ir of a 2 s run) / (their"
        echo "requests' difference), so start-up cancels out; a count, repeatable under noise; the kernel's"
        echo "share (TCP) is not in it."
        echo
        echo "| generator | instructions / request | requests (6 s under valgrind) |"
        echo "|---|---|---|"
        echo "$INSTR" | awk '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
        echo
    fi
} > "$OUT"
cat "$OUT"
