//! Accepting clients and running their connections.
//!
//! [`run`] takes a bound listener and a shutdown token (so tests and `main` start it the same way). Each
//! connection reads whatever the socket has, executes every complete request in order against the store,
//! and writes all their replies with one write. On shutdown the listener closes first, then each
//! connection finishes the batch it is executing, writes its replies and closes; `run` waits for them
//! (up to a grace period) before returning.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcache_common::connection::{ClientConn, ClientRegistry};
use ringcache_common::resp::{Limits, Protocol, ReplyBuf, ReplyWriter, RequestScanner};
use ringcache_common::server::{accept_loop, ConnectionCounters};
use ringcache_common::tls::ClientStream;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::blocking::{Blocking, Waiter, Wake};
use crate::client::{PushReceiver, StateLimits};
use crate::clock::now_ms;
use crate::cmd::{self, Ctx, Deferred};
use crate::events::{KeyEvents, PushQueues};
use crate::handoff::Handoffs;
use crate::pubsub::PubSub;
use crate::scripting::{ScriptLimits, Scripting};
use crate::snapshot::Persistence;
use crate::store::{Db, Store};

pub use ringcache_common::connection::REDIS_COMPAT_VERSION;

/// Replies are flushed early once this much is buffered, so one huge pipeline cannot grow memory unbounded.
const EARLY_FLUSH_BYTES: usize = 1 << 20;
/// Read and write buffers larger than this are dropped after use rather than kept per connection; what a
/// connection's buffers hold beyond it is charged to the memory budget while they hold it.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Server settings that commands can see.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub port: u16,
    pub maxclients: usize,
    /// The users (the default one has --requirepass as its password).
    pub acl: Arc<ringcache_common::acl::Acl>,
    /// Zero: never time out.
    pub idle_timeout: Duration,
    pub limits: Limits,
    /// Limits on transactions and subscriptions.
    pub state: StateLimits,
    /// Limits of Lua scripts.
    pub scripts: ScriptLimits,
    /// SLOWLOG and LATENCY thresholds.
    pub diagnostics: ringcache_common::diagnostics::DiagnosticsArgs,
    /// The `--config` file, for INFO's `config_file`.
    pub config_file: Option<String>,
}

/// A shard's place in the ring's life, as proxies set it with `RINGCACHE MEMBER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Membership {
    /// Started, not (yet) admitted by a proxy that added it to the ring.
    Joining = 0,
    /// Admitted.
    Member = 1,
    /// Leaving (SIGTERM or removed from the config): still serving while a first copy of its keys is
    /// taken; every key written meanwhile is remembered for a second, short pass.
    Leaving = 4,
    /// Leaving, second pass: writes are refused while the keys written during the first are copied.
    Draining = 2,
    /// Its keys are elsewhere: every command on a key is refused.
    Drained = 3,
}

impl Membership {
    /// Leaving the ring, at any stage: some commands are refused.
    #[inline]
    pub fn is_leaving_ring(self) -> bool {
        matches!(self, Membership::Leaving | Membership::Draining | Membership::Drained)
    }

    pub fn name(self) -> &'static str {
        match self {
            Membership::Joining => "joining",
            Membership::Member => "member",
            Membership::Leaving => "leaving",
            Membership::Draining => "draining",
            Membership::Drained => "drained",
        }
    }

    fn from_u8(v: u8) -> Membership {
        match v {
            1 => Membership::Member,
            2 => Membership::Draining,
            3 => Membership::Drained,
            4 => Membership::Leaving,
            _ => Membership::Joining,
        }
    }
}

/// What a leaving shard wrote during the first pass of its drain.
#[derive(Debug, Default)]
pub struct WrittenWhileLeaving {
    pub keys: std::collections::BTreeSet<bytes::Bytes>,
    /// `keys`, sorted and frozen once draining began, for `HANDOFF DIRTY` to page through.
    pub frozen: Vec<bytes::Bytes>,
}

