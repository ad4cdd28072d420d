#!/usr/bin/env bash
# RESP2 against RESP3, side by side with redis-server: GET/SET, HGETALL of a 100-field hash and ZRANGE
# WITHSCORES of 100 members, unpipelined (-P 1) and pipelined (-P 16), on a ringcache-shard and through
# ringcache-proxy (over one shard), with redis-benchmark speaking RESP2 or RESP3 (-3).
#
#   bash bench/resp3.sh [BIN_DIR] [RUNS]        (BIN_DIR defaults to target/release; RUNS to 3)
#   TARGETS=proxy RATES=0 bash bench/resp3.sh   (only the proxy's instruction counts)
#   RESP2_ONLY=1 RATES=0 bash bench/resp3.sh OLD_BIN_DIR   (RESP2 counts only: a build from before RESP3,
#                                                            to compare RESP2 before and after)
#
# Two measures:
# 1. CPU instructions per request, counted by callgrind in the measured server (shard, or proxy with a
#    native shard behind it), one thread: repeatable on a busy machine. Counters are zeroed before and
#    dumped after each workload (callgrind_control), so start-up and data loading are not counted.
# 2. redis-benchmark's requests per second (50 clients), median of RUNS runs, for redis-server, the shard and
#    the proxy. On a small shared machine these move with the machine's load; read them side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_tools valgrind callgrind_control redis-benchmark redis-cli redis-server
BIN=${1:-target/release}
RUNS=${2:-3}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Loads the data the workloads read: a 100-field hash and a 100-member sorted set.
load_data() {
  local port=$1 i fields=() members=()
  for i in $(seq 1 100); do fields+=("field:$i" "value-$i"); members+=("$i.5" "member:$i"); done
  redis-cli -p "$port" HSET bench:h "${fields[@]}" >/dev/null
  redis-cli -p "$port" ZADD bench:z "${members[@]}" >/dev/null
}

# The workloads: name, requests per run (as redis-benchmark counts them), and redis-benchmark's arguments.
WORKLOADS=(getset hgetall zrange)
args_of() {
  case $1 in
    getset) echo "-t set,get" ;;
    hgetall) echo "HGETALL bench:h" ;;
    zrange) echo "ZRANGE bench:z 0 -1 WITHSCORES" ;;
  esac
}
# Requests redis-benchmark sends for -n N (SET and GET are two tests of N each).
requests_of() { if [ "$1" = getset ] && [ "$3" = tests ]; then echo $(($2 * 2)); else echo "$2"; fi; }

# The instructions one workload costs the process under callgrind (pid $1, dumps under $2).
instructions() {
  local pid=$1 prefix=$2 port=$3 workload=$4 proto=$5 pipeline=$6 n=$7 before after
  callgrind_control -z "$pid" >/dev/null 2>&1
  # shellcheck disable=SC2046
  redis-benchmark -p "$port" -c 1 -P "$pipeline" -n "$n" $proto -q $(args_of "$workload") >/dev/null
  before=$(ls "$prefix"* 2>/dev/null | wc -l)
  callgrind_control -d "$pid" >/dev/null 2>&1
  for _ in $(seq 1 200); do
    after=$(ls "$prefix"* 2>/dev/null | wc -l)
    [ "$after" -gt "$before" ] && break
    sleep 0.05
  done
  grep -h '^totals:' "$(ls -t "$prefix"* | head -1)" | awk '{print $2}'
}

callgrind_table() {
  local target=$1 port out pid shard_port n ipr
  port=$(free_port)
  out="$WORK/callgrind.$target"
  if [ "$target" = shard ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$BIN/ringcache-shard" --port "$port" \
      --metrics-port 0 --threads 1 --log warn --dir "$WORK/cg-shard" --snapshot-interval 0 >/dev/null 2>&1 &
    pid=$!
  else
    shard_port=$(free_port)
    start_shard "$shard_port"
    wait_port "$shard_port"
    valgrind --tool=callgrind --callgrind-out-file="$out.%p" "$BIN/ringcache-proxy" --port "$port" \
      --metrics-port 0 --threads 1 --log warn --shards "s1=127.0.0.1:$shard_port" >/dev/null 2>&1 &
    pid=$!
  fi
  PIDS+=("$pid")
  for _ in $(seq 1 3000); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  load_data "$port"
  for workload in "${WORKLOADS[@]}"; do
    for pipeline in 1 16; do
      n=$((pipeline == 1 ? 4000 : 20000))
      row="$target $workload -P $pipeline"
      for proto in "" $([ "${RESP2_ONLY:-0}" = 1 ] || echo "-3"); do
        ipr=$(($(instructions "$pid" "$out.$pid" "$port" "$workload" "$proto" "$pipeline" "$n") / $(requests_of "$workload" "$n" tests)))
        row="$row $ipr"
      done
      if [ "${RESP2_ONLY:-0}" = 1 ]; then
        echo "$row" | awk '{ printf "  %-6s %-8s %s %-3s  RESP2 %7d\n", $1, $2, $3, $4, $5 }'
      else
        echo "$row" | awk '{ printf "  %-6s %-8s %s %-3s  RESP2 %7d  RESP3 %7d  RESP3/RESP2 %.3f\n", $1, $2, $3, $4, $5, $6, $6 / $5 }'
      fi
    done
  done
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

# Median requests/second of RUNS redis-benchmark runs (the GET figure for getset).
rate() {
  local port=$1 workload=$2 proto=$3 pipeline=$4 r
  for r in $(seq 1 "$RUNS"); do
    # shellcheck disable=SC2046
    redis-benchmark -p "$port" -c 50 -P "$pipeline" -n $((pipeline == 1 ? 50000 : 200000)) $proto -q $(args_of "$workload") \
      | tr '\r' '\n' | grep 'requests per second' | tail -1 \
      | awk '{ for (i = 2; i <= NF; i++) if ($i == "requests") print $(i - 1) }'
  done | median
}

echo "# bench/resp3.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(redis-server --version | awk '{print $3}')"
echo "## instructions per request (callgrind, 1 client, server on 1 thread)"
for target in ${TARGETS:-shard proxy}; do callgrind_table "$target"; done
[ "${RATES:-1}" = 1 ] || exit 0

echo "## requests per second (redis-benchmark -c 50, median of $RUNS; getset shows GET)"
redis_port=$(free_port); shard_port=$(free_port); backend_port=$(free_port); proxy_port=$(free_port)
start_redis "$redis_port"; start_shard "$shard_port"; start_shard "$backend_port"
wait_port "$redis_port"; wait_port "$shard_port"; wait_port "$backend_port"
"$BIN/ringcache-proxy" --port "$proxy_port" --metrics-port 0 --log warn --shards "s1=127.0.0.1:$backend_port" &
PIDS+=($!)
wait_port "$proxy_port"
for p in "$redis_port" "$shard_port" "$proxy_port"; do load_data "$p"; done
printf "  %-8s %-9s %-13s %-13s %-13s\n" workload P/proto redis-server shard proxy
for workload in "${WORKLOADS[@]}"; do
  for pipeline in 1 16; do
    for proto in "" "-3"; do
      name=$([ -z "$proto" ] && echo RESP2 || echo RESP3)
      printf "  %-8s %-9s" "$workload" "$pipeline/$name"
      for p in "$redis_port" "$shard_port" "$proxy_port"; do printf " %-13s" "$(rate "$p" "$workload" "$proto" "$pipeline")"; done
      echo
    done
  done
done
