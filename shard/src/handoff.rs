//! Hinted handoff: what this shard wrote while standing in for a shard that was down.
//!
//! While shard X is down, the proxies send writes of X's keys to the next shard on the ring wrapped as
//! `RINGCACHE HINTED X <command>`. This shard runs the command and, under the same lock, records the keys
//! it touched in X's *hint set*. When X answers again, a proxy **closes** X's hints here (from then on a
//! hinted write for X is refused with `-TRYAGAIN`, so nothing new can land here behind the handoff's back),
//! copies each hinted key's current state (its value, or its absence) onto X, readmits X, and **finishes**:
//! the hinted keys are deleted here. X therefore never serves a value that was overwritten or deleted while
//! it was away.
//!
//! The registry is small and in memory: one entry per shard name this shard ever stood in for. Hints are
//! bounded by `--handoff-max-keys` per shard; past it the entry is marked *overflowed* and the returning
//! shard is flushed before the hints are applied (its old data can no longer be told apart from stale).
//! A FLUSHALL while X is down does the same.
//!
//! Ring changes reuse the same machinery. A shard **joining** the ring starts absent: the shards holding
//! keys in its ranges *seed* its hints with them and *guard* those ranges (plain writes there come from a
//! proxy still on the old ring and are refused), and it is admitted like a returning shard. A shard
//! **leaving** (removed from the config, or SIGTERM) is drained: its keys are *accepted* here as hints for it,
//! unless this shard has a newer version, and it is then treated as absent.

use std::collections::{BTreeSet, HashMap};

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard, RwLock};
use ringcache_common::hash::{ArcSet, Placement};

use crate::snapshot::transfer;
use crate::store::Store;

/// Hints kept for one absent shard.
#[derive(Debug, Default)]
struct Hints {
    /// Whether hinted writes are accepted (between OPEN and CLOSE).
    open: bool,
    /// Keys written since OPEN.
    pending: BTreeSet<Bytes>,
    /// Keys frozen by CLOSE, being handed over; sorted, so TAKE can page through them with a cursor.
    closed: Vec<Bytes>,
    /// Keys handed over by PRECOPY while still open; written again, a key is pending again as well.
    copied: BTreeSet<Bytes>,
    /// Pending keys that came from the absent shard itself (ACCEPT while it drained), not from a hinted
    /// write here: a later copy of the same key from it may replace them (ACCEPT-DELTA); a hinted write
    /// removes a key from here, since it is newer than anything the draining shard sends afterwards.
    accepted: BTreeSet<Bytes>,
    /// The absent shard's data must be dropped before the hints are applied (FLUSHALL, or too many hints).
    flush: bool,
    /// Hints not kept because the set was full.
    overflowed: u64,
}

/// Bulk work on a background thread (seeding, deleting handed-back keys) pauses this long after each chunk
/// of 512 keys, so that on a small machine it takes at most about half a core from the clients.
const PACE: std::time::Duration = std::time::Duration::from_micros(50);

/// Pauses between chunks of bulk background work (see [`PACE`]).
pub fn pace() {
    std::thread::sleep(PACE);
}

/// Counters for INFO and `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct HandoffStats {
    /// Shards this one currently accepts hinted writes for.
    pub open_targets: usize,
    /// Hinted keys not yet handed over (pending and closed).
    pub backlog_keys: usize,
    /// Keys ever recorded as hints.
    pub hinted_keys_total: u64,
    /// Hinted keys deleted here after their shard took them back.
    pub handed_off_keys_total: u64,
    /// Hinted writes refused because a handoff was under way.
    pub refused_writes_total: u64,
    /// Hints dropped because the set was full (the returning shard is flushed instead).
    pub overflowed_keys_total: u64,
}

/// What CLOSE reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    pub keys: usize,
    /// The returning shard must be flushed before the keys are applied.
    pub flush: bool,
}

/// Every shard this one has stood in for.
pub struct Handoffs {
    max_keys_per_target: usize,
    inner: Mutex<Registry>,
    /// Ring ranges that belong to a joining shard: plain commands there are refused (see [`Handoffs::seed`]).
    /// Apart from the registry, so that checking them (every keyed command while any is installed) never
    /// waits for a large hint operation.
    guards: RwLock<HashMap<String, Guard>>,
    /// Whether any guard is installed: the command path reads only this unless one is.
    guarded: AtomicBool,
}

