#!/usr/bin/env bash
# Proxy benchmark, one run, topologies alternated, 3 rounds, medians:
#   (a) ringcache-proxy over 3 redis-servers     (b) nutcracker (twemproxy) over the same 3 redis-servers
#   (c) ringcache-proxy over 3 ringcache-shards  (d) one redis-server, direct
# Load: redis-benchmark -t set,get,mset -n REQUESTS -r 100000 -d 64 -c 50, with -P 1 and -P 16.
#
#   bash bench/proxy_vs_twemproxy.sh
#   ROUNDS=5 REQUESTS=200000 bash bench/proxy_vs_twemproxy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-500000}
for tool in redis-server redis-benchmark nutcracker; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install redis-server redis-tools nutcracker)"; exit 1; }
done
cargo build --release -p ringcache-shard -p ringcache-proxy >/dev/null
source bench/lib.sh

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
    c) "$BIN/ringcache-proxy" --port 17141 --metrics-port 0 --log warn \
         --shards "s1=127.0.0.1:${SHARD_PORTS[0]},s2=127.0.0.1:${SHARD_PORTS[1]},s3=127.0.0.1:${SHARD_PORTS[2]}" &
       FRONT_PID=$!; PORT=17141 ;;
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
median() { sort -g | awk '{ a[NR]=$1 } END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

declare -A R
declare -A M
TOPOLOGIES=(a b c d)
for round in $(seq 1 "$ROUNDS"); do
  for pipeline in 1 16; do
    # Rotate the order each round.
    order=("${TOPOLOGIES[@]:$((round % 4))}" "${TOPOLOGIES[@]:0:$((round % 4))}")
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
printf "%-4s %-5s %10s %10s %10s %10s %8s %8s %8s\n" P op a b c d "a/b" "c/a" "b/d"
for pipeline in 1 16; do
  for op in set get mset; do
    for t in a b c d; do M[$t]=$(echo "${R[$t,$pipeline,$op]}" | tr ' ' '\n' | grep . | median); done
    printf "%-4s %-5s %10.0f %10.0f %10.0f %10.0f %8.2f %8.2f %8.2f\n" "$pipeline" "$op" "${M[a]}" "${M[b]}" "${M[c]}" "${M[d]}" \
      "$(echo "${M[a]} / ${M[b]}" | bc -l)" "$(echo "${M[c]} / ${M[a]}" | bc -l)" "$(echo "${M[b]} / ${M[d]}" | bc -l)"
  done
done
