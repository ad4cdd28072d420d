#!/usr/bin/env python3
"""Robustness benchmark (issue 16): the figures behind what the tests check as behaviour.

Scenarios (all by default, or name some):
  storm     open 10,000 connections (500 connects in flight at a time, each answered PING), and a burst of 500
            connects started at once (latency from connect to PONG): redis-server, ringcache-shard,
            ringcache-proxy over 3 shards, nutcracker over 3 redis-servers; rounds alternated, medians.
  failover  kill -9 of one of 3 shards under load through ringcache-proxy (default timings: health checks
            every 1 s, 3 failures to eject), --replicas 1 and 2, --rounds each: a key-by-key checker (every
            key written by one client thread, which knows its last acknowledged value) counts errors, when the
            last one came after the kill, and lost and stale keys read back after the load.
  greedy    a client pipelining GETs of a 1 MB value and never reading, through ringcache-proxy (and against a
            ringcache-shard alone for reference): the process's peak RSS while it is connected and RSS after it
            left; a bystander (ringcache-loadgen, open loop) on the same proxy with and without it.
  bigvalue  a 512 MB SET and GET through ringcache-proxy (--timeout 1s), nutcracker and a shard directly,
            with a bystander on the proxy's shard connection (--threads 1).
  memory    ringcache-shard and redis-server with --maxmemory 64mb under SET:GET 1:1 (20 clients) for value
            sizes from 100 B to 40 MB: peak and final RSS against the 1.5 x maxmemory + 20 MB target; and RSS
            after a refused 80 MB SET.

Usage: python3 bench/robustness.py [storm failover greedy bigvalue memory] [--rounds 10]
Builds the binaries in release mode first; needs redis-server, nutcracker and redis-py; raises the open-file
limit to 30,000 (run as root, or with a hard limit at least that).
"""

import argparse
import hashlib
import json
import os
import random
import resource
import select
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

import redis

from migration import BIN, ROOT, free_port, listening, wait_until

PROCS = []


def spawn(args, **kw):
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.kill()
        p.wait()


def start_shard(work, extra=()):
    port = free_port()
    d = tempfile.mkdtemp(dir=work)
    p = spawn([os.path.join(BIN, "ringcache-shard"), "--port", str(port), "--dir", d, "--metrics-port", "0",
               "--snapshot-interval", "0", "--maxclients", "20000", "--log", "warn", *extra])
    wait_until(f"shard {port} listens", lambda: listening(port))
    return port, p


def start_redis(work, extra=()):
    port = free_port()
    p = spawn(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", work,
               "--maxclients", "20000", *extra])
    wait_until(f"redis {port} listens", lambda: listening(port))
    return port, p


def start_proxy(shard_ports, extra=()):
    port = free_port()
    shards = ",".join(f"s{i + 1}=127.0.0.1:{p}" for i, p in enumerate(shard_ports))
    p = spawn([os.path.join(BIN, "ringcache-proxy"), "--port", str(port), "--metrics-port", "0", "--shards", shards,
               "--maxclients", "20000", "--log", "warn", *extra])
    wait_until(f"proxy {port} listens", lambda: listening(port))
    return port, p


def start_nutcracker(work, redis_ports):
    port = free_port()
    conf = os.path.join(work, f"nutcracker-{port}.yml")
    with open(conf, "w") as f:
        f.write(f"bench:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n"
                "  auto_eject_hosts: false\n  timeout: 60000\n  servers:\n")
        for i, rp in enumerate(redis_ports):
            f.write(f"   - 127.0.0.1:{rp}:1 s{i + 1}\n")
    p = spawn(["nutcracker", "-c", conf, "-s", str(free_port()), "-o", os.path.join(work, "nutcracker.log")])
    wait_until(f"nutcracker {port} listens", lambda: listening(port))
    return port, p


def rss_mb(p):
    with open(f"/proc/{p.pid}/statm") as f:
        return int(f.read().split()[1]) * 4096 / (1 << 20)


def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


# ----------------------------------------------------------------------------------------------------------
# storm


