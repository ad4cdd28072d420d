//! Transactions, pub/sub and client tracking, differentially against redis-server 7: the same script of
//! commands, over several connections, runs against both, in RESP2 and in RESP3, and every frame each
//! connection receives (replies and pushes) must be the same bytes.
//!
//! A script is a list of steps on numbered connections: a command and its reply, the next frame a
//! connection receives (a pushed message), "nothing is pending" (a PING whose reply must be the next
//! frame: pushes queued before it would arrive first), and polling until a reply is reached (for keys that
//! must expire). `{idN}` in a command is connection N's client id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Framed, RedisServer, Shard};

#[derive(Clone, Copy)]
enum Step<'a> {
    /// Connection `.0` sends `.1`; its reply is compared.
    Call(usize, &'a [&'a str]),
    /// As `Call`, but integers equal to a connection's id are written `<id>` (CLIENT GETREDIR, ...).
    CallIds(usize, &'a [&'a str]),
    /// The next frame connection `.0` receives, compared.
    Frame(usize),
    /// Connection `.0` has nothing pending.
    Quiet(usize),
    /// Connection `.0` sends `.1` until the reply is `.2` (not compared: both servers must get there).
    PollUntil(usize, &'a [&'a str], &'a str),
    /// Connection `.0` sends `.1` without waiting for the reply (a blocking command; a later `Frame` reads it).
    Send(usize, &'a [&'a str]),
    /// Polls INFO on connection `.0` until `.1` has the value `.2` (a blocked client has registered).
    InfoUntil(usize, &'a str, &'a str),
}
use Step::*;

const CONNECTIONS: usize = 3;

