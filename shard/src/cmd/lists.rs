//! List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LRANGE LLEN LINDEX LSET LINSERT LREM LTRIM LPOS LMOVE
//! RPOPLPUSH LMPOP.
//!
//! The blocking commands (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP) live with the connection's state machine;
//! they call the non-blocking cores here ([`pop`], [`move_element`], [`mpop`]) when a key is ready.

use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use super::collection::{index_range, open_for_growth, parse_count, read, settle};
use super::strings::lookup_typed;
use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{list_item_cost, Collection, Kind, List, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "lpush" => lpush,
        "rpush" => rpush,
        "lpushx" => lpushx,
        "rpushx" => rpushx,
        "lpop" => lpop,
        "rpop" => rpop,
        "lrange" => lrange,
        "llen" => llen,
        "lindex" => lindex,
        "lset" => lset,
        "linsert" => linsert,
        "lrem" => lrem,
        "ltrim" => ltrim,
        "lpos" => lpos,
        "lmove" => lmove,
        "rpoplpush" => rpoplpush,
        "lmpop" => lmpop,
        _ => return None,
    })
}

/// Elements popped from a list, in pop order.
pub type Popped = Vec<Vec<u8>>;

/// An end of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    /// `LEFT` or `RIGHT`, in any case; anything else is a syntax error.
    pub fn parse(arg: &[u8]) -> Result<Side, CmdError> {
        if is(arg, "LEFT") {
            Ok(Side::Left)
        } else if is(arg, "RIGHT") {
            Ok(Side::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }
}

fn items(g: &StoreStripe, slot: Slot) -> &List {
    as_list(g.collection(slot))
}

fn items_mut(g: &mut StoreStripe, slot: Slot) -> &mut List {
    match g.collection_mut(slot) {
        Collection::List(l) => l,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn new_list() -> Collection {
    Collection::List(List::new())
}

/// LPUSH/RPUSH/LPUSHX/RPUSHX: pushes every element in turn; with `only_existing`, nothing when the key is
/// missing. Replies with the new length.
fn push(ctx: &mut Ctx<'_>, req: &Request, side: Side, only_existing: bool) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)?;
    if only_existing && existing.is_none() {
        ctx.out.integer(0);
        return Ok(());
    }
    let growth: usize = req.args_from(2).map(list_item_cost).sum();
    let slot = open_for_growth(&mut g, h, key, existing, growth, new_list)?;
    let list = items_mut(&mut g, slot);
    for item in req.args_from(2) {
        match side {
            Side::Left => list.push_front(item),
            Side::Right => list.push_back(item),
        }
    }
    let len = list.len();
    settle(&mut g, slot, growth, growth as isize);
    ctx.out.integer(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    push(ctx, req, Side::Left, false)
}

fn rpush(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    push(ctx, req, Side::Right, false)
}

fn lpushx(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    push(ctx, req, Side::Left, true)
}

fn rpushx(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    push(ctx, req, Side::Right, true)
}

/// Pops up to `count` elements from `side` of the list at `key` (deleting it when emptied). `None` when
/// the key does not exist; `WRONGTYPE` when it is not a list. The core of LPOP, RPOP, LMPOP and the
/// blocking pops.
pub fn pop(ctx: &mut Ctx<'_>, key: &[u8], side: Side, count: usize) -> Result<Option<Popped>, CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? else {
        return Ok(None);
    };
    let list = items_mut(&mut g, slot);
    let take = count.min(list.len());
    let mut popped = Vec::with_capacity(take);
    let mut freed = 0;
    for _ in 0..take {
        let item = match side {
            Side::Left => list.pop_front(<[u8]>::to_vec),
            Side::Right => list.pop_back(<[u8]>::to_vec),
        };
        if let Some(item) = item {
            freed += list_item_cost(&item);
            popped.push(item);
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    Ok(Some(popped))
}

fn pop_command(ctx: &mut Ctx<'_>, req: &Request, side: Side) -> CmdResult {
    if req.argc() > 3 {
        return Err(CmdError::WrongArity(if side == Side::Left { "lpop" } else { "rpop" }.into()));
    }
    let count = req.get(2).map(parse_count).transpose()?;
    match (pop(ctx, req.arg(1), side, count.unwrap_or(1))?, count) {
        (None, Some(_)) => ctx.out.null_array(),
        (None, None) => ctx.out.null(),
        (Some(items), Some(_)) => {
            ctx.out.array_len(items.len());
            for item in &items {
                ctx.out.bulk(item);
            }
        }
        (Some(items), None) => match items.first() {
            Some(item) => ctx.out.bulk(item),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    pop_command(ctx, req, Side::Left)
}

fn rpop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    pop_command(ctx, req, Side::Right)
}

fn as_list(c: &Collection) -> &List {
    match c {
        Collection::List(l) => l,
        _ => unreachable!("the key's kind was checked"),
    }
}

/// Looks up the list at `key` for a read; `None` when missing.
fn read_list<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<(&'c List, &'c mut ReplyBuf)>, CmdError> {
    Ok(read(ctx, key, Kind::List)?.map(|(c, out)| (as_list(c), out)))
}

fn lrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let start = parse_i64(req.arg(2))?;
    let stop = parse_i64(req.arg(3))?;
    let Some((list, out)) = read_list(ctx, req.arg(1))? else {
        ctx.out.array_len(0);
        return Ok(());
    };
    match index_range(start, stop, list.len()) {
        Some((first, last)) => {
            out.array_len(last - first + 1);
            for item in list.iter_from(first).take(last - first + 1) {
                out.bulk(item);
            }
        }
        None => out.array_len(0),
    }
    Ok(())
}

fn llen(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let len = read_list(ctx, req.arg(1))?.map_or(0, |(list, _)| list.len());
    ctx.out.integer(len as i64);
    Ok(())
}

/// A list index (negative from the end) as a position, if it is inside `len`.
fn position(index: i64, len: usize) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn lindex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let index = parse_i64(req.arg(2))?;
    match read_list(ctx, req.arg(1))? {
        Some((list, out)) => match position(index, list.len()).and_then(|i| list.get(i)) {
            Some(item) => out.bulk(item),
            None => out.null(),
        },
        None => ctx.out.null(),
    }
    Ok(())
}

fn lset(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, item) = (req.arg(1), req.arg(3));
    let index = parse_i64(req.arg(2))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? else {
        return Err(CmdError::NoSuchKey);
    };
    let list = items(&g, slot);
    let Some(i) = position(index, list.len()) else {
        return Err(CmdError::Other("ERR index out of range".into()));
    };
    let old_len = list.get(i).map_or(0, <[u8]>::len);
    let growth = item.len().saturating_sub(old_len);
    g.reserve(growth, slot)?;
    items_mut(&mut g, slot).set(i, item);
    settle(&mut g, slot, growth, item.len() as isize - old_len as isize);
    ctx.out.ok();
    Ok(())
}

fn linsert(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let after = if is(req.arg(2), "AFTER") {
        true
    } else if is(req.arg(2), "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (key, pivot, item) = (req.arg(1), req.arg(3), req.arg(4));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let Some(at) = items(&g, slot).iter().position(|e| e == pivot) else {
        ctx.out.integer(-1);
        return Ok(());
    };
    let cost = list_item_cost(item);
    g.reserve(cost, slot)?;
    let list = items_mut(&mut g, slot);
    list.insert(if after { at + 1 } else { at }, item);
    let len = list.len();
    settle(&mut g, slot, cost, cost as isize);
    ctx.out.integer(len as i64);
    Ok(())
}

fn lrem(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, item) = (req.arg(1), req.arg(3));
    let count = parse_i64(req.arg(2))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
    let removed = items_mut(&mut g, slot).remove_equal(item, limit, count < 0);
    settle(&mut g, slot, 0, -((removed * list_item_cost(item)) as isize));
    ctx.out.integer(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let start = parse_i64(req.arg(2))?;
    let stop = parse_i64(req.arg(3))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    if let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? {
        let list = items_mut(&mut g, slot);
        let before: usize = list.iter().map(list_item_cost).sum();
        match index_range(start, stop, list.len()) {
            Some((first, last)) => list.retain_range(first, last),
            None => list.retain_range(1, 0),
        }
        let after: usize = list.iter().map(list_item_cost).sum();
        settle(&mut g, slot, 0, after as isize - before as isize);
    }
    ctx.out.ok();
    Ok(())
}

/// Parses an option value of LPOS that must not be negative.
fn non_negative(arg: &[u8], message: &str) -> Result<i64, CmdError> {
    parse_i64(arg).ok().filter(|&n| n >= 0).ok_or_else(|| CmdError::Other(format!("ERR {message}")))
}

fn lpos(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let item = req.arg(2);
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 3;
    while i < req.argc() {
        let opt = req.arg(i);
        let value = req.get(i + 1).filter(|_| is(opt, "RANK") || is(opt, "COUNT") || is(opt, "MAXLEN"));
        let Some(value) = value else { return Err(CmdError::Syntax) };
        if is(opt, "RANK") {
            rank = parse_i64(value)?;
            // Redis 7.0 negates the rank without a check: the most negative one stays negative, and
            // then matches from the tail at once.
            if rank == i64::MIN {
                rank = -1;
            }
            if rank == 0 {
                return Err(CmdError::Other(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list".into(),
                ));
            }
        } else if is(opt, "COUNT") {
            count = Some(non_negative(value, "COUNT can't be negative")?);
        } else {
            maxlen = non_negative(value, "MAXLEN can't be negative")?;
        }
        i += 2;
    }
    let Some((list, out)) = read_list(ctx, req.arg(1))? else {
        match count {
            Some(_) => ctx.out.array_len(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let len = list.len();
    let from_tail = rank < 0;
    let skip = rank.unsigned_abs() - 1;
    let scan_limit = if maxlen == 0 { usize::MAX } else { maxlen as usize };
    let want = match count {
        Some(0) => usize::MAX,
        Some(n) => n as usize,
        None => 1,
    };
    let mut found = Vec::new();
    let mut matches = 0u64;
    let elements: Box<dyn Iterator<Item = &[u8]>> =
        if from_tail { Box::new(list.iter().rev()) } else { Box::new(list.iter()) };
    for (walked, e) in elements.take(scan_limit).enumerate() {
        if e == item {
            matches += 1;
            if matches > skip {
                found.push(if from_tail { len - 1 - walked } else { walked });
                if found.len() >= want {
                    break;
                }
            }
        }
    }
    match count {
        Some(_) => {
            out.array_len(found.len());
            for p in found {
                out.integer(p as i64);
            }
        }
        None => match found.first() {
            Some(&p) => out.integer(p as i64),
            None => out.null(),
        },
    }
    Ok(())
}

/// Pops an element from `from` of the list at `src` and pushes it onto `to` of the list at `dst` (the same
/// list rotates). `None` when `src` does not exist; `WRONGTYPE` when either key holds something else. The
/// core of LMOVE, RPOPLPUSH and the blocking moves.
pub fn move_element(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from: Side,
    to: Side,
) -> Result<Option<Vec<u8>>, CmdError> {
    let (hs, hd) = (ctx.db.hash(src), ctx.db.hash(dst));
    let now_ms = ctx.now_ms;
    let mut g = ctx.db.stripe(hs)?;
    let Some(src_slot) = lookup_typed(&mut g, hs, src, Kind::List, now_ms)? else {
        return Ok(None);
    };
    if src == dst {
        // A rotation: the element changes ends, the list's size does not.
        let list = items_mut(&mut g, src_slot);
        let item = match from {
            Side::Left => list.pop_front(<[u8]>::to_vec),
            Side::Right => list.pop_back(<[u8]>::to_vec),
        };
        if let Some(item) = &item {
            match to {
                Side::Left => list.push_front(item),
                Side::Right => list.push_back(item),
            }
        }
        return Ok(item);
    }
    let list = items(&g, src_slot);
    let item = match from {
        Side::Left => list.iter().next(),
        Side::Right => list.iter().next_back(),
    }
    .map(<[u8]>::to_vec);
    let Some(item) = item else { return Ok(None) };
    // The destination first (its type checked, room reserved): if that fails, nothing has moved.
    let cost = list_item_cost(&item);
    let mut g = ctx.db.stripe(hd)?;
    let existing = lookup_typed(&mut g, hd, dst, Kind::List, now_ms)?;
    let slot = open_for_growth(&mut g, hd, dst, existing, cost, new_list)?;
    let list = items_mut(&mut g, slot);
    match to {
        Side::Left => list.push_front(&item),
        Side::Right => list.push_back(&item),
    }
    settle(&mut g, slot, cost, cost as isize);
    let mut g = ctx.db.stripe(hs)?;
    // (The reservation may have evicted the source; then there is nothing left to take from it.)
    if let Some(slot) = g.lookup(hs, src, now_ms) {
        let list = items_mut(&mut g, slot);
        match from {
            Side::Left => list.pop_front(|_| ()),
            Side::Right => list.pop_back(|_| ()),
        };
        settle(&mut g, slot, 0, -(cost as isize));
    }
    Ok(Some(item))
}

fn lmove_reply(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from: Side, to: Side) -> CmdResult {
    match move_element(ctx, src, dst, from, to)? {
        Some(item) => ctx.out.bulk(&item),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lmove(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let from = Side::parse(req.arg(3))?;
    let to = Side::parse(req.arg(4))?;
    lmove_reply(ctx, req.arg(1), req.arg(2), from, to)
}

fn rpoplpush(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    lmove_reply(ctx, req.arg(1), req.arg(2), Side::Right, Side::Left)
}

/// Pops up to `count` elements from `side` of the first non-empty list among `keys`; the key and what was
/// popped, or `None` when every key is missing. The core of LMPOP and BLMPOP.
pub fn mpop(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    side: Side,
    count: usize,
) -> Result<Option<(Vec<u8>, Popped)>, CmdError> {
    for key in keys {
        if let Some(items) = pop(ctx, key, side, count)? {
            if !items.is_empty() {
                return Ok(Some((key.to_vec(), items)));
            }
        }
    }
    Ok(None)
}

/// The arguments of LMPOP/BLMPOP from `numkeys_at`: `numkeys key... LEFT|RIGHT [COUNT count]`.
pub fn parse_mpop(req: &Request, numkeys_at: usize) -> Result<(Vec<&[u8]>, Side, usize), CmdError> {
    let numkeys = positive(req.arg(numkeys_at), "numkeys should be greater than 0")?;
    let where_at = numkeys_at.saturating_add(numkeys).saturating_add(1);
    if where_at >= req.argc() {
        return Err(CmdError::Syntax);
    }
    let side = Side::parse(req.arg(where_at))?;
    let mut count = None;
    let mut i = where_at + 1;
    while i < req.argc() {
        match req.get(i + 1) {
            Some(value) if count.is_none() && is(req.arg(i), "COUNT") => {
                count = Some(positive(value, "count should be greater than 0")?);
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    let keys = (numkeys_at + 1..where_at).map(|i| req.arg(i)).collect();
    Ok((keys, side, count.unwrap_or(1)))
}

/// An integer of at least 1, or `ERR <message>` (for a bad number too, as Redis says).
pub(super) fn positive(arg: &[u8], message: &str) -> Result<usize, CmdError> {
    parse_i64(arg)
        .ok()
        .filter(|&n| n >= 1)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| CmdError::Other(format!("ERR {message}")))
}

fn lmpop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (keys, side, count) = parse_mpop(req, 1)?;
    match mpop(ctx, &keys, side, count)? {
        Some((key, items)) => {
            ctx.out.array_len(2);
            ctx.out.bulk(&key);
            ctx.out.array_len(items.len());
            for item in &items {
                ctx.out.bulk(item);
            }
        }
        None => ctx.out.null_array(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_from_either_end() {
        assert_eq!(position(0, 3), Some(0));
        assert_eq!(position(-1, 3), Some(2));
        assert_eq!(position(3, 3), None);
        assert_eq!(position(-4, 3), None);
        assert_eq!(position(0, 0), None);
        assert_eq!(Side::parse(b"left"), Ok(Side::Left));
        assert_eq!(Side::parse(b"up"), Err(CmdError::Syntax));
    }
}
