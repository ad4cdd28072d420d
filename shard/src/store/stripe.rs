//! One stripe of the store: a hash index into a slab of entries, threaded on an intrusive LRU list.
//!
//! Nothing in here locks or touches global state: the caller ([`super::Store`]) owns the mutex around each
//! stripe and the shared memory budget. Layout, chosen for bytes per key:
//!
//! - `table`: a `hashbrown::HashTable<u32>` of slab indices (4 bytes + 1 control byte per bucket). The
//!   table uses the hash's low bits for the bucket and its top 7 bits as the tag; the store picks the
//!   stripe from the bits just below the tag, so both see well-mixed bits.
//! - `entries`: the slab. An entry is 32 bytes: its heap blob (`[kind][key][value]`), key length, LRU
//!   links and a slot in `expires`. Strings live inside the blob; collections live in `collections`
//!   and the blob holds their slot number. Free slab slots form a list through `next`.
//! - `expires`: the entries that have a TTL, with their deadline, so active expiry samples only them.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::evict::{self, Policy, Rng};
use super::{Budget, KeyHooks};

use super::value::{Collection, Kind};

pub const NIL: u32 = u32::MAX;

/// Bytes charged per key on top of its key and value: the slab entry (32), the blob's kind byte and
/// allocator rounding (~8), and the hash table slot (~8 at typical load).
pub const ENTRY_OVERHEAD_BYTES: usize = 48;

/// What an entry costs against `maxmemory`.
pub fn string_entry_cost(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + ENTRY_OVERHEAD_BYTES
}

struct Entry {
    /// `[kind][key bytes][string value | collection slot as u32 LE]`; empty for a free slot.
    blob: Box<[u8]>,
    key_len: u32,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end; for a free slot, the next free slot.
    next: u32,
    /// Index in `expires`, or `NIL`.
    expire_slot: u32,
}

impl Entry {
    fn kind(&self) -> Kind {
        Kind::from_tag(self.blob[0])
    }
    fn key(&self) -> &[u8] {
        &self.blob[1..1 + self.key_len as usize]
    }
    fn payload(&self) -> &[u8] {
        &self.blob[1 + self.key_len as usize..]
    }
    fn is_free(&self) -> bool {
        self.blob.is_empty()
    }
}

/// Entries in fixed-size chunks of 512: growing never moves or copies existing entries, so a stripe never
/// copies its whole slab while holding its lock, and never needs old and new arrays at once.
#[derive(Default)]
struct Slab {
    chunks: Vec<Vec<Entry>>,
    /// Each entry's access word (see `evict.rs`): seconds of its last access under an LRU policy, Redis's
    /// LFU counter and decrement time under an LFU one. Beside the entries, so an entry stays 32 bytes.
    access: Vec<Vec<u32>>,
    len: usize,
}

const SLAB_CHUNK_SHIFT: usize = 9;
const SLAB_CHUNK: usize = 1 << SLAB_CHUNK_SHIFT;

impl Slab {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, entry: Entry, access: u32) {
        if self.len == self.chunks.len() * SLAB_CHUNK {
            self.chunks.push(Vec::with_capacity(SLAB_CHUNK));
            self.access.push(Vec::with_capacity(SLAB_CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(entry);
        }
        if let Some(chunk) = self.access.last_mut() {
            chunk.push(access);
        }
        self.len += 1;
    }

    #[inline]
    fn access(&self, i: usize) -> u32 {
        self.access[i >> SLAB_CHUNK_SHIFT][i & (SLAB_CHUNK - 1)]
    }

    #[inline]
    fn set_access(&mut self, i: usize, word: u32) {
        self.access[i >> SLAB_CHUNK_SHIFT][i & (SLAB_CHUNK - 1)] = word;
    }
}

impl std::ops::Index<usize> for Slab {
    type Output = Entry;
    fn index(&self, i: usize) -> &Entry {
        &self.chunks[i >> SLAB_CHUNK_SHIFT][i & (SLAB_CHUNK - 1)]
    }
}

impl std::ops::IndexMut<usize> for Slab {
    fn index_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.chunks[i >> SLAB_CHUNK_SHIFT][i & (SLAB_CHUNK - 1)]
    }
}

