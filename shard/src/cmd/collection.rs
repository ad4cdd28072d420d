//! Helpers shared by the collection families (hashes, lists, sets, sorted sets): memory reservation for
//! writes that grow a collection, and Redis's count and index-range rules.

use super::{parse_i64, CmdError};
use crate::store::{string_entry_cost, Collection, KeyStripe, Slot, StoreStripe, NO_SLOT};

/// What a collection key costs on top of its elements (the slab entry holding the collection's slot).
fn collection_entry_cost(key: &[u8]) -> usize {
    string_entry_cost(key.len(), 4)
}

/// Prepares a write that adds at most `growth` bytes of elements to the collection at `key`, whose
/// lookup gave `existing`: reserves `growth` (plus the key's own cost when it is new, evicting other keys
/// if needed) and, if the key is absent, inserts `empty()` under it with a charge of 0. Nothing changes if
/// the reservation fails. The caller then mutates the collection and calls
/// `settle(g, slot, growth, actual_delta)`.
pub(super) fn open_for_growth(
    g: &mut KeyStripe<'_, '_>,
    hash: u64,
    key: &[u8],
    existing: Option<Slot>,
    growth: usize,
    empty: impl FnOnce() -> Collection,
) -> Result<Slot, CmdError> {
    match existing {
        Some(slot) => {
            g.reserve(growth, slot)?;
            Ok(slot)
        }
        None => {
            g.reserve(growth + collection_entry_cost(key), NO_SLOT)?;
            Ok(g.insert_collection(hash, key, empty(), 0))
        }
    }
}

/// Records that the collection at `slot` changed by `delta` bytes after `reserved` bytes were reserved for
/// the change (0 for a write that only removes), and deletes the key if the collection is now empty.
pub(super) fn settle(g: &mut StoreStripe, slot: Slot, reserved: usize, delta: isize) {
    g.settle_collection(slot, reserved, delta);
    if g.collection(slot).is_empty() {
        g.remove(slot);
    }
}

/// Parses the COUNT of LPOP/RPOP/SPOP/ZPOPMIN like Redis's `getPositiveLongFromObjectOrReply`.
pub(super) fn parse_count(arg: &[u8]) -> Result<usize, CmdError> {
    // Redis gives the same answer for a negative count and for one that is not a number at all.
    let out_of_range = || CmdError::Other("ERR value is out of range, must be positive".into());
    let n = parse_i64(arg).map_err(|_| out_of_range())?;
    usize::try_from(n).map_err(|_| out_of_range())
}

/// Redis's rules for an inclusive index range over `len` elements (negative indexes count from the
/// end): the first and last index to return, or `None` if the range is empty.
pub(super) fn index_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}
