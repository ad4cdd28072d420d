//! List commands: LPUSH RPUSH LPOP RPOP LRANGE LLEN.
//!
//! Also two helpers shared with sets and sorted sets: the optional COUNT of the pop commands and Redis's
//! index-range rules.

use std::collections::VecDeque;

use ringcache_common::resp::{ReplyWriter, Request};

use super::collection::{index_range, open_for_growth, parse_count, settle};
use super::strings::lookup_typed;
use super::{parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{list_item_cost, Collection, Kind, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "lpush" => lpush,
        "rpush" => rpush,
        "lpop" => lpop,
        "rpop" => rpop,
        "lrange" => lrange,
        "llen" => llen,
        _ => return None,
    })
}

fn items(g: &StoreStripe, slot: Slot) -> &VecDeque<Box<[u8]>> {
    match g.collection(slot) {
        Collection::List(l) => l,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn items_mut(g: &mut StoreStripe, slot: Slot) -> &mut VecDeque<Box<[u8]>> {
    match g.collection_mut(slot) {
        Collection::List(l) => l,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn push(ctx: &mut Ctx<'_>, req: &Request, front: bool) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)?;
    let growth: usize = req.args_from(2).map(list_item_cost).sum();
    let slot = open_for_growth(&mut g, h, key, existing, growth, || Collection::List(VecDeque::new()))?;
    let list = items_mut(&mut g, slot);
    for item in req.args_from(2) {
        if front {
            list.push_front(Box::from(item));
        } else {
            list.push_back(Box::from(item));
        }
    }
    let len = list.len();
    settle(&mut g, slot, growth, growth as isize);
    ctx.out.integer(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    push(ctx, req, true)
}

fn rpush(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    push(ctx, req, false)
}

fn pop(ctx: &mut Ctx<'_>, req: &Request, front: bool) -> CmdResult {
    if req.argc() > 3 {
        return Err(CmdError::WrongArity(if front { "lpop" } else { "rpop" }.into()));
    }
    let count = req.get(2).map(parse_count).transpose()?;
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? else {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let list = items_mut(&mut g, slot);
    let take = count.unwrap_or(1).min(list.len());
    if count.is_some() {
        ctx.out.array_len(take);
    }
    let mut freed = 0;
    for _ in 0..take {
        let item = if front { list.pop_front() } else { list.pop_back() };
        if let Some(item) = item {
            freed += list_item_cost(&item);
            ctx.out.bulk(&item);
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    Ok(())
}

fn lpop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    pop(ctx, req, true)
}

fn rpop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    pop(ctx, req, false)
}

fn lrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let start = parse_i64(req.arg(2))?;
    let stop = parse_i64(req.arg(3))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)? else {
        ctx.out.array_len(0);
        return Ok(());
    };
    let list = items(&g, slot);
    match index_range(start, stop, list.len()) {
        Some((first, last)) => {
            ctx.out.array_len(last - first + 1);
            for item in list.range(first..=last) {
                ctx.out.bulk(item);
            }
        }
        None => ctx.out.array_len(0),
    }
    Ok(())
}

fn llen(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::List, ctx.now_ms)?;
    let len = slot.map_or(0, |slot| items(&g, slot).len());
    ctx.out.integer(len as i64);
    Ok(())
}
