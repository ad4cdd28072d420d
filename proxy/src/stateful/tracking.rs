//! Client-side caching through the proxy: CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO, and the
//! invalidations a tracking client gets for the keys it read, whichever shard holds them.
//!
//! The shards do not know the proxy's clients (their requests share connections), so each worker keeps
//! its own table ([`Tracker`]): which of its clients read which key (default mode), and which clients
//! want every key under some prefixes (BCAST). Towards each shard the worker keeps one *link*, a RESP3
//! connection in `CLIENT TRACKING ON BCAST` mode: the shard tells it of every key written, expired,
//! evicted or handed over, and of FLUSHALL; the worker forwards each to the clients whose table entries
//! match (once per read, as Redis: a key must be read again to be tracked again). The links exist only
//! while the worker has a tracking client.
//!
//! Ordering: a key is entered in the table when the read is routed, before it reaches the shard, so an
//! invalidation for any write the read could have missed is forwarded; the session writes pushes only
//! when no reply is pending, so an invalidation never overtakes the reply of the read it invalidates.
//! CLIENT TRACKING ON is answered once every link is confirmed. If a link breaks, every tracking client of
//! the worker is told to drop everything (`invalidate` with a null key list), since writes may have gone
//! unseen. NOLOOP is accepted but not honoured: the proxy cannot tell which client a shard's write came
//! from, so a client also gets invalidations for its own writes (safe for a cache, one extra miss).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use ringcache_common::command::CommandSpec;
use ringcache_common::push::PushSender;
use ringcache_common::resp::{encode_request, Protocol, ReplyBuf, ReplyScanner, ReplyValue, ReplyWriter, Request};
use ringcache_common::tls::ShardStream;
use ringcache_common::tracking::{self as options, invalidation, TrackingChange, INVALIDATE_CHANNEL};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::SessionState;
use crate::cluster::Cluster;
use crate::pubsub::{self, Kind};
use crate::session::{ProxyShared, ReplyFut, Session};

pub use ringcache_common::tracking::is_tracking_subcommand;

/// Every client with a push queue, by id: where a REDIRECT sends invalidations.
static PUSH_TARGETS: LazyLock<Mutex<HashMap<u64, PushSender>>> = LazyLock::new(Default::default);

/// Makes `sender` reachable as a REDIRECT target (until [`forget_push_target`]).
pub fn register_push_target(sender: &PushSender) {
    PUSH_TARGETS.lock().insert(sender.client_id, sender.clone());
}

pub fn forget_push_target(id: u64) {
    PUSH_TARGETS.lock().remove(&id);
}

/// A tracking client, as its worker's table knows it.
struct Tracked {
    /// Its own push queue (unless it redirects).
    own: Option<PushSender>,
    redirect: u64,
    /// BCAST: the prefixes it wants (empty: every key); `None` in default mode.
    bcast: Option<Vec<Bytes>>,
}

/// One worker's tracking table and links.
pub struct Tracker {
    cluster: Arc<Cluster>,
    max_keys: usize,
    /// Key → the clients that read it since its last invalidation.
    keys: HashMap<Bytes, Vec<u64>>,
    clients: HashMap<u64, Tracked>,
    /// Shard name → whether its link is subscribed, and how to stop it.
    links: HashMap<String, (watch::Receiver<bool>, CancellationToken)>,
}

type SharedTracker = Arc<Mutex<Tracker>>;

thread_local! {
    static TRACKER: RefCell<Option<SharedTracker>> = const { RefCell::new(None) };
}

fn tracker(cluster: &Arc<Cluster>, max_keys: usize) -> SharedTracker {
    TRACKER.with(|t| {
        t.borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(Mutex::new(Tracker {
                    cluster: cluster.clone(),
                    max_keys,
                    keys: HashMap::new(),
                    clients: HashMap::new(),
                    links: HashMap::new(),
                }))
            })
            .clone()
    })
}

/// Where a client's invalidations go, in that connection's protocol; `None` if nowhere (a RESP2 target
/// that is not subscribed to `__redis__:invalidate`, or a target that left).
fn destination(client: &Tracked) -> Option<PushSender> {
    let target =
        if client.redirect == 0 { client.own.clone()? } else { PUSH_TARGETS.lock().get(&client.redirect).cloned()? };
    // A RESP2 connection can take invalidations only as pub/sub messages (as in Redis).
    if target.proto == Protocol::Resp2 && !pubsub::is_subscribed(Kind::Channel, INVALIDATE_CHANNEL, target.client_id) {
        return None;
    }
    Some(target)
}

