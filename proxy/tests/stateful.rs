//! What only a proxy must get right about transactions, scripts, pub/sub and client tracking (the replies
//! themselves are compared with redis-server in `differential.rs`): a refused transaction runs none of its
//! commands, WATCH races between clients on two proxies, scripts reloaded on shards that lost them,
//! messages across proxies exactly once and in order, a slow subscriber cut off without hurting others,
//! invalidations for keys written through another proxy, every limit at its edge, and nothing left behind
//! by clients that leave mid-way. Real clients: the `redis` crate here, redis-py in `clients/stateful.py`.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};
use ringcache_common::hash::KeyHash;
use ringcache_proxy::ring::{Member, Ring};
use support::{cluster_of_redis, cluster_of_shards, poll_until, start_proxy, start_shard, Proc, RawClient};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Three shards and two proxies over them.
struct TwoProxies {
    shards: Vec<Proc>,
    a: Proc,
    b: Proc,
}

fn two_proxies(extra: &[&str]) -> TwoProxies {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let a = start_proxy(&names, extra);
    let b = start_proxy(&names, extra);
    TwoProxies { shards, a, b }
}

/// Two keys `<prefix><n>` owned by different shards of the s1..s3 ring.
fn keys_on_two_shards(prefix: &str) -> (String, String) {
    let members: Vec<Member> = ["s1", "s2", "s3"].iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect();
    let ring = Ring::new(&members, KeyHash::Fnv1a_64);
    let first = format!("{prefix}0");
    let owner = ring.owner(first.as_bytes()).unwrap();
    let second = (1..).map(|i| format!("{prefix}{i}")).find(|k| ring.owner(k.as_bytes()) != Some(owner)).unwrap();
    (first, second)
}

fn send(c: &mut RawClient, bytes: &[u8]) {
    c.s.write_all(bytes).unwrap();
}

/// Sends `bytes` and reads `n` replies.
fn exchange(c: &mut RawClient, bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    send(c, bytes);
    (0..n).map(|_| c.read_reply(soon())).collect()
}

fn text(replies: &[Vec<u8>]) -> String {
    replies.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
}

fn get(conn: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(conn).unwrap()
}

/// A transaction refused at any command (a key on another shard, an unknown command) runs none of its
/// commands, through a proxy over ringcache shards and over redis-servers, in RESP2 and RESP3; the `redis`
/// crate's `pipe().atomic()` gets an error and the keyspace is untouched; with a hash tag it runs.
#[test]
fn a_refused_transaction_runs_none_of_its_commands() {
    let (k1, k2) = keys_on_two_shards("tx:");
    for cluster in [cluster_of_shards(&[]), cluster_of_redis(&[])] {
        for hello in [&b""[..], b"HELLO 3\r\n"] {
            let mut c = RawClient::connect(cluster.proxy.port);
            if !hello.is_empty() {
                exchange(&mut c, hello, 1);
            }
            let request = format!("MULTI\r\nSET {k1} 1\r\nSET {k2} 2\r\nINCR {k1}\r\nEXEC\r\nGET {k1}\r\nGET {k2}\r\n");
            let replies = exchange(&mut c, request.as_bytes(), 7);
            assert_eq!(replies[0], b"+OK\r\n");
            assert_eq!(replies[1], b"+QUEUED\r\n");
            assert!(replies[2].starts_with(b"-CROSSSLOT "), "{}", text(&replies));
            assert_eq!(replies[3], b"+QUEUED\r\n", "a later command is still queued (and discarded)");
            assert_eq!(replies[4], b"-EXECABORT Transaction discarded because of previous errors.\r\n");
            let null: &[u8] = if hello.is_empty() { b"$-1\r\n" } else { b"_\r\n" };
            assert_eq!(replies[5], null, "the first SET must not have run");
            assert_eq!(replies[6], null, "the second SET must not have run");
            // The connection is usable, and a transaction on one shard runs.
            let ok = exchange(&mut c, b"MULTI\r\nSET {t}x 1\r\nINCR {t}x\r\nEXEC\r\n", 4);
            assert_eq!(ok[3], b"*2\r\n+OK\r\n:2\r\n");
        }
        let mut conn = cluster.proxy.client();
        let refused: redis::RedisResult<(String, String)> =
            redis::pipe().atomic().set(&k1, "a").ignore().set(&k2, "b").ignore().get(&k1).get(&k2).query(&mut conn);
        assert!(refused.is_err(), "a cross-shard atomic pipeline must fail: {refused:?}");
        assert_eq!(get(&mut conn, &k1), None);
        assert_eq!(get(&mut conn, &k2), None);
        let (a, b): (String, String) = redis::pipe()
            .atomic()
            .set("{p}1", "a")
            .ignore()
            .set("{p}2", "b")
            .ignore()
            .get("{p}1")
            .get("{p}2")
            .query(&mut conn)
            .unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("a", "b"));
    }
}