/// State shared by all connections.
pub struct Shared {
    pub config: ServerConfig,
    pub store: Arc<Store>,
    pub persistence: Arc<Persistence>,
    /// What this shard wrote while standing in for absent shards.
    pub handoffs: Arc<Handoffs>,
    /// Where this shard is in the ring's life: see [`Membership`].
    pub membership: AtomicU8,
    /// The proxy handing keys to this shard (joining or returning), and until when: one at a time, or a
    /// late copy from a second proxy could overwrite writes the first one already let through.
    pub handoff_lock: parking_lot::Mutex<Option<(String, Instant)>>,
    /// Keys written while leaving (sorted when draining begins): the second pass of the drain.
    pub written_while_leaving: parking_lot::Mutex<WrittenWhileLeaving>,
    pub clients: ClientRegistry,
    /// WATCH and client tracking, told of every key change by the store's hook.
    pub events: Arc<KeyEvents>,
    pub pubsub: Arc<PubSub>,
    /// The Lua state and the script cache.
    pub scripting: Scripting,
    /// Clients blocked on keys.
    pub blocking: Blocking,
    /// The push queue of every connection that has one, by client id (CLIENT TRACKING ... REDIRECT).
    pub pushers: Arc<PushQueues>,
    pub started: Instant,
    pub connections: Arc<ConnectionCounters>,
    /// The slow log and the latency monitor.
    pub diagnostics: ringcache_common::diagnostics::Diagnostics,
    /// Settings CONFIG SET changes (`timeout`).
    pub live: crate::cmd::LiveSettings,
    /// CONFIG's parameter table and the `--config` file CONFIG REWRITE writes.
    pub runtime_config: ringcache_common::runtime_config::RuntimeConfig<Shared>,
    next_client_id: AtomicU64,
}

impl Shared {
    /// Fails only if the Lua state cannot be made.
    pub fn new(
        config: ServerConfig,
        store: Arc<Store>,
        persistence: Arc<Persistence>,
        handoffs: Handoffs,
    ) -> mlua::Result<Shared> {
        let pubsub = Arc::new(PubSub::default());
        let pushers = Arc::new(PushQueues::new());
        let events = KeyEvents::install(store.hooks(), pubsub.clone(), pushers.clone());
        let scripting = Scripting::new(config.scripts)?;
        let diagnostics = ringcache_common::diagnostics::Diagnostics::new(&config.diagnostics);
        let live = crate::cmd::LiveSettings::new(config.idle_timeout);
        let runtime_config = crate::cmd::runtime_config(config.config_file.clone().map(Into::into));
        Ok(Shared {
            diagnostics,
            live,
            runtime_config,
            config,
            store,
            persistence,
            handoffs: Arc::new(handoffs),
            membership: AtomicU8::new(Membership::Joining as u8),
            handoff_lock: parking_lot::Mutex::new(None),
            written_while_leaving: parking_lot::Mutex::new(WrittenWhileLeaving::default()),
            clients: ClientRegistry::new(),
            events,
            pubsub,
            scripting,
            blocking: Blocking::default(),
            pushers,
            started: Instant::now(),
            connections: Arc::default(),
            next_client_id: AtomicU64::new(1),
        })
    }

    pub fn membership(&self) -> Membership {
        Membership::from_u8(self.membership.load(Ordering::SeqCst))
    }

    pub fn set_membership(&self, m: Membership) {
        self.membership.store(m as u8, Ordering::SeqCst);
    }

    /// Starts leaving (a no-op once leaving, draining or drained: a second proxy must not reset it).
    pub fn start_leaving(&self) {
        let mut written = self.written_while_leaving.lock();
        if matches!(self.membership(), Membership::Joining | Membership::Member) {
            *written = WrittenWhileLeaving::default();
            self.set_membership(Membership::Leaving);
        }
    }

    /// Stops taking writes; what was written while leaving is frozen for the second pass.
    pub fn start_draining(&self) {
        let mut written = self.written_while_leaving.lock();
        if matches!(self.membership(), Membership::Joining | Membership::Member | Membership::Leaving) {
            self.set_membership(Membership::Draining);
            let keys = std::mem::take(&mut written.keys);
            written.frozen = keys.into_iter().collect();
        }
    }

