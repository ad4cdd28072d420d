//! Lua scripts through the proxy: EVAL EVAL_RO EVALSHA EVALSHA_RO and SCRIPT.
//!
//! A script runs on one shard, atomically there: it is routed by its `KEYS` like any command on keys (all
//! on one shard, or `CROSSSLOT`; a script without keys goes to any live shard). What the proxy adds is a
//! memory of script bodies (every EVAL and SCRIPT LOAD it forwards, up to [`MAX_BODIES`]), so that
//! EVALSHA works whichever shard the keys send it to: SCRIPT LOAD is sent to every shard, and an EVALSHA
//! that a shard answers with `NOSCRIPT` (a shard that joined later, or restarted) is answered by loading
//! the body on every shard and sending the EVALSHA again, transparently. SCRIPT EXISTS, FLUSH and KILL
//! go to every shard and their replies are merged.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use ringcache_common::command::CommandSpec;
use ringcache_common::resp::{encode_request, Protocol, ReplyBuf, ReplyValue, ReplyWriter, Request};
use sha1::{Digest, Sha1};
use tokio::sync::oneshot;

use super::Routed;
use crate::backend::{BackendError, ReplyResult};
use crate::cluster::{Cluster, ShardHandle};
use crate::route::{wire, Requester};
use crate::session::{shard_error, ProxyShared, ReplyFut, Session};

/// Most script bodies the proxy remembers; past it, new ones are not remembered (EVALSHA of those works
/// only on shards that loaded them).
pub const MAX_BODIES: usize = 10_000;

/// Script bodies by their SHA1 (lower-case hex), shared by every session.
static BODIES: LazyLock<Mutex<HashMap<Bytes, Bytes>>> = LazyLock::new(Default::default);

/// A script's SHA1 in lower-case hex, as Redis names it.
pub fn sha1_hex(body: &[u8]) -> Bytes {
    let digest = Sha1::digest(body);
    let mut hex = BytesMut::with_capacity(40);
    for byte in digest {
        hex.extend_from_slice(format!("{byte:02x}").as_bytes());
    }
    hex.freeze()
}

fn remember(body: &[u8]) {
    let sha = sha1_hex(body);
    let mut bodies = BODIES.lock();
    if bodies.len() < MAX_BODIES || bodies.contains_key(&sha) {
        bodies.insert(sha, Bytes::copy_from_slice(body));
    }
}

fn body_of(sha: &[u8]) -> Option<Bytes> {
    BODIES.lock().get(&sha.to_ascii_lowercase()[..]).cloned()
}

/// Sends `request` to every live shard; the replies come back in shard order.
fn send_all(
    cluster: &Cluster,
    requester: Requester,
    request: &Bytes,
) -> Vec<(Arc<ShardHandle>, oneshot::Receiver<ReplyResult>)> {
    let topology = cluster.topology();
    let topo = topology.view();
    topo.live()
        .map(|(_, shard)| (shard.clone(), shard.conn_for(requester.id, requester.proto).send(request.clone())))
        .collect()
}

async fn collect(parts: Vec<(Arc<ShardHandle>, oneshot::Receiver<ReplyResult>)>) -> Vec<Bytes> {
    let mut replies = Vec::with_capacity(parts.len());
    for (shard, rx) in parts {
        replies.push(match rx.await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => shard_error(&shard, e),
            Err(_) => shard_error(&shard, BackendError::Closed),
        });
    }
    replies
}

fn is_error(reply: &[u8]) -> bool {
    reply.first() == Some(&b'-')
}

const NO_SHARD: &[u8] = b"-CLUSTERDOWN ringcache-proxy: no shard is available\r\n";

/// The first error among `replies`, or else the first reply.
fn first_error_or_first(replies: Vec<Bytes>) -> Bytes {
    match replies.iter().find(|r| is_error(r)) {
        Some(e) => e.clone(),
        None => replies.into_iter().next().unwrap_or(Bytes::from_static(NO_SHARD)),
    }
}

