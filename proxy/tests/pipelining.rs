//! Through the proxy: many clients pipelining at once, huge multi-key commands, inline commands, protocol
//! errors, connection and size limits, and SIGTERM with a pipeline in flight.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ringcache_common::hash::KeyHash;
use ringcache_proxy::ring::{Member, Ring};
use support::{cluster_of_shards, reply_end, start_proxy, start_shard, Proc};

/// These tests are about ordering and limits, not timeouts: a generous --timeout keeps a busy machine from
/// turning slow replies into errors.
const PATIENT: [&str; 2] = ["--timeout", "10s"];

// ---------------------------------------------------------------------------------------------------------
// RESP helpers (raw bytes, so the tests see exactly what the proxy sends).

use ringcache_testkit::resp as cmd;

fn cmd_s(args: &[&str]) -> Vec<u8> {
    cmd(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>())
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

const OK: &[u8] = b"+OK\r\n";
const NIL: &[u8] = b"$-1\r\n";

/// Splits `buf` into whole replies; the second value is the length of a trailing incomplete reply.
fn split_replies(buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match reply_end(buf, at) {
            Some(end) => {
                out.push(&buf[at..end]);
                at = end;
            }
            None => break,
        }
    }
    (out, buf.len() - at)
}

/// Reads until `n` whole replies are in, the peer closes, or `deadline` (which fails the test). Returns the
/// bytes and whether the peer closed the connection.
fn read_replies(s: &mut TcpStream, n: usize, deadline: Instant) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let (mut parsed, mut count) = (0, 0);
    loop {
        while count < n {
            match reply_end(&buf, parsed) {
                Some(end) if parsed < buf.len() => {
                    parsed = end;
                    count += 1;
                }
                _ => break,
            }
        }
        if count >= n {
            return (buf, false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out with {count} of {n} replies: {:?}", tail(&buf));
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return (buf, true),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (buf, true),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Reads until the peer closes (or `deadline`, which fails the test).
fn read_to_close(s: &mut TcpStream, deadline: Instant) -> Vec<u8> {
    let (buf, closed) = read_replies(s, usize::MAX, deadline);
    assert!(closed);
    buf
}

fn tail(buf: &[u8]) -> String {
    String::from_utf8_lossy(&buf[buf.len().saturating_sub(300)..]).into_owned()
}

fn connect(p: &Proc) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", p.port)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `req` and returns the one reply (within 5 s).
fn call(s: &mut TcpStream, req: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    let (buf, _) = read_replies(s, 1, Instant::now() + Duration::from_secs(5));
    buf
}

/// Compares replies one by one so a failure names the first request that went wrong.
fn assert_replies(got: &[u8], expected: &[Vec<u8>], requests: &[String], who: &str) {
    let (replies, partial) = split_replies(got);
    for (i, (g, e)) in replies.iter().zip(expected).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(e),
            "{who}: reply {i} to {} is wrong",
            requests.get(i).map_or("?", String::as_str)
        );
    }
    assert_eq!(partial, 0, "{who}: trailing partial reply");
    assert_eq!(replies.len(), expected.len(), "{who}: reply count");
}

/// The ring the proxy builds for shards s1..s3.
fn ring() -> Ring {
    let members: Vec<Member> = ["s1", "s2", "s3"].iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect();
    Ring::new(&members, KeyHash::Fnv1a_64)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

// ---------------------------------------------------------------------------------------------------------

/// 20 clients at once, each pipelining 1,000 mixed commands in one write: every client gets all its replies,
/// in order, and right. Keys private to a client (strings and counters) make every reply computable; keys
/// shared by all clients are only read.
#[test]
fn concurrent_clients_get_ordered_correct_replies_on_one_worker() {
    concurrent_clients_get_ordered_correct_replies(&["--threads", "1"]);
}

/// More workers than this machine's cores: the 20 clients are dealt over three threads, each with its own
/// connections to every shard.
#[test]
fn concurrent_clients_get_ordered_correct_replies_on_three_workers() {
    concurrent_clients_get_ordered_correct_replies(&["--threads", "3"]);
}

fn concurrent_clients_get_ordered_correct_replies(threads: &[&str]) {
    const CLIENTS: usize = 20;
    const COMMANDS: usize = 1000;
    let cluster = cluster_of_shards(&[PATIENT[0], PATIENT[1], threads[0], threads[1]]);
    let ring = ring();

    // Shared read-only keys, written before the clients start.
    let shared: Vec<(String, String)> = (0..12).map(|i| (format!("{i}:shared"), format!("shared-value-{i}"))).collect();
    let mut setup = connect(&cluster.proxy);
    for (k, v) in &shared {
        assert_eq!(call(&mut setup, &cmd_s(&["SET", k, v])), OK);
    }
    let private_keys = |c: usize| -> (Vec<String>, Vec<String>) {
        ((0..8).map(|j| format!("{j}:c{c}:str")).collect(), (0..4).map(|j| format!("{j}:c{c}:ctr")).collect())
    };
    let mut owners = [0usize; 3];
    for c in 0..CLIENTS {
        let (strings, counters) = private_keys(c);
        for k in strings.iter().chain(&counters).chain(shared.iter().map(|(k, _)| k)) {
            owners[ring.owner(k.as_bytes()).unwrap()] += 1;
        }
    }
    assert!(owners.iter().all(|&n| n > CLIENTS), "keys do not spread over every shard: {owners:?}");

    let port = cluster.proxy.port;
    let shared_ref = &shared;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                scope.spawn(move || {
                    let (strings, counters) = private_keys(c);
                    let mut model: HashMap<String, Vec<u8>> = HashMap::new();
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (c as u64 + 1));
                    let mut wire = Vec::new();
                    let mut expected = Vec::new();
                    let mut names = Vec::new();
                    let any_key = |rng: &mut Rng| -> String {
                        match rng.below(3) {
                            0 => counters[rng.below(counters.len())].clone(),
                            1 => shared_ref[rng.below(shared_ref.len())].0.clone(),
                            _ => strings[rng.below(strings.len())].clone(),
                        }
                    };
                    for n in 0..COMMANDS {
                        let (req, exp) = match rng.below(6) {
                            0 | 1 => {
                                let k = strings[rng.below(strings.len())].clone();
                                let v = format!("v{c}-{n}-{}", "x".repeat(rng.below(40)));
                                model.insert(k.clone(), v.clone().into_bytes());
                                (vec![b"SET".to_vec(), k.into_bytes(), v.into_bytes()], OK.to_vec())
                            }
                            2 => {
                                let k = any_key(&mut rng);
                                let exp = match shared_ref.iter().find(|(s, _)| *s == k) {
                                    Some((_, v)) => bulk(v.as_bytes()),
                                    None => model.get(&k).map_or(NIL.to_vec(), |v| bulk(v)),
                                };
                                (vec![b"GET".to_vec(), k.into_bytes()], exp)
                            }
                            3 => {
                                let k = counters[rng.below(counters.len())].clone();
                                let next = model
                                    .get(&k)
                                    .map_or(0, |v| std::str::from_utf8(v).unwrap().parse::<i64>().unwrap())
                                    + 1;
                                model.insert(k.clone(), next.to_string().into_bytes());
                                (vec![b"INCR".to_vec(), k.into_bytes()], int(next))
                            }
                            4 => {
                                // DEL of private keys only (a client must not delete the shared ones).
                                let mut args = vec![b"DEL".to_vec()];
                                let mut gone = 0;
                                for _ in 0..1 + rng.below(4) {
                                    let k = if rng.below(2) == 0 {
                                        counters[rng.below(counters.len())].clone()
                                    } else {
                                        strings[rng.below(strings.len())].clone()
                                    };
                                    if model.remove(&k).is_some() {
                                        gone += 1;
                                    }
                                    args.push(k.into_bytes());
                                }
                                (args, int(gone))
                            }
                            _ => {
                                let count = 1 + rng.below(8);
                                let mut args = vec![b"MGET".to_vec()];
                                let mut exp = format!("*{count}\r\n").into_bytes();
                                for _ in 0..count {
                                    let k = any_key(&mut rng);
                                    exp.extend(match shared_ref.iter().find(|(s, _)| *s == k) {
                                        Some((_, v)) => bulk(v.as_bytes()),
                                        None => model.get(&k).map_or(NIL.to_vec(), |v| bulk(v)),
                                    });
                                    args.push(k.into_bytes());
                                }
                                (args, exp)
                            }
                        };
                        let refs: Vec<&[u8]> = req.iter().map(Vec::as_slice).collect();
                        wire.extend(cmd(&refs));
                        names.push(req.iter().map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" "));
                        expected.push(exp);
                    }
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let mut w = s.try_clone().unwrap();
                    let writer = std::thread::spawn(move || w.write_all(&wire));
                    let (got, closed) = read_replies(&mut s, COMMANDS, Instant::now() + Duration::from_secs(15));
                    writer.join().unwrap().unwrap();
                    assert!(!closed, "client {c}: proxy closed the connection");
                    assert_replies(&got, &expected, &names, &format!("client {c}"));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// Each worker thread has `--backend-connections` connections to every shard, plus one for handoff work:
/// counted on the shards, where the proxy names its connections `ringcache-proxy`.
#[test]
fn backend_connections_per_worker() {
    for (threads, per_worker, expected) in [("3", "1", 4), ("1", "2", 3), ("2", "3", 7)] {
        let cluster =
            cluster_of_shards(&[PATIENT[0], PATIENT[1], "--threads", threads, "--backend-connections", per_worker]);
        for shard in &cluster.shards {
            let mut s = connect(shard);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut named = 0;
            while Instant::now() < deadline {
                let list = call(&mut s, &cmd_s(&["CLIENT", "LIST"]));
                named = String::from_utf8_lossy(&list).matches("name=ringcache-proxy ").count();
                if named == expected {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(named, expected, "--threads {threads} --backend-connections {per_worker}: proxy connections");
        }
    }
}

/// `--idle-timeout`: a silent client is closed once the timeout has passed, while one that keeps sending
/// (each request well within the timeout, for longer than the timeout in all) stays connected.
#[test]
fn idle_clients_are_closed_and_active_ones_kept() {
    let shard = start_shard(&[]);
    let proxy = start_proxy(&[("s1", shard.addr())], &[PATIENT[0], PATIENT[1], "--idle-timeout", "600ms"]);
    let mut silent = connect(&proxy);
    let mut active = connect(&proxy);
    assert_eq!(call(&mut silent, &cmd_s(&["PING"])), b"+PONG\r\n");
    let started = Instant::now();
    let reader = std::thread::spawn(move || {
        read_to_close(&mut silent, Instant::now() + Duration::from_secs(10));
        started.elapsed()
    });
    // 1.5 s of requests, one every 150 ms.
    for _ in 0..10 {
        assert_eq!(call(&mut active, &cmd_s(&["PING"])), b"+PONG\r\n", "an active client was closed");
        std::thread::sleep(Duration::from_millis(150));
    }
    let silent_for = reader.join().unwrap();
    assert!(silent_for >= Duration::from_millis(550), "the silent client was closed after only {silent_for:?}");
    assert_eq!(call(&mut active, &cmd_s(&["PING"])), b"+PONG\r\n", "an active client was closed");
}

/// MSET, MGET and DEL of 10,000 keys spread over every shard, each in one command: the merged MGET has
/// every value in key order (missing keys as nil), and DEL counts the keys it removed on every shard.
#[test]
fn huge_multi_key_commands_merge_in_key_order() {
    const KEYS: usize = 10_000;
    let cluster = cluster_of_shards(&PATIENT);
    let ring = ring();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("{i}:big")).collect();
    let mut per_shard = [0usize; 3];
    for k in &keys {
        per_shard[ring.owner(k.as_bytes()).unwrap()] += 1;
    }
    assert!(per_shard.iter().all(|&n| n > 1000), "keys do not spread over the shards: {per_shard:?}");
    // Every third key is left unset.
    let present = |i: usize| !i.is_multiple_of(3);
    let mut mset = vec![b"MSET".to_vec()];
    for (i, k) in keys.iter().enumerate() {
        if present(i) {
            mset.push(k.clone().into_bytes());
            mset.push(format!("value-of-{i}").into_bytes());
        }
    }
    let mut s = connect(&cluster.proxy);
    let refs: Vec<&[u8]> = mset.iter().map(Vec::as_slice).collect();
    assert_eq!(call(&mut s, &cmd(&refs)), OK);

    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let mut expected = format!("*{KEYS}\r\n").into_bytes();
    for i in 0..KEYS {
        expected.extend(if present(i) { bulk(format!("value-of-{i}").as_bytes()) } else { NIL.to_vec() });
    }
    let got = call(&mut s, &cmd_s(&mget));
    assert!(got == expected, "MGET of {KEYS} keys: merged reply differs");

    // Each shard holds its share (checked on the shards directly).
    for (i, shard) in cluster.shards.iter().enumerate() {
        let mut direct = connect(shard);
        let mine: Vec<usize> = (0..KEYS).filter(|&k| present(k) && ring.owner(keys[k].as_bytes()) == Some(i)).collect();
        assert_eq!(call(&mut direct, &cmd_s(&["DBSIZE"])), int(mine.len() as i64), "shard s{}", i + 1);
    }

    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    let removed = (0..KEYS).filter(|&i| present(i)).count() as i64;
    assert_eq!(call(&mut s, &cmd_s(&del)), int(removed));
    assert_eq!(call(&mut s, &cmd_s(&del)), int(0));
    let mut all_nil = format!("*{KEYS}\r\n").into_bytes();
    for _ in 0..KEYS {
        all_nil.extend_from_slice(NIL);
    }
    assert!(call(&mut s, &cmd_s(&mget)) == all_nil, "MGET after DEL is not all nil");
    assert_eq!(call(&mut s, &cmd_s(&["DBSIZE"])), int(0));
}

/// Inline commands work through the proxy; a protocol error is answered after the replies to the requests
/// before it, and then the connection closes.
#[test]
fn inline_commands_and_protocol_errors() {
    let cluster = cluster_of_shards(&PATIENT);
    let mut s = connect(&cluster.proxy);
    assert_eq!(call(&mut s, b"PING\r\n"), b"+PONG\r\n");
    s.write_all(b"SET inline-key \"hello world\"\r\nGET inline-key\r\nEXISTS inline-key nope\r\n").unwrap();
    let (got, _) = read_replies(&mut s, 3, Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n$11\r\nhello world\r\n:1\r\n");

    // Keys on every shard first, so the earlier replies come from shards while the error is ready at once.
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for i in 0..30 {
        wire.extend(cmd_s(&["SET", &format!("{i}:pe"), &i.to_string()]));
        wire.extend(cmd_s(&["GET", &format!("{i}:pe")]));
        expected.extend_from_slice(OK);
        expected.extend(bulk(i.to_string().as_bytes()));
    }
    wire.extend_from_slice(b"PING\r\n*2\r\n+x");
    expected.extend_from_slice(b"+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n");
    let mut s = connect(&cluster.proxy);
    s.write_all(&wire).unwrap();
    let got = read_to_close(&mut s, Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));

    // An unbalanced inline quote is a protocol error too.
    let mut s = connect(&cluster.proxy);
    s.write_all(b"PING\r\nSET \"a b\r\n").unwrap();
    let got = read_to_close(&mut s, Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&got), "+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n");
}

/// Connects and PINGs until the proxy admits the client (a slot may still be held for a moment by a
/// connection that just closed, such as the harness's readiness probe).
fn admitted(proxy: &Proc) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect(proxy);
        let got = call(&mut s, b"PING\r\n");
        if got == b"+PONG\r\n" {
            return s;
        }
        assert_eq!(String::from_utf8_lossy(&got), "-ERR max number of clients reached\r\n");
        assert!(Instant::now() < deadline, "no client slot freed up within 5 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// --maxclients 2: the third client is told so and disconnected; once a client leaves, a new one gets in.
#[test]
fn maxclients_limit() {
    let shard = start_shard(&[]);
    let proxy = start_proxy(&[("s1", shard.addr())], &[PATIENT[0], PATIENT[1], "--maxclients", "2"]);
    let a = admitted(&proxy);
    let mut b = admitted(&proxy);
    for _ in 0..3 {
        let mut c = connect(&proxy);
        let got = read_to_close(&mut c, Instant::now() + Duration::from_secs(5));
        assert_eq!(String::from_utf8_lossy(&got), "-ERR max number of clients reached\r\n");
    }
    assert_eq!(call(&mut b, &cmd_s(&["SET", "k", "v"])), OK, "admitted clients keep working");
    drop(a);
    let mut d = admitted(&proxy);
    assert_eq!(call(&mut d, &cmd_s(&["GET", "k"])), bulk(b"v"));
}

/// --requirepass: NOAUTH before AUTH, WRONGPASS for a bad password, everything works after AUTH; before
/// AUTH, requests are held to Redis's unauthenticated size limits.
#[test]
fn requirepass() {
    let shard = start_shard(&[]);
    let proxy = start_proxy(&[("s1", shard.addr())], &[PATIENT[0], PATIENT[1], "--requirepass", "s3cret"]);
    let mut s = connect(&proxy);
    assert_eq!(String::from_utf8_lossy(&call(&mut s, &cmd_s(&["GET", "k"]))), "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        String::from_utf8_lossy(&call(&mut s, &cmd_s(&["SET", "k", "v"]))),
        "-NOAUTH Authentication required.\r\n"
    );
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(String::from_utf8_lossy(&call(&mut s, &cmd_s(&["AUTH", "nope"]))), wrongpass);
    assert_eq!(String::from_utf8_lossy(&call(&mut s, &cmd_s(&["AUTH", "other", "s3cret"]))), wrongpass);
    assert_eq!(String::from_utf8_lossy(&call(&mut s, &cmd_s(&["GET", "k"]))), "-NOAUTH Authentication required.\r\n");
    assert_eq!(call(&mut s, &cmd_s(&["AUTH", "s3cret"])), OK);
    assert_eq!(call(&mut s, &cmd_s(&["SET", "k", "v"])), OK);
    assert_eq!(call(&mut s, &cmd_s(&["GET", "k"])), bulk(b"v"));
    // Pipelined: AUTH then commands in one write.
    let mut p = connect(&proxy);
    let mut wire = cmd_s(&["GET", "k"]);
    wire.extend(cmd_s(&["AUTH", "default", "s3cret"]));
    wire.extend(cmd_s(&["GET", "k"]));
    p.write_all(&wire).unwrap();
    let (got, _) = read_replies(&mut p, 3, Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&got), "-NOAUTH Authentication required.\r\n+OK\r\n$1\r\nv\r\n");
    // Before AUTH, an 11-element request is refused by the scanner.
    let mut u = connect(&proxy);
    let mut big = vec!["MGET"];
    big.extend(["a"; 10]);
    u.write_all(&cmd_s(&big)).unwrap();
    let got = read_to_close(&mut u, Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&got), "-ERR Protocol error: unauthenticated multibulk length\r\n");
}

/// --proto-max-bulk-len 1kb: a 1,024-byte value passes; 1,025 bytes is a protocol error that still answers
/// the requests before it.
#[test]
fn proto_max_bulk_len_edge() {
    let shard = start_shard(&[]);
    let proxy = start_proxy(&[("s1", shard.addr())], &[PATIENT[0], PATIENT[1], "--proto-max-bulk-len", "1kb"]);
    let at_limit = vec![b'a'; 1024];
    let mut s = connect(&proxy);
    assert_eq!(call(&mut s, &cmd(&[b"SET", b"edge", &at_limit])), OK);
    assert_eq!(call(&mut s, &cmd(&[b"GET", b"edge"])), bulk(&at_limit));

    let over = vec![b'b'; 1025];
    let mut wire = cmd(&[b"SET", b"edge2", b"first"]);
    wire.extend(cmd(&[b"SET", b"edge", &over]));
    s.write_all(&wire).unwrap();
    let got = read_to_close(&mut s, Instant::now() + Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&got), "+OK\r\n-ERR Protocol error: invalid bulk length\r\n");
    let mut t = connect(&proxy);
    assert_eq!(call(&mut t, &cmd(&[b"GET", b"edge"])), bulk(&at_limit), "the oversized SET must not have run");
    assert_eq!(call(&mut t, &cmd(&[b"GET", b"edge2"])), bulk(b"first"));
}

/// SIGTERM while a client streams a large pipeline: the proxy exits with 0, and what the client receives is
/// a run of whole, correct replies in request order (the proxy answers what it read before stopping).
#[test]
fn sigterm_with_pipeline_in_flight() {
    const COMMANDS: usize = 200_000;
    let mut cluster = cluster_of_shards(&PATIENT);
    let mut wire = Vec::with_capacity(COMMANDS * 40);
    let mut expected = Vec::with_capacity(COMMANDS);
    for i in 0..COMMANDS {
        let k = format!("{}:term", (i / 2) % 500);
        if i % 2 == 0 {
            wire.extend(cmd_s(&["SET", &k, &i.to_string()]));
            expected.push(OK.to_vec());
        } else {
            wire.extend(cmd_s(&["GET", &k]));
            expected.push(bulk((i - 1).to_string().as_bytes()));
        }
    }
    let mut s = connect(&cluster.proxy);
    let mut w = s.try_clone().unwrap();
    // The writer ends when the whole pipeline is written or the proxy closes the connection.
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&wire);
    });
    // Wait until replies flow, then stop the proxy while most of the pipeline is still unanswered.
    let (first, closed) = read_replies(&mut s, 2000, Instant::now() + Duration::from_secs(10));
    assert!(!closed);
    let reader = std::thread::spawn(move || {
        let (rest, closed) = read_replies(&mut s, usize::MAX, Instant::now() + Duration::from_secs(15));
        assert!(closed);
        rest
    });
    let code = cluster.proxy.stop_with("TERM");
    assert_eq!(code, Some(0), "proxy exit code after SIGTERM");
    let mut got = first;
    got.extend(reader.join().unwrap());
    writer.join().unwrap();
    let (replies, partial) = split_replies(&got);
    assert_eq!(partial, 0, "a reply was cut short: {:?}", tail(&got));
    assert!(replies.len() >= 2000 && replies.len() < COMMANDS, "{} replies", replies.len());
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(String::from_utf8_lossy(r), String::from_utf8_lossy(&expected[i]), "reply {i}");
    }
}
