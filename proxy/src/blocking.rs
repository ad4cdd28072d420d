//! Blocking commands through the proxy (BLPOP BRPOP BRPOPLPUSH BLMOVE BLMPOP BZPOPMIN BZPOPMAX BZMPOP).
//!
//! A blocked command would hold up every request queued behind it on a shared, pipelined shard connection,
//! so each one goes to its keys' shard on a connection of its own: taken from a small pool kept per worker
//! thread, shard and protocol (the client's, so the reply is forwarded untouched), or opened for it, and
//! given back to the pool once the reply is read. The shard does the waiting and the timeout, exactly as it
//! does for a client of its own. If the client goes away while blocked, its session drops the request's
//! future, which closes that connection: the shard sees the disconnection and forgets the blocked client.
//!
//! Every key must be on one shard (a `{hash tag}`), else `CROSSSLOT`. With `--replicas` above 1 the commands
//! are refused (each copy would pop a different element), and while the key's shard is away they are too
//! (a stand-in cannot wait for pushes the absent shard will hand over later).
//!
//! Order: a blocking command is sent only once the client's earlier requests are answered, and the client's
//! later requests are routed only once it is (a blocked Redis client's pipelined requests wait too), so a
//! connection of its own never lets one of the client's requests overtake another.
//!
//! Pooled connections that the shard closed meanwhile are noticed before use (a closed socket reads as
//! ready) and dropped. A dedicated connection has no `--timeout`: the command may wait forever by design;
//! a shard that dies closes it.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ringcache_common::command::{self, CommandSpec};
use ringcache_common::resp::{is_push, Protocol, ReplyScanner, Request};
use ringcache_common::tls::ShardStream;
use tokio::io::AsyncReadExt;

use crate::backend::{authenticate, BackendError};
use crate::cluster::{ShardHandle, View};
use crate::route::{no_live_shard, wire, Requester};
use crate::session::{shard_error, ReplyFut, Timed};

/// The commands that block.
pub const BLOCKING_COMMANDS: [&str; 8] =
    ["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"];

/// `--blocking-idle-connections`: idle dedicated connections kept per worker thread, shard and protocol.
static MAX_IDLE: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_IDLE);
pub const DEFAULT_MAX_IDLE: usize = 16;

/// Dedicated connections open now (in use or idle), for INFO and tests.
static OPEN: AtomicUsize = AtomicUsize::new(0);
/// Dedicated connections opened since start.
static OPENED: AtomicUsize = AtomicUsize::new(0);

/// Sets `--blocking-idle-connections`.
pub fn set_max_idle(n: usize) {
    MAX_IDLE.store(n, Ordering::Relaxed);
}

/// (open now, opened since start) dedicated connections.
pub fn connection_counts() -> (usize, usize) {
    (OPEN.load(Ordering::Relaxed), OPENED.load(Ordering::Relaxed))
}

/// Whether `spec` is a blocking command.
pub fn is_blocking(spec: &'static CommandSpec) -> bool {
    *IS_BLOCKING.get(spec)
}

/// Per command of the table: whether it is in [`BLOCKING_COMMANDS`].
static IS_BLOCKING: command::PerCommand<bool> = command::PerCommand::new(|c| BLOCKING_COMMANDS.contains(&c.name));

/// Whether a client has a blocking command in flight: its later requests wait until it is answered (as a
/// blocked Redis client's do), so that none of them runs on the shard before it.
///
/// Only the oldest request can be one: a blocking command is routed only once nothing is pending before it
/// ([`must_wait`]), and nothing is routed after it while it is pending (this check), so it is always at the
/// front until it is answered.
pub(crate) fn is_waiting(pending: &VecDeque<Timed>) -> bool {
    pending.front().is_some_and(Timed::is_dedicated)
}

/// Whether `req` is a blocking command that must wait for the client's earlier requests to be answered
/// first: sent on a connection of its own, it could otherwise overtake them.
pub(crate) fn must_wait(spec: Option<&'static CommandSpec>, pending: &VecDeque<Timed>) -> bool {
    !pending.is_empty() && spec.is_some_and(is_blocking)
}

/// A dedicated connection, counted while it is open.
struct Dedicated {
    stream: ShardStream,
    scanner: ReplyScanner,
    buf: BytesMut,
}

impl Dedicated {
    fn new(stream: ShardStream) -> Dedicated {
        OPEN.fetch_add(1, Ordering::Relaxed);
        OPENED.fetch_add(1, Ordering::Relaxed);
        Dedicated { stream, scanner: ReplyScanner::new(), buf: BytesMut::new() }
    }

