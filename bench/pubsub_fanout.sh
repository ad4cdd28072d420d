#!/usr/bin/env bash
# Pub/sub fan-out: SUBSCRIBERS subscribers spread over CHANNELS channels on one endpoint, one publisher at
# RATE messages/s for SECONDS (proxy/examples/pubsub_fanout.rs). Endpoints, each in turn, ROUNDS rounds:
#   proxy   ringcache-proxy over 3 ringcache-shards
#   redis   one redis-server (the reference: it delivers every message itself)
# Prints one JSON line per run: messages expected and delivered, delivery latency p50/p99/p99.9/max (µs,
# publish sent → message read), and the endpoint's CPU seconds (all its threads) during the run.
#
#   bash bench/pubsub_fanout.sh
#   SUBSCRIBERS=10000 CHANNELS=1000 RATE=10000 SECONDS_=10 ROUNDS=3 bash bench/pubsub_fanout.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS=${SUBSCRIBERS:-10000}
CHANNELS=${CHANNELS:-1000}
RATE=${RATE:-10000}
SECONDS_=${SECONDS_:-10}
ROUNDS=${ROUNDS:-3}
source bench/lib.sh
require_tools redis-server redis-cli
cargo build --release -p ringcache-proxy -p ringcache-shard --bins --example pubsub_fanout >/dev/null
# 10,000 subscribers need as many descriptors in the endpoint and in the client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

SHARD_PORTS=(18901 18902 18903); PROXY=18940; REDIS=18941
ensure_free_ports "${SHARD_PORTS[@]}" "$PROXY" "$REDIS"
for p in "${SHARD_PORTS[@]}"; do start_shard "$p"; done
for p in "${SHARD_PORTS[@]}"; do wait_port "$p"; done
"$BIN/ringcache-proxy" --port "$PROXY" --metrics-port 0 --log warn --maxclients 100000 \
  --shards "s1=127.0.0.1:${SHARD_PORTS[0]},s2=127.0.0.1:${SHARD_PORTS[1]},s3=127.0.0.1:${SHARD_PORTS[2]}" &
PIDS+=($!); PROXY_PID=$!
redis-server --port "$REDIS" --save '' --appendonly no --maxclients 100000 --dir "$WORK" >/dev/null &
PIDS+=($!); REDIS_PID=$!
wait_port "$PROXY"; wait_port "$REDIS"

cpu_seconds() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }

for round in $(seq 1 "$ROUNDS"); do
  for target in proxy redis; do
    if [ "$target" = proxy ]; then port=$PROXY; pid=$PROXY_PID; else port=$REDIS; pid=$REDIS_PID; fi
    before=$(cpu_seconds "$pid")
    line=$("$BIN/examples/pubsub_fanout" "$port" "$SUBSCRIBERS" "$CHANNELS" "$RATE" "$SECONDS_" 2>/dev/null)
    after=$(cpu_seconds "$pid")
    echo "{\"round\":$round,\"target\":\"$target\",\"cpu_seconds\":$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }'),${line#\{}"
  done
done
