#!/usr/bin/env bash
# The cost of TLS: redis-benchmark SET and GET (-P 1 -c 50, unpipelined, the case where per-request work
# shows most) against plain TCP and TLS, on a shard, on a proxy (TLS to clients only, then TLS on both
# hops), and on redis-server built with TLS (Debian's is) as the reference. Reports requests/s and the
# servers' CPU time (user + system, all threads, from /proc/PID/stat) per request, medians of ROUNDS.
#
#   bash bench/tls_cost.sh                       # release binaries in target/release
#   ROUNDS=5 REQUESTS=300000 bash bench/tls_cost.sh
#
# Certificates: a throwaway EC P-256 CA and server certificate for 127.0.0.1 made with openssl; clients
# are not asked for certificates (--tls-auth-clients no) so every TLS client of redis-benchmark connects
# alike. Each configuration runs on freshly started servers; the proxy has one shard behind it and
# --threads 1, so the benchmark client keeps the other core.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
SHARD=18801; SHARD_TLS=18802; PROXY=18803; PROXY_TLS=18804; REDIS=18805; REDIS_TLS=18806

source bench/lib.sh
BIN=${BIN_DIR:-$BIN}  # BIN_DIR=target/debug for a quick check of the script itself
require_tools redis-server redis-benchmark redis-cli openssl bc
ensure_free_ports $SHARD $SHARD_TLS $PROXY $PROXY_TLS $REDIS $REDIS_TLS

# --- certificates ---
C=$WORK/certs; mkdir -p "$C"
openssl ecparam -name prime256v1 -genkey -noout -out "$C/ca.key" 2>/dev/null
openssl req -x509 -new -key "$C/ca.key" -subj "/CN=bench CA" -days 2 -out "$C/ca.crt" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$C/server.key.ec" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$C/server.key.ec" -out "$C/server.key"
openssl req -new -key "$C/server.key" -subj "/CN=127.0.0.1" -out "$C/server.csr" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n" >"$C/ext"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 2 \
  -extfile "$C/ext" -out "$C/server.crt" 2>/dev/null
TLS_FILES=(--tls-cert-file "$C/server.crt" --tls-key-file "$C/server.key" --tls-ca-cert-file "$C/ca.crt")

