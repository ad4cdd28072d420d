//! Framing, limits and bad input against a real shard: protocol errors reply and close, limits hold at
//! their edges, and no input makes the server stop answering.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use support::{resp, Shard};

#[test]
fn inline_commands_and_pipelines() {
    let shard = Shard::start(&[]);
    let mut raw = shard.raw();
    raw.expect(b"PING\r\n", b"+PONG\r\n");
    raw.expect(b"set k \"a b\"\r\nget k\n", b"+OK\r\n$3\r\na b\r\n");
    // A thousand pipelined requests in one write: a thousand replies, in order.
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(&resp(&[b"ECHO", i.to_string().as_bytes()]));
    }
    let expected: Vec<u8> =
        (0..1000).flat_map(|i: i32| format!("${}\r\n{}\r\n", i.to_string().len(), i).into_bytes()).collect();
    raw.expect(&batch, &expected);
    // The same requests trickled one byte at a time.
    let req = resp(&[b"SET", b"slow", b"value"]);
    for b in &req {
        raw.send(std::slice::from_ref(b));
    }
    assert_eq!(raw.read_exact_or_eof(5), b"+OK\r\n");
}

#[test]
fn large_values_round_trip() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let value = vec![b'x'; 4 << 20];
    let _: () = redis::cmd("SET").arg("big").arg(&value).query(&mut con).unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(got, value);
}

fn expect_protocol_error(shard: &Shard, request: &[u8], message: &str) {
    let mut raw = shard.raw();
    raw.expect(request, format!("-ERR Protocol error: {message}\r\n").as_bytes());
    assert!(raw.is_closed(), "connection stays open after {message}");
}

#[test]
fn protocol_errors_reply_and_close() {
    let shard = Shard::start(&[]);
    expect_protocol_error(&shard, b"*2\r\n+GET\r\n", "expected '$', got '+'");
    expect_protocol_error(&shard, b"*x\r\n", "invalid multibulk length");
    expect_protocol_error(&shard, b"*1\r\n$-5\r\n", "invalid bulk length");
    expect_protocol_error(&shard, b"*1\r\n$4\r\nPINGxx", "expected '\\r\\n' after bulk string");
    expect_protocol_error(&shard, b"echo \"unterminated\r\n", "unbalanced quotes in request");
    // Replies to the requests before the bad one still arrive first.
    let mut raw = shard.raw();
    raw.expect(b"PING\r\n*1\r\n!", b"+PONG\r\n-ERR Protocol error: expected '$', got '!'\r\n");
    assert!(raw.is_closed());
}

