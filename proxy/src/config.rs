//! The proxy's command line (also read from `RINGCACHE_*` environment variables and `--config FILE`).

use std::time::Duration;

use clap::Parser;
use ringcache_common::config::{parse_duration, ClientArgs};
use ringcache_common::hash::{HashTag, KeyHash};

use crate::output::OutputLimits;
use crate::ring::Member;

/// ringcache-proxy: the endpoint clients talk to. Hashes each key onto a ketama ring of shards (compatible
/// with twemproxy's), forwards requests over shared pipelined connections, splits and merges multi-key
/// commands, and routes around shards that fail health checks.
///
/// Every flag can also be set with an environment variable (RINGCACHE_ and the flag in upper snake case)
/// or in a TOML file given with --config (keys are flag names; `shards` may be an array of strings).
///
/// With --zookeeper, the ring comes from ZooKeeper; `ringcache-proxy admin --help` lists and changes it.
#[derive(Parser, Debug, Clone)]
#[command(name = "ringcache-proxy", version)]
pub struct ProxyArgs {
    /// TOML file with settings.
    #[arg(long, env = "RINGCACHE_CONFIG")]
    pub config: Option<String>,

    /// Address to listen on (loopback by default; containers pass 0.0.0.0).
    #[arg(long, env = "RINGCACHE_BIND", default_value = "127.0.0.1")]
    pub bind: String,

    /// TCP port for clients.
    #[arg(long, env = "RINGCACHE_PORT", default_value_t = 6380)]
    pub port: u16,

    /// The shards: `name=host:port[:weight],...`; the name defaults to `host:port`. A shard's name is its
    /// identity on the ring: keep it when its address changes.
    #[arg(long, env = "RINGCACHE_SHARDS")]
    pub shards: Option<String>,

    /// Port for Prometheus metrics at /metrics; 0 turns the endpoint off.
    #[arg(long, env = "RINGCACHE_METRICS_PORT", default_value_t = 9120)]
    pub metrics_port: u16,

    /// Password the proxy sends to shards that have --requirepass (or the password of --shard-user).
    /// Visible in `ps`: prefer --shard-password-file or the environment variable.
    #[arg(long, env = "RINGCACHE_SHARD_PASSWORD", hide_env_values = true)]
    pub shard_password: Option<ringcache_common::acl::Secret>,

    /// Read the password the proxy sends to shards from this file (its first line).
    #[arg(long, env = "RINGCACHE_SHARD_PASSWORD_FILE", conflicts_with = "shard_password")]
    pub shard_password_file: Option<std::path::PathBuf>,

    /// The ACL user the proxy authenticates as on shards (`AUTH user password`); `default` without it.
    #[arg(long, env = "RINGCACHE_SHARD_USER")]
    pub shard_user: Option<String>,

    /// Key distribution: ketama (twemproxy's `distribution: ketama`).
    #[arg(long, env = "RINGCACHE_HASH", default_value = "ketama", value_parser = ["ketama"])]
    pub hash: String,

    /// Key hash function, as twemproxy's `hash:` option.
    #[arg(long, env = "RINGCACHE_KEY_HASH", default_value = "fnv1a_64", value_parser = KeyHash::from_name)]
    pub key_hash: KeyHash,

    /// Two characters around the part of a key that is hashed, as twemproxy's `hash_tag:` ("{}", "[]"); ""
    /// hashes whole keys, as a twemproxy pool without `hash_tag` (so its keys stay where they are).
    #[arg(long, env = "RINGCACHE_HASH_TAG", default_value = "{}", value_parser = HashTag::parse)]
    pub hash_tag: HashTag,

    /// How often each shard is PINGed.
    #[arg(long, env = "RINGCACHE_HEALTH_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub health_interval: Duration,

    /// Consecutive failed health checks that mark a shard down.
    #[arg(long, env = "RINGCACHE_FAILURE_LIMIT", default_value_t = 3)]
    pub failure_limit: u32,

    /// A request to a shard fails after this long without progress: no byte of a reply read since it became
    /// the oldest on its connection (nor, while it is being written, a byte of it written). Large values
    /// never time out while they stream. The error (-TIMEOUT) says the shard may have applied the request.
    #[arg(long, env = "RINGCACHE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Idle connections kept per worker thread, shard and protocol for blocking commands (BLPOP and the
    /// others each wait on a connection of their own, so they never hold up other clients' requests); a
    /// blocked client beyond them gets a new connection, closed after its reply.
    #[arg(long, env = "RINGCACHE_BLOCKING_IDLE_CONNECTIONS", default_value_t = crate::blocking::DEFAULT_MAX_IDLE)]
    pub blocking_idle_connections: usize,

