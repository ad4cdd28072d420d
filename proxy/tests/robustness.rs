//! A proxy that protects itself and says what is wrong, against real shards: a client that never reads its
//! replies (`--client-output-buffer-limit`), a 512 MB value next to other clients (`--timeout` measures
//! silence), a write whose shard froze (its outcome is unknown, and the error says so), connection bursts
//! (`--tcp-backlog`), and a wrong or missing `--shard-password`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcache_testkit::resp as cmd;
use support::{free_port, poll_until, sample, scrape, signal, start_shard, Proc, RawClient};

/// A raw connection, reading whole replies.
struct Client(RawClient);

impl Client {
    fn connect(port: u16) -> Client {
        Client(RawClient::connect(port))
    }

    /// The next whole reply, within 30 s.
    fn reply(&mut self) -> Vec<u8> {
        self.0.read_reply(Instant::now() + Duration::from_secs(30))
    }

    fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.0.s.write_all(&cmd(args)).unwrap();
        self.reply()
    }

    fn call_s(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&self.call(&args)).into_owned()
    }

    /// Reads until the peer closes the connection (within 30 s); returns how many bytes came.
    fn read_until_closed(&mut self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut chunk = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the proxy kept the connection open");
            self.0.s.set_read_timeout(Some(left)).unwrap();
            match self.0.s.read(&mut chunk) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return total,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// A client that SETs and GETs a small key until `stop`, checking every reply; joins to how many it did.
fn bystander(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut c = Client::connect(port);
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let v = n.to_string();
            assert_eq!(c.call_s(&["SET", "small", &v]), "+OK\r\n");
            assert_eq!(c.call_s(&["GET", "small"]), String::from_utf8(bulk(v.as_bytes())).unwrap());
            n += 1;
        }
        n
    })
}

/// Tests that move hundreds of megabytes, or time a shard's silence, take turns: run side by side on a small
/// machine, one's copying is the other's silence.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

/// A proxy over `shards` with /metrics and its log (stderr) kept in a file.
struct LoggedProxy {
    proc: Proc,
    metrics_port: u16,
    log: tempfile::NamedTempFile,
}

impl LoggedProxy {
    fn start(shards: &[(&str, String)], extra: &[&str]) -> LoggedProxy {
        let (port, metrics_port) = (free_port(), free_port());
        let list: Vec<String> = shards.iter().map(|(n, a)| format!("{n}={a}")).collect();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
        cmd.args(["--port", &port.to_string(), "--metrics-port", &metrics_port.to_string(), "--log", "warn"])
            .args(["--shards", &list.join(",")])
            .args(extra)
            .stderr(log.reopen().unwrap());
        let proc = Proc::spawn("ringcache-proxy", cmd, port);
        poll_until("/metrics is served", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", metrics_port)).is_ok()
        });
        LoggedProxy { proc, metrics_port, log }
    }

    fn port(&self) -> u16 {
        self.proc.port
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        sample(&scrape(self.metrics_port), name, labels)
    }
}

/// A field of `INFO` (any section) from a server.
fn info_field(port: u16, field: &str) -> String {
    let mut c = Client::connect(port);
    let info = c.call(&[b"INFO"]);
    let text = String::from_utf8_lossy(&info).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .to_string()
}

fn rss_mb(p: &Proc) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{}/statm", p.pid())).unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096 / (1 << 20)
}

// ---------------------------------------------------------------------------------------------------------
// --shard-password

