//! The incremental log's file format.
//!
//! All integers are little-endian.
//!
//! ```text
//! file    magic "RINGAOF1" | frame*
//! frame   payload_len u32 | payload_crc32 u32 | payload (payload_len bytes)
//! payload entry*
//! entry   op u8 | len u32 | bytes (len bytes)
//!         op 'S': bytes are a snapshot record (snapshot/format.rs): the key's whole value and absolute expiry
//!         op 'D': bytes are a key: it does not exist
//!         op 'F': FLUSHALL (len 0)
//! ```
//!
//! A frame is what one command, transaction or script changed: the *state* of every key it wrote once it
//! was done, not the command. Replaying a frame twice, or over a snapshot that already holds some of its
//! writes, gives the same store, which is what lets a snapshot taken while writes go on serve as the base
//! of the log. A frame is applied whole or not at all (its checksum covers all of it).

/// The first bytes of every incremental file.
pub const MAGIC: &[u8; 8] = b"RINGAOF1";
pub const FRAME_HEADER_BYTES: usize = 8;
/// A frame larger than this is taken for garbage (a frame holds what one transaction wrote).
pub const MAX_FRAME_BYTES: u32 = 1 << 31;

pub const OP_SET: u8 = b'S';
pub const OP_DEL: u8 = b'D';
pub const OP_FLUSH: u8 = b'F';

/// Starts a frame in `buf`; returns where it starts, for [`end_frame`].
pub fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    start
}

/// Fills in the header of the frame begun at `start` (its length and checksum). An empty frame is removed.
pub fn end_frame(buf: &mut Vec<u8>, start: usize) -> bool {
    let payload_len = buf.len() - start - FRAME_HEADER_BYTES;
    if payload_len == 0 {
        buf.truncate(start);
        return false;
    }
    let crc = crc32fast::hash(&buf[start + FRAME_HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    true
}

/// Starts an entry; returns where its length goes, for [`end_entry`].
pub fn begin_entry(buf: &mut Vec<u8>, op: u8) -> usize {
    buf.push(op);
    let at = buf.len();
    buf.extend_from_slice(&[0u8; 4]);
    at
}

pub fn end_entry(buf: &mut [u8], len_at: usize) {
    let len = (buf.len() - len_at - 4) as u32;
    buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
}

pub fn put_delete(buf: &mut Vec<u8>, key: &[u8]) {
    let at = begin_entry(buf, OP_DEL);
    buf.extend_from_slice(key);
    end_entry(buf, at);
}

pub fn put_flush(buf: &mut Vec<u8>) {
    let at = begin_entry(buf, OP_FLUSH);
    end_entry(buf, at);
}

/// One decoded entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Set(&'a [u8]),
    Delete(&'a [u8]),
    Flush,
}

/// The entries of one frame's payload (already checksummed).
pub fn entries(payload: &[u8]) -> impl Iterator<Item = Result<Entry<'_>, String>> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= payload.len() {
            return None;
        }
        let Some(head) = payload.get(pos..pos + 5) else {
            pos = payload.len();
            return Some(Err(format!("an entry header is cut at byte {pos} of its frame")));
        };
        let op = head[0];
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let Some(bytes) = payload.get(pos + 5..pos + 5 + len) else {
            pos = payload.len();
            return Some(Err(format!("an entry of {len} bytes runs past its frame")));
        };
        pos += 5 + len;
        Some(match op {
            OP_SET => Ok(Entry::Set(bytes)),
            OP_DEL => Ok(Entry::Delete(bytes)),
            OP_FLUSH if len == 0 => Ok(Entry::Flush),
            other => Err(format!("unknown entry type {other:#04x}")),
        })
    })
}

/// What reading the frames of one file found.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEnd {
    /// The file ends exactly after a complete frame (or its magic).
    Clean,
    /// The file ends inside a frame, or its last frame fails its checksum: a write cut by a crash. `valid`
    /// is the length of the file up to the last good frame.
    Torn { valid: u64, reason: String },
    /// A frame in the middle of the file is damaged: more data follows it.
    Corrupt { offset: u64, reason: String },
}

