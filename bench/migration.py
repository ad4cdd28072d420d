#!/usr/bin/env python3
"""Migration benchmark: how fast keys move when a shard joins or drains, and what clients see meanwhile.

Each round starts four ringcache-shards and a ringcache-proxy whose config lists three of them, preloads
--keys keys of --value-bytes bytes through the proxy, and runs ringcache-loadgen in open loop (--rate
requests/s, SET:GET 1:1 over the same keys) while:
  - join: the fourth shard is added to the config (and the proxy sent SIGHUP); timed from the config write
    until the proxy reports it up (its keys seeded, copied and the shard admitted);
  - drain: the second shard gets SIGTERM; timed until it has exited (its keys copied to its stand-ins).
Keys moved come from the proxy's ringcache_proxy_handoff_keys_total, bytes from the receiving shards'
used_memory growth. loadgen's per-second timeline gives throughput and p99 before (the seconds before the
change) and during (the seconds overlapping it); errors are loadgen's, by kind. Medians over the rounds.

Usage: python3 bench/migration.py [--keys 1000000] [--value-bytes 100] [--rate 20000] [--rounds 3]
Builds the binaries in release mode first; needs redis-py.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, f, limit_s=120):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if f():
            return
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting until {what}")


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def metric(port, name, shard):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(f'{name}{{shard="{shard}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def write_config(path, shards):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("shards = [%s]\n" % ", ".join(f'"{n}=127.0.0.1:{p}"' for n, p in shards))
    os.rename(tmp, path)


def used_memory(port):
    return redis.Redis(port=port, protocol=2).info("memory")["used_memory"]


def window(timeline, start_s, end_s):
    """Per-second points of loadgen's timeline overlapping [start_s, end_s]."""
    return [p for p in timeline if p["t_s"] > start_s and p["t_s"] - 1.0 < end_s]


def one_round(args, work):
    procs = []
    try:
        shards = []
        for i in range(4):
            port = free_port()
            d = os.path.join(work, f"s{i + 1}")
            os.makedirs(d)
            procs.append(subprocess.Popen([os.path.join(BIN, "ringcache-shard"), "--port", str(port), "--dir", d,
                                           "--metrics-port", "0", "--maxmemory", "0", "--snapshot-interval", "0",
                                           "--log", "warn"]))
            shards.append((f"s{i + 1}", port))
            wait_until(f"shard {port} listens", lambda: listening(port))
        config = os.path.join(work, "proxy.toml")
        write_config(config, shards[:3])
        proxy_port, metrics_port = free_port(), free_port()
        procs.append(subprocess.Popen([os.path.join(BIN, "ringcache-proxy"), "--port", str(proxy_port),
                                       "--metrics-port", str(metrics_port), "--config", config,
                                       "--health-interval", "100ms", "--failure-limit", "2", "--log", "warn"]))
        wait_until("the proxy listens", lambda: listening(proxy_port) and listening(metrics_port))
        client = redis.Redis(port=proxy_port, protocol=2)
        value = b"v" * args.value_bytes
        for start in range(0, args.keys, 1000):
            client.mset({f"key:{i}": value for i in range(start, min(start + 1000, args.keys))})

        results = {}
        for phase in ("join", "drain"):
            out = os.path.join(work, f"{phase}.json")
            duration = 16
            load = subprocess.Popen([os.path.join(BIN, "ringcache-loadgen"), "--port", str(proxy_port),
                                     "--rate", str(args.rate), "--clients", "20", "--ratio", "1:1",
                                     "--keys", str(args.keys), "--key-prefix", "key:", "--data-size",
                                     str(args.value_bytes), "--test-time", f"{duration}s", "--timeout-ms", "2000",
                                     "--max-error-rate", "1", "--json-out", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            load_started = time.monotonic()
            time.sleep(5)  # a baseline for throughput and p99 before the change
            if phase == "join":
                memory_before = used_memory(shards[3][1])
                t0 = time.monotonic()
                write_config(config, shards)
                procs[4].send_signal(signal.SIGHUP)  # reload now rather than at the next poll of the file
                wait_until("s4 is admitted", lambda: metric(metrics_port, "ringcache_proxy_backend_up", "s4") == 1.0)
                t1 = time.monotonic()
                moved = metric(metrics_port, "ringcache_proxy_handoff_keys_total", "s4")
                moved_bytes = used_memory(shards[3][1]) - memory_before
            else:
                receivers = [shards[0], shards[2], shards[3]]
                memory_before = sum(used_memory(p) for _, p in receivers)
                victim = procs[1]
                t0 = time.monotonic()
                victim.send_signal(signal.SIGTERM)
                victim.wait(timeout=120)
                t1 = time.monotonic()
                moved = metric(metrics_port, "ringcache_proxy_handoff_keys_total", "s2")
                moved_bytes = sum(used_memory(p) for _, p in receivers) - memory_before
            load.wait(timeout=duration + 60)
            with open(out) as f:
                report = json.load(f)
            timeline = [p for p in report["timeline"] if not p["warmup"]]
            start_s, end_s = t0 - load_started, t1 - load_started
            before = window(timeline, 1.0, start_s - 0.5)
            during = window(timeline, start_s, end_s) or before
            seconds = t1 - t0
            results[phase] = {
                "seconds": seconds,
                "keys": moved,
                "keys_per_s": moved / seconds,
                "mb_per_s": moved_bytes / seconds / 1e6,
                "ops_before": statistics.median(p["ops_per_sec"] for p in before),
                "ops_during": min(p["ops_per_sec"] for p in during),
                "p99_before": statistics.median(p["p99_ms"] for p in before),
                "p99_during": max(p["p99_ms"] for p in during),
                "errors": report["errors"],
            }
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ringcache-shard", "-p", "ringcache-proxy",
                    "-p", "ringcache-loadgen"], cwd=ROOT, check=True)
    rounds = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as work:
            res = one_round(args, work)
            rounds.append(res)
            for phase, v in res.items():
                print(f"round {r + 1} {phase}: {json.dumps(v)}", flush=True)
    print(f"\n{args.keys} keys of {args.value_bytes} bytes, loadgen open loop at {args.rate} req/s (SET:GET 1:1); "
          f"medians of {args.rounds} rounds\n")
    print("| change | time | keys moved | keys/s | MB/s | ops/s before -> lowest second during | "
          "p99 before -> worst second during |")
    print("|---|---|---|---|---|---|---|")
    for phase in ("join", "drain"):
        med = lambda k: statistics.median(r[phase][k] for r in rounds)
        print(f"| {phase} | {med('seconds'):.2f} s | {med('keys'):.0f} | {med('keys_per_s'):.0f} | "
              f"{med('mb_per_s'):.1f} | {med('ops_before'):.0f} -> {med('ops_during'):.0f} | "
              f"{med('p99_before'):.2f} -> {med('p99_during'):.2f} ms |")
    for phase in ("join", "drain"):
        print(f"errors during {phase}, per round: " + "; ".join(json.dumps(r[phase]["errors"]) for r in rounds))


if __name__ == "__main__":
    main()
