//! The in-memory store: `N` stripes, each a `parking_lot::Mutex` over one [`Stripe`] (an LRU), sharing one
//! memory budget.
//!
//! - A key's 64-bit hash picks its stripe from the bits just below the top 7 (which `hashbrown` uses as
//!   its tag) and its bucket from the low bits, so the two never correlate.
//! - `--maxmemory` is enforced by reserving bytes *before* a write: a stripe evicts its own least
//!   recently used keys until the reservation fits, and if it has nothing left, [`Store::reserve`] evicts
//!   from other stripes with `try_lock` (never blocking while holding a stripe, so never deadlocking).
//!   `used_memory` therefore never exceeds `maxmemory`.
//! - Locks are held only for the in-memory operation of one command, never across I/O or `.await`.
//! - A command locks the stripes of all its keys, in index order, before it runs and releases them after
//!   ([`Db`]): every multi-key command is atomic, and transactions and scripts hold every stripe.

pub mod evict;
mod expire;
mod stripe;
mod value;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};

pub use evict::{EvictionSettings, Policy as EvictionPolicy, UnknownPolicy};
pub use expire::spawn_active_expiry;
pub use stripe::{string_entry_cost, Slot, Taken, ENTRY_OVERHEAD_BYTES};
pub use value::{
    hash_field_cost, list_item_cost, set_member_cost, zset_member_cost, Collection, Hash, Kind, List, Score, Set, ZSet,
    HASH_FIELD_OVERHEAD_BYTES, LIST_ITEM_OVERHEAD_BYTES, SET_MEMBER_OVERHEAD_BYTES, ZSET_MEMBER_OVERHEAD_BYTES,
};

/// The hasher: fast, seeded per process so that keys cannot be chosen to collide.
pub type KeyHasher = foldhash::fast::RandomState;
pub type StoreStripe = stripe::Stripe<KeyHasher>;

/// Bits of the hash `hashbrown` uses as its control tag (the top 7).
const TAG_BITS: u32 = 7;

/// The memory budget shared by all stripes.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    /// 0 means no limit. Changed by CONFIG SET maxmemory.
    max: AtomicUsize,
    /// `maxmemory-policy` and its parameters, read by every stripe (lock-free, changeable live).
    pub eviction: EvictionSettings,
}

impl Budget {
    pub fn new(max: usize) -> Self {
        Budget { used: AtomicUsize::new(0), max: AtomicUsize::new(max), eviction: EvictionSettings::default() }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Adds `bytes` if the total stays within the limit.
    pub fn try_charge(&self, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let max = self.max();
        if max == 0 {
            self.used.fetch_add(bytes, Ordering::Relaxed);
            return true;
        }
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| u.checked_add(bytes).filter(|&n| n <= max))
            .is_ok()
    }

    /// Adds `bytes` unconditionally (only to correct an under-estimate).
    pub fn force_charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let _ = self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(bytes)));
    }
}

/// Told about every change to a key: WATCH (a transaction fails if a key it watches changed) and client
/// tracking (clients that read a key are told when it changes). Called with the key's stripe locked, so an
/// observer must never lock a stripe itself.
pub trait KeyObserver: Send + Sync {
    /// `key` was written, deleted, expired, evicted or had its TTL changed.
    fn modified(&self, key: &[u8]);
    /// `key` is being removed by a flush of its whole stripe (FLUSHALL), which [`KeyObserver::flushed`]
    /// follows once the flush is done.
    fn flushed_key(&self, key: &[u8]);
    /// The whole keyspace was flushed (once per FLUSHALL).
    fn flushed(&self);
}

/// The store's one hook for key changes. Inactive (one relaxed load per write) until something watches or
/// tracks keys; then every change is passed to the observer.
#[derive(Default)]
pub struct KeyHooks {
    active: AtomicBool,
    observer: OnceLock<Arc<dyn KeyObserver>>,
}

