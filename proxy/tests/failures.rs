//! Through the proxy: shards that die, hang, come back, or are all gone; and the backend metrics that say so.
//! Timings are short (health checks every 100 ms, ejection after 2 failures, 500 ms request timeout), so
//! every test finishes in a few seconds.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringcache_common::hash::KeyHash;
use ringcache_proxy::ring::{Member, Ring};
use support::{
    cluster_of_shards, free_port, poll_until, sample, scrape, start_proxy, start_shard, start_shard_on, Proc, RawClient,
};

const TIMEOUT: Duration = Duration::from_millis(500);
/// Slack over --timeout for a request to come back: the backend checks for timeouts every timeout/4, and
/// the machine is small and shared.
const MARGIN: Duration = Duration::from_millis(1000);
const FAST: [&str; 6] = ["--health-interval", "100ms", "--failure-limit", "2", "--timeout", "500ms"];
/// What a request to the silent shard s2 gets: its outcome is unknown.
const S2_TIMED_OUT: &str =
    "-TIMEOUT ringcache-proxy: shard 's2' sent nothing for longer than --timeout; the shard may have applied the request\r\n";

// ---------------------------------------------------------------------------------------------------------
// Helpers.

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

/// A raw client connection that times every request.
struct Client(RawClient);

impl Client {
    fn connect(port: u16) -> Client {
        Client(RawClient::connect(port))
    }

    /// Reads one reply; fails the test if none arrives by `deadline`.
    fn read_reply(&mut self, deadline: Instant) -> String {
        String::from_utf8(self.0.read_reply(deadline)).unwrap()
    }

    /// Sends one request; returns its reply and how long it took. A reply later than 10 s fails the test.
    fn call(&mut self, args: &[&str]) -> (String, Duration) {
        let start = Instant::now();
        self.0.s.write_all(&cmd(args)).unwrap();
        let reply = self.read_reply(start + Duration::from_secs(10));
        (reply, start.elapsed())
    }
}

/// The ring the proxy builds for shards s1..s3.
fn ring() -> Ring {
    let members: Vec<Member> = ["s1", "s2", "s3"].iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect();
    Ring::new(&members, KeyHash::Fnv1a_64)
}

/// `count` keys, each with its owner (0-based shard index) when every shard is up.
fn keys(prefix: &str, count: usize) -> Vec<(String, usize)> {
    let ring = ring();
    let out: Vec<(String, usize)> = (0..count)
        .map(|i| {
            let k = format!("{i}:{prefix}");
            let owner = ring.owner(k.as_bytes()).unwrap();
            (k, owner)
        })
        .collect();
    for shard in 0..3 {
        assert!(out.iter().filter(|(_, o)| *o == shard).count() >= 5, "too few keys on s{}", shard + 1);
    }
    out
}

/// A "shard" that accepts connections and never answers.
struct BlackHole {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        BlackHole { port, stop, thread: Some(thread) }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------

/// Three shards s1..s3 and a proxy over them (with `FAST` timings) that serves /metrics on its own port.
fn cluster_with_metrics() -> (Vec<Proc>, Proc, u16) {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let metrics_port = free_port();
    let port = free_port();
    let list: Vec<String> = shards.iter().enumerate().map(|(i, s)| format!("s{}={}", i + 1, s.addr())).collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", &metrics_port.to_string(), "--log", "warn"])
        .args(["--shards", &list.join(",")])
        .args(FAST);
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    poll_until("/metrics is served", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", metrics_port)).is_ok()
    });
    (shards, proxy, metrics_port)
}

/// What a load thread saw for one request.
struct Rec {
    owner: usize,
    start: Instant,
    latency: Duration,
    ok: bool,
    reply: String,
}

