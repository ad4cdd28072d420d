//! Command execution: one file per command family, one function per command.
//!
//! [`execute`] is the single boundary where a request becomes a reply: it looks the command up in the
//! shared table (`ringcache_common::command`), checks authentication and arity, locks the stripes of the
//! command's keys (its key specification, `command::keys`) into `ctx.db`, runs the handler, releases the
//! stripes and turns a [`CmdError`] into a RESP error reply. Handlers reach keys only through `ctx.db`,
//! which is what makes every command atomic, and write successful replies straight into `ctx.out` with
//! the protocol-aware [`ReplyWriter`] (a handler never asks whether the client speaks RESP2 or RESP3).

mod bitmaps;
mod blocking;
mod collection;
mod config;
mod connection;
mod dump;
mod handoff;
mod hashes;
mod hyperloglog;
mod keys;
mod lists;
mod memory;
mod object;
mod persistence;
mod pubsub;
mod scripting;
mod server;
mod sets;
mod sort;
mod strings;
mod tracking;
mod transactions;
mod zsets;

use std::time::Instant;

use ringcache_common::command::{self, CommandSpec, PerCommand};
use ringcache_common::metrics::{self, HotCounter};
use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};
use tokio::sync::oneshot;

use crate::server::{ClientState, Membership, Shared};
use crate::store::{Db, NotLocked, OutOfMemory, Store};

pub use config::{runtime_config, LiveSettings};
pub use server::rss_bytes;

/// What a handler needs: the keyspace it holds, the connection's state, the reply buffer and the batch's
/// clock.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub store: &'a Store,
    /// The stripes the running command holds: its keys', or all of them inside a transaction or script.
    pub db: Db<'a>,
    pub client: &'a mut ClientState,
    /// The connection's output buffer, in the protocol the client chose (HELLO).
    pub out: &'a mut ReplyBuf,
    /// Milliseconds since the Unix epoch, read once per batch of pipelined requests.
    pub now_ms: u64,
    /// Set by a command whose reply must wait (SAVE); the connection awaits it and writes the reply.
    pub deferred: &'a mut Option<Deferred>,
    /// A blocked client runs its command again after a wake-up that needed it to: if it blocks again, it
    /// keeps its place at the head of the line.
    pub retrying: bool,
    /// Keys written inside a transaction or script that clients are blocked on: they are served once it
    /// ends, not half way.
    pub ready_keys: Vec<bytes::Bytes>,
}

/// A reply the connection loop awaits before executing the next request.
pub enum Deferred {
    /// SAVE: the snapshot's outcome (`Err` is the RESP error line).
    Save(oneshot::Receiver<Result<(), String>>),
    /// An integer reply computed off the worker threads (`Err` is the RESP error line).
    Integer(oneshot::Receiver<Result<i64, String>>),
    /// WAIT for replicas a shard does not have: the client waits until `deadline` (forever if `None`),
    /// then gets 0.
    WaitReplicas { deadline: Option<Instant> },
    /// A blocking command found nothing: the client waits for `wake` (or until `deadline`, if any).
    Blocked {
        waiter: std::sync::Arc<crate::blocking::Waiter>,
        wake: oneshot::Receiver<crate::blocking::Wake>,
        deadline: Option<Instant>,
    },
}

/// A command's failure; the text is the exact RESP error line (without the leading `-`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand { cmd: String, sub: String },
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    TooLarge,
    /// Any other error; the string starts with its code (`ERR ...`).
    #[error("{0}")]
    Other(String),
}

impl From<NotLocked> for CmdError {
    fn from(e: NotLocked) -> Self {
        CmdError::Other(e.to_string())
    }
}

impl From<OutOfMemory> for CmdError {
    fn from(_: OutOfMemory) -> Self {
        CmdError::OutOfMemory
    }
}

