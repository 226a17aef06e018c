#!/usr/bin/env bash
# Idle keep-alive connection memory: what one open, idle client connection costs a reverse proxy.
#
# One nginx `return 200` backend; in front of it, one after the other in the same run:
#   - nginx reverse proxy (1 worker, upstream keepalive),
#   - HAProxy (nbthread 1, http-reuse always),
#   - ringway: ringway-balancer --workers 1 + ringway-agent --workers 1 in front of the same backend.
# For each proxy: VmRSS of the process that holds the client connections (the nginx worker, not the
# master; the HAProxy process; the balancer process), then `idle-clients` (benches/src/bin) opens
# N keep-alive connections that each send one GET and read the whole response, then stay open and
# idle; once all are answered, VmRSS again. Reported: (after − before) / N bytes per connection, and
# the ratio to nginx. Loopback only; everything started here is stopped on exit, failures included.
#
# Usage: benches/scripts/idle_conns.sh [--conns N] [--out FILE]
#   --conns N    connections per proxy (default 5000; env CONNS)
#   --out FILE   also write the table, with the command line, date, commit and versions, to FILE
#   env: INSTALL=1 (0: never apt-get install nginx/haproxy), BUILD=1 (0: use target/release as is),
#        SYSTEMS="nginx haproxy ringway" (nginx first: the baseline), SETTLE=2 (seconds before the
#        second RSS reading), BASE_PORT=18500 (ports BASE+1 … BASE+5)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.."
ROOT=$PWD
COMMAND="${0#"$ROOT"/} $*"
CONNS=${CONNS:-5000}
OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --conns) CONNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
INSTALL=${INSTALL:-1}
BUILD=${BUILD:-1}
SYSTEMS=${SYSTEMS:-nginx haproxy ringway}
SETTLE=${SETTLE:-2}
BASE_PORT=${BASE_PORT:-18500}
BACKEND_PORT=$((BASE_PORT + 1))
NGINX_PORT=$((BASE_PORT + 2))
HAPROXY_PORT=$((BASE_PORT + 3))
RW_USERS=$((BASE_PORT + 4))
RW_AGENTS=$((BASE_PORT + 5))
HOST_HDR=bench.test

