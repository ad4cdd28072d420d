//! Loading a snapshot: every block's checksums are verified first, then the records are inserted. A file
//! that fails verification inserts nothing; one that fails while inserting (only possible through a bug or a
//! file changed under us) is reported and the caller empties the store.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::format::{BlockReader, FormatError, RecordDecoder, RecordValue};
use crate::store::{string_entry_cost, Store, NO_SLOT};

/// What a load did.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadSummary {
    pub keys_loaded: u64,
    /// Keys whose TTL passed while the shard was down (skipped).
    pub keys_expired: u64,
    /// Keys that could not fit in `--maxmemory` even after evicting.
    pub keys_too_large: u64,
    pub bytes: u64,
    pub duration: Duration,
    /// The append-only log's first incremental file to replay after it (from the snapshot's header).
    pub aof_seq: u32,
}

/// Why a load did not finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("loading was interrupted by shutdown")]
    Interrupted,
}

/// Progress a load reports while it runs (for INFO's `loading_*` fields).
#[derive(Debug, Default)]
pub struct LoadProgress {
    pub total_bytes: AtomicU64,
    pub loaded_bytes: AtomicU64,
}

/// Verifies `path` end to end, then inserts its live keys into `store`.
pub fn load_snapshot(
    store: &Store,
    path: &Path,
    now_ms: u64,
    progress: &LoadProgress,
    stop: &AtomicBool,
) -> Result<LoadSummary, LoadError> {
    let started = Instant::now();
    let open = || -> Result<(BufReader<File>, u64), FormatError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok((BufReader::with_capacity(1 << 20, file), len))
    };
    // Pass 1: checksums only, nothing inserted.
    let (input, file_len) = open()?;
    progress.total_bytes.store(file_len, Ordering::Relaxed);
    let mut reader = BlockReader::new(input, file_len)?;
    while reader.next_block(false)?.is_some() {
        if stop.load(Ordering::Relaxed) {
            return Err(LoadError::Interrupted);
        }
    }
    // Pass 2: decode and insert.
    let (input, file_len) = open()?;
    let mut reader = BlockReader::new(input, file_len)?;
    let mut summary = LoadSummary { bytes: file_len, aof_seq: reader.aof_seq, ..LoadSummary::default() };
    while let Some(block) = reader.next_block(true)? {
        let (index, offset) = (block.index, block.offset);
        let mut decoder = RecordDecoder::new(block.raw);
        let mut records = 0u32;
        while !decoder.is_empty() {
            let record = decoder.next_record().map_err(|what| FormatError::Malformed { block: index, offset, what })?;
            records += 1;
            if record.expire_at_ms.is_some_and(|at| at <= now_ms) {
                summary.keys_expired += 1;
                continue;
            }
            if insert(store, record, now_ms) {
                summary.keys_loaded += 1;
            } else {
                summary.keys_too_large += 1;
            }
        }
        if records != block.records {
            return Err(FormatError::Malformed {
                block: index,
                offset,
                what: format!("holds {records} records but its header says {}", block.records),
            }
            .into());
        }
        progress.loaded_bytes.store(reader.offset(), Ordering::Relaxed);
        if stop.load(Ordering::Relaxed) {
            return Err(LoadError::Interrupted);
        }
    }
    summary.duration = started.elapsed();
    Ok(summary)
}

/// Inserts one record (a later record for the same key replaces an earlier one). False if it cannot fit.
pub(crate) fn insert(store: &Store, record: super::format::Record<'_>, now_ms: u64) -> bool {
    let key = record.key;
    let hash = store.hash(key);
    let mut g = store.lock(hash);
    if let Some(old) = g.lookup(hash, key, now_ms) {
        g.remove(old);
    }
    let slot = match record.value {
        RecordValue::String(value) => {
            if g.reserve(string_entry_cost(key.len(), value.len()), NO_SLOT).is_err() {
                return false;
            }
            g.insert_string(hash, key, value)
        }
        RecordValue::Collection(value, charged) => {
            if g.reserve(charged + string_entry_cost(key.len(), 4), NO_SLOT).is_err() {
                return false;
            }
            g.insert_collection(hash, key, value, charged)
        }
    };
    if record.expire_at_ms.is_some() {
        g.set_expire(slot, record.expire_at_ms);
    }
    true
}
