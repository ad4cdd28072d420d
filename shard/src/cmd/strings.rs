//! String commands: GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND STRLEN GETRANGE SUBSTR SETRANGE
//! INCR DECR INCRBY DECRBY INCRBYFLOAT MGET MSET MSETNX LCS. (Bitmaps are in `bitmaps.rs`, HyperLogLog in
//! `hyperloglog.rs`: both are string values too.)

use ringcache_common::metrics::{add_hot, HotCounter};
use ringcache_common::resp::{format_double, ReplyWriter, Request};

use super::{is, parse_f64, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{string_entry_cost, KeyStripe, Kind, Slot, StoreStripe};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "get" => get,
        "set" => set,
        "setnx" => setnx,
        "setex" => setex,
        "psetex" => psetex,
        "getset" => getset,
        "getdel" => getdel,
        "getex" => getex,
        "append" => append,
        "strlen" => strlen,
        "getrange" | "substr" => getrange,
        "lcs" => lcs,
        "setrange" => setrange,
        "incr" => incr,
        "decr" => decr,
        "incrby" => incrby,
        "decrby" => decrby,
        "incrbyfloat" => incrbyfloat,
        "mget" => mget,
        "mset" => mset,
        "msetnx" => msetnx,
        _ => return None,
    })
}

/// What a write does to a key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ttl {
    Keep,
    Clear,
    At(u64),
}

/// Looks a key up and counts a hit or a miss; a key of another type is a `WRONGTYPE` error.
pub(crate) fn lookup_typed(
    s: &mut StoreStripe,
    hash: u64,
    key: &[u8],
    kind: Kind,
    now_ms: u64,
) -> Result<Option<Slot>, CmdError> {
    let found = s.lookup(hash, key, now_ms);
    add_hot(if found.is_some() { HotCounter::KeyspaceHits } else { HotCounter::KeyspaceMisses }, 1);
    match found {
        Some(slot) if s.kind(slot) != kind => Err(CmdError::WrongType),
        other => Ok(other),
    }
}

/// Stores `value` as the string at `key` (whose current slot, of any type, is `existing`).
pub(crate) fn store_string(
    g: &mut KeyStripe<'_, '_>,
    hash: u64,
    key: &[u8],
    existing: Option<Slot>,
    value: &[u8],
    ttl: Ttl,
) -> Result<Slot, CmdError> {
    let new_cost = string_entry_cost(key.len(), value.len());
    let slot = match existing {
        Some(slot) => {
            let old_cost = g.cost(slot);
            if new_cost > old_cost {
                g.reserve(new_cost - old_cost, slot)?;
            }
            g.replace_with_string(slot, value);
            g.release(old_cost.saturating_sub(new_cost));
            slot
        }
        None => {
            g.reserve(new_cost, crate::store::NO_SLOT)?;
            g.insert_string(hash, key, value)
        }
    };
    match ttl {
        Ttl::Keep => {}
        Ttl::Clear => g.set_expire(slot, None),
        Ttl::At(at) => g.set_expire(slot, Some(at)),
    }
    Ok(slot)
}

