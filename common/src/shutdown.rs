//! Graceful shutdown: SIGINT and SIGTERM cancel a token that servers watch.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGINT or SIGTERM (a second one is not needed). Must be called
/// inside a tokio runtime.
pub fn on_signals() -> std::io::Result<CancellationToken> {
    on_signals_after(|_| std::future::ready(()))
}

/// Like [`on_signals`], but the first SIGINT or SIGTERM first runs `before_exit` (a shard drains its keys
/// there) and cancels the token when it is done; a second signal cancels at once.
pub fn on_signals_after<F, Fut>(before_exit: F) -> std::io::Result<CancellationToken>
where
    F: FnOnce(&'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Ok(Signals::install()?.watch_after(before_exit))
}

/// SIGINT and SIGTERM handlers, installed before the server listens: a signal that arrives between the
/// listening socket's bind and the rest of start-up is then a clean shutdown, not the default action
/// (killed by the signal, no exit code).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; signals received from now on are kept until [`Signals::watch_after`].
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// As [`on_signals_after`], with the handlers installed earlier.
    pub fn watch_after<F, Fut>(self, before_exit: F) -> CancellationToken
    where
        F: FnOnce(&'static str) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Signals { mut term, mut int } = self;
        let token = CancellationToken::new();
        let cancel = token.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name} received");
            tokio::select! {
                _ = before_exit(name) => {}
                _ = term.recv() => tracing::info!("second SIGTERM: shutting down now"),
                _ = int.recv() => tracing::info!("second SIGINT: shutting down now"),
            }
            tracing::info!("shutting down");
            cancel.cancel();
        });
        token
    }
}
