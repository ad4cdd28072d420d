//! Pipelined connections to one shard, shared by every client.
//!
//! A [`BackendConn`] is a queue in front of one TCP connection. Its task takes everything queued, writes it
//! with one write, and records a reply slot per request in a first-in, first-out list; the reader frames
//! replies with [`ReplyScanner`] and hands each, as raw bytes, to the oldest slot. Requests and replies are
//! never decoded or re-encoded. If the oldest request has waited longer than `--timeout`, every request on
//! the connection fails with a timeout and the connection is replaced (its replies could no longer be
//! matched). While the shard is unreachable, queued requests fail at once; reconnects back off from 50 ms
//! to 2 s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use ringcache_common::resp::{is_push, Protocol, ReplyScanner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::metrics::BackendMetrics;

/// Why a request to a shard failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("is unreachable")]
    Unreachable,
    #[error("timed out")]
    Timeout,
    #[error("closed the connection")]
    Closed,
    #[error("sent a reply that is not valid RESP")]
    Protocol,
}

impl BackendError {
    pub const ALL: [BackendError; 4] =
        [BackendError::Unreachable, BackendError::Timeout, BackendError::Closed, BackendError::Protocol];

    /// The `kind` label of `ringcache_proxy_backend_errors_total`.
    pub fn kind(self) -> &'static str {
        match self {
            BackendError::Unreachable => "unreachable",
            BackendError::Timeout => "timeout",
            BackendError::Closed => "closed",
            BackendError::Protocol => "protocol",
        }
    }
}

pub type ReplyResult = Result<Bytes, BackendError>;

/// One request on its way to a shard.
pub struct Pending {
    pub request: Bytes,
    pub reply: oneshot::Sender<ReplyResult>,
}

/// The sending side of one pipelined shard connection.
#[derive(Clone)]
pub struct BackendConn {
    tx: mpsc::UnboundedSender<Pending>,
    retry: Arc<Notify>,
}

impl BackendConn {
    /// Starts the connection's task on `runtime` (the worker whose sessions will use it). It connects lazily
    /// and stops when every sender is gone; after `shutdown` fires it no longer reconnects, but a live
    /// connection keeps answering what is in flight.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        addr: String,
        timeout: Duration,
        password: Option<String>,
        metrics: Arc<BackendMetrics>,
        shutdown: CancellationToken,
        proto: Protocol,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let retry = Arc::new(Notify::new());
        let hello = match proto {
            Protocol::Resp2 => SET_NAME,
            Protocol::Resp3 => HELLO_3,
        };
        let target = Target { addr, timeout, password, hello };
        runtime.spawn(run(target, rx, metrics, retry.clone(), shutdown));
        BackendConn { tx, retry }
    }

    /// Ends a reconnect backoff now, or else the next one as soon as it starts (the health checker calls
    /// this when the shard answers again).
    pub fn retry_now(&self) {
        self.retry.notify_one();
    }

    /// Queues a request; the reply (or the reason there is none) arrives on the returned receiver.
    pub fn send(&self, request: Bytes) -> oneshot::Receiver<ReplyResult> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(p)) = self.tx.send(Pending { request, reply }) {
            let _ = p.reply.send(Err(BackendError::Closed));
        }
        rx
    }
}

/// Reply slots in request order, with when each request was written (`None` for the connection's own
/// CLIENT SETNAME, which neither times out by itself nor counts in the latency histogram).
type InFlight = Arc<Mutex<VecDeque<(oneshot::Sender<ReplyResult>, Option<Instant>)>>>;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const MAX_BATCH_BYTES: usize = 256 * 1024;
const SET_NAME: &[u8] = b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$15\r\nringcache-proxy\r\n";
/// The first request on a RESP3 connection: switches it to RESP3 and names it, as SET_NAME does.
const HELLO_3: &[u8] = b"*4\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$7\r\nSETNAME\r\n$15\r\nringcache-proxy\r\n";

/// Where a connection goes and how it starts.
struct Target {
    addr: String,
    timeout: Duration,
    password: Option<String>,
    /// The first request on every new connection (names it; on a RESP3 connection, switches it to RESP3).
    hello: &'static [u8],
}

async fn run(
    target: Target,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    metrics: Arc<BackendMetrics>,
    retry_now: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let Target { addr, timeout, password, hello } = target;
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = tokio::time::timeout(timeout, connect(&addr, password.as_deref())) => c,
        };
        match connected {
            Ok(Ok(stream)) => {
                backoff = BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                match serve(stream, timeout, &mut rx, &metrics, hello).await {
                    Ok(()) => return, // every sender is gone
                    Err(e) => tracing::debug!("backend {addr}: {e}"),
                }
                // A connection that worked and then failed (a timeout, a shard restart) is replaced at
                // once; the backoff is for a shard that refuses connections.
                if !shutdown.is_cancelled() {
                    continue;
                }
            }
            Ok(Err(e)) => tracing::debug!("backend {addr}: connect failed: {e}"),
            Err(_) => tracing::debug!("backend {addr}: connect timed out"),
        }
        // Unreachable: fail what is queued at once, and keep failing new requests until the next attempt.
        let retry_at = tokio::time::Instant::now() + backoff;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = retry_now.notified() => break,
                _ = tokio::time::sleep_until(retry_at) => break,
                p = rx.recv() => match p {
                    Some(p) => {
                        metrics.error(BackendError::Unreachable);
                        let _ = p.reply.send(Err(BackendError::Unreachable));
                    }
                    None => return,
                },
            }
        }
    }
}