#[test]
fn request_limits_hold_at_their_edges() {
    let shard = Shard::start(&[
        "--proto-max-bulk-len",
        "1kb",
        "--proto-max-multibulk-len",
        "3",
        "--proto-max-inline-len",
        "16",
    ]);
    let mut raw = shard.raw();
    let at_limit = vec![b'v'; 1024];
    raw.expect(&resp(&[b"SET", b"k", &at_limit]), b"+OK\r\n");
    expect_protocol_error(&shard, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n", "invalid bulk length");
    raw.expect(&resp(&[b"MGET", b"a", b"b"]), b"*2\r\n$-1\r\n$-1\r\n");
    expect_protocol_error(&shard, b"*4\r\n", "invalid multibulk length");
    raw.expect(b"ECHO 123456789ab\r\n", b"$11\r\n123456789ab\r\n"); // a 16-byte line
    expect_protocol_error(&shard, b"ECHO 123456789abc\r\n", "too big inline request");
    // A value may not grow past the bulk limit by APPEND either.
    raw.expect(&resp(&[b"APPEND", b"k", b"x"]), b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
}

/// Connects once a client slot is free. A slot is freed when the server notices a client has closed, which
/// happens asynchronously (the port probe in `Shard::start` also briefly holds one).
fn connect_when_slot_free(shard: &Shard) -> support::Raw {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut raw = shard.raw();
        raw.send(b"PING\r\n");
        let got = raw.read_exact_or_eof(7);
        if got == b"+PONG\r\n" {
            return raw;
        }
        assert_eq!(got, b"-ERR ma", "unexpected reply");
        assert!(Instant::now() < deadline, "no client slot freed within 10s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn maxclients_refuses_the_extra_client_and_recovers() {
    let shard = Shard::start(&["--maxclients", "2"]);
    let a = connect_when_slot_free(&shard);
    let mut b = connect_when_slot_free(&shard);
    let mut c = shard.raw();
    assert_eq!(c.read_exact_or_eof(64), b"-ERR max number of clients reached\r\n");
    assert!(c.is_closed());
    drop(a);
    let _d = connect_when_slot_free(&shard);
    b.expect(b"INFO stats\r\n", b"$");
    let header = b.read_exact_or_eof(5);
    let len: usize = String::from_utf8_lossy(&header).trim_end_matches(['\r', '\n', '$']).trim().parse().unwrap_or(0);
    let body = b.read_exact_or_eof(len);
    let stats = String::from_utf8_lossy(&body);
    let rejected: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("rejected_connections:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(rejected >= 1, "{stats}");
}

#[test]
fn requirepass_demands_auth_first() {
    let shard = Shard::start(&["--requirepass", "s3cret"]);
    let mut raw = shard.raw();
    raw.expect(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    raw.expect(b"FOO\r\n", b"-ERR unknown command 'FOO', with args beginning with: \r\n");
    raw.expect(b"AUTH wrong\r\n", b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    raw.expect(b"AUTH nobody s3cret\r\n", b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    raw.expect(b"AUTH s3cret\r\n", b"+OK\r\n");
    raw.expect(b"SET k v\r\n", b"+OK\r\n");
    raw.expect(b"RESET\r\n", b"+RESET\r\n");
    raw.expect(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    raw.expect(&resp(&[b"AUTH", b"default", b"s3cret"]), b"+OK\r\n");
    raw.expect(b"GET k\r\n", b"$1\r\nv\r\n");
    // HELLO can authenticate; without AUTH it is refused.
    let mut h = shard.raw();
    h.send(b"HELLO 2\r\n");
    let got = h.read_exact_or_eof(8);
    assert_eq!(got, b"-NOAUTH ");
    let mut h = shard.raw();
    h.send(b"HELLO 2 AUTH default s3cret\r\n");
    assert_eq!(h.read_exact_or_eof(4), b"*14\r");
    // Before AUTH, requests are held to Redis's unauthenticated limits.
    expect_protocol_error(&shard, b"*11\r\n", "unauthenticated multibulk length");
    expect_protocol_error(&shard, b"*2\r\n$4\r\nAUTH\r\n$16385\r\n", "unauthenticated bulk length");
    // Clients connect with the redis crate too.
    let client = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{}/", shard.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
}

#[test]
fn idle_clients_are_closed_after_the_timeout() {
    let shard = Shard::start(&["--idle-timeout", "300ms"]);
    let mut raw = shard.raw();
    raw.expect(b"PING\r\n", b"+PONG\r\n");
    let started = Instant::now();
    assert!(raw.is_closed());
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(250), "closed after only {idle:?}");
    // An active client is not closed.
    let mut busy = shard.raw();
    for _ in 0..6 {
        busy.expect(b"PING\r\n", b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_finishes_in_flight_replies_and_exits_zero() {
    let mut shard = Shard::start(&[]);
    let mut raw = shard.raw();
    let mut batch = Vec::new();
    for i in 0..20_000 {
        batch.extend_from_slice(&resp(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
    }
    raw.send(&batch);
    // Wait until the server is executing the pipeline, then ask it to stop.
    assert_eq!(raw.read_exact_or_eof(5), b"+OK\r\n");
    assert_eq!(shard.stop_with("TERM"), Some(0));
    let rest = raw.read_exact_or_eof(20_000 * 5);
    // Whatever arrived is whole replies only: nothing cut mid-reply.
    assert_eq!(rest.len() % 5, 0);
    assert!(rest.chunks(5).all(|c| c == b"+OK\r\n"));
    assert!(TcpStream::connect(("127.0.0.1", shard.port)).is_err(), "still accepting after shutdown");

    let mut shard = Shard::start(&[]);
    assert_eq!(shard.stop_with("INT"), Some(0));
}

/// A shard whose stderr reader has gone away (`ringcache-shard ... 2>&1 | head -1`) still stops on SIGTERM:
/// log lines it cannot write are dropped, not turned into a panic in the signal handler.
#[test]
fn sigterm_works_when_stderr_is_a_broken_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache-shard"))
        .args(["--port", &port.to_string(), "--metrics-port", "0"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // the reader goes away
    support::wait_listening("ringcache-shard", port, &mut child);
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the shard ignored SIGTERM with a broken stderr");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

/// Random bytes, cut at random points, never crash or wedge the server: after each case a fresh client
/// still gets PONG. One shard serves all cases and is stopped when the test ends.
#[test]
fn random_bytes_never_break_the_server() {
    let shard = Shard::start(&["--maxmemory", "64mb"]);
    let strategy = (proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..16), any::<bool>());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 128, ..ProptestConfig::default() });
    runner
        .run(&strategy, |(chunks, prefix_resp)| {
            let mut s = TcpStream::connect(("127.0.0.1", shard.port)).unwrap();
            if prefix_resp {
                let _ = s.write_all(b"*3\r\n$3\r\nSET\r\n");
            }
            for c in &chunks {
                if s.write_all(c).is_err() {
                    break;
                }
            }
            drop(s);
            let mut probe = shard.raw();
            probe.expect(b"PING\r\n", b"+PONG\r\n");
            Ok(())
        })
        .unwrap();
}
