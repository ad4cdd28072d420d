//! The snapshot file format: a header, checksummed blocks of records, and an end marker.
//!
//! All integers are little-endian.
//!
//! ```text
//! header (32 bytes)   magic "RINGSNAP" | version u32 | flags u32 | created_unix_ms u64 | aof_seq u32 | crc32 u32
//! block  (32 + n)     tag u8 ('B') | codec u8 | reserved u16 | records u32 | raw_len u64 | stored_len u64
//!                     | payload_crc32 u32 | header_crc32 u32 | payload (stored_len bytes)
//! end    (32 + 16)    a block with tag 'E', codec 0, whose payload is total_records u64 | total_blocks u64
//! ```
//!
//! `aof_seq` is the append-only log's incremental file that was current when the snapshot began (0: the log
//! was off): replay after this snapshot starts at that file.
//!
//! Each block header has its own checksum, verified before its lengths are trusted, and the payload has
//! another, so damage is located to one block and never makes the reader allocate absurd amounts. The
//! payload is `raw_len` bytes of records, stored as is (codec 0) or LZ4-compressed (codec 1). A file that
//! ends before its end marker is truncated; the end marker's counts must match what was read.
//!
//! A record is `type u8` (the value's kind, plus `0x80` when an expiry follows) `| [expire_at_ms u64]
//! | key | value`, where byte strings are a LEB128 length and the bytes, and a value is a string, or a
//! LEB128 element count followed by the elements (hash: field and value; list and set: item; sorted set:
//! member and the score as f64 bits).

use std::io::{Read, Write};

use crate::store::{
    hash_field_cost, list_item_cost, set_member_cost, zset_member_cost, Collection, Hash, Kind, List, Set, ZSet,
};

pub const MAGIC: &[u8; 8] = b"RINGSNAP";
pub const VERSION: u32 = 1;
pub const FILE_HEADER_BYTES: usize = 32;
pub const BLOCK_HEADER_BYTES: usize = 32;
/// A block is closed once its records reach this many bytes (a larger record gets a block of its own).
pub const BLOCK_TARGET_BYTES: usize = 256 * 1024;

const TAG_BLOCK: u8 = b'B';
const TAG_END: u8 = b'E';
const EXPIRY_BIT: u8 = 0x80;

/// How a block's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    /// As is.
    None = 0,
    /// LZ4 block compression (kept only when it saves space).
    Lz4 = 1,
}