impl KeyHooks {
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Installs the observer (once); changes reach it while [`KeyHooks::set_active`] is on.
    pub fn set_observer(&self, observer: Arc<dyn KeyObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Turns reporting on or off. Turned on *before* a WATCH or tracking registration is made, and read
    /// by writers under their stripe's lock, so a registration never misses a change made after it.
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::SeqCst);
    }

    fn modified(&self, key: &[u8]) {
        if let Some(o) = self.observer.get() {
            o.modified(key);
        }
    }

    fn flushed_key(&self, key: &[u8]) {
        if let Some(o) = self.observer.get() {
            o.flushed_key(key);
        }
    }

    /// Reports a flush of the whole keyspace (after every stripe was cleared).
    pub fn flushed(&self) {
        if self.is_active() {
            if let Some(o) = self.observer.get() {
                o.flushed();
            }
        }
    }
}

/// The write could not be made to fit in `maxmemory`, even after evicting everything evictable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command not allowed when used memory > 'maxmemory'.")]
pub struct OutOfMemory;

/// A stripe padded to its own cache lines, so two cores locking neighbouring stripes do not contend.
#[repr(align(128))]
struct PaddedStripe(Mutex<StoreStripe>);

pub struct Store {
    stripes: Box<[PaddedStripe]>,
    hasher: KeyHasher,
    stripe_shift: u32,
    stripe_mask: u64,
    budget: Arc<Budget>,
    hooks: Arc<KeyHooks>,
    /// The append-only log, when `--appendonly yes` (set once at start).
    aof: OnceLock<Arc<crate::aof::AofLog>>,
    evict_cursor: AtomicUsize,
    /// Notified whenever client buffers charged to the budget are given back.
    buffers_released: tokio::sync::Notify,
    /// One request larger than the whole budget is read at a time (it can only be refused).
    oversize_reads: tokio::sync::Semaphore,
}

/// Totals over all stripes, for INFO and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreStats {
    pub keys: usize,
    pub keys_with_expiry: usize,
    pub expired_keys: u64,
    pub evicted_keys: u64,
}

impl Store {
    /// `stripes` must be a power of two between 1 and 1024; `maxmemory_bytes` 0 means no limit.
    pub fn new(maxmemory_bytes: usize, stripes: usize) -> Store {
        assert!(stripes.is_power_of_two() && stripes <= 1024, "stripes must be a power of two up to 1024");
        let hasher = KeyHasher::default();
        let budget = Arc::new(Budget::new(maxmemory_bytes));
        let hooks = Arc::new(KeyHooks::default());
        let bits = stripes.trailing_zeros();
        Store {
            stripes: (0..stripes)
                .map(|_| PaddedStripe(Mutex::new(StoreStripe::new(hasher.clone(), budget.clone(), hooks.clone()))))
                .collect(),
            hasher,
            stripe_shift: 64 - TAG_BITS - bits,
            stripe_mask: (stripes as u64) - 1,
            budget,
            hooks,
            evict_cursor: AtomicUsize::new(0),
            aof: OnceLock::new(),
            buffers_released: tokio::sync::Notify::new(),
            oversize_reads: tokio::sync::Semaphore::new(1),
        }
    }

    /// The hook every key change passes through (WATCH, client tracking).
    /// The append-only log, if it is on.
    #[inline]
    pub fn aof(&self) -> Option<&Arc<crate::aof::AofLog>> {
        self.aof.get()
    }

    /// Turns the append-only log on (once, at start).
    pub fn set_aof(&self, log: Arc<crate::aof::AofLog>) {
        let _ = self.aof.set(log);
    }

    pub fn hooks(&self) -> &KeyHooks {
        &self.hooks
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    pub fn stripe_count(&self) -> usize {
        self.stripes.len()
    }

    fn stripe_index(&self, hash: u64) -> usize {
        ((hash >> self.stripe_shift) & self.stripe_mask) as usize
    }

    /// Locks the stripe that owns `hash`.
    pub fn lock(&self, hash: u64) -> StripeGuard<'_> {
        self.lock_index(self.stripe_index(hash))
    }

