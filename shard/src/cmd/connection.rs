//! Connection commands (PING ECHO QUIT AUTH HELLO SELECT CLIENT RESET TIME): answered by the shared
//! implementation in `ringcache_common::connection`, which the proxy uses too.

use ringcache_common::connection;
use ringcache_common::resp::Request;

use super::{CmdError, CmdResult, Ctx, Handler};

pub(super) fn handler(name: &str) -> Option<Handler> {
    connection::is_connection_command(name).then_some(run as Handler)
}

fn run(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let name = String::from_utf8_lossy(req.name()).to_ascii_lowercase();
    let requirepass = ctx.shared.config.requirepass.as_deref();
    connection::execute(&name, req, ctx.client, &ctx.shared.clients, requirepass, ctx.out).map_err(CmdError::Other)
}
