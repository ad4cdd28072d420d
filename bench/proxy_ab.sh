#!/usr/bin/env bash
# Two ringcache-proxy builds side by side on the RESP2 hot path, in front of the same three redis-servers,
# alternated in each round, medians and ratios printed: the check that a proxy change did not slow plain
# GET/SET traffic. Reports throughput and, steadier on a shared machine, the proxy's CPU time (user +
# system, all threads, from /proc/PID/stat) per request.
#
#   bash bench/proxy_ab.sh OLD_BINARY NEW_BINARY
#   ROUNDS=5 REQUESTS=500000 bash bench/proxy_ab.sh /tmp/base/ringcache-proxy target/release/ringcache-proxy
#
# Each run: redis-benchmark -t get,set -n REQUESTS -r 100000 -d 64 -c 50, with -P 16 and -P 1, against a
# freshly started proxy (--threads 1, so the client and the backends keep the other core).
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:?usage: proxy_ab.sh OLD_BINARY NEW_BINARY}
NEW=${2:?usage: proxy_ab.sh OLD_BINARY NEW_BINARY}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-300000}
REDIS_PORTS=(18701 18702 18703); FRONT=18740

source bench/lib.sh
require_tools redis-server redis-benchmark redis-cli
ensure_free_ports "${REDIS_PORTS[@]}" "$FRONT"
for p in "${REDIS_PORTS[@]}"; do start_redis "$p"; done
for p in "${REDIS_PORTS[@]}"; do wait_port "$p"; done
SHARDS="s1=127.0.0.1:${REDIS_PORTS[0]},s2=127.0.0.1:${REDIS_PORTS[1]},s3=127.0.0.1:${REDIS_PORTS[2]}"

cpu_seconds() { awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"; }
start() {
  "$1" --port "$FRONT" --metrics-port 0 --log error --threads 1 --shards "$SHARDS" &
  PIDS+=($!)
  LAST_PID=$!
  wait_port "$FRONT"
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# Prints "TEST rps" lines for one redis-benchmark run of one test.
run_bench() {
  redis-benchmark -p "$FRONT" -t "$2" -n "$REQUESTS" -r 100000 -d 64 -c 50 -P "$1" -q 2>/dev/null \
    | tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ { for (i=2;i<=NF;i++) if ($i ~ /^[0-9.]+$/) { print $1, $i; break } }'
}

declare -A RPS CPU
for round in $(seq 1 "$ROUNDS"); do
  for pipeline in 16 1; do
    order="old new"; [ $((round % 2)) -eq 0 ] && order="new old"
    for which in $order; do
      bin=$OLD; [ "$which" = new ] && bin=$NEW
      start "$bin"
      for test in set get; do
        before=$(cpu_seconds "$LAST_PID")
        while read -r name rps; do RPS["$which,$pipeline,$name"]+="$rps "; done < <(run_bench "$pipeline" "$test")
        after=$(cpu_seconds "$LAST_PID")
        name=$(echo "$test" | tr a-z A-Z)
        CPU["$which,$pipeline,$name"]+="$(echo "($after - $before) * 1000000 / $REQUESTS" | bc -l) "
      done
      stop "$LAST_PID"
      echo "round $round P=$pipeline $which done"
    done
  done
done

med() { tr ' ' '\n' | grep . | median; }
echo
echo "== median of $ROUNDS rounds: requests/s and proxy CPU µs per request =="
printf "%-4s %-5s %10s %10s %8s %9s %9s %8s\n" P test old_rps new_rps new/old old_cpu new_cpu new/old
for pipeline in 16 1; do
  for test in SET GET; do
    o=$(echo "${RPS[old,$pipeline,$test]:-}" | med || true)
    n=$(echo "${RPS[new,$pipeline,$test]:-}" | med || true)
    oc=$(echo "${CPU[old,$pipeline,$test]:-}" | med || true)
    nc=$(echo "${CPU[new,$pipeline,$test]:-}" | med || true)
    [ -n "$o" ] && [ -n "$n" ] || continue
    printf "%-4s %-5s %10.0f %10.0f %8.3f %9.3f %9.3f %8.3f\n" "$pipeline" "$test" "$o" "$n" \
      "$(echo "$n / $o" | bc -l)" "$oc" "$nc" "$(echo "$nc / $oc" | bc -l)"
  done
done
