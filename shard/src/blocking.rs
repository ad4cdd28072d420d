//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN, ...): who waits for which key, in arrival order.
//!
//! A blocking command that finds nothing registers a [`Waiter`] under each of its keys — while it still
//! holds those keys' stripes, so no push can slip in between its look and its registration — and its
//! connection waits for the waiter's reply, its timeout, or its own disconnection. A write that may have
//! given a watched key something to pop is followed, with its stripes still held, by
//! [`crate::cmd::serve_blocked`]: the waiters of that key are served first come, first served, each
//! with its own command's pop done for it and its reply sent to its connection, before any other client's
//! command can touch the key. A waiter that needs more than the key's stripe (BLMOVE's destination) is
//! told to retry instead: its connection runs its command again, and registers again at the head of the
//! line if there is still nothing.
//!
//! Lock order: the stripes, then this registry's mutex.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use ringcache_common::resp::{Protocol, Request};
use tokio::sync::oneshot;

/// How a blocked client's wait ended, from the other side.
#[derive(Debug)]
pub enum Wake {
    /// Its command was run for it: this is the reply.
    Served(Bytes),
    /// A key it waits on may have what it wants, but it must run its command again itself.
    Retry,
    /// CLIENT UNBLOCK: reply as at a timeout (`false`) or with `-UNBLOCKED` (`true`).
    Unblocked { error: bool },
}

/// One blocked client.
pub struct Waiter {
    pub id: u64,
    pub client_id: u64,
    /// The blocking command, as the client sent it.
    pub request: Request,
    /// The keys it waits on, in the command's order.
    pub keys: Vec<Bytes>,
    pub proto: Protocol,
    wake: Mutex<Option<oneshot::Sender<Wake>>>,
}

impl Waiter {
    /// Hands the waiter its wake-up; false if its connection is gone (the caller undoes what it did).
    pub fn wake(&self, wake: Wake) -> bool {
        match self.wake.lock().take() {
            Some(tx) => tx.send(wake).is_ok(),
            None => false,
        }
    }

    pub fn is_gone(&self) -> bool {
        self.wake.lock().as_ref().is_none_or(|tx| tx.is_closed())
    }
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<Bytes, VecDeque<Arc<Waiter>>>,
    by_client: HashMap<u64, Arc<Waiter>>,
}

/// The registry of blocked clients.
#[derive(Default)]
pub struct Blocking {
    inner: Mutex<Inner>,
    /// Blocked clients (read without the lock on every write: 0 almost always).
    count: AtomicUsize,
    next_id: AtomicU64,
}

