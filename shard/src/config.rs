//! The shard's command line (also read from `RINGCACHE_*` environment variables and `--config FILE`).

use clap::Parser;
use ringcache_common::config::{parse_byte_size, ClientArgs};

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

    /// Number of lock stripes in the store (a power of two, at most 1024).
    #[arg(long, env = "RINGCACHE_STRIPES", default_value_t = 64, value_parser = parse_stripes)]
    pub stripes: usize,

    /// Port for Prometheus metrics at /metrics; 0 turns the endpoint off.
    #[arg(long, env = "RINGCACHE_METRICS_PORT", default_value_t = 9121)]
    pub metrics_port: u16,

    #[command(flatten)]
    pub client: ClientArgs,
}

fn parse_stripes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !n.is_power_of_two() || n > 1024 {
        return Err(format!("stripes must be a power of two between 1 and 1024, got {n}"));
    }
    Ok(n)
}
