//! Thread-per-core worker runtimes.
//!
//! [`Workers`] starts N OS threads, each running its own current-thread tokio runtime. A task spawned on a
//! worker stays on that thread, so a client session and the shard connections it uses (spawned on the same
//! worker) hand requests and replies to each other without crossing threads: no futex wake-ups, no work
//! stealing, no cache lines bouncing between cores. On a machine whose cores are shared with the shards
//! and the clients, a wake-up that needs another thread can wait a whole scheduler slice; one on the same
//! thread costs a queue push.
//!
//! Each worker thread knows its index ([`current_index`]), so shared structures can keep one slot per worker
//! (the proxy keeps one set of shard connections per worker).

use std::cell::Cell;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

thread_local! {
    static WORKER_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the worker thread this runs on, or `None` off the workers (the main thread, say).
pub fn current_index() -> Option<usize> {
    WORKER_INDEX.with(Cell::get)
}

/// N threads, each a current-thread runtime, running until [`Workers::stop`] (or drop).
pub struct Workers {
    handles: Vec<Handle>,
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` (at least one) worker threads named `<name>-<index>`.
    pub fn start(count: usize, name: &str) -> std::io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let thread = std::thread::Builder::new().name(format!("{name}-{index}")).spawn(move || {
                WORKER_INDEX.with(|w| w.set(Some(index)));
                // A current-thread runtime runs its tasks only inside `block_on`; tasks still alive when it
                // returns are dropped with the runtime.
                runtime.block_on(stop.cancelled());
            })?;
            threads.push(thread);
        }
        Ok(Workers { handles, stop, threads })
    }

    /// The workers' runtimes, in index order.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Stops every worker and waits for its thread (as dropping does); tasks still running on them are dropped.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_their_worker_and_know_its_index() {
        let workers = Workers::start(3, "test-worker").expect("workers start");
        assert_eq!(current_index(), None);
        let outer = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let seen: Vec<(Option<usize>, String)> = outer.block_on(async {
            let mut seen = Vec::new();
            for (i, handle) in workers.handles().iter().enumerate() {
                let got = handle
                    .spawn(async move {
                        // Still on the same thread after an await.
                        tokio::task::yield_now().await;
                        (current_index(), std::thread::current().name().unwrap_or_default().to_string())
                    })
                    .await
                    .expect("task ran");
                assert_eq!(got.0, Some(i));
                seen.push(got);
            }
            seen
        });
        assert_eq!(seen[2].1, "test-worker-2");
        workers.stop();
    }
}
