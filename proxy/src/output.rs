//! What a client has not read yet: its reply queue, the output limits, and their statistics.
//!
//! `--client-output-buffer-limit "<hard> <soft> <soft-seconds>"` follows Redis's `normal` class:
//!
//! - *soft*: a client whose unsent replies reach it is no longer read from (its requests wait in its socket,
//!   as a shard that cannot write a reply stops reading), and it is disconnected if it stays there for
//!   `soft-seconds` (0: never);
//! - *hard*: a client whose unsent replies exceed it is disconnected at once. Only replies queued behind
//!   the one being written count, so a single reply of any size (a 512 MB GET) always goes through.
//!
//! Replies in flight count too, by estimate: a client may have at most `soft / estimate` requests at the
//! shards, the estimate being the largest reply it got lately (decaying by 1/16 per reply), starting at
//! `soft / 16`. A client pipelining GETs of 1 MB values that never reads thus holds a few times `soft` in
//! the proxy, and its replies never crowd other clients' off the shared shard connections.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use ringcache_common::config::parse_byte_size;
use ringcache_common::tls::ClientStream;

/// Replies at least this large are written from their own buffer; smaller ones are copied together into
/// chunks of about this size, so one write carries a whole batch.
const DIRECT_WRITE_BYTES: usize = 64 * 1024;
/// Buffers handed to one `writev`.
const MAX_SLICES: usize = 32;
/// Requests a client may have at the shards before its first replies tell how large they are.
const INITIAL_WINDOW: usize = 16;

/// `--client-output-buffer-limit`: bytes, 0 meaning no limit (as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    pub hard_bytes: usize,
    pub soft_bytes: usize,
    pub soft_duration: Duration,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits { hard_bytes: 256 << 20, soft_bytes: 8 << 20, soft_duration: Duration::ZERO }
    }
}

impl OutputLimits {
    /// Parses `[normal] <hard> <soft> <soft-seconds>` (sizes as Redis writes them: `256mb`, `8388608`).
    pub fn parse(text: &str) -> Result<OutputLimits, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let words = match words.as_slice() {
            [class, rest @ ..] if class.eq_ignore_ascii_case("normal") => rest,
            [class, ..] if class.parse::<u64>().is_err() && parse_byte_size(class).is_err() => {
                return Err(format!("only the 'normal' class applies to a proxy's clients, not '{class}'"));
            }
            all => all,
        };
        let [hard, soft, seconds] = words else {
            return Err(format!("expected '<hard> <soft> <soft-seconds>', got '{text}'"));
        };
        let size = |s: &str| parse_byte_size(s).and_then(|n| usize::try_from(n).map_err(|e| e.to_string()));
        let seconds: u64 =
            seconds.parse().map_err(|_| format!("soft-seconds must be a whole number, got '{seconds}'"))?;
        Ok(OutputLimits {
            hard_bytes: size(hard)?,
            soft_bytes: size(soft)?,
            soft_duration: Duration::from_secs(seconds),
        })
    }

    /// As CONFIG GET shows it, with the classes a proxy does not have.
    pub fn describe(&self) -> String {
        format!(
            "normal {} {} {} slave 0 0 0 pubsub 0 0 0",
            self.hard_bytes,
            self.soft_bytes,
            self.soft_duration.as_secs()
        )
    }

    /// The first estimate of a reply's size, before a client has had any.
    pub fn initial_estimate(&self) -> usize {
        self.soft_bytes / INITIAL_WINDOW
    }

    /// How many requests a client may have at the shards, given its reply-size estimate.
    pub fn window(&self, estimate: usize, most: usize) -> usize {
        if self.soft_bytes == 0 {
            return most;
        }
        (self.soft_bytes / estimate.max(1)).clamp(1, most)
    }

    /// Whether `unsent` bytes reach the soft limit (the client is not read from).
    pub fn over_soft(&self, unsent: usize) -> bool {
        self.soft_bytes != 0 && unsent >= self.soft_bytes
    }

    /// Whether `queued` bytes behind the reply being written exceed the hard limit.
    pub fn over_hard(&self, queued: usize) -> bool {
        self.hard_bytes != 0 && queued > self.hard_bytes
    }
}

