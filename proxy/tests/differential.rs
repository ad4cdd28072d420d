//! Differential tests: the same command sequence goes to (a) one ringcache shard, (b) ringcache-proxy over
//! three ringcache shards, (c) ringcache-proxy over three redis-servers and (d) one plain redis-server, and
//! every reply of (a), (b) and (c) must equal (d)'s, in RESP2 and again in RESP3 (clients that said HELLO 3). Replies are compared as
//! `redis::Value`s, which keep RESP3's types apart (a map is not an array, a set not an array, a double not
//! a bulk string, `_` not `$-1`), and errors by their full text; only where Redis defines no order (KEYS,
//! SMEMBERS, SPOP with a count, HGETALL, HKEYS, HVALS, a whole SCAN) are they compared as multisets.
//!
//! The plain redis-server runs with `--databases 1`, so that `SELECT 1` fails there as it does through the
//! proxy. Cases avoid what differs between the installed redis-server (7.0) and the Redis 7.2 behaviour
//! Ringcache follows: scores and INCRBYFLOAT results are exact binary fractions (7.0 prints doubles with
//! `%.17g`, 7.2 with the shortest round-trip form), and HELLO 3 (7.0 speaks RESP3) is tested on its own.
//!
//! The remaining tests cover what only a proxy does: refused commands, CROSSSLOT, NOPROTO, and a
//! `redis-benchmark` run.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};

use redis::{ConnectionLike, Value};
use ringcache_common::hash::KeyHash;
use ringcache_proxy::ring::{Member, Ring};
use support::{cluster_of_redis, cluster_of_shards, free_port, start_shard, Cluster, Proc};

/// Proxies get a generous shard timeout: a 10,000-key command on a busy 2-core machine must not time out.
const PROXY_FLAGS: &[&str] = &["--timeout", "10s"];

/// How two replies are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Exact,
    /// An array whose order Redis does not define.
    Unordered,
    /// An array of field/value pairs whose order Redis does not define (HGETALL).
    Pairs,
    /// Integers that may differ by the given amount (PTTL: time passes differently on each target).
    Within(i64),
    /// `SCAN <cursor> args...` iterated from cursor 0 to 0; the keys collected, as a multiset.
    ScanAll,
}
use Cmp::*;

struct Case {
    cmp: Cmp,
    args: Vec<Vec<u8>>,
}

fn case(cmp: Cmp, args: &[&str]) -> Case {
    Case { cmp, args: args.iter().map(|a| a.as_bytes().to_vec()).collect() }
}

fn table(rows: &[(Cmp, &[&str])]) -> Vec<Case> {
    rows.iter().map(|(cmp, args)| case(*cmp, args)).collect()
}

fn plain_redis() -> Proc {
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(["--databases", "1"])
        .stdout(Stdio::null());
    Proc::spawn("redis-server", cmd, port)
}

/// The targets; the plain redis-server is the reference.
struct Targets {
    plain: Proc,
    /// One ringcache shard, spoken to directly.
    shard: Proc,
    over_shards: Cluster,
    over_redis: Cluster,
}

impl Targets {
    fn start() -> Targets {
        Targets {
            plain: plain_redis(),
            shard: start_shard(&[]),
            over_shards: cluster_of_shards(PROXY_FLAGS),
            over_redis: cluster_of_redis(PROXY_FLAGS),
        }
    }

    /// (name, connection), the reference first; ringcache shards (directly, and behind the proxy) only when
    /// `with_shards`.
    fn connections(&self, with_shards: bool, resp3: bool) -> Vec<(&'static str, redis::Connection)> {
        let open = |p: &Proc| if resp3 { p.client_resp3() } else { p.client() };
        let mut conns = vec![("redis-server", open(&self.plain))];
        if with_shards {
            conns.push(("shard", open(&self.shard)));
            conns.push(("proxy over shards", open(&self.over_shards.proxy)));
        }
        conns.push(("proxy over redis", open(&self.over_redis.proxy)));
        conns
    }

    fn proxies(&self) -> Vec<(&'static str, &Proc)> {
        vec![("proxy over shards", &self.over_shards.proxy), ("proxy over redis", &self.over_redis.proxy)]
    }
}

fn command(args: &[Vec<u8>]) -> redis::Cmd {
    let mut cmd = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(&a[..]);
    }
    cmd
}

/// One reply (errors included, as `Value::ServerError`); a SCAN case runs a whole iteration.
fn query(conn: &mut redis::Connection, case: &Case) -> Value {
    if case.cmp != ScanAll {
        return conn.req_command(&command(&case.args)).unwrap();
    }
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    for _ in 0..1_000_000 {
        let mut args = vec![b"SCAN".to_vec(), cursor];
        args.extend(case.args[1..].iter().cloned());
        match conn.req_command(&command(&args)).unwrap() {
            Value::Array(mut items) if items.len() == 2 => {
                let batch = match items.pop() {
                    Some(Value::Array(batch) | Value::Set(batch)) => batch,
                    _ => panic!("SCAN reply without keys"),
                };
                let Some(Value::BulkString(next)) = items.pop() else { panic!("SCAN reply without a cursor") };
                keys.extend(batch);
                if next == b"0" {
                    return Value::Array(keys);
                }
                cursor = next;
            }
            other => return other,
        }
    }
    panic!("SCAN did not finish");
}

fn sort_key(v: &Value) -> String {
    format!("{v:?}")
}

/// The reply in a canonical form for its comparison. The container's type is kept: a RESP3 set stays a
/// set and a map a map, so a reply of the wrong type never compares equal.
fn canonical(v: Value, cmp: Cmp) -> Value {
    match (cmp, v) {
        (Unordered | ScanAll, Value::Array(mut items)) => {
            items.sort_by_key(sort_key);
            Value::Array(items)
        }
        (Unordered | ScanAll | Pairs, Value::Set(mut items)) => {
            items.sort_by_key(sort_key);
            Value::Set(items)
        }
        // RESP3's nested pairs: each pair is an array of two.
        (Pairs, Value::Array(mut items)) if items.iter().all(|i| matches!(i, Value::Array(_))) => {
            items.sort_by_key(sort_key);
            Value::Array(items)
        }
        (Pairs, Value::Array(items)) => {
            let mut pairs: Vec<Vec<Value>> = items.chunks(2).map(<[Value]>::to_vec).collect();
            pairs.sort_by_key(|p| p.iter().map(sort_key).collect::<Vec<_>>());
            Value::Array(pairs.into_iter().flatten().collect())
        }
        (Pairs | Unordered, Value::Map(mut pairs)) => {
            pairs.sort_by_key(|(k, v)| (sort_key(k), sort_key(v)));
            Value::Map(pairs)
        }
        (_, v) => v,
    }
}

fn same(reference: &Value, got: &Value, cmp: Cmp) -> bool {
    match (cmp, reference, got) {
        (Within(tolerance), Value::Int(a), Value::Int(b)) => (a - b).abs() <= tolerance,
        _ => reference == got,
    }
}

fn show_args(args: &[Vec<u8>]) -> String {
    let text: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let joined = text.join(" ");
    if joined.len() > 120 {
        format!(
            "{}... ({} args)",
            &joined[..joined.char_indices().nth(120).map_or(joined.len(), |(i, _)| i)],
            args.len()
        )
    } else {
        joined
    }
}

fn show_value(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 300 {
        format!("{}... ({} bytes)", &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)], s.len())
    } else {
        s
    }
}

/// Every case's reply on `conn`, sent one at a time, or pipelined (all cases up to the next SCAN
/// iteration written at once).
fn replies(conn: &mut redis::Connection, cases: &[Case], pipelined: bool) -> Vec<Value> {
    if !pipelined {
        return cases.iter().map(|c| canonical(query(conn, c), c.cmp)).collect();
    }
    let mut out = Vec::with_capacity(cases.len());
    for segment in cases.chunk_by(|a, b| (a.cmp == ScanAll) == (b.cmp == ScanAll)) {
        if segment[0].cmp == ScanAll {
            out.extend(segment.iter().map(|c| canonical(query(conn, c), c.cmp)));
            continue;
        }
        let mut pipe = redis::pipe();
        for c in segment {
            pipe.add_command(command(&c.args));
        }
        let values = conn.req_packed_commands(&pipe.get_packed_pipeline(), 0, segment.len()).unwrap();
        assert_eq!(values.len(), segment.len());
        out.extend(values.into_iter().zip(segment).map(|(v, c)| canonical(v, c.cmp)));
    }
    out
}

/// Runs `cases` in order on one connection per target, first one request at a time, then again (after a
/// FLUSHALL, on new connections) pipelined, and asserts every reply matches redis-server's.
fn differential(targets: &Targets, cases: &[Case]) {
    compare_targets(targets, cases, true);
}