/// What is wrong with a snapshot file. Offsets are byte positions in the file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("it is not a Ringcache snapshot: it starts with {found:?}, not \"RINGSNAP\"")]
    BadMagic { found: String },
    #[error("it has format version {found}, but this build reads only version {supported}")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("its header fails its checksum")]
    HeaderChecksum,
    #[error("it is truncated: it ends at byte {offset}, inside {what}")]
    Truncated { offset: u64, what: String },
    #[error("block {block} at byte {offset} fails its checksum ({part})")]
    BlockChecksum { block: u64, offset: u64, part: &'static str },
    #[error("block {block} at byte {offset} is malformed: {what}")]
    Malformed { block: u64, offset: u64, what: String },
    #[error("its end marker counts {expected_blocks} blocks and {expected_records} keys, but it holds {blocks} blocks and {records} keys")]
    CountMismatch { expected_blocks: u64, expected_records: u64, blocks: u64, records: u64 },
    #[error("it has {extra} bytes after its end marker (at byte {offset})")]
    TrailingBytes { offset: u64, extra: u64 },
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/// Writes the header, then blocks of records as they fill, then the end marker.
pub struct BlockWriter<W: Write> {
    out: W,
    codec: Codec,
    /// Records of the block being filled.
    raw: Vec<u8>,
    raw_records: u32,
    compressed: Vec<u8>,
    pub blocks: u64,
    pub records: u64,
    pub bytes_written: u64,
}

impl<W: Write> BlockWriter<W> {
    pub fn new(mut out: W, codec: Codec, created_unix_ms: u64, aof_seq: u32) -> std::io::Result<Self> {
        let mut header = [0u8; FILE_HEADER_BYTES];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&created_unix_ms.to_le_bytes());
        header[24..28].copy_from_slice(&aof_seq.to_le_bytes());
        let crc = crc32fast::hash(&header[..28]);
        header[28..32].copy_from_slice(&crc.to_le_bytes());
        out.write_all(&header)?;
        Ok(BlockWriter {
            out,
            codec,
            raw: Vec::with_capacity(BLOCK_TARGET_BYTES + 4096),
            raw_records: 0,
            compressed: Vec::new(),
            blocks: 0,
            records: 0,
            bytes_written: FILE_HEADER_BYTES as u64,
        })
    }

    /// The buffer records are encoded into; call [`Self::records_added`] after encoding some.
    pub fn record_buffer(&mut self) -> &mut Vec<u8> {
        &mut self.raw
    }

    /// Counts `n` records just encoded and writes the block out if it is full.
    pub fn records_added(&mut self, n: usize) -> std::io::Result<()> {
        self.raw_records += n as u32;
        self.records += n as u64;
        if self.raw.len() >= BLOCK_TARGET_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Whether the current block has reached its target size (callers use it to bound work per lock).
    pub fn block_is_full(&self) -> bool {
        self.raw.len() >= BLOCK_TARGET_BYTES
    }

    fn flush_block(&mut self) -> std::io::Result<()> {
        if self.raw_records == 0 {
            return Ok(());
        }
        let (codec, payload): (Codec, &[u8]) = match self.codec {
            Codec::Lz4 => {
                let bound = lz4_flex::block::get_maximum_output_size(self.raw.len());
                self.compressed.resize(bound, 0);
                let n = lz4_flex::block::compress_into(&self.raw, &mut self.compressed)
                    .map_err(|e| std::io::Error::other(format!("lz4: {e}")))?;
                // Keep compression only where it saves at least an eighth.
                if n < self.raw.len() - self.raw.len() / 8 {
                    (Codec::Lz4, &self.compressed[..n])
                } else {
                    (Codec::None, &self.raw)
                }
            }
            Codec::None => (Codec::None, &self.raw),
        };
        let header = block_header(TAG_BLOCK, codec, self.raw_records, self.raw.len() as u64, payload);
        self.out.write_all(&header)?;
        self.out.write_all(payload)?;
        self.bytes_written += (header.len() + payload.len()) as u64;
        self.blocks += 1;
        self.raw.clear();
        self.raw_records = 0;
        Ok(())
    }

    /// Writes the last block and the end marker; returns the writer and the file's size in bytes.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.flush_block()?;
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&self.records.to_le_bytes());
        payload[8..].copy_from_slice(&self.blocks.to_le_bytes());
        let header = block_header(TAG_END, Codec::None, 0, payload.len() as u64, &payload);
        self.out.write_all(&header)?;
        self.out.write_all(&payload)?;
        self.bytes_written += (header.len() + payload.len()) as u64;
        Ok((self.out, self.bytes_written))
    }
}

