//! One client connection: read requests, route each, and send replies back in request order.
//!
//! Every request becomes a [`ReplyFut`] queued in arrival order; only the oldest is polled, so replies leave
//! in the order the requests arrived however the shards answer. Whatever replies are ready are written together with
//! one write. Requests for keys are forwarded as the bytes the client sent; multi-key commands are split
//! into one sub-request per shard ([`crate::route`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use ringcache_common::connection::{ClientConn, ClientRegistry};
use ringcache_common::resp::{Limits, ReplyWriter, RequestScanner};
use ringcache_common::server::{accept_loop, ConnectionCounters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::backend::ReplyResult;
use crate::cluster::{Cluster, ShardHandle};
use crate::route::{self, Gather};

/// Most requests a client may have waiting for replies before the proxy stops reading from it.
const MAX_PENDING_PER_CLIENT: usize = 4096;
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Settings and counters shared by all sessions.
pub struct ProxyShared {
    pub cluster: Arc<Cluster>,
    pub requirepass: Option<String>,
    pub limits: Limits,
    pub maxclients: usize,
    pub idle_timeout: Duration,
    pub port: u16,
    pub started: Instant,
    pub connections: Arc<ConnectionCounters>,
    pub clients: ClientRegistry,
    next_id: AtomicU64,
}

impl ProxyShared {
    pub fn new(
        cluster: Arc<Cluster>,
        requirepass: Option<String>,
        limits: Limits,
        maxclients: usize,
        idle_timeout: Duration,
        port: u16,
    ) -> Self {
        ProxyShared {
            cluster,
            requirepass,
            limits,
            maxclients,
            idle_timeout,
            port,
            started: Instant::now(),
            connections: Arc::default(),
            clients: ClientRegistry::new(),
            next_id: AtomicU64::new(1),
        }
    }
}

/// Per-connection state (shared with the shard).
pub type Session = ClientConn;

/// A reply that may still be on its way.
pub enum ReplyFut {
    Ready(Option<Bytes>),
    One { rx: oneshot::Receiver<ReplyResult>, shard: Arc<ShardHandle> },
    Gather(Box<Gather>),
}

impl ReplyFut {
    pub fn ready(bytes: Bytes) -> Self {
        ReplyFut::Ready(Some(bytes))
    }

    pub fn error(msg: &str) -> Self {
        let mut out = BytesMut::new();
        out.error(msg);
        ReplyFut::ready(out.freeze())
    }
}

/// The error reply for a request a shard could not answer.
pub fn shard_error(shard: &ShardHandle, e: crate::backend::BackendError) -> Bytes {
    let mut out = BytesMut::new();
    out.error(&format!("ERR ringcache-proxy: shard '{}' {e}", shard.spec.name));
    out.freeze()
}

impl Future for ReplyFut {
    type Output = Bytes;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Bytes> {
        match self.get_mut() {
            ReplyFut::Ready(b) => Poll::Ready(b.take().unwrap_or_default()),
            ReplyFut::One { rx, shard } => match rx.poll_unpin(cx) {
                Poll::Ready(Ok(Ok(reply))) => Poll::Ready(reply),
                Poll::Ready(Ok(Err(e))) => Poll::Ready(shard_error(shard, e)),
                Poll::Ready(Err(_)) => Poll::Ready(shard_error(shard, crate::backend::BackendError::Closed)),
                Poll::Pending => Poll::Pending,
            },
            ReplyFut::Gather(g) => g.poll_unpin(cx),
        }
    }
}

/// The reply to the oldest request, once it is ready. Only the oldest is ever polled: replies leave in
/// request order, and the others complete without being polled (their shards' answers wait in their
/// channels), so a queue needs no per-request bookkeeping.
fn oldest_reply(pending: &mut VecDeque<Timed>) -> impl Future<Output = (Bytes, Timed)> + '_ {
    std::future::poll_fn(move |cx| {
        let Some(front) = pending.front_mut() else {
            return Poll::Pending;
        };
        let reply = std::task::ready!(front.fut.poll_unpin(cx));
        match pending.pop_front() {
            Some(done) => Poll::Ready((reply, done)),
            None => Poll::Pending,
        }
    })
}

