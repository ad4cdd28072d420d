//! Where the proxy's membership comes from: which shards make the ring, which of them are registered (alive
//! for everyone), and who may run a handoff.
//!
//! Two sources, chosen once at start; nothing outside this module knows which one is in use:
//! - [`file`] (the default): the shard list from `--shards` or the `--config` file, reloaded on SIGHUP or when
//!   the file changes; health is each proxy's own probes; handoffs are serialized by a lease kept on the
//!   shard being handed its keys (`RINGCACHE MEMBER LOCK`).
//! - [`zookeeper`] (`--zookeeper host:port,... --cluster NAME`): the ring is the node
//!   `/ringcache/NAME/ring`, changed only by `ringcache-proxy admin` (or a shard's `--auto-join`); a shard
//!   whose ephemeral registration is gone is down for every proxy at once; a handoff runs under a ZooKeeper
//!   lock. If the ensemble cannot be reached the proxy keeps serving with the ring it has and its own probes.
//!
//! The cluster sees a source through [`ControlPlane`] (registrations and locks), and its ring changes through
//! [`crate::cluster::Cluster::change_ring`] / [`crate::cluster::Cluster::change_shards`].

pub mod file;
pub mod zookeeper;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus::{IntGaugeVec, Opts, Registry};
use ringcache_common::config::parse_duration;
use ringcache_common::metrics::{Value, ValueCollector};
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ShardHandle};
use crate::config::{ProxyArgs, ShardSpec};
use crate::handoff::{self, HandoffError};

/// The flags that choose the membership source (flattened into the proxy's command line and `admin`'s).
#[derive(clap::Args, Debug, Clone)]
pub struct MembershipArgs {
    /// Take the ring, shard health and handoff locks from this ZooKeeper ensemble (`host:port,...`) instead
    /// of the shard list in --shards / --config (which is then only used when the ensemble cannot be reached
    /// at start).
    #[arg(long, env = "RINGCACHE_ZOOKEEPER")]
    pub zookeeper: Option<String>,

    /// The cluster in ZooKeeper: its nodes live under /ringcache/<cluster>.
    #[arg(long, env = "RINGCACHE_CLUSTER", default_value = "default")]
    pub cluster: String,

    /// ZooKeeper session timeout: a proxy cut off from the ensemble for this long loses its handoff locks.
    /// Must be more than three times --timeout (a handoff step must end before a lost lock can be taken).
    #[arg(long, env = "RINGCACHE_ZOOKEEPER_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub zookeeper_session_timeout: Duration,
}

impl MembershipArgs {
    /// The ZooKeeper settings, if `--zookeeper` is given.
    pub fn zookeeper_settings(&self) -> Option<ringcache_coord::session::Settings> {
        let servers = self.zookeeper.clone().filter(|s| !s.trim().is_empty())?;
        Some(ringcache_coord::session::Settings {
            servers,
            cluster: self.cluster.clone(),
            session_timeout: self.zookeeper_session_timeout,
        })
    }
}

/// What a handoff lock is taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffKind {
    /// Handing a returning or joining shard its keys.
    HandBack,
    /// Copying a leaving shard's keys to the shards that take its place.
    Drain,
}

/// Whether a shard is registered with the membership source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The source cannot say (no registrations, or ZooKeeper not reachable): local probes decide.
    Unknown,
    /// Known to be gone: the shard is down for every proxy.
    Absent,
    /// Registered, in this state (`joining`, `member`, ...).
    Present(String),
}

/// The membership source as the cluster sees it.
pub trait ControlPlane: Send + Sync {
    /// `file` or `zookeeper`.
    fn source(&self) -> &'static str;
    /// Whether the source's coordination service is reachable (always false for the file).
    fn connected(&self) -> bool;
    fn registration(&self, shard: &str) -> Registration;
    /// Whether drains take the lock too (concurrent drains are harmless with shard leases).
    fn locks_drains(&self) -> bool;
    /// Takes the right to run a `kind` handoff for `shard`, or confirms it is still held (called again before
    /// every batch of keys). False while someone else holds it, or when holding it cannot be confirmed.
    fn lock<'a>(
        &'a self,
        cluster: &'a Cluster,
        shard: &'a ShardHandle,
        kind: HandoffKind,
    ) -> BoxFuture<'a, Result<bool, HandoffError>>;
    fn unlock<'a>(&'a self, cluster: &'a Cluster, shard: &'a ShardHandle, kind: HandoffKind) -> BoxFuture<'a, ()>;
    /// The lock holder has handed `shard` its keys and readmitted it (said before the stand-ins delete their
    /// copies, so that proxies waiting for the lock can route to it at once).
    fn handed_back<'a>(&'a self, shard: &'a ShardHandle) -> BoxFuture<'a, ()>;
    /// Whether the proxy holding `shard`'s lock now has already readmitted it (then this one may too).
    fn readmitted_elsewhere<'a>(&'a self, shard: &'a ShardHandle) -> BoxFuture<'a, bool>;
    /// Waits (bounded) until every proxy the source knows routes to `shard`, before the stand-ins delete the
    /// keys handed back to it: a proxy that still routes its keys to them would read them as misses.
    fn wait_until_routed<'a>(&'a self, shard: &'a ShardHandle) -> BoxFuture<'a, ()>;
}