fn compare_targets(targets: &Targets, cases: &[Case], with_shards: bool) {
    let mut failures = Vec::new();
    for (resp3, pipelined) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut conns = targets.connections(with_shards, resp3);
        // Every pass starts from an empty keyspace, as the first did.
        if resp3 || pipelined {
            for (_, c) in &mut conns {
                redis::cmd("FLUSHALL").query::<()>(c).unwrap();
            }
        }
        let all: Vec<Vec<Value>> = conns.iter_mut().map(|(_, c)| replies(c, cases, pipelined)).collect();
        for (i, case) in cases.iter().enumerate() {
            for ((name, _), got) in conns.iter().zip(&all).skip(1) {
                if !same(&all[0][i], &got[i], case.cmp) {
                    failures.push(format!(
                        "{}{}{}\n    redis-server:      {}\n    {name:<18} {}",
                        if resp3 { "(RESP3) " } else { "" },
                        if pipelined { "(pipelined) " } else { "" },
                        show_args(&case.args),
                        show_value(&all[0][i]),
                        show_value(&got[i])
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} replies differ from redis-server:\n{}", failures.len(), failures.join("\n"));
}

/// The ring the proxies use (shards s1..s3, weight 1, fnv1a_64).
fn ring() -> Ring {
    let members: Vec<Member> = ["s1", "s2", "s3"].iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect();
    Ring::new(&members, KeyHash::Fnv1a_64)
}

/// Two keys `<prefix><n>` owned by different shards.
fn keys_on_two_shards(prefix: &str) -> (String, String) {
    let ring = ring();
    let first = format!("{prefix}0");
    let owner = ring.owner(first.as_bytes()).unwrap();
    let second = (1..).map(|i| format!("{prefix}{i}")).find(|k| ring.owner(k.as_bytes()) != Some(owner)).unwrap();
    (first, second)
}

/// Keys `<prefix><n>` until every shard owns at least one of them.
fn keys_on_every_shard(prefix: &str) -> Vec<String> {
    let ring = ring();
    let mut seen = [false; 3];
    let mut keys = Vec::new();
    for i in 0.. {
        let k = format!("{prefix}{i}");
        seen[ring.owner(k.as_bytes()).unwrap()] = true;
        keys.push(k);
        if seen.iter().all(|s| *s) {
            break;
        }
    }
    keys
}

#[test]
fn strings() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["GET", "s"]),
            (Exact, &["SET", "s", "hello"]),
            (Exact, &["GET", "s"]),
            (Exact, &["SET", "s", "x", "NX"]),
            (Exact, &["SET", "s", "world", "XX", "GET"]),
            (Exact, &["SET", "nx", "v", "XX"]),
            (Exact, &["SET", "s", "v", "NX", "XX"]),
            (Exact, &["SET", "s", "v", "EX", "10", "PX", "100"]),
            (Exact, &["SET", "s", "v", "EX", "0"]),
            (Exact, &["SET", "s", "v", "PX", "-5"]),
            (Exact, &["SET", "s", "v", "EX", "abc"]),
            (Exact, &["SET", "s", "v", "EX"]),
            (Exact, &["SET", "s", "v", "BOGUS"]),
            (Exact, &["SET", "s", "v", "KEEPTTL", "EX", "5"]),
            (Exact, &["SET", "fresh", "v", "NX", "GET"]),
            (Exact, &["SET", "fresh", "w", "NX", "GET"]),
            (Exact, &["SET", "t", "v", "EX", "100"]),
            (Exact, &["TTL", "t"]),
            (Exact, &["SET", "t", "w", "KEEPTTL"]),
            (Exact, &["TTL", "t"]),
            (Exact, &["SET", "t", "w"]),
            (Exact, &["TTL", "t"]),
            (Exact, &["SET", "t", "w", "PXAT", "99999999999999"]),
            (Exact, &["PEXPIRETIME", "t"]),
            (Exact, &["SET", "t", "w", "EXAT", "99999999999"]),
            (Exact, &["EXPIRETIME", "t"]),
            (Exact, &["SET", "t", "w", "PX", "100000"]),
            (Within(1000), &["PTTL", "t"]),
            (Exact, &["SETNX", "s", "v"]),
            (Exact, &["SETNX", "fresh2", "v"]),
            (Exact, &["SETEX", "e", "100", "v"]),
            (Exact, &["TTL", "e"]),
            (Exact, &["SETEX", "e", "-1", "v"]),
            (Exact, &["SETEX", "e", "0", "v"]),
            (Exact, &["SETEX", "e", "abc", "v"]),
            (Exact, &["PSETEX", "e", "100000", "v"]),
            (Within(1000), &["PTTL", "e"]),
            (Exact, &["PSETEX", "e", "0", "v"]),
            (Exact, &["GETSET", "s", "new"]),
            (Exact, &["GETSET", "missing", "x"]),
            (Exact, &["GETDEL", "s"]),
            (Exact, &["GETDEL", "s"]),
            (Exact, &["SET", "g", "v"]),
            (Exact, &["GETEX", "g"]),
            (Exact, &["GETEX", "g", "EX", "50"]),
            (Exact, &["TTL", "g"]),
            (Exact, &["GETEX", "g", "PERSIST"]),
            (Exact, &["TTL", "g"]),
            (Exact, &["GETEX", "g", "EXAT", "99999999999"]),
            (Exact, &["EXPIRETIME", "g"]),
            (Exact, &["GETEX", "g", "PXAT", "99999999999000"]),
            (Exact, &["PEXPIRETIME", "g"]),
            (Exact, &["GETEX", "g", "EX"]),
            (Exact, &["GETEX", "g", "EX", "0"]),
            (Exact, &["GETEX", "g", "EX", "10", "PX", "10"]),
            (Exact, &["GETEX", "g", "BOGUS"]),
            (Exact, &["GETEX", "nope", "EX", "10"]),
            (Exact, &["APPEND", "a", "foo"]),
            (Exact, &["APPEND", "a", "bar"]),
            (Exact, &["STRLEN", "a"]),
            (Exact, &["STRLEN", "missing"]),
            (Exact, &["GETRANGE", "a", "1", "3"]),
            (Exact, &["GETRANGE", "a", "-3", "-1"]),
            (Exact, &["GETRANGE", "a", "5", "1"]),
            (Exact, &["GETRANGE", "a", "0", "100"]),
            (Exact, &["GETRANGE", "a", "-100", "2"]),
            (Exact, &["GETRANGE", "missing", "0", "-1"]),
            (Exact, &["GETRANGE", "a", "x", "1"]),
            (Exact, &["SETRANGE", "a", "3", "BAZ"]),
            (Exact, &["GET", "a"]),
            (Exact, &["SETRANGE", "r", "2", "x"]),
            (Exact, &["GET", "r"]),
            (Exact, &["SETRANGE", "r", "-1", "x"]),
            (Exact, &["SETRANGE", "r", "0", ""]),
            (Exact, &["SETRANGE", "empty", "5", ""]),
            (Exact, &["EXISTS", "empty"]),
            (Exact, &["SETRANGE", "r", "536870912", "x"]),
            (Exact, &["SETRANGE", "r", "x", "x"]),
            (Exact, &["INCR", "n"]),
            (Exact, &["INCRBY", "n", "10"]),
            (Exact, &["DECR", "n"]),
            (Exact, &["DECRBY", "n", "20"]),
            (Exact, &["GET", "n"]),
            (Exact, &["INCRBY", "n", "x"]),
            (Exact, &["INCRBY", "n", "+1"]),
            (Exact, &["INCRBY", "n", "01"]),
            (Exact, &["INCRBY", "n", " 1"]),
            (Exact, &["INCRBY", "n", "1.0"]),
            (Exact, &["INCRBY", "n", "-0"]),
            (Exact, &["INCRBY", "n", "99999999999999999999"]),
            (Exact, &["INCR", "a"]),
            (Exact, &["SET", "big", "9223372036854775807"]),
            (Exact, &["INCR", "big"]),
            (Exact, &["SET", "small", "-9223372036854775808"]),
            (Exact, &["DECR", "small"]),
            (Exact, &["DECRBY", "n", "-9223372036854775808"]),
            (Exact, &["SET", "spaced", " 1"]),
            (Exact, &["INCR", "spaced"]),
            (Exact, &["INCRBYFLOAT", "f", "1.5"]),
            (Exact, &["INCRBYFLOAT", "f", "2"]),
            (Exact, &["INCRBYFLOAT", "f", "-0.25"]),
            (Exact, &["INCRBYFLOAT", "f", "1e2"]),
            (Exact, &["GET", "f"]),
            (Exact, &["INCRBYFLOAT", "f", "x"]),
            (Exact, &["INCRBYFLOAT", "f", "inf"]),
            (Exact, &["INCRBYFLOAT", "a", "1"]),
            (Exact, &["SET", "fi", "10"]),
            (Exact, &["INCRBYFLOAT", "fi", "5"]),
            (Exact, &["MSET", "m1", "a", "m2", "b", "m3", "c", "m4", "d"]),
            (Exact, &["MSET", "m1", "a", "m2"]),
            (Exact, &["MGET", "m1", "m2", "nope", "m3", "m4", "m1"]),
            (Exact, &["MSETNX", "{m}1", "x", "{m}3", "y"]),
            (Exact, &["MSETNX", "{m}1", "z", "{m}4", "w"]),
            (Exact, &["MGET", "{m}1", "{m}3", "{m}4"]),
            (Exact, &["MSETNX", "{m}1", "z", "{m}5"]),
            (Exact, &["GET"]),
            (Exact, &["SET", "k"]),
            (Exact, &["GETRANGE", "a", "1"]),
            (Exact, &["MGET"]),
            (Exact, &["LPUSH", "list", "x"]),
            (Exact, &["GET", "list"]),
            (Exact, &["SET", "list", "v", "GET"]),
            (Exact, &["APPEND", "list", "v"]),
            (Exact, &["STRLEN", "list"]),
            (Exact, &["INCR", "list"]),
            (Exact, &["GETRANGE", "list", "0", "1"]),
            (Exact, &["SETRANGE", "list", "0", "x"]),
            (Exact, &["GETDEL", "list"]),
            (Exact, &["GETSET", "list", "v"]),
            (Exact, &["INCRBYFLOAT", "list", "1"]),
            (Exact, &["MGET", "list", "a", "m1"]),
            (Exact, &["SET", "list", "now a string"]),
            (Exact, &["GET", "list"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

#[test]
fn keys_and_expiry() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["MSET", "a", "1", "b", "2", "c", "3"]),
            (Exact, &["EXISTS", "a", "b", "zz", "a"]),
            (Exact, &["TOUCH", "a", "zz", "b"]),
            (Exact, &["DEL", "a", "zz", "a"]),
            (Exact, &["UNLINK", "b", "b"]),
            (Exact, &["EXISTS", "a", "b", "c"]),
            (Exact, &["TYPE", "c"]),
            (Exact, &["TYPE", "zz"]),
            (Exact, &["RPUSH", "l", "x"]),
            (Exact, &["HSET", "h", "f", "v"]),
            (Exact, &["SADD", "st", "m"]),
            (Exact, &["ZADD", "z", "1", "m"]),
            (Exact, &["TYPE", "l"]),
            (Exact, &["TYPE", "h"]),
            (Exact, &["TYPE", "st"]),
            (Exact, &["TYPE", "z"]),
            (Exact, &["TTL", "zz"]),
            (Exact, &["PTTL", "zz"]),
            (Exact, &["TTL", "c"]),
            (Exact, &["PTTL", "c"]),
            (Exact, &["EXPIRE", "c", "100"]),
            (Exact, &["TTL", "c"]),
            (Exact, &["EXPIRE", "c", "50", "NX"]),
            (Exact, &["EXPIRE", "c", "50", "GT"]),
            (Exact, &["EXPIRE", "c", "50", "LT"]),
            (Exact, &["TTL", "c"]),
            (Exact, &["EXPIRE", "c", "200", "XX"]),
            (Exact, &["TTL", "c"]),
            (Exact, &["EXPIRE", "l", "10", "XX"]),
            (Exact, &["EXPIRE", "l", "10", "GT"]),
            (Exact, &["EXPIRE", "l", "10", "LT"]),
            (Exact, &["TTL", "l"]),
            (Exact, &["PERSIST", "l"]),
            (Exact, &["EXPIRE", "c", "10", "NX", "XX"]),
            (Exact, &["EXPIRE", "c", "10", "GT", "LT"]),
            (Exact, &["EXPIRE", "c", "10", "NX", "GT"]),
            (Exact, &["EXPIRE", "c", "10", "FOO"]),
            (Exact, &["EXPIRE", "c", "x"]),
            (Exact, &["EXPIRE", "c", "9223372036854775807"]),
            (Exact, &["PEXPIRE", "c", "9223372036854775807"]),
            (Exact, &["EXPIRE", "zz", "10"]),
            (Exact, &["EXPIRE", "c"]),
            (Exact, &["PEXPIRE", "c", "100000"]),
            (Within(1000), &["PTTL", "c"]),
            (Exact, &["TTL", "c"]),
            (Exact, &["SET", "rounded", "v", "PX", "100900"]),
            (Exact, &["TTL", "rounded"]),
            (Exact, &["SET", "rounded", "v", "PX", "100300"]),
            (Exact, &["TTL", "rounded"]),
            (Exact, &["PEXPIREAT", "c", "99999999999000"]),
            (Exact, &["PEXPIRETIME", "c"]),
            (Exact, &["EXPIRETIME", "c"]),
            (Exact, &["EXPIREAT", "c", "99999999998"]),
            (Exact, &["EXPIRETIME", "c"]),
            (Exact, &["PEXPIRETIME", "c"]),
            (Exact, &["EXPIREAT", "c", "99999999999", "GT"]),
            (Exact, &["EXPIREAT", "c", "99999999999", "NX"]),
            (Exact, &["EXPIREAT", "c", "x"]),
            (Exact, &["PEXPIREAT", "c", "1.5"]),
            (Exact, &["EXPIRETIME", "zz"]),
            (Exact, &["PEXPIRETIME", "zz"]),
            (Exact, &["EXPIRETIME", "l"]),
            (Exact, &["PEXPIRETIME", "l"]),
            (Exact, &["PERSIST", "c"]),
            (Exact, &["PERSIST", "c"]),
            (Exact, &["PERSIST", "zz"]),
            (Exact, &["TTL", "c"]),
            (Exact, &["EXPIRE", "c", "-1"]),
            (Exact, &["EXISTS", "c"]),
            (Exact, &["SET", "c", "back"]),
            (Exact, &["PEXPIREAT", "c", "1"]),
            (Exact, &["GET", "c"]),
            (Exact, &["SET", "c", "back"]),
            (Exact, &["EXPIREAT", "c", "1", "NX"]),
            (Exact, &["GET", "c"]),
            (Exact, &["SET", "{r}src", "v", "EX", "100"]),
            (Exact, &["RENAME", "{r}src", "{r}dst"]),
            (Exact, &["GET", "{r}dst"]),
            (Exact, &["TTL", "{r}dst"]),
            (Exact, &["EXISTS", "{r}src"]),
            (Exact, &["RENAME", "{r}src", "{r}dst"]),
            (Exact, &["RENAME", "{r}dst", "{r}dst"]),
            (Exact, &["RPUSH", "{r}list", "a", "b"]),
            (Exact, &["RENAME", "{r}list", "{r}dst"]),
            (Exact, &["TYPE", "{r}dst"]),
            (Exact, &["LRANGE", "{r}dst", "0", "-1"]),
            (Exact, &["RENAME", "{r}dst"]),
            (Exact, &["DEL"]),
            (Exact, &["EXISTS"]),
            (Exact, &["TYPE"]),
            (Exact, &["TTL", "a", "b"]),
            (Exact, &["DBSIZE"]),
            (Unordered, &["KEYS", "*"]),
            (ScanAll, &["SCAN"]),
            (Exact, &["DBSIZE", "extra"]),
        ]),
    );
}

