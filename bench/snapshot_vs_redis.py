#!/usr/bin/env python3
"""Snapshot benchmark: ringcache-shard's snapshots against redis-server's BGSAVE and RDB load, in one run.

For each dataset (1M keys; random or repetitive 64-byte values; a tenth with a TTL), both servers get the
same keys, then, alternating between them for ROUNDS rounds:
  - write: BGSAVE, polled (INFO persistence, every 2 ms) until it is done; keys/s and MB/s of the file;
  - pause: one client sends GETs back to back while the snapshot runs; its slowest reply against the slowest
    in an equally long window with no snapshot;
  - load: the server is killed (SIGKILL) and started again on its file; time from spawn until INFO says
    loading:0 and a known key reads back.
Medians over the rounds are printed as a markdown table.

Usage: python3 bench/snapshot_vs_redis.py [--keys 1000000] [--rounds 3]
Needs redis-server (Debian's) and redis-py; builds ringcache-shard in release mode first.
"""

import argparse
import base64
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARD = os.path.join(ROOT, "target", "release", "ringcache-shard")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, limit_s=60):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"nothing listens on {port}")


class Server:
    """redis-server or ringcache-shard on its own port and directory."""

    def __init__(self, kind, workdir):
        self.kind = kind
        self.dir = os.path.join(workdir, kind)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    @property
    def file(self):
        name = "dump.rdb" if self.kind == "redis" else "ringcache.snapshot"
        return os.path.join(self.dir, name)

    def start(self):
        if self.kind == "redis":
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                   "--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb", "--loglevel", "warning"]
        else:
            cmd = [SHARD, "--port", str(self.port), "--metrics-port", "0", "--dir", self.dir, "--maxmemory", "0",
                   "--snapshot-interval", "0", "--log", "warn"]
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        return started

    def client(self):
        return redis.Redis(port=self.port, protocol=2, socket_timeout=120)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def fill(server, keys, values, ttl_every=10):
    c = server.client()
    pipe = c.pipeline(transaction=False)
    for i, (k, v) in enumerate(zip(keys, values)):
        if i % ttl_every == 0:
            pipe.set(k, v, ex=100_000)
        else:
            pipe.set(k, v)
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    assert c.dbsize() == len(keys), (server.kind, c.dbsize())


def persistence(c):
    return c.info("persistence")


def bgsave_timed(server):
    """Runs BGSAVE and returns (seconds until done, longest GET latency seen meanwhile in seconds)."""
    c = server.client()
    saves_before = persistence(c).get("rdb_saves", 0)
    stop = threading.Event()
    slowest = [0.0]

    def prober():
        p = server.client()
        while not stop.is_set():
            t = time.perf_counter()
            p.get("key:0000001")
            slowest[0] = max(slowest[0], time.perf_counter() - t)

    th = threading.Thread(target=prober)
    th.start()
    time.sleep(0.05)
    started = time.perf_counter()
    c.bgsave()
    while True:
        info = persistence(c)
        if info["rdb_bgsave_in_progress"] == 0 and info.get("rdb_saves", saves_before + 1) > saves_before:
            break
        time.sleep(0.002)
    took = time.perf_counter() - started
    stop.set()
    th.join()
    assert persistence(c)["rdb_last_bgsave_status"] == "ok"
    return took, slowest[0]


def quiet_slowest(server, seconds):
    """Longest GET latency over `seconds` with no snapshot running (the baseline for the pause)."""
    c = server.client()
    slowest = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        c.get("key:0000001")
        slowest = max(slowest, time.perf_counter() - t)
    return slowest


def load_timed(server, probe_key, probe_value):
    server.kill()
    started = server.start()
    c = server.client()
    while True:
        try:
            if persistence(c)["loading"] == 0 and c.get(probe_key) == probe_value:
                break
        except redis.exceptions.BusyLoadingError:
            pass
        time.sleep(0.002)
    return time.monotonic() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ringcache-shard"], cwd=ROOT, check=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  {args.keys} keys, {args.rounds} rounds, "
          f"redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}",
          file=sys.stderr)
    rng = random.Random(7)
    keys = [f"key:{i:07d}".encode() for i in range(args.keys)]
    datasets = {
        "random 64-byte values": [base64.b64encode(rng.randbytes(48)) for _ in keys],
        "repetitive 64-byte values": [b"x" * 56 + f"{i:08d}".encode() for i in range(args.keys)],
    }
    rows = []
    for name, values in datasets.items():
        work = tempfile.mkdtemp(prefix="rc-snapbench-")
        servers = [Server("redis", work), Server("ringcache", work)]
        try:
            for s in servers:
                s.start()
                fill(s, keys, values)
            raw_bytes = sum(len(k) + len(v) for k, v in zip(keys, values))
            results = {s.kind: {"write": [], "pause": [], "quiet": [], "load": [], "size": []} for s in servers}
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for s in order:
                    took, pause = bgsave_timed(s)
                    quiet = quiet_slowest(s, took)
                    size = os.path.getsize(s.file)
                    load = load_timed(s, keys[1], values[1])
                    res = results[s.kind]
                    res["write"].append(took)
                    res["pause"].append(pause)
                    res["quiet"].append(quiet)
                    res["size"].append(size)
                    res["load"].append(load)
                    print(f"  {name} round {r + 1} {s.kind:9}: write {took:.3f}s, slowest GET {pause * 1e3:.2f}ms "
                          f"(quiet {quiet * 1e3:.2f}ms), file {size / 1e6:.1f} MB, load {load:.3f}s", file=sys.stderr)
            for kind in ("redis", "ringcache"):
                res = results[kind]
                med = {k: statistics.median(v) for k, v in res.items()}
                rows.append((name, kind, med, raw_bytes))
        finally:
            for s in servers:
                s.kill()
            shutil.rmtree(work, ignore_errors=True)

    print(f"| data | server | write s | write keys/s | write MB/s | file MB | load s | load keys/s | "
          f"slowest GET during / without snapshot (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    n = args.keys
    for name, kind, med, raw in rows:
        size = med["size"]
        print(f"| {name} | {kind} | {med['write']:.3f} | {n / med['write'] / 1e6:.2f}M | "
              f"{size / med['write'] / 1e6:.0f} | {size / 1e6:.1f} | {med['load']:.3f} | "
              f"{n / med['load'] / 1e6:.2f}M | {med['pause'] * 1e3:.2f} / {med['quiet'] * 1e3:.2f} |")
    by = {(name, kind): med for name, kind, med, _ in rows}
    for name in datasets:
        r, c = by[(name, "redis")], by[(name, "ringcache")]
        print(f"\n{name}: ringcache/redis write speed {r['write'] / c['write']:.2f}x, load speed "
              f"{r['load'] / c['load']:.2f}x, file size {c['size'] / r['size']:.2f}x of the RDB")


if __name__ == "__main__":
    main()
