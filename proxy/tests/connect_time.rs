//! What clients send when they connect, byte for byte against redis-server 7 (the reference), on one
//! ringcache shard and through ringcache-proxy over three shards, in RESP2 and in RESP3: redis-py's
//! `CLIENT MAINT_NOTIFICATIONS` and `CLIENT SETINFO`, client names, tracking probes, `COMMAND DOCS`
//! (redis-cli's first request), `READONLY`, `CONFIG GET` (redis-benchmark), and INFO and CLIENT INFO as
//! verbatim strings in RESP3. `CLIENT SETINFO` follows Redis 7.2 (the installed 7.0 answers "unknown
//! subcommand"; clients ignore either answer), so its replies are checked against 7.2's texts.
#![allow(clippy::unwrap_used)]

mod support;

use support::wire::{show, WireClient};
use support::{cluster_of_shards, start_redis, start_shard};

/// What a request must get back.
enum Expect {
    /// The bytes redis-server answers.
    SameAsRedis,
    /// These bytes (where Ringcache follows Redis 7.2 and the installed redis-server is 7.0).
    Bytes(&'static str),
}
use Expect::*;

const REQUESTS: &[(&[&str], Expect)] = &[
    (&["CLIENT", "MAINT_NOTIFICATIONS", "ON", "moving-endpoint-type", "internal-fqdn"], SameAsRedis),
    (&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], Bytes("+OK\r\n")),
    (&["CLIENT", "SETINFO", "LIB-VER", "8.2.0"], Bytes("+OK\r\n")),
    (
        &["CLIENT", "SETINFO", "lib-name", "two words"],
        Bytes("-ERR lib-name cannot contain spaces, newlines or special characters.\r\n"),
    ),
    (
        &["CLIENT", "SETINFO", "Lib-Ver", "1\n2"],
        Bytes("-ERR Lib-Ver cannot contain spaces, newlines or special characters.\r\n"),
    ),
    (&["CLIENT", "SETINFO", "lib-colour", "two words"], Bytes("-ERR Unrecognized option 'lib-colour'\r\n")),
    (&["CLIENT", "SETINFO", "LIB-NAME"], Bytes("-ERR wrong number of arguments for 'client|setinfo' command\r\n")),
    (&["CLIENT", "SETNAME", "app-1"], SameAsRedis),
    (&["CLIENT", "GETNAME"], SameAsRedis),
    (&["CLIENT", "SETNAME", "bad name"], SameAsRedis),
    (&["CLIENT", "TRACKINGINFO"], SameAsRedis),
    (&["CLIENT", "GETREDIR"], SameAsRedis),
    (&["CLIENT", "TRACKING", "OFF"], SameAsRedis),
    (&["CLIENT", "TRACKING", "maybe"], SameAsRedis),
    (&["CLIENT", "TRACKINGINFO"], SameAsRedis),
    (&["CLIENT", "NO-SUCH-THING"], SameAsRedis),
    (&["COMMAND", "DOCS", "GET"], SameAsRedis),
    (&["COMMAND", "DOCS", "nosuchcommand"], SameAsRedis),
    (&["READONLY"], SameAsRedis),
    (&["READWRITE"], SameAsRedis),
    (&["CONFIG", "GET", "appendonly"], SameAsRedis),
    (&["SELECT", "0"], SameAsRedis),
    (&["PING"], SameAsRedis),
];

/// The reply's type and, for a verbatim string, its format (the text itself differs between servers).
fn shape(reply: &[u8]) -> String {
    let head = &reply[..reply.len().min(1)];
    if head == b"=" {
        let format_start = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
        return format!("verbatim {}", String::from_utf8_lossy(&reply[format_start..format_start + 4]));
    }
    String::from_utf8_lossy(head).into_owned()
}

#[test]
fn connect_time_requests_answer_as_redis_in_both_protocols() {
    let redis = start_redis();
    let shard = start_shard(&[]);
    let cluster = cluster_of_shards(&[]);
    for resp3 in [false, true] {
        let mut conns = vec![
            ("redis-server", WireClient::connect(redis.port)),
            ("shard", WireClient::connect(shard.port)),
            ("proxy", WireClient::connect(cluster.proxy.port)),
        ];
        if resp3 {
            for (name, conn) in &mut conns {
                let hello = conn.call_str(&["HELLO", "3"]);
                assert!(hello.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{name}: {}", show(&hello));
            }
        }
        for (request, expect) in REQUESTS {
            let replies: Vec<Vec<u8>> = conns.iter_mut().map(|(_, c)| c.call_str(request)).collect();
            let expected = match expect {
                SameAsRedis => replies[0].clone(),
                Bytes(b) => b.as_bytes().to_vec(),
            };
            for ((name, _), got) in conns.iter().zip(&replies).skip(1) {
                assert_eq!(
                    show(got),
                    show(&expected),
                    "{name}, {}, {request:?}",
                    if resp3 { "RESP3" } else { "RESP2" }
                );
            }
        }
        // INFO and CLIENT INFO: a bulk string in RESP2, a verbatim `txt` string in RESP3, as redis-server.
        for request in [&["INFO"][..], &["INFO", "server"], &["CLIENT", "INFO"], &["CLIENT", "LIST"]] {
            let shapes: Vec<String> = conns.iter_mut().map(|(_, c)| shape(&c.call_str(request))).collect();
            for ((name, _), got) in conns.iter().zip(&shapes).skip(1) {
                assert_eq!(got, &shapes[0], "{name}: {request:?}");
            }
        }
        // CLIENT INFO shows what CLIENT SETINFO and SETNAME set.
        for (name, conn) in conns.iter_mut().skip(1) {
            let info = String::from_utf8(conn.call_str(&["CLIENT", "INFO"])).unwrap();
            for field in
                ["name=app-1 ", "lib-name=redis-py ", "lib-ver=8.2.0", &format!("resp={}", if resp3 { 3 } else { 2 })]
            {
                assert!(info.contains(field), "{name}: no {field:?} in {info:?}");
            }
        }
    }
}

/// CLIENT TRACKING ON through the proxy answers as redis-server does, and the connection goes on.
#[test]
fn proxy_turns_tracking_on_and_keeps_the_connection() {
    let cluster = cluster_of_shards(&[]);
    let mut conn = WireClient::connect(cluster.proxy.port);
    assert_eq!(conn.call_str(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
    assert_eq!(conn.call_str(&["CLIENT", "GETREDIR"]), b":0\r\n");
    assert_eq!(conn.call_str(&["CLIENT", "TRACKING", "off"]), b"+OK\r\n");
    assert_eq!(conn.call_str(&["CLIENT", "GETREDIR"]), b":-1\r\n");
    assert_eq!(conn.call_str(&["PING"]), b"+PONG\r\n");
}
