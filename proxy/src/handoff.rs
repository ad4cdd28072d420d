//! Hinted handoff, the proxy's half: no stale reads after a shard flaps.
//!
//! While shard X is down its keys live on the next shard clockwise, the *stand-in*. Every write sent to a
//! stand-in is wrapped as `RINGCACHE HINTED X <command>`, so the stand-in records, atomically with the write,
//! which of X's keys changed (see `ringcache_shard::handoff`). The records live on the shards, so every proxy
//! shares them. The life of an outage:
//!
//! 1. **Eject.** Before X's keys are routed elsewhere, every other live shard is told `HANDOFF OPEN X`.
//! 2. **Stand in.** Writes of X's keys run on the stand-in as hinted writes; reads go there too.
//! 3. **Return.** When X answers two health checks in a row it is not readmitted at once. The proxy takes
//!    X's handoff lock (one proxy at a time), `REWIND`s what an unfinished attempt copied, and every other
//!    shard gets `HANDOFF PRECOPY X` until few keys are left (most keys move while writes still flow; a key
//!    written again is copied again), then `HANDOFF CLOSE X`: from then on hinted writes for X are refused
//!    with `-TRYAGAIN`, so nothing new lands on a stand-in behind the handoff's back. Each remaining key is
//!    copied onto X: its value (with its TTL) by `RINGCACHE RESTORE`, or its absence by `DEL`. A FLUSHALL
//!    during the outage, or a stand-in whose hint set overflowed, flushes X first.
//! 4. **Readmit, then finish.** X's keys route to X again, and once the reads already on their way to the
//!    stand-ins are answered, `HANDOFF FINISH X` deletes the handed-back keys there, so a later outage can
//!    never serve them.
//!
//! Ring changes reuse it: a shard that joins starts absent, its stand-ins [`seed`] its hints with the keys
//! they hold in its ranges, and it is admitted as in steps 3 and 4; a shard that leaves is [`drain`]ed into
//! its stand-ins in two passes. All of this goes over each shard's own admin connection, never the ones
//! client requests share. A failure anywhere leaves the shard down (or draining); the next health check
//! starts over, since every step is idempotent. Shards that do not know `RINGCACHE` (redis-server) turn
//! handoff off, with a warning: the proxy then behaves as twemproxy does.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringcache_common::resp::{encode_request, ReplyValue, ReplyWriter, Request};

use crate::cluster::{Cluster, ShardHandle};
use crate::membership::HandoffKind;

/// Keys copied per TAKE or PRECOPY.
const TAKE_BATCH: usize = 512;
/// Pre-copying stops once fewer keys than this are pending: the rest are copied behind the fence.
const PRECOPY_UNTIL: usize = 256;

/// Why a handoff step failed.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("shard '{shard}' {reason}")]
    Shard { shard: String, reason: String },
    #[error("shard '{0}' does not support RINGCACHE (not a ringcache-shard?)")]
    Unsupported(String),
}

/// A request wrapped as `RINGCACHE HINTED <targets> <request>`; the original bytes are reused after the
/// array header.
pub fn hinted_wire(req: &Request, targets: &str) -> Bytes {
    let mut out = hinted_prefix(req.argc(), targets);
    match req.raw() {
        Some(raw) => {
            let header_end = raw.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            out.extend_from_slice(&raw[header_end..]);
        }
        None => {
            for arg in req.args_from(0) {
                out.bulk(arg);
            }
        }
    }
    out.freeze()
}

/// The start of a hinted request whose wrapped command has `argc` arguments (the caller appends them).
pub fn hinted_prefix(argc: usize, targets: &str) -> BytesMut {
    let mut out = BytesMut::with_capacity(64 + targets.len());
    out.array_len(argc + 3);
    out.bulk(b"RINGCACHE");
    out.bulk(b"HINTED");
    out.bulk(targets.as_bytes());
    out
}

