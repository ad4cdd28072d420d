#!/usr/bin/env bash
# Whole-system comparison with ringcache-loadgen, one run, topologies alternated, 3 rounds, medians:
#   ringcache   ringcache-proxy over 3 ringcache-shards
#   nutcracker  nutcracker (twemproxy, ketama + fnv1a_64) over 3 redis-servers
#   redis       one redis-server, direct
# Loads (SET:GET 1:10, 64-byte values, 100,000 keys filled beforehand, 50 connections, TEST_TIME each):
#   closed loop with pipeline 1 and 16 (throughput), and open loop at RATE requests/s (latency at a fixed load).
# Writes docs/bench/compare.md (the table) and docs/bench/compare-<topology>-<load>.svg (last round's plots).
#
#   bash bench/compare.sh
#   ROUNDS=5 TEST_TIME=10s RATE=30000 bash bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
TEST_TIME=${TEST_TIME:-5s}
RATE=${RATE:-20000}
OUT=docs/bench
source bench/lib.sh
require_tools redis-server redis-cli nutcracker python3
cargo build --release -p ringcache-loadgen -p ringcache-shard -p ringcache-proxy >/dev/null
mkdir -p "$OUT"

# Backends stay up for the whole run; each proxy is started fresh per measurement.
REDIS_PORTS=(18601 18602 18603); SHARD_PORTS=(18611 18612 18613); DIRECT=18620
ensure_free_ports "${REDIS_PORTS[@]}" "${SHARD_PORTS[@]}" "$DIRECT" 18630 18631 18640
for p in "${REDIS_PORTS[@]}" "$DIRECT"; do start_redis "$p"; done
for p in "${SHARD_PORTS[@]}"; do start_shard "$p"; done
for p in "${REDIS_PORTS[@]}" "${SHARD_PORTS[@]}" "$DIRECT"; do wait_port "$p"; done

write_nutcracker_yml "$WORK/nutcracker.yml" 18630 "${REDIS_PORTS[@]}"

# Starts topology $1; sets PORT and FRONT_PID (empty for direct).
start_front() {
  FRONT_PID=""
  case $1 in
    ringcache) "$BIN/ringcache-proxy" --port 18640 --metrics-port 0 --log warn \
         --shards "s1=127.0.0.1:${SHARD_PORTS[0]},s2=127.0.0.1:${SHARD_PORTS[1]},s3=127.0.0.1:${SHARD_PORTS[2]}" &
       FRONT_PID=$!; PORT=18640 ;;
    nutcracker) nutcracker -c "$WORK/nutcracker.yml" -s 18631 -o "$WORK/nutcracker.log" &
       FRONT_PID=$!; PORT=18630 ;;
    redis) PORT=$DIRECT ;;
  esac
  wait_port "$PORT"
}
stop_front() { if [ -n "$FRONT_PID" ]; then kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true; fi; }

LG_COMMON=(--quiet --keys 100000 --data-size 64 --max-error-rate 1)
TOPOLOGIES=(ringcache nutcracker redis)
LOADS=(P1 P16 open)
for t in "${TOPOLOGIES[@]}"; do
  start_front "$t"
  "$BIN/ringcache-loadgen" --port "$PORT" "${LG_COMMON[@]}" --ratio 1:0 --key-pattern sequential --clients 10 \
    --requests 10000 --pipeline 16 >/dev/null
  stop_front
done

declare -A R
for round in $(seq 1 "$ROUNDS"); do
  for load in "${LOADS[@]}"; do
    order=("${TOPOLOGIES[@]:$((round % 3))}" "${TOPOLOGIES[@]:0:$((round % 3))}")
    for t in "${order[@]}"; do
      case $load in
        P1) args=(--pipeline 1) ;;
        P16) args=(--pipeline 16) ;;
        open) args=(--rate "$RATE") ;;
      esac
      start_front "$t"
      "$BIN/ringcache-loadgen" --port "$PORT" "${LG_COMMON[@]}" --clients 50 "${args[@]}" --ratio 1:10 --test-time "$TEST_TIME" \
        --seed "$round" --json-out "$WORK/r.json" --plot "$OUT/compare-$t-$load.svg" >/dev/null
      stop_front
      read -r ops p50 p99 p999 hit errors < <(loadgen_figures "$WORK/r.json")
      for f in ops p50 p99 p999 hit errors; do R["$t,$load,$f"]+="${!f} "; done
      echo "round $round $load $t: $ops ops/s p50 $p50 p99 $p99 p99.9 $p999 ms hit $hit% errors $errors"
    done
  done
done

{
  echo "Median over $ROUNDS rounds of \`bash bench/compare.sh\` (TEST_TIME=$TEST_TIME, RATE=$RATE), $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "Load: ringcache-loadgen, SET:GET 1:10, 64-byte values, 100,000 keys (filled first), 50 connections, 1 thread."
  echo
  echo "| load | topology | ops/s | p50 ms | p99 ms | p99.9 ms | hit % | errors |"
  echo "|---|---|---|---|---|---|---|---|"
  for load in "${LOADS[@]}"; do
    if [ "$load" = open ]; then label="open loop $RATE/s"; else label="closed, -P ${load#P}"; fi
    for t in "${TOPOLOGIES[@]}"; do
      m() { echo "${R[$t,$load,$1]}" | tr ' ' '\n' | grep . | median; }
      printf "| %s | %s | %.0f | %.3f | %.3f | %.3f | %.2f | %.0f |\n" "$label" "$t" "$(m ops)" "$(m p50)" "$(m p99)" "$(m p999)" "$(m hit)" "$(m errors)"
    done
  done
} | tee "$OUT/compare.md"
