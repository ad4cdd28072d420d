//! One key as one snapshot record: how keys travel between shards during a handoff. The record carries the
//! value, its type and its absolute expiry, so a key keeps its TTL when it moves.

use super::format::{encode_collection, encode_string, RecordDecoder};
use crate::store::{Kind, Store};

/// The key's record, or `None` when the key does not exist (or has expired).
pub fn dump(store: &Store, key: &[u8], now_ms: u64) -> Option<Vec<u8>> {
    let hash = store.hash(key);
    let mut g = store.lock(hash);
    let slot = g.lookup(hash, key, now_ms)?;
    let mut out = Vec::new();
    let expire = g.expire_at(slot);
    match g.kind(slot) {
        Kind::String => encode_string(&mut out, key, g.string(slot), expire),
        _ => encode_collection(&mut out, key, g.collection(slot), expire),
    }
    Some(out)
}

/// The key a record is for.
pub fn record_key(record: &[u8]) -> Result<&[u8], RestoreError> {
    RecordDecoder::new(record).next_record().map(|r| r.key).map_err(RestoreError::Malformed)
}

/// Whether the key exists (and has not expired).
pub fn exists(store: &Store, key: &[u8], now_ms: u64) -> bool {
    let hash = store.hash(key);
    store.lock(hash).lookup(hash, key, now_ms).is_some()
}

/// Deletes the key if it is there.
pub fn remove(store: &Store, key: &[u8], now_ms: u64) {
    let hash = store.hash(key);
    let mut g = store.lock(hash);
    if let Some(slot) = g.lookup(hash, key, now_ms) {
        g.remove(slot);
        if let Some(aof) = store.aof() {
            aof.log_key(&g, hash, key, now_ms);
        }
    }
}

/// Why a record could not be restored.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RestoreError {
    #[error("ERR RESTORE payload is not a valid record: {0}")]
    Malformed(String),
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
}

/// Replaces the record's key with the record's value and expiry; a record whose expiry has passed deletes
/// the key. Returns the key.
pub fn restore<'a>(store: &Store, record: &'a [u8], now_ms: u64) -> Result<&'a [u8], RestoreError> {
    let mut decoder = RecordDecoder::new(record);
    let parsed = decoder.next_record().map_err(RestoreError::Malformed)?;
    if !decoder.is_empty() {
        return Err(RestoreError::Malformed("trailing bytes after the record".into()));
    }
    let key = parsed.key;
    if parsed.expire_at_ms.is_some_and(|at| at <= now_ms) {
        remove(store, key, now_ms);
        return Ok(key);
    }
    if super::load::insert(store, parsed, now_ms) {
        if let Some(aof) = store.aof() {
            let hash = store.hash(key);
            let g = store.lock(hash);
            aof.log_key(&g, hash, key, now_ms);
        }
        Ok(key)
    } else {
        Err(RestoreError::OutOfMemory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_dump_and_restore_with_its_expiry() {
        let from = Store::new(1 << 20, 4);
        let to = Store::new(1 << 20, 4);
        let hash = from.hash(b"k");
        {
            let mut g = from.lock(hash);
            let slot = g.insert_string(hash, b"k", b"value");
            g.set_expire(slot, Some(5_000));
        }
        let record = dump(&from, b"k", 1_000).expect("key exists");
        assert_eq!(restore(&to, &record, 1_000), Ok(&b"k"[..]));
        // Each store hashes with its own seed.
        let hash = to.hash(b"k");
        let mut g = to.lock(hash);
        let slot = g.lookup(hash, b"k", 1_000).expect("restored");
        assert_eq!(g.string(slot), b"value");
        assert_eq!(g.expire_at(slot), Some(5_000));
        drop(g);
        assert!(dump(&from, b"missing", 1_000).is_none());
        // Past its expiry, a record deletes the key instead.
        assert_eq!(restore(&to, &record, 6_000), Ok(&b"k"[..]));
        assert!(to.lock(hash).lookup(hash, b"k", 1_000).is_none());
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let store = Store::new(1 << 20, 4);
        for bad in [&b""[..], b"\x00", b"\xff\xff\xff", b"\x01\x05abc"] {
            assert!(matches!(restore(&store, bad, 0), Err(RestoreError::Malformed(_))), "{bad:?}");
        }
    }
}
