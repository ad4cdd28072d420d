//! Connection commands (PING ECHO QUIT AUTH HELLO SELECT CLIENT RESET TIME): answered by the shared
//! implementation in `ringcache_common::connection`, which the proxy uses too.

use ringcache_common::resp::Request;
use ringcache_common::{command, connection};

use super::{CmdError, CmdResult, Ctx, Handler};

pub(super) fn handler(name: &str) -> Option<Handler> {
    connection::is_connection_command(name).then_some(run as Handler)
}

fn run(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    // The dispatcher found this command in the table, so the lookup succeeds; it yields the static
    // lower-case name without allocating (PING is on redis-benchmark's hot path).
    let name = command::lookup(req.name()).map_or("", |spec| spec.name);
    let requirepass = ctx.shared.config.requirepass.as_deref();
    connection::execute(name, req, ctx.client, &ctx.shared.clients, requirepass, ctx.out).map_err(CmdError::Other)
}
