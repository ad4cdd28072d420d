//! Server commands: INFO COMMAND WAIT SLOWLOG LATENCY (CONFIG is in `config.rs`).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use ringcache_common::command;
use ringcache_common::info::{human_bytes, Info, Sections};
use ringcache_common::metrics::{self, HotCounter};
use ringcache_common::resp::{ReplyWriter, Request};

use super::{CmdError, CmdResult, Ctx, Handler};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "info" => info,
        "command" => command,
        "wait" => wait,
        "slowlog" => slowlog,
        "latency" => latency,
        _ => return None,
    })
}

fn info(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sections = Sections::parse(req.args_from(1), &[]);
    let text = info_text(ctx, &sections)?;
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// The largest `used_memory` INFO has reported (Redis's `used_memory_peak`, sampled when INFO runs).
pub(super) static MEMORY_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Renders the INFO `sections`, in Redis's order and format (see `ringcache_common::info`).
fn info_text(ctx: &mut Ctx<'_>, sections: &Sections) -> Result<String, CmdError> {
    let shared = ctx.shared;
    // Through `ctx.db`, so that INFO inside a transaction or script uses the stripes already held.
    let stats = ctx.db.stats()?;
    let events = shared.events.stats();
    let mut info = Info::new();
    info.common_fields(shared.config.port, shared.started, shared.config.config_file.as_deref());
    info.set("server", "ringcache_version", env!("CARGO_PKG_VERSION"));

    info.set("clients", "connected_clients", shared.clients.len());
    info.set("clients", "maxclients", shared.config.maxclients);
    let (blocked, blocking_keys) = shared.blocking.stats();
    info.set("clients", "blocked_clients", blocked);
    info.set("clients", "tracking_clients", events.tracking_clients);
    info.set("clients", "pubsub_clients", shared.pubsub.subscribed_clients());
    info.set("clients", "watching_clients", events.watching_clients);
    info.set("clients", "total_watched_keys", events.watched_keys);
    info.set("clients", "total_blocking_keys", blocking_keys);

    let used = ctx.store.used_bytes();
    let peak = MEMORY_PEAK.fetch_max(used, Relaxed).max(used);
    let max = ctx.store.maxmemory_bytes();
    let rss = rss_bytes();
    info.set("memory", "used_memory", used);
    info.set("memory", "used_memory_human", human_bytes(used as u64));
    info.set("memory", "used_memory_rss", rss);
    info.set("memory", "used_memory_rss_human", human_bytes(rss as u64));
    info.set("memory", "used_memory_peak", peak);
    info.set("memory", "used_memory_peak_human", human_bytes(peak as u64));
    info.set("memory", "used_memory_peak_perc", format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64));
    info.set("memory", "used_memory_dataset", used);
    info.set("memory", "used_memory_dataset_perc", if used > 0 { "100.00%" } else { "0.00%" });
    info.set("memory", "number_of_cached_scripts", shared.scripting.cached_scripts());
    info.set("memory", "maxmemory", max);
    info.set("memory", "maxmemory_human", human_bytes(max as u64));
    info.set("memory", "maxmemory_policy", ctx.store.eviction_policy().name());
    info.set("memory", "mem_fragmentation_ratio", format!("{:.2}", rss as f64 / used.max(1) as f64));
    info.set("memory", "mem_fragmentation_bytes", rss as i64 - used as i64);
    info.set("memory", "mem_allocator", "mimalloc");

    if sections.contains("persistence") {
        persistence_fields(shared, &mut info);
    }

    info.set("stats", "total_connections_received", shared.total_connections());
    info.set("stats", "total_commands_processed", metrics::commands_total());
    info.set("stats", "rejected_connections", shared.rejected_connections());
    info.set("stats", "expired_keys", stats.expired_keys);
    info.set("stats", "evicted_keys", stats.evicted_keys);
    info.set("stats", "keyspace_hits", metrics::hot_total(HotCounter::KeyspaceHits));
    info.set("stats", "keyspace_misses", metrics::hot_total(HotCounter::KeyspaceMisses));
    let (channels, patterns, shard_channels) = shared.pubsub.counts();
    info.set("stats", "pubsub_channels", channels);
    info.set("stats", "pubsub_patterns", patterns);
    info.set("stats", "pubsubshard_channels", shard_channels);
    info.set("stats", "tracking_total_keys", events.tracked_keys);
    info.set("stats", "tracking_total_items", events.tracked_items);
    info.set("stats", "tracking_total_prefixes", events.tracked_prefixes);
    let handoff = shared.handoffs.stats();
    info.set("stats", "handoff_open_shards", handoff.open_targets);
    info.set("stats", "handoff_backlog_keys", handoff.backlog_keys);
    info.set("stats", "handoff_hinted_keys", handoff.hinted_keys_total);
    info.set("stats", "handoff_handed_off_keys", handoff.handed_off_keys_total);
    info.set("stats", "handoff_refused_writes", handoff.refused_writes_total);
    info.set("stats", "handoff_overflowed_keys", handoff.overflowed_keys_total);

    if stats.keys > 0 {
        info.set("keyspace", "db0", format!("keys={},expires={},avg_ttl=0", stats.keys, stats.keys_with_expiry));
    }
    Ok(info.render(sections))
}

