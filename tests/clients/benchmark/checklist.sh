#!/usr/bin/env bash
# redis-benchmark against one endpoint: its usual test list (strings, lists, sets, hashes, sorted sets,
# MSET of 10 keys, LRANGE), unpipelined and with -P 16, in RESP2 or (with -3) RESP3.
# usage: checklist.sh PORT [-3]
# Prints redis-benchmark's -q output; fails if a test is missing or anything mentions an error.
set -euo pipefail
port=$1 mode=${2:-}
tests=set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset,ping
out=$(for pipeline in 1 16; do
  redis-benchmark $mode -h 127.0.0.1 -p "$port" -q -n 2000 -c 10 -P "$pipeline" -t "$tests" 2>&1
done | tr '\r' '\n' | grep 'requests per second')
echo "$out"
if grep -qiE 'error|err |warning|could not' <<<"$out"; then echo "redis-benchmark reported a problem" >&2; exit 1; fi
for t in PING_INLINE PING_MBULK SET GET INCR LPUSH RPUSH LPOP RPOP SADD HSET SPOP ZADD ZPOPMIN 'LRANGE_100 (first 100 elements)' 'MSET (10 keys)'; do
  n=$(awk -F': ' -v t="$t" '{ sub(/^ +/, "", $1) } $1 == t' <<<"$out" | wc -l)
  [ "$n" -eq 2 ] || { echo "no '$t' result in both runs" >&2; exit 1; }
done
