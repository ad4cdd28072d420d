//! ringcache-shard: a RESP server over an in-memory, lock-striped LRU store.
//!
//! Layout:
//! - [`config`]: the command line (flags, environment, `--config` file).
//! - [`server`]: accepting connections, limits (`--maxclients`, AUTH, idle timeout), the per-connection
//!   loop (read everything buffered, execute in order, one write per batch) and graceful shutdown.
//! - [`tls`]: the `--tls-port` listener (rustls; the connection loop is generic over the stream).
//! - [`cmd`]: one file per command family; `cmd::execute` is where errors become RESP replies.
//! - [`blocking`]: clients blocked on keys (BLPOP and friends), served first come, first served.
//! - [`client`]: a connection's state (transaction, watches, subscriptions, tracking) and its bounded
//!   queue of pushes (pub/sub messages, invalidations).
//! - [`events`]: WATCH and client tracking, told of every key change by the store's one hook.
//! - [`pubsub`]: the subscription registry and PUBLISH delivery.
//! - [`scripting`]: Lua 5.1 as Redis embeds it (EVAL, the script cache, busy scripts).
//! - [`store`]: the stripes, the LRU, the memory budget and active expiry. No I/O and no async in here.
//! - [`aof`]: the append-only log (`--appendonly yes`): every change written before its reply, replayed
//!   over the snapshot at start.
//! - [`snapshot`]: the snapshot file format, writing (stripe by stripe, atomic rename), restoring at start,
//!   and the background thread that takes them.
//! - [`handoff`]: hinted handoff, the keys written here while standing in for an absent shard.
//! - [`registry`]: registering this shard in ZooKeeper (`--zookeeper`), when proxies take the ring from there.
//! - [`rdb`]: DUMP/RESTORE payloads in Redis's RDB object format (CRC-64, LZF, listpacks, intsets).
//! - [`shard_metrics`]: the `/metrics` registry.
//!
//! Invariant: no store lock is held across I/O or an `.await` — a command's store work is synchronous.

pub mod aof;
pub mod blocking;
pub mod client;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod events;
pub mod handoff;
pub mod pubsub;
pub mod rdb;
pub mod registry;
pub mod scripting;
pub mod server;
pub mod shard_metrics;
pub mod snapshot;
pub mod store;
pub mod tls;
