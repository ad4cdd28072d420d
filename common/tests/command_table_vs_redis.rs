//! The command table against redis-server 7.0.15: for every command we implement, our `COMMAND INFO` and
//! `COMMAND DOCS` replies must be redis-server's (byte for byte, in RESP2 and RESP3; for a container such as
//! CLIENT, redis-server's entry with only the subcommands we implement), and `COMMAND GETKEYS` /
//! `GETKEYSANDFLAGS` must find the keys redis-server finds, or fail with its error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use bytes::{Bytes, BytesMut};
use ringcache_common::command::{check_arity, lookup, reply_command, COMMANDS};
use ringcache_common::resp::{Protocol, ReplyBuf, ReplyScanner, ReplyValue, ReplyWriter, Request};
use ringcache_testkit::{free_port, wait_listening};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// A redis-server of this test's own. Tests run in parallel and a free port can be taken by another
    /// test's server between `free_port` and the bind (this one then exits, and the port answers for the
    /// other, which is killed when its test ends): the server's `process_id` must be the child's, else
    /// it starts again on another port.
    fn start() -> Redis {
        for _ in 0..10 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .stdout(Stdio::null())
                .stdin(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            wait_listening("redis-server", port, &mut child);
            let redis = Redis { child, port };
            let info = redis.connect(Protocol::Resp2).request(&["INFO", "server"]);
            let own = format!("process_id:{}\r\n", redis.child.id());
            if info.windows(own.len()).any(|w| w == own.as_bytes()) {
                return redis;
            }
        }
        panic!("no redis-server of this test's own started in 10 tries");
    }

    fn connect(&self, proto: Protocol) -> Raw {
        let mut raw = Raw { stream: TcpStream::connect(("127.0.0.1", self.port)).unwrap(), buf: BytesMut::new() };
        if proto == Protocol::Resp3 {
            raw.request(&["HELLO", "3"]);
        }
        raw
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    /// Sends one request and returns its whole reply's bytes.
    fn request<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Bytes {
        let mut out = BytesMut::new();
        out.array_len(args.len());
        for a in args {
            out.bulk(a.as_ref());
        }
        self.stream.write_all(&out).unwrap();
        let mut scanner = ReplyScanner::new();
        loop {
            if let Some(reply) = scanner.next(&mut self.buf).unwrap() {
                return reply;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "redis-server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Our reply to a COMMAND request, as bytes in `proto`.
fn ours<A: AsRef<[u8]>>(args: &[A], proto: Protocol) -> Bytes {
    let mut out = ReplyBuf::new(proto);
    let req = Request::from_args(args.iter().map(|a| a.as_ref()));
    // Arity is checked before the command runs, as the servers do.
    if let Err(e) = check_arity(lookup(b"command").unwrap(), &req).and_then(|()| reply_command(&req, &mut out)) {
        out.clear();
        out.error(&e);
    }
    out.take()
}

/// Keeps only the subcommands we implement in redis-server's COMMAND INFO entry or DOCS map, as
/// `subcommands` lists them, sorted by name (redis-server lists them in the order of a hash table seeded
/// at random when it starts).
fn keep_subcommands(v: ReplyValue, ours: &[&str]) -> ReplyValue {
    match v {
        ReplyValue::Array(Some(mut fields)) if fields.len() == 10 => {
            if let Some(ReplyValue::Array(Some(subs))) = fields.pop() {
                let name = |s: &ReplyValue| match s {
                    ReplyValue::Array(Some(f)) => f[0].as_bytes().cloned().unwrap_or_default(),
                    _ => Bytes::new(),
                };
                let mut kept: Vec<ReplyValue> =
                    subs.into_iter().filter(|s| ours.iter().any(|o| o.as_bytes() == name(s))).collect();
                kept.sort_by_key(name);
                fields.push(if kept.is_empty() { ReplyValue::Set(Vec::new()) } else { ReplyValue::Array(Some(kept)) });
            } else {
                fields.push(ReplyValue::Set(Vec::new()));
            }
            ReplyValue::Array(Some(fields))
        }
        ReplyValue::Map(pairs) => ReplyValue::Map(
            pairs
                .into_iter()
                .filter_map(|(k, v)| match (k.as_bytes().map(|b| b.as_ref()), v) {
                    (Some(b"subcommands"), ReplyValue::Map(subs)) => {
                        let mut kept: Vec<_> = subs
                            .into_iter()
                            .filter(|(n, _)| n.as_bytes().is_some_and(|n| ours.iter().any(|o| o.as_bytes() == n)))
                            .collect();
                        kept.sort_by_key(|(n, _)| n.as_bytes().cloned().unwrap_or_default());
                        (!kept.is_empty()).then(|| (k, ReplyValue::Map(kept)))
                    }
                    (_, v) => Some((k, v)),
                })
                .collect(),
        ),
        other => other,
    }
}

/// A whole COMMAND INFO/DOCS reply for one container command with its subcommands filtered and sorted.
fn normalize(reply: &Bytes, subs: &[&str], proto: Protocol) -> Bytes {
    let filtered = match ReplyValue::parse(reply).unwrap() {
        ReplyValue::Array(Some(mut items)) if items.len() == 1 => {
            ReplyValue::Array(Some(vec![keep_subcommands(items.remove(0), subs)]))
        }
        ReplyValue::Map(mut pairs) => {
            let (k, v) = pairs.remove(0);
            ReplyValue::Map(vec![(k, keep_subcommands(v, subs))])
        }
        // RESP2 DOCS: a flat array of name and map (itself flat); compared in RESP3 only.
        other => other,
    };
    encode(&filtered, proto)
}

/// Re-encodes a parsed reply in `proto` (for comparing filtered entries byte for byte).
fn encode(v: &ReplyValue, proto: Protocol) -> Bytes {
    let mut out = ReplyBuf::new(proto);
    v.write_to(&mut out);
    out.take()
}

#[test]
fn command_info_and_docs_are_redis_servers() {
    let redis = Redis::start();
    for proto in [Protocol::Resp2, Protocol::Resp3] {
        let mut conn = redis.connect(proto);
        for spec in COMMANDS.iter().filter(|c| c.name != "ringcache") {
            let subs: Vec<&str> = spec.subcommands.iter().map(|s| s.name).collect();
            for sub in ["info", "docs"] {
                let theirs = conn.request(&["COMMAND", sub, spec.name]);
                // Our reply to the whole request, and the entry inside it.
                let got = ours(&["COMMAND", sub, spec.name], proto);
                let (got, expected) = if subs.is_empty() {
                    (got, theirs)
                } else {
                    (normalize(&got, &subs, proto), normalize(&theirs, &subs, proto))
                };
                if proto == Protocol::Resp2 && sub == "docs" && !subs.is_empty() {
                    // A flat RESP2 map cannot be told from an array when filtering; RESP3 checks it.
                    continue;
                }
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected),
                    "COMMAND {sub} {} ({proto:?})",
                    spec.name
                );
            }
            // Each subcommand on its own.
            for sub_name in &subs {
                let theirs = conn.request(&["COMMAND", "INFO", sub_name]);
                assert_eq!(ours(&["COMMAND", "INFO", sub_name], proto), theirs, "COMMAND INFO {sub_name} ({proto:?})");
            }
        }
        // Names we do not implement are nil (INFO) or left out (DOCS), as redis-server does for unknown ones.
        let got = ours(&["COMMAND", "INFO", "get", "nosuchcommand"], proto);
        assert_eq!(got, conn.request(&["COMMAND", "INFO", "get", "nosuchcommand"]));
        let got = ours(&["COMMAND", "DOCS", "nosuchcommand", "get"], proto);
        assert_eq!(got, conn.request(&["COMMAND", "DOCS", "nosuchcommand", "get"]));
    }
}

#[test]
fn command_count_list_and_help() {
    let redis = Redis::start();
    let mut conn = redis.connect(Protocol::Resp2);
    let count = ours(&["COMMAND", "COUNT"], Protocol::Resp2);
    assert_eq!(&count[..], format!(":{}\r\n", COMMANDS.len()).as_bytes());
    let list = ReplyValue::parse(&ours(&["COMMAND", "LIST"], Protocol::Resp2)).unwrap().into_items().unwrap();
    assert_eq!(list.len(), COMMANDS.len());
    let theirs = ReplyValue::parse(&conn.request(&["COMMAND", "LIST"])).unwrap().into_items().unwrap();
    for name in &list {
        if name.as_bytes().map(|b| b.as_ref()) != Some(b"ringcache") {
            assert!(theirs.contains(name), "{name:?} is not a redis-server command");
        }
    }
    for args in [
        &["COMMAND", "HELP"][..],
        &["COMMAND", "LIST", "FILTERBY", "BOGUS", "x"],
        &["COMMAND", "LIST", "BOGUS"],
        &["COMMAND", "NOSUCH"],
        &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"],
    ] {
        assert_eq!(ours(args, Protocol::Resp2), conn.request(args), "{args:?}");
    }
    // Filters keep what redis-server keeps, among what we implement.
    for (filter, value) in [("ACLCAT", "string"), ("ACLCAT", "keyspace"), ("PATTERN", "c*"), ("PATTERN", "client|*")] {
        let got = ReplyValue::parse(&ours(&["COMMAND", "LIST", "FILTERBY", filter, value], Protocol::Resp2))
            .unwrap()
            .into_items()
            .unwrap();
        let all = ReplyValue::parse(&conn.request(&["COMMAND", "LIST", "FILTERBY", filter, value]))
            .unwrap()
            .into_items()
            .unwrap();
        assert!(!got.is_empty(), "{filter} {value}");
        for name in &got {
            assert!(all.contains(name), "{filter} {value}: {name:?}");
        }
    }
}

/// Requests whose keys COMMAND GETKEYS reports; each is checked for every command we implement.
const GETKEYS_SAMPLES: &[&[&str]] = &[
    &["get", "a"],
    &["get"],
    &["set", "a", "b"],
    &["set", "a", "b", "GET"],
    &["set", "a", "b", "EX", "10", "get"],
    &["mset", "a", "1", "b", "2"],
    &["mset", "a", "1", "b"],
    &["mget", "a", "b", "c"],
    &["msetnx", "a", "1", "b", "2"],
    &["del", "a", "b"],
    &["exists", "a"],
    &["rename", "a", "b"],
    &["renamenx", "a", "b"],
    &["copy", "a", "b", "REPLACE"],
    &["ping"],
    &["ping", "x"],
    &["nosuchcommand", "a"],
    &["client", "list"],
    &["object", "encoding", "k"],
    &["object", "help"],
    &["sort", "l"],
    &["sort", "l", "BY", "w_*", "STORE", "dst", "GET", "#"],
    &["sort", "l", "STORE", "a", "STORE", "b"],
    &["sort", "l", "GET", "store", "LIMIT", "0", "1"],
    &["sort_ro", "l", "BY", "x"],
    &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"],
    &["zunionstore", "d", "0"],
    &["zunionstore", "d", "5", "a", "b"],
    &["zunionstore", "d", "x", "a"],
    &["zinterstore", "d", "1", "a"],
    &["zdiffstore", "d", "2", "a", "b"],
    &["zunion", "2", "a", "b", "WITHSCORES"],
    &["zunion", "0", "a"],
    &["zinter", "1", "a"],
    &["zdiff", "3", "a", "b"],
    &["zintercard", "2", "a", "b", "LIMIT", "1"],
    &["sintercard", "2", "a", "b"],
    &["sintercard", "-1", "a"],
    &["lmpop", "2", "a", "b", "LEFT", "COUNT", "2"],
    &["zmpop", "1", "a", "MIN"],
    &["lmove", "a", "b", "LEFT", "RIGHT"],
    &["rpoplpush", "a", "b"],
    &["smove", "a", "b", "m"],
    &["sunionstore", "d", "a", "b"],
    &["sinter", "a", "b", "c"],
    &["zrangestore", "d", "s", "0", "-1"],
    &["bitop", "AND", "d", "a", "b"],
    &["bitfield", "k", "GET", "u8", "0"],
    &["bitfield", "k", "SET", "u8", "0", "1"],
    &["bitfield", "k", "incrby", "u8", "0", "1"],
    &["bitfield_ro", "k", "GET", "u8", "0"],
    &["lcs", "a", "b", "LEN"],
    &["pfcount", "a", "b"],
    &["pfmerge", "d", "a", "b"],
    &["restore", "k", "0", "x"],
    &["dump", "k"],
    &["move", "k", "1"],
    &["swapdb", "0", "1"],
    &["wait", "0", "0"],
    &["hset", "h", "f", "v"],
    &["zadd", "z", "1", "m"],
    &["lpush", "l", "x"],
    &["scan", "0"],
];

#[test]
fn command_getkeys_finds_what_redis_server_finds() {
    let redis = Redis::start();
    for proto in [Protocol::Resp2, Protocol::Resp3] {
        let mut conn = redis.connect(proto);
        for sample in GETKEYS_SAMPLES {
            let implemented = COMMANDS.iter().any(|c| c.name.eq_ignore_ascii_case(sample[0]));
            if !implemented && sample[0] != "nosuchcommand" {
                continue;
            }
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                let mut args = vec!["COMMAND", sub];
                args.extend_from_slice(sample);
                assert_eq!(
                    String::from_utf8_lossy(&ours(&args, proto)),
                    String::from_utf8_lossy(&conn.request(&args)),
                    "{args:?} ({proto:?})"
                );
            }
        }
    }
}
