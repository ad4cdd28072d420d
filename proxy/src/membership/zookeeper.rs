//! Membership from ZooKeeper (`--zookeeper host:port,... --cluster NAME`; nodes under `/ringcache/NAME`, see
//! `ringcache_coord::layout`).
//!
//! - **Ring**: the node `/ring` (members and a version), watched; every new version is applied with
//!   [`Cluster::change_ring`], one at a time, the newest first when several arrive during a change. Only an
//!   operator (`ringcache-proxy admin`) or a shard's `--auto-join` changes it.
//! - **Health**: every shard keeps an ephemeral node `/shards/<name>` while its session lives. A ring member
//!   whose node is gone is ejected by every proxy as soon as ZooKeeper tells them, and is not readmitted
//!   (whatever the proxy's own probes say) until it is registered again. The proxies' own probes still eject
//!   faster than a session timeout. Absence is only trusted once this proxy has been connected for a whole
//!   session timeout (after the ensemble itself was away, live shards need that long to register again),
//!   and only for shards seen registered before (one started without `--zookeeper` is left to the probes).
//! - **Handoffs**: run under the ZooKeeper lock `/locks/<shard>` (`ringcache_coord::lock`), confirmed before
//!   every batch of keys: a proxy whose connection to ZooKeeper is lost stops at the next batch, and one
//!   that cannot reach ZooKeeper never starts one. A lock is only lost with its session, which the server
//!   expires a session timeout after the proxy's last heartbeat, while the client gives up after two thirds
//!   of it: so a batch confirmed while connected and bounded by `--timeout` (under a third of the session
//!   timeout, checked at start) ends before another proxy can take the lock.
//! - **View**: the proxy publishes `/proxies/<token>` (ring version, shards up and down) for `admin list`.
//! - **ZooKeeper away**: the proxy keeps serving on the ring it has, with its own probes, logs it and exports
//!   `ringcache_zookeeper_connected 0`; rings and registrations are read again when it is back (a new
//!   session if the old one expired).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use ringcache_coord::layout::{self, ProxyRecord, RingRecord, ShardRecord, PROXIES, SHARDS};
use ringcache_coord::session::{self, Settings};
use ringcache_coord::{lock, ring, zk, CoordError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ControlPlane, HandoffKind, MembershipError, Registration};
use crate::cluster::{Cluster, ShardHandle};
use crate::config::{parse_shards, ProxyArgs, ShardSpec};
use crate::handoff::HandoffError;

/// How long a contender that found the lock free waits when another one got there first.
const LOCK_WAIT: Duration = Duration::from_millis(100);
/// What the lock holder writes into its lock node once the shard is readmitted.
const READMITTED: &[u8] = b"readmitted";
/// Longest wait, before the stand-ins delete the keys handed back, for every proxy to route to the shard.
const ROUTED_WAIT: Duration = Duration::from_secs(2);
/// Registrations are read again at least this often (and at once on every change ZooKeeper reports).
const REREAD: Duration = Duration::from_secs(2);
/// How often the ejection of unregistered shards is reconsidered, and the proxy's view published.
const TICK: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to reach the ensemble.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The ZooKeeper source before it starts following changes.
pub struct ZooKeeperSource {
    control: Arc<ZooKeeperControl>,
    /// The session opened at start, if the ensemble answered.
    first: Option<zk::Client>,
    /// The version of the ring the proxy starts with (0: not from ZooKeeper).
    version: u64,
}

/// What the cluster asks of ZooKeeper: registrations and locks.
pub struct ZooKeeperControl {
    settings: Settings,
    state: Mutex<SessionView>,
    /// Handoff locks held, by shard, with the session that holds them.
    locks: Mutex<HashMap<String, (lock::Held, i64)>>,
    /// Shards seen registered at least once: only their absence says anything (a shard started without
    /// `--zookeeper` is left to this proxy's probes, with a warning, rather than never admitted).
    seen: Mutex<HashSet<String>>,
}