    /// Takes (or renews) the handoff lock for `token` until `lease` from now; false if another token holds
    /// an unexpired lease.
    pub fn lock_handoff(&self, token: &str, lease: Duration) -> bool {
        let mut lock = self.handoff_lock.lock();
        let now = Instant::now();
        if lock.as_ref().is_some_and(|(holder, until)| holder != token && *until > now) {
            return false;
        }
        *lock = Some((token.to_string(), now + lease));
        true
    }

    /// Releases the handoff lock if `token` holds it.
    pub fn unlock_handoff(&self, token: &str) {
        let mut lock = self.handoff_lock.lock();
        if lock.as_ref().is_some_and(|(holder, _)| holder == token) {
            *lock = None;
        }
    }

    /// Whether a ringcache-proxy is connected (its shard connections are named `ringcache-proxy`).
    pub fn proxy_connected(&self) -> bool {
        self.clients.iter().any(|c| c.value().lock().name == "ringcache-proxy")
    }

    pub fn total_connections(&self) -> u64 {
        self.connections.total()
    }

    pub fn rejected_connections(&self) -> u64 {
        self.connections.rejected()
    }
}

pub use crate::client::ClientState;

/// Accepts clients until `shutdown` fires, then waits for open connections to finish.
pub async fn run(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) -> std::io::Result<()> {
    let counters = shared.connections.clone();
    let maxclients = shared.config.maxclients;
    accept_loop(listener, maxclients, counters, shutdown.clone(), &[], move |stream, addr| {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        async move { serve_client(stream, addr, &shared, &shutdown).await }
    })
    .await
}

/// Serves one client, over plain TCP or TLS (`crate::tls`).
pub(crate) async fn serve_client<S: ClientStream>(
    stream: S,
    addr: SocketAddr,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
) {
    let _ = stream.tcp().set_nodelay(true);
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let laddr = stream.tcp().local_addr().unwrap_or(addr);
    let conn = ClientConn::register(&shared.clients, id, addr, laddr, &shared.config.acl, shutdown);
    // Cancelled by shutdown or by CLIENT KILL.
    let kill = conn.kill_switch();
    let mut client = ClientState::new(conn);
    if let Err(e) = connection_loop(stream, shared, &mut client, &kill).await {
        tracing::debug!("client {id} ({addr}): {e}");
    }
    // Nothing of a closed connection stays behind: its transaction, watches, subscriptions and tracking.
    cmd::forget_client(shared, &mut client);
    client.unregister(&shared.clients);
}

/// The next push for this connection: `Some(None)` when it went over its output limit and must close;
/// never ready for a connection without a push queue.
async fn next_push(pushes: &mut Option<PushReceiver>) -> Option<Bytes> {
    match pushes {
        Some(p) => p.recv().await,
        None => std::future::pending().await,
    }
}

