//! The shards the proxy knows, their health, and the ring over them.
//!
//! A [`Topology`] (ring + shard handles) is immutable and swapped atomically; a request is routed through a
//! [`View`] of it, which reads every shard's up flag once, so all of one request's routing sees the same
//! health. Each shard has a fixed number of pipelined [`BackendConn`]s and a health checker that PINGs it
//! every `--health-interval`: `--failure-limit` consecutive failures mark it down (its keys go to the next
//! live shard on the ring) and two successful probes in a row readmit it, after the writes made elsewhere
//! while it was away have been handed back to it ([`crate::handoff`]).
//!
//! Passive ejection: a request that finds its shard's connection refused or reset asks the health checker
//! to judge the shard at once ([`ShardHandle::judged_down`]); a probe on a fresh connection that is refused,
//! reset or answered `-LOADING` ejects it there and then, exactly as failed health checks do (hints opened
//! first), and the request is sent again on the new route ([`crate::failover`]). Readmission is still
//! decided by the health checks alone.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use ringcache_common::tls::ShardStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backend::{authenticate, read_line, BackendConn, BackendError, ConnectError};
use crate::config::ShardSpec;
use crate::handoff::{self, HandoffError};
use crate::membership::{ControlPlane, HandoffKind, Registration, SHARD_LEASES};
use crate::metrics::{BackendMetrics, ProxyMetrics};
use crate::ring::Ring;
use ringcache_common::hash::{HashTag, KeyHash, Placement};
use ringcache_common::resp::Protocol;

/// One shard: where it is, whether it is healthy, and the connections to it.
pub struct ShardHandle {
    pub spec: ShardSpec,
    up: AtomicBool,
    /// A drain of this shard is under way or done (a shard is drained once per handle).
    draining: AtomicBool,
    /// New to the ring: its keys must be seeded on their old owners before it is first admitted.
    joining: AtomicBool,
    /// This proxy has seen the shard as a ring member: if it later answers as a new process (`RINGCACHE
    /// MEMBER` says `joining`), it restarted and may have missed writes.
    seen_member: AtomicBool,
    /// `--backend-connections` per worker thread, worker by worker: a session uses only its own worker's,
    /// so a request and its reply never cross threads. RESP2 connections.
    pub conns: Vec<BackendConn>,
    /// The same for RESP3 clients, whose replies are forwarded as the shard wrote them in RESP3. Each is
    /// started on its worker by the first session that needs it, so a proxy with no RESP3 client opens none.
    pub conns_resp3: Vec<OnceLock<BackendConn>>,
    /// What starting a connection to this shard takes (for the RESP3 connections opened on demand).
    conn_settings: ConnSettings,
    per_worker: usize,
    /// A connection of its own for handoff work: a long command there (seeding walks the keyspace) holds up
    /// only what follows it on that connection, never clients' requests.
    pub admin: BackendConn,
    pub metrics: Arc<BackendMetrics>,
    /// The cluster this shard belongs to (for requests that fail over to another shard).
    cluster: Weak<Cluster>,
    /// Suspicions raised by requests that found the shard's connection refused or reset, and how many of
    /// them the health checker has judged: see [`Self::judged_down`].
    suspicions: AtomicU64,
    judged: AtomicU64,
    suspect: Notify,
    verdict: Notify,
    /// Why the last health check failed, when the shard refused to authenticate the proxy: 0, or a
    /// [`BackendError`] auth kind (see [`Self::auth_failure`]).
    auth_failure: AtomicU8,
}

impl ShardHandle {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The cluster, unless it is gone (the proxy is stopping).
    pub fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.upgrade()
    }

    /// A request found this shard's connection refused or reset: has the shard's health checker, probing
    /// it at once on a fresh connection, ejected it? Waits for that judgement (at most `timeout`); true when
    /// the shard is down.
    pub async fn judged_down(&self, timeout: Duration) -> bool {
        if !self.is_up() {
            return true;
        }
        let verdict = self.verdict.notified();
        tokio::pin!(verdict);
        // Registered before the suspicion is raised, so the verdict cannot slip past unseen.
        verdict.as_mut().enable();
        let mine = self.suspicions.fetch_add(1, Ordering::AcqRel) + 1;
        self.suspect.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        while self.is_up() && self.judged.load(Ordering::Acquire) < mine {
            if tokio::time::timeout_at(deadline, verdict.as_mut()).await.is_err() {
                break;
            }
            verdict.set(self.verdict.notified());
            verdict.as_mut().enable();
        }
        !self.is_up()
    }

    /// The shard's last health check failed because it refused to authenticate the proxy.
    pub fn auth_failure(&self) -> Option<BackendError> {
        match self.auth_failure.load(Ordering::Relaxed) {
            1 => Some(BackendError::AuthRejected),
            2 => Some(BackendError::AuthRequired),
            _ => None,
        }
    }

    fn set_auth_failure(&self, e: Option<BackendError>) {
        let code = match e {
            Some(BackendError::AuthRejected) => 1,
            Some(BackendError::AuthRequired) => 2,
            _ => 0,
        };
        self.auth_failure.store(code, Ordering::Relaxed);
    }

    /// What opening a connection of its own to this shard takes: the connect timeout and the password.
    pub fn connection_settings(&self) -> (Duration, Option<String>) {
        (self.conn_settings.timeout, self.conn_settings.password.clone())
    }

    /// The connection a client session uses for replies in `proto`: always the same one, so that one
    /// client's requests to a shard stay in order, and one on the session's own worker thread.
    pub fn conn_for(&self, session_id: u64, proto: Protocol) -> &BackendConn {
        let worker = ringcache_common::workers::current_index().unwrap_or(0);
        let index = worker * self.per_worker + (session_id as usize) % self.per_worker;
        match proto {
            Protocol::Resp2 => &self.conns[index % self.conns.len()],
            Protocol::Resp3 => {
                let slot = &self.conns_resp3[index % self.conns_resp3.len()];
                slot.get_or_init(|| {
                    let s = &self.conn_settings;
                    BackendConn::start(
                        &tokio::runtime::Handle::current(),
                        self.spec.addr.clone(),
                        s.timeout,
                        s.password.clone(),
                        self.metrics.clone(),
                        s.shutdown.clone(),
                        Protocol::Resp3,
                    )
                })
            }
        }
    }

    /// What opening a connection of its own to this shard takes: address, password and `--timeout`
    /// (see [`crate::dedicated`]).
    pub fn connect_settings(&self) -> (&str, Option<&str>, Duration) {
        (&self.spec.addr, self.conn_settings.password.as_deref(), self.conn_settings.timeout)
    }

    /// Every client connection to this shard that has been started (RESP2 and RESP3).
    pub fn client_conns(&self) -> impl Iterator<Item = &BackendConn> {
        self.conns.iter().chain(self.conns_resp3.iter().filter_map(OnceLock::get))
    }
}