#[derive(Default)]
struct SessionView {
    client: Option<zk::Client>,
    connected: bool,
    /// When the connection was (re)established: absence of a registration is trusted a session timeout later.
    connected_since: Option<Instant>,
    /// Registered shards, by name, as last read.
    registered: Option<HashMap<String, ShardRecord>>,
}

fn specs(ring: &RingRecord) -> Vec<ShardSpec> {
    ring.shards.iter().map(|m| ShardSpec { name: m.name.clone(), addr: m.addr.clone(), weight: m.weight }).collect()
}

fn names(ring: &RingRecord) -> String {
    ring.shards.iter().map(|m| format!("{}={}", m.name, m.addr)).collect::<Vec<_>>().join(", ")
}

impl ZooKeeperSource {
    /// Connects and reads the ring; when the ensemble cannot be reached, starts from the `--shards` /
    /// `--config` list if there is one (and follows ZooKeeper once it answers), else refuses.
    pub async fn open(
        settings: Settings,
        args: &ProxyArgs,
    ) -> Result<(ZooKeeperSource, Vec<ShardSpec>), MembershipError> {
        let control = Arc::new(ZooKeeperControl {
            settings: settings.clone(),
            state: Mutex::new(SessionView::default()),
            locks: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashSet::new()),
        });
        let connected = async {
            let client = session::connect(&settings).await?;
            let ring = ring::read(&client).await?;
            Ok::<_, CoordError>((client, ring))
        };
        let unreachable = match tokio::time::timeout(settings.session_timeout, connected).await {
            Ok(Ok((client, ring))) => {
                let ring = ring.unwrap_or_default();
                if ring.shards.is_empty() {
                    tracing::warn!(
                        "the ring of cluster '{}' in ZooKeeper is empty: add shards with `ringcache-proxy admin add`",
                        settings.cluster
                    );
                } else {
                    tracing::info!("ring version {} from ZooKeeper: {}", ring.version, names(&ring));
                }
                let source = ZooKeeperSource { control, first: Some(client), version: ring.version };
                return Ok((source, specs(&ring)));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no ZooKeeper session at {} within {:?}", settings.servers, settings.session_timeout),
        };
        match args.shards.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(list) => {
                let shards = parse_shards(list).map_err(MembershipError::Shards)?;
                tracing::warn!(
                    "{unreachable}: serving the shards of --config/--shards until ZooKeeper answers, then its ring"
                );
                Ok((ZooKeeperSource { control, first: None, version: 0 }, shards))
            }
            None => Err(MembershipError::NoZooKeeper(unreachable)),
        }
    }

    pub fn install(&self, cluster: &Arc<Cluster>) {
        cluster.set_control(self.control.clone());
        cluster.set_ring_version(self.version);
    }

    pub fn spawn(self, cluster: Arc<Cluster>, advertised: String, shutdown: CancellationToken) {
        let (rings, latest) = watch::channel(None);
        tokio::spawn(apply_rings(latest, cluster.clone(), shutdown.clone()));
        tokio::spawn(self.control.clone().run(self.first, cluster, rings, advertised, shutdown));
    }
}

/// Applies each new ring, one change at a time (the newest waiting one next).
async fn apply_rings(
    mut latest: watch::Receiver<Option<RingRecord>>,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = latest.changed() => if changed.is_err() { return },
        }
        let Some(ring) = latest.borrow_and_update().clone() else { continue };
        if ring.version == cluster.ring_version() {
            continue;
        }
        tracing::info!("ring version {} from ZooKeeper: {}", ring.version, names(&ring));
        cluster.change_ring(specs(&ring), ring.version).await;
        tracing::info!("ring version {} applied", ring.version);
    }
}

fn ended(e: &CoordError) -> bool {
    matches!(
        e,
        CoordError::Zk(
            zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed | zk::Error::NoHosts
        )
    )
}

