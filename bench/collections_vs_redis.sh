#!/usr/bin/env bash
# Memory per element of one 1,000,000-element collection (zset, set, hash, list), ringcache-shard against
# redis-server 7 (default encodings: a collection this large is a skiplist, hashtable or quicklist there).
# Each collection is loaded alone into an empty server with `redis-cli --pipe` (RPUSH/SADD/HSET/ZADD in
# batches of 1,000), and INFO's used_memory and used_memory_rss are read before and after. Elements:
# members "member:<i>" (8-14 bytes), hash values "value:<i>", zset scores i, list elements "element:<i>".
# A shard's used_memory is what it charges against --maxmemory (its own accounting); RSS is what the
# process holds from the OS (both allocators keep freed pages, so RSS is only a rough second opinion).
#
#   bash bench/collections_vs_redis.sh
#   N=200000 bash bench/collections_vs_redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
source bench/lib.sh
require_tools redis-server redis-cli python3
cargo build --release -p ringcache-shard >/dev/null

REDIS=18801; SHARD=18802
ensure_free_ports "$REDIS" "$SHARD"

# Writes the commands that build collection $1 (zset|set|hash|list) as RESP to standard output.
commands() {
  python3 - "$1" "$N" <<'PY'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(args):
    out.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
name = {"zset": b"ZADD", "set": b"SADD", "hash": b"HSET", "list": b"RPUSH"}[kind]
for start in range(0, n, 1000):
    args = [name, b"big"]
    for i in range(start, min(n, start + 1000)):
        m = b"member:%d" % i
        if kind == "zset": args += [b"%d" % i, m]
        elif kind == "hash": args += [m, b"value:%d" % i]
        elif kind == "list": args.append(b"element:%d" % i)
        else: args.append(m)
    cmd(args)
PY
}

field() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'; }

printf "%-6s %-7s %14s %14s %12s %12s\n" kind server used_bytes rss_bytes used/elem rss/elem
for kind in zset set hash list; do
  for server in redis ringcache; do
    if [ "$server" = redis ]; then port=$REDIS; start_redis "$port"; else port=$SHARD; start_shard "$port" 0; fi
    pid=$LAST_PID
    wait_port "$port"
    used0=$(field "$port" used_memory); rss0=$(field "$port" used_memory_rss)
    commands "$kind" | redis-cli -p "$port" --pipe >/dev/null
    count=$(case $kind in zset) echo ZCARD ;; set) echo SCARD ;; hash) echo HLEN ;; list) echo LLEN ;; esac)
    got=$(redis-cli -p "$port" "$count" big)
    [ "$got" = "$N" ] || { echo "$server $kind: $got elements, expected $N"; exit 1; }
    used1=$(field "$port" used_memory); rss1=$(field "$port" used_memory_rss)
    used=$((used1 - used0)); rss=$((rss1 - rss0))
    awk -v k="$kind" -v s="$server" -v u="$used" -v r="$rss" -v n="$N" \
      'BEGIN { printf "%-6s %-7s %14d %14d %12.1f %12.1f\n", k, s, u, r, u / n, r / n }'
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