/// Runs `script` against the server on `port`; every connection says HELLO 3 first when `resp3`.
fn run(port: u16, resp3: bool, script: &[Step<'_>]) -> Vec<String> {
    let mut conns: Vec<Framed> = (0..CONNECTIONS).map(|_| Framed::connect(port)).collect();
    let mut ids = Vec::new();
    for c in &mut conns {
        if resp3 {
            c.call(&["HELLO", "3"]);
        }
        let id = c.call(&["CLIENT", "ID"]);
        ids.push(String::from_utf8_lossy(&id[1..id.len() - 2]).into_owned());
    }
    let subst = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| (0..CONNECTIONS).fold(a.to_string(), |s, i| s.replace(&format!("{{id{i}}}"), &ids[i])))
            .collect()
    };
    let mut out = Vec::new();
    for (n, step) in script.iter().enumerate() {
        let text = match *step {
            Call(c, args) | CallIds(c, args) => {
                let args = subst(args);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let reply = String::from_utf8_lossy(&conns[c].call(&args)).into_owned();
                if matches!(step, CallIds(..)) {
                    ids.iter().fold(reply, |r, id| r.replace(&format!(":{id}\r\n"), ":<id>\r\n"))
                } else {
                    reply
                }
            }
            Frame(c) => conns[c].frame().map(|f| String::from_utf8_lossy(&f).into_owned()).unwrap_or("<closed>".into()),
            Quiet(c) => {
                let reply = conns[c].call(&["PING", "quiet"]);
                let ok = [&b"$5\r\nquiet\r\n"[..], b"*2\r\n$4\r\npong\r\n$5\r\nquiet\r\n"].contains(&&reply[..]);
                if ok {
                    "<quiet>".into()
                } else {
                    format!("<not quiet: {}>", String::from_utf8_lossy(&reply))
                }
            }
            Send(c, args) => {
                let args = subst(args);
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                conns[c].send(&args);
                "<sent>".into()
            }
            InfoUntil(c, field, want) => {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let info = String::from_utf8_lossy(&conns[c].call(&["INFO", "clients"])).into_owned();
                    if info.lines().any(|l| l == format!("{field}:{want}")) {
                        break "<reached>".into();
                    }
                    assert!(Instant::now() < deadline, "step {n}: INFO {field} never reached {want}");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            PollUntil(c, args, want) => {
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let reply = conns[c].call(args);
                    if reply == want.as_bytes() {
                        break "<reached>".into();
                    }
                    assert!(Instant::now() < deadline, "step {n}: {args:?} never answered {want:?}");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        out.push(text);
    }
    out
}

/// Runs `script` on redis-server and on a shard, in RESP2 and RESP3, and asserts the same frames.
fn differential(script: &[Step<'_>]) {
    let redis = RedisServer::start();
    let shard = Shard::start(&[]);
    let mut failures = Vec::new();
    for resp3 in [false, true] {
        Framed::connect(redis.port).call(&["FLUSHALL"]);
        Framed::connect(shard.port).call(&["FLUSHALL"]);
        let expected = run(redis.port, resp3, script);
        let got = run(shard.port, resp3, script);
        for (n, (e, g)) in expected.iter().zip(&got).enumerate() {
            if e != g {
                failures.push(format!(
                    "{} step {n} {:?}\n    redis-server: {e:?}\n    shard:        {g:?}",
                    if resp3 { "RESP3" } else { "RESP2" },
                    describe(&script[n])
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} frames differ:\n{}", failures.len(), failures.join("\n"));
}

fn describe(step: &Step<'_>) -> String {
    match step {
        Call(c, a) | CallIds(c, a) => format!("conn {c}: {}", a.join(" ")),
        Frame(c) => format!("conn {c}: next frame"),
        Quiet(c) => format!("conn {c}: nothing pending"),
        PollUntil(c, a, w) => format!("conn {c}: {} until {w:?}", a.join(" ")),
        Send(c, a) => format!("conn {c}: send {}", a.join(" ")),
        InfoUntil(c, f, w) => format!("conn {c}: INFO until {f}:{w}"),
    }
}

#[test]
fn transactions_queue_abort_and_run_as_redis() {
    differential(&[
        Call(0, &["MULTI"]),
        Call(0, &["MULTI"]),
        Call(0, &["WATCH", "a"]),
        Call(0, &["SET", "a", "1"]),
        Call(0, &["NOSUCH", "x"]),
        Call(0, &["GET"]),
        Call(0, &["EXEC"]),
        Call(0, &["GET", "a"]),
        Call(0, &["EXEC"]),
        Call(0, &["DISCARD"]),
        Call(0, &["MULTI"]),
        Call(0, &["SAVE"]),
        Call(0, &["SET", "a", "1"]),
        Call(0, &["EXEC"]),
        Call(0, &["MULTI"]),
        Call(0, &["SET", "a", "1"]),
        Call(0, &["INCR", "a"]),
        Call(0, &["LPUSH", "a", "x"]),
        Call(0, &["GET", "a"]),
        Call(0, &["EXEC"]),
        Call(0, &["MULTI"]),
        Call(0, &["SET", "{t}1", "x"]),
        Call(0, &["DBSIZE"]),
        Call(0, &["KEYS", "{t}*"]),
        Call(0, &["FLUSHALL"]),
        Call(0, &["DBSIZE"]),
        Call(0, &["EXEC"]),
        Call(0, &["MULTI"]),
        Call(0, &["EXEC"]),
        Call(0, &["MULTI"]),
        Call(0, &["PING"]),
        Call(0, &["DISCARD"]),
        Call(0, &["EXEC"]),
        // A transaction is atomic for the others: they read before or after, never half of it.
        Call(0, &["MULTI"]),
        Call(0, &["SET", "x", "1"]),
        Call(1, &["GET", "x"]),
        Call(0, &["SET", "y", "2"]),
        Call(1, &["MGET", "x", "y"]),
        Call(0, &["EXEC"]),
        Call(1, &["MGET", "x", "y"]),
    ]);
}

#[test]
fn watch_fails_exec_on_any_change_by_anyone() {
    differential(&[
        Call(1, &["SET", "k", "v0"]),
        // Another client's write.
        Call(0, &["WATCH", "k"]),
        Call(1, &["SET", "k", "v1"]),
        Call(0, &["MULTI"]),
        Call(0, &["SET", "k", "mine"]),
        Call(0, &["EXEC"]),
        Call(0, &["GET", "k"]),
        // No change: EXEC runs, and the watch is gone after it.
        Call(0, &["WATCH", "k"]),
        Call(0, &["MULTI"]),
        Call(0, &["SET", "k", "mine"]),
        Call(0, &["EXEC"]),
        Call(1, &["SET", "k", "v2"]),
        Call(0, &["MULTI"]),
        Call(0, &["GET", "k"]),
        Call(0, &["EXEC"]),
        // A write that changes nothing is no change.
        Call(0, &["WATCH", "k"]),
        Call(1, &["SETNX", "k", "other"]),
        Call(1, &["GET", "other"]),
        Call(0, &["MULTI"]),
        Call(0, &["GET", "k"]),
        Call(0, &["EXEC"]),
        // A key created, deleted, given a TTL, or flushed.
        Call(0, &["WATCH", "new"]),
        Call(1, &["SET", "new", "1"]),
        Call(0, &["MULTI"]),
        Call(0, &["EXEC"]),
        Call(0, &["WATCH", "new"]),
        Call(1, &["DEL", "new"]),
        Call(0, &["MULTI"]),
        Call(0, &["EXEC"]),
        Call(0, &["WATCH", "k"]),
        Call(1, &["EXPIRE", "k", "100"]),
        Call(0, &["MULTI"]),
        Call(0, &["EXEC"]),
        Call(0, &["WATCH", "k", "k2"]),
        Call(1, &["FLUSHALL"]),
        Call(0, &["MULTI"]),
        Call(0, &["EXEC"]),
        // UNWATCH and DISCARD forget the watches.
        Call(0, &["SET", "k", "1"]),
        Call(0, &["WATCH", "k"]),
        Call(0, &["UNWATCH"]),
        Call(1, &["SET", "k", "2"]),
        Call(0, &["MULTI"]),
        Call(0, &["INCR", "k"]),
        Call(0, &["EXEC"]),
        Call(0, &["WATCH", "k"]),
        Call(0, &["MULTI"]),
        Call(0, &["DISCARD"]),
        Call(1, &["SET", "k", "3"]),
        Call(0, &["MULTI"]),
        Call(0, &["INCR", "k"]),
        Call(0, &["EXEC"]),
        // A watched key that expires counts as changed.
        Call(1, &["SET", "e", "v", "PX", "150"]),
        Call(0, &["WATCH", "e"]),
        PollUntil(1, &["PTTL", "e"], ":-2\r\n"),
        Call(0, &["MULTI"]),
        Call(0, &["SET", "e", "late"]),
        Call(0, &["EXEC"]),
        Call(0, &["GET", "e"]),
    ]);
}

#[test]
fn pubsub_delivers_as_redis() {
    differential(&[
        Call(1, &["SUBSCRIBE", "a", "b"]),
        Frame(1),
        Call(1, &["PSUBSCRIBE", "a*"]),
        Call(0, &["PUBLISH", "a", "hi"]),
        Frame(1),
        Frame(1),
        Call(0, &["PUBLISH", "b", "x"]),
        Frame(1),
        Call(0, &["PUBLISH", "zz", "nobody"]),
        Quiet(1),
        Call(1, &["UNSUBSCRIBE", "a"]),
        Call(0, &["PUBLISH", "a", "pattern only"]),
        Frame(1),
        Call(1, &["GET", "a"]),
        Call(1, &["PING"]),
        Call(1, &["PING", "x"]),
        Call(0, &["PUBSUB", "NUMSUB", "a", "b", "c"]),
        Call(0, &["PUBSUB", "NUMPAT"]),
        Call(0, &["PUBSUB", "CHANNELS"]),
        Call(0, &["PUBSUB", "CHANNELS", "x*"]),
        Call(1, &["PUNSUBSCRIBE"]),
        Call(1, &["UNSUBSCRIBE"]),
        Call(1, &["UNSUBSCRIBE"]),
        Call(1, &["GET", "a"]),
        Call(0, &["PUBLISH", "b", "gone"]),
        Quiet(1),
        // Shard channels.
        Call(2, &["SSUBSCRIBE", "s1"]),
        Call(0, &["SPUBLISH", "s1", "m"]),
        Frame(2),
        Call(0, &["PUBLISH", "s1", "not a shard message"]),
        Call(0, &["PUBSUB", "SHARDCHANNELS"]),
        Call(0, &["PUBSUB", "SHARDNUMSUB", "s1"]),
        Call(2, &["SUNSUBSCRIBE", "s1"]),
        Call(2, &["SUNSUBSCRIBE"]),
        // RESET ends the subscriptions.
        Call(2, &["SUBSCRIBE", "r"]),
        Call(2, &["RESET"]),
        Call(0, &["PUBLISH", "r", "x"]),
        Call(0, &["PUBSUB", "HELP"]),
        Call(0, &["PUBSUB", "NOPE"]),
        Call(0, &["PUBSUB", "NUMPAT", "extra"]),
    ]);
}

#[test]
fn client_tracking_invalidates_as_redis() {
    differential(&[
        // RESP2 invalidations go to a connection subscribed to __redis__:invalidate; in RESP3 they are
        // pushes on the tracking connection itself. Connection 2 is that subscriber either way.
        Call(2, &["SUBSCRIBE", "__redis__:invalidate"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "REDIRECT", "{id2}"]),
        CallIds(0, &["CLIENT", "GETREDIR"]),
        CallIds(0, &["CLIENT", "TRACKINGINFO"]),
        Call(1, &["SET", "k", "v"]),
        Call(0, &["GET", "k"]),
        Call(1, &["SET", "k", "w"]),
        Frame(2),
        // Not read again since: no second invalidation.
        Call(1, &["SET", "k", "x"]),
        Quiet(2),
        Call(0, &["MGET", "k", "k2"]),
        Call(1, &["DEL", "k2"]),
        Quiet(2),
        Call(1, &["SET", "k2", "1"]),
        Frame(2),
        Call(1, &["EXPIRE", "k", "100"]),
        Frame(2),
        Call(0, &["GET", "k"]),
        Call(1, &["FLUSHALL"]),
        Frame(2),
        Call(0, &["CLIENT", "TRACKING", "OFF"]),
        CallIds(0, &["CLIENT", "GETREDIR"]),
        CallIds(0, &["CLIENT", "TRACKINGINFO"]),
        // BCAST: every key under a prefix, read or not.
        Call(0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "REDIRECT", "{id2}"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "us", "REDIRECT", "{id2}"]),
        Call(1, &["SET", "user:1", "a"]),
        Frame(2),
        Call(1, &["SET", "other", "a"]),
        Quiet(2),
        Call(0, &["CLIENT", "TRACKING", "OFF"]),
        // OPTIN: only keys read right after CLIENT CACHING YES.
        Call(0, &["CLIENT", "CACHING", "YES"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "OPTIN", "REDIRECT", "{id2}"]),
        Call(0, &["GET", "o1"]),
        Call(0, &["CLIENT", "CACHING", "YES"]),
        Call(0, &["GET", "o2"]),
        Call(1, &["MSET", "o1", "1", "o2", "2"]),
        Frame(2),
        Quiet(2),
        Call(0, &["CLIENT", "CACHING", "NO"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "OPTOUT"]),
        Call(0, &["CLIENT", "TRACKING", "OFF"]),
        // NOLOOP: a client's own writes do not invalidate for it.
        Call(0, &["CLIENT", "TRACKING", "ON", "NOLOOP", "REDIRECT", "{id2}"]),
        Call(0, &["GET", "n"]),
        Call(0, &["SET", "n", "mine"]),
        Quiet(2),
        Call(0, &["GET", "n"]),
        Call(1, &["SET", "n", "theirs"]),
        Frame(2),
        Call(0, &["CLIENT", "TRACKING", "OFF"]),
        // Errors.
        Call(0, &["CLIENT", "TRACKING", "ON", "PREFIX", "a"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"]),
        Call(0, &["CLIENT", "TRACKING", "ON", "REDIRECT", "99999"]),
        Call(0, &["CLIENT", "TRACKING", "MAYBE"]),
        Call(0, &["CLIENT", "TRACKING"]),
        Call(0, &["CLIENT", "CACHING"]),
        Call(0, &["CLIENT", "CACHING", "YES"]),
    ]);
}

/// In RESP3 a tracking client gets its invalidations itself, as pushes between its replies.
#[test]
fn resp3_tracking_pushes_reach_the_tracking_connection() {
    let redis = RedisServer::start();
    let shard = Shard::start(&[]);
    let script = [
        Call(0, &["CLIENT", "TRACKING", "ON"]),
        Call(0, &["GET", "k"]),
        Call(1, &["SET", "k", "1"]),
        Frame(0),
        Call(0, &["GET", "k"]),
        Call(1, &["SET", "k", "2"]),
        Call(0, &["GET", "k"]),
        Call(0, &["GET", "k"]),
        Call(1, &["FLUSHALL"]),
        Frame(0),
        Quiet(0),
    ];
    let expected = run(redis.port, true, &script);
    let got = run(shard.port, true, &script);
    assert_eq!(got, expected);
    assert!(expected[3].starts_with(">2\r\n$10\r\ninvalidate\r\n"), "{expected:?}");
}

/// Two clients increment one counter with the optimistic-locking recipe (WATCH, GET, MULTI, SET, EXEC,
/// retry on a null EXEC): with WATCH and EXEC right, no increment is lost.
#[test]
fn watch_races_between_two_clients_lose_no_update() {
    let shard = Shard::start(&[]);
    const PER_CLIENT: usize = 300;
    let port = shard.port;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Framed::connect(port);
                let mut retries = 0;
                for _ in 0..PER_CLIENT {
                    loop {
                        assert_eq!(&c.call(&["WATCH", "counter"])[..], b"+OK\r\n");
                        let current = c.call(&["GET", "counter"]);
                        let n: i64 = if &current[..] == b"$-1\r\n" {
                            0
                        } else {
                            let text = String::from_utf8_lossy(&current);
                            text.lines().nth(1).unwrap().parse().unwrap()
                        };
                        c.call(&["MULTI"]);
                        c.call(&["SET", "counter", &(n + 1).to_string()]);
                        let exec = c.call(&["EXEC"]);
                        if &exec[..] == b"*1\r\n+OK\r\n" {
                            break;
                        }
                        assert_eq!(&exec[..], b"*-1\r\n", "EXEC either runs or is refused");
                        retries += 1;
                    }
                }
                retries
            })
        })
        .collect();
    let retries: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let mut c = Framed::connect(port);
    assert_eq!(&c.call(&["GET", "counter"])[..], format!("$3\r\n{}\r\n", 2 * PER_CLIENT).as_bytes());
    eprintln!("{retries} transactions were retried after a conflicting write");
}

/// A subscriber that stops reading is disconnected once its unsent messages pass the output limit; the
/// publisher is never held up, and another subscriber receives every message.
#[test]
fn a_slow_subscriber_is_disconnected_and_the_others_get_everything() {
    let shard = Shard::start(&["--client-output-buffer-limit-pubsub", "1mb 0 0"]);
    let mut slow = Framed::connect(shard.port);
    slow.call(&["SUBSCRIBE", "feed"]);
    let reader_port = shard.port;
    const MESSAGES: usize = 3000;
    let payload = "x".repeat(4096);
    let reader = std::thread::spawn(move || {
        let mut fast = Framed::connect(reader_port);
        fast.call(&["SUBSCRIBE", "feed"]);
        let mut got = 0;
        while got < MESSAGES {
            let frame = fast.frame().expect("the reading subscriber stays connected");
            assert!(frame.starts_with(b"*3\r\n$7\r\nmessage\r\n"), "{:?}", String::from_utf8_lossy(&frame[..40]));
            got += 1;
        }
        got
    });
    let mut publisher = Framed::connect(shard.port);
    // Wait until both subscriptions are in.
    let deadline = Instant::now() + Duration::from_secs(10);
    while &publisher.call(&["PUBSUB", "NUMSUB", "feed"])[..] != b"*2\r\n$4\r\nfeed\r\n:2\r\n" {
        assert!(Instant::now() < deadline, "subscribers never registered");
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..MESSAGES {
        let reply = publisher.call(&["PUBLISH", "feed", &payload]);
        assert!(&reply[..] == b":2\r\n" || &reply[..] == b":1\r\n", "{reply:?}");
    }
    assert_eq!(reader.join().unwrap(), MESSAGES);
    // The slow one: whatever the kernel buffered, then the end of the connection, well before all 12 MB.
    let mut received = 0;
    while slow.frame().is_some() {
        received += 1;
    }
    assert!(received < MESSAGES, "the slow subscriber was never cut off ({received} messages)");
    let mut info = shard.client();
    support::poll_until("the slow subscriber is gone", || shard.info_field(&mut info, "pubsub_clients") == 0);
}

#[test]
fn transaction_and_subscription_limits_hold_at_their_edge() {
    let shard = Shard::start(&["--multi-max-commands", "3", "--multi-max-bytes", "40", "--max-subscriptions", "2"]);
    let mut c = Framed::connect(shard.port);
    c.call(&["MULTI"]);
    for k in ["a", "b", "c"] {
        assert_eq!(&c.call(&["SET", k, "1"])[..], b"+QUEUED\r\n");
    }
    let refused = c.call(&["SET", "d", "1"]);
    assert!(refused.starts_with(b"-ERR Transaction too large"), "{:?}", String::from_utf8_lossy(&refused));
    assert_eq!(&c.call(&["EXEC"])[..], b"-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(&c.call(&["DBSIZE"])[..], b":0\r\n", "a refused transaction runs none of its commands");
    // 40 bytes of arguments: "SET" "k" + 36 bytes fits exactly, one more byte does not.
    c.call(&["MULTI"]);
    assert_eq!(&c.call(&["SET", "k", &"v".repeat(36)])[..], b"+QUEUED\r\n");
    assert!(c.call(&["PING"]).starts_with(b"-ERR Transaction too large"));
    c.call(&["DISCARD"]);
    c.call(&["MULTI"]);
    assert!(c.call(&["SET", "k", &"v".repeat(37)]).starts_with(b"-ERR Transaction too large"));
    c.call(&["DISCARD"]);
    // Two subscriptions, not three; subscribing again to one held is no new subscription.
    let mut s = Framed::connect(shard.port);
    s.call(&["HELLO", "3"]);
    assert_eq!(&s.call(&["SUBSCRIBE", "a"])[..], b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(&s.call(&["PSUBSCRIBE", "p*"])[..], b">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n");
    let refused = s.call(&["SUBSCRIBE", "c"]);
    assert!(refused.starts_with(b"-ERR too many subscriptions"), "{:?}", String::from_utf8_lossy(&refused));
    assert_eq!(&s.call(&["SUBSCRIBE", "a"])[..], b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n");
    assert_eq!(&s.call(&["UNSUBSCRIBE", "a"])[..], b">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(&s.call(&["SUBSCRIBE", "c"])[..], b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:2\r\n");
}

/// A connection that goes away in the middle of a transaction, with watches, subscriptions and tracking
/// on, leaves nothing behind on the shard.
#[test]
fn a_client_that_disconnects_leaves_nothing_behind() {
    let shard = Shard::start(&[]);
    let mut info = shard.client();
    {
        let mut gone = Framed::connect(shard.port);
        gone.call(&["HELLO", "3"]);
        gone.call(&["WATCH", "w1", "w2"]);
        gone.call(&["CLIENT", "TRACKING", "ON"]);
        gone.call(&["GET", "t"]);
        gone.call(&["SUBSCRIBE", "ch"]);
        gone.call(&["PSUBSCRIBE", "p*"]);
        gone.call(&["MULTI"]);
        gone.call(&["SET", "w1", "never"]);
        assert_eq!(shard.info_field(&mut info, "watching_clients"), 1);
        assert_eq!(shard.info_field(&mut info, "tracking_clients"), 1);
        assert_eq!(shard.info_field(&mut info, "tracking_total_keys"), 1);
        assert_eq!(shard.info_field(&mut info, "pubsub_clients"), 1);
    }
    for field in [
        "watching_clients",
        "total_watched_keys",
        "tracking_clients",
        "tracking_total_keys",
        "pubsub_clients",
        "pubsub_channels",
        "pubsub_patterns",
    ] {
        support::poll_until(&format!("{field} is 0"), || shard.info_field(&mut info, field) == 0);
    }
    let mut c = Framed::connect(shard.port);
    assert_eq!(&c.call(&["GET", "w1"])[..], b"$-1\r\n", "the queued SET never ran");
    assert_eq!(&c.call(&["PUBLISH", "ch", "x"])[..], b":0\r\n");
}

#[test]
fn scripts_run_and_fail_as_redis() {
    differential(&[
        Call(0, &["SCRIPT", "FLUSH"]),
        Call(0, &["EVAL", "return 1", "0"]),
        Call(0, &["EVAL", "return x", "0"]),
        Call(0, &["EVAL", "x = 1", "0"]),
        Call(0, &["EVAL", "string.len = nil", "0"]),
        Call(0, &["EVAL", "return redis.call('nosuch')", "0"]),
        Call(0, &["EVAL", "return redis.call('get')", "0"]),
        Call(0, &["EVAL", "return redis.pcall('nosuch')", "0"]),
        Call(0, &["EVAL", "redis.call('set','s','x') return redis.call('incr','s')", "0"]),
        Call(0, &["EVAL", "return redis.pcall('incr','s')", "0"]),
        Call(0, &["EVAL", "return {1,2,{3,'a'},nil,5}", "0"]),
        Call(0, &["EVAL", "return {ok='fine'}", "0"]),
        Call(0, &["EVAL", "return {err='bad thing'}", "0"]),
        Call(0, &["EVAL", "return redis.error_reply('My Error')", "0"]),
        Call(0, &["EVAL", "return redis.status_reply('STAT')", "0"]),
        Call(0, &["EVAL", "return true", "0"]),
        Call(0, &["EVAL", "return false", "0"]),
        Call(0, &["EVAL", "return 3.99", "0"]),
        Call(0, &["EVAL", "return nil", "0"]),
        Call(0, &["EVAL", "return KEYS[1]..ARGV[1]", "1", "k", "a"]),
        Call(0, &["EVAL", "return redis.call('get', KEYS[1])", "1", "nokey"]),
        Call(0, &["EVAL", "return redis.sha1hex('')", "0"]),
        Call(0, &["EVAL", "error('boom')", "0"]),
        Call(0, &["EVAL", "\n\nerror({err='X custom'})", "0"]),
        Call(0, &["EVAL", "return 1", "-1"]),
        Call(0, &["EVAL", "return 1", "5", "a"]),
        Call(0, &["EVAL", "return 1", "x"]),
        Call(0, &["EVAL", "return (", "0"]),
        Call(0, &["SCRIPT", "LOAD", "return 1"]),
        Call(0, &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]),
        Call(0, &["EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"]),
        Call(0, &["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "ffff"]),
        Call(0, &["EVAL_RO", "return redis.call('set','a','b')", "0"]),
        Call(0, &["EVAL_RO", "return redis.call('get','a')", "0"]),
        Call(0, &["EVAL", "return redis.call('subscribe','a')", "0"]),
        Call(0, &["EVAL", "return redis.call('eval','return 1','0')", "0"]),
        Call(0, &["EVAL", "return cjson.encode({1,2,{a=1}})", "0"]),
        Call(0, &["EVAL", "return cjson.decode('[1,2,{\"a\":1}]')[3].a", "0"]),
        Call(0, &["EVAL", "return cjson.encode(cjson.decode('{\"k\":[true,false,null,1.5]}'))", "0"]),
        Call(0, &["EVAL", "return bit.band(7,3) + bit.bor(1,2) + bit.bxor(5,1)", "0"]),
        Call(0, &["EVAL", "return bit.tohex(65535)", "0"]),
        Call(0, &["EVAL", "return struct.pack('>I2',258)", "0"]),
        Call(0, &["EVAL", "return {struct.unpack('<hB', struct.pack('<hB', -2, 255))}", "0"]),
        Call(0, &["EVAL", "return cmsgpack.pack({1,2,'three',{a=1}})", "0"]),
        Call(0, &["EVAL", "return cmsgpack.unpack(cmsgpack.pack({1,2,3}))", "0"]),
        Call(0, &["EVAL", "return type(os)", "0"]),
        Call(0, &["EVAL", "return type(io)", "0"]),
        Call(0, &["EVAL", "return type(loadstring)", "0"]),
        Call(0, &["EVAL", "return type(print)", "0"]),
        Call(0, &["EVAL", "return redis.setresp(3)", "0"]),
        Call(0, &["EVAL", "return redis.setresp(4)", "0"]),
        Call(0, &["EVAL", "redis.setresp(3) return redis.call('hgetall','nohash')", "0"]),
        Call(0, &["HSET", "h", "f", "v"]),
        Call(0, &["EVAL", "redis.setresp(3) return redis.call('hgetall','h')", "0"]),
        Call(0, &["EVAL", "return redis.call('hgetall','h')", "0"]),
        Call(0, &["EVAL", "redis.setresp(3) return redis.call('zscore','nozset','m')", "0"]),
        Call(0, &["EVAL", "redis.setresp(3) return true", "0"]),
        Call(0, &["EVAL", "return {double=3.5}", "0"]),
        Call(0, &["EVAL", "return {map={a=1}}", "0"]),
        Call(0, &["EVAL", "return {set={a=true}}", "0"]),
        Call(0, &["EVAL", "return redis.call('set', 'n', 3.0)", "0"]),
        Call(0, &["EVAL", "return redis.call('get', 'n')", "0"]),
        Call(0, &["EVAL", "return redis.call()", "0"]),
        Call(0, &["EVAL", "return redis.call({})", "0"]),
        Call(0, &["EVAL", "#!lua flags=no-writes\nreturn redis.call('set','a','b')", "0"]),
        Call(0, &["EVAL", "#!lua\nreturn 7", "0"]),
        Call(0, &["EVAL", "#!python\nreturn 7", "0"]),
        Call(0, &["EVAL", "#!lua flags=bogus\nreturn 7", "0"]),
        Call(0, &["EVAL", "#!lua", "0"]),
        // Scripts in a transaction.
        Call(0, &["MULTI"]),
        Call(0, &["EVAL", "return redis.call('incr', KEYS[1])", "1", "ctr"]),
        Call(0, &["EVAL", "return redis.call('incr', KEYS[1])", "1", "ctr"]),
        Call(0, &["EXEC"]),
        Call(0, &["SCRIPT", "FLUSH"]),
        Call(0, &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]),
        Call(0, &["SCRIPT", "KILL"]),
        Call(0, &["SCRIPT", "NOPE"]),
    ]);
}

/// A script past --lua-time-limit makes the shard busy: other clients get -BUSY, SCRIPT KILL stops it, and
/// a script that already wrote cannot be killed.
#[test]
fn busy_scripts_answer_busy_and_can_be_killed_until_they_write() {
    let shard = Shard::start(&["--lua-time-limit", "200ms"]);
    let port = shard.port;
    let busy_until = |other: &mut Framed| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = other.call(&["GET", "k"]);
            if reply.starts_with(b"-BUSY") {
                return;
            }
            assert!(Instant::now() < deadline, "never busy: {:?}", String::from_utf8_lossy(&reply));
        }
    };
    let runner = std::thread::spawn(move || Framed::connect(port).call(&["EVAL", "while true do end", "0"]));
    let mut other = Framed::connect(port);
    busy_until(&mut other);
    assert_eq!(&other.call(&["SCRIPT", "KILL"])[..], b"+OK\r\n");
    let ended = runner.join().unwrap();
    assert!(
        ended.starts_with(b"-ERR Script killed by user with SCRIPT KILL..."),
        "{:?}",
        String::from_utf8_lossy(&ended)
    );
    assert_eq!(&other.call(&["SET", "k", "after"])[..], b"+OK\r\n");
    // One that wrote: UNKILLABLE, then it runs to its end.
    let runner = std::thread::spawn(move || {
        let script = "redis.call('set', 'w', 'x') local t = redis.call('time') \
                      local stop = tonumber(t[1]) + 1 while tonumber(redis.call('time')[1]) <= stop do end return 'done'";
        Framed::connect(port).call(&["EVAL", script, "0"])
    });
    busy_until(&mut other);
    let refused = other.call(&["SCRIPT", "KILL"]);
    assert!(refused.starts_with(b"-UNKILLABLE"), "{:?}", String::from_utf8_lossy(&refused));
    assert_eq!(&runner.join().unwrap()[..], b"$4\r\ndone\r\n");
    assert_eq!(&other.call(&["GET", "w"])[..], b"$1\r\nx\r\n");
    assert_eq!(&other.call(&["SCRIPT", "KILL"])[..], b"-NOTBUSY No scripts in execution right now.\r\n");
}

/// The Lua state's memory is bounded by --lua-memory-limit: a script that needs more fails, and the next
/// one runs.
#[test]
fn a_script_that_needs_too_much_memory_fails_and_the_next_runs() {
    let shard = Shard::start(&["--lua-memory-limit", "4mb"]);
    let mut c = Framed::connect(shard.port);
    let failed = c.call(&["EVAL", "local t = {} for i = 1, 1e7 do t[i] = i end return #t", "0"]);
    assert!(failed.starts_with(b"-ERR") && String::from_utf8_lossy(&failed).contains("memory"), "{failed:?}");
    assert_eq!(&c.call(&["EVAL", "local t = {} for i = 1, 1000 do t[i] = i end return #t", "0"])[..], b":1000\r\n");
}

#[test]
fn blocking_commands_answer_and_wake_as_redis() {
    differential(&[
        Call(0, &["BLPOP", "l1", "l2", "0.05"]),
        Call(0, &["RPUSH", "l2", "a", "b", "c"]),
        Call(0, &["BLPOP", "l1", "l2", "0"]),
        Call(0, &["BRPOP", "l2", "0"]),
        Call(0, &["BLMPOP", "0.05", "2", "l1", "l2", "LEFT", "COUNT", "5"]),
        Call(0, &["BLMPOP", "0.05", "2", "nol1", "nol2", "LEFT"]),
        Call(0, &["BLPOP", "l", "-1"]),
        Call(0, &["BLPOP", "l", "abc"]),
        Call(0, &["BLPOP", "l", "0.5x"]),
        Call(0, &["ZADD", "z", "1", "a", "2", "b"]),
        Call(0, &["BZPOPMIN", "z", "0"]),
        Call(0, &["BZPOPMAX", "z", "0"]),
        Call(0, &["BZPOPMIN", "z", "0.05"]),
        Call(0, &["BZMPOP", "0.05", "1", "z", "MIN"]),
        Call(0, &["ZADD", "z", "1", "a", "2", "b"]),
        Call(0, &["BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"]),
        Call(0, &["RPUSH", "src", "x"]),
        Call(0, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]),
        Call(0, &["BRPOPLPUSH", "dst", "src", "0"]),
        Call(0, &["BLMOVE", "nosrc", "dst", "LEFT", "RIGHT", "0.05"]),
        Call(0, &["BLMOVE", "a", "b", "UP", "RIGHT", "0"]),
        Call(0, &["SET", "s", "str"]),
        Call(0, &["BLPOP", "s", "0"]),
        // Inside MULTI nothing blocks.
        Call(0, &["MULTI"]),
        Call(0, &["BLPOP", "nope", "0"]),
        Call(0, &["BLMOVE", "nope", "dst", "LEFT", "LEFT", "0"]),
        Call(0, &["BZPOPMIN", "nope", "0"]),
        Call(0, &["EXEC"]),
        // A push wakes a blocked client, on any connection.
        Send(1, &["BLPOP", "q", "0"]),
        InfoUntil(0, "blocked_clients", "1"),
        Call(0, &["LPUSH", "q", "v"]),
        Frame(1),
        Call(0, &["EXISTS", "q"]),
        // A zset too, and BLMOVE, and a move that feeds another blocked client.
        Send(1, &["BZPOPMIN", "zq", "0"]),
        InfoUntil(0, "blocked_clients", "1"),
        Call(0, &["ZADD", "zq", "5", "m"]),
        Frame(1),
        Send(1, &["BLPOP", "moved", "0"]),
        Send(2, &["BLMOVE", "from", "moved", "LEFT", "LEFT", "0"]),
        InfoUntil(0, "blocked_clients", "2"),
        Call(0, &["RPUSH", "from", "e"]),
        Frame(2),
        Frame(1),
        Call(0, &["EXISTS", "from", "moved"]),
        // A transaction that pushes and pops leaves nothing: the blocked client keeps waiting.
        Send(1, &["BLPOP", "t", "0"]),
        InfoUntil(0, "blocked_clients", "1"),
        Call(0, &["MULTI"]),
        Call(0, &["LPUSH", "t", "x"]),
        Call(0, &["LPOP", "t"]),
        Call(0, &["EXEC"]),
        Call(0, &["MULTI"]),
        Call(0, &["LPUSH", "t", "y", "z"]),
        Call(0, &["EXEC"]),
        Frame(1),
        Call(0, &["LRANGE", "t", "0", "-1"]),
        // CLIENT UNBLOCK, as a timeout and as an error.
        Send(1, &["BLPOP", "u", "0"]),
        InfoUntil(0, "blocked_clients", "1"),
        Call(0, &["CLIENT", "UNBLOCK", "{id1}"]),
        Frame(1),
        Send(1, &["BLPOP", "u", "0"]),
        InfoUntil(0, "blocked_clients", "1"),
        Call(0, &["CLIENT", "UNBLOCK", "{id1}", "ERROR"]),
        Frame(1),
        Call(0, &["CLIENT", "UNBLOCK", "{id1}"]),
        Call(0, &["CLIENT", "UNBLOCK", "x"]),
        Call(0, &["CLIENT", "UNBLOCK", "{id1}", "MAYBE"]),
    ]);
}

/// 100 clients blocked on one list are served in the order they blocked, one element each, as the
/// elements are pushed one at a time.
#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let shard = Shard::start(&[]);
    let mut waiters: Vec<Framed> = Vec::new();
    let mut control = Framed::connect(shard.port);
    for i in 0..100 {
        let mut w = Framed::connect(shard.port);
        w.call(&["CLIENT", "SETNAME", &format!("w{i}")]);
        w.send(&[b"BLPOP", b"fifo", b"0"]);
        waiters.push(w);
        // Each one blocks before the next, so their order is known.
        let want = format!("blocked_clients:{}", i + 1);
        support::poll_until("the client blocks", || {
            String::from_utf8_lossy(&control.call(&["INFO", "clients"])).lines().any(|l| l == want)
        });
    }
    for i in 0..100 {
        control.call(&["RPUSH", "fifo", &format!("e{i}")]);
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        let reply = w.frame().expect("served");
        let want = format!("*2\r\n$4\r\nfifo\r\n${}\r\ne{i}\r\n", format!("e{i}").len());
        assert_eq!(String::from_utf8_lossy(&reply), want, "client {i}");
    }
    assert_eq!(&control.call(&["EXISTS", "fifo"])[..], b":0\r\n");
}

/// Timeouts end a wait (fractional seconds), a client that disconnects while blocked takes nothing with
/// it, and nothing is left registered.
#[test]
fn blocking_timeouts_and_disconnects() {
    let shard = Shard::start(&[]);
    let mut c = Framed::connect(shard.port);
    let started = Instant::now();
    assert_eq!(&c.call(&["BLPOP", "none", "0.3"])[..], b"*-1\r\n");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(290), "returned after {waited:?}");
    {
        let mut gone = Framed::connect(shard.port);
        gone.send(&[b"BLPOP", b"kept", b"0"]);
        support::poll_until("the client blocks", || {
            String::from_utf8_lossy(&c.call(&["INFO", "clients"])).lines().any(|l| l == "blocked_clients:1")
        });
    }
    support::poll_until("the disconnected client is forgotten", || {
        String::from_utf8_lossy(&c.call(&["INFO", "clients"])).lines().any(|l| l == "blocked_clients:0")
    });
    assert_eq!(&c.call(&["RPUSH", "kept", "v"])[..], b":1\r\n");
    assert_eq!(&c.call(&["LRANGE", "kept", "0", "-1"])[..], b"*1\r\n$1\r\nv\r\n", "nobody took it");
    assert!(String::from_utf8_lossy(&c.call(&["INFO", "clients"])).contains("total_blocking_keys:0"));
}

/// WAIT with no replicas: 0 at once when none are wanted or inside MULTI, else 0 after the timeout (as
/// redis-server without replicas); a client that leaves while waiting is gone, and the others were served.
#[test]
fn wait_for_replicas_times_out_with_zero() {
    let shard = Shard::start(&[]);
    let redis = RedisServer::start();
    for port in [shard.port, redis.port] {
        let mut c = Framed::connect(port);
        assert_eq!(&c.call(&["WAIT", "0", "0"])[..], b":0\r\n");
        let started = Instant::now();
        assert_eq!(&c.call(&["WAIT", "1", "300"])[..], b":0\r\n");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(290), "port {port}: returned after {waited:?}");
        assert_eq!(&c.call(&["MULTI"])[..], b"+OK\r\n");
        assert_eq!(&c.call(&["WAIT", "1", "0"])[..], b"+QUEUED\r\n");
        assert_eq!(&c.call(&["EXEC"])[..], b"*1\r\n:0\r\n");
        let clients = |c: &mut Framed| {
            String::from_utf8_lossy(&c.call(&["INFO", "clients"]))
                .lines()
                .find_map(|l| l.strip_prefix("connected_clients:").map(str::to_string))
                .unwrap()
        };
        let before = clients(&mut c);
        {
            let mut gone = Framed::connect(port);
            gone.send(&[b"WAIT", b"1", b"0"]);
            let mut other = Framed::connect(port);
            assert_eq!(&other.call(&["PING"])[..], b"+PONG\r\n");
        }
        support::poll_until("the waiting client is gone", || clients(&mut c) == before);
    }
}