impl ZooKeeperControl {
    /// Keeps a session (a new one after expiry) and follows the ring and the registrations until `shutdown`.
    async fn run(
        self: Arc<Self>,
        mut first: Option<zk::Client>,
        cluster: Arc<Cluster>,
        rings: watch::Sender<Option<RingRecord>>,
        advertised: String,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut reported = false;
        loop {
            let client = match first.take() {
                Some(c) => c,
                None => {
                    let attempt = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        c = session::connect(&self.settings) => c,
                    };
                    match attempt {
                        Ok(c) => c,
                        Err(e) => {
                            if !reported {
                                tracing::warn!(
                                    "{e}: serving ring version {} with this proxy's own health checks; membership \
                                     changes and handoffs wait for ZooKeeper",
                                    cluster.ring_version()
                                );
                                reported = true;
                            }
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            continue;
                        }
                    }
                }
            };
            backoff = Duration::from_millis(100);
            reported = false;
            tracing::info!(
                "ZooKeeper session {} with {} (cluster '{}')",
                client.session_id(),
                self.settings.servers,
                self.settings.cluster
            );
            self.session_started(&client);
            let proxy_node = format!("{PROXIES}/{}", cluster.token);
            let end = tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), client.delete(&proxy_node, None)).await;
                    return;
                }
                e = watch_ring(&client, &rings) => e,
                e = self.watch_registrations(&client, &cluster) => e,
                e = self.watch_state(&client, &cluster) => e,
                e = publish_view(&client, &cluster, &proxy_node, &advertised) => e,
            };
            self.session_ended();
            tracing::warn!(
                "ZooKeeper session ended ({end}): serving ring version {} with local health checks; reconnecting",
                cluster.ring_version()
            );
        }
    }

    fn session_started(&self, client: &zk::Client) {
        let mut s = self.state.lock();
        s.client = Some(client.clone());
        s.connected = client.state() == zk::SessionState::SyncConnected;
        s.connected_since = Some(Instant::now());
        s.registered = None;
    }

    fn session_ended(&self) {
        *self.state.lock() = SessionView::default();
        // Their nodes went with the session.
        self.locks.lock().clear();
    }

    /// Follows the connection's state: registrations are not trusted while disconnected.
    async fn watch_state(&self, client: &zk::Client, cluster: &Cluster) -> CoordError {
        let mut states = client.state_watcher();
        loop {
            match states.changed().await {
                zk::SessionState::SyncConnected => {
                    let mut s = self.state.lock();
                    s.connected = true;
                    s.connected_since = Some(Instant::now());
                    drop(s);
                    tracing::info!("ZooKeeper connection back (ring version {})", cluster.ring_version());
                }
                state if state.is_terminated() => return CoordError::Refused(format!("session {state}")),
                state => {
                    self.state.lock().connected = false;
                    tracing::warn!(
                        "ZooKeeper connection lost ({state}): serving ring version {} with local health checks; \
                         membership changes and handoffs wait for it",
                        cluster.ring_version()
                    );
                }
            }
        }
    }

    /// Reads the registrations whenever they change (and every few seconds), and ejects ring members whose
    /// registration is gone.
    async fn watch_registrations(&self, client: &zk::Client, cluster: &Cluster) -> CoordError {
        let mut watcher = loop {
            match client.watch(SHARDS, zk::AddWatchMode::PersistentRecursive).await {
                Ok(w) => break w,
                Err(e) => {
                    let e = CoordError::from(e);
                    if ended(&e) {
                        return e;
                    }
                    tokio::time::sleep(TICK).await;
                }
            }
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stale = true;
        let mut last_read = Instant::now();
        let mut warned = HashSet::new();
        loop {
            if stale || last_read.elapsed() >= REREAD {
                match session::registered_shards(client).await {
                    Ok(list) => {
                        self.seen.lock().extend(list.iter().map(|r| r.name.clone()));
                        self.state.lock().registered = Some(list.into_iter().map(|r| (r.name.clone(), r)).collect());
                        stale = false;
                        last_read = Instant::now();
                    }
                    Err(e) if ended(&e) => return e,
                    Err(e) => tracing::debug!("reading registrations: {e}"),
                }
            }
            self.eject_unregistered(cluster, &mut warned).await;
            tokio::select! {
                event = watcher.changed() => {
                    if event.event_type == zk::EventType::Session && event.session_state.is_terminated() {
                        return CoordError::Refused(format!("session {}", event.session_state));
                    }
                    stale = true;
                }
                _ = tick.tick() => {}
            }
        }
    }

    async fn eject_unregistered(&self, cluster: &Cluster, warned: &mut HashSet<String>) {
        let up: Vec<String> =
            cluster.topology().shards.iter().filter(|s| s.is_up()).map(|s| s.spec.name.clone()).collect();
        for name in up {
            if self.registration(&name) == Registration::Unknown
                && self.trusted()
                && !self.seen.lock().contains(&name)
                && warned.insert(name.clone())
            {
                tracing::warn!(
                    "shard '{name}' is in the ring but has never registered in ZooKeeper (start it with \
                     --zookeeper): only this proxy's own probes tell whether it is up"
                );
            }
            if self.registration(&name) == Registration::Absent {
                cluster.eject(&name, "has no registration in ZooKeeper (its session ended)").await;
            }
        }
    }

    /// Connected, with registrations read, for a whole session timeout.
    fn trusted(&self) -> bool {
        let s = self.state.lock();
        s.connected
            && s.registered.is_some()
            && s.connected_since.is_some_and(|t| t.elapsed() >= self.settings.session_timeout)
    }

    /// The session, if it is connected now.
    fn connected_client(&self) -> Option<zk::Client> {
        let s = self.state.lock();
        s.client.clone().filter(|c| s.connected && c.state() == zk::SessionState::SyncConnected)
    }
}