impl Tracker {
    fn record(&mut self, key: &[u8], client: u64) {
        if let Some(readers) = self.keys.get_mut(key) {
            if !readers.contains(&client) {
                readers.push(client);
            }
            return;
        }
        // Past the table's bound, some key is invalidated for its readers to make room (as Redis does).
        if self.keys.len() >= self.max_keys {
            if let Some(victim) = self.keys.keys().next().cloned() {
                self.invalidate(Some(vec![victim]));
            }
        }
        self.keys.insert(Bytes::copy_from_slice(key), vec![client]);
    }

    /// Forwards a shard's invalidation (`None`: everything) to the clients it concerns.
    fn invalidate(&mut self, keys: Option<Vec<Bytes>>) {
        let Some(keys) = keys else {
            self.keys.clear();
            for client in self.clients.values() {
                if let Some(to) = destination(client) {
                    to.push(invalidation::<Bytes>(to.proto, None));
                }
            }
            return;
        };
        let mut per_client: HashMap<u64, Vec<Bytes>> = HashMap::new();
        for key in keys {
            if let Some(readers) = self.keys.remove(&key) {
                for id in readers {
                    per_client.entry(id).or_default().push(key.clone());
                }
            }
            for (id, client) in &self.clients {
                if let Some(prefixes) = &client.bcast {
                    if prefixes.is_empty() || prefixes.iter().any(|p| key.starts_with(p)) {
                        per_client.entry(*id).or_default().push(key.clone());
                    }
                }
            }
        }
        for (id, keys) in per_client {
            if let Some(to) = self.clients.get(&id).and_then(destination) {
                to.push(invalidation(to.proto, Some(&keys)));
            }
        }
    }

    /// Starts a link to every shard of the ring that has none; returns the readiness of the links of the
    /// shards that are up.
    fn ensure_links(this: &SharedTracker) -> Vec<watch::Receiver<bool>> {
        let mut t = this.lock();
        let topology = t.cluster.topology();
        t.links.retain(|name, (_, stop)| {
            let keep = topology.shards.iter().any(|s| &s.spec.name == name);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for shard in &topology.shards {
            if t.links.contains_key(&shard.spec.name) {
                continue;
            }
            let (ready_tx, ready_rx) = watch::channel(false);
            let stop = CancellationToken::new();
            let (addr, password, _) = shard.connect_settings();
            tokio::spawn(run_link(
                Arc::downgrade(this),
                addr.to_string(),
                password.map(str::to_string),
                ready_tx,
                stop.clone(),
            ));
            t.links.insert(shard.spec.name.clone(), (ready_rx, stop));
        }
        topology
            .shards
            .iter()
            .filter(|s| s.is_up())
            .filter_map(|s| t.links.get(&s.spec.name).map(|l| l.0.clone()))
            .collect()
    }

    fn untrack(&mut self, id: u64) {
        self.clients.remove(&id);
        if self.clients.is_empty() {
            self.keys.clear();
            for (_, (_, stop)) in self.links.drain() {
                stop.cancel();
            }
        }
    }
}

/// One link: subscribes to every invalidation of its shard and feeds them to the worker's table;
/// reconnects until stopped.
async fn run_link(
    tracker: Weak<Mutex<Tracker>>,
    addr: String,
    password: Option<String>,
    ready: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = link_once(&tracker, &addr, password.as_deref(), &ready) => r,
        };
        let _ = ready.send(false);
        let Some(t) = tracker.upgrade() else { return };
        // Writes may have gone unseen while the link was down: every tracking client drops everything.
        t.lock().invalidate(None);
        drop(t);
        if let Err(e) = result {
            tracing::debug!("tracking link to {addr}: {e}");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn link_once(
    tracker: &Weak<Mutex<Tracker>>,
    addr: &str,
    password: Option<&str>,
    ready: &watch::Sender<bool>,
) -> std::io::Result<()> {
    let mut stream: ShardStream = crate::tls::connect_shard(addr).await?;
    let _ = stream.set_nodelay(true);
    let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3", b"SETNAME", b"ringcache-proxy-tracking"];
    if let Some(pw) = password {
        hello.splice(2..2, [&b"AUTH"[..], b"default", pw.as_bytes()]);
    }
    let mut first = BytesMut::from(&encode_request(hello.into_iter())[..]);
    first.extend_from_slice(&encode_request([&b"CLIENT"[..], b"TRACKING", b"ON", b"BCAST"].into_iter()));
    stream.write_all(&first).await?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut scanner = ReplyScanner::new();
    let mut replies = 0;
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::other("the shard closed the link"));
        }
        while let Some(frame) = scanner.next(&mut buf).map_err(std::io::Error::other)? {
            if ringcache_common::resp::is_push(&frame) {
                let Some(ReplyValue::Push(items)) = ReplyValue::parse(&frame) else { continue };
                if items.first().and_then(ReplyValue::as_bytes).map(|v| &v[..]) != Some(b"invalidate") {
                    continue;
                }
                let keys = items
                    .get(1)
                    .and_then(|k| k.clone().into_items())
                    .map(|ks| ks.iter().filter_map(ReplyValue::as_bytes).cloned().collect::<Vec<Bytes>>());
                let Some(t) = tracker.upgrade() else { return Ok(()) };
                t.lock().invalidate(keys);
                continue;
            }
            replies += 1;
            if frame.first() == Some(&b'-') {
                return Err(std::io::Error::other(String::from_utf8_lossy(&frame).trim().to_string()));
            }
            if replies == 2 {
                let _ = ready.send(true);
            }
        }
    }
}

