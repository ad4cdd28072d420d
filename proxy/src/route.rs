//! Where a request goes: one shard (forwarded untouched), several shards (split, then merged), every shard
//! (fanned out and aggregated), nowhere (answered by the proxy), or refused (not supported through a proxy).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use ringcache_common::command::{self, CommandSpec, PerCommand};
use ringcache_common::resp::{encode_request, Protocol, ReplyBuf, ReplyValue, ReplyWriter, Request};
use tokio::sync::oneshot;

use crate::backend::{BackendError, ReplyResult};
use crate::cluster::{ShardHandle, View, WriteCopies};
use crate::failover::{self, CopyFailover, Resend};
use crate::handoff::hinted_wire;
use crate::session::{shard_error, ProxyShared, ReplyFut, Session};

/// Redis commands that cannot work through a sharding proxy (the stateful ones that can are answered by
/// [`crate::stateful`] before a request gets here).
const UNSUPPORTED: &[&str] = &["function", "fcall", "fcall_ro", "monitor", "sync", "psync", "migrate"];

/// Whether the proxy refuses `spec` (see [`UNSUPPORTED`]).
pub(crate) fn is_refused(spec: &'static CommandSpec) -> bool {
    *REFUSED.get(spec)
}

/// Per command of the table: whether it is in [`UNSUPPORTED`].
static REFUSED: PerCommand<bool> = PerCommand::new(|c| UNSUPPORTED.contains(&c.name));

/// How [`route_command`] sends a command, decided once per command of the table from its name (so that the
/// request path matches on this instead of comparing names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Routed by its keys ([`route_keyed`]), or answered here when it has none.
    ByKeys,
    /// MSET and MSETNX: routed by their keys once their argument count is checked.
    Mset,
    Dbsize,
    FlushAll,
    Internal,
    Save,
    FirstStatus,
    LastSave,
    Keys,
    Info,
    Scan,
    RandomKey,
    Object,
    Memory,
    Wait,
    /// Keyless, and the same on every shard: any one answers.
    AnyShard,
    Blocking,
    Spop,
}

static PATHS: PerCommand<Path> = PerCommand::new(|c| match c.name {
    "mset" | "msetnx" => Path::Mset,
    "dbsize" => Path::Dbsize,
    "flushall" | "flushdb" => Path::FlushAll,
    "ringcache" => Path::Internal,
    "save" => Path::Save,
    "bgsave" | "bgrewriteaof" => Path::FirstStatus,
    "lastsave" => Path::LastSave,
    "keys" => Path::Keys,
    "info" => Path::Info,
    "scan" => Path::Scan,
    "randomkey" => Path::RandomKey,
    "object" => Path::Object,
    "memory" => Path::Memory,
    "wait" => Path::Wait,
    "pfselftest" | "swapdb" => Path::AnyShard,
    "spop" => Path::Spop,
    _ if crate::blocking::is_blocking(c) => Path::Blocking,
    _ => Path::ByKeys,
});

/// How [`route_keyed`] sends a command with keys, decided once per command of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyedPath {
    /// Split by key, the replies merged as MGET's.
    Mget,
    /// Split by key (DEL UNLINK EXISTS TOUCH), the integer replies summed.
    SumIntegers,
    /// Split by key/value pair, every part answering OK.
    Mset,
    OneKey,
    ManyKeys,
    Keyless,
}

static KEYED_PATHS: PerCommand<KeyedPath> = PerCommand::new(|c| match c.name {
    "mget" => KeyedPath::Mget,
    "del" | "unlink" | "exists" | "touch" => KeyedPath::SumIntegers,
    "mset" => KeyedPath::Mset,
    _ if c.has_one_key() => KeyedPath::OneKey,
    _ if c.is_keyed() => KeyedPath::ManyKeys,
    _ => KeyedPath::Keyless,
});

/// SCAN cursors carry the shard index in their low bits.
const SCAN_SHARD_BITS: u32 = 10;

/// What routing needs of the client a request comes from.
#[derive(Debug, Clone, Copy)]
pub struct Requester {
    /// The client's id: it picks the shard connections its requests share.
    pub id: u64,
    /// Whether a request that finds its shard dead may be sent again elsewhere ([`crate::failover`]); off
    /// for a request that is already being sent again.
    pub failover: bool,
    /// The client's protocol: replies forwarded untouched must be in it, and merged ones are written in it.
    pub proto: Protocol,
}

impl Requester {
    pub fn of(session: &Session) -> Requester {
        Requester { id: session.id, failover: true, proto: session.proto }
    }
}

