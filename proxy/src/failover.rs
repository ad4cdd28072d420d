//! Passive failover: a request whose shard dies under it is sent again elsewhere.
//!
//! A request that finds its shard's connection refused or reset (`unreachable`, `closed`) may have met a
//! shard that is gone. It asks the shard's health checker to judge the shard at once
//! ([`ShardHandle::judged_down`]: a probe on a fresh connection). If the shard is ejected (the other shards
//! open hints for it first, as for every ejection), the request is routed again, once, from a fresh view of
//! the cluster:
//!
//! - a request that went whole to one shard (a single-key command, or a multi-key one whose keys all lived
//!   there) is routed as if it had just arrived: a read goes to the key's next live copy, a write to the
//!   shard standing in for the dead one, as a hinted write that is handed back when the shard returns;
//! - a part of a split command (MGET, EXISTS, or MSET/DEL with one copy per key) is routed the same way;
//! - a copy of a replicated write (`--replicas` above 1) goes to the copies of its key that this write has
//!   not reached yet (the stand-in for the dead copy), and the client gets the new owner's reply.
//!
//! Anything else gets the error: a copy of a multi-key write with several copies per key (its other copies
//! ran it, and a DEL count could no longer be told apart), a fan-out (DBSIZE, KEYS, SCAN), or a request
//! whose shard the probe finds alive. A write that reached the dead shard may have run there before it
//! died; it runs again on the stand-in, whose value is what the shard gets back when it returns.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ringcache_common::command::{self, CommandSpec};
use ringcache_common::resp::{encode_request, Limits, Request, RequestScanner};

use crate::backend::BackendError;
use crate::cluster::{ShardHandle, WriteCopies};
use crate::handoff::hinted_wire;
use crate::route::{self, Requester};
use crate::session::{shard_error, ReplyFut};

/// What is needed to send a request again: who sent it, and the bytes that went to the dead shard.
pub struct Resend {
    pub requester: Requester,
    pub sent: Bytes,
}

/// How a part of a gathered request came out of a failover.
pub struct CopyFailover {
    /// The part's reply; `None` when the copy was not needed any more (every live copy had the write).
    pub reply: Option<Bytes>,
    /// The shard that answered in the dead one's place.
    pub shard: Option<Arc<ShardHandle>>,
    /// For a replicated write: the key's owner now, whose reply is the client's.
    pub new_owner: Option<Arc<ShardHandle>>,
}

/// Whether `e` says the shard itself may be gone (its connection refused or reset), so that the request
/// may be sent elsewhere once the shard is ejected. A timeout does not: a slow shard may still run it.
pub fn may_fail_over(e: BackendError) -> bool {
    matches!(e, BackendError::Unreachable | BackendError::Closed)
}

/// Routes a request again once `shard` is ejected (or returns the error if it is not).
pub async fn reroute(shard: Arc<ShardHandle>, e: BackendError, resend: Resend) -> Bytes {
    let Some(cluster) = shard.cluster() else {
        return shard_error(&shard, e);
    };
    if !shard.judged_down(cluster.settings.timeout).await {
        return shard_error(&shard, e);
    }
    let Some((req, spec)) = command_of(&resend.sent) else {
        return shard_error(&shard, e);
    };
    let requester = Requester { failover: false, ..resend.requester };
    let again = {
        let topology = cluster.topology();
        route::route_keyed(requester, &topology.view(), &req, spec)
    };
    match again {
        Some(fut) => fut.await,
        None => shard_error(&shard, e),
    }
}

/// [`reroute`] for a part of a split command.
pub async fn reroute_part(shard: Arc<ShardHandle>, e: BackendError, resend: Resend) -> CopyFailover {
    CopyFailover { reply: Some(reroute(shard, e, resend).await), shard: None, new_owner: None }
}

