//! Value types other than strings, and what they cost against `maxmemory`. One file per type:
//!
//! - `list.rs`: chunks of packed elements (O(1) at both ends).
//! - `dense.rs`: a dense array with a hash index, the storage of sets, hashes and sorted sets (O(1)
//!   membership, removal and random element).
//! - `set.rs`, `hash.rs`: sets and hashes over it.
//! - `zset.rs` and `order_tree.rs`: sorted sets, the dense array plus a counted B+ tree for the order
//!   (O(log n) rank, range and update).
//!
//! Memory accounting: a collection is charged the sum of its elements' costs (the `*_cost` functions below:
//! the element's bytes plus a fixed overhead per element, measured for these structures); the key's own
//! entry is charged by the stripe. The charge is a function of the content alone, so it is exact: the same
//! content always costs the same, whatever order it was built in.

mod dense;
mod hash;
mod list;
mod order_tree;
mod set;
mod zset;

pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use zset::{Score, ZSet};

/// The type of a key's value, as `TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Hash,
    List,
    Set,
    ZSet,
}

impl Kind {
    pub(crate) fn tag(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_tag(tag: u8) -> Kind {
        match tag {
            0 => Kind::String,
            1 => Kind::Hash,
            2 => Kind::List,
            3 => Kind::Set,
            _ => Kind::ZSet,
        }
    }

    /// The name `TYPE` replies with.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
        }
    }
}

/// Bytes charged per element of a collection on top of its own bytes: what each structure spends per
/// element (index slot, array slot, allocation rounding, chunk headers), measured with 1M-element
/// collections (`bench/collections_vs_redis.sh`).
pub const HASH_FIELD_OVERHEAD_BYTES: usize = 40;
pub const LIST_ITEM_OVERHEAD_BYTES: usize = 3;
pub const SET_MEMBER_OVERHEAD_BYTES: usize = 32;
pub const ZSET_MEMBER_OVERHEAD_BYTES: usize = 64;

/// A non-string value.
#[derive(Debug)]
pub enum Collection {
    Hash(Hash),
    List(List),
    Set(Set),
    ZSet(ZSet),
}

impl Collection {
    pub fn kind(&self) -> Kind {
        match self {
            Collection::Hash(_) => Kind::Hash,
            Collection::List(_) => Kind::List,
            Collection::Set(_) => Kind::Set,
            Collection::ZSet(_) => Kind::ZSet,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Collection::Hash(h) => h.len(),
            Collection::List(l) => l.len(),
            Collection::Set(s) => s.len(),
            Collection::ZSet(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of this collection (COPY), built element by element in the source's order.
    pub fn duplicate(&self) -> Collection {
        match self {
            Collection::List(l) => Collection::List(l.clone()),
            Collection::Hash(h) => {
                let mut copy = Hash::new();
                copy.reserve(h.len());
                for (f, v) in h.iter() {
                    copy.insert(f, v);
                }
                Collection::Hash(copy)
            }
            Collection::Set(s) => {
                let mut copy = Set::new();
                copy.reserve(s.len());
                for m in s.iter() {
                    copy.insert(m);
                }
                Collection::Set(copy)
            }
            Collection::ZSet(z) => {
                let mut copy = ZSet::new();
                copy.reserve(z.len());
                for (m, score) in z.iter_ordered() {
                    copy.push_greatest(m, score);
                }
                Collection::ZSet(copy)
            }
        }
    }

    /// What this collection is charged against `maxmemory` (its elements' bytes plus per-element overhead).
    /// O(n): callers that change a collection by a few elements adjust the charge by those instead.
    pub fn cost(&self) -> usize {
        match self {
            Collection::Hash(h) => h.iter().map(|(f, v)| hash_field_cost(f, v)).sum(),
            Collection::List(l) => l.iter().map(list_item_cost).sum(),
            Collection::Set(s) => s.iter().map(set_member_cost).sum(),
            Collection::ZSet(z) => z.iter().map(|(m, _)| zset_member_cost(m)).sum(),
        }
    }
}

pub fn hash_field_cost(field: &[u8], value: &[u8]) -> usize {
    field.len() + value.len() + HASH_FIELD_OVERHEAD_BYTES
}
pub fn list_item_cost(item: &[u8]) -> usize {
    item.len() + LIST_ITEM_OVERHEAD_BYTES
}
pub fn set_member_cost(member: &[u8]) -> usize {
    member.len() + SET_MEMBER_OVERHEAD_BYTES
}
pub fn zset_member_cost(member: &[u8]) -> usize {
    member.len() + ZSET_MEMBER_OVERHEAD_BYTES
}
