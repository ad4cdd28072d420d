//! Server commands: INFO COMMAND CONFIG TIME.

use std::fmt::Write as _;

use ringcache_common::command;
use ringcache_common::metrics::{self, HotCounter};
use ringcache_common::resp::{ReplyWriter, Request};

use super::keys::glob_match;
use super::{is, CmdError, CmdResult, Ctx, Handler};
use crate::server::REDIS_COMPAT_VERSION;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "info" => info,
        "command" => command,
        "config" => config,
        "wait" => wait,
        _ => return None,
    })
}

const SECTIONS: [&str; 7] = ["server", "clients", "memory", "persistence", "stats", "replication", "keyspace"];

fn info(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut wanted: Vec<String> = req.args_from(1).map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
    // As in Redis: `commandstats` only when asked for by name or with ALL / EVERYTHING.
    let commandstats = wanted.iter().any(|w| w == "commandstats" || w == "all" || w == "everything");
    if wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default") {
        wanted = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let mut text = info_text(ctx, &wanted)?;
    if commandstats {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        text.push_str("# Commandstats\r\n");
        metrics::commandstats_lines(&mut text);
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// Renders the INFO sections named in `wanted` (lower case), in Redis's order and format.
fn info_text(ctx: &mut Ctx<'_>, wanted: &[String]) -> Result<String, CmdError> {
    let shared = ctx.shared;
    // Through `ctx.db`, so that INFO inside a transaction or script uses the stripes already held.
    let stats = ctx.db.stats()?;
    let events = shared.events.stats();
    let mut out = String::new();
    for section in SECTIONS.iter().filter(|s| wanted.iter().any(|w| w == *s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let title = match *section {
            "server" => "Server",
            "clients" => "Clients",
            "memory" => "Memory",
            "persistence" => "Persistence",
            "stats" => "Stats",
            "replication" => "Replication",
            _ => "Keyspace",
        };
        let _ = write!(out, "# {title}\r\n");
        let mut field = |name: &str, value: &dyn std::fmt::Display| {
            let _ = write!(out, "{name}:{value}\r\n");
        };
        match *section {
            "server" => {
                let uptime = shared.started.elapsed().as_secs();
                field("redis_version", &REDIS_COMPAT_VERSION);
                field("ringcache_version", &env!("CARGO_PKG_VERSION"));
                field("redis_mode", &"standalone");
                field("os", &std::env::consts::OS);
                field("arch_bits", &(usize::BITS));
                field("multiplexing_api", &"epoll");
                field("process_id", &std::process::id());
                field("tcp_port", &shared.config.port);
                field("uptime_in_seconds", &uptime);
                field("uptime_in_days", &(uptime / 86_400));
                field("executable", &std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default());
            }
            "clients" => {
                field("connected_clients", &shared.clients.len());
                field("maxclients", &shared.config.maxclients);
                let (blocked, blocking_keys) = shared.blocking.stats();
                field("blocked_clients", &blocked);
                field("tracking_clients", &events.tracking_clients);
                field("pubsub_clients", &shared.pubsub.subscribed_clients());
                field("watching_clients", &events.watching_clients);
                field("total_watched_keys", &events.watched_keys);
                field("total_blocking_keys", &blocking_keys);
            }
            "memory" => {
                let used = ctx.store.used_bytes();
                let max = ctx.store.maxmemory_bytes();
                let rss = rss_bytes();
                field("used_memory", &used);
                field("used_memory_human", &human_bytes(used));
                field("used_memory_rss", &rss);
                field("used_memory_rss_human", &human_bytes(rss));
                field("maxmemory", &max);
                field("maxmemory_human", &human_bytes(max));
                field("maxmemory_policy", &"allkeys-lru");
                field("mem_fragmentation_ratio", &format!("{:.2}", rss as f64 / used.max(1) as f64));
                field("mem_fragmentation_bytes", &(rss as i64 - used as i64));
                field("mem_allocator", &"mimalloc");
            }
            "persistence" => {
                let p = &shared.persistence;
                let loading = p.is_loading();
                field("loading", &u8::from(loading));
                field("async_loading", &0);
                if loading {
                    use std::sync::atomic::Ordering::Relaxed;
                    let total = p.load_progress.total_bytes.load(Relaxed);
                    let loaded = p.load_progress.loaded_bytes.load(Relaxed);
                    field("loading_total_bytes", &total);
                    field("loading_loaded_bytes", &loaded);
                    let perc = if total == 0 { 0.0 } else { loaded as f64 * 100.0 / total as f64 };
                    field("loading_loaded_perc", &format!("{perc:.2}"));
                }
                field("rdb_changes_since_last_save", &p.changes_since_last_save());
                field("rdb_bgsave_in_progress", &u8::from(p.in_progress()));
                field("rdb_last_save_time", &p.last_save_unix_secs());
                field("rdb_last_bgsave_status", &if p.last_status_ok() { "ok" } else { "err" });
                let (saves_ok, saves_failed) = p.saves();
                let last_secs = if saves_ok + saves_failed == 0 { -1 } else { (p.last_duration_ms() / 1000) as i64 };
                field("rdb_last_bgsave_time_sec", &last_secs);
                let current = if p.in_progress() { (p.current_duration_ms() / 1000) as i64 } else { -1 };
                field("rdb_current_bgsave_time_sec", &current);
                field("rdb_saves", &saves_ok);
                let load = p.last_load();
                field("rdb_last_load_keys_expired", &load.keys_expired);
                field("rdb_last_load_keys_loaded", &load.keys_loaded);
                let aof = p.aof.as_deref();
                field("aof_enabled", &u8::from(aof.is_some()));
                let rewriting = aof.is_some() && p.in_progress();
                field("aof_rewrite_in_progress", &u8::from(rewriting));
                field("aof_rewrite_scheduled", &0);
                let rewrites = aof.map_or(0, |a| a.rewrites());
                field(
                    "aof_last_rewrite_time_sec",
                    &if rewrites == 0 { -1 } else { (p.last_duration_ms() / 1000) as i64 },
                );
                field(
                    "aof_current_rewrite_time_sec",
                    &if rewriting { (p.current_duration_ms() / 1000) as i64 } else { -1 },
                );
                field("aof_last_bgrewrite_status", &if aof.is_none_or(|a| a.last_rewrite_ok()) { "ok" } else { "err" });
                field("aof_rewrites", &rewrites);
                field("aof_rewrites_consecutive_failures", &aof.map_or(0, |a| a.rewrite_failures_in_a_row()));
                field("aof_last_write_status", &if aof.is_none_or(|a| a.write_ok()) { "ok" } else { "err" });
                field("aof_last_cow_size", &0);
                field("module_fork_in_progress", &0);
                field("module_fork_last_cow_size", &0);
                if let Some(a) = aof {
                    field("aof_current_size", &(a.base_bytes() + a.incr_bytes()));
                    field("aof_base_size", &a.base_bytes());
                    field("aof_pending_rewrite", &0);
                    field("aof_buffer_length", &a.buffer_bytes());
                    field("aof_pending_bio_fsync", &0);
                    field("aof_delayed_fsync", &a.delayed_fsyncs());
                    field("aof_fsync", &a.config.fsync.name());
                    field("aof_incr_files", &a.listed().len());
                    let replay = a.last_replay.lock().clone();
                    field("aof_last_load_frames", &replay.frames);
                    field("aof_last_load_truncated", &u8::from(replay.truncated.is_some()));
                    field("aof_last_load_truncated_bytes", &replay.truncated.as_ref().map_or(0, |t| t.bytes_dropped));
                }
                field("snapshot_dir", &p.config.dir.display());
                field("snapshot_interval_ms", &p.config.interval.as_millis());
                field("snapshot_failed", &saves_failed);
                field("snapshot_last_duration_ms", &p.last_duration_ms());
                field("snapshot_last_keys", &p.last_keys());
                field("snapshot_last_bytes", &p.last_bytes());
                field("snapshot_last_load_duration_ms", &load.duration.as_millis());
                field("snapshot_last_load_keys_too_large", &load.keys_too_large);
            }
            "stats" => {
                field("total_connections_received", &shared.total_connections());
                field("total_commands_processed", &metrics::commands_total());
                field("rejected_connections", &shared.rejected_connections());
                field("expired_keys", &stats.expired_keys);
                field("evicted_keys", &stats.evicted_keys);
                field("keyspace_hits", &metrics::hot_total(HotCounter::KeyspaceHits));
                field("keyspace_misses", &metrics::hot_total(HotCounter::KeyspaceMisses));
                let (channels, patterns, shard_channels) = shared.pubsub.counts();
                field("pubsub_channels", &channels);
                field("pubsub_patterns", &patterns);
                field("pubsubshard_channels", &shard_channels);
                field("tracking_total_keys", &events.tracked_keys);
                field("tracking_total_items", &events.tracked_items);
                field("tracking_total_prefixes", &events.tracked_prefixes);
                let handoff = shared.handoffs.stats();
                field("handoff_open_shards", &handoff.open_targets);
                field("handoff_backlog_keys", &handoff.backlog_keys);
                field("handoff_hinted_keys", &handoff.hinted_keys_total);
                field("handoff_handed_off_keys", &handoff.handed_off_keys_total);
                field("handoff_refused_writes", &handoff.refused_writes_total);
                field("handoff_overflowed_keys", &handoff.overflowed_keys_total);
            }
            "replication" => {
                field("role", &"master");
                field("connected_slaves", &0);
            }
            _ => {
                if stats.keys > 0 {
                    field("db0", &format!("keys={},expires={},avg_ttl=0", stats.keys, stats.keys_with_expiry));
                }
            }
        }
    }
    Ok(out)
}

fn human_bytes(n: usize) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[u])
    }
}

