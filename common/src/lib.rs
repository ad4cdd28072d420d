//! Shared code of Ringcache's binaries.
//!
//! - [`resp`]: RESP framing — the incremental, zero-copy request scanner and the reply writer.
//! - [`acl`]: ACL users (rules, categories, key and channel patterns, ACL LOG, the ACL command).
//! - [`command`]: the command table (arity, flags, key positions) used for dispatch and key routing.
//! - [`glob`]: Redis's glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET, COMMAND LIST).
//! - [`hash`]: key hashing for shard placement (twemproxy-compatible functions, `{hash tags}`).
//! - [`hll`]: HyperLogLog in Redis's string format (PFADD/PFCOUNT/PFMERGE on shards, PFCOUNT merged by the proxy).
//! - [`connection`]: connection commands (AUTH, HELLO, CLIENT, ...) shared by shard and proxy.
//! - [`clients`]: the registry of open connections, CLIENT LIST filters, CLIENT KILL and PAUSE.
//! - [`info`]: INFO in Redis 7's layout (every field exporters read), commandstats, errorstats, latencystats.
//! - [`diagnostics`]: SLOWLOG, LATENCY and the error counts, with their flags.
//! - [`config`]: flag / environment / TOML-file merging, byte sizes and durations.
//! - [`runtime_config`]: CONFIG GET/SET/RESETSTAT/REWRITE over a server's table of parameters.
//! - [`push`]: a connection's bounded queue of pushes (pub/sub messages, invalidations).
//! - [`metrics`]: the Prometheus registry, per-thread command statistics and the `/metrics` HTTP server.
//! - [`server`]: the listening socket (`--tcp-backlog`) and the accept loop (`--maxclients`, connection
//!   counters, graceful drain).
//! - [`shutdown`]: SIGINT/SIGTERM handling as a cancellation token.
//! - [`tls`]: TLS with rustls: the `--tls-*` flags, a reloadable acceptor, the proxy's connector to shards.
//! - [`workers`]: thread-per-core worker runtimes (the proxy's client sessions and shard connections).

pub mod acl;
pub mod clients;
pub mod command;
pub mod config;
pub mod connection;
pub mod diagnostics;
pub mod glob;
pub mod hash;
pub mod hll;
pub mod info;
pub mod metrics;
pub mod push;
pub mod resp;
pub mod runtime_config;
pub mod server;
pub mod shutdown;
pub mod tls;
pub mod tracking;
pub mod workers;
