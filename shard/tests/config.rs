//! CONFIG GET/SET/RESETSTAT/REWRITE on a real shard: replies and error texts byte for byte against a real
//! redis-server 7 where the values are the same, `maxmemory` lowered under a writer's load (used memory
//! drops below it), and `CONFIG REWRITE` surviving a restart.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use support::{info_value, poll_until, Framed, RedisServer, Shard};

/// Sends the same command to both and asserts the replies are the same bytes.
fn same(redis: &mut Framed, shard: &mut Framed, args: &[&str]) -> bytes::Bytes {
    let want = redis.call(args);
    let got = shard.call(args);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "{args:?}: ringcache-shard differs from redis-server"
    );
    got
}

/// A flat RESP2 array of bulk strings (CONFIG GET's reply) as a map.
fn pairs(reply: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(reply);
    let items: Vec<&str> = text.split("\r\n").skip(1).filter(|l| !l.starts_with('$') && !l.is_empty()).collect();
    items.chunks(2).map(|kv| (kv[0].to_string(), kv.get(1).copied().unwrap_or("").to_string())).collect()
}

#[test]
fn get_set_and_errors_match_redis() {
    let server = RedisServer::start();
    let shard = Shard::start(&[]);
    let (mut redis, mut ours) = (Framed::connect(server.port), Framed::connect(shard.port));
    // The same values on both first (the shard only evicts allkeys-lru today).
    same(&mut redis, &mut ours, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let table: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory", "10mb"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "SET", "maxmemory", "10K"],
        &["CONFIG", "GET", "maxmemory"],
        &["CONFIG", "GET", "maxmemory-policy"],
        &["CONFIG", "SET", "timeout", "300", "slowlog-max-len", "64"],
        &["CONFIG", "GET", "timeout"],
        &["CONFIG", "GET", "SLOWLOG-MAX-LEN"],
        &["CONFIG", "SET", "slowlog-log-slower-than", "5000", "latency-monitor-threshold", "100"],
        &["CONFIG", "GET", "slowlog-log-slower-than"],
        &["CONFIG", "GET", "latency-monitor-threshold"],
        &["CONFIG", "SET", "loglevel", "warning"],
        &["CONFIG", "GET", "loglevel"],
        &["CONFIG", "SET", "loglevel", "notice"],
        &["CONFIG", "SET", "lua-time-limit", "6000"],
        &["CONFIG", "GET", "busy-reply-threshold"],
        &["CONFIG", "GET", "lua-time-limit"],
        &["CONFIG", "SET", "busy-reply-threshold", "5000"],
        &["CONFIG", "GET", "lua-time-limit"],
        // Errors.
        &["CONFIG", "SET", "maxmemory", "abc"],
        &["CONFIG", "SET", "maxmemory", "-1"],
        &["CONFIG", "SET", "maxmemory", "1.5mb"],
        &["CONFIG", "SET", "timeout", "abc"],
        &["CONFIG", "SET", "timeout", "-1"],
        &["CONFIG", "SET", "slowlog-log-slower-than", "-2"],
        &["CONFIG", "SET", "slowlog-max-len", "-1"],
        &["CONFIG", "SET", "latency-monitor-threshold", "-1"],
        &["CONFIG", "SET", "maxmemory-policy", "foo"],
        &["CONFIG", "SET", "loglevel", "bogus"],
        &["CONFIG", "SET", "lua-time-limit", "x"],
        &["CONFIG", "SET", "databases", "3"],
        &["CONFIG", "SET", "foo", "bar"],
        &["CONFIG", "SET", "port"],
        &["CONFIG", "SET", "maxmemory", "1mb", "timeout"],
        &["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"],
        &["CONFIG", "GET"],
        &["CONFIG", "RESETSTAT", "x"],
        &["CONFIG", "REWRITE"],
        &["CONFIG", "foo"],
        // A refused value leaves the ones before it as they were.
        &["CONFIG", "SET", "timeout", "5", "slowlog-max-len", "1x"],
        &["CONFIG", "GET", "timeout"],
        &["CONFIG", "GET", "nothing-like-this*"],
        &["CONFIG", "RESETSTAT"],
    ];
    for args in table {
        same(&mut redis, &mut ours, args);
    }
    // Several patterns and globs: the same pairs (Redis's order is its dict's).
    for args in [
        &["CONFIG", "GET", "slowlog-*"][..],
        &["CONFIG", "GET", "timeout", "maxmemory", "loglevel", "timeout"],
        &["CONFIG", "GET", "*-reply-threshold", "latency-monitor-threshold"],
    ] {
        let want = pairs(&redis.call(args));
        let got = pairs(&ours.call(args));
        assert_eq!(got, want, "{args:?}");
    }
    // RESP3: a map.
    redis.call(&["HELLO", "3"]);
    ours.call(&["HELLO", "3"]);
    let reply = same(&mut redis, &mut ours, &["CONFIG", "GET", "maxmemory"]);
    assert!(reply.starts_with(b"%1\r\n"), "{reply:?}");
}

