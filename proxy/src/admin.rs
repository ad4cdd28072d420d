//! `ringcache-proxy admin`: the operator's view and changes of the ring kept in ZooKeeper.
//!
//! ```text
//! ringcache-proxy admin --zookeeper zk1:2181 --cluster prod list
//! ringcache-proxy admin --zookeeper zk1:2181 --cluster prod add shard-4            # address and weight from its registration
//! ringcache-proxy admin --zookeeper zk1:2181 --cluster prod add shard-4 --addr shard-4:7001 --weight 1
//! ringcache-proxy admin --zookeeper zk1:2181 --cluster prod remove shard-2
//! ```
//!
//! A change is one compare-and-set of the ring node (a new version); every proxy watching it applies it
//! within moments: an added shard is handed exactly the keys it now owns, a removed one hands its keys to the
//! others first. When ZooKeeper cannot be reached, changes are refused (exit status 1): the proxies keep
//! serving the ring they have.

use std::ffi::OsString;

use clap::{Parser, Subcommand};
use ringcache_coord::layout::{RingMember, ShardRecord};
use ringcache_coord::session::{self, Settings};
use ringcache_coord::{ring, zk, CoordError};

use crate::membership::MembershipArgs;

/// ringcache-proxy admin: list or change the ring kept in ZooKeeper (--zookeeper and --cluster as the
/// proxies'). Exit status: 0 done, 1 refused or failed, 2 bad usage.
#[derive(Parser, Debug)]
#[command(name = "ringcache-proxy admin")]
pub struct AdminArgs {
    #[command(flatten)]
    pub membership: MembershipArgs,

    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// The ring (version, members and whether each is registered), registered shards not in it, and every
    /// proxy's view.
    List,
    /// Adds a shard to the ring. Its address and weight come from its registration (a shard started with
    /// --zookeeper) unless given.
    Add {
        name: String,
        /// `host:port` where proxies reach it (required when the shard is not registered).
        #[arg(long)]
        addr: Option<String>,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        weight: Option<u32>,
    },
    /// Removes a shard from the ring: the proxies hand its keys to the others, then stop routing to it.
    Remove { name: String },
}

/// Runs `admin` with `args` (starting with `admin`); returns the exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args = match AdminArgs::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Runs one admin command; returns what it prints.
pub async fn run(args: AdminArgs) -> Result<String, CoordError> {
    let settings = args
        .membership
        .zookeeper_settings()
        .ok_or_else(|| CoordError::Refused("--zookeeper host:port,... is required (or RINGCACHE_ZOOKEEPER)".into()))?;
    let client = tokio::time::timeout(settings.session_timeout, session::connect(&settings))
        .await
        .map_err(|_| {
            CoordError::Refused(format!(
                "no ZooKeeper session at {} within {:?}",
                settings.servers, settings.session_timeout
            ))
        })?
        .map_err(|e| {
            CoordError::Refused(format!("{e}: membership changes need ZooKeeper; the proxies keep their ring"))
        })?;
    match args.command {
        AdminCommand::List => list(&client, &settings).await,
        AdminCommand::Add { name, addr, weight } => {
            ringcache_coord::layout::check_shard_name(&name)?;
            let registered = session::registered_shards(&client).await?.into_iter().find(|r| r.name == name);
            let addr = match (addr, &registered) {
                (Some(a), _) => a,
                (None, Some(r)) => r.addr.clone(),
                (None, None) => {
                    return Err(CoordError::Refused(format!(
                        "shard '{name}' is not registered in ZooKeeper (start it with --zookeeper {} --cluster {}), \
                         or give its address with --addr",
                        settings.servers, settings.cluster
                    )))
                }
            };
            let weight = weight.or(registered.as_ref().map(|r| r.weight)).unwrap_or(1);
            let member = RingMember { name: name.clone(), addr: addr.clone(), weight };
            let ring = ring::update(&client, ring::add(member)).await?;
            Ok(format!("ring version {}: '{name}' ({addr}, weight {weight}) is in the ring\n", ring.version))
        }
        AdminCommand::Remove { name } => {
            let ring = ring::update(&client, ring::remove(name.clone())).await?;
            Ok(format!("ring version {}: '{name}' removed from the ring\n", ring.version))
        }
    }
}

async fn list(client: &zk::Client, settings: &Settings) -> Result<String, CoordError> {
    use std::fmt::Write as _;
    let ring = ring::read(client).await?.unwrap_or_default();
    let registered = session::registered_shards(client).await?;
    let proxies = session::proxies(client).await?;
    let state = |name: &str| -> String {
        registered.iter().find(|r| r.name == name).map_or("not registered".into(), |r: &ShardRecord| {
            if r.addr.is_empty() {
                r.state.clone()
            } else {
                format!("registered at {}, {}", r.addr, r.state)
            }
        })
    };
    let mut out = String::new();
    let _ = writeln!(out, "cluster '{}' at {}: ring version {}", settings.cluster, settings.servers, ring.version);
    let _ = writeln!(out, "ring ({} shards):", ring.shards.len());
    for m in &ring.shards {
        let _ = writeln!(out, "  {}  {}  weight {}  ({})", m.name, m.addr, m.weight, state(&m.name));
    }
    let outside: Vec<&ShardRecord> =
        registered.iter().filter(|r| !ring.shards.iter().any(|m| m.name == r.name)).collect();
    if !outside.is_empty() {
        let _ = writeln!(out, "registered, not in the ring:");
        for r in outside {
            let _ = writeln!(out, "  {}  {}  weight {}  ({})", r.name, r.addr, r.weight, r.state);
        }
    }
    let _ = writeln!(out, "proxies ({}):", proxies.len());
    for (token, p) in &proxies {
        let _ = writeln!(
            out,
            "  {token}  {}  ring version {}  up [{}]  down [{}]",
            p.addr,
            p.ring_version,
            p.shards_up.join(","),
            p.shards_down.join(",")
        );
    }
    Ok(out)
}
