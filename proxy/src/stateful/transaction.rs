//! MULTI / EXEC / DISCARD / WATCH / UNWATCH through the proxy.
//!
//! Between MULTI and EXEC the proxy checks and queues each command itself (`+QUEUED`, or the error Redis
//! gives at queue time, which dooms the transaction: EXEC answers `-EXECABORT` and *nothing* is sent). The
//! first key of the transaction picks its shard; a command whose keys live elsewhere is refused with
//! `CROSSSLOT`, which dooms it the same way. At EXEC the whole transaction is sent to its shard as one
//! block, `MULTI`, the commands, `EXEC`, written back to back, so the shard runs it atomically (no other
//! request on that connection can come between), and the client gets the shard's EXEC reply.
//!
//! Without WATCH the block goes on the session's shared connection: one worker thread writes it whole,
//! so no other client's request can fall inside it. WATCH needs a connection that belongs to the client
//! (the watched keys are that connection's state): the first WATCH opens one to the keys' shard
//! ([`crate::dedicated`]); the EXEC block goes there, and the connection is closed after EXEC, DISCARD or
//! UNWATCH (closing it forgets the watches on the shard).
//!
//! With `--replicas` above 1 the block goes to every copy of its shard's keys, and the reply is the
//! first copy's (under WATCH, the other copies get the block only if the first ran it). While a copy is
//! down and another stands in for it (hinted handoff), transactions on its keys are refused with
//! `TRYAGAIN`: the hint wrapper cannot travel inside MULTI.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use ringcache_common::command::{self, CommandSpec};
use ringcache_common::resp::{ReplyWriter, Request};

use super::{Routed, SessionState};
use crate::cluster::{ShardHandle, View};
use crate::dedicated::Dedicated;
use crate::route::{wire, Requester};
use crate::session::{shard_error, ProxyShared, ReplyFut, Session};

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";
const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

/// Keyless commands that may be queued: they run on the transaction's shard like anywhere else.
fn keyless_allowed(name: &str) -> bool {
    matches!(name, "ping" | "echo" | "time" | "unwatch" | "lastsave" | "pfselftest")
}

/// A transaction being queued.
#[derive(Default)]
pub struct Queued {
    requests: Vec<Request>,
    bytes: usize,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    aborted: bool,
    /// A key of the transaction: its shard runs the transaction.
    anchor: Option<Bytes>,
}

/// The client's WATCHed keys: the shard they live on, a key of theirs, and the client's own connection
/// to that shard (taken by the request using it, put back after).
pub struct Watching {
    shard: Arc<ShardHandle>,
    anchor: Bytes,
    conn: Arc<Mutex<Option<Dedicated>>>,
}

fn crossslot(what: &str) -> String {
    format!(
        "CROSSSLOT Keys in request don't hash to the same shard: ringcache-proxy runs a transaction only when all \
         its keys (watched and queued) share a shard; {what} (use a {{hash tag}})"
    )
}

/// The keys of a request (the channel of PUBLISH), for placement.
fn request_keys(spec: &CommandSpec, req: &Request) -> Vec<Bytes> {
    if matches!(spec.name, "publish" | "spublish") {
        return vec![Bytes::copy_from_slice(req.arg(1))];
    }
    command::keys(spec, req).iter().map(|&p| Bytes::copy_from_slice(req.arg(p))).collect()
}

/// Whether every key lives on the same shard as `anchor` (or the first of them, without one).
fn same_shard(topo: &View<'_>, anchor: Option<&Bytes>, keys: &[Bytes]) -> bool {
    let Some(first) = anchor.or(keys.first()) else { return true };
    let home = topo.owner(first);
    keys.iter().all(|k| topo.owner(k) == home)
}

/// A command inside MULTI: queued, or refused (dooming the transaction).
pub fn queue(
    state: &mut SessionState,
    session: &Session,
    shared: &ProxyShared,
    spec: Option<&'static CommandSpec>,
    req: Request,
) -> ReplyFut {
    let refusal = check(state, session, shared, spec, &req);
    let Some(multi) = state.multi.as_mut() else { return ReplyFut::error("ERR EXEC without MULTI") };
    let size: usize = req.args_from(0).map(<[u8]>::len).sum();
    let limits = shared.state_limits;
    let refusal = refusal.or_else(|| {
        (multi.requests.len() >= limits.multi_max_commands || multi.bytes + size > limits.multi_max_bytes).then(|| {
            format!(
                "ERR Transaction too large: at most {} commands and {} bytes may be queued (multi-max-commands, \
                 multi-max-bytes)",
                limits.multi_max_commands, limits.multi_max_bytes
            )
        })
    });
    if let Some(error) = refusal {
        multi.aborted = true;
        return ReplyFut::error(&error);
    }
    if multi.anchor.is_none() {
        if let Some(spec) = spec {
            multi.anchor = request_keys(spec, &req).into_iter().next();
        }
    }
    multi.bytes += size;
    multi.requests.push(req);
    ReplyFut::ready(Bytes::from_static(b"+QUEUED\r\n"))
}