/// Sends one request on the shard's handoff connection and waits (at most `timeout`) for its reply.
async fn call(shard: &ShardHandle, request: Bytes, timeout: Duration) -> Result<ReplyValue, HandoffError> {
    let failed = |reason: String| HandoffError::Shard { shard: shard.spec.name.clone(), reason };
    let rx = shard.admin.send(request);
    let reply = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Ok(reply))) => reply,
        Ok(Ok(Err(e))) => return Err(failed(e.to_string())),
        Ok(Err(_)) => return Err(failed("closed the connection".into())),
        Err(_) => return Err(failed("timed out".into())),
    };
    match ReplyValue::parse(&reply) {
        Some(ReplyValue::Error(e)) if e.starts_with(b"ERR unknown command") => {
            Err(HandoffError::Unsupported(shard.spec.name.clone()))
        }
        Some(ReplyValue::Error(e)) => Err(failed(format!("replied -{}", String::from_utf8_lossy(&e)))),
        Some(v) => Ok(v),
        None => Err(failed("sent an unreadable reply".into())),
    }
}

fn command(args: &[&[u8]]) -> Bytes {
    encode_request(args.iter().copied())
}

/// Step 1: every other live shard starts accepting hinted writes for `absent`.
pub async fn open(cluster: &Cluster, absent: &ShardHandle) -> Result<(), HandoffError> {
    let topo = cluster.topology();
    let request = command(&[b"RINGCACHE", b"HANDOFF", b"OPEN", absent.spec.name.as_bytes()]);
    let others: Vec<Arc<ShardHandle>> =
        topo.shards.iter().filter(|s| s.spec.name != absent.spec.name && s.is_up()).cloned().collect();
    drop(topo);
    let timeout = cluster.settings.timeout;
    let replies = futures::future::join_all(others.iter().map(|s| call(s, request.clone(), timeout))).await;
    replies.into_iter().try_for_each(|r| r.map(drop))
}

/// What handing keys back to a returning shard did.
#[derive(Debug, Default, Clone, Copy)]
pub struct HandBack {
    pub keys_restored: u64,
    pub keys_deleted: u64,
    pub flushed: bool,
}

/// Step 3: fence the stand-ins and copy every hinted key's state onto `returning`. On success the caller
/// readmits it and calls [`finish`].
pub async fn hand_back(cluster: &Cluster, returning: &ShardHandle) -> Result<HandBack, HandoffError> {
    let topo = cluster.topology();
    let name = returning.spec.name.as_bytes();
    let others: Vec<Arc<ShardHandle>> =
        topo.shards.iter().filter(|s| s.spec.name != returning.spec.name && s.is_up()).cloned().collect();
    drop(topo);
    let timeout = cluster.settings.timeout;
    let mut done = HandBack::default();
    // What an earlier attempt copied may be lost (the returning shard failed again): copy it again.
    let rewind = command(&[b"RINGCACHE", b"HANDOFF", b"REWIND", name]);
    futures::future::join_all(others.iter().map(|s| call(s, rewind.clone(), timeout)))
        .await
        .into_iter()
        .try_for_each(|r| r.map(drop))?;
    precopy(cluster, returning, &others, &mut done).await?;
    let close = command(&[b"RINGCACHE", b"HANDOFF", b"CLOSE", name]);
    let closed = futures::future::join_all(others.iter().map(|s| call(s, close.clone(), timeout))).await;
    let mut with_keys = Vec::new();
    for (shard, reply) in others.iter().zip(closed) {
        let (keys, flush) = match reply? {
            ReplyValue::Array(Some(items)) => match items.as_slice() {
                [ReplyValue::Integer(keys), ReplyValue::Integer(flush)] => (*keys, *flush != 0),
                _ => return Err(unexpected(shard, "HANDOFF CLOSE")),
            },
            _ => return Err(unexpected(shard, "HANDOFF CLOSE")),
        };
        done.flushed |= flush;
        if keys > 0 {
            with_keys.push(shard.clone());
        }
    }
    if done.flushed {
        call(returning, command(&[b"FLUSHALL"]), timeout).await?;
    }
    for shard in with_keys {
        let mut cursor = 0i64;
        loop {
            if !cluster.handoff_lock(returning, HandoffKind::HandBack).await? {
                return Err(HandoffError::Shard {
                    shard: returning.spec.name.clone(),
                    reason: "lost its handoff lock".into(),
                });
            }
            let take = command(&[
                b"RINGCACHE",
                b"HANDOFF",
                b"TAKE",
                name,
                cursor.to_string().as_bytes(),
                TAKE_BATCH.to_string().as_bytes(),
            ]);
            let ReplyValue::Array(Some(reply)) = call(&shard, take, timeout).await? else {
                return Err(unexpected(&shard, "HANDOFF TAKE"));
            };
            let [ReplyValue::Integer(next), ReplyValue::Array(Some(items))] = reply.as_slice() else {
                return Err(unexpected(&shard, "HANDOFF TAKE"));
            };
            let (restored, deleted) = apply(returning, &shard, items, timeout).await?;
            done.keys_restored += restored;
            done.keys_deleted += deleted;
            if *next == 0 {
                break;
            }
            cursor = *next;
        }
    }
    // A shard that joined the ring is a member from now on (a proxy that reloads later admits it at once).
    call(returning, command(&[b"RINGCACHE", b"MEMBER", b"JOINED"]), timeout).await?;
    Ok(done)
}