/// Settings for starting a backend connection to a shard.
struct ConnSettings {
    timeout: Duration,
    password: Option<String>,
    shutdown: CancellationToken,
}

/// The ring and its shards, swapped as a whole.
pub struct Topology {
    pub ring: Ring,
    pub shards: Vec<Arc<ShardHandle>>,
    /// Copies of each key (`--replicas`).
    pub replicas: usize,
    /// Whether writes to stand-ins are recorded for hinted handoff (shared with the cluster, which turns it
    /// off in front of shards that do not support it).
    pub handoff: Arc<AtomicBool>,
}

/// How much longer than `--timeout` a handoff command may take (seeding and finishing walk many keys).
pub const ADMIN_TIMEOUT_FACTOR: u32 = 60;

/// The live shards holding a key's copies, the owner (where reads go) first.
pub type Owners = smallvec::SmallVec<[usize; 4]>;

impl Topology {
    /// The shards' health as it is now, read once. Route each request through one view: a shard ejected or
    /// readmitted while the request is routed must not look down to one step and up to the next. (A write
    /// of a returning shard's key, sent to its stand-in because the shard looked down, but not wrapped as
    /// hinted because by then it looked up, would land on the stand-in unrecorded: never handed back, never
    /// deleted there, and served as a stale value in the shard's next outage.)
    pub fn view(&self) -> View<'_> {
        let mut up = UpSet::new(self.shards.len());
        for (i, shard) in self.shards.iter().enumerate() {
            if shard.is_up() {
                up.insert(i);
            }
        }
        View { topology: self, hinting: self.handoff.load(Ordering::Relaxed) && !up.all(), up }
    }
}

/// Shard indexes, as bits.
#[derive(Debug, Clone)]
struct UpSet {
    words: smallvec::SmallVec<[u64; 2]>,
    len: usize,
}

impl UpSet {
    fn new(len: usize) -> UpSet {
        UpSet { words: smallvec::smallvec![0; len.div_ceil(64)], len }
    }

    fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn all(&self) -> bool {
        self.words.iter().map(|w| w.count_ones() as usize).sum::<usize>() == self.len
    }
}

/// A [`Topology`] with its shards' health read at one instant ([`Topology::view`]): every routing question
/// about one request is answered from the same reading.
pub struct View<'a> {
    topology: &'a Topology,
    up: UpSet,
    /// Handoff is on and some shard is down.
    hinting: bool,
}

impl std::ops::Deref for View<'_> {
    type Target = Topology;

    fn deref(&self) -> &Topology {
        self.topology
    }
}

impl View<'_> {
    /// Whether shard `i` was up when the view was taken.
    pub fn is_up(&self, i: usize) -> bool {
        self.up.contains(i)
    }

    /// The live shard that owns `key`.
    pub fn owner(&self, key: &[u8]) -> Option<usize> {
        self.ring.live_owner(key, |i| self.up.contains(i))
    }

    /// The live shards that hold `key`'s copies: up to `replicas` distinct shards, the owner first.
    pub fn owners(&self, key: &[u8]) -> Owners {
        let mut out = Owners::new();
        self.ring.live_owners(key, self.replicas, |i| self.up.contains(i), &mut out);
        out
    }

    pub fn live(&self) -> impl Iterator<Item = (usize, &Arc<ShardHandle>)> {
        self.shards.iter().enumerate().filter(|(i, _)| self.up.contains(*i))
    }

    /// Whether writes may need wrapping for hinted handoff: handoff is on and some shard is down.
    pub fn hinting(&self) -> bool {
        self.hinting
    }

    /// Where a write of `key` goes: its live copies, the owner first, each with the names of the absent
    /// shards it stands in for (comma-separated), if any. Without [`Self::hinting`], no copy has any.
    pub fn write_copies(&self, key: &[u8]) -> WriteCopies {
        let live = self.owners(key);
        if !self.hinting {
            return live.into_iter().map(|i| (i, None)).collect();
        }
        let mut natural = Owners::new();
        self.ring.live_owners(key, self.replicas, |_| true, &mut natural);
        let absent: Vec<&str> =
            natural.iter().filter(|i| !live.contains(i)).map(|&i| self.shards[i].spec.name.as_str()).collect();
        let targets: Option<Arc<str>> = (!absent.is_empty()).then(|| Arc::from(absent.join(",")));
        live.into_iter().map(|i| (i, if natural.contains(&i) { None } else { targets.clone() })).collect()
    }

    /// The names of the shards that are down, comma-separated (`None` when all are up or handoff is off).
    pub fn absent_names(&self) -> Option<Arc<str>> {
        if !self.hinting {
            return None;
        }
        let names: Vec<&str> = (0..self.shards.len())
            .filter(|&i| !self.up.contains(i))
            .map(|i| self.shards[i].spec.name.as_str())
            .collect();
        Some(Arc::from(names.join(",")))
    }
}

impl ClusterSettings {
    /// How keys are placed: `--key-hash` and `--hash-tag`.
    pub fn placement(&self) -> Placement {
        Placement::new(self.key_hash, self.hash_tag)
    }
}

/// A write's copies: (shard index, absent shards it stands in for).
pub type WriteCopies = smallvec::SmallVec<[(usize, Option<Arc<str>>); 4]>;