/// One shard is killed under load: the first request that finds its connection refused or reset has it
/// ejected at once (passive ejection), and every request to it, in flight or new, is sent to the next shard
/// instead: no client sees an error, and no request waits longer than the timeout. Only its keys may read
/// differently (their values died with it: one copy). Restarted on the same port, it is readmitted by the
/// health checks and gets its keys back.
#[test]
fn killed_shard_is_ejected_and_readmitted() {
    let (mut shards, proxy, metrics_port) = cluster_with_metrics();
    let port = proxy.port;
    let keys = Arc::new(keys("kill", 300));
    const VICTIM: usize = 1;
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<Rec>>> = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (keys, stop, log) = (keys.clone(), stop.clone(), log.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let mut n = 0usize;
                let end = Instant::now() + Duration::from_secs(15); // bounded even if the test fails
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    let (k, owner) = &keys[(n * 4 + t) % keys.len()];
                    let v = format!("{t}-{n}");
                    let start = Instant::now();
                    let (set, set_took) = c.call(&["SET", k, &v]);
                    let (get, get_took) = c.call(&["GET", k]);
                    let set_ok = set == "+OK\r\n";
                    let got_it = get == bulk(&v);
                    // A GET right after a successful SET sees its value (both went to the same shard); only
                    // the dead shard's keys may see another value, when its ejection falls between the two.
                    assert!(got_it || !set_ok || get.starts_with('-') || *owner == VICTIM, "GET {k}: {get:?}");
                    let mut log = log.lock().unwrap();
                    log.push(Rec { owner: *owner, start, latency: set_took, ok: set_ok, reply: set });
                    log.push(Rec { owner: *owner, start: start + set_took, latency: get_took, ok: got_it, reply: get });
                    n += 1;
                }
            })
        })
        .collect();
    let count_ok = |log: &Mutex<Vec<Rec>>| log.lock().unwrap().iter().filter(|r| r.ok).count();
    poll_until("the load is running", Duration::from_secs(10), || count_ok(&log) > 400);
    let before = log.lock().unwrap().len();
    assert!(log.lock().unwrap().iter().all(|r| r.ok), "errors while every shard was up");

    let killed_at = Instant::now();
    let victim_port = shards[VICTIM].port;
    shards[VICTIM].kill();
    // Its keys work again once it is ejected (they go to the next shard on the ring).
    let victim_keys: Vec<&String> = keys.iter().filter(|(_, o)| *o == VICTIM).map(|(k, _)| k).collect();
    let mut probe = Client::connect(port);
    let mut streak = 0;
    poll_until("the dead shard's keys work again", Duration::from_secs(10), || {
        let k = victim_keys[streak % victim_keys.len()];
        let (reply, took) = probe.call(&["SET", k, "after"]);
        assert!(took < TIMEOUT + MARGIN, "SET {k} took {took:?}");
        streak = if reply == "+OK\r\n" { streak + 1 } else { 0 };
        streak >= 20
    });
    let recovered_at = Instant::now();
    // Keep the load on for a while: no more errors. The outage lasts over 1.6 s, so that the proxy's
    // reconnect backoff has grown well past the health-check interval before the shard returns.
    poll_until("more load after the ejection", Duration::from_secs(10), || {
        killed_at.elapsed() > Duration::from_millis(1600)
            && log.lock().unwrap().iter().filter(|r| r.start > recovered_at && r.owner == VICTIM && r.ok).count() > 100
    });
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let log = log.lock().unwrap();
    assert!(log.len() > before);
    for r in log.iter() {
        assert!(r.latency < TIMEOUT + MARGIN, "a request took {:?}: {:?}", r.latency, r.reply);
        assert!(!r.reply.starts_with('-'), "a client got an error: {:?}", r.reply);
        if !r.ok {
            assert_eq!(r.owner, VICTIM, "a key on a live shard read wrong: {:?}", r.reply);
            assert!(r.start + r.latency >= killed_at, "wrong read before the kill: {:?}", r.reply);
            assert!(r.start < recovered_at, "wrong read after the ejection: {:?}", r.reply);
        }
    }
    let sent_to_victim = log.iter().filter(|r| r.owner == VICTIM && r.start + r.latency >= killed_at).count();
    assert!(sent_to_victim > 0, "no request for the dead shard's keys after the kill");
    drop(log);
    let text = scrape(metrics_port);
    assert_eq!(sample(&text, "ringcache_proxy_passive_ejections_total", &[("shard", "s2")]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "ringcache_proxy_ejections_total", &[("shard", "s2")]), Some(1.0), "{text}");

    // Restart it on the same port: two good health checks in a row readmit it, and from then on its keys route to
    // it and work, from every client (whichever backend connection a client's requests use).
    shards[VICTIM] = start_shard_on(victim_port, &[]);
    let readmitting = Instant::now();
    poll_until("the restarted shard is readmitted", Duration::from_secs(10), || {
        sample(&scrape(metrics_port), "ringcache_proxy_backend_up", &[("shard", "s2")]) == Some(1.0)
    });
    assert!(readmitting.elapsed() < Duration::from_secs(2), "readmission took {:?}", readmitting.elapsed());
    let mut direct = Client::connect(victim_port);
    for c in 0..4 {
        let mut client = Client::connect(port);
        for k in &victim_keys {
            let v = format!("readmitted-{c}");
            let (reply, took) = client.call(&["SET", k, &v]);
            assert_eq!(reply, "+OK\r\n", "client {c}, key {k}, {:?} after readmission", readmitting.elapsed());
            assert!(took < TIMEOUT, "SET took {took:?}");
            assert_eq!(direct.call(&["GET", k]).0, bulk(&v), "key {k} did not go to the readmitted shard");
        }
    }
    drop(proxy);
}

