#!/usr/bin/env python3
"""CPU microseconds per request of shard builds (and redis-server) under SET:GET 1:1 for several value sizes.

Usage: python3 bench/alloc_cpu.py NAME=PATH/TO/ringcache-shard [NAME=...] [redis=redis]
       SIZES="100 20000 300000" to choose the value sizes.
Each server gets --maxmemory 256mb; ringcache-loadgen (1 thread, 4 clients, 200 keys) runs 5 s against it; the
server's CPU time (user + system, from /proc) is divided by the replies. Builds are alternated, 3 rounds,
medians printed. Used to choose ringcache-alloc's mapping threshold (docs/BENCHMARKS.md).
"""
import json, os, shutil, tempfile, socket, subprocess, sys, time, statistics
LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'target', 'release', 'ringcache-loadgen')
servers = dict(a.split('=', 1) for a in sys.argv[1:])  # name=binary ; 'redis' = redis-server
def port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p
def cpu(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')
def run(binp, size):
    p = port(); d = tempfile.mkdtemp(prefix='alloc_cpu')
    if binp == 'redis':
        cmd = ['redis-server', '--port', str(p), '--save', '', '--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru', '--dir', d]
    else:
        cmd = [binp, '--port', str(p), '--dir', d, '--maxmemory', '256mb']
    pr = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try: socket.create_connection(('127.0.0.1', p)).close(); break
        except OSError: time.sleep(0.01)
    c0 = cpu(pr.pid)
    out = os.path.join(d, 'loadgen.json')
    subprocess.run([LOADGEN, '--port', str(p), '--threads', '1', '--clients', '4', '--ratio', '1:1', '--keys', '200',
                    '--data-size', str(size), '--test-time', '5s', '--json-out', out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    c1 = cpu(pr.pid)
    pr.kill(); pr.wait()
    j = json.load(open(out))
    shutil.rmtree(d, ignore_errors=True)
    n = j['overall']['ok_replies']
    return (c1 - c0) * 1e6 / n
for size in [int(x) for x in os.environ.get('SIZES', '100 20000 300000 700000 2000000').split()]:
    res = {k: [] for k in servers}
    for r in range(3):
        for k, b in servers.items():
            res[k].append(run(b, size))
    print(size, {k: round(statistics.median(v)) for k, v in res.items()}, flush=True)
