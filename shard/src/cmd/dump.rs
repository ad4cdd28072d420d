//! DUMP and RESTORE, with Redis's payload format (`crate::rdb`): a value dumped by redis-server 7 restores
//! here and one dumped here restores there.
//!
//! RESTORE's IDLETIME and FREQ are checked as Redis checks them and then ignored: a shard keeps its keys in
//! recency order without access times or frequencies.

use ringcache_common::resp::{ReplyWriter, Request};

use super::keys::{insert_value, Value};
use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::rdb;
use crate::store::Kind;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "dump" => dump,
        "restore" => restore,
        _ => return None,
    })
}

fn dump(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = g.lookup(h, key, ctx.now_ms) else {
        ctx.out.null();
        return Ok(());
    };
    let payload = match g.kind(slot) {
        Kind::String => rdb::dump_string(g.string(slot)),
        _ => rdb::dump_collection(g.collection(slot)),
    };
    ctx.out.bulk(&payload);
    Ok(())
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], checked in Redis's
/// order: options, an existing key (BUSYKEY), the TTL, the payload.
fn restore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idletime, mut freq) = (false, false);
    let mut i = 4;
    while i < req.argc() {
        let opt = req.arg(i);
        let more = i + 1 < req.argc();
        if is(opt, "REPLACE") {
            replace = true;
        } else if is(opt, "ABSTTL") {
            absttl = true;
        } else if is(opt, "IDLETIME") && more && !freq {
            if parse_i64(req.arg(i + 1))? < 0 {
                return Err(CmdError::Other("ERR Invalid IDLETIME value, must be >= 0".into()));
            }
            idletime = true;
            i += 1;
        } else if is(opt, "FREQ") && more && !idletime {
            if !(0..=255).contains(&parse_i64(req.arg(i + 1))?) {
                return Err(CmdError::Other("ERR Invalid FREQ value, must be >= 0 and <= 255".into()));
            }
            freq = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let existing = ctx.db.stripe(h)?.lookup(h, key, ctx.now_ms);
    if existing.is_some() && !replace {
        return Err(CmdError::Other("BUSYKEY Target key name already exists.".into()));
    }
    let ttl = parse_i64(req.arg(2))?;
    if ttl < 0 {
        return Err(CmdError::Other("ERR Invalid TTL value, must be >= 0".into()));
    }
    let value = rdb::load(req.arg(3)).map_err(|e| CmdError::Other(e.to_string()))?;
    if let Some(slot) = existing {
        ctx.db.stripe(h)?.remove(slot);
    }
    let expire_at_ms = match ttl {
        0 => None,
        t if absttl => Some(t),
        t => Some(t.saturating_add(ctx.now_ms as i64)),
    };
    // A deadline already past: the key is gone (the old one deleted), and the reply is still OK.
    if expire_at_ms.is_none_or(|at| at > ctx.now_ms as i64) {
        insert_value(ctx, key, Value::from(value), expire_at_ms.map(|at| at as u64))?;
    }
    ctx.out.ok();
    Ok(())
}
