//! The append-only log (`--appendonly yes`): every change, written before its reply is sent, so a shard
//! that crashes comes back with every acknowledged write (with `--appendfsync always`, even if the machine
//! crashes too).
//!
//! - [`format`]: frames (length, CRC-32, entries) and entries (a key's whole state, a deletion, FLUSHALL).
//! - [`manifest`]: Redis 7's multi-part layout: `--dir/<appenddirname>/` holds incremental files
//!   `ringcache.aof.<seq>.incr` and `ringcache.aof.manifest`; the base is the snapshot in `--dir`.
//! - [`replay`]: applying the incremental files over the snapshot at start; a torn tail is cut and reported.
//! - this file: [`AofLog`], the shared buffer the commands append to, the group commit that writes (and with
//!   `always` fsyncs) it before replies leave, the background writer that fsyncs once a second
//!   (`everysec`), and the switch to a new incremental file when a snapshot (the log's rewrite) begins.
//!
//! **What is logged.** Not commands: the state a write left. Once a command (or a whole transaction, or a
//! script) is done, with its stripes still held, the current value and absolute expiry of every key it
//! wrote is encoded as one frame into the shared buffer. So replay is deterministic (random choices, TTLs
//! relative to the clock, scripts: all resolved), idempotent (a frame applied over a snapshot that already
//! holds it changes nothing), and a transaction or script is applied whole or not at all. The cost is
//! that a write to a large collection logs the whole collection. Active expiry and eviction are not logged
//! (an expired key's record carries its deadline; an evicted key may come back after a restart, with its
//! last written value).
//!
//! **Order.** A frame is appended while its keys' stripes are held, and the buffer's lock is taken last
//! (after the stripes): two writes to one key reach the log in the order they happened.
//!
//! **Cost on the write path.** The keys a command wrote are noted in a per-thread list (no allocation once
//! it has grown), encoded straight into the shared buffer, and written out with one `write` per batch of
//! requests (whoever commits first writes everybody's frames: a group commit).

pub mod format;
pub mod manifest;
pub mod replay;

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::snapshot::format::{encode_collection, encode_string};
use crate::store::{Db, Kind, Slot, StoreStripe};

/// When the log is fsynced (Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AppendFsync {
    /// Before the replies of a batch of writes are sent (one fsync covers every connection's waiting writes).
    Always,
    /// Once a second, in the background.
    Everysec,
    /// Never: the operating system writes the file back when it wants.
    No,
}

impl AppendFsync {
    pub fn name(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }
}

/// Log settings from the command line.
#[derive(Debug, Clone)]
pub struct AofConfig {
    /// `--dir/<appenddirname>`.
    pub dir: PathBuf,
    pub fsync: AppendFsync,
    /// Rewrite (take a snapshot) when the incremental files grow past this percentage of the base; 0: never.
    pub rewrite_percentage: u64,
    /// ... and their total is at least this many bytes.
    pub rewrite_min_bytes: u64,
}

/// Why the log cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {path}: {source}")]
pub struct AofError {
    pub what: &'static str,
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// The file being appended to.
struct FileState {
    file: Option<Arc<File>>,
    seq: u32,
    /// Incremental files listed in the manifest, current last.
    listed: Vec<u32>,
    /// Length of the current file.
    len: u64,
    /// Bytes of the listed files before the current one.
    earlier_bytes: u64,
    /// The buffer taken from appenders, being written.
    spare: Vec<u8>,
}

/// The log shared by every connection.
pub struct AofLog {
    pub config: AofConfig,
    buf: Mutex<Vec<u8>>,
    /// Bytes appended since start (a position in the stream of frames, across files).
    appended: AtomicU64,
    /// Of those, written to the file, and fsynced.
    written: AtomicU64,
    synced: AtomicU64,
    file: Mutex<FileState>,
    write_ok: AtomicBool,
    last_write_error: Mutex<String>,
    /// Size of the incremental files (all listed ones), and of the snapshot they follow.
    incr_bytes: AtomicU64,
    base_bytes: AtomicU64,
    rewrites: AtomicU64,
    rewrite_failures_in_a_row: AtomicU64,
    last_rewrite_ok: AtomicBool,
    delayed_fsyncs: AtomicU64,
    pub last_replay: Mutex<replay::ReplaySummary>,
    stop: Mutex<bool>,
    wakeup: Condvar,
    /// With `always`: the highest position a connection waits to see fsynced, and (position fsynced,
    /// failed fsyncs so far) published by the background writer, which fsyncs for every waiting connection
    /// at once.
    wanted: AtomicU64,
    synced_watch: tokio::sync::watch::Sender<(u64, u64)>,
}

/// Keys written by the command (transaction, script) running on this thread, not yet logged.
#[derive(Default)]
struct Touched {
    keys: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Clone, Copy)]
