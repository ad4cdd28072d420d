"""The client checklist with redis-py, as its README shows it: `redis.Redis(host, port)` (RESP3 by default in
redis-py 8), or with `protocol=2`; sync, or asyncio with `--asyncio`.

usage: checklist.py PORT PREFIX [--protocol 2|3] [--asyncio]
Prints "CHECKLIST OK" when every step passed; any failure raises (non-zero exit)."""
import asyncio
import sys
import warnings

import redis
import redis.asyncio

warnings.simplefilter("always")  # a warning must reach stderr, where the test looks for it

port, prefix = int(sys.argv[1]), sys.argv[2]
protocol = int(sys.argv[sys.argv.index("--protocol") + 1]) if "--protocol" in sys.argv else None
use_asyncio = "--asyncio" in sys.argv
kwargs = {"host": "127.0.0.1", "port": port}
if protocol is not None:
    kwargs["protocol"] = protocol


def k(name):
    return f"{prefix}:{name}"


async def checklist(r, call):
    """`call(awaitable_or_value)` resolves a result in either mode."""
    assert await call(r.ping()) is True
    assert await call(r.set(k("s"), "v")) is True
    assert await call(r.get(k("s"))) == b"v"
    blob = bytes(range(256)) * 4
    await call(r.set(k("bin"), blob))
    assert await call(r.get(k("bin"))) == blob
    assert await call(r.incr(k("n"))) == 1
    assert await call(r.incr(k("n"))) == 2
    assert await call(r.expire(k("s"), 100)) is True
    assert 99 <= await call(r.ttl(k("s"))) <= 100
    many = {k(f"m{i}"): f"v{i}" for i in range(50)}
    assert await call(r.mset(many)) is True
    assert await call(r.mget(list(many))) == [v.encode() for v in many.values()]
    assert await call(r.delete(*many)) == 50
    pipe = r.pipeline(transaction=False)
    for _ in range(1000):
        pipe.incr(k("p"))
    results = await call(pipe.execute())
    assert len(results) == 1000 and results[-1] == 1000
    await call(r.hset(k("h"), mapping={"a": "1", "b": "2"}))
    assert await call(r.hgetall(k("h"))) == {b"a": b"1", b"b": b"2"}
    await call(r.sadd(k("set"), "x", "y", "z"))
    assert await call(r.smembers(k("set"))) == {b"x", b"y", b"z"}
    await call(r.zadd(k("z"), {"one": 1.5, "two": 2.25}))
    assert await call(r.zrange(k("z"), 0, -1, withscores=True)) == [(b"one", 1.5), (b"two", 2.25)]
    scan_keys = {k(f"scan:{i}") for i in range(1000)}
    pipe = r.pipeline(transaction=False)
    for key in scan_keys:
        pipe.set(key, "1")
    await call(pipe.execute())
    seen = []
    cursor = 0
    while True:
        cursor, keys = await call(r.scan(cursor, match=k("scan:*"), count=100))
        seen.extend(x.decode() for x in keys)
        if cursor == 0:
            break
    assert len(seen) == 1000 and set(seen) == scan_keys, (len(seen), len(set(seen)))
    info = await call(r.info())
    assert "redis_version" in info and isinstance(info["connected_clients"], int), info
    assert await call(r.client_setname("checklist")) is True
    assert await call(r.client_getname()) in ("checklist", b"checklist")
    try:
        await call(r.execute_command("NOSUCHCOMMAND", "x"))
        raise AssertionError("unknown command succeeded")
    except redis.ResponseError as e:
        assert "unknown command" in str(e), e
    assert await call(r.ping()) is True
    try:
        await call(r.lpush(k("s"), "x"))
        raise AssertionError("WRONGTYPE succeeded")
    except redis.ResponseError as e:
        assert str(e).startswith("WRONGTYPE"), e
    assert await call(r.get(k("s"))) == b"v"


async def resolve_async(x):
    return await x


async def resolve_sync(x):
    return x


async def main():
    if use_asyncio:
        r = redis.asyncio.Redis(**kwargs)
        await checklist(r, resolve_async)
        await r.aclose()
    else:
        r = redis.Redis(**kwargs)
        await checklist(r, resolve_sync)
        r.close()


asyncio.run(main())
print("CHECKLIST OK")