/// Connects and, when the shard wants a password, authenticates.
async fn connect(addr: &str, password: Option<&str>) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    if let Some(pw) = password {
        let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len());
        stream.write_all(auth.as_bytes()).await?;
        if read_line(&mut stream).await? != b"+OK" {
            return Err(std::io::Error::other("shard refused the password"));
        }
    }
    Ok(stream)
}

/// Reads one reply line (without its `\r\n`), at most 512 bytes.
pub(crate) async fn read_line(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 512 {
        stream.read_exact(&mut byte).await?;
        if byte[0] == b'\n' && line.last() == Some(&b'\r') {
            line.pop();
            return Ok(line);
        }
        line.push(byte[0]);
    }
    Err(std::io::Error::other("reply line too long"))
}

/// Runs one live connection until it fails (`Err`) or every sender is gone (`Ok`).
async fn serve(
    stream: TcpStream,
    timeout: Duration,
    rx: &mut mpsc::UnboundedReceiver<Pending>,
    metrics: &BackendMetrics,
    hello: &'static [u8],
) -> Result<(), BackendError> {
    let (mut reader, mut writer) = stream.into_split();
    let in_flight: InFlight = Arc::new(Mutex::new(VecDeque::new()));
    // The connection is named `ringcache-proxy` (CLIENT SETNAME, or HELLO 3 SETNAME on a RESP3 connection):
    // a ringcache-shard that gets SIGTERM waits to be drained only while a proxy is connected. Its reply
    // (any: a server without CLIENT SETNAME is still a backend) takes the first reply slot and is dropped;
    // a shard that never answers it times out with the first request.
    let (name_reply, _) = oneshot::channel();
    in_flight.lock().push_back((name_reply, None));
    writer.write_all(hello).await.map_err(|_| BackendError::Closed)?;
    // Requests taken off the queue but not yet written; failed with the rest if the connection fails.
    let mut staged: Vec<oneshot::Sender<ReplyResult>> = Vec::with_capacity(16);
    let write_side = async {
        let mut out = BytesMut::with_capacity(16 * 1024);
        loop {
            let Some(first) = rx.recv().await else {
                return Ok(());
            };
            out.clear();
            out.extend_from_slice(&first.request);
            staged.push(first.reply);
            // Let the other tasks already runnable on this worker (client sessions that just read a request)
            // queue theirs first, so one write carries many clients' requests: without this, a shard
            // connection wrote about 1.2 requests per write under 50 unpipelined clients.
            tokio::task::yield_now().await;
            while out.len() < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(p) => {
                        out.extend_from_slice(&p.request);
                        staged.push(p.reply);
                    }
                    Err(_) => break,
                }
            }
            metrics.requests(staged.len() as u64);
            {
                let now = Instant::now();
                let mut q = in_flight.lock();
                q.extend(staged.drain(..).map(|s| (s, Some(now))));
            }
            writer.write_all(&out).await.map_err(|_| BackendError::Closed)?;
        }
    };
    let read_side = async {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut scanner = ReplyScanner::new();
        let mut tick = tokio::time::interval(tick_for(timeout));
        let latency = metrics.local_duration();
        loop {
            tokio::select! {
                r = reader.read_buf(&mut buf) => {
                    let n = r.map_err(|_| BackendError::Closed)?;
                    if n == 0 {
                        return Err(BackendError::Closed);
                    }
                    let now = Instant::now();
                    while let Some(reply) = scanner.next(&mut buf).map_err(|_| BackendError::Protocol)? {
                        // A RESP3 push answers no request (nothing on a shared connection subscribes or
                        // tracks, so none is expected); it must not take a request's reply slot.
                        if is_push(&reply) {
                            continue;
                        }
                        let Some((slot, sent)) = in_flight.lock().pop_front() else {
                            return Err(BackendError::Protocol);
                        };
                        if let Some(sent) = sent {
                            latency.observe(now.saturating_duration_since(sent).as_secs_f64());
                        }
                        let _ = slot.send(Ok(reply));
                    }
                    latency.flush();
                    if buf.capacity() - buf.len() < 4096 {
                        buf.reserve(16 * 1024);
                    }
                }
                _ = tick.tick() => {
                    let oldest = in_flight.lock().iter().find_map(|(_, sent)| *sent);
                    if oldest.is_some_and(|sent| sent.elapsed() > timeout) {
                        return Err(BackendError::Timeout);
                    }
                }
            }
        }
    };
    // Shutdown does not cut a live connection: client sessions still drain the replies to requests they
    // already read, so the connection serves until every sender is gone (or the runtime stops).
    let result = tokio::select! {
        r = write_side => r,
        r = read_side => r,
    };
    // Whatever is still waiting on this connection cannot be answered any more.
    let failed = result.err().unwrap_or(BackendError::Closed);
    let orphans: Vec<_> = in_flight.lock().drain(..).map(|(slot, _)| slot).chain(staged.drain(..)).collect();
    for slot in orphans {
        metrics.error(failed);
        let _ = slot.send(Err(failed));
    }
    result
}

fn tick_for(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250))
}
