#!/usr/bin/env bash
# CPU time per request, RESP2 against RESP3, for ZRANGE WITHSCORES of a 100-member sorted set: the server's
# (redis-server, a ringcache-shard, a ringcache-proxy over that shard, the proxy's process alone; user + system
# from /proc/PID/stat) and redis-benchmark's own (from /usr/bin/time), -c 50, -P 1 and -P 16. Shows whose CPU
# decides the rate when client and servers share a small machine (bench/resp3.sh's rates).
#
#   bash bench/resp3_cpu.sh [BIN_DIR] [RUNS] [REQUESTS]   (defaults: target/release, 3, 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_tools redis-benchmark redis-cli redis-server
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
BIN=${1:-target/release}
RUNS=${2:-3}
N=${3:-100000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port); shard_port=$(free_port); proxy_port=$(free_port)
start_redis "$redis_port"; redis_pid=$LAST_PID
start_shard "$shard_port"; shard_pid=$LAST_PID
wait_port "$redis_port"; wait_port "$shard_port"
"$BIN/ringcache-proxy" --port "$proxy_port" --metrics-port 0 --log warn --shards "s1=127.0.0.1:$shard_port" &
PIDS+=($!); proxy_pid=$!
wait_port "$proxy_port"
members=(); for i in $(seq 1 100); do members+=("$i.5" "member:$i"); done
for port in "$redis_port" "$shard_port"; do redis-cli -p "$port" ZADD bench:z "${members[@]}" >/dev/null; done

ticks_per_s=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "# bench/resp3_cpu.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $N requests per run, µs per request"
echo "  endpoint      -P  proto  server   redis-benchmark"
for target in "redis-server $redis_port $redis_pid" "shard $shard_port $shard_pid" "proxy $proxy_port $proxy_pid"; do
  read -r name port pid <<<"$target"
  for pipeline in 1 16; do
    for proto in "" "-3"; do
      for _ in $(seq 1 "$RUNS"); do
        before=$(cpu_ticks "$pid")
        # shellcheck disable=SC2086 # $proto is empty or -3
        client=$( { /usr/bin/time -f "%U %S" redis-benchmark -p "$port" -c 50 -P "$pipeline" -n "$N" $proto -q \
          ZRANGE bench:z 0 -1 WITHSCORES >/dev/null; } 2>&1 | tail -1)
        after=$(cpu_ticks "$pid")
        awk -v name="$name" -v p="$pipeline" -v proto="${proto:-RESP2}" -v t=$((after - before)) -v hz="$ticks_per_s" \
          -v n="$N" -v c="$client" 'BEGIN { split(c, u, " ");
            printf "  %-12s %3s  %-5s  %6.1f   %6.1f\n", name, p, proto == "-3" ? "RESP3" : proto, t / hz * 1e6 / n, (u[1] + u[2]) * 1e6 / n }'
      done
    done
  done
done