pub type CmdResult = Result<(), CmdError>;
type Handler = fn(&mut Ctx<'_>, &Request) -> CmdResult;

/// What a request needs to know about its command, in one row per command (indexed like `COMMANDS`), so
/// the checks before and after a handler read one table rather than searching flag lists.
pub(super) struct CommandInfo {
    pub(super) handler: Option<Handler>,
    /// The command may write (`write` flag).
    write: bool,
    /// It takes keys (a fixed position, or movable ones).
    keyed: bool,
    /// It may run while the dataset is loading (`loading` flag).
    loading_ok: bool,
    /// It may run without authentication (`no_auth` flag).
    pub(super) no_auth: bool,
    lock: LockMode,
}

/// [`CommandInfo`] for every command, indexed like `COMMANDS`.
pub(super) static INFO: PerCommand<CommandInfo> = PerCommand::new(|c| CommandInfo {
    handler: handler_for(c.name),
    write: c.is_write(),
    keyed: c.is_keyed(),
    loading_ok: c.flags.contains(&"loading"),
    no_auth: c.flags.contains(&"no_auth"),
    lock: lock_mode(c),
});

/// How a command's stripes are locked while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockMode {
    /// It touches no key.
    None,
    /// The stripe of the one key every request names, at `position` (most commands).
    OneKey { position: usize },
    /// The stripes of the keys its key specification names.
    Keys,
    /// It walks the whole keyspace a stripe at a time (not atomically, as SCAN and KEYS may), or uses the
    /// stripes a transaction or script already holds.
    Walk,
    /// It holds every stripe while it runs (scripts: they may touch any key, and are atomic).
    All,
    /// SORT: its keys' stripes, or every stripe when its BY or GET patterns read other keys.
    Sort,
    /// A container whose subcommands name one key as their second argument (OBJECT ENCODING key, MEMORY
    /// USAGE key).
    SubcommandKey,
}

fn lock_mode(c: &CommandSpec) -> LockMode {
    match c.name {
        "scan" | "keys" | "dbsize" | "flushall" | "flushdb" | "randomkey" => LockMode::Walk,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => LockMode::All,
        // Shard channels are named like keys (for cluster routing) but are not keys; EXEC locks for its
        // whole transaction itself.
        "ssubscribe" | "sunsubscribe" | "spublish" | "exec" => LockMode::None,
        "sort" | "sort_ro" => LockMode::Sort,
        "object" | "memory" => LockMode::SubcommandKey,
        _ if c.has_one_key() => LockMode::OneKey { position: c.first_key as usize },
        _ if c.is_keyed() => LockMode::Keys,
        _ => LockMode::None,
    }
}

/// Whether a command needs more than its keys' stripes (a transaction that runs one holds every stripe).
fn needs_every_stripe(spec: &'static CommandSpec) -> bool {
    matches!(INFO.get(spec).lock, LockMode::Walk | LockMode::All | LockMode::Sort | LockMode::SubcommandKey)
}

/// Locks into `db` (unlocked) what a command needs: the stripes of its keys, all of them, or nothing.
/// False when a script became busy while this waited for a stripe it holds (the command is answered
/// `-BUSY`).
#[inline]
fn lock_into<'a>(db: &mut Db<'a>, shared: &Shared, spec: &'static CommandSpec, mode: LockMode, req: &Request) -> bool {
    let give_up = || shared.scripting.is_busy();
    // The common case, one key: no list of keys to build and sort, nothing moved.
    if let LockMode::OneKey { position } = mode {
        if !shared.scripting.is_running() {
            if let Some(key) = req.get(position) {
                return db.acquire_one(key, &give_up);
            }
        }
    }
    lock_keys_into(db, shared, spec, mode, req)
}

/// [`lock_into`] for everything but one key locked outside a script.
fn lock_keys_into<'a>(
    db: &mut Db<'a>,
    shared: &Shared,
    spec: &'static CommandSpec,
    mode: LockMode,
    req: &Request,
) -> bool {
    let store = db.store();
    let give_up = || shared.scripting.is_busy();
    let all = mode == LockMode::All || mode == LockMode::Sort && sort::reads_other_keys(req);
    let hashes: smallvec::SmallVec<[u64; 8]> = match mode {
        _ if all => smallvec::SmallVec::new(),
        LockMode::OneKey { .. } | LockMode::Keys | LockMode::Sort => {
            command::keys(spec, req).iter().map(|&p| store.hash(req.arg(p))).collect()
        }
        LockMode::SubcommandKey => req.get(2).map(|k| store.hash(k)).into_iter().collect(),
        LockMode::None | LockMode::Walk | LockMode::All => return true,
    };
    // A stripe held by a script is waited for in slices, giving up once the script is busy; while a script
    // runs, the wait is announced to the runtime (it may last until the script ends or is killed).
    let locked = if shared.scripting.is_running() {
        crate::scripting::blocking(|| Db::lock_unless(store, &hashes, all, &give_up))
    } else {
        Db::lock_unless(store, &hashes, all, &give_up)
    };
    match locked {
        Some(locked) => {
            *db = if all { locked.pinned() } else { locked };
            true
        }
        None => false,
    }
}

