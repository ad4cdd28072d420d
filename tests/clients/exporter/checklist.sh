#!/usr/bin/env bash
# prometheus-redis-exporter (Debian's) scraping one endpoint, with its defaults (plus -redis-only-metrics,
# which leaves out the exporter's own Go runtime series).
# usage: checklist.sh REDIS_PORT EXPORTER_PORT
# Prints the scraped metrics on stdout and the exporter's log on stderr (the test fails on any error or
# warning in it); fails if the exporter does not serve /metrics within 10 s.
set -euo pipefail
port=$1 listen=$2
log=$(mktemp)
prometheus-redis-exporter -redis.addr "redis://127.0.0.1:$port" -web.listen-address "127.0.0.1:$listen" \
  -redis-only-metrics >"$log" 2>&1 &
exporter=$!
status=1
for _ in $(seq 1 200); do
  if metrics=$(curl -sf "http://127.0.0.1:$listen/metrics"); then
    echo "$metrics"
    status=0
    break
  fi
  sleep 0.05
done
kill "$exporter" 2>/dev/null || true
wait "$exporter" 2>/dev/null || true
cat "$log" >&2
rm -f "$log"
[ "$status" -eq 0 ] || echo "the exporter served no /metrics within 10 s" >&2
exit "$status"
