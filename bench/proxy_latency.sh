#!/usr/bin/env bash
# Latency the proxy hop adds, at fixed (moderate) loads, one run, topologies alternated, ROUNDS rounds, medians:
#   direct       one redis-server
#   nutcracker   nutcracker (twemproxy) over 3 redis-servers
#   ringcache    ringcache-proxy over the same 3 redis-servers (default --threads: one worker per core)
#   ringcache-t1 the same with --threads 1
# Load: ringcache-loadgen open loop (requests timed from when they were due), RATE requests/s over 50
# connections, SET:GET 1:10, 64-byte values, 100,000 keys filled beforehand, TEST_TIME per measurement.
# "added" is a topology's median percentile minus direct's.
#
#   bash bench/proxy_latency.sh
#   ROUNDS=7 RATES="10000 30000" TEST_TIME=20s bash bench/proxy_latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
RATES=${RATES:-"5000 20000"}
TEST_TIME=${TEST_TIME:-10s}
source bench/lib.sh
require_tools redis-server redis-cli nutcracker python3
cargo build --release -p ringcache-loadgen -p ringcache-proxy >/dev/null

REDIS_PORTS=(18701 18702 18703); DIRECT=18720; NC=18730; RC=18740; RC1=18741
ensure_free_ports "${REDIS_PORTS[@]}" "$DIRECT" "$NC" 18731 "$RC" "$RC1"
for p in "${REDIS_PORTS[@]}" "$DIRECT"; do start_redis "$p"; done
for p in "${REDIS_PORTS[@]}" "$DIRECT"; do wait_port "$p"; done
write_nutcracker_yml "$WORK/nutcracker.yml" "$NC" "${REDIS_PORTS[@]}"
SHARDS="s1=127.0.0.1:${REDIS_PORTS[0]},s2=127.0.0.1:${REDIS_PORTS[1]},s3=127.0.0.1:${REDIS_PORTS[2]}"

# Starts topology $1; sets PORT and FRONT_PID (empty for direct).
start_front() {
  FRONT_PID=""
  case $1 in
    direct) PORT=$DIRECT ;;
    nutcracker) nutcracker -c "$WORK/nutcracker.yml" -s 18731 -o "$WORK/nutcracker.log" & FRONT_PID=$!; PORT=$NC ;;
    ringcache) "$BIN/ringcache-proxy" --port "$RC" --metrics-port 0 --log error --shards "$SHARDS" &
      FRONT_PID=$!; PORT=$RC ;;
    ringcache-t1) "$BIN/ringcache-proxy" --port "$RC1" --metrics-port 0 --log error --threads 1 --shards "$SHARDS" &
      FRONT_PID=$!; PORT=$RC1 ;;
  esac
  wait_port "$PORT"
}
stop_front() { if [ -n "$FRONT_PID" ]; then kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true; fi; }

LG=(--quiet --keys 100000 --data-size 64 --max-error-rate 0)
for t in nutcracker direct; do
  start_front "$t"
  "$BIN/ringcache-loadgen" --port "$PORT" "${LG[@]}" --ratio 1:0 --key-pattern sequential --clients 10 \
    --requests 10000 --pipeline 16 >/dev/null
  stop_front
done

TOPOLOGIES=(direct nutcracker ringcache ringcache-t1)
declare -A R
for round in $(seq 1 "$ROUNDS"); do
  for rate in $RATES; do
    order=("${TOPOLOGIES[@]:$((round % 4))}" "${TOPOLOGIES[@]:0:$((round % 4))}")
    for t in "${order[@]}"; do
      start_front "$t"
      "$BIN/ringcache-loadgen" --port "$PORT" "${LG[@]}" --clients 50 --rate "$rate" --ratio 1:10 \
        --test-time "$TEST_TIME" --seed "$round" --json-out "$WORK/r.json" >/dev/null
      stop_front
      read -r ops p50 p99 p999 _ _ < <(loadgen_figures "$WORK/r.json")
      for f in p50 p99 p999 ops; do R["$t,$rate,$f"]+="${!f} "; done
      echo "round $round rate $rate $t: $ops ops/s p50 $p50 p99 $p99 p99.9 $p999 ms"
    done
  done
done

echo
echo "== medians over $ROUNDS rounds (ms; added = minus direct) =="
printf "%-7s %-13s %8s %8s %8s %10s %10s\n" rate topology p50 p99 p99.9 "added p50" "added p99"
for rate in $RATES; do
  m() { echo "${R[$1,$rate,$2]}" | tr ' ' '\n' | grep . | median; }
  for t in "${TOPOLOGIES[@]}"; do
    printf "%-7s %-13s %8.3f %8.3f %8.3f %10.3f %10.3f\n" "$rate" "$t" "$(m "$t" p50)" "$(m "$t" p99)" "$(m "$t" p999)" \
      "$(echo "$(m "$t" p50) - $(m direct p50)" | bc -l)" "$(echo "$(m "$t" p99) - $(m direct p99)" | bc -l)"
  done
done