#[derive(Default)]
struct Registry {
    targets: HashMap<String, Hints>,
    stats: HandoffStats,
}

impl Registry {
    /// The hints of `target`, if it is being stood in for (open), with the counters.
    fn open_target(&mut self, target: &str) -> Result<(&mut Hints, &mut HandoffStats), AcceptError> {
        let Registry { targets, stats } = self;
        let hints = targets.get_mut(target).filter(|h| h.open).ok_or_else(|| AcceptError::NotOpen(target.into()))?;
        Ok((hints, stats))
    }
}

impl Hints {
    /// A key that came from the absent shard itself: pending, and replaceable by a later copy from it.
    fn record_accepted(&mut self, key: &[u8], stats: &mut HandoffStats) {
        let key = Bytes::copy_from_slice(key);
        if self.pending.insert(key.clone()) {
            stats.hinted_keys_total += 1;
        }
        self.accepted.insert(key);
    }
}

/// The ranges of a joining shard, as the proxy's ring hashes keys.
#[derive(Debug, Clone)]
struct Guard {
    key_hash: Placement,
    arcs: ArcSet,
}

/// Why ACCEPT failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    #[error("TRYAGAIN shard '{0}' is not being stood in for here")]
    NotOpen(String),
    #[error("{0}")]
    Record(crate::snapshot::transfer::RestoreError),
}

/// Why a hinted write is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("TRYAGAIN shard '{0}' is being handed its keys back; retry")]
    NotOpen(String),
}

/// The registry, locked for one hinted write: the write runs and its keys are recorded under this guard,
/// so a CLOSE is ordered entirely before or entirely after it.
pub struct HintGuard<'a> {
    guard: MutexGuard<'a, Registry>,
    max_keys: usize,
}

impl HintGuard<'_> {
    /// Records `keys` for each of `targets` (all open: checked by [`Handoffs::begin_hinted`]).
    pub fn record<'k>(&mut self, targets: &[&str], keys: impl Iterator<Item = &'k [u8]> + Clone) {
        let registry = &mut *self.guard;
        for target in targets {
            let Some(hints) = registry.targets.get_mut(*target) else { continue };
            for key in keys.clone() {
                if hints.pending.contains(key) {
                    hints.accepted.remove(key);
                    continue;
                }
                if hints.pending.len() + hints.closed.len() >= self.max_keys {
                    hints.flush = true;
                    hints.overflowed += 1;
                    registry.stats.overflowed_keys_total += 1;
                    continue;
                }
                hints.pending.insert(Bytes::copy_from_slice(key));
                registry.stats.hinted_keys_total += 1;
            }
        }
    }

    /// A FLUSHALL ran here while `targets` were away: their data must be dropped when they return, and the
    /// keys hinted so far are gone here too, so there is nothing left to copy.
    pub fn record_flush(&mut self, targets: &[&str]) {
        for target in targets {
            if let Some(hints) = self.guard.targets.get_mut(*target) {
                hints.flush = true;
                hints.pending.clear();
                hints.copied.clear();
            }
        }
    }
}

impl Handoffs {
    pub fn new(max_keys_per_target: usize) -> Handoffs {
        Handoffs {
            max_keys_per_target: max_keys_per_target.max(1),
            inner: Mutex::new(Registry::default()),
            guards: RwLock::new(HashMap::new()),
            guarded: AtomicBool::new(false),
        }
    }

    /// Starts accepting hinted writes for `target` (idempotent). Keys closed but not yet finished go back
    /// to pending: they are still only here.
    pub fn open(&self, target: &str) {
        let mut r = self.inner.lock();
        let hints = r.targets.entry(target.to_string()).or_default();
        hints.open = true;
        let closed = std::mem::take(&mut hints.closed);
        hints.pending.extend(closed);
        let copied = std::mem::take(&mut hints.copied);
        hints.pending.extend(copied);
    }

