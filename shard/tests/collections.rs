//! The collection command families (hashes, lists, sets, sorted sets) against a real `ringcache-shard`
//! process: table-driven reply checks (reply types and exact error texts), byte-level checks where the
//! `redis` crate cannot tell replies apart (`*-1` vs `$-1`), and memory accounting (`used_memory` in INFO
//! must always equal the sum of what the keys cost, and go back to its starting value).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};

mod support;

use support::Shard;

// ---------------------------------------------------------------------------------------------------
// Tables of (request, expected reply).

/// An expected reply.
#[derive(Debug)]
enum Expect {
    /// Exactly this value.
    Is(Value),
    /// An array of bulk strings in any order (hash and set iteration order is unspecified).
    AnyOrder(Vec<&'static str>),
    /// A flat array of field/value pairs in any pair order (HGETALL).
    AnyOrderPairs(Vec<(&'static str, &'static str)>),
    /// An error reply with exactly this text (code included).
    Err(&'static str),
}

fn int(n: i64) -> Expect {
    Expect::Is(Value::Int(n))
}

fn bulk(s: &str) -> Expect {
    Expect::Is(Value::BulkString(s.as_bytes().to_vec()))
}

fn nil() -> Expect {
    Expect::Is(Value::Nil)
}

fn ok() -> Expect {
    Expect::Is(Value::Okay)
}

fn status(s: &str) -> Expect {
    Expect::Is(Value::SimpleString(s.into()))
}

/// An array of bulk strings, in this order.
fn arr(items: &[&str]) -> Expect {
    Expect::Is(Value::Array(items.iter().map(|s| Value::BulkString(s.as_bytes().to_vec())).collect()))
}

/// An array of bulk strings or nils (`None`).
fn arr_opt(items: &[Option<&str>]) -> Expect {
    Expect::Is(Value::Array(
        items.iter().map(|s| s.map_or(Value::Nil, |s| Value::BulkString(s.as_bytes().to_vec()))).collect(),
    ))
}

fn any_order(items: &[&'static str]) -> Expect {
    Expect::AnyOrder(items.to_vec())
}

fn err(text: &'static str) -> Expect {
    Expect::Err(text)
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Sends one command and returns its raw reply (error replies included, as `Value::ServerError`).
fn send(con: &mut redis::Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    con.req_command(&cmd).unwrap()
}

fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(match e.details() {
            Some(d) => format!("{} {d}", e.code()),
            None => e.code().to_string(),
        }),
        _ => None,
    }
}

fn bulk_strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn matches(got: &Value, expected: &Expect) -> bool {
    match expected {
        Expect::Is(v) => got == v,
        Expect::Err(text) => error_text(got).as_deref() == Some(*text),
        Expect::AnyOrder(items) => bulk_strings(got).is_some_and(|mut got| {
            let mut want: Vec<String> = items.iter().map(|s| s.to_string()).collect();
            got.sort();
            want.sort();
            got == want
        }),
        Expect::AnyOrderPairs(pairs) => bulk_strings(got).is_some_and(|got| {
            if got.len() % 2 != 0 {
                return false;
            }
            let mut got: Vec<(String, String)> = got.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
            let mut want: Vec<(String, String)> = pairs.iter().map(|(f, v)| (f.to_string(), v.to_string())).collect();
            got.sort();
            want.sort();
            got == want
        }),
    }
}

/// Runs the rows in order on one connection, checking every reply.
fn run_table(shard: &Shard, rows: &[(&[&str], Expect)]) {
    let mut con = shard.client();
    for (i, (args, expected)) in rows.iter().enumerate() {
        let got = send(&mut con, args);
        assert!(matches(&got, expected), "row {i}: {args:?}\n  expected {expected:?}\n       got {got:?}");
    }
}

/// Sends raw RESP and checks the exact reply bytes (for `*-1` vs `$-1`, which the `redis` crate merges).
fn expect_raw(stream: &mut TcpStream, args: &[&str], expected: &str) {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut got = vec![0; expected.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), expected, "raw reply to {args:?}");
}

// ---------------------------------------------------------------------------------------------------
// Replies.

const NOT_INT: &str = "ERR value is not an integer or out of range";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
const SYNTAX: &str = "ERR syntax error";

// `rustfmt::skip` keeps the tables at one row per line.
#[test]
#[rustfmt::skip]
fn hashes() {
    let shard = Shard::start(&[]);
    run_table(&shard, &[
        (&["HSET", "h", "f1", "v1"], int(1)),
        (&["HSET", "h", "f1", "v1b", "f2", "v2"], int(1)),
        (&["HSET", "h", "f1", "v", "f2"], err("ERR wrong number of arguments for 'hset' command")),
        (&["HSET", "h", "f1"], err("ERR wrong number of arguments for 'hset' command")),
        (&["HMSET", "h", "f4", "v4", "f5"], err("ERR wrong number of arguments for 'hmset' command")),
        (&["HMSET", "h", "f4", "v4", "f5", "v5"], ok()),
        (&["HSETNX", "h", "f1", "x"], int(0)),
        (&["HSETNX", "h", "f6", "v6"], int(1)),
        (&["HSETNX", "hnx", "f", "v"], int(1)),
        (&["HSETNX", "hnx", "f"], err("ERR wrong number of arguments for 'hsetnx' command")),
        (&["HGET", "h", "f1"], bulk("v1b")),
        (&["HGET", "h", "nope"], nil()),
        (&["HGET", "missing", "f"], nil()),
        (&["HMGET", "h", "f1", "nope", "f2"], arr_opt(&[Some("v1b"), None, Some("v2")])),
        (&["HMGET", "missing", "a", "b"], arr_opt(&[None, None])),
        (&["HLEN", "h"], int(5)),
        (&["HLEN", "missing"], int(0)),
        (&["HEXISTS", "h", "f1"], int(1)),
        (&["HEXISTS", "h", "nope"], int(0)),
        (&["HEXISTS", "missing", "f"], int(0)),
        (&["HKEYS", "h"], any_order(&["f1", "f2", "f4", "f5", "f6"])),
        (&["HVALS", "h"], any_order(&["v1b", "v2", "v4", "v5", "v6"])),
        (&["HGETALL", "h"], Expect::AnyOrderPairs(vec![("f1", "v1b"), ("f2", "v2"), ("f4", "v4"), ("f5", "v5"), ("f6", "v6")])),
        (&["HGETALL", "missing"], arr(&[])),
        (&["HKEYS", "missing"], arr(&[])),
        (&["HVALS", "missing"], arr(&[])),
        (&["HINCRBY", "h", "n", "5"], int(5)),
        (&["HINCRBY", "h", "n", "-7"], int(-2)),
        (&["HGET", "h", "n"], bulk("-2")),
        (&["HINCRBY", "h", "f1", "1"], err("ERR hash value is not an integer")),
        (&["HINCRBY", "h", "n", "x"], err(NOT_INT)),
        (&["HINCRBY", "h", "n", "1.5"], err(NOT_INT)),
        (&["HSET", "h", "max", "9223372036854775807", "min", "-9223372036854775808"], int(2)),
        (&["HINCRBY", "h", "max", "1"], err("ERR increment or decrement would overflow")),
        (&["HINCRBY", "h", "min", "-1"], err("ERR increment or decrement would overflow")),
        (&["HGET", "h", "max"], bulk("9223372036854775807")),
        (&["HINCRBY", "hincr", "f", "3"], int(3)),
        (&["TYPE", "hincr"], status("hash")),
        (&["HDEL", "h", "f1", "nope", "f1"], int(1)),
        (&["HDEL", "h", "f1"], int(0)),
        (&["HDEL", "missing", "f"], int(0)),
        (&["HLEN", "h"], int(7)),
        (&["HSET", "h2", "a", "1", "b", "2"], int(2)),
        (&["HDEL", "h2", "a", "b"], int(2)),
        (&["EXISTS", "h2"], int(0)),
        (&["TYPE", "h2"], status("none")),
        // A field set twice in one HSET counts once; the last value wins.
        (&["HSET", "h3", "a", "1", "a", "2"], int(1)),
        (&["HGET", "h3", "a"], bulk("2")),
        // Empty fields and values.
        (&["HSET", "h3", "", ""], int(1)),
        (&["HGET", "h3", ""], bulk("")),
        // Every hash command on a key of another type.
        (&["SET", "s", "v"], ok()),
        (&["HSET", "s", "f", "v"], err(WRONGTYPE)),
        (&["HMSET", "s", "f", "v"], err(WRONGTYPE)),
        (&["HSETNX", "s", "f", "v"], err(WRONGTYPE)),
        (&["HGET", "s", "f"], err(WRONGTYPE)),
        (&["HMGET", "s", "f"], err(WRONGTYPE)),
        (&["HGETALL", "s"], err(WRONGTYPE)),
        (&["HDEL", "s", "f"], err(WRONGTYPE)),
        (&["HEXISTS", "s", "f"], err(WRONGTYPE)),
        (&["HLEN", "s"], err(WRONGTYPE)),
        (&["HINCRBY", "s", "f", "1"], err(WRONGTYPE)),
        // As in Redis, the increment is checked before the key.
        (&["HINCRBY", "s", "f", "x"], err(NOT_INT)),
        (&["HKEYS", "s"], err(WRONGTYPE)),
        (&["HVALS", "s"], err(WRONGTYPE)),
        (&["GET", "s"], bulk("v")),
        (&["GET", "h"], err(WRONGTYPE)),
        (&["LPUSH", "h", "x"], err(WRONGTYPE)),
    ]);
}

#[test]
#[rustfmt::skip]
fn lists() {
    let shard = Shard::start(&[]);
    run_table(&shard, &[
        (&["LPUSH", "l", "a", "b", "c"], int(3)),
        (&["RPUSH", "l", "d", "e"], int(5)),
        (&["TYPE", "l"], status("list")),
        (&["LRANGE", "l", "0", "-1"], arr(&["c", "b", "a", "d", "e"])),
        (&["LRANGE", "l", "1", "2"], arr(&["b", "a"])),
        (&["LRANGE", "l", "-2", "-1"], arr(&["d", "e"])),
        (&["LRANGE", "l", "-100", "1"], arr(&["c", "b"])),
        (&["LRANGE", "l", "3", "100"], arr(&["d", "e"])),
        (&["LRANGE", "l", "0", "0"], arr(&["c"])),
        (&["LRANGE", "l", "4", "2"], arr(&[])),
        (&["LRANGE", "l", "5", "10"], arr(&[])),
        (&["LRANGE", "l", "-1", "-2"], arr(&[])),
        (&["LRANGE", "l", "0", "-100"], arr(&[])),
        (&["LRANGE", "missing", "0", "-1"], arr(&[])),
        (&["LRANGE", "l", "a", "1"], err(NOT_INT)),
        (&["LRANGE", "l", "0", "1.0"], err(NOT_INT)),
        (&["LLEN", "l"], int(5)),
        (&["LLEN", "missing"], int(0)),
        (&["LPOP", "l"], bulk("c")),
        (&["RPOP", "l"], bulk("e")),
        (&["LPOP", "l", "2"], arr(&["b", "a"])),
        (&["LPOP", "l", "0"], arr(&[])),
        (&["RPOP", "l", "0"], arr(&[])),
        (&["RPUSH", "l", "f", "g"], int(3)),
        (&["RPOP", "l", "2"], arr(&["g", "f"])),
        (&["RPOP", "l", "5"], arr(&["d"])),
        (&["EXISTS", "l"], int(0)),
        (&["LPOP", "l"], nil()),
        (&["RPOP", "l"], nil()),
        (&["LPOP", "l", "1"], nil()),
        (&["LPOP", "l", "-1"], err(NOT_POSITIVE)),
        (&["RPOP", "l", "-1"], err(NOT_POSITIVE)),
        (&["LPOP", "l", "x"], err(NOT_POSITIVE)),
        (&["LPOP", "l", "1", "2"], err("ERR wrong number of arguments for 'lpop' command")),
        (&["RPOP", "l", "1", "2"], err("ERR wrong number of arguments for 'rpop' command")),
        (&["LPUSH", "l"], err("ERR wrong number of arguments for 'lpush' command")),
        (&["LPUSH", "l2", "only"], int(1)),
        (&["RPOP", "l2"], bulk("only")),
        (&["EXISTS", "l2"], int(0)),
        (&["RPUSH", "l3", "", "x"], int(2)),
        (&["LRANGE", "l3", "0", "-1"], arr(&["", "x"])),
        // Every list command on a key of another type.
        (&["SET", "s", "v"], ok()),
        (&["LPUSH", "s", "x"], err(WRONGTYPE)),
        (&["RPUSH", "s", "x"], err(WRONGTYPE)),
        (&["LPOP", "s"], err(WRONGTYPE)),
        (&["RPOP", "s", "1"], err(WRONGTYPE)),
        (&["LRANGE", "s", "0", "-1"], err(WRONGTYPE)),
        (&["LLEN", "s"], err(WRONGTYPE)),
        (&["SADD", "l3", "x"], err(WRONGTYPE)),
    ]);
    // `*-1` (nil array) and `$-1` (nil) are the same `Value::Nil` to the redis crate: check the bytes.
    let mut raw = shard.raw().0;
    expect_raw(&mut raw, &["LPOP", "missing"], "$-1\r\n");
    expect_raw(&mut raw, &["RPOP", "missing"], "$-1\r\n");
    expect_raw(&mut raw, &["LPOP", "missing", "2"], "*-1\r\n");
    expect_raw(&mut raw, &["RPOP", "missing", "2"], "*-1\r\n");
    expect_raw(&mut raw, &["LPOP", "missing", "0"], "*-1\r\n");
    expect_raw(&mut raw, &["RPUSH", "k", "a"], ":1\r\n");
    expect_raw(&mut raw, &["LPOP", "k", "0"], "*0\r\n");
    expect_raw(&mut raw, &["LPOP", "k", "1"], "*1\r\n$1\r\na\r\n");
}

#[test]
#[rustfmt::skip]
fn sets() {
    let shard = Shard::start(&[]);
    run_table(&shard, &[
        (&["SADD", "st", "a", "b", "c", "a"], int(3)),
        (&["SADD", "st", "c", "d"], int(1)),
        (&["TYPE", "st"], status("set")),
        (&["SCARD", "st"], int(4)),
        (&["SCARD", "missing"], int(0)),
        (&["SISMEMBER", "st", "a"], int(1)),
        (&["SISMEMBER", "st", "z"], int(0)),
        (&["SISMEMBER", "missing", "a"], int(0)),
        (&["SMEMBERS", "st"], any_order(&["a", "b", "c", "d"])),
        (&["SMEMBERS", "missing"], arr(&[])),
        (&["SREM", "st", "a", "z", "a"], int(1)),
        (&["SREM", "missing", "a"], int(0)),
        (&["SMEMBERS", "st"], any_order(&["b", "c", "d"])),
        (&["SPOP", "st", "0"], arr(&[])),
        (&["SPOP", "st", "-1"], err(NOT_POSITIVE)),
        (&["SPOP", "st", "x"], err(NOT_POSITIVE)),
        (&["SPOP", "st", "1", "2"], err(SYNTAX)),
        (&["SCARD", "st"], int(3)),
        (&["SPOP", "missing"], nil()),
        (&["SPOP", "missing", "3"], arr(&[])),
        (&["SADD", "one", "x"], int(1)),
        (&["SPOP", "one"], bulk("x")),
        (&["EXISTS", "one"], int(0)),
        (&["SADD", "two", "x", "y"], int(2)),
        (&["SPOP", "two", "5"], any_order(&["x", "y"])),
        (&["EXISTS", "two"], int(0)),
        (&["SREM", "st", "b", "c", "d"], int(3)),
        (&["EXISTS", "st"], int(0)),
        (&["SADD", "st"], err("ERR wrong number of arguments for 'sadd' command")),
        // Every set command on a key of another type.
        (&["SET", "s", "v"], ok()),
        (&["SADD", "s", "x"], err(WRONGTYPE)),
        (&["SREM", "s", "x"], err(WRONGTYPE)),
        (&["SPOP", "s"], err(WRONGTYPE)),
        (&["SPOP", "s", "1"], err(WRONGTYPE)),
        (&["SMEMBERS", "s"], err(WRONGTYPE)),
        (&["SISMEMBER", "s", "x"], err(WRONGTYPE)),
        (&["SCARD", "s"], err(WRONGTYPE)),
        (&["SADD", "st2", "m"], int(1)),
        (&["HGET", "st2", "m"], err(WRONGTYPE)),
        (&["ZCARD", "st2"], err(WRONGTYPE)),
    ]);
    let mut raw = shard.raw().0;
    expect_raw(&mut raw, &["SPOP", "missing"], "$-1\r\n");
    expect_raw(&mut raw, &["SPOP", "missing", "1"], "*0\r\n");
}
#[test]
fn spop_removes_random_members() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    assert_eq!(send(&mut con, &sadd), Value::Int(50));
    let mut left: BTreeSet<String> = members.iter().cloned().collect();
    // One at a time: a member that was there, and is gone.
    for _ in 0..10 {
        let Value::BulkString(m) = send(&mut con, &["SPOP", "s"]) else {
            panic!("SPOP did not return a bulk string");
        };
        let m = String::from_utf8(m).unwrap();
        assert!(left.remove(&m), "SPOP returned {m}, which was not in the set");
        assert_eq!(send(&mut con, &["SISMEMBER", "s", &m]), Value::Int(0));
    }
    // A count: that many distinct members.
    let popped = bulk_strings(&send(&mut con, &["SPOP", "s", "15"])).unwrap();
    assert_eq!(popped.len(), 15);
    for m in &popped {
        assert!(left.remove(m), "SPOP returned {m} twice or out of nowhere");
    }
    assert_eq!(send(&mut con, &["SCARD", "s"]), Value::Int(25));
    let rest = bulk_strings(&send(&mut con, &["SMEMBERS", "s"])).unwrap();
    assert_eq!(rest.into_iter().collect::<BTreeSet<_>>(), left);
    // Not always the same member (50 members: 10 pops all equal by chance is impossible here anyway,
    // but check over fresh sets that SPOP does not always pick the same one).
    let mut firsts = BTreeSet::new();
    for i in 0..20 {
        let key = format!("r{i}");
        send(&mut con, &["SADD", &key, "a", "b", "c", "d", "e", "f", "g", "h"]);
        if let Value::BulkString(m) = send(&mut con, &["SPOP", &key]) {
            firsts.insert(m);
        }
    }
    assert!(firsts.len() > 1, "SPOP always picked {firsts:?}");
}

