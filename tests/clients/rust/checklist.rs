//! The client checklist with the `redis` crate (redis-rs), as its README shows it: `Client::open(url)`,
//! `get_connection()`, typed `query`s. The URL chooses the protocol (`?protocol=resp3` for RESP3).
//! Compiled into `proxy/tests/clients.rs` (the crate is a dev-dependency of the workspace).

use std::collections::{HashMap, HashSet};

use redis::{Commands, ErrorKind, RedisResult};

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn e(err: redis::RedisError) -> String {
    format!("{err}")
}

/// Runs every step against `url` with keys under `prefix`; `Err` says which step failed.
pub fn run(url: &str, prefix: &str) -> Result<(), String> {
    let k = |name: &str| format!("{prefix}:{name}");
    let client = redis::Client::open(url).map_err(e)?;
    let mut c = client.get_connection().map_err(e)?;
    let pong: String = redis::cmd("PING").query(&mut c).map_err(e)?;
    check(pong == "PONG", "ping")?;
    let () = c.set(k("s"), "v").map_err(e)?;
    let got: String = c.get(k("s")).map_err(e)?;
    check(got == "v", "get")?;
    let blob: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    let () = c.set(k("bin"), &blob).map_err(e)?;
    let back: Vec<u8> = c.get(k("bin")).map_err(e)?;
    check(back == blob, "binary")?;
    let n: i64 = c.incr(k("n"), 1).map_err(e)?;
    check(n == 1, "incr")?;
    let set: bool = c.expire(k("s"), 100).map_err(e)?;
    check(set, "expire")?;
    let ttl: i64 = c.ttl(k("s")).map_err(e)?;
    check((99..=100).contains(&ttl), "ttl")?;
    let pairs: Vec<(String, String)> = (0..50).map(|i| (k(&format!("m{i}")), format!("v{i}"))).collect();
    let () = c.mset(&pairs).map_err(e)?;
    let keys: Vec<&String> = pairs.iter().map(|(key, _)| key).collect();
    let values: Vec<String> = c.mget(&keys).map_err(e)?;
    check(values == pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(), "mget")?;
    let deleted: i64 = c.del(&keys).map_err(e)?;
    check(deleted == 50, "del")?;
    let mut pipe = redis::pipe();
    for _ in 0..1000 {
        pipe.incr(k("p"), 1);
    }
    let results: Vec<i64> = pipe.query(&mut c).map_err(e)?;
    check(results.len() == 1000 && results[999] == 1000, "pipeline")?;
    let () = c.hset_multiple(k("h"), &[("a", "1"), ("b", "2")]).map_err(e)?;
    let h: HashMap<String, String> = c.hgetall(k("h")).map_err(e)?;
    check(h == HashMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]), "hgetall")?;
    let _: i64 = c.sadd(k("set"), &["x", "y", "z"]).map_err(e)?;
    let members: HashSet<String> = c.smembers(k("set")).map_err(e)?;
    check(members == HashSet::from(["x".into(), "y".into(), "z".into()]), "smembers")?;
    let _: i64 = c.zadd_multiple(k("z"), &[(1.5, "one"), (2.25, "two")]).map_err(e)?;
    let scored: Vec<(String, f64)> = c.zrange_withscores(k("z"), 0, -1).map_err(e)?;
    check(scored == [("one".to_string(), 1.5), ("two".to_string(), 2.25)], "zrange withscores")?;
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.set(k(&format!("scan:{i}")), 1).ignore();
    }
    let () = pipe.query(&mut c).map_err(e)?;
    let seen: Vec<String> =
        c.scan_match::<_, String>(k("scan:*")).map_err(e)?.collect::<RedisResult<Vec<String>>>().map_err(e)?;
    let distinct: HashSet<&String> = seen.iter().collect();
    check(seen.len() == 1000 && distinct.len() == 1000, &format!("scan saw {} keys", seen.len()))?;
    let info: redis::InfoDict = redis::cmd("INFO").query(&mut c).map_err(e)?;
    check(info.get::<String>("redis_version").is_some() && info.get::<i64>("connected_clients").is_some(), "info")?;
    let () = redis::cmd("CLIENT").arg("SETNAME").arg("checklist").query(&mut c).map_err(e)?;
    let name: String = redis::cmd("CLIENT").arg("GETNAME").query(&mut c).map_err(e)?;
    check(name == "checklist", "getname")?;
    let unknown: RedisResult<()> = redis::cmd("NOSUCHCOMMAND").arg("x").query(&mut c);
    let err = unknown.err().ok_or("unknown command succeeded")?;
    check(
        err.kind() == ErrorKind::Server(redis::ServerErrorKind::ResponseError),
        &format!("unknown command: {err:?}"),
    )?;
    check(format!("{err}").contains("unknown command"), &format!("unknown command: {err}"))?;
    let pong: String = redis::cmd("PING").query(&mut c).map_err(e)?;
    check(pong == "PONG", "ping after error")?;
    let wrong: RedisResult<i64> = c.lpush(k("s"), "x");
    let err = wrong.err().ok_or("WRONGTYPE succeeded")?;
    check(err.code() == Some("WRONGTYPE"), &format!("WRONGTYPE: {err:?}"))?;
    let got: String = c.get(k("s")).map_err(e)?;
    check(got == "v", "usable after WRONGTYPE")
}
