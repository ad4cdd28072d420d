//! One client connection's state: what it shares with the proxy (`common::connection::ClientConn`:
//! authentication, protocol, name) plus what only a shard keeps — a transaction being queued, the keys it
//! watches, its subscriptions, client tracking — and its queue of *pushes*: messages that reach it without
//! being asked for (pub/sub messages, tracking invalidations), written between its replies.
//!
//! A connection's [`PushSender`] is what publishers and invalidations hold. It never blocks and never
//! grows without bound: when the bytes queued for a connection pass its hard limit, or stay past its soft
//! limit for longer than allowed (Redis's `client-output-buffer-limit pubsub`), the connection is marked to
//! be closed and further pushes are dropped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcache_common::connection::ClientConn;
use ringcache_common::resp::{Protocol, Request};
use tokio::sync::{mpsc, Notify};

/// Redis's `client-output-buffer-limit pubsub` for one connection's queued pushes.
#[derive(Debug, Clone, Copy)]
pub struct PushLimits {
    /// Queued bytes past which the connection is closed at once (0: no limit).
    pub hard_bytes: usize,
    /// Queued bytes that may not stay above this for longer than `soft_for` (0: no soft limit).
    pub soft_bytes: usize,
    pub soft_for: Duration,
}

impl Default for PushLimits {
    /// Redis's default for pub/sub clients: 32mb hard, 8mb for 60 seconds.
    fn default() -> Self {
        PushLimits { hard_bytes: 32 << 20, soft_bytes: 8 << 20, soft_for: Duration::from_secs(60) }
    }
}

/// The shared side of a connection's push queue.
struct PushShared {
    queued_bytes: AtomicUsize,
    /// When the queue went above the soft limit (ms since `epoch`, 0 while below).
    soft_since_ms: AtomicU64,
    epoch: Instant,
    limits: PushLimits,
    /// The connection went over a limit: it is closed, and pushes to it are dropped.
    overflowed: AtomicBool,
    wake: Notify,
}

/// What publishers and invalidations hold to reach one connection.
#[derive(Clone)]
pub struct PushSender {
    pub client_id: u64,
    pub proto: Protocol,
    tx: mpsc::UnboundedSender<Bytes>,
    shared: Arc<PushShared>,
}

impl PushSender {
    /// Queues a complete frame (already in this connection's protocol). Returns false if the connection
    /// is gone or over its output limit, in which case the frame is dropped.
    pub fn push(&self, frame: Bytes) -> bool {
        let s = &self.shared;
        if s.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        let queued = s.queued_bytes.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        let limits = s.limits;
        let now_ms = s.epoch.elapsed().as_millis() as u64 + 1;
        let over_soft = limits.soft_bytes != 0 && queued > limits.soft_bytes;
        let soft_expired = if over_soft {
            let since = match s.soft_since_ms.compare_exchange(0, now_ms, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => now_ms,
                Err(since) => since,
            };
            now_ms.saturating_sub(since) >= limits.soft_for.as_millis() as u64
        } else {
            s.soft_since_ms.store(0, Ordering::Relaxed);
            false
        };
        if (limits.hard_bytes != 0 && queued > limits.hard_bytes) || soft_expired {
            s.overflowed.store(true, Ordering::Relaxed);
            s.wake.notify_one();
            return false;
        }
        self.tx.send(frame).is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.shared.overflowed.load(Ordering::Relaxed)
    }
}

/// The connection's side of its push queue.
pub struct PushReceiver {
    rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<PushShared>,
}

impl PushReceiver {
    /// The next frame to write, or `None` once the connection must be closed because it went over its
    /// output limit.
    pub async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if self.shared.overflowed.load(Ordering::Relaxed) {
                return None;
            }
            tokio::select! {
                frame = self.rx.recv() => return frame,
                _ = self.shared.wake.notified() => {}
            }
        }
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.rx.try_recv().ok()
    }

    /// Reports that `bytes` of queued frames were handed to the socket.
    pub fn written(&self, bytes: usize) {
        let left = self.shared.queued_bytes.fetch_sub(bytes, Ordering::Relaxed).saturating_sub(bytes);
        if self.shared.limits.soft_bytes == 0 || left <= self.shared.limits.soft_bytes {
            self.shared.soft_since_ms.store(0, Ordering::Relaxed);
        }
    }

    pub fn overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Relaxed)
    }
}

/// A new push queue for client `client_id`.
pub fn push_queue(client_id: u64, proto: Protocol, limits: PushLimits) -> (PushSender, PushReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(PushShared {
        queued_bytes: AtomicUsize::new(0),
        soft_since_ms: AtomicU64::new(0),
        epoch: Instant::now(),
        limits,
        overflowed: AtomicBool::new(false),
        wake: Notify::new(),
    });
    (PushSender { client_id, proto, tx, shared: shared.clone() }, PushReceiver { rx, shared })
}