/// Why a command may not be queued (Redis's queue-time errors, and the proxy's own), if it may not.
fn check(
    state: &SessionState,
    session: &Session,
    shared: &ProxyShared,
    spec: Option<&'static CommandSpec>,
    req: &Request,
) -> Option<String> {
    let Some(spec) = spec else { return Some(command::unknown_command_message(req)) };
    if let Err(e) = command::check_arity(spec, req) {
        return Some(e);
    }
    if !session.authenticated && !spec.flags.contains(&"no_auth") {
        return Some("NOAUTH Authentication required.".into());
    }
    if !session.user.unrestricted() {
        if let Err(e) = crate::route::acl_check(session, shared, spec, req, ringcache_common::acl::Context::Multi) {
            return Some(e);
        }
    }
    if spec.flags.contains(&"no_multi") || matches!(spec.name, "save" | "shutdown" | "sync" | "psync" | "monitor") {
        return Some("ERR Command not allowed inside a transaction".into());
    }
    let keys = request_keys(spec, req);
    if keys.is_empty() {
        if keyless_allowed(spec.name) {
            return None;
        }
        return Some(format!(
            "ERR {} inside MULTI is not supported by ringcache-proxy: only commands on keys (and PING ECHO TIME) \
             can run in a transaction on one shard",
            spec.name.to_uppercase()
        ));
    }
    if crate::route::is_refused(spec) {
        return Some(format!("ERR {} is not supported by ringcache-proxy", spec.name.to_uppercase()));
    }
    let topology = shared.cluster.topology();
    let topo = topology.view();
    let anchor = state.multi.as_ref().and_then(|m| m.anchor.as_ref()).or(state.watch.as_ref().map(|w| &w.anchor));
    if !same_shard(&topo, anchor, &keys) {
        return Some(crossslot(&format!("{} is on another", spec.name.to_uppercase())));
    }
    None
}

/// MULTI, EXEC, DISCARD, WATCH and UNWATCH.
pub fn command(
    state: &mut SessionState,
    session: &Session,
    shared: &ProxyShared,
    spec: &'static CommandSpec,
    req: Request,
) -> Routed {
    let error = |msg: &str| Routed::plain(Some(spec), ReplyFut::error(msg));
    match spec.name {
        "multi" => {
            if state.multi.is_some() {
                return error("ERR MULTI calls can not be nested");
            }
            state.multi = Some(Queued::default());
            Routed::plain(Some(spec), ReplyFut::ready(Bytes::from_static(b"+OK\r\n")))
        }
        "discard" => {
            if state.multi.take().is_none() {
                return error("ERR DISCARD without MULTI");
            }
            state.watch = None;
            Routed::plain(Some(spec), ReplyFut::ready(Bytes::from_static(b"+OK\r\n")))
        }
        "unwatch" => {
            state.watch = None;
            Routed::plain(Some(spec), ReplyFut::ready(Bytes::from_static(b"+OK\r\n")))
        }
        "watch" => {
            if state.multi.is_some() {
                return error("ERR WATCH inside MULTI is not allowed");
            }
            watch(state, session, shared, spec, req)
        }
        _ => {
            let Some(multi) = state.multi.take() else { return error("ERR EXEC without MULTI") };
            let watching = state.watch.take();
            if multi.aborted {
                return error(EXECABORT);
            }
            Routed::barrier(Some(spec), exec(session, shared, multi, watching))
        }
    }
}

/// WATCH: on the client's own connection to the keys' shard (opened by the first WATCH).
fn watch(
    state: &mut SessionState,
    session: &Session,
    shared: &ProxyShared,
    spec: &'static CommandSpec,
    req: Request,
) -> Routed {
    let keys = request_keys(spec, &req);
    let topology = shared.cluster.topology();
    let topo = topology.view();
    let anchor = state.watch.as_ref().map(|w| &w.anchor);
    if !same_shard(&topo, anchor, &keys) {
        return Routed::plain(Some(spec), ReplyFut::error(&crossslot("the keys watched are on different shards")));
    }
    let watching = match state.watch.as_ref() {
        Some(w) => Watching { shard: w.shard.clone(), anchor: w.anchor.clone(), conn: w.conn.clone() },
        None => {
            let Some(owner) = keys.first().and_then(|k| topo.owner(k)) else {
                return Routed::plain(Some(spec), crate::route::no_live_shard(&topo));
            };
            Watching { shard: topo.shards[owner].clone(), anchor: keys[0].clone(), conn: Arc::new(Mutex::new(None)) }
        }
    };
    let (shard, conn, proto) = (watching.shard.clone(), watching.conn.clone(), session.proto);
    state.watch = Some(watching);
    let request = wire(&req);
    let fut = async move {
        let mut dedicated = match take_or_open(&conn, &shard, proto).await {
            Ok(c) => c,
            Err(e) => return shard_error(&shard, e),
        };
        match dedicated.call(&request, 1).await {
            Ok(mut replies) => {
                *conn.lock() = Some(dedicated);
                replies.pop().unwrap_or_default()
            }
            // The connection (and the watches on it) is gone: the next WATCH starts afresh.
            Err(e) => shard_error(&shard, e),
        }
    };
    Routed::barrier(Some(spec), ReplyFut::Task(Box::pin(fut)))
}

