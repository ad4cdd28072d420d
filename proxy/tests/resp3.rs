//! RESP3 reply types byte for byte against redis-server 7: maps, sets, doubles, null, booleans, verbatim
//! strings and push frames, on one ringcache shard and through ringcache-proxy over three shards (for what
//! the proxy routes: scripts and pub/sub are the shard's here), after HELLO 3; and the same requests after
//! HELLO 2 on the same connections, where every reply must fall back to its RESP2 form.
#![allow(clippy::unwrap_used)]

mod support;

use support::wire::{show, WireClient};
use support::{cluster_of_shards, start_redis, start_shard};

/// (request, the RESP3 reply redis-server 7 gives: checked here too, so a change of reference is seen).
const THROUGH_BOTH: &[(&[&str], &str)] = &[
    (&["DEL", "h", "s", "z", "l", "str"], ":0\r\n"),
    (&["GET", "missing"], "_\r\n"),
    (&["LPOP", "missing"], "_\r\n"),
    (&["HSET", "h", "f", "v"], ":1\r\n"),
    (&["HGETALL", "h"], "%1\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    (&["HGETALL", "missing"], "%0\r\n"),
    (&["HRANDFIELD", "h", "1", "WITHVALUES"], "*1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    (&["SADD", "s", "m"], ":1\r\n"),
    (&["SMEMBERS", "s"], "~1\r\n$1\r\nm\r\n"),
    (&["SMEMBERS", "missing"], "~0\r\n"),
    (&["ZADD", "z", "1.5", "a", "2.25", "b"], ":2\r\n"),
    (&["ZSCORE", "z", "a"], ",1.5\r\n"),
    (&["ZSCORE", "z", "missing"], "_\r\n"),
    (&["ZINCRBY", "z", "1", "a"], ",2.5\r\n"),
    (&["ZRANGE", "z", "0", "-1", "WITHSCORES"], "*2\r\n*2\r\n$1\r\nb\r\n,2.25\r\n*2\r\n$1\r\na\r\n,2.5\r\n"),
    (&["ZPOPMIN", "z"], "*2\r\n$1\r\nb\r\n,2.25\r\n"),
    (&["ZMSCORE", "z", "a", "nope"], "*2\r\n,2.5\r\n_\r\n"),
    (&["ZADD", "z", "INCR", "0.5", "a"], ",3\r\n"),
    (&["INCRBYFLOAT", "str", "1.5"], "$3\r\n1.5\r\n"),
    (&["CONFIG", "GET", "appendonly"], "%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"),
    (&["MGET", "h", "missing"], "*2\r\n_\r\n_\r\n"),
    (&["PING"], "+PONG\r\n"),
];

/// Only on the shard (the proxy does not route scripts or pub/sub yet).
const SHARD_ONLY: &[(&[&str], &str)] = &[
    (&["EVAL", "redis.setresp(3); return true", "0"], "#t\r\n"),
    (&["EVAL", "redis.setresp(3); return false", "0"], "#f\r\n"),
    (&["EVAL", "return {double=1.5}", "0"], ",1.5\r\n"),
    (&["EVAL", "return {map={a=1}}", "0"], "%1\r\n$1\r\na\r\n:1\r\n"),
    (&["EVAL", "return {set={a=true}}", "0"], "~1\r\n$1\r\na\r\n"),
    (&["EVAL", "return nil", "0"], "_\r\n"),
    (&["SUBSCRIBE", "ch"], ">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"),
    (&["PING"], "+PONG\r\n"),
    (&["UNSUBSCRIBE", "ch"], ">3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n"),
];

fn compare(cases: &[(&[&str], &str)], targets: &mut [(&str, WireClient)], resp3: bool) {
    for (request, resp3_reply) in cases {
        let replies: Vec<Vec<u8>> = targets.iter_mut().map(|(_, c)| c.call_str(request)).collect();
        if resp3 {
            assert_eq!(show(&replies[0]), show(resp3_reply.as_bytes()), "redis-server changed: {request:?}");
        }
        for ((name, _), got) in targets.iter().zip(&replies).skip(1) {
            assert_eq!(show(got), show(&replies[0]), "{name}, RESP{}: {request:?}", if resp3 { 3 } else { 2 });
        }
    }
}

#[test]
fn resp3_reply_types_match_redis_byte_for_byte() {
    let redis = start_redis();
    let shard = start_shard(&[]);
    let cluster = cluster_of_shards(&[]);
    let mut all = vec![
        ("redis-server", WireClient::connect(redis.port)),
        ("shard", WireClient::connect(shard.port)),
        ("proxy", WireClient::connect(cluster.proxy.port)),
    ];
    for (proto, resp3) in [("3", true), ("2", false)] {
        for (_, c) in all.iter_mut() {
            c.call_str(&["HELLO", proto]);
        }
        compare(THROUGH_BOTH, &mut all, resp3);
        let mut two: Vec<(&str, WireClient)> = all.drain(..2).collect();
        if resp3 {
            compare(SHARD_ONLY, &mut two, true);
        }
        all.splice(0..0, two);
    }
}

/// A verbatim string (`=len\r\ntxt:...`) where Redis sends one: INFO, CLIENT INFO, CLIENT LIST, LATENCY
/// DOCTOR; the same bytes as a bulk string in RESP2.
#[test]
fn verbatim_strings_in_resp3_bulk_strings_in_resp2() {
    let shard = start_shard(&[]);
    let cluster = cluster_of_shards(&[]);
    for port in [shard.port, cluster.proxy.port] {
        let mut c = WireClient::connect(port);
        for request in [&["INFO", "server"][..], &["CLIENT", "INFO"], &["CLIENT", "LIST"], &["LATENCY", "DOCTOR"]] {
            let resp2 = c.call_str(request);
            assert!(resp2.starts_with(b"$"), "{request:?}: {}", show(&resp2));
            c.call_str(&["HELLO", "3"]);
            let resp3 = c.call_str(request);
            c.call_str(&["HELLO", "2"]);
            let header_end = resp3.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert_eq!(resp3[0], b'=', "{request:?}: {}", show(&resp3));
            let len: usize = std::str::from_utf8(&resp3[1..header_end - 2]).unwrap().parse().unwrap();
            assert_eq!(&resp3[header_end..header_end + 4], b"txt:");
            assert_eq!(len, resp3.len() - header_end - 2, "{request:?}");
        }
    }
}

/// Messages reach a RESP3 subscriber as push frames, between its replies, as redis-server sends them.
#[test]
fn published_messages_are_push_frames() {
    let redis = start_redis();
    let shard = start_shard(&[]);
    let mut frames = Vec::new();
    for port in [redis.port, shard.port] {
        let mut subscriber = WireClient::connect(port);
        subscriber.call_str(&["HELLO", "3"]);
        subscriber.call_str(&["SUBSCRIBE", "news"]);
        let mut publisher = WireClient::connect(port);
        assert_eq!(publisher.call_str(&["PUBLISH", "news", "hello"]), b":1\r\n");
        let message = subscriber.reply();
        let pong = subscriber.call_str(&["PING"]);
        frames.push((show(&message), show(&pong)));
    }
    assert_eq!(frames[0].0, ">3\\r\\n$7\\r\\nmessage\\r\\n$4\\r\\nnews\\r\\n$5\\r\\nhello\\r\\n");
    assert_eq!(frames[1], frames[0]);
}
