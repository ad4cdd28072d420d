//! A client's side of pub/sub through the proxy: its subscriptions, their confirmations, PUBLISH and
//! PUBSUB. The worker's [`crate::pubsub`] hub holds one subscription per channel towards the shards and
//! delivers messages to the client's push queue.
//!
//! PUBLISH goes to the shard that owns the channel on the ring, and every proxy worker with a subscriber
//! subscribes on every shard, so a message reaches each subscriber once, whichever proxy it was published
//! through. Its reply counts the subscriptions that took the message on that shard: proxy workers (one
//! each, however many of their clients subscribe) and clients connected to the shard directly. PUBSUB
//! CHANNELS and SHARDCHANNELS list the channels subscribed through any proxy (asked of every shard);
//! NUMSUB, NUMPAT and SHARDNUMSUB count this proxy's own clients.

use std::collections::HashSet;

use bytes::Bytes;
use ringcache_common::command::CommandSpec;
use ringcache_common::resp::{ReplyBuf, ReplyValue, ReplyWriter, Request};
use tokio::sync::oneshot;

use super::SessionState;
use crate::pubsub::{self, Hub, Kind, SharedHub};
use crate::route::{wire, Requester};
use crate::session::{shard_error, ProxyShared, ReplyFut, Session};

/// A client's channels, patterns and shard channels.
#[derive(Default)]
pub struct Subscriptions {
    hub: Option<SharedHub>,
    client_id: u64,
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
    shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty()
    }

    fn set(&mut self, kind: Kind) -> &mut HashSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// The count a confirmation carries: channels and patterns together, shard channels apart (as Redis).
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard_channels.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }

    /// Leaves every subscription (RESET, and the end of the session).
    pub fn clear(&mut self) {
        let Some(hub) = self.hub.clone() else { return };
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in std::mem::take(self.set(kind)) {
                Hub::unsubscribe(&hub, kind, &name, self.client_id);
            }
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.clear();
    }
}

pub use ringcache_common::command::allowed_while_subscribed;

fn kind_of(name: &str) -> (Kind, bool) {
    match name {
        "subscribe" => (Kind::Channel, true),
        "psubscribe" => (Kind::Pattern, true),
        "ssubscribe" => (Kind::Shard, true),
        "unsubscribe" => (Kind::Channel, false),
        "punsubscribe" => (Kind::Pattern, false),
        _ => (Kind::Shard, false),
    }
}

/// One confirmation frame: `[verb, name, count]` (a push in RESP3).
fn confirm(out: &mut ReplyBuf, verb: &[u8], name: Option<&[u8]>, count: usize) {
    out.push_len(3);
    out.bulk(verb);
    match name {
        Some(name) => out.bulk(name),
        None => out.null(),
    }
    out.integer(count as i64);
}

/// (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE.
pub fn command(
    state: &mut SessionState,
    session: &Session,
    shared: &ProxyShared,
    spec: &'static CommandSpec,
    req: &Request,
) -> ReplyFut {
    let (kind, subscribing) = kind_of(spec.name);
    let mut out = ReplyBuf::new(session.proto);
    if !subscribing {
        let verb = kind.unsubscribe_verb();
        let names: Vec<Bytes> = if req.argc() > 1 {
            req.args_from(1).map(Bytes::copy_from_slice).collect()
        } else {
            state.subs.set(kind).iter().cloned().collect()
        };
        if names.is_empty() {
            confirm(&mut out, verb, None, state.subs.count(kind));
        }
        for name in names {
            if state.subs.set(kind).remove(&name) {
                if let Some(hub) = &state.subs.hub {
                    Hub::unsubscribe(hub, kind, &name, session.id);
                }
            }
            confirm(&mut out, verb, Some(&name), state.subs.count(kind));
        }
        return ReplyFut::ready(out.take());
    }
    let max = shared.state_limits.max_subscriptions;
    let new = req.args_from(1).filter(|n| !state.subs.set(kind).contains(*n)).count();
    if state.subs.total() + new > max {
        return ReplyFut::error(&format!("ERR too many subscriptions for this client (max-subscriptions is {max})"));
    }
    let pusher = state.push_sender(session.id, session.proto, shared);
    let hub = state.subs.hub.get_or_insert_with(|| pubsub::hub(&shared.cluster)).clone();
    state.subs.client_id = session.id;
    let mut confirmations: Vec<oneshot::Receiver<()>> = Vec::new();
    for name in req.args_from(1) {
        let name = Bytes::copy_from_slice(name);
        if state.subs.set(kind).insert(name.clone()) {
            confirmations.push(Hub::subscribe(&hub, kind, name.clone(), &pusher));
        }
        confirm(&mut out, kind.subscribe_verb(), Some(&name), state.subs.count(kind));
    }
    let reply = out.take();
    if confirmations.is_empty() {
        return ReplyFut::ready(reply);
    }
    // Confirmed once the shards are subscribed: a message published after the client sees its
    // confirmation reaches it.
    ReplyFut::Task(Box::pin(async move {
        for confirmed in confirmations {
            let _ = confirmed.await;
        }
        reply
    }))
}

