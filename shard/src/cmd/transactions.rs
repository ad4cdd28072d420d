//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH, as Redis 7.
//!
//! - Between MULTI and EXEC a connection's commands are checked (existence, arity, authentication,
//!   commands not allowed in a transaction, the queue's limits) and queued, answered `+QUEUED`; one that
//!   fails a check is answered with its error and marks the transaction aborted: EXEC then answers
//!   `-EXECABORT` and runs none of it.
//! - EXEC locks, in index order, the stripes of every key the queued commands and the watched keys name
//!   (every stripe if a command walks the keyspace), then checks the watches and runs the commands one
//!   after another on those stripes: no other client's command sees the transaction half done. A runtime
//!   error in one command is its reply; the others still run.
//! - WATCH registers the keys with [`crate::events::KeyEvents`], which marks the connection dirty on any
//!   change to them — writes from any client, expiry, eviction, FLUSHALL — through the store's one hook.
//!   Keys already expired when watched are removed first, so only a change after WATCH counts.

use std::sync::atomic::Ordering;

use ringcache_common::command::{self, CommandSpec};
use ringcache_common::resp::{ReplyWriter, Request};

use super::{execute_inside, needs_every_stripe, CmdError, CmdResult, Ctx, Handler, INFO};
use crate::client::{Multi, Watch};
use crate::store::Db;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "multi" => multi,
        "exec" => exec,
        "discard" => discard,
        "watch" => watch,
        "unwatch" => unwatch,
        _ => return None,
    })
}

/// Commands that run at once even inside MULTI.
fn runs_immediately(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Commands that may not be queued (Redis's `no_multi` flag).
fn not_allowed_in_multi(spec: &CommandSpec) -> bool {
    spec.flags.contains(&"no_multi") || matches!(spec.name, "save" | "shutdown" | "sync" | "psync" | "monitor")
}

/// Inside MULTI: queues the request (or refuses it, aborting the transaction) and returns true; returns
/// false for the commands that run at once (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
pub(super) fn queued(ctx: &mut Ctx<'_>, spec: Option<&'static CommandSpec>, req: &Request) -> bool {
    if spec.is_some_and(|s| runs_immediately(s.name)) {
        return false;
    }
    let refusal = match spec.filter(|s| INFO.get(s).handler.is_some()) {
        None => Some(command::unknown_command_message(req)),
        Some(s) if !s.arity_ok(req.argc()) => Some(CmdError::WrongArity(s.name.to_string()).to_string()),
        Some(s) if !ctx.client.authenticated && !INFO.get(s).no_auth => Some(CmdError::NoAuth.to_string()),
        Some(s) if not_allowed_in_multi(s) => Some("ERR Command not allowed inside a transaction".to_string()),
        Some(s) if !ctx.client.conn.user.unrestricted() => super::acl_check(ctx, s, req).err(),
        Some(_) => None,
    };
    let limits = ctx.shared.config.state;
    let Some(multi) = ctx.client.multi.as_mut() else { return false };
    let size: usize = req.args_from(0).map(<[u8]>::len).sum();
    let refusal = refusal.or_else(|| {
        (multi.queued.len() >= limits.multi_max_commands || multi.queued_bytes + size > limits.multi_max_bytes).then(
            || {
                format!(
                    "ERR Transaction too large: at most {} commands and {} bytes may be queued (multi-max-commands, \
                     multi-max-bytes)",
                    limits.multi_max_commands, limits.multi_max_bytes
                )
            },
        )
    });
    match refusal {
        Some(error) => {
            multi.aborted = true;
            ctx.out.error(&error);
        }
        None => {
            multi.queued.push(req.clone());
            multi.queued_bytes += size;
            ctx.out.simple("QUEUED");
        }
    }
    true
}

fn multi(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::Other("ERR MULTI calls can not be nested".into()));
    }
    ctx.client.multi = Some(Multi::default());
    ctx.out.ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::Other("ERR DISCARD without MULTI".into()));
    }
    forget_watches(ctx);
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::Other("ERR WATCH inside MULTI is not allowed".into()));
    }
    // A key that is already expired is removed now (its stripe is held), so that only later changes count.
    for key in req.args_from(1) {
        let h = ctx.db.hash(key);
        ctx.db.stripe(h)?.remove_if_expired(h, key, ctx.now_ms);
    }
    let shared = ctx.shared;
    let watch = ctx.client.watch.get_or_insert_with(Watch::default);
    let new: Vec<Box<[u8]>> =
        req.args_from(1).filter(|k| !watch.keys.iter().any(|w| &w[..] == *k)).map(Box::from).collect();
    shared.events.watch(shared.store.hooks(), &new, &watch.dirty);
    watch.keys.extend(new);
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    forget_watches(ctx);
    ctx.out.ok();
    Ok(())
}