async fn connection_loop<S: ClientStream>(
    mut stream: S,
    shared: &Shared,
    client: &mut ClientState,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    // Allocated when the first request arrives: a connection that only opens costs no buffer.
    let mut rbuf = BytesMut::new();
    let mut wbuf = ReplyBuf::new(Protocol::Resp2);
    let mut charge = BufferCharge::new(&shared.store);
    let mut scanner = RequestScanner::new();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        // Subscribers and tracking clients only listen: the idle timeout does not apply to them (as Redis).
        let timeout = if client.pushes.is_some() { Duration::ZERO } else { shared.live.idle_timeout() };
        let read = tokio::select! {
            biased;
            _ = &mut cancelled => return Ok(()),
            push = next_push(&mut client.pushes), if client.pushes.is_some() => {
                let Some(frame) = push else {
                    tracing::info!(
                        "client {}: closed for going over its output buffer limit (client-output-buffer-limit pubsub)",
                        client.id
                    );
                    return Ok(());
                };
                write_pushes(&mut stream, &mut wbuf, frame, client).await?;
                continue;
            }
            r = read_some(&mut stream, &mut rbuf, &scanner, &mut charge, timeout) => r?,
        };
        let Some(n) = read else {
            return Ok(()); // idle timeout
        };
        if n == 0 {
            return Ok(());
        }
        let mut now = now_ms();
        let mut command_started = Instant::now();
        loop {
            let limits =
                if client.authenticated { shared.config.limits } else { shared.config.limits.unauthenticated() };
            let req = match scanner.next(&mut rbuf, &limits) {
                Ok(Some(req)) => {
                    charge.request_read();
                    req
                }
                Ok(None) => break,
                Err(e) => {
                    wbuf.error(&format!("ERR Protocol error: {e}"));
                    commit_log(shared, client).await?;
                    stream.send_all(&wbuf).await?;
                    return Ok(());
                }
            };
            // CLIENT PAUSE: this command waits (with the replies before it sent) until the pause ends.
            if shared.clients.pause.holds(|| ringcache_common::clients::may_write(&req)) {
                if !wbuf.is_empty() {
                    commit_log(shared, client).await?;
                    stream.send_all(&wbuf).await?;
                    wbuf.clear();
                }
                tokio::select! {
                    _ = &mut cancelled => return Ok(()),
                    _ = shared.clients.pause.wait() => {}
                }
                now = now_ms();
                command_started = Instant::now();
            }
            let (finished, deferred) = run_one(shared, client, &mut wbuf, &req, now, command_started, false);
            command_started = finished;
            match deferred {
                // A blocking command that found nothing: wait (the client's later requests wait behind it).
                Some(Deferred::Blocked { waiter, wake, deadline }) => {
                    let blocked = Blocked { waiter, wake, deadline };
                    if wait_blocked(&mut stream, &mut rbuf, &mut wbuf, shared, client, blocked, &mut cancelled).await?
                        == BlockEnd::Close
                    {
                        return Ok(());
                    }
                    command_started = Instant::now();
                }
                Some(Deferred::WaitReplicas { deadline }) => {
                    if wait_replicas(&mut stream, &mut rbuf, &mut wbuf, deadline, &mut cancelled).await?
                        == BlockEnd::Close
                    {
                        return Ok(());
                    }
                    command_started = Instant::now();
                }
                // SAVE: only this client waits for the snapshot; its later requests wait behind it, in order.
                Some(Deferred::Save(done)) => {
                    match done.await {
                        Ok(Ok(())) => wbuf.ok(),
                        Ok(Err(e)) => wbuf.error(&e),
                        Err(_) => wbuf.error("ERR the snapshot thread stopped"),
                    }
                    command_started = Instant::now();
                }
                // Long work done off the worker threads (HANDOFF SEED walks the whole keyspace).
                Some(Deferred::Integer(done)) => {
                    let outcome = done.await;
                    // The work ran on another thread: whatever it logged is committed before the reply.
                    if let Some(aof) = shared.store.aof() {
                        client.aof_upto = aof.appended();
                    }
                    match outcome {
                        Ok(Ok(n)) => wbuf.integer(n),
                        Ok(Err(e)) => wbuf.error(&e),
                        Err(_) => wbuf.error("ERR the background task stopped"),
                    }
                    command_started = Instant::now();
                }
                None => {}
            }
            if client.close_after_reply {
                commit_log(shared, client).await?;
                stream.send_all(&wbuf).await?;
                return Ok(());
            }
            if wbuf.len() >= EARLY_FLUSH_BYTES {
                charge.cover_write(wbuf.capacity());
                commit_log(shared, client).await?;
                stream.send_all(&wbuf).await?;
                wbuf.clear();
            }
        }
        if !wbuf.is_empty() {
            charge.cover_write(wbuf.capacity());
            // One write (and, with appendfsync always, one fsync) of the log covers the whole batch.
            if client.aof_upto != 0 {
                commit_log(shared, client).await?;
            }
            stream.send_all(&wbuf).await?;
            wbuf.clear();
        }
        if wbuf.capacity() > KEEP_BUFFER_BYTES {
            // Keep what a connection may hold uncharged: a client whose batches of replies come near it
            // (16 pipelined HGETALLs of 100 fields) would otherwise regrow its buffer from nothing, a dozen
            // copies, on every batch.
            wbuf.reset_with_capacity(KEEP_BUFFER_BYTES);
        }
        if charge.take_read_growth() {
            // The buffer grew for a large request. The request's frame was split off it, but `rbuf` still
            // shares that allocation (its small spare tail is all `capacity` shows) and would keep the whole
            // block, uncharged, for as long as the connection lives: start a fresh one, carrying over the
            // start of the next request if one arrived.
            rbuf = if rbuf.is_empty() { BytesMut::new() } else { BytesMut::from(&rbuf[..]) };
        }
        charge.cover_write(wbuf.capacity());
        client.touch(command_started);
    }
}

