#!/bin/sh
# Container healthcheck for ringcache-shard and ringcache-proxy: healthy only when PING gets PONG.
#
#   ringcache-healthcheck DEFAULT_PORT
#
# `redis-cli -e` exits non-zero on an error reply, so a shard that is still restoring its snapshot
# (-LOADING) or a server that wants a password it was not given (-NOAUTH) is unhealthy; plain
# `redis-cli ping` would exit 0 on both. The port is RINGCACHE_PORT when set, else DEFAULT_PORT; the
# password, if any, is RINGCACHE_REQUIREPASS (passed through REDISCLI_AUTH, never on the command line).
set -u
port="${RINGCACHE_PORT:-${1:-7001}}"
if [ -n "${RINGCACHE_REQUIREPASS:-}" ]; then
  REDISCLI_AUTH="$RINGCACHE_REQUIREPASS"
  export REDISCLI_AUTH
fi
reply="$(redis-cli -e -h 127.0.0.1 -p "$port" ping 2>&1)" || { echo "$reply"; exit 1; }
[ "$reply" = "PONG" ] || { echo "unexpected reply: $reply"; exit 1; }
echo PONG
