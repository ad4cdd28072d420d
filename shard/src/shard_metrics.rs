//! The shard's Prometheus registry: per-command statistics plus values read from the store at scrape time.

use std::sync::Arc;

use prometheus::Registry;
use ringcache_common::metrics::{CommandCollector, Value, ValueCollector};

use crate::server::Shared;

pub fn registry(shared: Arc<Shared>) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    registry.register(Box::new(CommandCollector::new()))?;
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
            "Bytes charged for keys, values and per-key overhead.",
            s(|sh| sh.store.used_bytes() as f64),
        ),
        Value::gauge(
            "ringcache_memory_max_bytes",
            "The maxmemory budget in bytes (0: no limit).",
            s(|sh| sh.store.maxmemory_bytes() as f64),
        ),
        Value::gauge("ringcache_keys", "Keys in the store.", s(|sh| sh.store.len() as f64)),
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
    ])))?;
    Ok(registry)
}
