//! `--replicas 2` against real shards: every write lands on two shards, replies are not double counted, and
//! `kill -9` of a shard under load fails no request (the proxy ejects it at the first refused or reset
//! connection and sends what was in flight to the live copy) and loses no acknowledged key. With one copy,
//! the dead shard's keys are gone, but no request fails and no old value is served either.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Commands;
use support::{commands_processed, free_port, poll_until, sample, scrape, start_shard, verify_counts, Loadgen, Proc};

fn backend_up(metrics_port: u16, shard: &str) -> bool {
    sample(&scrape(metrics_port), "ringcache_proxy_backend_up", &[("shard", shard)]) == Some(1.0)
}

fn dbsize(p: &Proc) -> usize {
    redis::cmd("DBSIZE").query(&mut p.client()).unwrap()
}

/// Three shards s1..s3 and a proxy with `--replicas 2` and quick failure detection.
fn replicated_cluster() -> (Vec<Proc>, Proc, u16) {
    cluster_with_copies("2")
}

/// Three shards s1..s3 and a proxy keeping `replicas` copies of each key, with quick failure detection.
fn cluster_with_copies(replicas: &str) -> (Vec<Proc>, Proc, u16) {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let list: Vec<String> = shards.iter().enumerate().map(|(i, s)| format!("s{}={}", i + 1, s.addr())).collect();
    let (port, metrics_port) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", &metrics_port.to_string(), "--log", "warn"])
        .args(["--shards", &list.join(","), "--replicas", replicas])
        .args(["--health-interval", "100ms", "--failure-limit", "2", "--timeout", "500ms"]);
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", metrics_port)).is_err() {
        assert!(Instant::now() < deadline, "no /metrics");
        std::thread::sleep(Duration::from_millis(10));
    }
    (shards, proxy, metrics_port)
}

#[test]
fn writes_land_on_two_shards_and_replies_count_once() {
    let (shards, proxy, _) = replicated_cluster();
    let mut con = proxy.client();
    let pairs: Vec<(String, String)> = (0..1000).map(|i| (format!("k:{i}"), format!("v{i}"))).collect();
    let _: () = con.mset(&pairs).unwrap();
    let _: () = con.set("single", "1").unwrap();
    let _: () = con.hset("h", "f", "v").unwrap();
    let _: i64 = con.incr("counter", 5).unwrap();
    assert_eq!(shards.iter().map(dbsize).sum::<usize>(), 2 * 1003, "every key on exactly two shards");
    for shard in &shards {
        assert!(dbsize(shard) > 300, "copies spread over all shards");
    }
    // Replies are the owner's, not one per copy.
    let total: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(total, 2 * 1003, "DBSIZE counts every copy (documented)");
    let keys: Vec<String> = con.keys("k:*").unwrap();
    assert_eq!(keys.len(), 1000, "KEYS lists each key once");
    let exists: usize = con.exists(&["k:1", "k:2", "missing"]).unwrap();
    assert_eq!(exists, 2);
    let deleted: usize = con.del(&["k:1", "k:2", "k:3", "missing"]).unwrap();
    assert_eq!(deleted, 3, "DEL counts each key once");
    assert_eq!(shards.iter().map(dbsize).sum::<usize>(), 2 * 1000);
    assert_eq!(con.incr::<_, _, i64>("counter", 1).unwrap(), 6);
    let err = redis::cmd("SPOP").arg("s").query::<Option<String>>(&mut con).unwrap_err();
    assert!(err.to_string().contains("not supported by ringcache-proxy with --replicas"), "{err}");
    // RENAME needs both keys on the same shards: a hash tag guarantees it, and both copies are renamed.
    let _: () = con.set("{t}a", "x").unwrap();
    let _: () = redis::cmd("RENAME").arg("{t}a").arg("{t}b").query(&mut con).unwrap();
    let holders = shards.iter().filter(|s| s.client().exists::<_, bool>("{t}b").unwrap()).count();
    assert_eq!(holders, 2);
    assert_eq!(shards.iter().filter(|s| s.client().exists::<_, bool>("{t}a").unwrap()).count(), 0);
}

/// What one client saw.
struct Outcome {
    acked: Vec<(String, String)>,
    /// When each acknowledged write began.
    acked_at: Vec<Instant>,
    /// Reads of keys written before the load, and what they returned.
    reads: usize,
    failures: Vec<(Instant, String)>,
}