/// Routes one request whose command was already looked up.
pub fn route_command(
    session: &mut Session,
    shared: &ProxyShared,
    req: Request,
    spec: Option<&'static CommandSpec>,
) -> ReplyFut {
    let Some(spec) = spec else {
        let name = String::from_utf8_lossy(req.name()).to_lowercase();
        if UNSUPPORTED.contains(&name.as_str()) {
            return ReplyFut::error(&format!("ERR {} is not supported by ringcache-proxy", name.to_uppercase()));
        }
        return ReplyFut::error(&command::unknown_command_message(&req));
    };
    if is_refused(spec) {
        return ReplyFut::error(&format!("ERR {} is not supported by ringcache-proxy", spec.name.to_uppercase()));
    }
    if let Err(e) = command::check_arity(spec, &req) {
        return ReplyFut::error(&e);
    }
    if !session.authenticated && !spec.flags.contains(&"no_auth") {
        return ReplyFut::error("NOAUTH Authentication required.");
    }
    if !session.user.unrestricted() {
        if let Err(e) = acl_check(session, shared, spec, &req, ringcache_common::acl::Context::Toplevel) {
            return ReplyFut::error(&e);
        }
    }
    // One reading of the shards' health for the whole request (see `Topology::view`).
    let topology = shared.cluster.topology();
    let topo = topology.view();
    let requester = Requester::of(session);
    match *PATHS.get(spec) {
        Path::Mset if req.argc().is_multiple_of(2) => {
            ReplyFut::error(&format!("ERR wrong number of arguments for '{}' command", spec.name))
        }
        Path::Dbsize => broadcast(requester, &topo, &req, Merge::SumIntegers),
        Path::FlushAll => match topo.absent_names() {
            // The absent shards are flushed too when they return.
            Some(absent) => broadcast_bytes(requester, &topo, hinted_wire(&req, &absent), Merge::AllOk),
            None => broadcast(requester, &topo, &req, Merge::AllOk),
        },
        Path::Internal => {
            ReplyFut::error("ERR RINGCACHE is internal to ringcache shards: ringcache-proxy does not forward it")
        }
        // SAVE makes a shard connection wait for the snapshot, which would stall every client sharing it.
        Path::Save => ReplyFut::error("ERR SAVE is not supported by ringcache-proxy: use BGSAVE, then LASTSAVE"),
        Path::FirstStatus => broadcast(requester, &topo, &req, Merge::FirstStatus),
        Path::LastSave => broadcast(requester, &topo, &req, Merge::MinInteger),
        Path::Keys => broadcast(requester, &topo, &req, Merge::ConcatArrays { distinct: topo.replicas > 1 }),
        Path::Info => info(requester, shared, &topo, &req),
        Path::Scan => scan(requester, &topo, &req),
        Path::RandomKey => randomkey(requester, &topo, &req),
        // OBJECT's subcommands name their key second; HELP and malformed requests go to any shard.
        Path::Object if req.argc() >= 3 => one_key(requester, &topo, &req, spec, req.arg(2)),
        // MEMORY USAGE goes to its key's shard; the other subcommands are the proxy's (`local`).
        Path::Memory if req.argc() >= 3 && req.arg(1).eq_ignore_ascii_case(b"usage") => {
            one_key(requester, &topo, &req, spec, req.arg(2))
        }
        Path::Wait => wait(&topo, &req),
        // Keyless, and the same on every shard: any one answers (SWAPDB as Redis with one database).
        Path::AnyShard | Path::Object => match topo.live().next() {
            Some((_, shard)) => forward(requester, shard, &req),
            None => no_live_shard(&topo),
        },
        Path::Blocking => crate::blocking::route(requester, &topo, &req, spec),
        Path::Spop if topo.replicas > 1 => ReplyFut::error(
            "ERR SPOP is not supported by ringcache-proxy with --replicas above 1 (each copy would pop a different \
             member); use SRANDMEMBER and SREM",
        ),
        Path::ByKeys | Path::Mset | Path::Memory | Path::Spop => match route_keyed(requester, &topo, &req, spec) {
            Some(fut) => fut,
            None => crate::local::reply(session, shared, &req, spec),
        },
    }
}

/// The ACL check of a restricted user's request, with the same code as the shard's (logged in the
/// proxy's ACL LOG when refused).
#[cold]
pub fn acl_check(
    session: &Session,
    shared: &ProxyShared,
    spec: &'static CommandSpec,
    req: &Request,
    context: ringcache_common::acl::Context,
) -> Result<(), String> {
    shared.acl.check_and_log(&session.user, spec, req, context, || session.client_info())
}