/// Settings the cluster needs to build shard handles.
#[derive(Clone)]
pub struct ClusterSettings {
    pub key_hash: KeyHash,
    /// `--hash-tag`.
    pub hash_tag: HashTag,
    pub timeout: Duration,
    pub health_interval: Duration,
    pub failure_limit: u32,
    pub backend_connections: usize,
    pub shard_password: Option<String>,
    /// Copies of each key (`--replicas`).
    pub replicas: usize,
    /// Hinted handoff (`--handoff`).
    pub handoff: bool,
}

pub struct Cluster {
    topology: ArcSwap<Topology>,
    pub settings: ClusterSettings,
    /// The worker runtimes client sessions run on; each gets its own connections to every shard.
    workers: Vec<tokio::runtime::Handle>,
    /// This (control) runtime: health checks and handoff work, on connections of their own.
    control: tokio::runtime::Handle,
    metrics: Arc<ProxyMetrics>,
    shutdown: CancellationToken,
    /// Hinted handoff is on (`--handoff`, and every shard understood it so far).
    handoff: Arc<AtomicBool>,
    /// This proxy's name in a shard's handoff lock.
    pub token: String,
    /// Where membership, shared health and handoff locks come from ([`crate::membership`]); leases on the
    /// shards until a source installs another.
    membership: OnceLock<Arc<dyn ControlPlane>>,
    /// The ring version this proxy routes on: its source's (ZooKeeper), or the reloads applied (file).
    ring_version: AtomicU64,
    /// Bumped whenever a shard goes down: a client session that has requests in flight from before holds
    /// its next ones back until those are answered (or sent again elsewhere), so that its requests still
    /// run in the order it sent them.
    ejections: AtomicU64,
}

impl Cluster {
    /// Builds the cluster on the current (control) runtime; client connections to the shards are started on
    /// `workers` (on the control runtime too when `workers` is empty).
    pub fn new(
        shards: Vec<ShardSpec>,
        settings: ClusterSettings,
        metrics: Arc<ProxyMetrics>,
        shutdown: CancellationToken,
        workers: &[tokio::runtime::Handle],
    ) -> Arc<Cluster> {
        let control = tokio::runtime::Handle::current();
        let workers = if workers.is_empty() { vec![control.clone()] } else { workers.to_vec() };
        let handoff = Arc::new(AtomicBool::new(settings.handoff));
        let cluster = Arc::new(Cluster {
            topology: ArcSwap::from_pointee(Topology {
                ring: Ring::with_placement(&[], settings.placement()),
                shards: Vec::new(),
                replicas: settings.replicas,
                handoff: handoff.clone(),
            }),
            settings,
            workers,
            control,
            metrics,
            shutdown,
            handoff,
            token: format!("proxy-{:016x}", rand::random::<u64>()),
            membership: OnceLock::new(),
            ring_version: AtomicU64::new(1),
            ejections: AtomicU64::new(0),
        });
        cluster.install(shards, &[]);
        cluster
    }

    /// Starts the first shards' health checkers; [`Self::recover_handoffs`] runs before, so that a checker
    /// never marks a shard a member, or routes to it, before its pending hints are known.
    pub fn start_health_checks(self: &Arc<Self>) {
        for shard in self.topology().shards.iter() {
            tokio::spawn(health_check(self.clone(), shard.clone()));
        }
    }

    pub fn topology(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.topology.load()
    }

    /// How many times a shard has gone down (see `ejections`).
    pub fn ejection_epoch(&self) -> u64 {
        self.ejections.load(Ordering::Acquire)
    }

    /// Routes `shard`'s keys elsewhere from now on.
    fn mark_down(&self, shard: &ShardHandle) {
        shard.up.store(false, Ordering::Release);
        self.ejections.fetch_add(1, Ordering::AcqRel);
        shard.metrics.up.set(0);
    }

    /// Installs the membership source's control plane (once, before the health checks start).
    pub fn set_control(&self, control: Arc<dyn ControlPlane>) {
        let _ = self.membership.set(control);
    }

    pub fn control(&self) -> &dyn ControlPlane {
        self.membership.get().map_or(&SHARD_LEASES as &dyn ControlPlane, |c| c.as_ref())
    }

    /// The version of the ring this proxy routes on (or is moving to).
    pub fn ring_version(&self) -> u64 {
        self.ring_version.load(Ordering::Relaxed)
    }

    /// [`Self::change_shards`] to the ring of a given version (from a membership source that numbers them).
    pub async fn change_ring(self: &Arc<Self>, specs: Vec<ShardSpec>, version: u64) {
        self.ring_version.store(version, Ordering::Relaxed);
        self.change_shards_inner(specs).await;
    }

    /// Sets the version of the ring the cluster started with.
    pub fn set_ring_version(&self, version: u64) {
        self.ring_version.store(version, Ordering::Relaxed);
    }

    /// Takes (or, during a handoff, confirms) the right to hand keys to or from `shard`.
    pub async fn handoff_lock(&self, shard: &ShardHandle, kind: HandoffKind) -> Result<bool, HandoffError> {
        self.control().lock(self, shard, kind).await
    }

    /// Marks shard `name` down at once, for every request routed from now on (its membership source says it
    /// is gone); its health checker readmits it through a handoff when it answers again.
    pub async fn eject(&self, name: &str, why: &str) {
        let shard = self.topology().shards.iter().find(|s| s.spec.name == name).cloned();
        if let Some(shard) = shard.filter(|s| s.is_up()) {
            self.eject_shard(&shard, why).await;
        }
    }

    async fn eject_shard(&self, shard: &ShardHandle, why: &str) {
        // The other shards must accept hinted writes before this one's keys are routed to them.
        self.open_handoff(shard).await;
        self.mark_down(shard);
        tracing::warn!(
            "shard '{}' ({}) {why}: ejected, its keys go to the next shard",
            shard.spec.name,
            shard.spec.addr
        );
        shard.metrics.ejections.inc();
    }

