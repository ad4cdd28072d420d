//! Value types other than strings, and what they cost against `maxmemory`: one file per type where the
//! type has structure of its own (`zset.rs`), the plain containers here.

mod zset;

use std::collections::VecDeque;

use hashbrown::{HashMap, HashSet};

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

pub type Bytes = Box<[u8]>;

/// Bytes charged per element of a collection on top of its own bytes (allocation headers, table slots).
pub const HASH_FIELD_OVERHEAD_BYTES: usize = 64;
pub const LIST_ITEM_OVERHEAD_BYTES: usize = 24;
pub const SET_MEMBER_OVERHEAD_BYTES: usize = 40;
pub const ZSET_MEMBER_OVERHEAD_BYTES: usize = 96;

/// A non-string value.
#[derive(Debug)]
pub enum Collection {
    Hash(HashMap<Bytes, Bytes>),
    List(VecDeque<Bytes>),
    Set(HashSet<Bytes>),
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

    pub fn is_empty(&self) -> bool {
        match self {
            Collection::Hash(h) => h.is_empty(),
            Collection::List(l) => l.is_empty(),
            Collection::Set(s) => s.is_empty(),
            Collection::ZSet(z) => z.is_empty(),
        }
    }

    /// What this collection is charged against `maxmemory` (its elements' bytes plus per-element overhead).
    /// O(n): callers that change a collection by a few elements adjust the charge by those instead.
    pub fn cost(&self) -> usize {
        match self {
            Collection::Hash(h) => h.iter().map(|(f, v)| hash_field_cost(f, v)).sum(),
            Collection::List(l) => l.iter().map(|i| list_item_cost(i)).sum(),
            Collection::Set(s) => s.iter().map(|m| set_member_cost(m)).sum(),
            Collection::ZSet(z) => z.scores.keys().map(|m| zset_member_cost(m)).sum(),
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
    2 * member.len() + ZSET_MEMBER_OVERHEAD_BYTES
}
