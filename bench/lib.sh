# Shared by the bench/ scripts (sourced, never run): a work directory and process list cleaned up on exit,
# waiting for a port, and starting the servers the benchmarks compare, configured alike.

BIN=target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# Exits unless every named command is installed, naming the Debian packages that provide the missing ones.
require_tools() {
  local tool missing=() packages=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    missing+=("$tool")
    case $tool in redis-cli | redis-benchmark) packages+=(redis-tools) ;; *) packages+=("$tool") ;; esac
  done
  [ ${#missing[@]} -eq 0 ] || { echo "needs ${missing[*]} (apt-get install ${packages[*]})"; exit 1; }
}

# Polls until a RESP server answers PING on port $1.
wait_port() { for _ in $(seq 1 500); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.01; done; echo "port $1 never answered"; exit 1; }

# Exits if anything already answers on one of the given ports.
ensure_free_ports() {
  for p in "$@"; do
    if redis-cli -p "$p" ping >/dev/null 2>&1; then echo "port $p is already in use: stop what listens there first"; exit 1; fi
  done
}

# redis-server on port $1, no persistence; sets LAST_PID.
start_redis() {
  redis-server --port "$1" --save '' --appendonly no --dir "$WORK" >/dev/null & PIDS+=($!); LAST_PID=$!
}

# ringcache-shard on port $1 with maxmemory $2 (default 1gb), its own directory and snapshots off, like
# the redis-servers; sets LAST_PID.
start_shard() {
  "$BIN/ringcache-shard" --port "$1" --metrics-port 0 --maxmemory "${2:-1gb}" --log warn \
    --dir "$WORK/shard-$1" --snapshot-interval 0 & PIDS+=($!); LAST_PID=$!
}

# Writes a nutcracker config to $1 listening on 127.0.0.1:$2 over redis-servers on the remaining ports
# (named s1, s2, ... as the proxies name them), with the ring and hash ringcache-proxy uses by default.
write_nutcracker_yml() {
  local file=$1 listen=$2 i=0
  shift 2
  {
    echo "ringcache_bench:"
    echo "  listen: 127.0.0.1:$listen"
    echo "  hash: fnv1a_64"
    echo '  hash_tag: "{}"'
    echo "  distribution: ketama"
    echo "  redis: true"
    echo "  auto_eject_hosts: false"
    echo "  servers:"
    for p in "$@"; do i=$((i + 1)); echo "   - 127.0.0.1:$p:1 s$i"; done
  } >"$file"
}

# Median of the numbers on standard input, one per line.
median() { sort -g | awk '{ a[NR]=$1 } END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

# Prints "ops/s p50 p99 p99.9 hit% errors" (latencies in ms) of a ringcache-loadgen --json-out report.
loadgen_figures() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["overall"]
errors = sum(r["errors"].values())
hit = o["hit_ratio"] * 100 if o["hit_ratio"] is not None else 0
print(f'{o["ops_per_sec"]:.0f} {o["latency"]["p50_ms"]:.3f} {o["latency"]["p99_ms"]:.3f} {o["latency"]["p999_ms"]:.3f} {hit:.2f} {errors}')
PY
}
