//! What happens when a key changes: WATCH and client-side caching (CLIENT TRACKING).
//!
//! [`KeyEvents`] is the store's [`KeyObserver`]: every write, deletion, expiry, eviction and TTL change
//! passes through `Stripe::modified`, which calls it (with the key's stripe locked) while anything is
//! watched or tracked. It then
//! - marks every connection that WATCHes the key as dirty (its EXEC will fail), and
//! - sends an invalidation to every connection that read the key with tracking on (default mode) or whose
//!   BCAST prefix matches it: a RESP3 push `>2 invalidate [key]`, or, for a client that redirects its
//!   invalidations to a RESP2 connection subscribed to `__redis__:invalidate`, a pub/sub message there.
//!   In default mode a key is forgotten once invalidated, as in Redis: the client must read it again to
//!   be told of the next change.
//!
//! Lock order: a stripe, then `KeyEvents`' mutex. Nothing here ever locks a stripe.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use ringcache_common::resp::Protocol;

use crate::client::PushSender;
use crate::pubsub::{Kind as PubSubKind, PubSub};
use crate::store::{KeyHooks, KeyObserver};

/// The pub/sub channel RESP2 clients receive invalidations on (through CLIENT TRACKING ... REDIRECT).
pub use ringcache_common::tracking::{invalidation, INVALIDATE_CHANNEL};

thread_local! {
    /// The client whose command is running on this thread (for NOLOOP: a client is not told about its
    /// own writes).
    static CURRENT_CLIENT: Cell<u64> = const { Cell::new(0) };
}

/// Marks `client_id` as the client whose commands run on this thread now (a plain thread-local store:
/// commands are not nested across clients, so nothing needs restoring).
#[inline]
pub fn set_running_client(client_id: u64) {
    CURRENT_CLIENT.with(|c| c.set(client_id));
}

/// Marks `client_id` as the client running commands on this thread until the guard is dropped.
pub fn running_for(client_id: u64) -> CurrentClientGuard {
    let previous = CURRENT_CLIENT.with(|c| c.replace(client_id));
    CurrentClientGuard { previous }
}

pub struct CurrentClientGuard {
    previous: u64,
}

impl Drop for CurrentClientGuard {
    fn drop(&mut self) {
        CURRENT_CLIENT.with(|c| c.set(self.previous));
    }
}

/// Where one tracking client's invalidations go.
#[derive(Clone)]
struct Tracker {
    /// The connection that receives the invalidations (the client itself, or its REDIRECT target), found
    /// in the push queues registry when each is sent.
    target: u64,
    noloop: bool,
    bcast_prefixes: Option<Vec<Bytes>>,
}

#[derive(Default)]
struct Inner {
    /// Key → the dirty flags of the connections watching it.
    watched: HashMap<Box<[u8]>, Vec<Arc<AtomicBool>>>,
    /// Key → the tracking clients (default mode) that read it since it last changed.
    tracked: HashMap<Box<[u8]>, HashSet<u64>>,
    /// Tracking clients, by id.
    trackers: HashMap<u64, Tracker>,
    /// How many trackers are in BCAST mode.
    bcast: usize,
}

impl Inner {
    fn active(&self) -> bool {
        !self.watched.is_empty() || !self.tracked.is_empty() || self.bcast > 0
    }
}

/// Every connection's push queue, by client id (made on a connection's first SUBSCRIBE or TRACKING).
pub type PushQueues = DashMap<u64, PushSender>;

/// What INFO reports of WATCH and tracking (Redis's field names in brackets).
#[derive(Debug, Default, Clone, Copy)]
pub struct EventStats {
    /// Keys watched by at least one client (`total_watched_keys`).
    pub watched_keys: usize,
    /// Clients watching at least one key (`watching_clients`).
    pub watching_clients: usize,
    /// Keys in the tracking table (`tracking_total_keys`).
    pub tracked_keys: usize,
    /// Key-client pairs in the tracking table (`tracking_total_items`).
    pub tracked_items: usize,
    /// Clients with tracking on (`tracking_clients`).
    pub tracking_clients: usize,
    /// BCAST prefixes (`tracking_total_prefixes`).
    pub tracked_prefixes: usize,
}