/// A session's tracking: its options, and its entry in the worker's table.
pub struct Tracking {
    options: options::Tracking,
    tracker: SharedTracker,
    client_id: u64,
}

impl Drop for Tracking {
    fn drop(&mut self) {
        self.tracker.lock().untrack(self.client_id);
    }
}

impl Tracking {
    /// Before a command of a tracking client is routed: a read-only command's keys enter the table
    /// (before the read reaches its shard). CLIENT CACHING applies to this one command only.
    pub fn before_read(&mut self, spec: &CommandSpec, req: &Request) {
        if spec.flags.contains(&"readonly") {
            let keys = options::keys_read(&self.options, spec, req);
            if !keys.is_empty() {
                let mut t = self.tracker.lock();
                for key in keys {
                    t.record(key, self.client_id);
                }
            }
        }
        self.options.caching_next = None;
    }
}

/// CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO.
pub fn command(state: &mut SessionState, session: &Session, shared: &ProxyShared, req: &Request) -> ReplyFut {
    let sub = req.arg(1).to_ascii_uppercase();
    let mut out = ReplyBuf::new(session.proto);
    let current = state.tracking.as_ref().map(|t| &t.options);
    let result = match &sub[..] {
        b"CACHING" => {
            let mut options = current.cloned();
            options::caching(req, options.as_mut()).map(|()| {
                if let (Some(t), Some(o)) = (state.tracking.as_mut(), options) {
                    t.options.caching_next = o.caching_next;
                }
                out.ok();
            })
        }
        b"GETREDIR" if req.argc() == 2 => {
            out.integer(current.map_or(-1, |t| t.redirect as i64));
            Ok(())
        }
        b"TRACKINGINFO" if req.argc() == 2 => {
            let broken = current.is_some_and(|t| t.redirect != 0 && !shared.clients.contains_key(&t.redirect));
            options::write_trackinginfo(current, broken, &mut out);
            Ok(())
        }
        b"GETREDIR" | b"TRACKINGINFO" => Err(options::arity_error(req)),
        _ => return tracking(state, session, shared, req),
    };
    if let Err(e) = result {
        out.clear();
        out.error(&e);
    }
    ReplyFut::ready(out.take())
}

fn tracking(state: &mut SessionState, session: &Session, shared: &ProxyShared, req: &Request) -> ReplyFut {
    let current = state.tracking.as_ref().map(|t| &t.options);
    let change = match options::parse_tracking(req, current, |id| shared.clients.contains_key(&id)) {
        Ok(change) => change,
        Err(e) => return ReplyFut::error(&e),
    };
    let options = match change {
        TrackingChange::Off => {
            state.tracking = None;
            return ReplyFut::ready(Bytes::from_static(b"+OK\r\n"));
        }
        TrackingChange::On(options) => options,
    };
    let own = (options.redirect == 0).then(|| state.push_sender(session.id, session.proto, shared));
    let table = tracker(&shared.cluster, shared.tracking_table_max_keys);
    let bcast = options.bcast.then(|| options.prefixes.clone());
    table.lock().clients.insert(session.id, Tracked { own, redirect: options.redirect, bcast });
    let links = Tracker::ensure_links(&table);
    match state.tracking.as_mut() {
        Some(t) => t.options = options,
        None => state.tracking = Some(Tracking { options, tracker: table, client_id: session.id }),
    }
    let timeout = shared.cluster.settings.timeout;
    // Answered once every link is subscribed: from then on, no write to a key the client reads is missed.
    ReplyFut::Task(Box::pin(async move {
        for mut ready in links {
            let confirmed = tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await;
            if !matches!(confirmed, Ok(Ok(_))) {
                return error_bytes(
                    "ERR ringcache-proxy: a shard did not confirm invalidation tracking in time; tracking is on, \
                     but invalidations from that shard may be missed until it does",
                );
            }
        }
        Bytes::from_static(b"+OK\r\n")
    }))
}

fn error_bytes(msg: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.error(msg);
    out.freeze()
}
