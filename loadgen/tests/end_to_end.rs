//! End to end against a real `redis-server`: the figures loadgen reports agree with what the server counted,
//! and `--verify` catches corrupted, stale and lost values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{run_loadgen, Redis};

#[test]
fn counts_and_hit_ratio_match_the_servers_info() {
    let redis = Redis::start(&[]);
    let mut con = redis.client();
    let port = redis.port.to_string();
    // Fill half the keys first so that reads both hit and miss.
    let fill = run_loadgen(&[
        "--port",
        &port,
        "--ratio",
        "1:0",
        "--key-pattern",
        "sequential",
        "--keys",
        "2000",
        "--clients",
        "4",
        "--requests",
        "250",
        "--pipeline",
        "16",
        "--seed",
        "3",
    ]);
    assert_eq!(fill.status, 0, "{}", fill.stdout);
    let keys_after_fill: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys_after_fill, 1000, "sequential: 4 clients x 250 distinct keys");
    redis::cmd("CONFIG").arg("RESETSTAT").exec(&mut con).unwrap();

    let run = run_loadgen(&[
        "--port",
        &port,
        "--ratio",
        "1:4",
        "--keys",
        "2000",
        "--threads",
        "2",
        "--clients",
        "3",
        "--requests",
        "700",
        "--pipeline",
        "7",
        "--seed",
        "11",
        "--data-size",
        "10-200",
    ]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let info = redis.info(&mut con, "stats");
    let (sets, gets) = (redis.calls(&mut con, "set"), redis.calls(&mut con, "get"));
    let (hits, misses): (u64, u64) = (info["keyspace_hits"].parse().unwrap(), info["keyspace_misses"].parse().unwrap());
    assert_eq!(run.u64_at("/overall/requests"), 2 * 3 * 700);
    assert_eq!(run.command("SET")["ok_replies"].as_u64().unwrap(), sets);
    assert_eq!(run.command("GET")["ok_replies"].as_u64().unwrap(), gets);
    assert_eq!(sets + gets, 4200);
    assert!(sets > 600 && gets > 3000, "1:4 mix: {sets} SET, {gets} GET");
    assert_eq!(run.command("GET")["hits"].as_u64().unwrap(), hits);
    assert_eq!(run.command("GET")["misses"].as_u64().unwrap(), misses);
    let ratio = run.command("GET")["hit_ratio"].as_f64().unwrap();
    assert!((ratio - hits as f64 / (hits + misses) as f64).abs() < 1e-12);
    assert!(hits > 0 && misses > 0);
    assert_eq!(run.report["errors"].as_object().unwrap().len(), 0);
    assert!(run.report["send_lag"].is_null(), "closed loop has no schedule to lag behind");
    // Percentiles are ordered and the table is printed.
    let l = &run.report["overall"]["latency"];
    let p = |k: &str| l[k].as_f64().unwrap();
    assert!(0.0 < p("p50_ms") && p("p50_ms") <= p("p90_ms") && p("p90_ms") <= p("p99_ms"));
    assert!(p("p99_ms") <= p("p999_ms") && p("p999_ms") <= p("max_ms"));
    assert!(run.stdout.contains("p99.9 ms") && run.stdout.contains("GET"), "{}", run.stdout);
}