/// WATCH flags and client-tracking tables.
pub struct KeyEvents {
    inner: Mutex<Inner>,
    /// For invalidations sent as pub/sub messages: only to a client subscribed to `__redis__:invalidate`.
    pubsub: Arc<PubSub>,
    pushers: Arc<PushQueues>,
}

impl KeyEvents {
    /// A `KeyEvents` installed as `hooks`' observer.
    pub fn install(hooks: &KeyHooks, pubsub: Arc<PubSub>, pushers: Arc<PushQueues>) -> Arc<KeyEvents> {
        let events = Arc::new(KeyEvents { inner: Mutex::new(Inner::default()), pubsub, pushers });
        hooks.set_observer(events.clone());
        events
    }

    /// Watches `keys` for the connection whose dirty flag is `dirty`. The hooks are turned on first, so a
    /// write after this returns is never missed.
    pub fn watch(&self, hooks: &KeyHooks, keys: &[Box<[u8]>], dirty: &Arc<AtomicBool>) {
        hooks.set_active(true);
        let mut inner = self.inner.lock();
        for key in keys {
            let flags = inner.watched.entry(key.clone()).or_default();
            if !flags.iter().any(|f| Arc::ptr_eq(f, dirty)) {
                flags.push(dirty.clone());
            }
        }
    }

    /// Forgets a connection's watches (EXEC, DISCARD, UNWATCH, RESET, disconnect).
    pub fn unwatch(&self, hooks: &KeyHooks, keys: &[Box<[u8]>], dirty: &Arc<AtomicBool>) {
        let mut inner = self.inner.lock();
        for key in keys {
            if let Some(flags) = inner.watched.get_mut(key) {
                flags.retain(|f| !Arc::ptr_eq(f, dirty));
                if flags.is_empty() {
                    inner.watched.remove(key);
                }
            }
        }
        hooks.set_active(inner.active());
    }

    /// Starts (or changes) tracking for `client_id`; invalidations go to client `target`'s push queue.
    pub fn track(
        &self,
        hooks: &KeyHooks,
        client_id: u64,
        target: u64,
        noloop: bool,
        bcast_prefixes: Option<Vec<Bytes>>,
    ) {
        hooks.set_active(true);
        let mut inner = self.inner.lock();
        let tracker = Tracker { target, noloop, bcast_prefixes };
        let new_bcast = tracker.bcast_prefixes.is_some();
        if let Some(old) = inner.trackers.insert(client_id, tracker) {
            if old.bcast_prefixes.is_some() {
                inner.bcast -= 1;
            }
        }
        if new_bcast {
            inner.bcast += 1;
        }
    }

    /// Stops tracking for `client_id` and forgets the keys it read.
    pub fn untrack(&self, hooks: &KeyHooks, client_id: u64) {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.trackers.remove(&client_id) {
            if old.bcast_prefixes.is_some() {
                inner.bcast -= 1;
            }
            inner.tracked.retain(|_, clients| {
                clients.remove(&client_id);
                !clients.is_empty()
            });
        }
        hooks.set_active(inner.active());
    }

    /// Remembers that tracking client `client_id` read `keys` (default mode).
    pub fn read_by(&self, client_id: u64, keys: impl Iterator<Item = Box<[u8]>>) {
        let mut inner = self.inner.lock();
        if !inner.trackers.contains_key(&client_id) {
            return;
        }
        for key in keys {
            inner.tracked.entry(key).or_default().insert(client_id);
        }
    }

    /// Figures for INFO.
    pub fn stats(&self) -> EventStats {
        let inner = self.inner.lock();
        let mut watchers: Vec<*const AtomicBool> = inner.watched.values().flatten().map(Arc::as_ptr).collect();
        watchers.sort_unstable();
        watchers.dedup();
        EventStats {
            watched_keys: inner.watched.len(),
            watching_clients: watchers.len(),
            tracked_keys: inner.tracked.len(),
            tracked_items: inner.tracked.values().map(HashSet::len).sum(),
            tracking_clients: inner.trackers.len(),
            tracked_prefixes: inner.trackers.values().filter_map(|t| t.bcast_prefixes.as_ref()).map(Vec::len).sum(),
        }
    }
}

