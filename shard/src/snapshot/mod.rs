//! Snapshots: the shard's data on disk, so that a restarted shard comes back warm.
//!
//! - [`format`]: the file layout (header, checksummed blocks, end marker) and record encoding.
//! - [`write`]: walking the store stripe by stripe into a temporary file, fsync, atomic rename.
//! - [`load`]: verifying a whole file, then inserting its live keys.
//! - [`transfer`]: one key as one record, for moving keys between shards (`RINGCACHE HANDOFF`/`RESTORE`).
//! - this file: [`Persistence`], the state INFO and metrics read and the background thread that restores
//!   the snapshot at start, then takes one every `--snapshot-interval` when keys changed, and on SAVE,
//!   BGSAVE and shutdown.
//!
//! The directory holds `ringcache.snapshot` (the last complete snapshot), `ringcache.snapshot.tmp` while
//! one is being written, and `LOCK`, held (flock) by the running shard so that two shards never share a
//! directory.

pub mod format;
pub mod load;
pub mod transfer;
pub mod write;

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use ringcache_common::metrics::{self, HotCounter};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use format::Codec;
use load::{LoadError, LoadProgress, LoadSummary};

use crate::aof::{AofConfig, AofLog};
use crate::clock::now_ms;
use crate::store::Store;

pub const SNAPSHOT_FILE: &str = "ringcache.snapshot";
const TMP_FILE: &str = "ringcache.snapshot.tmp";
const LOCK_FILE: &str = "LOCK";

/// What to do with a snapshot that fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnCorrupt {
    /// Refuse to start, naming the file and what is wrong.
    Refuse,
    /// Move the file aside (`ringcache.snapshot.corrupt-<unix ms>`) and start empty.
    Discard,
}

/// Snapshot settings from the command line.
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    pub dir: PathBuf,
    /// Zero: no periodic snapshots (SAVE and BGSAVE still work).
    pub interval: Duration,
    pub on_shutdown: bool,
    pub codec: Codec,
    pub on_corrupt: OnCorrupt,
    /// The append-only log's directory (`--dir/<appenddirname>`), whether or not the log is on.
    pub aof_dir: PathBuf,
    /// The append-only log's settings, when `--appendonly yes`.
    pub aof: Option<AofConfig>,
}

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the append-only log cannot switch files: {0}")]
    Aof(#[from] crate::aof::AofError),
}

/// Why the shard cannot use its directory.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot use --dir {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("--dir {path} is in use by another ringcache-shard (its LOCK file is held)")]
    Locked { path: String },
    #[error(transparent)]
    Aof(#[from] crate::aof::AofError),
}

/// The snapshot state shared by the background thread, commands (SAVE, BGSAVE, LASTSAVE, INFO) and metrics.
pub struct Persistence {
    pub config: SnapshotConfig,
    store: Arc<Store>,
    /// The append-only log, when on: replayed after the snapshot, and rewritten by every snapshot.
    pub aof: Option<Arc<AofLog>>,
    aof_thread: Mutex<Option<JoinHandle<()>>>,
    loading: AtomicBool,
    /// Set once restore has finished (or there was nothing to restore); snapshots are never written before.
    ready: AtomicBool,
    in_progress: AtomicBool,
    last_save_unix_ms: AtomicU64,
    last_status_ok: AtomicBool,
    last_duration_ms: AtomicU64,
    last_keys: AtomicU64,
    last_bytes: AtomicU64,
    saves_ok: AtomicU64,
    saves_failed: AtomicU64,
    /// Writes counted (in `HotCounter::Writes`) when the last successful snapshot began.
    writes_at_last_save: AtomicU64,
    current_started_ms: AtomicU64,
    pub load_progress: LoadProgress,
    last_load: Mutex<LoadSummary>,
    requests: Mutex<Requests>,
    wakeup: Condvar,
    stop: AtomicBool,
    /// Holds the directory's flock for the life of the process.
    _lock: File,
}

#[derive(Default)]
struct Requests {
    background: bool,
    waiters: Vec<oneshot::Sender<Result<(), String>>>,
}

