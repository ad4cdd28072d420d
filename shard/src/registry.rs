//! Registering this shard in ZooKeeper (`--zookeeper`), for proxies that take their membership from there.
//!
//! The shard keeps an ephemeral node `/ringcache/<cluster>/shards/<name>` holding its address, weight and
//! membership state (`joining`, `member`, `leaving`, `draining`, `drained`: what `RINGCACHE MEMBER` says),
//! updated when the state changes. The node lives as long as the shard's ZooKeeper session: when the shard
//! dies, ZooKeeper deletes it after the session timeout, and every proxy takes the shard for down at once.
//! If the session expires while the shard lives (a long partition from the ensemble), it registers again
//! with a new session. Stopping cleanly deletes the node at once.
//!
//! Registering never changes the ring: an operator adds the shard (`ringcache-proxy admin add`), unless the
//! shard was started with `--auto-join`, which adds it to the ring when it first registers.
//!
//! The shard serves clients whether or not ZooKeeper answers; this task only retries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringcache_common::config::parse_duration;
use ringcache_common::metrics::{Value, ValueCollector};
use ringcache_coord::layout::{self, RingMember, ShardRecord};
use ringcache_coord::session::{self, Settings};
use ringcache_coord::{ring, zk, CoordError};
use tokio_util::sync::CancellationToken;

use crate::server::Shared;

/// How often the shard's membership state is compared with what its node says.
const STATE_POLL: Duration = Duration::from_millis(50);
/// Longest wait between two attempts to reach the ensemble.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The flags of ZooKeeper registration (flattened into the shard's command line).
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// ZooKeeper ensemble (`host:port,host:port,...`) to register this shard in, for proxies started with
    /// the same --zookeeper and --cluster. Off by default.
    #[arg(long, env = "RINGCACHE_ZOOKEEPER")]
    pub zookeeper: Option<String>,

    /// The cluster this shard belongs to: its nodes live under /ringcache/<cluster> in ZooKeeper.
    #[arg(long, env = "RINGCACHE_CLUSTER", default_value = "default")]
    pub cluster: String,

    /// This shard's name on the ring (its identity: keep it when the address changes). Default: the
    /// advertised address.
    #[arg(long, env = "RINGCACHE_NAME")]
    pub name: Option<String>,

    /// `host:port` where proxies reach this shard. Default: --bind and --port (the host name when --bind
    /// is 0.0.0.0 or ::).
    #[arg(long, env = "RINGCACHE_ADVERTISE")]
    pub advertise: Option<String>,

    /// This shard's weight on the ring (registered; used when it is added).
    #[arg(long, env = "RINGCACHE_WEIGHT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub weight: u32,

    /// ZooKeeper session timeout: after a crash, the shard's registration disappears (and every proxy takes
    /// it for down) this long after its last heartbeat.
    #[arg(long, env = "RINGCACHE_ZOOKEEPER_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub zookeeper_session_timeout: Duration,

    /// Add this shard to the ring by itself when it registers (instead of waiting for
    /// `ringcache-proxy admin add`). Leaving the ring still takes the operator's `admin remove`.
    #[arg(long, env = "RINGCACHE_AUTO_JOIN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub auto_join: bool,
}

impl RegistryArgs {
    /// What to register, once the shard listens on `port`; `None` without `--zookeeper`.
    pub fn registration(&self, bind: &str, port: u16) -> Result<Option<Registration>, String> {
        let Some(servers) = self.zookeeper.clone().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let addr = match &self.advertise {
            Some(a) => a.clone(),
            None if bind == "0.0.0.0" || bind == "::" => format!("{}:{port}", session::host_name()),
            None => format!("{bind}:{port}"),
        };
        let name = self.name.clone().unwrap_or_else(|| addr.clone());
        layout::check_shard_name(&name).map_err(|e| e.to_string())?;
        layout::chroot(&self.cluster).map_err(|e| e.to_string())?;
        Ok(Some(Registration {
            settings: Settings {
                servers,
                cluster: self.cluster.clone(),
                session_timeout: self.zookeeper_session_timeout,
            },
            member: RingMember { name, addr, weight: self.weight },
            auto_join: self.auto_join,
        }))
    }
}

/// What this shard registers as, and where.
#[derive(Debug, Clone)]
pub struct Registration {
    pub settings: Settings,
    pub member: RingMember,
    pub auto_join: bool,
}

/// Whether the shard is connected to ZooKeeper and registered, for `/metrics`.
#[derive(Debug, Default)]
pub struct RegistryStatus {
    connected: AtomicBool,
    registered: AtomicBool,
}