    /// Applies a changed shard list (a config reload) and moves the keys whose owner changed, in three steps:
    /// 1. the ring gets the added shards next to all the old ones; an added shard joins absent, the shards
    ///    holding its keys keep them as hints for it, and it is admitted (handed them) as soon as it answers;
    /// 2. each removed shard is drained: its keys are copied to the shards that own them without it;
    /// 3. the ring loses the removed shards, and the others forget their hints.
    ///
    /// With equal weights, step 1's ring places every key as the final ring does, except on removed
    /// shards. With handoff off (shards that are not ringcache-shard) the ring just changes, as in twemproxy.
    pub async fn change_shards(self: &Arc<Self>, specs: Vec<ShardSpec>) {
        self.ring_version.fetch_add(1, Ordering::Relaxed);
        self.change_shards_inner(specs).await;
    }

    async fn change_shards_inner(self: &Arc<Self>, specs: Vec<ShardSpec>) {
        let old = self.topology.load_full();
        let removed: Vec<ShardSpec> = old
            .shards
            .iter()
            .filter(|s| !specs.iter().any(|n| n.name == s.spec.name))
            .map(|s| s.spec.clone())
            .collect();
        if !self.handoff_on() {
            for shard in self.install(specs, &[]) {
                tokio::spawn(health_check(self.clone(), shard));
            }
            return;
        }
        let mut joining = Vec::new();
        for spec in specs.iter().filter(|n| !old.shards.iter().any(|s| s.spec.name == n.name)) {
            // Another proxy may have admitted it already: then it is a member, not a joiner.
            let state = tokio::time::timeout(
                self.settings.timeout,
                member_state(&spec.addr, self.settings.shard_password.as_deref()),
            )
            .await
            .ok()
            .flatten();
            if state.as_deref() == Some("member") {
                tracing::info!("shard '{}' joined the ring already (another proxy admitted it)", spec.name);
            } else {
                joining.push(spec.name.clone());
            }
        }
        // Step 1.
        let interim: Vec<ShardSpec> = specs.iter().cloned().chain(removed.iter().cloned()).collect();
        let started = self.install(interim, &joining);
        for shard in &started {
            if joining.contains(&shard.spec.name) {
                // A new shard need not wait for a second health check: nothing of it can be in flight. If
                // it cannot be reached now, its health checker admits it later.
                self.readmit(shard).await;
            }
            tokio::spawn(health_check(self.clone(), shard.clone()));
        }
        // Step 2.
        let topo = self.topology.load_full();
        for gone in topo.shards.iter().filter(|s| removed.iter().any(|r| r.name == s.spec.name)) {
            if gone.is_up() {
                self.drain_shard(gone).await;
            }
        }
        // Step 3.
        if !removed.is_empty() {
            for shard in self.install(specs, &[]) {
                tokio::spawn(health_check(self.clone(), shard));
            }
            for gone in &removed {
                handoff::forget(self, &gone.name).await;
            }
        }
    }

    /// Builds and installs the topology for `specs`. Shards whose name and address are unchanged keep their
    /// connections and health state; shards named in `joining` start absent. Returns the new handles, whose
    /// health checkers the caller starts once they are in the topology (a checker that ran before would find
    /// its shard missing, take it for removed, and stop for good).
    fn install(self: &Arc<Self>, specs: Vec<ShardSpec>, joining: &[String]) -> Vec<Arc<ShardHandle>> {
        let old = self.topology.load_full();
        let mut started = Vec::new();
        let shards: Vec<Arc<ShardHandle>> = specs
            .into_iter()
            .map(|spec| match old.shards.iter().find(|s| s.spec == spec) {
                Some(existing) => existing.clone(),
                None => {
                    let absent = joining.contains(&spec.name);
                    let shard = self.start_shard(spec, !absent);
                    started.push(shard.clone());
                    shard
                }
            })
            .collect();
        let members: Vec<_> = shards.iter().map(|s| s.spec.member()).collect();
        let ring = Ring::with_placement(&members, self.settings.placement());
        self.topology.store(Arc::new(Topology {
            ring,
            shards,
            replicas: self.settings.replicas,
            handoff: self.handoff.clone(),
        }));
        started
    }

    /// A shard new to the ring, before its first admission: unless another proxy admitted it already, the
    /// shards holding its keys seed its hints.
    async fn seed_joiner(&self, shard: &ShardHandle) -> Result<(), HandoffError> {
        if handoff::member_state(self, shard).await? == "member" {
            return Ok(()); // another proxy admitted it meanwhile
        }
        // Whatever it holds is from an earlier life (it may have left the ring and come back): older than
        // what its stand-ins have, or deleted since.
        handoff::flush(self, shard).await?;
        let topo = self.topology();
        let Some(index) = topo.shards.iter().position(|s| std::ptr::eq(Arc::as_ptr(s), shard)) else {
            return Ok(());
        };
        let stand_ins: Vec<handoff::StandIn> = topo
            .ring
            .stand_in_arcs(index, topo.replicas)
            .into_iter()
            .map(|(i, arcs)| (topo.shards[i].clone(), arcs))
            .filter(|(s, _)| s.is_up())
            .collect();
        drop(topo);
        let keys = handoff::seed(self, shard, &stand_ins).await?;
        tracing::info!(
            "shard '{}' joins the ring: {keys} of its keys wait for it on {} shards",
            shard.spec.name,
            stand_ins.len()
        );
        Ok(())
    }