/// EVAL, EVAL_RO, EVALSHA, EVALSHA_RO and SCRIPT.
pub fn command(session: &mut Session, shared: &ProxyShared, spec: &'static CommandSpec, req: Request) -> Routed {
    let requester = Requester::of(session);
    match spec.name {
        "eval" | "eval_ro" => {
            remember(req.arg(1));
            let (spec, fut) = crate::route::route(session, shared, req);
            Routed::plain(spec, fut)
        }
        "evalsha" | "evalsha_ro" => {
            let sha = Bytes::copy_from_slice(req.arg(1));
            let (_, first) = crate::route::route(session, shared, req.clone());
            let cluster = shared.cluster.clone();
            let fut = async move {
                let reply = first.await;
                if !reply.starts_with(b"-NOSCRIPT") {
                    return reply;
                }
                let Some(body) = body_of(&sha) else { return reply };
                let load = encode_request([&b"SCRIPT"[..], b"LOAD", &body].into_iter());
                let loaded = collect(send_all(&cluster, requester, &load)).await;
                if let Some(error) = loaded.into_iter().find(|r| is_error(r)) {
                    return error;
                }
                let topology = cluster.topology();
                let again = crate::route::route_keyed(requester, &topology.view(), &req, spec);
                match again {
                    Some(fut) => fut.await,
                    None => reply,
                }
            };
            Routed::plain(Some(spec), ReplyFut::Task(Box::pin(fut)))
        }
        _ => Routed::plain(Some(spec), script(shared, requester, &req)),
    }
}

/// SCRIPT LOAD / EXISTS / FLUSH / KILL to every shard, merged; anything else to one shard.
fn script(shared: &ProxyShared, requester: Requester, req: &Request) -> ReplyFut {
    let sub = req.arg(1).to_ascii_lowercase();
    let request = wire(req);
    if !matches!(&sub[..], b"load" | b"exists" | b"flush" | b"kill") {
        let topology = shared.cluster.topology();
        let topo = topology.view();
        let Some((_, shard)) = topo.live().next() else { return crate::route::no_live_shard(&topo) };
        let rx = shard.conn_for(requester.id, requester.proto).send(request);
        let parts = vec![(shard.clone(), rx)];
        return ReplyFut::Task(Box::pin(async move { first_error_or_first(collect(parts).await) }));
    }
    if &sub[..] == b"load" && req.argc() == 3 {
        remember(req.arg(2));
    }
    if &sub[..] == b"flush" {
        BODIES.lock().clear();
    }
    let parts = send_all(&shared.cluster, requester, &request);
    let shas: Vec<Bytes> = req.args_from(2).map(Bytes::copy_from_slice).collect();
    let proto = requester.proto;
    ReplyFut::Task(Box::pin(async move {
        let replies = collect(parts).await;
        match &sub[..] {
            b"exists" => exists(replies, &shas, proto),
            // The script is being killed wherever one ran: OK if any shard stopped one.
            b"kill" => match replies.iter().find(|r| r.starts_with(b"+OK")) {
                Some(ok) => ok.clone(),
                None => first_error_or_first(replies),
            },
            _ => first_error_or_first(replies),
        }
    }))
}

/// SCRIPT EXISTS: a script exists if EVALSHA of it works through the proxy: the proxy knows its body, or
/// every shard has it.
fn exists(replies: Vec<Bytes>, shas: &[Bytes], proto: Protocol) -> Bytes {
    if let Some(e) = replies.iter().find(|r| is_error(r)) {
        return e.clone();
    }
    let per_shard: Vec<Vec<i64>> = replies
        .iter()
        .map(|r| {
            ReplyValue::parse(r)
                .and_then(ReplyValue::into_items)
                .map(|items| items.iter().map(|v| i64::from(matches!(v, ReplyValue::Integer(1)))).collect())
                .unwrap_or_default()
        })
        .collect();
    let mut out = ReplyBuf::new(proto);
    out.array_len(shas.len());
    for (i, sha) in shas.iter().enumerate() {
        let everywhere = !per_shard.is_empty() && per_shard.iter().all(|flags| flags.get(i) == Some(&1));
        out.integer(i64::from(everywhere || body_of(sha).is_some()));
    }
    out.take()
}
