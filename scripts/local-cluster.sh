#!/usr/bin/env bash
# Runs a local Ringcache cluster without Docker: three shards and a proxy, ready for `redis-cli -p 6380`.
# Ctrl-C stops them all.
#
#   bash scripts/local-cluster.sh               # shards on 7001-7003, proxy on 6380
#   SHARDS=5 PROXY_PORT=6400 bash scripts/local-cluster.sh
#
# Each shard keeps its snapshots in $DATA_DIR/shardN (default data/local-cluster/shardN), so stopping and
# starting the cluster again brings the keys back.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARDS=${SHARDS:-3}
FIRST_SHARD_PORT=${FIRST_SHARD_PORT:-7001}
PROXY_PORT=${PROXY_PORT:-6380}
MAXMEMORY=${MAXMEMORY:-256mb}
DATA_DIR=${DATA_DIR:-data/local-cluster}

cargo build --release -p ringcache-shard -p ringcache-proxy
BIN=target/release

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  echo "stopping the cluster..."
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

wait_port() {
  for _ in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.02
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

list=""
for i in $(seq 1 "$SHARDS"); do
  port=$((FIRST_SHARD_PORT + i - 1))
  "$BIN/ringcache-shard" --port "$port" --metrics-port $((9120 + i)) --maxmemory "$MAXMEMORY" \
    --dir "$DATA_DIR/shard$i" &
  PIDS+=($!)
  list+="${list:+,}shard$i=127.0.0.1:$port"
done
for i in $(seq 1 "$SHARDS"); do wait_port $((FIRST_SHARD_PORT + i - 1)); done

"$BIN/ringcache-proxy" --port "$PROXY_PORT" --metrics-port 9120 --shards "$list" &
PIDS+=($!)
wait_port "$PROXY_PORT"

echo
echo "Ringcache is up: $SHARDS shards ($list) behind the proxy on 127.0.0.1:$PROXY_PORT."
echo "Try: redis-cli -p $PROXY_PORT set hello world   |   metrics: curl -s localhost:9120/metrics"
echo "Press Ctrl-C to stop."
wait -n "${PIDS[@]}" || true