    /// Locks stripe number `index` (for whole-store walks such as SCAN and FLUSHALL).
    pub fn lock_index(&self, index: usize) -> StripeGuard<'_> {
        StripeGuard { store: self, index, guard: self.stripes[index].0.lock() }
    }

    /// Locks stripe `index`, waiting in short slices and giving up (`None`) as soon as `give_up` says so
    /// (a busy script holds it and the caller must answer `-BUSY` instead of waiting).
    #[inline]
    fn lock_index_unless(&self, index: usize, give_up: &dyn Fn() -> bool) -> Option<StripeGuard<'_>> {
        if let Some(guard) = self.stripes[index].0.try_lock() {
            return Some(StripeGuard { store: self, index, guard });
        }
        self.lock_index_contended(index, give_up)
    }

    /// [`Store::lock_index_unless`] once the stripe was found locked.
    #[cold]
    fn lock_index_contended(&self, index: usize, give_up: &dyn Fn() -> bool) -> Option<StripeGuard<'_>> {
        loop {
            if let Some(guard) = self.stripes[index].0.try_lock_for(std::time::Duration::from_millis(5)) {
                return Some(StripeGuard { store: self, index, guard });
            }
            if give_up() {
                return None;
            }
        }
    }

    fn reserve_in(
        &self,
        held: &mut [StripeGuard<'_>],
        target: usize,
        bytes: usize,
        protect: Slot,
    ) -> Result<(), OutOfMemory> {
        // A write that cannot fit even in an empty store fails without evicting anything.
        let max = self.budget.max();
        let protected_bytes = if protect == stripe::NIL { 0 } else { held[target].cost(protect) };
        if max != 0 && bytes.saturating_add(protected_bytes) > max {
            return Err(OutOfMemory);
        }
        if held[target].reserve_local(bytes, protect) {
            return Ok(());
        }
        // Our own stripe is exhausted: evict elsewhere.
        let skip = held[target].index;
        if self.evict_to_charge(held, Some(skip), bytes) {
            Ok(())
        } else {
            Err(OutOfMemory)
        }
    }

    /// Evicts least recently used keys, one per stripe in turn (except `skip`), until `bytes` can be
    /// charged; false once nothing more can be evicted. Stripes in `held` are evicted directly; others are
    /// only try-locked, so this never waits on a lock while holding one.
    fn evict_to_charge(&self, held: &mut [StripeGuard<'_>], skip: Option<usize>, bytes: usize) -> bool {
        if self.budget.eviction.policy() == EvictionPolicy::NoEviction {
            return false;
        }
        let n = self.stripes.len();
        let mut idle_rounds = 0;
        while idle_rounds < 2 {
            let mut evicted_any = false;
            let start = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
            for k in 0..n {
                let i = (start + k) % n;
                if skip == Some(i) {
                    continue;
                }
                let evicted = if let Some(h) = held.iter_mut().find(|g| g.index == i) {
                    h.evict_one(stripe::NIL).is_some()
                } else if let Some(mut other) = self.stripes[i].0.try_lock() {
                    other.evict_one(stripe::NIL).is_some()
                } else {
                    false
                };
                evicted_any |= evicted;
                if self.budget.try_charge(bytes) {
                    return true;
                }
            }
            idle_rounds = if evicted_any { 0 } else { idle_rounds + 1 };
        }
        false
    }

    /// Walks live keys from a SCAN cursor (stripe index in the high 32 bits, slot in the low), calling `f`
    /// under each stripe's lock until it returns false; returns the cursor to continue from (0 at the end).
    pub fn scan(&self, cursor: u64, now_ms: u64, mut f: impl FnMut(&StoreStripe, Slot) -> bool) -> u64 {
        let mut stripe = (cursor >> 32) as usize;
        let mut slot = (cursor & 0xffff_ffff) as u32;
        while stripe < self.stripe_count() {
            let mut g = self.lock_index(stripe);
            if let Some(next) = g.scan_from(slot, now_ms, &mut f) {
                return ((stripe as u64) << 32) | u64::from(next);
            }
            stripe += 1;
            slot = 0;
        }
        0
    }

    pub fn used_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Charges `bytes` of client buffers (a large request being read, large replies being written) to the
    /// budget, evicting least recently used keys to make room, as Redis counts client buffers in
    /// `used_memory`. Charges nothing (false) when that is impossible: more than `maxmemory`, or nothing left
    /// to evict.
    pub fn charge_buffer(&self, bytes: usize) -> bool {
        let max = self.budget.max();
        if max != 0 && bytes > max {
            return false;
        }
        self.budget.try_charge(bytes) || self.evict_to_charge(&mut [], None, bytes)
    }

    /// Gives back bytes charged by [`Self::charge_buffer`].
    pub fn release_buffer(&self, bytes: usize) {
        if bytes > 0 {
            self.budget.release(bytes);
            self.buffers_released.notify_waiters();
        }
    }

    /// Completes when client buffers charged to the budget are next given back.
    pub fn buffers_released(&self) -> tokio::sync::futures::Notified<'_> {
        self.buffers_released.notified()
    }

    /// Waits for the right to read one request larger than the whole budget.
    pub async fn oversize_read(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.oversize_reads.acquire().await.ok()
    }

    /// Charges `bytes` even past the limit (only where refusing would lose data, as in RENAME).
    pub fn force_charge(&self, bytes: usize) {
        self.budget.force_charge(bytes);
    }

    pub fn maxmemory_bytes(&self) -> usize {
        self.budget.max()
    }

    /// CONFIG SET maxmemory: the new limit holds for every write from now on; keys are evicted down to it
    /// by [`Self::evict_to_limit`].
    pub fn set_maxmemory_bytes(&self, bytes: usize) {
        self.budget.max.store(bytes, Ordering::Relaxed);
    }

    /// Evicts keys until `used_memory` is within `maxmemory` or nothing is left to evict; returns the keys
    /// evicted. Locks one stripe at a time: the caller must hold none.
    pub fn evict_to_limit(&self) -> usize {
        let n = self.stripes.len();
        let mut evicted = 0;
        loop {
            let max = self.budget.max();
            if max == 0 || self.budget.used() <= max {
                return evicted;
            }
            let mut evicted_any = false;
            for i in 0..n {
                if self.budget.used() <= self.budget.max() {
                    break;
                }
                // A few keys per lock, so writers to this stripe are not held up long.
                let mut g = self.stripes[i].0.lock();
                for _ in 0..16 {
                    if g.evict_one(stripe::NIL).is_none() {
                        break;
                    }
                    evicted += 1;
                    evicted_any = true;
                }
            }
            if !evicted_any {
                return evicted;
            }
        }
    }

    /// The eviction settings (`maxmemory-policy`, `maxmemory-samples`, `lfu-log-factor`,
    /// `lfu-decay-time`): atomics, so CONFIG SET can change them while commands run.
    pub fn eviction(&self) -> &EvictionSettings {
        &self.budget.eviction
    }

    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.budget.eviction.policy()
    }

    /// Changes `maxmemory-policy` live. Keys' access words are read under the new policy from now on
    /// (as in Redis, LRU times and LFU counters take a while to become meaningful after a switch).
    pub fn set_eviction_policy(&self, policy: EvictionPolicy) {
        self.budget.eviction.set_policy(policy);
    }

    pub fn set_maxmemory_samples(&self, samples: u32) {
        self.budget.eviction.set_samples(samples);
    }

    pub fn set_lfu_log_factor(&self, factor: u32) {
        self.budget.eviction.set_lfu_log_factor(factor);
    }

    pub fn set_lfu_decay_time(&self, minutes: u32) {
        self.budget.eviction.set_lfu_decay_time(minutes);
    }

    /// Totals over all stripes (locks each briefly in turn).
    pub fn stats(&self) -> StoreStats {
        let mut s = StoreStats::default();
        for stripe in self.stripes.iter() {
            let g = stripe.0.lock();
            s.keys += g.len();
            s.keys_with_expiry += g.expires_len();
            s.expired_keys += g.expired_total;
            s.evicted_keys += g.evicted_total;
        }
        s
    }

    /// Number of keys (including expired ones not yet removed), like Redis's DBSIZE.
    pub fn len(&self) -> usize {
        self.stripes.iter().map(|s| s.0.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every key.
    pub fn clear(&self) {
        for stripe in self.stripes.iter() {
            stripe.0.lock().clear();
        }
        self.hooks.flushed();
    }
}

/// A locked stripe.
pub struct StripeGuard<'a> {
    store: &'a Store,
    index: usize,
    guard: MutexGuard<'a, StoreStripe>,
}