/// Applies `[key, record-or-nil, ...]` from a stand-in to `returning`: records by `RINGCACHE RESTORE`, keys
/// that are gone by `DEL`, both sent before either reply is awaited. Returns (restored, deleted).
async fn apply(
    returning: &ShardHandle,
    from: &ShardHandle,
    items: &[ReplyValue],
    timeout: Duration,
) -> Result<(u64, u64), HandoffError> {
    let mut records: Vec<&[u8]> = vec![b"RINGCACHE", b"RESTORE"];
    let mut deletes: Vec<&[u8]> = vec![b"DEL"];
    for pair in items.chunks(2) {
        match pair {
            [ReplyValue::Bulk(Some(_)), ReplyValue::Bulk(Some(record))] => records.push(record),
            [ReplyValue::Bulk(Some(key)), ReplyValue::Bulk(None)] => deletes.push(key),
            _ => return Err(unexpected(from, "HANDOFF TAKE")),
        }
    }
    let restore = (records.len() > 2).then(|| returning.admin.send(command(&records)));
    let delete = (deletes.len() > 1).then(|| returning.admin.send(command(&deletes)));
    for (rx, what) in [(restore, "RINGCACHE RESTORE"), (delete, "DEL")] {
        let Some(rx) = rx else { continue };
        let reply = tokio::time::timeout(timeout, rx).await;
        match reply.as_ref().map(|r| r.as_ref().map(|r| r.as_ref().map(ReplyValue::parse))) {
            Ok(Ok(Ok(Some(ReplyValue::Integer(_))))) => {}
            _ => return Err(unexpected(returning, what)),
        }
    }
    Ok((records.len() as u64 - 2, deletes.len() as u64 - 1))
}

/// Before the fence: hands most pending keys over while writes still flow (a key written again is pending
/// again), so that the fenced pass copies only what was written meanwhile.
async fn precopy(
    cluster: &Cluster,
    returning: &ShardHandle,
    stand_ins: &[Arc<ShardHandle>],
    done: &mut HandBack,
) -> Result<(), HandoffError> {
    let name = returning.spec.name.as_bytes();
    let timeout = cluster.settings.timeout;
    let request = command(&[b"RINGCACHE", b"HANDOFF", b"PRECOPY", name, TAKE_BATCH.to_string().as_bytes()]);
    for shard in stand_ins {
        // Bounded: under a write rate faster than the copy, the fenced pass takes the rest.
        for _ in 0..10_000 {
            if !cluster.handoff_lock(returning, HandoffKind::HandBack).await? {
                return Err(HandoffError::Shard {
                    shard: returning.spec.name.clone(),
                    reason: "lost its handoff lock".into(),
                });
            }
            let ReplyValue::Array(Some(reply)) = call(shard, request.clone(), timeout).await? else {
                return Err(unexpected(shard, "HANDOFF PRECOPY"));
            };
            let [ReplyValue::Integer(pending), ReplyValue::Array(Some(items))] = reply.as_slice() else {
                return Err(unexpected(shard, "HANDOFF PRECOPY"));
            };
            let (restored, deleted) = apply(returning, shard, items, timeout).await?;
            done.keys_restored += restored;
            done.keys_deleted += deleted;
            if items.is_empty() || *pending < PRECOPY_UNTIL as i64 {
                break;
            }
        }
    }
    Ok(())
}