fn persistence_fields(shared: &crate::server::Shared, info: &mut Info) {
    let p = &shared.persistence;
    let loading = p.is_loading();
    info.set("persistence", "loading", u8::from(loading));
    if loading {
        use std::sync::atomic::Ordering;
        let total = p.load_progress.total_bytes.load(Ordering::Relaxed);
        let loaded = p.load_progress.loaded_bytes.load(Ordering::Relaxed);
        info.set("persistence", "loading_total_bytes", total);
        info.set("persistence", "loading_loaded_bytes", loaded);
        let perc = if total == 0 { 0.0 } else { loaded as f64 * 100.0 / total as f64 };
        info.set("persistence", "loading_loaded_perc", format!("{perc:.2}"));
    }
    info.set("persistence", "rdb_changes_since_last_save", p.changes_since_last_save());
    info.set("persistence", "rdb_bgsave_in_progress", u8::from(p.in_progress()));
    info.set("persistence", "rdb_last_save_time", p.last_save_unix_secs());
    info.set("persistence", "rdb_last_bgsave_status", if p.last_status_ok() { "ok" } else { "err" });
    let (saves_ok, saves_failed) = p.saves();
    let last_secs = if saves_ok + saves_failed == 0 { -1 } else { (p.last_duration_ms() / 1000) as i64 };
    info.set("persistence", "rdb_last_bgsave_time_sec", last_secs);
    let current = if p.in_progress() { (p.current_duration_ms() / 1000) as i64 } else { -1 };
    info.set("persistence", "rdb_current_bgsave_time_sec", current);
    info.set("persistence", "rdb_saves", saves_ok);
    let load = p.last_load();
    info.set("persistence", "rdb_last_load_keys_expired", load.keys_expired);
    info.set("persistence", "rdb_last_load_keys_loaded", load.keys_loaded);
    let aof = p.aof.as_deref();
    info.set("persistence", "aof_enabled", u8::from(aof.is_some()));
    let rewriting = aof.is_some() && p.in_progress();
    info.set("persistence", "aof_rewrite_in_progress", u8::from(rewriting));
    info.set("persistence", "aof_rewrite_scheduled", 0);
    let rewrites = aof.map_or(0, |a| a.rewrites());
    info.set(
        "persistence",
        "aof_last_rewrite_time_sec",
        if rewrites == 0 { -1 } else { (p.last_duration_ms() / 1000) as i64 },
    );
    info.set(
        "persistence",
        "aof_current_rewrite_time_sec",
        if rewriting { (p.current_duration_ms() / 1000) as i64 } else { -1 },
    );
    info.set(
        "persistence",
        "aof_last_bgrewrite_status",
        if aof.is_none_or(|a| a.last_rewrite_ok()) { "ok" } else { "err" },
    );
    info.set("persistence", "aof_rewrites", rewrites);
    info.set("persistence", "aof_rewrites_consecutive_failures", aof.map_or(0, |a| a.rewrite_failures_in_a_row()));
    info.set("persistence", "aof_last_write_status", if aof.is_none_or(|a| a.write_ok()) { "ok" } else { "err" });
    info.set("persistence", "aof_last_cow_size", 0);
    info.set("persistence", "module_fork_in_progress", 0);
    info.set("persistence", "module_fork_last_cow_size", 0);
    if let Some(a) = aof {
        info.set("persistence", "aof_current_size", a.base_bytes() + a.incr_bytes());
        info.set("persistence", "aof_base_size", a.base_bytes());
        info.set("persistence", "aof_pending_rewrite", 0);
        info.set("persistence", "aof_buffer_length", a.buffer_bytes());
        info.set("persistence", "aof_pending_bio_fsync", 0);
        info.set("persistence", "aof_delayed_fsync", a.delayed_fsyncs());
        info.set("persistence", "aof_fsync", a.config.fsync.name());
        info.set("persistence", "aof_incr_files", a.listed().len());
        let replay = a.last_replay.lock().clone();
        info.set("persistence", "aof_last_load_frames", replay.frames);
        info.set("persistence", "aof_last_load_truncated", u8::from(replay.truncated.is_some()));
        info.set(
            "persistence",
            "aof_last_load_truncated_bytes",
            replay.truncated.as_ref().map_or(0, |t| t.bytes_dropped),
        );
    }
    info.set("persistence", "snapshot_dir", p.config.dir.display());
    info.set("persistence", "snapshot_interval_ms", p.config.interval.as_millis());
    info.set("persistence", "snapshot_failed", saves_failed);
    info.set("persistence", "snapshot_last_duration_ms", p.last_duration_ms());
    info.set("persistence", "snapshot_last_keys", p.last_keys());
    info.set("persistence", "snapshot_last_bytes", p.last_bytes());
    info.set("persistence", "snapshot_last_load_duration_ms", load.duration.as_millis());
    info.set("persistence", "snapshot_last_load_keys_too_large", load.keys_too_large);
}

