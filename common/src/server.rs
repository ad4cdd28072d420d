//! The accept loop both servers run: `--tcp-backlog`, `--maxclients`, connection counters, and a graceful
//! drain.
//!
//! [`ClientListeners::bind`] opens a server's plain and TLS client ports; [`bind_listener`] opens one port with a listen queue of `--tcp-backlog` connections (Redis's 511 by
//! default, capped by the kernel's `net.core.somaxconn`). [`accept_loop`] accepts until `shutdown` fires,
//! draining the queue in batches per wake-up (a reconnect storm after a restart is thousands of connects at
//! once), refuses clients past `maxclients` with Redis's error, runs each connection as a tracked task,
//! then closes the listener and waits (up to a grace period) for open connections to finish the work they
//! have already read. Connections run on the accepting runtime, or are dealt round-robin to thread-per-core
//! [`crate::workers`], each socket registered with its worker's reactor so that its reads wake that worker
//! only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for open connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connections accepted per wake-up before other tasks get a turn.
const ACCEPT_BATCH: usize = 256;

/// Why the client ports could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{0}")]
    Address(String),
    #[error("cannot listen on {addr}: {source}")]
    Plain { addr: SocketAddr, source: std::io::Error },
    #[error("cannot listen for TLS on {addr}: {source}")]
    Tls { addr: SocketAddr, source: std::io::Error },
    #[error("no port to listen on (--port 0 without --tls-port)")]
    NoPort,
    #[error("cannot read the listening address: {0}")]
    LocalAddr(std::io::Error),
}

/// The client ports of a server: plain TCP (`--port`; off when it is 0 and a TLS port is set, as Redis) and
/// TLS (`--tls-port`, with its acceptor `T`), and the address clients are told to use (plain first).
pub struct ClientListeners<T> {
    pub plain: Option<TcpListener>,
    pub tls: Option<(TcpListener, T)>,
    pub local: SocketAddr,
}

impl<T> ClientListeners<T> {
    /// Opens `bind:port` and, with an acceptor, `bind:tls_port`, each with a `backlog` listen queue.
    pub fn bind(bind: &str, port: u16, tls_port: u16, tls: Option<T>, backlog: u32) -> Result<Self, ListenError> {
        let open = |port: u16| -> Result<(SocketAddr, std::io::Result<TcpListener>), ListenError> {
            let addr = crate::config::socket_addr(bind, port).map_err(ListenError::Address)?;
            Ok((addr, bind_listener(addr, backlog)))
        };
        let plain = if tls.is_some() && port == 0 {
            None
        } else {
            let (addr, listener) = open(port)?;
            Some(listener.map_err(|source| ListenError::Plain { addr, source })?)
        };
        let tls = match tls {
            Some(acceptor) => {
                let (addr, listener) = open(tls_port)?;
                Some((listener.map_err(|source| ListenError::Tls { addr, source })?, acceptor))
            }
            None => None,
        };
        // TLS only: the TLS port is where clients (and proxies, told by a registry) connect.
        let local = match (&plain, &tls) {
            (Some(l), _) | (None, Some((l, _))) => l.local_addr().map_err(ListenError::LocalAddr)?,
            (None, None) => return Err(ListenError::NoPort),
        };
        Ok(ClientListeners { plain, tls, local })
    }
}

/// Opens a listening socket on `addr` whose queue holds `backlog` connections not yet accepted (the kernel
/// caps it at `net.core.somaxconn`). Must be called on a tokio runtime.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Connection counts for INFO and metrics.
#[derive(Debug, Default)]
pub struct ConnectionCounters {
    connected: AtomicUsize,
    total: AtomicU64,
    rejected: AtomicU64,
}

impl ConnectionCounters {
    pub fn connected(&self) -> usize {
        self.connected.load(Ordering::Relaxed)
    }
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// Accepts clients until `shutdown`; `serve` runs one connection, on the next of `workers` in turn (on
/// this runtime when `workers` is empty). Returns once open connections have finished or the grace period
/// has passed.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    maxclients: usize,
    counters: Arc<ConnectionCounters>,
    shutdown: CancellationToken,
    workers: &[Handle],
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    let serve = Arc::new(serve);
    let mut next_worker = 0usize;
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Then whatever else is queued, without waiting: a storm is accepted in batches per wake-up.
        let mut waiting = std::task::Context::from_waker(std::task::Waker::noop());
        let rest = (1..ACCEPT_BATCH).map_while(|_| match listener.poll_accept(&mut waiting) {
            std::task::Poll::Ready(accepted) => Some(accepted),
            std::task::Poll::Pending => None,
        });
        for accepted in std::iter::once(first).chain(rest).collect::<Vec<_>>() {
            let (stream, addr) = match accepted {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of file descriptors and the like: log, back off briefly, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    break;
                }
            };
            counters.total.fetch_add(1, Ordering::Relaxed);
            if counters.connected.fetch_add(1, Ordering::AcqRel) >= maxclients {
                counters.connected.fetch_sub(1, Ordering::AcqRel);
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                // A fresh socket takes one line at once; whatever happens, the connection closes on drop.
                let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
                continue;
            }
            let counters = counters.clone();
            let serve = serve.clone();
            let Some(worker) = (!workers.is_empty()).then(|| &workers[next_worker % workers.len()]) else {
                // Served on this runtime, whose reactor the socket is registered with already.
                tracker.spawn(async move {
                    serve(stream, addr).await;
                    counters.connected.fetch_sub(1, Ordering::AcqRel);
                });
                continue;
            };
            next_worker = next_worker.wrapping_add(1);
            // The socket leaves this runtime's reactor and joins its worker's.
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot hand a connection to a worker: {e}");
                    counters.connected.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
            };
            worker.spawn(tracker.track_future(async move {
                match TcpStream::from_std(stream) {
                    Ok(stream) => serve(stream, addr).await,
                    Err(e) => tracing::warn!("cannot register a connection with its worker: {e}"),
                }
                counters.connected.fetch_sub(1, Ordering::AcqRel);
            }));
        }
    }
    drop(listener);
    tracker.close();
    let open = tracker.len();
    if open > 0 {
        tracing::info!("waiting for {open} connections to finish");
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("{} connections still open after {SHUTDOWN_GRACE:?}; closing them", tracker.len());
    }
    Ok(())
}
