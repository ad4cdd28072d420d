//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HEXISTS HLEN HINCRBY HKEYS HVALS.
//!
//! Also the plumbing shared by the collection families (hashes, lists, sets, sorted sets): opening a
//! collection for a write that may grow it, and settling its memory charge afterwards.
//!
//! Memory accounting: a collection key costs `string_entry_cost(key.len(), 4)` plus the sum of its
//! elements' costs (the `*_cost` helpers of `store::value`), which the stripe records as the collection's
//! charge. A write reserves an upper bound of its growth *before* changing anything
//! ([`open_for_growth`]), then reports the exact change with [`settle`], which returns the unused part of
//! the reservation and removes the key if the collection became empty.

use hashbrown::HashMap;
use ringcache_common::resp::{ReplyWriter, Request};

use super::collection::{open_for_growth, settle};
use super::strings::lookup_typed;
use super::{parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{hash_field_cost, Collection, Kind, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "hset" => hset,
        "hmset" => hmset,
        "hsetnx" => hsetnx,
        "hget" => hget,
        "hmget" => hmget,
        "hgetall" => hgetall,
        "hdel" => hdel,
        "hexists" => hexists,
        "hlen" => hlen,
        "hincrby" => hincrby,
        "hkeys" => hkeys,
        "hvals" => hvals,
        _ => return None,
    })
}

fn fields(g: &StoreStripe, slot: Slot) -> &HashMap<Box<[u8]>, Box<[u8]>> {
    match g.collection(slot) {
        Collection::Hash(h) => h,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn fields_mut(g: &mut StoreStripe, slot: Slot) -> &mut HashMap<Box<[u8]>, Box<[u8]>> {
    match g.collection_mut(slot) {
        Collection::Hash(h) => h,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn new_hash() -> Collection {
    Collection::Hash(HashMap::new())
}

/// Sets field/value pairs (`req.arg(2..)`); returns how many fields were new.
fn hset_pairs(ctx: &mut Ctx<'_>, req: &Request, cmd: &str) -> Result<i64, CmdError> {
    if !req.argc().is_multiple_of(2) {
        return Err(CmdError::WrongArity(cmd.into()));
    }
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    // Upper bound of the growth: a new field costs its full price, a replaced value at most the extra
    // length (a field named twice is counted twice, which only over-reserves).
    let growth: usize = (2..req.argc())
        .step_by(2)
        .map(|i| {
            let (field, value) = (req.arg(i), req.arg(i + 1));
            match existing.and_then(|slot| fields(&g, slot).get(field)) {
                Some(old) => value.len().saturating_sub(old.len()),
                None => hash_field_cost(field, value),
            }
        })
        .sum();
    let slot = open_for_growth(&mut g, h, key, existing, growth, new_hash)?;
    let map = fields_mut(&mut g, slot);
    let (mut added, mut delta) = (0, 0isize);
    for i in (2..req.argc()).step_by(2) {
        let (field, value) = (req.arg(i), req.arg(i + 1));
        match map.get_mut(field) {
            Some(old) => {
                delta += value.len() as isize - old.len() as isize;
                *old = Box::from(value);
            }
            None => {
                delta += hash_field_cost(field, value) as isize;
                map.insert(Box::from(field), Box::from(value));
                added += 1;
            }
        }
    }
    settle(&mut g, slot, growth, delta);
    Ok(added)
}

fn hset(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let added = hset_pairs(ctx, req, "hset")?;
    ctx.out.integer(added);
    Ok(())
}

fn hmset(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    hset_pairs(ctx, req, "hmset")?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, field, value) = (req.arg(1), req.arg(2), req.arg(3));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    if existing.is_some_and(|slot| fields(&g, slot).contains_key(field)) {
        ctx.out.integer(0);
        return Ok(());
    }
    let cost = hash_field_cost(field, value);
    let slot = open_for_growth(&mut g, h, key, existing, cost, new_hash)?;
    fields_mut(&mut g, slot).insert(Box::from(field), Box::from(value));
    settle(&mut g, slot, cost, cost as isize);
    ctx.out.integer(1);
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, field) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    match slot.and_then(|slot| fields(&g, slot).get(field)) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    ctx.out.array_len(req.argc() - 2);
    for field in req.args_from(2) {
        match slot.and_then(|slot| fields(&g, slot).get(field)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// HGETALL, HKEYS and HVALS: every field and/or value, in the hash's (unspecified) order.
fn hget_many(ctx: &mut Ctx<'_>, req: &Request, with_fields: bool, with_values: bool) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)? else {
        if with_fields && with_values {
            ctx.out.map_len(0);
        } else {
            ctx.out.array_len(0);
        }
        return Ok(());
    };
    let map = fields(&g, slot);
    if with_fields && with_values {
        ctx.out.map_len(map.len());
    } else {
        ctx.out.array_len(map.len());
    }
    for (f, v) in map {
        if with_fields {
            ctx.out.bulk(f);
        }
        if with_values {
            ctx.out.bulk(v);
        }
    }
    Ok(())
}

fn hgetall(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    hget_many(ctx, req, true, true)
}

fn hkeys(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    hget_many(ctx, req, true, false)
}

fn hvals(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    hget_many(ctx, req, false, true)
}

fn hdel(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let map = fields_mut(&mut g, slot);
    let (mut removed, mut freed) = (0, 0);
    for field in req.args_from(2) {
        if let Some((f, v)) = map.remove_entry(field) {
            freed += hash_field_cost(&f, &v);
            removed += 1;
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    ctx.out.integer(removed);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, field) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    let found = slot.is_some_and(|slot| fields(&g, slot).contains_key(field));
    ctx.out.integer(i64::from(found));
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    let len = slot.map_or(0, |slot| fields(&g, slot).len());
    ctx.out.integer(len as i64);
    Ok(())
}

fn hincrby(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, field) = (req.arg(1), req.arg(2));
    // Like Redis, the increment is checked before the key.
    let incr = parse_i64(req.arg(3))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::Hash, ctx.now_ms)?;
    let old = existing.and_then(|slot| fields(&g, slot).get(field));
    let (current, old_len) = match old {
        Some(v) => {
            (parse_i64(v).map_err(|_| CmdError::Other("ERR hash value is not an integer".into()))?, Some(v.len()))
        }
        None => (0, None),
    };
    let next =
        current.checked_add(incr).ok_or_else(|| CmdError::Other("ERR increment or decrement would overflow".into()))?;
    let mut text = itoa::Buffer::new();
    let value = text.format(next).as_bytes();
    let delta = match old_len {
        Some(old_len) => value.len() as isize - old_len as isize,
        None => hash_field_cost(field, value) as isize,
    };
    let growth = delta.max(0) as usize;
    let slot = open_for_growth(&mut g, h, key, existing, growth, new_hash)?;
    let map = fields_mut(&mut g, slot);
    match map.get_mut(field) {
        Some(v) => *v = Box::from(value),
        None => {
            map.insert(Box::from(field), Box::from(value));
        }
    }
    settle(&mut g, slot, growth, delta);
    ctx.out.integer(next);
    Ok(())
}