/// Runs one request; the command's context (and the stripes it locks) ends before any await. Returns when
/// it finished and what it left for the connection to wait for.
#[inline(always)]
fn run_one(
    shared: &Shared,
    client: &mut ClientState,
    wbuf: &mut ReplyBuf,
    req: &ringcache_common::resp::Request,
    now_ms: u64,
    started: Instant,
    retrying: bool,
) -> (Instant, Option<Deferred>) {
    let mut deferred = None;
    let mut ctx = Ctx {
        shared,
        store: &shared.store,
        db: Db::unlocked(&shared.store),
        client: &mut *client,
        out: wbuf,
        now_ms,
        deferred: &mut deferred,
        retrying,
        ready_keys: Vec::new(),
    };
    let logging = shared.store.aof().is_some();
    if logging {
        crate::aof::take_mark();
    }
    let finished = cmd::execute(&mut ctx, req, started);
    drop(ctx);
    if logging {
        client.aof_upto = client.aof_upto.max(crate::aof::take_mark());
    }
    (finished, deferred)
}

/// Writes (with `always`, fsyncs) the append-only log as far as this connection's writes reach, before
/// their replies are sent. A log that cannot be written closes the connection: replies are never sent for
/// writes that are not in the log.
async fn commit_log(shared: &Shared, client: &mut ClientState) -> std::io::Result<()> {
    if client.aof_upto == 0 {
        return Ok(());
    }
    if let Some(aof) = shared.store.aof() {
        aof.commit_async(client.aof_upto).await.map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    client.aof_upto = 0;
    Ok(())
}

/// A blocked client's wait.
struct Blocked {
    waiter: Arc<Waiter>,
    wake: tokio::sync::oneshot::Receiver<Wake>,
    deadline: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
enum BlockEnd {
    /// The reply is in `wbuf`; carry on with the next request.
    Continue,
    /// The client went away (or the shard is stopping).
    Close,
}

/// Read buffer a blocked client may fill before the shard stops reading from it.
const BLOCKED_READ_LIMIT: usize = 1 << 20;

/// Waits for a blocked client's wake-up, its timeout, or its disconnection, and writes its reply. Replies
/// to what it sent before are written first.
async fn wait_blocked<S: ClientStream>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    wbuf: &mut ReplyBuf,
    shared: &Shared,
    client: &mut ClientState,
    mut blocked: Blocked,
    cancelled: &mut std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> std::io::Result<BlockEnd> {
    loop {
        if !wbuf.is_empty() {
            commit_log(shared, client).await?;
            stream.send_all(wbuf).await?;
            wbuf.clear();
        }
        let deadline = blocked.deadline;
        let sleep = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let woken = tokio::select! {
            biased;
            _ = cancelled.as_mut() => {
                shared.blocking.unblock(&blocked.waiter);
                return Ok(BlockEnd::Close);
            }
            w = &mut blocked.wake => w,
            _ = sleep => {
                if shared.blocking.unblock(&blocked.waiter) {
                    wbuf.null_array();
                    return Ok(BlockEnd::Continue);
                }
                // Someone took it to serve it just now: its wake-up is on its way.
                (&mut blocked.wake).await
            }
            r = stream.read_buf(rbuf), if rbuf.len() < BLOCKED_READ_LIMIT => {
                if r? == 0 {
                    shared.blocking.unblock(&blocked.waiter);
                    return Ok(BlockEnd::Close);
                }
                continue;
            }
        };
        match woken {
            Ok(Wake::Served(reply)) => {
                // Served by another client's write: that write's frame (with what this client took) is
                // committed before this reply too.
                if let Some(aof) = shared.store.aof() {
                    client.aof_upto = aof.appended();
                }
                wbuf.extend_from_slice(&reply)
            }
            Ok(Wake::Unblocked { error: true }) => wbuf.error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
            Ok(Wake::Unblocked { error: false }) | Err(_) => wbuf.null_array(),
            Ok(Wake::Retry) => {
                let request = blocked.waiter.request.clone();
                let (_, deferred) = run_one(shared, client, wbuf, &request, now_ms(), Instant::now(), true);
                if let Some(Deferred::Blocked { waiter, wake, .. }) = deferred {
                    // Still nothing: wait again, until the same deadline.
                    blocked = Blocked { waiter, wake, deadline: blocked.deadline };
                    continue;
                }
            }
        }
        return Ok(BlockEnd::Continue);
    }
}

/// WAIT for replicas: nothing can arrive, so the client waits out its timeout (or leaves), then gets 0.
async fn wait_replicas<S: ClientStream>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    wbuf: &mut ReplyBuf,
    deadline: Option<Instant>,
    cancelled: &mut std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> std::io::Result<BlockEnd> {
    if !wbuf.is_empty() {
        stream.send_all(wbuf).await?;
        wbuf.clear();
    }
    let sleep = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            _ = cancelled.as_mut() => return Ok(BlockEnd::Close),
            _ = &mut sleep => {
                wbuf.integer(0);
                return Ok(BlockEnd::Continue);
            }
            r = stream.read_buf(rbuf), if rbuf.len() < BLOCKED_READ_LIMIT => {
                if r? == 0 {
                    return Ok(BlockEnd::Close);
                }
            }
        }
    }
}

