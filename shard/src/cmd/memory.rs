//! MEMORY USAGE | STATS | DOCTOR | MALLOC-STATS | PURGE | HELP, in Redis 7.0's reply shapes.
//!
//! The numbers are the shard's own accounting, the same the `maxmemory` budget is kept by: a key costs
//! what it is charged (its key and value bytes and a fixed per-entry overhead), so MEMORY USAGE is exact for
//! the budget (it takes no samples: SAMPLES is accepted and checked as Redis does, and ignored). MEMORY STATS
//! has every field Redis prints, with the ones that have no meaning here (replication, cluster links,
//! functions) at 0 and the allocator's fields taken from the budget and the process's RSS.

use std::sync::atomic::Ordering::Relaxed;

use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use super::{is, CmdError, CmdResult, Ctx, Handler};
use crate::store::ENTRY_OVERHEAD_BYTES;

pub(super) fn handler(name: &str) -> Option<Handler> {
    match name {
        "memory" => Some(memory),
        _ => None,
    }
}

const HELP: [&str; 13] = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
];

fn memory(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    let argc = req.argc();
    if is(sub, "USAGE") && argc >= 3 {
        usage(ctx, req)
    } else if is(sub, "STATS") && argc == 2 {
        stats(ctx)
    } else if is(sub, "DOCTOR") && argc == 2 {
        let text = doctor(ctx)?;
        ctx.out.verbatim(text.as_bytes());
        Ok(())
    } else if is(sub, "MALLOC-STATS") && argc == 2 {
        // As redis-server built without jemalloc answers.
        ctx.out.verbatim(b"Stats not supported for the current allocator");
        Ok(())
    } else if is(sub, "PURGE") && argc == 2 {
        ctx.out.simple("OK");
        Ok(())
    } else if is(sub, "HELP") && argc == 2 {
        ctx.out.array_len(HELP.len() + 1);
        for line in HELP {
            ctx.out.simple(line);
        }
        ctx.out.simple("    Prints this help.");
        Ok(())
    } else {
        Err(CmdError::UnknownSubcommand { cmd: "MEMORY".into(), sub: String::from_utf8_lossy(sub).into_owned() })
    }
}