WORK=$(mktemp -d /tmp/ringway-idle-conns.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do
        pkill -TERM -P "$p" 2>/dev/null || true # an nginx master's workers, should the master be gone
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

missing=()
for tool in nginx haproxy; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ ${#missing[@]} -gt 0 ] && apt_install "${missing[@]}"
for tool in nginx curl ss; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx curl iproute2)" >&2; exit 1; }
done
if [[ " $SYSTEMS " == *" haproxy "* ]] && ! command -v haproxy >/dev/null; then
    echo "== haproxy is not installed (apt-get install haproxy): skipping it" >&2
    SYSTEMS=${SYSTEMS/haproxy/}
fi

# File descriptors: a proxy holds a client and (briefly) an upstream socket per connection, and
# HAProxy wants two per maxconn (CONNS + 1000) to start.
NOFILE=$((2 * CONNS + 4000))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$NOFILE" ]; then
    ulimit -Hn "$NOFILE" 2>/dev/null || { echo "the open-file hard limit $(ulimit -Hn) is below $NOFILE: lower --conns or raise it" >&2; exit 1; }
fi
ulimit -n "$NOFILE"

RINGWAY_CODE="commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
DIRTY=$(git status --porcelain -- balancer agent core tuning benches Cargo.toml Cargo.lock 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ')
[ -n "$DIRTY" ] && RINGWAY_CODE="$RINGWAY_CODE + uncommitted changes in ${DIRTY% }"
BIN=$ROOT/target/release
if [ "$BUILD" = 1 ]; then
    echo "== building release binaries (ringway-balancer, ringway-agent, idle-clients)" >&2
    cargo build --release -q -p ringway-balancer -p ringway-agent -p ringway-benches --bin ringway-balancer \
        --bin ringway-agent --bin idle-clients
fi
for b in ringway-balancer ringway-agent idle-clients; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b (run without BUILD=0)" >&2; exit 1; }
done

# ---- helpers ----





# measure KEY LABEL PORT PID [FAR_PID]: one row of $WORK/rows.tsv. PID holds the client connections;
# FAR_PID (ringway's agent) is reported in the notes.
measure() {
    local key=$1 label=$2 port=$3 pid=$4 far=${5:-}
    if ! wait_200 "$port"; then
        tail -n 5 "$WORK"/*.err "$WORK"/*.out >&2 2>/dev/null || true
        exit 1
    fi
    sleep 1
    local before far_before=""
    before=$(rss_kib "$pid")
    [ -n "$far" ] && far_before=$(rss_kib "$far")
    "$BIN/idle-clients" "127.0.0.1:$port" --conns "$CONNS" --host "$HOST_HDR" \
        > "$WORK/clients.out" 2> "$WORK/clients.err" &
    local client=$!
    PIDS+=("$client")
    local deadline=$((SECONDS + 300))
    until grep -qs '^ready' "$WORK/clients.out"; do
        if ! kill -0 "$client" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
            echo "idle-clients did not get ready against $key:" >&2
            cat "$WORK/clients.err" >&2
            exit 1
        fi
        sleep 0.2
    done
    sleep "$SETTLE"
    local after ok failed open far_after=""
    after=$(rss_kib "$pid")
    [ -n "$far" ] && far_after=$(rss_kib "$far")
    read -r _ ok failed < "$WORK/clients.out"
    # Server-side sockets of the proxy port still established: every idle connection is still open.
    open=$(ss -Htn state established "( sport = :$port )" | wc -l)
    stop "$client"
    local per notes=""
    per=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "?" }')
    [ "$failed" != 0 ] && notes="$failed connections failed: $(head -n 1 "$WORK/clients.err"); "
    [ -n "$far" ] && notes="${notes}agent RSS $far_before → $far_after KiB"
    echo "   $label: RSS $before → $after KiB, $ok answered, $open open: $per B/conn ${notes:+($notes)}" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$label" "$before" "$after" "$ok" "$open" "$per" "$notes" >> "$WORK/rows.tsv"
}

# ---- the systems ----
run_nginx() {
    echo "== nginx $NGINX_VERSION reverse proxy (port $NGINX_PORT)" >&2
    nginx_conf proxy "upstream be { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
    server { listen 127.0.0.1:$NGINX_PORT; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
    nginx -p "$WORK" -c "$WORK/proxy.conf" &
    local master=$!
    PIDS+=("$master")
    measure nginx "nginx $NGINX_VERSION (1 worker, upstream keepalive)" "$NGINX_PORT" "$(nginx_worker "$master")"
    stop "$master"
}

run_haproxy() {
    echo "== HAProxy $HAPROXY_VERSION (port $HAPROXY_PORT)" >&2
    cat > "$WORK/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn $((CONNS + 1000))
    pidfile $WORK/haproxy.pid
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
frontend users
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend origin
backend origin
    http-reuse always
    server b1 127.0.0.1:$BACKEND_PORT
CFG
    haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    measure haproxy "HAProxy $HAPROXY_VERSION (nbthread 1, http-reuse always)" "$HAPROXY_PORT" "$pid"
    stop "$pid"
}

run_ringway() {
    echo "== ringway (balancer port $RW_USERS, agents $RW_AGENTS)" >&2
    RINGWAY_LOG=warn "$BIN/ringway-balancer" --workers 1 --no-pin \
        --listen "127.0.0.1:$RW_USERS" --agent-listen "127.0.0.1:$RW_AGENTS" --insecure-plaintext \
        --route "$HOST_HDR" --token bench --idle-timeout 600s \
        --max-connections-per-worker $((CONNS + 1000)) \
        > "$WORK/balancer.out" 2> "$WORK/balancer.err" &
    local balancer=$!
    PIDS+=("$balancer")
    RINGWAY_LOG=warn "$BIN/ringway-agent" --balancer "127.0.0.1:$RW_AGENTS" --insecure-plaintext --token bench \
        --route "$HOST_HDR" --backend "127.0.0.1:$BACKEND_PORT" --workers 1 \
        > /dev/null 2> "$WORK/agent.err" &
    local agent=$!
    PIDS+=("$agent")
    measure ringway "ringway (balancer --workers 1, agent --workers 1)" \
        "$RW_USERS" "$balancer" "$agent"
    stop "$agent" "$balancer"
}

NGINX_VERSION=$(nginx -v 2>&1 | sed 's/.*\///')
HAPROXY_VERSION=""
command -v haproxy >/dev/null && HAPROXY_VERSION=$(haproxy -v 2>/dev/null | awk 'NR == 1 { sub(/-.*/, "", $3); print $3 }' || true)

echo "== backend: nginx return 200 (port $BACKEND_PORT)" >&2
nginx_conf backend "server { listen 127.0.0.1:$BACKEND_PORT; location / { return 200 \"hello world\\n\"; } }"
nginx -p "$WORK" -c "$WORK/backend.conf" &
PIDS+=("$!")
wait_200 "$BACKEND_PORT"

: > "$WORK/rows.tsv"
for system in $SYSTEMS; do
    case $system in
        nginx) run_nginx ;;
        haproxy) run_haproxy ;;
        ringway) run_ringway ;;
        *) echo "unknown system $system" >&2; exit 2 ;;
    esac
done

# ---- report ----
table() {
    echo "| proxy | RSS before (KiB) | RSS after (KiB) | answered | still open | bytes / idle conn | vs nginx | notes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    awk -F'\t' '
        $1 == "nginx" { base = $7 }
        { rows[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                split(rows[i], f, "\t")
                ratio = (base > 0 && f[7] != "?") ? sprintf("%.1f×", f[7] / base) : "—"
                printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", f[2], f[3], f[4], f[5], f[6], f[7], ratio, f[8]
            }
        }' "$WORK/rows.tsv"
}
table > "$WORK/table.md"
cat "$WORK/table.md"
if [ -n "$OUT" ]; then
    mkdir -p "$(dirname "$OUT")"
    {
        echo "# Idle keep-alive connections: memory per connection"
        echo
        echo "- command: \`$COMMAND\`"
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "- ringway: $RINGWAY_CODE (release build)"
        echo "- versions: nginx $NGINX_VERSION${HAPROXY_VERSION:+, HAProxy $HAPROXY_VERSION}, $(rustc -V 2>/dev/null || echo 'rustc ?')"
        echo "- machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r), load before $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "- connections per proxy: $CONNS, each: connect, one \`GET /\` (12-byte body from an nginx \`return 200\` backend), whole response read, then idle"
        echo
        cat "$WORK/table.md"
        echo
        echo "RSS is VmRSS of the process that holds the client connections (nginx: the worker; ringway: the"
        echo "balancer), read after a warm-up request and again ${SETTLE} s after the last of the $CONNS"
        echo "connections was answered; bytes / idle conn = (after − before) × 1024 / answered. \"still"
        echo "open\" counts established server-side sockets on the proxy port at the second reading."
        echo "Produced by \`benches/scripts/idle_conns.sh\` (docs/benchmarks.md)."
    } > "$OUT"
    echo "== wrote $OUT" >&2
fi