#[test]
#[rustfmt::skip]
fn sorted_sets() {
    let shard = Shard::start(&[]);
    run_table(&shard, &[
        (&["ZADD", "z", "1", "a", "2", "b", "3", "c"], int(3)),
        (&["TYPE", "z"], status("zset")),
        (&["ZADD", "z", "1", "a"], int(0)),
        (&["ZADD", "z", "CH", "5", "a", "2", "b"], int(1)),
        (&["ZSCORE", "z", "a"], bulk("5")),
        (&["ZADD", "z", "NX", "10", "a", "4", "d"], int(1)),
        (&["ZSCORE", "z", "a"], bulk("5")),
        (&["ZADD", "z", "XX", "6", "a", "100", "e"], int(0)),
        (&["ZSCORE", "z", "a"], bulk("6")),
        (&["ZSCORE", "z", "e"], nil()),
        (&["ZADD", "z", "XX", "CH", "7", "a"], int(1)),
        (&["ZADD", "z", "GT", "CH", "6", "a"], int(0)),
        (&["ZSCORE", "z", "a"], bulk("7")),
        (&["ZADD", "z", "GT", "CH", "8", "a"], int(1)),
        (&["ZADD", "z", "LT", "CH", "9", "a"], int(0)),
        (&["ZADD", "z", "lt", "ch", "1", "a"], int(1)),
        (&["ZSCORE", "z", "a"], bulk("1")),
        // GT and LT only restrict updates: new members are still added (but not with XX).
        (&["ZADD", "zgt", "GT", "1", "m"], int(1)),
        (&["ZADD", "zgt", "XX", "GT", "CH", "2", "m", "3", "n"], int(1)),
        (&["ZSCORE", "zgt", "m"], bulk("2")),
        (&["ZSCORE", "zgt", "n"], nil()),
        (&["ZADD", "z", "INCR", "2", "b"], bulk("4")),
        (&["ZADD", "z", "INCR", "-1.5", "b"], bulk("2.5")),
        (&["ZADD", "z", "NX", "INCR", "1", "b"], nil()),
        (&["ZADD", "z", "XX", "INCR", "1", "nope"], nil()),
        (&["ZADD", "z", "GT", "INCR", "-1", "b"], nil()),
        (&["ZADD", "z", "INCR", "0", "b"], bulk("2.5")),
        (&["ZADD", "z", "INCR", "1", "b", "2", "c"], err("ERR INCR option supports a single increment-element pair")),
        (&["ZADD", "z", "NX", "XX", "1", "a"], err("ERR XX and NX options at the same time are not compatible")),
        (&["ZADD", "z", "GT", "LT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
        (&["ZADD", "z", "NX", "GT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
        (&["ZADD", "z", "NX", "LT", "1", "a"], err("ERR GT, LT, and/or NX options at the same time are not compatible")),
        (&["ZADD", "z", "x", "a"], err(NOT_FLOAT)),
        (&["ZADD", "z", "nan", "a"], err(NOT_FLOAT)),
        (&["ZADD", "z", "1", "a", "2"], err(SYNTAX)),
        (&["ZADD", "z", "XX", "1"], err(SYNTAX)),
        (&["ZADD", "z", "1"], err("ERR wrong number of arguments for 'zadd' command")),
        // A bad score anywhere means nothing is applied.
        (&["ZADD", "z", "100", "a", "oops", "b"], err(NOT_FLOAT)),
        (&["ZSCORE", "z", "a"], bulk("1")),
        (&["ZADD", "zx", "XX", "1", "a"], int(0)),
        (&["ZADD", "zx", "XX", "INCR", "1", "a"], nil()),
        (&["EXISTS", "zx"], int(0)),
        (&["ZADD", "zinf", "INCR", "inf", "m"], bulk("inf")),
        (&["ZADD", "zinf", "INCR", "-inf", "m"], err("ERR resulting score is not a number (NaN)")),
        (&["ZSCORE", "zinf", "m"], bulk("inf")),
        (&["ZADD", "zinf", "-inf", "lo", "1e21", "big", "0.1", "tenth"], int(3)),
        (&["ZRANGE", "zinf", "0", "-1", "WITHSCORES"], arr(&["lo", "-inf", "tenth", "0.1", "big", "1e+21", "m", "inf"])),
        (&["ZCARD", "z"], int(4)),
        (&["ZCARD", "missing"], int(0)),
        (&["ZSCORE", "missing", "a"], nil()),
        // z is now a=1 b=2.5 c=3 d=4.
        (&["ZRANGE", "z", "0", "-1"], arr(&["a", "b", "c", "d"])),
        (&["ZRANGE", "z", "0", "-1", "WITHSCORES"], arr(&["a", "1", "b", "2.5", "c", "3", "d", "4"])),
        (&["ZRANGE", "z", "0", "1", "REV"], arr(&["d", "c"])),
        (&["ZRANGE", "z", "-2", "-1"], arr(&["c", "d"])),
        (&["ZRANGE", "z", "0", "-1", "REV", "WITHSCORES"], arr(&["d", "4", "c", "3", "b", "2.5", "a", "1"])),
        (&["ZRANGE", "z", "-100", "100"], arr(&["a", "b", "c", "d"])),
        (&["ZRANGE", "z", "5", "10"], arr(&[])),
        (&["ZRANGE", "z", "2", "1"], arr(&[])),
        (&["ZRANGE", "z", "1", "3", "BYSCORE"], arr(&["a", "b", "c"])),
        (&["ZRANGE", "z", "(1", "3", "BYSCORE"], arr(&["b", "c"])),
        (&["ZRANGE", "z", "1", "(3", "BYSCORE"], arr(&["a", "b"])),
        (&["ZRANGE", "z", "(1", "(1", "BYSCORE"], arr(&[])),
        (&["ZRANGE", "z", "2.5", "2.5", "byscore", "withscores"], arr(&["b", "2.5"])),
        (&["ZRANGE", "z", "-inf", "+inf", "BYSCORE"], arr(&["a", "b", "c", "d"])),
        (&["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV"], arr(&["d", "c", "b", "a"])),
        (&["ZRANGE", "z", "3", "1", "BYSCORE", "REV"], arr(&["c", "b", "a"])),
        (&["ZRANGE", "z", "(3", "1", "BYSCORE", "REV", "WITHSCORES"], arr(&["b", "2.5", "a", "1"])),
        (&["ZRANGE", "z", "3", "(1", "BYSCORE", "REV"], arr(&["c", "b"])),
        (&["ZRANGE", "z", "1", "3", "BYSCORE", "REV"], arr(&[])),
        (&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"], arr(&["b", "c"])),
        (&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1"], arr(&["b", "c", "d"])),
        (&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"], arr(&[])),
        (&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "4", "1"], arr(&[])),
        (&["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2", "WITHSCORES"], arr(&["c", "3", "b", "2.5"])),
        (&["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"], err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")),
        (&["ZRANGE", "z", "a", "b", "BYSCORE"], err("ERR min or max is not a float")),
        (&["ZRANGE", "z", "(x", "1", "BYSCORE"], err("ERR min or max is not a float")),
        (&["ZRANGE", "z", "0", "-1", "BOGUS"], err(SYNTAX)),
        (&["ZRANGE", "z", "0", "-1", "LIMIT", "1"], err(SYNTAX)),
        (&["ZRANGE", "z", "0", "1", "BYSCORE", "BYLEX"], err(SYNTAX)),
        (&["ZRANGE", "z", "0", "1", "BYSCORE", "LIMIT", "x", "1"], err(NOT_INT)),
        (&["ZRANGE", "z", "x", "1"], err(NOT_INT)),
        (&["ZRANGE", "z", "0"], err("ERR wrong number of arguments for 'zrange' command")),
        (&["ZRANGE", "missing", "0", "-1"], arr(&[])),
        (&["ZRANGE", "missing", "-inf", "+inf", "BYSCORE"], arr(&[])),
        // Lexicographic ranges (members with equal scores).
        (&["ZADD", "zl", "0", "a", "0", "b", "0", "c", "0", "d"], int(4)),
        (&["ZRANGE", "zl", "-", "+", "BYLEX"], arr(&["a", "b", "c", "d"])),
        (&["ZRANGE", "zl", "[b", "(d", "BYLEX"], arr(&["b", "c"])),
        (&["ZRANGE", "zl", "(a", "[c", "BYLEX"], arr(&["b", "c"])),
        (&["ZRANGE", "zl", "+", "-", "BYLEX", "REV"], arr(&["d", "c", "b", "a"])),
        (&["ZRANGE", "zl", "[c", "-", "BYLEX", "REV", "LIMIT", "1", "1"], arr(&["b"])),
        (&["ZRANGE", "zl", "a", "c", "BYLEX"], err("ERR min or max not valid string range item")),
        (&["ZRANGE", "zl", "-", "+", "BYLEX", "WITHSCORES"], err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")),
        // Popping the lowest scores.
        (&["ZPOPMIN", "z"], arr(&["a", "1"])),
        (&["ZPOPMIN", "z", "2"], arr(&["b", "2.5", "c", "3"])),
        (&["ZPOPMIN", "z", "0"], arr(&[])),
        (&["ZPOPMIN", "z", "-1"], err(NOT_POSITIVE)),
        (&["ZPOPMIN", "z", "x"], err(NOT_POSITIVE)),
        (&["ZPOPMIN", "z", "1", "2"], err(SYNTAX)),
        (&["ZPOPMIN", "z", "10"], arr(&["d", "4"])),
        (&["EXISTS", "z"], int(0)),
        (&["ZPOPMIN", "z"], arr(&[])),
        (&["ZPOPMIN", "missing", "2"], arr(&[])),
        // Equal scores order by member.
        (&["ZADD", "zeq", "1", "c", "1", "a", "1", "b", "0", "z"], int(4)),
        (&["ZRANGE", "zeq", "0", "-1"], arr(&["z", "a", "b", "c"])),
        (&["ZPOPMIN", "zeq", "2"], arr(&["z", "0", "a", "1"])),
        // Every sorted set command on a key of another type.
        (&["SET", "s", "v"], ok()),
        (&["ZADD", "s", "1", "a"], err(WRONGTYPE)),
        // As in Redis, scores are checked before the key.
        (&["ZADD", "s", "x", "a"], err(NOT_FLOAT)),
        (&["ZPOPMIN", "s"], err(WRONGTYPE)),
        (&["ZRANGE", "s", "0", "-1"], err(WRONGTYPE)),
        (&["ZCARD", "s"], err(WRONGTYPE)),
        (&["ZSCORE", "s", "a"], err(WRONGTYPE)),
        (&["LLEN", "zeq"], err(WRONGTYPE)),
    ]);
}

// ---------------------------------------------------------------------------------------------------
// Memory accounting.

/// What the store charges (see `shard/src/store/stripe.rs` and `value.rs`): a collection key costs
/// `key + 4 + ENTRY`, plus per element its bytes and an overhead (the store's published constants).
const ENTRY: usize = ringcache_shard::store::ENTRY_OVERHEAD_BYTES;
const HASH_FIELD: usize = ringcache_shard::store::HASH_FIELD_OVERHEAD_BYTES;
const LIST_ITEM: usize = ringcache_shard::store::LIST_ITEM_OVERHEAD_BYTES;
const SET_MEMBER: usize = ringcache_shard::store::SET_MEMBER_OVERHEAD_BYTES;
const ZSET_MEMBER: usize = ringcache_shard::store::ZSET_MEMBER_OVERHEAD_BYTES;

fn used_memory(con: &mut redis::Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
}

fn query(con: &mut redis::Connection, args: &[&str]) -> Value {
    let v = send(con, args);
    assert!(error_text(&v).is_none(), "{args:?} failed: {v:?}");
    v
}

#[test]
fn used_memory_tracks_collections_exactly_and_returns_to_start() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let start = used_memory(&mut con);
    let key = |k: &str| k.len() + 4 + ENTRY;

    // Hash: 2 fields, then a longer value, a shorter one, HINCRBY, HSETNX, HDEL.
    query(&mut con, &["HSET", "h", "f", "vv", "g", "www"]);
    let mut hash = key("h") + (1 + 2 + HASH_FIELD) + (1 + 3 + HASH_FIELD);
    assert_eq!(used_memory(&mut con), start + hash);
    query(&mut con, &["HSET", "h", "f", "vvvvvv"]);
    hash += 4;
    assert_eq!(used_memory(&mut con), start + hash);
    query(&mut con, &["HMSET", "h", "f", "v"]);
    hash -= 5;
    assert_eq!(used_memory(&mut con), start + hash);
    query(&mut con, &["HINCRBY", "h", "n", "99"]);
    hash += 1 + 2 + HASH_FIELD;
    query(&mut con, &["HINCRBY", "h", "n", "1"]);
    hash += 1;
    query(&mut con, &["HSETNX", "h", "x", "12345"]);
    hash += 1 + 5 + HASH_FIELD;
    query(&mut con, &["HSETNX", "h", "x", "1"]);
    assert_eq!(used_memory(&mut con), start + hash);
    query(&mut con, &["HDEL", "h", "g", "nope"]);
    hash -= 1 + 3 + HASH_FIELD;
    assert_eq!(used_memory(&mut con), start + hash);

    // List.
    query(&mut con, &["RPUSH", "l", "a", "bb", "ccc"]);
    let mut list = key("l") + (1 + 2 + 3) + 3 * LIST_ITEM;
    query(&mut con, &["LPOP", "l"]);
    list -= 1 + LIST_ITEM;
    assert_eq!(used_memory(&mut con), start + hash + list);

    // Set.
    query(&mut con, &["SADD", "s", "m1", "m2", "m1"]);
    let mut set = key("s") + 2 * (2 + SET_MEMBER);
    query(&mut con, &["SADD", "s", "m2", "m333"]);
    set += 4 + SET_MEMBER;
    query(&mut con, &["SREM", "s", "m1", "zzz"]);
    set -= 2 + SET_MEMBER;
    assert_eq!(used_memory(&mut con), start + hash + list + set);

    // Sorted set: updates do not change the charge, new members do.
    query(&mut con, &["ZADD", "z", "1", "aa", "2", "b"]);
    let mut zset = key("z") + (2 + ZSET_MEMBER) + (1 + ZSET_MEMBER);
    query(&mut con, &["ZADD", "z", "INCR", "5", "aa"]);
    query(&mut con, &["ZADD", "z", "XX", "5", "new", "7", "b"]);
    query(&mut con, &["ZADD", "z", "NX", "5", "aa", "3", "cc"]);
    zset += 2 + ZSET_MEMBER;
    assert_eq!(used_memory(&mut con), start + hash + list + set + zset);
    query(&mut con, &["ZPOPMIN", "z"]);
    zset -= 2 + ZSET_MEMBER;
    assert_eq!(used_memory(&mut con), start + hash + list + set + zset);

    // Failed writes change nothing.
    send(&mut con, &["ZADD", "z", "1", "q", "bad", "r"]);
    send(&mut con, &["HINCRBY", "h", "f", "1"]);
    send(&mut con, &["HSET", "h", "a"]);
    send(&mut con, &["ZADD", "zx", "XX", "1", "a"]);
    assert_eq!(used_memory(&mut con), start + hash + list + set + zset);

    // Renaming keeps the charge, adjusted for the key's length.
    query(&mut con, &["RENAME", "z", "zz"]);
    zset += 1;
    assert_eq!(used_memory(&mut con), start + hash + list + set + zset);

    // Emptying a collection deletes its key and gives back everything.
    query(&mut con, &["LPOP", "l", "10"]);
    query(&mut con, &["SPOP", "s", "10"]);
    query(&mut con, &["ZPOPMIN", "zz", "10"]);
    assert_eq!(used_memory(&mut con), start + hash);
    query(&mut con, &["HDEL", "h", "f", "n", "x"]);
    assert_eq!(query(&mut con, &["DBSIZE"]), Value::Int(0));
    assert_eq!(used_memory(&mut con), start);

    // Created again, then removed by DEL, by single pops, and by expiry.
    query(&mut con, &["HSET", "h", "f", "v"]);
    query(&mut con, &["RPUSH", "l", "a", "b"]);
    query(&mut con, &["SADD", "s", "a"]);
    query(&mut con, &["ZADD", "z", "1", "a"]);
    query(&mut con, &["ZADD", "z2", "1", "a"]);
    assert!(used_memory(&mut con) > start);
    query(&mut con, &["DEL", "h", "z"]);
    query(&mut con, &["RPOP", "l"]);
    query(&mut con, &["RPOP", "l"]);
    query(&mut con, &["SPOP", "s"]);
    query(&mut con, &["PEXPIRE", "z2", "1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while query(&mut con, &["EXISTS", "z2"]) != Value::Int(0) {
        assert!(Instant::now() < deadline, "z2 never expired");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(query(&mut con, &["DBSIZE"]), Value::Int(0));
    assert_eq!(used_memory(&mut con), start);
}

/// A deterministic pseudo-random sequence (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self) -> String {
        let len = self.below(12) as usize;
        (0..len).map(|_| char::from(b'a' + self.below(4) as u8)).collect()
    }
}

/// What the test believes each key holds.
#[derive(Debug)]
enum Model {
    Hash(BTreeMap<String, String>),
    List(VecDeque<String>),
    Set(BTreeSet<String>),
    ZSet(BTreeMap<String, i64>),
}

impl Model {
    fn cost(&self, key: &str) -> usize {
        let elements: usize = match self {
            Model::Hash(h) => h.iter().map(|(f, v)| f.len() + v.len() + HASH_FIELD).sum(),
            Model::List(l) => l.iter().map(|i| i.len() + LIST_ITEM).sum(),
            Model::Set(s) => s.iter().map(|m| m.len() + SET_MEMBER).sum(),
            Model::ZSet(z) => z.keys().map(|m| m.len() + ZSET_MEMBER).sum(),
        };
        key.len() + 4 + ENTRY + elements
    }

    fn is_empty(&self) -> bool {
        match self {
            Model::Hash(h) => h.is_empty(),
            Model::List(l) => l.is_empty(),
            Model::Set(s) => s.is_empty(),
            Model::ZSet(z) => z.is_empty(),
        }
    }
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn as_strings(v: &Value) -> Vec<String> {
    match v {
        Value::Nil => Vec::new(),
        Value::BulkString(b) => vec![String::from_utf8(b.clone()).unwrap()],
        other => bulk_strings(other).unwrap_or_else(|| panic!("expected bulk strings, got {other:?}")),
    }
}

/// Random writes of every kind against a model of the data: replies agree with the model, and
/// `used_memory` always equals what the model says the keys cost.
#[test]
fn random_writes_keep_used_memory_equal_to_the_cost_of_the_keys() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let start = used_memory(&mut con);
    let mut model: HashMap<String, Model> = HashMap::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for step in 0..3000 {
        let k = rng.below(3);
        let (kind, key) = match rng.below(4) {
            0 => ("hash", format!("h{k}")),
            1 => ("list", format!("l{k}")),
            2 => ("set", format!("s{k}")),
            _ => ("zset", format!("z{k}")),
        };
        let op = rng.below(3);
        let (w1, w2, w3) = (rng.word(), rng.word(), rng.word());
        let n = rng.below(4) as i64;
        let ns = n.to_string();
        match (kind, op) {
            ("hash", 0) => {
                let got = as_int(&query(&mut con, &["HSET", &key, &w1, &w2, &w3, &w1]));
                let h = match model.entry(key.clone()).or_insert_with(|| Model::Hash(BTreeMap::new())) {
                    Model::Hash(h) => h,
                    _ => unreachable!(),
                };
                let fields: BTreeSet<&String> = [&w1, &w3].into_iter().collect();
                let added = fields.iter().filter(|f| !h.contains_key(f.as_str())).count();
                assert_eq!(got, added as i64, "step {step}");
                h.insert(w1.clone(), w2.clone());
                h.insert(w3.clone(), w1.clone());
            }
            ("hash", 1) => {
                let got = as_int(&query(&mut con, &["HDEL", &key, &w1, &w2]));
                let mut removed = 0;
                if let Some(Model::Hash(h)) = model.get_mut(&key) {
                    removed += usize::from(h.remove(&w1).is_some());
                    removed += usize::from(h.remove(&w2).is_some());
                }
                assert_eq!(got, removed as i64, "step {step}");
            }
            ("hash", _) => {
                let h = match model.entry(key.clone()).or_insert_with(|| Model::Hash(BTreeMap::new())) {
                    Model::Hash(h) => h,
                    _ => unreachable!(),
                };
                // A numeric field name keeps it apart from the string values written by HSET.
                let field = format!("#{n}");
                let delta = rng.below(2001) as i64 - 1000;
                let got = as_int(&query(&mut con, &["HINCRBY", &key, &field, &delta.to_string()]));
                let next = h.get(&field).map_or(0, |v| v.parse::<i64>().unwrap()) + delta;
                assert_eq!(got, next, "step {step}");
                h.insert(field, next.to_string());
            }
            ("list", 0) => {
                let cmd = if rng.below(2) == 0 { "LPUSH" } else { "RPUSH" };
                let got = as_int(&query(&mut con, &[cmd, &key, &w1, &w2]));
                let l = match model.entry(key.clone()).or_insert_with(|| Model::List(VecDeque::new())) {
                    Model::List(l) => l,
                    _ => unreachable!(),
                };
                for w in [&w1, &w2] {
                    if cmd == "LPUSH" {
                        l.push_front(w.clone());
                    } else {
                        l.push_back(w.clone());
                    }
                }
                assert_eq!(got, l.len() as i64, "step {step}");
            }
            ("list", _) => {
                let front = rng.below(2) == 0;
                let cmd = if front { "LPOP" } else { "RPOP" };
                let got = as_strings(&query(&mut con, &[cmd, &key, &ns]));
                let mut want = Vec::new();
                if let Some(Model::List(l)) = model.get_mut(&key) {
                    for _ in 0..n {
                        if let Some(i) = if front { l.pop_front() } else { l.pop_back() } {
                            want.push(i);
                        }
                    }
                }
                assert_eq!(got, want, "step {step}");
            }
            ("set", 0) => {
                let got = as_int(&query(&mut con, &["SADD", &key, &w1, &w2, &w3]));
                let s = match model.entry(key.clone()).or_insert_with(|| Model::Set(BTreeSet::new())) {
                    Model::Set(s) => s,
                    _ => unreachable!(),
                };
                let added = [&w1, &w2, &w3].into_iter().filter(|w| s.insert((*w).clone())).count();
                assert_eq!(got, added as i64, "step {step}");
            }
            ("set", 1) => {
                let got = as_int(&query(&mut con, &["SREM", &key, &w1, &w2]));
                let mut removed = 0;
                if let Some(Model::Set(s)) = model.get_mut(&key) {
                    removed += usize::from(s.remove(&w1));
                    removed += usize::from(s.remove(&w2));
                }
                assert_eq!(got, removed as i64, "step {step}");
            }
            ("set", _) => {
                // SPOP is random: remove from the model whatever the server popped.
                let got = as_strings(&query(&mut con, &["SPOP", &key, &ns]));
                let before = match model.get(&key) {
                    Some(Model::Set(s)) => s.len(),
                    _ => 0,
                };
                assert_eq!(got.len(), before.min(n as usize), "step {step}");
                if let Some(Model::Set(s)) = model.get_mut(&key) {
                    for m in &got {
                        assert!(s.remove(m), "step {step}: SPOP returned {m}");
                    }
                }
            }
            ("zset", 0) => {
                let score = rng.below(5) as i64;
                let got = as_int(&query(&mut con, &["ZADD", &key, "CH", &score.to_string(), &w1, "2", &w2]));
                let z = match model.entry(key.clone()).or_insert_with(|| Model::ZSet(BTreeMap::new())) {
                    Model::ZSet(z) => z,
                    _ => unreachable!(),
                };
                let mut changed = 0;
                for (s, m) in [(score, &w1), (2, &w2)] {
                    if z.insert(m.clone(), s) != Some(s) {
                        changed += 1;
                    }
                }
                assert_eq!(got, changed, "step {step}");
            }
            ("zset", 1) => {
                let got = bulk_strings(&query(&mut con, &["ZPOPMIN", &key, &ns])).unwrap();
                let mut want = Vec::new();
                if let Some(Model::ZSet(z)) = model.get_mut(&key) {
                    for _ in 0..n {
                        let Some((m, s)) =
                            z.iter().map(|(m, s)| (m.clone(), *s)).min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)))
                        else {
                            break;
                        };
                        z.remove(&m);
                        want.push(m);
                        want.push(s.to_string());
                    }
                }
                assert_eq!(got, want, "step {step}");
            }
            ("zset", _) => {
                let got = query(&mut con, &["ZADD", &key, "XX", "INCR", &ns, &w1]);
                let z = match model.get_mut(&key) {
                    Some(Model::ZSet(z)) => Some(z),
                    _ => None,
                };
                match z.and_then(|z| z.get_mut(&w1)) {
                    Some(s) => {
                        *s += n;
                        assert_eq!(got, Value::BulkString(s.to_string().into_bytes()), "step {step}");
                    }
                    None => assert_eq!(got, Value::Nil, "step {step}"),
                }
            }
            _ => unreachable!(),
        }
        model.retain(|_, m| !m.is_empty());
        if step % 10 == 0 {
            let expected: usize = model.iter().map(|(k, m)| m.cost(k)).sum();
            assert_eq!(used_memory(&mut con), start + expected, "step {step}: {model:?}");
            assert_eq!(as_int(&query(&mut con, &["DBSIZE"])), model.len() as i64, "step {step}");
        }
    }
    let expected: usize = model.iter().map(|(k, m)| m.cost(k)).sum();
    assert_eq!(used_memory(&mut con), start + expected);
    for k in model.keys() {
        query(&mut con, &["DEL", k]);
    }
    assert_eq!(used_memory(&mut con), start);
}

/// Several clients writing to the same collections at once: the accounting stays exact.
#[test]
fn concurrent_writers_leave_no_bytes_behind() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let start = used_memory(&mut con);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let shard = &shard;
            scope.spawn(move || {
                let mut con = shard.client();
                for i in 0..300 {
                    let v = format!("{t}-{i}");
                    query(&mut con, &["RPUSH", "cl", "x", "y"]);
                    query(&mut con, &["LPOP", "cl"]);
                    query(&mut con, &["SADD", "cs", &v]);
                    query(&mut con, &["SPOP", "cs"]);
                    query(&mut con, &["HSET", "ch", &v, &v]);
                    query(&mut con, &["HINCRBY", "ch", "counter", "1"]);
                    query(&mut con, &["HDEL", "ch", &v]);
                    query(&mut con, &["ZADD", "cz", &i.to_string(), &v]);
                    query(&mut con, &["ZPOPMIN", "cz"]);
                }
            });
        }
    });
    assert_eq!(query(&mut con, &["HGET", "ch", "counter"]), Value::BulkString(b"1200".to_vec()));
    assert_eq!(query(&mut con, &["LLEN", "cl"]), Value::Int(1200));
    assert_eq!(query(&mut con, &["SCARD", "cs"]), Value::Int(0));
    assert_eq!(query(&mut con, &["ZCARD", "cz"]), Value::Int(0));
    let list = "cl".len() + 4 + ENTRY + 1200 * (1 + LIST_ITEM);
    let hash = "ch".len() + 4 + ENTRY + "counter".len() + "1200".len() + HASH_FIELD;
    assert_eq!(used_memory(&mut con), start + list + hash);
    query(&mut con, &["LPOP", "cl", "2000"]);
    query(&mut con, &["DEL", "ch"]);
    assert_eq!(query(&mut con, &["DBSIZE"]), Value::Int(0));
    assert_eq!(used_memory(&mut con), start);
}