fn get(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    match lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)? {
        Some(slot) => ctx.out.bulk(g.string(slot)),
        None => ctx.out.null(),
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

/// Parses an expiry given in `unit_ms` milliseconds, relative (`absolute == false`) or as a Unix time.
fn parse_expiry(arg: &[u8], unit_ms: u64, absolute: bool, now_ms: u64, cmd: &'static str) -> Result<u64, CmdError> {
    let n = parse_i64(arg)?;
    if n <= 0 {
        return Err(CmdError::InvalidExpire(cmd));
    }
    let ms = (n as u64).checked_mul(unit_ms).ok_or(CmdError::InvalidExpire(cmd))?;
    let at = if absolute { Some(ms) } else { ms.checked_add(now_ms) };
    at.filter(|&t| t <= i64::MAX as u64).ok_or(CmdError::InvalidExpire(cmd))
}

fn set(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut cond = Condition::Always;
    let mut ttl = Ttl::Clear;
    let mut ttl_given = false;
    let mut return_old = false;
    let mut i = 3;
    while i < req.argc() {
        let opt = req.arg(i);
        let has_next = i + 1 < req.argc();
        if is(opt, "NX") && cond == Condition::Always {
            cond = Condition::IfAbsent;
        } else if is(opt, "XX") && cond == Condition::Always {
            cond = Condition::IfPresent;
        } else if is(opt, "GET") && !return_old {
            return_old = true;
        } else if is(opt, "KEEPTTL") && !ttl_given {
            ttl = Ttl::Keep;
            ttl_given = true;
        } else if !ttl_given && has_next && (is(opt, "EX") || is(opt, "PX") || is(opt, "EXAT") || is(opt, "PXAT")) {
            let unit = if is(opt, "EX") || is(opt, "EXAT") { 1000 } else { 1 };
            let absolute = is(opt, "EXAT") || is(opt, "PXAT");
            ttl = Ttl::At(parse_expiry(req.arg(i + 1), unit, absolute, ctx.now_ms, "set")?);
            ttl_given = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let (key, value) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = g.lookup(h, key, ctx.now_ms);
    // SET ... GET replies with the old value, so copy it before the write replaces it.
    let old = match existing {
        Some(slot) if return_old && g.kind(slot) != Kind::String => return Err(CmdError::WrongType),
        Some(slot) if return_old => Some(g.string(slot).to_vec()),
        _ => None,
    };
    let allowed = match cond {
        Condition::Always => true,
        Condition::IfAbsent => existing.is_none(),
        Condition::IfPresent => existing.is_some(),
    };
    if allowed {
        store_string(&mut g, h, key, existing, value, ttl)?;
    }
    match (return_old, old) {
        (true, Some(old)) => ctx.out.bulk(&old),
        (true, None) => ctx.out.null(),
        (false, _) if allowed => ctx.out.ok(),
        (false, _) => ctx.out.null(),
    }
    Ok(())
}

fn setnx(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, value) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    if g.lookup(h, key, ctx.now_ms).is_some() {
        ctx.out.integer(0);
        return Ok(());
    }
    store_string(&mut g, h, key, None, value, Ttl::Clear)?;
    ctx.out.integer(1);
    Ok(())
}

fn setex_with(ctx: &mut Ctx<'_>, req: &Request, unit_ms: u64, cmd: &'static str) -> CmdResult {
    let (key, value) = (req.arg(1), req.arg(3));
    let at = parse_expiry(req.arg(2), unit_ms, false, ctx.now_ms, cmd)?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = g.lookup(h, key, ctx.now_ms);
    store_string(&mut g, h, key, existing, value, Ttl::At(at))?;
    ctx.out.ok();
    Ok(())
}

fn setex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    setex_with(ctx, req, 1000, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    setex_with(ctx, req, 1, "psetex")
}

fn getset(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, value) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)?;
    let old = existing.map(|slot| g.string(slot).to_vec());
    store_string(&mut g, h, key, existing, value, Ttl::Clear)?;
    match old {
        Some(v) => ctx.out.bulk(&v),
        None => ctx.out.null(),
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    match lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)? {
        Some(slot) => {
            ctx.out.bulk(g.string(slot));
            g.remove(slot);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn getex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut ttl = Ttl::Keep;
    let mut i = 2;
    while i < req.argc() {
        let opt = req.arg(i);
        let has_next = i + 1 < req.argc();
        if ttl != Ttl::Keep {
            return Err(CmdError::Syntax);
        }
        if is(opt, "PERSIST") {
            ttl = Ttl::Clear;
        } else if has_next && (is(opt, "EX") || is(opt, "PX") || is(opt, "EXAT") || is(opt, "PXAT")) {
            let unit = if is(opt, "EX") || is(opt, "EXAT") { 1000 } else { 1 };
            let absolute = is(opt, "EXAT") || is(opt, "PXAT");
            ttl = Ttl::At(parse_expiry(req.arg(i + 1), unit, absolute, ctx.now_ms, "getex")?);
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)? else {
        ctx.out.null();
        return Ok(());
    };
    ctx.out.bulk(g.string(slot));
    match ttl {
        Ttl::Keep => {}
        Ttl::Clear => g.set_expire(slot, None),
        Ttl::At(at) if at <= ctx.now_ms => {
            g.remove(slot);
        }
        Ttl::At(at) => g.set_expire(slot, Some(at)),
    }
    Ok(())
}

fn append(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, suffix) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)?;
    let new_len = match existing {
        Some(slot) => {
            let len = g.string(slot).len() + suffix.len();
            check_string_size(ctx.shared, len)?;
            g.reserve(suffix.len(), slot)?;
            g.append_to_string(slot, suffix);
            len
        }
        None => {
            store_string(&mut g, h, key, None, suffix, Ttl::Clear)?;
            suffix.len()
        }
    };
    ctx.out.integer(new_len as i64);
    Ok(())
}

fn check_string_size(shared: &crate::server::Shared, len: usize) -> CmdResult {
    if len > shared.config.limits.max_bulk_len {
        return Err(CmdError::TooLarge);
    }
    Ok(())
}

fn strlen(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let len = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)?.map_or(0, |slot| g.string(slot).len());
    ctx.out.integer(len as i64);
    Ok(())
}

