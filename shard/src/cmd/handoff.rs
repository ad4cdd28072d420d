//! `RINGCACHE`: the shard-to-shard operations ringcache-proxy uses for hinted handoff (see [`crate::handoff`]).
//!
//! - `RINGCACHE HINTED <shard>[,<shard>...] <command> [arg ...]`: runs a command while standing in for absent
//!   shards; a write's keys are recorded for them, and a write gets `-TRYAGAIN` once their handoff has begun.
//!   Hinted commands pass the guard of a joining shard's ranges.
//! - `RINGCACHE HANDOFF OPEN <shard>`: start accepting hinted writes for `shard`.
//! - `RINGCACHE HANDOFF CLOSE <shard>`: stop accepting them; replies `[keys, flush]`.
//! - `RINGCACHE HANDOFF REWIND <shard>`: a handoff starts again: keys an unfinished attempt copied are
//!   copied again.
//! - `RINGCACHE HANDOFF PRECOPY <shard> <count>`: while still open, hands over up to `count` pending keys
//!   (a key written again is pending again): `[still-pending, [key, record-or-nil, ...]]`.
//! - `RINGCACHE HANDOFF TAKE <shard> <cursor> <count>`: `[next-cursor, [key, record-or-nil, ...]]`.
//! - `RINGCACHE HANDOFF FINISH <shard>`: the shard has the keys now; delete them here. Replies the count.
//! - `RINGCACHE HANDOFF LIST`: `[[shard, open, keys, flush], ...]`.
//! - `RINGCACHE HANDOFF SEED <shard> <key-hash> <after> <up-to> [...]`: `shard` joins the ring and owns those
//!   arcs: the keys here in them become its hints, and plain writes there are refused from now on.
//! - `RINGCACHE HANDOFF ACCEPT <shard> <record> [...]`: keys of a draining `shard`, taken as hints for it
//!   unless a newer version is here. Replies the count taken.
//! - `RINGCACHE HANDOFF ACCEPT-DELTA <shard> <key> <record-or-empty> [...]`: the second pass of a drain;
//!   replaces what is here unless a hinted write here is newer.
//! - `RINGCACHE HANDOFF DIRTY <cursor> <count>`: on a draining shard, the keys written while it was leaving:
//!   `[next-cursor, [key, record-or-nil, ...]]`.
//! - `RINGCACHE HANDOFF FORGET <shard>`: `shard` left the ring; drop its hints and guard.
//! - `RINGCACHE HANDOFF DUMP <cursor> <count> [<key-hash> <after> <up-to> ...]`: `[next-cursor, [key, record,
//!   ...]]` over every key here, or those in the arcs given (a restarted shard's copies hand it its keys).
//! - `RINGCACHE MEMBER [JOINED|LEAVING|DRAINING|DRAINED]`: this shard's membership state, or set it.
//! - `RINGCACHE MEMBER LOCK <token> <lease-ms>` / `UNLOCK <token>`: one proxy at a time hands keys to this
//!   shard (`-TRYAGAIN` while another token's lease runs).
//! - `RINGCACHE RESTORE <record> [<record> ...]`: replace keys with records from TAKE. Replies the count.

use std::time::Instant;

use ringcache_common::command;
use ringcache_common::metrics::{self, HotCounter};
use ringcache_common::resp::{ReplyWriter, Request};

use ringcache_common::hash::Placement;

use super::{is, CmdError, CmdResult, Ctx, Deferred, Handler};
use crate::server::Membership;
use crate::snapshot::format::{encode_collection, encode_string};
use crate::snapshot::transfer;
use crate::store::Kind;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "ringcache" => ringcache,
        _ => return None,
    })
}

fn ringcache(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    if is(sub, "HINTED") {
        hinted(ctx, req)
    } else if is(sub, "HANDOFF") {
        handoff(ctx, req)
    } else if is(sub, "RESTORE") {
        restore(ctx, req)
    } else if is(sub, "MEMBER") {
        member(ctx, req)
    } else {
        Err(CmdError::UnknownSubcommand { cmd: "RINGCACHE".into(), sub: String::from_utf8_lossy(sub).into_owned() })
    }
}

fn arity(req: &Request, ok: bool) -> CmdResult {
    if ok {
        Ok(())
    } else {
        Err(CmdError::Other(format!(
            "ERR wrong number of arguments for 'ringcache|{}' command",
            String::from_utf8_lossy(req.arg(1)).to_lowercase()
        )))
    }
}

