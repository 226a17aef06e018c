#!/usr/bin/env bash
# Scale-out: several ringway balancers behind an existing L4 front, on this machine, in network
# namespaces. Nothing is shared between the balancers: every agent dials every balancer, found
# through one DNS name with several addresses (a hosts file the agents' namespaces mount as
# /etc/hosts; agents re-resolve it every --resolve-interval).
#
#   client ──┐                       ┌── b1  10.77.11.2 ┐  VIP 10.77.0.80 on each balancer's lo;
#            │   front (router ns)   ├── b2  10.77.12.2 │  users :8080, agents :7000,
#            └── VIP: ECMP route ────┼── b3  10.77.13.2 │  admin :9180 on the host address
#                L4 hash (policy 1)  └── b4  10.77.14.2 ┘  (b4 starts later)
#                                    a1 10.77.21.2, a2 10.77.22.2: ringway-agent + hello backend
#
# The front is the kernel's multipath route (`ip route replace VIP nexthop via … nexthop via …`,
# fib_multipath_hash_policy=1). What BGP (with BFD or a health check) does for an anycast VIP, a
# checker loop here does for the route: every CHECK_MS it asks each balancer named in the hosts
# file for `Host: health.test` (a route the agents serve, so a pass means "this balancer has
# agents"), and puts the passing ones in the route's nexthops. DNS is the one list of balancers.
#
# Under open-loop load from the client (ringway-loadgen, fixed rate, new connection per request so
# that flows follow the front's hash), the script kills b2 (SIGKILL), starts it again, then adds
# b4 by starting it and appending it to the hosts file. It prints (and with --out DIR writes to
# DIR/summary) the figures: failed requests around the kill and the recovery time, time until the
# agents are back on b2 and b2 serves again, time until b4 has the agents and traffic.
#
# Usage: benches/scripts/scale_out.sh [--quick] [--bin-dir DIR] [--out DIR]
#   --quick     short phases and a low rate (the CI test, benches/tests/scale_out.rs)
#   --bin-dir   where ringway-balancer, ringway-agent, ringway-demo, ringway-loadgen and
#               scale-out-report are (default: build them with cargo build --release)
#   env: RATE DURATION CONNS CHECK_MS RESOLVE BAL_WORKERS KEEPALIVE (defaults below)
# Needs root, iproute2 (ip netns, veth) and curl. Every namespace and process it made is removed
# on exit, failure included.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
QUICK=0
BIN=""
OUTDIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --bin-dir) BIN=$2; shift ;;
        --out) OUTDIR=$2; shift ;;
        *) echo "scale_out.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    RATE=${RATE:-200} DURATION=${DURATION:-22} KILL_AT=${KILL_AT:-3} DOWN=${DOWN:-5}
else
    RATE=${RATE:-1000} DURATION=${DURATION:-40} KILL_AT=${KILL_AT:-6} DOWN=${DOWN:-6}
fi
CONNS=${CONNS:-16}
# KEEPALIVE=1: the load's connections stay open (then a flow the front moves is reset).
CLOSE=(--close)
if [ "${KEEPALIVE:-0}" = 1 ]; then CLOSE=(); fi
CHECK_MS=${CHECK_MS:-200}
RESOLVE=${RESOLVE:-1s}
BAL_WORKERS=${BAL_WORKERS:-2}
TOKEN=scale-out-token
VIP=10.77.0.80
LB_NAME=lb.ringway.test
APP=app.test
HEALTH=health.test

[ "$(id -u)" = 0 ] || { echo "scale_out.sh: needs root (network namespaces)" >&2; exit 3; }
for tool in ip curl; do
    command -v "$tool" >/dev/null || { echo "scale_out.sh: missing $tool" >&2; exit 3; }
done
if [ -z "$BIN" ]; then
    echo "== building release binaries" >&2
    cargo build --release -q -p ringway-balancer -p ringway-agent -p ringway-demo -p ringway-loadgen
    cargo build --release -q -p ringway-benches --bin scale-out-report
    BIN=$ROOT/target/release
fi
for b in ringway-balancer ringway-agent ringway-demo ringway-loadgen scale-out-report; do
    [ -x "$BIN/$b" ] || { echo "scale_out.sh: no $BIN/$b" >&2; exit 3; }