/// WATCH through one proxy fails EXEC when another client writes the key through another proxy (null
/// reply, nothing applied); and two clients racing optimistic increments through two proxies never lose
/// one: the counter ends at exactly the number of EXECs that succeeded.
#[test]
fn watch_races_between_clients_on_two_proxies() {
    let cluster = two_proxies(&[]);
    for (hello, null) in [(&b""[..], &b"*-1\r\n"[..]), (b"HELLO 3\r\n", b"_\r\n")] {
        let mut watcher = RawClient::connect(cluster.a.port);
        if !hello.is_empty() {
            exchange(&mut watcher, hello, 1);
        }
        let mut other = cluster.b.client();
        let _: () = redis::cmd("SET").arg("{w}k").arg("0").query(&mut other).unwrap();
        exchange(&mut watcher, b"WATCH {w}k\r\nGET {w}k\r\n", 2);
        let _: () = redis::cmd("SET").arg("{w}k").arg("theirs").query(&mut other).unwrap();
        let replies = exchange(&mut watcher, b"MULTI\r\nSET {w}k mine\r\nEXEC\r\nGET {w}k\r\n", 4);
        assert_eq!(replies[2], null, "{}", text(&replies));
        assert!(replies[3].ends_with(b"theirs\r\n"), "{}", text(&replies));
    }

    let ports = [cluster.a.port, cluster.b.port];
    let workers: Vec<_> = ports
        .into_iter()
        .map(|port| {
            std::thread::spawn(move || {
                let mut conn =
                    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
                let mut won = 0u64;
                for _ in 0..200 {
                    let _: () = redis::cmd("WATCH").arg("{race}counter").query(&mut conn).unwrap();
                    let now: Option<u64> = redis::cmd("GET").arg("{race}counter").query(&mut conn).unwrap();
                    let result: Option<(String,)> =
                        redis::pipe().atomic().set("{race}counter", now.unwrap_or(0) + 1).query(&mut conn).unwrap();
                    won += u64::from(result.is_some());
                }
                won
            })
        })
        .collect();
    let won: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let mut conn = cluster.a.client();
    let counter: u64 = redis::cmd("GET").arg("{race}counter").query(&mut conn).unwrap();
    assert_eq!(counter, won, "every successful EXEC incremented once, and no other write landed");
    assert!(won >= 200, "at least one client's increments succeed each round: {won}");
}

/// EVALSHA works on shards that never saw the script (SCRIPT FLUSH run on each shard behind the proxy's
/// back): the proxy loads it again and retries. The `redis` crate's `Script` works unchanged.
#[test]
fn evalsha_survives_shards_that_lost_their_scripts() {
    let cluster = cluster_of_shards(&[]);
    let mut conn = cluster.proxy.client();
    let body = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(body).query(&mut conn).unwrap();
    for shard in &cluster.shards {
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut shard.client()).unwrap();
        let exists: Vec<i64> = redis::cmd("SCRIPT").arg("EXISTS").arg(&sha).query(&mut shard.client()).unwrap();
        assert_eq!(exists, vec![0]);
    }
    let (k1, k2) = keys_on_two_shards("script:");
    for key in [&k1, &k2] {
        let n: i64 = redis::cmd("EVALSHA").arg(&sha).arg(1).arg(key).arg(5).query(&mut conn).unwrap();
        assert_eq!(n, 5, "EVALSHA on {key} after its shard lost the script");
    }
    let script = redis::Script::new("return redis.call('GET', KEYS[1]) .. ARGV[1]");
    let v: String = script.key(&k1).arg("!").invoke(&mut conn).unwrap();
    assert_eq!(v, "5!");
    // A script whose keys span shards is refused, and runs nowhere.
    let cross =
        conn.req_command(redis::cmd("EVAL").arg("redis.call('SET', KEYS[1], 'x') return 1").arg(2).arg(&k1).arg(&k2));
    assert!(matches!(cross, Ok(Value::ServerError(ref e)) if e.code() == "CROSSSLOT"), "{cross:?}");
    assert_eq!(get(&mut conn, &k1).as_deref(), Some("5"));
}

