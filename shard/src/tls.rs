//! The `--tls-port` listener: the same connections as plain TCP ([`crate::server`]), after a TLS handshake
//! with the current certificate (`ringcache_common::tls`, reloaded on SIGHUP or when its files change).

use std::sync::Arc;

use ringcache_common::server::accept_loop;
use ringcache_common::tls::TlsAcceptor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::{serve_client, Shared};

/// Accepts TLS clients until `shutdown` fires, then waits for open connections to finish. `--maxclients`
/// counts plain and TLS clients together.
pub async fn run(
    listener: TcpListener,
    acceptor: Arc<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let counters = shared.connections.clone();
    let maxclients = shared.config.maxclients;
    accept_loop(listener, maxclients, counters, shutdown.clone(), &[], move |stream, addr| {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        async move {
            if let Some(tls) = acceptor.handshake(stream, addr, &shutdown).await {
                serve_client(tls, addr, &shared, &shutdown).await;
            }
        }
    })
    .await
}
