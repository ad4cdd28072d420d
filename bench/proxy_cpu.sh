#!/usr/bin/env bash
# Where the CPU goes per request, unpipelined: for each front end over 3 redis-servers, one
# `redis-benchmark -t get -n REQUESTS -r 100000 -d 64 -c 50 -P 1` run, with the CPU time (user + system, from
# /proc/PID/stat) of the front end, of the three redis-servers together and of redis-benchmark, divided by
# the requests, and the front end's context switches per request (all its threads). ROUNDS rounds, printed
# as they come.
#   ringcache     ringcache-proxy, default --threads (one worker per core)
#   ringcache-t1  ringcache-proxy --threads 1
#   nutcracker    nutcracker (twemproxy)
#   direct        one redis-server (its CPU is the "front end" column)
#
#   bash bench/proxy_cpu.sh
#   ROUNDS=3 REQUESTS=500000 bash bench/proxy_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-2}
REQUESTS=${REQUESTS:-200000}
source bench/lib.sh
require_tools redis-server redis-benchmark nutcracker
cargo build --release -p ringcache-proxy >/dev/null

REDIS_PORTS=(18801 18802 18803); FRONT=18840
ensure_free_ports "${REDIS_PORTS[@]}" "$FRONT" 18841
for p in "${REDIS_PORTS[@]}"; do start_redis "$p"; done
BACKENDS=("${PIDS[@]}")
for p in "${REDIS_PORTS[@]}"; do wait_port "$p"; done
write_nutcracker_yml "$WORK/nutcracker.yml" "$FRONT" "${REDIS_PORTS[@]}"
SHARDS="s1=127.0.0.1:${REDIS_PORTS[0]},s2=127.0.0.1:${REDIS_PORTS[1]},s3=127.0.0.1:${REDIS_PORTS[2]}"

start_front() {
  case $1 in
    ringcache) "$BIN/ringcache-proxy" --port "$FRONT" --metrics-port 0 --log error --shards "$SHARDS" & ;;
    ringcache-t1) "$BIN/ringcache-proxy" --port "$FRONT" --metrics-port 0 --log error --threads 1 --shards "$SHARDS" & ;;
    nutcracker) nutcracker -c "$WORK/nutcracker.yml" -s 18841 -o "$WORK/nutcracker.log" & ;;
    direct) redis-server --port "$FRONT" --save '' --appendonly no --dir "$WORK" >/dev/null & ;;
  esac
  FRONT_PID=$!
  wait_port "$FRONT"
}
# CPU ticks (user + system) of process $1.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
backend_ticks() { local t=0; for p in "${BACKENDS[@]}"; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
per_request_us() { echo "$1 * 1000000 / $(getconf CLK_TCK) / $REQUESTS" | bc -l; }

for round in $(seq 1 "$ROUNDS"); do
  for t in ringcache ringcache-t1 nutcracker direct; do
    start_front "$t"
    f0=$(ticks "$FRONT_PID"); r0=$(backend_ticks); s0=$(switches "$FRONT_PID")
    redis-benchmark -p "$FRONT" -t get -n "$REQUESTS" -r 100000 -d 64 -c 50 -P 1 -q >"$WORK/rb.out" 2>/dev/null &
    bench=$!
    b=0
    while kill -0 "$bench" 2>/dev/null; do b=$(ticks "$bench" 2>/dev/null || echo "$b"); sleep 0.05; done
    wait "$bench" || true
    f1=$(ticks "$FRONT_PID"); r1=$(backend_ticks); s1=$(switches "$FRONT_PID")
    rps=$(tr '\r' '\n' <"$WORK/rb.out" | awk '/requests per second/ { print $2 }')
    kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true
    printf "round %s %-13s %8.0f GET/s   CPU µs per request: front end %5.1f  redis-servers %5.1f  redis-benchmark %5.1f   front-end context switches per request %.3f\n" \
      "$round" "$t" "$rps" "$(per_request_us $((f1 - f0)))" "$(per_request_us $((r1 - r0)))" "$(per_request_us "$b")" \
      "$(echo "($s1 - $s0) / $REQUESTS" | bc -l)"
  done
done
