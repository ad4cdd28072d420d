#!/usr/bin/env bash
# CPU cost per request of a server binary, as instructions counted by callgrind: repeatable whatever else
# the machine is doing (the same binary and workload give the same count within a fraction of a percent),
# so two builds can be compared on a busy or shared machine where throughput figures wander.
#
#   bash bench/instructions_per_request.sh OLD_BIN_DIR NEW_BIN_DIR [REQUESTS]
#
# For each build: a ringcache-shard under callgrind, a fixed redis-benchmark load (SET and GET, one client,
# pipelined 16, and unpipelined PING/GET), then SIGTERM; the same without the load gives the start-up and
# shutdown cost, which is subtracted. Prints instructions per request for each build and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_tools valgrind redis-benchmark redis-cli

OLD=${1:?old binary directory (with ringcache-shard)}
NEW=${2:?new binary directory (with ringcache-shard)}
REQUESTS=${3:-20000}

# Total instructions of one shard run under callgrind; `load` runs the workload against it.
measure() {
  local bin=$1 load=$2 port out pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  out="$WORK/callgrind.$RANDOM"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/ringcache-shard" --port "$port" --metrics-port 0 \
    --threads 1 --log warn --dir "$WORK/dir.$RANDOM" --snapshot-interval 0 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  if [ "$load" = yes ]; then
    redis-benchmark -p "$port" -c "${CLIENTS:-1}" -P 16 -n "$REQUESTS" -t set,get -q >/dev/null
    redis-benchmark -p "$port" -c 1 -n "$((REQUESTS / 4))" -t ping_mbulk,get -q >/dev/null
  fi
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  # The summary line: "summary: <Ir>" (one file per thread with --separate-threads=no: one file).
  grep -h '^summary:' "$out"* | awk '{s += $2} END {print s}'
}

per_request() {
  local bin=$1 idle loaded total
  idle=$(measure "$bin" no)
  loaded=$(measure "$bin" yes)
  # Each redis-benchmark run also sends a handful of setup commands (CONFIG GET): negligible here.
  total=$((2 * REQUESTS + 2 * (REQUESTS / 4)))
  echo $(((loaded - idle) / total))
}

old=$(per_request "$OLD")
new=$(per_request "$NEW")
echo "instructions per request (SET+GET -P 16, PING+GET unpipelined, 1 client, 1 thread):"
echo "  old ($OLD): $old"
echo "  new ($NEW): $new"
awk -v o="$old" -v n="$new" 'BEGIN { printf "  new/old: %.3f\n", n / o }'