/// The client's WATCH connection, taken out of its slot (the request using it puts it back), or a new one.
async fn take_or_open(
    slot: &Mutex<Option<Dedicated>>,
    shard: &ShardHandle,
    proto: ringcache_common::resp::Protocol,
) -> Result<Dedicated, crate::backend::BackendError> {
    let taken = slot.lock().take();
    match taken {
        Some(conn) => Ok(conn),
        None => Dedicated::open(shard, proto).await,
    }
}

/// The transaction as one block of requests.
fn block(multi: &Queued) -> (BytesMut, usize) {
    let mut bytes = BytesMut::with_capacity(multi.bytes + 16 * (multi.requests.len() + 2));
    bytes.extend_from_slice(MULTI);
    for req in &multi.requests {
        bytes.extend_from_slice(&wire(req));
    }
    bytes.extend_from_slice(EXEC);
    (bytes, multi.requests.len() + 2)
}

/// EXEC: the block to its shard (every copy), on the WATCH connection if there is one.
fn exec(session: &Session, shared: &ProxyShared, multi: Queued, watching: Option<Watching>) -> ReplyFut {
    let topology = shared.cluster.topology();
    let topo = topology.view();
    let anchor = multi.anchor.clone().or_else(|| watching.as_ref().map(|w| w.anchor.clone()));
    if multi.requests.is_empty() && watching.is_none() {
        let mut out = BytesMut::new();
        out.array_len(0);
        return ReplyFut::ready(out.freeze());
    }
    // The shards holding the transaction's keys: every copy, the first one's reply wins.
    let copies: Vec<Arc<ShardHandle>> = match &anchor {
        Some(key) => {
            let copies = topo.write_copies(key);
            if copies.iter().any(|(_, stands_in)| stands_in.is_some()) {
                return ReplyFut::error(
                    "TRYAGAIN ringcache-proxy: a shard holding these keys is down and another stands in for it; \
                     transactions on them are refused until it is back",
                );
            }
            copies.iter().map(|(i, _)| topo.shards[*i].clone()).collect()
        }
        None => topo.live().next().map(|(_, s)| s.clone()).into_iter().collect(),
    };
    let Some(first) = copies.first().cloned() else { return crate::route::no_live_shard(&topo) };
    let (bytes, replies) = block(&multi);
    let bytes = bytes.freeze();
    let requester = Requester { id: session.id, failover: false, proto: session.proto };
    match watching {
        None => {
            let mut receivers: Vec<_> = copies.iter().map(|shard| send_block(requester, shard, &multi)).collect();
            let first_rx = receivers.remove(0);
            let fut = async move {
                let reply = match first_rx.await {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(e)) => shard_error(&first, e),
                    Err(_) => shard_error(&first, crate::backend::BackendError::Closed),
                };
                // The other copies' replies are not waited for (as for any replicated write).
                drop(receivers);
                reply
            };
            ReplyFut::Task(Box::pin(fut))
        }
        Some(w) => {
            let others: Vec<Arc<ShardHandle>> = copies.into_iter().skip(1).collect();
            let proto = session.proto;
            let fut = async move {
                let mut dedicated = match take_or_open(&w.conn, &w.shard, proto).await {
                    Ok(c) => c,
                    Err(e) => return shard_error(&w.shard, e),
                };
                let reply = match dedicated.call(&bytes, replies).await {
                    Ok(mut all) => all.pop().unwrap_or_default(),
                    Err(e) => return shard_error(&w.shard, e),
                };
                // The transaction ran (it was not refused by its watches): the other copies run it too.
                let ran = !matches!(reply.first(), Some(b'-' | b'_')) && &reply[..] != b"*-1\r\n";
                if ran {
                    for shard in &others {
                        drop(send_block(requester, shard, &multi));
                    }
                }
                reply
            };
            ReplyFut::Task(Box::pin(fut))
        }
    }
}

/// Sends the block on a shared connection, one request after the other with nothing between (this worker
/// thread is the only writer of the connection); the EXEC reply comes back on the returned receiver.
fn send_block(
    requester: Requester,
    shard: &Arc<ShardHandle>,
    multi: &Queued,
) -> tokio::sync::oneshot::Receiver<crate::backend::ReplyResult> {
    let conn = shard.conn_for(requester.id, requester.proto);
    drop(conn.send(Bytes::from_static(MULTI)));
    for req in &multi.requests {
        drop(conn.send(wire(req)));
    }
    conn.send(Bytes::from_static(EXEC))
}