/// Drops the connection's watches (UNWATCH, EXEC, DISCARD).
fn forget_watches(ctx: &mut Ctx<'_>) {
    if let Some(watch) = ctx.client.watch.take() {
        ctx.shared.events.unwatch(ctx.shared.store.hooks(), &watch.keys, &watch.dirty);
    }
}

fn exec(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    let Some(multi) = ctx.client.multi.take() else {
        return Err(CmdError::Other("ERR EXEC without MULTI".into()));
    };
    let watch = ctx.client.watch.take();
    let result = run_transaction(ctx, multi, watch.as_ref());
    if let Some(watch) = watch {
        ctx.shared.events.unwatch(ctx.shared.store.hooks(), &watch.keys, &watch.dirty);
    }
    result
}

fn run_transaction(ctx: &mut Ctx<'_>, multi: Multi, watch: Option<&Watch>) -> CmdResult {
    if multi.aborted {
        return Err(CmdError::Other("EXECABORT Transaction discarded because of previous errors.".into()));
    }
    let store = ctx.store;
    let specs: Vec<Option<&'static CommandSpec>> = multi.queued.iter().map(|r| command::lookup(r.name())).collect();
    let all = specs.iter().flatten().any(|s| needs_every_stripe(s));
    let mut hashes: Vec<u64> = Vec::new();
    if !all {
        for (req, spec) in multi.queued.iter().zip(&specs) {
            if let Some(spec) = spec {
                hashes.extend(command::keys(spec, req).iter().map(|&p| store.hash(req.arg(p))));
            }
        }
        if let Some(watch) = watch {
            hashes.extend(watch.keys.iter().map(|k| store.hash(k)));
        }
    }
    let scripting = &ctx.shared.scripting;
    let give_up = || scripting.is_busy();
    let locked = if scripting.is_running() {
        crate::scripting::blocking(|| Db::lock_unless(store, &hashes, all, &give_up))
    } else {
        Db::lock_unless(store, &hashes, all, &give_up)
    };
    // A busy script holds the stripes: EXEC is refused, and (as in Redis) the transaction is spoilt.
    let Some(db) = locked else {
        ctx.client.multi = Some(Multi { aborted: true, ..multi });
        return Err(CmdError::Other(crate::scripting::BUSY_ERROR.into()));
    };
    let outer = std::mem::replace(&mut ctx.db, db.pinned());
    let result = run_locked(ctx, &multi, watch);
    // The whole transaction is one frame of the log, written with its stripes still held.
    if let Some(aof) = store.aof() {
        aof.emit(&ctx.db, ctx.now_ms);
    }
    ctx.db = outer;
    result
}

/// With the transaction's stripes held: the watch check, then every queued command.
fn run_locked(ctx: &mut Ctx<'_>, multi: &Multi, watch: Option<&Watch>) -> CmdResult {
    if let Some(watch) = watch {
        // A watched key whose TTL ran out since WATCH counts as changed: removing it now tells the hook.
        for key in &watch.keys {
            let h = ctx.db.hash(key);
            ctx.db.stripe(h)?.remove_if_expired(h, key, ctx.now_ms);
        }
        if watch.dirty.load(Ordering::Acquire) {
            ctx.out.null_array();
            return Ok(());
        }
    }
    ctx.out.array_len(multi.queued.len());
    for req in &multi.queued {
        execute_inside(ctx, req);
    }
    // Clients blocked on keys the transaction wrote are served now that it is whole, its stripes held.
    if !ctx.ready_keys.is_empty() {
        let keys = std::mem::take(&mut ctx.ready_keys);
        super::blocking::serve_blocked(ctx, &keys);
    }
    Ok(())
}

/// Forgets a connection's transaction state (RESET, disconnect).
pub fn clear(shared: &crate::server::Shared, client: &mut crate::client::ClientState) {
    client.multi = None;
    if let Some(watch) = client.watch.take() {
        shared.events.unwatch(shared.store.hooks(), &watch.keys, &watch.dirty);
    }
}
