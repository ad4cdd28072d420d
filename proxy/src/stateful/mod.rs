//! A client connection's state beyond one request: the proxy session as a small state machine.
//!
//! A session is *normal* (every request routed on its own, [`crate::route`]), *in a transaction* (between
//! MULTI and EXEC: requests are checked and queued here, then sent to their shard as one block,
//! [`transaction`]), *watching* (its WATCHed keys live on a shard connection of its own,
//! [`crate::dedicated`]), *subscribed* (pub/sub through the worker's hub, [`subscriber`]) and/or
//! *tracking* (client-side caching invalidations, [`tracking`]); the states combine as in Redis (a RESP3
//! client may run commands while subscribed; a RESP2 one may only (un)subscribe, PING, QUIT and RESET).
//! Scripts ([`scripts`]) are routed by their keys like any command; what is stateful about them is the
//! proxy's memory of script bodies, which lets EVALSHA work on a shard that never saw SCRIPT LOAD.
//!
//! [`route`] is the session's one entry point: it answers the commands that change or depend on the state
//! and hands the rest to [`crate::route::route_command`]. A reply marked as a *barrier* runs alone: the session
//! routes nothing after it until it is answered, so that a WATCH or an EXEC sees the client's earlier
//! requests applied and none of its later ones.

pub mod scripts;
pub mod subscriber;
pub mod tracking;
pub mod transaction;

use ringcache_common::command::{self, CommandSpec};
use ringcache_common::push::{push_queue, PushReceiver, PushSender};
use ringcache_common::resp::{Protocol, Request};

use crate::session::{ProxyShared, ReplyFut, Session};

/// What a session keeps between requests.
#[derive(Default)]
pub struct SessionState {
    pub multi: Option<transaction::Queued>,
    pub watch: Option<transaction::Watching>,
    pub subs: subscriber::Subscriptions,
    pub tracking: Option<tracking::Tracking>,
    /// Where pushes for this client go (made on its first subscription or CLIENT TRACKING).
    push: Option<PushSender>,
    /// The receiving side of a push queue just made, for the session to pick up.
    new_receiver: Option<PushReceiver>,
}

impl Drop for SessionState {
    fn drop(&mut self) {
        if let Some(push) = &self.push {
            tracking::forget_push_target(push.client_id);
        }
    }
}

/// A routed request's reply, and whether the session must wait for it before routing more.
pub struct Routed {
    pub spec: Option<&'static CommandSpec>,
    pub fut: ReplyFut,
    pub barrier: bool,
}

impl Routed {
    fn plain(spec: Option<&'static CommandSpec>, fut: ReplyFut) -> Routed {
        Routed { spec, fut, barrier: false }
    }

    fn barrier(spec: Option<&'static CommandSpec>, fut: ReplyFut) -> Routed {
        Routed { spec, fut, barrier: true }
    }
}

impl SessionState {
    /// This client's push queue, made on first use.
    pub fn push_sender(&mut self, id: u64, proto: Protocol, shared: &ProxyShared) -> PushSender {
        if let Some(p) = &self.push {
            if p.proto == proto {
                return p.clone();
            }
        }
        let (tx, rx) = push_queue(id, proto, shared.state_limits.pubsub_output);
        tracking::register_push_target(&tx);
        self.push = Some(tx.clone());
        self.new_receiver = Some(rx);
        tx
    }

    /// A push queue made since the last call, for the session to read from.
    pub fn take_new_receiver(&mut self) -> Option<PushReceiver> {
        self.new_receiver.take()
    }

    /// Whether a RESP2 client is in subscriber mode.
    fn resp2_subscribed(&self, proto: Protocol) -> bool {
        proto == Protocol::Resp2 && !self.subs.is_empty()
    }

    /// RESET: back to a fresh connection's state.
    fn reset(&mut self) {
        self.multi = None;
        self.watch = None;
        self.subs.clear();
        self.tracking = None;
    }
}

/// What a command is to the session's state, looked up once per command of the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Routed on its own, unless the session is in a state (in MULTI, subscribed, tracking).
    Plain,
    Transaction,
    Subscription,
    Publish,
    Pubsub,
    Script,
    /// CLIENT: its tracking subcommands are the session's.
    Client,
    Reset,
    Ping,
}

