#!/usr/bin/env python3
"""CPU microseconds per request of shard builds (and redis-server) under SET:GET 1:1 for several value sizes.

Usage: python3 bench/alloc_cpu.py NAME=PATH/TO/ringcache-shard [NAME=...] [redis=redis]
       SIZES="100 20000 300000" to choose the value sizes.
Each server gets --maxmemory 256mb; ringcache-loadgen (1 thread, 4 clients, 200 keys) runs 5 s against it; the
server's CPU time (user + system, from /proc) is divided by the replies. Builds are alternated, 3 rounds,
medians printed. Used to choose ringcache-alloc's mapping threshold (docs/BENCHMARKS.md): build the shard once
per value of `MAPPED_ALLOC_BYTES` (each in its own CARGO_TARGET_DIR) and pass both binaries.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from migration import BIN, free_port, listening, wait_until

ROUNDS = 3


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_us_per_request(binary, size):
    port = free_port()
    work = tempfile.mkdtemp(prefix="alloc_cpu")
    if binary == "redis":
        cmd = ["redis-server", "--port", str(port), "--save", "", "--maxmemory", "256mb",
               "--maxmemory-policy", "allkeys-lru", "--dir", work]
    else:
        cmd = [binary, "--port", str(port), "--dir", work, "--maxmemory", "256mb"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(f"{binary} listens on {port}", lambda: listening(port))
        before = cpu_seconds(server.pid)
        out = os.path.join(work, "loadgen.json")
        subprocess.run([os.path.join(BIN, "ringcache-loadgen"), "--port", str(port), "--threads", "1",
                        "--clients", "4", "--ratio", "1:1", "--keys", "200", "--data-size", str(size),
                        "--test-time", "5s", "--json-out", out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        used = cpu_seconds(server.pid) - before
        with open(out) as f:
            replies = json.load(f)["overall"]["ok_replies"]
        return used * 1e6 / replies
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    servers = dict(arg.split("=", 1) for arg in sys.argv[1:])  # name=binary; "redis" runs redis-server
    for size in [int(x) for x in os.environ.get("SIZES", "100 20000 300000 700000 2000000").split()]:
        results = {name: [] for name in servers}
        for _ in range(ROUNDS):
            for name, binary in servers.items():
                results[name].append(cpu_us_per_request(binary, size))
        print(size, {name: round(statistics.median(v)) for name, v in results.items()}, flush=True)


if __name__ == "__main__":
    main()