def connect_answered(port, n, in_flight):
    """Opens `n` connections to `port`, at most `in_flight` not yet answered at a time, each sending PING and
    waiting for PONG (non-blocking sockets on one epoll, so the client adds little of its own); returns the
    seconds each took from its connect call to its PONG, and the whole run's seconds. Closes them after."""
    ep = select.epoll()
    started, done, pending, opened = {}, [], 0, []
    t0 = time.perf_counter()
    launched = 0
    while len(done) < n:
        while launched < n and pending < in_flight:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            started[s.fileno()] = (s, time.perf_counter(), False)
            ep.register(s.fileno(), select.EPOLLOUT)
            launched += 1
            pending += 1
        for fd, event in ep.poll(5):
            s, at, pinged = started[fd]
            if event & (select.EPOLLERR | select.EPOLLHUP):
                raise RuntimeError(f"connection to {port} failed")
            if not pinged:
                s.send(b"*1\r\n$4\r\nPING\r\n")
                started[fd] = (s, at, True)
                ep.modify(fd, select.EPOLLIN)
            else:
                if s.recv(64) != b"+PONG\r\n":
                    raise RuntimeError(f"no PONG from {port}")
                done.append(time.perf_counter() - at)
                ep.unregister(fd)
                opened.append(s)
                pending -= 1
    took = time.perf_counter() - t0
    for s in opened:
        s.close()
    ep.close()
    return done, took


def bench_storm(args, work):
    redis_ports = [start_redis(work)[0] for _ in range(4)]
    shard_ports = [start_shard(work)[0] for _ in range(4)]
    targets = {
        "redis-server": redis_ports[3],
        "ringcache-shard": shard_ports[3],
        "ringcache-proxy (3 shards)": start_proxy(shard_ports[:3])[0],
        "nutcracker (3 redis-servers)": start_nutcracker(work, redis_ports[:3])[0],
    }
    results = {name: {"storm": [], "p50": [], "p99": [], "max": []} for name in targets}
    for r in range(args.storm_rounds):
        for name, port in targets.items():
            _, took = connect_answered(port, 10_000, 500)
            time.sleep(1)  # the servers close the 10,000 connections
            lat, _ = connect_answered(port, 500, 500)
            time.sleep(0.5)
            res = results[name]
            res["storm"].append(took)
            res["p50"].append(percentile(lat, 0.5) * 1000)
            res["p99"].append(percentile(lat, 0.99) * 1000)
            res["max"].append(max(lat) * 1000)
            print(f"round {r + 1} {name}: 10,000 connections {took:.2f} s, burst of 500 p50 "
                  f"{res['p50'][-1]:.1f} ms p99 {res['p99'][-1]:.1f} ms max {res['max'][-1]:.1f} ms", flush=True)
    print(f"\nConnection storm, medians of {args.storm_rounds} rounds\n")
    print("| server | 10,000 connections | burst of 500: p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for name, res in results.items():
        print(f"| {name} | {median(res['storm']):.2f} s | {median(res['p50']):.1f} ms | {median(res['p99']):.1f} ms | "
              f"{median(res['max']):.1f} ms |")


# ----------------------------------------------------------------------------------------------------------
# failover


class Writer(threading.Thread):
    """One client: SETs its own keys with increasing versions and GETs them back; knows each key's last
    acknowledged version, so any read can be judged."""

    def __init__(self, port, index, keys, stop_event):
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port, protocol=2, socket_timeout=5)
        self.index, self.keys, self.stop_event = index, keys, stop_event
        self.acked, self.errors, self.stale, self.ops = {}, [], 0, 0

    def run(self):
        rng = random.Random(self.index)
        version = 0
        while not self.stop_event.is_set():
            key = f"k:{self.index}:{rng.randrange(self.keys)}"
            try:
                if rng.random() < 0.5:
                    version += 1
                    self.client.set(key, str(version))
                    self.acked[key] = version
                else:
                    got = self.client.get(key)
                    if got is not None and key in self.acked and int(got) < self.acked[key]:
                        self.stale += 1
                self.ops += 1
            except redis.RedisError as e:
                self.errors.append((time.monotonic(), str(e)))