/// A reply on its way, counted in `ringcache_commands_total` and timed (request read to reply ready) in
/// `ringcache_command_duration_seconds` when it is written. Requests read together share their start time,
/// and replies written together their end time: two clock reads per batch, not per request.
pub struct Timed {
    fut: ReplyFut,
    command: Option<usize>,
    started: Instant,
}

impl Timed {
    fn untimed(fut: ReplyFut) -> Self {
        Timed { fut, command: None, started: Instant::now() }
    }

    fn record(&self, now: Instant) {
        if let Some(index) = self.command {
            ringcache_common::metrics::record_command(index, now.saturating_duration_since(self.started));
        }
    }
}

/// Accepts clients until `shutdown`, then waits (up to a grace period) for open sessions to finish. Sessions
/// are dealt round-robin to `workers` (thread-per-core runtimes; this runtime when empty).
pub async fn run(
    listener: TcpListener,
    shared: Arc<ProxyShared>,
    shutdown: CancellationToken,
    workers: &[tokio::runtime::Handle],
) -> std::io::Result<()> {
    let counters = shared.connections.clone();
    let maxclients = shared.maxclients;
    accept_loop(listener, maxclients, counters, shutdown.clone(), workers, move |stream, addr| {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        async move {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let laddr = stream.local_addr().unwrap_or(addr);
            let mut session = ClientConn::register(&shared.clients, id, addr, laddr, shared.requirepass.is_none());
            if let Err(e) = serve(stream, &mut session, &shared, &shutdown).await {
                tracing::debug!("client {id}: {e}");
            }
            session.unregister(&shared.clients);
        }
    })
    .await
}

async fn serve(
    stream: TcpStream,
    session: &mut Session,
    shared: &ProxyShared,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut scanner = RequestScanner::new();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut pending: VecDeque<Timed> = VecDeque::new();
    let mut closing = false; // no more requests will be read; finish the pending replies
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let idle = shared.idle_timeout;
    let idle_sleep = tokio::time::sleep(if idle.is_zero() { Duration::from_secs(86_400 * 365) } else { idle });
    tokio::pin!(idle_sleep);
    let mut last_read = Instant::now();
    loop {
        if closing && pending.is_empty() {
            return Ok(());
        }
        tokio::select! {
            biased;
            (reply, done) = oldest_reply(&mut pending), if !pending.is_empty() => {
                let now = Instant::now();
                done.record(now);
                wbuf.extend_from_slice(&reply);
                while let Some((reply, done)) = oldest_reply(&mut pending).now_or_never() {
                    done.record(now);
                    wbuf.extend_from_slice(&reply);
                }
                writer.write_all(&wbuf).await?;
                wbuf.clear();
            }
            r = reader.read_buf(&mut rbuf), if !closing && pending.len() < MAX_PENDING_PER_CLIENT => {
                if r? == 0 {
                    closing = true;
                    continue;
                }
                // The idle timer is not moved on every read (a timer-wheel update per read): when it
                // fires, it checks the last read and sleeps again if there was one since.
                let started = Instant::now();
                last_read = started;
                loop {
                    let limits = if session.authenticated { shared.limits } else { shared.limits.unauthenticated() };
                    match scanner.next(&mut rbuf, &limits) {
                        Ok(Some(req)) => {
                            let (spec, fut) = route::route(session, shared, req);
                            pending.push_back(Timed { fut, command: spec.map(|s| s.index()), started });
                            if session.close_after_reply {
                                closing = true;
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let mut msg = BytesMut::new();
                            msg.error(&format!("ERR Protocol error: {e}"));
                            pending.push_back(Timed::untimed(ReplyFut::ready(msg.freeze())));
                            closing = true;
                            break;
                        }
                    }
                }
                rbuf.reserve(scanner.bytes_needed_hint(rbuf.len()).max(READ_CHUNK_BYTES));
            }
            _ = &mut cancelled, if !closing => closing = true,
            _ = &mut idle_sleep, if !closing && pending.is_empty() && !idle.is_zero() => {
                let deadline = last_read + idle;
                if Instant::now() >= deadline {
                    return Ok(());
                }
                idle_sleep.as_mut().reset(deadline.into());
            }
        }
    }
}