/// The output limits at work, for INFO and metrics (changed only when a client crosses a limit, plus a
/// per-second high-water mark).
#[derive(Debug, Default)]
pub struct OutputStats {
    limited: AtomicUsize,
    disconnections: AtomicU64,
    /// The largest unsent bytes of any client, per second, over the last 8 seconds (Redis's "recent").
    recent: [(AtomicU64, AtomicUsize); 8],
}

impl OutputStats {
    /// Clients not read from because of the soft limit.
    pub fn limited_clients(&self) -> usize {
        self.limited.load(Ordering::Relaxed)
    }

    /// Clients disconnected by the hard limit or the soft limit's time.
    pub fn disconnections(&self) -> u64 {
        self.disconnections.load(Ordering::Relaxed)
    }

    pub fn disconnected(&self) {
        self.disconnections.fetch_add(1, Ordering::Relaxed);
    }

    /// `client_recent_max_output_buffer`: the most any client had unsent in the last 8 seconds.
    pub fn recent_max(&self, now_secs: u64) -> usize {
        self.recent
            .iter()
            .filter(|(second, _)| now_secs.saturating_sub(second.load(Ordering::Relaxed)) < 8)
            .map(|(_, max)| max.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }

    /// Notes a client's unsent bytes (cheap unless it is a new high for this second).
    pub fn observe(&self, unsent: usize, now_secs: u64) {
        let (second, max) = &self.recent[(now_secs % 8) as usize];
        if second.load(Ordering::Relaxed) != now_secs {
            second.store(now_secs, Ordering::Relaxed);
            max.store(unsent, Ordering::Relaxed);
        } else if unsent > max.load(Ordering::Relaxed) {
            max.fetch_max(unsent, Ordering::Relaxed);
        }
    }
}

/// Marks a client as not read from (soft limit) while it lives, in [`OutputStats`].
pub struct Limited<'a> {
    stats: &'a OutputStats,
    pub since: Instant,
}

impl<'a> Limited<'a> {
    pub fn new(stats: &'a OutputStats, since: Instant) -> Self {
        stats.limited.fetch_add(1, Ordering::Relaxed);
        Limited { stats, since }
    }
}