    /// Redis's `client-output-buffer-limit normal`: "<hard> <soft> <soft-seconds>". A client whose unsent
    /// replies reach <soft> is not read from until it catches up (and is disconnected if that lasts
    /// <soft-seconds>, 0 = never); one with more than <hard> queued behind the reply being written is
    /// disconnected. 0 turns a limit off.
    #[arg(
        long,
        env = "RINGCACHE_CLIENT_OUTPUT_BUFFER_LIMIT",
        default_value = "256mb 8mb 0",
        value_parser = OutputLimits::parse
    )]
    pub client_output_buffer_limit: OutputLimits,

    /// Pipelined connections to each shard per worker thread, shared by that thread's clients.
    #[arg(long, env = "RINGCACHE_BACKEND_CONNECTIONS", default_value_t = 1)]
    pub backend_connections: usize,

    /// Copies of each key: writes go to this many distinct live shards on the ring (the owner and the next
    /// ones clockwise), reads to the first live one. With 2, losing one shard loses no key.
    #[arg(long, env = "RINGCACHE_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub replicas: u8,

    /// Hinted handoff: writes made while a shard is down are recorded by the shard standing in for it and
    /// handed back before it is readmitted, so it never serves a value overwritten while it was away.
    /// Turned off automatically in front of shards that are not ringcache-shard (redis-server).
    #[arg(long, env = "RINGCACHE_HANDOFF", default_value_t = true, action = clap::ArgAction::Set)]
    pub handoff: bool,

    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub state: ringcache_common::config::StateArgs,

    /// Most keys each worker thread remembers for client-side caching (which client read which key);
    /// past it, keys are invalidated for their readers to make room (Redis's tracking-table-max-keys).
    #[arg(long, env = "RINGCACHE_TRACKING_TABLE_MAX_KEYS", default_value_t = crate::session::DEFAULT_TRACKING_TABLE_MAX_KEYS)]
    pub tracking_table_max_keys: usize,

    #[command(flatten)]
    pub membership: crate::membership::MembershipArgs,

    #[command(flatten)]
    pub tls: ringcache_common::tls::TlsArgs,

    #[command(flatten)]
    pub tls_shards: ringcache_common::tls::TlsShardArgs,
    /// Export the N most requested keys the proxy sees as `ringcache_proxy_hot_keys{key}` (a bounded
    /// Space-Saving sketch); 0 turns it off.
    #[arg(long, env = "RINGCACHE_HOT_KEYS", default_value_t = 0)]
    pub hot_keys: usize,

    /// With --hot-keys, count one request in this many (per connection).
    #[arg(long, env = "RINGCACHE_HOT_KEYS_SAMPLE", default_value_t = 8)]
    pub hot_keys_sample: u32,
}

/// One configured shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    pub name: String,
    pub addr: String,
    pub weight: u32,
}

impl ShardSpec {
    pub fn member(&self) -> Member {
        Member { name: self.name.clone(), weight: self.weight }
    }
}

/// Parses `name=host:port[:weight],...` (names optional, defaulting to `host:port`).
pub fn parse_shards(list: &str) -> Result<Vec<ShardSpec>, String> {
    let mut out: Vec<ShardSpec> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = match item.split_once('=') {
            Some((n, r)) => (Some(n.trim().to_string()), r.trim()),
            None => (None, item),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (host, port, weight) = match parts.as_slice() {
            [h, p] => (*h, *p, 1),
            [h, p, w] => (*h, *p, w.parse::<u32>().map_err(|_| format!("bad weight in '{item}'"))?),
            _ => return Err(format!("bad shard '{item}': expected [name=]host:port[:weight]")),
        };
        port.parse::<u16>().map_err(|_| format!("bad port in '{item}'"))?;
        if host.is_empty() || weight == 0 {
            return Err(format!("bad shard '{item}': empty host or zero weight"));
        }
        let addr = format!("{host}:{port}");
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| addr.clone());
        if out.iter().any(|s| s.name == name) {
            return Err(format!("shard name '{name}' appears twice"));
        }
        out.push(ShardSpec { name, addr, weight });
    }
    if out.is_empty() {
        return Err("no shards configured: pass --shards name=host:port,...".into());
    }
    Ok(out)
}

impl ProxyArgs {
    /// What the proxy sends to shards in AUTH (see [`crate::backend::shard_credentials`]), if anything.
    pub fn shard_credentials(&self) -> Result<Option<String>, String> {
        let password = match &self.shard_password_file {
            Some(path) => Some(ringcache_common::acl::Secret::from_file(path)?),
            None => self.shard_password.clone(),
        };
        Ok(password.map(|p| crate::backend::shard_credentials(self.shard_user.as_deref(), p.expose())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_lists() {
        let s = parse_shards("a=127.0.0.1:7001, 127.0.0.1:7002:3").unwrap();
        assert_eq!(s[0], ShardSpec { name: "a".into(), addr: "127.0.0.1:7001".into(), weight: 1 });
        assert_eq!(s[1], ShardSpec { name: "127.0.0.1:7002".into(), addr: "127.0.0.1:7002".into(), weight: 3 });
        assert!(parse_shards("a=x:1,a=y:2").is_err());
        assert!(parse_shards("nohost").is_err());
        assert!(parse_shards("").is_err());
        assert!(parse_shards("a=h:99999").is_err());
    }
}