/// Publishes every ring version, until the session ends.
async fn watch_ring(client: &zk::Client, rings: &watch::Sender<Option<RingRecord>>) -> CoordError {
    loop {
        match ring::read_and_watch(client).await {
            Ok((current, watcher)) => {
                if let Some(r) = current {
                    rings.send_replace(Some(r));
                }
                let event = watcher.changed().await;
                if event.session_state.is_terminated() {
                    return CoordError::Refused(format!("session {}", event.session_state));
                }
            }
            Err(e) if ended(&e) => return e,
            Err(e) => {
                tracing::debug!("reading the ring: {e}");
                tokio::time::sleep(TICK).await;
            }
        }
    }
}

/// This proxy's view for operators, kept in an ephemeral node while the session lasts.
async fn publish_view(client: &zk::Client, cluster: &Cluster, path: &str, advertised: &str) -> CoordError {
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let mut published: Option<ProxyRecord> = None;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let topo = cluster.topology();
        let (up, down): (Vec<_>, Vec<_>) = topo.shards.iter().partition(|s| s.is_up());
        let view = ProxyRecord {
            addr: advertised.to_string(),
            ring_version: cluster.ring_version(),
            shards_up: up.iter().map(|s| s.spec.name.clone()).collect(),
            shards_down: down.iter().map(|s| s.spec.name.clone()).collect(),
        };
        drop(topo);
        if published.as_ref() == Some(&view) {
            continue;
        }
        let data = layout::encode(&view);
        let written = match published {
            Some(_) => client.set_data(path, &data, None).await.map(drop),
            None => match client.create(path, &data, &ephemeral).await {
                Err(zk::Error::NodeExists) => client.set_data(path, &data, None).await.map(drop),
                other => other.map(drop),
            },
        };
        match written.map_err(CoordError::from) {
            Ok(()) => published = Some(view),
            Err(e) if ended(&e) => return e,
            Err(CoordError::Zk(zk::Error::NoNode)) => published = None,
            Err(e) => tracing::debug!("publishing this proxy's view: {e}"),
        }
    }
}