def failover_round(work, replicas, writers=8, keys=2000):
    procs = []
    shard_ports = []
    for _ in range(3):
        port, p = start_shard(work)
        shard_ports.append(port)
        procs.append(p)
    proxy_port, proxy = start_proxy(shard_ports, ["--replicas", str(replicas)])
    stop_event = threading.Event()
    threads = [Writer(proxy_port, i, keys, stop_event) for i in range(writers)]
    for t in threads:
        t.start()
    time.sleep(2)
    killed_at = time.monotonic()
    procs[1].kill()
    time.sleep(3)
    stop_event.set()
    for t in threads:
        t.join()
    errors = [e for t in threads for e in t.errors]
    after_kill = [at - killed_at for at, _ in errors if at >= killed_at]
    # Key by key: every acknowledged version must still be there (no lost), and none older (no stale).
    check = redis.Redis(port=proxy_port, protocol=2)
    lost = stale_final = 0
    for t in threads:
        names = list(t.acked)
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            for key, got in zip(chunk, check.mget(chunk)):
                if got is None:
                    lost += 1
                elif int(got) < t.acked[key]:
                    stale_final += 1
    result = {
        "ops": sum(t.ops for t in threads),
        "errors": len(errors),
        "last_error_ms": max(after_kill) * 1000 if after_kill else 0.0,
        "acked_keys": sum(len(t.acked) for t in threads),
        "lost": lost,
        "stale": sum(t.stale for t in threads) + stale_final,
        "examples": [e for _, e in errors[:2]],
    }
    for p in procs + [proxy]:
        stop(p)
    return result


def bench_failover(args, work):
    summary = {}
    for replicas in (2, 1):
        rounds = []
        for r in range(args.rounds):
            res = failover_round(work, replicas)
            rounds.append(res)
            print(f"--replicas {replicas} round {r + 1}: {json.dumps(res)}", flush=True)
        summary[replicas] = rounds
    print(f"\nkill -9 of one of three shards under load (8 clients, SET:GET 1:1 over 16,000 keys, default health "
          f"checks), {args.rounds} rounds each\n")
    print("| --replicas | ops per round | errors (total over rounds) | rounds with errors | last error after the "
          "kill (worst round) | lost keys (total) | stale reads (total) |")
    print("|---|---|---|---|---|---|---|")
    for replicas, rounds in summary.items():
        print(f"| {replicas} | {median([r['ops'] for r in rounds]):.0f} | {sum(r['errors'] for r in rounds)} | "
              f"{sum(1 for r in rounds if r['errors'])} | {max(r['last_error_ms'] for r in rounds):.0f} ms | "
              f"{sum(r['lost'] for r in rounds)} of {sum(r['acked_keys'] for r in rounds)} | "
              f"{sum(r['stale'] for r in rounds)} |")


# ----------------------------------------------------------------------------------------------------------
# greedy


