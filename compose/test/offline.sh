#!/usr/bin/env bash
# Runs compose/docker-compose.yml for real on this machine's Docker engine, without any registry, and
# checks what a user would: NGINX on a published port answers through 2 proxies and 3 shards, a stopped
# shard only affects its own keys and gets them back, a restarted stack keeps its keys (snapshots),
# Prometheus scrapes every proxy and shard, a fourth shard is added the way the README says, and the
# `zookeeper` profile runs: shards register and join, two proxies follow the ring, and serve on while
# ZooKeeper is stopped.
#
#   bash compose/test/offline.sh
#
# Nothing can be pulled here, so the images are made locally:
#   - debian:bookworm-slim (what the Dockerfiles start from) is a minbase debootstrap, `docker import`ed,
#     when no image by that name exists yet (it is kept: later runs reuse it);
#   - nginx, Prometheus and ZooKeeper come from Debian's packages (compose/test/images/), replacing the
#     official images through RINGCACHE_NGINX_IMAGE / RINGCACHE_PROMETHEUS_IMAGE / RINGCACHE_ZOOKEEPER_IMAGE;
#   - the Rust stage cannot run (no Rust image, no toolchain download), so the binaries are built on this
#     host and the Dockerfiles' `prebuilt` target copies them into the same runtime stage users get;
#   - Grafana cannot be installed here: the stack runs without it (its files are checked by
#     deploy/tests/grafana_dashboard.rs).
#
# Environment:
#   RINGCACHE_PREBUILT_DIR   directory holding ringcache-shard, ringcache-proxy (and ringcache-loadgen) to
#                            use instead of `cargo build --release` (the Rust test wrapper passes its own)
#   RINGCACHE_DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
#
# Exit status: 0 passed, 77 skipped (no Docker engine answers), anything else failed. Everything it starts
# (containers, network, volumes, its own image tags) is removed on exit, also on failure or Ctrl-C.
set -euo pipefail
export LC_ALL=C # one sort order for sort and comm
cd "$(dirname "$0")/../.."
ROOT=$PWD
STARTED=$SECONDS

log() { printf '[offline %4ss] %s\n' "$((SECONDS - STARTED))" "$*"; }
fail() {
  log "FAIL: $*"
  exit 1
}

if ! docker info >/dev/null 2>&1; then
  echo "SKIP: no Docker engine answers ('docker info' failed), so the Compose stack was not tested."
  exit 77
fi
if docker compose version >/dev/null 2>&1; then
  COMPOSE_TOOL=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  COMPOSE_TOOL=(docker-compose)
else
  fail "a Docker engine answers but neither 'docker compose' nor 'docker-compose' is installed"
fi

PROJECT="ringcache-offline-$$"
TAG="$PROJECT"
NET="${PROJECT}_default"
BASE_IMAGE=debian:bookworm-slim
RUNTIME_BASE_IMAGE=ringcache-offline/runtime-base:bookworm
NGINX_IMAGE=ringcache-offline/nginx:bookworm
PROMETHEUS_IMAGE=ringcache-offline/prometheus:bookworm
ZOOKEEPER_IMAGE=ringcache-offline/zookeeper:bookworm
WORK=$(mktemp -d)
PLACEHOLDER="${PROJECT}-placeholder"
LOAD_PID=""
LOAD_KIND=""

# The stack as shipped, plus an override (written below) that defines shard-4 for the "adding a shard"
# step and mounts a copy of compose/ringcache/ into the proxies, so that the test can edit their shard
# list without touching the repository.
compose() {
  "${COMPOSE_TOOL[@]}" -p "$PROJECT" -f "$ROOT/compose/docker-compose.yml" -f "$WORK/override.yml" "$@"
}