/// Step 4, once `returning` is readmitted: the stand-ins delete the keys they handed back.
pub async fn finish(cluster: &Cluster, returning: &ShardHandle) {
    let topo = cluster.topology();
    let others: Vec<Arc<ShardHandle>> =
        topo.shards.iter().filter(|s| s.spec.name != returning.spec.name && s.is_up()).cloned().collect();
    drop(topo);
    let request = command(&[b"RINGCACHE", b"HANDOFF", b"FINISH", returning.spec.name.as_bytes()]);
    let timeout = cluster.settings.timeout;
    // Reads routed to a stand-in before the readmission may still be on their way, on other connections
    // than FINISH's: a PING on every connection, answered, means they have all run.
    futures::future::join_all(others.iter().map(|s| barrier(s, timeout))).await;
    // One at a time, like seeding: each deletes its handed-back keys in bulk.
    for shard in &others {
        if let Err(e) = call(shard, request.clone(), timeout * crate::cluster::ADMIN_TIMEOUT_FACTOR).await {
            // The keys stay on the stand-in, still hinted: the next handoff for this shard deletes them.
            tracing::warn!("handoff to '{}': finishing on '{}' failed: {e}", returning.spec.name, shard.spec.name);
        }
    }
}

/// A shard that holds a joining shard's keys, with the ring arcs it holds them for.
pub type StandIn = (Arc<ShardHandle>, Vec<(u32, u32)>);

/// A shard joins the ring (a config reload added it). It starts *absent*: its keys stay with their old
/// owners, which now hold them as hints for it. Every other live shard opens hints for it and *seeds* them
/// with the keys it holds in the new shard's ranges (`arcs`), and from then on refuses plain writes there
/// (a proxy still on the old ring gets `-TRYAGAIN` until it reloads). The health checker then admits the
/// new shard exactly as it readmits one that returns: fence, copy, readmit, finish.
pub async fn seed(cluster: &Cluster, joining: &ShardHandle, stand_ins: &[StandIn]) -> Result<u64, HandoffError> {
    let name = joining.spec.name.as_bytes();
    let timeout = cluster.settings.timeout;
    let open = command(&[b"RINGCACHE", b"HANDOFF", b"OPEN", name]);
    futures::future::join_all(stand_ins.iter().map(|(s, _)| call(s, open.clone(), timeout)))
        .await
        .into_iter()
        .try_for_each(|r| r.map(drop))?;
    let placement = cluster.settings.placement().token();
    let key_hash = placement.as_bytes();
    // One shard at a time: each walks its whole keyspace, and on a small machine several at once would take
    // the cores from the clients. Writes are not held up meanwhile (they are hinted).
    let mut keys = 0;
    for (shard, arcs) in stand_ins {
        let bounds: Vec<String> = arcs.iter().flat_map(|(a, b)| [a.to_string(), b.to_string()]).collect();
        let mut args: Vec<&[u8]> = vec![b"RINGCACHE", b"HANDOFF", b"SEED", name, key_hash];
        args.extend(bounds.iter().map(|b| b.as_bytes()));
        // Seeding walks the shard's whole keyspace: allow it more than one request's timeout.
        match call(shard, command(&args), timeout * crate::cluster::ADMIN_TIMEOUT_FACTOR).await? {
            ReplyValue::Integer(n) => keys += n.max(0) as u64,
            _ => return Err(unexpected(shard, "HANDOFF SEED")),
        }
    }
    Ok(keys)
}

