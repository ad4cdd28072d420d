//! Pub/sub through the proxy: one subscription per channel per worker thread towards the shards, fanned out
//! to the worker's subscribed clients.
//!
//! Every worker has a [`Hub`] (a thread-local; its mutex is taken by the worker's own thread, and by
//! PUBSUB NUMSUB and NUMPAT, which count over every worker's hub). The hub keeps one *link* per shard: a RESP3 connection that does nothing but subscribe.
//! A channel, pattern or shard channel is subscribed on every shard's link when the worker's first client
//! subscribes to it, and unsubscribed when its last one leaves; PUBLISH goes, like a key, to the shard that
//! owns the channel on the ring. A message therefore comes from exactly one shard, once per subscribing
//! worker, whatever the proxy it was published through and whichever shard owns the channel now (a ring
//! change needs no resubscription); the link hands it to each local subscriber's bounded push queue
//! (`common::push`): a slow reader is disconnected, never allowed to hold up the link or the others.
//! Messages of one channel reach a subscriber in the order its shard delivered them.
//!
//! A client's SUBSCRIBE is confirmed only once every link has confirmed its subscription (or already had
//! it), so a message published after the client saw its confirmation is not missed. A link that breaks is
//! reconnected and resubscribes everything; messages published while it was down are lost (pub/sub is
//! fire and forget, as in Redis).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use bytes::{Bytes, BytesMut};
use ringcache_common::push::PushSender;
use ringcache_common::resp::{encode_request, Protocol, ReplyBuf, ReplyScanner, ReplyValue, ReplyWriter};
use ringcache_common::tls::ShardStream;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::Cluster;

/// The kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    pub fn subscribe_verb(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    pub fn unsubscribe_verb(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }

    fn message_verb(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"message",
            Kind::Pattern => b"pmessage",
            Kind::Shard => b"smessage",
        }
    }
}

/// A subscription's local subscribers, and whether the links confirmed it.
#[derive(Default)]
struct Entry {
    subscribers: HashMap<u64, PushSender>,
    /// Shards whose link has not confirmed the subscription yet.
    unconfirmed: HashSet<String>,
    /// Clients waiting for the confirmation.
    waiting: Vec<oneshot::Sender<()>>,
}

/// One worker's subscriptions and links.
pub struct Hub {
    cluster: Arc<Cluster>,
    entries: HashMap<(Kind, Bytes), Entry>,
    /// Shard name → the link's command queue.
    links: HashMap<String, mpsc::UnboundedSender<Bytes>>,
}

/// A worker's hub, shared with its links' tasks.
pub type SharedHub = Arc<Mutex<Hub>>;

thread_local! {
    static HUB: RefCell<Option<SharedHub>> = const { RefCell::new(None) };
}

/// Every worker's hub, for PUBSUB NUMSUB and NUMPAT (the only cross-thread use of a hub's mutex).
static HUBS: Mutex<Vec<Weak<Mutex<Hub>>>> = Mutex::new(Vec::new());

/// This worker's hub (made on first use).
pub fn hub(cluster: &Arc<Cluster>) -> SharedHub {
    HUB.with(|h| {
        h.borrow_mut()
            .get_or_insert_with(|| {
                let hub = Arc::new(Mutex::new(Hub {
                    cluster: cluster.clone(),
                    entries: HashMap::new(),
                    links: HashMap::new(),
                }));
                HUBS.lock().push(Arc::downgrade(&hub));
                hub
            })
            .clone()
    })
}

/// This proxy's clients subscribed to `name` (a channel or shard channel), over every worker.
pub fn subscribers(kind: Kind, name: &[u8]) -> usize {
    let key = (kind, Bytes::copy_from_slice(name));
    HUBS.lock()
        .iter()
        .filter_map(Weak::upgrade)
        .map(|hub| hub.lock().entries.get(&key).map_or(0, |e| e.subscribers.len()))
        .sum()
}

/// Whether client `id` subscribes to `name` through this proxy.
pub fn is_subscribed(kind: Kind, name: &[u8], id: u64) -> bool {
    let key = (kind, Bytes::copy_from_slice(name));
    HUBS.lock()
        .iter()
        .filter_map(Weak::upgrade)
        .any(|hub| hub.lock().entries.get(&key).is_some_and(|e| e.subscribers.contains_key(&id)))
}

/// Distinct patterns this proxy's clients subscribe to, over every worker.
pub fn patterns() -> usize {
    let mut all: HashSet<Bytes> = HashSet::new();
    for hub in HUBS.lock().iter().filter_map(Weak::upgrade) {
        all.extend(hub.lock().entries.keys().filter(|(k, _)| *k == Kind::Pattern).map(|(_, n)| n.clone()));
    }
    all.len()
}

