#!/usr/bin/env bash
# ringway tunnel mode vs nginx as a plain reverse proxy: side_by_side.sh with only those systems.
#
#   CPU 0: the proxy under test alone (ringway-balancer --workers 1, or nginx with 1 worker)
#   CPU 1: the backend (nginx `return 200`, 12 bytes), the ringway agent, the load generator
#
# Same measurements as side_by_side.sh (wrk closed loop, ringway-loadgen at a fixed rate, CPU per
# request of the balancer and the agent from /proc), for nginx and ringway on each driver in
# DRIVERS. Writes results/archive/tunnel-vs-nginx.md. The comparison with HAProxy and rathole as well:
# benches/scripts/side_by_side.sh (results/archive/side-by-side.md). docs/benchmarks.md describes both.
#
# Usage: benches/scripts/tunnel_vs_nginx.sh
#   env: DURATION=10 RATE=10000 RATES="25% 50% 75%" CONNS=50 ROUNDS=1 DRIVERS="uring epoll" BACKEND=tcp
#   (and the rest of side_by_side.sh's variables)
#   (ROUNDS > 1 repeats nginx and ringway alternately; each ratio compares runs of the same round)
set -euo pipefail

cd "$(dirname "$0")/../.."
DRIVERS=${DRIVERS:-uring epoll}
SYSTEMS="nginx"
for driver in $DRIVERS; do SYSTEMS="$SYSTEMS ringway-$driver"; done
export SYSTEMS
export OUT=${OUT:-$PWD/results/archive/tunnel-vs-nginx.md}
export TITLE=${TITLE:-ringway tunnel vs nginx reverse proxy}
export SIDE_BY_SIDE_COMMAND="BACKEND=${BACKEND:-tcp} DURATION=${DURATION:-10} RATE=${RATE-10000} RATES=\"${RATES-25% 50% 75%}\" CONNS=${CONNS:-50} ROUNDS=${ROUNDS:-1} DRIVERS=\"$DRIVERS\" benches/scripts/tunnel_vs_nginx.sh"
exec benches/scripts/side_by_side.sh "$@"