/// A shard leaves (removed from the config, or SIGTERM): its keys are copied to the shards that stand in for
/// it, as hints, so that they go back if it ever returns. Two passes, so that writes are refused only
/// briefly: while it is *leaving* it keeps serving and remembers every key written; a first pass copies
/// everything (`DUMP`, then `ACCEPT`, which keeps whatever a stand-in already has: that is newer); then it is
/// *draining* (writes refused) and a second pass copies what was written meanwhile (`DIRTY`, then
/// `ACCEPT-DELTA`, which replaces the first copy unless a hinted write on the stand-in is newer). Reads keep
/// going to it until the caller marks it down. `owners` gives a key's stand-ins once it is gone.
pub async fn drain(
    cluster: &Cluster,
    leaving: &ShardHandle,
    owners: impl Fn(&[u8]) -> Vec<Arc<ShardHandle>>,
) -> Result<u64, HandoffError> {
    let name = leaving.spec.name.as_bytes();
    let timeout = cluster.settings.timeout;
    call(leaving, command(&[b"RINGCACHE", b"MEMBER", b"LEAVING"]), timeout).await?;
    let topo = cluster.topology();
    let others: Vec<Arc<ShardHandle>> =
        topo.shards.iter().filter(|s| s.spec.name != leaving.spec.name && s.is_up()).cloned().collect();
    drop(topo);
    let open = command(&[b"RINGCACHE", b"HANDOFF", b"OPEN", name]);
    futures::future::join_all(others.iter().map(|s| call(s, open.clone(), timeout)))
        .await
        .into_iter()
        .try_for_each(|r| r.map(drop))?;
    let mut moved = copy_out(cluster, leaving, &owners, b"DUMP", b"ACCEPT").await?;
    call(leaving, command(&[b"RINGCACHE", b"MEMBER", b"DRAINING"]), timeout).await?;
    moved += copy_out(cluster, leaving, &owners, b"DIRTY", b"ACCEPT-DELTA").await?;
    Ok(moved)
}

/// One pass of a drain: pages through `HANDOFF <source>` on the leaving shard and sends each key to its
/// stand-ins with `HANDOFF <sink>`, one request per stand-in per page. Returns the keys they took.
async fn copy_out(
    cluster: &Cluster,
    leaving: &ShardHandle,
    owners: &impl Fn(&[u8]) -> Vec<Arc<ShardHandle>>,
    source: &[u8],
    sink: &[u8],
) -> Result<u64, HandoffError> {
    let name = leaving.spec.name.as_bytes();
    let timeout = cluster.settings.timeout;
    // ACCEPT takes records (they carry their key); ACCEPT-DELTA takes key and record, empty when gone.
    let with_keys = sink == b"ACCEPT-DELTA";
    let mut cursor = 0i64;
    let mut moved = 0u64;
    loop {
        let page = command(&[
            b"RINGCACHE",
            b"HANDOFF",
            source,
            cursor.to_string().as_bytes(),
            TAKE_BATCH.to_string().as_bytes(),
        ]);
        let what = String::from_utf8_lossy(source);
        let ReplyValue::Array(Some(reply)) = call(leaving, page, timeout).await? else {
            return Err(unexpected(leaving, &format!("HANDOFF {what}")));
        };
        let [ReplyValue::Integer(next), ReplyValue::Array(Some(items))] = reply.as_slice() else {
            return Err(unexpected(leaving, &format!("HANDOFF {what}")));
        };
        let mut batches: Vec<(Arc<ShardHandle>, Vec<&[u8]>)> = Vec::new();
        for pair in items.chunks(2) {
            let (key, record): (&[u8], &[u8]) = match pair {
                [ReplyValue::Bulk(Some(key)), ReplyValue::Bulk(Some(record))] => (key, record),
                [ReplyValue::Bulk(Some(key)), ReplyValue::Bulk(None)] if with_keys => (key, b""),
                _ => return Err(unexpected(leaving, &format!("HANDOFF {what}"))),
            };
            for shard in owners(key) {
                let args = match batches.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &shard)) {
                    Some((_, args)) => args,
                    None => {
                        batches.push((shard, Vec::new()));
                        &mut batches.last_mut().expect("just pushed").1
                    }
                };
                if with_keys {
                    args.push(key);
                }
                args.push(record);
            }
        }
        let sends = batches.iter().map(|(shard, records)| {
            let mut args: Vec<&[u8]> = vec![b"RINGCACHE", b"HANDOFF", sink, name];
            args.extend(records.iter().copied());
            call(shard, command(&args), timeout)
        });
        for (reply, (shard, _)) in futures::future::join_all(sends).await.into_iter().zip(&batches) {
            match reply? {
                ReplyValue::Integer(n) => moved += n.max(0) as u64,
                _ => return Err(unexpected(shard, &format!("HANDOFF {}", String::from_utf8_lossy(sink)))),
            }
        }
        if *next == 0 {
            return Ok(moved);
        }
        cursor = *next;
    }
}