teardown() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$LOAD_PID" ]; then kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; fi
  if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
    log "last container logs:"
    compose logs --no-color --tail 30 2>&1 | sed 's/^/    /'
  fi
  remove_placeholders
  compose --profile tools --profile zookeeper down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 \
    || compose down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1
  docker rmi "ringcache-shard:$TAG" "ringcache-proxy:$TAG" "ringcache-loadgen:$TAG" >/dev/null 2>&1
  rm -f docker/prebuilt/*/ringcache-*
  rm -rf "$WORK"
  log "torn down (project $PROJECT); exit status $status"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

remove_placeholders() {
  docker ps -aq --filter "name=$PLACEHOLDER-" | xargs -r docker rm -f >/dev/null 2>&1 || true
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------------- images
ensure_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE exists: reused"
    return
  fi
  command -v debootstrap >/dev/null || fail "$BASE_IMAGE is missing and debootstrap is not installed"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  local mirror=${RINGCACHE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  log "making $BASE_IMAGE with debootstrap (minbase bookworm from $mirror)"
  $sudo debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
  # Like the official image: the deb822 sources with security updates, no docs, no apt lists.
  $sudo rm -f "$WORK/rootfs/etc/apt/sources.list"
  $sudo tee "$WORK/rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $sudo rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/"*.bin \
    "$WORK/rootfs/usr/share/doc/"* "$WORK/rootfs/usr/share/man/"*
  $sudo tar -C "$WORK/rootfs" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.ringcache.offline="debootstrap minbase bookworm, made by compose/test/offline.sh"' \
    --message "debootstrap --variant=minbase bookworm" - "$BASE_IMAGE" >/dev/null
  $sudo rm -rf "$WORK/rootfs"
  log "$BASE_IMAGE imported"
}

build_images() {
  log "building $NGINX_IMAGE and $PROMETHEUS_IMAGE from Debian packages (cached after the first run)"
  quiet_build -t "$NGINX_IMAGE" -f compose/test/images/nginx.Dockerfile compose/test/images
  quiet_build -t "$PROMETHEUS_IMAGE" -f compose/test/images/prometheus.Dockerfile compose/test/images
  quiet_build -t "$ZOOKEEPER_IMAGE" -f compose/test/images/zookeeper.Dockerfile compose/test/images
  # Tagged so that removing this run's images keeps the apt layer the three Dockerfiles share.
  quiet_build -t "$RUNTIME_BASE_IMAGE" --target runtime-base -f shard/Dockerfile .
}

quiet_build() {
  docker build "$@" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; fail "docker build $* failed"; }
}

stage_binaries() {
  local dir=${RINGCACHE_PREBUILT_DIR:-}
  if [ -z "$dir" ]; then
    log "building release binaries on the host"
    cargo build --release --locked -p ringcache-shard -p ringcache-proxy -p ringcache-loadgen
    dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
  fi
  for crate in shard proxy loadgen; do
    [ -x "$dir/ringcache-$crate" ] || fail "no ringcache-$crate in $dir"
    # Debug information is not needed in the image and would make each build context much larger.
    strip --strip-debug -o "docker/prebuilt/$crate/ringcache-$crate" "$dir/ringcache-$crate"
  done
  log "binaries from $dir staged in docker/prebuilt/"
}

# ------------------------------------------------------------------------------------------- the stack
NGINX_PORT=$(free_port)
PROMETHEUS_PORT=$(free_port)
export RINGCACHE_BUILD_TARGET=prebuilt RINGCACHE_TAG="$TAG" RINGCACHE_PUBLISH_ADDR=127.0.0.1
export RINGCACHE_NGINX_PORT="$NGINX_PORT" RINGCACHE_PROMETHEUS_PORT="$PROMETHEUS_PORT"
export RINGCACHE_GRAFANA_PORT="$(free_port)"
export RINGCACHE_NGINX_IMAGE="$NGINX_IMAGE" RINGCACHE_PROMETHEUS_IMAGE="$PROMETHEUS_IMAGE"
export RINGCACHE_ZOOKEEPER_IMAGE="$ZOOKEEPER_IMAGE"
ZK_PROXY_1_PORT=$(free_port)
ZK_PROXY_2_PORT=$(free_port)
export RINGCACHE_ZK_PROXY_1_PORT="$ZK_PROXY_1_PORT" RINGCACHE_ZK_PROXY_2_PORT="$ZK_PROXY_2_PORT"

rcli() { redis-cli -p "$NGINX_PORT" "$@"; }

cp -r compose/ringcache "$WORK/ringcache"
cat >"$WORK/override.yml" <<EOF
services:
  proxy-1:
    volumes: [ "$WORK/ringcache:/etc/ringcache:ro" ]
  proxy-2:
    volumes: [ "$WORK/ringcache:/etc/ringcache:ro" ]
  shard-4:
    image: ringcache-shard:$TAG
    environment: { NO_COLOR: "1" }
    command: [ "--bind", "0.0.0.0", "--port", "7001", "--metrics-port", "9121", "--maxmemory", "256mb",
               "--dir", "/data", "--snapshot-interval", "10s" ]
    volumes: [ "shard-4-data:/data" ]
volumes:
  shard-4-data:
EOF

stack_up() {
  # Everything but Grafana, which cannot be installed here; the loadgen image too (`up` does not build a
  # service it does not start, and `run` would build it then, delaying the load).
  compose up -d --build nginx prometheus >"$WORK/up.log" 2>&1 || { tail -40 "$WORK/up.log"; fail "compose up failed"; }
  compose --profile tools build loadgen >>"$WORK/up.log" 2>&1 || { tail -40 "$WORK/up.log"; fail "building loadgen failed"; }
  wait_for 120 sh -c "[ \"\$(redis-cli -p $NGINX_PORT ping)\" = PONG ]" \
    || fail "no PONG through NGINX on port $NGINX_PORT within 120s"
}

container_ip() {
  docker inspect -f "{{with index .NetworkSettings.Networks \"$NET\"}}{{.IPAddress}}{{end}}" "$(compose ps -q "$1")"
}

health() { docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q "$1")"; }

# Writes N keys offline:key:<i> = value-<i> through NGINX.
N=300
write_keys() {
  seq 1 "$N" | sed 's/.*/SET offline:key:& value-&/' | rcli >"$WORK/set.out"
  [ "$(grep -c '^OK$' "$WORK/set.out")" -eq "$N" ] || fail "not every SET through NGINX answered OK"
}

