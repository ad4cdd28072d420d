//! Client-side caching: CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR, CLIENT TRACKINGINFO, and the
//! keys a tracking client reads.
//!
//! The tables and the invalidations live in [`crate::events::KeyEvents`]; this file parses the commands
//! (Redis 7's options and error texts) and, after each read-only command of a tracking client in default
//! mode, records the command's keys (respecting OPTIN/OPTOUT and CLIENT CACHING).

use bytes::Bytes;
use ringcache_common::command::{self, CommandSpec};
use ringcache_common::resp::{ReplyWriter, Request};

use super::pubsub::ensure_push_queue;
use super::{is, parse_i64, CmdError, CmdResult, Ctx};
use crate::client::{ClientState, Tracking};
use crate::server::Shared;

fn err(text: &str) -> CmdError {
    CmdError::Other(format!("ERR {text}"))
}

fn arity(req: &Request, ok: bool) -> CmdResult {
    if ok {
        Ok(())
    } else {
        Err(CmdError::WrongArity(format!("client|{}", String::from_utf8_lossy(req.arg(1)).to_lowercase())))
    }
}

/// CLIENT subcommands about tracking; `None` for the others (answered by `common::connection`).
pub(super) fn client_subcommand(ctx: &mut Ctx<'_>, req: &Request) -> Option<CmdResult> {
    let sub = req.get(1)?;
    Some(if is(sub, "TRACKING") {
        tracking(ctx, req)
    } else if is(sub, "CACHING") {
        caching(ctx, req)
    } else if is(sub, "GETREDIR") {
        arity(req, req.argc() == 2).map(|()| {
            let redirect = ctx.client.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
            ctx.out.integer(redirect);
        })
    } else if is(sub, "TRACKINGINFO") {
        arity(req, req.argc() == 2).map(|()| trackinginfo(ctx))
    } else {
        return None;
    })
}

fn tracking(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    arity(req, req.argc() >= 3)?;
    let on = if is(req.arg(2), "ON") {
        true
    } else if is(req.arg(2), "OFF") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let mut t = Tracking::default();
    let mut i = 3;
    while i < req.argc() {
        let opt = req.arg(i);
        let more = i + 1 < req.argc();
        if is(opt, "REDIRECT") && more {
            i += 1;
            if t.redirect != 0 {
                return Err(err("A client can only redirect to a single other client"));
            }
            let id = parse_i64(req.arg(i))?;
            if id <= 0 || !ctx.shared.clients.contains_key(&(id as u64)) {
                return Err(err("The client ID you want redirect to does not exist"));
            }
            t.redirect = id as u64;
        } else if is(opt, "BCAST") {
            t.bcast = true;
        } else if is(opt, "OPTIN") {
            t.optin = true;
        } else if is(opt, "OPTOUT") {
            t.optout = true;
        } else if is(opt, "NOLOOP") {
            t.noloop = true;
        } else if is(opt, "PREFIX") && more {
            i += 1;
            t.prefixes.push(Bytes::copy_from_slice(req.arg(i)));
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let shared = ctx.shared;
    if !on {
        stop(shared, ctx.client);
        ctx.out.ok();
        return Ok(());
    }
    if let Some(current) = &ctx.client.tracking {
        if current.bcast != t.bcast {
            return Err(err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
        if (current.optin, current.optout) != (t.optin, t.optout) {
            return Err(err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
    }
    if !t.bcast && !t.prefixes.is_empty() {
        return Err(err("PREFIX option requires BCAST mode to be enabled"));
    }
    if t.optin && t.optout {
        return Err(err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if t.bcast && (t.optin || t.optout) {
        return Err(err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    // Prefixes accumulate over successive TRACKING ON calls, and may not overlap.
    let mut prefixes = ctx.client.tracking.as_ref().map(|c| c.prefixes.clone()).unwrap_or_default();
    for p in &t.prefixes {
        if let Some(other) = prefixes.iter().find(|o| o != &p && (o.starts_with(p) || p.starts_with(o))) {
            return Err(err(&format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(other)
            )));
        }
        if !prefixes.contains(p) {
            prefixes.push(p.clone());
        }
    }
    t.prefixes = prefixes;
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

fn caching(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    arity(req, req.argc() == 3)?;
    let yes = if is(req.arg(2), "YES") {
        true
    } else if is(req.arg(2), "NO") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(t) = ctx.client.tracking.as_mut().filter(|t| t.optin || t.optout) else {
        return Err(err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if (t.optin && !yes) || (t.optout && yes) {
        return Err(err(if t.optin {
            "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
        } else {
            "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
        }));
    }
    t.caching_next = Some(yes);
    ctx.out.ok();
    Ok(())
}

fn trackinginfo(ctx: &mut Ctx<'_>) {
    let t = ctx.client.tracking.clone();
    let mut flags: Vec<&str> = Vec::new();
    match &t {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            for (set, name) in [(t.bcast, "bcast"), (t.optin, "optin"), (t.optout, "optout")] {
                if set {
                    flags.push(name);
                }
            }
            match t.caching_next {
                Some(true) => flags.push("caching-yes"),
                Some(false) => flags.push("caching-no"),
                None => {}
            }
            if t.noloop {
                flags.push("noloop");
            }
            if t.redirect != 0 && !ctx.shared.clients.contains_key(&t.redirect) {
                flags.push("broken_redirect");
            }
        }
    }
    ctx.out.map_len(3);
    ctx.out.bulk(b"flags");
    ctx.out.set_len(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"redirect");
    ctx.out.integer(t.as_ref().map_or(-1, |t| t.redirect as i64));
    ctx.out.bulk(b"prefixes");
    let prefixes = t.map(|t| t.prefixes).unwrap_or_default();
    ctx.out.array_len(prefixes.len());
    for p in &prefixes {
        ctx.out.bulk(p);
    }
}

/// After a read-only command of a tracking client: remember its keys, unless BCAST (which tracks by
/// prefix) or OPTIN without CACHING YES, or OPTOUT with CACHING NO.
pub(super) fn after_read(ctx: &mut Ctx<'_>, spec: &CommandSpec, req: &Request) {
    let Some(t) = &ctx.client.tracking else { return };
    if t.bcast || spec.first_key == 0 && !spec.flags.contains(&"movablekeys") {
        return;
    }
    let wanted = if t.optin {
        t.caching_next == Some(true)
    } else if t.optout {
        t.caching_next != Some(false)
    } else {
        true
    };
    if !wanted {
        return;
    }
    let keys = command::keys(spec, req);
    if keys.is_empty() {
        return;
    }
    ctx.shared.events.read_by(ctx.client.id, keys.iter().map(|&p| Box::from(req.arg(p))));
}

/// Turns tracking off for a connection (CLIENT TRACKING OFF, RESET, disconnect).
pub fn stop(shared: &Shared, client: &mut ClientState) {
    if client.tracking.take().is_some() {
        shared.events.untrack(shared.store.hooks(), client.id);
    }
}