/// WAIT numreplicas timeout, answered here: every write the proxy acknowledged was acknowledged by each
/// of its copies first (`--replicas`), so the count is the number of extra copies, at once. Arguments are
/// checked as Redis checks them.
fn wait(topo: &View<'_>, req: &Request) -> ReplyFut {
    let parse = |a: &[u8]| ringcache_common::connection::parse_integer(a);
    let Some(_wanted) = parse(req.arg(1)) else {
        return ReplyFut::error("ERR value is not an integer or out of range");
    };
    match parse(req.arg(2)) {
        None => ReplyFut::error("ERR timeout is not an integer or out of range"),
        Some(t) if t < 0 => ReplyFut::error("ERR timeout is negative"),
        Some(_) => {
            let mut out = BytesMut::new();
            out.integer(topo.replicas.saturating_sub(1) as i64);
            ReplyFut::ready(out.freeze())
        }
    }
}

/// Routes a command on keys (single-key, or split over shards); `None` for a command without keys. Also
/// how [`crate::failover`] sends a request again, from a newer view.
pub(crate) fn route_keyed(
    requester: Requester,
    topo: &View<'_>,
    req: &Request,
    spec: &'static CommandSpec,
) -> Option<ReplyFut> {
    Some(match *KEYED_PATHS.get(spec) {
        KeyedPath::Mget => split(requester, topo, req, spec, 1, Merge::Mget),
        KeyedPath::SumIntegers => split(requester, topo, req, spec, 1, Merge::SumIntegers),
        KeyedPath::Mset => split(requester, topo, req, spec, 2, Merge::AllOk),
        KeyedPath::OneKey => one_key(requester, topo, req, spec, req.arg(spec.first_key as usize)),
        KeyedPath::ManyKeys => many_keys(requester, topo, req, spec),
        KeyedPath::Keyless => return None,
    })
}

/// CLUSTERDOWN, saying why when shards refused the proxy's password.
pub(crate) fn no_live_shard(topo: &View<'_>) -> ReplyFut {
    let refusing: Vec<(&str, BackendError)> =
        topo.shards.iter().filter_map(|s| Some((s.spec.name.as_str(), s.auth_failure()?))).collect();
    match refusing.first() {
        None => ReplyFut::error("CLUSTERDOWN ringcache-proxy: no shard is available"),
        Some((name, e)) => ReplyFut::error(&format!(
            "CLUSTERDOWN ringcache-proxy: no shard is available ({} of {} failed to authenticate: shard '{name}' {e})",
            refusing.len(),
            topo.shards.len()
        )),
    }
}

/// The request's bytes as the client sent them (re-encoded only for inline commands).
pub(crate) fn wire(req: &Request) -> Bytes {
    match req.raw() {
        Some(raw) => raw.clone(),
        None => encode_request(req.args_from(0)),
    }
}

/// Sends a whole request to `shard` (see [`forward_bytes`]).
pub(crate) fn forward_to(requester: Requester, shard: &Arc<ShardHandle>, req: &Request) -> ReplyFut {
    forward(requester, shard, req)
}

fn forward(requester: Requester, shard: &Arc<ShardHandle>, req: &Request) -> ReplyFut {
    forward_bytes(requester, shard, wire(req))
}

/// Sends a whole request to one shard, on a connection that speaks the client's protocol (its reply goes
/// back as the shard wrote it); if the shard dies under it, it is routed again ([`failover`]).
fn forward_bytes(requester: Requester, shard: &Arc<ShardHandle>, request: Bytes) -> ReplyFut {
    let resend = requester.failover.then(|| Resend { requester, sent: request.clone() });
    let rx = shard.conn_for(requester.id, requester.proto).send(request);
    ReplyFut::One { rx, shard: shard.clone(), resend }
}

/// A command with one key goes to that key's shard: a write to every copy (wrapped for hinted handoff
/// where a copy stands in for an absent shard), a read to the first copy.
fn one_key(requester: Requester, topo: &View<'_>, req: &Request, spec: &CommandSpec, key: &[u8]) -> ReplyFut {
    if spec.is_write() && (topo.replicas > 1 || topo.hinting()) {
        return replicated(requester, topo, req, &topo.write_copies(key));
    }
    if topo.hinting() {
        // A read from a stand-in is wrapped too: it passes the guard of a joining shard's ranges.
        return match topo.write_copies(key).into_iter().next() {
            Some((i, None)) => forward(requester, &topo.shards[i], req),
            Some((i, Some(absent))) => forward_bytes(requester, &topo.shards[i], hinted_wire(req, &absent)),
            None => no_live_shard(topo),
        };
    }
    match topo.owner(key) {
        Some(i) => forward(requester, &topo.shards[i], req),
        None => no_live_shard(topo),
    }
}

