//! CONFIG GET/SET/RESETSTAT/REWRITE/HELP on the shard: its table of parameters ([`PARAMS`]) over
//! `ringcache_common::runtime_config`, which does the parsing, the replies and the file rewrite.
//!
//! Live parameters: `maxmemory` (shrinking it evicts down to it in the background, as Redis's eviction
//! time proc), `maxmemory-policy` (through [`set_maxmemory_policy`], the single place the store's eviction
//! policy is set), `maxmemory-samples`, `lfu-log-factor`, `lfu-decay-time`, `timeout`, `slowlog-log-slower-than`, `slowlog-max-len`, `latency-monitor-threshold`,
//! `loglevel`, `lua-time-limit`/`busy-reply-threshold`. The others are fixed at start (CONFIG SET answers
//! Redis's "can't set immutable config").

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use ringcache_common::resp::Request;
use ringcache_common::runtime_config::{
    self as rc, parse_enum, parse_int_in, parse_memory, toml_integer, toml_millis, toml_seconds, Param, RuntimeConfig,
};

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::server::Shared;

pub(super) fn handler(name: &str) -> Option<Handler> {
    match name {
        "config" => Some(config),
        _ => None,
    }
}

fn config(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let shared = ctx.shared;
    shared
        .runtime_config
        .command(shared, req, ctx.out, ringcache_common::metrics::reset_stats)
        .map_err(|e| CmdError::Other(e.to_string()))
}

/// Settings that CONFIG SET changes and that live nowhere else.
#[derive(Debug)]
pub struct LiveSettings {
    /// In milliseconds: `--idle-timeout` takes fractions of a second (CONFIG shows whole seconds).
    idle_timeout_ms: AtomicU64,
}

impl LiveSettings {
    pub fn new(idle_timeout: Duration) -> LiveSettings {
        LiveSettings { idle_timeout_ms: AtomicU64::new(idle_timeout.as_millis() as u64) }
    }

    /// `timeout`: a connection idle this long is closed (zero: never). Read before each wait for a request.
    #[inline]
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.load(Relaxed))
    }
}

/// The shard's CONFIG table; `file` is its `--config` file.
pub fn runtime_config(file: Option<std::path::PathBuf>) -> RuntimeConfig<Shared> {
    RuntimeConfig::new(PARAMS.as_slice(), file)
}