/// The request a link sends for one subscription change.
fn link_request(verb: &[u8], name: &[u8]) -> Bytes {
    encode_request([verb, name].into_iter())
}

impl Hub {
    /// Makes sure there is a link to every shard of the current ring (each subscribes to everything the
    /// hub has when it connects). Returns the shards that are up: the ones whose confirmation is awaited.
    fn ensure_links(this: &SharedHub) -> Vec<String> {
        let mut hub = this.lock();
        let topology = hub.cluster.topology();
        let names: Vec<(String, String)> =
            topology.shards.iter().map(|s| (s.spec.name.clone(), s.spec.addr.clone())).collect();
        hub.links.retain(|name, tx| names.iter().any(|(n, _)| n == name) && !tx.is_closed());
        for (name, addr) in names {
            if hub.links.contains_key(&name) {
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let password = hub.cluster.settings.shard_password.clone();
            tokio::spawn(run_link(Arc::downgrade(this), name.clone(), addr, password, rx));
            hub.links.insert(name, tx);
        }
        topology.shards.iter().filter(|s| s.is_up()).map(|s| s.spec.name.clone()).collect()
    }

    /// Subscribes client `session` to `name`. Returns a receiver that completes once the link of every
    /// shard that is up has confirmed the subscription (at once if it was confirmed already).
    pub fn subscribe(this: &SharedHub, kind: Kind, name: Bytes, session: &PushSender) -> oneshot::Receiver<()> {
        let up = Self::ensure_links(this);
        let mut hub = this.lock();
        let (done, confirmed) = oneshot::channel();
        let new = !hub.entries.contains_key(&(kind, name.clone()));
        let shard_names: Vec<String> = up;
        let entry = hub.entries.entry((kind, name.clone())).or_default();
        entry.subscribers.insert(session.client_id, session.clone());
        if new {
            entry.unconfirmed = shard_names.into_iter().collect();
        }
        if entry.unconfirmed.is_empty() {
            let _ = done.send(());
        } else {
            entry.waiting.push(done);
        }
        if new {
            let request = link_request(kind.subscribe_verb(), &name);
            for tx in hub.links.values() {
                let _ = tx.send(request.clone());
            }
        }
        confirmed
    }

    /// Unsubscribes client `session` from `name` (the links too, if it was the worker's last subscriber).
    pub fn unsubscribe(this: &SharedHub, kind: Kind, name: &[u8], session: u64) {
        let mut hub = this.lock();
        let key = (kind, Bytes::copy_from_slice(name));
        let Some(entry) = hub.entries.get_mut(&key) else { return };
        entry.subscribers.remove(&session);
        if entry.subscribers.is_empty() {
            hub.entries.remove(&key);
            let request = link_request(kind.unsubscribe_verb(), name);
            for tx in hub.links.values() {
                let _ = tx.send(request.clone());
            }
        }
    }

    /// Everything the worker subscribes to (what a link (re)subscribes to when it connects).
    fn subscriptions(&self) -> Vec<(Kind, Bytes)> {
        self.entries.keys().cloned().collect()
    }

    /// A link broke: nothing waits for its confirmations any more (it resubscribes when it is back).
    fn link_down(&mut self, shard: &str) {
        let keys: Vec<(Kind, Bytes)> = self.entries.keys().cloned().collect();
        for (kind, name) in keys {
            self.confirmed(shard, kind, &name);
        }
    }

    /// A link confirmed `name`.
    fn confirmed(&mut self, shard: &str, kind: Kind, name: &[u8]) {
        let Some(entry) = self.entries.get_mut(&(kind, Bytes::copy_from_slice(name))) else { return };
        entry.unconfirmed.remove(shard);
        if entry.unconfirmed.is_empty() {
            for done in entry.waiting.drain(..) {
                let _ = done.send(());
            }
        }
    }

    /// A message from a shard: to every local subscriber of the channel (and of each matching pattern, for
    /// a pattern message), encoded once per protocol.
    fn deliver(&mut self, kind: Kind, pattern: Option<&[u8]>, channel: &[u8], message: &[u8]) {
        let name = match kind {
            Kind::Pattern => pattern.unwrap_or_default(),
            _ => channel,
        };
        let Some(entry) = self.entries.get_mut(&(kind, Bytes::copy_from_slice(name))) else { return };
        let mut frames: [Option<Bytes>; 2] = [None, None];
        for sub in entry.subscribers.values() {
            let slot = usize::from(sub.proto == Protocol::Resp3);
            let frame = frames[slot]
                .get_or_insert_with(|| {
                    let mut out = ReplyBuf::new(sub.proto);
                    match kind {
                        Kind::Pattern => {
                            out.push_len(4);
                            out.bulk(kind.message_verb());
                            out.bulk(name);
                        }
                        _ => {
                            out.push_len(3);
                            out.bulk(kind.message_verb());
                        }
                    }
                    out.bulk(channel);
                    out.bulk(message);
                    out.take()
                })
                .clone();
            // A subscriber over its output limit is being disconnected (its session unsubscribes when it
            // ends); the others are not held up.
            sub.push(frame);
        }
    }
}

/// What a link task does with a frame it read.
fn on_frame(hub: &SharedHub, shard: &str, frame: &Bytes) {
    let Some(ReplyValue::Push(items)) = ReplyValue::parse(frame) else { return };
    let text = |v: &ReplyValue| v.as_bytes().cloned();
    let mut it = items.iter();
    let Some(verb) = it.next().and_then(text) else { return };
    let rest: Vec<Bytes> = it.filter_map(text).collect();
    let mut hub = hub.lock();
    match (&verb[..], rest.as_slice()) {
        (b"message", [channel, message]) => hub.deliver(Kind::Channel, None, channel, message),
        (b"smessage", [channel, message]) => hub.deliver(Kind::Shard, None, channel, message),
        (b"pmessage", [pattern, channel, message]) => hub.deliver(Kind::Pattern, Some(pattern), channel, message),
        (b"subscribe", [name, ..]) => hub.confirmed(shard, Kind::Channel, name),
        (b"psubscribe", [name, ..]) => hub.confirmed(shard, Kind::Pattern, name),
        (b"ssubscribe", [name, ..]) => hub.confirmed(shard, Kind::Shard, name),
        _ => {}
    }
}

/// One link: connects, subscribes to everything the hub has, relays changes, reads messages; reconnects
/// (with backoff) until the hub drops its queue.
async fn run_link(
    hub: Weak<Mutex<Hub>>,
    shard: String,
    addr: String,
    password: Option<String>,
    mut changes: mpsc::UnboundedReceiver<Bytes>,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = hub.upgrade() else { return };
        drop(strong);
        match link_once(&hub, &shard, &addr, password.as_deref(), &mut changes).await {
            Ok(()) => return,
            Err(e) => tracing::debug!("pub/sub link to shard '{shard}': {e}"),
        }
        if let Some(h) = hub.upgrade() {
            h.lock().link_down(&shard);
        }
        // Whatever the link held is unconfirmed until it resubscribes.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
        // Requests queued while down are replaced by the full resubscription on connect.
        while changes.try_recv().is_ok() {}
        if changes.is_closed() {
            return;
        }
    }
}