fn slowlog(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ctx.shared.diagnostics.slowlog_command(req, ctx.out).map_err(CmdError::Other)
}

fn latency(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ctx.shared.diagnostics.latency_command(req, ctx.out, &metrics::command_histograms).map_err(CmdError::Other)
}

/// Resident set size of this process (0 where `/proc` does not tell).
pub fn rss_bytes() -> usize {
    ringcache_common::info::rss_bytes() as usize
}

fn command(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    command::reply_command(req, ctx.out).map_err(CmdError::Other)
}

/// WAIT numreplicas timeout: a shard has no replicas, so 0 at once when none are wanted, else 0 after the
/// timeout (in milliseconds; 0 waits forever), as redis-server without replicas answers. Inside a
/// transaction, at once.
fn wait(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let wanted = super::parse_i64(req.arg(1))?;
    let timeout_ms = super::parse_i64(req.arg(2))
        .map_err(|_| CmdError::Other("ERR timeout is not an integer or out of range".into()))?;
    if timeout_ms < 0 {
        return Err(CmdError::Other("ERR timeout is negative".into()));
    }
    if wanted <= 0 || ctx.db.is_pinned() {
        ctx.out.integer(0);
        return Ok(());
    }
    let deadline = (timeout_ms > 0)
        .then(|| std::time::Instant::now().checked_add(std::time::Duration::from_millis(timeout_ms as u64)))
        .flatten();
    *ctx.deferred = Some(super::Deferred::WaitReplicas { deadline });
    Ok(())
}