/// Splits `data` (a whole incremental file) into frame payloads, calling `f` for each good one in order,
/// and says how the file ends.
pub fn read_frames(data: &[u8], mut f: impl FnMut(u64, &[u8]) -> Result<(), String>) -> FrameEnd {
    if data.len() < MAGIC.len() {
        if MAGIC.starts_with(data) {
            return FrameEnd::Torn {
                valid: 0,
                reason: format!("the file is {} bytes, cut inside its header", data.len()),
            };
        }
        return FrameEnd::Corrupt { offset: 0, reason: "it does not start with \"RINGAOF1\"".into() };
    }
    if &data[..MAGIC.len()] != MAGIC {
        return FrameEnd::Corrupt { offset: 0, reason: "it does not start with \"RINGAOF1\"".into() };
    }
    let mut pos = MAGIC.len();
    while pos < data.len() {
        let offset = pos as u64;
        let Some(head) = data.get(pos..pos + FRAME_HEADER_BYTES) else {
            return FrameEnd::Torn {
                valid: offset,
                reason: format!("{} bytes at offset {offset} are less than a frame header", data.len() - pos),
            };
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let start = pos + FRAME_HEADER_BYTES;
        let end = start.saturating_add(len as usize);
        if len == 0 || len > MAX_FRAME_BYTES {
            // Zeros where a frame should be: a file extended by the crash but never written.
            if data[pos..].iter().all(|&b| b == 0) {
                return FrameEnd::Torn { valid: offset, reason: format!("zeros from offset {offset} to the end") };
            }
            return FrameEnd::Corrupt { offset, reason: format!("a frame header at offset {offset} says {len} bytes") };
        }
        if end > data.len() {
            return FrameEnd::Torn {
                valid: offset,
                reason: format!(
                    "the frame at offset {offset} needs {len} bytes, {} are there",
                    data.len() - start.min(data.len())
                ),
            };
        }
        let payload = &data[start..end];
        if crc32fast::hash(payload) != crc {
            let reason = format!("the frame at offset {offset} ({len} bytes) fails its checksum");
            if end == data.len() {
                return FrameEnd::Torn { valid: offset, reason };
            }
            return FrameEnd::Corrupt { offset, reason };
        }
        if let Err(what) = f(offset, payload) {
            return FrameEnd::Corrupt { offset, reason: format!("the frame at offset {offset}: {what}") };
        }
        pos = end;
    }
    FrameEnd::Clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(frames: &[&[Entry<'_>]]) -> Vec<u8> {
        let mut buf = MAGIC.to_vec();
        for frame in frames {
            let start = begin_frame(&mut buf);
            for e in *frame {
                match e {
                    Entry::Set(b) => {
                        let at = begin_entry(&mut buf, OP_SET);
                        buf.extend_from_slice(b);
                        end_entry(&mut buf, at);
                    }
                    Entry::Delete(k) => put_delete(&mut buf, k),
                    Entry::Flush => put_flush(&mut buf),
                }
            }
            end_frame(&mut buf, start);
        }
        buf
    }

    fn read(data: &[u8]) -> (Vec<String>, FrameEnd) {
        let mut seen = Vec::new();
        let end = read_frames(data, |_, payload| {
            for e in entries(payload) {
                seen.push(format!("{:?}", e?));
            }
            Ok(())
        });
        (seen, end)
    }

    #[test]
    fn frames_round_trip() {
        let data = file(&[&[Entry::Set(b"rec"), Entry::Delete(b"k")], &[Entry::Flush]]);
        let (seen, end) = read(&data);
        assert_eq!(end, FrameEnd::Clean);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2], "Flush");
    }

    #[test]
    fn a_cut_last_frame_is_a_torn_tail_at_the_last_good_frame() {
        let data = file(&[&[Entry::Delete(b"a")], &[Entry::Delete(b"b")]]);
        let first_end = (MAGIC.len() + FRAME_HEADER_BYTES + 6) as u64;
        for cut in first_end as usize + 1..data.len() {
            let (seen, end) = read(&data[..cut]);
            assert_eq!(seen.len(), 1, "cut at {cut}");
            assert!(matches!(end, FrameEnd::Torn { valid, .. } if valid == first_end), "cut at {cut}: {end:?}");
        }
        // A flipped byte in the last frame: torn; in the first, with data after it: corrupt.
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(read(&bad).1, FrameEnd::Torn { .. }));
        let mut bad = data.clone();
        bad[MAGIC.len() + FRAME_HEADER_BYTES + 2] ^= 1;
        assert!(matches!(read(&bad).1, FrameEnd::Corrupt { .. }));
        // Trailing zeros (a file grown by the crash) are a torn tail too.
        let mut zeros = data.clone();
        zeros.extend_from_slice(&[0u8; 100]);
        assert!(matches!(read(&zeros).1, FrameEnd::Torn { valid, .. } if valid == data.len() as u64));
        assert!(matches!(read(b"RINGA").1, FrameEnd::Torn { valid: 0, .. }));
        assert!(matches!(read(b"NOTANAOF").1, FrameEnd::Corrupt { offset: 0, .. }));
    }
}