impl RegistryStatus {
    pub fn collector(self: &Arc<Self>) -> ValueCollector {
        let (a, b) = (self.clone(), self.clone());
        ValueCollector::new(vec![
            Value::gauge("ringcache_zookeeper_connected", "1 while the ZooKeeper session is connected.", move || {
                f64::from(u8::from(a.connected.load(Ordering::Relaxed)))
            }),
            Value::gauge(
                "ringcache_zookeeper_registered",
                "1 while this shard's ephemeral node is in ZooKeeper.",
                move || f64::from(u8::from(b.registered.load(Ordering::Relaxed))),
            ),
        ])
    }
}

/// Keeps this shard registered until `shutdown`, then deletes its node.
pub async fn run(
    registration: Registration,
    shared: Arc<Shared>,
    status: Arc<RegistryStatus>,
    shutdown: CancellationToken,
) {
    let name = registration.member.name.clone();
    let mut backoff = Duration::from_millis(100);
    let mut reported_down = false;
    loop {
        let client = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = session::connect(&registration.settings) => c,
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                if !reported_down {
                    tracing::warn!("not registered as '{name}': {e}; retrying (clients are served meanwhile)");
                    reported_down = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        reported_down = false;
        status.connected.store(true, Ordering::Relaxed);
        match keep_registered(&registration, &client, &shared, &status, &shutdown).await {
            Ok(()) => {
                // Stopping: delete the node now rather than one session timeout from now.
                let _ = tokio::time::timeout(Duration::from_secs(2), client.delete(&path_of(&name), None)).await;
                status.registered.store(false, Ordering::Relaxed);
                tracing::info!("unregistered '{name}' from ZooKeeper");
                return;
            }
            Err(e) => {
                status.connected.store(false, Ordering::Relaxed);
                status.registered.store(false, Ordering::Relaxed);
                tracing::warn!("registration of '{name}' lost: {e}; registering again");
            }
        }
    }
}

fn path_of(name: &str) -> String {
    layout::shard_path(name).unwrap_or_default()
}

fn record(registration: &Registration, shared: &Shared) -> ShardRecord {
    let m = &registration.member;
    ShardRecord {
        name: m.name.clone(),
        addr: m.addr.clone(),
        weight: m.weight,
        state: shared.membership().name().to_string(),
    }
}

/// Registers, then keeps the node's state current. `Ok` on shutdown; `Err` when the session ended.
async fn keep_registered(
    registration: &Registration,
    client: &zk::Client,
    shared: &Shared,
    status: &RegistryStatus,
    shutdown: &CancellationToken,
) -> Result<(), CoordError> {
    let path = layout::shard_path(&registration.member.name)?;
    let mut published = record(registration, shared);
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    loop {
        match client.create(&path, &layout::encode(&published), &ephemeral).await {
            Ok(_) => break,
            // A node left by this shard's previous life (killed, restarted before its session timed out):
            // this process is that shard now.
            Err(zk::Error::NodeExists) => {
                tracing::info!("replacing the registration of '{}' left by an earlier session", published.name);
                match client.delete(&path, None).await {
                    Ok(()) | Err(zk::Error::NoNode) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    status.registered.store(true, Ordering::Relaxed);
    tracing::info!("registered '{}' ({}) in ZooKeeper as {}", published.name, published.addr, published.state);
    if registration.auto_join {
        match ring::update(client, ring::add(registration.member.clone())).await {
            Ok(r) => tracing::info!("--auto-join: '{}' is in ring version {}", published.name, r.version),
            Err(CoordError::Refused(why)) => tracing::warn!("--auto-join: {why}"),
            Err(e) => return Err(e),
        }
    }
    let mut states = client.state_watcher();
    let mut tick = tokio::time::interval(STATE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            state = states.changed() => match state {
                zk::SessionState::SyncConnected => {
                    status.connected.store(true, Ordering::Relaxed);
                    tracing::info!("ZooKeeper connection back");
                }
                zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                    status.connected.store(false, Ordering::Relaxed);
                    tracing::warn!("ZooKeeper connection lost; still serving, reconnecting");
                }
                ended => return Err(CoordError::Refused(format!("ZooKeeper session {ended}"))),
            },
            _ = tick.tick() => {
                let now = record(registration, shared);
                if now != published && client.state() == zk::SessionState::SyncConnected {
                    match client.set_data(&path, &layout::encode(&now), None).await {
                        Ok(_) => published = now,
                        Err(zk::Error::SessionExpired) => return Err(zk::Error::SessionExpired.into()),
                        Err(e) => tracing::debug!("updating the registration: {e}"),
                    }
                }
            }
        }
    }
}