/// `MEMORY USAGE key [SAMPLES count]`: what the key is charged against `maxmemory`, or null.
fn usage(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut i = 3;
    while i < req.argc() {
        if is(req.arg(i), "SAMPLES") && i + 1 < req.argc() {
            let samples = super::parse_i64(req.arg(i + 1))?;
            if samples < 0 {
                return Err(CmdError::Syntax);
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let key = req.arg(2);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    match g.lookup(h, key, ctx.now_ms) {
        Some(slot) => ctx.out.integer(g.cost(slot) as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

/// The figures MEMORY STATS and DOCTOR are made of.
struct Figures {
    used: usize,
    peak: usize,
    rss: usize,
    keys: usize,
    keys_with_expiry: usize,
    aof_buffer: usize,
}

fn figures(ctx: &mut Ctx<'_>) -> Result<Figures, CmdError> {
    let stats = ctx.db.stats()?;
    let used = ctx.store.used_bytes();
    let peak = super::server::MEMORY_PEAK.fetch_max(used, Relaxed).max(used);
    Ok(Figures {
        used,
        peak,
        rss: super::rss_bytes(),
        keys: stats.keys,
        keys_with_expiry: stats.keys_with_expiry,
        aof_buffer: ctx.shared.persistence.aof.as_ref().map_or(0, |a| a.buffer_bytes() as usize),
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// `MEMORY STATS`: Redis 7.0's fields in its order (a map in RESP3, ratios as doubles).
fn stats(ctx: &mut Ctx<'_>) -> CmdResult {
    let f = figures(ctx)?;
    let main = f.keys * ENTRY_OVERHEAD_BYTES;
    // Redis's expires dictionary entry: a key pointer and an expiry.
    let expires = f.keys_with_expiry * 16;
    let overhead = main + expires + f.aof_buffer;
    let dataset = f.used.saturating_sub(overhead);
    let out = &mut *ctx.out;
    out.map_len(if f.keys > 0 { 28 } else { 27 });
    let int = |out: &mut ReplyBuf, name: &str, v: usize| {
        out.bulk(name.as_bytes());
        out.integer(v as i64);
    };
    let double = |out: &mut ReplyBuf, name: &str, v: f64| {
        out.bulk(name.as_bytes());
        out.double(v);
    };
    int(out, "peak.allocated", f.peak);
    int(out, "total.allocated", f.used);
    int(out, "startup.allocated", 0);
    int(out, "replication.backlog", 0);
    int(out, "clients.slaves", 0);
    int(out, "clients.normal", 0);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", f.aof_buffer);
    int(out, "lua.caches", 0);
    int(out, "functions.caches", 0);
    if f.keys > 0 {
        out.bulk(b"db.0");
        out.map_len(3);
        int(out, "overhead.hashtable.main", main);
        int(out, "overhead.hashtable.expires", expires);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", overhead);
    int(out, "keys.count", f.keys);
    int(out, "keys.bytes-per-key", f.used.checked_div(f.keys).unwrap_or(0));
    int(out, "dataset.bytes", dataset);
    double(out, "dataset.percentage", ratio(dataset, f.used) * 100.0);
    double(out, "peak.percentage", ratio(f.used, f.peak) * 100.0);
    int(out, "allocator.allocated", f.used);
    int(out, "allocator.active", f.used);
    int(out, "allocator.resident", f.rss);
    double(out, "allocator-fragmentation.ratio", 1.0);
    int(out, "allocator-fragmentation.bytes", 0);
    double(out, "allocator-rss.ratio", ratio(f.rss, f.used));
    int(out, "allocator-rss.bytes", f.rss.saturating_sub(f.used));
    double(out, "rss-overhead.ratio", 1.0);
    int(out, "rss-overhead.bytes", 0);
    double(out, "fragmentation", ratio(f.rss, f.used));
    int(out, "fragmentation.bytes", f.rss.saturating_sub(f.used));
    Ok(())
}

/// `MEMORY DOCTOR`: Redis's report, with the checks that apply to a shard.
fn doctor(ctx: &mut Ctx<'_>) -> Result<String, CmdError> {
    let f = figures(ctx)?;
    if f.used < 5 << 20 {
        return Ok("Hi Sam, this instance is empty or is using very little memory, my issues detector can't be \
                   used in these conditions. Please, leave for your mission on Earth and fill it with some data. \
                   The new Sam and I will be back to our programming as soon as I finished rebooting."
            .into());
    }
    let mut issues = Vec::new();
    if f.peak as f64 / f.used as f64 > 1.5 {
        issues.push(
            " * Peak memory: In the past this instance used more than 150% the memory that is currently using. \
             The allocator is normally not able to release memory after a peak, so you can expect to see a big \
             fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if \
             the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be \
             used as soon as you fill the Redis instance with more data. If the memory peak was only occasional \
             and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only \
             other option is to shutdown and restart the instance.",
        );
    }
    if f.rss as f64 / f.used as f64 > 1.4 {
        issues.push(
            " * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this \
             means that the Resident Set Size of the Redis process is much larger than the sum of the logical \
             allocations Redis performed). This problem is usually due either to a large peak memory (check if \
             there is a peak memory entry above in the report) or may result from a workload that causes the \
             allocator to fragment memory a lot.",
        );
    }
    if issues.is_empty() {
        return Ok("Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on \
                   this base."
            .into());
    }
    Ok(format!(
        "Sam, I detected a few issues in this Redis instance memory implants:\n\n{}\n\nI'm here to keep you safe, \
         Sam. I want to help you.\n",
        issues.join("\n\n")
    ))
}