cpu_seconds() { local t=0 p; for p in "$@"; do t=$(echo "$t + $(awk '{ print ($14 + $15) / 100 }' "/proc/$p/stat")" | bc -l); done; echo "$t"; }
wait_tls() { for _ in $(seq 1 500); do redis-cli -p "$1" --tls --cacert "$C/ca.crt" ping >/dev/null 2>&1 && return 0; sleep 0.01; done; echo "TLS port $1 never answered"; exit 1; }
stop_all() { for p in "${RUNNING[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; RUNNING=(); }

# Starts configuration $1; sets PORT, TLS (the redis-benchmark flags) and RUNNING (the pids to measure).
start_config() {
  RUNNING=(); TLS=()
  case $1 in
    shard-plain)
      "$BIN/ringcache-shard" --port $SHARD --metrics-port 0 --log warn --dir "$WORK/s" --snapshot-interval 0 &
      RUNNING=($!); PORT=$SHARD; wait_port $SHARD ;;
    shard-tls)
      "$BIN/ringcache-shard" --port 0 --tls-port $SHARD_TLS "${TLS_FILES[@]}" --tls-auth-clients no \
        --metrics-port 0 --log warn --dir "$WORK/s" --snapshot-interval 0 &
      RUNNING=($!); PORT=$SHARD_TLS; TLS=(--tls --cacert "$C/ca.crt"); wait_tls $SHARD_TLS ;;
    redis-plain)
      redis-server --port $REDIS --save '' --appendonly no --dir "$WORK" >/dev/null &
      RUNNING=($!); PORT=$REDIS; wait_port $REDIS ;;
    redis-tls)
      redis-server --port 0 --tls-port $REDIS_TLS --tls-cert-file "$C/server.crt" --tls-key-file "$C/server.key" \
        --tls-ca-cert-file "$C/ca.crt" --tls-auth-clients no --save '' --appendonly no --dir "$WORK" >/dev/null &
      RUNNING=($!); PORT=$REDIS_TLS; TLS=(--tls --cacert "$C/ca.crt"); wait_tls $REDIS_TLS ;;
    proxy-plain | proxy-tls-clients)
      "$BIN/ringcache-shard" --port $SHARD --metrics-port 0 --log warn --dir "$WORK/s" --snapshot-interval 0 &
      RUNNING=($!); wait_port $SHARD
      if [ "$1" = proxy-plain ]; then
        "$BIN/ringcache-proxy" --port $PROXY --metrics-port 0 --log error --threads 1 --shards "s1=127.0.0.1:$SHARD" &
        RUNNING+=($!); PORT=$PROXY; wait_port $PROXY
      else
        "$BIN/ringcache-proxy" --port 0 --tls-port $PROXY_TLS "${TLS_FILES[@]}" --tls-auth-clients no \
          --metrics-port 0 --log error --threads 1 --shards "s1=127.0.0.1:$SHARD" &
        RUNNING+=($!); PORT=$PROXY_TLS; TLS=(--tls --cacert "$C/ca.crt"); wait_tls $PROXY_TLS
      fi ;;
    proxy-tls-both)
      # The shard asks the proxy for its certificate (tls-auth-clients yes): the proxy presents server.crt.
      "$BIN/ringcache-shard" --port 0 --tls-port $SHARD_TLS "${TLS_FILES[@]}" \
        --metrics-port 0 --log warn --dir "$WORK/s" --snapshot-interval 0 &
      RUNNING=($!)
      "$BIN/ringcache-proxy" --port 0 --tls-port $PROXY_TLS "${TLS_FILES[@]}" --tls-auth-clients no \
        --tls-shards yes --metrics-port 0 --log error --threads 1 --shards "s1=127.0.0.1:$SHARD_TLS" &
      RUNNING+=($!); PORT=$PROXY_TLS; TLS=(--tls --cacert "$C/ca.crt"); wait_tls $PROXY_TLS ;;
  esac
  PIDS+=("${RUNNING[@]}")
}

# Prints the requests/s of one redis-benchmark run of test $1.
run_bench() {
  redis-benchmark -p "$PORT" "${TLS[@]}" -t "$1" -n "$REQUESTS" -r 100000 -d 64 -c 50 -P 1 -q 2>/dev/null \
    | tr '\r' '\n' | awk -F'[: ]+' '/requests per second/ { for (i=2;i<=NF;i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'
}

CONFIGS=(shard-plain shard-tls proxy-plain proxy-tls-clients proxy-tls-both redis-plain redis-tls)
declare -A RPS CPU
for round in $(seq 1 "$ROUNDS"); do
  for config in "${CONFIGS[@]}"; do
    start_config "$config"
    for test in set get; do
      before=$(cpu_seconds "${RUNNING[@]}")
      rps=$(run_bench "$test")
      after=$(cpu_seconds "${RUNNING[@]}")
      RPS["$config,$test"]+="$rps "
      CPU["$config,$test"]+="$(echo "($after - $before) * 1000000 / $REQUESTS" | bc -l) "
    done
    stop_all
    rm -rf "$WORK/s"
  done
  echo "round $round done"
done

med() { tr ' ' '\n' | grep . | median; }
echo
echo "== medians of $ROUNDS rounds, redis-benchmark -P 1 -c 50 -d 64 -n $REQUESTS: requests/s, server CPU µs/request =="
echo "   (proxy rows: CPU of the proxy + its shard)"
printf "%-18s %10s %9s %10s %9s\n" config SET_rps SET_cpu GET_rps GET_cpu
for config in "${CONFIGS[@]}"; do
  printf "%-18s %10.0f %9.2f %10.0f %9.2f\n" "$config" \
    "$(echo "${RPS[$config,set]}" | med)" "$(echo "${CPU[$config,set]}" | med)" \
    "$(echo "${RPS[$config,get]}" | med)" "$(echo "${CPU[$config,get]}" | med)"
done