/// A wrong or missing `--shard-password` is named as such in the client's error, the log, the metrics
/// (`kind="auth"`), and in CLUSTERDOWN once the shard is ejected for it.
#[test]
fn a_wrong_or_missing_shard_password_is_named_in_errors_log_and_metrics() {
    let shard = start_shard(&["--requirepass", "right"]);
    let shards = [("s1", shard.addr())];
    let keep = ["--health-interval", "100ms", "--failure-limit", "1000000", "--timeout", "500ms"];
    let cases = [
        (Some("wrong"), "rejected the proxy's password: check --shard-password", "-WRONGPASS"),
        (None, "requires a password: set --shard-password", "-NOAUTH"),
    ];
    for (password, says, shard_reply) in cases {
        let mut extra = keep.to_vec();
        if let Some(pw) = password {
            extra.extend(["--shard-password", pw]);
        }
        let proxy = LoggedProxy::start(&shards, &extra);
        let mut c = Client::connect(proxy.port());
        assert_eq!(c.call_s(&["GET", "k"]), format!("-ERR ringcache-proxy: shard 's1' {says}\r\n"));
        assert_eq!(c.call_s(&["SET", "k", "v"]), format!("-ERR ringcache-proxy: shard 's1' {says}\r\n"));
        let auth_errors = || proxy.metric("ringcache_proxy_backend_errors_total", &[("shard", "s1"), ("kind", "auth")]);
        assert!(auth_errors().unwrap() >= 2.0, "{:?}", auth_errors());
        for kind in ["unreachable", "closed", "timeout"] {
            let n = proxy.metric("ringcache_proxy_backend_errors_total", &[("shard", "s1"), ("kind", kind)]);
            assert_eq!(n, Some(0.0), "kind {kind}");
        }
        poll_until("the log names the password", Duration::from_secs(10), || {
            proxy.log().contains(&format!("shard 's1' ({}) {says} (it replied {shard_reply}", shard.addr()))
        });
        // Said once, not at every health check.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(proxy.log().matches(says).count(), 1, "{}", proxy.log());
    }
    // With the usual failure limit the shard is ejected for it, and CLUSTERDOWN says why.
    let proxy =
        LoggedProxy::start(&shards, &["--health-interval", "100ms", "--failure-limit", "2", "--shard-password", "x"]);
    let mut c = Client::connect(proxy.port());
    poll_until("the shard is ejected", Duration::from_secs(10), || c.call_s(&["GET", "k"]).starts_with("-CLUSTERDOWN"));
    assert_eq!(
        c.call_s(&["GET", "k"]),
        "-CLUSTERDOWN ringcache-proxy: no shard is available (1 of 1 failed to authenticate: shard 's1' rejected \
         the proxy's password: check --shard-password)\r\n"
    );
    let log = proxy.log();
    assert!(
        log.contains("failed 2 health checks (the last found that the shard rejected the proxy's password"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// --client-output-buffer-limit

/// A client pipelining GETs of a 1 MB value and never reading: the proxy stops reading it once its unsent
/// replies reach the soft limit, holds a bounded amount for it, and serves another client on the same shard
/// connection meanwhile; when it leaves, so does its memory.
#[test]
fn a_client_that_never_reads_is_not_read_from_and_holds_up_nobody() {
    let _turn = heavy();
    let shard = start_shard(&["--maxmemory", "64mb"]);
    // One worker: the two clients share one connection to the shard.
    let proxy = LoggedProxy::start(&[("s1", shard.addr())], &["--threads", "1"]);
    let port = proxy.port();
    let value = vec![b'v'; 1 << 20];
    assert_eq!(Client::connect(port).call(&[b"SET", b"big", &value]), b"+OK\r\n");
    let baseline_mb = rss_mb(&proxy.proc);

    // The bad client: GETs written as fast as the proxy takes them, never a reply read.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let greedy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let writer = {
        let (stop, sent, mut s) = (stop.clone(), sent.clone(), greedy.try_clone().unwrap());
        std::thread::spawn(move || {
            let batch = cmd(&[b"GET", b"big"]).repeat(64);
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(&batch).is_err() {
                    return;
                }
                sent.fetch_add(64, Ordering::Relaxed);
            }
        })
    };
    // A bystander on the same shard, checking every value.
    let bystander = bystander(port, stop.clone());
    poll_until("the greedy client is held back", Duration::from_secs(30), || {
        info_field(port, "output_limited_clients") == "1"
    });
    // It stopped being read: what it sent stops growing (its socket buffers are full).
    let mut last = 0;
    poll_until("the greedy client's writes block", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(200));
        let now = sent.load(Ordering::Relaxed);
        std::mem::replace(&mut last, now) == now
    });
    let held_mb = rss_mb(&proxy.proc);
    eprintln!("baseline {baseline_mb} MB, with the greedy client {held_mb} MB, {last} GETs sent");
    // Its pending GETs (thousands, 1 MB each) are not fetched: a few times the 8 MB soft limit at most.
    assert!(held_mb < baseline_mb + 64, "the proxy grew from {baseline_mb} MB to {held_mb} MB");
    assert_eq!(proxy.metric("ringcache_proxy_output_limited_clients", &[]), Some(1.0));
    let recent: f64 = proxy.metric("ringcache_proxy_client_recent_max_output_buffer_bytes", &[]).unwrap();
    assert!(recent >= f64::from(8 << 20), "recent max output buffer {recent}");

    // It leaves: no longer counted, and its memory is given back while the bystander goes on.
    stop.store(true, Ordering::Relaxed);
    greedy.shutdown(std::net::Shutdown::Both).unwrap();
    writer.join().unwrap();
    drop(greedy);
    let served = bystander.join().unwrap();
    assert!(served > 0);
    poll_until("the greedy client is gone", Duration::from_secs(10), || {
        info_field(port, "output_limited_clients") == "0" && info_field(port, "connected_clients") == "1"
    });
    // What it held is freed; the allocator may keep some freed pages mapped for reuse, so allow up to three
    // soft limits (24 MB) over the baseline, far below the thousands of MB its pending GETs would take.
    let mut c = Client::connect(port);
    poll_until("its memory is given back", Duration::from_secs(10), || {
        assert_eq!(c.call_s(&["GET", "small"]).as_bytes()[0], b'$');
        eprintln!("rss {} MB", rss_mb(&proxy.proc));
        rss_mb(&proxy.proc) < baseline_mb + 24
    });
    assert_eq!(info_field(port, "client_output_buffer_limit_disconnections"), "0");
}

