//! Test support: real `ringcache-proxy`, `ringcache-shard`, `redis-server` and `nutcracker` processes on
//! free loopback ports, each stopped when its guard drops (also when a test panics).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use ringcache_testkit::free_port;

pub mod wire;

/// A child process listening on `port`, killed on drop.
pub struct Proc {
    pub port: u16,
    pub name: String,
    child: Option<Child>,
    /// A shard's own snapshot directory, removed after the process is stopped.
    temp_dir: Option<tempfile::TempDir>,
}

impl Proc {
    /// Spawns `cmd` and polls `port` until it accepts connections.
    pub fn spawn(name: &str, mut cmd: Command, port: u16) -> Proc {
        for (k, _) in std::env::vars() {
            if k.starts_with("RINGCACHE_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd.stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut p = Proc { port, name: name.to_string(), child: Some(child), temp_dir: None };
        ringcache_testkit::wait_listening(name, port, p.child.as_mut().unwrap());
        p
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }

    /// A client speaking RESP3 (HELLO 3 at connect).
    pub fn client_resp3(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal and waits for exit; returns the exit code.
    pub fn stop_with(&mut self, signal: &str) -> Option<i32> {
        let child = self.child.as_mut().unwrap();
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(Instant::now() < deadline, "{} did not exit after {signal}", self.name);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `ringcache-shard` binary next to the proxy's. `cargo test --workspace` builds it with everything
/// else; after `cargo test -p ringcache-proxy` alone it may be missing or older than the shard's sources, and
/// is then built once per test binary.
pub fn shard_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| sibling_binary("ringcache-shard", "shard")).clone()
}

/// The `ringcache-loadgen` binary next to the proxy's, built like [`shard_binary`].
pub fn loadgen_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| sibling_binary("ringcache-loadgen", "loadgen")).clone()
}

fn sibling_binary(package: &str, source_dir: &str) -> PathBuf {
    let proxy = PathBuf::from(env!("CARGO_BIN_EXE_ringcache-proxy"));
    let dir = proxy.parent().unwrap().to_path_buf();
    let binary = dir.join(package);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources = [root.join(source_dir), root.join("common"), root.join("Cargo.lock")];
    let newest_source = sources.iter().filter_map(|p| newest_mtime(p)).max();
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    if built.is_none() || newest_source > built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package, "--bin", package]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building {package} failed");
    }
    binary
}

/// The newest modification time of a file, or of any file under a directory.
fn newest_mtime(path: &std::path::Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|e| e.ok()).filter_map(|e| newest_mtime(&e.path())).max()
}

pub fn start_shard(extra: &[&str]) -> Proc {
    start_shard_on(free_port(), extra)
}

/// A shard on `port` with a fresh snapshot directory of its own (removed when the shard is dropped).
pub fn start_shard_on(port: u16, extra: &[&str]) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_shard_in(port, dir.path(), extra);
    p.temp_dir = Some(dir);
    p
}

/// A shard on `port` keeping its snapshots in `dir` (which outlives it, so a restart finds them).
pub fn start_shard_in(port: u16, dir: &std::path::Path, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(shard_binary());
    cmd.args(["--port", &port.to_string(), "--metrics-port", "0", "--log", "warn", "--dir"]).arg(dir).args(extra);
    Proc::spawn("ringcache-shard", cmd, port)
}

pub fn start_redis() -> Proc {
    start_redis_on(free_port())
}

pub fn start_redis_on(port: u16) -> Proc {
    let mut cmd = Command::new("redis-server");
    // One database, as a shard has: MOVE, SWAPDB and COPY ... DB answer the same behind the proxy.
    cmd.args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(["--databases", "1"])
        .stdout(Stdio::null());
    Proc::spawn("redis-server", cmd, port)
}

/// Starts a proxy over `shards` given as (name, address) pairs.
pub fn start_proxy(shards: &[(&str, String)], extra: &[&str]) -> Proc {
    let port = free_port();
    let list: Vec<String> = shards.iter().map(|(n, a)| format!("{n}={a}")).collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", "0", "--log", "warn", "--shards", &list.join(",")])
        .args(extra);
    Proc::spawn("ringcache-proxy", cmd, port)
}

/// Starts a proxy over `shards` with a `/metrics` endpoint; returns it and the metrics port.
pub fn start_proxy_with_metrics(shards: &[(&str, String)], extra: &[&str]) -> (Proc, u16) {
    let (port, metrics_port) = (free_port(), free_port());
    let list: Vec<String> = shards.iter().map(|(n, a)| format!("{n}={a}")).collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", &metrics_port.to_string(), "--log", "warn"])
        .args(["--shards", &list.join(",")])
        .args(extra);
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", metrics_port)).is_err() {
        assert!(Instant::now() < deadline, "no /metrics on {metrics_port}");
        std::thread::sleep(Duration::from_millis(10));
    }
    (proxy, metrics_port)
}

/// Three ringcache shards named s1..s3 and a proxy over them.
pub struct Cluster {
    pub shards: Vec<Proc>,
    pub proxy: Proc,
}