/// Writes `first` and every other push already queued, in one write.
async fn write_pushes<S: ClientStream>(
    stream: &mut S,
    wbuf: &mut ReplyBuf,
    first: Bytes,
    client: &mut ClientState,
) -> std::io::Result<()> {
    let Some(pushes) = client.pushes.as_mut() else { return Ok(()) };
    wbuf.extend_from_slice(&first);
    while wbuf.len() < EARLY_FLUSH_BYTES {
        match pushes.try_recv() {
            Some(frame) => wbuf.extend_from_slice(&frame),
            None => break,
        }
    }
    let written = wbuf.len();
    stream.send_all(wbuf).await?;
    wbuf.clear();
    pushes.written(written);
    Ok(())
}

/// Waits for the client's next bytes, then reads what is available into `buf`, grown first to hold what the
/// request being read still needs (charged to the memory budget: see [`BufferCharge::cover_read`]);
/// `Ok(None)` when the idle timeout passed first.
async fn read_some<S: ClientStream>(
    stream: &mut S,
    buf: &mut BytesMut,
    scanner: &RequestScanner,
    charge: &mut BufferCharge<'_>,
    idle_timeout: Duration,
) -> std::io::Result<Option<usize>> {
    // The common case, a connection that has read before and has room left: wait for the data and read it
    // in one step (waiting for readiness first, below, costs a second poll of the socket per read).
    if scanner.bytes_needed_hint(buf.len()) == 0 && buf.capacity() - buf.len() >= READ_CHUNK_BYTES / 2 {
        if idle_timeout.is_zero() {
            return stream.read_buf(buf).await.map(Some);
        }
        return match tokio::time::timeout(idle_timeout, stream.read_buf(buf)).await {
            Ok(read) => read.map(Some),
            Err(_) => Ok(None),
        };
    }
    // Otherwise the buffer is allocated (or grown, and charged) only once data is there: a connection that
    // only opens costs no buffer.
    if idle_timeout.is_zero() {
        stream.readable().await?;
    } else if tokio::time::timeout(idle_timeout, stream.readable()).await.is_err() {
        return Ok(None);
    }
    let needed = scanner.bytes_needed_hint(buf.len()).max(READ_CHUNK_BYTES);
    if buf.capacity() - buf.len() < needed {
        charge.cover_read(buf.len() + needed).await;
        buf.reserve(needed);
    }
    // `read_buf` rather than `try_read_buf`: a short read clears the readiness, which saves a read that would
    // block on every request of an unpipelined client. Readiness said data is there: it returns at once.
    stream.read_buf(buf).await.map(Some)
}