    /// Whether the shard has not closed it (nor sent anything unasked) while it sat in the pool.
    fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// The next reply frame (pushes skipped).
    async fn reply(&mut self) -> Result<Bytes, BackendError> {
        loop {
            match self.scanner.next(&mut self.buf) {
                Ok(Some(frame)) if is_push(&frame) => continue,
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(_) => return Err(BackendError::Protocol),
            }
            self.buf.reserve(16 * 1024);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(BackendError::Closed),
                Ok(_) => {}
            }
        }
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    /// Idle dedicated connections of this worker thread, by shard address and protocol.
    static POOL: RefCell<HashMap<(String, Protocol), Vec<Dedicated>>> = RefCell::new(HashMap::new());
}

fn take_pooled(addr: &str, proto: Protocol) -> Option<Dedicated> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(&(addr.to_string(), proto))?;
        while let Some(conn) = idle.pop() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    })
}

fn give_back(addr: &str, proto: Protocol, conn: Dedicated) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.entry((addr.to_string(), proto)).or_default();
        if idle.len() < MAX_IDLE.load(Ordering::Relaxed) {
            idle.push(conn);
        }
    });
}

/// Opens a dedicated connection to `shard` speaking `proto` (authenticated, switched to RESP3 if asked).
async fn open(shard: &ShardHandle, proto: Protocol) -> Result<Dedicated, BackendError> {
    let (timeout, password) = shard.connection_settings();
    let setup = async {
        let mut stream = crate::tls::connect_shard(&shard.spec.addr).await.map_err(|_| BackendError::Unreachable)?;
        let _ = stream.set_nodelay(true);
        authenticate(&mut stream, password.as_deref()).await.map_err(|e| match e {
            crate::backend::ConnectError::Auth(kind, _) => kind,
            crate::backend::ConnectError::Io(_) => BackendError::Closed,
        })?;
        let mut conn = Dedicated::new(stream);
        // Named, so that a shard's CLIENT LIST tells them apart (and a draining shard does not wait for them
        // as it waits for the proxy's shared connections).
        let hello: &[u8] = match proto {
            Protocol::Resp2 => b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$18\r\nringcache-blocking\r\n",
            Protocol::Resp3 => b"*4\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$7\r\nSETNAME\r\n$18\r\nringcache-blocking\r\n",
        };
        conn.stream.write_all(hello).await.map_err(|_| BackendError::Closed)?;
        if conn.reply().await?.first() == Some(&b'-') {
            return Err(BackendError::AuthRequired);
        }
        Ok(conn)
    };
    tokio::time::timeout(timeout, setup).await.unwrap_or(Err(BackendError::Timeout))
}

/// Sends `request` on a dedicated connection and waits (as long as the shard makes it wait) for the reply.
async fn exchange(shard: Arc<ShardHandle>, proto: Protocol, request: Bytes) -> Bytes {
    let mut conn = match take_pooled(&shard.spec.addr, proto) {
        Some(conn) => conn,
        None => match open(&shard, proto).await {
            Ok(conn) => conn,
            Err(e) => return shard_error(&shard, e),
        },
    };
    if conn.stream.write_all(&request).await.is_err() {
        return shard_error(&shard, BackendError::Closed);
    }
    match conn.reply().await {
        Ok(reply) => {
            give_back(&shard.spec.addr, proto, conn);
            reply
        }
        Err(e) => shard_error(&shard, e),
    }
}

/// Routes a blocking command: to the shard of its keys, on a dedicated connection.
pub fn route(requester: Requester, topo: &View<'_>, req: &Request, spec: &CommandSpec) -> ReplyFut {
    let name = spec.name.to_uppercase();
    if topo.replicas > 1 {
        return ReplyFut::error(&format!(
            "ERR {name} is not supported by ringcache-proxy with --replicas above 1 (each copy would pop a \
             different element)"
        ));
    }
    let positions = command::keys(spec, req);
    let target = match positions.first() {
        // A malformed request (a bad count): any shard answers it with the command's own error, at once.
        None => topo.live().next().map(|(i, _)| i),
        Some(&first) => {
            let owner = topo.owner(req.arg(first));
            if positions.iter().any(|&p| topo.owner(req.arg(p)) != owner) {
                return ReplyFut::error(&format!(
                    "CROSSSLOT Keys in request don't hash to the same shard: ringcache-proxy runs {name} only \
                     when all keys share a shard (use a {{hash tag}})"
                ));
            }
            if topo.hinting() && topo.write_copies(req.arg(first)).first().is_some_and(|(_, absent)| absent.is_some()) {
                return ReplyFut::error(&format!(
                    "TRYAGAIN {name} waits only on the key's own shard, which is away: retry when it is back"
                ));
            }
            owner
        }
    };
    let Some(i) = target else { return no_live_shard(topo) };
    ReplyFut::Dedicated(Box::pin(exchange(topo.shards[i].clone(), requester.proto, wire(req))))
}
