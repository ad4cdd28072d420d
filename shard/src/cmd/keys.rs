//! Key commands: DEL UNLINK EXISTS TOUCH TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME
//! TTL PTTL PERSIST RENAME SCAN KEYS RANDOMKEY DBSIZE FLUSHDB FLUSHALL.

use rand::Rng;
use ringcache_common::resp::{ReplyWriter, Request};

use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{string_entry_cost, Taken, NO_SLOT};
pub(crate) use ringcache_common::glob::glob_match;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "del" | "unlink" => del,
        "exists" => exists,
        "touch" => exists,
        "type" => type_,
        "expire" => expire,
        "pexpire" => pexpire,
        "expireat" => expireat,
        "pexpireat" => pexpireat,
        "expiretime" => expiretime,
        "pexpiretime" => pexpiretime,
        "ttl" => ttl,
        "pttl" => pttl,
        "persist" => persist,
        "rename" => rename,
        "scan" => scan,
        "keys" => keys,
        "randomkey" => randomkey,
        "dbsize" => dbsize,
        "flushdb" | "flushall" => flushall,
        _ => return None,
    })
}

fn del(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut removed = 0;
    for key in req.args_from(1) {
        let h = ctx.db.hash(key);
        let mut g = ctx.db.stripe(h)?;
        if let Some(slot) = g.lookup(h, key, ctx.now_ms) {
            g.remove(slot);
            removed += 1;
        }
    }
    ctx.out.integer(removed);
    Ok(())
}

/// EXISTS and TOUCH: how many of the keys exist (a key named twice counts twice); both refresh recency.
fn exists(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut found = 0;
    for key in req.args_from(1) {
        let h = ctx.db.hash(key);
        if ctx.db.stripe(h)?.lookup(h, key, ctx.now_ms).is_some() {
            found += 1;
        }
    }
    ctx.out.integer(found);
    Ok(())
}

fn type_(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let name = g.lookup(h, key, ctx.now_ms).map_or("none", |slot| g.kind(slot).type_name());
    ctx.out.simple(name);
    Ok(())
}