fn target_names(arg: &[u8]) -> Result<Vec<&str>, CmdError> {
    let text = std::str::from_utf8(arg).map_err(|_| CmdError::Other("ERR shard names must be UTF-8".into()))?;
    let names: Vec<&str> = text.split(',').filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err(CmdError::Other("ERR RINGCACHE HINTED needs at least one shard name".into()));
    }
    Ok(names)
}

fn hinted(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    arity(req, req.argc() >= 4)?;
    let targets = target_names(req.arg(2))?;
    let inner = Request::from_args(req.args_from(3));
    let spec = command::lookup(inner.name());
    let flush = spec.is_some_and(|s| s.name == "flushall" || s.name == "flushdb");
    if !flush && !spec.is_some_and(|s| s.is_keyed() && s.name != "ringcache") {
        return Err(CmdError::Other("ERR RINGCACHE HINTED runs only commands with keys, or FLUSHALL".into()));
    }
    // A script may write whatever its flags say (its declared keys are what is recorded).
    let script = spec.is_some_and(|s| matches!(s.name, "eval" | "evalsha"));
    // A read changes nothing: it needs no hint, and may run even while the handoff is fenced (the value
    // here is the current one until the absent shard is readmitted).
    if !flush && !script && !spec.is_some_and(|s| s.is_write()) {
        super::execute_checked(ctx, spec, &inner, Instant::now(), false);
        return Ok(());
    }
    let shared = ctx.shared;
    let mut guard = shared.handoffs.begin_hinted(&targets).map_err(|e| CmdError::Other(e.to_string()))?;
    let reply_at = ctx.out.len();
    super::execute_checked(ctx, spec, &inner, Instant::now(), false);
    // A failed command changed nothing, so there is nothing to hand back; a failed script may have written
    // before it failed (scripts are not rolled back), so its keys are recorded either way.
    if script || ctx.out.get(reply_at) != Some(&b'-') {
        if flush {
            guard.record_flush(&targets);
        } else if let Some(spec) = spec {
            let keys: Vec<&[u8]> = command::keys(spec, &inner).into_iter().map(|p| inner.arg(p)).collect();
            guard.record(&targets, keys.iter().copied());
        }
    }
    Ok(())
}

