//! The shards the proxy knows, their health, and the ring over them.
//!
//! A [`Topology`] (ring + shard handles) is immutable and swapped atomically, so a request sees one
//! consistent view. Each shard has a fixed number of pipelined [`BackendConn`]s and a health checker that
//! PINGs it every `--health-interval`: `--failure-limit` consecutive failures mark it down (its keys go to
//! the next live shard on the ring) and one successful probe readmits it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::backend::BackendConn;
use crate::config::ShardSpec;
use crate::metrics::{BackendMetrics, ProxyMetrics};
use crate::ring::Ring;
use ringcache_common::hash::KeyHash;

/// One shard: where it is, whether it is healthy, and the connections to it.
pub struct ShardHandle {
    pub spec: ShardSpec,
    up: AtomicBool,
    pub conns: Vec<BackendConn>,
    pub metrics: Arc<BackendMetrics>,
}

impl ShardHandle {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The connection a client session uses, so that one client's requests to a shard stay in order.
    pub fn conn_for(&self, session_id: u64) -> &BackendConn {
        &self.conns[(session_id as usize) % self.conns.len()]
    }
}

/// The ring and its shards, swapped as a whole.
pub struct Topology {
    pub ring: Ring,
    pub shards: Vec<Arc<ShardHandle>>,
    /// Copies of each key (`--replicas`).
    pub replicas: usize,
}

/// The live shards holding a key's copies, the owner (where reads go) first.
pub type Owners = smallvec::SmallVec<[usize; 4]>;

impl Topology {
    /// The live shard that owns `key`.
    pub fn owner(&self, key: &[u8]) -> Option<usize> {
        self.ring.live_owner(key, |i| self.shards[i].is_up())
    }

    /// The live shards that hold `key`'s copies: up to `replicas` distinct shards, the owner first.
    pub fn owners(&self, key: &[u8]) -> Owners {
        let mut out = Owners::new();
        self.ring.live_owners(key, self.replicas, |i| self.shards[i].is_up(), &mut out);
        out
    }

    pub fn live(&self) -> impl Iterator<Item = (usize, &Arc<ShardHandle>)> {
        self.shards.iter().enumerate().filter(|(_, s)| s.is_up())
    }
}

/// Settings the cluster needs to build shard handles.
#[derive(Clone)]
pub struct ClusterSettings {
    pub key_hash: KeyHash,
    pub timeout: Duration,
    pub health_interval: Duration,
    pub failure_limit: u32,
    pub backend_connections: usize,
    pub shard_password: Option<String>,
    /// Copies of each key (`--replicas`).
    pub replicas: usize,
}

pub struct Cluster {
    topology: ArcSwap<Topology>,
    pub settings: ClusterSettings,
    metrics: Arc<ProxyMetrics>,
    shutdown: CancellationToken,
}

impl Cluster {
    pub fn new(
        shards: Vec<ShardSpec>,
        settings: ClusterSettings,
        metrics: Arc<ProxyMetrics>,
        shutdown: CancellationToken,
    ) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            topology: ArcSwap::from_pointee(Topology {
                ring: Ring::new(&[], settings.key_hash),
                shards: Vec::new(),
                replicas: settings.replicas,
            }),
            settings,
            metrics,
            shutdown,
        });
        cluster.set_shards(shards);
        cluster
    }

    pub fn topology(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.topology.load()
    }

    /// Installs a new shard list. Shards whose name and address are unchanged keep their connections and
    /// health state; the new ring replaces the old one atomically.
    pub fn set_shards(self: &Arc<Self>, specs: Vec<ShardSpec>) {
        let old = self.topology.load_full();
        let mut started = Vec::new();
        let shards: Vec<Arc<ShardHandle>> = specs
            .into_iter()
            .map(|spec| match old.shards.iter().find(|s| s.spec == spec) {
                Some(existing) => existing.clone(),
                None => {
                    let shard = self.start_shard(spec);
                    started.push(shard.clone());
                    shard
                }
            })
            .collect();
        let members: Vec<_> = shards.iter().map(|s| s.spec.member()).collect();
        let ring = Ring::new(&members, self.settings.key_hash);
        self.topology.store(Arc::new(Topology { ring, shards, replicas: self.settings.replicas }));
        // Only once the new shards are in the topology: a checker that ran before would find its shard
        // missing, take it for removed, and stop for good.
        for shard in started {
            tokio::spawn(health_check(self.clone(), shard));
        }
    }

    fn start_shard(self: &Arc<Self>, spec: ShardSpec) -> Arc<ShardHandle> {
        let metrics = Arc::new(self.metrics.backend(&spec.name));
        metrics.up.set(1);
        let conns = (0..self.settings.backend_connections.max(1))
            .map(|_| {
                BackendConn::start(
                    spec.addr.clone(),
                    self.settings.timeout,
                    self.settings.shard_password.clone(),
                    metrics.clone(),
                    self.shutdown.clone(),
                )
            })
            .collect();
        Arc::new(ShardHandle { spec, up: AtomicBool::new(true), conns, metrics })
    }
}

/// PINGs one shard forever (until shutdown, or until the shard leaves the topology).
async fn health_check(cluster: Arc<Cluster>, shard: Arc<ShardHandle>) {
    let settings = cluster.settings.clone();
    let mut failures = 0u32;
    let mut conn: Option<TcpStream> = None;
    let mut tick = tokio::time::interval(settings.health_interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cluster.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !cluster.topology().shards.iter().any(|s| Arc::ptr_eq(s, &shard)) {
            return; // removed by a config change
        }
        let ok = tokio::time::timeout(
            settings.timeout,
            probe(&mut conn, &shard.spec.addr, settings.shard_password.as_deref()),
        )
        .await
        .unwrap_or(false);
        if ok {
            failures = 0;
            if !shard.is_up() {
                // Reconnect before its keys route here again: after a long outage the connections may be in
                // a backoff of up to 2 s, failing every request as unreachable until it ends.
                shard.conns.iter().for_each(BackendConn::retry_now);
            }
            if !shard.up.swap(true, Ordering::Relaxed) {
                tracing::info!("shard '{}' ({}) is back: readmitted", shard.spec.name, shard.spec.addr);
                shard.metrics.up.set(1);
            }
        } else {
            conn = None;
            failures += 1;
            if failures >= settings.failure_limit && shard.up.swap(false, Ordering::Relaxed) {
                tracing::warn!(
                    "shard '{}' ({}) failed {failures} health checks: ejected, its keys go to the next shard",
                    shard.spec.name,
                    shard.spec.addr
                );
                shard.metrics.up.set(0);
                shard.metrics.ejections.inc();
            }
        }
    }
}

/// One PING on the health connection (reconnecting if needed). True on `+PONG`.
async fn probe(conn: &mut Option<TcpStream>, addr: &str, password: Option<&str>) -> bool {
    if conn.is_none() {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            return false;
        };
        if let Some(pw) = password {
            let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{pw}\r\n", pw.len());
            if s.write_all(auth.as_bytes()).await.is_err() || !read_reply_is(&mut s, b"+OK\r\n").await {
                return false;
            }
        }
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else {
        return false;
    };
    s.write_all(b"*1\r\n$4\r\nPING\r\n").await.is_ok() && read_reply_is(s, b"+PONG\r\n").await
}

async fn read_reply_is(s: &mut TcpStream, expected: &[u8]) -> bool {
    let mut buf = vec![0u8; expected.len()];
    s.read_exact(&mut buf).await.is_ok() && buf == expected
}