# Prints the indexes (one per line, in sort's order) of the keys whose GET through NGINX returns the right
# value. A small RESP client, because redis-cli's piped output cannot tell a nil from an error's blank line.
readable_keys() {
  python3 - "$NGINX_PORT" "$N" <<'PY' | sort
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conn = socket.create_connection(("127.0.0.1", port), timeout=30)
replies = conn.makefile("rb")
for i in range(1, n + 1):
    key = b"offline:key:%d" % i
    conn.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
    line = replies.readline()
    if line.startswith(b"$") and int(line[1:]) >= 0:
        value = replies.read(int(line[1:]) + 2)[:-2]
        if value == b"value-%d" % i:
            print(i)
    elif not line.startswith((b"$", b"-")):
        sys.exit("unexpected reply to GET: %r" % line)
PY
}

start_load() {
  local seconds=$1
  # From inside the Compose network, as a user would. Requests to shard-2's keys fail for the few seconds
  # before the proxies eject it, hence the error budget.
  log "load: ringcache-loadgen through NGINX for ${seconds}s (compose run loadgen)"
  LOAD_KIND=loadgen
  compose --profile tools run --rm -T loadgen --host nginx --port 6379 --clients 16 --threads 1 \
    --ratio 1:1 --test-time "${seconds}s" --keys 10000 --data-size 32 --max-error-rate 0.5 \
    >"$WORK/load.out" 2>&1 &
  LOAD_PID=$!
  wait_for 30 sh -c "docker ps -q --filter label=com.docker.compose.project=$PROJECT \
    --filter label=com.docker.compose.service=loadgen --filter status=running | grep -q ." \
    || fail "the loadgen container did not start"
}

stop_load() {
  [ -n "$LOAD_PID" ] || return 0
  local rc=0
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=""
  log "load finished: $(tr '\r' '\n' <"$WORK/load.out" | grep -v '^\s*$' | tail -2 | tr '\n' ' ')"
  if [ "$rc" -ne 0 ]; then
    tail -30 "$WORK/load.out"
    fail "$LOAD_KIND exited with status $rc"
  fi
}

prometheus_query() {
  curl -fsS --get "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode "query=$1"
}

# True when Prometheus has exactly $1 active targets and all of them are up.
all_targets_up() {
  curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
health = {t["labels"]["instance"]: t["health"] for t in targets}
print(health)
sys.exit(0 if len(targets) == int(sys.argv[1]) and all(h == "up" for h in health.values()) else 1)' "$1"
}

# ------------------------------------------------------------------------------------------------ run
ensure_base_image
build_images
stage_binaries

log "compose up (project $PROJECT, NGINX on 127.0.0.1:$NGINX_PORT, Prometheus on 127.0.0.1:$PROMETHEUS_PORT)"
stack_up
log "stack is up"

log "nginx -t inside the nginx container (names resolved by Docker's DNS)"
compose exec -T nginx nginx -t 2>&1 | sed 's/^/    /'
log "promtool check config inside the prometheus container"
compose exec -T prometheus promtool check config /etc/prometheus/prometheus.yml 2>&1 | sed 's/^/    /'

for service in shard-1 proxy-1; do
  uid=$(compose exec -T "$service" id -u | tr -d '\r')
  [ "$uid" = 10001 ] || fail "$service runs as uid $uid, not the image's non-root user 10001"
done
log "shards and proxies run as the non-root user (uid 10001)"

