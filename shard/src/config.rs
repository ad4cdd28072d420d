//! The shard's command line (also read from `RINGCACHE_*` environment variables and `--config FILE`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use ringcache_common::config::{parse_byte_size, parse_duration, ClientArgs};

use crate::aof::{AofConfig, AppendFsync};
use crate::client::StateLimits;
use crate::scripting::ScriptLimits;
use crate::snapshot::{Codec, OnCorrupt, SnapshotConfig};

/// ringcache-shard: one Ringcache storage node. Speaks RESP (Redis's protocol) over TCP and keeps data in
/// memory in a lock-striped LRU, evicting least recently used keys to stay within --maxmemory.
///
/// Every flag can also be set with an environment variable (RINGCACHE_ and the flag in upper snake case,
/// e.g. RINGCACHE_MAXMEMORY=1gb) or in a TOML file given with --config (keys are the flag names). Flags win
/// over the environment, which wins over the file.
#[derive(Parser, Debug, Clone)]
#[command(name = "ringcache-shard", version)]
pub struct ShardArgs {
    /// TOML file with settings (keys are flag names, e.g. `maxmemory = "1gb"`).
    #[arg(long, env = "RINGCACHE_CONFIG")]
    pub config: Option<String>,

    /// Address to listen on. Loopback by default, like Redis's protected mode; containers pass 0.0.0.0.
    #[arg(long, env = "RINGCACHE_BIND", default_value = "127.0.0.1")]
    pub bind: String,

    /// TCP port for RESP clients.
    #[arg(long, env = "RINGCACHE_PORT", default_value_t = 7001)]
    pub port: u16,

    /// Memory budget for keys, values and per-key overhead; least recently used keys are evicted to stay
    /// under it. Accepts b, kb, mb, gb (1kb = 1024). 0 means no limit.
    #[arg(long, env = "RINGCACHE_MAXMEMORY", default_value = "256mb", value_parser = parse_byte_size)]
    pub maxmemory: u64,

    /// What to evict when a write needs memory past --maxmemory (Redis's names): noeviction (writes fail
    /// with -OOM), allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random,
    /// volatile-ttl (volatile-*: only keys with a TTL; none left behaves as noeviction).
    #[arg(long, env = "RINGCACHE_MAXMEMORY_POLICY", default_value = "allkeys-lru", value_parser = parse_policy)]
    pub maxmemory_policy: crate::store::EvictionPolicy,

    /// Keys sampled per eviction by the sampling policies (LFU, volatile-ttl), as Redis's maxmemory-samples.
    #[arg(long, env = "RINGCACHE_MAXMEMORY_SAMPLES", default_value_t = 5)]
    pub maxmemory_samples: u32,

    /// Redis's lfu-log-factor: how slowly the LFU counter grows (hits for a counter of 255 grow with it).
    #[arg(long, env = "RINGCACHE_LFU_LOG_FACTOR", default_value_t = 10)]
    pub lfu_log_factor: u32,

    /// Redis's lfu-decay-time: minutes per decrement of an idle key's LFU counter (0: never decays).
    #[arg(long, env = "RINGCACHE_LFU_DECAY_TIME", default_value_t = 1)]
    pub lfu_decay_time: u32,

    /// Number of lock stripes in the store (a power of two, at most 1024).
    #[arg(long, env = "RINGCACHE_STRIPES", default_value_t = 64, value_parser = parse_stripes)]
    pub stripes: usize,

    /// Port for Prometheus metrics at /metrics; 0 turns the endpoint off.
    #[arg(long, env = "RINGCACHE_METRICS_PORT", default_value_t = 9121)]
    pub metrics_port: u16,

    /// Directory for snapshots (created if missing). The snapshot in it is restored at start. One shard per
    /// directory: the shard holds a lock on it.
    #[arg(long, env = "RINGCACHE_DIR", default_value = "./data")]
    pub dir: PathBuf,

    /// Take a snapshot this often when keys changed (e.g. 10s, 1m); 0 turns periodic snapshots off (SAVE
    /// and BGSAVE still work, and no snapshot is taken at shutdown).
    #[arg(long, env = "RINGCACHE_SNAPSHOT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub snapshot_interval: Duration,

    /// Take a final snapshot on SIGTERM/SIGINT when keys changed since the last one (with periodic
    /// snapshots on).
    #[arg(long, env = "RINGCACHE_SNAPSHOT_ON_SHUTDOWN", default_value_t = true, action = ArgAction::Set)]
    pub snapshot_on_shutdown: bool,

    /// Compression of snapshot blocks.
    #[arg(long, env = "RINGCACHE_SNAPSHOT_COMPRESSION", value_enum, default_value = "lz4")]
    pub snapshot_compression: Codec,