/// Commands a client may run while a script is busy (Redis's `allow_busy` flag).
fn allowed_while_busy(spec: &CommandSpec) -> bool {
    spec.flags.contains(&"allow_busy")
        || matches!(
            spec.name,
            "script" | "auth" | "hello" | "quit" | "reset" | "multi" | "discard" | "watch" | "unwatch"
        )
}

/// Redis's reply to commands sent while the dataset is being loaded.
pub const LOADING_ERROR: &str = "LOADING Ringcache is loading the dataset in memory";

fn handler_for(name: &str) -> Option<Handler> {
    strings::handler(name)
        .or_else(|| bitmaps::handler(name))
        .or_else(|| keys::handler(name))
        .or_else(|| hashes::handler(name))
        .or_else(|| hyperloglog::handler(name))
        .or_else(|| lists::handler(name))
        .or_else(|| sets::handler(name))
        .or_else(|| zsets::handler(name))
        .or_else(|| connection::handler(name))
        .or_else(|| server::handler(name))
        .or_else(|| config::handler(name))
        .or_else(|| memory::handler(name))
        .or_else(|| persistence::handler(name))
        .or_else(|| handoff::handler(name))
        .or_else(|| transactions::handler(name))
        .or_else(|| pubsub::handler(name))
        .or_else(|| scripting::handler(name))
        .or_else(|| blocking::handler(name))
        .or_else(|| dump::handler(name))
        .or_else(|| object::handler(name))
        .or_else(|| sort::handler(name))
}