#[test]
fn kill_9_under_load_fails_no_request_and_loses_no_key() {
    let (mut shards, proxy, metrics_port) = replicated_cluster();
    let mut con = proxy.client();
    let before: Vec<(String, String)> = (0..2000).map(|i| (format!("pre:{i}"), format!("pre-value-{i}"))).collect();
    for chunk in before.chunks(500) {
        let _: () = con.mset(chunk).unwrap();
    }
    let before = Arc::new(before);

    // Four writers of new keys and two readers of the keys written before, through the kill.
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let clients: Vec<_> = (0..6)
        .map(|t| {
            let (stop, outcomes, port, before) = (stop.clone(), outcomes.clone(), proxy.port, before.clone());
            std::thread::spawn(move || {
                let mut con =
                    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
                let mut out = Outcome { acked: Vec::new(), acked_at: Vec::new(), reads: 0, failures: Vec::new() };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if t < 4 {
                        let (k, v) = (format!("load:{t}:{i}"), format!("value-{t}-{i}"));
                        match con.set::<_, _, ()>(&k, &v) {
                            Ok(()) => {
                                out.acked.push((k, v));
                                out.acked_at.push(started);
                            }
                            Err(e) => out.failures.push((started, e.to_string())),
                        }
                    } else {
                        let (k, want) = &before[(i * 7 + t) % before.len()];
                        match con.get::<_, Option<String>>(k) {
                            Ok(got) => {
                                assert_eq!(got.as_deref(), Some(want.as_str()), "key {k} read wrong");
                                out.reads += 1;
                            }
                            Err(e) => out.failures.push((started, e.to_string())),
                        }
                    }
                    i += 1;
                }
                outcomes.lock().unwrap().push(out);
            })
        })
        .collect();

    poll_until("the load is running", Duration::from_secs(10), || commands_processed(&shards[1]) > 1000);
    shards[1].kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend_up(metrics_port, "s2") {
        assert!(Instant::now() < deadline, "s2 was never ejected");
        std::thread::sleep(Duration::from_millis(5));
    }
    let ejected_at = Instant::now();
    let s1_before = commands_processed(&shards[0]);
    poll_until("more load after the ejection", Duration::from_secs(10), || {
        commands_processed(&shards[0]) > s1_before + 2000
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }

    let outcomes = outcomes.lock().unwrap();
    let acked: Vec<&(String, String)> = outcomes.iter().flat_map(|o| &o.acked).collect();
    let after_ejection = outcomes.iter().flat_map(|o| &o.acked_at).filter(|t| **t > ejected_at).count();
    let reads: usize = outcomes.iter().map(|o| o.reads).sum();
    eprintln!("{} writes acknowledged, {after_ejection} of them after the ejection; {reads} reads", acked.len());
    assert!(after_ejection > 100, "the load went on after the ejection: {after_ejection} writes");
    assert!(reads > 100, "only {reads} reads");
    let failures: Vec<&(Instant, String)> = outcomes.iter().flat_map(|o| &o.failures).collect();
    assert!(failures.is_empty(), "requests failed: {failures:?}");
    let passive = sample(&scrape(metrics_port), "ringcache_proxy_passive_ejections_total", &[("shard", "s2")]);
    assert_eq!(passive, Some(1.0), "s2 was not ejected at the first refused connection");
    // Every acknowledged key, written before the kill or during the load, reads back.
    for chunk in before.iter().chain(acked.iter().copied()).collect::<Vec<_>>().chunks(500) {
        let names: Vec<&String> = chunk.iter().map(|(k, _)| k).collect();
        let values: Vec<Option<String>> = con.mget(&names).unwrap();
        for ((k, want), got) in chunk.iter().zip(values) {
            assert_eq!(got.as_deref(), Some(want.as_str()), "key {k} was lost");
        }
    }
}

/// `ringcache-loadgen --verify` through a `kill -9` of a shard: with two copies, no error, no lost and no
/// stale read; with one, no error and no stale read (the dead shard's keys are misses: they died with it).
#[test]
fn kill_9_under_loadgen_verify_with_and_without_replicas() {
    for replicas in ["2", "1"] {
        let (mut shards, proxy, metrics_port) = cluster_with_copies(replicas);
        let extra: &[&str] = if replicas == "1" { &["--verify-allow-miss"] } else { &[] };
        let load = Loadgen::start(proxy.port, "kill9:", extra);
        poll_until("the load is running", Duration::from_secs(10), || commands_processed(&shards[1]) > 1000);
        shards[1].kill();
        poll_until("s2 is ejected", Duration::from_secs(10), || !backend_up(metrics_port, "s2"));
        let s1_before = commands_processed(&shards[0]);
        poll_until("more load after the ejection", Duration::from_secs(10), || {
            commands_processed(&shards[0]) > s1_before + 2000
        });
        let report = load.finish();
        let (checked, lost, stale, corrupt) = verify_counts(&report);
        assert!(checked > 1000, "replicas {replicas}: {report}");
        let errors: u64 = report["errors"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(errors, 0, "replicas {replicas}: {}", report["errors"]);
        assert_eq!((lost, stale, corrupt), (0, 0, 0), "replicas {replicas}: {}", report["verify"]);
    }
}
