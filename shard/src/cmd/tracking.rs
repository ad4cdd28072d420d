//! Client-side caching: CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO, and the
//! keys a tracking client reads.
//!
//! The tables and the invalidations live in [`crate::events::KeyEvents`]; the options are parsed and
//! checked by `ringcache_common::tracking` (Redis 7's options and error texts, shared with the proxy);
//! this file applies them and, after each read-only command of a tracking client in default mode, records
//! the command's keys (respecting OPTIN/OPTOUT and CLIENT CACHING).

use ringcache_common::command::CommandSpec;
use ringcache_common::resp::{ReplyWriter, Request};
use ringcache_common::tracking::{self as options, TrackingChange};

use super::pubsub::ensure_push_queue;
use super::{is, CmdError, CmdResult, Ctx};
use crate::client::ClientState;
use crate::server::Shared;

/// CLIENT subcommands about tracking; `None` for the others (answered by `common::connection`).
pub(super) fn client_subcommand(ctx: &mut Ctx<'_>, req: &Request) -> Option<CmdResult> {
    let sub = req.get(1)?;
    let arity = |ok: bool| if ok { Ok(()) } else { Err(CmdError::Other(options::arity_error(req))) };
    Some(if is(sub, "TRACKING") {
        tracking(ctx, req)
    } else if is(sub, "CACHING") {
        options::caching(req, ctx.client.tracking.as_mut()).map_err(CmdError::Other).map(|()| ctx.out.ok())
    } else if is(sub, "GETREDIR") {
        arity(req.argc() == 2).map(|()| {
            let redirect = ctx.client.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
            ctx.out.integer(redirect);
        })
    } else if is(sub, "TRACKINGINFO") {
        arity(req.argc() == 2).map(|()| {
            let t = ctx.client.tracking.as_ref();
            let broken = t.is_some_and(|t| t.redirect != 0 && !ctx.shared.clients.contains_key(&t.redirect));
            options::write_trackinginfo(t, broken, ctx.out);
        })
    } else {
        return None;
    })
}

fn tracking(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let clients = &ctx.shared.clients;
    let change = options::parse_tracking(req, ctx.client.tracking.as_ref(), |id| clients.contains_key(&id))
        .map_err(CmdError::Other)?;
    let shared = ctx.shared;
    let t = match change {
        TrackingChange::Off => {
            stop(shared, ctx.client);
            ctx.out.ok();
            return Ok(());
        }
        TrackingChange::On(t) => t,
    };
    // Invalidations go to the redirect target (looked up when each is sent: it may subscribe to
    // `__redis__:invalidate` after this), or to this connection's own push queue.
    let target = if t.redirect != 0 {
        t.redirect
    } else {
        ensure_push_queue(shared, ctx.client);
        ctx.client.id
    };
    let bcast = t.bcast.then(|| t.prefixes.clone());
    shared.events.track(shared.store.hooks(), ctx.client.id, target, t.noloop, bcast);
    ctx.client.tracking = Some(t);
    ctx.out.ok();
    Ok(())
}

/// After a read-only command of a tracking client: remember its keys (see `remembers_keys`).
pub(super) fn after_read(ctx: &mut Ctx<'_>, spec: &CommandSpec, req: &Request) {
    let Some(t) = &ctx.client.tracking else { return };
    let keys = options::keys_read(t, spec, req);
    if keys.is_empty() {
        return;
    }
    ctx.shared.events.read_by(ctx.client.id, keys.into_iter().map(Box::from));
}

/// Turns tracking off for a connection (CLIENT TRACKING OFF, RESET, disconnect).
pub fn stop(shared: &Shared, client: &mut ClientState) {
    if client.tracking.take().is_some() {
        shared.events.untrack(shared.store.hooks(), client.id);
    }
}
