//! TLS for the proxy: the `--tls-port` listener for clients (the same sessions as plain TCP,
//! [`crate::session`]) and, with `--tls-shards yes`, TLS on every connection to shards — shared backend
//! connections, a client's own (WATCH, blocking commands), pub/sub and tracking links, health checks.
//!
//! The shard connector is set once at start ([`set_shard_connector`]) and read by [`connect_shard`], so the
//! modules that open shard connections only swap `TcpStream::connect` for it.

use std::sync::{Arc, OnceLock};

use ringcache_common::server::accept_loop;
use ringcache_common::tls::{ShardStream, TlsAcceptor, TlsConnector};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::session::{serve_client, ProxyShared};

static SHARD_CONNECTOR: OnceLock<TlsConnector> = OnceLock::new();

/// Makes every later shard connection use TLS with `connector` (`--tls-shards yes`). Set once, at start.
pub fn set_shard_connector(connector: TlsConnector) {
    let _ = SHARD_CONNECTOR.set(connector);
}

/// A connection to the shard at `addr` (`host:port`): TLS with `--tls-shards yes`, else plain TCP; with
/// `TCP_NODELAY` either way.
pub async fn connect_shard(addr: &str) -> std::io::Result<ShardStream> {
    ShardStream::connect(addr, SHARD_CONNECTOR.get()).await
}

/// Accepts TLS clients until `shutdown`, then waits (up to a grace period) for open sessions to finish;
/// sessions are dealt to `workers` as plain ones are, and the handshake runs there.
pub async fn run(
    listener: TcpListener,
    acceptor: Arc<TlsAcceptor>,
    shared: Arc<ProxyShared>,
    shutdown: CancellationToken,
    workers: &[tokio::runtime::Handle],
) -> std::io::Result<()> {
    let counters = shared.connections.clone();
    let maxclients = shared.maxclients;
    accept_loop(listener, maxclients, counters, shutdown.clone(), workers, move |stream, addr| {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        async move {
            if let Some(tls) = acceptor.handshake(stream, addr, &shutdown).await {
                serve_client(tls, addr, shared, shutdown).await;
            }
        }
    })
    .await
}