/// Redis's eviction policies, in the order its error message lists them.
const POLICIES: [&str; 8] = [
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// `maxmemory-policy` as CONFIG GET shows it.
fn maxmemory_policy(shared: &Shared) -> String {
    shared.store.eviction_policy().name().into()
}

/// CONFIG SET maxmemory-policy: the single place the store's eviction policy changes.
fn set_maxmemory_policy(shared: &Shared, value: &str) -> Result<(), String> {
    let name = parse_enum(value, &POLICIES)?;
    let policy: crate::store::EvictionPolicy = name.parse().map_err(|_| "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction".to_string())?;
    shared.store.set_eviction_policy(policy);
    Ok(())
}

/// CONFIG SET maxmemory: the new limit holds for the next write; keys are evicted down to it on a thread
/// of its own (the caller may hold stripes, inside MULTI or a script).
fn set_maxmemory(shared: &Shared, value: &str) -> Result<(), String> {
    let bytes = usize::try_from(parse_memory(value)?).map_err(|_| "argument must be a memory value".to_string())?;
    let store = &shared.store;
    let shrinking = bytes != 0 && (store.maxmemory_bytes() == 0 || bytes < store.maxmemory_bytes());
    store.set_maxmemory_bytes(bytes);
    if shrinking && store.used_bytes() > bytes {
        let store = store.clone();
        std::thread::Builder::new()
            .name("ringcache-evict".into())
            .spawn(move || {
                let evicted = store.evict_to_limit();
                tracing::info!("maxmemory lowered: {evicted} keys evicted");
            })
            .map_err(|e| format!("cannot start evicting: {e}"))?;
    }
    Ok(())
}

fn save_param(shared: &Shared) -> String {
    let interval = shared.persistence.config.interval;
    if interval.is_zero() {
        String::new()
    } else {
        format!("{} 1", interval.as_secs().max(1))
    }
}

fn yes_no(b: bool) -> String {
    (if b { "yes" } else { "no" }).into()
}

/// The shard's parameters, with Redis's names and value formats.
pub static PARAMS: std::sync::LazyLock<Vec<Param<Shared>>> = std::sync::LazyLock::new(|| {
    let own_first: [Param<Shared>; _] = [
        Param {
            name: "maxmemory",
            alias: None,
            get: |s| s.store.maxmemory_bytes().to_string(),
            set: Some(set_maxmemory),
            toml: Some(("maxmemory", toml_integer)),
        },
        Param {
            name: "maxmemory-policy",
            alias: None,
            get: maxmemory_policy,
            set: Some(set_maxmemory_policy),
            toml: Some(("maxmemory_policy", rc::toml_string)),
        },
        Param {
            name: "maxmemory-samples",
            alias: None,
            get: |s| s.store.eviction().samples().to_string(),
            set: Some(|s, v| {
                let n = parse_int_in(v, 1, 64)?;
                s.store.set_maxmemory_samples(n as u32);
                Ok(())
            }),
            toml: Some(("maxmemory_samples", toml_integer)),
        },
        Param {
            name: "lfu-log-factor",
            alias: None,
            get: |s| s.store.eviction().lfu_log_factor().to_string(),
            set: Some(|s, v| {
                let n = parse_int_in(v, 0, i64::from(i32::MAX))?;
                s.store.set_lfu_log_factor(n as u32);
                Ok(())
            }),
            toml: Some(("lfu_log_factor", toml_integer)),
        },
        Param {
            name: "lfu-decay-time",
            alias: None,
            get: |s| s.store.eviction().lfu_decay_time().to_string(),
            set: Some(|s, v| {
                let n = parse_int_in(v, 0, i64::from(i32::MAX))?;
                s.store.set_lfu_decay_time(n as u32);
                Ok(())
            }),
            toml: Some(("lfu_decay_time", toml_integer)),
        },
        Param {
            name: "timeout",
            alias: None,
            get: |s| s.live.idle_timeout().as_secs().to_string(),
            set: Some(|s, v| {
                let secs = parse_int_in(v, 0, i64::from(i32::MAX))?;
                s.live.idle_timeout_ms.store(secs as u64 * 1000, Relaxed);
                Ok(())
            }),
            toml: Some(("idle_timeout", toml_seconds)),
        },
    ];
    let own_rest: [Param<Shared>; _] = [
        Param {
            name: "busy-reply-threshold",
            alias: Some("lua-time-limit"),
            get: |s| s.scripting.time_limit_ms().to_string(),
            set: Some(|s, v| {
                s.scripting.set_time_limit_ms(parse_int_in(v, 0, i64::MAX)? as u64);
                Ok(())
            }),
            toml: Some(("lua_time_limit", toml_millis)),
        },
        Param { name: "bind", alias: None, get: |s| s.config.bind.clone(), set: None, toml: None },
        Param { name: "port", alias: None, get: |s| s.config.port.to_string(), set: None, toml: None },
        Param { name: "maxclients", alias: None, get: |s| s.config.maxclients.to_string(), set: None, toml: None },
        Param {
            name: "proto-max-bulk-len",
            alias: None,
            get: |s| s.config.limits.max_bulk_len.to_string(),
            set: None,
            toml: None,
        },
        Param { name: "databases", alias: None, get: |_| "1".into(), set: None, toml: None },
        Param { name: "save", alias: None, get: save_param, set: None, toml: None },
        Param {
            name: "dir",
            alias: None,
            get: |s| s.persistence.config.dir.display().to_string(),
            set: None,
            toml: None,
        },
        Param {
            name: "dbfilename",
            alias: None,
            get: |_| crate::snapshot::SNAPSHOT_FILE.into(),
            set: None,
            toml: None,
        },
        Param { name: "appendonly", alias: None, get: |s| yes_no(s.persistence.aof.is_some()), set: None, toml: None },
        Param {
            name: "appendfsync",
            alias: None,
            get: |s| s.persistence.aof.as_ref().map_or("everysec", |a| a.config.fsync.name()).into(),
            set: None,
            toml: None,
        },
        Param { name: "stripes", alias: None, get: |s| s.store.stripe_count().to_string(), set: None, toml: None },
        Param { name: "io-threads", alias: None, get: |_| "1".into(), set: None, toml: None },
    ];
    own_first.into_iter().chain(rc::common_params()).chain(own_rest).collect()
});

impl rc::HasDiagnostics for Shared {
    fn diagnostics(&self) -> &ringcache_common::diagnostics::Diagnostics {
        &self.diagnostics
    }
}