impl Drop for Limited<'_> {
    fn drop(&mut self) {
        self.stats.limited.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client's replies that are ready but not yet written, in order.
#[derive(Default)]
pub struct ReplyQueue {
    /// Full buffers, written first.
    chunks: VecDeque<Bytes>,
    /// Small replies being gathered after `chunks`.
    tail: BytesMut,
    unsent: usize,
}

impl ReplyQueue {
    pub fn push(&mut self, reply: Bytes) {
        self.unsent += reply.len();
        if reply.len() >= DIRECT_WRITE_BYTES {
            self.seal_tail();
            self.chunks.push_back(reply);
        } else {
            self.tail.extend_from_slice(&reply);
            if self.tail.len() >= DIRECT_WRITE_BYTES {
                self.seal_tail();
            }
        }
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Bytes not yet written.
    pub fn unsent(&self) -> usize {
        self.unsent
    }

    pub fn is_empty(&self) -> bool {
        self.unsent == 0
    }

    /// Bytes queued behind the buffer being written (what the hard limit counts).
    pub fn queued_behind_first(&self) -> usize {
        let first = self.chunks.front().map_or(self.tail.len(), Bytes::len);
        self.unsent - first
    }

    /// Writes what the socket takes without waiting; true once everything is written.
    pub fn write_to<S: ClientStream>(&mut self, stream: &mut S) -> std::io::Result<bool> {
        while !self.is_empty() {
            let written = if self.chunks.is_empty() {
                // The usual case, a batch of small replies: a plain send costs less than a `writev`.
                stream.try_write(&self.tail)
            } else {
                let mut slices: smallvec::SmallVec<[IoSlice<'_>; MAX_SLICES]> =
                    self.chunks.iter().take(MAX_SLICES - 1).map(|c| IoSlice::new(c)).collect();
                if slices.len() == self.chunks.len() && !self.tail.is_empty() {
                    slices.push(IoSlice::new(&self.tail));
                }
                stream.try_write_vectored(&slices)
            };
            let written = match written {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            self.advance(written);
        }
        // TLS may hold the last records back until the socket takes them (on TCP: true at once).
        stream.try_flush()
    }

    fn advance(&mut self, mut n: usize) {
        self.unsent -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(chunk) if chunk.len() <= n => {
                    n -= chunk.len();
                    self.chunks.pop_front();
                }
                Some(chunk) => {
                    chunk.advance(n);
                    return;
                }
                None => {
                    self.tail.advance(n);
                    if self.tail.is_empty() {
                        self.tail.clear();
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_redis_writes_them() {
        let l = OutputLimits::parse("normal 256mb 8mb 60").unwrap();
        assert_eq!(
            l,
            OutputLimits { hard_bytes: 256 << 20, soft_bytes: 8 << 20, soft_duration: Duration::from_secs(60) }
        );
        assert_eq!(OutputLimits::parse("1048576 1024 0").unwrap().hard_bytes, 1 << 20);
        assert_eq!(OutputLimits::parse("0 0 0").unwrap().window(123, 4096), 4096);
        assert_eq!(l.describe(), "normal 268435456 8388608 60 slave 0 0 0 pubsub 0 0 0");
        assert!(OutputLimits::parse("pubsub 1mb 1mb 0").is_err());
        assert!(OutputLimits::parse("1mb 1mb").is_err());
        assert!(OutputLimits::parse("1mb 1mb x").is_err());
        assert!(OutputLimits::parse("1xb 1mb 0").is_err());
    }

    #[test]
    fn windows_shrink_with_reply_size() {
        let l = OutputLimits::default();
        assert_eq!(l.window(l.initial_estimate(), 4096), 16);
        assert_eq!(l.window(1 << 20, 4096), 8);
        assert_eq!(l.window(64 << 20, 4096), 1);
        assert_eq!(l.window(10, 4096), 4096);
        assert!(!l.over_soft((8 << 20) - 1) && l.over_soft(8 << 20));
        assert!(!l.over_hard(256 << 20) && l.over_hard((256 << 20) + 1));
    }

    #[test]
    fn the_queue_keeps_order_and_counts_bytes() {
        let mut q = ReplyQueue::default();
        q.push(Bytes::from_static(b"+OK\r\n"));
        let big = Bytes::from(vec![b'x'; DIRECT_WRITE_BYTES]);
        q.push(big.clone());
        q.push(Bytes::from_static(b":1\r\n"));
        assert_eq!(q.unsent(), 5 + DIRECT_WRITE_BYTES + 4);
        assert_eq!(q.queued_behind_first(), DIRECT_WRITE_BYTES + 4);
        q.advance(3);
        assert_eq!(q.queued_behind_first(), DIRECT_WRITE_BYTES + 4);
        q.advance(2 + DIRECT_WRITE_BYTES + 1);
        assert_eq!(q.unsent(), 3);
        assert_eq!(&q.tail[..], b"1\r\n");
        q.advance(3);
        assert!(q.is_empty());
    }

    #[test]
    fn recent_max_forgets_after_eight_seconds() {
        let s = OutputStats::default();
        s.observe(100, 10);
        s.observe(50, 10);
        s.observe(70, 12);
        assert_eq!(s.recent_max(12), 100);
        assert_eq!(s.recent_max(18), 70);
        assert_eq!(s.recent_max(21), 0);
    }
}