/// The hard limit disconnects a client at once, and the soft limit does after soft-seconds; both are
/// counted. A reply larger than the hard limit still goes through (only replies queued behind the one being
/// written count).
#[test]
fn output_limits_disconnect_and_say_so() {
    let _turn = heavy();
    let shard = start_shard(&["--maxmemory", "64mb"]);
    let value = vec![b'v'; 1 << 20];
    let proxy = LoggedProxy::start(&[("s1", shard.addr())], &["--client-output-buffer-limit", "4mb 1mb 0"]);
    let port = proxy.port();
    let mut c = Client::connect(port);
    assert_eq!(c.call(&[b"SET", b"big", &value]), b"+OK\r\n");
    assert_eq!(c.call(&[b"GET", b"big"]), bulk(&value), "one reply over the soft limit goes through");
    let huge = vec![b'h'; 6 << 20];
    assert_eq!(c.call(&[b"SET", b"huge", &huge]), b"+OK\r\n");
    assert_eq!(c.call(&[b"GET", b"huge"]), bulk(&huge), "one reply over the hard limit goes through");
    // Small replies first, so the proxy expects small ones; then 64 large ones at once, none read.
    let mut greedy = Client::connect(port);
    for _ in 0..64 {
        assert_eq!(greedy.call(&[b"GET", b"missing"]), b"$-1\r\n");
    }
    greedy.0.s.write_all(&cmd(&[b"GET", b"big"]).repeat(64)).unwrap();
    poll_until("the greedy client is disconnected", Duration::from_secs(30), || {
        info_field(port, "client_output_buffer_limit_disconnections") == "1"
    });
    let got = greedy.read_until_closed();
    assert!(got < 64 << 20, "all {got} bytes of replies arrived");
    assert_eq!(proxy.metric("ringcache_proxy_output_limit_disconnections_total", &[]), Some(1.0));
    assert!(proxy.log().contains("over the hard limit of --client-output-buffer-limit"), "{}", proxy.log());
    drop(proxy);

    // Soft limit for one second.
    let proxy = LoggedProxy::start(&[("s1", shard.addr())], &["--client-output-buffer-limit", "0 1mb 1"]);
    let port = proxy.port();
    let mut greedy = Client::connect(port);
    greedy.0.s.write_all(&cmd(&[b"GET", b"big"]).repeat(16)).unwrap();
    let started = Instant::now();
    poll_until("the greedy client is disconnected", Duration::from_secs(30), || {
        info_field(port, "client_output_buffer_limit_disconnections") == "1"
    });
    assert!(started.elapsed() >= Duration::from_secs(1), "closed after {:?}", started.elapsed());
    let got = greedy.read_until_closed();
    assert!(got < 16 << 20, "all {got} bytes of replies arrived");
    assert!(proxy.log().contains("stayed over the soft limit"), "{}", proxy.log());
    let mut c = Client::connect(port);
    assert_eq!(
        c.call_s(&["CONFIG", "GET", "client-output-buffer-limit"]).lines().nth(4),
        Some("normal 0 1048576 1 slave 0 0 0 pubsub 0 0 0")
    );
}