enum Item {
    Key { hash: u64, start: u32, end: u32 },
    Flush,
}

thread_local! {
    static TOUCHED: RefCell<Touched> = RefCell::new(Touched::default());
    /// The stream position this thread's frames reach, since [`take_mark`] was last called.
    static MARK: Cell<u64> = const { Cell::new(0) };
}

/// Notes that the running command wrote `key` (its stripe held; `hash` is the store's hash of it).
#[inline]
pub fn touch(hash: u64, key: &[u8]) {
    TOUCHED.with_borrow_mut(|t| {
        let start = t.keys.len() as u32;
        t.keys.extend_from_slice(key);
        t.items.push(Item::Key { hash, start, end: t.keys.len() as u32 });
    });
}

/// Notes that the running command emptied the store.
pub fn touch_flush() {
    TOUCHED.with_borrow_mut(|t| t.items.push(Item::Flush));
}

/// The stream position the frames appended by this thread reach (0 if none), since the last call.
#[inline]
pub fn take_mark() -> u64 {
    MARK.replace(0)
}

fn mark(position: u64) {
    MARK.set(MARK.get().max(position));
}

impl AofLog {
    /// Creates the log's directory. Nothing is written until [`AofLog::start_writing`], after replay.
    pub fn open(config: AofConfig) -> Result<Arc<AofLog>, AofError> {
        std::fs::create_dir_all(&config.dir).map_err(|source| AofError {
            what: "create",
            path: config.dir.display().to_string(),
            source,
        })?;
        Ok(Arc::new(AofLog {
            config,
            buf: Mutex::new(Vec::with_capacity(1 << 16)),
            appended: AtomicU64::new(0),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            file: Mutex::new(FileState {
                file: None,
                seq: 0,
                listed: Vec::new(),
                len: 0,
                earlier_bytes: 0,
                spare: Vec::with_capacity(1 << 16),
            }),
            write_ok: AtomicBool::new(true),
            last_write_error: Mutex::new(String::new()),
            incr_bytes: AtomicU64::new(0),
            base_bytes: AtomicU64::new(0),
            rewrites: AtomicU64::new(0),
            rewrite_failures_in_a_row: AtomicU64::new(0),
            last_rewrite_ok: AtomicBool::new(true),
            delayed_fsyncs: AtomicU64::new(0),
            last_replay: Mutex::new(replay::ReplaySummary::default()),
            stop: Mutex::new(false),
            wakeup: Condvar::new(),
            wanted: AtomicU64::new(0),
            synced_watch: tokio::sync::watch::Sender::new((0, 0)),
        }))
    }