/// What a connection's buffers hold beyond [`KEEP_BUFFER_BYTES`] each, charged to the store's memory budget
/// (evicting keys to make room) while they hold it, as Redis counts client buffers in `used_memory`: many
/// clients moving large values cannot push the process far past `--maxmemory`.
struct BufferCharge<'a> {
    store: &'a Store,
    /// For the request being read.
    reading: usize,
    /// For replies being written.
    writing: usize,
    /// Held while reading a request larger than the whole budget (one at a time; it is refused).
    oversize: Option<tokio::sync::SemaphorePermit<'a>>,
    /// The read buffer was grown beyond [`KEEP_BUFFER_BYTES`] since the last [`Self::take_read_growth`].
    read_grown: bool,
}

impl<'a> BufferCharge<'a> {
    fn new(store: &'a Store) -> Self {
        BufferCharge { store, reading: 0, writing: 0, oversize: None, read_grown: false }
    }

    /// Before a read buffer grows to `capacity`: charges what it holds beyond [`KEEP_BUFFER_BYTES`],
    /// waiting (the client is not read from meanwhile) while other clients' buffers fill the budget.
    async fn cover_read(&mut self, capacity: usize) {
        let wanted = capacity.saturating_sub(KEEP_BUFFER_BYTES);
        self.read_grown |= wanted > 0;
        if wanted <= self.reading || self.oversize.is_some() {
            return;
        }
        let max = self.store.maxmemory_bytes();
        if max != 0 && wanted > max {
            // It can only be refused once read: one such request at a time, uncharged.
            self.oversize = self.store.oversize_read().await;
            return;
        }
        loop {
            let released = self.store.buffers_released();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.store.charge_buffer(wanted - self.reading) {
                self.reading = wanted;
                return;
            }
            released.await;
        }
    }

    /// A request is read in full: its buffer's charge is given back before it runs (a value it stores is
    /// charged as data; the buffer is dropped once the batch is done).
    #[inline]
    fn request_read(&mut self) {
        // Nearly always nothing was charged: a request that fit the buffer it arrived in.
        if self.reading > 0 || self.oversize.is_some() {
            self.release_read();
        }
    }

    #[cold]
    fn release_read(&mut self) {
        self.store.release_buffer(std::mem::take(&mut self.reading));
        self.oversize = None;
    }

    /// Whether the read buffer grew beyond [`KEEP_BUFFER_BYTES`] for a request that has been read in full
    /// since then: the connection replaces the buffer so the large block is freed. `false` while a large
    /// request is still being read: replacing the buffer then would copy all it holds so far on every read
    /// (quadratic in the request's size: a 512 MB SET took 53 s).
    fn take_read_growth(&mut self) -> bool {
        let reading_large = self.reading > 0 || self.oversize.is_some();
        !reading_large && std::mem::take(&mut self.read_grown)
    }

    /// Charges (or gives back) what write buffers of `capacity` bytes hold beyond [`KEEP_BUFFER_BYTES`].
    /// Replies are never held back: if nothing can be evicted, they go out uncharged.
    #[inline]
    fn cover_write(&mut self, capacity: usize) {
        let wanted = capacity.saturating_sub(KEEP_BUFFER_BYTES);
        if wanted > self.writing {
            if self.store.charge_buffer(wanted - self.writing) {
                self.writing = wanted;
            }
        } else if wanted < self.writing {
            self.store.release_buffer(self.writing - wanted);
            self.writing = wanted;
        }
    }
}

impl Drop for BufferCharge<'_> {
    fn drop(&mut self) {
        self.store.release_buffer(self.reading + self.writing);
    }
}