// ---------------------------------------------------------------------------------------------------------
// --timeout

/// A 512 MB value goes through the proxy both ways, while another client shares the same shard connection and
/// gets every reply right. The shard's own work on the value (copying 512 MB, several hundred milliseconds on
/// a debug build, more on a busy machine) is silence on the connection, so `--timeout` is 3 s here; that it
/// measures silence, not the time a transfer takes, is checked with a slow shard below.
#[test]
fn a_512_mb_value_streams_through_while_another_client_is_served() {
    let _turn = heavy();
    let shard = start_shard(&["--maxmemory", "2gb"]);
    let proxy = LoggedProxy::start(&[("s1", shard.addr())], &["--threads", "1", "--timeout", "3s"]);
    let port = proxy.port();
    let stop = Arc::new(AtomicBool::new(false));
    let bystander = bystander(port, stop.clone());
    let value: Vec<u8> = (0..512usize << 20).map(|i| (i % 251) as u8).collect();
    let mut c = Client::connect(port);
    assert_eq!(c.call(&[b"SET", b"huge", &value]), b"+OK\r\n");
    c.0.s.write_all(&cmd(&[b"GET", b"huge"])).unwrap();
    let reply = c.reply();
    let header = format!("${}\r\n", value.len());
    assert_eq!(&reply[..header.len()], header.as_bytes());
    assert!(reply[header.len()..reply.len() - 2] == value[..], "the value came back different");
    drop(reply);
    stop.store(true, Ordering::Relaxed);
    assert!(bystander.join().unwrap() > 0);
    for kind in ["timeout", "closed", "unreachable"] {
        let n = proxy.metric("ringcache_proxy_backend_errors_total", &[("shard", "s1"), ("kind", kind)]);
        assert_eq!(n, Some(0.0), "kind {kind}");
    }
}

/// A stand-in for a shard that moves every large value slowly: it reads requests 256 KB at a time and writes a
/// value 256 KB at a time, 10 ms apart (at most 25 MB/s, so 64 MB take over 2.5 s), and answers
/// CLIENT, PING, SET and GET. Its socket buffers are small, so that the proxy's writes progress only as fast
/// as it reads.
struct SlowShard {
    port: u16,
}

/// How much [`SlowShard`] moves at a time.
const PIECE: usize = 256 * 1024;

impl SlowShard {
    fn start() -> SlowShard {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        let listener = runtime
            .block_on(async {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.set_recv_buffer_size(PIECE as u32)?;
                socket.set_send_buffer_size(PIECE as u32)?;
                socket.bind("127.0.0.1:0".parse().unwrap())?;
                socket.listen(16)?.into_std()
            })
            .unwrap();
        listener.set_nonblocking(false).unwrap();
        let port = listener.local_addr().unwrap().port();
        let values: Arc<std::sync::Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let values = values.clone();
                std::thread::spawn(move || SlowShard::serve(conn, &values));
            }
        });
        SlowShard { port }
    }

    fn serve(mut s: TcpStream, values: &std::sync::Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>) {
        let pace = || std::thread::sleep(Duration::from_millis(10));
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; PIECE];
        loop {
            while let Some(end) = (!buf.is_empty()).then(|| support::reply_end(&buf, 0)).flatten() {
                let rest = buf.split_off(end);
                let request = std::mem::replace(&mut buf, rest);
                let args = support::request_args(&request);
                let reply = match args[0].to_ascii_uppercase().as_slice() {
                    b"PING" => b"+PONG\r\n".to_vec(),
                    b"SET" => {
                        values.lock().unwrap().insert(args[1].clone(), args[2].clone());
                        b"+OK\r\n".to_vec()
                    }
                    b"GET" => bulk(values.lock().unwrap().get(&args[1]).map(Vec::as_slice).unwrap_or_default()),
                    _ => b"+OK\r\n".to_vec(),
                };
                for piece in reply.chunks(PIECE) {
                    if s.write_all(piece).is_err() {
                        return;
                    }
                    if reply.len() > PIECE {
                        pace();
                    }
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > PIECE {
                pace();
            }
        }
    }
}

