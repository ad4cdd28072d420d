//! Hash commands: HSET HMSET HSETNX HGET HMGET HGETALL HDEL HEXISTS HLEN HINCRBY HINCRBYFLOAT HKEYS HVALS
//! HSTRLEN HRANDFIELD HSCAN.
//!
//! Memory accounting: a collection key costs `string_entry_cost(key.len(), 4)` plus the sum of its
//! elements' costs (the `*_cost` helpers of `store::value`), which the stripe records as the collection's
//! charge. A write reserves an upper bound of its growth *before* changing anything
//! ([`open_for_growth`]), then reports the exact change with [`settle`], which returns the unused part of
//! the reservation and removes the key if the collection became empty.

use ringcache_common::resp::{format_double, ReplyBuf, ReplyWriter, Request};

use super::collection::{
    check_random_count, open_for_growth, parse_cursor, parse_random_count, parse_scan, random_positions, read, settle,
    write_scan_reply, RandomCount,
};
use super::strings::lookup_typed;
use super::{is, parse_f64, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{hash_field_cost, Collection, Hash, Kind, Slot, StoreStripe};

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
        "hincrbyfloat" => hincrbyfloat,
        "hkeys" => hkeys,
        "hvals" => hvals,
        "hstrlen" => hstrlen,
        "hrandfield" => hrandfield,
        "hscan" => hscan,
        _ => return None,
    })
}