/// Limits on what one connection's state may hold (each a flag; see `config.rs`).
#[derive(Debug, Clone, Copy)]
pub struct StateLimits {
    /// Most commands queued between MULTI and EXEC.
    pub multi_max_commands: usize,
    /// Most bytes of arguments queued between MULTI and EXEC.
    pub multi_max_bytes: usize,
    /// Most channels, patterns and shard channels one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Output limits of connections that receive pushes.
    pub pubsub_output: PushLimits,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            multi_max_commands: 100_000,
            multi_max_bytes: 512 << 20,
            max_subscriptions: 100_000,
            pubsub_output: PushLimits::default(),
        }
    }
}

/// A transaction being queued (between MULTI and EXEC).
#[derive(Debug, Default)]
pub struct Multi {
    pub queued: Vec<Request>,
    /// Bytes of the queued requests, against `--multi-max-bytes`.
    pub queued_bytes: usize,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub aborted: bool,
}

/// The keys a connection watches, and whether one of them changed since.
#[derive(Debug, Default)]
pub struct Watch {
    pub keys: Vec<Box<[u8]>>,
    pub dirty: Arc<AtomicBool>,
}

/// A connection's subscriptions (channel names and patterns).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

/// How a connection tracks the keys it reads (CLIENT TRACKING).
#[derive(Debug, Clone, Default)]
pub struct Tracking {
    /// Where invalidations go: another client's id (REDIRECT), or this connection (0).
    pub redirect: u64,
    pub bcast: bool,
    pub prefixes: Vec<Bytes>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING yes|no, for the next command only.
    pub caching_next: Option<bool>,
}

/// Per-connection state commands can change.
pub struct ClientState {
    /// What the shard shares with the proxy: authentication, protocol, name.
    pub conn: ClientConn,
    pub multi: Option<Multi>,
    pub watch: Option<Watch>,
    pub subs: Subscriptions,
    pub tracking: Option<Tracking>,
    /// This connection's push queue, made on first need (SUBSCRIBE, CLIENT TRACKING).
    pub pusher: Option<PushSender>,
    pub pushes: Option<PushReceiver>,
}

impl ClientState {
    pub fn new(conn: ClientConn) -> Self {
        ClientState {
            conn,
            multi: None,
            watch: None,
            subs: Subscriptions::default(),
            tracking: None,
            pusher: None,
            pushes: None,
        }
    }

    /// In RESP2, a connection with subscriptions may only (un)subscribe, PING, QUIT and RESET.
    pub fn in_resp2_subscriber_mode(&self) -> bool {
        self.conn.proto == Protocol::Resp2 && self.subs.count() > 0
    }
}

impl std::ops::Deref for ClientState {
    type Target = ClientConn;
    fn deref(&self) -> &ClientConn {
        &self.conn
    }
}

impl std::ops::DerefMut for ClientState {
    fn deref_mut(&mut self) -> &mut ClientConn {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_arrive_in_order_and_the_hard_limit_closes_the_queue() {
        let limits = PushLimits { hard_bytes: 10, soft_bytes: 0, soft_for: Duration::ZERO };
        let (tx, mut rx) = push_queue(1, Protocol::Resp3, limits);
        assert!(tx.push(Bytes::from_static(b"abcd")));
        assert!(tx.push(Bytes::from_static(b"efgh")));
        assert_eq!(rx.recv().await.as_deref(), Some(&b"abcd"[..]));
        rx.written(4);
        assert!(tx.push(Bytes::from_static(b"ijkl")), "4 + 4 queued: within 10");
        assert!(!tx.push(Bytes::from_static(b"mnop")), "12 queued: over the hard limit");
        assert!(tx.is_closed());
        assert_eq!(rx.recv().await, None, "an overflowed connection is closed, not drained");
        assert!(rx.overflowed());
    }

    #[tokio::test]
    async fn the_soft_limit_allows_a_burst_for_a_while() {
        let limits = PushLimits { hard_bytes: 0, soft_bytes: 4, soft_for: Duration::from_millis(50) };
        let (tx, mut rx) = push_queue(1, Protocol::Resp2, limits);
        assert!(tx.push(Bytes::from_static(b"abcdef")), "over the soft limit, for the first time");
        assert_eq!(rx.recv().await.as_deref(), Some(&b"abcdef"[..]));
        rx.written(6);
        assert!(tx.push(Bytes::from_static(b"abcdef")), "back under it after the write: the clock restarted");
        let started = Instant::now();
        while tx.push(Bytes::from_static(b"x")) {
            assert!(started.elapsed() < Duration::from_secs(5), "the soft limit never closed the queue");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(45));
    }
}
