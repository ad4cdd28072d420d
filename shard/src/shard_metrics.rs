//! The shard's Prometheus registry: per-command statistics plus values read from the store at scrape time.

use std::sync::Arc;

use prometheus::Registry;
use ringcache_common::metrics::{CommandCollector, ErrorCollector, Value, ValueCollector};

use crate::server::Shared;

pub fn registry(shared: Arc<Shared>) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    registry.register(Box::new(CommandCollector::new()))?;
    registry.register(Box::new(ErrorCollector::new()))?;
    let s = |f: fn(&Shared) -> f64| {
        let shared = shared.clone();
        move || f(&shared)
    };
    registry.register(Box::new(ValueCollector::new(vec![
        Value::counter(
            "ringcache_evicted_keys_total",
            "Keys evicted to stay under maxmemory.",
            s(|sh| sh.store.stats().evicted_keys as f64),
        ),
        Value::counter(
            "ringcache_expired_keys_total",
            "Keys removed because their TTL passed.",
            s(|sh| sh.store.stats().expired_keys as f64),
        ),
        Value::gauge(
            "ringcache_memory_used_bytes",
            "Bytes charged for keys, values and per-key overhead, and for large client buffers being used.",
            s(|sh| sh.store.used_bytes() as f64),
        ),
        Value::gauge(
            "ringcache_memory_rss_bytes",
            "Resident set size of the process (INFO used_memory_rss).",
            s(|_| crate::cmd::rss_bytes() as f64),
        ),
        Value::gauge(
            "ringcache_memory_max_bytes",
            "The maxmemory budget in bytes (0: no limit).",
            s(|sh| sh.store.maxmemory_bytes() as f64),
        ),
        Value::gauge("ringcache_keys", "Keys in the store.", s(|sh| sh.store.len() as f64)),
        Value::gauge(
            "ringcache_slowlog_length",
            "Entries in the slow log (SLOWLOG LEN).",
            s(|sh| sh.diagnostics.slowlog_len() as f64),
        ),
        Value::gauge(
            "ringcache_handoff_backlog_keys",
            "Keys written here while standing in for an absent shard, not yet handed back to it.",
            s(|sh| sh.handoffs.stats().backlog_keys as f64),
        ),
        Value::gauge(
            "ringcache_handoff_open_shards",
            "Absent shards this one is standing in for (accepting hinted writes).",
            s(|sh| sh.handoffs.stats().open_targets as f64),
        ),
        Value::counter(
            "ringcache_handoff_hinted_keys_total",
            "Keys recorded as hints while standing in for an absent shard.",
            s(|sh| sh.handoffs.stats().hinted_keys_total as f64),
        ),
        Value::counter(
            "ringcache_handoff_handed_off_keys_total",
            "Hinted keys handed back to their returning shard (and deleted here).",
            s(|sh| sh.handoffs.stats().handed_off_keys_total as f64),
        ),
        Value::counter(
            "ringcache_handoff_refused_writes_total",
            "Hinted writes refused with TRYAGAIN because their shard's handoff had begun.",
            s(|sh| sh.handoffs.stats().refused_writes_total as f64),
        ),
        Value::gauge("ringcache_connected_clients", "Open client connections.", s(|sh| sh.clients.len() as f64)),
        Value::counter(
            "ringcache_connections_received_total",
            "Client connections accepted.",
            s(|sh| sh.total_connections() as f64),
        ),
        Value::counter(
            "ringcache_rejected_connections_total",
            "Client connections refused by maxclients.",
            s(|sh| sh.rejected_connections() as f64),
        ),
        Value::gauge(
            "ringcache_loading_dump_file",
            "1 while the snapshot is being restored (clients get -LOADING).",
            s(|sh| f64::from(u8::from(sh.persistence.is_loading()))),
        ),
        Value::gauge(
            "ringcache_rdb_last_save_timestamp_seconds",
            "Unix time of the last successful snapshot (start-up time before the first).",
            s(|sh| sh.persistence.last_save_unix_secs() as f64),
        ),
        Value::gauge(
            "ringcache_rdb_changes_since_last_save",
            "Write commands since the last successful snapshot began.",
            s(|sh| sh.persistence.changes_since_last_save() as f64),
        ),
        Value::gauge(
            "ringcache_rdb_last_bgsave_status",
            "1 if the last snapshot succeeded, 0 if it failed.",
            s(|sh| f64::from(u8::from(sh.persistence.last_status_ok()))),
        ),
        Value::gauge(
            "ringcache_rdb_last_bgsave_duration_seconds",
            "How long the last snapshot took to write.",
            s(|sh| sh.persistence.last_duration_ms() as f64 / 1000.0),
        ),
        Value::gauge(
            "ringcache_rdb_bgsave_in_progress",
            "1 while a snapshot is being written.",
            s(|sh| f64::from(u8::from(sh.persistence.in_progress()))),
        ),
        Value::counter(
            "ringcache_snapshots_total",
            "Snapshots written successfully.",
            s(|sh| sh.persistence.saves().0 as f64),
        ),
        Value::counter(
            "ringcache_snapshot_failures_total",
            "Snapshots that failed.",
            s(|sh| sh.persistence.saves().1 as f64),
        ),
        Value::gauge(
            "ringcache_aof_enabled",
            "1 when the append-only log is on (--appendonly yes).",
            s(|sh| f64::from(u8::from(sh.persistence.aof.is_some()))),
        ),
        Value::gauge(
            "ringcache_aof_last_write_status",
            "1 if the last write (and fsync) of the append-only log succeeded, 0 if it failed (writes are refused).",
            s(|sh| f64::from(u8::from(sh.persistence.aof.as_ref().is_none_or(|a| a.write_ok())))),
        ),
        Value::gauge(
            "ringcache_aof_current_size_bytes",
            "Size of the append-only log: its base (the snapshot) and its incremental files.",
            s(|sh| sh.persistence.aof.as_ref().map_or(0.0, |a| (a.base_bytes() + a.incr_bytes()) as f64)),
        ),
        Value::gauge(
            "ringcache_aof_base_size_bytes",
            "Size of the snapshot the append-only log's incremental files follow.",
            s(|sh| sh.persistence.aof.as_ref().map_or(0.0, |a| a.base_bytes() as f64)),
        ),
        Value::gauge(
            "ringcache_aof_buffer_length",
            "Bytes appended to the append-only log and not yet written to its file.",
            s(|sh| sh.persistence.aof.as_ref().map_or(0.0, |a| a.buffer_bytes() as f64)),
        ),
        Value::counter(
            "ringcache_aof_rewrites_total",
            "Rewrites of the append-only log (snapshots that became its base).",
            s(|sh| sh.persistence.aof.as_ref().map_or(0.0, |a| a.rewrites() as f64)),
        ),
        Value::gauge(
            "ringcache_aof_last_load_truncated_bytes",
            "Bytes of a torn tail cut off the append-only log at the last start (0: none).",
            s(|sh| {
                sh.persistence
                    .aof
                    .as_ref()
                    .map_or(0.0, |a| a.last_replay.lock().truncated.as_ref().map_or(0.0, |t| t.bytes_dropped as f64))
            }),
        ),
        Value::gauge(
            "ringcache_snapshot_keys_restored",
            "Keys restored from the snapshot at start-up.",
            s(|sh| sh.persistence.last_load().keys_loaded as f64),
        ),
    ])))?;
    Ok(registry)
}