fn handoff(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    arity(req, req.argc() >= 3)?;
    let handoffs = &ctx.shared.handoffs;
    let op = req.arg(2);
    let target = || -> Result<&str, CmdError> {
        std::str::from_utf8(req.get(3).unwrap_or_default())
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CmdError::Other("ERR a shard name is required".into()))
    };
    if is(op, "OPEN") {
        arity(req, req.argc() == 4)?;
        handoffs.open(target()?);
        ctx.out.ok();
    } else if is(op, "CLOSE") {
        arity(req, req.argc() == 4)?;
        let closed = handoffs.close(target()?);
        ctx.out.array_len(2);
        ctx.out.integer(closed.keys as i64);
        ctx.out.integer(i64::from(closed.flush));
    } else if is(op, "REWIND") {
        arity(req, req.argc() == 4)?;
        handoffs.rewind(target()?);
        ctx.out.ok();
    } else if is(op, "PRECOPY") {
        arity(req, req.argc() == 5)?;
        let count = usize::try_from(super::parse_i64(req.arg(4))?).map_err(|_| CmdError::NotInteger)?;
        let (keys, pending) = handoffs.precopy(target()?, count.min(10_000));
        write_records(ctx, pending, &keys);
    } else if is(op, "TAKE") {
        arity(req, req.argc() == 6)?;
        let cursor = usize::try_from(super::parse_i64(req.arg(4))?).map_err(|_| CmdError::NotInteger)?;
        let count = usize::try_from(super::parse_i64(req.arg(5))?).map_err(|_| CmdError::NotInteger)?;
        let (keys, next) = handoffs.take(target()?, cursor, count.min(10_000));
        write_records(ctx, next, &keys);
    } else if is(op, "FINISH") {
        arity(req, req.argc() == 4)?;
        let keys = handoffs.finish(target()?);
        // Possibly many keys: deleted on a blocking thread, while this client alone waits for the reply.
        let (done, reply) = tokio::sync::oneshot::channel();
        let (store, now_ms) = (ctx.shared.store.clone(), ctx.now_ms);
        tokio::task::spawn_blocking(move || {
            for (i, key) in keys.iter().enumerate() {
                transfer::remove(&store, key, now_ms);
                if i % 512 == 511 {
                    crate::handoff::pace();
                }
            }
            metrics::add_hot(HotCounter::Writes, keys.len() as u64);
            let _ = done.send(Ok(keys.len() as i64));
        });
        *ctx.deferred = Some(Deferred::Integer(reply));
    } else if is(op, "SEED") {
        arity(req, req.argc() >= 7 && !req.argc().is_multiple_of(2))?;
        let (key_hash, arcs) = parse_arcs(req, 4)?;
        // It walks the whole keyspace: on a blocking thread, while this client alone waits for the reply.
        let (done, reply) = tokio::sync::oneshot::channel();
        let (handoffs, store, target, now_ms) =
            (ctx.shared.handoffs.clone(), ctx.shared.store.clone(), target()?.to_string(), ctx.now_ms);
        tokio::task::spawn_blocking(move || {
            let _ = done.send(Ok(handoffs.seed(&target, key_hash, &arcs, &store, now_ms) as i64));
        });
        *ctx.deferred = Some(Deferred::Integer(reply));
    } else if is(op, "ACCEPT") {
        arity(req, req.argc() >= 5)?;
        let taken = handoffs
            .accept(target()?, req.args_from(4), ctx.store, ctx.now_ms)
            .map_err(|e| CmdError::Other(e.to_string()))?;
        metrics::add_hot(HotCounter::Writes, taken as u64);
        ctx.out.integer(taken as i64);
    } else if is(op, "FORGET") {
        arity(req, req.argc() == 4)?;
        ctx.out.integer(i64::from(handoffs.forget(target()?)));
    } else if is(op, "DIRTY") {
        arity(req, req.argc() == 5)?;
        let cursor = usize::try_from(super::parse_i64(req.arg(3))?).map_err(|_| CmdError::NotInteger)?;
        let count = usize::try_from(super::parse_i64(req.arg(4))?).map_err(|_| CmdError::NotInteger)?;
        let (keys, next) = {
            let written = ctx.shared.written_while_leaving.lock();
            let from = cursor.min(written.frozen.len());
            let to = from.saturating_add(count.clamp(1, 10_000)).min(written.frozen.len());
            (written.frozen[from..to].to_vec(), if to >= written.frozen.len() { 0 } else { to })
        };
        write_records(ctx, next, &keys);
    } else if is(op, "ACCEPT-DELTA") {
        arity(req, req.argc() >= 6 && req.argc().is_multiple_of(2))?;
        let args: Vec<&[u8]> = req.args_from(4).collect();
        let applied = handoffs
            .accept_delta(target()?, args.chunks(2).map(|p| (p[0], p[1])), ctx.store, ctx.now_ms)
            .map_err(|e| CmdError::Other(e.to_string()))?;
        metrics::add_hot(HotCounter::Writes, applied as u64);
        ctx.out.integer(applied as i64);
    } else if is(op, "DUMP") {
        arity(req, req.argc() == 5 || (req.argc() >= 8 && req.argc().is_multiple_of(2)))?;
        dump(ctx, req)?;
    } else if is(op, "LIST") {
        arity(req, req.argc() == 3)?;
        let list = handoffs.list();
        ctx.out.array_len(list.len());
        for (name, open, keys, flush) in list {
            ctx.out.array_len(4);
            ctx.out.bulk(name.as_bytes());
            ctx.out.integer(i64::from(open));
            ctx.out.integer(keys as i64);
            ctx.out.integer(i64::from(flush));
        }
    } else {
        return Err(CmdError::UnknownSubcommand {
            cmd: "RINGCACHE HANDOFF".into(),
            sub: String::from_utf8_lossy(op).into_owned(),
        });
    }
    Ok(())
}

/// `[number, [key, record-or-nil, ...]]`: each key's current record here, nil for a key that is gone.
fn write_records(ctx: &mut Ctx<'_>, number: usize, keys: &[bytes::Bytes]) {
    ctx.out.array_len(2);
    ctx.out.integer(number as i64);
    ctx.out.array_len(keys.len() * 2);
    for key in keys {
        ctx.out.bulk(key);
        match transfer::dump(ctx.store, key, ctx.now_ms) {
            Some(record) => ctx.out.bulk(&record),
            None => ctx.out.null(),
        }
    }
}