impl KeyEvents {
    fn send(&self, tracker: &Tracker, keys: Option<&[u8]>) {
        let Some(target) = self.pushers.get(&tracker.target) else { return };
        // A RESP3 connection gets a push; a RESP2 one hears invalidations only as pub/sub messages, and
        // only while subscribed to `__redis__:invalidate`.
        let as_message = target.proto == Protocol::Resp2;
        if as_message && !self.pubsub.is_subscribed(PubSubKind::Channel, INVALIDATE_CHANNEL, tracker.target) {
            return;
        }
        target.push(match keys {
            Some(key) => invalidation(target.proto, Some(&[key])),
            None => invalidation::<&[u8]>(target.proto, None),
        });
    }
}

impl KeyObserver for KeyEvents {
    fn modified(&self, key: &[u8]) {
        let current = CURRENT_CLIENT.with(Cell::get);
        let mut inner = self.inner.lock();
        if let Some(flags) = inner.watched.get(key) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
        if let Some(clients) = inner.tracked.remove(key) {
            for id in clients {
                if let Some(t) = inner.trackers.get(&id) {
                    if !(t.noloop && id == current) {
                        self.send(t, Some(key));
                    }
                }
            }
        }
        if inner.bcast > 0 {
            for (&id, t) in &inner.trackers {
                let Some(prefixes) = &t.bcast_prefixes else { continue };
                let matches = prefixes.is_empty() || prefixes.iter().any(|p| key.starts_with(p));
                if matches && !(t.noloop && id == current) {
                    self.send(t, Some(key));
                }
            }
        }
    }

    fn flushed_key(&self, key: &[u8]) {
        let inner = self.inner.lock();
        if let Some(flags) = inner.watched.get(key) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
    }

    fn flushed(&self) {
        let mut inner = self.inner.lock();
        inner.tracked.clear();
        for t in inner.trackers.values() {
            self.send(t, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{push_queue, PushLimits};

    #[test]
    fn invalidations_look_like_redis() {
        assert_eq!(
            &(invalidation(Protocol::Resp3, Some(&[b"k"])))[..],
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        assert_eq!(&(invalidation::<&[u8]>(Protocol::Resp3, None))[..], b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        assert_eq!(
            &(invalidation::<&[u8]>(Protocol::Resp2, None))[..],
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
        );
        assert_eq!(
            &(invalidation(Protocol::Resp2, Some(&[b"k"])))[..],
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
    }

    #[tokio::test]
    async fn a_watched_key_is_dirty_after_a_change_and_a_read_key_is_invalidated_once() {
        let hooks = KeyHooks::default();
        let pushers = Arc::new(PushQueues::new());
        let events = KeyEvents::install(&hooks, Arc::new(PubSub::default()), pushers.clone());
        assert!(!hooks.is_active());
        let dirty = Arc::new(AtomicBool::new(false));
        events.watch(&hooks, &[Box::from(&b"w"[..])], &dirty);
        assert!(hooks.is_active());
        events.modified(b"other");
        assert!(!dirty.load(Ordering::Acquire));
        events.modified(b"w");
        assert!(dirty.load(Ordering::Acquire));
        events.unwatch(&hooks, &[Box::from(&b"w"[..])], &dirty);
        assert!(!hooks.is_active());

        let (tx, mut rx) = push_queue(7, Protocol::Resp3, PushLimits::default());
        pushers.insert(7, tx);
        events.track(&hooks, 7, 7, false, None);
        events.read_by(7, [Box::from(&b"k"[..])].into_iter());
        events.modified(b"k");
        events.modified(b"k");
        assert_eq!(rx.try_recv().as_deref(), Some(&b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"[..]));
        assert_eq!(rx.try_recv(), None, "a key is invalidated once until it is read again");
        {
            let _running = running_for(7);
            events.read_by(7, [Box::from(&b"k"[..])].into_iter());
            events.modified(b"k");
        }
        assert!(rx.try_recv().is_some(), "without NOLOOP a client hears about its own writes");
        events.untrack(&hooks, 7);
        assert!(!hooks.is_active());
        assert_eq!(events.stats().tracked_keys, 0);
    }
}