/// The default control plane: no registrations, handoffs serialized by leases on the shards.
pub struct ShardLeases;

/// The one [`ShardLeases`].
pub static SHARD_LEASES: ShardLeases = ShardLeases;

impl ControlPlane for ShardLeases {
    fn source(&self) -> &'static str {
        "file"
    }

    fn connected(&self) -> bool {
        false
    }

    fn registration(&self, _shard: &str) -> Registration {
        Registration::Unknown
    }

    fn locks_drains(&self) -> bool {
        false
    }

    fn lock<'a>(
        &'a self,
        cluster: &'a Cluster,
        shard: &'a ShardHandle,
        kind: HandoffKind,
    ) -> BoxFuture<'a, Result<bool, HandoffError>> {
        Box::pin(async move {
            match kind {
                HandoffKind::HandBack => handoff::lock(cluster, shard).await,
                HandoffKind::Drain => Ok(true),
            }
        })
    }

    fn unlock<'a>(&'a self, cluster: &'a Cluster, shard: &'a ShardHandle, kind: HandoffKind) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if kind == HandoffKind::HandBack {
                handoff::unlock(cluster, shard).await;
            }
        })
    }

    fn handed_back<'a>(&'a self, _shard: &'a ShardHandle) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    fn readmitted_elsewhere<'a>(&'a self, _shard: &'a ShardHandle) -> BoxFuture<'a, bool> {
        Box::pin(std::future::ready(false))
    }

    fn wait_until_routed<'a>(&'a self, _shard: &'a ShardHandle) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Why the proxy cannot start with the membership it was given.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("{0}")]
    Shards(String),
    #[error(
        "{0}; the proxy needs the ring from ZooKeeper, or a shard list to start from without it (pass --config \
         with `shards = [...]`, or --shards): refusing to start"
    )]
    NoZooKeeper(String),
    #[error("--timeout ({timeout:?}) must be under a third of --zookeeper-session-timeout ({session:?})")]
    Timeouts { timeout: Duration, session: Duration },
}

/// The membership source chosen by the flags, before the cluster exists.
pub enum Source {
    File(file::FileSource),
    ZooKeeper(zookeeper::ZooKeeperSource),
}

impl Source {
    /// Connects to the source and reads the ring the proxy starts with: the file's list, or ZooKeeper's ring
    /// (the `--config`/`--shards` list when the ensemble cannot be reached).
    pub async fn open(args: &ProxyArgs) -> Result<(Source, Vec<ShardSpec>), MembershipError> {
        match args.membership.zookeeper_settings() {
            None => {
                let (source, shards) = file::FileSource::open(args)?;
                Ok((Source::File(source), shards))
            }
            Some(settings) => {
                if args.timeout * 3 >= settings.session_timeout {
                    return Err(MembershipError::Timeouts { timeout: args.timeout, session: settings.session_timeout });
                }
                let (source, shards) = zookeeper::ZooKeeperSource::open(settings, args).await?;
                Ok((Source::ZooKeeper(source), shards))
            }
        }
    }

    /// Hands the cluster this source's control plane (before its health checks start).
    pub fn install(&self, cluster: &Arc<Cluster>) {
        match self {
            Source::File(_) => {}
            Source::ZooKeeper(z) => z.install(cluster),
        }
    }

    /// Follows the source's changes until `shutdown`. `advertised` is where clients reach this proxy.
    pub fn spawn(self, cluster: Arc<Cluster>, advertised: String, shutdown: CancellationToken) {
        match self {
            Source::File(f) => f.spawn(cluster, shutdown),
            Source::ZooKeeper(z) => z.spawn(cluster, advertised, shutdown),
        }
    }
}

/// The membership metrics, read from the cluster at scrape time.
pub fn register_metrics(registry: &Registry, cluster: &Arc<Cluster>) -> prometheus::Result<()> {
    let source = IntGaugeVec::new(
        Opts::new("ringcache_membership_source", "1 for the membership source in use (file or zookeeper)."),
        &["source"],
    )?;
    source.with_label_values(&[cluster.control().source()]).set(1);
    registry.register(Box::new(source))?;
    let (a, b, c) = (cluster.clone(), cluster.clone(), cluster.clone());
    registry.register(Box::new(ValueCollector::new(vec![
        Value::gauge(
            "ringcache_membership_ring_version",
            "Version of the ring this proxy routes on (ZooKeeper's, or config reloads applied).",
            move || a.ring_version() as f64,
        ),
        Value::gauge("ringcache_membership_ring_shards", "Shards in the ring this proxy routes on.", move || {
            b.topology().shards.len() as f64
        }),
        Value::gauge(
            "ringcache_zookeeper_connected",
            "1 while the ZooKeeper session is connected (0 when membership comes from the file).",
            move || f64::from(u8::from(c.control().connected())),
        ),
    ])))
}
