#!/usr/bin/env bash
# Proxy benchmark, one run, topologies alternated, 3 rounds, medians:
#   (a) ringcache-proxy over 3 redis-servers     (b) nutcracker (twemproxy) over the same 3 redis-servers
#   (c) ringcache-proxy over 3 ringcache-shards  (d) one redis-server, direct
#   (a1), (c1): (a) and (c) with --threads 1 instead of the default (one worker per core)
# Load: redis-benchmark -t set,get,mset -n REQUESTS -r 100000 -d 64 -c 50, with -P 1 and -P 16.
#
#   bash bench/proxy_vs_twemproxy.sh
#   ROUNDS=5 REQUESTS=200000 bash bench/proxy_vs_twemproxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-500000}
source bench/lib.sh
require_tools redis-server redis-benchmark nutcracker
cargo build --release -p ringcache-shard -p ringcache-proxy >/dev/null

# Backends stay up for the whole run; each topology's front end is started fresh per measurement.
REDIS_PORTS=(17101 17102 17103); SHARD_PORTS=(17111 17112 17113); DIRECT=17120
for p in "${REDIS_PORTS[@]}" "$DIRECT"; do start_redis "$p"; done
for p in "${SHARD_PORTS[@]}"; do start_shard "$p"; done
for p in "${REDIS_PORTS[@]}" "${SHARD_PORTS[@]}" "$DIRECT"; do wait_port "$p"; done

write_nutcracker_yml "$WORK/nutcracker.yml" 17130 "${REDIS_PORTS[@]}"

# Starts topology $1; prints its port and sets FRONT_PID (empty for direct).
start_front() {
  FRONT_PID=""
  case $1 in
    a) "$BIN/ringcache-proxy" --port 17140 --metrics-port 0 --log warn \
         --shards "s1=127.0.0.1:${REDIS_PORTS[0]},s2=127.0.0.1:${REDIS_PORTS[1]},s3=127.0.0.1:${REDIS_PORTS[2]}" &
       FRONT_PID=$!; PORT=17140 ;;
    b) nutcracker -c "$WORK/nutcracker.yml" -s 17131 -o "$WORK/nutcracker.log" &
       FRONT_PID=$!; PORT=17130 ;;
    a1) "$BIN/ringcache-proxy" --port 17142 --metrics-port 0 --log warn --threads 1 \
         --shards "s1=127.0.0.1:${REDIS_PORTS[0]},s2=127.0.0.1:${REDIS_PORTS[1]},s3=127.0.0.1:${REDIS_PORTS[2]}" &
       FRONT_PID=$!; PORT=17142 ;;
    c) "$BIN/ringcache-proxy" --port 17141 --metrics-port 0 --log warn \
         --shards "s1=127.0.0.1:${SHARD_PORTS[0]},s2=127.0.0.1:${SHARD_PORTS[1]},s3=127.0.0.1:${SHARD_PORTS[2]}" &
       FRONT_PID=$!; PORT=17141 ;;
    c1) "$BIN/ringcache-proxy" --port 17143 --metrics-port 0 --log warn --threads 1 \
         --shards "s1=127.0.0.1:${SHARD_PORTS[0]},s2=127.0.0.1:${SHARD_PORTS[1]},s3=127.0.0.1:${SHARD_PORTS[2]}" &
       FRONT_PID=$!; PORT=17143 ;;
    d) PORT=$DIRECT ;;
  esac
  wait_port "$PORT"
}

# Prints "set get mset" requests/s.
run_bench() {
  redis-benchmark -p "$1" -t set,get,mset -n "$REQUESTS" -r 100000 -d 64 -c 50 -P "$2" -q 2>/dev/null \
    | tr '\r' '\n' | grep "requests per second" \
    | awk '{ name=$1; sub(":", "", name); for (i=2;i<=NF;i++) if ($i ~ /^[0-9.]+$/) { print name, $i; break } }' \
    | awk '{ r[$1]=$2 } END { printf "%s %s %s\n", r["SET"], r["GET"], r["MSET"] }'
}

declare -A R
declare -A M
TOPOLOGIES=(a a1 b c c1 d)
for round in $(seq 1 "$ROUNDS"); do
  for pipeline in 1 16; do
    # Rotate the order each round.
    order=("${TOPOLOGIES[@]:$((round % 6))}" "${TOPOLOGIES[@]:0:$((round % 6))}")
    for t in "${order[@]}"; do
      start_front "$t"
      read -r s g m < <(run_bench "$PORT" "$pipeline")
      [ -n "$FRONT_PID" ] && { kill "$FRONT_PID"; wait "$FRONT_PID" 2>/dev/null || true; }
      R["$t,$pipeline,set"]+="$s "; R["$t,$pipeline,get"]+="$g "; R["$t,$pipeline,mset"]+="$m "
      echo "round $round P=$pipeline topology $t: SET $s GET $g MSET $m"
    done
  done
done

echo
echo "== median requests/s over $ROUNDS rounds =="
echo "(a) ringcache-proxy→redis  (b) nutcracker→redis  (c) ringcache-proxy→ringcache-shard  (d) redis direct"
echo "(a1), (c1): the same proxies with --threads 1"
printf "%-4s %-5s %9s %9s %9s %9s %9s %9s %6s %6s %6s %6s %6s\n" P op a a1 b c c1 d "a/b" "a1/b" "c/a" "c1/a1" "b/d"
ratio() { echo "$1 / $2" | bc -l; }
for pipeline in 1 16; do
  for op in set get mset; do
    for t in "${TOPOLOGIES[@]}"; do M[$t]=$(echo "${R[$t,$pipeline,$op]}" | tr ' ' '\n' | grep . | median); done
    printf "%-4s %-5s %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %6.2f %6.2f %6.2f %6.2f %6.2f\n" "$pipeline" "$op" \
      "${M[a]}" "${M[a1]}" "${M[b]}" "${M[c]}" "${M[c1]}" "${M[d]}" "$(ratio "${M[a]}" "${M[b]}")" \
      "$(ratio "${M[a1]}" "${M[b]}")" "$(ratio "${M[c]}" "${M[a]}")" "$(ratio "${M[c1]}" "${M[a1]}")" "$(ratio "${M[b]}" "${M[d]}")"
  done
done