async fn link_once(
    hub: &Weak<Mutex<Hub>>,
    shard: &str,
    addr: &str,
    password: Option<&str>,
    changes: &mut mpsc::UnboundedReceiver<Bytes>,
) -> std::io::Result<()> {
    let mut stream: ShardStream = crate::tls::connect_shard(addr).await?;
    let _ = stream.set_nodelay(true);
    let mut hello: Vec<&[u8]> = vec![b"HELLO", b"3", b"SETNAME", b"ringcache-proxy-pubsub"];
    if let Some(credentials) = password {
        let (user, pw) = crate::backend::split_credentials(credentials);
        hello.splice(2..2, [&b"AUTH"[..], user.as_bytes(), pw.as_bytes()]);
    }
    let mut first = BytesMut::from(&encode_request(hello.into_iter())[..]);
    if let Some(h) = hub.upgrade() {
        for (kind, name) in h.lock().subscriptions() {
            first.extend_from_slice(&link_request(kind.subscribe_verb(), &name));
        }
    }
    stream.write_all(&first).await?;
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut scanner = ReplyScanner::new();
    let mut greeted = false;
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Some(req) => writer.write_all(&req).await?,
                None => return Ok(()),
            },
            n = reader.read_buf(&mut buf) => {
                if n? == 0 {
                    return Err(std::io::Error::other("the shard closed the link"));
                }
                while let Some(frame) = scanner.next(&mut buf).map_err(std::io::Error::other)? {
                    if !greeted {
                        greeted = true;
                        if frame.first() == Some(&b'-') {
                            return Err(std::io::Error::other(String::from_utf8_lossy(&frame).trim().to_string()));
                        }
                        continue;
                    }
                    let Some(h) = hub.upgrade() else { return Ok(()) };
                    on_frame(&h, shard, &frame);
                }
            }
        }
    }
}
