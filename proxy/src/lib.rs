//! ringcache-proxy: what clients talk to. Routes each request to the shard that owns its key.
//!
//! Layout:
//! - [`config`]: the command line and the shard list.
//! - [`ring`]: the twemproxy-compatible ketama continuum (pure code).
//! - [`cluster`]: shard handles, health checks, and the atomically swapped topology.
//! - [`handoff`]: hinted handoff, so a shard that flaps never serves a value overwritten while it was away.
//! - [`backend`]: pipelined connections to one shard, shared by all clients.
//! - [`blocking`]: blocking commands, each on a pooled connection of its own to its keys' shard.
//! - [`failover`]: a request whose shard dies under it is sent again once the shard is ejected.
//! - [`session`]: one client connection; replies leave in request order.
//! - [`tls`]: the `--tls-port` listener and TLS to shards (`--tls-shards yes`).
//! - [`output`]: a client's unsent replies and `--client-output-buffer-limit`.
//! - [`route`]: single-key forwarding, multi-key split and merge, fan-out commands.
//! - [`local`]: commands the proxy answers itself; [`config_cmd`]: its CONFIG parameters.
//! - [`pubsub`]: one subscription per channel per worker towards the shards, fanned out to its clients.
//! - [`metrics`]: the `/metrics` registry.
//! - [`membership`]: where the ring comes from (the config file, or ZooKeeper), shared health and handoff
//!   locks; [`reload`] re-reads the file on SIGHUP or when it changes.
//! - [`admin`]: `ringcache-proxy admin add|remove|list`, the operator's ring changes in ZooKeeper.
//!
//! Threads: client sessions run on `--threads` workers, each a current-thread runtime
//! ([`ringcache_common::workers`]) with its own [`backend`] connections to every shard, so a request and its
//! reply stay on one thread; health checks, handoffs, reloads and `/metrics` run on the main thread.
//!
//! Invariants: a client's replies leave in the order its requests arrived; a request to a shard that is
//! silent fails after `--timeout` without progress, and one to a shard that refuses or resets connections is
//! sent again elsewhere once a probe has it ejected ([`failover`]); a client that does not read is no longer
//! read from ([`output`]); request and reply bytes are forwarded, not re-encoded, except where a multi-key
//! command is split or merged.

pub mod admin;
pub mod backend;
pub mod blocking;
pub mod cluster;
pub mod config;
pub mod config_cmd;
pub mod crossshard;
pub mod dedicated;
pub mod failover;
pub mod handoff;
pub mod hotkeys;
pub mod local;
pub mod membership;
pub mod metrics;
pub mod output;
pub mod pubsub;
pub mod reload;
pub mod ring;
pub mod route;
pub mod session;
pub mod stateful;
pub mod tls;
