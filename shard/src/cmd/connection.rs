//! Connection commands (PING ECHO QUIT AUTH HELLO SELECT CLIENT RESET TIME): answered by the shared
//! implementation in `ringcache_common::connection`, which the proxy uses too.

use ringcache_common::resp::{ReplyWriter, Request};
use ringcache_common::{command, connection};

use super::{CmdError, CmdResult, Ctx, Handler};

pub(super) fn handler(name: &str) -> Option<Handler> {
    connection::is_connection_command(name).then_some(run as Handler)
}

fn run(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    // The dispatcher found this command in the table, so the lookup succeeds; it yields the static
    // lower-case name without allocating (PING is on redis-benchmark's hot path).
    let name = command::lookup(req.name()).map_or("", |spec| spec.name);
    match name {
        // A RESP2 subscriber's PING is answered in the shape of a message.
        "ping" if ctx.client.in_resp2_subscriber_mode() && req.argc() <= 2 => {
            ctx.out.array_len(2);
            ctx.out.bulk(b"pong");
            ctx.out.bulk(req.get(1).unwrap_or_default());
            return Ok(());
        }
        "client" => {
            if req.get(1).is_some_and(|s| super::is(s, "UNBLOCK")) {
                return unblock(ctx, req);
            }
            if let Some(result) = super::tracking::client_subcommand(ctx, req) {
                return result;
            }
        }
        // RESET also ends the connection's transaction, watches, subscriptions and tracking.
        "reset" => super::forget_client(ctx.shared, ctx.client),
        _ => {}
    }
    connection::execute(name, req, &mut ctx.client.conn, &ctx.shared.clients, &ctx.shared.config.acl, ctx.out)
        .map_err(CmdError::Other)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking command, as at its timeout or with an
/// `-UNBLOCKED` error. Replies 1 if that client was blocked.
fn unblock(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if !(3..=4).contains(&req.argc()) {
        return Err(CmdError::WrongArity("client|unblock".into()));
    }
    let id = super::parse_i64(req.arg(2))?;
    let error = match req.get(3) {
        None => false,
        Some(mode) if super::is(mode, "TIMEOUT") => false,
        Some(mode) if super::is(mode, "ERROR") => true,
        Some(_) => return Err(CmdError::Other("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())),
    };
    let unblocked = u64::try_from(id).is_ok_and(|id| ctx.shared.blocking.unblock_client(id, error));
    ctx.out.integer(i64::from(unblocked));
    Ok(())
}
