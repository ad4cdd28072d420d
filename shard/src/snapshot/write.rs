//! Writing a snapshot: the store is walked stripe by stripe, a bounded chunk of keys per lock, into a
//! temporary file that is fsynced and then renamed over the previous snapshot.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::{Duration, Instant};

use super::format::{encode_collection, encode_string, BlockWriter, Codec};
use super::SnapshotError;
use crate::clock::now_ms;
use crate::store::{Kind, Store};

/// Keys serialized per stripe lock, so a client waits at most for this many (or one block's worth).
const KEYS_PER_LOCK: usize = 512;

/// What a finished snapshot holds.
#[derive(Debug, Clone, Copy)]
pub struct WriteSummary {
    pub keys: u64,
    pub bytes: u64,
    pub duration: Duration,
    /// The longest time one stripe lock was held.
    pub longest_lock_hold: Duration,
}

/// Writes every live key of `store` to `final_path`, through `tmp_path`. The previous file at `final_path`
/// stays intact until the new one is complete and on disk.
pub fn write_snapshot(
    store: &Store,
    tmp_path: &Path,
    final_path: &Path,
    codec: Codec,
    aof_seq: u32,
) -> Result<WriteSummary, SnapshotError> {
    let started = Instant::now();
    let io = |what: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source: std::io::Error| SnapshotError::Io { what, path, source }
    };
    let file = File::create(tmp_path).map_err(io("create", tmp_path))?;
    let result = (|| {
        let out = BufWriter::with_capacity(1 << 20, file);
        let mut w = BlockWriter::new(out, codec, now_ms(), aof_seq)?;
        let mut longest_lock_hold = Duration::ZERO;
        for index in 0..store.stripe_count() {
            let mut cursor = Some(0u32);
            while let Some(from) = cursor {
                let mut g = store.lock_index(index);
                let locked_at = Instant::now();
                let now = now_ms();
                let mut taken = 0;
                cursor = g.scan_from(from, now, |s, slot| {
                    let buf = w.record_buffer();
                    let key = s.key(slot);
                    let expire = s.expire_at(slot);
                    match s.kind(slot) {
                        Kind::String => encode_string(buf, key, s.string(slot), expire),
                        _ => encode_collection(buf, key, s.collection(slot), expire),
                    }
                    taken += 1;
                    taken < KEYS_PER_LOCK && !w.block_is_full()
                });
                drop(g);
                longest_lock_hold = longest_lock_hold.max(locked_at.elapsed());
                // Blocks are compressed and written with no lock held.
                w.records_added(taken)?;
            }
        }
        let keys = w.records;
        let (out, bytes) = w.finish()?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok::<_, std::io::Error>((keys, bytes, longest_lock_hold))
    })();
    let (keys, bytes, longest_lock_hold) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(tmp_path);
            return Err(io("write", tmp_path)(e));
        }
    };
    std::fs::rename(tmp_path, final_path).map_err(io("rename into place", final_path))?;
    if let Some(dir) = final_path.parent() {
        sync_dir(dir).map_err(io("fsync the directory", dir))?;
    }
    Ok(WriteSummary { keys, bytes, duration: started.elapsed(), longest_lock_hold })
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}
