//! Pipelined connections to one shard, shared by every client.
//!
//! A [`BackendConn`] is a queue in front of one TCP connection. Its task takes everything queued, writes it
//! with one write (a large request is written from its own buffer, never copied into the batch), and
//! records a reply slot per request in a first-in, first-out list; the reader frames replies with
//! [`ReplyScanner`] and hands each, as raw bytes, to the oldest slot. Requests and replies are never decoded
//! or re-encoded.
//!
//! `--timeout` measures silence, not size: the oldest request fails when nothing has moved for it for that
//! long — no byte of any reply read since it became the oldest, and, while it is still being written, no
//! byte of it written. A 512 MB value streaming in either direction never times out, nor do the requests
//! queued behind it. When the oldest request does time out, every request on the connection fails (their
//! replies could no longer be matched) with an error that says the shard may have applied them, and the
//! connection is replaced. While the shard is unreachable, queued requests fail at once; reconnects back
//! off from 50 ms to 2 s. A shard that refuses the proxy's password (or wants one it was not given) fails
//! requests with an `auth` error that says so.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use ringcache_common::resp::{is_push, Protocol, ReplyScanner};
use ringcache_common::tls::{ShardStream, ShardWriteHalf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::metrics::BackendMetrics;

/// Why a request to a shard failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("is unreachable")]
    Unreachable,
    #[error("sent nothing for longer than --timeout; the shard may have applied the request")]
    Timeout,
    #[error("closed the connection")]
    Closed,
    #[error("sent a reply that is not valid RESP")]
    Protocol,
    #[error("rejected the proxy's password: check --shard-password")]
    AuthRejected,
    #[error("requires a password: set --shard-password")]
    AuthRequired,
}

impl BackendError {
    /// The `kind` labels of `ringcache_proxy_backend_errors_total`, in [`Self::kind_index`] order.
    pub const KINDS: [&'static str; 5] = ["unreachable", "timeout", "closed", "protocol", "auth"];

    /// The `kind` label of `ringcache_proxy_backend_errors_total`.
    pub fn kind(self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    pub fn kind_index(self) -> usize {
        match self {
            BackendError::Unreachable => 0,
            BackendError::Timeout => 1,
            BackendError::Closed => 2,
            BackendError::Protocol => 3,
            BackendError::AuthRejected | BackendError::AuthRequired => 4,
        }
    }

    /// Whether the shard's authentication failed (the proxy's `--shard-password` is wrong or missing).
    pub fn is_auth(self) -> bool {
        matches!(self, BackendError::AuthRejected | BackendError::AuthRequired)
    }

    /// The error line a client gets (without `-` and `\r\n`): `TIMEOUT` for a timeout, whose outcome is
    /// unknown, `ERR` otherwise.
    pub fn client_message(self, shard: &str) -> String {
        let prefix = if self == BackendError::Timeout { "TIMEOUT" } else { "ERR" };
        format!("{prefix} ringcache-proxy: shard '{shard}' {self}")
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

/// A request written (or being written) to the shard, waiting for its reply.
struct InFlight {
    /// `None` for the connection's own CLIENT SETNAME, whose reply is only checked for `-NOAUTH`.
    reply: Option<oneshot::Sender<ReplyResult>>,
    /// When it was queued for writing (the latency histogram starts here).
    queued: Instant,
    /// When its last byte was written (its silence clock starts here when nothing is ahead of it).
    written: Instant,
}

/// What the two halves of a live connection share (one task, so the lock is never contended).
struct Wire {
    /// Reply slots in request order.
    in_flight: VecDeque<InFlight>,
    /// The last `unwritten` requests of `in_flight` are still being written.
    unwritten: usize,
    /// When the write in progress last made progress.
    last_write: Instant,
}

impl Wire {
    /// Whether the oldest client request has been silent (see the module docs) for longer than `timeout`.
    /// The connection's own CLIENT SETNAME never times out by itself: a request behind it does.
    fn oldest_timed_out(&self, last_read: Instant, timeout: Duration, now: Instant) -> bool {
        let Some((index, oldest)) = self.in_flight.iter().enumerate().find(|(_, f)| f.reply.is_some()) else {
            return false;
        };
        let mut progress = oldest.written.max(last_read);
        if self.in_flight.len() - index <= self.unwritten {
            progress = progress.max(self.last_write);
        }
        now.saturating_duration_since(progress) > timeout
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Requests at least this large are written from their own buffer instead of being copied into the batch.
const DIRECT_WRITE_BYTES: usize = 64 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;
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
        let failure = match connected {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                match serve(stream, timeout, &mut rx, &metrics, hello).await {
                    Ok(()) => return, // every sender is gone
                    // Reconnecting at once would be refused the same way.
                    Err(e) if e.is_auth() => {
                        tracing::debug!("backend {addr}: {e}");
                        e
                    }
                    Err(e) => {
                        tracing::debug!("backend {addr}: {e}");
                        backoff = BACKOFF_MIN;
                        // A connection that worked and then failed (a timeout, a shard restart) is replaced
                        // at once; the backoff is for a shard that refuses connections.
                        if !shutdown.is_cancelled() {
                            continue;
                        }
                        BackendError::Unreachable
                    }
                }
            }
            Ok(Err(ConnectError::Auth(e, reply))) => {
                tracing::debug!("backend {addr}: {e} (it replied {reply})");
                e
            }
            Ok(Err(ConnectError::Io(e))) => {
                tracing::debug!("backend {addr}: connect failed: {e}");
                BackendError::Unreachable
            }
            Err(_) => {
                tracing::debug!("backend {addr}: connect timed out");
                BackendError::Unreachable
            }
        };
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
                        metrics.error(failure);
                        let _ = p.reply.send(Err(failure));
                    }
                    None => return,
                },
            }
        }
    }
}

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The shard refused the password or wants one; with the shard's reply line.
    #[error("shard {0} (it replied {1})")]
    Auth(BackendError, String),
}