fn getrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let start = parse_i64(req.arg(2))?;
    let end = parse_i64(req.arg(3))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)? else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let value = g.string(slot);
    let len = value.len() as i64;
    // Redis: negative indexes count from the end; start > end (both negative) is empty.
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    if len == 0 || start > end {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&value[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let offset = parse_i64(req.arg(2))?;
    if offset < 0 {
        return Err(CmdError::Other("ERR offset is out of range".into()));
    }
    let patch = req.arg(3);
    let offset = offset as usize;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)?;
    let old_len = existing.map_or(0, |slot| g.string(slot).len());
    if patch.is_empty() {
        // Redis does not create a key for an empty patch.
        ctx.out.integer(old_len as i64);
        return Ok(());
    }
    let new_len = old_len.max(offset + patch.len());
    if new_len > ctx.shared.config.limits.max_bulk_len {
        return Err(CmdError::TooLarge);
    }
    let slot = match existing {
        Some(slot) => {
            g.reserve(new_len - old_len, slot)?;
            slot
        }
        None => store_string(&mut g, h, key, None, &[], Ttl::Clear)?,
    };
    if existing.is_none() {
        g.reserve(new_len, slot)?;
    }
    let bytes = g.string_mut(slot, new_len);
    bytes[offset..offset + patch.len()].copy_from_slice(patch);
    ctx.out.integer(new_len as i64);
    Ok(())
}

fn incr_by(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> CmdResult {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)?;
    let current = match existing {
        Some(slot) => parse_i64(g.string(slot))?,
        None => 0,
    };
    let next = current
        .checked_add(delta)
        .ok_or_else(|| CmdError::Other("ERR increment or decrement would overflow".into()))?;
    let mut text = itoa::Buffer::new();
    store_string(&mut g, h, key, existing, text.format(next).as_bytes(), Ttl::Keep)?;
    ctx.out.integer(next);
    Ok(())
}

fn incr(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    incr_by(ctx, req.arg(1), 1)
}

fn decr(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    incr_by(ctx, req.arg(1), -1)
}

fn incrby(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let delta = parse_i64(req.arg(2))?;
    incr_by(ctx, req.arg(1), delta)
}

fn decrby(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let delta = parse_i64(req.arg(2))?;
    let delta = delta.checked_neg().ok_or_else(|| CmdError::Other("ERR decrement would overflow".into()))?;
    incr_by(ctx, req.arg(1), delta)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let delta = parse_f64(req.arg(2))?;
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms)?;
    let current = match existing {
        Some(slot) => parse_f64(g.string(slot))?,
        None => 0.0,
    };
    let next = current + delta;
    if !next.is_finite() {
        return Err(CmdError::Other("ERR increment would produce NaN or Infinity".into()));
    }
    let text = format_double(next);
    store_string(&mut g, h, key, existing, text.as_bytes(), Ttl::Keep)?;
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

