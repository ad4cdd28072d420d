//! Key commands: DEL UNLINK EXISTS TOUCH TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME
//! TTL PTTL PERSIST RENAME RENAMENX COPY MOVE SWAPDB SCAN KEYS RANDOMKEY DBSIZE FLUSHDB FLUSHALL. A shard has
//! one database (0), so MOVE, SWAPDB and COPY's DB option answer as redis-server started with
//! `--databases 1` does. (DUMP/RESTORE: `dump.rs`; OBJECT: `object.rs`; SORT: `sort.rs`.)

use rand::Rng;
use ringcache_common::resp::{ReplyWriter, Request};

use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{string_entry_cost, Collection, Kind, Taken, NO_SLOT};
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
        "renamenx" => renamenx,
        "copy" => copy,
        "move" => move_,
        "swapdb" => swapdb,
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
    rename_generic(ctx, req, false)
}

fn renamenx(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    rename_generic(ctx, req, true)
}

/// RENAME and RENAMENX (`nx`: only if the new name is free; replies 1 or 0 instead of OK). The value keeps
/// its deadline, as in Redis.
fn rename_generic(ctx: &mut Ctx<'_>, req: &Request, nx: bool) -> CmdResult {
    let (src, dst) = (req.arg(1), req.arg(2));
    let (hs, hd) = (ctx.db.hash(src), ctx.db.hash(dst));
    let reply = |ctx: &mut Ctx<'_>, done: bool| {
        if nx {
            ctx.out.integer(i64::from(done));
        } else {
            ctx.out.ok();
        }
    };
    if ctx.db.stripe(hs)?.lookup(hs, src, ctx.now_ms).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        reply(ctx, false);
        return Ok(());
    }
    if nx {
        let mut to = ctx.db.stripe(hd)?;
        if to.lookup(hd, dst, ctx.now_ms).is_some() {
            reply(ctx, false);
            return Ok(());
        }
    }
    let mut from = ctx.db.stripe(hs)?;
    let Some(src_slot) = from.lookup(hs, src, ctx.now_ms) else {
        return Err(CmdError::NoSuchKey);
    };
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
    reply(ctx, true);
    Ok(())
}

/// A value taken out of the keyspace to be written under another key (COPY, RESTORE).
pub(super) enum Value {
    String(Vec<u8>),
    Collection(Collection),
}

impl From<crate::rdb::Value> for Value {
    fn from(v: crate::rdb::Value) -> Value {
        match v {
            crate::rdb::Value::String(s) => Value::String(s),
            crate::rdb::Value::Collection(c) => Value::Collection(c),
        }
    }
}

/// Writes `value` under `key`, which the caller made sure is absent, with the deadline `expire_at_ms`.
pub(super) fn insert_value(ctx: &mut Ctx<'_>, key: &[u8], value: Value, expire_at_ms: Option<u64>) -> CmdResult {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = match value {
        Value::String(v) => {
            g.reserve(string_entry_cost(key.len(), v.len()), NO_SLOT)?;
            g.insert_string(h, key, &v)
        }
        Value::Collection(c) => {
            let cost = c.cost();
            g.reserve(cost + string_entry_cost(key.len(), 4), NO_SLOT)?;
            g.insert_collection(h, key, c, cost)
        }
    };
    if expire_at_ms.is_some() {
        g.set_expire(slot, expire_at_ms);
    }
    Ok(())
}

/// Parses a database index as Redis's `getIntFromObjectOrReply` does.
fn parse_db(arg: &[u8], error: &str) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Ok(n) if i32::try_from(n).is_ok() => Ok(n),
        _ => Err(CmdError::Other(format!("ERR {error}"))),
    }
}

const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
const NOT_AN_INTEGER: &str = "value is not an integer or out of range";

/// COPY source destination [DB 0] [REPLACE]: the copy keeps the source's deadline.
fn copy(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (src, dst) = (req.arg(1), req.arg(2));
    let mut replace = false;
    let mut i = 3;
    while i < req.argc() {
        let opt = req.arg(i);
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "DB") && i + 1 < req.argc() {
            if parse_db(req.arg(i + 1), NOT_AN_INTEGER)? != 0 {
                return Err(CmdError::Other(DB_OUT_OF_RANGE.into()));
            }
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if src == dst {
        return Err(CmdError::Other("ERR source and destination objects are the same".into()));
    }
    let hs = ctx.db.hash(src);
    let mut from = ctx.db.stripe(hs)?;
    let Some(slot) = from.lookup(hs, src, ctx.now_ms) else {
        ctx.out.integer(0);
        return Ok(());
    };
    let expire = from.expire_at(slot);
    let value = match from.kind(slot) {
        Kind::String => Value::String(from.string(slot).to_vec()),
        _ => Value::Collection(from.collection(slot).duplicate()),
    };
    let hd = ctx.db.hash(dst);
    let mut to = ctx.db.stripe(hd)?;
    if let Some(existing) = to.lookup(hd, dst, ctx.now_ms) {
        if !replace {
            ctx.out.integer(0);
            return Ok(());
        }
        to.remove(existing);
    }
    insert_value(ctx, dst, value, expire)?;
    ctx.out.integer(1);
    Ok(())
}

/// MOVE key db: with one database, every valid index is either this one or out of range.
fn move_(_ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    match parse_db(req.arg(2), NOT_AN_INTEGER)? {
        0 => Err(CmdError::Other("ERR source and destination objects are the same".into())),
        _ => Err(CmdError::Other(DB_OUT_OF_RANGE.into())),
    }
}

/// SWAPDB index1 index2: swapping database 0 with itself is all one database allows.
fn swapdb(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let first = parse_db(req.arg(1), "invalid first DB index")?;
    let second = parse_db(req.arg(2), "invalid second DB index")?;
    if first != 0 || second != 0 {
        return Err(CmdError::Other(DB_OUT_OF_RANGE.into()));
    }
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
