//! A dense array of keyed elements with a hash index: the storage of sets, hashes and sorted sets.
//!
//! Elements live back to back in a `Vec` (so a random element is one index away: SPOP, SRANDMEMBER,
//! HRANDFIELD, ZRANDMEMBER in O(1)); a `hashbrown::HashTable<u32>` maps a key to its position (4 bytes and a
//! control byte per bucket, no copy of the key). Removing swaps the last element into the hole and re-points
//! its index entry, so the array stays dense.
//!
//! SCAN over a dense array walks positions from the end down. A removal moves the last element into the
//! hole: when the hole is below the cursor (not yet visited), the moved element may be returned twice, but
//! an element present for the whole scan is never skipped, as Redis guarantees.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use hashbrown::HashTable;

/// One hasher for every collection in the process, seeded at random so that members cannot be chosen to
/// collide.
static HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(foldhash::fast::RandomState::default);

pub(crate) fn hash_of(key: &[u8]) -> u64 {
    HASHER.hash_one(key)
}

/// An element found by its key.
pub(crate) trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }
}

#[derive(Debug)]
pub(crate) struct Dense<E> {
    items: Vec<E>,
    index: HashTable<u32>,
}

impl<E> Default for Dense<E> {
    fn default() -> Self {
        Dense { items: Vec::new(), index: HashTable::new() }
    }
}

impl<E: Keyed> Dense<E> {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The position of the element with `key`.
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        let items = &self.items;
        self.index.find(hash_of(key), |&i| items[i as usize].key() == key).map(|&i| i as usize)
    }

    pub fn get(&self, pos: usize) -> &E {
        &self.items[pos]
    }

    /// The element at `pos`, to change anything but its key.
    pub fn get_mut(&mut self, pos: usize) -> &mut E {
        &mut self.items[pos]
    }

    /// Adds an element whose key is not present (the caller looked); returns its position.
    pub fn push(&mut self, item: E) -> usize {
        let pos = self.items.len();
        let items = &self.items;
        self.index.insert_unique(hash_of(item.key()), pos as u32, |&i| hash_of(items[i as usize].key()));
        self.items.push(item);
        pos
    }

    /// Replaces the element at `pos` with one of the same key.
    pub fn replace(&mut self, pos: usize, item: E) -> E {
        debug_assert!(self.items[pos].key() == item.key());
        std::mem::replace(&mut self.items[pos], item)
    }

    /// Removes the element at `pos`; the last element takes its place.
    pub fn swap_remove(&mut self, pos: usize) -> E {
        let last = self.items.len() - 1;
        self.unindex(pos);
        if pos != last {
            // Re-point the last element's index entry at its new position.
            let moved = hash_of(self.items[last].key());
            if let Some(slot) = self.index.find_mut(moved, |&i| i as usize == last) {
                *slot = pos as u32;
            }
        }
        let removed = self.items.swap_remove(pos);
        self.shrink_if_sparse();
        removed
    }

    /// Removes the element with `key`, if present.
    pub fn remove(&mut self, key: &[u8]) -> Option<E> {
        let pos = self.find(key)?;
        Some(self.swap_remove(pos))
    }

    fn unindex(&mut self, pos: usize) {
        let h = hash_of(self.items[pos].key());
        if let Ok(entry) = self.index.find_entry(h, |&i| i as usize == pos) {
            entry.remove();
        }
    }

    /// Gives memory back once a collection has shrunk to a quarter of what it held.
    fn shrink_if_sparse(&mut self) {
        let len = self.items.len();
        if self.items.capacity() > 64 && len < self.items.capacity() / 4 {
            self.items.shrink_to(len * 2);
            let items = &self.items;
            self.index.shrink_to(len * 2, |&i| hash_of(items[i as usize].key()));
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, E> {
        self.items.iter()
    }

    /// One SCAN step: calls `f` on up to `count` elements below `cursor` (0 starts at the end), walking
    /// down; returns the cursor to continue from (0 when done).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&E)) -> u64 {
        let len = self.items.len() as u64;
        let start = if cursor == 0 || cursor > len { len } else { cursor };
        let stop = start.saturating_sub(count.max(1) as u64);
        for pos in (stop..start).rev() {
            f(&self.items[pos as usize]);
        }
        stop
    }

    /// Reserves room for `additional` more elements.
    pub fn reserve(&mut self, additional: usize) {
        self.items.reserve(additional);
        let items = &self.items;
        self.index.reserve(additional, |&i| hash_of(items[i as usize].key()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn item(k: u8) -> Box<[u8]> {
        Box::from(&[k][..])
    }

    proptest! {
        /// Inserts and removes agree with a `BTreeSet`, and every element stays findable at its position.
        #[test]
        fn matches_a_set(ops in proptest::collection::vec((any::<bool>(), 0u8..40), 1..400)) {
            let mut d: Dense<Box<[u8]>> = Dense::default();
            let mut model = BTreeSet::new();
            for (insert, k) in ops {
                if insert {
                    if d.find(&[k]).is_none() {
                        d.push(item(k));
                    }
                    model.insert(k);
                } else {
                    prop_assert_eq!(d.remove(&[k]).is_some(), model.remove(&k));
                }
                prop_assert_eq!(d.len(), model.len());
                for (pos, e) in d.iter().enumerate() {
                    prop_assert_eq!(d.find(e), Some(pos));
                }
            }
            let got: BTreeSet<u8> = d.iter().map(|e| e[0]).collect();
            prop_assert_eq!(got, model);
        }

        /// A SCAN returns every element present for the whole scan, whatever is removed meanwhile.
        #[test]
        fn scan_never_skips_a_survivor(removals in proptest::collection::vec(0u8..60, 0..40), count in 1usize..8) {
            let mut d: Dense<Box<[u8]>> = Dense::default();
            for k in 0..60u8 {
                d.push(item(k));
            }
            let survivors: BTreeSet<u8> = (0..60u8).filter(|k| !removals.contains(k)).collect();
            let mut seen = BTreeSet::new();
            let mut cursor = 0;
            let mut removals = removals.into_iter();
            loop {
                cursor = d.scan(cursor, count, |e| {
                    seen.insert(e[0]);
                });
                if let Some(k) = removals.next() {
                    d.remove(&[k]);
                }
                if cursor == 0 {
                    break;
                }
            }
            prop_assert!(survivors.is_subset(&seen));
        }
    }
}
