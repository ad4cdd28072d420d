//! CLIENT LIST filters, CLIENT KILL, CLIENT PAUSE / UNPAUSE and CLIENT NO-EVICT on redis-server 7, a
//! ringcache shard and ringcache-proxy over three shards: the same requests, the same replies (error texts
//! byte for byte), and the same effects (a killed connection is closed, a paused write waits for UNPAUSE
//! while a read goes through under PAUSE WRITE).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringcache_testkit::resp;
use support::{cluster_of_shards, start_redis, start_shard, Proc, RawClient};

fn call(c: &mut RawClient, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.s.write_all(&resp(&args)).unwrap();
    c.read_reply(Instant::now() + Duration::from_secs(10))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Replies that depend on nothing but the request.
const STATELESS: &[&[&str]] = &[
    &["CLIENT", "KILL", "10.1.2.3:4567"],
    &["CLIENT", "KILL", "ID", "0"],
    &["CLIENT", "KILL", "ID", "x"],
    &["CLIENT", "KILL", "ID", "999999"],
    &["CLIENT", "KILL", "TYPE", "foo"],
    &["CLIENT", "KILL", "TYPE", "master"],
    &["CLIENT", "KILL", "USER", "nobody"],
    &["CLIENT", "KILL", "SKIPME", "maybe"],
    &["CLIENT", "KILL", "FOO", "bar"],
    &["CLIENT", "KILL", "ID", "999999", "SKIPME"],
    &["CLIENT", "KILL", "ADDR", "10.1.2.3:4567", "LADDR", "10.1.2.3:1"],
    &["CLIENT", "KILL"],
    &["CLIENT", "PAUSE"],
    &["CLIENT", "PAUSE", "-1"],
    &["CLIENT", "PAUSE", "x"],
    &["CLIENT", "PAUSE", "10", "FOO"],
    &["CLIENT", "PAUSE", "10", "WRITE", "MORE"],
    &["CLIENT", "UNPAUSE"],
    &["CLIENT", "UNPAUSE", "x"],
    &["CLIENT", "NO-EVICT"],
    &["CLIENT", "NO-EVICT", "maybe"],
    &["CLIENT", "NO-EVICT", "on"],
    &["CLIENT", "NO-EVICT", "OFF"],
    &["CLIENT", "LIST", "TYPE", "foo"],
    &["CLIENT", "LIST", "TYPE", "replica"],
    &["CLIENT", "LIST", "ID", "x"],
    &["CLIENT", "LIST", "ID", "0"],
    &["CLIENT", "LIST", "FOO"],
];

fn endpoints() -> (Proc, Proc, support::Cluster) {
    (start_redis(), start_shard(&[]), cluster_of_shards(&[]))
}

#[test]
fn client_admin_replies_match_redis_server() {
    let (redis, shard, cluster) = endpoints();
    let mut reference = RawClient::connect(redis.port);
    let mut differences = Vec::new();
    for (name, port) in [("shard", shard.port), ("proxy", cluster.proxy.port)] {
        let mut ours = RawClient::connect(port);
        for req in STATELESS {
            let (got, want) = (text(&call(&mut ours, req)), text(&call(&mut reference, req)));
            if got != want {
                differences.push(format!("{name} {req:?}: {got:?}, redis-server {want:?}"));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Whether the server closed `c` (EOF) within 10 s.
fn closed(c: &mut RawClient) -> bool {
    c.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut byte = [0u8; 64];
    match c.s.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn client_id(c: &mut RawClient) -> String {
    let reply = text(&call(c, &["CLIENT", "ID"]));
    reply.trim_start_matches(':').trim().to_string()
}

/// Clients blocked on the servers at `ports` (INFO clients).
fn blocked_clients(ports: &[u16]) -> u64 {
    ports
        .iter()
        .map(|port| {
            let mut c = RawClient::connect(*port);
            let info = text(&call(&mut c, &["INFO", "clients"]));
            info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).unwrap().trim().parse::<u64>().unwrap()
        })
        .sum()
}

/// `storage`: the servers holding the data (the endpoint itself, or the proxy's shards).
fn kill_and_pause(name: &str, port: u16, storage: &[u16]) {
    // KILL ID closes the other connection; the killer goes on.
    let mut killer = RawClient::connect(port);
    let mut victim = RawClient::connect(port);
    assert_eq!(call(&mut victim, &["PING"]), b"+PONG\r\n");
    let id = client_id(&mut victim);
    let listed = text(&call(&mut killer, &["CLIENT", "LIST", "ID", &id]));
    assert!(listed.contains(&format!("id={id} ")) && listed.matches("id=").count() == 1, "{name}: {listed}");
    assert_eq!(text(&call(&mut killer, &["CLIENT", "KILL", "ID", &id])), ":1\r\n", "{name}");
    assert!(closed(&mut victim), "{name}: the killed connection is closed");
    assert_eq!(call(&mut killer, &["PING"]), b"+PONG\r\n", "{name}");
    // SKIPME yes (the default) spares the caller; SKIPME no with the caller's own id closes it after the reply.
    let own = client_id(&mut killer);
    assert_eq!(text(&call(&mut killer, &["CLIENT", "KILL", "ID", &own])), ":0\r\n", "{name}");
    assert_eq!(text(&call(&mut killer, &["CLIENT", "KILL", "ID", &own, "SKIPME", "no"])), ":1\r\n", "{name}");
    assert!(closed(&mut killer), "{name}: killing yourself closes after the reply");

    // A client blocked in BLPOP is killed: it is gone, and a later push stays in the list for others.
    let mut admin = RawClient::connect(port);
    let mut blocked = RawClient::connect(port);
    let id = client_id(&mut blocked);
    blocked.s.write_all(&resp(&[b"BLPOP", b"killed:list", b"0"])).unwrap();
    support::poll_until("the client is blocked", Duration::from_secs(10), || blocked_clients(storage) == 1);
    assert_eq!(text(&call(&mut admin, &["CLIENT", "KILL", "ID", &id])), ":1\r\n", "{name}");
    assert!(closed(&mut blocked), "{name}: the blocked client is closed");
    support::poll_until("no client is blocked", Duration::from_secs(10), || blocked_clients(storage) == 0);
    assert_eq!(call(&mut admin, &["LPUSH", "killed:list", "x"]), b":1\r\n", "{name}");
    assert_eq!(call(&mut admin, &["LLEN", "killed:list"]), b":1\r\n", "{name}: nobody took the pushed element");

    // PAUSE WRITE: a read goes through, a write waits until UNPAUSE; then it is answered.
    let mut writer = RawClient::connect(port);
    assert_eq!(call(&mut writer, &["SET", "paused:k", "before"]), b"+OK\r\n");
    assert_eq!(call(&mut admin, &["CLIENT", "PAUSE", "60000", "WRITE"]), b"+OK\r\n", "{name}");
    assert_eq!(text(&call(&mut writer, &["GET", "paused:k"])), "$6\r\nbefore\r\n", "{name}: reads pass");
    writer.s.write_all(&resp(&[b"SET", b"paused:k", b"after"])).unwrap();
    // Held: no reply within half a second (a pause of 60 s cannot have ended).
    writer.s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut byte = [0u8; 16];
    assert!(writer.s.read(&mut byte).is_err(), "{name}: the write waits while paused");
    assert_eq!(call(&mut admin, &["CLIENT", "UNPAUSE"]), b"+OK\r\n", "{name}");
    assert_eq!(writer.read_reply(Instant::now() + Duration::from_secs(10)), b"+OK\r\n", "{name}");
    assert_eq!(text(&call(&mut writer, &["GET", "paused:k"])), "$5\r\nafter\r\n", "{name}");

    // A pause ends by itself at its deadline.
    assert_eq!(call(&mut admin, &["CLIENT", "PAUSE", "300", "ALL"]), b"+OK\r\n", "{name}");
    let started = Instant::now();
    assert_eq!(call(&mut writer, &["GET", "paused:k"]), b"$5\r\nafter\r\n", "{name}");
    assert!(started.elapsed() >= Duration::from_millis(200), "{name}: ALL holds reads too");
}

#[test]
fn kill_and_pause_act_alike_on_redis_server_the_shard_and_the_proxy() {
    let (redis, shard, cluster) = endpoints();
    kill_and_pause("redis-server", redis.port, &[redis.port]);
    kill_and_pause("shard", shard.port, &[shard.port]);
    let shards: Vec<u16> = cluster.shards.iter().map(|s| s.port).collect();
    kill_and_pause("proxy", cluster.proxy.port, &shards);
}
