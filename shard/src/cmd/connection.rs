//! Connection commands (PING ECHO QUIT AUTH HELLO SELECT CLIENT RESET TIME): answered by the shared
//! implementation in `ringcache_common::connection`, over this shard's client state.

use std::time::Instant;

use ringcache_common::connection::{self, ClientSession};
use ringcache_common::resp::Request;

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::server::{ClientState, Shared};

pub(super) fn handler(name: &str) -> Option<Handler> {
    connection::is_connection_command(name).then_some(run as Handler)
}

fn run(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let name = String::from_utf8_lossy(req.name()).to_ascii_lowercase();
    let requirepass = ctx.shared.config.requirepass.as_deref();
    let mut session = ShardSession { client: ctx.client, shared: ctx.shared };
    connection::execute(&name, req, &mut session, requirepass, ctx.out).map_err(CmdError::Other)
}

/// This shard's view of a client, for the shared connection commands.
struct ShardSession<'a> {
    client: &'a mut ClientState,
    shared: &'a Shared,
}

impl ClientSession for ShardSession<'_> {
    fn id(&self) -> u64 {
        self.client.id
    }
    fn authenticated(&self) -> bool {
        self.client.authenticated
    }
    fn set_authenticated(&mut self, yes: bool) {
        self.client.authenticated = yes;
    }
    fn name(&self) -> Option<String> {
        self.client.name()
    }
    fn set_name(&mut self, name: String) {
        self.client.set_name(name);
    }
    fn set_lib_info(&mut self, lib_name: Option<String>, lib_ver: Option<String>) {
        let mut info = self.client.info.lock();
        if let Some(n) = lib_name {
            info.lib_name = n;
        }
        if let Some(v) = lib_ver {
            info.lib_ver = v;
        }
    }
    fn close_after_reply(&mut self) {
        self.client.close_after_reply = true;
    }
    fn client_list(&self) -> String {
        let now = Instant::now();
        self.shared.clients.iter().map(|e| format!("{}\n", e.value().lock().describe(*e.key(), now))).collect()
    }
    fn client_info(&self) -> String {
        format!("{}\n", self.client.info.lock().describe(self.client.id, Instant::now()))
    }
}
