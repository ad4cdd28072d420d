//! A key-by-key checker through the proxy over three shards, as an operator would try a crash: every key's
//! last acknowledged value is known; v1 is in a snapshot, v2 is acknowledged just before `kill -9` of a
//! shard, v3 or DEL is written while it is away; then it restarts on its `--dir` and, once readmitted,
//! every key is read back and counted as lost (acknowledged, now missing), stale (an older value) or
//! resurrected (deleted, back again). All three must be 0 with `--replicas 2` (the restarted shard is
//! reconciled with its copies before it serves) and with `--replicas 1` when the shard keeps an append-only
//! log.
//!
//! Rounds and keys: `CHECKER_ROUNDS` (default 2) and `CHECKER_KEYS` (default 3,000); bench/crash_checker.sh
//! runs 10 rounds of 30,000 keys on release builds and prints the counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::{backend_up, free_port, poll_until, start_proxy_with_metrics, start_shard_in, Proc};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    checked: u64,
    lost: u64,
    stale: u64,
    resurrected: u64,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Retries a write until the proxy acknowledges it (it may fail while the shard is being ejected).
fn acknowledged(con: &mut redis::Connection, cmd: &redis::Cmd) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cmd.query::<redis::Value>(con) {
            Ok(_) => return,
            Err(e) => assert!(Instant::now() < deadline, "a write keeps failing: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the scenario; returns the counts summed over every round.
fn scenario(replicas: &str, shard_args: &[&str]) -> Counts {
    let rounds = env_or("CHECKER_ROUNDS", 2);
    let n = env_or("CHECKER_KEYS", 3000);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut shard_args = shard_args.to_vec();
    shard_args.extend(["--snapshot-interval", "0"]);
    let mut shards: Vec<Proc> = (0..3).map(|i| start_shard_in(ports[i], dirs[i].path(), &shard_args)).collect();
    for s in &shards {
        poll_until("the shard has loaded", Duration::from_secs(30), || loaded(s));
    }
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let (proxy, metrics) = start_proxy_with_metrics(
        &names,
        &["--replicas", replicas, "--health-interval", "100ms", "--failure-limit", "2", "--timeout", "1s"],
    );
    let mut con = proxy.client();
    let key = |i: usize| format!("key:{i}");
    let mut total = Counts::default();
    for round in 0..rounds {
        let victim = round % 3;
        // v1, in every shard's snapshot.
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let mut mset = redis::cmd("MSET");
            for &i in chunk {
                mset.arg(key(i)).arg(format!("r{round}:v1:{i}"));
            }
            acknowledged(&mut con, &mset);
        }
        for s in &shards {
            let _: () = redis::cmd("SAVE").query(&mut s.client()).unwrap();
        }
        // v2, acknowledged (by every live copy) just before the kill.
        let mut expected: HashMap<usize, Option<String>> = HashMap::new();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let mut mset = redis::cmd("MSET");
            for &i in chunk {
                let v = format!("r{round}:v2:{i}");
                mset.arg(key(i)).arg(&v);
                expected.insert(i, Some(v));
            }
            acknowledged(&mut con, &mset);
        }
        shards[victim].stop_with("KILL");
        // During the outage: a third of the keys get v3, a third are deleted.
        for i in 0..n {
            match i % 3 {
                0 => {
                    let v = format!("r{round}:v3:{i}");
                    acknowledged(&mut con, redis::cmd("SET").arg(key(i)).arg(&v));
                    expected.insert(i, Some(v));
                }
                1 => {
                    acknowledged(&mut con, redis::cmd("DEL").arg(key(i)));
                    expected.insert(i, None);
                }
                _ => {}
            }
        }
        let victim_name = format!("s{}", victim + 1);
        assert!(!backend_up(metrics, &victim_name), "round {round}: {victim_name} is still routed to");
        shards[victim] = start_shard_in(ports[victim], dirs[victim].path(), &shard_args);
        poll_until("the restarted shard is readmitted", Duration::from_secs(60), || backend_up(metrics, &victim_name));
        let mut counts = Counts::default();
        let keys: Vec<String> = (0..n).map(key).collect();
        for (chunk_start, chunk) in keys.chunks(1000).enumerate() {
            let values: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query(&mut con).unwrap();
            for (j, got) in values.into_iter().enumerate() {
                let i = chunk_start * 1000 + j;
                counts.checked += 1;
                match (&expected[&i], got) {
                    (Some(want), Some(got)) if *want == got => {}
                    (Some(_), None) => counts.lost += 1,
                    (Some(_), Some(_)) => counts.stale += 1,
                    (None, Some(_)) => counts.resurrected += 1,
                    (None, None) => {}
                }
            }
        }
        eprintln!("checker replicas={replicas} {shard_args:?} round {round}: {counts:?}");
        total.checked += counts.checked;
        total.lost += counts.lost;
        total.stale += counts.stale;
        total.resurrected += counts.resurrected;
    }
    println!("CHECKER replicas={replicas} args={shard_args:?} rounds={rounds} keys={n} {total:?}");
    total
}

fn loaded(s: &Proc) -> bool {
    let Ok(mut con) = redis::Client::open(format!("redis://{}/", s.addr())).and_then(|c| c.get_connection()) else {
        return false;
    };
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut con).unwrap_or_default();
    info.contains("loading:0")
}

#[test]
fn two_copies_a_restarted_shard_serves_nothing_older_than_its_copies() {
    let c = scenario("2", &[]);
    assert_eq!((c.lost, c.stale, c.resurrected), (0, 0, 0), "{c:?}");
}

#[test]
fn one_copy_with_the_append_only_log_loses_and_reverts_nothing() {
    let c = scenario("1", &["--appendonly", "yes", "--appendfsync", "everysec"]);
    assert_eq!((c.lost, c.stale, c.resurrected), (0, 0, 0), "{c:?}");
}

/// Every setting of the durability table, counted (bench/crash_checker.sh runs it with 10 rounds of 30,000
/// keys): 0 lost, stale and resurrected wherever the README promises it; with one copy and no log, the
/// acknowledged writes since the snapshot revert (counted, the documented window).
#[test]
#[ignore = "long: run by bench/crash_checker.sh"]
fn every_durability_setting_counted() {
    let cases: [(&str, &[&str], bool); 6] = [
        ("2", &[], true),
        ("2", &["--appendonly", "yes", "--appendfsync", "everysec"], true),
        ("1", &["--appendonly", "yes", "--appendfsync", "always"], true),
        ("1", &["--appendonly", "yes", "--appendfsync", "everysec"], true),
        ("1", &["--appendonly", "yes", "--appendfsync", "no"], true),
        ("1", &[], false),
    ];
    let mut broken = Vec::new();
    for (replicas, args, promised) in cases {
        let c = scenario(replicas, args);
        if promised && (c.lost, c.stale, c.resurrected) != (0, 0, 0) {
            broken.push(format!("replicas {replicas} {args:?}: {c:?}"));
        }
    }
    assert!(broken.is_empty(), "{broken:?}");
}