struct CollectionSlot {
    value: Collection,
    /// What this collection is charged against `maxmemory`, so removal returns exactly that.
    charged_bytes: usize,
}

/// A key's place in a stripe, valid until the stripe is next changed.
pub type Slot = u32;

pub struct Stripe<S> {
    hasher: S,
    budget: Arc<Budget>,
    hooks: Arc<KeyHooks>,
    table: HashTable<u32>,
    entries: Slab,
    free_head: u32,
    lru_head: u32,
    lru_tail: u32,
    len: usize,
    expires: Vec<(u32, u64)>,
    collections: Vec<Option<CollectionSlot>>,
    free_collections: Vec<u32>,
    /// Keys removed because their TTL passed (lazily or actively).
    pub expired_total: u64,
    /// Keys removed to stay under `maxmemory`.
    pub evicted_total: u64,
    /// The time of the last lookup, for the access word of keys inserted after it (a write looks its key
    /// up first), as Redis uses its cached clock.
    clock_ms: u64,
    rng: Rng,
}

/// A value taken out of the store (by RENAME), to be inserted under another key.
pub enum Taken {
    String(Vec<u8>),
    Collection(Collection, usize),
}

impl<S: BuildHasher + Clone> Stripe<S> {
    pub fn new(hasher: S, budget: Arc<Budget>, hooks: Arc<KeyHooks>) -> Self {
        Stripe {
            hasher,
            budget,
            hooks,
            table: HashTable::new(),
            entries: Slab::default(),
            free_head: NIL,
            lru_head: NIL,
            lru_tail: NIL,
            len: 0,
            expires: Vec::new(),
            collections: Vec::new(),
            free_collections: Vec::new(),
            expired_total: 0,
            evicted_total: 0,
            clock_ms: crate::clock::now_ms(),
            rng: Rng::new(rand::random()),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// Finds a live key, removing it first if its TTL has passed, and marks it most recently used.
    #[inline]
    pub fn lookup(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Slot> {
        self.clock_ms = now_ms;
        let slot = self.find(hash, key)?;
        if self.is_expired(slot, now_ms) {
            self.remove(slot);
            self.expired_total += 1;
            return None;
        }
        self.touch(slot);
        self.accessed(slot, now_ms);
        Some(slot)
    }

    /// Records an access in the key's access word: its time (LRU policies) or Redis's LFU counter.
    #[inline]
    fn accessed(&mut self, slot: Slot, now_ms: u64) {
        let word = if self.budget.eviction.tracks_lfu() {
            let r = self.rng.unit();
            evict::lfu_accessed(self.entries.access(slot as usize), now_ms, &self.budget.eviction, r)
        } else {
            evict::lru_word(now_ms)
        };
        self.entries.set_access(slot as usize, word);
    }

    /// The access word of a new key.
    fn new_access_word(&self) -> u32 {
        if self.budget.eviction.tracks_lfu() {
            evict::lfu_new_word(self.clock_ms)
        } else {
            evict::lru_word(self.clock_ms)
        }
    }

    /// Seconds since the key was last accessed (OBJECT IDLETIME under an LRU policy).
    pub fn idle_seconds(&self, slot: Slot, now_ms: u64) -> u64 {
        u64::from(evict::lru_word(now_ms).saturating_sub(self.entries.access(slot as usize)))
    }

    /// The key's LFU counter, decayed to now (OBJECT FREQ under an LFU policy).
    pub fn lfu_frequency(&self, slot: Slot, now_ms: u64) -> u8 {
        evict::lfu_decr_and_return(self.entries.access(slot as usize), now_ms, self.budget.eviction.lfu_decay_time())
    }

    /// Removes a key whose TTL has passed, without counting a lookup or refreshing its recency. Returns
    /// whether it removed one.
    pub fn remove_if_expired(&mut self, hash: u64, key: &[u8], now_ms: u64) -> bool {
        match self.find(hash, key) {
            Some(slot) if self.is_expired(slot, now_ms) => {
                self.remove(slot);
                self.expired_total += 1;
                true
            }
            _ => false,
        }
    }

    /// Charges `bytes` to the shared budget, evicting this stripe's least recently used keys (never
    /// `protect`) while it does not fit. Returns false when this stripe has nothing left to evict.
    pub fn reserve_local(&mut self, bytes: usize, protect: Slot) -> bool {
        loop {
            if self.budget.try_charge(bytes) {
                return true;
            }
            if self.evict_one(protect).is_none() {
                return false;
            }
        }
    }

    /// Returns `bytes` reserved but not used to the shared budget.
    pub fn release(&self, bytes: usize) {
        self.budget.release(bytes);
    }

    /// The key's slot if it exists and has not expired, without counting a lookup, refreshing its recency
    /// or removing it (the append-only log reads what a write left this way).
    pub fn find_live(&self, hash: u64, key: &[u8], now_ms: u64) -> Option<Slot> {
        self.find(hash, key).filter(|&slot| !self.is_expired(slot, now_ms))
    }

    #[inline]
    fn find(&self, hash: u64, key: &[u8]) -> Option<Slot> {
        let entries = &self.entries;
        self.table.find(hash, |&i| entries[i as usize].key() == key).copied()
    }

    fn is_expired(&self, slot: Slot, now_ms: u64) -> bool {
        self.expire_at(slot).is_some_and(|at| at <= now_ms)
    }

    pub fn kind(&self, slot: Slot) -> Kind {
        self.entries[slot as usize].kind()
    }

    pub fn key(&self, slot: Slot) -> &[u8] {
        self.entries[slot as usize].key()
    }

    /// The value of a string entry.
    pub fn string(&self, slot: Slot) -> &[u8] {
        debug_assert_eq!(self.kind(slot), Kind::String);
        self.entries[slot as usize].payload()
    }

    pub fn collection(&self, slot: Slot) -> &Collection {
        let c = self.collection_index(slot);
        match &self.collections[c] {
            Some(cs) => &cs.value,
            None => unreachable!("entry points at a free collection slot"),
        }
    }

    /// Tells the key hooks (WATCH, client tracking) that the key at `slot` changed. Every mutation of a
    /// key below goes through here, so no command can change a key unseen.
    #[inline]
    fn modified(&self, slot: Slot) {
        if self.hooks.is_active() {
            self.hooks.modified(self.entries[slot as usize].key());
        }
    }

    /// Mutable access to a collection (a write: the key counts as modified); the caller reports the
    /// change in size with [`Self::settle_collection`].
    pub fn collection_mut(&mut self, slot: Slot) -> &mut Collection {
        self.modified(slot);
        let c = self.collection_index(slot);
        match &mut self.collections[c] {
            Some(cs) => &mut cs.value,
            None => unreachable!("entry points at a free collection slot"),
        }
    }

    /// What a key currently costs against `maxmemory`.
    pub fn cost(&self, slot: Slot) -> usize {
        let e = &self.entries[slot as usize];
        match e.kind() {
            Kind::String => string_entry_cost(e.key_len as usize, e.payload().len()),
            _ => {
                let c = self.collection_index(slot);
                self.collections[c].as_ref().map_or(0, |cs| cs.charged_bytes) + string_entry_cost(e.key_len as usize, 4)
            }
        }
    }

    /// Settles a collection's change in size after `reserved_bytes` were reserved for it: the collection
    /// is now charged `delta_bytes` more (or less), and the rest of the reservation goes back.
    pub fn settle_collection(&mut self, slot: Slot, reserved_bytes: usize, delta_bytes: isize) {
        let c = self.collection_index(slot);
        if let Some(cs) = &mut self.collections[c] {
            cs.charged_bytes = cs.charged_bytes.saturating_add_signed(delta_bytes);
        }
        let unused = reserved_bytes as isize - delta_bytes;
        if unused > 0 {
            self.budget.release(unused as usize);
        } else if unused < 0 {
            // Estimates are upper bounds, so this only happens if a caller under-reserved; stay accurate.
            self.budget.force_charge(unused.unsigned_abs());
        }
    }

    fn collection_index(&self, slot: Slot) -> usize {
        let p = self.entries[slot as usize].payload();
        u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize
    }

    /// Inserts a key that is not present (the caller looked it up). Returns its slot.
    pub fn insert_string(&mut self, hash: u64, key: &[u8], value: &[u8]) -> Slot {
        let blob = make_blob(Kind::String, key, value);
        self.insert_blob(hash, blob, key.len())
    }

    /// Inserts a collection under a key that is not present.
    pub fn insert_collection(&mut self, hash: u64, key: &[u8], value: Collection, charged_bytes: usize) -> Slot {
        let kind = value.kind();
        let c = self.store_collection(CollectionSlot { value, charged_bytes });
        let blob = make_blob(kind, key, &c.to_le_bytes());
        self.insert_blob(hash, blob, key.len())
    }

    /// Replaces the value of an existing key with a string, keeping its TTL and place.
    pub fn replace_with_string(&mut self, slot: Slot, value: &[u8]) {
        self.modified(slot);
        self.drop_collection_of(slot);
        let e = &mut self.entries[slot as usize];
        let key_len = e.key_len as usize;
        let mut blob = Vec::with_capacity(1 + key_len + value.len());
        blob.push(Kind::String.tag());
        blob.extend_from_slice(&e.blob[1..1 + key_len]);
        blob.extend_from_slice(value);
        e.blob = blob.into_boxed_slice();
    }

    /// Appends to a string value in place (one reallocation of the blob).
    pub fn append_to_string(&mut self, slot: Slot, suffix: &[u8]) {
        self.modified(slot);
        let e = &mut self.entries[slot as usize];
        let mut blob = std::mem::take(&mut e.blob).into_vec();
        blob.extend_from_slice(suffix);
        e.blob = blob.into_boxed_slice();
    }

    /// Mutable bytes of a string value (for SETRANGE after it has been resized).
    pub fn string_mut(&mut self, slot: Slot, new_len: usize) -> &mut [u8] {
        self.modified(slot);
        let e = &mut self.entries[slot as usize];
        let start = 1 + e.key_len as usize;
        if e.blob.len() != start + new_len {
            let mut blob = std::mem::take(&mut e.blob).into_vec();
            blob.resize(start + new_len, 0);
            e.blob = blob.into_boxed_slice();
        }
        &mut e.blob[start..]
    }

    fn insert_blob(&mut self, hash: u64, blob: Box<[u8]>, key_len: usize) -> Slot {
        let entry = Entry { blob, key_len: key_len as u32, prev: NIL, next: NIL, expire_slot: NIL };
        let access = self.new_access_word();
        let slot = if self.free_head != NIL {
            let s = self.free_head;
            self.free_head = self.entries[s as usize].next;
            self.entries[s as usize] = entry;
            self.entries.set_access(s as usize, access);
            s
        } else {
            self.entries.push(entry, access);
            (self.entries.len() - 1) as u32
        };
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.insert_unique(hash, slot, |&i| hasher.hash_one(entries[i as usize].key()));
        self.link_front(slot);
        self.len += 1;
        self.modified(slot);
        slot
    }

    /// Removes a key and hands back its value and deadline.
    pub fn take(&mut self, slot: Slot) -> (Taken, Option<u64>) {
        let expire = self.expire_at(slot);
        let taken = match self.kind(slot) {
            Kind::String => Taken::String(self.string(slot).to_vec()),
            _ => {
                let c = self.collection_index(slot);
                let cs = self.collections[c].take().expect("entry points at a live collection");
                // Leave an empty placeholder so `remove` frees the slot without finding it vacant.
                self.collections[c] = Some(CollectionSlot {
                    value: Collection::List(Default::default()),
                    charged_bytes: cs.charged_bytes,
                });
                Taken::Collection(cs.value, cs.charged_bytes)
            }
        };
        self.remove(slot);
        (taken, expire)
    }

    /// Inserts a taken value under a key that is not present; the caller reserved its cost.
    pub fn insert_taken(&mut self, hash: u64, key: &[u8], taken: Taken) -> Slot {
        match taken {
            Taken::String(v) => self.insert_string(hash, key, &v),
            Taken::Collection(c, charged) => self.insert_collection(hash, key, c, charged),
        }
    }

    /// Removes a key. Returns the bytes it was charged (now given back to the budget).
    pub fn remove(&mut self, slot: Slot) -> usize {
        self.modified(slot);
        let freed_bytes = self.cost(slot);
        let hash = self.hasher.hash_one(self.entries[slot as usize].key());
        match self.table.find_entry(hash, |&i| i == slot) {
            Ok(found) => {
                found.remove();
            }
            Err(_) => unreachable!("a live entry is always indexed"),
        }
        self.set_expire(slot, None);
        self.drop_collection_of(slot);
        self.unlink(slot);
        let e = &mut self.entries[slot as usize];
        e.blob = Box::default();
        e.next = self.free_head;
        e.prev = NIL;
        self.free_head = slot;
        self.len -= 1;
        self.budget.release(freed_bytes);
        freed_bytes
    }

    fn drop_collection_of(&mut self, slot: Slot) {
        if self.kind(slot) == Kind::String {
            return;
        }
        let c = self.collection_index(slot);
        self.collections[c] = None;
        self.free_collections.push(c as u32);
    }

    fn store_collection(&mut self, cs: CollectionSlot) -> u32 {
        match self.free_collections.pop() {
            Some(c) => {
                self.collections[c as usize] = Some(cs);
                c
            }
            None => {
                self.collections.push(Some(cs));
                (self.collections.len() - 1) as u32
            }
        }
    }

    /// Removes one key other than `protect`, chosen by the eviction policy (see `evict.rs`). Returns the
    /// bytes freed, or `None` if the policy has nothing to evict here.
    pub fn evict_one(&mut self, protect: Slot) -> Option<usize> {
        let policy = self.budget.eviction.policy();
        if policy == Policy::AllkeysLru {
            return self.evict_lru(protect);
        }
        let victim = self.choose_victim(policy, protect)?;
        let freed_bytes = self.remove(victim);
        self.evicted_total += 1;
        Some(freed_bytes)
    }

    fn choose_victim(&mut self, policy: Policy, protect: Slot) -> Option<Slot> {
        let samples = self.budget.eviction.samples();
        let now_ms = self.clock_ms;
        let decay = self.budget.eviction.lfu_decay_time();
        match policy {
            Policy::NoEviction => None,
            Policy::AllkeysLru => {
                let mut victim = self.lru_tail;
                if victim == protect && victim != NIL {
                    victim = self.entries[victim as usize].prev;
                }
                (victim != NIL).then_some(victim)
            }
            Policy::AllkeysRandom => self.sample_all(1, protect, |_, _| 0),
            Policy::AllkeysLfu => self.sample_all(samples, protect, |s, slot| {
                u64::from(evict::lfu_decr_and_return(s.entries.access(slot as usize), now_ms, decay))
            }),
            Policy::VolatileRandom => self.sample_volatile(1, protect, |_, _| 0),
            Policy::VolatileTtl => {
                self.sample_volatile(samples, protect, |s, slot| s.expire_at(slot).unwrap_or(u64::MAX))
            }
            Policy::VolatileLfu => self.sample_volatile(samples, protect, |s, slot| {
                u64::from(evict::lfu_decr_and_return(s.entries.access(slot as usize), now_ms, decay))
            }),
            Policy::VolatileLru => {
                if self.expires.is_empty() {
                    return None;
                }
                let mut s = self.lru_tail;
                for _ in 0..evict::VOLATILE_LRU_WALK {
                    if s == NIL {
                        break;
                    }
                    if s != protect && self.entries[s as usize].expire_slot != NIL {
                        return Some(s);
                    }
                    s = self.entries[s as usize].prev;
                }
                self.sample_volatile(samples, protect, |s, slot| u64::from(s.entries.access(slot as usize)))
            }
        }
    }

    /// The lowest-scored of `samples` random live keys (not `protect`).
    fn sample_all(&mut self, samples: usize, protect: Slot, score: impl Fn(&Self, Slot) -> u64) -> Option<Slot> {
        if self.len == 0 || (self.len == 1 && protect != NIL) {
            return None;
        }
        let n = self.entries.len();
        if n <= samples {
            // The sample would cover the stripe: look at every key (exact, and deterministic for tests).
            return (0..n as u32)
                .filter(|&s| s != protect && !self.entries[s as usize].is_free())
                .min_by_key(|&s| score(self, s));
        }
        let mut best: Option<(u64, Slot)> = None;
        let mut found = 0;
        for _ in 0..samples * 8 + 32 {
            let s = self.rng.below(n) as u32;
            if s == protect || self.entries[s as usize].is_free() {
                continue;
            }
            let v = score(self, s);
            if best.is_none_or(|(b, _)| v < b) {
                best = Some((v, s));
            }
            found += 1;
            if found == samples {
                break;
            }
        }
        best.map(|(_, s)| s).or_else(|| (0..n as u32).find(|&s| s != protect && !self.entries[s as usize].is_free()))
    }

    /// The lowest-scored of `samples` random keys with a TTL (not `protect`).
    fn sample_volatile(&mut self, samples: usize, protect: Slot, score: impl Fn(&Self, Slot) -> u64) -> Option<Slot> {
        let n = self.expires.len();
        if n == 0 || (n == 1 && self.expires[0].0 == protect) {
            return None;
        }
        if n <= samples {
            return self.expires.iter().map(|&(s, _)| s).filter(|&s| s != protect).min_by_key(|&s| score(self, s));
        }
        let mut best: Option<(u64, Slot)> = None;
        let mut found = 0;
        for _ in 0..samples * 4 + 8 {
            let s = self.expires[self.rng.below(n)].0;
            if s == protect {
                continue;
            }
            let v = score(self, s);
            if best.is_none_or(|(b, _)| v < b) {
                best = Some((v, s));
            }
            found += 1;
            if found == samples {
                break;
            }
        }
        best.map(|(_, s)| s).or_else(|| self.expires.iter().map(|&(s, _)| s).find(|&s| s != protect))
    }

    /// Removes the least recently used key other than `protect`. Returns the bytes freed, if any.
    pub fn evict_lru(&mut self, protect: Slot) -> Option<usize> {
        let mut victim = self.lru_tail;
        if victim == protect && victim != NIL {
            victim = self.entries[victim as usize].prev;
        }
        if victim == NIL {
            return None;
        }
        let freed_bytes = self.remove(victim);
        self.evicted_total += 1;
        Some(freed_bytes)
    }

    pub fn expire_at(&self, slot: Slot) -> Option<u64> {
        let e = self.entries[slot as usize].expire_slot;
        (e != NIL).then(|| self.expires[e as usize].1)
    }

    /// Sets or clears a key's deadline (milliseconds since the Unix epoch).
    pub fn set_expire(&mut self, slot: Slot, at_ms: Option<u64>) {
        let current = self.entries[slot as usize].expire_slot;
        if !(current == NIL && at_ms.is_none()) {
            self.modified(slot);
        }
        match (current, at_ms) {
            (NIL, None) => {}
            (NIL, Some(at)) => {
                self.expires.push((slot, at));
                self.entries[slot as usize].expire_slot = (self.expires.len() - 1) as u32;
            }
            (e, Some(at)) => self.expires[e as usize].1 = at,
            (e, None) => {
                self.expires.swap_remove(e as usize);
                if let Some(&(moved, _)) = self.expires.get(e as usize) {
                    self.entries[moved as usize].expire_slot = e;
                }
                self.entries[slot as usize].expire_slot = NIL;
            }
        }
    }

    /// Redis-style active expiry: looks at up to `samples` random keys that have a TTL and removes those
    /// whose deadline has passed. Returns (sampled, expired, bytes freed).
    pub fn expire_sample(&mut self, samples: usize, now_ms: u64, rng: &mut impl rand::Rng) -> (usize, usize, usize) {
        let mut sampled = 0;
        let mut expired = 0;
        let mut freed = 0;
        while sampled < samples && !self.expires.is_empty() {
            sampled += 1;
            let i = rng.random_range(0..self.expires.len());
            let (slot, at) = self.expires[i];
            if at <= now_ms {
                freed += self.remove(slot);
                self.expired_total += 1;
                expired += 1;
            }
        }
        (sampled, expired, freed)
    }

    /// Removes every key. Returns the bytes freed.
    pub fn clear(&mut self) -> usize {
        let freed: usize =
            (0..self.entries.len() as u32).filter(|&s| !self.entries[s as usize].is_free()).map(|s| self.cost(s)).sum();
        self.budget.release(freed);
        if self.hooks.is_active() {
            for s in 0..self.entries.len() as u32 {
                if !self.entries[s as usize].is_free() {
                    self.hooks.flushed_key(self.entries[s as usize].key());
                }
            }
        }
        let (expired, evicted) = (self.expired_total, self.evicted_total);
        *self = Stripe::new(self.hasher.clone(), self.budget.clone(), self.hooks.clone());
        self.expired_total = expired;
        self.evicted_total = evicted;
        freed
    }

    /// Calls `f` for live keys in slab order starting at `from`, until `f` returns false or the slab
    /// ends. Returns the slot to resume from, or `None` at the end. Slots never move, so a key present for
    /// a whole scan is visited at least once.
    pub fn scan_from(&mut self, from: u32, now_ms: u64, mut f: impl FnMut(&Self, Slot) -> bool) -> Option<u32> {
        let mut slot = from;
        while (slot as usize) < self.entries.len() {
            let e = &self.entries[slot as usize];
            if !e.is_free() && !self.is_expired(slot, now_ms) && !f(self, slot) {
                return Some(slot + 1);
            }
            slot += 1;
        }
        None
    }

    /// A random live key's slot, if any (tries random slots, then falls back to a walk).
    pub fn random_slot(&self, now_ms: u64, rng: &mut impl rand::Rng) -> Option<Slot> {
        if self.len == 0 {
            return None;
        }
        for _ in 0..32 {
            let s = rng.random_range(0..self.entries.len()) as u32;
            if !self.entries[s as usize].is_free() && !self.is_expired(s, now_ms) {
                return Some(s);
            }
        }
        (0..self.entries.len() as u32).find(|&s| !self.entries[s as usize].is_free() && !self.is_expired(s, now_ms))
    }

    fn touch(&mut self, slot: Slot) {
        if self.lru_head != slot {
            self.unlink(slot);
            self.link_front(slot);
        }
    }

    fn link_front(&mut self, slot: Slot) {
        let old_head = self.lru_head;
        {
            let e = &mut self.entries[slot as usize];
            e.prev = NIL;
            e.next = old_head;
        }
        if old_head != NIL {
            self.entries[old_head as usize].prev = slot;
        } else {
            self.lru_tail = slot;
        }
        self.lru_head = slot;
    }

    fn unlink(&mut self, slot: Slot) {
        let (prev, next) = {
            let e = &self.entries[slot as usize];
            (e.prev, e.next)
        };
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            self.lru_head = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        } else {
            self.lru_tail = prev;
        }
    }

    /// Keys from most to least recently used (tests and debugging).
    #[cfg(test)]
    pub fn keys_by_recency(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = self.lru_head;
        while s != NIL {
            out.push(self.key(s).to_vec());
            s = self.entries[s as usize].next;
        }
        out
    }
}

fn make_blob(kind: Kind, key: &[u8], payload: &[u8]) -> Box<[u8]> {
    let mut blob = Vec::with_capacity(1 + key.len() + payload.len());
    blob.push(kind.tag());
    blob.extend_from_slice(key);
    blob.extend_from_slice(payload);
    blob.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    type TestStripe = Stripe<foldhash::fast::FixedState>;

    fn stripe() -> TestStripe {
        Stripe::new(foldhash::fast::FixedState::with_seed(7), Arc::new(Budget::new(0)), Arc::default())
    }

    fn h(s: &TestStripe, k: &[u8]) -> u64 {
        s.hasher.hash_one(k)
    }

    #[test]
    fn lru_order_follows_access() {
        let mut s = stripe();
        for k in [b"a", b"b", b"c"] {
            let hk = h(&s, k);
            s.insert_string(hk, k, b"v");
        }
        assert_eq!(s.keys_by_recency(), vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
        let ha = h(&s, b"a");
        assert!(s.lookup(ha, b"a", 0).is_some());
        assert_eq!(s.keys_by_recency(), vec![b"a".to_vec(), b"c".to_vec(), b"b".to_vec()]);
        assert!(s.evict_lru(NIL).is_some());
        assert_eq!(s.keys_by_recency(), vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(s.evicted_total, 1);
    }

    #[test]
    fn expired_keys_vanish_on_lookup() {
        let mut s = stripe();
        let hk = h(&s, b"k");
        let slot = s.insert_string(hk, b"k", b"v");
        s.set_expire(slot, Some(100));
        assert!(s.budget.try_charge(string_entry_cost(1, 1)));
        assert!(s.lookup(hk, b"k", 99).is_some());
        assert!(s.lookup(hk, b"k", 100).is_none());
        assert_eq!(s.budget.used(), 0);
        assert_eq!(s.len(), 0);
        assert_eq!(s.expires_len(), 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Lookup(u8),
        Remove(u8),
        Evict,
        Expire(u8, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..24).prop_map(Op::Insert),
            (0u8..24).prop_map(Op::Lookup),
            (0u8..24).prop_map(Op::Remove),
            Just(Op::Evict),
            ((0u8..24), any::<bool>()).prop_map(|(k, b)| Op::Expire(k, b)),
        ]
    }

    proptest! {
        /// The stripe behaves like a reference model: a VecDeque in recency order.
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec(op(), 1..200)) {
            let mut s = stripe();
            let mut model: VecDeque<(u8, bool)> = VecDeque::new(); // front = most recent; bool = has ttl
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        let key = [k];
                        let hk = h(&s, &key);
                        if s.lookup(hk, &key, 0).is_none() {
                            s.insert_string(hk, &key, b"v");
                            model.push_front((k, false));
                        } else {
                            let pos = model.iter().position(|&(m, _)| m == k).unwrap();
                            let e = model.remove(pos).unwrap();
                            model.push_front(e);
                        }
                    }
                    Op::Lookup(k) => {
                        let key = [k];
                        let hk = h(&s, &key);
                        let found = s.lookup(hk, &key, 0).is_some();
                        let pos = model.iter().position(|&(m, _)| m == k);
                        prop_assert_eq!(found, pos.is_some());
                        if let Some(pos) = pos {
                            let e = model.remove(pos).unwrap();
                            model.push_front(e);
                        }
                    }
                    Op::Remove(k) => {
                        let key = [k];
                        let hk = h(&s, &key);
                        if let Some(slot) = s.lookup(hk, &key, 0) {
                            s.remove(slot);
                            let pos = model.iter().position(|&(m, _)| m == k).unwrap();
                            model.remove(pos);
                        }
                    }
                    Op::Evict => {
                        let evicted = s.evict_lru(NIL).is_some();
                        prop_assert_eq!(evicted, model.pop_back().is_some());
                    }
                    Op::Expire(k, set) => {
                        let key = [k];
                        let hk = h(&s, &key);
                        if let Some(slot) = s.lookup(hk, &key, 0) {
                            s.set_expire(slot, set.then_some(1_000));
                            let pos = model.iter().position(|&(m, _)| m == k).unwrap();
                            let mut e = model.remove(pos).unwrap();
                            e.1 = set;
                            model.push_front(e);
                        }
                    }
                }
                let keys: Vec<Vec<u8>> = model.iter().map(|&(k, _)| vec![k]).collect();
                prop_assert_eq!(s.keys_by_recency(), keys);
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.expires_len(), model.iter().filter(|e| e.1).count());
            }
        }
    }
}
