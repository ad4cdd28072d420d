#!/usr/bin/env bash
# Two ringcache-shard builds side by side on the RESP2 hot path redis-benchmark exercises (GET SET INCR
# LPUSH SADD HSET ZADD), alternated in each round, medians and ratios printed: the check that a change did
# not slow the hot path.
#
#   bash bench/shard_ab.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 REQUESTS=1000000 bash bench/shard_ab.sh /tmp/base/ringcache-shard target/release/ringcache-shard
#
# Each run: redis-benchmark -t get,set,incr,lpush,sadd,hset,zadd -n REQUESTS -r 100000 -d 64 -c 50, with
# -P 16 and -P 1, against a fresh server.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:?usage: shard_ab.sh OLD_BINARY NEW_BINARY}
NEW=${2:?usage: shard_ab.sh OLD_BINARY NEW_BINARY}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-500000}
PORT=${PORT:-17101}
TESTS=get,set,incr,lpush,sadd,hset,zadd

source bench/lib.sh
require_tools redis-benchmark redis-cli
ensure_free_ports "$PORT"

start() {
  "$1" --port "$PORT" --metrics-port 0 --maxmemory 4gb --log warn --dir "$WORK/ab-$RANDOM" --snapshot-interval 0 &
  PIDS+=($!)
  LAST_PID=$!
  wait_port "$PORT"
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# Prints "TEST rps" lines for one redis-benchmark run.
run_bench() {
  redis-benchmark -p "$PORT" -t "$TESTS" -n "$REQUESTS" -r 100000 -d 64 -c 50 -P "$1" -q 2>/dev/null \
    | tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ { for (i=2;i<=NF;i++) if ($i ~ /^[0-9.]+$/) { print $1, $i; break } }'
}

declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
  for pipeline in 16 1; do
    order="old new"; [ $((round % 2)) -eq 0 ] && order="new old"
    for which in $order; do
      bin=$OLD; [ "$which" = new ] && bin=$NEW
      start "$bin"
      while read -r test rps; do
        RESULTS["$which,$pipeline,$test"]+="$rps "
      done < <(run_bench "$pipeline")
      stop "$LAST_PID"
      echo "round $round P=$pipeline $which done"
    done
  done
done

echo
echo "== requests/s, median of $ROUNDS rounds =="
printf "%-4s %-6s %12s %12s %8s\n" P test old new new/old
for pipeline in 16 1; do
  for test in GET SET INCR LPUSH SADD HSET ZADD; do
    o=$(echo "${RESULTS[old,$pipeline,$test]:-}" | tr ' ' '\n' | grep . | median || true)
    n=$(echo "${RESULTS[new,$pipeline,$test]:-}" | tr ' ' '\n' | grep . | median || true)
    [ -n "$o" ] && [ -n "$n" ] || continue
    printf "%-4s %-6s %12.0f %12.0f %8.3f\n" "$pipeline" "$test" "$o" "$n" "$(echo "$n / $o" | bc -l)"
  done
done