/// Connects, and authenticates when the proxy has a password.
async fn connect(addr: &str, password: Option<&str>) -> Result<ShardStream, ConnectError> {
    let mut stream = crate::tls::connect_shard(addr).await?;
    authenticate(&mut stream, password).await?;
    Ok(stream)
}

/// The proxy's credentials for shards as one string (what `--shard-password` alone gives, or
/// `user\0password` with `--shard-user`), so they travel where the password always did.
pub fn shard_credentials(user: Option<&str>, password: &str) -> String {
    match user {
        Some(user) => format!("{user}\0{password}"),
        None => password.to_string(),
    }
}

/// The user and password of [`shard_credentials`] (`default` without a user).
pub fn split_credentials(credentials: &str) -> (&str, &str) {
    credentials.split_once('\0').unwrap_or(("default", credentials))
}

/// Sends `AUTH` when there is a password, and checks the answer.
pub(crate) async fn authenticate<S>(stream: &mut S, password: Option<&str>) -> Result<(), ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(credentials) = password else {
        return Ok(());
    };
    let auth = match credentials.split_once('\0') {
        Some((user, pw)) => format!("*3\r\n$4\r\nAUTH\r\n${}\r\n{user}\r\n${}\r\n{pw}\r\n", user.len(), pw.len()),
        None => format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{credentials}\r\n", credentials.len()),
    };
    stream.write_all(auth.as_bytes()).await?;
    stream.flush().await?;
    let reply = read_line(stream).await?;
    if reply != b"+OK" {
        return Err(ConnectError::Auth(BackendError::AuthRejected, String::from_utf8_lossy(&reply).into_owned()));
    }
    Ok(())
}