#[test]
fn scan_keys_dbsize_and_flush() {
    let targets = Targets::start();
    let mut rows: Vec<Case> = vec![case(Exact, &["FLUSHALL"]), case(Exact, &["DBSIZE"])];
    rows.push(case(Exact, &["RANDOMKEY"]));
    rows.push(case(ScanAll, &["SCAN"]));
    rows.push(case(Unordered, &["KEYS", "*"]));
    rows.push(case(Exact, &["SET", "only", "1"]));
    rows.push(case(Exact, &["RANDOMKEY"]));
    rows.push(case(Exact, &["RANDOMKEY"]));
    rows.push(case(Exact, &["RANDOMKEY"]));
    let mut mset = vec!["MSET".to_string()];
    for i in 0..600 {
        mset.push(format!("user:{i}"));
        mset.push(i.to_string());
    }
    rows.push(Case { cmp: Exact, args: mset.iter().map(|a| a.as_bytes().to_vec()).collect() });
    for i in 0..50 {
        rows.push(case(Exact, &["HSET", &format!("hash:{i}"), "f", "v"]));
        rows.push(case(Exact, &["RPUSH", &format!("list:{i}"), "x"]));
    }
    rows.extend(table(&[
        (Exact, &["DBSIZE"]),
        (Unordered, &["KEYS", "*"]),
        (Unordered, &["KEYS", "user:1?"]),
        (Unordered, &["KEYS", "user:[12]0*"]),
        (Unordered, &["KEYS", "h*:4*"]),
        (Unordered, &["KEYS", "nothing*"]),
        (Exact, &["KEYS", "only"]),
        (Exact, &["KEYS"]),
        (ScanAll, &["SCAN"]),
        (ScanAll, &["SCAN", "COUNT", "7"]),
        (ScanAll, &["SCAN", "MATCH", "user:5*"]),
        (ScanAll, &["SCAN", "MATCH", "*:1*", "COUNT", "1000"]),
        (ScanAll, &["SCAN", "TYPE", "hash"]),
        (ScanAll, &["SCAN", "TYPE", "list", "MATCH", "*1"]),
        (ScanAll, &["SCAN", "TYPE", "string", "COUNT", "3"]),
        (ScanAll, &["SCAN", "TYPE", "nosuchtype"]),
        (Exact, &["SCAN", "abc"]),
        (Exact, &["SCAN", "0", "COUNT", "0"]),
        (Exact, &["SCAN", "0", "COUNT", "x"]),
        (Exact, &["SCAN", "0", "BOGUS", "1"]),
        (Exact, &["SCAN", "0", "MATCH"]),
        (Exact, &["SCAN"]),
        (Exact, &["FLUSHDB", "LATER"]),
        (Exact, &["FLUSHALL", "LATER"]),
        (Exact, &["DBSIZE"]),
        (Exact, &["FLUSHDB"]),
        (Exact, &["DBSIZE"]),
        (Exact, &["KEYS", "*"]),
        (ScanAll, &["SCAN"]),
        (Exact, &["RANDOMKEY"]),
        (Exact, &["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]),
        (Exact, &["FLUSHDB", "ASYNC"]),
        (Exact, &["DBSIZE"]),
        (Exact, &["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]),
        (Exact, &["FLUSHALL", "SYNC"]),
        (Exact, &["DBSIZE"]),
        (Exact, &["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]),
        (Exact, &["FLUSHALL", "ASYNC"]),
        (Exact, &["MGET", "a", "b", "c", "d"]),
        (Exact, &["DBSIZE"]),
    ]));
    differential(&targets, &rows);
}

#[test]
fn hashes() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["HSET", "h", "f1", "v1", "f2", "v2"]),
            (Exact, &["HSET", "h", "f1", "x"]),
            (Exact, &["HSET", "h", "f"]),
            (Exact, &["HSET", "h", "f", "v", "g"]),
            (Exact, &["HMSET", "h", "f3", "v3", "f4", "v4"]),
            (Exact, &["HMSET", "h", "f3"]),
            (Exact, &["HMSET", "h", "f3", "v3", "f4"]),
            (Exact, &["HSETNX", "h", "f1", "y"]),
            (Exact, &["HSETNX", "h", "f5", "v5"]),
            (Exact, &["HGET", "h", "f1"]),
            (Exact, &["HGET", "h", "nope"]),
            (Exact, &["HGET", "missing", "f"]),
            (Exact, &["HMGET", "h", "f1", "nope", "f2"]),
            (Exact, &["HMGET", "missing", "a", "b"]),
            (Pairs, &["HGETALL", "h"]),
            (Exact, &["HGETALL", "missing"]),
            (Unordered, &["HKEYS", "h"]),
            (Unordered, &["HVALS", "h"]),
            (Exact, &["HKEYS", "missing"]),
            (Exact, &["HLEN", "h"]),
            (Exact, &["HLEN", "missing"]),
            (Exact, &["HEXISTS", "h", "f1"]),
            (Exact, &["HEXISTS", "h", "nope"]),
            (Exact, &["HDEL", "h", "f1", "nope", "f1"]),
            (Exact, &["HDEL", "missing", "f"]),
            (Exact, &["HINCRBY", "h", "n", "5"]),
            (Exact, &["HINCRBY", "h", "n", "-7"]),
            (Exact, &["HGET", "h", "n"]),
            (Exact, &["HINCRBY", "h", "f2", "1"]),
            (Exact, &["HINCRBY", "h", "n", "x"]),
            (Exact, &["HINCRBY", "h", "n", "1.5"]),
            (Exact, &["HSET", "h", "max", "9223372036854775807"]),
            (Exact, &["HINCRBY", "h", "max", "1"]),
            (Exact, &["HINCRBY", "h", "n", "-9223372036854775808"]),
            (Exact, &["HINCRBY", "fresh", "n", "3"]),
            (Pairs, &["HGETALL", "h"]),
            (Exact, &["HDEL", "fresh", "n"]),
            (Exact, &["EXISTS", "fresh"]),
            (Exact, &["HGET", "h"]),
            (Exact, &["HGETALL"]),
            (Exact, &["HDEL", "h"]),
            (Exact, &["SET", "str", "v"]),
            (Exact, &["HSET", "str", "f", "v"]),
            (Exact, &["HGET", "str", "f"]),
            (Exact, &["HGETALL", "str"]),
            (Exact, &["HLEN", "str"]),
            (Exact, &["HINCRBY", "str", "f", "1"]),
            (Exact, &["HDEL", "str", "f"]),
            (Exact, &["HKEYS", "str"]),
            (Exact, &["HVALS", "str"]),
            (Exact, &["HMGET", "str", "f"]),
            (Exact, &["HEXISTS", "str", "f"]),
            (Exact, &["HSETNX", "str", "f", "v"]),
            (Exact, &["TYPE", "h"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

#[test]
fn lists_sets_and_sorted_sets() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["LPUSH", "l", "a", "b", "c"]),
            (Exact, &["RPUSH", "l", "d", "e"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LRANGE", "l", "1", "2"]),
            (Exact, &["LRANGE", "l", "-2", "100"]),
            (Exact, &["LRANGE", "l", "5", "10"]),
            (Exact, &["LRANGE", "l", "3", "1"]),
            (Exact, &["LRANGE", "l", "a", "b"]),
            (Exact, &["LRANGE", "missing", "0", "-1"]),
            (Exact, &["LLEN", "l"]),
            (Exact, &["LLEN", "missing"]),
            (Exact, &["LPOP", "l"]),
            (Exact, &["RPOP", "l"]),
            (Exact, &["LPOP", "l", "2"]),
            (Exact, &["RPOP", "l", "1"]),
            (Exact, &["LPOP", "l", "-1"]),
            (Exact, &["LPOP", "missing"]),
            (Exact, &["LPOP", "missing", "2"]),
            (Exact, &["RPOP", "missing", "2"]),
            (Exact, &["RPOP", "l", "10"]),
            (Exact, &["EXISTS", "l"]),
            (Exact, &["LPOP", "l", "1", "2"]),
            (Exact, &["LPUSH", "l"]),
            (Exact, &["SET", "str", "v"]),
            (Exact, &["LPUSH", "str", "a"]),
            (Exact, &["RPUSH", "str", "a"]),
            (Exact, &["LPOP", "str"]),
            (Exact, &["RPOP", "str", "2"]),
            (Exact, &["LRANGE", "str", "0", "-1"]),
            (Exact, &["LLEN", "str"]),
            (Exact, &["SADD", "s", "a", "b", "c", "a"]),
            (Exact, &["SADD", "s", "a"]),
            (Exact, &["SCARD", "s"]),
            (Exact, &["SCARD", "missing"]),
            (Unordered, &["SMEMBERS", "s"]),
            (Exact, &["SMEMBERS", "missing"]),
            (Exact, &["SISMEMBER", "s", "a"]),
            (Exact, &["SISMEMBER", "s", "z"]),
            (Exact, &["SREM", "s", "a", "z"]),
            (Unordered, &["SMEMBERS", "s"]),
            (Exact, &["SADD", "s", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"]),
            (Unordered, &["SPOP", "s", "100"]),
            (Exact, &["EXISTS", "s"]),
            (Exact, &["SPOP", "s"]),
            (Exact, &["SPOP", "s", "3"]),
            (Exact, &["SADD", "one", "x"]),
            (Exact, &["SPOP", "one"]),
            (Exact, &["SPOP", "one", "0"]),
            (Exact, &["SPOP", "s", "-1"]),
            (Exact, &["SPOP", "s", "1", "2"]),
            (Exact, &["SADD", "s"]),
            (Exact, &["SADD", "str", "a"]),
            (Exact, &["SMEMBERS", "str"]),
            (Exact, &["SCARD", "str"]),
            (Exact, &["SPOP", "str"]),
            (Exact, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]),
            (Exact, &["ZADD", "z", "1.5", "d"]),
            (Exact, &["ZADD", "z", "NX", "5", "a"]),
            (Exact, &["ZADD", "z", "XX", "CH", "10", "a"]),
            (Exact, &["ZADD", "z", "XX", "5", "new"]),
            (Exact, &["ZADD", "z", "GT", "CH", "2", "a", "20", "b"]),
            (Exact, &["ZADD", "z", "LT", "CH", "0.5", "a", "30", "b"]),
            (Exact, &["ZADD", "z", "INCR", "2", "b"]),
            (Exact, &["ZADD", "z", "NX", "INCR", "2", "b"]),
            (Exact, &["ZADD", "z", "-inf", "low", "+inf", "high"]),
            (Exact, &["ZADD", "z", "x", "a"]),
            (Exact, &["ZADD", "z", "nan", "a"]),
            (Exact, &["ZADD", "z", "1", "a", "2"]),
            (Exact, &["ZADD", "z", "1"]),
            (Exact, &["ZADD", "z", "NX", "XX", "1", "a"]),
            (Exact, &["ZADD", "z", "GT", "LT", "1", "a"]),
            (Exact, &["ZADD", "z", "GT", "NX", "1", "a"]),
            (Exact, &["ZADD", "z", "INCR", "1", "a", "2", "b"]),
            (Exact, &["ZCARD", "z"]),
            (Exact, &["ZCARD", "missing"]),
            (Exact, &["ZSCORE", "z", "a"]),
            (Exact, &["ZSCORE", "z", "d"]),
            (Exact, &["ZSCORE", "z", "low"]),
            (Exact, &["ZSCORE", "z", "high"]),
            (Exact, &["ZSCORE", "z", "nope"]),
            (Exact, &["ZSCORE", "missing", "a"]),
            (Exact, &["ZRANGE", "z", "0", "-1"]),
            (Exact, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZRANGE", "z", "0", "2", "REV", "WITHSCORES"]),
            (Exact, &["ZRANGE", "z", "-2", "-1"]),
            (Exact, &["ZRANGE", "z", "5", "1"]),
            (Exact, &["ZRANGE", "z", "(0.5", "3", "BYSCORE"]),
            (Exact, &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2", "WITHSCORES"]),
            (Exact, &["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV"]),
            (Exact, &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"]),
            (Exact, &["ZRANGE", "z", "x", "1"]),
            (Exact, &["ZRANGE", "z", "(x", "1", "BYSCORE"]),
            (Exact, &["ZRANGE", "z", "0", "1", "BOGUS"]),
            (Exact, &["ZRANGE", "missing", "0", "-1"]),
            (Exact, &["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"]),
            (Exact, &["ZRANGE", "lex", "[b", "(d", "BYLEX"]),
            (Exact, &["ZRANGE", "lex", "-", "+", "BYLEX", "LIMIT", "1", "2"]),
            (Exact, &["ZRANGE", "lex", "+", "-", "BYLEX", "REV"]),
            (Exact, &["ZRANGE", "lex", "b", "d", "BYLEX"]),
            (Exact, &["ZPOPMIN", "z"]),
            (Exact, &["ZPOPMIN", "z", "2"]),
            (Exact, &["ZPOPMIN", "z", "0"]),
            (Exact, &["ZPOPMIN", "z", "-1"]),
            (Exact, &["ZPOPMIN", "missing"]),
            (Exact, &["ZPOPMIN", "missing", "3"]),
            (Exact, &["ZPOPMIN", "z", "100"]),
            (Exact, &["EXISTS", "z"]),
            (Exact, &["ZPOPMIN", "z", "1", "2"]),
            (Exact, &["ZADD", "str", "1", "a"]),
            (Exact, &["ZSCORE", "str", "a"]),
            (Exact, &["ZRANGE", "str", "0", "-1"]),
            (Exact, &["ZCARD", "str"]),
            (Exact, &["ZPOPMIN", "str"]),
            (Exact, &["ZSCORE", "z"]),
            (Exact, &["TYPE", "lex"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

#[test]
fn connection_commands_and_errors() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["PING"]),
            (Exact, &["PING", "hello world"]),
            (Exact, &["PING", "a", "b"]),
            (Exact, &["ECHO", "x y"]),
            (Exact, &["ECHO", ""]),
            (Exact, &["ECHO"]),
            (Exact, &["ECHO", "a", "b"]),
            (Exact, &["SELECT", "0"]),
            (Exact, &["SELECT", "1"]),
            (Exact, &["SELECT", "-1"]),
            (Exact, &["SELECT", "x"]),
            (Exact, &["SELECT", "00"]),
            (Exact, &["SELECT", "+0"]),
            (Exact, &["SELECT", "-0"]),
            (Exact, &["SELECT", " 0"]),
            (Exact, &["SELECT", "0 "]),
            (Exact, &["SELECT", "3000000000"]),
            (Exact, &["SELECT", "99999999999999999999"]),
            (Exact, &["SELECT"]),
            (Exact, &["SELECT", "0", "1"]),
            (Exact, &["HELLO", "4"]),
            (Exact, &["HELLO", "1"]),
            (Exact, &["HELLO", "x"]),
            (Exact, &["HELLO", "02"]),
            (Exact, &["HELLO", "+2"]),
            (Exact, &["HELLO", "2", "FOO"]),
            (Exact, &["HELLO", "2", "AUTH", "default"]),
            (Exact, &["HELLO", "2", "SETNAME", "a b"]),
            (Exact, &["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "a\nb"]),
            (Exact, &["HELLO", "2", "AUTH", "nobody", "pw"]),
            (Exact, &["AUTH", "pw"]),
            (Exact, &["AUTH", "someone", "pw"]),
            (Exact, &["AUTH"]),
            (Exact, &["CLIENT", "SETNAME", "app"]),
            (Exact, &["CLIENT", "GETNAME"]),
            (Exact, &["CLIENT", "SETNAME", "a b"]),
            (Exact, &["CLIENT", "SETNAME"]),
            (Exact, &["CLIENT", "NOPE"]),
            (Exact, &["FOO"]),
            (Exact, &["FOO", "a", "b"]),
            (Exact, &["averyveryverylongcommandname", "x"]),
            (Exact, &["GET", "k", "extra"]),
            (Exact, &["SET", "k", "v"]),
            (Exact, &["LPUSH", "k", "v"]),
            (Exact, &["HGET", "k", "f"]),
            (Exact, &["SADD", "k", "m"]),
            (Exact, &["ZADD", "k", "1", "m"]),
            (Exact, &["INCR", "k"]),
            (Exact, &["SET", "k", "v", "XX", "NX"]),
            (Exact, &["EXPIRE", "k", "soon"]),
            (Exact, &["PING"]),
        ]),
    );
}

/// MSET, MGET, EXISTS, TOUCH, DEL and UNLINK of 10,000 keys in one command each, spread over every
/// shard, with the merged replies compared to redis-server's.
#[test]
fn multi_key_commands_with_10000_keys() {
    let targets = Targets::start();
    let n = 10_000;
    let key = |i: usize| format!("mk:{i}");
    let mut mset = vec!["MSET".to_string()];
    for i in (0..n).step_by(2) {
        mset.push(key(i));
        mset.push(format!("value-{i}"));
    }
    // Even keys exist; odd ones do not, so every shard's sub-reply mixes values and nils.
    let all: Vec<String> = (0..n).map(key).collect();
    let with = |name: &str, keys: &[String]| {
        let mut args = vec![name.to_string()];
        args.extend(keys.iter().cloned());
        Case { cmp: Exact, args: args.iter().map(|a| a.as_bytes().to_vec()).collect() }
    };
    let mut reversed = all.clone();
    reversed.reverse();
    let mut rows = vec![
        case(Exact, &["FLUSHALL"]),
        Case { cmp: Exact, args: mset.iter().map(|a| a.as_bytes().to_vec()).collect() },
        case(Exact, &["DBSIZE"]),
        with("MGET", &all),
        with("MGET", &reversed),
        with("EXISTS", &all),
        with("TOUCH", &all),
        case(Exact, &["RPUSH", "mk:4", "not a string"]),
        case(Exact, &["DEL", "mk:2"]),
        case(Exact, &["RPUSH", "mk:2", "not a string"]),
        with("MGET", &all[..100]),
        case(Unordered, &["KEYS", "mk:*"]),
        case(ScanAll, &["SCAN", "COUNT", "100"]),
        with("DEL", &all[..n / 2]),
        case(Exact, &["DBSIZE"]),
        with("UNLINK", &all),
        case(Exact, &["DBSIZE"]),
        with("MGET", &all),
    ];
    // The same key many times, across shards.
    let mut repeated = Vec::new();
    for _ in 0..50 {
        repeated.extend(keys_on_every_shard("rep:"));
    }
    rows.push(with("EXISTS", &repeated));
    let mut mset_rep = vec!["MSET".to_string()];
    for (i, k) in repeated.iter().enumerate() {
        mset_rep.push(k.clone());
        mset_rep.push(i.to_string());
    }
    rows.push(Case { cmp: Exact, args: mset_rep.iter().map(|a| a.as_bytes().to_vec()).collect() });
    rows.push(with("MGET", &repeated));
    rows.push(with("EXISTS", &repeated));
    rows.push(with("TOUCH", &repeated));
    rows.push(with("DEL", &repeated));
    rows.push(case(Exact, &["DBSIZE"]));
    // Binary-safe keys and values, the empty key, and values larger than a read buffer or a batch.
    let bin = |args: &[&[u8]]| Case { cmp: Exact, args: args.iter().map(|a| a.to_vec()).collect() };
    let huge: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    rows.extend([
        bin(&[b"SET", b"bin\r\nkey\0\xff", b"val\r\n\0\xfe"]),
        bin(&[b"GET", b"bin\r\nkey\0\xff"]),
        bin(&[b"SET", b"", b"empty key"]),
        bin(&[b"GET", b""]),
        bin(&[b"MGET", b"", b"bin\r\nkey\0\xff", b"mk:0"]),
        bin(&[b"SET", b"huge", &huge]),
        bin(&[b"GET", b"huge"]),
        bin(&[b"APPEND", b"huge", b"tail"]),
        bin(&[b"STRLEN", b"huge"]),
        bin(&[b"MSET", b"huge2", &huge, b"huge3", &huge[..1000], b"", b"again"]),
        bin(&[b"MGET", b"huge", b"huge2", b"huge3", b"", b"nope"]),
        bin(&[b"DEL", b"huge", b"huge2", b"huge3", b"", b"bin\r\nkey\0\xff"]),
        bin(&[b"DBSIZE"]),
    ]);
    differential(&targets, &rows);
}

/// Transactions and scripts, on keys that share a shard (`{t}`): queued replies, queue-time errors that
/// doom EXEC, runtime errors that do not, WATCH (the client's own write fails EXEC), UNWATCH, scripts
/// with their reply conversions and errors, SCRIPT LOAD / EXISTS / FLUSH and EVALSHA, and PUBLISH / PUBSUB
/// with nobody subscribed.
#[test]
fn transactions_and_scripts() {
    let targets = Targets::start();
    let sha_hello = "1b936e3fe509bcbc9cd0664897bbe8fd0cac101b";
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["MULTI"]),
            (Exact, &["SET", "{t}a", "1"]),
            (Exact, &["INCR", "{t}b"]),
            (Exact, &["GET", "{t}a"]),
            (Exact, &["LPUSH", "{t}a", "x"]),
            (Exact, &["EXEC"]),
            (Exact, &["MULTI"]),
            (Exact, &["SET", "{t}a", "2"]),
            (Exact, &["NOSUCHCOMMAND", "x"]),
            (Exact, &["EXEC"]),
            (Exact, &["GET", "{t}a"]),
            (Exact, &["MULTI"]),
            (Exact, &["SET", "{t}a"]),
            (Exact, &["EXEC"]),
            (Exact, &["EXEC"]),
            (Exact, &["DISCARD"]),
            (Exact, &["MULTI"]),
            (Exact, &["MULTI"]),
            (Exact, &["SET", "{t}c", "3"]),
            (Exact, &["DISCARD"]),
            (Exact, &["EXISTS", "{t}c"]),
            (Exact, &["MULTI"]),
            (Exact, &["EXEC"]),
            (Exact, &["WATCH", "{t}a"]),
            (Exact, &["MULTI"]),
            (Exact, &["WATCH", "{t}b"]),
            (Exact, &["SET", "{t}a", "3"]),
            (Exact, &["EXEC"]),
            (Exact, &["WATCH", "{t}a", "{t}b"]),
            (Exact, &["SET", "{t}a", "4"]),
            (Exact, &["MULTI"]),
            (Exact, &["SET", "{t}a", "5"]),
            (Exact, &["EXEC"]),
            (Exact, &["GET", "{t}a"]),
            (Exact, &["WATCH", "{t}a"]),
            (Exact, &["UNWATCH"]),
            (Exact, &["SET", "{t}a", "6"]),
            (Exact, &["MULTI"]),
            (Exact, &["GET", "{t}a"]),
            (Exact, &["PING"]),
            (Exact, &["ECHO", "hi"]),
            (Exact, &["EXEC"]),
            (Exact, &["WATCH", "{t}z"]),
            (Exact, &["MULTI"]),
            (Exact, &["EXEC"]),
            (Exact, &["EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "{t}s", "v"]),
            (Exact, &["EVAL", "return {1, 2, 3, 'x', false, true, 3.7}", "0"]),
            (Exact, &["EVAL", "return redis.call('GET', KEYS[1])", "1", "{t}s"]),
            (Exact, &["EVAL", "return redis.error_reply('boom')", "0"]),
            (Exact, &["EVAL", "return redis.status_reply('fine')", "0"]),
            (Exact, &["EVAL", "return redis.error_reply('MY boom')", "0"]),
            (Exact, &["EVAL", "return redis.error_reply('-X boom\\r\\n')", "0"]),
            (Exact, &["EVAL", "return redis.pcall('INCR', KEYS[1])", "1", "{t}s"]),
            (Exact, &["EVAL", "return redis.call('INCR', KEYS[1])", "1", "{t}s"]),
            (Exact, &["EVAL", "return redis.sha1hex('')", "0"]),
            (Exact, &["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "{t}s"]),
            (Exact, &["EVAL_RO", "return redis.call('SET', KEYS[1], 'x')", "1", "{t}s"]),
            (Exact, &["EVAL", "return 1", "2", "{t}only-one"]),
            (Exact, &["SCRIPT", "LOAD", "return 'hello'"]),
            (Exact, &["EVALSHA", sha_hello, "0"]),
            (Exact, &["EVALSHA_RO", sha_hello, "0"]),
            (Exact, &["SCRIPT", "EXISTS", sha_hello, "ffffffffffffffffffffffffffffffffffffffff"]),
            (Exact, &["SCRIPT", "FLUSH"]),
            (Exact, &["SCRIPT", "EXISTS", sha_hello]),
            (Exact, &["EVALSHA", sha_hello, "0"]),
            (Exact, &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]),
            (Exact, &["MULTI"]),
            (Exact, &["EVAL", "return redis.call('INCR', KEYS[1])", "1", "{t}n"]),
            (Exact, &["INCR", "{t}n"]),
            (Exact, &["EXEC"]),
            (Exact, &["PUBLISH", "news", "hello"]),
            (Exact, &["PUBSUB", "NUMSUB", "news", "other"]),
            (Exact, &["PUBSUB", "NUMPAT"]),
            (Exact, &["PUBSUB", "CHANNELS"]),
            (Exact, &["PUBSUB", "SHARDCHANNELS"]),
        ]),
    );
}

/// Commands a sharding proxy cannot run answer an error, and the connection keeps working.
#[test]
fn unsupported_commands_are_refused_and_the_connection_survives() {
    let targets = Targets::start();
    for (name, proxy) in targets.proxies() {
        let mut conn = proxy.client();
        for args in [&["MONITOR"][..], &["fcall", "f", "0"], &["Function", "list"]] {
            let reply = conn.req_command(&command(&args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>()));
            let expected = format!("ERR {} is not supported by ringcache-proxy", args[0].to_uppercase());
            match reply.unwrap() {
                Value::ServerError(e) => {
                    let text = format!("{} {}", e.code(), e.details().unwrap_or(""));
                    assert_eq!(text, expected, "{name}: {args:?}");
                }
                other => panic!("{name}: {args:?} answered {other:?}"),
            }
            let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
            assert_eq!(pong, "PONG", "{name}: connection unusable after {args:?}");
        }
        let _: () = redis::cmd("SET").arg("after").arg("ok").query(&mut conn).unwrap();
        let v: String = redis::cmd("GET").arg("after").query(&mut conn).unwrap();
        assert_eq!(v, "ok");
    }
}

fn error_text(v: Value) -> String {
    match v {
        Value::ServerError(e) => format!("{} {}", e.code(), e.details().unwrap_or("")),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// MSETNX and RENAME with keys on different shards answer CROSSSLOT and change nothing; with a hash tag
/// they work.
#[test]
fn cross_shard_msetnx_and_rename_are_crossslot() {
    let targets = Targets::start();
    let (k1, k2) = keys_on_two_shards("cross:");
    for (name, proxy) in targets.proxies() {
        let mut conn = proxy.client();
        let req = |args: &[&str]| command(&args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>());
        let e = error_text(conn.req_command(&req(&["MSETNX", &k1, "1", &k2, "2"])).unwrap());
        assert!(e.starts_with("CROSSSLOT "), "{name}: MSETNX: {e}");
        let n: i64 = redis::cmd("EXISTS").arg(&k1).arg(&k2).query(&mut conn).unwrap();
        assert_eq!(n, 0, "{name}: a refused MSETNX wrote keys");
        let _: () = redis::cmd("SET").arg(&k1).arg("v").query(&mut conn).unwrap();
        let e = error_text(conn.req_command(&req(&["RENAME", &k1, &k2])).unwrap());
        assert!(e.starts_with("CROSSSLOT "), "{name}: RENAME: {e}");
        let v: Option<String> = redis::cmd("GET").arg(&k1).query(&mut conn).unwrap();
        assert_eq!(v.as_deref(), Some("v"), "{name}: a refused RENAME moved the key");
        // Three keys, the last on another shard.
        let third = format!("{{{k1}}}x");
        let e = error_text(conn.req_command(&req(&["MSETNX", &k1, "1", &third, "2", &k2, "3"])).unwrap());
        assert!(e.starts_with("CROSSSLOT "), "{name}: MSETNX of three: {e}");
        // A hash tag puts keys together.
        let (t1, t2) = (format!("{{{k1}}}:a"), format!("{{{k1}}}:b"));
        let set: i64 = redis::cmd("MSETNX").arg(&t1).arg("1").arg(&t2).arg("2").query(&mut conn).unwrap();
        assert_eq!(set, 1, "{name}");
        let _: () = redis::cmd("RENAME").arg(&t1).arg(format!("{{{k1}}}:c")).query(&mut conn).unwrap();
        let v: Vec<Option<String>> =
            redis::cmd("MGET").arg(&t1).arg(&t2).arg(format!("{{{k1}}}:c")).query(&mut conn).unwrap();
        assert_eq!(v, vec![None, Some("2".into()), Some("1".into())], "{name}");
        let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
        assert_eq!(pong, "PONG");
    }
    // An argument count error is an argument count error, wherever the keys live (as redis-server says).
    let mut plain = targets.plain.client();
    let req = command(&["MSETNX", &k1, "1", &k2].iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>());
    let expected = error_text(plain.req_command(&req).unwrap());
    for (name, proxy) in targets.proxies() {
        assert_eq!(error_text(proxy.client().req_command(&req).unwrap()), expected, "{name}");
    }
}

/// HELLO through the proxy: versions other than 2 and 3 are NOPROTO, HELLO 2 answers a flat array of
/// seven pairs, and the connection keeps working in RESP2 (RESP3 through the proxy is tested raw, byte for
/// byte against redis-server, in `resp3.rs`).
#[test]
fn hello_through_the_proxy() {
    let targets = Targets::start();
    for (name, proxy) in targets.proxies() {
        let mut conn = proxy.client();
        let e = error_text(conn.req_command(&redis::cmd("HELLO").arg(4).clone()).unwrap());
        assert_eq!(e, "NOPROTO unsupported protocol version", "{name}");
        let hello = conn.req_command(&redis::cmd("HELLO").arg(2).clone()).unwrap();
        let Value::Array(items) = hello else { panic!("{name}: HELLO 2 answered {hello:?}") };
        assert_eq!(items.len(), 14, "{name}");
        assert_eq!(items[4], Value::BulkString(b"proto".to_vec()), "{name}");
        assert_eq!(items[5], Value::Int(2), "{name}");
        let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
        assert_eq!(pong, "PONG");
    }
}

/// redis-benchmark's default test list through the proxy over ringcache shards: no errors.
#[test]
fn redis_benchmark_default_tests_through_the_proxy() {
    let cluster = cluster_of_shards(PROXY_FLAGS);
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &cluster.proxy.port.to_string(), "-q", "-n", "10000"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}\n{stderr}");
    assert!(out.status.success(), "redis-benchmark failed ({}):\n{text}", out.status);
    let lower = text.to_lowercase();
    for bad in ["error", "err ", "warning", "could not", "not supported"] {
        assert!(!lower.contains(bad), "redis-benchmark output mentions {bad:?}:\n{text}");
    }
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "SADD", "HSET", "ZADD", "MSET (10 keys)"] {
        assert!(stdout.contains(&format!("{test}: ")), "no {test} result:\n{text}");
    }
}

/// Replies where ringcache-shard differs from redis-server (7.0 and 7.2 alike): checked here through the
/// proxy over redis-servers, which must pass them through unchanged. `shard_differences_from_redis` runs
/// them against the shards too.
fn shard_difference_cases() -> Vec<Case> {
    table(&[
        (Exact, &["FLUSHALL"]),
        // EXPIRETIME rounds the millisecond time to the nearest second, as TTL does.
        (Exact, &["SET", "k", "v", "PXAT", "99999999999999"]),
        (Exact, &["EXPIRETIME", "k"]),
        (Exact, &["PEXPIREAT", "k", "99999999999499"]),
        (Exact, &["EXPIRETIME", "k"]),
        // A pop count that is not an integer is "out of range, must be positive", like a negative one.
        (Exact, &["RPUSH", "l", "a", "b"]),
        (Exact, &["LPOP", "l", "x"]),
        (Exact, &["RPOP", "l", "1.5"]),
        (Exact, &["SADD", "s", "a"]),
        (Exact, &["SPOP", "s", "x"]),
        (Exact, &["ZADD", "z", "1", "a"]),
        (Exact, &["ZPOPMIN", "z", "x"]),
    ])
}

#[test]
/// Cases that once differed on ringcache-shard (EXPIRETIME rounding, pop-count error texts).
fn shard_differences_from_redis() {
    let targets = Targets::start();
    compare_targets(&targets, &shard_difference_cases(), true);
}

/// Every list command and option (the blocking ones aside), with hash-tagged keys for the multi-key ones.
#[test]
fn lists_every_command() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["RPUSH", "l", "a", "b", "c", "b", "a", "b"]),
            (Exact, &["LPUSHX", "l", "z"]),
            (Exact, &["RPUSHX", "l", "y", "x"]),
            (Exact, &["LPUSHX", "nokey", "z"]),
            (Exact, &["RPUSHX", "nokey", "z"]),
            (Exact, &["EXISTS", "nokey"]),
            (Exact, &["LPUSHX", "l"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LINDEX", "l", "0"]),
            (Exact, &["LINDEX", "l", "-1"]),
            (Exact, &["LINDEX", "l", "3"]),
            (Exact, &["LINDEX", "l", "100"]),
            (Exact, &["LINDEX", "l", "-100"]),
            (Exact, &["LINDEX", "l", "x"]),
            (Exact, &["LINDEX", "nokey", "0"]),
            (Exact, &["LSET", "l", "1", "A"]),
            (Exact, &["LSET", "l", "-1", "X"]),
            (Exact, &["LSET", "l", "100", "v"]),
            (Exact, &["LSET", "nokey", "0", "v"]),
            (Exact, &["LSET", "l", "x", "v"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LINSERT", "l", "BEFORE", "b", "ins1"]),
            (Exact, &["LINSERT", "l", "after", "b", "ins2"]),
            (Exact, &["LINSERT", "l", "BEFORE", "nothere", "v"]),
            (Exact, &["LINSERT", "l", "MIDDLE", "b", "v"]),
            (Exact, &["LINSERT", "nokey", "BEFORE", "b", "v"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LPOS", "l", "b"]),
            (Exact, &["LPOS", "l", "b", "RANK", "2"]),
            (Exact, &["LPOS", "l", "b", "RANK", "-1"]),
            (Exact, &["LPOS", "l", "b", "RANK", "-2", "COUNT", "2"]),
            (Exact, &["LPOS", "l", "b", "COUNT", "0"]),
            (Exact, &["LPOS", "l", "b", "COUNT", "2", "MAXLEN", "4"]),
            (Exact, &["LPOS", "l", "b", "MAXLEN", "1"]),
            (Exact, &["LPOS", "l", "nothere"]),
            (Exact, &["LPOS", "l", "nothere", "COUNT", "3"]),
            (Exact, &["LPOS", "nokey", "b"]),
            (Exact, &["LPOS", "nokey", "b", "COUNT", "1"]),
            (Exact, &["LPOS", "l", "b", "RANK", "0"]),
            (Exact, &["LPOS", "l", "b", "COUNT", "-1"]),
            (Exact, &["LPOS", "l", "b", "MAXLEN", "-1"]),
            (Exact, &["LPOS", "l", "b", "RANK", "x"]),
            (Exact, &["LPOS", "l", "b", "RANK", "-9223372036854775808"]),
            (Exact, &["LPOS", "l", "b", "BOGUS", "1"]),
            (Exact, &["LPOS", "l", "b", "RANK"]),
            (Exact, &["LREM", "l", "1", "b"]),
            (Exact, &["LREM", "l", "-1", "b"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LREM", "l", "0", "b"]),
            (Exact, &["LREM", "l", "0", "nothere"]),
            (Exact, &["LREM", "nokey", "0", "b"]),
            (Exact, &["LREM", "l", "x", "b"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LTRIM", "l", "1", "-2"]),
            (Exact, &["LRANGE", "l", "0", "-1"]),
            (Exact, &["LTRIM", "l", "-100", "100"]),
            (Exact, &["LLEN", "l"]),
            (Exact, &["LTRIM", "nokey", "0", "1"]),
            (Exact, &["LTRIM", "l", "x", "1"]),
            (Exact, &["RPUSH", "t", "1", "2", "3"]),
            (Exact, &["LTRIM", "t", "2", "1"]),
            (Exact, &["EXISTS", "t"]),
            (Exact, &["RPUSH", "{q}src", "1", "2", "3", "4"]),
            (Exact, &["LMOVE", "{q}src", "{q}dst", "LEFT", "RIGHT"]),
            (Exact, &["LMOVE", "{q}src", "{q}dst", "right", "left"]),
            (Exact, &["LRANGE", "{q}src", "0", "-1"]),
            (Exact, &["LRANGE", "{q}dst", "0", "-1"]),
            (Exact, &["LMOVE", "{q}src", "{q}src", "LEFT", "RIGHT"]),
            (Exact, &["LRANGE", "{q}src", "0", "-1"]),
            (Exact, &["LMOVE", "{q}none", "{q}dst", "LEFT", "RIGHT"]),
            (Exact, &["LMOVE", "{q}src", "{q}dst", "UP", "RIGHT"]),
            (Exact, &["SET", "{q}str", "v"]),
            (Exact, &["LMOVE", "{q}src", "{q}str", "LEFT", "RIGHT"]),
            (Exact, &["LMOVE", "{q}str", "{q}dst", "LEFT", "RIGHT"]),
            (Exact, &["LRANGE", "{q}src", "0", "-1"]),
            (Exact, &["RPOPLPUSH", "{q}src", "{q}dst"]),
            (Exact, &["RPOPLPUSH", "{q}src", "{q}dst"]),
            (Exact, &["EXISTS", "{q}src"]),
            (Exact, &["RPOPLPUSH", "{q}src", "{q}dst"]),
            (Exact, &["LRANGE", "{q}dst", "0", "-1"]),
            (Exact, &["RPUSH", "{m}b", "x", "y", "z"]),
            (Exact, &["LMPOP", "2", "{m}a", "{m}b", "LEFT"]),
            (Exact, &["LMPOP", "2", "{m}a", "{m}b", "RIGHT", "COUNT", "5"]),
            (Exact, &["LMPOP", "2", "{m}a", "{m}b", "RIGHT"]),
            (Exact, &["LMPOP", "0", "{m}a", "LEFT"]),
            (Exact, &["LMPOP", "-1", "{m}a", "LEFT"]),
            (Exact, &["LMPOP", "x", "{m}a", "LEFT"]),
            (Exact, &["LMPOP", "3", "{m}a", "LEFT"]),
            (Exact, &["LMPOP", "1", "{m}a", "SIDEWAYS"]),
            (Exact, &["LMPOP", "1", "{m}a", "LEFT", "COUNT", "0"]),
            (Exact, &["LMPOP", "1", "{m}a", "LEFT", "COUNT"]),
            (Exact, &["LMPOP", "1", "{m}a", "LEFT", "COUNT", "1", "COUNT", "2"]),
            (Exact, &["LMPOP", "1", "{m}str", "LEFT"]),
            (Exact, &["SET", "{m}str", "v"]),
            (Exact, &["LMPOP", "2", "{m}none", "{m}str", "LEFT"]),
            (Exact, &["LINDEX", "{m}str", "0"]),
            (Exact, &["LSET", "{m}str", "0", "v"]),
            (Exact, &["LINSERT", "{m}str", "BEFORE", "a", "b"]),
            (Exact, &["LREM", "{m}str", "0", "a"]),
            (Exact, &["LTRIM", "{m}str", "0", "1"]),
            (Exact, &["LPOS", "{m}str", "a"]),
            (Exact, &["LPUSHX", "{m}str", "a"]),
            (Exact, &["RPUSHX", "{m}str", "a"]),
            (Exact, &["LINSERT", "l", "BEFORE", "b"]),
            (Exact, &["LSET", "l", "0"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

/// Every hash command and option.
#[test]
fn hashes_every_command() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["HSET", "h", "a", "1", "b", "hello", "c", "2.5"]),
            (Exact, &["HSTRLEN", "h", "b"]),
            (Exact, &["HSTRLEN", "h", "nothere"]),
            (Exact, &["HSTRLEN", "nokey", "b"]),
            (Exact, &["HINCRBYFLOAT", "h", "c", "1.5"]),
            (Exact, &["HINCRBYFLOAT", "h", "a", "0.25"]),
            (Exact, &["HINCRBYFLOAT", "h", "new", "-2"]),
            (Exact, &["HINCRBYFLOAT", "h", "b", "1"]),
            (Exact, &["HINCRBYFLOAT", "h", "c", "x"]),
            (Exact, &["HINCRBYFLOAT", "h", "c", "inf"]),
            (Exact, &["HINCRBYFLOAT", "fresh", "f", "3"]),
            (Exact, &["HGET", "h", "c"]),
            (Exact, &["HGET", "h", "new"]),
            (Pairs, &["HGETALL", "h"]),
            (Unordered, &["HRANDFIELD", "h", "10"]),
            (Pairs, &["HRANDFIELD", "h", "10", "WITHVALUES"]),
            (Exact, &["HRANDFIELD", "h", "0"]),
            (Exact, &["HRANDFIELD", "h", "0", "WITHVALUES"]),
            (Exact, &["HRANDFIELD", "nokey"]),
            (Exact, &["HRANDFIELD", "nokey", "5"]),
            (Exact, &["HRANDFIELD", "nokey", "5", "WITHVALUES"]),
            (Exact, &["HRANDFIELD", "h", "x"]),
            (Exact, &["HRANDFIELD", "h", "1", "BOGUS"]),
            (Exact, &["HRANDFIELD", "h", "1", "WITHVALUES", "x"]),
            (Exact, &["HRANDFIELD", "h", "-9223372036854775808"]),
            (Exact, &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"]),
            (Exact, &["HSET", "one", "f", "v"]),
            (Exact, &["HRANDFIELD", "one"]),
            (Exact, &["HRANDFIELD", "one", "-3"]),
            (Exact, &["HRANDFIELD", "one", "-2", "WITHVALUES"]),
            (Exact, &["HRANDFIELD", "one", "1", "WITHVALUES"]),
            (ScanAll, &["HSCAN", "h"]),
            (Exact, &["HSCAN", "one", "0"]),
            (Exact, &["HSCAN", "one", "0", "MATCH", "f*"]),
            (Exact, &["HSCAN", "one", "0", "MATCH", "x*"]),
            (Exact, &["HSCAN", "one", "0", "COUNT", "100"]),
            (Exact, &["HSCAN", "nokey", "0"]),
            (Exact, &["HSCAN", "nokey", "0", "BOGUS"]),
            (Exact, &["HSCAN", "one", "x"]),
            (Exact, &["HSCAN", "one", "0", "COUNT", "0"]),
            (Exact, &["HSCAN", "one", "0", "COUNT", "x"]),
            (Exact, &["HSCAN", "one", "0", "MATCH"]),
            (Exact, &["HSCAN", "one", "0", "TYPE", "string"]),
            (Exact, &["SET", "str", "v"]),
            (Exact, &["HSTRLEN", "str", "f"]),
            (Exact, &["HINCRBYFLOAT", "str", "f", "1"]),
            (Exact, &["HRANDFIELD", "str"]),
            (Exact, &["HSCAN", "str", "0"]),
            (Exact, &["HINCRBYFLOAT", "h", "f"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

/// Every set command and option; multi-key ones on hash-tagged keys.
#[test]
fn sets_every_command() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["SADD", "{s}a", "1", "2", "3", "x", "y"]),
            (Exact, &["SADD", "{s}b", "2", "3", "4", "y", "z"]),
            (Exact, &["SADD", "{s}c", "3", "y", "q"]),
            (Exact, &["SMISMEMBER", "{s}a", "1", "9", "x"]),
            (Exact, &["SMISMEMBER", "{s}none", "1", "2"]),
            (Unordered, &["SINTER", "{s}a", "{s}b"]),
            (Unordered, &["SINTER", "{s}a", "{s}b", "{s}c"]),
            (Exact, &["SINTER", "{s}a", "{s}none"]),
            (Unordered, &["SINTER", "{s}a"]),
            (Unordered, &["SUNION", "{s}a", "{s}b", "{s}none"]),
            (Unordered, &["SDIFF", "{s}a", "{s}b"]),
            (Unordered, &["SDIFF", "{s}a", "{s}b", "{s}c"]),
            (Exact, &["SDIFF", "{s}none", "{s}a"]),
            (Unordered, &["SDIFF", "{s}a", "{s}none"]),
            (Exact, &["SINTERSTORE", "{s}d", "{s}a", "{s}b"]),
            (Unordered, &["SMEMBERS", "{s}d"]),
            (Exact, &["SUNIONSTORE", "{s}d", "{s}a", "{s}c"]),
            (Unordered, &["SMEMBERS", "{s}d"]),
            (Exact, &["SDIFFSTORE", "{s}d", "{s}a", "{s}b"]),
            (Unordered, &["SMEMBERS", "{s}d"]),
            (Exact, &["SINTERSTORE", "{s}d", "{s}a", "{s}none"]),
            (Exact, &["EXISTS", "{s}d"]),
            (Exact, &["SET", "{s}str", "v"]),
            (Exact, &["SUNIONSTORE", "{s}str", "{s}a"]),
            (Exact, &["TYPE", "{s}str"]),
            (Exact, &["SET", "{s}str", "v"]),
            (Exact, &["SINTER", "{s}a", "{s}str"]),
            (Exact, &["SINTER", "{s}none", "{s}str"]),
            (Exact, &["SUNION", "{s}a", "{s}str"]),
            (Exact, &["SDIFF", "{s}str", "{s}a"]),
            (Exact, &["SDIFF", "{s}a", "{s}str"]),
            (Exact, &["SINTERSTORE", "{s}d", "{s}str"]),
            (Exact, &["SINTERCARD", "2", "{s}a", "{s}b"]),
            (Exact, &["SINTERCARD", "2", "{s}a", "{s}b", "LIMIT", "1"]),
            (Exact, &["SINTERCARD", "2", "{s}a", "{s}b", "LIMIT", "0"]),
            (Exact, &["SINTERCARD", "1", "{s}none"]),
            (Exact, &["SINTERCARD", "0", "{s}a"]),
            (Exact, &["SINTERCARD", "3", "{s}a", "{s}b"]),
            (Exact, &["SINTERCARD", "x", "{s}a"]),
            (Exact, &["SINTERCARD", "1", "{s}a", "LIMIT", "-1"]),
            (Exact, &["SINTERCARD", "1", "{s}a", "LIMIT"]),
            (Exact, &["SINTERCARD", "1", "{s}a", "BOGUS", "1"]),
            (Exact, &["SINTERCARD", "2", "{s}a", "{s}str"]),
            (Exact, &["SMOVE", "{s}a", "{s}b", "1"]),
            (Exact, &["SMOVE", "{s}a", "{s}b", "2"]),
            (Exact, &["SMOVE", "{s}a", "{s}b", "nothere"]),
            (Exact, &["SMOVE", "{s}none", "{s}b", "2"]),
            (Exact, &["SMOVE", "{s}a", "{s}new", "x"]),
            (Exact, &["SMOVE", "{s}a", "{s}a", "y"]),
            (Exact, &["SMOVE", "{s}a", "{s}a", "nothere"]),
            (Exact, &["SMOVE", "{s}a", "{s}str", "y"]),
            (Exact, &["SMOVE", "{s}str", "{s}a", "y"]),
            (Exact, &["SMOVE", "{s}none", "{s}str", "y"]),
            (Unordered, &["SMEMBERS", "{s}a"]),
            (Unordered, &["SMEMBERS", "{s}b"]),
            (Unordered, &["SMEMBERS", "{s}new"]),
            (Exact, &["SADD", "{s}one", "m"]),
            (Exact, &["SMOVE", "{s}one", "{s}b", "m"]),
            (Exact, &["EXISTS", "{s}one"]),
            (Unordered, &["SRANDMEMBER", "{s}b", "100"]),
            (Exact, &["SRANDMEMBER", "{s}b", "0"]),
            (Exact, &["SRANDMEMBER", "{s}none"]),
            (Exact, &["SRANDMEMBER", "{s}none", "3"]),
            (Exact, &["SRANDMEMBER", "{s}none", "-3"]),
            (Exact, &["SRANDMEMBER", "{s}b", "x"]),
            (Exact, &["SRANDMEMBER", "{s}b", "1", "2"]),
            (Exact, &["SRANDMEMBER", "{s}b", "-9223372036854775808"]),
            (Exact, &["SADD", "{s}single", "only"]),
            (Exact, &["SRANDMEMBER", "{s}single"]),
            (Exact, &["SRANDMEMBER", "{s}single", "-4"]),
            (Exact, &["SRANDMEMBER", "{s}single", "1"]),
            (Exact, &["SRANDMEMBER", "{s}str"]),
            (ScanAll, &["SSCAN", "{s}b"]),
            (ScanAll, &["SSCAN", "{s}b", "MATCH", "*y*"]),
            (Exact, &["SSCAN", "{s}single", "0"]),
            (Exact, &["SSCAN", "{s}single", "0", "COUNT", "0"]),
            (Exact, &["SSCAN", "{s}single", "x"]),
            (Exact, &["SSCAN", "{s}none", "0", "BOGUS"]),
            (Exact, &["SSCAN", "{s}str", "0"]),
            (Exact, &["SMISMEMBER", "{s}str", "a"]),
            (Exact, &["SMISMEMBER", "{s}a"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

/// Every sorted-set command and option; multi-key ones on hash-tagged keys. Scores are exact binary
/// fractions (7.0 and 7.2 print other doubles differently).
#[test]
fn sorted_sets_every_command() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["ZADD", "{z}a", "1", "one", "2", "two", "3", "three", "4", "four", "5", "five"]),
            (Exact, &["ZADD", "{z}b", "10", "two", "20", "three", "0.5", "six"]),
            (Exact, &["SADD", "{z}set", "one", "six", "seven"]),
            (Exact, &["ZINCRBY", "{z}a", "2.5", "one"]),
            (Exact, &["ZINCRBY", "{z}a", "1", "new"]),
            (Exact, &["ZINCRBY", "{z}a", "x", "one"]),
            (Exact, &["ZINCRBY", "{z}fresh", "-1.5", "m"]),
            (Exact, &["ZADD", "{z}inf", "+inf", "m"]),
            (Exact, &["ZINCRBY", "{z}inf", "-inf", "m"]),
            (Exact, &["ZREM", "{z}a", "new", "nothere"]),
            (Exact, &["ZREM", "{z}none", "a"]),
            (Exact, &["ZMSCORE", "{z}a", "one", "nothere", "five"]),
            (Exact, &["ZMSCORE", "{z}none", "one"]),
            (Exact, &["ZRANK", "{z}a", "one"]),
            (Exact, &["ZRANK", "{z}a", "five"]),
            (Exact, &["ZRANK", "{z}a", "nothere"]),
            (Exact, &["ZREVRANK", "{z}a", "five"]),
            (Exact, &["ZREVRANK", "{z}none", "five"]),
            (Exact, &["ZCOUNT", "{z}a", "2", "4"]),
            (Exact, &["ZCOUNT", "{z}a", "(2", "(4"]),
            (Exact, &["ZCOUNT", "{z}a", "-inf", "+inf"]),
            (Exact, &["ZCOUNT", "{z}a", "5", "2"]),
            (Exact, &["ZCOUNT", "{z}a", "x", "2"]),
            (Exact, &["ZCOUNT", "{z}none", "0", "1"]),
            (Exact, &["ZRANGE", "{z}a", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZREVRANGE", "{z}a", "0", "2"]),
            (Exact, &["ZREVRANGE", "{z}a", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZREVRANGE", "{z}a", "-2", "-1"]),
            (Exact, &["ZREVRANGE", "{z}a", "0", "1", "REV"]),
            (Exact, &["ZREVRANGE", "{z}a", "0", "1", "LIMIT", "0", "1"]),
            (Exact, &["ZREVRANGE", "{z}a", "0", "1", "BYSCORE"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "2", "4"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "(2", "+inf", "WITHSCORES"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "-inf", "+inf", "LIMIT", "1", "2"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "-inf", "+inf", "LIMIT", "1", "-1"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "-inf", "+inf", "LIMIT", "-1", "2"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "-inf", "+inf", "LIMIT", "10", "2"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", " 2", "4"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "", "4"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "2", "4", "BYSCORE"]),
            (Exact, &["ZRANGEBYSCORE", "{z}a", "2"]),
            (Exact, &["ZREVRANGEBYSCORE", "{z}a", "4", "2"]),
            (Exact, &["ZREVRANGEBYSCORE", "{z}a", "+inf", "(2", "WITHSCORES", "LIMIT", "1", "2"]),
            (Exact, &["ZREVRANGEBYSCORE", "{z}a", "2", "4"]),
            (Exact, &["ZADD", "{z}lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"]),
            (Exact, &["ZRANGEBYLEX", "{z}lex", "[b", "(e"]),
            (Exact, &["ZRANGEBYLEX", "{z}lex", "-", "+", "LIMIT", "1", "3"]),
            (Exact, &["ZRANGEBYLEX", "{z}lex", "(a", "[c"]),
            (Exact, &["ZRANGEBYLEX", "{z}lex", "+", "-"]),
            (Exact, &["ZRANGEBYLEX", "{z}lex", "a", "c"]),
            (Exact, &["ZRANGEBYLEX", "{z}lex", "-", "+", "WITHSCORES"]),
            (Exact, &["ZREVRANGEBYLEX", "{z}lex", "[d", "(a"]),
            (Exact, &["ZREVRANGEBYLEX", "{z}lex", "+", "-", "LIMIT", "0", "2"]),
            (Exact, &["ZLEXCOUNT", "{z}lex", "[b", "[d"]),
            (Exact, &["ZLEXCOUNT", "{z}lex", "-", "+"]),
            (Exact, &["ZLEXCOUNT", "{z}lex", "x", "+"]),
            (Exact, &["ZLEXCOUNT", "{z}none", "-", "+"]),
            (Exact, &["ZRANGE", "{z}lex", "(b", "+", "BYLEX", "REV"]),
            (Exact, &["ZRANGE", "{z}lex", "+", "(b", "BYLEX", "REV"]),
            (Exact, &["ZRANGE", "{z}a", "5", "(2", "BYSCORE", "REV", "LIMIT", "0", "2", "WITHSCORES"]),
            (Exact, &["ZRANGE", "{z}a", "0", "-1", "BYSCORE", "BYLEX"]),
            (Exact, &["ZRANGE", "{z}a", "0", "-1", "REV", "REV"]),
            (Exact, &["ZRANGE", "{z}a", "0", "-1", "WITHSCORES", "WITHSCORES"]),
            (Exact, &["ZRANGE", "{z}a", "0", "-1", "LIMIT", "0"]),
            (Exact, &["ZRANGESTORE", "{z}dst", "{z}a", "1", "3"]),
            (Exact, &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZRANGESTORE", "{z}dst", "{z}a", "(2", "+inf", "BYSCORE", "LIMIT", "0", "2"]),
            (Exact, &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZRANGESTORE", "{z}dst", "{z}lex", "[b", "[c", "BYLEX"]),
            (Exact, &["ZRANGESTORE", "{z}dst", "{z}a", "0", "1", "REV"]),
            (Exact, &["ZRANGE", "{z}dst", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZRANGESTORE", "{z}dst", "{z}a", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZRANGESTORE", "{z}dst", "{z}none", "0", "-1"]),
            (Exact, &["EXISTS", "{z}dst"]),
            (Exact, &["ZADD", "{z}rem", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"]),
            (Exact, &["ZREMRANGEBYRANK", "{z}rem", "0", "1"]),
            (Exact, &["ZREMRANGEBYRANK", "{z}rem", "-1", "-1"]),
            (Exact, &["ZREMRANGEBYRANK", "{z}rem", "5", "10"]),
            (Exact, &["ZREMRANGEBYRANK", "{z}rem", "x", "1"]),
            (Exact, &["ZREMRANGEBYSCORE", "{z}rem", "(3", "4"]),
            (Exact, &["ZREMRANGEBYSCORE", "{z}rem", "x", "4"]),
            (Exact, &["ZRANGE", "{z}rem", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZREMRANGEBYLEX", "{z}lex", "[b", "(d"]),
            (Exact, &["ZREMRANGEBYLEX", "{z}lex", "b", "d"]),
            (Exact, &["ZRANGE", "{z}lex", "0", "-1"]),
            (Exact, &["ZREMRANGEBYSCORE", "{z}rem", "-inf", "+inf"]),
            (Exact, &["EXISTS", "{z}rem"]),
            (Exact, &["ZREMRANGEBYRANK", "{z}none", "0", "1"]),
            (Exact, &["ZPOPMAX", "{z}b"]),
            (Exact, &["ZPOPMAX", "{z}b", "5"]),
            (Exact, &["ZPOPMAX", "{z}b", "0"]),
            (Exact, &["ZPOPMAX", "{z}b", "-1"]),
            (Exact, &["ZPOPMAX", "{z}none"]),
            (Exact, &["ZPOPMAX", "{z}none", "2"]),
            (Exact, &["ZADD", "{z}m2", "1", "x", "2", "y", "3", "z"]),
            (Exact, &["ZMPOP", "2", "{z}none", "{z}m2", "MIN"]),
            (Exact, &["ZMPOP", "2", "{z}none", "{z}m2", "MAX", "COUNT", "10"]),
            (Exact, &["ZMPOP", "1", "{z}m2", "MIN"]),
            (Exact, &["ZMPOP", "0", "{z}m2", "MIN"]),
            (Exact, &["ZMPOP", "1", "{z}m2", "SIDEWAYS"]),
            (Exact, &["ZMPOP", "1", "{z}m2", "MIN", "COUNT", "0"]),
            (Exact, &["ZMPOP", "3", "{z}m2", "MIN"]),
            (Exact, &["ZMPOP", "1", "{z}set", "MIN"]),
            (Unordered, &["ZRANDMEMBER", "{z}a", "100"]),
            (Pairs, &["ZRANDMEMBER", "{z}a", "100", "WITHSCORES"]),
            (Exact, &["ZRANDMEMBER", "{z}a", "0"]),
            (Exact, &["ZRANDMEMBER", "{z}none"]),
            (Exact, &["ZRANDMEMBER", "{z}none", "2", "WITHSCORES"]),
            (Exact, &["ZRANDMEMBER", "{z}a", "1", "BOGUS"]),
            (Exact, &["ZRANDMEMBER", "{z}a", "x"]),
            (Exact, &["ZADD", "{z}single", "7", "only"]),
            (Exact, &["ZRANDMEMBER", "{z}single"]),
            (Exact, &["ZRANDMEMBER", "{z}single", "-3", "WITHSCORES"]),
            (ScanAll, &["ZSCAN", "{z}a"]),
            (Exact, &["ZSCAN", "{z}single", "0"]),
            (Exact, &["ZSCAN", "{z}none", "0"]),
            (Exact, &["ZSCAN", "{z}single", "0", "MATCH", "o*", "COUNT", "5"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}b", "WITHSCORES"]),
            (Exact, &["ZUNION", "3", "{z}a", "{z}b", "{z}set", "WEIGHTS", "1", "2", "0.5", "WITHSCORES"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}b", "AGGREGATE", "MAX", "WITHSCORES"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}b", "AGGREGATE", "MIN"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}none", "WITHSCORES"]),
            (Exact, &["ZINTER", "2", "{z}a", "{z}set", "WITHSCORES"]),
            (Exact, &["ZINTER", "2", "{z}a", "{z}b", "WEIGHTS", "2", "1", "AGGREGATE", "SUM", "WITHSCORES"]),
            (Exact, &["ZINTER", "2", "{z}a", "{z}none"]),
            (Exact, &["ZDIFF", "2", "{z}a", "{z}b", "WITHSCORES"]),
            (Exact, &["ZDIFF", "3", "{z}a", "{z}b", "{z}set"]),
            (Exact, &["ZDIFF", "2", "{z}none", "{z}a"]),
            (Exact, &["ZDIFF", "2", "{z}a", "{z}b", "WEIGHTS", "1", "2"]),
            (Exact, &["ZUNION", "0", "{z}a"]),
            (Exact, &["ZUNION", "3", "{z}a"]),
            (Exact, &["ZUNION", "x", "{z}a"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}b", "WEIGHTS", "1"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}b", "WEIGHTS", "1", "x"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}b", "AGGREGATE", "AVG"]),
            (Exact, &["ZUNION", "1", "{z}a", "BOGUS"]),
            (Exact, &["SET", "{z}str", "v"]),
            (Exact, &["ZUNION", "2", "{z}a", "{z}str"]),
            (Exact, &["ZINTER", "2", "{z}none", "{z}str"]),
            (Exact, &["ZUNIONSTORE", "{z}out", "2", "{z}a", "{z}b", "WEIGHTS", "2", "3"]),
            (Exact, &["ZRANGE", "{z}out", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZINTERSTORE", "{z}out", "2", "{z}a", "{z}b", "AGGREGATE", "MIN"]),
            (Exact, &["ZRANGE", "{z}out", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZDIFFSTORE", "{z}out", "2", "{z}a", "{z}b"]),
            (Exact, &["ZRANGE", "{z}out", "0", "-1", "WITHSCORES"]),
            (Exact, &["ZINTERSTORE", "{z}out", "2", "{z}a", "{z}none"]),
            (Exact, &["EXISTS", "{z}out"]),
            (Exact, &["ZUNIONSTORE", "{z}str", "1", "{z}a", "WITHSCORES"]),
            (Exact, &["ZUNIONSTORE", "{z}str", "1", "{z}a"]),
            (Exact, &["TYPE", "{z}str"]),
            (Exact, &["ZINTERCARD", "2", "{z}a", "{z}b"]),
            (Exact, &["ZINTERCARD", "2", "{z}a", "{z}b", "LIMIT", "1"]),
            (Exact, &["ZINTERCARD", "2", "{z}a", "{z}set"]),
            (Exact, &["ZINTERCARD", "0", "{z}a"]),
            (Exact, &["ZINTERCARD", "1", "{z}a", "LIMIT", "-1"]),
            (Exact, &["ZINTERCARD", "1", "{z}a", "WITHSCORES"]),
            (Exact, &["SET", "{z}s2", "v"]),
            (Exact, &["ZINCRBY", "{z}s2", "1", "m"]),
            (Exact, &["ZREM", "{z}s2", "m"]),
            (Exact, &["ZRANK", "{z}s2", "m"]),
            (Exact, &["ZCOUNT", "{z}s2", "0", "1"]),
            (Exact, &["ZRANGEBYSCORE", "{z}s2", "0", "1"]),
            (Exact, &["ZPOPMAX", "{z}s2"]),
            (Exact, &["ZRANDMEMBER", "{z}s2"]),
            (Exact, &["ZSCAN", "{z}s2", "0"]),
            (Exact, &["ZMSCORE", "{z}s2", "m"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

/// The string commands the first tables do not cover (SUBSTR, LCS) and every bitmap command.
#[test]
fn bitmaps_and_more_strings() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["SET", "s", "Hello World"]),
            (Exact, &["SUBSTR", "s", "0", "4"]),
            (Exact, &["SUBSTR", "s", "-5", "-1"]),
            (Exact, &["SUBSTR", "nokey", "0", "-1"]),
            (Exact, &["SUBSTR", "s", "x", "1"]),
            (Exact, &["SET", "{l}a", "ohmytext"]),
            (Exact, &["SET", "{l}b", "mynewtext"]),
            (Exact, &["LCS", "{l}a", "{l}b"]),
            (Exact, &["LCS", "{l}a", "{l}b", "LEN"]),
            (Exact, &["LCS", "{l}a", "{l}b", "IDX"]),
            (Exact, &["LCS", "{l}a", "{l}b", "IDX", "MINMATCHLEN", "4"]),
            (Exact, &["LCS", "{l}a", "{l}b", "IDX", "MINMATCHLEN", "2", "WITHMATCHLEN"]),
            (Exact, &["LCS", "{l}a", "{l}b", "IDX", "LEN"]),
            (Exact, &["LCS", "{l}a", "{l}none"]),
            (Exact, &["LCS", "{l}a", "{l}none", "IDX"]),
            (Exact, &["LCS", "{l}a", "{l}b", "BOGUS"]),
            (Exact, &["LCS", "{l}a", "{l}b", "MINMATCHLEN"]),
            (Exact, &["LCS", "{l}a", "{l}b", "MINMATCHLEN", "x"]),
            (Exact, &["RPUSH", "{l}list", "x"]),
            (Exact, &["LCS", "{l}a", "{l}list"]),
            (Exact, &["SETBIT", "bm", "7", "1"]),
            (Exact, &["SETBIT", "bm", "7", "1"]),
            (Exact, &["SETBIT", "bm", "100", "1"]),
            (Exact, &["SETBIT", "bm", "100", "0"]),
            (Exact, &["GET", "bm"]),
            (Exact, &["STRLEN", "bm"]),
            (Exact, &["SETBIT", "bm", "-1", "1"]),
            (Exact, &["SETBIT", "bm", "x", "1"]),
            (Exact, &["SETBIT", "bm", "1", "2"]),
            (Exact, &["SETBIT", "bm", "1", "x"]),
            (Exact, &["SETBIT", "bm", "4294967296", "1"]),
            (Exact, &["GETBIT", "bm", "7"]),
            (Exact, &["GETBIT", "bm", "6"]),
            (Exact, &["GETBIT", "bm", "100000"]),
            (Exact, &["GETBIT", "nokey", "0"]),
            (Exact, &["GETBIT", "bm", "-1"]),
            (Exact, &["SET", "foo", "foobar"]),
            (Exact, &["BITCOUNT", "foo"]),
            (Exact, &["BITCOUNT", "foo", "0", "0"]),
            (Exact, &["BITCOUNT", "foo", "1", "1"]),
            (Exact, &["BITCOUNT", "foo", "1", "1", "BYTE"]),
            (Exact, &["BITCOUNT", "foo", "5", "30", "BIT"]),
            (Exact, &["BITCOUNT", "foo", "-5", "-1", "bit"]),
            (Exact, &["BITCOUNT", "foo", "-1", "-5"]),
            (Exact, &["BITCOUNT", "foo", "0", "100"]),
            (Exact, &["BITCOUNT", "foo", "1"]),
            (Exact, &["BITCOUNT", "foo", "0", "1", "WORD"]),
            (Exact, &["BITCOUNT", "foo", "x", "1"]),
            (Exact, &["BITCOUNT", "nokey"]),
            (Exact, &["BITCOUNT", "nokey", "x"]),
            (Exact, &["SET", "empty", ""]),
            (Exact, &["BITCOUNT", "empty"]),
            (Exact, &["BITPOS", "empty", "0"]),
            (Exact, &["BITPOS", "empty", "1"]),
            (Exact, &["SET", "bp", "\u{0}\u{ff}\u{f0}"]),
            (Exact, &["BITPOS", "bp", "1"]),
            (Exact, &["BITPOS", "bp", "0"]),
            (Exact, &["BITPOS", "bp", "1", "2"]),
            (Exact, &["BITPOS", "bp", "0", "1", "2"]),
            (Exact, &["BITPOS", "bp", "1", "7", "15", "BIT"]),
            (Exact, &["BITPOS", "bp", "0", "8", "15", "BIT"]),
            (Exact, &["BITPOS", "bp", "0", "2"]),
            (Exact, &["BITPOS", "bp", "1", "-1"]),
            (Exact, &["BITPOS", "bp", "1", "5", "3"]),
            (Exact, &["BITPOS", "bp", "2"]),
            (Exact, &["BITPOS", "bp", "x"]),
            (Exact, &["BITPOS", "bp", "1", "0", "1", "BAD"]),
            (Exact, &["BITPOS", "nokey", "0"]),
            (Exact, &["BITPOS", "nokey", "1"]),
            (Exact, &["SET", "ones", "\u{7f}"]),
            (Exact, &["BITPOS", "ones", "0"]),
            (Exact, &["SET", "full", "\u{7f}\u{7f}"]),
            (Exact, &["SET", "{b}1", "foobar"]),
            (Exact, &["SET", "{b}2", "abcdef"]),
            (Exact, &["BITOP", "AND", "{b}d", "{b}1", "{b}2"]),
            (Exact, &["GET", "{b}d"]),
            (Exact, &["BITOP", "or", "{b}d", "{b}1", "{b}2", "{b}none"]),
            (Exact, &["GET", "{b}d"]),
            (Exact, &["BITOP", "XOR", "{b}d", "{b}1", "{b}2"]),
            (Exact, &["GET", "{b}d"]),
            (Exact, &["BITOP", "NOT", "{b}d", "{b}1"]),
            (Exact, &["GET", "{b}d"]),
            (Exact, &["BITOP", "NOT", "{b}d", "{b}1", "{b}2"]),
            (Exact, &["BITOP", "NAND", "{b}d", "{b}1"]),
            (Exact, &["BITOP", "AND", "{b}d", "{b}none"]),
            (Exact, &["EXISTS", "{b}d"]),
            (Exact, &["RPUSH", "{b}list", "x"]),
            (Exact, &["BITOP", "AND", "{b}d", "{b}1", "{b}list"]),
            (Exact, &["SET", "{b}short", "a"]),
            (Exact, &["BITOP", "AND", "{b}d", "{b}1", "{b}short"]),
            (Exact, &["GET", "{b}d"]),
            (Exact, &["BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "u4", "0"]),
            (Exact, &["BITFIELD", "bf", "INCRBY", "i8", "0", "100"]),
            (Exact, &["BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "100"]),
            (Exact, &["BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "100", "GET", "i8", "0"]),
            (Exact, &["BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u2", "100", "1", "INCRBY", "u2", "100", "5"]),
            (Exact, &["BITFIELD", "bf", "SET", "u8", "#1", "255", "GET", "u8", "8", "GET", "i16", "#0"]),
            (Exact, &["BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "u8", "#1", "10", "INCRBY", "u8", "#1", "-300"]),
            (Exact, &["BITFIELD", "bf", "SET", "i64", "0", "-9223372036854775808", "GET", "i64", "0"]),
            (Exact, &["BITFIELD", "bf", "INCRBY", "i64", "0", "-1"]),
            (Exact, &["BITFIELD", "bf", "SET", "u63", "0", "-1", "GET", "u63", "0"]),
            (Exact, &["BITFIELD", "bf", "SET", "u3", "5", "-3", "GET", "u3", "5", "GET", "i3", "5"]),
            (Exact, &["GET", "bf"]),
            (Exact, &["BITFIELD", "bf"]),
            (Exact, &["BITFIELD", "nokey", "GET", "u8", "0"]),
            (Exact, &["EXISTS", "nokey"]),
            (Exact, &["BITFIELD", "bf", "GET", "u64", "0"]),
            (Exact, &["BITFIELD", "bf", "GET", "i65", "0"]),
            (Exact, &["BITFIELD", "bf", "GET", "I8", "0"]),
            (Exact, &["BITFIELD", "bf", "GET", "u8", "-1"]),
            (Exact, &["BITFIELD", "bf", "GET", "u8", "#x"]),
            (Exact, &["BITFIELD", "bf", "SET", "u8", "0", "x"]),
            (Exact, &["BITFIELD", "bf", "OVERFLOW", "NOPE"]),
            (Exact, &["BITFIELD", "bf", "BOGUS", "u8", "0"]),
            (Exact, &["BITFIELD", "bf", "GET", "u8"]),
            (Exact, &["BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i4", "4"]),
            (Exact, &["BITFIELD_RO", "bf", "SET", "u8", "0", "1"]),
            (Exact, &["BITFIELD_RO", "nokey", "GET", "u8", "0"]),
            (Exact, &["RPUSH", "list", "x"]),
            (Exact, &["SETBIT", "list", "0", "1"]),
            (Exact, &["GETBIT", "list", "0"]),
            (Exact, &["BITCOUNT", "list"]),
            (Exact, &["BITPOS", "list", "1"]),
            (Exact, &["BITFIELD", "list", "GET", "u8", "0"]),
            (Exact, &["SUBSTR", "list", "0", "1"]),
            (Exact, &["DBSIZE"]),
        ]),
    );
}

/// PFADD, PFCOUNT, PFMERGE and PFDEBUG: the HyperLogLogs are Redis's own bytes (GET compares them), and
/// PFCOUNT of keys on different shards is merged by the proxy.
#[test]
fn hyperloglogs() {
    let targets = Targets::start();
    let mut rows = table(&[
        (Exact, &["FLUSHALL"]),
        (Exact, &["PFADD", "h1", "a", "b", "c"]),
        (Exact, &["PFADD", "h1", "a"]),
        (Exact, &["PFADD", "h1"]),
        (Exact, &["PFADD", "fresh"]),
        (Exact, &["GET", "fresh"]),
        (Exact, &["PFCOUNT", "fresh"]),
        (Exact, &["GET", "h1"]),
        (Exact, &["PFCOUNT", "h1"]),
        (Exact, &["GET", "h1"]),
        (Exact, &["PFCOUNT", "nokey"]),
        (Exact, &["PFDEBUG", "ENCODING", "h1"]),
        (Exact, &["PFDEBUG", "DECODE", "h1"]),
        (Exact, &["PFDEBUG", "NOPE", "h1"]),
        (Exact, &["PFDEBUG", "ENCODING", "nokey"]),
        (Exact, &["SET", "notahll", "hello"]),
        (Exact, &["PFADD", "notahll", "x"]),
        (Exact, &["PFCOUNT", "notahll"]),
        (Exact, &["PFDEBUG", "ENCODING", "notahll"]),
        (Exact, &["RPUSH", "list", "x"]),
        (Exact, &["PFADD", "list", "x"]),
        (Exact, &["PFCOUNT", "list"]),
        (Exact, &["SET", "int", "123"]),
        (Exact, &["PFCOUNT", "int"]),
        (Exact, &["PFSELFTEST"]),
    ]);
    // Enough elements to leave the sparse encoding, checked at every step on a few registers.
    for chunk in 0..30 {
        let mut args = vec!["PFADD".to_string(), "{p}big".to_string()];
        args.extend((0..100).map(|i| format!("e{}", chunk * 100 + i)));
        rows.push(Case { cmp: Exact, args: args.iter().map(|a| a.as_bytes().to_vec()).collect() });
        rows.push(case(Exact, &["PFCOUNT", "{p}big"]));
        if chunk % 10 == 9 {
            rows.push(case(Exact, &["GET", "{p}big"]));
            rows.push(case(Exact, &["PFDEBUG", "ENCODING", "{p}big"]));
        }
    }
    rows.extend(table(&[
        (Exact, &["PFADD", "{p}small", "x", "y", "e1", "e2"]),
        (Exact, &["PFCOUNT", "{p}big", "{p}small"]),
        (Exact, &["PFCOUNT", "{p}big", "{p}small", "{p}none"]),
        (Exact, &["PFMERGE", "{p}dst", "{p}small"]),
        (Exact, &["GET", "{p}dst"]),
        (Exact, &["PFCOUNT", "{p}dst"]),
        (Exact, &["PFMERGE", "{p}dst", "{p}big", "{p}small"]),
        (Exact, &["GET", "{p}dst"]),
        (Exact, &["PFCOUNT", "{p}dst"]),
        (Exact, &["PFMERGE", "{p}dst2", "{p}none"]),
        (Exact, &["GET", "{p}dst2"]),
        (Exact, &["SET", "{p}str", "v"]),
        (Exact, &["PFMERGE", "{p}dst", "{p}str"]),
        (Exact, &["PFMERGE", "{p}str", "{p}small"]),
        (Exact, &["PFCOUNT", "{p}small", "{p}str"]),
        (Exact, &["PFDEBUG", "TODENSE", "{p}small"]),
        (Exact, &["PFDEBUG", "TODENSE", "{p}small"]),
        (Exact, &["PFDEBUG", "DECODE", "{p}small"]),
        (Exact, &["PFCOUNT", "{p}small"]),
        (Exact, &["GET", "{p}small"]),
        // Keys on different shards: the proxy merges them.
        (Exact, &["PFADD", "ha", "1", "2", "3", "4"]),
        (Exact, &["PFADD", "hb", "3", "4", "5"]),
        (Exact, &["PFADD", "hc", "9"]),
        (Exact, &["PFCOUNT", "ha", "hb", "hc", "nokey"]),
        (Exact, &["PFCOUNT", "ha", "{p}big"]),
        (Exact, &["PFCOUNT", "ha", "notahll"]),
        (Exact, &["PFCOUNT", "ha", "list"]),
        (Exact, &["DBSIZE"]),
    ]));
    differential(&targets, &rows);
}

/// SUNION, SINTER, SDIFF and SINTERCARD of sets on different shards (no hash tag): the proxy reads each
/// set and combines them, so the replies are redis-server's.
#[test]
fn set_operations_across_shards() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["SADD", "sa", "1", "2", "3", "x"]),
            (Exact, &["SADD", "sb", "2", "3", "4"]),
            (Exact, &["SADD", "sc", "3", "9"]),
            (Unordered, &["SUNION", "sa", "sb", "sc", "none"]),
            (Unordered, &["SINTER", "sa", "sb", "sc"]),
            (Exact, &["SINTER", "sa", "none"]),
            (Unordered, &["SDIFF", "sa", "sb", "sc"]),
            (Exact, &["SINTERCARD", "3", "sa", "sb", "sc"]),
            (Exact, &["SINTERCARD", "2", "sa", "sb", "LIMIT", "1"]),
            (Exact, &["SINTERCARD", "2", "sa", "sb", "LIMIT", "-1"]),
            (Exact, &["SINTERCARD", "2", "sa", "sb", "BOGUS"]),
            (Exact, &["SET", "str", "v"]),
            (Exact, &["SUNION", "sa", "str"]),
            (Exact, &["SINTER", "sa", "str"]),
            (Exact, &["SDIFF", "str", "sa"]),
        ]),
    );
}

/// The generic key commands: COPY RENAMENX OBJECT SORT SORT_RO DUMP/RESTORE MOVE SWAPDB WAIT, EXPIRE's
/// options and SCAN's TYPE, on hash-tagged keys (so that multi-key ones run on one shard).
#[test]
fn generic_key_commands() {
    let targets = Targets::start();
    let mut cases = table(&[
        (Exact, &["FLUSHALL"]),
        (Exact, &["SET", "{k}s", "hello"]),
        (Exact, &["SET", "{k}n", "123"]),
        (Exact, &["SET", "{k}big", "12345678901234567890123456789012345678901234567890"]),
        (Exact, &["SET", "{k}neg", "-5"]),
        (Exact, &["SET", "{k}long", "12345678901234567890123"]),
        (Exact, &["RPUSH", "{k}l", "3", "1", "2", " 4", "", "10"]),
        (Exact, &["SADD", "{k}si", "1", "2", "3"]),
        (Exact, &["SADD", "{k}ss", "a", "b"]),
        (Exact, &["HSET", "{k}h", "a", "b", "c", "d"]),
        (Exact, &["ZADD", "{k}z", "1", "a", "2", "b", "3", "c"]),
        // OBJECT
        (Exact, &["OBJECT", "ENCODING", "{k}s"]),
        (Exact, &["OBJECT", "ENCODING", "{k}n"]),
        (Exact, &["OBJECT", "ENCODING", "{k}neg"]),
        (Exact, &["OBJECT", "ENCODING", "{k}big"]),
        (Exact, &["OBJECT", "ENCODING", "{k}long"]),
        (Exact, &["OBJECT", "ENCODING", "{k}l"]),
        (Exact, &["OBJECT", "ENCODING", "{k}si"]),
        (Exact, &["OBJECT", "ENCODING", "{k}ss"]),
        (Exact, &["OBJECT", "ENCODING", "{k}h"]),
        (Exact, &["OBJECT", "ENCODING", "{k}z"]),
        (Exact, &["OBJECT", "ENCODING", "nokey"]),
        (Exact, &["OBJECT", "REFCOUNT", "{k}n"]),
        (Exact, &["OBJECT", "REFCOUNT", "{k}s"]),
        (Exact, &["OBJECT", "REFCOUNT", "nokey"]),
        (Exact, &["OBJECT", "FREQ", "{k}s"]),
        // Whole seconds since the key's last access: a second boundary may fall between the write and this
        // read on one target and not on the other.
        (Within(1), &["OBJECT", "IDLETIME", "{k}s"]),
        (Exact, &["OBJECT", "IDLETIME", "nokey"]),
        (Exact, &["OBJECT", "HELP"]),
        (Exact, &["OBJECT", "help"]),
        (Exact, &["OBJECT", "FOO", "{k}s"]),
        (Exact, &["OBJECT", "ENCODING"]),
        (Exact, &["OBJECT", "HELP", "x"]),
        (Exact, &["OBJECT"]),
        // COPY
        (Exact, &["COPY", "{k}s", "{k}s2"]),
        (Exact, &["GET", "{k}s2"]),
        (Exact, &["COPY", "{k}s", "{k}s2"]),
        (Exact, &["COPY", "{k}n", "{k}s2", "REPLACE"]),
        (Exact, &["GET", "{k}s2"]),
        (Exact, &["COPY", "{k}s", "{k}s"]),
        (Exact, &["COPY", "{k}s", "{k}s3", "DB", "0"]),
        (Exact, &["COPY", "{k}s", "{k}s3", "DB", "1"]),
        (Exact, &["COPY", "{k}s", "{k}s3", "DB", "x"]),
        (Exact, &["COPY", "{k}s", "{k}s3", "BOGUS"]),
        (Exact, &["COPY", "{k}s", "{k}s3", "DB"]),
        (Exact, &["COPY", "{k}nokey", "{k}x"]),
        (Exact, &["COPY", "{k}l", "{k}l2"]),
        (Exact, &["LRANGE", "{k}l2", "0", "-1"]),
        (Exact, &["COPY", "{k}h", "{k}h2"]),
        (Pairs, &["HGETALL", "{k}h2"]),
        (Exact, &["COPY", "{k}z", "{k}z2"]),
        (Exact, &["ZRANGE", "{k}z2", "0", "-1", "WITHSCORES"]),
        (Exact, &["COPY", "{k}si", "{k}si2"]),
        (Unordered, &["SMEMBERS", "{k}si2"]),
        (Exact, &["SET", "{k}t", "v", "EX", "1000"]),
        (Exact, &["COPY", "{k}t", "{k}t2"]),
        (Within(2), &["TTL", "{k}t2"]),
        // RENAMENX
        (Exact, &["RENAMENX", "{k}s3", "{k}s4"]),
        (Exact, &["RENAMENX", "{k}s4", "{k}n"]),
        (Exact, &["RENAMENX", "{k}nokey", "{k}x"]),
        (Exact, &["RENAMENX", "{k}s4", "{k}s4"]),
        (Exact, &["RENAMENX", "{k}t2", "{k}t3"]),
        (Within(2), &["TTL", "{k}t3"]),
        (Exact, &["GET", "{k}s4"]),
        // MOVE, SWAPDB, WAIT: one database
        (Exact, &["MOVE", "{k}s4", "0"]),
        (Exact, &["MOVE", "{k}s4", "1"]),
        (Exact, &["MOVE", "{k}s4", "x"]),
        (Exact, &["SWAPDB", "0", "0"]),
        (Exact, &["SWAPDB", "0", "1"]),
        (Exact, &["SWAPDB", "x", "0"]),
        (Exact, &["SWAPDB", "0", "x"]),
        (Exact, &["WAIT", "0", "0"]),
        (Exact, &["WAIT", "x", "0"]),
        (Exact, &["WAIT", "0", "-1"]),
        (Exact, &["WAIT", "0", "x"]),
        // SORT
        (Exact, &["SORT", "{k}l"]),
        (Exact, &["SORT", "{k}l", "DESC"]),
        (Exact, &["SORT", "{k}l", "LIMIT", "1", "2"]),
        (Exact, &["SORT", "{k}l", "LIMIT", "-5", "2"]),
        (Exact, &["SORT", "{k}l", "LIMIT", "2", "-1"]),
        (Exact, &["SORT", "{k}l", "LIMIT", "10", "2"]),
        (Exact, &["SORT", "{k}l", "ALPHA"]),
        (Exact, &["SORT", "{k}l", "ALPHA", "DESC", "LIMIT", "0", "3"]),
        (Exact, &["SORT", "{k}l", "BY", "nosort"]),
        (Exact, &["SORT", "{k}l", "BY", "nosort", "DESC", "LIMIT", "1", "2"]),
        (Exact, &["SORT", "{k}si"]),
        (Exact, &["SORT", "{k}si", "DESC"]),
        (Exact, &["SORT", "{k}ss", "ALPHA"]),
        (Exact, &["SORT", "{k}ss"]),
        (Exact, &["SORT", "{k}h"]),
        (Exact, &["SORT", "{k}s"]),
        (Exact, &["SORT", "{k}nokey"]),
        (Exact, &["SORT", "{k}z", "BY", "nosort"]),
        (Exact, &["SORT", "{k}z", "BY", "nosort", "DESC"]),
        (Exact, &["SORT", "{k}z", "BY", "nosort", "LIMIT", "1", "5"]),
        (Exact, &["SORT", "{k}l", "STORE", "{k}dst"]),
        (Exact, &["LRANGE", "{k}dst", "0", "-1"]),
        (Exact, &["SORT", "{k}ss", "BY", "nosort", "STORE", "{k}dst"]),
        (Exact, &["LRANGE", "{k}dst", "0", "-1"]),
        (Exact, &["SORT", "{k}nokey", "STORE", "{k}dst"]),
        (Exact, &["EXISTS", "{k}dst"]),
        (Exact, &["SORT_RO", "{k}l", "STORE", "{k}dst"]),
        (Exact, &["SORT_RO", "{k}l", "DESC", "LIMIT", "0", "2"]),
        (Exact, &["SORT", "{k}l", "BOGUS"]),
        (Exact, &["SORT", "{k}l", "LIMIT", "a", "1"]),
        (Exact, &["SORT", "{k}l", "LIMIT", "1"]),
        (Exact, &["SORT", "{k}s", "BOGUS"]),
        (Exact, &["RPUSH", "{k}bad", "1", "x"]),
        (Exact, &["SORT", "{k}bad"]),
        (Exact, &["SORT", "{k}bad", "ALPHA"]),
        // (Not "1e400": redis-server reads a stale errno after strtod, so one ERANGE fails later sorts too.)
        (Exact, &["RPUSH", "{k}inf", "inf", "-inf", "0x10", "-2.5e3"]),
        (Exact, &["SORT", "{k}inf"]),
        (Exact, &["MSET", "{k}w_1", "30", "{k}w_2", "20", "{k}w_3", "10"]),
        (Exact, &["HSET", "{k}h_1", "f", "x1"]),
        (Exact, &["HSET", "{k}h_2", "f", "x2"]),
        (Exact, &["SORT", "{k}si", "BY", "{k}w_*"]),
        (Exact, &["SORT", "{k}si", "BY", "{k}w_*", "DESC"]),
        (Exact, &["SORT", "{k}si", "BY", "{k}w_*", "GET", "#", "GET", "{k}h_*->f", "GET", "{k}w_*", "GET", "{k}h_*->"]),
        (Exact, &["SORT", "{k}si", "BY", "{k}h_*->f", "ALPHA", "DESC", "GET", "#"]),
        (Exact, &["SORT", "{k}si", "BY", "{k}missing_*", "GET", "{k}h_*->f"]),
        (Exact, &["SORT", "{k}si", "BY", "{k}w_*", "GET", "#", "GET", "{k}h_*->f", "STORE", "{k}dst2"]),
        (Exact, &["LRANGE", "{k}dst2", "0", "-1"]),
        (Exact, &["SORT", "{k}si", "GET", "{k}h_*", "LIMIT", "0", "1"]),
        // EXPIRE options
        (Exact, &["EXPIRE", "{k}n", "100", "NX"]),
        (Exact, &["EXPIRE", "{k}n", "100", "XX"]),
        (Exact, &["EXPIRE", "{k}n", "50", "GT"]),
        (Exact, &["EXPIRE", "{k}n", "50", "LT"]),
        (Exact, &["TTL", "{k}n"]),
        (Exact, &["PEXPIRE", "{k}n", "100000", "GT"]),
        (Exact, &["EXPIREAT", "{k}n", "99999999999", "LT"]),
        (Exact, &["PEXPIREAT", "{k}n", "99999999999000", "GT"]),
        (Exact, &["EXPIRETIME", "{k}n"]),
        (Exact, &["EXPIRE", "{k}n", "100", "NX", "XX"]),
        (Exact, &["EXPIRE", "{k}n", "100", "GT", "LT"]),
        (Exact, &["EXPIRE", "{k}n", "100", "BOGUS"]),
        (Exact, &["PERSIST", "{k}n"]),
        (Exact, &["EXPIRE", "{k}n", "100", "XX"]),
        (Exact, &["EXPIRE", "{k}n", "100", "GT"]),
        (Exact, &["EXPIRE", "{k}n", "100", "LT"]),
        (Exact, &["TTL", "{k}n"]),
        // SCAN TYPE
        (ScanAll, &["SCAN", "TYPE", "string", "COUNT", "3"]),
        (ScanAll, &["SCAN", "TYPE", "list"]),
        (ScanAll, &["SCAN", "TYPE", "zset", "MATCH", "*z*"]),
        (ScanAll, &["SCAN", "TYPE", "hash"]),
        (ScanAll, &["SCAN", "TYPE", "set"]),
        (ScanAll, &["SCAN", "TYPE", "nosuchtype"]),
        // RESTORE's checks, in Redis's order
        (Exact, &["DUMP", "nokey"]),
        (Exact, &["RESTORE", "{k}r", "0", "bad"]),
        (Exact, &["RESTORE", "{k}n", "0", "bad"]),
        (Exact, &["RESTORE", "{k}r", "-1", "bad"]),
        (Exact, &["RESTORE", "{k}r", "x", "bad"]),
        (Exact, &["RESTORE", "{k}r", "0", "bad", "BOGUS"]),
        (Exact, &["RESTORE", "{k}r", "0", "bad", "IDLETIME", "-1"]),
        (Exact, &["RESTORE", "{k}r", "0", "bad", "FREQ", "256"]),
        (Exact, &["RESTORE", "{k}r", "0", "bad", "IDLETIME", "1", "FREQ", "1"]),
        (Exact, &["RESTORE", "{k}r", "0", "bad", "IDLETIME"]),
    ]);
    // Payloads as redis-server 7.0 dumps them (a string, a quicklist, an intset, listpack zset and hash).
    let payloads: [(&str, &[u8]); 5] = [
        ("{k}rs", b"\x00\x03abc\x0a\x00\xd9\xac\x30\x3d\x41\x72\xa2\xe2"),
        ("{k}rl", b"\x12\x01\x02\x0d\x0d\x00\x00\x00\x03\x00\x01\x01\x02\x01\x03\x01\xff\x0a\x00\xca\xba\x35\x84\xf9\x8a\xd7\xae"),
        ("{k}rset", b"\x0b\x0c\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x02\x00\x0a\x00\x6f\x79\x38\xb1\x34\xeb\x20\x2e"),
        ("{k}rz", b"\x11\x0c\x0c\x00\x00\x00\x02\x00\x81\x61\x02\x01\x01\xff\x0a\x00\xa8\x05\xce\xb8\xd7\xa9\x33\x02"),
        ("{k}rh", b"\x10\x0d\x0d\x00\x00\x00\x02\x00\x81\x61\x02\x81\x62\x02\xff\x0a\x00\xd9\x3c\x7f\x07\x28\xf0\xed\xcc"),
    ];
    let raw = |args: &[&[u8]]| Case { cmp: Exact, args: args.iter().map(|a| a.to_vec()).collect() };
    for (key, payload) in payloads {
        cases.push(raw(&[b"RESTORE", key.as_bytes(), b"0", payload]));
        cases.push(raw(&[b"RESTORE", key.as_bytes(), b"0", payload]));
        cases.push(raw(&[b"RESTORE", key.as_bytes(), b"100000", payload, b"REPLACE", b"IDLETIME", b"10"]));
        cases.push(case(Within(2), &["TTL", key]));
        cases.push(case(Exact, &["TYPE", key]));
        cases.push(raw(&[b"RESTORE", key.as_bytes(), b"1", payload, b"REPLACE", b"ABSTTL", b"FREQ", b"3"]));
        cases.push(case(Exact, &["EXISTS", key]));
        cases.push(raw(&[b"RESTORE", key.as_bytes(), b"0", payload, b"REPLACE"]));
    }
    let mut corrupt = payloads[0].1.to_vec();
    corrupt[2] ^= 1;
    cases.push(raw(&[b"RESTORE", b"{k}bad2", b"0", &corrupt]));
    cases.extend(table(&[
        (Exact, &["GET", "{k}rs"]),
        (Exact, &["LRANGE", "{k}rl", "0", "-1"]),
        (Unordered, &["SMEMBERS", "{k}rset"]),
        (Exact, &["ZRANGE", "{k}rz", "0", "-1", "WITHSCORES"]),
        (Pairs, &["HGETALL", "{k}rh"]),
        (Exact, &["OBJECT", "ENCODING", "{k}rset"]),
    ]));
    differential(&targets, &cases);
}

/// What DUMP writes on either side RESTOREs on the other: redis-server's payloads (its compact encodings,
/// LZF-compressed strings) into a shard and through the proxy, and ours into redis-server.
#[test]
fn dump_restores_between_redis_and_ringcache() {
    let targets = Targets::start();
    let fill = |c: &mut redis::Connection| {
        let big = format!("{}{}", "x".repeat(5000), "y".repeat(100));
        let _: () = redis::pipe()
            .cmd("SET")
            .arg("str")
            .arg("hello")
            .ignore()
            .cmd("SET")
            .arg("int")
            .arg("-12345")
            .ignore()
            .cmd("SET")
            .arg("big")
            .arg(&big)
            .ignore()
            .cmd("SET")
            .arg("compressible")
            .arg("abc".repeat(100))
            .ignore()
            .cmd("RPUSH")
            .arg("list")
            .arg((0..300).map(|i| i.to_string()).collect::<Vec<_>>())
            .arg("a".repeat(70))
            .arg("-100000")
            .ignore()
            .cmd("SADD")
            .arg("iset")
            .arg((0..10).collect::<Vec<i64>>())
            .ignore()
            .cmd("SADD")
            .arg("sset")
            .arg("a")
            .arg((0..600).collect::<Vec<i64>>())
            .ignore()
            .cmd("HSET")
            .arg("hash")
            .arg("f")
            .arg("v")
            .arg("n")
            .arg("1")
            .ignore()
            .cmd("HSET")
            .arg("bighash")
            .arg((0..200).flat_map(|i| [format!("f{i}"), "v".repeat(i)]).collect::<Vec<_>>())
            .ignore()
            .cmd("ZADD")
            .arg("zset")
            .arg("1.5")
            .arg("a")
            .arg("-2")
            .arg("b")
            .arg("1024")
            .arg("c")
            .ignore()
            .cmd("ZADD")
            .arg("bigz")
            .arg((0..300).flat_map(|i| [(f64::from(i) / 4.0).to_string(), format!("m{i}")]).collect::<Vec<_>>())
            .ignore()
            .query(c)
            .unwrap();
    };
    let keys = ["str", "int", "big", "compressible", "list", "iset", "sset", "hash", "bighash", "zset", "bigz"];
    let content = |c: &mut redis::Connection, key: &str| -> Value {
        let kind: String = redis::cmd("TYPE").arg(key).query(c).unwrap();
        let read = match kind.as_str() {
            "string" => redis::cmd("GET").arg(key).clone(),
            "list" => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone(),
            "set" => redis::cmd("SMEMBERS").arg(key).clone(),
            "hash" => redis::cmd("HGETALL").arg(key).clone(),
            "zset" => redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").clone(),
            other => panic!("{key} is a {other}"),
        };
        let order = match kind.as_str() {
            "set" => Unordered,
            "hash" => Pairs,
            _ => Exact,
        };
        canonical(c.req_command(&read).unwrap(), order)
    };
    let mut plain = targets.plain.client();
    let mut shard = targets.shard.client();
    let mut proxy = targets.over_shards.proxy.client();
    fill(&mut plain);
    fill(&mut shard);
    for key in keys {
        let from_redis: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut plain).unwrap();
        let from_shard: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut shard).unwrap();
        let expected = content(&mut plain, key);
        for (name, conn) in [("shard", &mut shard), ("proxy", &mut proxy)] {
            let copy = format!("{key}:from-redis");
            let _: () = redis::cmd("RESTORE").arg(&copy).arg(0).arg(&from_redis).query(conn).unwrap();
            assert_eq!(content(conn, &copy), expected, "{name}: {key} dumped by redis-server");
        }
        let copy = format!("{key}:from-shard");
        let _: () = redis::cmd("RESTORE").arg(&copy).arg(0).arg(&from_shard).query(&mut plain).unwrap();
        assert_eq!(content(&mut plain, &copy), expected, "redis-server: {key} dumped by a shard");
        // And back: redis-server's DUMP of what it restored from us restores here again.
        let again: Vec<u8> = redis::cmd("DUMP").arg(&copy).query(&mut plain).unwrap();
        let _: () = redis::cmd("RESTORE").arg(&copy).arg(0).arg(&again).arg("REPLACE").query(&mut shard).unwrap();
        assert_eq!(content(&mut shard, &copy), expected, "shard: {key} after a round trip");
    }
}

/// COPY, RENAMENX and SORT ... STORE with keys on different shards answer CROSSSLOT and change nothing.
#[test]
fn cross_shard_copy_renamenx_and_sort_store_are_crossslot() {
    let targets = Targets::start();
    let (k1, k2) = keys_on_two_shards("xkey:");
    for (name, proxy) in targets.proxies() {
        let mut conn = proxy.client();
        let _: () = redis::cmd("RPUSH").arg(&k1).arg(2).arg(1).query(&mut conn).unwrap();
        for args in [vec!["COPY", &k1, &k2], vec!["RENAMENX", &k1, &k2], vec!["SORT", &k1, "STORE", &k2]] {
            let e = error_text(
                conn.req_command(&command(&args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>())).unwrap(),
            );
            assert!(e.starts_with("CROSSSLOT Keys in request don't hash to the same"), "{name}: {args:?}: {e}");
        }
        let n: i64 = redis::cmd("EXISTS").arg(&k2).query(&mut conn).unwrap();
        assert_eq!(n, 0, "{name}: a refused command wrote the other key");
        let sorted: Vec<i64> = redis::cmd("SORT").arg(&k1).query(&mut conn).unwrap();
        assert_eq!(sorted, vec![1, 2], "{name}");
        let _: i64 = redis::cmd("DEL").arg(&k1).query(&mut conn).unwrap();
    }
}

/// Blocking commands through the proxy (each on a connection of its own to its keys' shard): with
/// something to pop, and timing out, in both protocols.
#[test]
fn blocking_commands_answer_as_redis() {
    let targets = Targets::start();
    differential(
        &targets,
        &table(&[
            (Exact, &["FLUSHALL"]),
            (Exact, &["RPUSH", "{b}l", "a", "b", "c", "d"]),
            (Exact, &["BLPOP", "{b}none", "{b}l", "0"]),
            (Exact, &["BRPOP", "{b}l", "0.01"]),
            (Exact, &["BRPOPLPUSH", "{b}l", "{b}m", "0"]),
            (Exact, &["BLMOVE", "{b}l", "{b}m", "LEFT", "LEFT", "0"]),
            (Exact, &["LRANGE", "{b}m", "0", "-1"]),
            (Exact, &["BLMPOP", "0", "2", "{b}none", "{b}m", "RIGHT", "COUNT", "5"]),
            (Exact, &["BLPOP", "{b}l", "0.01"]),
            (Exact, &["BRPOPLPUSH", "{b}l", "{b}m", "0.01"]),
            (Exact, &["BLMOVE", "{b}l", "{b}m", "LEFT", "LEFT", "0.01"]),
            (Exact, &["BLMPOP", "0.01", "1", "{b}l", "LEFT"]),
            (Exact, &["ZADD", "{b}z", "1", "a", "2", "b", "3", "c"]),
            (Exact, &["BZPOPMIN", "{b}z", "0"]),
            (Exact, &["BZPOPMAX", "{b}none", "{b}z", "0"]),
            (Exact, &["BZMPOP", "0", "1", "{b}z", "MIN", "COUNT", "3"]),
            (Exact, &["BZPOPMIN", "{b}z", "0.01"]),
            (Exact, &["BZMPOP", "0.01", "1", "{b}z", "MAX"]),
            (Exact, &["SET", "{b}s", "x"]),
            (Exact, &["BLPOP", "{b}s", "0"]),
            (Exact, &["BZPOPMIN", "{b}s", "0"]),
            (Exact, &["BLPOP", "{b}l", "-1"]),
            (Exact, &["BLPOP", "{b}l", "x"]),
            (Exact, &["BLMPOP", "0", "0", "{b}l", "LEFT"]),
            (Exact, &["BLMPOP", "0", "x", "{b}l", "LEFT"]),
            (Exact, &["BZMPOP", "0", "1", "{b}z", "BOGUS"]),
            (Exact, &["BLPOP", "{b}l"]),
        ]),
    );
}
