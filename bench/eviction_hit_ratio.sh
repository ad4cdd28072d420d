#!/usr/bin/env bash
# Hit ratio of each eviction policy, ringcache-shard against redis-server at the same maxmemory, on a
# cache-aside workload: ringcache-loadgen GETs keys drawn from a zipf distribution and SETs a key after its
# GET misses (--set-on-miss), every SET with a TTL so the volatile-* policies have keys to evict.
#
#   bash bench/eviction_hit_ratio.sh [POLICIES...]
#
# Environment: MAXMEMORY (16mb), SHARD_MAXMEMORY (= MAXMEMORY), KEYS (400000), ZIPF (0.99), DATA_SIZE (64), WARMUP (4s), TEST_TIME (8s),
# RUNS (3), CLIENTS (4), PIPELINE (16). For each policy and server: a fresh server, RUNS runs (seeds 1..RUNS,
# FLUSHALL before each), the GET hit ratio of each; prints the median per policy and server as a
# Markdown table. Needs target/release/{ringcache-shard,ringcache-loadgen} (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_tools redis-server redis-cli python3

MAXMEMORY=${MAXMEMORY:-16mb}
# The shard's budget counts keys, values and an estimated 48 bytes per key; redis-server's counts what its
# allocator holds (about 1 MB at start, and more per key): at the same maxmemory the shard keeps more keys.
# SHARD_MAXMEMORY=9mb (about as many keys as redis-server keeps in 16mb) compares the policies alone.
SHARD_MAXMEMORY=${SHARD_MAXMEMORY:-$MAXMEMORY}
KEYS=${KEYS:-400000}
ZIPF=${ZIPF:-0.99}
DATA_SIZE=${DATA_SIZE:-64}
WARMUP=${WARMUP:-4s}
TEST_TIME=${TEST_TIME:-8s}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-4}
PIPELINE=${PIPELINE:-16}
if [ $# -gt 0 ]; then
  POLICIES=("$@")
else
  POLICIES=(allkeys-lru allkeys-lfu allkeys-random volatile-lru volatile-lfu volatile-random volatile-ttl)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One loadgen run against port $1 with seed $2; prints the GET hit ratio in percent.
hit_ratio() {
  local port=$1 seed=$2 out="$WORK/run.$RANDOM.json"
  redis-cli -p "$port" flushall >/dev/null
  "$BIN/ringcache-loadgen" --host 127.0.0.1 --port "$port" --threads 1 --clients "$CLIENTS" --pipeline "$PIPELINE" \
    --ratio 0:1 --set-on-miss --set-ttl 3600 --keys "$KEYS" --key-pattern zipf --zipf-exponent "$ZIPF" \
    --data-size "$DATA_SIZE" --seed "$seed" --warmup "$WARMUP" --test-time "$TEST_TIME" --quiet \
    --json-out "$out" >/dev/null
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
get = [c for c in r["commands"] if c["name"] == "GET"][0]
print("%.2f" % (100.0 * get["hits"] / max(1, get["hits"] + get["misses"])))' "$out"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Runs every seed against a fresh server started by `$1 port policy`; prints "median (r1 r2 r3)".
measure() {
  local start=$1 policy=$2 port pid ratios=()
  port=$(free_port)
  "$start" "$port" "$policy"
  pid=$LAST_PID
  wait_port "$port"
  for seed in $(seq 1 "$RUNS"); do ratios+=("$(hit_ratio "$port" "$seed")"); done
  keys=$(redis-cli -p "$port" dbsize)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(median "${ratios[@]}") (${ratios[*]}; $keys keys)"
}

redis_with() {
  redis-server --port "$1" --save '' --appendonly no --dir "$WORK" --maxmemory "$MAXMEMORY" \
    --maxmemory-policy "$2" >/dev/null & PIDS+=($!); LAST_PID=$!
}

shard_with() {
  "$BIN/ringcache-shard" --port "$1" --metrics-port 0 --maxmemory "$SHARD_MAXMEMORY" --maxmemory-policy "$2" \
    --log warn --dir "$WORK/shard-$1" --snapshot-interval 0 & PIDS+=($!); LAST_PID=$!
}

echo "maxmemory $MAXMEMORY (shard $SHARD_MAXMEMORY), $KEYS keys, zipf $ZIPF, $DATA_SIZE-byte values, GET then SET on miss (EX 3600),"
echo "$CLIENTS clients x pipeline $PIPELINE, warmup $WARMUP, measured $TEST_TIME; GET hit ratio %, median of $RUNS (runs)"
echo
echo "| policy | redis-server 7 | ringcache-shard | shard - redis |"
echo "|---|---|---|---|"
for policy in "${POLICIES[@]}"; do
  r=$(measure redis_with "$policy")
  s=$(measure shard_with "$policy")
  diff=$(python3 -c "print('%+.2f' % (float('${s%% *}') - float('${r%% *}')))")
  echo "| $policy | $r | $s | $diff |"
done