    /// What to do when the snapshot fails verification: refuse to start, or move it aside and start empty.
    #[arg(long, env = "RINGCACHE_ON_CORRUPT_SNAPSHOT", value_enum, default_value = "refuse")]
    pub on_corrupt_snapshot: OnCorrupt,

    /// Log every change to an append-only file beside the snapshots (yes|no, as Redis's `appendonly`): written
    /// before the reply is sent, replayed over the snapshot at start, compacted into each snapshot.
    #[arg(long, env = "RINGCACHE_APPENDONLY", default_value = "no", value_parser = parse_yes_no, action = ArgAction::Set)]
    pub appendonly: bool,

    /// When the append-only log is fsynced: always (before the replies of each batch of writes are sent),
    /// everysec (once a second in the background), no (left to the operating system).
    #[arg(long, env = "RINGCACHE_APPENDFSYNC", value_enum, default_value = "everysec")]
    pub appendfsync: AppendFsync,

    /// Directory of the append-only log's files and manifest, inside --dir.
    #[arg(long, env = "RINGCACHE_APPENDDIRNAME", default_value = "appendonlydir")]
    pub appenddirname: String,

    /// Rewrite the log (take a snapshot, which becomes its base) when its incremental files have grown by
    /// this percentage of the base since the last rewrite; 0 turns automatic rewrites off.
    #[arg(long, env = "RINGCACHE_AUTO_AOF_REWRITE_PERCENTAGE", default_value_t = 100)]
    pub auto_aof_rewrite_percentage: u64,

    /// ... and the log (base and incremental files) is at least this large (b/kb/mb/gb).
    #[arg(long, env = "RINGCACHE_AUTO_AOF_REWRITE_MIN_SIZE", default_value = "64mb", value_parser = parse_byte_size)]
    pub auto_aof_rewrite_min_size: u64,

    /// Most keys remembered per absent shard while standing in for it (hinted handoff). Past it the absent
    /// shard is flushed when it returns, instead of risking stale values.
    #[arg(long, env = "RINGCACHE_HANDOFF_MAX_KEYS", default_value_t = 1_000_000)]
    pub handoff_max_keys: usize,

    /// On SIGTERM with a ringcache-proxy connected, refuse writes and wait up to this long for a proxy to
    /// copy this shard's keys to the shards that take its place before exiting; 0 exits at once.
    #[arg(long, env = "RINGCACHE_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    #[command(flatten)]
    pub state: ringcache_common::config::StateArgs,

    /// A Lua script running longer than this makes the shard busy: other clients get -BUSY until it ends
    /// or SCRIPT KILL stops it (Redis's lua-time-limit; 0 = as soon as it starts).
    #[arg(long, env = "RINGCACHE_LUA_TIME_LIMIT", default_value = "5s", value_parser = parse_duration)]
    pub lua_time_limit: Duration,

    /// Most memory the Lua state may use; a script that needs more fails (0 = no limit).
    #[arg(long, env = "RINGCACHE_LUA_MEMORY_LIMIT", default_value = "256mb", value_parser = parse_byte_size)]
    pub lua_memory_limit: u64,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub registry: crate::registry::RegistryArgs,

    #[command(flatten)]
    pub tls: ringcache_common::tls::TlsArgs,
}

/// Parses Redis's yes|no.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, got '{s}'")),
    }
}

impl ShardArgs {
    pub fn script_limits(&self) -> ScriptLimits {
        ScriptLimits { time_limit: self.lua_time_limit, memory_bytes: self.lua_memory_limit as usize }
    }

    pub fn state_limits(&self) -> StateLimits {
        self.state.limits()
    }

    pub fn snapshot_config(&self) -> SnapshotConfig {
        SnapshotConfig {
            dir: self.dir.clone(),
            interval: self.snapshot_interval,
            on_shutdown: self.snapshot_on_shutdown,
            codec: self.snapshot_compression,
            on_corrupt: self.on_corrupt_snapshot,
            aof_dir: self.dir.join(&self.appenddirname),
            aof: self.appendonly.then(|| AofConfig {
                dir: self.dir.join(&self.appenddirname),
                fsync: self.appendfsync,
                rewrite_percentage: self.auto_aof_rewrite_percentage,
                rewrite_min_bytes: self.auto_aof_rewrite_min_size,
            }),
        }
    }
}

fn parse_policy(s: &str) -> Result<crate::store::EvictionPolicy, String> {
    s.parse().map_err(|e: crate::store::UnknownPolicy| e.to_string())
}

fn parse_stripes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !n.is_power_of_two() || n > 1024 {
        return Err(format!("stripes must be a power of two between 1 and 1024, got {n}"));
    }
    Ok(n)
}