impl Blocking {
    /// Whether anyone is blocked (one relaxed load).
    #[inline]
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Blocks a client on `keys`; `front` puts it at the head of each line (a waiter that was told to
    /// retry keeps its turn). Returns the waiter and where its wake-up arrives.
    pub fn block(
        &self,
        client_id: u64,
        request: Request,
        keys: Vec<Bytes>,
        proto: Protocol,
        front: bool,
    ) -> (Arc<Waiter>, oneshot::Receiver<Wake>) {
        let (tx, rx) = oneshot::channel();
        let waiter = Arc::new(Waiter {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            client_id,
            request,
            keys,
            proto,
            wake: Mutex::new(Some(tx)),
        });
        let mut inner = self.inner.lock();
        for key in &waiter.keys {
            let line = inner.by_key.entry(key.clone()).or_default();
            if line.iter().any(|w| w.id == waiter.id) {
                continue; // a key named twice
            }
            if front {
                line.push_front(waiter.clone());
            } else {
                line.push_back(waiter.clone());
            }
        }
        inner.by_client.insert(client_id, waiter.clone());
        self.count.store(inner.by_client.len(), Ordering::Relaxed);
        (waiter, rx)
    }

    /// Removes a waiter from every line. False if it was not there any more (someone took it to serve
    /// it: its wake-up is on its way).
    pub fn unblock(&self, waiter: &Waiter) -> bool {
        let mut inner = self.inner.lock();
        Self::remove(&mut inner, waiter.id, &waiter.keys);
        let was = inner.by_client.get(&waiter.client_id).is_some_and(|w| w.id == waiter.id);
        if was {
            inner.by_client.remove(&waiter.client_id);
        }
        self.count.store(inner.by_client.len(), Ordering::Relaxed);
        was
    }

    fn remove(inner: &mut Inner, id: u64, keys: &[Bytes]) {
        for key in keys {
            if let Some(line) = inner.by_key.get_mut(key) {
                line.retain(|w| w.id != id);
                if line.is_empty() {
                    inner.by_key.remove(key);
                }
            }
        }
    }

    /// Takes the first waiter of `key`'s line out of every line (to serve it), skipping ones whose
    /// connection is gone.
    pub fn take_first(&self, key: &[u8]) -> Option<Arc<Waiter>> {
        let mut inner = self.inner.lock();
        loop {
            let waiter = inner.by_key.get(key).and_then(|line| line.front().cloned())?;
            Self::remove(&mut inner, waiter.id, &waiter.keys);
            inner.by_client.remove(&waiter.client_id);
            self.count.store(inner.by_client.len(), Ordering::Relaxed);
            if !waiter.is_gone() {
                return Some(waiter);
            }
        }
    }

    /// Puts a waiter that was taken but could not be served back at the head of its lines.
    pub fn put_back(&self, waiter: Arc<Waiter>) {
        let mut inner = self.inner.lock();
        for key in &waiter.keys {
            let line = inner.by_key.entry(key.clone()).or_default();
            if !line.iter().any(|w| w.id == waiter.id) {
                line.push_front(waiter.clone());
            }
        }
        inner.by_client.insert(waiter.client_id, waiter);
        self.count.store(inner.by_client.len(), Ordering::Relaxed);
    }

    /// Whether anyone waits on `key`.
    pub fn is_watched(&self, key: &[u8]) -> bool {
        self.any() && self.inner.lock().by_key.contains_key(key)
    }

    /// CLIENT UNBLOCK: wakes client `client_id` if it is blocked. Returns whether it was.
    pub fn unblock_client(&self, client_id: u64, error: bool) -> bool {
        let waiter = {
            let mut inner = self.inner.lock();
            let Some(waiter) = inner.by_client.remove(&client_id) else { return false };
            Self::remove(&mut inner, waiter.id, &waiter.keys);
            self.count.store(inner.by_client.len(), Ordering::Relaxed);
            waiter
        };
        waiter.wake(Wake::Unblocked { error })
    }

    /// (blocked clients, keys with someone blocked on them), for INFO.
    pub fn stats(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.by_client.len(), inner.by_key.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Request {
        Request::from_args(args.iter().copied())
    }

    #[test]
    fn waiters_are_taken_first_come_first_served_and_gone_ones_skipped() {
        let b = Blocking::default();
        let keys = |k: &[&str]| k.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect::<Vec<_>>();
        let (w1, rx1) = b.block(1, req(&["BLPOP", "a", "0"]), keys(&["a"]), Protocol::Resp2, false);
        let (_w2, rx2) = b.block(2, req(&["BLPOP", "a", "b", "0"]), keys(&["a", "b"]), Protocol::Resp2, false);
        let (_w3, _rx3) = b.block(3, req(&["BLPOP", "a", "0"]), keys(&["a"]), Protocol::Resp3, true);
        assert!(b.any());
        assert_eq!(b.stats(), (3, 2));
        // Client 3 came back with priority; client 1 then 2 follow.
        drop(_rx3);
        let first = b.take_first(b"a").unwrap();
        assert_eq!(first.client_id, 1, "a waiter whose connection is gone is skipped");
        assert!(first.wake(Wake::Served(Bytes::from_static(b"+x\r\n"))));
        drop(rx1);
        assert!(!b.unblock(&w1), "a taken waiter is no longer registered");
        // Taking client 2 from `a` removes it from `b` too.
        let second = b.take_first(b"a").unwrap();
        assert_eq!(second.client_id, 2);
        assert!(!b.is_watched(b"b"));
        b.put_back(second);
        assert!(b.is_watched(b"b"));
        assert!(b.unblock_client(2, true));
        assert!(matches!(rx2.blocking_recv(), Ok(Wake::Unblocked { error: true })));
        assert!(!b.any());
    }
}