    fn err(&self, what: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AofError {
        let path = path.display().to_string();
        move |source| AofError { what, path, source }
    }

    /// After replay: `listed` are the incremental files still in use; a new one is created after them and
    /// the manifest rewritten. Files the manifest does not list are deleted.
    pub fn start_writing(&self, mut listed: Vec<u32>, base_bytes: u64) -> Result<(), AofError> {
        let dir = &self.config.dir;
        let seq = listed.iter().max().copied().unwrap_or(0) + 1;
        let path = dir.join(manifest::incr_name(seq));
        let file = create_incr(&path).map_err(self.err("create", &path))?;
        let mut earlier = 0;
        for &s in &listed {
            earlier += std::fs::metadata(dir.join(manifest::incr_name(s))).map(|m| m.len()).unwrap_or(0);
        }
        listed.push(seq);
        manifest::write(dir, &listed).map_err(self.err("write the manifest in", dir))?;
        for stray in manifest::strays(dir, &listed).map_err(self.err("list", dir))? {
            tracing::warn!("removing {}: the append-only log's manifest does not list it", stray.display());
            let _ = std::fs::remove_file(stray);
        }
        let mut f = self.file.lock();
        f.file = Some(Arc::new(file));
        f.seq = seq;
        f.listed = listed;
        f.len = format::MAGIC.len() as u64;
        f.earlier_bytes = earlier;
        self.incr_bytes.store(earlier + f.len, Ordering::Relaxed);
        self.base_bytes.store(base_bytes, Ordering::Relaxed);
        tracing::info!("append-only log: writing {} (appendfsync {})", path.display(), self.config.fsync.name());
        Ok(())
    }

    /// Logs the state of every key the command on this thread wrote, as one frame. The caller holds their
    /// stripes in `db`.
    pub fn emit(&self, db: &Db<'_>, now_ms: u64) {
        TOUCHED.with_borrow_mut(|t| {
            if t.items.is_empty() {
                return;
            }
            let mut buf = self.buf.lock();
            let start = format::begin_frame(&mut buf);
            for item in &t.items {
                match *item {
                    Item::Flush => format::put_flush(&mut buf),
                    Item::Key { hash, start, end } => {
                        let key = &t.keys[start as usize..end as usize];
                        match db.peek(hash) {
                            Ok(stripe) => put_state(&mut buf, stripe, hash, key, now_ms),
                            Err(_) => {
                                // Not reachable: a command writes only keys whose stripes it holds.
                                tracing::error!("append-only log: a written key's stripe is not held; not logged");
                            }
                        }
                    }
                }
            }
            self.close_frame(&mut buf, start);
            t.items.clear();
            t.keys.clear();
        });
    }

    /// Logs one key's state as a frame of its own (handoffs, which lock the key's stripe themselves).
    pub fn log_key(&self, stripe: &StoreStripe, hash: u64, key: &[u8], now_ms: u64) {
        let mut buf = self.buf.lock();
        let start = format::begin_frame(&mut buf);
        put_state(&mut buf, stripe, hash, key, now_ms);
        self.close_frame(&mut buf, start);
    }

    fn close_frame(&self, buf: &mut Vec<u8>, start: usize) {
        if format::end_frame(buf, start) {
            let position =
                self.appended.fetch_add((buf.len() - start) as u64, Ordering::Release) + (buf.len() - start) as u64;
            mark(position);
        }
    }

    /// Bytes appended so far (a position to [`AofLog::commit`] up to).
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    /// [`AofLog::commit`] for a connection: with `always`, the fsync is left to the background writer and
    /// awaited, so the worker thread serves other connections meanwhile, whose frames the same fsync then
    /// covers (one fsync per round of the writer, not per batch). Other policies write here.
    pub async fn commit_async(&self, upto: u64) -> Result<(), AofError> {
        if self.config.fsync != AppendFsync::Always {
            return self.commit(upto);
        }
        if upto == 0 || self.synced.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        let mut rx = self.synced_watch.subscribe();
        let failures_before = rx.borrow().1;
        self.wanted.fetch_max(upto, Ordering::AcqRel);
        {
            let _stop = self.stop.lock();
            self.wakeup.notify_all();
        }
        let outcome = rx.wait_for(|&(synced, failures)| synced >= upto || failures > failures_before).await;
        match outcome {
            Ok(state) if state.0 >= upto => Ok(()),
            _ => Err(AofError {
                what: "fsync",
                path: self.config.dir.display().to_string(),
                source: std::io::Error::other(self.last_write_error.lock().clone()),
            }),
        }
    }

    /// Makes sure everything up to stream position `upto` is written (and, with `always`, fsynced) before
    /// the caller sends replies. One caller writes (and fsyncs) for every connection waiting.
    pub fn commit(&self, upto: u64) -> Result<(), AofError> {
        let always = self.config.fsync == AppendFsync::Always;
        let done = if always { &self.synced } else { &self.written };
        if upto == 0 || done.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        let mut f = self.file.lock();
        if done.load(Ordering::Acquire) >= upto {
            return Ok(());
        }
        self.write_out(&mut f)?;
        if always {
            self.sync(&f)?;
        }
        Ok(())
    }

    /// Writes what appenders have buffered to the current file.
    fn write_out(&self, f: &mut FileState) -> Result<(), AofError> {
        let end = {
            let mut b = self.buf.lock();
            debug_assert!(f.spare.is_empty());
            std::mem::swap(&mut *b, &mut f.spare);
            self.appended.load(Ordering::Acquire)
        };
        if f.spare.is_empty() {
            return Ok(());
        }
        let Some(file) = f.file.clone() else {
            // Not writing yet (loading): nothing is appended then, but keep it if it was.
            let mut b = self.buf.lock();
            f.spare.extend_from_slice(&b);
            std::mem::swap(&mut *b, &mut f.spare);
            f.spare.clear();
            return Ok(());
        };
        match (&*file).write_all(&f.spare) {
            Ok(()) => {
                f.len += f.spare.len() as u64;
                f.spare.clear();
                if f.spare.capacity() > 4 << 20 {
                    f.spare = Vec::with_capacity(1 << 16);
                }
                self.incr_bytes.store(f.earlier_bytes + f.len, Ordering::Relaxed);
                self.written.store(end, Ordering::Release);
                if !self.write_ok.swap(true, Ordering::Relaxed) {
                    tracing::info!("append-only log: writing works again");
                }
                Ok(())
            }
            Err(source) => {
                // Cut what was half written, and keep the frames for the next attempt, ahead of newer ones.
                let _ = file.set_len(f.len);
                let mut b = self.buf.lock();
                f.spare.extend_from_slice(&b);
                std::mem::swap(&mut *b, &mut f.spare);
                f.spare.clear();
                drop(b);
                let path = self.config.dir.join(manifest::incr_name(f.seq));
                self.write_failed(&source);
                Err(AofError { what: "write", path: path.display().to_string(), source })
            }
        }
    }

    fn write_failed(&self, e: &std::io::Error) {
        if self.write_ok.swap(false, Ordering::Relaxed) {
            tracing::error!("append-only log: writing failed: {e}; write commands are refused until it works");
        }
        *self.last_write_error.lock() = e.to_string();
    }

    fn sync(&self, f: &FileState) -> Result<(), AofError> {
        let Some(file) = &f.file else { return Ok(()) };
        let written = self.written.load(Ordering::Acquire);
        file.sync_data().map_err(|source| {
            self.write_failed(&source);
            self.synced_watch.send_modify(|s| s.1 += 1);
            AofError {
                what: "fsync",
                path: self.config.dir.join(manifest::incr_name(f.seq)).display().to_string(),
                source,
            }
        })?;
        self.synced.fetch_max(written, Ordering::Release);
        let synced = self.synced.load(Ordering::Acquire);
        self.synced_watch.send_if_modified(|s| {
            let changed = s.0 < synced;
            s.0 = s.0.max(synced);
            changed
        });
        Ok(())
    }

    /// Whether the last write to the log worked (write commands are refused otherwise, as Redis does).
    pub fn write_ok(&self) -> bool {
        self.write_ok.load(Ordering::Relaxed)
    }

    /// Redis's error for writes refused while the log cannot be written.
    pub fn misconf_error(&self) -> String {
        format!("MISCONF Errors writing to the AOF file: {}", self.last_write_error.lock())
    }

    /// A rewrite begins (a snapshot is about to walk the store): everything buffered goes to the current
    /// file, which is fsynced, and later frames go to a new file. Returns the new file's number, which the
    /// snapshot records as the first file to replay after it.
    pub fn begin_rewrite(&self) -> Result<u32, AofError> {
        let mut f = self.file.lock();
        if f.file.is_none() {
            return Ok(0);
        }
        self.write_out(&mut f)?;
        self.sync(&f)?;
        let seq = f.seq + 1;
        let dir = &self.config.dir;
        let path = dir.join(manifest::incr_name(seq));
        let file = create_incr(&path).map_err(self.err("create", &path))?;
        let mut listed = f.listed.clone();
        listed.push(seq);
        manifest::write(dir, &listed).map_err(self.err("write the manifest in", dir))?;
        f.earlier_bytes += f.len;
        f.listed = listed;
        f.file = Some(Arc::new(file));
        f.seq = seq;
        f.len = format::MAGIC.len() as u64;
        self.incr_bytes.store(f.earlier_bytes + f.len, Ordering::Relaxed);
        Ok(seq)
    }

    /// The snapshot that began with [`AofLog::begin_rewrite`] returning `seq` is on disk (`Ok(bytes)`) or
    /// failed. On success the files before `seq` are dropped from the manifest and deleted.
    pub fn end_rewrite(&self, seq: u32, outcome: Result<u64, ()>) {
        let Ok(snapshot_bytes) = outcome else {
            self.last_rewrite_ok.store(false, Ordering::Relaxed);
            self.rewrite_failures_in_a_row.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut f = self.file.lock();
        if seq == 0 || f.file.is_none() {
            return;
        }
        let dir = &self.config.dir;
        let (drop, keep): (Vec<u32>, Vec<u32>) = f.listed.iter().partition(|&&s| s < seq);
        if let Err(e) = manifest::write(dir, &keep) {
            tracing::error!("append-only log: cannot rewrite the manifest in {}: {e}", dir.display());
            self.last_rewrite_ok.store(false, Ordering::Relaxed);
            self.rewrite_failures_in_a_row.fetch_add(1, Ordering::Relaxed);
            return;
        }
        for s in &drop {
            let _ = std::fs::remove_file(dir.join(manifest::incr_name(*s)));
        }
        let mut earlier = 0;
        for &s in keep.iter().filter(|&&s| s != f.seq) {
            earlier += std::fs::metadata(dir.join(manifest::incr_name(s))).map(|m| m.len()).unwrap_or(0);
        }
        f.earlier_bytes = earlier;
        f.listed = keep;
        self.incr_bytes.store(f.earlier_bytes + f.len, Ordering::Relaxed);
        self.base_bytes.store(snapshot_bytes, Ordering::Relaxed);
        self.rewrites.fetch_add(1, Ordering::Relaxed);
        self.rewrite_failures_in_a_row.store(0, Ordering::Relaxed);
        self.last_rewrite_ok.store(true, Ordering::Relaxed);
    }

    /// Whether the incremental files have grown enough for an automatic rewrite.
    pub fn rewrite_due(&self) -> bool {
        let pct = self.config.rewrite_percentage;
        if pct == 0 || !self.last_rewrite_ok.load(Ordering::Relaxed) && self.rewrite_failures_in_a_row() > 3 {
            return false;
        }
        let incr = self.incr_bytes.load(Ordering::Relaxed);
        let base = self.base_bytes.load(Ordering::Relaxed);
        base + incr >= self.config.rewrite_min_bytes && incr.saturating_mul(100) >= pct.saturating_mul(base.max(1))
    }

    /// The background writer: writes buffered frames every 100 ms (frames appended outside a connection's
    /// batch, by handoffs), with `everysec` fsyncs once a second, outside the file's lock (appends and
    /// writes go on meanwhile), and with `always` writes and fsyncs as soon as a connection waits for it,
    /// for everything appended by then.
    pub fn start_background(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let this = self.clone();
        std::thread::Builder::new().name("aof".into()).spawn(move || this.background())
    }

    fn background(&self) {
        let mut last_sync = Instant::now();
        let always = self.config.fsync == AppendFsync::Always;
        loop {
            {
                let mut stop = self.stop.lock();
                let waited_for = || always && self.wanted.load(Ordering::Acquire) > self.synced.load(Ordering::Acquire);
                if !*stop && !waited_for() {
                    self.wakeup.wait_for(&mut stop, Duration::from_millis(100));
                }
                if *stop {
                    return;
                }
            }
            let file = {
                let mut f = self.file.lock();
                if let Err(e) = self.write_out(&mut f) {
                    tracing::debug!("append-only log: background write failed: {e}");
                }
                if self.config.fsync == AppendFsync::Always {
                    let _ = self.sync(&f);
                }
                f.file.clone()
            };
            if self.config.fsync == AppendFsync::Everysec && last_sync.elapsed() >= Duration::from_secs(1) {
                let written = self.written.load(Ordering::Acquire);
                if written > self.synced.load(Ordering::Acquire) {
                    if let Some(file) = file {
                        let started = Instant::now();
                        match file.sync_data() {
                            Ok(()) => {
                                self.synced.fetch_max(written, Ordering::Release);
                            }
                            Err(e) => self.write_failed(&e),
                        }
                        if started.elapsed() > Duration::from_secs(2) {
                            self.delayed_fsyncs.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                last_sync = Instant::now();
            }
        }
    }

    /// At shutdown: stops the background writer, writes and fsyncs everything.
    pub fn close(&self) -> Result<(), AofError> {
        *self.stop.lock() = true;
        self.wakeup.notify_all();
        let mut f = self.file.lock();
        self.write_out(&mut f)?;
        self.sync(&f)
    }

    pub fn incr_bytes(&self) -> u64 {
        self.incr_bytes.load(Ordering::Relaxed)
    }
    pub fn base_bytes(&self) -> u64 {
        self.base_bytes.load(Ordering::Relaxed)
    }
    pub fn buffer_bytes(&self) -> u64 {
        self.appended().saturating_sub(self.written.load(Ordering::Acquire))
    }
    pub fn rewrites(&self) -> u64 {
        self.rewrites.load(Ordering::Relaxed)
    }
    pub fn rewrite_failures_in_a_row(&self) -> u64 {
        self.rewrite_failures_in_a_row.load(Ordering::Relaxed)
    }
    pub fn last_rewrite_ok(&self) -> bool {
        self.last_rewrite_ok.load(Ordering::Relaxed)
    }
    pub fn delayed_fsyncs(&self) -> u64 {
        self.delayed_fsyncs.load(Ordering::Relaxed)
    }
    /// The incremental files listed now.
    pub fn listed(&self) -> Vec<u32> {
        self.file.lock().listed.clone()
    }
}

/// Encodes `key`'s state in `stripe` (its record, or a deletion).
fn put_state(buf: &mut Vec<u8>, stripe: &StoreStripe, hash: u64, key: &[u8], now_ms: u64) {
    let Some(slot) = stripe.find_live(hash, key, now_ms) else {
        format::put_delete(buf, key);
        return;
    };
    put_record(buf, stripe, slot, key);
}

fn put_record(buf: &mut Vec<u8>, stripe: &StoreStripe, slot: Slot, key: &[u8]) {
    let at = format::begin_entry(buf, format::OP_SET);
    let expire = stripe.expire_at(slot);
    match stripe.kind(slot) {
        Kind::String => encode_string(buf, key, stripe.string(slot), expire),
        _ => encode_collection(buf, key, stripe.collection(slot), expire),
    }
    format::end_entry(buf, at);
}

fn create_incr(path: &std::path::Path) -> std::io::Result<File> {
    let mut file = File::options().create(true).truncate(true).write(true).open(path)?;
    file.write_all(format::MAGIC)?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        crate::snapshot::write::sync_dir(dir)?;
    }
    Ok(file)
}
