//! Set commands: SADD SREM SPOP SMEMBERS SISMEMBER SCARD.

use hashbrown::HashSet;
use rand::seq::IteratorRandom;
use ringcache_common::resp::{ReplyWriter, Request};

use super::collection::parse_count;
use super::collection::{open_for_growth, settle};
use super::strings::lookup_typed;
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::store::{set_member_cost, Collection, Kind, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "sadd" => sadd,
        "srem" => srem,
        "spop" => spop,
        "smembers" => smembers,
        "sismember" => sismember,
        "scard" => scard,
        _ => return None,
    })
}

fn members(g: &StoreStripe, slot: Slot) -> &HashSet<Box<[u8]>> {
    match g.collection(slot) {
        Collection::Set(s) => s,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn members_mut(g: &mut StoreStripe, slot: Slot) -> &mut HashSet<Box<[u8]>> {
    match g.collection_mut(slot) {
        Collection::Set(s) => s,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn sadd(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)?;
    // Members already present cost nothing; one named twice is counted twice (an over-estimate).
    let growth: usize = req
        .args_from(2)
        .filter(|m| existing.is_none_or(|slot| !members(&g, slot).contains(*m)))
        .map(set_member_cost)
        .sum();
    let slot = open_for_growth(&mut g, h, key, existing, growth, || Collection::Set(HashSet::new()))?;
    let set = members_mut(&mut g, slot);
    let (mut added, mut delta) = (0, 0);
    for member in req.args_from(2) {
        if set.insert(Box::from(member)) {
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
    let popped: Vec<Box<[u8]>> = match count {
        // Everything goes: no need to pick.
        Some(n) if n >= set.len() => set.drain().collect(),
        Some(n) => set.iter().choose_multiple(&mut rng, n).into_iter().cloned().collect(),
        None => set.iter().choose(&mut rng).cloned().into_iter().collect(),
    };
    let mut freed = 0;
    for member in &popped {
        set.remove(member);
        freed += set_member_cost(member);
    }
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
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)? else {
        ctx.out.set_len(0);
        return Ok(());
    };
    let set = members(&g, slot);
    ctx.out.set_len(set.len());
    for member in set {
        ctx.out.bulk(member);
    }
    Ok(())
}

fn sismember(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, member) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)?;
    let found = slot.is_some_and(|slot| members(&g, slot).contains(member));
    ctx.out.integer(i64::from(found));
    Ok(())
}

fn scard(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::Set, ctx.now_ms)?;
    let len = slot.map_or(0, |slot| members(&g, slot).len());
    ctx.out.integer(len as i64);
    Ok(())
}