/// `--timeout` measures silence, not size: with the default 1 s, a 64 MB SET that the shard reads over more
/// than 2.5 s, and a GET whose 64 MB reply it sends as slowly, both go through, and so do requests queued
/// behind them on the same shard connection.
#[test]
fn the_timeout_measures_silence_not_size() {
    let _turn = heavy();
    let slow = SlowShard::start();
    let proxy = LoggedProxy::start(&[("s1", format!("127.0.0.1:{}", slow.port))], &["--threads", "1"]);
    let value: Vec<u8> = (0..64usize << 20).map(|i| (i % 251) as u8).collect();
    let mut c = Client::connect(proxy.port());
    let mut other = Client::connect(proxy.port());
    let started = Instant::now();
    c.0.s.write_all(&cmd(&[b"SET", b"big", &value])).unwrap();
    // Queued behind the SET on the one shard connection, once the proxy has the whole SET.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(other.call_s(&["SET", "small", "1"]), "+OK\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    assert!(started.elapsed() > Duration::from_secs(2), "the shard took the value in {:?}", started.elapsed());
    let started = Instant::now();
    c.0.s.write_all(&cmd(&[b"GET", b"big"])).unwrap();
    assert_eq!(other.call_s(&["GET", "small"]), "$1\r\n1\r\n");
    assert!(c.reply() == bulk(&value), "the value came back different");
    assert!(started.elapsed() > Duration::from_secs(2), "the shard sent the value in {:?}", started.elapsed());
    let timeouts = proxy.metric("ringcache_proxy_backend_errors_total", &[("shard", "s1"), ("kind", "timeout")]);
    assert_eq!(timeouts, Some(0.0));
}

/// A write to a shard that froze (SIGSTOP) times out with an error that says the shard may have applied it,
/// and it does once it resumes.
#[test]
fn a_timed_out_write_says_the_shard_may_have_applied_it() {
    let shard = start_shard(&[]);
    let proxy = LoggedProxy::start(
        &[("s1", shard.addr())],
        &["--timeout", "300ms", "--health-interval", "100ms", "--failure-limit", "1000000"],
    );
    let mut c = Client::connect(proxy.port());
    assert_eq!(c.call_s(&["SET", "k", "old"]), "+OK\r\n");
    signal(&shard, "-STOP");
    let reply = c.call_s(&["SET", "k", "new"]);
    signal(&shard, "-CONT");
    assert_eq!(
        reply,
        "-TIMEOUT ringcache-proxy: shard 's1' sent nothing for longer than --timeout; the shard may have applied \
         the request\r\n"
    );
    let mut direct = Client::connect(shard.port);
    poll_until("the shard ran the write", Duration::from_secs(10), || direct.call_s(&["GET", "k"]) == "$3\r\nnew\r\n");
}

// ---------------------------------------------------------------------------------------------------------
// --tcp-backlog

/// The listen queue's length as `ss` reports it (Send-Q of a listening socket).
fn listen_backlog(port: u16) -> u32 {
    let out = Command::new("ss").args(["-Hltn", &format!("sport = :{port}")]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().next().unwrap_or_else(|| panic!("nothing listens on {port}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// `--tcp-backlog` sizes the listen queue of shard and proxy (Redis's 511 by default), and a burst of 500
/// connections opened at once all get in and answered.
#[test]
fn tcp_backlog_sizes_the_listen_queue_and_a_burst_all_gets_in() {
    let shard = start_shard(&[]);
    let sized = start_shard(&["--tcp-backlog", "300"]);
    let proxy = LoggedProxy::start(&[("s1", shard.addr())], &["--tcp-backlog", "400"]);
    let default_proxy = LoggedProxy::start(&[("s1", shard.addr())], &[]);
    assert_eq!(listen_backlog(shard.port), 511);
    assert_eq!(listen_backlog(sized.port), 300);
    assert_eq!(listen_backlog(proxy.port()), 400);
    assert_eq!(listen_backlog(default_proxy.port()), 511);
    for port in [shard.port, proxy.port()] {
        let mut burst: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
        for s in &mut burst {
            s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        }
        for s in &mut burst {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut pong = [0u8; 7];
            s.read_exact(&mut pong).unwrap();
            assert_eq!(&pong, b"+PONG\r\n");
        }
    }
}
