//! A connection's queue of *pushes*: messages that reach it without being asked for (pub/sub messages,
//! client-tracking invalidations), written between its replies. Shared by the shard and the proxy.
//!
//! A [`PushSender`] is what publishers and invalidations hold. It never blocks and never grows without
//! bound: when the bytes queued for a connection pass its hard limit, or stay past its soft limit for
//! longer than allowed (Redis's `client-output-buffer-limit pubsub`), the connection is marked to be closed
//! and further pushes are dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::resp::Protocol;

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

    /// Completes once the connection went over its output limit (for a connection not reading its
    /// pushes right now, say because its socket is full).
    pub async fn until_overflowed(&self) {
        while !self.overflowed() {
            self.shared.wake.notified().await;
        }
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
