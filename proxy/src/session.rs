//! One client connection: read requests, route each, and send replies back in request order.
//!
//! Every request becomes a [`ReplyFut`] queued in arrival order; only the oldest is polled, so replies leave
//! in the order the requests arrived however the shards answer. Whatever replies are ready are written together with
//! one write. Requests for keys are forwarded as the bytes the client sent; multi-key commands are split
//! into one sub-request per shard ([`crate::route`]).
//!
//! A client that does not read its replies stops being read from, and one that falls too far behind is
//! disconnected ([`crate::output`]); replies waiting for it never hold up a shard connection. When a shard
//! goes down while a client has requests in flight, its next requests wait until those are answered (or
//! sent again elsewhere, [`crate::failover`]), so that they still run in the order it sent them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use ringcache_common::command;
use ringcache_common::config::StateLimits;
use ringcache_common::connection::{ClientConn, ClientRegistry};
use ringcache_common::push::PushReceiver;
use ringcache_common::resp::{Limits, ReplyWriter, Request, RequestScanner};
use ringcache_common::server::{accept_loop, ConnectionCounters};
use ringcache_common::tls::ClientStream;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::backend::{BackendError, ReplyResult};
use crate::cluster::{Cluster, ShardHandle};
use crate::failover::{self, Resend};
use crate::output::{Limited, OutputLimits, OutputStats, ReplyQueue};
use crate::route::Gather;
use crate::stateful::{self, SessionState};

/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_TRACKING_TABLE_MAX_KEYS: usize = 1_000_000;
/// Most requests a client may have waiting for replies before the proxy stops reading from it.
const MAX_PENDING_PER_CLIENT: usize = 4096;
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// A read buffer that grew past this (a large request) is given back once it is empty.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

/// Settings and counters shared by all sessions.
pub struct ProxyShared {
    pub cluster: Arc<Cluster>,
    /// The proxy's own users (its clients AUTH against them; ACL commands are answered here).
    pub acl: ringcache_common::acl::Acl,
    pub limits: Limits,
    pub maxclients: usize,
    /// `--idle-timeout` in milliseconds; CONFIG SET timeout changes it for connections opened afterwards.
    pub idle_timeout_ms: AtomicU64,
    pub port: u16,
    pub started: Instant,
    pub connections: Arc<ConnectionCounters>,
    pub clients: ClientRegistry,
    /// `--client-output-buffer-limit`, and how often it acts.
    pub output_limits: OutputLimits,
    pub output_stats: OutputStats,
    /// Bounds on transactions, subscriptions and pushes (`--multi-max-commands` ...).
    pub state_limits: StateLimits,
    /// Most keys a worker's client-tracking table holds (`--tracking-table-max-keys`).
    pub tracking_table_max_keys: usize,
    /// The proxy's slow log and latency monitor (client-visible durations: request read to reply ready).
    pub diagnostics: ringcache_common::diagnostics::Diagnostics,
    /// The `--config` file, for INFO's `config_file`.
    pub config_file: Option<String>,
    /// CONFIG's parameter table and the file CONFIG REWRITE writes.
    pub runtime_config: ringcache_common::runtime_config::RuntimeConfig<ProxyShared>,
    /// `--hot-keys`: the sketch sampled requests feed (`None` when off).
    pub hot_keys: Option<Arc<crate::hotkeys::HotKeys>>,
    next_id: AtomicU64,
}

