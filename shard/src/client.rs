//! One client connection's state: what it shares with the proxy (`common::connection::ClientConn`:
//! authentication, protocol, name) plus what only a shard keeps — a transaction being queued, the keys it
//! watches, its subscriptions, client tracking — and its queue of *pushes*: messages that reach it without
//! being asked for (pub/sub messages, tracking invalidations), written between its replies.
//!
//! The push queue itself (bounded by Redis's `client-output-buffer-limit pubsub`) is
//! `ringcache_common::push`, shared with the proxy.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use ringcache_common::connection::ClientConn;
use ringcache_common::resp::{Protocol, Request};

pub use ringcache_common::push::{push_queue, PushLimits, PushReceiver, PushSender};

pub use ringcache_common::config::StateLimits;

/// A transaction being queued (between MULTI and EXEC).
#[derive(Debug, Default)]
pub struct Multi {
    pub queued: Vec<Request>,
    /// Bytes of the queued requests, against `--multi-max-bytes`.
    pub queued_bytes: usize,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub aborted: bool,
}

/// The keys a connection watches, and whether one of them changed since.
#[derive(Debug, Default)]
pub struct Watch {
    pub keys: Vec<Box<[u8]>>,
    pub dirty: Arc<AtomicBool>,
}

/// A connection's subscriptions (channel names and patterns).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    pub shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}

pub use ringcache_common::tracking::Tracking;

/// Per-connection state commands can change.
pub struct ClientState {
    /// What the shard shares with the proxy: authentication, protocol, name.
    pub conn: ClientConn,
    pub multi: Option<Multi>,
    pub watch: Option<Watch>,
    pub subs: Subscriptions,
    pub tracking: Option<Tracking>,
    /// This connection's push queue, made on first need (SUBSCRIBE, CLIENT TRACKING).
    pub pusher: Option<PushSender>,
    pub pushes: Option<PushReceiver>,
    /// How far the append-only log must be written (fsynced, with `always`) before this connection's
    /// pending replies may be sent: the end of the last frame its commands appended.
    pub aof_upto: u64,
}

impl ClientState {
    pub fn new(conn: ClientConn) -> Self {
        ClientState {
            conn,
            multi: None,
            watch: None,
            subs: Subscriptions::default(),
            tracking: None,
            pusher: None,
            pushes: None,
            aof_upto: 0,
        }
    }

    /// In RESP2, a connection with subscriptions may only (un)subscribe, PING, QUIT and RESET.
    pub fn in_resp2_subscriber_mode(&self) -> bool {
        self.conn.proto == Protocol::Resp2 && self.subs.count() > 0
    }
}

impl std::ops::Deref for ClientState {
    type Target = ClientConn;
    fn deref(&self) -> &ClientConn {
        &self.conn
    }
}

impl std::ops::DerefMut for ClientState {
    fn deref_mut(&mut self) -> &mut ClientConn {
        &mut self.conn
    }
}