/// EXPIRE family: `unit_ms` is 1000 for seconds; `absolute` for the *AT variants.
fn expire_generic(ctx: &mut Ctx<'_>, req: &Request, unit_ms: i64, absolute: bool, cmd: &'static str) -> CmdResult {
    let amount = parse_i64(req.arg(2))?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in req.args_from(3) {
        if is(opt, "NX") {
            nx = true;
        } else if is(opt, "XX") {
            xx = true;
        } else if is(opt, "GT") {
            gt = true;
        } else if is(opt, "LT") {
            lt = true;
        } else {
            return Err(CmdError::Other(format!("ERR Unsupported option {}", String::from_utf8_lossy(opt))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::Other("ERR NX and XX, GT or LT options at the same time are not compatible".into()));
    }
    if gt && lt {
        return Err(CmdError::Other("ERR GT and LT options at the same time are not compatible".into()));
    }
    let invalid = || CmdError::InvalidExpire(cmd);
    let ms = amount.checked_mul(unit_ms).ok_or_else(invalid)?;
    let at = if absolute { ms } else { ms.checked_add(ctx.now_ms as i64).ok_or_else(invalid)? };
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = g.lookup(h, key, ctx.now_ms) else {
        ctx.out.integer(0);
        return Ok(());
    };
    let current = g.expire_at(slot);
    let allowed = match current {
        None => !(xx || gt),
        Some(cur) => !nx && (!gt || at > cur as i64) && (!lt || at < cur as i64),
    };
    if !allowed {
        ctx.out.integer(0);
        return Ok(());
    }
    if at <= ctx.now_ms as i64 {
        g.remove(slot);
    } else {
        g.set_expire(slot, Some(at as u64));
    }
    ctx.out.integer(1);
    Ok(())
}

fn expire(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    expire_generic(ctx, req, 1000, false, "expire")
}

fn pexpire(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    expire_generic(ctx, req, 1, false, "pexpire")
}

fn expireat(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    expire_generic(ctx, req, 1000, true, "expireat")
}

fn pexpireat(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    expire_generic(ctx, req, 1, true, "pexpireat")
}

/// The key's deadline: `Err(-2)` if missing, `Err(-1)` if it has none.
fn deadline(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Result<u64, i64>, CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    Ok(match g.lookup(h, key, ctx.now_ms) {
        None => Err(-2),
        Some(slot) => g.expire_at(slot).ok_or(-1),
    })
}

fn ttl_reply(ctx: &mut Ctx<'_>, req: &Request, f: impl Fn(u64, u64) -> i64) -> CmdResult {
    let now = ctx.now_ms;
    let reply = match deadline(ctx, req.arg(1))? {
        Ok(at) => f(at, now),
        Err(code) => code,
    };
    ctx.out.integer(reply);
    Ok(())
}

fn ttl(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ttl_reply(ctx, req, |at, now| ((at.saturating_sub(now) + 500) / 1000) as i64)
}

fn pttl(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ttl_reply(ctx, req, |at, now| at.saturating_sub(now) as i64)
}

fn expiretime(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    // Redis rounds to the nearest second, as TTL does.
    ttl_reply(ctx, req, |at, _| ((at + 500) / 1000) as i64)
}

fn pexpiretime(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ttl_reply(ctx, req, |at, _| at as i64)
}

fn persist(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let changed = match g.lookup(h, key, ctx.now_ms) {
        Some(slot) if g.expire_at(slot).is_some() => {
            g.set_expire(slot, None);
            1
        }
        _ => 0,
    };
    ctx.out.integer(changed);
    Ok(())
}

fn rename(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (src, dst) = (req.arg(1), req.arg(2));
    let (hs, hd) = (ctx.db.hash(src), ctx.db.hash(dst));
    let mut from = ctx.db.stripe(hs)?;
    let Some(src_slot) = from.lookup(hs, src, ctx.now_ms) else {
        return Err(CmdError::NoSuchKey);
    };
    if src == dst {
        ctx.out.ok();
        return Ok(());
    }
    let (taken, expire) = from.take(src_slot);
    let mut to = ctx.db.stripe(hd)?;
    if let Some(dst_slot) = to.lookup(hd, dst, ctx.now_ms) {
        to.remove(dst_slot);
    }
    let cost = match &taken {
        Taken::String(v) => string_entry_cost(dst.len(), v.len()),
        Taken::Collection(_, charged) => charged + string_entry_cost(dst.len(), 4),
    };
    // The source's bytes were just released, so this only fails if the new name is longer and nothing
    // else can be evicted; the value must not be lost, so charge it anyway.
    if to.reserve(cost, NO_SLOT).is_err() {
        to.force_charge(cost);
    }
    let slot = to.insert_taken(hd, dst, taken);
    to.set_expire(slot, expire);
    ctx.out.ok();
    Ok(())
}

/// SCAN's cursor is `stripe << 32 | slab slot`: slab slots never move, so every key present for the
/// whole iteration is returned at least once, whatever is written meanwhile.
fn scan(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let cursor = std::str::from_utf8(req.arg(1))
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| CmdError::Other("ERR invalid cursor".into()))?;
    let mut pattern: Option<&[u8]> = None;
    let mut count: usize = 10;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < req.argc() {
        let opt = req.arg(i);
        let value = req.get(i + 1).ok_or(CmdError::Syntax)?;
        if is(opt, "MATCH") {
            pattern = Some(value);
        } else if is(opt, "COUNT") {
            let n = parse_i64(value)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            count = n as usize;
        } else if is(opt, "TYPE") {
            type_filter = Some(value.to_ascii_lowercase());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut visited = 0;
    let next_cursor = ctx.db.scan(cursor, ctx.now_ms, |s, at| {
        visited += 1;
        let key = s.key(at);
        let type_ok = type_filter.as_deref().is_none_or(|t| s.kind(at).type_name().as_bytes() == t);
        if type_ok && pattern.is_none_or(|p| glob_match(p, key)) {
            keys.push(key.to_vec());
        }
        visited < count
    })?;
    ctx.out.array_len(2);
    ctx.out.bulk_integer(next_cursor as i64);
    ctx.out.array_len(keys.len());
    for k in &keys {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn keys(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let pattern = req.arg(1);
    let mut found: Vec<Vec<u8>> = Vec::new();
    let now_ms = ctx.now_ms;
    for index in 0..ctx.db.stripe_count() {
        ctx.db.with_stripe(index, |g| {
            g.scan_from(0, now_ms, |s, at| {
                if glob_match(pattern, s.key(at)) {
                    found.push(s.key(at).to_vec());
                }
                true
            })
        })?;
    }
    ctx.out.array_len(found.len());
    for k in &found {
        ctx.out.bulk(k);
    }
    Ok(())
}

fn randomkey(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let _ = req;
    let mut rng = rand::rng();
    let n = ctx.db.stripe_count();
    let start = rng.random_range(0..n);
    let now_ms = ctx.now_ms;
    for k in 0..n {
        let key = ctx
            .db
            .with_stripe((start + k) % n, |g| g.random_slot(now_ms, &mut rng).map(|slot| g.key(slot).to_vec()))?;
        if let Some(key) = key {
            ctx.out.bulk(&key);
            return Ok(());
        }
    }
    ctx.out.null();
    Ok(())
}

fn dbsize(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    let n = ctx.db.key_count()?;
    ctx.out.integer(n as i64);
    Ok(())
}

fn flushall(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    match req.get(1) {
        None => {}
        Some(mode) if req.argc() == 2 && (is(mode, "ASYNC") || is(mode, "SYNC")) => {}
        Some(_) => return Err(CmdError::Syntax),
    }
    match ctx.store.aof() {
        // Logged: the store is emptied atomically (every stripe held), so no write is logged before the
        // FLUSHALL but applied after it, or the other way round.
        Some(aof) if !ctx.db.holds_all() => {
            let mut all = crate::store::Db::lock_all(ctx.store);
            all.clear()?;
            crate::aof::touch_flush();
            aof.emit(&all, ctx.now_ms);
        }
        Some(_) => {
            ctx.db.clear()?;
            crate::aof::touch_flush();
        }
        None => ctx.db.clear()?,
    }
    ctx.out.ok();
    Ok(())
}