/// Sends one copy of a replicated write again once `shard` is ejected: to the key's copies in the new view
/// that the write has not reached (`others` are the shards its other copies went to).
pub async fn resend_copy(
    shard: Arc<ShardHandle>,
    e: BackendError,
    resend: Resend,
    others: Vec<Arc<ShardHandle>>,
) -> CopyFailover {
    let failed =
        |shard: &ShardHandle| CopyFailover { reply: Some(shard_error(shard, e)), shard: None, new_owner: None };
    let Some(cluster) = shard.cluster() else {
        return failed(&shard);
    };
    if !shard.judged_down(cluster.settings.timeout).await {
        return failed(&shard);
    }
    let Some((req, spec)) = command_of(&resend.sent) else {
        return failed(&shard);
    };
    let (new_owner, sends) = {
        let topology = cluster.topology();
        let view = topology.view();
        // Every key of the write must still share its copies (MSETNX and RENAME are atomic on one shard).
        let mut copies: Option<WriteCopies> = None;
        for pos in spec.key_positions(req.argc()) {
            let c = view.write_copies(req.arg(pos));
            if copies.as_ref().is_some_and(|first| *first != c) {
                return failed(&shard);
            }
            copies = Some(c);
        }
        let copies = copies.unwrap_or_default();
        let Some(&(owner, _)) = copies.first() else {
            let down = route::no_live_shard(&view);
            return CopyFailover { reply: Some(down.await), shard: None, new_owner: None };
        };
        let plain = route::wire(&req);
        let sends: Vec<_> = copies
            .iter()
            .map(|(i, stands_in_for)| (view.shards[*i].clone(), stands_in_for))
            .filter(|(s, _)| !Arc::ptr_eq(s, &shard) && !others.iter().any(|o| Arc::ptr_eq(o, s)))
            .map(|(s, stands_in_for)| {
                let bytes = match stands_in_for {
                    Some(absent) => hinted_wire(&req, absent),
                    None => plain.clone(),
                };
                let rx = s.conn_for(resend.requester.id, resend.requester.proto).send(bytes);
                (s, rx)
            })
            .collect();
        (view.shards[owner].clone(), sends)
    };
    let mut outcome = CopyFailover { reply: None, shard: None, new_owner: Some(new_owner) };
    for (target, rx) in sends {
        let reply = match rx.await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => shard_error(&target, e),
            Err(_) => shard_error(&target, BackendError::Closed),
        };
        let is_error = reply.first() == Some(&b'-');
        if outcome.reply.is_none() || is_error {
            outcome.reply = Some(reply);
            outcome.shard = Some(target);
        }
        if is_error {
            break;
        }
    }
    outcome
}

/// The command that was sent, unwrapped from `RINGCACHE HINTED <targets> ...` if it was a hinted write.
fn command_of(sent: &Bytes) -> Option<(Request, &'static CommandSpec)> {
    let parse = |bytes: &[u8]| {
        let mut buf = BytesMut::from(bytes);
        RequestScanner::new().next(&mut buf, &Limits::default()).ok().flatten()
    };
    let mut req = parse(sent)?;
    if req.argc() > 3 && req.arg(0).eq_ignore_ascii_case(b"RINGCACHE") && req.arg(1).eq_ignore_ascii_case(b"HINTED") {
        req = parse(&encode_request(req.args_from(3)))?;
    }
    let spec = command::lookup(req.name())?;
    Some((req, spec))
}

impl ReplyFut {
    /// The future that sends a failed whole request again, for [`ReplyFut::Failover`].
    pub(crate) fn failover(shard: Arc<ShardHandle>, e: BackendError, resend: Resend) -> ReplyFut {
        ReplyFut::Failover(Box::pin(reroute(shard, e, resend)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hinted_write_is_unwrapped_to_its_command() {
        let plain = encode_request([&b"SET"[..], b"k", b"v"].into_iter());
        let (req, spec) = command_of(&plain).unwrap();
        assert_eq!(spec.name, "set");
        assert_eq!(req.args_from(0).collect::<Vec<_>>(), [&b"SET"[..], b"k", b"v"]);
        let mut buf = BytesMut::from(&plain[..]);
        let parsed = RequestScanner::new().next(&mut buf, &Limits::default()).unwrap().unwrap();
        let hinted = hinted_wire(&parsed, "s2");
        let (req, spec) = command_of(&hinted).unwrap();
        assert_eq!(spec.name, "set");
        assert_eq!(req.args_from(0).collect::<Vec<_>>(), [&b"SET"[..], b"k", b"v"]);
        assert!(command_of(&Bytes::from_static(b"*1\r\n$7\r\nNOTACMD\r\n")).is_none());
    }
}