fn mget(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ctx.out.array_len(req.argc() - 1);
    for key in req.args_from(1) {
        let h = ctx.db.hash(key);
        let mut g = ctx.db.stripe(h)?;
        match lookup_typed(&mut g, h, key, Kind::String, ctx.now_ms) {
            Ok(Some(slot)) => ctx.out.bulk(g.string(slot)),
            // MGET answers nil for keys of other types rather than failing.
            Ok(None) | Err(_) => ctx.out.null(),
        }
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    mset_generic(ctx, req, false)
}

fn msetnx(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    mset_generic(ctx, req, true)
}

/// MSET and MSETNX: every key's stripe is held for the whole command, so the write is atomic as in Redis.
fn mset_generic(ctx: &mut Ctx<'_>, req: &Request, only_if_none_exist: bool) -> CmdResult {
    if req.argc().is_multiple_of(2) {
        return Err(CmdError::WrongArity(if only_if_none_exist { "msetnx" } else { "mset" }.into()));
    }
    if only_if_none_exist {
        for i in (1..req.argc()).step_by(2) {
            let h = ctx.db.hash(req.arg(i));
            if ctx.db.stripe(h)?.lookup(h, req.arg(i), ctx.now_ms).is_some() {
                ctx.out.integer(0);
                return Ok(());
            }
        }
    }
    for i in (1..req.argc()).step_by(2) {
        let key = req.arg(i);
        let h = ctx.db.hash(key);
        let mut g = ctx.db.stripe(h)?;
        let existing = g.lookup(h, key, ctx.now_ms);
        store_string(&mut g, h, key, existing, req.arg(i + 1), Ttl::Clear)?;
    }
    if only_if_none_exist {
        ctx.out.integer(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// The value of the string at `key` for LCS: empty when missing, an error when of another type.
fn lcs_input(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<u8>, CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    match g.lookup(h, key, ctx.now_ms) {
        Some(slot) if g.kind(slot) != Kind::String => {
            Err(CmdError::Other("ERR The specified keys must contain string values".into()))
        }
        Some(slot) => Ok(g.string(slot).to_vec()),
        None => Ok(Vec::new()),
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest common subsequence, by Redis's
/// dynamic programming table (whose size is limited by `--proto-max-bulk-len`, as in Redis), with its
/// matches walked back the way Redis walks them.
fn lcs(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let a = lcs_input(ctx, req.arg(1))?;
    let b = lcs_input(ctx, req.arg(2))?;
    let (mut get_len, mut get_idx, mut with_match_len, mut min_match_len) = (false, false, false, 0i64);
    let mut j = 3;
    while j < req.argc() {
        let opt = req.arg(j);
        if is(opt, "IDX") {
            get_idx = true;
        } else if is(opt, "LEN") {
            get_len = true;
        } else if is(opt, "WITHMATCHLEN") {
            with_match_len = true;
        } else if is(opt, "MINMATCHLEN") && j + 1 < req.argc() {
            min_match_len = parse_i64(req.arg(j + 1))?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if get_idx && get_len {
        return Err(CmdError::Other("ERR If you want both the length and indexes, please just use IDX.".into()));
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(CmdError::Other("ERR String too long for LCS".into()));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells.saturating_mul(4) > ctx.shared.config.limits.max_bulk_len as u64 {
        return Err(CmdError::Other(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
        ));
    }
    let width = blen + 1;
    let mut table = vec![0u32; cells as usize];
    for i in 1..=alen {
        for jj in 1..=blen {
            table[i * width + jj] = if a[i - 1] == b[jj - 1] {
                table[(i - 1) * width + jj - 1] + 1
            } else {
                table[(i - 1) * width + jj].max(table[i * width + jj - 1])
            };
        }
    }
    let total = table[alen * width + blen] as usize;
    if get_len {
        ctx.out.integer(total as i64);
        return Ok(());
    }
    let mut result = vec![0u8; total];
    let mut idx = total;
    // Ranges found walking back: ([a_start, a_end], [b_start, b_end], length).
    type Match = ((usize, usize), (usize, usize), usize);
    let mut ranges: Vec<Match> = Vec::new();
    let (mut i, mut jj) = (alen, blen);
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, jj - 1, jj - 1);
            } else if a_start == i && b_start == jj {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if table[(i - 1) * width + jj] > table[i * width + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = a_end.wrapping_sub(a_start).wrapping_add(1);
            if min_match_len == 0 || match_len as i64 >= min_match_len {
                ranges.push(((a_start, a_end), (b_start, b_end), match_len));
            }
            a_start = alen;
        }
    }
    if !get_idx {
        ctx.out.bulk(&result);
        return Ok(());
    }
    let out = &mut *ctx.out;
    out.map_len(2);
    out.bulk(b"matches");
    out.array_len(ranges.len());
    for ((a0, a1), (b0, b1), len) in ranges {
        out.array_len(if with_match_len { 3 } else { 2 });
        out.array_len(2);
        out.integer(a0 as i64);
        out.integer(a1 as i64);
        out.array_len(2);
        out.integer(b0 as i64);
        out.integer(b1 as i64);
        if with_match_len {
            out.integer(len as i64);
        }
    }
    out.bulk(b"len");
    out.integer(total as i64);
    Ok(())
}
