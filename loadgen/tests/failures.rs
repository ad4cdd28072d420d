//! Failures and open loop: loadgen counts errors by kind, reconnects, never hangs, exits non-zero past
//! `--max-error-rate`, and in open loop times requests from when they should have been sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{free_port, run_loadgen, run_loadgen_within, Redis};

#[test]
fn no_server_means_connect_errors_and_a_non_zero_exit() {
    let port = free_port().to_string();
    let run = run_loadgen_within(
        Duration::from_secs(20),
        &["--port", &port, "--requests", "4", "--clients", "3", "--pipeline", "2", "--timeout-ms", "500"],
    );
    assert_eq!(run.status, 2, "{}", run.stdout);
    // Every attempt consumed one batch of 2 requests: 2 attempts per connection.
    assert_eq!(run.error_count("connect"), 12, "{}", run.report["errors"]);
    assert_eq!(run.u64_at("/overall/requests"), 12);
    assert_eq!(run.report["error_rate"].as_f64(), Some(1.0));
    assert!(run.stdout.contains("FAIL: error rate"), "{}", run.stdout);
    // Accepting every error passes.
    let run = run_loadgen(&["--port", &port, "--requests", "2", "--clients", "1", "--max-error-rate", "1"]);
    assert_eq!(run.status, 0);
}

#[test]
fn a_silent_server_times_out_instead_of_hanging() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until && held.len() < 8 {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        held
    });
    let started = Instant::now();
    let run = run_loadgen_within(
        Duration::from_secs(20),
        &["--port", &port, "--requests", "6", "--clients", "2", "--pipeline", "3", "--timeout-ms", "200"],
    );
    assert_eq!(run.status, 2, "{}", run.stdout);
    assert_eq!(run.error_count("timeout"), 12, "{}", run.report["errors"]);
    assert!(started.elapsed() < Duration::from_secs(10), "two timeouts per connection, not {:?}", started.elapsed());
    drop(holder);
}

#[test]
fn reconnects_after_the_server_comes_back() {
    let port = free_port();
    let mut redis = Redis::start_on(port, &[]);
    let port_arg = port.to_string();
    let child = std::thread::spawn(move || {
        run_loadgen_within(
            Duration::from_secs(30),
            &["--port", &port_arg, "--test-time", "4s", "--clients", "3", "--pipeline", "4", "--timeout-ms", "300"],
        )
    });
    std::thread::sleep(Duration::from_millis(1200));
    redis.kill();
    std::thread::sleep(Duration::from_millis(800));
    let redis = Redis::start_on(port, &[]);
    let run = child.join().unwrap();
    assert_eq!(run.status, 2, "errors exceed the default --max-error-rate 0: {}", run.stdout);
    let broken = run.error_count("io") + run.error_count("connect") + run.error_count("timeout");
    assert!(broken > 0, "{}", run.report["errors"]);
    // Work resumed: the restarted server served requests, and the last second had replies and no errors.
    let mut con = redis.client();
    let served = redis.calls(&mut con, "get") + redis.calls(&mut con, "set");
    assert!(served > 0);
    let timeline = run.report["timeline"].as_array().unwrap();
    let last = timeline.last().unwrap();
    assert!(last["ops_per_sec"].as_f64().unwrap() > 0.0 && last["errors"] == 0, "{timeline:?}");
    let during = timeline.iter().any(|p| p["errors"].as_u64().unwrap() > 0);
    assert!(during, "errors show in the second the server was away: {timeline:?}");
}

#[test]
fn open_loop_sends_on_schedule() {
    let redis = Redis::start(&[]);
    let port = redis.port.to_string();
    let run = run_loadgen(&[
        "--port",
        &port,
        "--rate",
        "500",
        "--test-time",
        "2s",
        "--threads",
        "2",
        "--clients",
        "2",
        "--ratio",
        "1:1",
    ]);
    assert_eq!(run.status, 0, "{}", run.stdout);
    // 500/s for 2 s over 4 connections: each sends every 8 ms, 250 requests.
    assert_eq!(run.u64_at("/overall/requests"), 1000);
    let mut con = redis.client();
    assert_eq!(redis.calls(&mut con, "get") + redis.calls(&mut con, "set"), 1000);
    assert_eq!(run.report["settings"]["mode"], "open");
    // How late the generator itself wrote requests is reported separately.
    assert!(run.report["send_lag"]["p99_ms"].is_f64(), "{}", run.report["send_lag"]);
    assert!(run.stdout.contains("send lag"), "{}", run.stdout);
}

#[test]
fn open_loop_times_from_the_intended_send_time() {
    // The server stops for 400 ms in the middle of a 2 s run at 1000 requests/s, with at most one request in
    // flight (--pipeline 1). Requests due during the stall cannot even be sent until the server resumes; timed
    // from their *actual* send they would look fast (coordinated omission), timed from their intended send
    // time each is slow by the time left until the server resumed.
    let redis = Redis::start(&[]);
    let port = redis.port.to_string();
    let pid = redis.pid().to_string();
    let pauser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    });
    let run =
        run_loadgen(&["--port", &port, "--rate", "1000", "--test-time", "2s", "--clients", "1", "--pipeline", "1"]);
    pauser.join().unwrap();
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert_eq!(run.u64_at("/overall/requests"), 2000);
    // ~400 of 2000 requests (20 %) were due during the stall, with latencies spread from 0 to 400 ms:
    // the 90th percentile lands among them (~200 ms); a closed loop would put it well under 1 ms.
    let p90 = run.report["overall"]["latency"]["p90_ms"].as_f64().unwrap();
    let max = run.report["overall"]["latency"]["max_ms"].as_f64().unwrap();
    assert!(p90 > 50.0, "p90 {p90} ms");
    assert!(max > 300.0, "max {max} ms");
}

#[test]
fn ctrl_c_ends_the_run_with_a_report() {
    let redis = Redis::start(&[]);
    let port = redis.port.to_string();
    let json = support::scratch("interrupted.json");
    let mut child = support::loadgen_command(&[
        "--port",
        &port,
        "--test-time",
        "60s",
        "--clients",
        "2",
        "--json-out",
        json.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running 20 s after SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["overall"]["ok_replies"].as_u64().unwrap() > 0);
    assert!(report["measured_s"].as_f64().unwrap() < 30.0);
}