fn block_header(tag: u8, codec: Codec, records: u32, raw_len: u64, payload: &[u8]) -> [u8; BLOCK_HEADER_BYTES] {
    let mut h = [0u8; BLOCK_HEADER_BYTES];
    h[0] = tag;
    h[1] = codec as u8;
    h[4..8].copy_from_slice(&records.to_le_bytes());
    h[8..16].copy_from_slice(&raw_len.to_le_bytes());
    h[16..24].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    h[24..28].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

fn put_len(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_head(out: &mut Vec<u8>, kind: Kind, key: &[u8], expire_at_ms: Option<u64>) {
    match expire_at_ms {
        Some(at) => {
            out.push(kind.tag() | EXPIRY_BIT);
            out.extend_from_slice(&at.to_le_bytes());
        }
        None => out.push(kind.tag()),
    }
    put_bytes(out, key);
}

/// Appends a string record.
pub fn encode_string(out: &mut Vec<u8>, key: &[u8], value: &[u8], expire_at_ms: Option<u64>) {
    put_head(out, Kind::String, key, expire_at_ms);
    put_bytes(out, value);
}

/// Appends a collection record.
pub fn encode_collection(out: &mut Vec<u8>, key: &[u8], value: &Collection, expire_at_ms: Option<u64>) {
    put_head(out, value.kind(), key, expire_at_ms);
    match value {
        Collection::Hash(h) => {
            put_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        Collection::List(l) => {
            put_len(out, l.len() as u64);
            for item in l.iter() {
                put_bytes(out, item);
            }
        }
        Collection::Set(s) => {
            put_len(out, s.len() as u64);
            for m in s.iter() {
                put_bytes(out, m);
            }
        }
        Collection::ZSet(z) => {
            put_len(out, z.len() as u64);
            // In order, so that loading appends each member after the previous one.
            z.for_each_up(0, |m, score| {
                put_bytes(out, m);
                out.extend_from_slice(&score.to_bits().to_le_bytes());
                true
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reading

/// One block, checksums verified, payload decompressed into the reader's buffer.
pub struct Block<'a> {
    pub index: u64,
    pub offset: u64,
    pub records: u32,
    pub raw: &'a [u8],
}

/// Reads and verifies a snapshot block by block.
pub struct BlockReader<R: Read> {
    input: R,
    file_len: u64,
    offset: u64,
    blocks: u64,
    records: u64,
    stored: Vec<u8>,
    raw: Vec<u8>,
    finished: bool,
    pub created_unix_ms: u64,
    /// The first incremental file of the append-only log to replay after this snapshot (0: all listed).
    pub aof_seq: u32,
}

impl<R: Read> BlockReader<R> {
    /// Reads and checks the header. `file_len` bounds every length read from the file.
    pub fn new(mut input: R, file_len: u64) -> Result<Self, FormatError> {
        if file_len == 0 {
            return Err(FormatError::Empty);
        }
        let mut header = [0u8; FILE_HEADER_BYTES];
        let got = read_full(&mut input, &mut header)?;
        if got >= 8 && &header[..8] != MAGIC {
            return Err(FormatError::BadMagic { found: String::from_utf8_lossy(&header[..8]).into_owned() });
        }
        if got < FILE_HEADER_BYTES {
            let n = got.min(MAGIC.len());
            if header[..n] != MAGIC[..n] {
                return Err(FormatError::BadMagic { found: String::from_utf8_lossy(&header[..n]).into_owned() });
            }
            return Err(FormatError::Truncated { offset: got as u64, what: "the file header".into() });
        }
        let version = u32_at(&header, 8);
        if crc32fast::hash(&header[..28]) != u32_at(&header, 28) {
            // A different version may lay its header out differently; name the version if it looks wrong.
            if version != VERSION {
                return Err(FormatError::UnsupportedVersion { found: version, supported: VERSION });
            }
            return Err(FormatError::HeaderChecksum);
        }
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion { found: version, supported: VERSION });
        }
        Ok(BlockReader {
            input,
            file_len,
            offset: FILE_HEADER_BYTES as u64,
            blocks: 0,
            records: 0,
            stored: Vec::new(),
            raw: Vec::new(),
            finished: false,
            created_unix_ms: u64_at(&header, 16),
            aof_seq: u32_at(&header, 24),
        })
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next block of records, or `None` after a valid end marker. With `decode` false the payload's
    /// checksum is verified but it is not decompressed (`raw` is empty).
    pub fn next_block(&mut self, decode: bool) -> Result<Option<Block<'_>>, FormatError> {
        if self.finished {
            return Ok(None);
        }
        let block_offset = self.offset;
        let index = self.blocks;
        let mut h = [0u8; BLOCK_HEADER_BYTES];
        let got = read_full(&mut self.input, &mut h)?;
        if got < BLOCK_HEADER_BYTES {
            let what = if got == 0 {
                format!("the end marker is missing after block {}", index.saturating_sub(1))
            } else {
                format!("the header of block {index}")
            };
            return Err(FormatError::Truncated { offset: block_offset + got as u64, what });
        }
        if crc32fast::hash(&h[..28]) != u32_at(&h, 28) {
            return Err(FormatError::BlockChecksum { block: index, offset: block_offset, part: "header" });
        }
        let malformed = |what: String| FormatError::Malformed { block: index, offset: block_offset, what };
        let (tag, codec, records) = (h[0], h[1], u32_at(&h, 4));
        let (raw_len, stored_len) = (u64_at(&h, 8), u64_at(&h, 16));
        let payload_at = block_offset + BLOCK_HEADER_BYTES as u64;
        if stored_len > self.file_len.saturating_sub(payload_at) {
            return Err(FormatError::Truncated {
                offset: self.file_len,
                what: format!("block {index}, which needs {stored_len} bytes after byte {payload_at}"),
            });
        }
        self.stored.resize(stored_len as usize, 0);
        let got = read_full(&mut self.input, &mut self.stored)?;
        if got < stored_len as usize {
            return Err(FormatError::Truncated { offset: payload_at + got as u64, what: format!("block {index}") });
        }
        if crc32fast::hash(&self.stored) != u32_at(&h, 24) {
            return Err(FormatError::BlockChecksum { block: index, offset: block_offset, part: "payload" });
        }
        self.offset = payload_at + stored_len;
        match tag {
            TAG_END => {
                if stored_len != 16 {
                    return Err(malformed(format!("end marker of {stored_len} bytes")));
                }
                let (expected_records, expected_blocks) = (u64_at(&self.stored, 0), u64_at(&self.stored, 8));
                if expected_records != self.records || expected_blocks != self.blocks {
                    return Err(FormatError::CountMismatch {
                        expected_blocks,
                        expected_records,
                        blocks: self.blocks,
                        records: self.records,
                    });
                }
                if self.offset != self.file_len {
                    return Err(FormatError::TrailingBytes {
                        offset: self.offset,
                        extra: self.file_len.saturating_sub(self.offset),
                    });
                }
                self.finished = true;
                return Ok(None);
            }
            TAG_BLOCK => {}
            other => return Err(malformed(format!("unknown block tag {other:#04x}"))),
        }
        self.blocks += 1;
        self.records += u64::from(records);
        if !decode {
            return Ok(Some(Block { index, offset: block_offset, records, raw: &[] }));
        }
        let raw: &[u8] = match codec {
            0 => {
                if raw_len != stored_len {
                    return Err(malformed(format!("stored {stored_len} bytes but says {raw_len}")));
                }
                &self.stored
            }
            1 => {
                // LZ4 expands at most 255:1, so a larger claim is damage, not data.
                if raw_len > stored_len.saturating_mul(255) {
                    return Err(malformed(format!("claims {raw_len} bytes from {stored_len} compressed")));
                }
                self.raw.resize(raw_len as usize, 0);
                match lz4_flex::block::decompress_into(&self.stored, &mut self.raw) {
                    Ok(n) if n as u64 == raw_len => &self.raw,
                    Ok(n) => return Err(malformed(format!("decompressed to {n} bytes, expected {raw_len}"))),
                    Err(e) => return Err(malformed(format!("cannot decompress: {e}"))),
                }
            }
            other => return Err(malformed(format!("unknown codec {other}"))),
        };
        Ok(Some(Block { index, offset: block_offset, records, raw }))
    }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A decoded record's value.
pub enum RecordValue<'a> {
    String(&'a [u8]),
    /// With what it is charged against `maxmemory`.
    Collection(Collection, usize),
}

pub struct Record<'a> {
    pub key: &'a [u8],
    pub expire_at_ms: Option<u64>,
    pub value: RecordValue<'a>,
}

/// Decodes the records of one block; every length is checked against what is left, so damaged data is
/// an error, never a panic or a huge allocation.
pub struct RecordDecoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> RecordDecoder<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        RecordDecoder { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn next_record(&mut self) -> Result<Record<'a>, String> {
        let at = self.pos;
        let type_byte = self.byte()?;
        let expire_at_ms = if type_byte & EXPIRY_BIT != 0 { Some(self.u64()?) } else { None };
        let key = self.bytes()?;
        let tag = type_byte & !EXPIRY_BIT;
        let value = match tag {
            0 => RecordValue::String(self.bytes()?),
            1 => {
                let n = self.count(2)?;
                let mut h = Hash::new();
                h.reserve(n);
                let mut cost = 0;
                for _ in 0..n {
                    let (f, v) = (self.bytes()?, self.bytes()?);
                    match h.insert(f, v) {
                        None => cost += hash_field_cost(f, v),
                        Some(old) => cost = cost + v.len() - old,
                    }
                }
                RecordValue::Collection(Collection::Hash(h), cost)
            }
            2 => {
                let n = self.count(1)?;
                let mut l = List::new();
                let mut cost = 0;
                for _ in 0..n {
                    let item = self.bytes()?;
                    cost += list_item_cost(item);
                    l.push_back(item);
                }
                RecordValue::Collection(Collection::List(l), cost)
            }
            3 => {
                let n = self.count(1)?;
                let mut s = Set::new();
                s.reserve(n);
                let mut cost = 0;
                for _ in 0..n {
                    let m = self.bytes()?;
                    if s.insert(m) {
                        cost += set_member_cost(m);
                    }
                }
                RecordValue::Collection(Collection::Set(s), cost)
            }
            4 => {
                let n = self.count(9)?;
                let mut z = ZSet::new();
                z.reserve(n);
                let mut cost = 0;
                for _ in 0..n {
                    let m = self.bytes()?;
                    let score = f64::from_bits(self.u64()?);
                    if score.is_nan() {
                        return Err(format!("record at byte {at} of the block has a NaN score"));
                    }
                    // Written in order, so each member is appended (a member named twice keeps its last
                    // score, as inserting would).
                    if z.push_greatest(m, score) {
                        cost += zset_member_cost(m);
                    } else if z.score(m).is_some() {
                        z.insert(m, score);
                    }
                }
                RecordValue::Collection(Collection::ZSet(z), cost)
            }
            other => return Err(format!("record at byte {at} of the block has unknown type {other}")),
        };
        if let RecordValue::Collection(c, _) = &value {
            if c.is_empty() {
                return Err(format!("record at byte {at} of the block is an empty {}", c.kind().type_name()));
            }
        }
        Ok(Record { key, expire_at_ms, value })
    }

    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.data.get(self.pos).ok_or_else(|| self.short())?;
        self.pos += 1;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, String> {
        if self.left() < 8 {
            return Err(self.short());
        }
        let v = u64_at(self.data, self.pos);
        self.pos += 8;
        Ok(v)
    }

    fn len(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("overlong length at byte {} of the block", self.pos))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len()?;
        if n > self.left() as u64 {
            return Err(self.short());
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// An element count, bounded by what the remaining bytes could hold (`min_bytes` per element).
    fn count(&mut self, min_bytes: u64) -> Result<usize, String> {
        let n = self.len()?;
        if n.saturating_mul(min_bytes) > self.left() as u64 {
            return Err(self.short());
        }
        Ok(n as usize)
    }

    fn short(&self) -> String {
        format!("a record runs past the end of the block (at byte {})", self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_file(codec: Codec, records: usize) -> Vec<u8> {
        let mut w = BlockWriter::new(Vec::new(), codec, 1234, 0).unwrap();
        for i in 0..records {
            let key = format!("key:{i}");
            encode_string(w.record_buffer(), key.as_bytes(), &[b'x'; 100], (i % 2 == 0).then_some(99 + i as u64));
            w.records_added(1).unwrap();
        }
        w.finish().unwrap().0
    }

    type KeysAndExpiries = Vec<(Vec<u8>, Option<u64>)>;

    fn read_all(file: &[u8]) -> Result<KeysAndExpiries, FormatError> {
        let mut r = BlockReader::new(file, file.len() as u64)?;
        let mut out = Vec::new();
        while let Some(block) = r.next_block(true)? {
            let mut d = RecordDecoder::new(block.raw);
            while !d.is_empty() {
                let rec = d.next_record().map_err(|what| FormatError::Malformed { block: 0, offset: 0, what })?;
                out.push((rec.key.to_vec(), rec.expire_at_ms));
            }
        }
        Ok(out)
    }

    #[test]
    fn round_trips_with_and_without_compression() {
        for codec in [Codec::None, Codec::Lz4] {
            let file = sample_file(codec, 5000);
            let keys = read_all(&file).unwrap();
            assert_eq!(keys.len(), 5000);
            assert_eq!(keys[4], (b"key:4".to_vec(), Some(103)));
            assert_eq!(keys[5], (b"key:5".to_vec(), None));
        }
        // 100 repeated bytes compress: the LZ4 file is much smaller.
        assert!(sample_file(Codec::Lz4, 5000).len() * 3 < sample_file(Codec::None, 5000).len());
    }

    #[test]
    fn collections_round_trip() {
        let mut z = ZSet::new();
        z.insert(b"a", 1.5);
        z.insert(b"b", -2.0);
        let mut h = Hash::new();
        h.insert(b"f", b"v");
        let list: List = [&b"i"[..]].into_iter().collect();
        let set: Set = [&b"m"[..], b"n"].into_iter().collect();
        let values = [Collection::ZSet(z), Collection::Hash(h), Collection::List(list), Collection::Set(set)];
        let mut raw = Vec::new();
        for v in &values {
            encode_collection(&mut raw, b"k", v, None);
        }
        let mut d = RecordDecoder::new(&raw);
        for v in &values {
            let rec = d.next_record().unwrap();
            let RecordValue::Collection(c, cost) = rec.value else { panic!("not a collection") };
            assert_eq!(c.kind(), v.kind());
            assert_eq!(cost, v.cost());
        }
        assert!(d.is_empty());
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let good = sample_file(Codec::Lz4, 5000);
        assert!(matches!(read_all(&[]), Err(FormatError::Empty)));
        assert!(matches!(read_all(b"REDIS0011xxxxxxxxxxxxxxxxxxxxxxxxxxx"), Err(FormatError::BadMagic { .. })));
        let mut v2 = good.clone();
        v2[8] = 2;
        assert!(matches!(read_all(&v2), Err(FormatError::UnsupportedVersion { found: 2, supported: 1 })));
        let mut hdr = good.clone();
        hdr[20] ^= 1;
        assert!(matches!(read_all(&hdr), Err(FormatError::HeaderChecksum)));
        for cut in [10, 40, good.len() / 2, good.len() - 1, good.len() - 48] {
            assert!(matches!(read_all(&good[..cut]), Err(FormatError::Truncated { .. })), "cut at {cut}");
        }
        // Every single flipped byte after the header is caught by some check.
        for at in (FILE_HEADER_BYTES..good.len()).step_by(97) {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let err = read_all(&bad).expect_err("damage must be detected");
            assert!(
                matches!(err, FormatError::BlockChecksum { .. } | FormatError::Truncated { .. }),
                "byte {at}: {err}"
            );
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"junk");
        assert!(matches!(read_all(&trailing), Err(FormatError::TrailingBytes { extra: 4, .. })));
    }

    #[test]
    fn a_damaged_block_is_located() {
        let good = sample_file(Codec::None, 10_000);
        let mut r = BlockReader::new(&good[..], good.len() as u64).unwrap();
        let mut offsets = Vec::new();
        while let Some(b) = r.next_block(false).unwrap() {
            offsets.push(b.offset);
        }
        assert!(offsets.len() >= 3);
        let mut bad = good.clone();
        bad[offsets[2] as usize + BLOCK_HEADER_BYTES + 10] ^= 1;
        match read_all(&bad) {
            Err(FormatError::BlockChecksum { block: 2, offset, part: "payload" }) => assert_eq!(offset, offsets[2]),
            other => panic!("expected block 2's payload checksum to fail, got {:?}", other.err()),
        }
    }

    #[test]
    fn decoder_never_panics_on_garbage() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let mut d = RecordDecoder::new(&data);
            while !d.is_empty() {
                if d.next_record().is_err() {
                    break;
                }
            }
        }
    }
}
