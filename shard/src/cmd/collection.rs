//! Helpers shared by the collection families (hashes, lists, sets, sorted sets): memory reservation for
//! writes that grow a collection, Redis's count and index-range rules, random-element counts, and the
//! options and reply of the SCAN family.

use ringcache_common::glob::glob_match;
use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use super::strings::lookup_typed;
use super::{is, parse_i64, CmdError};
use crate::store::{string_entry_cost, Collection, KeyStripe, Kind, Slot, StoreStripe, NO_SLOT};

/// What a collection key costs on top of its elements (the slab entry holding the collection's slot).
fn collection_entry_cost(key: &[u8]) -> usize {
    string_entry_cost(key.len(), 4)
}

/// Looks the collection at `key` up for a read (expiring and touching it, counting a hit or a miss):
/// the collection and the reply buffer, or `None` when the key is missing; `WRONGTYPE` for another kind.
pub(super) fn read<'c>(
    ctx: &'c mut super::Ctx<'_>,
    key: &[u8],
    kind: Kind,
) -> Result<Option<(&'c Collection, &'c mut ReplyBuf)>, CmdError> {
    let h = ctx.db.hash(key);
    let slot = lookup_typed(&mut *ctx.db.stripe(h)?, h, key, kind, ctx.now_ms)?;
    match slot {
        Some(slot) => Ok(Some((ctx.db.peek(h)?.collection(slot), &mut *ctx.out))),
        None => Ok(None),
    }
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

/// The parsed count of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RandomCount {
    pub count: usize,
    /// A positive count asks for distinct elements; a negative one allows repeats.
    pub distinct: bool,
    /// WITHVALUES / WITHSCORES.
    pub with_scores: bool,
}

/// Parses a random-element count as Redis does (`-LONG_MAX..=LONG_MAX`), before the options.
pub(super) fn parse_random_count(arg: &[u8]) -> Result<i64, CmdError> {
    let n = parse_i64(arg)?;
    if n == i64::MIN {
        return Err(CmdError::Other(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807".into(),
        ));
    }
    Ok(n)
}

/// Checks a parsed count: with WITHVALUES/WITHSCORES at most half of `LONG_MAX` either way (so the reply's
/// length cannot overflow); with repeats at most `max_elements` (`--proto-max-multibulk-len`), where Redis
/// would build a reply of any size.
pub(super) fn check_random_count(n: i64, with_scores: bool, max_elements: usize) -> Result<RandomCount, CmdError> {
    if with_scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&n) {
        return Err(CmdError::Other("ERR value is out of range".into()));
    }
    let count = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
    if n < 0 && count > max_elements {
        return Err(CmdError::Other(format!(
            "ERR count with repetitions is limited to {max_elements} elements (proto-max-multibulk-len)"
        )));
    }
    Ok(RandomCount { count, distinct: n >= 0, with_scores })
}

/// Positions of `count` random elements among `len`: distinct ones (all of them, in order, when `count`
/// covers the collection), or drawn with repeats.
pub(super) fn random_positions(len: usize, count: usize, distinct: bool, rng: &mut impl rand::Rng) -> Vec<usize> {
    if len == 0 || count == 0 {
        return Vec::new();
    }
    if !distinct {
        return (0..count).map(|_| rng.random_range(0..len)).collect();
    }
    if count >= len {
        return (0..len).collect();
    }
    rand::seq::index::sample(rng, len, count).into_vec()
}

/// The options of SCAN, HSCAN, SSCAN and ZSCAN.
#[derive(Debug, Default)]
pub(super) struct ScanArgs<'a> {
    pub cursor: u64,
    pub count: usize,
    /// `None` for no pattern (or `*`).
    pub pattern: Option<&'a [u8]>,
    /// SCAN's TYPE, lower case.
    pub type_name: Option<Vec<u8>>,
}

impl ScanArgs<'_> {
    pub fn matches(&self, s: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, s))
    }
}

/// Parses a SCAN cursor (`ERR invalid cursor` when it is not an unsigned number).
pub(super) fn parse_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| CmdError::Other("ERR invalid cursor".into()))
}

/// Parses `[MATCH pattern] [COUNT count] [TYPE type]` from argument `from` on, after the cursor at
/// `from - 1`; TYPE only for SCAN (`with_type`).
pub(super) fn parse_scan(req: &Request, from: usize, with_type: bool) -> Result<ScanArgs<'_>, CmdError> {
    let mut args = ScanArgs { cursor: parse_cursor(req.arg(from - 1))?, count: 10, ..ScanArgs::default() };
    let mut i = from;
    while i < req.argc() {
        let opt = req.arg(i);
        let Some(value) = req.get(i + 1) else { return Err(CmdError::Syntax) };
        if is(opt, "COUNT") {
            let n = parse_i64(value)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            args.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(opt, "MATCH") {
            args.pattern = (value != b"*").then_some(value);
        } else if with_type && is(opt, "TYPE") {
            args.type_name = Some(value.to_ascii_lowercase());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(args)
}

/// `[cursor, [items...]]`, as every SCAN replies.
pub(super) fn write_scan_reply(out: &mut ReplyBuf, cursor: u64, items: &[Vec<u8>]) {
    out.array_len(2);
    out.bulk_integer(cursor as i64);
    out.array_len(items.len());
    for item in items {
        out.bulk(item);
    }
}

/// Replaces whatever `key` holds with `value` (charged `cost` for its elements), or deletes the key when
/// `value` is empty: the write of every `...STORE` command. Room is reserved before the old value goes, so
/// a write that cannot fit changes nothing.
pub(super) fn store_collection(
    ctx: &mut super::Ctx<'_>,
    key: &[u8],
    value: Collection,
    cost: usize,
) -> Result<(), CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = g.lookup(h, key, ctx.now_ms);
    if value.is_empty() {
        if let Some(slot) = existing {
            g.remove(slot);
        }
        return Ok(());
    }
    let total = cost + collection_entry_cost(key);
    let old = existing.map_or(0, |slot| g.cost(slot));
    g.reserve(total.saturating_sub(old), existing.unwrap_or(NO_SLOT))?;
    if let Some(slot) = existing {
        g.remove(slot);
        // `remove` gave back the old value's bytes; the reservation above only covered the difference.
        g.force_charge(old.min(total));
    }
    g.insert_collection(h, key, value, cost);
    Ok(())
}
