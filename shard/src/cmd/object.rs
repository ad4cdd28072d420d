//! OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT | HELP.
//!
//! A shard stores each type in one structure of its own, so ENCODING names what redis-server 7.0 (default
//! configuration) would use for the same content: `int`/`embstr`/`raw` strings, `quicklist` lists,
//! `intset`/`hashtable` sets, `listpack`/`hashtable` hashes, `listpack`/`skiplist` sorted sets, by Redis's
//! default thresholds. Redis never converts a value back to its compact encoding once it grew past them,
//! and an APPEND or SETRANGE makes a short string `raw`; a shard answers from the content alone.
//! REFCOUNT is 1, or Redis's shared-integer count for the integers 0..9999 it shares. IDLETIME (seconds,
//! under an LRU policy) and FREQ (Redis's LFU counter, under an LFU policy) read the key's access word
//! without touching it, and answer Redis's errors under the other kind of policy.

use ringcache_common::resp::{ReplyWriter, Request};

use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{Collection, Kind};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "object" => object,
        _ => return None,
    })
}

/// Redis 7.0's default `hash-max-listpack-entries` / `zset-max-listpack-entries`.
const MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis 7.0's default `hash-max-listpack-value` / `zset-max-listpack-value`.
const MAX_LISTPACK_VALUE: usize = 64;
/// Redis 7.0's default `set-max-intset-entries`.
const MAX_INTSET_ENTRIES: usize = 512;
/// Redis's `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
const EMBSTR_MAX: usize = 44;
/// Redis's `OBJ_SHARED_INTEGERS`: integers below it share one object.
const SHARED_INTEGERS: i64 = 10_000;
/// Redis's `OBJ_SHARED_REFCOUNT`.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

const OBJECT_HELP: [&str; 15] = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Redis's reply to OBJECT FREQ under an LRU policy.
const NO_LFU: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that \
                      when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis's reply to OBJECT IDLETIME under an LFU policy.
const NO_LRU: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when \
                      switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn object(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    if is(sub, "HELP") && req.argc() == 2 {
        ctx.out.array_len(OBJECT_HELP.len());
        for line in OBJECT_HELP {
            ctx.out.simple(line);
        }
        return Ok(());
    }
    let known = ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"].iter().any(|s| is(sub, s));
    if !known || req.argc() != 3 {
        return Err(CmdError::UnknownSubcommand {
            cmd: "OBJECT".into(),
            sub: String::from_utf8_lossy(sub).into_owned(),
        });
    }
    let key = req.arg(2);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    // Redis looks the key up without touching it (LOOKUP_NOTOUCH), expiring it if its TTL passed.
    g.remove_if_expired(h, key, ctx.now_ms);
    let Some(slot) = g.find_live(h, key, ctx.now_ms) else {
        ctx.out.null();
        return Ok(());
    };
    if is(sub, "ENCODING") {
        let name = match g.kind(slot) {
            Kind::String => string_encoding(g.string(slot)),
            _ => collection_encoding(g.collection(slot)),
        };
        ctx.out.bulk(name.as_bytes());
    } else if is(sub, "REFCOUNT") {
        let shared = g.kind(slot) == Kind::String
            && g.string(slot).len() <= 20
            && parse_i64(g.string(slot)).is_ok_and(|n| (0..SHARED_INTEGERS).contains(&n));
        ctx.out.integer(if shared { SHARED_REFCOUNT } else { 1 });
    } else if is(sub, "IDLETIME") {
        if ctx.store.eviction_policy().is_lfu() {
            return Err(CmdError::Other(NO_LRU.into()));
        }
        ctx.out.integer(g.idle_seconds(slot, ctx.now_ms) as i64);
    } else {
        if !ctx.store.eviction_policy().is_lfu() {
            return Err(CmdError::Other(NO_LFU.into()));
        }
        ctx.out.integer(i64::from(g.lfu_frequency(slot, ctx.now_ms)));
    }
    Ok(())
}

fn string_encoding(value: &[u8]) -> &'static str {
    if value.len() <= 20 && parse_i64(value).is_ok() {
        "int"
    } else if value.len() <= EMBSTR_MAX {
        "embstr"
    } else {
        "raw"
    }
}

fn collection_encoding(value: &Collection) -> &'static str {
    let small = |n: usize, mut lens: Box<dyn Iterator<Item = usize> + '_>| {
        n <= MAX_LISTPACK_ENTRIES && lens.all(|l| l <= MAX_LISTPACK_VALUE)
    };
    match value {
        Collection::List(_) => "quicklist",
        Collection::Set(s) => {
            if s.len() <= MAX_INTSET_ENTRIES && s.iter().all(|m| m.len() <= 20 && parse_i64(m).is_ok()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Collection::Hash(h) => {
            if small(h.len(), Box::new(h.iter().flat_map(|(f, v)| [f.len(), v.len()]))) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Collection::ZSet(z) => {
            if small(z.len(), Box::new(z.iter().map(|(m, _)| m.len()))) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}