    /// A shard that is a new process (restarted after a crash, or any restart) and whose keys have other
    /// copies: it is emptied and given its co-owners' keys for every arc it holds, arc by arc from the first
    /// live co-owner. Writes meanwhile reach those co-owners and, hinted, its stand-ins, which hand them back
    /// next (newer than this copy). An arc with no live co-owner cannot be checked: then nothing is emptied
    /// (the shard keeps what it restored there) and that is logged.
    async fn reconcile_restarted(&self, shard: &ShardHandle) -> Result<(), HandoffError> {
        let topo = self.topology();
        let Some(index) = topo.shards.iter().position(|s| std::ptr::eq(Arc::as_ptr(s), shard)) else {
            return Ok(());
        };
        let mut by_owner: Vec<handoff::StandIn> = Vec::new();
        let mut uncovered = 0usize;
        for (arc, owners) in topo.ring.co_owner_arcs(index, topo.replicas) {
            match owners.into_iter().find(|&m| topo.shards[m].is_up()) {
                Some(m) => match by_owner.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &topo.shards[m])) {
                    Some((_, arcs)) => arcs.push(arc),
                    None => by_owner.push((topo.shards[m].clone(), vec![arc])),
                },
                None => uncovered += 1,
            }
        }
        drop(topo);
        if uncovered == 0 {
            handoff::flush(self, shard).await?;
        } else {
            tracing::warn!(
                "shard '{}' restarted and {uncovered} of its arcs have no live copy: it keeps what it restored \
                 there (keys deleted meanwhile may come back until it is written)",
                shard.spec.name
            );
        }
        let mut keys = 0;
        for (owner, arcs) in &by_owner {
            keys += handoff::copy_arcs(self, shard, owner, arcs).await?;
        }
        tracing::info!(
            "shard '{}' is a new process: reconciled with its copies ({keys} keys from {} shards{})",
            shard.spec.name,
            by_owner.len(),
            if uncovered == 0 { ", after emptying it" } else { "" }
        );
        Ok(())
    }

    /// `shard` leaves (removed from the config, or draining after SIGTERM): its keys are copied to the
    /// shards that own them without it, then it is marked down and told it is drained.
    async fn drain_shard(&self, shard: &ShardHandle) {
        if shard.draining.swap(true, Ordering::SeqCst) {
            return; // another task is draining it
        }
        if !self.drain_lock(shard).await {
            return;
        }
        self.drain_locked(shard).await;
        self.control().unlock(self, shard, HandoffKind::Drain).await;
    }

    /// Takes the right to drain `shard` (always granted with leases on the shards, where concurrent drains
    /// are safe). While another proxy holds it, waits for that proxy to finish, then marks the shard down
    /// here too; false then, or when the lock cannot be had.
    async fn drain_lock(&self, shard: &ShardHandle) -> bool {
        let waiting_since = tokio::time::Instant::now();
        loop {
            match self.handoff_lock(shard, HandoffKind::Drain).await {
                // Drained by another proxy that held the lock before: copying its keys again could bring
                // back keys deleted since.
                Ok(true)
                    if self.control().locks_drains()
                        && matches!(handoff::member_state(self, shard).await.as_deref(), Ok("drained")) =>
                {
                    shard.up.store(false, Ordering::Release);
                    shard.metrics.up.set(0);
                    self.control().unlock(self, shard, HandoffKind::Drain).await;
                    return false;
                }
                Ok(true) => return true,
                Ok(false) => {
                    if matches!(handoff::member_state(self, shard).await.as_deref(), Ok("drained")) {
                        shard.up.store(false, Ordering::Release);
                        shard.metrics.up.set(0);
                        tracing::info!("shard '{}' was drained by another proxy", shard.spec.name);
                        return false;
                    }
                }
                Err(e) => tracing::debug!("shard '{}': {e}", shard.spec.name),
            }
            if waiting_since.elapsed() > self.settings.timeout * ADMIN_TIMEOUT_FACTOR {
                tracing::warn!("shard '{}': could not take the lock to drain it; leaving it as it is", shard.spec.name);
                shard.draining.store(false, Ordering::SeqCst);
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// [`Self::drain_shard`] once this proxy may drain it.
    async fn drain_locked(&self, shard: &ShardHandle) {
        // Its keys go to the shards that stand in for it once it is down (natural owners have them).
        let owners = |key: &[u8]| -> Vec<Arc<ShardHandle>> {
            let topo = self.topology();
            let (mut natural, mut live) = (Owners::new(), Owners::new());
            topo.ring.live_owners(key, topo.replicas, |_| true, &mut natural);
            topo.ring.live_owners(
                key,
                topo.replicas,
                |i| topo.shards[i].is_up() && topo.shards[i].spec.name != shard.spec.name,
                &mut live,
            );
            live.iter().filter(|i| !natural.contains(i)).map(|&i| topo.shards[i].clone()).collect()
        };
        match handoff::drain(self, shard, owners).await {
            Ok(keys) => {
                self.mark_down(shard);
                shard.metrics.handoff_keys.inc_by(keys);
                tracing::info!(
                    "shard '{}' drained: {keys} keys copied to the shards that take its place",
                    shard.spec.name
                );
                if let Err(e) = handoff::drained(self, shard).await {
                    tracing::warn!("shard '{}': {e}", shard.spec.name);
                }
            }
            Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(&e),
            Err(e) => {
                shard.metrics.handoff_failures.inc();
                tracing::warn!("draining shard '{}' failed: {e}; it is ejected without its keys", shard.spec.name);
                self.mark_down(shard);
            }
        }
    }

    /// At start: a shard that other shards hold hints for (it was away, or joining, or being handed its
    /// keys when the proxy that ran the handoff stopped) starts down, so that its health checker readmits
    /// it through a handoff instead of routing to it with what it missed.
    pub async fn recover_handoffs(&self) {
        if !self.handoff_on() {
            return;
        }
        let shards = self.topology().shards.clone();
        match handoff::pending_handoffs(self, &shards).await {
            Ok(names) => {
                for shard in shards.iter().filter(|s| names.contains(&s.spec.name)) {
                    let joining = matches!(handoff::member_state(self, shard).await.as_deref(), Ok("joining"));
                    shard.joining.store(joining, Ordering::SeqCst);
                    self.mark_down(shard);
                    tracing::info!(
                        "shard '{}' has writes waiting for it on other shards: it is readmitted once they are handed over",
                        shard.spec.name
                    );
                }
            }
            Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(&e),
            Err(e) => tracing::warn!("checking for unfinished handoffs at start: {e}"),
        }
    }

    fn handoff_on(&self) -> bool {
        self.handoff.load(Ordering::Relaxed)
    }

    /// Handoff is not possible with these shards (redis-server): route as twemproxy does.
    fn handoff_unsupported(&self, e: &HandoffError) {
        if self.handoff.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "{e}: hinted handoff is off, so a shard that flaps may serve values overwritten while it was away"
            );
        }
    }

    /// Before `shard`'s keys go elsewhere: the other shards start recording the writes they take for it.
    async fn open_handoff(&self, shard: &ShardHandle) {
        if !self.handoff_on() {
            return;
        }
        match handoff::open(self, shard).await {
            Ok(()) => {}
            Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(&e),
            // That shard refuses hinted writes (TRYAGAIN) until it opens at this shard's next ejection.
            Err(e) => tracing::warn!("handoff for '{}': {e}", shard.spec.name),
        }
    }

    /// `shard` answers again: hand it back what was written elsewhere while it was away, then route its keys
    /// to it. If the handoff fails it stays down, and the next health check tries again.
    async fn readmit(&self, shard: &ShardHandle) {
        // Another proxy handing it its keys holds the lock for as long as the copy takes: wait for it (its
        // keys are moving, and leaving the shard down here for a whole health interval would read them as
        // misses from the stand-ins once that proxy has finished), then readmit with nothing left to copy.
        let waiting_since = tokio::time::Instant::now();
        while self.handoff_on() {
            match self.handoff_lock(shard, HandoffKind::HandBack).await {
                Ok(true) => break,
                Ok(false) => {
                    // A joiner that the other proxy has admitted has all its keys: route to it at once.
                    if shard.joining.load(Ordering::SeqCst)
                        && matches!(handoff::member_state(self, shard).await.as_deref(), Ok("member"))
                    {
                        self.mark_up(shard);
                        return;
                    }
                    // The holder says it has handed the shard its keys: route to it before they leave the
                    // stand-ins.
                    if self.control().readmitted_elsewhere(shard).await {
                        self.mark_up(shard);
                        return;
                    }
                    if waiting_since.elapsed() > self.settings.timeout * 10 {
                        tracing::debug!("shard '{}': another proxy is still handing it its keys", shard.spec.name);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(&e),
                Err(e) => {
                    tracing::debug!("shard '{}': {e}", shard.spec.name);
                    return;
                }
            }
        }
        self.readmit_locked(shard).await;
        if self.handoff_on() {
            self.control().unlock(self, shard, HandoffKind::HandBack).await;
        }
    }

    fn mark_up(&self, shard: &ShardHandle) {
        shard.draining.store(false, Ordering::SeqCst);
        shard.joining.store(false, Ordering::SeqCst);
        shard.seen_member.store(true, Ordering::SeqCst);
        if !shard.up.swap(true, Ordering::AcqRel) {
            tracing::info!("shard '{}' ({}) is back: readmitted", shard.spec.name, shard.spec.addr);
            shard.metrics.up.set(1);
        }
    }

    /// [`Self::readmit`] once this proxy holds the shard's handoff lock.
    async fn readmit_locked(&self, shard: &ShardHandle) {
        if self.handoff_on() && shard.joining.load(Ordering::SeqCst) {
            match self.seed_joiner(shard).await {
                Ok(()) => {}
                Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(&e),
                Err(e) => {
                    shard.metrics.handoff_failures.inc();
                    tracing::warn!("shard '{}' joins the ring, but seeding its keys failed: {e}", shard.spec.name);
                    return;
                }
            }
        }
        // A new process (it restarted, or joins) where keys have other copies: it takes its copies' keys
        // before anything else, so it never serves a value older than one they acknowledged.
        if self.handoff_on() && self.settings.replicas > 1 {
            match handoff::member_state(self, shard).await.as_deref() {
                Ok("joining") => {
                    if let Err(e) = self.reconcile_restarted(shard).await {
                        shard.metrics.handoff_failures.inc();
                        tracing::warn!(
                            "shard '{}' restarted, but reconciling it with its copies failed: {e}",
                            shard.spec.name
                        );
                        return;
                    }
                }
                Ok(_) => {}
                Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(e),
                Err(e) => {
                    tracing::warn!("shard '{}' answers again, but not RINGCACHE MEMBER: {e}", shard.spec.name);
                    return;
                }
            }
        }
        if self.handoff_on() {
            match handoff::hand_back(self, shard).await {
                Ok(done) => {
                    let moved = done.keys_restored + done.keys_deleted;
                    shard.metrics.handoff_keys.inc_by(moved);
                    if moved > 0 || done.flushed {
                        tracing::info!(
                            "shard '{}': handed back {} keys written and {} deleted while it was away{}",
                            shard.spec.name,
                            done.keys_restored,
                            done.keys_deleted,
                            if done.flushed { " (after a flush)" } else { "" }
                        );
                    }
                }
                Err(e @ HandoffError::Unsupported(_)) => self.handoff_unsupported(&e),
                Err(e) => {
                    shard.metrics.handoff_failures.inc();
                    tracing::warn!("shard '{}' answers again, but handing back its keys failed: {e}", shard.spec.name);
                    return;
                }
            }
        }
        // It may stand in for shards that went down while it was away.
        if self.handoff_on() {
            let down: Vec<Arc<ShardHandle>> = self.topology().shards.iter().filter(|s| !s.is_up()).cloned().collect();
            for absent in down.iter().filter(|s| s.spec.name != shard.spec.name) {
                let open = ringcache_common::resp::encode_request(
                    [&b"RINGCACHE"[..], b"HANDOFF", b"OPEN", absent.spec.name.as_bytes()].into_iter(),
                );
                let _ = tokio::time::timeout(self.settings.timeout, shard.admin.send(open)).await;
            }
        }
        self.mark_up(shard);
        if self.handoff_on() {
            self.control().handed_back(shard).await;
            self.control().wait_until_routed(shard).await;
            handoff::finish(self, shard).await;
        }
    }

    fn start_shard(self: &Arc<Self>, spec: ShardSpec, up: bool) -> Arc<ShardHandle> {
        let metrics = Arc::new(self.metrics.backend(&spec.name));
        metrics.up.set(i64::from(up));
        let per_worker = self.settings.backend_connections.max(1);
        let conns: Vec<BackendConn> = self
            .workers
            .iter()
            .flat_map(|runtime| std::iter::repeat_n(runtime, per_worker))
            .map(|runtime| {
                BackendConn::start(
                    runtime,
                    spec.addr.clone(),
                    self.settings.timeout,
                    self.settings.shard_password.clone(),
                    metrics.clone(),
                    self.shutdown.clone(),
                    Protocol::Resp2,
                )
            })
            .collect();
        let conns_resp3 = (0..conns.len()).map(|_| OnceLock::new()).collect();
        let conn_settings = ConnSettings {
            timeout: self.settings.timeout,
            password: self.settings.shard_password.clone(),
            shutdown: self.shutdown.clone(),
        };
        // Handoff commands may run long (each call bounds its own wait); the connection is only replaced if
        // one runs longer than this.
        let admin = BackendConn::start(
            &self.control,
            spec.addr.clone(),
            self.settings.timeout * ADMIN_TIMEOUT_FACTOR,
            self.settings.shard_password.clone(),
            metrics.clone(),
            self.shutdown.clone(),
            Protocol::Resp2,
        );
        Arc::new(ShardHandle {
            spec,
            up: AtomicBool::new(up),
            draining: AtomicBool::new(false),
            joining: AtomicBool::new(!up),
            seen_member: AtomicBool::new(false),
            conns,
            conns_resp3,
            conn_settings,
            per_worker,
            admin,
            metrics,
            cluster: Arc::downgrade(self),
            suspicions: AtomicU64::new(0),
            judged: AtomicU64::new(0),
            suspect: Notify::new(),
            verdict: Notify::new(),
            auth_failure: AtomicU8::new(0),
        })
    }
}

/// PINGs one shard forever (until shutdown, or until the shard leaves the topology); also judges it at once
/// when a request raises a suspicion (see [`ShardHandle::judged_down`]).
async fn health_check(cluster: Arc<Cluster>, shard: Arc<ShardHandle>) {
    let settings = cluster.settings.clone();
    let mut failures = 0u32;
    let mut successes = 0u32;
    let mut conn: Option<ShardStream> = None;
    let mut tick = tokio::time::interval(settings.health_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cluster.shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = shard.suspect.notified() => {}
        }
        if !cluster.topology().shards.iter().any(|s| Arc::ptr_eq(s, &shard)) {
            return; // removed by a config change
        }
        // The suspicions this probe answers: every one raised before it starts (whichever woke it).
        let judging = shard.suspicions.load(Ordering::Acquire);
        let suspected = judging > shard.judged.load(Ordering::Acquire);
        if suspected {
            // The connection this checker holds may still look fine: ask on a fresh one, as requests do.
            conn = None;
        }
        let result = tokio::time::timeout(
            settings.timeout,
            probe(&mut conn, &shard.spec.addr, settings.shard_password.as_deref()),
        )
        .await
        .unwrap_or(Probe::Down(Failure::TimedOut));
        report_auth(&shard, &result);
        match result {
            Probe::Draining => {
                if shard.is_up() && cluster.handoff_on() {
                    cluster.drain_shard(&shard).await;
                    shard.metrics.ejections.inc();
                }
            }
            Probe::Pong => {
                failures = 0;
                successes = successes.saturating_add(1);
                // Once per probe connection, so also after the shard restarted under this proxy.
                if successes == 1 && shard.is_up() && cluster.handoff_on() {
                    // With copies elsewhere, a shard that restarted unseen (a new process where this proxy
                    // knew a member) may lack writes its copies acknowledged: out until they reconcile it.
                    if cluster.settings.replicas > 1
                        && shard.seen_member.load(Ordering::SeqCst)
                        && matches!(handoff::member_state(&cluster, &shard).await.as_deref(), Ok("joining"))
                    {
                        cluster.eject_shard(&shard, "restarted: its copies reconcile it before it serves again").await;
                    } else if handoff::mark_member(&cluster, &shard).await.is_ok() {
                        shard.seen_member.store(true, Ordering::SeqCst);
                    }
                }
                if !shard.is_up() {
                    // Reconnect before its keys route here again: after a long outage the connections may be
                    // in a backoff of up to 2 s, failing every request as unreachable until it ends.
                    shard.client_conns().chain([&shard.admin]).for_each(BackendConn::retry_now);
                    // A shard that was paused (SIGSTOP, a stall) still holds the requests that timed out here
                    // in its socket buffers and runs them when it resumes. Readmitting on the second answer in
                    // a row gives it a health interval to do so before the hand-back writes the newer values.
                    // Down for every proxy while its registration is gone (ZooKeeper): readmitted once it is
                    // back.
                    if successes >= 2 && cluster.control().registration(&shard.spec.name) != Registration::Absent {
                        cluster.readmit(&shard).await;
                    }
                }
            }
            Probe::Down(failure) => {
                successes = 0;
                conn = None;
                failures += 1;
                if shard.is_up() {
                    if suspected && failure.is_definite() {
                        shard.metrics.passive_ejections.inc();
                        cluster
                            .eject_shard(&shard, &format!("refused or reset a connection, and a probe {failure}"))
                            .await;
                    } else if failures >= settings.failure_limit {
                        cluster
                            .eject_shard(&shard, &format!("failed {failures} health checks (the last {failure})"))
                            .await;
                    }
                }
            }
        }
        shard.judged.fetch_max(judging, Ordering::AcqRel);
        shard.verdict.notify_waiters();
    }
}

/// Logs (once, not at every probe) that a shard refuses to authenticate the proxy, or that it does again.
fn report_auth(shard: &ShardHandle, result: &Probe) {
    let now = match result {
        Probe::Down(Failure::Auth(e, _)) => Some(*e),
        Probe::Down(Failure::TimedOut | Failure::Refused(_)) => return, // says nothing about the password
        _ => None,
    };
    let before = shard.auth_failure();
    if now == before {
        return;
    }
    shard.set_auth_failure(now);
    match result {
        Probe::Down(Failure::Auth(e, reply)) => {
            tracing::warn!("shard '{}' ({}) {e} (it replied {reply})", shard.spec.name, shard.spec.addr)
        }
        _ => tracing::info!("shard '{}' ({}) accepts the proxy's password again", shard.spec.name, shard.spec.addr),
    }
}

/// A shard's `RINGCACHE MEMBER` state, asked on a connection of its own (`None` if it cannot say).
async fn member_state(addr: &str, password: Option<&str>) -> Option<String> {
    let mut s = crate::tls::connect_shard(addr).await.ok()?;
    authenticate(&mut s, password).await.ok()?;
    s.write_all(b"*2\r\n$9\r\nRINGCACHE\r\n$6\r\nMEMBER\r\n").await.ok()?;
    let header = read_line(&mut s).await.ok()?;
    header.starts_with(b"$").then_some(())?;
    String::from_utf8(read_line(&mut s).await.ok()?).ok()
}

/// What a health check found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Pong,
    /// `-DRAINING`: the shard got SIGTERM and waits for its keys to be handed over before it exits.
    Draining,
    Down(Failure),
}