/// A command with several keys (or keys that move with its arguments) runs whole on one shard when all
/// its keys live there (with a `{hash tag}`), as Redis Cluster runs it in one slot. Across shards, a few
/// reads are computed here from each key's value (SUNION SINTER SDIFF SINTERCARD, PFCOUNT); anything else
/// is refused with `CROSSSLOT`, since its effect would not be atomic.
fn many_keys(requester: Requester, topo: &View<'_>, req: &Request, spec: &CommandSpec) -> ReplyFut {
    let positions = command::keys(spec, req);
    let Some(&first) = positions.first() else {
        // No key found (a bad count): any shard answers with the command's own error.
        return match topo.live().next() {
            Some((_, shard)) => forward(requester, shard, req),
            None => no_live_shard(topo),
        };
    };
    // While a shard is down, a write's keys must also stand in for the same absent shards (the stand-in
    // records every key of the command for them); a read needs only the same first copy.
    let placement = |key: &[u8]| -> WriteCopies {
        if spec.is_write() {
            topo.write_copies(key)
        } else if topo.hinting() {
            topo.write_copies(key).into_iter().take(1).collect()
        } else {
            topo.owner(key).into_iter().map(|i| (i, None)).collect()
        }
    };
    let first_place = placement(req.arg(first));
    // SORT's BY and GET patterns name keys too: they must live with the sorted key.
    for (option, pattern) in crate::crossshard::sort_patterns(spec, req) {
        if !crate::crossshard::pattern_has_fixed_tag(topo.ring.placement().hash_tag, pattern)
            || placement(pattern) != first_place
        {
            return ReplyFut::error(&format!(
                "ERR {option} option of SORT denied by ringcache-proxy when keys formed by the pattern may be on \
                 another shard (use the sorted key's {{hash tag}} in the pattern)"
            ));
        }
    }
    if positions.iter().all(|&p| placement(req.arg(p)) == first_place) {
        return one_key(requester, topo, req, spec, req.arg(first));
    }
    match crate::crossshard::plan(spec, req, &positions) {
        Some(Ok(plan)) => gather_per_key(requester, topo, plan),
        Some(Err(e)) => ReplyFut::error(&e),
        None => ReplyFut::error(&format!(
            "CROSSSLOT Keys in request don't hash to the same shard: ringcache-proxy runs {} only when all keys \
             share a shard (use a {{hash tag}})",
            spec.name.to_uppercase()
        )),
    }
}

/// Sends one read per key to its shard and merges the replies as `plan` says.
fn gather_per_key(requester: Requester, topo: &View<'_>, plan: crate::crossshard::Plan) -> ReplyFut {
    let mut parts = Vec::with_capacity(plan.reads.len());
    for (key, request) in &plan.reads {
        let target = if topo.hinting() {
            topo.write_copies(key).into_iter().next().map(|(i, absent)| match absent {
                Some(absent) => (i, hinted_wire(&Request::from_args(request.iter()), &absent)),
                None => (i, encode_request(request.iter().map(|a| &a[..]))),
            })
        } else {
            topo.owner(key).map(|i| (i, encode_request(request.iter().map(|a| &a[..]))))
        };
        let Some((i, bytes)) = target else { return no_live_shard(topo) };
        let shard = topo.shards[i].clone();
        let rx = shard.conn_for(requester.id, requester.proto).send(bytes);
        parts.push(Part::fan_out(rx, shard));
    }
    ReplyFut::Gather(Box::new(Gather {
        parts,
        merge: Merge::CrossShard(plan.combine),
        total_keys: 0,
        proto: requester.proto,
    }))
}