/// The leaving shard's keys are all elsewhere: it refuses every keyed command from now on (a proxy that
/// still routes to it gets `-TRYAGAIN`), and a draining shard may exit.
pub async fn drained(cluster: &Cluster, leaving: &ShardHandle) -> Result<(), HandoffError> {
    call(leaving, command(&[b"RINGCACHE", b"MEMBER", b"DRAINED"]), cluster.settings.timeout).await.map(drop)
}

/// After a shard left the ring for good, the others drop its hints (and the fence that came with them).
pub async fn forget(cluster: &Cluster, gone: &str) {
    let topo = cluster.topology();
    let shards: Vec<Arc<ShardHandle>> = topo.view().live().map(|(_, s)| s.clone()).collect();
    drop(topo);
    let request = command(&[b"RINGCACHE", b"HANDOFF", b"FORGET", gone.as_bytes()]);
    for (shard, reply) in shards
        .iter()
        .zip(futures::future::join_all(shards.iter().map(|s| call(s, request.clone(), cluster.settings.timeout))).await)
    {
        if let Err(e) = reply {
            tracing::warn!("forgetting '{gone}' on '{}': {e}", shard.spec.name);
        }
    }
}

/// Empties a joining shard before it is seeded.
pub async fn flush(cluster: &Cluster, shard: &ShardHandle) -> Result<(), HandoffError> {
    call(shard, command(&[b"FLUSHALL"]), cluster.settings.timeout).await.map(drop)
}

/// A shard that restarted gets its copies' keys back: pages `from`'s keys in `arcs` (`HANDOFF DUMP` with
/// arcs) onto `returning` (`RINGCACHE RESTORE`). Returns the keys copied.
pub async fn copy_arcs(
    cluster: &Cluster,
    returning: &ShardHandle,
    from: &ShardHandle,
    arcs: &[(u32, u32)],
) -> Result<u64, HandoffError> {
    let timeout = cluster.settings.timeout;
    let key_hash = cluster.settings.placement().token();
    let bounds: Vec<String> = arcs.iter().flat_map(|(a, b)| [a.to_string(), b.to_string()]).collect();
    let batch = TAKE_BATCH.to_string();
    let mut cursor = 0i64;
    let mut copied = 0;
    loop {
        if !cluster.handoff_lock(returning, HandoffKind::HandBack).await? {
            return Err(HandoffError::Shard {
                shard: returning.spec.name.clone(),
                reason: "lost its handoff lock".into(),
            });
        }
        let cursor_text = cursor.to_string();
        let mut args: Vec<&[u8]> =
            vec![b"RINGCACHE", b"HANDOFF", b"DUMP", cursor_text.as_bytes(), batch.as_bytes(), key_hash.as_bytes()];
        args.extend(bounds.iter().map(|b| b.as_bytes()));
        let ReplyValue::Array(Some(reply)) = call(from, command(&args), timeout).await? else {
            return Err(unexpected(from, "HANDOFF DUMP"));
        };
        let [ReplyValue::Integer(next), ReplyValue::Array(Some(items))] = reply.as_slice() else {
            return Err(unexpected(from, "HANDOFF DUMP"));
        };
        copied += apply(returning, from, items, timeout).await?.0;
        if *next == 0 {
            return Ok(copied);
        }
        cursor = *next;
    }
}

/// Marks a shard this proxy routes to as a member (a shard in the ring from the start, or restarted under
/// it), so that a proxy that later finds it new in its config does not take it for a joiner and flush it.
pub async fn mark_member(cluster: &Cluster, shard: &ShardHandle) -> Result<(), HandoffError> {
    call(shard, command(&[b"RINGCACHE", b"MEMBER", b"JOINED"]), cluster.settings.timeout).await.map(drop)
}

/// The shard's `RINGCACHE MEMBER` state (`joining`, `member`, `draining`, `drained`).
pub async fn member_state(cluster: &Cluster, shard: &ShardHandle) -> Result<String, HandoffError> {
    match call(shard, command(&[b"RINGCACHE", b"MEMBER"]), cluster.settings.timeout).await? {
        ReplyValue::Bulk(Some(state)) => Ok(String::from_utf8_lossy(&state).into_owned()),
        _ => Err(unexpected(shard, "RINGCACHE MEMBER")),
    }
}