/// PING of a RESP2 subscriber: `["pong", message]`, as Redis answers in subscriber mode.
pub fn ping(req: &Request) -> ReplyFut {
    let mut out = ReplyBuf::new(ringcache_common::resp::Protocol::Resp2);
    out.array_len(2);
    out.bulk(b"pong");
    out.bulk(if req.argc() > 1 { req.arg(1) } else { b"" });
    ReplyFut::ready(out.take())
}

/// PUBLISH and SPUBLISH: to the shard that owns the channel.
pub fn publish(session: &Session, shared: &ProxyShared, req: &Request) -> ReplyFut {
    let topology = shared.cluster.topology();
    let topo = topology.view();
    let Some(owner) = topo.owner(req.arg(1)) else { return crate::route::no_live_shard(&topo) };
    let requester = Requester::of(session);
    crate::route::forward_to(Requester { failover: false, ..requester }, &topo.shards[owner], req)
}

/// PUBSUB: CHANNELS and SHARDCHANNELS from every shard (distinct); the counts from this proxy's hubs.
pub fn pubsub(session: &Session, shared: &ProxyShared, req: &Request) -> ReplyFut {
    let sub = req.arg(1).to_ascii_lowercase();
    let mut out = ReplyBuf::new(session.proto);
    match &sub[..] {
        b"numsub" | b"shardnumsub" => {
            let kind = if &sub[..] == b"numsub" { Kind::Channel } else { Kind::Shard };
            out.array_len(2 * (req.argc() - 2));
            for channel in req.args_from(2) {
                out.bulk(channel);
                out.integer(pubsub::subscribers(kind, channel) as i64);
            }
            ReplyFut::ready(out.take())
        }
        b"numpat" => {
            out.integer(pubsub::patterns() as i64);
            ReplyFut::ready(out.take())
        }
        b"channels" | b"shardchannels" => {
            let topology = shared.cluster.topology();
            let topo = topology.view();
            let request = wire(req);
            let parts: Vec<_> = topo
                .live()
                .map(|(_, shard)| (shard.clone(), shard.conn_for(session.id, session.proto).send(request.clone())))
                .collect();
            ReplyFut::Task(Box::pin(async move {
                let mut seen: Vec<Bytes> = Vec::new();
                for (shard, rx) in parts {
                    let reply = match rx.await {
                        Ok(Ok(reply)) => reply,
                        Ok(Err(e)) => return shard_error(&shard, e),
                        Err(_) => return shard_error(&shard, crate::backend::BackendError::Closed),
                    };
                    if reply.first() == Some(&b'-') {
                        return reply;
                    }
                    for item in ReplyValue::parse(&reply).and_then(ReplyValue::into_items).unwrap_or_default() {
                        if let Some(name) = item.as_bytes() {
                            if !seen.contains(name) {
                                seen.push(name.clone());
                            }
                        }
                    }
                }
                out.array_len(seen.len());
                for name in &seen {
                    out.bulk(name);
                }
                out.take()
            }))
        }
        _ => {
            let topology = shared.cluster.topology();
            let topo = topology.view();
            let reply = match topo.live().next() {
                Some((_, shard)) => crate::route::forward_to(Requester::of(session), shard, req),
                None => crate::route::no_live_shard(&topo),
            };
            reply
        }
    }
}
