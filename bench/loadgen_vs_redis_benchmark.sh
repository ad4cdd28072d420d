#!/usr/bin/env bash
# Cross-check of ringcache-loadgen against redis-benchmark, one run, tools alternated, 3 rounds, medians:
#   1. the same closed-loop load on one redis-server — SET and GET, 64-byte values, 100,000 keys, 50
#      connections, pipeline 1 and 16, REQUESTS requests — measured by each tool; the ratio should be
#      close to 1 (the issue asks for within 20 %);
#   2. whether loadgen is a bottleneck: pipelined GETs (1 thread, 8 connections, pipeline 128) against
#      ringcache-shard and redis-server, with redis-benchmark's figure for the same load beside it.
#
#   bash bench/loadgen_vs_redis_benchmark.sh
#   ROUNDS=5 REQUESTS=1000000 bash bench/loadgen_vs_redis_benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-500000}
CLIENTS=50
source bench/lib.sh
require_tools redis-server redis-benchmark redis-cli python3
cargo build --release -p ringcache-loadgen -p ringcache-shard >/dev/null

REDIS=18501; SHARD=18502
ensure_free_ports "$REDIS" "$SHARD"
start_redis "$REDIS"
start_shard "$SHARD"
wait_port "$REDIS"; wait_port "$SHARD"
# Fill the keys both tools read, so that GETs hit: redis-benchmark's key:%012d and loadgen's loadgen:%d.
for p in "$REDIS" "$SHARD"; do
  redis-benchmark -p "$p" -t set -n 100000 -r 100000 -d 64 -c 10 -P 64 -q >/dev/null 2>&1
  "$BIN/ringcache-loadgen" --port "$p" --quiet --ratio 1:0 --key-pattern sequential --keys 100000 --clients 10 \
    --requests 10000 --pipeline 64 --data-size 64 >/dev/null
done

# Prints requests/s of one redis-benchmark test.
rb() { # port op clients pipeline requests
  redis-benchmark -p "$1" -t "$2" -n "$5" -r 100000 -d 64 -c "$3" -P "$4" -q 2>>"$WORK/rb.err" | tr '\r' '\n' \
    | grep "requests per second" | tail -1 | awk '{ for (i=2;i<=NF;i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'
}
# Prints ops/s of one loadgen run.
lg() { # port op clients pipeline requests [threads]
  local ratio=0:1; [ "$2" = set ] && ratio=1:0
  "$BIN/ringcache-loadgen" --port "$1" --quiet --ratio "$ratio" --keys 100000 --data-size 64 --threads "${6:-1}" \
    --clients "$3" --pipeline "$4" --requests $(( $5 / ($3 * ${6:-1}) )) --json-out "$WORK/lg.json" >/dev/null
  python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['overall']['ops_per_sec']))" "$WORK/lg.json"
}

declare -A R
for round in $(seq 1 "$ROUNDS"); do
  for pipeline in 1 16; do
    for op in set get; do
      # Alternate which tool goes first.
      if (( round % 2 )); then order="rb lg"; else order="lg rb"; fi
      for tool in $order; do
        v=$($tool "$REDIS" "$op" "$CLIENTS" "$pipeline" "$REQUESTS") || v=""
        [ -n "$v" ] || { echo "round $round P=$pipeline $op $tool: FAILED $(tail -1 "$WORK/rb.err" 2>/dev/null)"; continue; }
        R["$tool,$pipeline,$op"]+="$v "
        echo "round $round P=$pipeline $op $tool: $v"
      done
    done
  done
  # Bottleneck check: 8 connections, pipeline 128, 2,000,000 GETs (loadgen: 1 thread).
  for target in shard redis; do
    port=$SHARD; [ "$target" = redis ] && port=$REDIS
    for tool in lg rb; do
      v=$($tool "$port" get 8 128 2000000) || v=""
      [ -n "$v" ] || { echo "round $round max GET $target $tool: FAILED $(tail -1 "$WORK/rb.err" 2>/dev/null)"; continue; }
      R["max,$target,$tool"]+="$v "
      echo "round $round max GET $target $tool: $v"
    done
  done
done

echo
echo "== median requests/s over $ROUNDS rounds: redis-server, $CLIENTS connections, 64-byte values, 100,000 keys =="
echo "| -P | op | redis-benchmark | ringcache-loadgen | loadgen / redis-benchmark |"
echo "|---|---|---|---|---|"
for pipeline in 1 16; do
  for op in set get; do
    a=$(echo "${R[rb,$pipeline,$op]}" | tr ' ' '\n' | grep . | median)
    b=$(echo "${R[lg,$pipeline,$op]}" | tr ' ' '\n' | grep . | median)
    printf "| %s | %s | %.0f | %.0f | **%.2f** |\n" "$pipeline" "${op^^}" "$a" "$b" "$(echo "$b / $a" | bc -l)"
  done
done
echo
echo "== pipelined GET, 8 connections x pipeline 128 (loadgen: 1 thread), median requests/s =="
echo "| target | redis-benchmark | ringcache-loadgen |"
echo "|---|---|---|"
for target in shard redis; do
  a=$(echo "${R[max,$target,rb]}" | tr ' ' '\n' | grep . | median)
  b=$(echo "${R[max,$target,lg]}" | tr ' ' '\n' | grep . | median)
  printf "| %s | %.0f | %.0f |\n" "$target" "$a" "$b"
done