/// The names of the shards some other shard holds hints for (an outage, join or handoff under way), as a
/// proxy finds them at start. Unreachable shards are skipped.
pub async fn pending_handoffs(cluster: &Cluster, shards: &[Arc<ShardHandle>]) -> Result<Vec<String>, HandoffError> {
    let list = command(&[b"RINGCACHE", b"HANDOFF", b"LIST"]);
    let timeout = cluster.settings.timeout;
    let mut names = Vec::new();
    for (shard, reply) in
        shards.iter().zip(futures::future::join_all(shards.iter().map(|s| call(s, list.clone(), timeout))).await)
    {
        let rows = match reply {
            Ok(ReplyValue::Array(Some(rows))) => rows,
            Err(e @ HandoffError::Unsupported(_)) => return Err(e),
            Ok(_) => return Err(unexpected(shard, "HANDOFF LIST")),
            Err(e) => {
                tracing::debug!("{e}");
                continue;
            }
        };
        for row in rows {
            let ReplyValue::Array(Some(fields)) = row else { continue };
            if let [ReplyValue::Bulk(Some(name)), ReplyValue::Integer(open), ReplyValue::Integer(keys), _] =
                fields.as_slice()
            {
                if *open != 0 || *keys > 0 {
                    names.push(String::from_utf8_lossy(name).into_owned());
                }
            }
        }
    }
    Ok(names)
}

/// How long a proxy's claim on handing keys to a shard lasts unless renewed (it is renewed per batch).
const LOCK_LEASE_MS: u64 = 10_000;

/// Claims the right to hand keys to `shard` (joining or returning): one proxy at a time, or a late copy from
/// a second proxy could overwrite writes the first already routed there. False while another proxy holds it.
pub async fn lock(cluster: &Cluster, shard: &ShardHandle) -> Result<bool, HandoffError> {
    let request =
        command(&[b"RINGCACHE", b"MEMBER", b"LOCK", cluster.token.as_bytes(), LOCK_LEASE_MS.to_string().as_bytes()]);
    match call(shard, request, cluster.settings.timeout).await {
        Ok(_) => Ok(true),
        Err(HandoffError::Shard { reason, .. }) if reason.starts_with("replied -TRYAGAIN") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the claim up.
pub async fn unlock(cluster: &Cluster, shard: &ShardHandle) {
    let request = command(&[b"RINGCACHE", b"MEMBER", b"UNLOCK", cluster.token.as_bytes()]);
    if let Err(e) = call(shard, request, cluster.settings.timeout).await {
        tracing::debug!("releasing the handoff lock on '{}': {e} (it expires by itself)", shard.spec.name);
    }
}

/// Waits until every request sent so far on each of the shard's connections has been answered.
async fn barrier(shard: &ShardHandle, timeout: Duration) {
    let ping = command(&[b"PING"]);
    let replies = shard.client_conns().map(|c| tokio::time::timeout(timeout, c.send(ping.clone())));
    futures::future::join_all(replies).await;
}

fn unexpected(shard: &ShardHandle, what: &str) -> HandoffError {
    HandoffError::Shard { shard: shard.spec.name.clone(), reason: format!("sent an unexpected reply to {what}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcache_common::resp::{Limits, RequestScanner};

    #[test]
    fn a_wrapped_request_is_the_original_after_three_arguments() {
        for original in [&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n"[..], b"SET k v1\r\n"] {
            let mut buf = BytesMut::from(original);
            let req = RequestScanner::new().next(&mut buf, &Limits::default()).unwrap().unwrap();
            let wrapped = hinted_wire(&req, "s1,s2");
            let mut buf = BytesMut::from(&wrapped[..]);
            let parsed = RequestScanner::new().next(&mut buf, &Limits::default()).unwrap().unwrap();
            let args: Vec<&[u8]> = parsed.args_from(0).collect();
            assert_eq!(args, [&b"RINGCACHE"[..], b"HINTED", b"s1,s2", b"SET", b"k", b"v1"]);
            assert!(buf.is_empty());
        }
    }
}