/// A shard that accepts connections and never answers: requests for its keys fail within --timeout, and
/// replies to other keys pipelined behind them wait only as long as order requires.
#[test]
fn black_hole_shard_times_out_without_holding_up_others() {
    let hole = BlackHole::start();
    let s1 = start_shard(&[]);
    let s3 = start_shard(&[]);
    let shards = [("s1", s1.addr()), ("s2", hole.addr()), ("s3", s3.addr())];
    // A high failure limit keeps the black hole on the ring for this part.
    let proxy =
        start_proxy(&shards, &["--health-interval", "100ms", "--failure-limit", "1000000", "--timeout", "500ms"]);
    let keys = keys("hole", 200);
    let (hole_key, _) = keys.iter().find(|(_, o)| *o == 1).unwrap().clone();
    let good: Vec<&String> = keys.iter().filter(|(_, o)| *o != 1).map(|(k, _)| k).collect();

    // One black-holed request, then many good ones, in one write; meanwhile another client's good requests
    // are answered at once.
    let mut c = Client::connect(proxy.port);
    let mut wire = cmd(&["GET", &hole_key]);
    let mut expected = vec![S2_TIMED_OUT.to_string()];
    let (others, mine) = good.split_at(20);
    for (i, k) in mine.iter().enumerate() {
        wire.extend(cmd(&["SET", k, &i.to_string()]));
        wire.extend(cmd(&["GET", k]));
        expected.push("+OK\r\n".into());
        expected.push(bulk(&i.to_string()));
    }
    let start = Instant::now();
    c.0.s.write_all(&wire).unwrap();
    let mut other = Client::connect(proxy.port);
    for k in others {
        let (reply, took) = other.call(&["SET", k, "other"]);
        assert_eq!(reply, "+OK\r\n");
        assert!(took < TIMEOUT, "a request to a healthy shard waited {took:?}");
    }
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(&c.read_reply(start + TIMEOUT + MARGIN), e, "reply {i}");
    }
    let took = start.elapsed();
    assert!(took >= TIMEOUT && took < TIMEOUT + MARGIN, "pipeline took {took:?}");
    // Healthy keys from the same client are fast again once nothing is stuck ahead of them.
    let (reply, took) = c.call(&["GET", mine[0]]);
    assert!(reply == bulk("0") && took < TIMEOUT, "{reply:?} after {took:?}");

    // One request at a time: each fails within the timeout. Right after a timeout the connection is being
    // replaced, and requests fail at once as unreachable; after that they time out again.
    let until = Instant::now() + Duration::from_millis(1500);
    let mut timeouts = 0;
    while Instant::now() < until {
        let (reply, took) = c.call(&["GET", &hole_key]);
        assert!(took < TIMEOUT + MARGIN, "took {took:?}");
        if reply == S2_TIMED_OUT {
            assert!(took >= TIMEOUT, "timed out after {took:?}");
            timeouts += 1;
        } else {
            assert_eq!(reply, "-ERR ringcache-proxy: shard 's2' is unreachable\r\n");
        }
    }
    assert!(timeouts >= 1);
    drop(proxy);

    // With the usual failure limit the black hole is ejected, and its keys then go to a live shard.
    let proxy = start_proxy(&shards, &FAST);
    let mut c = Client::connect(proxy.port);
    poll_until("the black hole is ejected", Duration::from_secs(10), || {
        let (reply, took) = c.call(&["SET", &hole_key, "moved"]);
        assert!(took < TIMEOUT + MARGIN, "SET took {took:?}");
        reply == "+OK\r\n"
    });
    let (reply, took) = c.call(&["GET", &hole_key]);
    assert_eq!(reply, bulk("moved"));
    assert!(took < TIMEOUT, "took {took:?}");
}

