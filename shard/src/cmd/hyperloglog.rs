//! HyperLogLog commands: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST.
//!
//! A HyperLogLog is a string value in Redis's own format (`ringcache_common::hll`), so GET, DUMP and the
//! proxy's cross-shard PFCOUNT read it as redis-server would. Commands copy the value out, change it, and
//! store it back (at most 12 KiB).

use ringcache_common::hll;
use ringcache_common::resp::{ReplyWriter, Request};

use super::strings::{store_string, Ttl};
use super::{is, CmdError, CmdResult, Ctx, Handler};
use crate::store::Kind;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "pfadd" => pfadd,
        "pfcount" => pfcount,
        "pfmerge" => pfmerge,
        "pfdebug" => pfdebug,
        "pfselftest" => pfselftest,
        _ => return None,
    })
}

fn corrupt(_: hll::Corrupt) -> CmdError {
    CmdError::Other(hll::INVALID_OBJECT.into())
}

/// The HyperLogLog at `key`: `None` when missing; `WRONGTYPE` for another type or a string that is not a
/// HyperLogLog.
fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = g.lookup(h, key, ctx.now_ms) else { return Ok(None) };
    if g.kind(slot) != Kind::String {
        return Err(CmdError::WrongType);
    }
    let value = g.string(slot);
    if !hll::is_hll(value) {
        return Err(CmdError::Other(hll::NOT_HLL.into()));
    }
    Ok(Some(value.to_vec()))
}

/// Stores a HyperLogLog back under `key`, keeping its TTL.
fn write(ctx: &mut Ctx<'_>, key: &[u8], value: &[u8]) -> CmdResult {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = g.lookup(h, key, ctx.now_ms);
    store_string(&mut g, h, key, existing, value, Ttl::Keep)?;
    Ok(())
}

fn pfadd(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let (mut value, mut updated) = match read(ctx, key)? {
        Some(v) => (v, false),
        None => (hll::new_sparse(), true),
    };
    for element in req.args_from(2) {
        updated |= hll::add(&mut value, element).map_err(corrupt)?;
    }
    if updated {
        hll::invalidate_cache(&mut value);
        write(ctx, key, &value)?;
    }
    ctx.out.integer(i64::from(updated));
    Ok(())
}

fn pfcount(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if req.argc() > 2 {
        // The union of several: merged registers, no cache.
        let mut registers = hll::Registers::default();
        for key in req.args_from(1) {
            if let Some(value) = read(ctx, key)? {
                registers.merge_from(&value).map_err(corrupt)?;
            }
        }
        ctx.out.integer(registers.count() as i64);
        return Ok(());
    }
    let key = req.arg(1);
    let Some(mut value) = read(ctx, key)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let count = match hll::cached_count(&value) {
        Some(c) => c,
        None => {
            let c = hll::count(&value).map_err(corrupt)?;
            // As in Redis, the computed count is cached in the value.
            hll::set_cached_count(&mut value, c);
            write(ctx, key, &value)?;
            c
        }
    };
    ctx.out.integer(count as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut registers = hll::Registers::default();
    let mut use_dense = false;
    // The destination's own registers take part, as in Redis.
    for key in req.args_from(1) {
        if let Some(value) = read(ctx, key)? {
            use_dense |= value[4] == 0;
            registers.merge_from(&value).map_err(corrupt)?;
        }
    }
    let dest = req.arg(1);
    let mut value = read(ctx, dest)?.unwrap_or_else(hll::new_sparse);
    if use_dense {
        hll::to_dense(&mut value).map_err(corrupt)?;
    }
    for i in 0..hll::REGISTERS {
        let r = registers.get(i);
        if r > 0 {
            hll::set_register(&mut value, i, r).map_err(corrupt)?;
        }
    }
    hll::invalidate_cache(&mut value);
    write(ctx, dest, &value)?;
    ctx.out.ok();
    Ok(())
}

/// PFDEBUG GETREG | DECODE | ENCODING | TODENSE key, as Redis answers them.
fn pfdebug(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (sub, key) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    if ctx.db.stripe(h)?.lookup(h, key, ctx.now_ms).is_none() {
        return Err(CmdError::Other("ERR The specified key does not exist".into()));
    }
    let Some(mut value) = read(ctx, key)? else { return Err(CmdError::NoSuchKey) };
    if is(sub, "GETREG") {
        if value[4] != 0 {
            hll::to_dense(&mut value).map_err(corrupt)?;
            write(ctx, key, &value)?;
        }
        let mut registers = hll::Registers::default();
        registers.merge_from(&value).map_err(corrupt)?;
        ctx.out.array_len(hll::REGISTERS);
        for i in 0..hll::REGISTERS {
            ctx.out.integer(i64::from(registers.get(i)));
        }
    } else if is(sub, "DECODE") {
        if value[4] == 0 {
            return Err(CmdError::Other("ERR HLL encoding is not sparse".into()));
        }
        let text = hll::decode_sparse(&value).map_err(corrupt)?;
        ctx.out.bulk(text.as_bytes());
    } else if is(sub, "ENCODING") {
        ctx.out.simple(if value[4] == 0 { "dense" } else { "sparse" });
    } else if is(sub, "TODENSE") {
        let converted = value[4] != 0;
        if converted {
            hll::to_dense(&mut value).map_err(corrupt)?;
            write(ctx, key, &value)?;
        }
        ctx.out.integer(i64::from(converted));
    } else {
        return Err(CmdError::Other(format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub))));
    }
    Ok(())
}

/// PFSELFTEST: checks that registers read back what was written and that estimates stay within their error
/// on both encodings.
fn pfselftest(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    let mut sparse = hll::new_sparse();
    let mut dense = hll::new_sparse();
    hll::to_dense(&mut dense).map_err(corrupt)?;
    for i in 0..5000u32 {
        let e = i.to_le_bytes();
        hll::add(&mut sparse, &e).map_err(corrupt)?;
        hll::add(&mut dense, &e).map_err(corrupt)?;
    }
    let (a, b) = (hll::count(&sparse).map_err(corrupt)?, hll::count(&dense).map_err(corrupt)?);
    if a != b || a.abs_diff(5000) > 5000 * 5 / 100 {
        return Err(CmdError::Other(format!("ERR TESTFAILED estimates {a} and {b} for 5000 elements")));
    }
    ctx.out.ok();
    Ok(())
}