impl ControlPlane for ZooKeeperControl {
    fn source(&self) -> &'static str {
        "zookeeper"
    }

    fn connected(&self) -> bool {
        self.state.lock().connected
    }

    fn registration(&self, shard: &str) -> Registration {
        let s = self.state.lock();
        let Some(registered) = s.registered.as_ref().filter(|_| s.connected) else {
            return Registration::Unknown;
        };
        match registered.get(shard) {
            Some(r) => Registration::Present(r.state.clone()),
            None if s.connected_since.is_some_and(|t| t.elapsed() >= self.settings.session_timeout)
                && self.seen.lock().contains(shard) =>
            {
                Registration::Absent
            }
            None => Registration::Unknown,
        }
    }

    fn locks_drains(&self) -> bool {
        true
    }

    fn lock<'a>(
        &'a self,
        cluster: &'a Cluster,
        shard: &'a ShardHandle,
        _kind: HandoffKind,
    ) -> BoxFuture<'a, Result<bool, HandoffError>> {
        Box::pin(async move {
            let name = &shard.spec.name;
            // Without a connected session this proxy cannot know it still holds a lock, nor take one.
            let Some(client) = self.connected_client() else {
                if self.locks.lock().remove(name).is_some() {
                    tracing::warn!("handoff lock for '{name}': ZooKeeper connection lost; stopping the handoff");
                }
                return Ok(false);
            };
            let session = client.session_id().0;
            {
                let mut locks = self.locks.lock();
                match locks.get(name) {
                    Some((_, held_by)) if *held_by == session => return Ok(true),
                    Some(_) => {
                        locks.remove(name);
                    }
                    None => {}
                }
            }
            // Held by another proxy: say so without queueing (a queued contender node per poll would only
            // load the ensemble; the caller polls, and checks whether the holder has readmitted the shard).
            match lock::holder(&client, name).await {
                Ok(Some(_)) => return Ok(false),
                Ok(None) => {}
                Err(e) => {
                    return Err(HandoffError::Shard { shard: name.clone(), reason: format!("ZooKeeper lock: {e}") })
                }
            }
            match lock::try_lock(&client, name, &cluster.token, LOCK_WAIT).await {
                Ok(Some(held)) if client.state() == zk::SessionState::SyncConnected => {
                    tracing::debug!("holding the ZooKeeper handoff lock for '{name}' ({})", held.lock_path());
                    self.locks.lock().insert(name.clone(), (held, session));
                    Ok(true)
                }
                Ok(_) => Ok(false),
                Err(e) => Err(HandoffError::Shard { shard: name.clone(), reason: format!("ZooKeeper lock: {e}") }),
            }
        })
    }

    fn handed_back<'a>(&'a self, shard: &'a ShardHandle) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let path = self.locks.lock().get(&shard.spec.name).map(|(held, _)| held.lock_path().to_string());
            let (Some(path), Some(client)) = (path, self.connected_client()) else { return };
            if let Err(e) = client.set_data(&path, READMITTED, None).await {
                tracing::debug!("marking the handoff of '{}' done: {e}", shard.spec.name);
            }
        })
    }

    fn readmitted_elsewhere<'a>(&'a self, shard: &'a ShardHandle) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(client) = self.connected_client() else { return false };
            matches!(lock::holder(&client, &shard.spec.name).await, Ok(Some((_, data))) if data == READMITTED)
        })
    }

    fn wait_until_routed<'a>(&'a self, shard: &'a ShardHandle) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(client) = self.connected_client() else { return };
            let deadline = Instant::now() + ROUTED_WAIT;
            while Instant::now() < deadline {
                match session::proxies(&client).await {
                    Ok(views) if views.iter().all(|(_, v)| v.shards_up.contains(&shard.spec.name)) => return,
                    Ok(_) => {}
                    Err(_) => return,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tracing::debug!("not every proxy routes to '{}' yet; finishing its handoff anyway", shard.spec.name);
        })
    }

    fn unlock<'a>(&'a self, _cluster: &'a Cluster, shard: &'a ShardHandle, _kind: HandoffKind) -> BoxFuture<'a, ()> {
        // Dropping the lock deletes its node (in the background; with its session if that is gone).
        let held = self.locks.lock().remove(&shard.spec.name);
        drop(held);
        Box::pin(std::future::ready(()))
    }
}