/// Sends a write to every shard holding a copy of its key, wrapped for hinted handoff on the copies that
/// stand in for absent shards; the reply is the owner's, or the first error.
fn replicated(requester: Requester, topo: &View<'_>, req: &Request, copies: &WriteCopies) -> ReplyFut {
    match copies.as_slice() {
        [] => no_live_shard(topo),
        [(only, None)] => forward(requester, &topo.shards[*only], req),
        all => {
            let request = wire(req);
            let parts = all
                .iter()
                .enumerate()
                .map(|(i, (shard_index, stands_in_for))| {
                    let shard = topo.shards[*shard_index].clone();
                    let bytes = match stands_in_for {
                        Some(absent) => hinted_wire(req, absent),
                        None => request.clone(),
                    };
                    let resend =
                        requester.failover.then(|| PartResend::Copy(Resend { requester, sent: bytes.clone() }));
                    let rx = shard.conn_for(requester.id, requester.proto).send(bytes);
                    Part::new(rx, shard, Vec::new(), i == 0, resend)
                })
                .collect();
            ReplyFut::Gather(Box::new(Gather { parts, merge: Merge::Owner, total_keys: 0, proto: requester.proto }))
        }
    }
}

/// How the replies of several shards become one.
pub enum Merge {
    /// Arrays of values, put back in the order of the original keys.
    Mget,
    /// The owner's reply (the first part) to a write sent to every copy.
    Owner,
    SumIntegers,
    /// `+OK` when every shard said `+OK`.
    AllOk,
    /// The first shard's status reply (BGSAVE's "Background saving started").
    FirstStatus,
    /// The smallest integer (LASTSAVE: every shard has saved at least as recently as this).
    MinInteger,
    /// KEYS: every shard's keys; `distinct` drops the repeats that replicas make.
    ConcatArrays {
        distinct: bool,
    },
    /// RANDOMKEY: one of the shards' keys, nil only when every shard is empty.
    RandomKey,
    /// One SCAN step on shard `shard` of `shards`.
    Scan {
        shard: usize,
        shards: usize,
    },
    /// A read computed from each key's value (see `crossshard`).
    CrossShard(crate::crossshard::Combine),
    /// INFO from every shard, summed into the proxy's own INFO.
    Info {
        own: Box<ringcache_common::info::Info>,
        sections: ringcache_common::info::Sections,
    },
}

struct Part {
    rx: oneshot::Receiver<ReplyResult>,
    shard: Arc<ShardHandle>,
    result: Option<Bytes>,
    /// For MGET: where each of this part's keys sat in the original request.
    positions: Vec<usize>,
    /// Whether this part's value counts in the merge (false for the extra copies of a replicated write,
    /// whose errors still count).
    counted: bool,
    /// How to send this part again if its shard dies under it ([`failover`]).
    resend: Option<PartResend>,
    /// The part being sent again.
    failover: Option<Pin<Box<dyn Future<Output = CopyFailover> + Send>>>,
    /// A copy of a replicated write that turned out not to be needed any more: it has no reply.
    vacant: bool,
}

/// How a part is sent again when its shard dies: routed again as a request of its own (a read, or a write
/// with one copy per key), or as the copies of a replicated write that it has not reached yet.
pub(crate) enum PartResend {
    Reroute(Resend),
    Copy(Resend),
}

impl Part {
    fn new(
        rx: oneshot::Receiver<ReplyResult>,
        shard: Arc<ShardHandle>,
        positions: Vec<usize>,
        counted: bool,
        resend: Option<PartResend>,
    ) -> Part {
        Part { rx, shard, result: None, positions, counted, resend, failover: None, vacant: false }
    }

    /// A part of a fan-out (DBSIZE, KEYS, INFO, SCAN...): a shard that fails fails it.
    fn fan_out(rx: oneshot::Receiver<ReplyResult>, shard: Arc<ShardHandle>) -> Part {
        Part::new(rx, shard, Vec::new(), true, None)
    }
}

/// Replies from several shards being gathered. Every part is sent on the connection in the client's
/// protocol that the client's other requests to that shard use (so they run in the order the client sent
/// them), decoded whatever its protocol, and the merged reply is written in the client's protocol (`proto`).
pub struct Gather {
    parts: Vec<Part>,
    merge: Merge,
    total_keys: usize,
    proto: Protocol,
}

