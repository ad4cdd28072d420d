#!/usr/bin/env bash
# The client checklist with redis-cli, one command per invocation (one-shot), plain or with -3 (RESP3).
# usage: checklist.sh PORT PREFIX [-3]
# Prints a transcript: each step's name and redis-cli's output. The test compares it with the transcript of
# the same run against redis-server (key names never appear in it; only counts of scanned keys do).
set -euo pipefail
port=$1 prefix=$2 mode=${3:-}
cli() { redis-cli $mode -h 127.0.0.1 -p "$port" "$@"; }
step() { echo "## $1"; shift; cli "$@"; }

step ping PING
step set SET "$prefix:s" v
step get GET "$prefix:s"
# A binary value (every byte but NUL, which a shell argument cannot hold) sent with -x from stdin.
printf "$(printf '\\%03o' $(seq 1 255))" | cli -x SET "$prefix:bin" >/dev/null
echo "## binary"; cli --no-raw GET "$prefix:bin"
step incr INCR "$prefix:n"
step expire EXPIRE "$prefix:s" 100
echo "## ttl"; ttl=$(cli TTL "$prefix:s"); [ "$ttl" -ge 99 ] && [ "$ttl" -le 100 ] && echo ok
pairs=(); keys=()
for i in $(seq 0 49); do pairs+=("$prefix:m$i" "v$i"); keys+=("$prefix:m$i"); done
step mset MSET "${pairs[@]}"
step mget MGET "${keys[@]}"
step del DEL "${keys[@]}"
echo "## pipeline"
for i in $(seq 1 1000); do printf 'INCR %s\r\n' "$prefix:p"; done | cli --pipe
step pipeline-result GET "$prefix:p"
step hset HSET "$prefix:h" a 1 b 2
echo "## hgetall"; cli HGETALL "$prefix:h" | paste -sd' ' | tr ' ' '\n' | sort | paste -sd' '
step sadd SADD "$prefix:set" x y z
echo "## smembers"; cli SMEMBERS "$prefix:set" | sort
step zadd ZADD "$prefix:z" 1.5 one 2.25 two
step zrange ZRANGE "$prefix:z" 0 -1 WITHSCORES
for i in $(seq 0 999); do printf 'SET %s 1\r\n' "$prefix:scan:$i"; done | cli --pipe >/dev/null
echo "## scan"; cli --scan --pattern "$prefix:scan:*" | sort | uniq -c | awk '{print $1}' | sort | uniq -c
echo "## info"; cli INFO server | grep -c '^redis_version:'
step setname CLIENT SETNAME checklist
step getname CLIENT GETNAME
step unknown NOSUCHCOMMAND x
step ping-after PING
step wrongtype LPUSH "$prefix:s" x
step get-after GET "$prefix:s"
