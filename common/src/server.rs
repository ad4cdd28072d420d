//! The accept loop both servers run: `--maxclients`, connection counters, and a graceful drain.
//!
//! [`accept_loop`] accepts until `shutdown` fires, refuses clients past `maxclients` with Redis's error,
//! runs each connection as a tracked task, then closes the listener and waits (up to a grace period) for
//! open connections to finish the work they have already read. Connections run on the accepting runtime, or
//! are dealt round-robin to thread-per-core [`crate::workers`], each socket registered with its worker's
//! reactor so that its reads wake that worker only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for open connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
        let (stream, addr) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: log, back off briefly, keep serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        counters.total.fetch_add(1, Ordering::Relaxed);
        if counters.connected.fetch_add(1, Ordering::AcqRel) >= maxclients {
            counters.connected.fetch_sub(1, Ordering::AcqRel);
            counters.rejected.fetch_add(1, Ordering::Relaxed);
            tracker.spawn(async move {
                let mut stream = stream;
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                let _ = stream.shutdown().await;
            });
            continue;
        }
        let counters = counters.clone();
        let worker = match workers {
            [] => Handle::current(),
            _ => workers[next_worker % workers.len()].clone(),
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
        let serve = serve.clone();
        worker.spawn(tracker.track_future(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream, addr).await,
                Err(e) => tracing::warn!("cannot register a connection with its worker: {e}"),
            }
            counters.connected.fetch_sub(1, Ordering::AcqRel);
        }));
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