#[test]
fn templates_run_other_commands() {
    let redis = Redis::start(&[]);
    let mut con = redis.client();
    let _: () = redis::cmd("SET").arg("loadgen:1").arg("x").query(&mut con).unwrap();
    let port = redis.port.to_string();
    let run = run_loadgen(&[
        "--port",
        &port,
        "--keys",
        "4",
        "--clients",
        "2",
        "--requests",
        "300",
        "--pipeline",
        "5",
        "--command",
        "MGET __key__ __key__ __key__",
        "--command",
        "INCR counter:__key__",
        "--command",
        "HSET h:__key__ f __data__",
        "--command-ratio",
        "2:1:1",
    ]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    for (name, cmd) in [("MGET", "mget"), ("INCR", "incr"), ("HSET", "hset")] {
        assert_eq!(run.command(name)["ok_replies"].as_u64().unwrap(), redis.calls(&mut con, cmd), "{name}");
    }
    let mget = run.command("MGET");
    let (h, m) = (mget["hits"].as_u64().unwrap(), mget["misses"].as_u64().unwrap());
    assert_eq!(h + m, 3 * mget["ok_replies"].as_u64().unwrap(), "three keys per MGET");
    assert!(h > 0 && m > 0, "1 of 4 keys exists: {h} hits, {m} misses");
    let counters: u64 = (0..4)
        .map(|k| {
            redis::cmd("GET").arg(format!("counter:loadgen:{k}")).query::<Option<u64>>(&mut con).unwrap().unwrap_or(0)
        })
        .sum();
    assert_eq!(counters, run.command("INCR")["ok_replies"].as_u64().unwrap());
}

#[test]
fn verify_passes_against_a_correct_server() {
    let redis = Redis::start(&[]);
    let port = redis.port.to_string();
    let run = run_loadgen(&[
        "--port",
        &port,
        "--verify",
        "--ratio",
        "1:1",
        "--keys",
        "300",
        "--threads",
        "2",
        "--clients",
        "4",
        "--requests",
        "1500",
        "--pipeline",
        "10",
        "--key-pattern",
        "zipf",
    ]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let checked = run.u64_at("/verify/checked");
    assert_eq!(checked, run.command("GET")["ok_replies"].as_u64().unwrap());
    assert!(checked > 5000);
    assert_eq!(run.u64_at("/verify/lost") + run.u64_at("/verify/stale") + run.u64_at("/verify/corrupt"), 0);
    // A second run finds the first run's values: accepted until it writes its own.
    let again = run_loadgen(&["--port", &port, "--verify", "--ratio", "1:3", "--keys", "300", "--requests", "500"]);
    assert_eq!(again.status, 0, "{}", again.stdout);
    assert!(again.command("GET")["hits"].as_u64().unwrap() > 0);
}

/// Runs `--verify` for 2 s while `meddle` runs against the server on another connection every few ms.
fn verify_while(
    redis: &Redis,
    extra: &[&str],
    meddle: impl Fn(&mut redis::Connection) + Send + 'static,
) -> support::Run {
    let stop = Arc::new(AtomicBool::new(false));
    let mut con = redis.client();
    let meddler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                meddle(&mut con);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let port = redis.port.to_string();
    let mut args = vec![
        "--port",
        &port,
        "--verify",
        "--ratio",
        "1:1",
        "--keys",
        "8",
        "--clients",
        "2",
        "--test-time",
        "2s",
        "--pipeline",
        "4",
    ];
    args.extend_from_slice(extra);
    let run = run_loadgen(&args);
    stop.store(true, Ordering::Relaxed);
    meddler.join().unwrap();
    run
}

#[test]
fn verify_catches_a_corrupted_value() {
    let redis = Redis::start(&[]);
    let run = verify_while(&redis, &[], |con| {
        let _: () = redis::cmd("SET").arg("loadgen:3").arg("not what loadgen wrote").query(con).unwrap();
    });
    assert_eq!(run.status, 3, "{}", run.stdout);
    assert!(run.u64_at("/verify/corrupt") > 0);
    let examples = run.report["verify"]["examples"].as_array().unwrap();
    assert!(
        examples
            .iter()
            .any(|e| e["kind"] == "corrupt" && e["key"] == "loadgen:3" && e["got"] == "not what loadgen wrote"),
        "{examples:?}"
    );
    assert!(run.stdout.contains("corrupt") && run.stdout.contains("FAIL"), "{}", run.stdout);
}

#[test]
fn verify_catches_stale_values() {
    let redis = Redis::start(&[]);
    // Read a key's value and write it back a little later: an older version replaces a newer one.
    let saved = std::sync::Mutex::new(None::<Vec<u8>>);
    let run = verify_while(&redis, &[], move |con| {
        let mut saved = saved.lock().unwrap();
        match saved.take() {
            Some(old) => {
                let _: () = redis::cmd("SET").arg("loadgen:5").arg(old).query(con).unwrap();
            }
            None => *saved = redis::cmd("GET").arg("loadgen:5").query(con).unwrap(),
        }
    });
    assert_eq!(run.status, 3, "{}", run.stdout);
    assert!(run.u64_at("/verify/stale") > 0, "{}", run.stdout);
    assert_eq!(run.u64_at("/verify/corrupt"), 0, "an older value of the same key is stale, not corrupt");
}

#[test]
fn verify_reports_lost_writes_unless_misses_are_allowed() {
    let redis = Redis::start(&[]);
    let flush = |con: &mut redis::Connection| redis::cmd("FLUSHALL").exec(con).unwrap();
    let run = verify_while(&redis, &[], flush);
    assert_eq!(run.status, 3, "{}", run.stdout);
    assert!(run.u64_at("/verify/lost") > 0, "{}", run.stdout);
    let run = verify_while(&redis, &["--verify-allow-miss"], flush);
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert_eq!(run.u64_at("/verify/lost"), 0);
    assert!(run.u64_at("/verify/misses_accepted") > 0);
}

#[test]
fn password_from_the_uri() {
    let redis = Redis::start(&["--requirepass", "s3cret"]);
    let uri = format!("redis://:s3cret@127.0.0.1:{}", redis.port);
    let run = run_loadgen(&["--uri", &uri, "--requests", "50", "--clients", "2"]);
    assert_eq!(run.status, 0, "{}", run.stdout);
    let mut con = redis.client_with_password("s3cret");
    assert_eq!(redis.calls(&mut con, "get") + redis.calls(&mut con, "set"), 100);
    let wrong = format!("redis://:nope@127.0.0.1:{}", redis.port);
    let run = run_loadgen(&["--uri", &wrong, "--requests", "3", "--clients", "1"]);
    assert_eq!(run.status, 2);
    assert_eq!(run.error_count("WRONGPASS"), 3, "{}", run.report["errors"]);
}

#[test]
fn test_time_in_bare_seconds_as_memtier() {
    let redis = Redis::start(&[]);
    let port = redis.port.to_string();
    let run = run_loadgen(&["--port", &port, "--clients", "2", "--keys", "100", "--test-time", "1"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.report["settings"]["test_time_s"].as_f64(), Some(1.0), "{}", run.report["settings"]);
    let measured = run.report["measured_s"].as_f64().unwrap();
    assert!((0.9..3.0).contains(&measured), "ran {measured} s for --test-time 1");
    assert!(run.u64_at("/overall/requests") > 0);
}