    /// Locks the registry for a hinted write, if every target accepts hinted writes.
    pub fn begin_hinted(&self, targets: &[&str]) -> Result<HintGuard<'_>, HintError> {
        let mut guard = self.inner.lock();
        if let Some(closed) = targets.iter().find(|t| !guard.targets.get(**t).is_some_and(|h| h.open)) {
            guard.stats.refused_writes_total += 1;
            return Err(HintError::NotOpen(closed.to_string()));
        }
        Ok(HintGuard { guard, max_keys: self.max_keys_per_target })
    }

    /// Stops accepting hinted writes for `target` and freezes its hints for TAKE.
    pub fn close(&self, target: &str) -> Closed {
        let mut r = self.inner.lock();
        let hints = r.targets.entry(target.to_string()).or_default();
        hints.open = false;
        let pending = std::mem::take(&mut hints.pending);
        if !pending.is_empty() {
            let mut all: BTreeSet<Bytes> = std::mem::take(&mut hints.closed).into_iter().collect();
            all.extend(pending);
            hints.closed = all.into_iter().collect();
        }
        Closed { keys: hints.closed.len(), flush: hints.flush }
    }

    /// A handoff starts (again): keys copied by an earlier attempt that did not finish must be copied again
    /// (the returning shard may have lost them), so they go back to pending, or to closed if fenced.
    pub fn rewind(&self, target: &str) {
        let mut r = self.inner.lock();
        let Some(hints) = r.targets.get_mut(target) else { return };
        let copied = std::mem::take(&mut hints.copied);
        if hints.open {
            hints.pending.extend(copied);
        } else if !copied.is_empty() {
            let mut all: BTreeSet<Bytes> = std::mem::take(&mut hints.closed).into_iter().collect();
            all.extend(copied);
            hints.closed = all.into_iter().collect();
        }
    }

    /// Before the fence: moves up to `count` pending keys to *copied* and returns them, with how many stay
    /// pending, so that most keys are handed over while writes still flow and CLOSE freezes only what was
    /// written since. Nothing while closed, or while the returning shard must be flushed first (a flush
    /// would remove what was copied).
    pub fn precopy(&self, target: &str, count: usize) -> (Vec<Bytes>, usize) {
        let mut r = self.inner.lock();
        let Some(hints) = r.targets.get_mut(target).filter(|h| h.open && !h.flush) else {
            return (Vec::new(), 0);
        };
        let mut keys = Vec::with_capacity(count.min(hints.pending.len()));
        while keys.len() < count {
            let Some(key) = hints.pending.pop_first() else { break };
            hints.copied.insert(key.clone());
            keys.push(key);
        }
        (keys, hints.pending.len())
    }

    /// Up to `count` closed keys from `cursor` on, and the cursor to continue from (0 at the end).
    pub fn take(&self, target: &str, cursor: usize, count: usize) -> (Vec<Bytes>, usize) {
        let r = self.inner.lock();
        let Some(hints) = r.targets.get(target) else {
            return (Vec::new(), 0);
        };
        let from = cursor.min(hints.closed.len());
        let to = from.saturating_add(count.max(1)).min(hints.closed.len());
        let next = if to >= hints.closed.len() { 0 } else { to };
        (hints.closed[from..to].to_vec(), next)
    }

    /// Ends a handoff: returns the closed keys (to delete here; the returning shard has them now) and
    /// forgets them and the flush mark. Keys hinted again since (a new outage reopened the entry) are kept.
    pub fn finish(&self, target: &str) -> Vec<Bytes> {
        // Only O(1) work under the lock (hinted writes wait for it); the sets are merged after.
        let (closed, copied, pending) = {
            let mut r = self.inner.lock();
            let Some(hints) = r.targets.get_mut(target) else {
                return Vec::new();
            };
            let closed = std::mem::take(&mut hints.closed);
            let copied = std::mem::take(&mut hints.copied);
            hints.accepted.clear();
            if !hints.open {
                hints.flush = false;
                hints.overflowed = 0;
            }
            // Keys hinted again since (a new outage reopened the entry) stay; usually there are none.
            let pending = (!hints.pending.is_empty()).then(|| hints.pending.clone());
            (closed, copied, pending)
        };
        let mut done = closed;
        done.extend(copied);
        done.sort_unstable();
        done.dedup();
        if let Some(pending) = pending {
            done.retain(|k| !pending.contains(k));
        }
        self.inner.lock().stats.handed_off_keys_total += done.len() as u64;
        done
    }

    /// A shard joins the ring and takes over `arcs`: every key held here in those ranges becomes a hint for
    /// it (regardless of `--handoff-max-keys`: they are here already), and from now on plain commands on keys
    /// in those ranges are refused: they come from a proxy still on the old ring. Returns the keys pending.
    pub fn seed(&self, target: &str, key_hash: Placement, arcs: &[(u32, u32)], store: &Store, now_ms: u64) -> usize {
        let arcs = ArcSet::new(arcs);
        self.guards.write().insert(target.to_string(), Guard { key_hash, arcs: arcs.clone() });
        self.inner.lock().targets.entry(target.to_string()).or_default();
        self.guarded.store(true, Ordering::SeqCst);
        // Two passes: a plain write that passed the guard check just before the guard was installed has
        // landed by the second.
        // At most 512 keys per lock hold, as a snapshot does, so clients of a stripe wait little.
        let mut found = Vec::new();
        for _ in 0..2 {
            let mut cursor = 0;
            loop {
                let mut visited = 0;
                cursor = store.scan(cursor, now_ms, |s, slot| {
                    let key = s.key(slot);
                    if arcs.contains(key_hash.ring_hash(key)) {
                        found.push(Bytes::copy_from_slice(key));
                    }
                    visited += 1;
                    visited < 512
                });
                if cursor == 0 {
                    break;
                }
                pace();
            }
        }
        // Built outside the lock (hinted writes wait for it), merged under it.
        found.sort_unstable();
        found.dedup();
        let mut seeded: BTreeSet<Bytes> = found.into_iter().collect();
        let mut r = self.inner.lock();
        let Registry { targets, stats, .. } = &mut *r;
        let hints = targets.entry(target.to_string()).or_default();
        let before = hints.pending.len();
        if hints.pending.is_empty() {
            hints.pending = seeded;
        } else {
            hints.pending.append(&mut seeded);
        }
        stats.hinted_keys_total += (hints.pending.len() - before) as u64;
        hints.pending.len()
    }

    /// The joining shard that owns `key` now, if a guard covers it (plain writes there are refused).
    pub fn guard_owner(&self, key: &[u8]) -> Option<String> {
        if !self.guarded.load(Ordering::Relaxed) {
            return None;
        }
        let guards = self.guards.read();
        guards.iter().find(|(_, g)| g.arcs.contains(g.key_hash.ring_hash(key))).map(|(name, _)| name.clone())
    }

    /// Whether any guard is installed (a cheap check before hashing keys).
    pub fn is_guarded(&self) -> bool {
        self.guarded.load(Ordering::Relaxed)
    }

    /// Copies from a draining shard: each record is restored here and recorded as a hint for `target`,
    /// unless the key exists here or is already a hint (then what is here is newer). Returns how many were
    /// taken.
    pub fn accept<'r>(
        &self,
        target: &str,
        records: impl Iterator<Item = &'r [u8]>,
        store: &Store,
        now_ms: u64,
    ) -> Result<usize, AcceptError> {
        let mut r = self.inner.lock();
        let (hints, stats) = r.open_target(target)?;
        let mut taken = 0;
        for record in records {
            let key = transfer::record_key(record).map_err(AcceptError::Record)?;
            if hints.pending.contains(key) || transfer::exists(store, key, now_ms) {
                continue;
            }
            transfer::restore(store, record, now_ms).map_err(AcceptError::Record)?;
            hints.record_accepted(key, stats);
            taken += 1;
        }
        Ok(taken)
    }

    /// The second pass of a drain: what the draining shard wrote or deleted while the first pass copied.
    /// Each `(key, record)` (an empty record: the key is gone there) replaces what is here, unless a
    /// hinted write here is newer. Returns how many were applied.
    pub fn accept_delta<'r>(
        &self,
        target: &str,
        pairs: impl Iterator<Item = (&'r [u8], &'r [u8])>,
        store: &Store,
        now_ms: u64,
    ) -> Result<usize, AcceptError> {
        let mut r = self.inner.lock();
        let (hints, stats) = r.open_target(target)?;
        let mut applied = 0;
        for (key, record) in pairs {
            if hints.pending.contains(key) && !hints.accepted.contains(key) {
                continue; // written here since, by a hinted write
            }
            if record.is_empty() {
                transfer::remove(store, key, now_ms);
            } else {
                transfer::restore(store, record, now_ms).map_err(AcceptError::Record)?;
            }
            hints.record_accepted(key, stats);
            applied += 1;
        }
        Ok(applied)
    }

    /// `target` left the ring for good: its hints and guard are dropped (the keys stay: they are this
    /// shard's own now).
    pub fn forget(&self, target: &str) -> bool {
        let had_hints = self.inner.lock().targets.remove(target).is_some();
        let mut guards = self.guards.write();
        let had_guard = guards.remove(target).is_some();
        self.guarded.store(!guards.is_empty(), Ordering::SeqCst);
        had_hints || had_guard
    }

    pub fn stats(&self) -> HandoffStats {
        let r = self.inner.lock();
        let mut s = r.stats;
        s.open_targets = r.targets.values().filter(|h| h.open).count();
        s.backlog_keys = r.targets.values().map(|h| h.pending.len() + h.closed.len() + h.copied.len()).sum();
        s
    }

    /// `(name, open, backlog keys, flush)` per target, for `RINGCACHE HANDOFF LIST`.
    pub fn list(&self) -> Vec<(String, bool, usize, bool)> {
        let r = self.inner.lock();
        let mut out: Vec<_> =
            r.targets.iter().map(|(n, h)| (n.clone(), h.open, h.pending.len() + h.closed.len(), h.flush)).collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(list: &'a [&'static str]) -> impl Iterator<Item = &'static [u8]> + Clone + 'a {
        list.iter().map(|k| k.as_bytes())
    }

    #[test]
    fn hinted_writes_need_an_open_target_and_close_fences_them() {
        let h = Handoffs::new(100);
        assert_eq!(h.begin_hinted(&["x"]).err(), Some(HintError::NotOpen("x".into())));
        h.open("x");
        h.begin_hinted(&["x"]).expect("open").record(&["x"], keys(&["b", "a", "b"]));
        assert_eq!(h.stats().backlog_keys, 2);
        assert_eq!(h.close("x"), Closed { keys: 2, flush: false });
        assert!(h.begin_hinted(&["x"]).is_err(), "closed: hinted writes are refused");
        assert_eq!(h.stats().refused_writes_total, 2);
        // Paged in key order.
        assert_eq!(h.take("x", 0, 1), (vec![Bytes::from_static(b"a")], 1));
        assert_eq!(h.take("x", 1, 1), (vec![Bytes::from_static(b"b")], 0));
        assert_eq!(h.finish("x").len(), 2);
        assert_eq!(h.stats().backlog_keys, 0);
        assert_eq!(h.stats().handed_off_keys_total, 2);
        assert_eq!(h.close("x").keys, 0, "closing again is harmless");
    }

    #[test]
    fn a_new_outage_during_a_handoff_keeps_the_keys_it_wrote() {
        let h = Handoffs::new(100);
        h.open("x");
        h.begin_hinted(&["x"]).expect("open").record(&["x"], keys(&["a", "b"]));
        h.close("x");
        // The shard went away again before the handoff finished: its keys are still only here.
        h.open("x");
        h.begin_hinted(&["x"]).expect("open").record(&["x"], keys(&["a"]));
        assert_eq!(h.finish("x"), Vec::<Bytes>::new(), "reopening moved the closed keys back to pending");
        assert_eq!(h.close("x").keys, 2);
    }

    #[test]
    fn too_many_hints_or_a_flushall_mark_the_target_for_a_flush() {
        let h = Handoffs::new(2);
        h.open("x");
        h.begin_hinted(&["x"]).expect("open").record(&["x"], keys(&["a", "b", "c"]));
        assert_eq!(h.close("x"), Closed { keys: 2, flush: true });
        assert_eq!(h.stats().overflowed_keys_total, 1);
        h.finish("x");
        h.open("y");
        let mut g = h.begin_hinted(&["y"]).expect("open");
        g.record(&["y"], keys(&["a"]));
        g.record_flush(&["y"]);
        drop(g);
        assert_eq!(h.close("y"), Closed { keys: 0, flush: true });
        assert_eq!(h.close("x"), Closed { keys: 0, flush: false }, "finish cleared the flush mark");
    }
}
