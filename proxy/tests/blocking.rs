//! Blocking commands through the proxy (over three ringcache shards): each blocked client waits on a
//! connection of its own to its key's shard, so 100 clients blocked on one list are served first come,
//! first served and other clients' requests go on meanwhile; timeouts are the shard's (as Redis's);
//! keys on different shards are CROSSSLOT; a client that disconnects while blocked leaves nothing behind on
//! the shard. Replies of blocking commands that need not wait are compared with redis-server's in
//! `differential.rs`.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{cluster_of_shards, Cluster, Proc};

/// A raw client: requests written as RESP, whole replies read back as bytes.
struct Raw {
    stream: TcpStream,
    buf: bytes::BytesMut,
    scanner: ringcache_common::resp::ReplyScanner,
}

impl Raw {
    fn connect(p: &Proc) -> Raw {
        let stream = TcpStream::connect(p.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw { stream, buf: bytes::BytesMut::new(), scanner: ringcache_common::resp::ReplyScanner::new() }
    }

    fn send(&mut self, args: &[&str]) {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.write_all(req.as_bytes()).unwrap();
    }

    fn reply(&mut self) -> String {
        loop {
            if let Some(reply) = self.scanner.next(&mut self.buf).expect("a valid reply") {
                return String::from_utf8(reply.to_vec()).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("a reply within 20 s");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.reply()
    }
}

/// One connection to each shard of a cluster, for reading INFO (opened once, so that they do not count
/// themselves in and out of the figures).
struct ShardInfo(Vec<redis::Connection>);

impl ShardInfo {
    fn of(cluster: &Cluster) -> ShardInfo {
        ShardInfo(cluster.shards.iter().map(Proc::client).collect())
    }

    /// An INFO field summed over the shards.
    fn sum(&mut self, section: &str, field: &str) -> i64 {
        self.0
            .iter_mut()
            .map(|c| {
                let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
                info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap().trim().parse::<i64>().unwrap()
            })
            .sum()
    }

    fn blocked(&mut self) -> i64 {
        self.sum("clients", "blocked_clients")
    }

    /// The proxy's connections for blocking commands (named `ringcache-blocking`) open on the shards.
    fn dedicated(&mut self) -> i64 {
        self.0
            .iter_mut()
            .map(|c| {
                let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
                list.lines().filter(|l| l.contains(" name=ringcache-blocking ")).count() as i64
            })
            .sum()
    }

    /// The shard-side ids of those connections.
    fn dedicated_ids(&mut self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in &mut self.0 {
            let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
            ids.extend(list.lines().filter(|l| l.contains(" name=ringcache-blocking ")).map(|l| {
                let port = l.split(' ').find(|f| f.starts_with("laddr=")).unwrap_or_default();
                format!("{port} {}", l.split(' ').next().unwrap_or_default())
            }));
        }
        ids.sort();
        ids
    }
}

fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_hundred_clients_blocked_on_one_list_are_served_in_order_while_others_are_not_held_up() {
    let cluster = cluster_of_shards(&[]);
    let mut info = ShardInfo::of(&cluster);
    let mut blocked: Vec<Raw> = Vec::new();
    for i in 0..100 {
        let mut c = Raw::connect(&cluster.proxy);
        c.send(&["BLPOP", "{q}list", "0"]);
        blocked.push(c);
        // Each is registered before the next is sent, so their order is known.
        poll_until(&format!("{} clients are blocked", i + 1), || info.blocked() == i as i64 + 1);
    }
    // Meanwhile, another client's requests (on the shared connections) go on as usual.
    let mut other = cluster.proxy.client();
    for i in 0..1000 {
        let key = format!("other:{i}");
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut other).unwrap();
        let v: i64 = redis::cmd("GET").arg(&key).query(&mut other).unwrap();
        assert_eq!(v, i);
    }
    let mut pusher = Raw::connect(&cluster.proxy);
    for i in 0..100 {
        // Each element goes straight to the next blocked client.
        assert_eq!(pusher.call(&["RPUSH", "{q}list", &format!("v{i}")]), ":1\r\n");
    }
    for (i, c) in blocked.iter_mut().enumerate() {
        let v = format!("v{i}");
        assert_eq!(c.reply(), format!("*2\r\n$7\r\n{{q}}list\r\n${}\r\n{v}\r\n", v.len()), "client {i}");
    }
    assert_eq!(info.blocked(), 0);
    // The clients carry on, their connections back in the pool.
    for c in &mut blocked {
        assert_eq!(c.call(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn timeouts_protocols_and_crossslot() {
    let cluster = cluster_of_shards(&[]);
    let mut c = Raw::connect(&cluster.proxy);
    let started = Instant::now();
    assert_eq!(c.call(&["BLPOP", "{t}none", "0.3"]), "*-1\r\n");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290), "returned after {waited:?}");
    assert_eq!(c.call(&["BZPOPMIN", "{t}z", "0.05"]), "*-1\r\n");
    assert_eq!(c.call(&["BLMOVE", "{t}a", "{t}b", "LEFT", "RIGHT", "0.05"]), "*-1\r\n");
    assert_eq!(c.call(&["BLPOP", "{t}none", "-1"]), "-ERR timeout is negative\r\n");
    assert_eq!(c.call(&["BLMPOP", "0.01", "0", "LEFT", "x"]), "-ERR numkeys should be greater than 0\r\n");
    // RESP3: the dedicated connection speaks the client's protocol.
    assert!(c.call(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(c.call(&["BLPOP", "{t}none", "0.05"]), "_\r\n");
    assert_eq!(c.call(&["ZADD", "{t}z", "1", "m"]), ":1\r\n");
    assert_eq!(c.call(&["BZPOPMIN", "{t}z", "0"]), "*3\r\n$4\r\n{t}z\r\n$1\r\nm\r\n,1\r\n");
    // Keys on two shards (short names crowd onto one shard of three: these spread).
    let mut crossslot = None;
    for i in 1..100 {
        let reply = c.call(&["BLPOP", "blocking:key:0", &format!("blocking:key:{i}"), "0.01"]);
        if reply.starts_with("-CROSSSLOT") {
            crossslot = Some(reply);
            break;
        }
    }
    let reply = crossslot.expect("some key is on another shard than the first");
    assert!(reply.starts_with("-CROSSSLOT Keys in request don't hash to the same shard"), "{reply}");
    assert_eq!(c.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_client_that_disconnects_while_blocked_leaves_nothing_behind() {
    let cluster = cluster_of_shards(&[]);
    let mut info = ShardInfo::of(&cluster);
    {
        let mut gone: Vec<Raw> = (0..10).map(|_| Raw::connect(&cluster.proxy)).collect();
        for (i, c) in gone.iter_mut().enumerate() {
            c.send(&["BLPOP", &format!("{{d}}list{i}"), "0"]);
        }
        poll_until("ten clients are blocked", || info.blocked() == 10);
        assert_eq!(info.dedicated(), 10);
    }
    poll_until("the shard forgets them", || info.blocked() == 0);
    poll_until("their connections are closed", || info.dedicated() == 0);
    // Nobody takes what is pushed now.
    let mut c = Raw::connect(&cluster.proxy);
    assert_eq!(c.call(&["RPUSH", "{d}list0", "v"]), ":1\r\n");
    assert_eq!(c.call(&["LLEN", "{d}list0"]), ":1\r\n");
}

#[test]
fn idle_dedicated_connections_are_bounded_by_the_flag() {
    let cluster = cluster_of_shards(&["--blocking-idle-connections", "2", "--threads", "1"]);
    let mut info = ShardInfo::of(&cluster);
    let mut clients: Vec<Raw> = (0..5).map(|_| Raw::connect(&cluster.proxy)).collect();
    for c in &mut clients {
        c.send(&["BLPOP", "{p}list", "0"]);
    }
    poll_until("five clients are blocked", || info.blocked() == 5);
    let mut pusher = Raw::connect(&cluster.proxy);
    assert_eq!(pusher.call(&["RPUSH", "{p}list", "1", "2", "3", "4", "5"]), ":5\r\n");
    for c in &mut clients {
        assert!(c.reply().starts_with("*2\r\n"));
    }
    // Two stay open for the next blocked clients; the other three were closed.
    poll_until("all but two are closed", || info.dedicated() == 2);
    let before = info.dedicated_ids();
    assert_eq!(clients[0].call(&["BLPOP", "{p}list", "0.01"]), "*-1\r\n");
    assert_eq!(info.dedicated_ids(), before, "a pooled connection was reused");
}