#[test]
fn live_settings_take_effect() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg("0").query(&mut con).unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut con).unwrap();
    assert!(len >= 1, "every command is slow at 0 µs");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("slowlog-max-len").arg("1").query(&mut con).unwrap();
    for _ in 0..5 {
        let _: () = redis::cmd("PING").query(&mut con).unwrap();
    }
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut con).unwrap();
    assert_eq!(len, 1);
    // timeout closes idle connections opened before and after it changed.
    let mut idle = shard.raw();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("timeout").arg("1").query(&mut con).unwrap();
    idle.send(b"PING\r\n");
    assert_eq!(idle.read_exact_or_eof(7), b"+PONG\r\n");
    poll_until("the idle connection is closed", || idle.is_closed());
    // `con` was idle meanwhile too.
    let mut con = shard.client();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("timeout").arg("0").query(&mut con).unwrap();
    // RESETSTAT clears commandstats and errorstats.
    let _: redis::RedisResult<()> = redis::cmd("INCR").arg("k").query(&mut con);
    assert_ne!(info_value(&mut con, "total_error_replies"), "0");
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut con).unwrap();
    assert_eq!(info_value(&mut con, "total_error_replies"), "0");
}

#[test]
fn lowering_maxmemory_under_load_evicts_below_it() {
    let shard = Shard::start(&["--maxmemory", "64mb"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url) = (stop.clone(), shard.url());
        std::thread::spawn(move || {
            let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
            let value = vec![b'x'; 1000];
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut p = redis::pipe();
                for _ in 0..200 {
                    p.cmd("SET").arg(format!("load:{i}")).arg(&value).ignore();
                    i += 1;
                }
                p.query::<()>(&mut con).unwrap();
            }
            i
        })
    };
    let mut con = shard.client();
    let used = |con: &mut redis::Connection| info_value(con, "used_memory").parse::<u64>().unwrap();
    poll_until("the writer has filled 24 MB", || used(&mut con) > 24 << 20);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("8mb").query(&mut con).unwrap();
    let max: String =
        redis::cmd("CONFIG").arg("GET").arg("maxmemory").query::<Vec<String>>(&mut con).unwrap()[1].clone();
    assert_eq!(max, (8u64 << 20).to_string());
    poll_until("used memory is under the new maxmemory", || used(&mut con) <= 8 << 20);
    // And it stays there while the writer goes on.
    for _ in 0..20 {
        assert!(used(&mut con) <= 8 << 20);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 24_000, "the writer kept writing: {written}");
    assert!(info_value(&mut con, "evicted_keys").parse::<u64>().unwrap() > 0);
}

#[test]
fn rewrite_writes_the_config_file_and_a_restart_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard.toml");
    std::fs::write(&path, "# my shard\nmaxmemory = \"64mb\" # the budget\nstripes = 16\n").unwrap();
    let path_text = path.to_str().unwrap();
    let data = dir.path().join("data");
    {
        let shard = Shard::start_in(&data, &["--config", path_text], false);
        let mut con = shard.client();
        let _: () = redis::cmd("CONFIG")
            .arg(&["SET", "maxmemory", "32mb", "slowlog-max-len", "7", "timeout", "120", "lua-time-limit", "6000"])
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# my shard\nmaxmemory = 33554432 # the budget\nstripes = 16\n"), "{text}");
    let shard = Shard::start_in(&data, &["--config", path_text], false);
    let mut con = shard.client();
    for (param, want) in
        [("maxmemory", "33554432"), ("slowlog-max-len", "7"), ("timeout", "120"), ("lua-time-limit", "6000")]
    {
        let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(param).query(&mut con).unwrap();
        assert_eq!(got, vec![param.to_string(), want.to_string()], "{text}");
    }
}