/// A subscriber's messages, as (kind, channel, payload), read from raw replies of either protocol.
fn message(frame: &[u8]) -> (String, String, String) {
    let s = String::from_utf8_lossy(frame);
    let parts: Vec<&str> = s.split("\r\n").collect();
    // [header, $n, kind, ($n, pattern,) $n, channel, $n, payload, ""]
    let kind = parts[2].to_string();
    let (channel, payload) = if kind == "pmessage" { (parts[6], parts[8]) } else { (parts[4], parts[6]) };
    (kind, channel.to_string(), payload.to_string())
}

/// Messages published through either of two proxies reach every subscriber on either proxy exactly once,
/// in publish order per channel, pattern subscribers included; RESP2 and RESP3 subscribers alike.
#[test]
fn pubsub_across_two_proxies_exactly_once_in_order() {
    let cluster = two_proxies(&[]);
    let mut s1 = RawClient::connect(cluster.a.port);
    let confirmations = exchange(&mut s1, b"SUBSCRIBE c1 c2\r\nPSUBSCRIBE c*\r\n", 3);
    assert_eq!(
        text(&confirmations),
        "*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n\
         *3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:3\r\n"
    );
    let mut s2 = RawClient::connect(cluster.b.port);
    exchange(&mut s2, b"HELLO 3\r\n", 1);
    let confirmations = exchange(&mut s2, b"SUBSCRIBE c1\r\n", 1);
    assert_eq!(text(&confirmations), ">3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n");
    let mut publishers = [cluster.a.client(), cluster.b.client()];
    let total = 400;
    for i in 0..total {
        let channel = if i % 2 == 0 { "c1" } else { "c2" };
        let _: i64 = redis::cmd("PUBLISH").arg(channel).arg(format!("m{i}")).query(&mut publishers[i % 2]).unwrap();
    }
    // s1: each message once on its channel and once through the pattern.
    let mut seen: std::collections::HashMap<(String, String), Vec<usize>> = Default::default();
    for _ in 0..2 * total {
        let (kind, channel, payload) = message(&s1.read_reply(soon()));
        seen.entry((kind, channel)).or_default().push(payload[1..].parse().unwrap());
    }
    for kind in ["message", "pmessage"] {
        for (channel, first) in [("c1", 0), ("c2", 1)] {
            let expected: Vec<usize> = (first..total).step_by(2).collect();
            assert_eq!(seen[&(kind.to_string(), channel.to_string())], expected, "{kind} on {channel}");
        }
    }
    // s2: c1 only, as RESP3 pushes.
    for i in (0..total).step_by(2) {
        let frame = s2.read_reply(soon());
        assert!(frame.starts_with(b">3\r\n"), "{}", String::from_utf8_lossy(&frame));
        assert_eq!(message(&frame), ("message".into(), "c1".into(), format!("m{i}")));
    }
    // Nothing more arrives (no duplicates).
    let mut probe = RawClient::connect(cluster.a.port);
    let _ = exchange(&mut probe, b"PUBLISH c2 last\r\n", 1);
    let (kind, _, payload) = message(&s1.read_reply(soon()));
    assert_eq!((kind.as_str(), payload.as_str()), ("message", "last"), "a duplicate arrived before 'last'");
}