static ROLES: command::PerCommand<Role> = command::PerCommand::new(|c| match c.name {
    "multi" | "exec" | "discard" | "watch" | "unwatch" => Role::Transaction,
    "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe" => Role::Subscription,
    "publish" | "spublish" => Role::Publish,
    "pubsub" => Role::Pubsub,
    "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "script" => Role::Script,
    "client" => Role::Client,
    "reset" => Role::Reset,
    "ping" => Role::Ping,
    _ => Role::Plain,
});

/// Routes one request (its command already looked up: `spec`) with the session's state (see the module docs).
pub fn route(
    state: &mut SessionState,
    session: &mut Session,
    shared: &ProxyShared,
    req: Request,
    spec: Option<&'static CommandSpec>,
) -> Routed {
    let role = spec.map_or(Role::Plain, |s| *ROLES.get(s));
    // The hot path: a plain command of a client in no state.
    if role == Role::Plain && state.multi.is_none() && state.push.is_none() && state.tracking.is_none() {
        return Routed::plain(spec, crate::route::route_command(session, shared, req, spec));
    }
    route_stateful(state, session, shared, req, spec, role)
}

fn route_stateful(
    state: &mut SessionState,
    session: &mut Session,
    shared: &ProxyShared,
    req: Request,
    spec: Option<&'static CommandSpec>,
    role: Role,
) -> Routed {
    let name = spec.map(|s| s.name);
    let authenticated = session.authenticated || spec.is_some_and(|s| s.flags.contains(&"no_auth"));
    if !authenticated {
        return Routed::plain(spec, crate::route::route_command(session, shared, req, spec));
    }
    if state.multi.is_some() && !matches!(name, Some("exec" | "discard" | "multi" | "watch" | "quit" | "reset")) {
        return Routed::plain(spec, transaction::queue(state, session, shared, spec, req));
    }
    if state.resp2_subscribed(session.proto) && !spec.is_some_and(subscriber::allowed_while_subscribed) {
        let shown = String::from_utf8_lossy(req.name()).to_lowercase();
        return Routed::plain(
            spec,
            ReplyFut::error(&format!(
                "ERR Can't execute '{shown}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are \
                 allowed in this context"
            )),
        );
    }
    let Some(spec) = spec else {
        return Routed::plain(None, crate::route::route_command(session, shared, req, None));
    };
    if role != Role::Plain {
        if let Err(e) = command::check_arity(spec, &req) {
            return Routed::plain(Some(spec), ReplyFut::error(&e));
        }
    }
    // The ACL check of what is not passed on to `route_command` (which checks the rest).
    let answered_here = match role {
        Role::Transaction | Role::Subscription | Role::Publish | Role::Pubsub | Role::Script => true,
        Role::Ping => state.resp2_subscribed(session.proto),
        Role::Client => tracking::is_tracking_subcommand(&req),
        Role::Plain | Role::Reset => false,
    };
    if answered_here && !session.user.unrestricted() {
        let context = ringcache_common::acl::Context::Toplevel;
        if let Err(e) = crate::route::acl_check(session, shared, spec, &req, context) {
            return Routed::plain(Some(spec), ReplyFut::error(&e));
        }
    }
    let fut = match role {
        Role::Transaction => return transaction::command(state, session, shared, spec, req),
        Role::Subscription => subscriber::command(state, session, shared, spec, &req),
        Role::Ping if state.resp2_subscribed(session.proto) => subscriber::ping(&req),
        Role::Publish => subscriber::publish(session, shared, &req),
        Role::Pubsub => subscriber::pubsub(session, shared, &req),
        Role::Script => return scripts::command(session, shared, spec, req),
        Role::Client if tracking::is_tracking_subcommand(&req) => tracking::command(state, session, shared, &req),
        Role::Reset => {
            state.reset();
            crate::route::route_command(session, shared, req, Some(spec))
        }
        _ => {
            if let Some(tracking) = state.tracking.as_mut() {
                tracking.before_read(spec, &req);
            }
            crate::route::route_command(session, shared, req, Some(spec))
        }
    };
    Routed::plain(Some(spec), fut)
}