/// Reads one reply line (without its `\r\n`), at most 512 bytes.
pub(crate) async fn read_line<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Vec<u8>> {
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
    stream: ShardStream,
    timeout: Duration,
    rx: &mut mpsc::UnboundedReceiver<Pending>,
    metrics: &BackendMetrics,
    hello: &'static [u8],
) -> Result<(), BackendError> {
    let (mut reader, mut writer) = stream.into_split();
    let wire = Mutex::new(Wire { in_flight: VecDeque::new(), unwritten: 0, last_write: Instant::now() });
    // The connection is named `ringcache-proxy` (CLIENT SETNAME, or HELLO 3 SETNAME on a RESP3 connection):
    // a ringcache-shard that gets SIGTERM waits to be drained only while a proxy is connected. Its reply takes
    // the first slot: any reply will do (a server without CLIENT SETNAME is still a backend) but `-NOAUTH`,
    // which says the shard wants a password the proxy lacks.
    let now = Instant::now();
    wire.lock().in_flight.push_back(InFlight { reply: None, queued: now, written: now });
    writer.write_all(hello).await.map_err(|_| BackendError::Closed)?;
    // Requests taken off the queue but not yet written; failed with the rest if the connection fails.
    let mut staged: Vec<oneshot::Sender<ReplyResult>> = Vec::with_capacity(16);
    let write_side = async {
        let mut out = BytesMut::with_capacity(READ_CHUNK_BYTES);
        // Used only for a batch with a large request in it: the batch as a list of buffers, in order.
        let mut segments: Vec<Bytes> = Vec::new();
        loop {
            let Some(first) = rx.recv().await else {
                return Ok(());
            };
            out.clear();
            let mut batch_bytes = first.request.len();
            add_to_batch(first.request, &mut out, &mut segments);
            staged.push(first.reply);
            // Let the other tasks already runnable on this worker (client sessions that just read a request)
            // queue theirs first, so one write carries many clients' requests: without this, a shard
            // connection wrote about 1.2 requests per write under 50 unpipelined clients.
            tokio::task::yield_now().await;
            while batch_bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(p) => {
                        batch_bytes += p.request.len();
                        add_to_batch(p.request, &mut out, &mut segments);
                        staged.push(p.reply);
                    }
                    Err(_) => break,
                }
            }
            metrics.requests(staged.len() as u64);
            {
                let now = Instant::now();
                let mut w = wire.lock();
                w.unwritten = staged.len();
                w.last_write = now;
                w.in_flight.extend(staged.drain(..).map(|reply| InFlight {
                    reply: Some(reply),
                    queued: now,
                    written: now,
                }));
            }
            let mut waited = false;
            if segments.is_empty() {
                waited = write_tracked(&mut writer, &out, &wire).await?;
            } else {
                if !out.is_empty() {
                    segments.push(out.split().freeze());
                }
                for segment in segments.drain(..) {
                    waited |= write_tracked(&mut writer, &segment, &wire).await?;
                }
            }
            let mut w = wire.lock();
            if waited {
                // Their last bytes left just now: that is when they start waiting for their replies.
                let now = Instant::now();
                let batch = w.in_flight.len().saturating_sub(w.unwritten);
                w.in_flight.iter_mut().skip(batch).for_each(|f| f.written = now);
            }
            w.unwritten = 0;
        }
    };
    let read_side = async {
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        let mut scanner = ReplyScanner::new();
        let mut tick = tokio::time::interval(tick_for(timeout));
        let latency = metrics.local_duration();
        let mut last_read = Instant::now();
        loop {
            // `biased`: polled in order, without drawing a random start per wake-up; replies first (a
            // connection whose replies keep coming has no timed-out request to find).
            tokio::select! {
                biased;
                r = reader.read_buf(&mut buf) => {
                    let n = r.map_err(|_| BackendError::Closed)?;
                    if n == 0 {
                        return Err(BackendError::Closed);
                    }
                    let now = Instant::now();
                    last_read = now;
                    while let Some(reply) = scanner.next(&mut buf).map_err(|_| BackendError::Protocol)? {
                        // A RESP3 push answers no request (nothing on a shared connection subscribes or
                        // tracks, so none is expected); it must not take a request's reply slot.
                        if is_push(&reply) {
                            continue;
                        }
                        let Some(done) = wire.lock().in_flight.pop_front() else {
                            return Err(BackendError::Protocol);
                        };
                        let Some(slot) = done.reply else {
                            if reply.starts_with(b"-NOAUTH") {
                                return Err(BackendError::AuthRequired);
                            }
                            continue;
                        };
                        latency.observe(now.saturating_duration_since(done.queued).as_secs_f64());
                        let _ = slot.send(Ok(reply));
                    }
                    latency.flush();
                    // A large reply's whole payload is reserved at once rather than grown step by step.
                    let wanted = scanner.bytes_needed_hint(buf.len()).max(4096);
                    if buf.capacity() - buf.len() < wanted {
                        buf.reserve(wanted.max(READ_CHUNK_BYTES));
                    }
                }
                _ = tick.tick() => {
                    if wire.lock().oldest_timed_out(last_read, timeout, Instant::now()) {
                        return Err(BackendError::Timeout);
                    }
                }
            }
        }
    };
    // Shutdown does not cut a live connection: client sessions still drain the replies to requests they
    // already read, so the connection serves until every sender is gone (or the runtime stops).
    let result = tokio::select! {
        biased;
        r = write_side => r,
        r = read_side => r,
    };
    // Whatever is still waiting on this connection cannot be answered any more.
    let failed = result.err().unwrap_or(BackendError::Closed);
    let orphans: Vec<_> =
        wire.lock().in_flight.drain(..).filter_map(|done| done.reply).chain(staged.drain(..)).collect();
    for slot in orphans {
        metrics.error(failed);
        let _ = slot.send(Err(failed));
    }
    result
}