/// A RESP2 subscriber may only (un)subscribe, PING, QUIT and RESET, byte for byte as redis-server; a RESP3
/// one may run anything while subscribed. Unsubscribing from everything ends subscriber mode.
#[test]
fn subscriber_mode_matches_redis_server() {
    let cluster = cluster_of_shards(&[]);
    let redis_server = support::start_redis();
    // (UNSUBSCRIBE of everything lists the channels in the server's own order: one channel is left then.)
    let script = b"SUBSCRIBE x y\r\nPING\r\nPING hi\r\nGET a\r\nPSUBSCRIBE p*\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE y\r\n\
                   UNSUBSCRIBE\r\nUNSUBSCRIBE\r\nSSUBSCRIBE s\r\nSUNSUBSCRIBE\r\nGET a\r\nPING\r\n";
    let replies = 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1;
    let want = exchange(&mut RawClient::connect(redis_server.port), script, replies);
    let got = exchange(&mut RawClient::connect(cluster.proxy.port), script, replies);
    assert_eq!(text(&got), text(&want));
    let script3 = b"HELLO 3\r\nSUBSCRIBE x\r\nSET a 1\r\nGET a\r\nPING\r\nUNSUBSCRIBE x\r\n";
    let want = exchange(&mut RawClient::connect(redis_server.port), script3, 6);
    let got = exchange(&mut RawClient::connect(cluster.proxy.port), script3, 6);
    assert_eq!(text(&got[1..]), text(&want[1..]), "after HELLO (whose server fields differ)");
}

/// A subscriber that stops reading is disconnected once its queued messages pass the pub/sub output
/// limit; publishers are not slowed and another subscriber gets every message.
#[test]
fn a_slow_subscriber_is_disconnected_and_others_get_everything() {
    let cluster = cluster_of_shards(&["--client-output-buffer-limit-pubsub", "256kb 0 0"]);
    let mut slow = RawClient::connect(cluster.proxy.port);
    slow.s.set_nodelay(true).unwrap();
    exchange(&mut slow, b"SUBSCRIBE feed\r\n", 1);
    let mut fast = RawClient::connect(cluster.proxy.port);
    exchange(&mut fast, b"SUBSCRIBE feed\r\n", 1);
    let payload = "x".repeat(1000);
    let total = 20_000;
    let mut publisher = cluster.proxy.client();
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let read_by_fast = read.clone();
    let reader = std::thread::spawn(move || {
        for i in 0..total {
            let (_, _, got) = message(&fast.read_reply(soon()));
            assert_eq!(got.len(), 1000 + i.to_string().len(), "message {i}");
            read_by_fast.store(i + 1, std::sync::atomic::Ordering::Relaxed);
        }
        fast
    });
    // In bursts of 50 KB, each once the fast subscriber has read all but the last: it is never more than
    // 100 KB behind (under the limit), while the slow one falls ever further behind.
    for (n, chunk) in (0..total).collect::<Vec<_>>().chunks(50).enumerate() {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("PUBLISH").arg("feed").arg(format!("{payload}{i}"));
        }
        let _: Vec<i64> = pipe.query(&mut publisher).unwrap();
        poll_until("the fast subscriber keeps up", Duration::from_secs(30), || {
            read.load(std::sync::atomic::Ordering::Relaxed) + 50 >= n * 50
        });
    }
    let _fast = reader.join().unwrap();
    // The slow one was cut off: the proxy counts one subscriber left, and its socket ends.
    poll_until("the slow subscriber is dropped", Duration::from_secs(10), || {
        let counts: Vec<Value> = redis::cmd("PUBSUB").arg("NUMSUB").arg("feed").query(&mut publisher).unwrap();
        counts.get(1) == Some(&Value::Int(1))
    });
    slow.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    let read = std::io::Read::read_to_end(&mut slow.s, &mut sink);
    assert!(read.is_ok() || sink.len() < total * 1000, "the slow subscriber's connection was closed");
    assert!(sink.len() < total * 1000, "it did not get every message: {} bytes", sink.len());
}

