//! MEMORY USAGE | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP against a real redis-server 7: the same reply
//! shapes (types, map keys, RESP2 and RESP3), the same help and error texts; the numbers are the shard's.
#![allow(clippy::unwrap_used)]

mod support;

use support::{Framed, RedisServer, Shard};

/// Reads one RESP value from `buf[*pos..]` and describes its shape: types everywhere, the text of simple
/// strings, errors and keys (map keys, and the even items of RESP2's flat arrays), not of values.
fn shape(buf: &[u8], pos: &mut usize, key: bool) -> String {
    let line_end = buf[*pos..].windows(2).position(|w| w == b"\r\n").unwrap() + *pos;
    let kind = buf[*pos] as char;
    let line = String::from_utf8_lossy(&buf[*pos + 1..line_end]).into_owned();
    *pos = line_end + 2;
    match kind {
        '+' | '-' => format!("{kind}{line}"),
        ':' | ',' | '#' | '_' => kind.to_string(),
        '$' | '=' => {
            let len: i64 = line.parse().unwrap();
            if len < 0 {
                return "$-1".into();
            }
            let text = String::from_utf8_lossy(&buf[*pos..*pos + len as usize]).into_owned();
            *pos += len as usize + 2;
            if key && kind == '$' {
                format!("${text}")
            } else {
                kind.to_string()
            }
        }
        '*' | '~' | '%' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                return format!("{kind}-1");
            }
            let items = if kind == '%' { 2 * n } else { n };
            let inner: Vec<String> = (0..items).map(|i| shape(buf, pos, i % 2 == 0)).collect();
            format!("{kind}[{}]", inner.join(" "))
        }
        other => panic!("unexpected RESP type {other}"),
    }
}

fn shape_of(reply: &[u8]) -> String {
    shape(reply, &mut 0, false)
}

fn same_shape(redis: &mut Framed, shard: &mut Framed, args: &[&str]) {
    let want = shape_of(&redis.call(args));
    let got = shape_of(&shard.call(args));
    assert_eq!(got, want, "{args:?}");
}

#[test]
fn memory_replies_have_redis_shapes() {
    let server = RedisServer::start();
    let shard = Shard::start(&[]);
    for protocol in ["2", "3"] {
        let (mut redis, mut ours) = (Framed::connect(server.port), Framed::connect(shard.port));
        redis.call(&["HELLO", protocol]);
        ours.call(&["HELLO", protocol]);
        redis.call(&["FLUSHALL"]);
        ours.call(&["FLUSHALL"]);
        // An empty keyspace has no db.0 entry.
        for args in [
            &["MEMORY", "STATS"][..],
            &["MEMORY", "USAGE", "missing"],
            &["MEMORY", "DOCTOR"],
            &["MEMORY", "MALLOC-STATS"],
            &["MEMORY", "PURGE"],
            &["MEMORY", "HELP"],
            &["MEMORY", "USAGE"],
            &["MEMORY", "USAGE", "k", "SAMPLES", "x"],
            &["MEMORY", "USAGE", "k", "SAMPLES", "-1"],
            &["MEMORY", "USAGE", "k", "bar"],
            &["MEMORY", "USAGE", "k", "SAMPLES"],
            &["MEMORY", "STATS", "x"],
            &["MEMORY", "foo"],
        ] {
            same_shape(&mut redis, &mut ours, args);
        }
        for args in [
            &["SET", "k", "v"][..],
            &["HSET", "h", "f", "v", "g", "w"],
            &["RPUSH", "l", "a", "b", "c"],
            &["SET", "t", "v", "EX", "100"],
        ] {
            same_shape(&mut redis, &mut ours, args);
        }
        for args in [
            &["MEMORY", "STATS"][..],
            &["MEMORY", "USAGE", "k"],
            &["MEMORY", "USAGE", "h", "SAMPLES", "0"],
            &["MEMORY", "USAGE", "l", "samples", "3"],
        ] {
            same_shape(&mut redis, &mut ours, args);
        }
    }
}

#[test]
fn memory_usage_grows_with_the_value_and_matches_the_budget() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let _: () = redis::cmd("SET").arg("small").arg("x").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("big").arg(vec![b'x'; 10_000]).query(&mut con).unwrap();
    let small: i64 = redis::cmd("MEMORY").arg("USAGE").arg("small").query(&mut con).unwrap();
    let big: i64 = redis::cmd("MEMORY").arg("USAGE").arg("big").query(&mut con).unwrap();
    assert!(small > 0 && big >= small + 9_990, "{small} {big}");
    // The two keys are everything the budget holds.
    let used: i64 = support::info_value(&mut con, "used_memory").parse().unwrap();
    assert_eq!(used, small + big);
    // Inside a transaction too (it holds every stripe).
    let (usage,): (i64,) = redis::pipe().atomic().cmd("MEMORY").arg("USAGE").arg("big").query(&mut con).unwrap();
    assert_eq!(usage, big);
    let stats: redis::Value = redis::pipe().atomic().cmd("MEMORY").arg("STATS").query(&mut con).unwrap();
    assert!(matches!(stats, redis::Value::Array(_)), "{stats:?}");
}
