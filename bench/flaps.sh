#!/usr/bin/env bash
# Flaps under load, with and without hinted handoff: three ringcache-shards and a ringcache-proxy; while
# ringcache-loadgen writes and reads with --verify, one shard is stopped (SIGSTOP, so it keeps its data)
# for 1 s and resumed, FLAPS times. Prints loadgen's error and verification lines for each setting:
# with --handoff true no read may be stale; --handoff false is twemproxy's behaviour.
#
# Usage: bash bench/flaps.sh [FLAPS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
FLAPS=${1:-10}
source bench/lib.sh
cargo build --release --quiet -p ringcache-shard -p ringcache-proxy -p ringcache-loadgen
ensure_free_ports 7101 7102 7103 7100

run() {
  local handoff=$1 shard_pids=() load
  PIDS=()
  for port in 7101 7102 7103; do start_shard "$port" 256mb; shard_pids+=("$LAST_PID"); wait_port "$port"; done
  "$BIN/ringcache-proxy" --port 7100 --metrics-port 0 --log warn --handoff "$handoff" \
    --shards s1=127.0.0.1:7101,s2=127.0.0.1:7102,s3=127.0.0.1:7103 \
    --health-interval 100ms --failure-limit 2 --timeout 300ms & PIDS+=($!)
  wait_port 7100
  "$BIN/ringcache-loadgen" --port 7100 --clients 8 --ratio 1:1 --keys 3000 --verify --verify-allow-miss \
    --test-time "$((FLAPS * 2 + 4))s" --max-error-rate 1 --timeout-ms 2000 >"$WORK/load-$handoff.txt" 2>/dev/null &
  load=$!
  sleep 2
  for _ in $(seq 1 "$FLAPS"); do
    kill -STOP "${shard_pids[1]}"; sleep 1; kill -CONT "${shard_pids[1]}"; sleep 1
  done
  wait "$load" || true
  echo "--handoff $handoff:"
  grep -E "^(errors|verify):" "$WORK/load-$handoff.txt" | sed 's/^/  /'
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for port in 7101 7102 7103 7100; do
    for _ in $(seq 1 200); do redis-cli -p "$port" ping >/dev/null 2>&1 || break; sleep 0.01; done
  done
  rm -rf "$WORK"/shard-*
}

run true
run false
