//! Test support: start a real `ringcache-shard` process on free loopback ports and stop it afterwards.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running shard; killed when dropped, so it stops even when a test panics.
pub struct Shard {
    pub port: u16,
    pub metrics_port: u16,
    child: Option<Child>,
    /// The snapshot directory when the harness made it (removed after the shard stops).
    temp_dir: Option<tempfile::TempDir>,
    /// What the shard wrote to stderr so far (also echoed to the test's stderr).
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

pub use ringcache_testkit::{free_port, wait_listening};

impl Shard {
    /// Starts a shard with extra flags (`--port` and `--metrics-port` are chosen here).
    pub fn start(extra: &[&str]) -> Shard {
        Self::start_with_metrics(extra, false)
    }

    /// Starts a shard with its own fresh snapshot directory.
    pub fn start_with_metrics(extra: &[&str], metrics: bool) -> Shard {
        let dir = tempfile::tempdir().unwrap();
        let mut shard = Self::start_in(dir.path(), extra, metrics);
        shard.temp_dir = Some(dir);
        shard
    }

    /// Starts a shard whose snapshots live in `dir` (which outlives it, so a restart finds them).
    pub fn start_in(dir: &std::path::Path, extra: &[&str], metrics: bool) -> Shard {
        let mut shard = Self::spawn(dir, extra, metrics);
        shard.wait_ready(metrics);
        shard
    }

    /// Starts a shard without waiting for it to listen (for tests of start-up failures).
    pub fn spawn(dir: &std::path::Path, extra: &[&str], metrics: bool) -> Shard {
        let port = free_port();
        let metrics_port = if metrics { free_port() } else { 0 };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-shard"));
        // The tester's own RINGCACHE_* settings must not change what the tests run against.
        for (name, _) in std::env::vars() {
            if name.starts_with("RINGCACHE_") {
                cmd.env_remove(name);
            }
        }
        let child = cmd
            .args(["--port", &port.to_string(), "--metrics-port", &metrics_port.to_string(), "--log", "warn"])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ringcache-shard");
        let mut shard = Shard {
            port,
            metrics_port,
            child: Some(child),
            temp_dir: None,
            stderr: Arc::default(),
            stderr_reader: None,
        };
        shard.forward_stderr();
        shard
    }

    fn forward_stderr(&mut self) {
        let mut pipe = self.child.as_mut().unwrap().stderr.take().unwrap();
        let sink = self.stderr.clone();
        self.stderr_reader = Some(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                eprint!("{text}");
                sink.lock().unwrap().push_str(&text);
            }
        }));
    }

    /// Everything the shard has written to stderr (complete once it has exited).
    pub fn stderr_text(&mut self) -> String {
        if self.child.is_none() {
            if let Some(reader) = self.stderr_reader.take() {
                let _ = reader.join();
            }
        }
        self.stderr.lock().unwrap().clone()
    }

    /// Polls until the shard listens on `port` (a port other than `--port`, such as `--tls-port`).
    pub fn wait_port(&mut self, port: u16) {
        wait_listening("ringcache-shard", port, self.child.as_mut().unwrap());
    }

    fn wait_ready(&mut self, metrics: bool) {
        let child = self.child.as_mut().unwrap();
        wait_listening("ringcache-shard", self.port, child);
        if metrics {
            wait_listening("ringcache-shard", self.metrics_port, child);
        }
    }

    /// Waits for the process to exit on its own; returns its exit code and everything it wrote to stderr.
    pub fn wait_exit(&mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("shard did not exit within 30s");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        (status.code(), self.stderr_text())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }

    /// A raw TCP connection with a read timeout, for byte-level tests.
    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(s)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal and waits for the process to exit; returns its exit code.
    pub fn stop_with(&mut self, signal: &str) -> Option<i32> {
        let child = self.child.as_mut().unwrap();
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(Instant::now() < deadline, "shard did not exit after {signal}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident set size of the process in bytes.
    pub fn rss_bytes(&self) -> usize {
        let statm = std::fs::read_to_string(format!("/proc/{}/statm", self.pid())).unwrap();
        statm.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 4096
    }

    /// GET /metrics over plain HTTP.
    pub fn metrics(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
    }

    /// A field of INFO, parsed as a number.
    pub fn info_field(&self, con: &mut redis::Connection, field: &str) -> u64 {
        info_value(con, field).parse().unwrap()
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw client socket.
pub struct Raw(pub TcpStream);

impl Raw {
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    /// Reads until `n` bytes arrived, the peer closed, or the read timed out; returns what came.
    pub fn read_exact_or_eof(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        let mut got = 0;
        while got < n {
            match self.0.read(&mut out[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                // A timeout ends the read; the caller's assertion shows what did arrive.
                Err(_) => break,
            }
        }
        out.truncate(got);
        out
    }

    /// Sends `request` and reads exactly `expected.len()` bytes of reply; asserts they match.
    pub fn expect(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request);
        let got = self.read_exact_or_eof(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// True when the server has closed the connection (read returns 0).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.0.read(&mut b), Ok(0))
    }
}

#[allow(unused_imports)] // not every test binary sends raw requests
pub use ringcache_testkit::resp;

/// A field of `INFO ALL`, as text.
pub fn info_value(con: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("all").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
        .trim()
        .to_string()
}

/// Polls `f` every 10 ms until it returns true; fails the test after 10 s.
pub fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A plain `redis-server` on a free port, the reference for differential tests; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts redis-server with extra arguments (`--maxmemory 2mb`, ...).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--databases", "1"])
            .args(extra)
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        wait_listening("redis-server", port, &mut child);
        RedisServer { port, child }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw connection that reads whole replies (any RESP2 or RESP3 frame, pushes included).
pub struct Framed {
    stream: TcpStream,
    buf: bytes::BytesMut,
    scanner: ringcache_common::resp::ReplyScanner,
}

impl Framed {
    pub fn connect(port: u16) -> Framed {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_nodelay(true).unwrap();
        Framed { stream, buf: bytes::BytesMut::new(), scanner: ringcache_common::resp::ReplyScanner::new() }
    }

    pub fn send(&mut self, args: &[&[u8]]) {
        self.stream.write_all(&resp(args)).unwrap();
    }

    /// The next complete frame; `None` if the server closed the connection (or nothing came in 10 s).
    pub fn frame(&mut self) -> Option<bytes::Bytes> {
        loop {
            if let Some(f) = self.scanner.next(&mut self.buf).expect("a valid RESP frame") {
                return Some(f);
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a command and returns its reply.
    pub fn call(&mut self, args: &[&str]) -> bytes::Bytes {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args);
        self.frame().expect("a reply")
    }
}