/// Every shard killed: each request gets an error promptly, then CLUSTERDOWN once all are ejected; the
/// proxy itself still answers.
#[test]
fn all_shards_down_fails_fast() {
    let mut cluster = cluster_of_shards(&FAST);
    let keys = keys("down", 60);
    let mut c = Client::connect(cluster.proxy.port);
    for (k, _) in &keys {
        assert_eq!(c.call(&["SET", k, "v"]).0, "+OK\r\n");
    }
    for s in &mut cluster.shards {
        s.kill();
    }
    let mgets: Vec<&str> = ["MGET"].into_iter().chain(keys.iter().take(10).map(|(k, _)| k.as_str())).collect();
    let mut n = 0;
    poll_until("every shard is ejected", Duration::from_secs(10), || {
        n += 1;
        let k = &keys[n % keys.len()].0;
        for req in [vec!["GET", k.as_str()], vec!["SET", k.as_str(), "x"], mgets.clone(), vec!["DBSIZE"]] {
            let (reply, took) = c.call(&req);
            assert!(reply.starts_with('-'), "{req:?} got {reply:?}");
            assert!(took < TIMEOUT + MARGIN, "{req:?} took {took:?}");
        }
        c.call(&["GET", k]).0.starts_with("-CLUSTERDOWN")
    });
    for req in [
        vec!["GET", "a"],
        vec!["SET", "a", "b"],
        mgets.clone(),
        vec!["DEL", "a", "b"],
        vec!["DBSIZE"],
        vec!["KEYS", "*"],
    ] {
        let (reply, took) = c.call(&req);
        assert_eq!(reply, "-CLUSTERDOWN ringcache-proxy: no shard is available\r\n", "{req:?}");
        assert!(took < TIMEOUT, "{req:?} took {took:?}");
    }
    assert_eq!(c.call(&["PING"]).0, "+PONG\r\n");
}

/// The backend metrics: up, requests, errors by kind, ejections; the text passes `promtool check metrics`.
#[test]
fn backend_metrics() {
    let (mut shards, proxy, metrics_port) = cluster_with_metrics();
    let port = proxy.port;
    let keys = keys("metrics", 100);
    let mut c = Client::connect(port);
    for (k, _) in &keys {
        assert_eq!(c.call(&["SET", k, "v"]).0, "+OK\r\n");
    }
    let text = scrape(metrics_port);
    for s in ["s1", "s2", "s3"] {
        assert_eq!(sample(&text, "ringcache_proxy_backend_up", &[("shard", s)]), Some(1.0), "{text}");
        let sent = sample(&text, "ringcache_proxy_backend_requests_total", &[("shard", s)]).unwrap();
        assert!(sent >= 5.0, "{s}: {sent} requests");
        assert_eq!(sample(&text, "ringcache_proxy_ejections_total", &[("shard", s)]), Some(0.0));
        assert_eq!(
            sample(&text, "ringcache_proxy_backend_errors_total", &[("shard", s), ("kind", "timeout")]),
            Some(0.0)
        );
    }
    assert!(text.contains("ringcache_proxy_backend_up{shard=\"s1\"} 1\n"), "{text}");
    // The proxy counts and times the commands it serves, like a shard does.
    let sets = sample(&text, "ringcache_commands_total", &[("cmd", "set")]).unwrap_or(0.0);
    assert!(sets >= keys.len() as f64, "{sets} SETs counted for {} sent", keys.len());
    assert!(text.contains("ringcache_command_duration_seconds_bucket{cmd=\"set\""), "{text}");

    shards[1].kill();
    let victim: Vec<&String> = keys.iter().filter(|(_, o)| *o == 1).map(|(k, _)| k).collect();
    let mut n = 0;
    poll_until("s2 is ejected", Duration::from_secs(10), || {
        n += 1;
        // Failed over to the next shard: never an error (the key is gone with s2: a miss).
        assert_eq!(c.call(&["GET", victim[n % victim.len()]]).0, "$-1\r\n");
        sample(&scrape(metrics_port), "ringcache_proxy_ejections_total", &[("shard", "s2")]) == Some(1.0)
    });
    let text = scrape(metrics_port);
    assert_eq!(sample(&text, "ringcache_proxy_backend_up", &[("shard", "s2")]), Some(0.0));
    assert_eq!(sample(&text, "ringcache_proxy_backend_up", &[("shard", "s1")]), Some(1.0));
    // The request that found s2 dead is counted as a backend error, though its client got an answer.
    let errors: f64 = ["closed", "unreachable", "timeout", "protocol", "auth"]
        .iter()
        .map(|kind| sample(&text, "ringcache_proxy_backend_errors_total", &[("shard", "s2"), ("kind", kind)]).unwrap())
        .sum();
    assert!(errors >= 1.0, "no error counted for the dead shard: {text}");
    assert_eq!(sample(&text, "ringcache_proxy_passive_ejections_total", &[("shard", "s2")]), Some(1.0));
    assert_eq!(sample(&text, "ringcache_proxy_ejections_total", &[("shard", "s1")]), Some(0.0));

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.is_empty(), "promtool check metrics: {:?}\n{said}", out.status);
}
