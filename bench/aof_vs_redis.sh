#!/usr/bin/env bash
# The append-only log's cost: ringcache-shard and redis-server, each with no log and with the log under each
# fsync policy (always, everysec, no), side by side in one run, on the same disk.
#
#   bash bench/aof_vs_redis.sh              # 3 rounds, medians and ratios printed
#   ROUNDS=5 REQUESTS=1000000 bash bench/aof_vs_redis.sh
#
# Throughput: redis-benchmark -t set -n REQUESTS -r 1000000 -d 64 -c 50 -P 16 (and -P 1 for `always`, where
# every batch waits for an fsync). Both servers run with snapshots off (ringcache --snapshot-interval 0,
# redis --save ''), automatic log rewrites at their defaults, and write their logs under one work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-1000000}
RC_PORT=${RC_PORT:-17011}
REDIS_PORT=${REDIS_PORT:-17012}

source bench/lib.sh
require_tools redis-server redis-benchmark
ensure_free_ports "$RC_PORT" "$REDIS_PORT"
cargo build --release -p ringcache-shard >/dev/null

stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# $1 server, $2 policy (off|always|everysec|no); sets PORT and PID, waits until it answers.
start() {
  local dir="$WORK/$1-$2-$RANDOM"
  mkdir -p "$dir"
  if [ "$1" = ringcache ]; then
    local log=(--appendonly no)
    [ "$2" != off ] && log=(--appendonly yes --appendfsync "$2")
    "$BIN/ringcache-shard" --port "$RC_PORT" --metrics-port 0 --maxmemory 4gb --log warn --dir "$dir" \
      --snapshot-interval 0 "${log[@]}" & PIDS+=($!); PID=$!; PORT=$RC_PORT
  else
    local log=(--appendonly no)
    [ "$2" != off ] && log=(--appendonly yes --appendfsync "$2")
    redis-server --port "$REDIS_PORT" --save '' --dir "$dir" "${log[@]}" >/dev/null & PIDS+=($!); PID=$!; PORT=$REDIS_PORT
  fi
  wait_port "$PORT"
  # Both answer -LOADING while they replay: wait until they serve.
  for _ in $(seq 1 500); do redis-cli -p "$PORT" set warmup 1 2>/dev/null | grep -q OK && break; sleep 0.01; done
}

# Prints SET requests/s for one run: $1 port, $2 pipeline.
set_rps() {
  redis-benchmark -p "$1" -t set -n "$REQUESTS" -r 1000000 -d 64 -c 50 -P "$2" -q 2>/dev/null \
    | tr '\r' '\n' | awk '/^SET: / { print $2 }' | tail -1
}

declare -A RESULTS
CASES=${CASES:-"off,16 no,16 everysec,16 always,16 always,1 off,1"}
for round in $(seq 1 "$ROUNDS"); do
  for case in $CASES; do
    policy=${case%,*}; pipeline=${case#*,}
    order="ringcache redis"; [ $((round % 2)) -eq 0 ] && order="redis ringcache"
    for server in $order; do
      start "$server" "$policy"
      rps=$(set_rps "$PORT" "$pipeline")
      stop "$PID"
      RESULTS["$server,$case"]+="$rps "
      echo "round $round appendfsync=$policy P=$pipeline $server: SET $rps"
    done
  done
done

echo
echo "== SET throughput, median of $ROUNDS rounds (requests/s); 'off' = no log =="
printf "%-10s %-4s %14s %14s %8s %12s %12s\n" appendfsync P ringcache redis ratio rc/off redis/off
for case in $CASES; do
  policy=${case%,*}; pipeline=${case#*,}
  rc=$(echo "${RESULTS[ringcache,$case]}" | tr ' ' '\n' | grep . | median)
  rd=$(echo "${RESULTS[redis,$case]}" | tr ' ' '\n' | grep . | median)
  rc_off=$(echo "${RESULTS[ringcache,off,$pipeline]}" | tr ' ' '\n' | grep . | median)
  rd_off=$(echo "${RESULTS[redis,off,$pipeline]}" | tr ' ' '\n' | grep . | median)
  printf "%-10s %-4s %14.0f %14.0f %8.2f %12.2f %12.2f\n" "$policy" "$pipeline" "$rc" "$rd" \
    "$(echo "$rc / $rd" | bc -l)" "$(echo "$rc / $rc_off" | bc -l)" "$(echo "$rd / $rd_off" | bc -l)"
done