impl ProxyShared {
    pub fn new(
        cluster: Arc<Cluster>,
        acl: ringcache_common::acl::Acl,
        limits: Limits,
        maxclients: usize,
        idle_timeout: Duration,
        port: u16,
    ) -> Self {
        ProxyShared {
            cluster,
            acl,
            limits,
            maxclients,
            idle_timeout_ms: AtomicU64::new(idle_timeout.as_millis() as u64),
            port,
            started: Instant::now(),
            connections: Arc::default(),
            clients: ClientRegistry::new(),
            output_limits: OutputLimits::default(),
            output_stats: OutputStats::default(),
            state_limits: StateLimits::default(),
            tracking_table_max_keys: DEFAULT_TRACKING_TABLE_MAX_KEYS,
            diagnostics: ringcache_common::diagnostics::Diagnostics::new(&Default::default()),
            config_file: None,
            runtime_config: crate::config_cmd::runtime_config(None),
            hot_keys: None,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn with_hot_keys(mut self, hot_keys: Option<Arc<crate::hotkeys::HotKeys>>) -> Self {
        self.hot_keys = hot_keys;
        self
    }

    pub fn with_output_limits(mut self, limits: OutputLimits) -> Self {
        self.output_limits = limits;
        self
    }

    pub fn with_state_limits(mut self, limits: StateLimits, tracking_table_max_keys: usize) -> Self {
        self.state_limits = limits;
        self.tracking_table_max_keys = tracking_table_max_keys;
        self
    }

    /// `--slowlog-*` and `--latency-monitor-threshold`, and the `--config` file INFO names.
    pub fn with_diagnostics(
        mut self,
        args: &ringcache_common::diagnostics::DiagnosticsArgs,
        config_file: Option<String>,
    ) -> Self {
        self.diagnostics = ringcache_common::diagnostics::Diagnostics::new(args);
        self.runtime_config = crate::config_cmd::runtime_config(config_file.clone().map(Into::into));
        self.config_file = config_file;
        self
    }

    /// `timeout`: a client idle this long is closed (zero: never).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Per-connection state (shared with the shard).
pub type Session = ClientConn;

/// A reply that may still be on its way.
pub enum ReplyFut {
    Ready(Option<Bytes>),
    /// A whole request sent to one shard; sent again elsewhere if the shard dies under it (`resend`).
    One {
        rx: oneshot::Receiver<ReplyResult>,
        shard: Arc<ShardHandle>,
        resend: Option<Resend>,
    },
    Gather(Box<Gather>),
    /// A request being sent again after its shard died ([`crate::failover`]).
    Failover(Pin<Box<dyn Future<Output = Bytes> + Send>>),
    /// A reply that takes several steps ([`crate::stateful`]: a transaction, a script reloaded, a
    /// subscription confirmed).
    Task(Pin<Box<dyn Future<Output = Bytes> + Send>>),
    /// A blocking command on a connection of its own ([`crate::blocking`]); dropping it closes that connection.
    Dedicated(Pin<Box<dyn Future<Output = Bytes> + Send>>),
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
pub fn shard_error(shard: &ShardHandle, e: BackendError) -> Bytes {
    let mut out = BytesMut::new();
    out.error(&e.client_message(&shard.spec.name));
    out.freeze()
}

impl Future for ReplyFut {
    type Output = Bytes;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Bytes> {
        let this = self.get_mut();
        match this {
            ReplyFut::Ready(b) => Poll::Ready(b.take().unwrap_or_default()),
            ReplyFut::One { rx, shard, resend } => {
                let e = match rx.poll_unpin(cx) {
                    Poll::Ready(Ok(Ok(reply))) => return Poll::Ready(reply),
                    Poll::Ready(Ok(Err(e))) => e,
                    Poll::Ready(Err(_)) => BackendError::Closed,
                    Poll::Pending => return Poll::Pending,
                };
                match resend.take() {
                    Some(resend) if failover::may_fail_over(e) => {
                        let mut again = ReplyFut::failover(shard.clone(), e, resend);
                        let poll = again.poll_unpin(cx);
                        *this = again;
                        poll
                    }
                    _ => Poll::Ready(shard_error(shard, e)),
                }
            }
            ReplyFut::Gather(g) => g.poll_unpin(cx),
            ReplyFut::Failover(f) | ReplyFut::Task(f) | ReplyFut::Dedicated(f) => f.poll_unpin(cx),
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
    /// The cluster's ejection count when it was routed (see [`Cluster::ejection_epoch`]).
    epoch: u64,
    /// Nothing is routed after it until it is answered (see [`crate::stateful`]).
    barrier: bool,
}

impl Timed {
    /// Whether this is a blocking command on a connection of its own ([`crate::blocking`]).
    pub(crate) fn is_dedicated(&self) -> bool {
        matches!(self.fut, ReplyFut::Dedicated(_))
    }

    fn untimed(fut: ReplyFut) -> Self {
        Timed { fut, command: None, started: Instant::now(), epoch: 0, barrier: false }
    }

    /// Counts and times the command; a notable duration goes to the slow log and latency monitor (with
    /// the command's name only: the proxy does not keep a request's arguments once it is routed).
    fn record(&self, now: Instant, shared: &ProxyShared, session: &Session) {
        if let Some(index) = self.command {
            let elapsed = now.saturating_duration_since(self.started);
            ringcache_common::metrics::record_command(index, elapsed);
            if shared.diagnostics.is_notable(elapsed) {
                let name = ringcache_common::command::COMMANDS.get(index).map_or("", |s| s.name);
                let info = session.info.lock();
                let (peer, client_name) = (info.addr.to_string(), info.name.clone());
                drop(info);
                shared.diagnostics.record(elapsed, std::iter::once(name.as_bytes()), &peer, &client_name);
            }
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
        serve_client(stream, addr, shared.clone(), shutdown.clone())
    })
    .await
}

/// One client's session, over plain TCP or TLS ([`crate::tls`]).
pub(crate) async fn serve_client<S: ClientStream>(
    stream: S,
    addr: std::net::SocketAddr,
    shared: Arc<ProxyShared>,
    shutdown: CancellationToken,
) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let laddr = stream.tcp().local_addr().unwrap_or(addr);
    let mut session = ClientConn::register(&shared.clients, id, addr, laddr, &shared.acl, &shutdown);
    // Cancelled by shutdown or by CLIENT KILL.
    let kill = session.kill_switch();
    if let Err(e) = serve(stream, &mut session, &shared, &kill).await {
        tracing::debug!("client {id}: {e}");
    }
    session.unregister(&shared.clients);
}

async fn serve<S: ClientStream>(
    mut stream: S,
    session: &mut Session,
    shared: &ProxyShared,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let _ = stream.tcp().set_nodelay(true);
    let limits = shared.output_limits;
    let mut input = Input {
        scanner: RequestScanner::new(),
        // Allocated at the first read: a connection that only opens costs no buffer.
        buf: BytesMut::new(),
        closing: false,
        eof: false,
        held_back: false,
        stalled: false,
        paused: false,
        state: SessionState::default(),
        parked: None,
        hot_tick: 0,
    };
    // Pub/sub messages and invalidations for this client, once it has subscribed or turned tracking on.
    let mut pushes: Option<PushReceiver> = None;
    let mut out = ReplyQueue::default();
    let mut pending: VecDeque<Timed> = VecDeque::new();
    // The largest reply lately, which sizes how many requests may be in flight (see `crate::output`).
    let mut reply_estimate = limits.initial_estimate();
    let mut write_blocked = false;
    let mut limited: Option<Limited<'_>> = None;
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let idle = shared.idle_timeout();
    let far = Duration::from_secs(86_400 * 365);
    let idle_sleep = tokio::time::sleep(if idle.is_zero() { far } else { idle });
    tokio::pin!(idle_sleep);
    let soft_sleep = tokio::time::sleep(far);
    tokio::pin!(soft_sleep);
    let mut last_read = Instant::now();
    loop {
        let nothing_more = input.closing || (input.eof && !input.held_back && !input.stalled);
        // (`write_blocked` with nothing queued: TLS records not yet flushed.)
        if nothing_more && pending.is_empty() && out.is_empty() && !write_blocked {
            return Ok(());
        }
        // The soft limit: a client this far behind is not read from (and is timed while it stays so).
        match (&limited, limits.over_soft(out.unsent())) {
            (None, true) => {
                let now = Instant::now();
                limited = Some(Limited::new(&shared.output_stats, now));
                if !limits.soft_duration.is_zero() {
                    soft_sleep.as_mut().reset((now + limits.soft_duration).into());
                }
            }
            (Some(_), false) => limited = None,
            _ => {}
        }
        // How many more requests may go to the shards now (see `crate::output`).
        let window = if limited.is_some() { 0 } else { limits.window(reply_estimate, MAX_PENDING_PER_CLIENT) };
        // Requests read earlier and held back go first.
        if (input.held_back || input.stalled) && window > pending.len() {
            let room = window - pending.len();
            input.route_buffered(session, shared, &mut pending, room, Instant::now());
            if let Some(rx) = input.state.take_new_receiver() {
                pushes = Some(rx);
            }
        }
        let room = window.saturating_sub(pending.len());
        let can_read = !input.closing && !input.eof && !input.held_back && !input.stalled && room > 0;
        let push_writable = pending.is_empty() && !write_blocked;
        tokio::select! {
            biased;
            (reply, done) = oldest_reply(&mut pending), if !pending.is_empty() => {
                let now = Instant::now();
                let mut take = |reply: Bytes, done: Timed| {
                    done.record(now, shared, session);
                    reply_estimate = reply.len().max(reply_estimate - reply_estimate / 16);
                    out.push(reply);
                };
                take(reply, done);
                while let Some((reply, done)) = oldest_reply(&mut pending).now_or_never() {
                    take(reply, done);
                }
                shared.output_stats.observe(out.unsent(), now.saturating_duration_since(shared.started).as_secs());
                if limits.over_hard(out.queued_behind_first()) {
                    shared.output_stats.disconnected();
                    tracing::warn!(
                        "client {} closed: {} bytes of replies waiting behind the one being written, over the hard \
                         limit of --client-output-buffer-limit ({} bytes)",
                        session.id,
                        out.queued_behind_first(),
                        limits.hard_bytes
                    );
                    return Ok(());
                }
                write_blocked = !out.write_to(&mut stream)?;
            }
            r = stream.writable(), if write_blocked => {
                r?;
                write_blocked = !out.write_to(&mut stream)?;
            }
            r = stream.readable(), if can_read => {
                r?;
                input.buf.reserve(input.scanner.bytes_needed_hint(input.buf.len()).max(READ_CHUNK_BYTES));
                // `read_buf` rather than `try_read_buf`: a short read clears the readiness, which saves a read
                // that would block on every request of an unpipelined client.
                match stream.read_buf(&mut input.buf).now_or_never() {
                    None => continue,
                    Some(Ok(0)) => {
                        // A client that leaves while blocked is gone at once, as in Redis (its blocked
                        // command's connection is closed, so the shard forgets it too).
                        if crate::blocking::is_waiting(&pending) {
                            return Ok(());
                        }
                        input.eof = true;
                        continue;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                }
                // The idle timer is not moved on every read (a timer-wheel update per read): when it
                // fires, it checks the last read and sleeps again if there was one since.
                last_read = Instant::now();
                input.route_buffered(session, shared, &mut pending, room, last_read);
                if let Some(rx) = input.state.take_new_receiver() {
                    pushes = Some(rx);
                }
            }
            // Pushes are written only between replies, when none is pending: an invalidation never
            // overtakes the reply to the read it invalidates, nor a message its subscription's confirmation.
            // While the socket is full they stay in the push queue, whose limit (`pubsub`) then applies.
            frame = next_push(&mut pushes, push_writable), if pushes.is_some() => {
                let Some(frame) = frame else {
                    tracing::warn!(
                        "client {} closed: its unsent pub/sub messages and invalidations went over \
                         --client-output-buffer-limit-pubsub",
                        session.id
                    );
                    return Ok(());
                };
                let Some(receiver) = pushes.as_mut() else { continue };
                receiver.written(frame.len());
                out.push(frame);
                while let Some(frame) = receiver.try_recv() {
                    receiver.written(frame.len());
                    out.push(frame);
                }
                write_blocked = !out.write_to(&mut stream)?;
            }
            // Shutdown or CLIENT KILL: no more requests; the pending replies are finished, unless a blocking
            // command waits (its reply may never come): then the connection closes at once, as in Redis.
            _ = &mut cancelled, if !input.closing => {
                if crate::blocking::is_waiting(&pending) {
                    return Ok(());
                }
                input.closing = true;
            }
            // A request held by CLIENT PAUSE is routed again once the pause ends.
            _ = shared.clients.pause.wait(), if input.paused && pending.is_empty() => input.paused = false,
            _ = &mut idle_sleep, if !input.closing && pending.is_empty() && !idle.is_zero() => {
                let deadline = last_read + idle;
                if Instant::now() >= deadline {
                    return Ok(());
                }
                idle_sleep.as_mut().reset(deadline.into());
            }
            _ = &mut soft_sleep, if limited.is_some() && !limits.soft_duration.is_zero() => {
                if limited.as_ref().is_some_and(|l| l.since.elapsed() >= limits.soft_duration) {
                    shared.output_stats.disconnected();
                    tracing::warn!(
                        "client {} closed: its unsent replies stayed over the soft limit of \
                         --client-output-buffer-limit ({} bytes) for {:?}",
                        session.id,
                        limits.soft_bytes,
                        limits.soft_duration
                    );
                    return Ok(());
                }
            }
        }
    }
}

/// The next push for the client, when it may be written now (`writable`); `None` when it went over its
/// output limit (it is disconnected), which is watched for also while pushes are not being written.
async fn next_push(pushes: &mut Option<PushReceiver>, writable: bool) -> Option<Bytes> {
    match pushes {
        Some(receiver) if writable => receiver.recv().await,
        Some(receiver) => {
            receiver.until_overflowed().await;
            None
        }
        None => std::future::pending().await,
    }
}

/// A client's requests as read: the bytes not yet routed, and whether reading has ended.
struct Input {
    scanner: RequestScanner,
    buf: BytesMut,
    /// No more requests are routed (QUIT, a protocol error, shutdown); the pending replies are finished.
    closing: bool,
    /// The client sent everything it will send: what is buffered is still routed.
    eof: bool,
    /// Requests wait in `buf` because a shard went down while older ones were in flight.
    held_back: bool,
    /// Requests may wait in `buf` because the client has as many at the shards as it may, or because a
    /// blocking command is in the way ([`crate::blocking::must_wait`]).
    stalled: bool,
    /// The parked request waits for a CLIENT PAUSE to end.
    paused: bool,
    /// Transaction, WATCH, subscriptions, tracking.
    state: SessionState,
    /// A blocking command read but not yet routed: it waits for the client's earlier requests.
    parked: Option<Request>,
    /// Requests since the last one sampled for `--hot-keys`.
    hot_tick: u32,
}

impl Input {
    /// Routes up to `room` complete requests from the buffer, in order, unless a shard went down since the
    /// oldest one still in flight was routed: then the rest wait until those are answered (or sent again
    /// elsewhere), so that a later request cannot overtake an earlier one that is being failed over.
    /// `started` (when the bytes were read) times the requests.
    fn route_buffered(
        &mut self,
        session: &mut Session,
        shared: &ProxyShared,
        pending: &mut VecDeque<Timed>,
        mut room: usize,
        started: Instant,
    ) {
        let epoch = shared.cluster.ejection_epoch();
        self.held_back = false;
        self.stalled = false;
        self.paused = false;
        while !self.closing {
            // After a barrier (see `crate::stateful`), nothing until it is answered.
            if pending.front().is_some_and(|oldest| oldest.epoch != epoch) || pending.back().is_some_and(|t| t.barrier)
            {
                self.held_back = true;
                break;
            }
            if room == 0 || crate::blocking::is_waiting(pending) {
                self.stalled = !self.buf.is_empty() || self.parked.is_some();
                break;
            }
            room -= 1;
            let limits = if session.authenticated { shared.limits } else { shared.limits.unauthenticated() };
            let next = match self.parked.take() {
                Some(req) => Ok(Some(req)),
                None => self.scanner.next(&mut self.buf, &limits),
            };
            match next {
                Ok(Some(req)) => {
                    // CLIENT PAUSE: the request waits, unrouted, until the pause ends.
                    if shared.clients.pause.holds(|| ringcache_common::clients::may_write(&req)) {
                        self.parked = Some(req);
                        self.stalled = true;
                        self.paused = true;
                        break;
                    }
                    let spec = command::lookup(req.name());
                    if crate::blocking::must_wait(spec, pending) {
                        self.parked = Some(req);
                        self.stalled = true;
                        break;
                    }
                    if let Some(hot) = &shared.hot_keys {
                        hot.observe(&mut self.hot_tick, &req);
                    }
                    let routed = stateful::route(&mut self.state, session, shared, req, spec);
                    let command = routed.spec.map(|s| s.index());
                    let barrier = routed.barrier;
                    pending.push_back(Timed { fut: routed.fut, command, started, epoch, barrier });
                    if session.close_after_reply {
                        self.closing = true;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let mut msg = BytesMut::new();
                    msg.error(&format!("ERR Protocol error: {e}"));
                    pending.push_back(Timed::untimed(ReplyFut::ready(msg.freeze())));
                    self.closing = true;
                }
            }
        }
        // A buffer that grew for a large request is given back (the request keeps its own bytes alive).
        if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER_BYTES {
            self.buf = BytesMut::new();
        }
    }
}
