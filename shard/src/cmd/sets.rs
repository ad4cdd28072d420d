//! Set commands: SADD SREM SPOP SMEMBERS SISMEMBER SMISMEMBER SCARD SRANDMEMBER SMOVE SINTER SINTERSTORE
//! SINTERCARD SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.

use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use super::collection::{
    check_random_count, open_for_growth, parse_count, parse_cursor, parse_random_count, parse_scan, random_positions,
    read, settle, store_collection, write_scan_reply, RandomCount,
};
use super::lists::positive;
use super::strings::lookup_typed;
use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{set_member_cost, Collection, Kind, Set, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "sadd" => sadd,
        "srem" => srem,
        "spop" => spop,
        "smembers" => smembers,
        "sismember" => sismember,
        "smismember" => smismember,
        "scard" => scard,
        "srandmember" => srandmember,
        "smove" => smove,
        "sinter" => sinter,
        "sinterstore" => sinterstore,
        "sintercard" => sintercard,
        "sunion" => sunion,
        "sunionstore" => sunionstore,
        "sdiff" => sdiff,
        "sdiffstore" => sdiffstore,
        "sscan" => sscan,
        _ => return None,
    })
}

fn as_set(c: &Collection) -> &Set {
    match c {
        Collection::Set(x) => x,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn members(g: &StoreStripe, slot: Slot) -> &Set {
    as_set(g.collection(slot))
}

fn members_mut(g: &mut StoreStripe, slot: Slot) -> &mut Set {
    match g.collection_mut(slot) {
        Collection::Set(s) => s,
        _ => unreachable!("the key's kind was checked"),
    }
}

/// Looks up the set at `key` for a read; `None` when missing.
fn read_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<(&'c Set, &'c mut ReplyBuf)>, CmdError> {
    Ok(read(ctx, key, Kind::Set)?.map(|(c, out)| (as_set(c), out)))
}

fn sadd(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)?;
    // Members already present cost nothing; one named twice is counted twice (an over-estimate).
    let growth: usize = req
        .args_from(2)
        .filter(|m| existing.is_none_or(|slot| !members(&g, slot).contains(m)))
        .map(set_member_cost)
        .sum();
    let slot = open_for_growth(&mut g, h, key, existing, growth, || Collection::Set(Set::new()))?;
    let set = members_mut(&mut g, slot);
    let (mut added, mut delta) = (0, 0);
    for member in req.args_from(2) {
        if set.insert(member) {
            added += 1;
            delta += set_member_cost(member);
        }
    }
    settle(&mut g, slot, growth, delta as isize);
    ctx.out.integer(added);
    Ok(())
}

fn srem(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let set = members_mut(&mut g, slot);
    let (mut removed, mut freed) = (0, 0);
    for member in req.args_from(2) {
        if set.remove(member) {
            removed += 1;
            freed += set_member_cost(member);
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    ctx.out.integer(removed);
    Ok(())
}

fn spop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if req.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = req.get(2).map(parse_count).transpose()?;
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)? else {
        match count {
            Some(_) => ctx.out.set_len(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let set = members_mut(&mut g, slot);
    let mut rng = rand::rng();
    let take = count.unwrap_or(1).min(set.len());
    let mut popped = Vec::with_capacity(take);
    for _ in 0..take {
        let at = rand::Rng::random_range(&mut rng, 0..set.len());
        popped.push(set.take_at(at));
    }
    let freed: usize = popped.iter().map(|m| set_member_cost(m)).sum();
    settle(&mut g, slot, 0, -(freed as isize));
    match count {
        Some(_) => {
            ctx.out.set_len(popped.len());
            for member in &popped {
                ctx.out.bulk(member);
            }
        }
        None => match popped.first() {
            Some(member) => ctx.out.bulk(member),
            None => ctx.out.null(),
        },
    }
    Ok(())
}

fn smembers(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let Some((set, out)) = read_set(ctx, req.arg(1))? else {
        ctx.out.set_len(0);
        return Ok(());
    };
    out.set_len(set.len());
    for member in set.iter() {
        out.bulk(member);
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let found = read_set(ctx, req.arg(1))?.is_some_and(|(set, _)| set.contains(req.arg(2)));
    ctx.out.integer(i64::from(found));
    Ok(())
}

fn smismember(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let found = read_set(ctx, req.arg(1))?;
    let (set, out) = match found {
        Some((set, out)) => (Some(set), out),
        None => (None, &mut *ctx.out),
    };
    out.array_len(req.argc() - 2);
    for member in req.args_from(2) {
        out.integer(i64::from(set.is_some_and(|s| s.contains(member))));
    }
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let len = read_set(ctx, req.arg(1))?.map_or(0, |(set, _)| set.len());
    ctx.out.integer(len as i64);
    Ok(())
}

fn srandmember(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if req.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match req.get(2) {
        Some(arg) => {
            Some(check_random_count(parse_random_count(arg)?, false, ctx.shared.config.limits.max_multibulk_len)?)
        }
        None => None,
    };
    let mut rng = rand::rng();
    let Some((set, out)) = read_set(ctx, req.arg(1))? else {
        match count {
            Some(_) => ctx.out.array_len(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let Some(RandomCount { count, distinct, .. }) = count else {
        out.bulk(set.at(rand::Rng::random_range(&mut rng, 0..set.len())));
        return Ok(());
    };
    let picks = random_positions(set.len(), count, distinct, &mut rng);
    out.array_len(picks.len());
    for p in picks {
        out.bulk(set.at(p));
    }
    Ok(())
}

fn smove(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (src, dst, member) = (req.arg(1), req.arg(2), req.arg(3));
    let (hs, hd) = (ctx.db.hash(src), ctx.db.hash(dst));
    let now_ms = ctx.now_ms;
    let mut g = ctx.db.stripe(hs)?;
    let Some(src_slot) = g.lookup(hs, src, now_ms) else {
        ctx.out.integer(0);
        return Ok(());
    };
    let src_is_set = g.kind(src_slot) == Kind::Set;
    // Both types are checked before anything changes.
    let mut gd = ctx.db.stripe(hd)?;
    let dst_slot = gd.lookup(hd, dst, now_ms);
    let dst_is_set = dst_slot.is_none_or(|slot| gd.kind(slot) == Kind::Set);
    if !src_is_set || !dst_is_set {
        return Err(CmdError::WrongType);
    }
    if src == dst {
        let found = read_set(ctx, src)?.is_some_and(|(set, _)| set.contains(member));
        ctx.out.integer(i64::from(found));
        return Ok(());
    }
    let cost = set_member_cost(member);
    let gd = ctx.db.stripe(hd)?;
    let already = dst_slot.is_some_and(|slot| members(&gd, slot).contains(member));
    if !read_set(ctx, src)?.is_some_and(|(set, _)| set.contains(member)) {
        ctx.out.integer(0);
        return Ok(());
    }
    if !already {
        let mut gd = ctx.db.stripe(hd)?;
        let existing = gd.lookup(hd, dst, now_ms);
        let slot = open_for_growth(&mut gd, hd, dst, existing, cost, || Collection::Set(Set::new()))?;
        members_mut(&mut gd, slot).insert(member);
        settle(&mut gd, slot, cost, cost as isize);
    }
    let mut g = ctx.db.stripe(hs)?;
    // (A reservation at the destination may have evicted the source.)
    if let Some(slot) = g.lookup(hs, src, now_ms) {
        if members_mut(&mut g, slot).remove(member) {
            settle(&mut g, slot, 0, -(cost as isize));
        }
    }
    ctx.out.integer(1);
    Ok(())
}

/// The sets at `keys`, looked up (and type-checked) in order: `None` for a missing key. The references
/// read the stripes the command holds.
fn read_sets<'c>(ctx: &'c mut Ctx<'_>, keys: &[&[u8]]) -> Result<Vec<Option<&'c Set>>, CmdError> {
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        let h = ctx.db.hash(key);
        let mut g = ctx.db.stripe(h)?;
        found.push(lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)?.map(|slot| (h, slot)));
    }
    let db = &ctx.db;
    found.into_iter().map(|f| f.map(|(h, slot)| Ok(members(db.peek(h)?, slot))).transpose()).collect()
}

/// What a set operation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

/// SINTER, SUNION or SDIFF of `keys`, stopping an intersection at `limit` members (0: no limit).
fn combine(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: SetOp, limit: usize) -> Result<Vec<Box<[u8]>>, CmdError> {
    let sets = read_sets(ctx, keys)?;
    Ok(match op {
        SetOp::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(Vec::new());
            }
            let mut sets: Vec<&Set> = sets.into_iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            let (first, rest) = sets.split_first().map_or((None, &[][..]), |(f, r)| (Some(*f), r));
            let mut out = Vec::new();
            for m in first.into_iter().flat_map(|s| s.iter()) {
                if rest.iter().all(|s| s.contains(m)) {
                    out.push(Box::from(m));
                    if limit != 0 && out.len() >= limit {
                        break;
                    }
                }
            }
            out
        }
        SetOp::Union => {
            let mut union = Set::new();
            for s in sets.iter().flatten() {
                for m in s.iter() {
                    union.insert(m);
                }
            }
            union.iter().map(Box::from).collect()
        }
        SetOp::Diff => {
            let Some(Some(first)) = sets.first() else { return Ok(Vec::new()) };
            first.iter().filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m))).map(Box::from).collect()
        }
    })
}

fn reply_members(out: &mut ReplyBuf, found: &[Box<[u8]>]) {
    out.set_len(found.len());
    for m in found {
        out.bulk(m);
    }
}

fn set_op(ctx: &mut Ctx<'_>, req: &Request, op: SetOp) -> CmdResult {
    let keys: Vec<&[u8]> = req.args_from(1).collect();
    let found = combine(ctx, &keys, op, 0)?;
    reply_members(ctx.out, &found);
    Ok(())
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: the result replaces the destination (deleted when empty).
fn set_op_store(ctx: &mut Ctx<'_>, req: &Request, op: SetOp) -> CmdResult {
    let keys: Vec<&[u8]> = req.args_from(2).collect();
    let found = combine(ctx, &keys, op, 0)?;
    let cost = found.iter().map(|m| set_member_cost(m)).sum();
    let mut set = Set::new();
    set.reserve(found.len());
    for m in &found {
        set.insert(m);
    }
    store_collection(ctx, req.arg(1), Collection::Set(set), cost)?;
    ctx.out.integer(found.len() as i64);
    Ok(())
}

fn sinter(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    set_op(ctx, req, SetOp::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    set_op(ctx, req, SetOp::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    set_op(ctx, req, SetOp::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    set_op_store(ctx, req, SetOp::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    set_op_store(ctx, req, SetOp::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    set_op_store(ctx, req, SetOp::Diff)
}

/// Parses `numkeys key... [LIMIT limit]` of SINTERCARD and ZINTERCARD: the keys and the limit (0: none).
pub(super) fn parse_intercard(req: &Request) -> Result<(Vec<&[u8]>, usize), CmdError> {
    let numkeys = positive(req.arg(1), "numkeys should be greater than 0")?;
    if numkeys > req.argc() - 2 {
        return Err(CmdError::Other("ERR Number of keys can't be greater than number of args".into()));
    }
    let mut limit = 0;
    let mut i = 2 + numkeys;
    while i < req.argc() {
        match req.get(i + 1) {
            Some(value) if is(req.arg(i), "LIMIT") => {
                limit = parse_i64(value)
                    .ok()
                    .filter(|&n| n >= 0)
                    .ok_or_else(|| CmdError::Other("ERR LIMIT can't be negative".into()))?
                    as usize;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok(((2..2 + numkeys).map(|i| req.arg(i)).collect(), limit))
}

fn sintercard(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (keys, limit) = parse_intercard(req)?;
    let found = combine(ctx, &keys, SetOp::Inter, limit)?;
    ctx.out.integer(found.len() as i64);
    Ok(())
}

fn sscan(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    parse_cursor(req.arg(2))?;
    let Some((set, out)) = read_set(ctx, req.arg(1))? else {
        write_scan_reply(ctx.out, 0, &[]);
        return Ok(());
    };
    let scan = parse_scan(req, 3, false)?;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = set.scan(scan.cursor, scan.count, |m| {
        if scan.matches(m) {
            found.push(m.to_vec());
        }
    });
    write_scan_reply(out, next, &found);
    Ok(())
}
