//! Real tools against a real shard: redis-benchmark's default run, redis-cli, redis-py, promtool.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::Shard;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (does .ci/run install it?)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn redis_benchmark_default_run_has_no_errors() {
    let shard = Shard::start(&[]);
    let (ok, text) = run(Command::new("redis-benchmark").args(["-p", &shard.port.to_string(), "-q", "-n", "10000"]));
    assert!(ok, "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_100",
        "LRANGE_600",
        "MSET",
    ] {
        assert!(
            text.contains(&format!("{test}: ")) || text.contains(&format!("{test} (")),
            "{test} missing from:\n{text}"
        );
    }
}

#[test]
fn redis_cli_one_shot_interactive_and_scan() {
    let shard = Shard::start(&[]);
    let port = shard.port.to_string();
    let cli = |args: &[&str]| {
        let (ok, text) = run(Command::new("redis-cli").args(["-p", &port]).args(args));
        assert!(ok, "{text}");
        text
    };
    assert_eq!(cli(&["set", "a", "b"]), "OK\n");
    assert_eq!(cli(&["get", "a"]), "b\n");
    assert_eq!(cli(&["set", "c", "d"]), "OK\n");
    let mut scanned: Vec<String> = cli(&["--scan"]).lines().map(str::to_string).collect();
    scanned.sort();
    assert_eq!(scanned, ["a", "c"]);
    assert_eq!(cli(&["--scan", "--pattern", "c*"]), "c\n");
    assert_eq!(cli(&["nosuch"]).trim_end(), "ERR unknown command 'nosuch', with args beginning with:");
    // Commands typed at redis-cli's prompt (read from stdin when it is not a terminal).
    let mut child =
        Command::new("redis-cli").args(["-p", &port]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"set x 1\nincr x\nget x\nping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n2\n2\nPONG\n");
}

#[test]
fn redis_py_connects_and_works() {
    let shard = Shard::start(&[]);
    let script = format!(
        r#"
import redis
# With its defaults (redis-py 8: RESP3, HELLO 3 at connect), and with RESP2 asked for.
for r in [redis.Redis(host="127.0.0.1", port={port}), redis.Redis(host="127.0.0.1", port={port}, protocol=2)]:
  r.flushall()
  assert r.ping()
  r.set("k", "v", ex=100)
  assert r.get("k") == b"v"
  assert 99 <= r.ttl("k") <= 100
  assert r.client_getname() is None
  info = r.info()
  assert "redis_version" in info and info["maxmemory_policy"] == "allkeys-lru", info
  assert r.hset("h", mapping={{"a": 1, "b": 2}}) == 2
  assert r.hgetall("h") == {{b"a": b"1", b"b": b"2"}}
  pipe = r.pipeline(transaction=False)
  for i in range(100):
      pipe.incr("counter")
  assert pipe.execute()[-1] == 100
print("redis-py ok")
"#,
        port = shard.port
    );
    let (ok, text) = run(Command::new("python3").args(["-c", &script]));
    assert!(ok && text.contains("redis-py ok"), "{text}");
}

#[test]
fn metrics_pass_promtool_and_name_the_brief_metrics() {
    let shard = Shard::start_with_metrics(&[], true);
    let mut con = shard.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("missing").query(&mut con).unwrap();
    let text = shard.metrics();
    for name in [
        "ringcache_commands_total{cmd=\"get\"} 2",
        "ringcache_command_duration_seconds_bucket{cmd=\"set\",le=",
        "ringcache_keyspace_hits_total 1",
        "ringcache_keyspace_misses_total 1",
        "ringcache_evicted_keys_total 0",
        "ringcache_expired_keys_total 0",
        "ringcache_memory_used_bytes ",
        "ringcache_memory_max_bytes 268435456",
        "ringcache_keys 1",
        "ringcache_connected_clients 1",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "promtool: {report}");
}