/// Why a health check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Failure {
    /// The connection was refused, reset or closed: nothing is serving there.
    #[error("found the connection refused or closed ({0})")]
    Refused(String),
    #[error("got no answer within --timeout")]
    TimedOut,
    /// The shard refused the proxy's password, or wants one (with its reply).
    #[error("found that the shard {0}")]
    Auth(BackendError, String),
    /// Any other answer than PONG.
    #[error("got {0}")]
    Reply(String),
}

impl Failure {
    /// Whether the shard is certainly not serving: its port refuses connections or resets them, or it is
    /// loading a snapshot after a restart.
    fn is_definite(&self) -> bool {
        match self {
            Failure::Refused(_) => true,
            Failure::Reply(reply) => reply.starts_with("-LOADING"),
            Failure::TimedOut | Failure::Auth(..) => false,
        }
    }
}

/// One PING on the health connection (reconnecting if needed).
async fn probe(conn: &mut Option<ShardStream>, addr: &str, password: Option<&str>) -> Probe {
    let refused = |e: std::io::Error| Probe::Down(Failure::Refused(e.to_string()));
    if conn.is_none() {
        let mut s = match crate::tls::connect_shard(addr).await {
            Ok(s) => s,
            Err(e) => return refused(e),
        };
        match authenticate(&mut s, password).await {
            Ok(()) => {}
            Err(ConnectError::Io(e)) => return refused(e),
            Err(ConnectError::Auth(e, reply)) => return Probe::Down(Failure::Auth(e, reply)),
        }
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else {
        return Probe::Down(Failure::Refused("no connection".into()));
    };
    if let Err(e) = s.write_all(b"*1\r\n$4\r\nPING\r\n").await {
        return refused(e);
    }
    match read_line(s).await {
        Ok(line) if line == b"+PONG" => Probe::Pong,
        Ok(line) if line.starts_with(b"-DRAINING") => Probe::Draining,
        Ok(line) if line.starts_with(b"-NOAUTH") => {
            Probe::Down(Failure::Auth(BackendError::AuthRequired, String::from_utf8_lossy(&line).into_owned()))
        }
        Ok(line) => Probe::Down(Failure::Reply(String::from_utf8_lossy(&line).into_owned())),
        Err(e) => refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three shards nobody listens on (their connections are lazy), s2 down, handoff on.
    fn cluster_with_s2_down(replicas: usize) -> Arc<Cluster> {
        let specs = ["s1", "s2", "s3"]
            .iter()
            .map(|name| ShardSpec { name: name.to_string(), addr: "127.0.0.1:1".into(), weight: 1 })
            .collect();
        let settings = ClusterSettings {
            key_hash: KeyHash::Fnv1a_64,
            hash_tag: HashTag::BRACES,
            timeout: Duration::from_millis(100),
            health_interval: Duration::from_secs(1),
            failure_limit: 2,
            backend_connections: 1,
            shard_password: None,
            replicas,
            handoff: true,
        };
        let metrics = Arc::new(ProxyMetrics::new().expect("metrics"));
        let cluster = Cluster::new(specs, settings, metrics, CancellationToken::new(), &[]);
        cluster.topology().shards[1].up.store(false, Ordering::Release);
        cluster
    }

    /// A key whose natural owner is s2.
    fn key_of_s2(topo: &Topology) -> Vec<u8> {
        (0..)
            .map(|i| format!("k:{i}").into_bytes())
            .find(|k| topo.ring.live_owner(k, |_| true) == Some(1))
            .expect("some key is s2's")
    }

    #[tokio::test]
    async fn a_view_answers_from_one_reading_of_shard_health() {
        for replicas in [1, 2] {
            let cluster = cluster_with_s2_down(replicas);
            let topo = cluster.topology();
            let key = key_of_s2(&topo);
            let view = topo.view();
            // s2 is readmitted while a request is being routed with the view taken before.
            cluster.mark_up(&topo.shards[1]);
            assert!(view.hinting() && !view.is_up(1));
            let copies = view.write_copies(&key);
            assert!(!copies.iter().any(|(i, _)| *i == 1), "{copies:?}");
            // Every copy that stands in for s2 says so: none lands on a stand-in unrecorded.
            assert!(copies.iter().any(|(_, absent)| absent.as_deref() == Some("s2")), "{copies:?}");
            assert_eq!(view.owner(&key), copies.first().map(|(i, _)| *i));
            assert_eq!(view.absent_names().as_deref(), Some("s2"));
            // A view taken now routes to s2 itself, plainly.
            let now = topo.view();
            assert!(!now.hinting());
            assert_eq!(now.write_copies(&key).first(), Some(&(1, None)));
            // And the other way: ejected while routing with a view from before.
            let before = topo.view();
            topo.shards[1].up.store(false, Ordering::Release);
            assert!(!before.hinting());
            assert_eq!(before.owner(&key), Some(1));
            assert_eq!(before.write_copies(&key).first(), Some(&(1, None)));
        }
    }
}
