#!/usr/bin/env bash
# Shard benchmark: ringcache-shard against redis-server (Debian's, no persistence), side by side in one run.
#
#   bash bench/shard_vs_redis.sh            # 3 rounds, servers alternated, medians and ratios printed
#   ROUNDS=5 REQUESTS=1000000 bash bench/shard_vs_redis.sh
#
# Throughput: redis-benchmark -t set,get -n REQUESTS -r 1000000 -d 64 -c 50, with -P 16 and -P 1.
# Memory: 1,000,000 keys `key:%09d` with 32-byte values loaded into each server; used_memory and the
# growth of the process's RSS per key are compared.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-1000000}
KEYS=${KEYS:-1000000}
RC_PORT=${RC_PORT:-17001}
REDIS_PORT=${REDIS_PORT:-17002}

source bench/lib.sh
require_tools redis-server redis-benchmark
cargo build --release -p ringcache-shard >/dev/null

start_ringcache() { start_shard "$RC_PORT" 4gb; RC_PID=$LAST_PID; wait_port "$RC_PORT"; }
start_redis_server() { start_redis "$REDIS_PORT"; REDIS_PID=$LAST_PID; wait_port "$REDIS_PORT"; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# Prints "set_rps get_rps" for one redis-benchmark run.
run_bench() {
  local port=$1 pipeline=$2
  redis-benchmark -p "$port" -t set,get -n "$REQUESTS" -r 1000000 -d 64 -c 50 -P "$pipeline" -q 2>/dev/null \
    | tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ { for (i=1;i<=NF;i++) if ($i ~ /^[0-9.]+$/) { print $1, $i; break } }' \
    | sort | awk '{ r[$1]=$2 } END { printf "%s %s\n", r["SET"], r["GET"] }'
}


declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
  for pipeline in 16 1; do
    # Alternate which server goes first each round.
    order="ringcache redis"; [ $((round % 2)) -eq 0 ] && order="redis ringcache"
    for server in $order; do
      if [ "$server" = ringcache ]; then start_ringcache; port=$RC_PORT; pid=$RC_PID; else start_redis_server; port=$REDIS_PORT; pid=$REDIS_PID; fi
      read -r set_rps get_rps < <(run_bench "$port" "$pipeline")
      stop "$pid"
      RESULTS["$server,$pipeline,set"]+="$set_rps "
      RESULTS["$server,$pipeline,get"]+="$get_rps "
      echo "round $round P=$pipeline $server: SET $set_rps GET $get_rps"
    done
  done
done

echo
echo "== throughput (median of $ROUNDS rounds, requests/s) =="
printf "%-6s %-4s %14s %14s %8s\n" P op ringcache redis ratio
for pipeline in 16 1; do
  for op in set get; do
    rc=$(echo "${RESULTS[ringcache,$pipeline,$op]}" | tr ' ' '\n' | grep . | median)
    rd=$(echo "${RESULTS[redis,$pipeline,$op]}" | tr ' ' '\n' | grep . | median)
    printf "%-6s %-4s %14.0f %14.0f %8.2f\n" "$pipeline" "$op" "$rc" "$rd" "$(echo "$rc / $rd" | bc -l)"
  done
done

# Memory: load KEYS keys of 32 bytes with a pipelined, generated RESP stream.
load_keys() {
  python3 - "$1" "$KEYS" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
value = b"v" * 32
batch = 10000
for start in range(0, n, batch):
    out = bytearray()
    for i in range(start, min(n, start + batch)):
        k = b"key:%09d" % i
        out += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$32\r\n%s\r\n" % (len(k), k, value)
    s.sendall(out)
    need = 5 * (min(n, start + batch) - start)
    got = 0
    while got < need:
        got += len(s.recv(1 << 20))
s.close()
PY
}
rss_of() { awk '{ print $2 * 4096 }' "/proc/$1/statm"; }
info_field() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }

echo
echo "== memory: $KEYS keys, key:%09d, 32-byte values =="
printf "%-10s %14s %14s %16s %14s\n" server used_memory rss_growth used_per_key rss_per_key
for server in ringcache redis; do
  if [ "$server" = ringcache ]; then start_ringcache; port=$RC_PORT; pid=$RC_PID; else start_redis_server; port=$REDIS_PORT; pid=$REDIS_PID; fi
  rss0=$(rss_of "$pid")
  load_keys "$port"
  [ "$(redis-cli -p "$port" dbsize)" = "$KEYS" ] || { echo "$server did not keep all $KEYS keys"; exit 1; }
  used=$(info_field "$port" used_memory)
  rss1=$(rss_of "$pid")
  printf "%-10s %14d %14d %16.1f %14.1f\n" "$server" "$used" "$((rss1 - rss0))" "$(echo "$used / $KEYS" | bc -l)" "$(echo "($rss1 - $rss0) / $KEYS" | bc -l)"
  stop "$pid"
done
