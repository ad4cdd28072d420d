#!/usr/bin/env bash
# The key-by-key crash checker (proxy/tests/crash_checker.rs) at full size: three shards behind a proxy, v1
# in a snapshot, v2 acknowledged just before `kill -9` of one shard (a different one each round), v3 or DEL
# during its outage; after its restart and readmission every key is read and counted as lost, stale or
# resurrected. Every setting of the README's durability table, ROUNDS rounds of KEYS keys each.
#
#   bash bench/crash_checker.sh                 # 10 rounds of 30,000 keys per setting
#   ROUNDS=3 KEYS=10000 bash bench/crash_checker.sh
#   CARGO_FLAGS= bash bench/crash_checker.sh    # debug build (no release build of the proxy's tests)
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKER_ROUNDS=${ROUNDS:-10} CHECKER_KEYS=${KEYS:-30000} \
  cargo test ${CARGO_FLAGS---release} -p ringcache-proxy --test crash_checker -- --ignored --nocapture every_durability_setting_counted \
  2>/dev/null | grep '^CHECKER'