/// Runs one request and appends its reply to `ctx.out`. `started` is when the request began (for a batch
/// of pipelined requests, when the previous one ended); returns when this one ended, so a batch reads the
/// clock once per command rather than twice.
#[inline(always)]
pub fn execute(ctx: &mut Ctx<'_>, req: &Request, started: Instant) -> Instant {
    crate::events::set_running_client(ctx.client.id);
    let spec = command::lookup(req.name());
    if ctx.client.multi.is_some() && transactions::queued(ctx, spec, req) {
        return started;
    }
    if ctx.client.in_resp2_subscriber_mode() && !spec.is_some_and(pubsub::allowed_while_subscribed) {
        let name = String::from_utf8_lossy(req.name()).to_lowercase();
        ctx.out.error(&format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
        return started;
    }
    let finished = execute_checked(ctx, spec, req, started, true);
    if let Some(tracking) = ctx.client.tracking.as_mut() {
        // CLIENT CACHING yes|no applies to the one command after it.
        if spec.is_none_or(|s| s.name != "client") || !req.get(1).is_some_and(|a| is(a, "CACHING")) {
            tracking.caching_next = None;
        }
    }
    finished
}

/// Runs one command inside a transaction or script: on the stripes `ctx.db` holds (pinned), with every
/// check a command gets on its own.
pub fn execute_inside(ctx: &mut Ctx<'_>, req: &Request) {
    execute_checked(ctx, command::lookup(req.name()), req, Instant::now(), true);
}

/// Why a command may not run on a shard that is leaving the ring (`membership.is_leaving_ring()`).
#[cold]
fn leaving_refusal(spec: &CommandSpec, membership: Membership) -> Option<String> {
    if spec.name == "ping" {
        return Some(DRAINING_ERROR.into());
    }
    let keyed = spec.is_keyed();
    // While leaving, keyed writes are remembered for the second pass; a FLUSHALL could not be.
    let refused = match membership {
        Membership::Leaving => !keyed && spec.is_write(),
        Membership::Draining => spec.is_write(),
        _ => keyed || spec.is_write(),
    };
    refused.then(|| "TRYAGAIN this shard is leaving the ring: its keys are moving to other shards".into())
}

/// Why a keyed command may not run while ranges are guarded for a joining shard: one of its keys lies in
/// such a range (only hinted commands may touch those).
#[cold]
fn guard_refusal(ctx: &Ctx<'_>, spec: &CommandSpec, req: &Request) -> Option<String> {
    command::keys(spec, req).iter().find_map(|&pos| {
        ctx.shared.handoffs.guard_owner(req.arg(pos)).map(|owner| {
            format!("TRYAGAIN this key belongs to shard '{owner}' now: the proxy's ring is out of date, retry")
        })
    })
}

/// The reply to PING while the shard drains: proxies read it as "hand my keys over".
pub const DRAINING_ERROR: &str = "DRAINING ringcache-shard is handing its keys over before it exits";

/// [`execute`], with the ring guard checked or not (a hinted write is exactly what a guard lets through).
#[inline]
fn execute_checked(
    ctx: &mut Ctx<'_>,
    spec: Option<&'static CommandSpec>,
    req: &Request,
    started: Instant,
    guarded: bool,
) -> Instant {
    // Same order of checks as Redis: existence, arity, then authentication.
    let Some((spec, info, handler)) = spec.and_then(|s| {
        let info = INFO.get(s);
        Some((s, info, info.handler?))
    }) else {
        ctx.out.error(&command::unknown_command_message(req));
        return started;
    };
    if let Err(e) = command::check_arity(spec, req) {
        ctx.out.error(&e);
        return started;
    }
    if !ctx.client.authenticated && !info.no_auth {
        ctx.out.error(&CmdError::NoAuth.to_string());
        return started;
    }
    if !ctx.client.conn.user.unrestricted() {
        if let Err(e) = acl_check(ctx, spec, req) {
            ctx.out.error(&e);
            return started;
        }
    }
    let index = spec.index();
    if !info.loading_ok && ctx.shared.persistence.is_loading() {
        ctx.out.error(LOADING_ERROR);
        return started;
    }
    let shared = ctx.shared;
    let aof = ctx.store.aof();
    if info.write && aof.is_some_and(|a| !a.write_ok()) {
        ctx.out.error(&aof.map(|a| a.misconf_error()).unwrap_or_default());
        return started;
    }
    let pinned = ctx.db.is_pinned();
    // While a script runs past its time limit, other clients get BUSY (the script's own calls are pinned).
    if !pinned && shared.scripting.is_busy() && !allowed_while_busy(spec) {
        ctx.out.error(crate::scripting::BUSY_ERROR);
        return started;
    }
    // Inside a transaction or script the stripes are held already; otherwise the command locks its own
    // and releases them when it is done.
    let locked_here = !pinned;
    if locked_here && !lock_into(&mut ctx.db, shared, spec, info.lock, req) {
        ctx.out.error(crate::scripting::BUSY_ERROR);
        return started;
    }
    // A write while leaving runs under the lock that the switch to draining takes, so it is either
    // remembered for the drain's second pass or refused, never lost between the two. The stripes are
    // locked first (a script or transaction takes this lock with its stripes held), and the membership is
    // read with them held, and read again once that lock is held: a drain that starts after this read
    // copies the key only after this write.
    let mut membership = shared.membership();
    let mut written = None;
    if info.write && info.keyed && membership == Membership::Leaving {
        written = Some(shared.written_while_leaving.lock());
        membership = shared.membership();
    }
    let leaving = membership.is_leaving_ring();
    let key_guarded = guarded && info.keyed && shared.handoffs.is_guarded();
    if leaving || key_guarded {
        let refusal = if leaving { leaving_refusal(spec, membership) } else { None };
        if let Some(refusal) = refusal.or_else(|| if key_guarded { guard_refusal(ctx, spec, req) } else { None }) {
            drop(written);
            if locked_here {
                ctx.db.release();
            }
            ctx.out.error(&refusal);
            return started;
        }
    }
    let result = handler(ctx, req);
    match result {
        Ok(()) => {
            if info.write {
                metrics::add_hot(HotCounter::Writes, 1);
                if aof.is_some() && spec.is_keyed() {
                    for pos in command::keys(spec, req) {
                        let key = req.arg(pos);
                        crate::aof::touch(ctx.db.hash(key), key);
                    }
                }
                // Keys this write may have given something to pop, for the clients blocked on them (a
                // blocking command that is now waiting wrote nothing).
                if shared.blocking.any() && !matches!(ctx.deferred, Some(Deferred::Blocked { .. })) {
                    for pos in command::keys(spec, req) {
                        if shared.blocking.is_watched(req.arg(pos)) {
                            ctx.ready_keys.push(bytes::Bytes::copy_from_slice(req.arg(pos)));
                        }
                    }
                }
            } else if ctx.client.tracking.is_some() {
                tracking::after_read(ctx, spec, req);
            }
            if let Some(written) = written.as_mut() {
                for pos in command::keys(spec, req) {
                    written.keys.insert(bytes::Bytes::copy_from_slice(req.arg(pos)));
                }
            }
        }
        Err(e) => ctx.out.error(&e.to_string()),
    }
    drop(written);
    if locked_here {
        // Blocked clients are served before the stripes are let go: nobody can take what they wait for
        // first (inside a transaction or script, once it ends).
        if !ctx.ready_keys.is_empty() {
            let keys = std::mem::take(&mut ctx.ready_keys);
            blocking::serve_blocked(ctx, &keys);
        }
        // What the command (transaction, script) wrote is logged before its stripes are let go.
        if let Some(aof) = aof {
            aof.emit(&ctx.db, ctx.now_ms);
        }
        ctx.db.release();
    }
    let finished = Instant::now();
    let elapsed = finished.saturating_duration_since(started);
    metrics::record_command(index, elapsed);
    if shared.diagnostics.is_notable(elapsed) {
        let info = ctx.client.conn.info.lock();
        let (peer, name) = (info.addr.to_string(), info.name.clone());
        drop(info);
        shared.diagnostics.record(elapsed, req.args_from(0), &peer, &name);
    }
    finished
}

/// The ACL check of a restricted user's request (logged in ACL LOG when refused).
#[cold]
pub(super) fn acl_check(ctx: &Ctx<'_>, spec: &'static CommandSpec, req: &Request) -> Result<(), String> {
    use ringcache_common::acl::Context;
    let context = if ctx.shared.scripting.is_running() && ctx.db.is_pinned() && ctx.client.multi.is_none() {
        Context::Lua
    } else if ctx.db.is_pinned() || ctx.client.multi.is_some() {
        Context::Multi
    } else {
        Context::Toplevel
    };
    let conn = &ctx.client.conn;
    ctx.shared.config.acl.check_and_log(&conn.user, spec, req, context, || conn.client_info())
}

/// Forgets everything a connection holds beyond itself: its transaction and watches, subscriptions,
/// tracking and push queue (RESET, and when it closes).
pub fn forget_client(shared: &Shared, client: &mut ClientState) {
    transactions::clear(shared, client);
    pubsub::forget(shared, client);
    tracking::stop(shared, client);
    if client.pusher.take().is_some() {
        shared.pushers.remove(&client.id);
        client.pushes = None;
    }
}

/// Parses an integer the way Redis's `string2ll` does (optional `-`, digits, no spaces, no `+`, no leading
/// zeros, within i64).
pub fn parse_i64(s: &[u8]) -> Result<i64, CmdError> {
    ringcache_common::connection::parse_integer(s).ok_or(CmdError::NotInteger)
}

/// Parses a float the way Redis's `string2ld` does: no spaces, `inf`/`-inf` allowed, NaN refused.
pub fn parse_f64(s: &[u8]) -> Result<f64, CmdError> {
    let text = std::str::from_utf8(s).map_err(|_| CmdError::NotFloat)?;
    if text.is_empty() || text.starts_with(|c: char| c.is_whitespace()) || text.ends_with(|c: char| c.is_whitespace()) {
        return Err(CmdError::NotFloat);
    }
    let v: f64 = text.parse().map_err(|_| CmdError::NotFloat)?;
    if v.is_nan() {
        return Err(CmdError::NotFloat);
    }
    Ok(v)
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_in_the_table_has_a_handler() {
        for c in command::COMMANDS.iter() {
            assert!(handler_for(c.name).is_some(), "no handler for {}", c.name);
        }
    }

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_i64(b"42"), Ok(42));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        for bad in [&b""[..], b"+1", b" 1", b"1 ", b"01", b"-0", b"9223372036854775808", b"1e3", b"-"] {
            assert_eq!(parse_i64(bad), Err(CmdError::NotInteger), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_i64(b"0"), Ok(0));
    }

    #[test]
    fn floats_parse_like_redis() {
        assert_eq!(parse_f64(b"1.5"), Ok(1.5));
        assert_eq!(parse_f64(b"-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1e3"), Ok(1000.0));
        for bad in [&b"nan"[..], b" 1", b"abc", b""] {
            assert_eq!(parse_f64(bad), Err(CmdError::NotFloat));
        }
    }
}