def greedy_client(port, seconds, peak, p):
    """Pipelines GET big for `seconds` without reading a byte; samples `p`'s RSS into peak[0]."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    batch = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n" * 64
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sent += s.send(batch)
        except BlockingIOError:
            time.sleep(0.01)
        peak[0] = max(peak[0], rss_mb(p))
    s.close()
    return sent // len(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")


def bystander(port, seconds, out):
    return spawn([os.path.join(BIN, "ringcache-loadgen"), "--port", str(port), "--rate", "2000", "--clients", "10",
                  "--ratio", "1:1", "--keys", "10000", "--key-prefix", "small:", "--test-time", f"{seconds}s",
                  "--timeout-ms", "5000", "--max-error-rate", "1", "--json-out", out, "--quiet"])


def loadgen_summary(path):
    with open(path) as f:
        r = json.load(f)
    o = r["overall"]
    return o["latency"]["p50_ms"], o["latency"]["p99_ms"], o["latency"]["max_ms"], sum(r["errors"].values())


def bench_greedy(args, work):
    value = b"v" * (1 << 20)
    rows = []
    for target in ("ringcache-proxy", "ringcache-shard alone"):
        shard_ports = [start_shard(work, ["--maxmemory", "1gb"])[0] for _ in range(3 if target == "ringcache-proxy" else 1)]
        port, p = start_proxy(shard_ports) if target == "ringcache-proxy" else (shard_ports[0], PROCS[-1])
        redis.Redis(port=port, protocol=2).set("big", value)
        for with_greedy in (False, True):
            out = os.path.join(work, f"greedy-{target[:6]}-{with_greedy}.json")
            time.sleep(1)
            base = rss_mb(p)
            load = bystander(port, 16, out)
            time.sleep(3)
            peak = [base]
            sent = greedy_client(port, 10, peak, p) if with_greedy else 0
            load.wait(timeout=60)
            after = rss_mb(p)
            p50, p99, worst, errors = loadgen_summary(out)
            rows.append((target, with_greedy, base, peak[0], after, sent, p50, p99, worst, errors))
            print(rows[-1], flush=True)
    print("\nA client pipelining GET of a 1 MB value for 10 s without reading (default "
          "--client-output-buffer-limit 256mb 8mb 0), with a bystander (loadgen open loop, 2,000 req/s, SET:GET "
          "1:1 on small keys)\n")
    print("| server | greedy client | RSS before | peak RSS | RSS after it left (2 s) | GETs it sent | bystander p50 "
          "| p99 | max | bystander errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for target, g, base, peak, after, sent, p50, p99, worst, errors in rows:
        print(f"| {target} | {'yes' if g else 'no'} | {base:.0f} MB | {peak:.0f} MB | {after:.0f} MB | {sent} | "
              f"{p50:.2f} ms | {p99:.2f} ms | {worst:.1f} ms | {errors} |")


# ----------------------------------------------------------------------------------------------------------
# bigvalue


def send_big_set(port, key, size):
    """SET of `size` bytes streamed from a 1 MB pattern; returns (reply, seconds)."""
    s = socket.create_connection(("127.0.0.1", port))
    chunk = bytes(i % 251 for i in range(1 << 20))
    t0 = time.perf_counter()
    s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, size))
    for _ in range(size // len(chunk)):
        s.sendall(chunk)
    s.sendall(b"\r\n")
    reply = s.recv(200)
    return reply, time.perf_counter() - t0, s


def get_big(s, key, size):
    """GET, streaming the reply through a digest; returns (ok, seconds)."""
    chunk = bytes(i % 251 for i in range(1 << 20))
    want = hashlib.sha256()
    for _ in range(size // len(chunk)):
        want.update(chunk)
    t0 = time.perf_counter()
    s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
    header = b"$%d\r\n" % size
    got, digest, remaining = b"", hashlib.sha256(), len(header) + size + 2
    first = True
    while remaining > 0:
        data = s.recv(min(remaining, 4 << 20))
        if not data:
            return False, time.perf_counter() - t0
        if first:
            if not data.startswith(header[:len(data)]):
                return False, time.perf_counter() - t0
            got += data
            if len(got) < len(header):
                remaining -= len(data)
                continue
            data = got[len(header):]
            remaining -= len(header)
            first = False
        body = data[:max(0, remaining - 2)]
        digest.update(body)
        remaining -= len(data)
    return digest.digest() == want.digest(), time.perf_counter() - t0


def bench_bigvalue(args, work):
    size = 512 << 20
    shard_ports = [start_shard(work, ["--maxmemory", "2gb"])[0] for _ in range(3)]
    redis_ports = [start_redis(work, ["--proto-max-bulk-len", "1gb"])[0] for _ in range(3)]
    targets = {
        "ringcache-proxy --timeout 1s --threads 1": start_proxy(shard_ports, ["--threads", "1"])[0],
        "nutcracker": start_nutcracker(work, redis_ports)[0],
        "ringcache-shard directly": shard_ports[0],
    }
    rows = []
    for name, port in targets.items():
        out = os.path.join(work, f"big-{port}.json")
        load = bystander(port, 12, out) if name.startswith("ringcache-proxy") else None
        time.sleep(2 if load else 0)
        reply, set_s, s = send_big_set(port, b"huge", size)
        ok, get_s = get_big(s, b"huge", size)
        s.close()
        by = ""
        if load:
            load.wait(timeout=120)
            p50, p99, worst, errors = loadgen_summary(out)
            by = f"p50 {p50:.2f} ms, p99 {p99:.1f} ms, max {worst:.0f} ms, {errors} errors"
        rows.append((name, reply.strip().decode(errors="replace")[:60], set_s, ok, get_s, by))
        print(rows[-1], flush=True)
    print("\n512 MB SET then GET (value streamed and checked by digest)\n")
    print("| through | SET reply | SET time | GET intact | GET time | bystander on the proxy |")
    print("|---|---|---|---|---|---|")
    for name, reply, set_s, ok, get_s, by in rows:
        print(f"| {name} | `{reply}` | {set_s:.2f} s | {'yes' if ok else 'NO'} | {get_s:.2f} s | {by} |")


# ----------------------------------------------------------------------------------------------------------
# memory


def peak_rss_under_load(port, p, size, seconds=10):
    out = subprocess.Popen([os.path.join(BIN, "ringcache-loadgen"), "--port", str(port), "--clients", "20",
                            "--keys", "100000", "--ratio", "1:1", "--data-size", str(size), "--test-time",
                            f"{seconds}s", "--timeout-ms", "10000", "--max-error-rate", "1", "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while out.poll() is None:
        peak = max(peak, rss_mb(p))
        time.sleep(0.1)
    return peak, rss_mb(p)


def refused_big_set(port, p):
    s = socket.create_connection(("127.0.0.1", port))
    size = 80 << 20
    s.sendall(b"*3\r\n$3\r\nSET\r\n$7\r\nrefused\r\n$%d\r\n" % size + b"x" * size + b"\r\n")
    reply = s.recv(200)
    # A second of light traffic, as a server in use sees.
    c = redis.Redis(port=port, protocol=2)
    end = time.monotonic() + 1
    while time.monotonic() < end:
        c.ping()
        time.sleep(0.01)
    return reply.strip().decode()[:40], rss_mb(p)


def bench_memory(args, work):
    sizes = [100, 10_000, 100_000, 1_000_000, 10_000_000, 40_000_000]
    rows = []
    for name in ("ringcache-shard", "redis-server"):
        for size in sizes:
            if name == "ringcache-shard":
                port, p = start_shard(work, ["--maxmemory", "64mb"])
            else:
                port, p = start_redis(work, ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
            peak, end = peak_rss_under_load(port, p, size)
            rows.append((name, size, peak, end))
            print(rows[-1], flush=True)
            stop(p)
        port, p = start_shard(work, ["--maxmemory", "64mb"]) if name == "ringcache-shard" else start_redis(
            work, ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
        peak_rss_under_load(port, p, 1_000_000, 5)
        reply, after = refused_big_set(port, p)
        rows.append((name, "80 MB SET refused", after, reply))
        print(rows[-1], flush=True)
        stop(p)
    print("\n--maxmemory 64mb (target RSS: 1.5 x 64 MB + 20 MB = 116 MB), ringcache-loadgen 20 clients SET:GET 1:1 "
          "for 10 s per value size\n")
    print("| value size | ringcache-shard peak RSS | end RSS | redis-server peak RSS | end RSS |")
    print("|---|---|---|---|---|")
    by = {(n, s): (pk, e) for n, s, pk, e in rows if not isinstance(s, str)}
    for size in sizes:
        a, b = by[("ringcache-shard", size)], by[("redis-server", size)]
        print(f"| {size:,} B | {a[0]:.0f} MB | {a[1]:.0f} MB | {b[0]:.0f} MB | {b[1]:.0f} MB |")
    for n, s, after, reply in rows:
        if isinstance(s, str):
            print(f"\n{n}: after a refused 80 MB SET (`{reply}`) and 1 s of PINGs: RSS {after:.0f} MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", default=["storm", "failover", "greedy", "bigvalue", "memory"])
    ap.add_argument("--rounds", type=int, default=10, help="kill -9 rounds per --replicas setting")
    ap.add_argument("--storm-rounds", type=int, default=3)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 30_000), hard), hard))
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ringcache-shard", "-p", "ringcache-proxy",
                    "-p", "ringcache-loadgen"], cwd=ROOT, check=True)
    scenarios = {"storm": bench_storm, "failover": bench_failover, "greedy": bench_greedy,
                 "bigvalue": bench_bigvalue, "memory": bench_memory}
    try:
        for name in args.scenarios:
            with tempfile.TemporaryDirectory() as work:
                print(f"== {name} ({time.strftime('%Y-%m-%d')})", flush=True)
                scenarios[name](args, work)
                for p in PROCS:
                    stop(p)
                PROCS.clear()
    finally:
        for p in PROCS:
            stop(p)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    main()