done
# A tunnel that is TLS by default takes an explicit opt-out flag; this deployment is plaintext
# inside namespaces.
TUNNEL_FLAGS=()
if "$BIN/ringway-agent" --help 2>/dev/null | grep -q -- '--insecure-plaintext'; then
    TUNNEL_FLAGS=(--insecure-plaintext)
fi

WORK=$(mktemp -d /tmp/ringway-scale.XXXXXX)
chmod 755 "$WORK"
PFX="rwso$$"
R="${PFX}f" C="${PFX}c"
NSS=()
PIDS=()
EVENTS=$WORK/events
HOSTS=$WORK/hosts
: > "$EVENTS"
cleanup() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for ns in "${NSS[@]}"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    for _ in $(seq 1 100); do # until they are gone (5 s at most)
        alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.05
    done
    for ns in "${NSS[@]}"; do
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
    if [ "$rc" != 0 ]; then
        echo "scale_out.sh: failed (exit $rc); last log lines:" >&2
        tail -n 5 "$WORK"/*.log >&2 2>/dev/null
    fi
    if [ -n "$OUTDIR" ]; then cp "$WORK"/*.log "$WORK"/*.json "$EVENTS" "$OUTDIR"/ 2>/dev/null; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
event() { echo "$1 $(now_ms)" >> "$EVENTS"; echo "== $1" >&2; }
fail() { echo "scale_out.sh: $*" >&2; exit 1; }
# Polls a command (1 s at most per try) until it succeeds; fails after $1 seconds.
wait_for() { # seconds what command…
    local deadline=$(($(date +%s) + $1)) what=$2
    shift 2
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
        sleep 0.05
    done
}

# ---- the network: a router namespace (the front) and one veth link per host ----
ip netns add "$R"; NSS+=("$R")
ip -n "$R" link set lo up
ip netns exec "$R" sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
host() { # ns subnet-index
    ip netns add "$1"; NSS+=("$1")
    ip -n "$R" link add "h$2" type veth peer name eth0 netns "$1"
    ip -n "$R" addr add "10.77.$2.1/24" dev "h$2"
    ip -n "$R" link set "h$2" up
    ip -n "$1" addr add "10.77.$2.2/24" dev eth0
    ip -n "$1" link set eth0 up
    ip -n "$1" link set lo up
    ip -n "$1" route add default via "10.77.$2.1"
}
host "$C" 1
# A new connection per request: without these the client runs out of ports held in TIME_WAIT
# after ~28,000 requests.
ip netns exec "$C" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
for i in 1 2 3 4; do
    host "${PFX}b$i" $((10 + i))
    ip -n "${PFX}b$i" addr add "$VIP/32" dev lo
done
for i in 1 2; do
    host "${PFX}a$i" $((20 + i))
    mkdir -p "/etc/netns/${PFX}a$i"
    ln -s "$HOSTS" "/etc/netns/${PFX}a$i/hosts"
done
bal_ip() { echo "10.77.$((10 + $1)).2"; }
printf '127.0.0.1 localhost\n' > "$HOSTS"
for i in 1 2 3; do echo "$(bal_ip "$i") $LB_NAME" >> "$HOSTS"; done

# ---- processes (disowned: the shell does not report their deaths; cleanup reaps them) ----
declare -A BAL_PID
start_balancer() { # index
    local ns="${PFX}b$1"
    ip netns exec "$ns" "$BIN/ringway-balancer" --listen 0.0.0.0:8080 --agent-listen 0.0.0.0:7000 \
        --admin-listen "$(bal_ip "$1"):9180" --token "$TOKEN" --route "$APP" --route "$HEALTH" \
        --picker round-robin --workers "$BAL_WORKERS" --no-pin "${TUNNEL_FLAGS[@]}" \
        >> "$WORK/b$1.log" 2>&1 &
    BAL_PID[$1]=$!
    PIDS+=("$!")
    disown "$!"
}
for i in 1 2; do
    ns="${PFX}a$i" ip="10.77.$((20 + i)).2"
    ip netns exec "$ns" "$BIN/ringway-demo" hello --listen "$ip:3000" > "$WORK/hello$i.log" 2>&1 &
    PIDS+=("$!")
    disown "$!"
    # `ip netns exec` mounts /etc/netns/NS/hosts (the shared $HOSTS) as the agent's /etc/hosts.
    ip netns exec "$ns" "$BIN/ringway-agent" --balancer "$LB_NAME:7000" --resolve-interval "$RESOLVE" \
        --token "$TOKEN" --route "$APP" --route "$HEALTH" --backend "$ip:3000" --agent-id "a$i" \
        "${TUNNEL_FLAGS[@]}" > "$WORK/a$i.log" 2>&1 &
    PIDS+=("$!")
    disown "$!"
done
for i in 1 2 3; do start_balancer "$i"; done

# ---- the front's control loop: the VIP route's nexthops are the balancers that pass ----
balancers_in_dns() { awk -v n="$LB_NAME" '$2 == n { print $1 }' "$HOSTS"; }
checker() {
    local last="" up ip code hops
    while :; do
        up=()
        for ip in $(balancers_in_dns); do
            code=$(ip netns exec "$R" curl -s -o /dev/null -m 0.5 -w '%{http_code}' \
                -H "Host: $HEALTH" "http://$ip:8080/" 2>/dev/null || true)
            if [ "$code" = 200 ]; then up+=("$ip"); fi
        done
        if [ "${#up[@]}" -gt 0 ] && [ "${up[*]}" != "$last" ]; then
            hops=()
            for ip in "${up[@]}"; do hops+=(nexthop via "$ip"); done
            ip -n "$R" route replace "$VIP/32" "${hops[@]}" || continue
            echo "front:$(IFS=,; echo "${up[*]}") $(now_ms)" >> "$EVENTS"
            last="${up[*]}"
        fi
        sleep "$(awk -v m="$CHECK_MS" 'BEGIN { print m / 1000 }')"
    done
}
checker &
PIDS+=("$!")
disown "$!"

# ---- what a user and an operator see ----
# (A curl that fails or times out yields nothing: callers poll, and `set -e` must not end the run.)
curl_c() { ip netns exec "$C" curl -s -m 2 "$@" || true; }
admin() { ip netns exec "$R" curl -s -m 1 "http://$(bal_ip "$1"):9180$2" || true; }
# Tunnel connections agent a$2 holds to balancer $1 (one per balancer worker when complete).
conns_of() { admin "$1" /agents | grep -c "\"id\": \"a$2\"" || true; }
has_agents() { [ "$(conns_of "$1" 1)" = "$BAL_WORKERS" ] && [ "$(conns_of "$1" 2)" = "$BAL_WORKERS" ]; }
# 2xx answers the balancer gave on the app route (the checker's requests are on health.test).
app_2xx() {
    admin "$1" /metrics | awk -v r="route=\"$APP/\"" \
        '/^ringway_requests_total\{/ && index($0, r) && /class="2xx"/ { s += $NF } END { print s + 0 }'
}
front_has() { # index…
    local want="" i
    for i in "$@"; do want="$want${want:+,}$(bal_ip "$i")"; done
    [ "$(grep '^front:' "$EVENTS" | tail -n 1 | cut -d' ' -f1)" = "front:$want" ]
}
# Backends (X-Served-By) seen over N new connections to URL.
served_by() { # url n
    local k
    for k in $(seq 1 "$2"); do
        curl_c -o /dev/null -D - -H "Host: $APP" "$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-served-by" { print $2 }'
    done | sort -u | tr '\n' ' '
}
grows() { [ "$(app_2xx "$1")" -gt "$2" ]; }
# Waits for a balancer's app requests to grow; with KEEPALIVE=1 a balancer may get none (no new
# connection to hash), which is then only reported.
traffic_wait() { # seconds what index before
    if [ "${KEEPALIVE:-0}" = 1 ]; then
        (wait_for "$1" "$2" grows "$3" "$4") || true
        grows "$3" "$4"
    else
        wait_for "$1" "$2" grows "$3" "$4"
    fi
}
listening() { [ "$(admin "$1" /healthz)" = ok ]; }

for i in 1 2 3; do wait_for 20 "agents on b$i" has_agents "$i"; done
wait_for 10 "the front to route to b1 b2 b3" front_has 1 2 3
SUMMARY=$WORK/summary
: > "$SUMMARY"
for i in 1 2 3; do
    seen=$(served_by "http://$(bal_ip "$i"):8080/" 8)
    echo "backends_via_b$i=$seen" >> "$SUMMARY"
    case "$seen" in *10.77.21.2:3000*10.77.22.2:3000*) ;; *) fail "b$i did not reach both backends: $seen" ;; esac
done
before=(0 "$(app_2xx 1)" "$(app_2xx 2)" "$(app_2xx 3)")
seen=$(served_by "http://$VIP:8080/" 30)
echo "backends_via_front=$seen" >> "$SUMMARY"
for i in 1 2 3; do
    grows "$i" "${before[$i]}" || fail "no request through the front reached b$i"
done
event "checked"

# ---- under load: kill b2, start it again, add b4 ----
ip netns exec "$C" "$BIN/ringway-loadgen" "http://$VIP:8080/" -H "Host: $APP" -R "$RATE" -c "$CONNS" \
    -d "$DURATION" "${CLOSE[@]}" --timeout 2 --interval 0.1 -q --json "$WORK/loadgen.json" \
    > "$WORK/loadgen.log" 2>&1 &
LOADGEN=$!
PIDS+=("$LOADGEN")
event "load"
sleep "$KILL_AT"
kill -9 "${BAL_PID[2]}"
event "kill"
wait_for 10 "the front to drop b2" front_has 1 3
sleep "$DOWN"
b2_before=0
start_balancer 2
event "restart"
wait_for 20 "agents back on b2" has_agents 2
event "agents_back"
wait_for 20 "the front to take b2 back" front_has 1 2 3
traffic_wait 10 "load on b2" 2 "$b2_before" && event "b2_traffic"
sleep 1
start_balancer 4
wait_for 10 "b4 to listen" listening 4
event "b4_start"
echo "$(bal_ip 4) $LB_NAME" >> "$HOSTS"
event "dns_add"
wait_for 20 "agents on b4" has_agents 4
event "b4_agents"
wait_for 20 "the front to take b4" front_has 1 2 3 4
traffic_wait 10 "load on b4" 4 0 && event "b4_traffic"
sleep 0.5
w0=(0 "$(app_2xx 1)" "$(app_2xx 2)" "$(app_2xx 3)" "$(app_2xx 4)")
sleep 2
w1=(0 "$(app_2xx 1)" "$(app_2xx 2)" "$(app_2xx 3)" "$(app_2xx 4)")
echo "app_2xx_b4=${w1[4]}" >> "$SUMMARY"
# b4's share of the requests while all four were in the front (25 % is an even split).
sum=0
for i in 1 2 3 4; do sum=$((sum + w1[i] - w0[i])); done
echo "b4_share_pct=$(awk -v a=$((w1[4] - w0[4])) -v s="$sum" 'BEGIN { printf "%.0f", s ? 100 * a / s : 0 }')" >> "$SUMMARY"
# Removing a balancer without failures: out of DNS (the front's checker follows it), then SIGTERM
# once the front no longer sends it connections; agents drop it when its connections close.
grep -v "^$(bal_ip 4) " "$HOSTS" > "$WORK/hosts.new"
cat "$WORK/hosts.new" > "$HOSTS" # in place: the agents' bind mounts see the same file
event "dns_remove"
wait_for 10 "the front to drop b4" front_has 1 2 3
kill -TERM "${BAL_PID[4]}"
wait_for 40 "b4 to exit" eval '! kill -0 "${BAL_PID[4]}" 2>/dev/null'
event "b4_stopped"
wait "$LOADGEN" || fail "ringway-loadgen failed: $(tail -n 3 "$WORK/loadgen.log")"
event "end"
for i in 1 2 3; do echo "app_2xx_b$i=$(app_2xx "$i")" >> "$SUMMARY"; done

"$BIN/scale-out-report" "$WORK/loadgen.json" "$EVENTS" >> "$SUMMARY"
cat "$SUMMARY"
if [ -n "$OUTDIR" ]; then mkdir -p "$OUTDIR" && cp "$SUMMARY" "$OUTDIR/summary"; fi