impl Future for Gather {
    type Output = Bytes;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Bytes> {
        let this = self.get_mut();
        let mut all = true;
        for i in 0..this.parts.len() {
            if this.parts[i].result.is_some() || this.parts[i].vacant {
                continue;
            }
            if this.parts[i].failover.is_none() {
                let part = &mut this.parts[i];
                let e = match part.rx.poll_unpin(cx) {
                    Poll::Ready(Ok(Ok(reply))) => {
                        part.result = Some(reply);
                        continue;
                    }
                    Poll::Ready(Ok(Err(e))) => e,
                    Poll::Ready(Err(_)) => BackendError::Closed,
                    Poll::Pending => {
                        all = false;
                        continue;
                    }
                };
                match part.resend.take() {
                    Some(resend) if failover::may_fail_over(e) => {
                        let others: Vec<Arc<ShardHandle>> = this
                            .parts
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .map(|(_, p)| p.shard.clone())
                            .collect();
                        let part = &mut this.parts[i];
                        part.failover = Some(match resend {
                            PartResend::Reroute(r) => Box::pin(failover::reroute_part(part.shard.clone(), e, r)),
                            PartResend::Copy(r) => Box::pin(failover::resend_copy(part.shard.clone(), e, r, others)),
                        });
                    }
                    _ => {
                        part.result = Some(shard_error(&part.shard, e));
                        continue;
                    }
                }
            }
            let Some(fut) = this.parts[i].failover.as_mut() else { continue };
            let Poll::Ready(outcome) = fut.poll_unpin(cx) else {
                all = false;
                continue;
            };
            let part = &mut this.parts[i];
            part.failover = None;
            match outcome.reply {
                Some(reply) => part.result = Some(reply),
                None => part.vacant = true,
            }
            if let Some(shard) = outcome.shard {
                part.shard = shard;
            }
            // A copy of a replicated write moved: the reply is now the new owner's.
            if let Some(owner) = outcome.new_owner {
                for p in &mut this.parts {
                    p.counted = !p.vacant && Arc::ptr_eq(&p.shard, &owner);
                }
            }
        }
        if !all {
            return Poll::Pending;
        }
        Poll::Ready(this.merge())
    }
}

impl Gather {
    fn merge(&mut self) -> Bytes {
        // Copies of a replicated write that were not needed after a failover have no reply.
        self.parts.retain(|p| !p.vacant);
        // Any shard's error (or a reply we cannot read) is the reply.
        let mut values = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let bytes = part.result.clone().unwrap_or_default();
            match ReplyValue::parse(&bytes) {
                Some(ReplyValue::Error(_)) | None => return bytes,
                Some(v) => values.push(v),
            }
        }
        if matches!(self.merge, Merge::Owner) {
            let owner = self.parts.iter().find(|p| p.counted).or(self.parts.first());
            return owner.and_then(|p| p.result.clone()).unwrap_or_default();
        }
        // Extra copies of replicated writes only had to succeed.
        let counted: Vec<bool> = self.parts.iter().map(|p| p.counted).collect();
        let values: Vec<ReplyValue> = values.into_iter().zip(counted).filter(|(_, c)| *c).map(|(v, _)| v).collect();
        self.parts.retain(|p| p.counted);
        let mut out = ReplyBuf::new(self.proto);
        match &self.merge {
            Merge::Mget => {
                let mut slots: Vec<Option<Option<Bytes>>> = vec![None; self.total_keys];
                for (part, v) in self.parts.iter().zip(values) {
                    let Some(items) = v.into_items() else { return unexpected(&part.shard) };
                    for (pos, item) in part.positions.iter().zip(items) {
                        slots[*pos] = Some(match item {
                            ReplyValue::Bulk(b) => b,
                            _ => None,
                        });
                    }
                }
                out.array_len(slots.len());
                for s in slots {
                    match s.flatten() {
                        Some(b) => out.bulk(&b),
                        None => out.null(),
                    }
                }
            }
            Merge::SumIntegers => {
                let mut sum = 0i64;
                for (part, v) in self.parts.iter().zip(values) {
                    let ReplyValue::Integer(n) = v else { return unexpected(&part.shard) };
                    sum += n;
                }
                out.integer(sum);
            }
            Merge::AllOk => out.ok(),
            Merge::Owner => unreachable!("handled above"),
            Merge::FirstStatus => match values.first() {
                Some(ReplyValue::Simple(status)) => out.simple(&String::from_utf8_lossy(status)),
                _ => return unexpected(&self.parts[0].shard),
            },
            Merge::MinInteger => {
                let mut min = i64::MAX;
                for (part, v) in self.parts.iter().zip(values) {
                    let ReplyValue::Integer(n) = v else { return unexpected(&part.shard) };
                    min = min.min(n);
                }
                out.integer(min);
            }
            Merge::ConcatArrays { distinct } => {
                let mut all = Vec::new();
                for (part, v) in self.parts.iter().zip(values) {
                    let Some(items) = v.into_items() else { return unexpected(&part.shard) };
                    all.extend(items);
                }
                if *distinct {
                    let mut seen = std::collections::HashSet::new();
                    all.retain(|item| match item {
                        ReplyValue::Bulk(Some(b)) => seen.insert(b.clone()),
                        _ => true,
                    });
                }
                out.array_len(all.len());
                for item in all {
                    if let ReplyValue::Bulk(Some(b)) = item {
                        out.bulk(&b);
                    } else {
                        out.null();
                    }
                }
            }
            Merge::RandomKey => {
                let keys: Vec<Bytes> = values
                    .into_iter()
                    .filter_map(|v| match v {
                        ReplyValue::Bulk(Some(key)) => Some(key),
                        _ => None,
                    })
                    .collect();
                if keys.is_empty() {
                    out.null();
                } else {
                    out.bulk(&keys[rand::random_range(0..keys.len())]);
                }
            }
            Merge::Scan { shard, shards } => {
                let Some(items) = values.into_iter().next().and_then(ReplyValue::into_items) else {
                    return unexpected(&self.parts[0].shard);
                };
                let mut items = items.into_iter();
                let (Some(ReplyValue::Bulk(Some(cursor))), Some(keys)) =
                    (items.next(), items.next().and_then(ReplyValue::into_items))
                else {
                    return unexpected(&self.parts[0].shard);
                };
                let inner: u64 = std::str::from_utf8(&cursor).ok().and_then(|c| c.parse().ok()).unwrap_or(0);
                let next = if inner != 0 {
                    (inner << SCAN_SHARD_BITS) | *shard as u64
                } else if shard + 1 < *shards {
                    (shard + 1) as u64
                } else {
                    0
                };
                out.array_len(2);
                out.bulk(next.to_string().as_bytes());
                out.array_len(keys.len());
                for k in keys {
                    if let ReplyValue::Bulk(Some(b)) = k {
                        out.bulk(&b);
                    }
                }
            }
            Merge::CrossShard(combine) => {
                if let Err(e) = combine.write(values, &mut out) {
                    out.clear();
                    out.error(&e);
                }
            }
            Merge::Info { own, sections } => {
                let mut infos = Vec::new();
                for v in values {
                    if let Some(b) = v.as_bytes() {
                        infos.push(String::from_utf8_lossy(b).into_owned());
                    }
                }
                out.verbatim(crate::local::merge_info(own, sections, &infos).as_bytes());
            }
        }
        out.take()
    }
}