impl StripeGuard<'_> {
    pub fn index(&self) -> usize {
        self.index
    }

    /// Reserves `bytes` for a write to this stripe, evicting least recently used keys (never `protect`)
    /// here first and then in other stripes. Fails only if nothing evictable is left.
    pub fn reserve(&mut self, bytes: usize, protect: Slot) -> Result<(), OutOfMemory> {
        let store = self.store;
        store.reserve_in(std::slice::from_mut(self), 0, bytes, protect)
    }
}

impl std::ops::Deref for StripeGuard<'_> {
    type Target = StoreStripe;
    fn deref(&self) -> &StoreStripe {
        &self.guard
    }
}

impl std::ops::DerefMut for StripeGuard<'_> {
    fn deref_mut(&mut self) -> &mut StoreStripe {
        &mut self.guard
    }
}

/// A command asked for a key whose stripe it did not lock: a bug in a key specification, reported to the
/// client as an error rather than risking a deadlock by locking out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ERR ringcache-shard internal error: a key outside the command's key specification was accessed")]
pub struct NotLocked;

/// The keyspace as one command (or one transaction, or one script) sees it: the stripes it holds for its
/// whole run, locked in index order before it starts and released after its effects are recorded.
///
/// - *Keyed* commands hold the stripes of the keys their key specification names ([`Db::lock_hashes`]),
///   so every multi-key command is atomic, as in Redis.
/// - Transactions and scripts that may touch anything hold every stripe ([`Db::lock_all`]).
/// - Whole-keyspace walks (SCAN, KEYS, DBSIZE, FLUSHALL) run on an unlocked `Db` ([`Db::unlocked`]) and
///   lock one stripe at a time; inside a transaction or script they use the stripes already held.
pub struct Db<'a> {
    store: &'a Store,
    /// Locked stripes, in index order (every stripe when `all`).
    held: smallvec::SmallVec<[StripeGuard<'a>; 2]>,
    all: bool,
    /// Held for a whole transaction or script: the commands inside run on these stripes and lock nothing.
    pinned: bool,
    /// The one key [`Db::acquire_one`] locked for, and its hash: the handler asks for the same hash again.
    one_key: Option<(usize, usize, u64)>,
}