/// Under `--maxmemory`, growing a collection evicts other keys first and fails with OOM only when the
/// collection alone would not fit; `used_memory` never passes the limit.
#[test]
fn collections_respect_maxmemory() {
    let max = 64 * 1024;
    let shard = Shard::start(&["--maxmemory", "64kb", "--stripes", "1"]);
    let mut con = shard.client();
    let value = "v".repeat(1000);
    for i in 0..10 {
        query(&mut con, &["SET", &format!("s{i}"), &value]);
    }
    let item = "i".repeat(1000);
    let mut pushed = 0;
    let oom = loop {
        let reply = send(&mut con, &["RPUSH", "big", &item]);
        assert!(used_memory(&mut con) <= max);
        match error_text(&reply) {
            None => pushed += 1,
            Some(e) => break e,
        }
        assert!(pushed < 1000, "RPUSH never hit maxmemory");
    };
    assert_eq!(oom, "OOM command not allowed when used memory > 'maxmemory'.");
    assert!(pushed > 10, "only {pushed} pushes fit");
    // The list is intact and the strings made room for it, least recently used first.
    assert_eq!(query(&mut con, &["LLEN", "big"]), Value::Int(pushed));
    assert_eq!(query(&mut con, &["EXISTS", "s0"]), Value::Int(0));
    let dbsize = as_int(&query(&mut con, &["DBSIZE"])) as usize;
    let list = "big".len() + 4 + ENTRY + pushed as usize * (1000 + LIST_ITEM);
    let strings = (dbsize - 1) * (2 + 1000 + ENTRY);
    assert_eq!(used_memory(&mut con), list + strings);
    // Other collection writes evict the list when they need its room; nothing overshoots.
    for i in 0..20 {
        let reply = send(&mut con, &["HSET", &format!("h{i}"), "f", &value]);
        assert!(error_text(&reply).is_none(), "{reply:?}");
        assert!(used_memory(&mut con) <= max);
    }
    assert_eq!(query(&mut con, &["EXISTS", "big"]), Value::Int(0));
}