/// Replies BGSAVE can get.
#[derive(Debug, PartialEq, Eq)]
pub enum BgsaveOutcome {
    Started,
    AlreadyInProgress,
}

impl Persistence {
    /// Creates `--dir` if needed, takes its lock and removes a temporary file left by a crash.
    pub fn open(config: SnapshotConfig, store: Arc<Store>) -> Result<Arc<Persistence>, DirError> {
        let dir = &config.dir;
        let path = dir.display().to_string();
        let io = |source| DirError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = File::options().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE)).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(DirError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let tmp = dir.join(TMP_FILE);
        if tmp.exists() {
            tracing::warn!("removing {}, left by a snapshot that did not finish", tmp.display());
            std::fs::remove_file(&tmp).map_err(io)?;
        }
        let has_snapshot = dir.join(SNAPSHOT_FILE).exists();
        let config_has_aof = config.aof.is_some();
        let aof = match &config.aof {
            Some(aof_config) => {
                let log = AofLog::open(aof_config.clone())?;
                store.set_aof(log.clone());
                Some(log)
            }
            None => {
                let manifest = config.aof_dir.join(crate::aof::manifest::MANIFEST_FILE);
                if manifest.exists() {
                    // Replayed after a later snapshot, these files would bring back older values: the log
                    // starts afresh the next time it is turned on.
                    tracing::warn!(
                        "--appendonly no: removing {} (the append-only log is off, its files are not replayed)",
                        manifest.display()
                    );
                    std::fs::remove_file(&manifest).map_err(io)?;
                }
                None
            }
        };
        Ok(Arc::new(Persistence {
            config,
            store,
            aof,
            aof_thread: Mutex::new(None),
            loading: AtomicBool::new(has_snapshot || config_has_aof),
            ready: AtomicBool::new(false),
            in_progress: AtomicBool::new(false),
            last_save_unix_ms: AtomicU64::new(now_ms()),
            last_status_ok: AtomicBool::new(true),
            last_duration_ms: AtomicU64::new(0),
            last_keys: AtomicU64::new(0),
            last_bytes: AtomicU64::new(0),
            saves_ok: AtomicU64::new(0),
            saves_failed: AtomicU64::new(0),
            writes_at_last_save: AtomicU64::new(0),
            current_started_ms: AtomicU64::new(0),
            load_progress: LoadProgress::default(),
            last_load: Mutex::new(LoadSummary::default()),
            requests: Mutex::new(Requests::default()),
            wakeup: Condvar::new(),
            stop: AtomicBool::new(false),
            _lock: lock,
        }))
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.config.dir.join(SNAPSHOT_FILE)
    }

    /// True while the snapshot is being restored: commands other than a few answer `-LOADING`.
    #[inline]
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }

    pub fn in_progress(&self) -> bool {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Unix seconds of the last successful snapshot (or of start-up, as in Redis).
    pub fn last_save_unix_secs(&self) -> u64 {
        self.last_save_unix_ms.load(Ordering::Relaxed) / 1000
    }

    pub fn last_status_ok(&self) -> bool {
        self.last_status_ok.load(Ordering::Relaxed)
    }

    pub fn last_duration_ms(&self) -> u64 {
        self.last_duration_ms.load(Ordering::Relaxed)
    }

    pub fn last_keys(&self) -> u64 {
        self.last_keys.load(Ordering::Relaxed)
    }

    pub fn last_bytes(&self) -> u64 {
        self.last_bytes.load(Ordering::Relaxed)
    }

    pub fn saves(&self) -> (u64, u64) {
        (self.saves_ok.load(Ordering::Relaxed), self.saves_failed.load(Ordering::Relaxed))
    }

    /// Milliseconds the snapshot being written has taken so far (0 when none is).
    pub fn current_duration_ms(&self) -> u64 {
        if !self.in_progress() {
            return 0;
        }
        now_ms().saturating_sub(self.current_started_ms.load(Ordering::Relaxed))
    }

    pub fn last_load(&self) -> LoadSummary {
        *self.last_load.lock()
    }

    /// Write commands since the last successful snapshot began.
    pub fn changes_since_last_save(&self) -> u64 {
        metrics::hot_total(HotCounter::Writes).saturating_sub(self.writes_at_last_save.load(Ordering::Relaxed))
    }

    /// SAVE: asks for a snapshot that starts after this call; the receiver gets its outcome.
    pub fn request_save(&self) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        self.requests.lock().waiters.push(tx);
        self.wakeup.notify_one();
        rx
    }

    /// BGSAVE: starts a snapshot unless one is being written (`schedule`: then run one after it).
    pub fn request_background_save(&self, schedule: bool) -> BgsaveOutcome {
        let mut r = self.requests.lock();
        if self.in_progress() && !schedule {
            return BgsaveOutcome::AlreadyInProgress;
        }
        r.background = true;
        self.wakeup.notify_one();
        BgsaveOutcome::Started
    }

    /// Starts the background thread: restore first, then periodic and requested snapshots. A snapshot
    /// that cannot be read cancels `shutdown` (with `--on-corrupt-snapshot refuse`) and the error is
    /// returned by [`PersistenceThread::finish`].
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> std::io::Result<PersistenceThread> {
        let this = self.clone();
        let handle = std::thread::Builder::new().name("snapshot".into()).spawn(move || this.run(shutdown))?;
        Ok(PersistenceThread { persistence: self.clone(), handle })
    }

    fn run(&self, shutdown: CancellationToken) -> Result<(), String> {
        match self.restore().and_then(|ready| if ready { self.restore_log() } else { Ok(false) }) {
            Ok(true) => {}
            Ok(false) => return Ok(()), // interrupted by shutdown: not ready, so no snapshot overwrites the file
            Err(message) => {
                shutdown.cancel();
                return Err(message);
            }
        }
        self.writes_at_last_save.store(metrics::hot_total(HotCounter::Writes), Ordering::Relaxed);
        self.ready.store(true, Ordering::Release);
        self.loading.store(false, Ordering::Release);
        let mut last_attempt = Instant::now();
        loop {
            let (background, waiters) = {
                let mut r = self.requests.lock();
                let mut wait = if self.config.interval.is_zero() {
                    Duration::from_secs(3600)
                } else {
                    self.config.interval.saturating_sub(last_attempt.elapsed())
                };
                if self.aof.is_some() {
                    // The log's size is checked ten times a second for an automatic rewrite.
                    wait = wait.min(Duration::from_millis(100));
                }
                if !r.background && r.waiters.is_empty() && !self.stop.load(Ordering::Relaxed) {
                    self.wakeup.wait_for(&mut r, wait);
                }
                (std::mem::take(&mut r.background), std::mem::take(&mut r.waiters))
            };
            if self.stop.load(Ordering::Relaxed) {
                for w in waiters {
                    let _ = w.send(Err("ERR the shard is shutting down".into()));
                }
                return Ok(());
            }
            let periodic_due = !self.config.interval.is_zero()
                && last_attempt.elapsed() >= self.config.interval
                && self.changes_since_last_save() > 0;
            let rewrite_due = self.aof.as_ref().is_some_and(|a| a.rewrite_due());
            if background || !waiters.is_empty() || periodic_due || rewrite_due {
                last_attempt = Instant::now();
                let why = if rewrite_due && !background && waiters.is_empty() && !periodic_due {
                    "append-only log rewrite"
                } else {
                    "background"
                };
                let result = self.snapshot_now(why);
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            } else if !self.config.interval.is_zero() && last_attempt.elapsed() >= self.config.interval {
                last_attempt = Instant::now();
            }
        }
    }

    /// Restores the snapshot if there is one: `Ok(true)` when the shard is ready to serve, `Ok(false)` when
    /// shutdown interrupted the load, `Err` when the shard must not start.
    fn restore(&self) -> Result<bool, String> {
        let path = self.snapshot_path();
        if !path.exists() {
            return Ok(true);
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        tracing::info!("loading snapshot {} ({size} bytes)", path.display());
        match load::load_snapshot(&self.store, &path, now_ms(), &self.load_progress, &self.stop) {
            Ok(summary) => {
                tracing::info!(
                    "loaded {} keys from {} in {:.3}s ({} expired while the shard was down{})",
                    summary.keys_loaded,
                    path.display(),
                    summary.duration.as_secs_f64(),
                    summary.keys_expired,
                    if summary.keys_too_large > 0 {
                        format!(", {} did not fit in --maxmemory", summary.keys_too_large)
                    } else {
                        String::new()
                    }
                );
                *self.last_load.lock() = summary;
                Ok(true)
            }
            Err(LoadError::Interrupted) => {
                self.store.clear();
                tracing::info!("loading {} was interrupted by shutdown", path.display());
                Ok(false)
            }
            Err(LoadError::Format(e)) => {
                // Nothing half-loaded stays behind.
                self.store.clear();
                let problem = format!("snapshot {} cannot be loaded: {e}", path.display());
                match self.config.on_corrupt {
                    OnCorrupt::Refuse => Err(format!(
                        "{problem}. Refusing to start; to move it aside and start empty, pass \
                         --on-corrupt-snapshot discard"
                    )),
                    OnCorrupt::Discard => {
                        let aside = self.config.dir.join(format!("{SNAPSHOT_FILE}.corrupt-{}", now_ms()));
                        std::fs::rename(&path, &aside)
                            .map_err(|e| format!("{problem}; moving it to {} failed: {e}", aside.display()))?;
                        tracing::error!(
                            "{problem}. Moved it to {} and starting empty (--on-corrupt-snapshot discard)",
                            aside.display()
                        );
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Replays the append-only log over what [`Persistence::restore`] loaded, then opens a new incremental
    /// file and starts the log's background writer. Same results as `restore`.
    fn restore_log(&self) -> Result<bool, String> {
        let Some(aof) = &self.aof else { return Ok(true) };
        let dir = &aof.config.dir;
        let listed = crate::aof::manifest::read(dir)
            .map_err(|e| format!("cannot read the append-only log's manifest in {}: {e}", dir.display()))?
            .unwrap_or_default();
        // Only the files from the one current when the snapshot began: earlier ones are in it.
        let from = self.last_load().aof_seq;
        let to_replay: Vec<u32> = listed.iter().copied().filter(|&s| s >= from).collect();
        let discard = self.config.on_corrupt == OnCorrupt::Discard;
        let started = Instant::now();
        let (summary, used) =
            match crate::aof::replay::replay(&self.store, dir, &to_replay, now_ms(), &self.stop, discard) {
                Ok(r) => r,
                Err(crate::aof::replay::ReplayError::Interrupted) => {
                    self.store.clear();
                    return Ok(false);
                }
                Err(e) => {
                    self.store.clear();
                    return Err(format!(
                        "the append-only log cannot be replayed: {e}. Refusing to start; to replay what can be and \
                         drop the rest, pass --on-corrupt-snapshot discard"
                    ));
                }
            };
        if let Some(t) = &summary.truncated {
            tracing::error!(
                "append-only log: {} ends with an incomplete write ({}): cut {} bytes at offset {}; every frame \
                 before it was replayed (a write cut by a crash was never acknowledged with appendfsync always)",
                t.file,
                t.reason,
                t.bytes_dropped,
                t.at_offset
            );
        }
        if !to_replay.is_empty() {
            tracing::info!(
                "append-only log: replayed {} frames ({} bytes) from {} files in {:.3}s{}",
                summary.frames,
                summary.bytes,
                summary.files,
                started.elapsed().as_secs_f64(),
                if summary.keys_too_large > 0 {
                    format!(", {} keys did not fit in --maxmemory", summary.keys_too_large)
                } else {
                    String::new()
                }
            );
        }
        *aof.last_replay.lock() = summary;
        let base_bytes = std::fs::metadata(self.snapshot_path()).map(|m| m.len()).unwrap_or(0);
        aof.start_writing(to_replay[..used].to_vec(), base_bytes).map_err(|e| e.to_string())?;
        let handle = aof.start_background().map_err(|e| format!("cannot start the append-only log's writer: {e}"))?;
        *self.aof_thread.lock() = Some(handle);
        Ok(true)
    }

    /// Writes a snapshot now, on the calling thread. `Err` is the RESP error line.
    pub fn snapshot_now(&self, why: &str) -> Result<(), String> {
        if !self.ready.load(Ordering::Acquire) {
            return Err("LOADING Ringcache is loading the dataset in memory".into());
        }
        self.in_progress.store(true, Ordering::Relaxed);
        self.current_started_ms.store(now_ms(), Ordering::Relaxed);
        let writes_before = metrics::hot_total(HotCounter::Writes);
        let tmp = self.config.dir.join(TMP_FILE);
        // With the log on, a snapshot is its rewrite: later writes go to a new incremental file, the only
        // one (with those after it) replayed over this snapshot.
        let aof_seq = match self.aof.as_ref().map(|a| a.begin_rewrite()) {
            None => Ok(0),
            Some(r) => r,
        };
        let result = match aof_seq {
            Ok(seq) => {
                let written = write::write_snapshot(&self.store, &tmp, &self.snapshot_path(), self.config.codec, seq);
                if let Some(aof) = &self.aof {
                    aof.end_rewrite(seq, written.as_ref().map(|s| s.bytes).map_err(|_| ()));
                }
                written
            }
            Err(e) => {
                if let Some(aof) = &self.aof {
                    aof.end_rewrite(0, Err(()));
                }
                Err(SnapshotError::Aof(e))
            }
        };
        self.in_progress.store(false, Ordering::Relaxed);
        match result {
            Ok(s) => {
                self.writes_at_last_save.store(writes_before, Ordering::Relaxed);
                self.last_save_unix_ms.store(now_ms(), Ordering::Relaxed);
                self.last_duration_ms.store(s.duration.as_millis() as u64, Ordering::Relaxed);
                self.last_keys.store(s.keys, Ordering::Relaxed);
                self.last_bytes.store(s.bytes, Ordering::Relaxed);
                self.last_status_ok.store(true, Ordering::Relaxed);
                self.saves_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "{why} snapshot: {} keys, {} bytes in {:.3}s (longest stripe lock {:.2}ms)",
                    s.keys,
                    s.bytes,
                    s.duration.as_secs_f64(),
                    s.longest_lock_hold.as_secs_f64() * 1000.0
                );
                Ok(())
            }
            Err(e) => {
                self.last_status_ok.store(false, Ordering::Relaxed);
                self.saves_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{why} snapshot failed: {e}");
                Err(format!("ERR snapshot failed: {e}"))
            }
        }
    }

    /// Whether a final snapshot is due at shutdown: configured, restored, and something changed.
    fn final_snapshot_due(&self) -> bool {
        self.config.on_shutdown
            && !self.config.interval.is_zero()
            && self.ready.load(Ordering::Acquire)
            && (self.changes_since_last_save() > 0 || !self.last_status_ok())
    }
}

/// The running background thread.
pub struct PersistenceThread {
    persistence: Arc<Persistence>,
    handle: JoinHandle<Result<(), String>>,
}

impl PersistenceThread {
    /// Stops the thread (after the snapshot it is writing, if any), then takes the final snapshot if one
    /// is due. `Err` carries why the shard could not start (a snapshot it refused to load).
    pub fn finish(self) -> Result<(), String> {
        let p = &self.persistence;
        p.stop.store(true, Ordering::Relaxed);
        {
            let _r = p.requests.lock();
            p.wakeup.notify_all();
        }
        let outcome = self.handle.join().unwrap_or_else(|_| Err("the snapshot thread panicked".into()));
        outcome?;
        if p.final_snapshot_due() {
            p.snapshot_now("final").map_err(|e| e.trim_start_matches("ERR ").to_string())?;
        }
        if let Some(aof) = &p.aof {
            if p.ready.load(Ordering::Acquire) {
                aof.close().map_err(|e| format!("append-only log: {e}"))?;
            }
            if let Some(handle) = p.aof_thread.lock().take() {
                let _ = handle.join();
            }
        }
        Ok(())
    }
}
