"""redis-py, with its defaults, through two ringcache proxies over the same shards (ports in argv):
transactions, Lock, scripts, a Lua token bucket, pub/sub across proxies, and the client-side cache.
Every check raises on failure; the last line says they all passed."""
import sys
import threading
import time

import redis
from redis.cache import CacheConfig

port_a, port_b = int(sys.argv[1]), int(sys.argv[2])
a = redis.Redis(port=port_a)  # RESP3 by default in redis-py 8
b = redis.Redis(port=port_b, protocol=2)


def check(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


# pipeline(): MULTI/EXEC by default, in both protocols.
for client in (a, b):
    client.delete("{p}a", "{p}b")
    pipe = client.pipeline()
    pipe.set("{p}a", 1).incr("{p}b").get("{p}a")
    check("pipeline", pipe.execute(), [True, 1, b"1"])

# WATCH: a write through the other proxy aborts the transaction.
a.set("{w}k", "0")
with a.pipeline() as pipe:
    pipe.watch("{w}k")
    pipe.get("{w}k")
    b.set("{w}k", "theirs")
    pipe.multi()
    pipe.set("{w}k", "mine")
    try:
        pipe.execute()
        raise AssertionError("EXEC ran although a watched key changed")
    except redis.WatchError:
        pass
check("watched key", a.get("{w}k"), b"theirs")

# Lock: acquire, held against a second client on the other proxy, release, then free.
lock = a.lock("resource", timeout=5)
check("lock acquired", lock.acquire(blocking=False), True)
check("lock held elsewhere", b.lock("resource", timeout=5).acquire(blocking=False), False)
lock.release()
other = b.lock("resource", timeout=5)
check("lock free again", other.acquire(blocking=False), True)
other.release()

# register_script: EVALSHA, reloaded after SCRIPT FLUSH.
incr_by = a.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
check("script", incr_by(keys=["sc"], args=[5]), 5)
a.script_flush()
check("script after flush", incr_by(keys=["sc"], args=[2]), 7)
check("script through the other proxy", b.register_script("return redis.call('GET', KEYS[1])")(keys=["sc"]), b"7")

# A token-bucket rate limiter: capacity 5, no refill within the test: 5 allowed, then refused.
bucket = a.register_script(
    """
    local tokens = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
    if tokens <= 0 then return 0 end
    redis.call('SET', KEYS[1], tokens - 1, 'EX', 60)
    return 1
    """
)
check("token bucket", [bucket(keys=["rate:user1"], args=[5]) for _ in range(7)], [1, 1, 1, 1, 1, 0, 0])

# pubsub(): a subscriber on each proxy, publishers on both.
received = {"a": [], "b": []}
subs = {"a": a.pubsub(), "b": b.pubsub()}
subs["a"].subscribe("news")
subs["b"].psubscribe("ne*")
for name, ps in subs.items():
    deadline = time.time() + 5
    while time.time() < deadline:
        m = ps.get_message(timeout=0.5)
        if m and m["type"] in ("subscribe", "psubscribe"):
            break
    else:
        raise AssertionError(f"no subscription confirmation on {name}")
for i in range(50):
    (a if i % 2 else b).publish("news", f"m{i}")
for name, ps in subs.items():
    deadline = time.time() + 10
    while len(received[name]) < 50 and time.time() < deadline:
        m = ps.get_message(timeout=0.5)
        if m and m["type"] in ("message", "pmessage"):
            received[name].append(m["data"])
    check(f"messages on {name}", received[name], [f"m{i}".encode() for i in range(50)])
    ps.close()

# Client-side cache (RESP3): never a value overwritten through the other proxy once invalidated.
cached = redis.Redis(port=port_a, protocol=3, cache_config=CacheConfig())
b.set("csc", "v0")
check("first read", cached.get("csc"), b"v0")
check("cached read", cached.get("csc"), b"v0")
stale = 0
for i in range(200):
    b.set("csc", f"v{i + 1}")
    deadline = time.time() + 2
    while cached.get("csc") != f"v{i + 1}".encode():
        if time.time() > deadline:
            raise AssertionError(f"round {i}: still serving {cached.get('csc')!r} 2 s after the write")
        stale += 1
        time.sleep(0.001)
print(f"client cache: 200 overwrites through the other proxy, {stale} reads before an invalidation arrived")
print("all redis-py checks passed")
