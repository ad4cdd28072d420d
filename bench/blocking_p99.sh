#!/usr/bin/env bash
# Do clients blocked on BLPOP through ringcache-proxy delay other clients? Other clients' latency through
# the proxy (3 ringcache-shards) before and while BLOCKED clients wait on BLPOP (each on a connection of
# its own to the key's shard), ROUNDS rounds alternated, medians.
# Load: redis-benchmark GET and SET, 50 connections, REQUESTS requests, 64-byte values (its CSV gives the
# percentiles). The blocked clients are held by a Python process that opens BLOCKED sockets and sends one
# `BLPOP {b}l<i> 0` on each (keys spread over the three shards by a hash tag of their own).
#
#   bash bench/blocking_p99.sh
#   ROUNDS=7 BLOCKED=2000 bash bench/blocking_p99.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
BLOCKED=${BLOCKED:-1000}
REQUESTS=${REQUESTS:-200000}
source bench/lib.sh
require_tools redis-cli redis-benchmark python3
cargo build --release -p ringcache-shard -p ringcache-proxy >/dev/null

SHARD_PORTS=(18901 18902 18903); PROXY=18910
ensure_free_ports "${SHARD_PORTS[@]}" "$PROXY"
for p in "${SHARD_PORTS[@]}"; do start_shard "$p"; done
for p in "${SHARD_PORTS[@]}"; do wait_port "$p"; done
"$BIN/ringcache-proxy" --port "$PROXY" --metrics-port 0 --log warn \
  --shards "s1=127.0.0.1:${SHARD_PORTS[0]},s2=127.0.0.1:${SHARD_PORTS[1]},s3=127.0.0.1:${SHARD_PORTS[2]}" &
PIDS+=($!)
wait_port "$PROXY"
redis-benchmark -p "$PROXY" -t set -n 100000 -r 100000 -d 64 -q >/dev/null

blocked_total() {
  local n=0 p v
  for p in "${SHARD_PORTS[@]}"; do
    v=$(redis-cli -p "$p" info clients | tr -d '\r' | awk -F: '$1 == "blocked_clients" { print $2 }')
    n=$((n + v))
  done
  echo "$n"
}

# Starts a process holding $1 clients blocked until killed; sets HOLDER to its pid.
start_holder() {
  python3 -c '
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    key = b"{b%d}l" % i
    s.sendall(b"*3\r\n$5\r\nBLPOP\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(key), key))
    socks.append(s)
time.sleep(3600)' "$PROXY" "$1" &
  HOLDER=$!
  PIDS+=("$HOLDER")
}

# Prints "get_p50 get_p99 set_p50 set_p99" in ms.
measure() {
  redis-benchmark -p "$PROXY" -t get,set -n "$REQUESTS" -r 100000 -d 64 -c 50 --csv |
    python3 -c '
import csv, sys
rows = {r["test"]: r for r in csv.DictReader(sys.stdin)}
print(rows["GET"]["p50_latency_ms"], rows["GET"]["p99_latency_ms"], rows["SET"]["p50_latency_ms"], rows["SET"]["p99_latency_ms"])'
}

: >"$WORK/before"; : >"$WORK/during"
for round in $(seq 1 "$ROUNDS"); do
  measure >>"$WORK/before"
  start_holder "$BLOCKED"
  for _ in $(seq 1 3000); do [ "$(blocked_total)" -ge "$BLOCKED" ] && break; sleep 0.01; done
  [ "$(blocked_total)" -ge "$BLOCKED" ] || { echo "only $(blocked_total) of $BLOCKED clients blocked"; exit 1; }
  measure >>"$WORK/during"
  kill "$HOLDER"; wait "$HOLDER" 2>/dev/null || true
  for _ in $(seq 1 3000); do [ "$(blocked_total)" -eq 0 ] && break; sleep 0.01; done
  echo "round $round: before $(tail -1 "$WORK/before")  during $(tail -1 "$WORK/during")"
done
col() { awk -v c="$2" '{ print $c }' "$WORK/$1" | median; }
echo "medians over $ROUNDS rounds, ms (50 connections, $REQUESTS requests per test, $BLOCKED clients blocked during):"
printf "%-8s %8s %8s %8s %8s\n" "" GET-p50 GET-p99 SET-p50 SET-p99
for phase in before during; do
  printf "%-8s %8s %8s %8s %8s\n" "$phase" "$(col "$phase" 1)" "$(col "$phase" 2)" "$(col "$phase" 3)" "$(col "$phase" 4)"
done
echo "blocked clients left on the shards after the holder exited: $(blocked_total)"