/// `<key-hash> <after> <up-to> [<after> <up-to> ...]` from argument `from` on.
/// The key hash is a [`Placement`] token: the function's name, and `:` and the proxy's `--hash-tag` when it
/// is not `{}`.
fn parse_arcs(req: &Request, from: usize) -> Result<(Placement, Vec<(u32, u32)>), CmdError> {
    let key_hash = Placement::from_token(req.arg(from)).map_err(|_| CmdError::Other("ERR unknown key hash".into()))?;
    let mut arcs = Vec::with_capacity((req.argc() - from - 1) / 2);
    for pair in req.args_from(from + 1).collect::<Vec<_>>().chunks(2) {
        let bound = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|t| t.parse::<u32>().ok());
        match pair {
            [a, b] => match (bound(a), bound(b)) {
                (Some(after), Some(up_to)) => arcs.push((after, up_to)),
                _ => return Err(CmdError::Other("ERR ring bounds must be integers from 0 to 4294967295".into())),
            },
            _ => return Err(CmdError::Syntax),
        }
    }
    Ok((key_hash, arcs))
}

/// `HANDOFF DUMP <cursor> <count> [<key-hash> <after> <up-to> ...]`: `[next-cursor, [key, record, ...]]`
/// over every key (a SCAN cursor), or only those in the ring arcs given (`count` keys are looked at per
/// call, whether they match or not). The arcs are how a restarted shard's copies hand it their keys.
fn dump(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let cursor = std::str::from_utf8(req.arg(3))
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| CmdError::Other("ERR invalid cursor".into()))?;
    let count = usize::try_from(super::parse_i64(req.arg(4))?).map_err(|_| CmdError::NotInteger)?.clamp(1, 10_000);
    let filter = if req.argc() > 5 {
        let (key_hash, arcs) = parse_arcs(req, 5)?;
        Some((key_hash, ringcache_common::hash::ArcSet::new(&arcs)))
    } else {
        None
    };
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut visited = 0;
    let next_cursor = ctx.store.scan(cursor, ctx.now_ms, |s, at| {
        let key = s.key(at);
        visited += 1;
        if filter.as_ref().is_some_and(|(h, arcs)| !arcs.contains(h.ring_hash(key))) {
            return visited < count;
        }
        let mut record = Vec::new();
        let expire = s.expire_at(at);
        match s.kind(at) {
            Kind::String => encode_string(&mut record, key, s.string(at), expire),
            _ => encode_collection(&mut record, key, s.collection(at), expire),
        }
        records.push((key.to_vec(), record));
        visited < count
    });
    ctx.out.array_len(2);
    ctx.out.integer(next_cursor as i64);
    ctx.out.array_len(records.len() * 2);
    for (key, record) in &records {
        ctx.out.bulk(key);
        ctx.out.bulk(record);
    }
    Ok(())
}

/// `RINGCACHE MEMBER [JOINED|DRAINING|DRAINED]`: this shard's place in the ring's life (see
/// [`Membership`]), or set it.
fn member(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if req.get(2).is_some_and(|op| is(op, "LOCK")) {
        arity(req, req.argc() == 5)?;
        let token = String::from_utf8_lossy(req.arg(3));
        let lease_ms = u64::try_from(super::parse_i64(req.arg(4))?).map_err(|_| CmdError::NotInteger)?;
        if !ctx.shared.lock_handoff(&token, std::time::Duration::from_millis(lease_ms)) {
            return Err(CmdError::Other("TRYAGAIN another proxy is handing keys to this shard".into()));
        }
        ctx.out.ok();
        return Ok(());
    }
    if req.get(2).is_some_and(|op| is(op, "UNLOCK")) {
        arity(req, req.argc() == 4)?;
        ctx.shared.unlock_handoff(&String::from_utf8_lossy(req.arg(3)));
        ctx.out.ok();
        return Ok(());
    }
    arity(req, req.argc() <= 3)?;
    if let Some(state) = req.get(2) {
        if is(state, "JOINED") {
            ctx.shared.set_membership(Membership::Member);
        } else if is(state, "LEAVING") {
            ctx.shared.start_leaving();
        } else if is(state, "DRAINING") {
            ctx.shared.start_draining();
        } else if is(state, "DRAINED") {
            ctx.shared.set_membership(Membership::Drained);
        } else {
            return Err(CmdError::Syntax);
        }
        ctx.out.ok();
    } else {
        ctx.out.bulk(ctx.shared.membership().name().as_bytes());
    }
    Ok(())
}

fn restore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    arity(req, req.argc() >= 3)?;
    let mut restored = 0i64;
    for record in req.args_from(2) {
        transfer::restore(ctx.store, record, ctx.now_ms).map_err(|e| CmdError::Other(e.to_string()))?;
        restored += 1;
    }
    metrics::add_hot(HotCounter::Writes, restored as u64);
    ctx.out.integer(restored);
    Ok(())
}