fn as_hash(c: &Collection) -> &Hash {
    match c {
        Collection::Hash(x) => x,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn fields(g: &StoreStripe, slot: Slot) -> &Hash {
    as_hash(g.collection(slot))
}

fn fields_mut(g: &mut StoreStripe, slot: Slot) -> &mut Hash {
    match g.collection_mut(slot) {
        Collection::Hash(h) => h,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn new_hash() -> Collection {
    Collection::Hash(Hash::new())
}

/// Looks up the hash at `key` for a read; `None` when missing.
fn read_hash<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<(&'c Hash, &'c mut ReplyBuf)>, CmdError> {
    Ok(read(ctx, key, Kind::Hash)?.map(|(c, out)| (as_hash(c), out)))
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
        match map.insert(field, value) {
            Some(old_len) => delta += value.len() as isize - old_len as isize,
            None => {
                delta += hash_field_cost(field, value) as isize;
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
    if existing.is_some_and(|slot| fields(&g, slot).contains(field)) {
        ctx.out.integer(0);
        return Ok(());
    }
    let cost = hash_field_cost(field, value);
    let slot = open_for_growth(&mut g, h, key, existing, cost, new_hash)?;
    fields_mut(&mut g, slot).insert(field, value);
    settle(&mut g, slot, cost, cost as isize);
    ctx.out.integer(1);
    Ok(())
}

fn hget(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let field = req.arg(2);
    match read_hash(ctx, req.arg(1))? {
        Some((map, out)) => match map.get(field) {
            Some(v) => out.bulk(v),
            None => out.null(),
        },
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let found = read_hash(ctx, req.arg(1))?;
    let (map, out) = match found {
        Some((map, out)) => (Some(map), out),
        None => (None, &mut *ctx.out),
    };
    out.array_len(req.argc() - 2);
    for field in req.args_from(2) {
        match map.and_then(|m| m.get(field)) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
    Ok(())
}

/// HGETALL, HKEYS and HVALS: every field and/or value, in the hash's (unspecified) order.
fn hget_many(ctx: &mut Ctx<'_>, req: &Request, with_fields: bool, with_values: bool) -> CmdResult {
    let Some((map, out)) = read_hash(ctx, req.arg(1))? else {
        if with_fields && with_values {
            ctx.out.map_len(0);
        } else {
            ctx.out.array_len(0);
        }
        return Ok(());
    };
    if with_fields && with_values {
        out.map_len(map.len());
    } else {
        out.array_len(map.len());
    }
    for (f, v) in map.iter() {
        if with_fields {
            out.bulk(f);
        }
        if with_values {
            out.bulk(v);
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
        if let Some(value_len) = map.remove(field) {
            freed += field.len() + value_len + hash_field_cost(b"", b"");
            removed += 1;
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    ctx.out.integer(removed);
    Ok(())
}

fn hexists(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let found = read_hash(ctx, req.arg(1))?.is_some_and(|(map, _)| map.contains(req.arg(2)));
    ctx.out.integer(i64::from(found));
    Ok(())
}

fn hlen(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let len = read_hash(ctx, req.arg(1))?.map_or(0, |(map, _)| map.len());
    ctx.out.integer(len as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let len = read_hash(ctx, req.arg(1))?.and_then(|(map, _)| map.get(req.arg(2)).map(<[u8]>::len));
    ctx.out.integer(len.unwrap_or(0) as i64);
    Ok(())
}

/// Writes `value` into `field` of the hash at `key`, created if missing (HINCRBY, HINCRBYFLOAT).
fn store_field(ctx: &mut Ctx<'_>, key: &[u8], field: &[u8], value: &[u8]) -> CmdResult {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = g.lookup(h, key, ctx.now_ms);
    let old_len = existing.and_then(|slot| fields(&g, slot).get(field).map(<[u8]>::len));
    let delta = match old_len {
        Some(old_len) => value.len() as isize - old_len as isize,
        None => hash_field_cost(field, value) as isize,
    };
    let growth = delta.max(0) as usize;
    let slot = open_for_growth(&mut g, h, key, existing, growth, new_hash)?;
    fields_mut(&mut g, slot).insert(field, value);
    settle(&mut g, slot, growth, delta);
    Ok(())
}

/// The current value of `field` in the hash at `key` (`None` when either is missing).
fn field_value(ctx: &mut Ctx<'_>, key: &[u8], field: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    Ok(read_hash(ctx, key)?.and_then(|(map, _)| map.get(field).map(<[u8]>::to_vec)))
}

fn hincrby(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, field) = (req.arg(1), req.arg(2));
    // Like Redis, the increment is checked before the key.
    let incr = parse_i64(req.arg(3))?;
    let current = match field_value(ctx, key, field)? {
        Some(v) => parse_i64(&v).map_err(|_| CmdError::Other("ERR hash value is not an integer".into()))?,
        None => 0,
    };
    let next =
        current.checked_add(incr).ok_or_else(|| CmdError::Other("ERR increment or decrement would overflow".into()))?;
    let mut text = itoa::Buffer::new();
    store_field(ctx, key, field, text.format(next).as_bytes())?;
    ctx.out.integer(next);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, field) = (req.arg(1), req.arg(2));
    let incr = parse_f64(req.arg(3))?;
    if incr.is_infinite() {
        return Err(CmdError::Other("ERR value is NaN or Infinity".into()));
    }
    let current = match field_value(ctx, key, field)? {
        Some(v) => parse_f64(&v).map_err(|_| CmdError::Other("ERR hash value is not a float".into()))?,
        None => 0.0,
    };
    let next = current + incr;
    if !next.is_finite() {
        return Err(CmdError::Other("ERR increment would produce NaN or Infinity".into()));
    }
    let text = format_double(next);
    store_field(ctx, key, field, text.as_bytes())?;
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

fn hrandfield(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let count = match req.get(2) {
        Some(arg) => {
            let n = parse_random_count(arg)?;
            let with_values = match req.get(3) {
                None => false,
                Some(opt) if req.argc() == 4 && is(opt, "WITHVALUES") => true,
                Some(_) => return Err(CmdError::Syntax),
            };
            Some(check_random_count(n, with_values, ctx.shared.config.limits.max_multibulk_len)?)
        }
        None => None,
    };
    let mut rng = rand::rng();
    let Some((map, out)) = read_hash(ctx, req.arg(1))? else {
        match count {
            Some(_) => ctx.out.array_len(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let Some(RandomCount { count, distinct, with_scores: with_values }) = count else {
        let (f, _) = map.at(rand::Rng::random_range(&mut rng, 0..map.len()));
        out.bulk(f);
        return Ok(());
    };
    let picks = random_positions(map.len(), count, distinct, &mut rng);
    if with_values {
        out.pairs_len(picks.len());
    } else {
        out.array_len(picks.len());
    }
    for p in picks {
        let (f, v) = map.at(p);
        if with_values {
            out.pair();
        }
        out.bulk(f);
        if with_values {
            out.bulk(v);
        }
    }
    Ok(())
}

fn hscan(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    // As in Redis: the cursor, then the key (a missing one ends the scan whatever the options), then them.
    parse_cursor(req.arg(2))?;
    let Some((map, out)) = read_hash(ctx, req.arg(1))? else {
        write_scan_reply(ctx.out, 0, &[]);
        return Ok(());
    };
    let scan = parse_scan(req, 3, false)?;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = map.scan(scan.cursor, scan.count, |f, v| {
        if scan.matches(f) {
            found.push(f.to_vec());
            found.push(v.to_vec());
        }
    });
    write_scan_reply(out, next, &found);
    Ok(())
}
