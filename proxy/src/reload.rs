//! Reloading the shard list from the `--config` file, on SIGHUP and whenever the file changes.
//!
//! Only the `shards` key is re-read (other settings need a restart). A file that cannot be read or parsed,
//! or whose shard list is invalid, is rejected with a logged reason and the current ring keeps serving.
//! The new ring is swapped in atomically: client connections and requests already routed are untouched.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::{parse_shards, ShardSpec};

/// How often the file's modification time is checked.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Reads the shard list from a config file (`shards = "a=h:p,..."` or `shards = ["a=h:p", ...]`).
pub fn shards_from_file(path: &PathBuf) -> Result<Vec<ShardSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let list = match table.get("shards") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| "shards must be strings".to_string()))
            .collect::<Result<Vec<_>, _>>()?
            .join(","),
        Some(_) => return Err("shards must be a string or an array of strings".into()),
        None => return Err(format!("{} has no `shards` key", path.display())),
    };
    parse_shards(&list)
}

/// Watches `path` until `shutdown`; applies every valid change to `cluster`.
pub async fn watch(path: PathBuf, cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP: {e}; the config file is still polled");
            return poll_only(path, cluster, shutdown).await;
        }
    };
    let mut last_modified = modified(&path);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        let reason = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup.recv() => "SIGHUP",
            _ = tick.tick() => {
                let m = modified(&path);
                if m == last_modified {
                    continue;
                }
                last_modified = m;
                "file changed"
            }
        };
        apply(&path, &cluster, reason).await;
    }
}

async fn poll_only(path: PathBuf, cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut last_modified = modified(&path);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let m = modified(&path);
        if m != last_modified {
            last_modified = m;
            apply(&path, &cluster, "file changed").await;
        }
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

async fn apply(path: &PathBuf, cluster: &Arc<Cluster>, reason: &str) {
    match shards_from_file(path) {
        Ok(shards) => {
            let names: Vec<String> = shards.iter().map(|s| format!("{}={}", s.name, s.addr)).collect();
            cluster.change_shards(shards).await;
            tracing::info!("{reason}: reloaded {}; shards now {}", path.display(), names.join(", "));
        }
        Err(e) => tracing::error!("{reason}: rejected {}: {e}; keeping the current shards", path.display()),
    }
}