pub fn cluster_of_shards(proxy_extra: &[&str]) -> Cluster {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let proxy = start_proxy(&names, proxy_extra);
    Cluster { shards, proxy }
}

pub fn cluster_of_redis(proxy_extra: &[&str]) -> Cluster {
    let shards: Vec<Proc> = (0..3).map(|_| start_redis()).collect();
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let proxy = start_proxy(&names, proxy_extra);
    Cluster { shards, proxy }
}

/// Offset of the `\r\n` ending the line at `buf[from..]`.
pub fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

/// End of the complete reply at `buf[from..]`, or `None` when it is not all there yet.
pub fn reply_end(buf: &[u8], from: usize) -> Option<usize> {
    let end = line_end(buf, from)?;
    let after = end + 2;
    match buf[from] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = std::str::from_utf8(&buf[from + 1..end]).unwrap().parse().unwrap();
            if n < 0 {
                return Some(after);
            }
            let stop = after + n as usize + 2;
            (buf.len() >= stop).then_some(stop)
        }
        b'*' | b'>' | b'~' | b'%' => {
            let n: i64 = std::str::from_utf8(&buf[from + 1..end]).unwrap().parse().unwrap();
            let items = if buf[from] == b'%' { 2 * n } else { n };
            let mut at = after;
            for _ in 0..items.max(0) {
                at = reply_end(buf, at)?;
            }
            Some(at)
        }
        other => panic!("not a RESP reply: starts with {:?} in {:?}", other as char, String::from_utf8_lossy(buf)),
    }
}

/// The arguments of one whole RESP request (an array of bulk strings).
pub fn request_args(request: &[u8]) -> Vec<Vec<u8>> {
    let header_end = line_end(request, 0).unwrap();
    let count: usize = std::str::from_utf8(&request[1..header_end]).unwrap().parse().unwrap();
    let mut at = header_end + 2;
    (0..count)
        .map(|_| {
            let end = line_end(request, at).unwrap();
            let len: usize = std::str::from_utf8(&request[at + 1..end]).unwrap().parse().unwrap();
            at = end + 2 + len + 2;
            request[end + 2..end + 2 + len].to_vec()
        })
        .collect()
}

/// A raw client connection that reads whole replies.
pub struct RawClient {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        RawClient { s, buf: Vec::new() }
    }

    /// Reads one whole reply; fails the test if none arrives by `deadline` or the server closes.
    pub fn read_reply(&mut self, deadline: Instant) -> Vec<u8> {
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            if !self.buf.is_empty() {
                if let Some(end) = reply_end(&self.buf, 0) {
                    return self.buf.drain(..end).collect();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let have = String::from_utf8_lossy(&self.buf[..self.buf.len().min(300)]).into_owned();
            assert!(!left.is_zero(), "no reply in time (have {} bytes: {have:?})", self.buf.len());
            self.s.set_read_timeout(Some(left)).unwrap();
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// Polls `f` every 20 ms until it returns true; fails the test after `limit`.
pub fn poll_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Scrapes `/metrics` over plain HTTP; returns the body.
pub fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    body.to_string()
}

/// The value of the sample `name{labels}` (labels in any order), if present.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let set: Vec<&str> = rest.trim_end_matches('}').split(',').filter(|p| !p.is_empty()).collect();
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        (set.len() == wanted.len() && wanted.iter().all(|w| set.contains(&w.as_str()))).then(|| value.parse().unwrap())
    })
}

pub fn backend_up(metrics_port: u16, shard: &str) -> bool {
    sample(&scrape(metrics_port), "ringcache_proxy_backend_up", &[("shard", shard)]) == Some(1.0)
}

pub fn signal(p: &Proc, sig: &str) {
    assert!(Command::new("kill").args([sig, &p.pid().to_string()]).status().unwrap().success());
}

pub fn commands_processed(p: &Proc) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(&mut p.client()).unwrap();
    info.lines().find_map(|l| l.strip_prefix("total_commands_processed:")).unwrap().trim().parse().unwrap()
}

/// `ringcache-loadgen --verify` through a proxy until [`Loadgen::finish`].
pub struct Loadgen {
    child: Child,
    json: tempfile::NamedTempFile,
}

impl Loadgen {
    pub fn start(port: u16, prefix: &str, extra: &[&str]) -> Loadgen {
        let json = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(loadgen_binary())
            .args(["--port", &port.to_string(), "--key-prefix", prefix, "--clients", "4", "--keys", "2000"])
            .args(["--ratio", "1:1", "--verify", "--test-time", "300s", "--max-error-rate", "1"])
            .args(["--timeout-ms", "3000", "--json-out"])
            .arg(json.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Loadgen { child, json }
    }

    /// Ends the run (SIGINT) and returns its report.
    pub fn finish(mut self) -> serde_json::Value {
        assert!(Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "loadgen still running after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
        serde_json::from_str(&std::fs::read_to_string(self.json.path()).unwrap()).unwrap()
    }
}

impl Drop for Loadgen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn verify_counts(report: &serde_json::Value) -> (u64, u64, u64, u64) {
    let v = &report["verify"];
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no verify.{k} in {v}"));
    (n("checked"), n("lost"), n("stale"), n("corrupt"))
}