fn unexpected(shard: &ShardHandle) -> Bytes {
    let mut out = BytesMut::new();
    out.error(&format!("ERR ringcache-proxy: unexpected reply from shard '{}'", shard.spec.name));
    out.freeze()
}

/// One shard's part of a split command: (shard, whether it gets the owner's copy, the absent shards it
/// stands in for, key argument positions).
type SubRequest = (usize, bool, Option<Arc<str>>, Vec<usize>);

/// Splits a multi-key command into one sub-request per shard: the command name followed by the key
/// groups (each key with the `group - 1` arguments after it) that shard owns, in their original order.
fn split(
    requester: Requester,
    topo: &View<'_>,
    req: &Request,
    spec: &CommandSpec,
    group: usize,
    merge: Merge,
) -> ReplyFut {
    // (shard, whether it gets the owner's copy, the absent shards it stands in for, key argument positions).
    // A write goes to every copy of each key; only the owners' replies are merged, the extra copies just
    // have to succeed.
    let mut per_shard: Vec<SubRequest> = Vec::new();
    let all_copies = spec.is_write() && (topo.replicas > 1 || topo.hinting());
    for pos in (1..req.argc()).step_by(group) {
        let copies: WriteCopies = if all_copies {
            topo.write_copies(req.arg(pos))
        } else if topo.hinting() {
            // A read goes to the first copy only, wrapped when that is a stand-in.
            topo.write_copies(req.arg(pos)).into_iter().take(1).collect()
        } else {
            topo.owner(req.arg(pos)).into_iter().map(|i| (i, None)).collect()
        };
        if copies.is_empty() {
            return no_live_shard(topo);
        }
        for (i, (shard, stands_in_for)) in copies.into_iter().enumerate() {
            let is_owner = i == 0;
            match per_shard.iter_mut().find(|(s, o, t, _)| *s == shard && *o == is_owner && *t == stands_in_for) {
                Some((_, _, _, v)) => v.push(pos),
                None => per_shard.push((shard, is_owner, stands_in_for, vec![pos])),
            }
        }
    }
    if let [(shard, _, None, _)] = per_shard.as_slice() {
        // Everything on one shard: forward the original bytes.
        return forward(requester, &topo.shards[*shard], req);
    }
    let total_keys = (req.argc() - 1) / group;
    // A part whose shard dies is routed again, unless it is one of several copies of a write: its other
    // copies may have run it, and a count (DEL) could no longer be told apart.
    let reroutable = requester.failover && !(spec.is_write() && topo.replicas > 1);
    let parts = per_shard
        .into_iter()
        .map(|(shard_index, is_owner, stands_in_for, positions)| {
            let shard = topo.shards[shard_index].clone();
            let argc = 1 + positions.len() * group;
            // A hinted sub-request's arguments follow the wrapper's, inside its array.
            let mut sub = match &stands_in_for {
                Some(absent) => crate::handoff::hinted_prefix(argc, absent),
                None => {
                    let mut sub = BytesMut::new();
                    sub.array_len(argc);
                    sub
                }
            };
            sub.bulk(spec.name.as_bytes());
            for &p in &positions {
                for i in p..p + group {
                    sub.bulk(req.arg(i));
                }
            }
            let sub = sub.freeze();
            let resend = reroutable.then(|| PartResend::Reroute(Resend { requester, sent: sub.clone() }));
            let rx = shard.conn_for(requester.id, requester.proto).send(sub);
            let positions = positions.iter().map(|p| (p - 1) / group).collect();
            Part::new(rx, shard, positions, is_owner, resend)
        })
        .collect();
    ReplyFut::Gather(Box::new(Gather { parts, merge, total_keys, proto: requester.proto }))
}