[ "$(rcli set a b)" = OK ] || fail "redis-cli -p $NGINX_PORT set a b did not answer OK"
[ "$(rcli get a)" = b ] || fail "GET a did not return b"
log "redis-cli set a b / get a through NGINX: OK"

write_keys
readable_keys >"$WORK/all"
[ "$(wc -l <"$WORK/all")" -eq "$N" ] || fail "only $(wc -l <"$WORK/all") of $N keys read back"
# Which of them shard-2 holds, asked of the shard itself.
compose exec -T shard-2 redis-cli -p 7001 --scan --pattern 'offline:key:*' | tr -d '\r' \
  | sed 's/^offline:key://' | sort >"$WORK/shard2"
comm -23 "$WORK/all" "$WORK/shard2" >"$WORK/others"
n2=$(wc -l <"$WORK/shard2")
log "$N keys written through NGINX; shard-2 holds $n2 of them"
[ "$n2" -gt 0 ] && [ "$n2" -lt "$N" ] || fail "expected shard-2 to hold some but not all keys"

# ------------------------------------------------------------------- one shard stopped under load
start_load 30
sleep 3
old_ip=$(container_ip shard-2)
log "docker compose stop shard-2 (address $old_ip) under load"
compose stop shard-2 >/dev/null 2>&1
readable_keys >"$WORK/during"
missing=$(comm -23 "$WORK/others" "$WORK/during" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing keys of the other shards could not be read while shard-2 was stopped"
log "all $(wc -l <"$WORK/others") keys of shard-1 and shard-3 still read back"
# Once the proxies have ejected shard-2, writes to any key succeed (shard-2's keys go to the next shard).
all_writes_ok() {
  seq 1 100 | sed 's/.*/SET offline:during:& x/' | rcli | grep -c '^OK$' | grep -qx 100
}
wait_for 20 all_writes_ok || fail "writes still failed 20s after shard-2 stopped (was it ejected?)"
log "after the ejection every write succeeds"

# Make the restarted shard-2 come back on another address: a placeholder container takes the one it had.
# Docker gives out the lowest free address, but frees a stopped container's a moment late, so placeholders
# are started until one holds it (the others hold other addresses, which does no harm).
for i in $(seq 1 10); do
  docker run -d --rm --name "$PLACEHOLDER-$i" --network "$NET" --entrypoint sleep "$RUNTIME_BASE_IMAGE" 300 >/dev/null
  got=$(docker inspect -f "{{with index .NetworkSettings.Networks \"$NET\"}}{{.IPAddress}}{{end}}" "$PLACEHOLDER-$i")
  [ "$got" = "$old_ip" ] && break
  sleep 1
done
[ "$got" = "$old_ip" ] || fail "no placeholder got shard-2's old address $old_ip"
log "a placeholder container took shard-2's old address $old_ip"
compose start shard-2 >/dev/null 2>&1
wait_for 90 sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' $(compose ps -q shard-2))\" = healthy ]" \
  || fail "shard-2 did not become healthy after start (health: $(health shard-2))"
new_ip=$(container_ip shard-2)
log "shard-2 started again: address $old_ip -> $new_ip, health $(health shard-2)"
shard2_back() { [ "$(readable_keys | comm -12 - "$WORK/shard2" | wc -l)" -eq "$n2" ]; }
wait_for 30 shard2_back \
  || fail "shard-2's $n2 keys did not come back after start ($(readable_keys | comm -12 - "$WORK/shard2" | wc -l) read back)"
[ "$old_ip" != "$new_ip" ] || fail "shard-2 came back at its old address $old_ip"
log "all $n2 keys of shard-2 read back through the proxies, which found it at its new address"
stop_load
remove_placeholders

# ---------------------------------------------------------------------------- whole stack restart
log "restarting the whole stack (compose down, volumes kept; compose up)"
compose down --timeout 30 >/dev/null 2>&1
stack_up
readable_keys >"$WORK/after"
[ "$(wc -l <"$WORK/after")" -eq "$N" ] \
  || fail "after the restart only $(wc -l <"$WORK/after") of $N keys came back from the snapshots"
log "all $N keys came back from the shards' snapshots"

# ---------------------------------------------------------------------------------------- Prometheus
wait_for 60 all_targets_up 5 || fail "not every Prometheus target is up: $(all_targets_up 5 || true)"
log "Prometheus targets: $(all_targets_up 5)"
prometheus_query 'sum(ringcache_commands_total)' >"$WORK/q.json"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["data"]["result"]; sys.exit(0 if r and float(r[0]["value"][1]) > 0 else 1)' "$WORK/q.json" \
  || fail "Prometheus has no ringcache_commands_total samples: $(cat "$WORK/q.json")"
log "Prometheus query API answers with ringcache metrics"

# ------------------------------------------------------------------------ adding a shard (README)
log "adding shard-4: compose up -d shard-4, then a line in the proxies' shard list"
compose up -d --no-deps shard-4 >/dev/null 2>&1
wait_for 60 sh -c "[ \"\$(docker inspect -f '{{.State.Health.Status}}' $(compose ps -q shard-4))\" = healthy ]" \
  || fail "shard-4 did not become healthy"
sed -i 's/^]$/  "shard-4=shard-4:7001",\n]/' "$WORK/ringcache/proxy.toml"
grep -q '"shard-4=shard-4:7001"' "$WORK/ringcache/proxy.toml" || fail "could not add shard-4 to the shard list"
shard4_gets_keys() {
  [ "$(compose exec -T shard-4 redis-cli -p 7001 dbsize | tr -d '\r')" -gt 0 ]
}
wait_for 20 shard4_gets_keys || fail "20s after shard-4 was added to proxy.toml, no key went to it"
readable_keys >"$WORK/after-join"
[ "$(wc -l <"$WORK/after-join")" -eq "$N" ] \
  || fail "after shard-4 joined only $(wc -l <"$WORK/after-join") of $N keys read back"
log "the proxies reloaded their shard list: shard-4 took over $(compose exec -T shard-4 redis-cli -p 7001 dbsize | tr -d '\r') keys, and all $N keys still read back"

# ------------------------------------------------------------------ the zookeeper profile (README)
log "the zookeeper profile: ZooKeeper (Debian's package), 3 shards registering and joining, 2 proxies"
compose --profile zookeeper up -d zookeeper zk-shard-1 zk-shard-2 zk-shard-3 zk-proxy-1 zk-proxy-2 \
  >"$WORK/zk-up.log" 2>&1 || { tail -40 "$WORK/zk-up.log"; fail "compose --profile zookeeper up failed"; }
zk_admin() { compose --profile zookeeper run --rm -T --no-deps zk-admin "$@" 2>/dev/null; }
ring_of_three() {
  # Both proxies route to all three shards (in the ring's order, which is the order they joined in).
  zk_admin list >"$WORK/zk-list" && grep -q 'ring (3 shards)' "$WORK/zk-list" && grep -q 'proxies (2)' "$WORK/zk-list" \
    && [ "$(grep -cE 'up \[zk-shard-[1-3],zk-shard-[1-3],zk-shard-[1-3]\]  down \[\]' "$WORK/zk-list")" -eq 2 ]
}
wait_for 120 ring_of_three || { cat "$WORK/zk-list" 2>/dev/null; fail "the ZooKeeper ring did not reach 3 shards on 2 proxies"; }
sed 's/^/    /' "$WORK/zk-list"
for p in "$ZK_PROXY_1_PORT" "$ZK_PROXY_2_PORT"; do
  wait_for 60 sh -c "[ \"\$(redis-cli -p $p ping)\" = PONG ]" || fail "no PONG from the zookeeper profile's proxy on $p"
done
seq 1 100 | sed 's/.*/SET zk:key:& v-&/' | redis-cli -p "$ZK_PROXY_1_PORT" | grep -c '^OK$' | grep -qx 100 \
  || fail "writes through zk-proxy-1 failed"
[ "$(redis-cli -p "$ZK_PROXY_2_PORT" get zk:key:42)" = v-42 ] || fail "zk-proxy-2 does not read what zk-proxy-1 wrote"
log "keys written through zk-proxy-1 read back through zk-proxy-2"
compose --profile zookeeper stop zookeeper >/dev/null 2>&1
seq 1 100 | sed 's/.*/GET zk:key:&/' | redis-cli -p "$ZK_PROXY_2_PORT" | grep -c '^v-' | grep -qx 100 \
  || fail "with ZooKeeper stopped, reads through the proxies failed"
[ "$(redis-cli -p "$ZK_PROXY_1_PORT" set zk:during down)" = OK ] || fail "with ZooKeeper stopped, a write failed"
zk_admin add zk-shard-9 --addr nowhere:7001 && fail "admin changed the ring with ZooKeeper stopped"
log "ZooKeeper stopped: both proxies serve on, and admin refuses ring changes"
compose --profile zookeeper start zookeeper >/dev/null 2>&1
wait_for 120 ring_of_three || fail "after ZooKeeper came back, the proxies did not report the ring again"
log "ZooKeeper back: both proxies follow it again"

log "PASSED in $((SECONDS - STARTED))s"
