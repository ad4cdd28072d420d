//! Replaying the incremental files over the restored snapshot, at start.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::format::{entries, read_frames, Entry, FrameEnd};
use super::manifest::incr_name;
use crate::snapshot::format::RecordDecoder;
use crate::store::Store;

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub files: usize,
    pub frames: u64,
    pub bytes: u64,
    /// Keys that could not fit in `--maxmemory`.
    pub keys_too_large: u64,
    /// A torn tail cut off the last file: the file, the bytes dropped and why.
    pub truncated: Option<Truncation>,
}

#[derive(Debug, Clone)]
pub struct Truncation {
    pub file: String,
    pub at_offset: u64,
    pub bytes_dropped: u64,
    pub reason: String,
}

/// Why the log cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file} is damaged before its end ({reason}); its later frames cannot be trusted")]
    Corrupt { file: String, offset: u64, reason: String },
    #[error("loading was interrupted by shutdown")]
    Interrupted,
}

/// Replays incremental files `seqs` (in order) from `dir` into `store`. A torn tail of the *last* file (a
/// frame cut by a crash) is cut off the file and reported; damage anywhere else is an error, and so is a
/// torn frame in a file that another follows. With `keep_going_on_corrupt`, a damaged file is cut where the
/// damage starts instead and the files after it are not replayed (the caller drops them from the list):
/// the returned count says how many files were used.
pub fn replay(
    store: &Store,
    dir: &Path,
    seqs: &[u32],
    now_ms: u64,
    stop: &AtomicBool,
    keep_going_on_corrupt: bool,
) -> Result<(ReplaySummary, usize), ReplayError> {
    let mut summary = ReplaySummary::default();
    for (i, &seq) in seqs.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Err(ReplayError::Interrupted);
        }
        let name = incr_name(seq);
        let path = dir.join(&name);
        let shown = path.display().to_string();
        let data = std::fs::read(&path).map_err(|source| ReplayError::Io { file: shown.clone(), source })?;
        summary.files += 1;
        let end = read_frames(&data, |_, payload| {
            summary.frames += 1;
            apply_frame(store, payload, now_ms, &mut summary.keys_too_large)
        });
        let is_last = i + 1 == seqs.len();
        let (valid, reason, corrupt) = match end {
            FrameEnd::Clean => {
                summary.bytes += data.len() as u64;
                continue;
            }
            FrameEnd::Torn { valid, reason } if is_last => (valid, reason, false),
            FrameEnd::Torn { valid, reason } => (valid, format!("{reason}, and another file follows it"), true),
            FrameEnd::Corrupt { offset, reason } => (offset, reason, true),
        };
        if corrupt && !keep_going_on_corrupt {
            return Err(ReplayError::Corrupt { file: shown, offset: valid, reason });
        }
        // Cut the file where its good frames end, so the next start finds it clean.
        let io = |source| ReplayError::Io { file: shown.clone(), source };
        let file = std::fs::OpenOptions::new().write(true).open(&path).map_err(io)?;
        let keep = valid.max(super::format::MAGIC.len() as u64);
        if valid < super::format::MAGIC.len() as u64 {
            // Cut inside the magic: write it whole again.
            use std::io::Write;
            file.set_len(0).map_err(io)?;
            (&file).write_all(super::format::MAGIC).map_err(io)?;
        } else {
            file.set_len(keep).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        summary.bytes += keep;
        summary.truncated =
            Some(Truncation { file: shown, at_offset: valid, bytes_dropped: data.len() as u64 - valid, reason });
        return Ok((summary, i + 1));
    }
    Ok((summary, seqs.len()))
}

/// Applies one (checksummed) frame.
fn apply_frame(store: &Store, payload: &[u8], now_ms: u64, too_large: &mut u64) -> Result<(), String> {
    for entry in entries(payload) {
        match entry? {
            Entry::Set(bytes) => {
                let mut decoder = RecordDecoder::new(bytes);
                let record = decoder.next_record()?;
                if !decoder.is_empty() {
                    return Err("trailing bytes after a record".into());
                }
                if record.expire_at_ms.is_some_and(|at| at <= now_ms) {
                    remove(store, record.key);
                } else if !crate::snapshot::load::insert(store, record, now_ms) {
                    *too_large += 1;
                }
            }
            Entry::Delete(key) => remove(store, key),
            Entry::Flush => store.clear(),
        }
    }
    Ok(())
}

fn remove(store: &Store, key: &[u8]) {
    let hash = store.hash(key);
    let mut g = store.lock(hash);
    if let Some(slot) = g.find_live(hash, key, 0) {
        g.remove(slot);
    }
}