impl<'a> Db<'a> {
    /// Holds nothing (commands that do not touch keys, and walks).
    pub fn unlocked(store: &'a Store) -> Db<'a> {
        Db { store, held: smallvec::SmallVec::new(), all: false, pinned: false, one_key: None }
    }

    /// Locks the stripes owning `hashes`, in index order (deadlock-free).
    pub fn lock_hashes(store: &'a Store, hashes: &[u64]) -> Db<'a> {
        let mut indices: smallvec::SmallVec<[usize; 8]> = hashes.iter().map(|&h| store.stripe_index(h)).collect();
        indices.sort_unstable();
        indices.dedup();
        let all = indices.len() == store.stripe_count();
        Db { store, held: indices.iter().map(|&i| store.lock_index(i)).collect(), all, pinned: false, one_key: None }
    }

    /// [`Db::lock_hashes`] (or, with `all`, [`Db::lock_all`]) that gives up as soon as `give_up` says so,
    /// releasing what it took. An uncontended stripe costs what [`Db::lock_hashes`] does; a contended one
    /// is waited for in slices of a few milliseconds, asking `give_up` between them.
    pub fn lock_unless(store: &'a Store, hashes: &[u64], all: bool, give_up: &dyn Fn() -> bool) -> Option<Db<'a>> {
        let indices: smallvec::SmallVec<[usize; 8]> = if all {
            (0..store.stripe_count()).collect()
        } else {
            let mut v: smallvec::SmallVec<[usize; 8]> = hashes.iter().map(|&h| store.stripe_index(h)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut held = smallvec::SmallVec::new();
        for &i in &indices {
            held.push(store.lock_index_unless(i, give_up)?);
        }
        Some(Db { store, held, all: indices.len() == store.stripe_count(), pinned: false, one_key: None })
    }

    /// Locks, into this (unlocked) `Db`, the stripe owning `hash` (a one-key command: the hot path, so
    /// nothing is built or moved), giving up as [`Db::lock_unless`] does. False if it gave up.
    #[inline]
    pub fn acquire_one(&mut self, key: &[u8], give_up: &dyn Fn() -> bool) -> bool {
        debug_assert!(self.held.is_empty());
        let hash = self.store.hash(key);
        self.one_key = Some((key.as_ptr() as usize, key.len(), hash));
        match self.store.lock_index_unless(self.store.stripe_index(hash), give_up) {
            Some(guard) => {
                self.held.push(guard);
                self.all = self.store.stripe_count() == 1;
                true
            }
            None => false,
        }
    }

    /// Releases every stripe this `Db` holds; it is unlocked (and unpinned) again.
    #[inline]
    pub fn release(&mut self) {
        self.held.clear();
        self.all = false;
        self.pinned = false;
        self.one_key = None;
    }

    /// Locks every stripe, in index order.
    pub fn lock_all(store: &'a Store) -> Db<'a> {
        Db {
            store,
            held: (0..store.stripe_count()).map(|i| store.lock_index(i)).collect(),
            all: true,
            pinned: false,
            one_key: None,
        }
    }

    /// Marks this `Db` as held for a whole transaction or script: the commands run inside it use its
    /// stripes and lock nothing of their own.
    pub fn pinned(mut self) -> Db<'a> {
        self.pinned = true;
        self
    }

    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Pins or unpins the stripes held (a command run on them by the server itself, such as putting back
    /// what a blocked client could not take).
    pub fn set_pinned(&mut self, pinned: bool) {
        self.pinned = pinned;
    }

    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Whether every stripe is held (a transaction or script).
    pub fn holds_all(&self) -> bool {
        self.all
    }

    /// The store's hash of `key` (remembered for the key a one-key command locked for).
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        match self.one_key {
            Some((ptr, len, hash)) if ptr == key.as_ptr() as usize && len == key.len() => hash,
            _ => self.store.hash(key),
        }
    }

    fn position(&self, index: usize) -> Option<usize> {
        if self.all {
            return Some(index);
        }
        self.held.iter().position(|g| g.index == index)
    }

    /// The held stripe owning `hash`.
    pub fn stripe(&mut self, hash: u64) -> Result<KeyStripe<'_, 'a>, NotLocked> {
        let pos = self.position(self.store.stripe_index(hash)).ok_or(NotLocked)?;
        Ok(KeyStripe { db: self, pos })
    }

    /// The held stripe owning `hash`, to read (several at once: SINTER reads every set it intersects).
    /// Keys are looked up through [`Db::stripe`] first, which expires and touches them.
    pub fn peek(&self, hash: u64) -> Result<&StoreStripe, NotLocked> {
        let pos = self.position(self.store.stripe_index(hash)).ok_or(NotLocked)?;
        Ok(&self.held[pos])
    }

    /// Runs `f` on stripe `index`: the held guard, or (on an unlocked `Db`) the stripe locked for the call.
    pub fn with_stripe<R>(&mut self, index: usize, f: impl FnOnce(&mut StoreStripe) -> R) -> Result<R, NotLocked> {
        if let Some(pos) = self.position(index) {
            return Ok(f(&mut self.held[pos]));
        }
        if !self.held.is_empty() {
            // Locking another stripe now could invert the lock order.
            return Err(NotLocked);
        }
        Ok(f(&mut self.store.lock_index(index)))
    }

    pub fn stripe_count(&self) -> usize {
        self.store.stripe_count()
    }

    /// [`Store::scan`] through this `Db`'s locks.
    pub fn scan(
        &mut self,
        cursor: u64,
        now_ms: u64,
        mut f: impl FnMut(&StoreStripe, Slot) -> bool,
    ) -> Result<u64, NotLocked> {
        let mut stripe = (cursor >> 32) as usize;
        let mut slot = (cursor & 0xffff_ffff) as u32;
        while stripe < self.stripe_count() {
            if let Some(next) = self.with_stripe(stripe, |g| g.scan_from(slot, now_ms, &mut f))? {
                return Ok(((stripe as u64) << 32) | u64::from(next));
            }
            stripe += 1;
            slot = 0;
        }
        Ok(0)
    }

    /// Number of keys (including expired ones not yet removed), like Redis's DBSIZE.
    pub fn key_count(&mut self) -> Result<usize, NotLocked> {
        let mut n = 0;
        for i in 0..self.stripe_count() {
            n += self.with_stripe(i, |g| g.len())?;
        }
        Ok(n)
    }

    /// [`Store::stats`] through this `Db`'s locks.
    pub fn stats(&mut self) -> Result<StoreStats, NotLocked> {
        let mut s = StoreStats::default();
        for i in 0..self.stripe_count() {
            self.with_stripe(i, |g| {
                s.keys += g.len();
                s.keys_with_expiry += g.expires_len();
                s.expired_keys += g.expired_total;
                s.evicted_keys += g.evicted_total;
            })?;
        }
        Ok(s)
    }

    /// Removes every key.
    pub fn clear(&mut self) -> Result<(), NotLocked> {
        for i in 0..self.stripe_count() {
            self.with_stripe(i, |g| g.clear())?;
        }
        self.store.hooks.flushed();
        Ok(())
    }
}

/// One held stripe of a [`Db`]: the stripe itself (through `Deref`), plus reservations that may evict in
/// the other stripes the `Db` holds.
pub struct KeyStripe<'d, 'a> {
    db: &'d mut Db<'a>,
    pos: usize,
}

impl KeyStripe<'_, '_> {
    /// Reserves `bytes` for a write to this stripe, evicting least recently used keys (never `protect`)
    /// here first, then in the other held stripes, then in stripes that can be locked without waiting.
    /// Fails only if nothing evictable is left.
    pub fn reserve(&mut self, bytes: usize, protect: Slot) -> Result<(), OutOfMemory> {
        let store = self.db.store;
        store.reserve_in(&mut self.db.held, self.pos, bytes, protect)
    }

    /// Charges `bytes` even past the limit (only where refusing would lose data, as in RENAME).
    pub fn force_charge(&self, bytes: usize) {
        self.db.store.force_charge(bytes);
    }
}

impl std::ops::Deref for KeyStripe<'_, '_> {
    type Target = StoreStripe;
    fn deref(&self) -> &StoreStripe {
        &self.db.held[self.pos]
    }
}

impl std::ops::DerefMut for KeyStripe<'_, '_> {
    fn deref_mut(&mut self) -> &mut StoreStripe {
        &mut self.db.held[self.pos]
    }
}

pub use stripe::NIL as NO_SLOT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_never_exceeds_max_and_evicts_lru_first() {
        let store = Store::new(100 * string_entry_cost(8, 8), 4);
        let mut hot = Vec::new();
        for i in 0..1000u32 {
            let key = format!("key{i:05}");
            let h = store.hash(key.as_bytes());
            let mut g = store.lock(h);
            g.reserve(string_entry_cost(key.len(), 8), NO_SLOT).unwrap();
            g.insert_string(h, key.as_bytes(), b"12345678");
            drop(g);
            assert!(store.used_bytes() <= store.maxmemory_bytes());
            if i < 10 {
                hot.push(key);
            }
            // Keep the first ten keys hot.
            for k in &hot {
                let h = store.hash(k.as_bytes());
                assert!(store.lock(h).lookup(h, k.as_bytes(), 0).is_some(), "hot key {k} was evicted");
            }
        }
        let stats = store.stats();
        assert!(stats.keys <= 100);
        assert_eq!(stats.evicted_keys as usize, 1000 - stats.keys);
        assert_eq!(store.used_bytes(), stats.keys * string_entry_cost(8, 8));
    }

    #[test]
    fn a_value_larger_than_the_budget_is_refused() {
        let store = Store::new(1000, 2);
        let h = store.hash(b"k");
        let mut g = store.lock(h);
        let slot = g.insert_string(h, b"k", b"v");
        assert!(g.reserve(string_entry_cost(1, 1), NO_SLOT).is_ok());
        assert_eq!(g.reserve(2000, NO_SLOT), Err(OutOfMemory));
        // Nothing was evicted for a write that could never fit.
        assert_eq!(g.len(), 1);
        assert_eq!(g.reserve(1000, slot), Err(OutOfMemory));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn stripe_bits_do_not_overlap_tag_or_bucket_bits() {
        let store = Store::new(0, 16);
        assert_eq!(store.stripe_shift, 64 - 7 - 4);
        // Keys spread over all stripes.
        let mut seen = [0usize; 16];
        for i in 0..10_000 {
            seen[store.stripe_index(store.hash(format!("k{i}").as_bytes()))] += 1;
        }
        assert!(seen.iter().all(|&n| n > 400), "{seen:?}");
    }
}