/// Resident set size of this process, from `/proc/self/statm` (0 where that does not exist).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn command(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    command::reply_command(req, ctx.out).map_err(CmdError::Other)
}

/// Parameters CONFIG GET reports, with Redis's names.
fn config_params(ctx: &Ctx<'_>) -> Vec<(&'static str, String)> {
    let c = &ctx.shared.config;
    vec![
        ("bind", c.bind.clone()),
        ("port", c.port.to_string()),
        ("maxmemory", ctx.store.maxmemory_bytes().to_string()),
        ("maxmemory-policy", "allkeys-lru".into()),
        ("maxclients", c.maxclients.to_string()),
        ("timeout", c.idle_timeout.as_secs().to_string()),
        ("proto-max-bulk-len", c.limits.max_bulk_len.to_string()),
        ("databases", "1".into()),
        ("save", save_param(ctx)),
        ("dir", ctx.shared.persistence.config.dir.display().to_string()),
        ("dbfilename", crate::snapshot::SNAPSHOT_FILE.into()),
        ("appendonly", "no".into()),
        ("stripes", ctx.store.stripe_count().to_string()),
    ]
}

/// Redis's `save` parameter ("seconds changes"): a snapshot every interval after at least one change.
fn save_param(ctx: &Ctx<'_>) -> String {
    let interval = ctx.shared.persistence.config.interval;
    if interval.is_zero() {
        String::new()
    } else {
        format!("{} 1", interval.as_secs().max(1))
    }
}

fn config(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    if is(sub, "GET") {
        if req.argc() < 3 {
            return Err(CmdError::WrongArity("config|get".into()));
        }
        let params = config_params(ctx);
        let patterns: Vec<Vec<u8>> = req.args_from(2).map(|p| p.to_ascii_lowercase()).collect();
        let matched: Vec<&(&str, String)> =
            params.iter().filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes()))).collect();
        ctx.out.map_len(matched.len());
        for (name, value) in matched {
            ctx.out.bulk(name.as_bytes());
            ctx.out.bulk(value.as_bytes());
        }
    } else if is(sub, "SET") || is(sub, "RESETSTAT") || is(sub, "REWRITE") {
        return Err(CmdError::Other(format!(
            "ERR CONFIG {} is not supported by ringcache-shard: configure it with flags, environment or --config",
            String::from_utf8_lossy(sub).to_uppercase()
        )));
    } else {
        return Err(CmdError::UnknownSubcommand {
            cmd: "CONFIG".into(),
            sub: String::from_utf8_lossy(sub).into_owned(),
        });
    }
    Ok(())
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
