//! Pub/sub: who is subscribed to what, and delivering a PUBLISH to each subscriber's push queue.
//!
//! One mutex guards the registry, so publishes are delivered in the order they were made, to every
//! subscriber: a subscriber's queue receives a channel's messages in publish order. Delivery never waits
//! on a subscriber: a frame is queued (encoded once per protocol per publish and shared), and a subscriber
//! whose queue passes its output limit is disconnected (see [`crate::client`]).

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;
use ringcache_common::resp::{Protocol, ReplyBuf, ReplyWriter};

use crate::client::PushSender;
use ringcache_common::glob::glob_match;

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The message type a subscriber receives (`message`, `pmessage`, `smessage`).
    fn message(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"message",
            Kind::Pattern => b"pmessage",
            Kind::Shard => b"smessage",
        }
    }
}

type Subscribers = HashMap<u64, PushSender>;

#[derive(Default)]
struct Inner {
    channels: HashMap<Bytes, Subscribers>,
    patterns: HashMap<Bytes, Subscribers>,
    shard_channels: HashMap<Bytes, Subscribers>,
}

impl Inner {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, Subscribers> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }
}

/// The pub/sub registry of one shard.
#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Inner>,
}

/// A message frame, encoded at most once per protocol.
struct Frames<'a> {
    parts: [&'a [u8]; 4],
    len: usize,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl<'a> Frames<'a> {
    fn new(parts: [&'a [u8]; 4], len: usize) -> Self {
        Frames { parts, len, resp2: None, resp3: None }
    }

    fn get(&mut self, proto: Protocol) -> Bytes {
        let slot = match proto {
            Protocol::Resp2 => &mut self.resp2,
            Protocol::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| {
            let mut out = ReplyBuf::new(proto);
            out.push_len(self.len);
            for part in &self.parts[..self.len] {
                out.bulk(part);
            }
            out.take()
        })
        .clone()
    }
}

impl PubSub {
    /// Subscribes `sub` to `name`; false if it already was.
    pub fn subscribe(&self, kind: Kind, name: Bytes, sub: &PushSender) -> bool {
        let mut inner = self.inner.lock();
        inner.map(kind).entry(name).or_default().insert(sub.client_id, sub.clone()).is_none()
    }

    /// Unsubscribes client `id` from `name`; false if it was not subscribed.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) -> bool {
        let mut inner = self.inner.lock();
        let map = inner.map(kind);
        let Some(subs) = map.get_mut(name) else { return false };
        let was = subs.remove(&id).is_some();
        if subs.is_empty() {
            map.remove(name);
        }
        was
    }

    /// Delivers a message published on `channel` to its channel (or shard channel) subscribers and, for
    /// PUBLISH, to every matching pattern's. Returns how many subscriptions received it.
    pub fn publish(&self, channel: &[u8], message: &[u8], shard: bool) -> usize {
        let mut inner = self.inner.lock();
        let mut delivered = 0;
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        if let Some(subs) = inner.map(kind).get(channel) {
            let mut frames = Frames::new([kind.message(), channel, message, b""], 3);
            for s in subs.values() {
                s.push(frames.get(s.proto));
                delivered += 1;
            }
        }
        if !shard {
            for (pattern, subs) in &inner.patterns {
                if glob_match(pattern, channel) {
                    let mut frames = Frames::new([Kind::Pattern.message(), pattern, channel, message], 4);
                    for s in subs.values() {
                        s.push(frames.get(s.proto));
                        delivered += 1;
                    }
                }
            }
        }
        delivered
    }

    /// Active channels (or shard channels) matching `pattern` (all without one): PUBSUB CHANNELS.
    pub fn channels(&self, pattern: Option<&[u8]>, shard: bool) -> Vec<Bytes> {
        let mut inner = self.inner.lock();
        let map = inner.map(if shard { Kind::Shard } else { Kind::Channel });
        map.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c))).cloned().collect()
    }

    /// Subscribers of `channel`: PUBSUB NUMSUB / SHARDNUMSUB.
    pub fn subscribers(&self, channel: &[u8], shard: bool) -> usize {
        let mut inner = self.inner.lock();
        inner.map(if shard { Kind::Shard } else { Kind::Channel }).get(channel).map_or(0, HashMap::len)
    }

    /// Whether client `id` is subscribed to `name`.
    pub fn is_subscribed(&self, kind: Kind, name: &[u8], id: u64) -> bool {
        self.inner.lock().map(kind).get(name).is_some_and(|subs| subs.contains_key(&id))
    }

    /// Distinct patterns subscribed to: PUBSUB NUMPAT.
    pub fn patterns(&self) -> usize {
        self.inner.lock().patterns.len()
    }

    /// Clients with at least one subscription (INFO's `pubsub_clients`).
    pub fn subscribed_clients(&self) -> usize {
        let inner = self.inner.lock();
        let ids: std::collections::HashSet<u64> = [&inner.channels, &inner.patterns, &inner.shard_channels]
            .into_iter()
            .flat_map(|m| m.values().flat_map(|subs| subs.keys().copied()))
            .collect();
        ids.len()
    }

    /// (channels, patterns, shard channels) with at least one subscriber, for INFO.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.inner.lock();
        (inner.channels.len(), inner.patterns.len(), inner.shard_channels.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{push_queue, PushLimits};

    #[test]
    fn messages_reach_channel_and_pattern_subscribers_in_their_protocol() {
        let ps = PubSub::default();
        let (two, mut two_rx) = push_queue(1, Protocol::Resp2, PushLimits::default());
        let (three, mut three_rx) = push_queue(2, Protocol::Resp3, PushLimits::default());
        assert!(ps.subscribe(Kind::Channel, Bytes::from_static(b"news"), &two));
        assert!(!ps.subscribe(Kind::Channel, Bytes::from_static(b"news"), &two));
        assert!(ps.subscribe(Kind::Pattern, Bytes::from_static(b"n*"), &three));
        assert_eq!(ps.publish(b"news", b"hi", false), 2);
        assert_eq!(two_rx.try_recv().as_deref(), Some(&b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"[..]));
        assert_eq!(
            three_rx.try_recv().as_deref(),
            Some(&b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"[..])
        );
        assert_eq!(ps.publish(b"other", b"x", false), 0);
        assert_eq!(ps.publish(b"news", b"x", true), 0, "shard channels are apart");
        assert_eq!(ps.subscribers(b"news", false), 1);
        assert!(ps.unsubscribe(Kind::Channel, b"news", 1));
        assert!(!ps.unsubscribe(Kind::Channel, b"news", 1));
        assert_eq!(ps.channels(None, false), Vec::<Bytes>::new());
        assert_eq!(ps.patterns(), 1);
    }
}