/// Client-side caching through the proxy: a key read through one proxy is invalidated when written
/// through the other (RESP3 push), also by expiry and FLUSHALL; BCAST with a prefix; OPTIN with CLIENT
/// CACHING YES; REDIRECT to a RESP2 client subscribed to `__redis__:invalidate`.
#[test]
fn tracking_invalidates_keys_written_through_another_proxy() {
    let cluster = two_proxies(&[]);
    let mut writer = cluster.b.client();
    let mut reader = RawClient::connect(cluster.a.port);
    exchange(&mut reader, b"HELLO 3\r\n", 1);
    let replies = exchange(&mut reader, b"CLIENT TRACKING ON\r\nGET t:1\r\nGET t:2\r\n", 3);
    assert_eq!(text(&replies), "+OK\r\n_\r\n_\r\n");
    let _: () = redis::cmd("SET").arg("t:1").arg("v").query(&mut writer).unwrap();
    assert_eq!(reader.read_reply(soon()), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nt:1\r\n");
    // Once per read: a second write without a read in between sends nothing; the next read re-arms it.
    let _: () = redis::cmd("SET").arg("t:1").arg("w").query(&mut writer).unwrap();
    assert_eq!(exchange(&mut reader, b"GET t:1\r\n", 1)[0], b"$1\r\nw\r\n", "no push came before the reply");
    let _: () = redis::cmd("SET").arg("t:1").arg("gone").arg("PX").arg(50).query(&mut writer).unwrap();
    assert_eq!(reader.read_reply(soon()), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nt:1\r\n");
    exchange(&mut reader, b"GET t:1\r\n", 1);
    // Expiry (active, on the shard) invalidates too.
    let pushed = reader.read_reply(soon());
    assert_eq!(pushed, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nt:1\r\n", "expiry");

    let mut bcast = RawClient::connect(cluster.a.port);
    exchange(&mut bcast, b"HELLO 3\r\nCLIENT TRACKING ON BCAST PREFIX user:\r\n", 2);
    let mut optin = RawClient::connect(cluster.a.port);
    exchange(
        &mut optin,
        b"HELLO 3\r\nCLIENT TRACKING ON OPTIN\r\nGET o:skipped\r\nCLIENT CACHING YES\r\nGET o:kept\r\n",
        5,
    );
    let mut target = RawClient::connect(cluster.b.port);
    let id = String::from_utf8(exchange(&mut target, b"CLIENT ID\r\n", 1).remove(0)).unwrap();
    let id = id.trim_start_matches(':').trim();
    exchange(&mut target, b"SUBSCRIBE __redis__:invalidate\r\n", 1);
    let mut redirecting = RawClient::connect(cluster.b.port);
    let on = format!("CLIENT TRACKING ON REDIRECT {id}\r\nGET r:1\r\nCLIENT GETREDIR\r\n");
    let replies = exchange(&mut redirecting, on.as_bytes(), 3);
    assert_eq!(text(&replies), format!("+OK\r\n$-1\r\n:{id}\r\n"));

    let mut pipe = redis::pipe();
    pipe.set("user:7", "x").set("other", "y").set("o:skipped", "1").set("o:kept", "1").set("r:1", "1");
    let _: () = pipe.query(&mut writer).unwrap();
    assert_eq!(bcast.read_reply(soon()), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nuser:7\r\n");
    assert_eq!(optin.read_reply(soon()), b">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\no:kept\r\n");
    assert_eq!(target.read_reply(soon()), b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$3\r\nr:1\r\n");
    // FLUSHALL: everything goes (a null key list).
    let _: () = redis::cmd("FLUSHALL").query(&mut writer).unwrap();
    assert_eq!(reader.read_reply(soon()), b">2\r\n$10\r\ninvalidate\r\n_\r\n");
    assert_eq!(target.read_reply(soon()), b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
}

/// The limits at their edges: --multi-max-commands, --max-subscriptions; each refusal is Redis-worded
/// and the connection stays usable.
#[test]
fn transaction_and_subscription_limits_at_their_edges() {
    let cluster = cluster_of_shards(&["--multi-max-commands", "3", "--max-subscriptions", "2"]);
    let mut c = RawClient::connect(cluster.proxy.port);
    let replies = exchange(&mut c, b"MULTI\r\nINCR {l}a\r\nINCR {l}a\r\nINCR {l}a\r\nEXEC\r\n", 5);
    assert_eq!(replies[4], b"*3\r\n:1\r\n:2\r\n:3\r\n");
    let replies =
        exchange(&mut c, b"MULTI\r\nINCR {l}a\r\nINCR {l}a\r\nINCR {l}a\r\nINCR {l}a\r\nEXEC\r\nGET {l}a\r\n", 7);
    assert!(replies[4].starts_with(b"-ERR Transaction too large: at most 3 commands"), "{}", text(&replies));
    assert_eq!(replies[5], b"-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(replies[6], b"$1\r\n3\r\n", "nothing of the refused transaction ran");
    let replies = exchange(&mut c, b"SUBSCRIBE a b\r\n", 2);
    assert!(replies[1].ends_with(b":2\r\n"));
    let refused = exchange(&mut c, b"SUBSCRIBE c\r\n", 1);
    assert_eq!(refused[0], b"-ERR too many subscriptions for this client (max-subscriptions is 2)\r\n");
    let still = exchange(&mut c, b"SUBSCRIBE b\r\nPING\r\n", 2);
    assert!(still[0].ends_with(b":2\r\n"), "an existing channel is not a new subscription");
    assert_eq!(still[1], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}

/// The names of the connections a shard has open, from CLIENT LIST.
fn shard_connection_names(shard: &Proc) -> Vec<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut shard.client()).unwrap();
    list.lines().filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("name=")).map(str::to_string)).collect()
}

fn open_on_shards(shards: &[Proc], name: &str) -> usize {
    shards.iter().map(|s| shard_connection_names(s).iter().filter(|n| *n == name).count()).sum()
}

/// Clients that leave while subscribed, watching, mid-transaction or tracking leave nothing behind: no
/// subscription counted, no WATCH connection or tracking link left open on the shards, and the unfinished
/// transaction did not run.
#[test]
fn clients_that_leave_mid_way_leave_nothing_behind() {
    let cluster = cluster_of_shards(&[]);
    let mut observer = cluster.proxy.client();
    {
        let mut sub = RawClient::connect(cluster.proxy.port);
        exchange(&mut sub, b"SUBSCRIBE gone\r\nPSUBSCRIBE gone*\r\n", 2);
        let mut watcher = RawClient::connect(cluster.proxy.port);
        exchange(&mut watcher, b"WATCH {g}1\r\nMULTI\r\nSET {g}1 x\r\n", 3);
        let mut tracker = RawClient::connect(cluster.proxy.port);
        exchange(&mut tracker, b"HELLO 3\r\nCLIENT TRACKING ON\r\nGET {g}2\r\n", 3);
        let counts: Vec<Value> = redis::cmd("PUBSUB").arg("NUMSUB").arg("gone").query(&mut observer).unwrap();
        assert_eq!(counts[1], Value::Int(1));
        assert_eq!(open_on_shards(&cluster.shards, "ringcache-proxy-watch"), 1, "the WATCH connection");
        assert!(open_on_shards(&cluster.shards, "ringcache-proxy-tracking") >= 3, "a tracking link per shard");
    }
    poll_until("the departed clients' state is gone", Duration::from_secs(10), || {
        let counts: Vec<Value> = redis::cmd("PUBSUB").arg("NUMSUB").arg("gone").query(&mut observer).unwrap();
        let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut observer).unwrap();
        counts[1] == Value::Int(0)
            && numpat == 0
            && open_on_shards(&cluster.shards, "ringcache-proxy-watch") == 0
            && open_on_shards(&cluster.shards, "ringcache-proxy-tracking") == 0
    });
    assert_eq!(get(&mut observer, "{g}1"), None, "the unfinished transaction did not run");
}

/// redis-py, with its defaults, through two proxies: `pipeline()` (MULTI/EXEC), `Lock`, `register_script`,
/// a token-bucket rate limiter in Lua, `pubsub()` across the proxies, and its client-side cache (RESP3),
/// which must never serve a value overwritten through the other proxy once the invalidation arrived.
#[test]
fn redis_py_transactions_scripts_pubsub_and_client_cache() {
    let cluster = two_proxies(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/stateful.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(cluster.a.port.to_string())
        .arg(cluster.b.port.to_string())
        .output()
        .expect("python3 runs (installed by .ci/run)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "redis-py checks failed:\n{said}");
    assert!(said.contains("all redis-py checks passed"), "{said}");
    drop(cluster.shards);
}
