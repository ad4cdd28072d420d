//! `ringcache-loadgen`: a load generator for any RESP server (ringcache-proxy, ringcache-shard, redis-server,
//! twemproxy) that measures latency percentiles with HDR histograms, throughput, hit ratio and errors, and can
//! verify that every read returns the last value written.
//!
//! Layout, in the order a run goes through it:
//! - [`config`]: the flags (`--help` is the manual) and their validated form, [`config::Config`].
//! - [`workload`]: seeded key choice (sequential, uniform, zipf, gaussian), values (stamped for
//!   verification), `--command` templates and RESP encoding into the connection's write buffer.
//! - [`driver`]: threads, connections, closed and open loop, timeouts and reconnects; [`pacer`] wakes the
//!   open loop's writers at their send times (a Linux timerfd: tokio's timer has millisecond resolution).
//! - [`verify`]: per-connection key histories that classify a read as lost, stale or corrupt.
//! - [`stats`]: HDR histograms and counters, recorded per thread and merged.
//! - [`report`]: the figures (`--json-out`), the final table and the live line.
//! - [`plot`]: the SVG plot (`--plot`).
//!
//! **Why threads with a current-thread runtime each, not one multi-threaded runtime:** a thread's
//! connections, recorder and ticker live on one core and share state through `Rc<RefCell<_>>`, so recording
//! a reply touches no atomic and no lock, and work stealing never moves a connection between cores mid-batch.
//! It is the memtier/redis-benchmark shape (`--threads` event loops × `--clients` connections), which is
//! what users compare against. Replies are framed with `ringcache_common`'s `ReplyScanner` and requests
//! written with its `ReplyWriter` (the same RESP encoding), so there is one RESP implementation in the
//! workspace.

pub mod config;
pub mod driver;
pub mod pacer;
pub mod plot;
pub mod report;
pub mod stats;
pub mod verify;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use config::Config;
use report::Report;

/// Errors of a whole run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
}

/// Runs the load, prints the live line (unless `cfg.live` is off) and the final table, writes
/// `--json-out` and `--plot`, and returns the report (its verdict gives the exit status). The first Ctrl-C
/// ends the run early and still reports.
pub fn run(cfg: &Config) -> Result<Report, RunError> {
    let live = cfg.live;
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_ctrl_c(stop.clone());
    let out = driver::run(cfg, stop, |tick| {
        if live {
            eprintln!("{}", report::live_line(tick));
        }
    })?;
    let report = Report::build(cfg, &out);
    print!("{}", report.table());
    if let Some(path) = &cfg.json_out {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, text + "\n")
            .map_err(|source| RunError::Write { path: path.display().to_string(), source })?;
    }
    if let Some(path) = &cfg.plot {
        plot::write_svg(&report, path)?;
    }
    Ok(report)
}

/// Sets `stop` on SIGINT, from a small thread of its own (the load threads never block on it).
fn stop_on_ctrl_c(stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new().name("loadgen-signal".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing the requests in flight, then reporting");
                stop.store(true, Ordering::Relaxed);
            }
        });
    });
}