/// Sends the request to every live shard.
fn broadcast(requester: Requester, topo: &View<'_>, req: &Request, merge: Merge) -> ReplyFut {
    broadcast_bytes(requester, topo, wire(req), merge)
}

fn broadcast_bytes(requester: Requester, topo: &View<'_>, request: Bytes, merge: Merge) -> ReplyFut {
    let parts: Vec<Part> = topo
        .live()
        .map(|(_, shard)| {
            Part::fan_out(shard.conn_for(requester.id, requester.proto).send(request.clone()), shard.clone())
        })
        .collect();
    if parts.is_empty() {
        return no_live_shard(topo);
    }
    ReplyFut::Gather(Box::new(Gather { parts, merge, total_keys: 0, proto: requester.proto }))
}

fn info(requester: Requester, shared: &ProxyShared, topo: &View<'_>, req: &Request) -> ReplyFut {
    let sections = crate::local::info_sections(req);
    let own = Box::new(crate::local::proxy_info(shared));
    let shard_req = encode_request([&b"INFO"[..], b"all"].into_iter());
    let parts: Vec<Part> = topo
        .live()
        .map(|(_, shard)| {
            Part::fan_out(shard.conn_for(requester.id, requester.proto).send(shard_req.clone()), shard.clone())
        })
        .collect();
    ReplyFut::Gather(Box::new(Gather {
        parts,
        merge: Merge::Info { own, sections },
        total_keys: 0,
        proto: requester.proto,
    }))
}

/// SCAN walks the shards one after another; the cursor's low bits say which shard it is on.
fn scan(requester: Requester, topo: &View<'_>, req: &Request) -> ReplyFut {
    let Some(cursor) = std::str::from_utf8(req.arg(1)).ok().and_then(|c| c.parse::<u64>().ok()) else {
        return ReplyFut::error("ERR invalid cursor");
    };
    let shards = topo.shards.len();
    let shard_index = (cursor & ((1 << SCAN_SHARD_BITS) - 1)) as usize;
    let inner = cursor >> SCAN_SHARD_BITS;
    let Some(shard) = topo.shards.get(shard_index) else {
        return ReplyFut::error("ERR invalid cursor");
    };
    if !topo.is_up(shard_index) {
        return ReplyFut::error(&format!(
            "ERR ringcache-proxy: shard '{}' is down; retry the SCAN later",
            shard.spec.name
        ));
    }
    let inner_text = inner.to_string();
    let args = std::iter::once(&b"SCAN"[..]).chain(std::iter::once(inner_text.as_bytes())).chain(req.args_from(2));
    let sub = encode_request(args.collect::<Vec<_>>().into_iter());
    let part = Part::fan_out(shard.conn_for(requester.id, requester.proto).send(sub), shard.clone());
    ReplyFut::Gather(Box::new(Gather {
        parts: vec![part],
        merge: Merge::Scan { shard: shard_index, shards },
        total_keys: 0,
        proto: requester.proto,
    }))
}

/// Asks every live shard: one picked at random could be empty while others hold keys.
fn randomkey(requester: Requester, topo: &View<'_>, req: &Request) -> ReplyFut {
    broadcast(requester, topo, req, Merge::RandomKey)
}
