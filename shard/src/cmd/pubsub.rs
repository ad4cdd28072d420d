//! Pub/sub commands: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE SSUBSCRIBE SUNSUBSCRIBE PUBLISH SPUBLISH
//! PUBSUB (CHANNELS NUMSUB NUMPAT SHARDCHANNELS SHARDNUMSUB HELP).
//!
//! A subscription needs the connection's push queue ([`crate::client`]), made on the first SUBSCRIBE; the
//! messages are delivered by [`crate::pubsub::PubSub`]. The confirmations are written as replies, in the
//! connection's protocol (a push frame in RESP3, an array in RESP2), one per channel as Redis does. In
//! RESP2 a subscribed connection may only (un)subscribe, PING, QUIT and RESET (checked in `cmd::execute`);
//! in RESP3 it may run any command.

use bytes::Bytes;
use ringcache_common::resp::{ReplyWriter, Request};

use super::{is, CmdError, CmdResult, Ctx, Handler};
use crate::client::{push_queue, ClientState};
use crate::pubsub::Kind;
use crate::server::Shared;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "subscribe" => |ctx, req| subscribe(ctx, req, Kind::Channel),
        "psubscribe" => |ctx, req| subscribe(ctx, req, Kind::Pattern),
        "ssubscribe" => |ctx, req| subscribe(ctx, req, Kind::Shard),
        "unsubscribe" => |ctx, req| unsubscribe(ctx, req, Kind::Channel),
        "punsubscribe" => |ctx, req| unsubscribe(ctx, req, Kind::Pattern),
        "sunsubscribe" => |ctx, req| unsubscribe(ctx, req, Kind::Shard),
        "publish" => |ctx, req| publish(ctx, req, false),
        "spublish" => |ctx, req| publish(ctx, req, true),
        "pubsub" => pubsub,
        _ => return None,
    })
}

pub use ringcache_common::command::allowed_while_subscribed;

fn names(kind: Kind) -> (&'static [u8], &'static [u8]) {
    match kind {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

fn set_of(client: &mut ClientState, kind: Kind) -> &mut std::collections::HashSet<Bytes> {
    match kind {
        Kind::Channel => &mut client.subs.channels,
        Kind::Pattern => &mut client.subs.patterns,
        Kind::Shard => &mut client.subs.shard_channels,
    }
}

/// The count a confirmation carries: channels and patterns together, shard channels on their own.
fn count(client: &ClientState, kind: Kind) -> usize {
    match kind {
        Kind::Shard => client.subs.shard_channels.len(),
        _ => client.subs.channels.len() + client.subs.patterns.len(),
    }
}

/// The connection's push queue, made (and registered for REDIRECT) on first need.
pub(super) fn ensure_push_queue(shared: &Shared, client: &mut ClientState) -> crate::client::PushSender {
    if let Some(p) = &client.pusher {
        return p.clone();
    }
    let (tx, rx) = push_queue(client.id, client.proto, shared.config.state.pubsub_output);
    shared.pushers.insert(client.id, tx.clone());
    client.pusher = Some(tx.clone());
    client.pushes = Some(rx);
    tx
}

fn confirm(ctx: &mut Ctx<'_>, verb: &[u8], name: Option<&[u8]>, n: usize) {
    ctx.out.push_len(3);
    ctx.out.bulk(verb);
    match name {
        Some(name) => ctx.out.bulk(name),
        None => ctx.out.null(),
    }
    ctx.out.integer(n as i64);
}

fn subscribe(ctx: &mut Ctx<'_>, req: &Request, kind: Kind) -> CmdResult {
    let max = ctx.shared.config.state.max_subscriptions;
    let new = req.args_from(1).filter(|n| !set_of(ctx.client, kind).contains(*n)).count();
    if ctx.client.subs.count() + new > max {
        return Err(CmdError::Other(format!(
            "ERR too many subscriptions for this client (max-subscriptions is {max})"
        )));
    }
    let pusher = ensure_push_queue(ctx.shared, ctx.client);
    let (verb, _) = names(kind);
    for name in req.args_from(1) {
        let name = Bytes::copy_from_slice(name);
        if set_of(ctx.client, kind).insert(name.clone()) {
            ctx.shared.pubsub.subscribe(kind, name.clone(), &pusher);
        }
        let n = count(ctx.client, kind);
        confirm(ctx, verb, Some(&name), n);
    }
    Ok(())
}

fn unsubscribe(ctx: &mut Ctx<'_>, req: &Request, kind: Kind) -> CmdResult {
    let (_, verb) = names(kind);
    let names: Vec<Bytes> = if req.argc() > 1 {
        req.args_from(1).map(Bytes::copy_from_slice).collect()
    } else {
        set_of(ctx.client, kind).iter().cloned().collect()
    };
    if names.is_empty() {
        let n = count(ctx.client, kind);
        confirm(ctx, verb, None, n);
        return Ok(());
    }
    for name in names {
        if set_of(ctx.client, kind).remove(&name) {
            ctx.shared.pubsub.unsubscribe(kind, &name, ctx.client.id);
        }
        let n = count(ctx.client, kind);
        confirm(ctx, verb, Some(&name), n);
    }
    Ok(())
}

/// Drops every subscription of a connection (RESET, disconnect).
pub fn forget(shared: &Shared, client: &mut ClientState) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in std::mem::take(set_of(client, kind)) {
            shared.pubsub.unsubscribe(kind, &name, client.id);
        }
    }
}

fn publish(ctx: &mut Ctx<'_>, req: &Request, shard: bool) -> CmdResult {
    let n = ctx.shared.pubsub.publish(req.arg(1), req.arg(2), shard);
    ctx.out.integer(n as i64);
    Ok(())
}

const PUBSUB_HELP: [&str; 14] = [
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn pubsub(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    let argc = req.argc();
    let arity_error = || {
        CmdError::Other(format!(
            "ERR wrong number of arguments for 'pubsub|{}' command",
            String::from_utf8_lossy(sub).to_lowercase()
        ))
    };
    let ps = &ctx.shared.pubsub;
    if is(sub, "CHANNELS") || is(sub, "SHARDCHANNELS") {
        if argc > 3 {
            return Err(arity_error());
        }
        let channels = ps.channels(req.get(2), is(sub, "SHARDCHANNELS"));
        ctx.out.array_len(channels.len());
        for c in &channels {
            ctx.out.bulk(c);
        }
    } else if is(sub, "NUMSUB") || is(sub, "SHARDNUMSUB") {
        let shard = is(sub, "SHARDNUMSUB");
        ctx.out.array_len((argc - 2) * 2);
        for channel in req.args_from(2) {
            ctx.out.bulk(channel);
            ctx.out.integer(ps.subscribers(channel, shard) as i64);
        }
    } else if is(sub, "NUMPAT") {
        if argc != 2 {
            return Err(arity_error());
        }
        ctx.out.integer(ps.patterns() as i64);
    } else if is(sub, "HELP") {
        ctx.out.array_len(PUBSUB_HELP.len());
        for line in PUBSUB_HELP {
            ctx.out.simple(line);
        }
    } else {
        return Err(CmdError::UnknownSubcommand {
            cmd: "PUBSUB".into(),
            sub: String::from_utf8_lossy(sub).into_owned(),
        });
    }
    Ok(())
}