/// Appends a request to the batch being built: copied into `out`, or, when large, added as a buffer of its
/// own after whatever `out` holds so far.
fn add_to_batch(request: Bytes, out: &mut BytesMut, segments: &mut Vec<Bytes>) {
    if request.len() >= DIRECT_WRITE_BYTES {
        if !out.is_empty() {
            segments.push(out.split().freeze());
        }
        segments.push(request);
    } else {
        out.extend_from_slice(&request);
    }
}

/// Writes all of `buf`, noting each partial write as progress for the timeout; true when it took more than
/// one write.
async fn write_tracked(writer: &mut ShardWriteHalf, mut buf: &[u8], wire: &Mutex<Wire>) -> Result<bool, BackendError> {
    let mut partial = false;
    while !buf.is_empty() {
        let n = writer.write(buf).await.map_err(|_| BackendError::Closed)?;
        if n == 0 {
            return Err(BackendError::Closed);
        }
        buf = &buf[n..];
        if !buf.is_empty() {
            partial = true;
            wire.lock().last_write = Instant::now();
        }
    }
    // TLS holds the last records until flushed (a no-op on TCP).
    writer.flush().await.map_err(|_| BackendError::Closed)?;
    Ok(partial)
}

fn tick_for(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_with(queued_ago: &[u64], unwritten: usize, last_write_ago: u64, now: Instant) -> Wire {
        let in_flight = queued_ago
            .iter()
            .map(|ms| {
                let at = now - Duration::from_millis(*ms);
                InFlight { reply: Some(oneshot::channel().0), queued: at, written: at }
            })
            .collect();
        Wire { in_flight, unwritten, last_write: now - Duration::from_millis(last_write_ago) }
    }

    #[test]
    fn the_timeout_counts_silence_on_the_oldest_request() {
        let timeout = Duration::from_millis(1000);
        let now = Instant::now() + Duration::from_secs(60);
        let ago = |ms: u64| now - Duration::from_millis(ms);
        // Nothing in flight never times out.
        assert!(!wire_with(&[], 0, 5000, now).oldest_timed_out(ago(5000), timeout, now));
        // Written 1.5 s ago, nothing read since: silent too long.
        assert!(wire_with(&[1500], 0, 1500, now).oldest_timed_out(ago(5000), timeout, now));
        // Queued long ago behind a reply that streamed until 100 ms ago: it has waited its turn, not in silence.
        assert!(!wire_with(&[9000, 9000], 0, 9000, now).oldest_timed_out(ago(100), timeout, now));
        // A large request still being written, whose last bytes left 100 ms ago.
        assert!(!wire_with(&[9000], 1, 100, now).oldest_timed_out(ago(9000), timeout, now));
        // The same once it is written: write progress no longer counts for it, but its clock starts when its
        // last byte left.
        assert!(wire_with(&[9000], 0, 100, now).oldest_timed_out(ago(9000), timeout, now));
        let mut written = wire_with(&[9000], 0, 100, now);
        written.in_flight[0].written = ago(100);
        assert!(!written.oldest_timed_out(ago(9000), timeout, now));
        // Writes of later requests are no progress for an older one that was written in full.
        assert!(wire_with(&[9000, 9000], 1, 100, now).oldest_timed_out(ago(9000), timeout, now));
        // An unanswered CLIENT SETNAME does not time out by itself, nor start the clock of a request behind it.
        let mut named = wire_with(&[100], 0, 9000, now);
        named.in_flight.push_front(InFlight { reply: None, queued: ago(9000), written: ago(9000) });
        assert!(!named.oldest_timed_out(ago(9000), timeout, now));
        named.in_flight.pop_back();
        assert!(!named.oldest_timed_out(ago(9000), timeout, now));
    }
}
