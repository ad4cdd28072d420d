//! Framing of RESP2 *replies* (what a shard sends back), for the proxy's backend connections.
//!
//! The proxy forwards reply bytes untouched; it only needs to know where each reply ends. Like the
//! request scanner, [`ReplyScanner`] resumes where it stopped: bulk payloads are skipped by length and
//! nested arrays are tracked with a small stack, so a large reply arriving in pieces is scanned once.

use bytes::{Bytes, BytesMut};

use super::ProtocolError;

/// Resumable scanner for a stream of RESP2 replies.
#[derive(Debug, Default)]
pub struct ReplyScanner {
    /// Offset up to which the current reply has been scanned.
    pos: usize,
    /// Elements still expected by each array we are inside, innermost last.
    open_arrays: Vec<usize>,
}

impl ReplyScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits the next complete reply off `buf`, if there is one.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        loop {
            let Some(line_end) = find_crlf(buf, self.pos)? else {
                return Ok(None);
            };
            let kind = buf[self.pos];
            let header = &buf[self.pos + 1..line_end];
            let mut element_done = true;
            match kind {
                b'+' | b'-' | b':' => self.pos = line_end + 2,
                b'$' => {
                    let len = parse_int(header).ok_or(ProtocolError::InvalidBulkLength)?;
                    if len < 0 {
                        self.pos = line_end + 2;
                    } else {
                        let end = line_end + 2 + len as usize;
                        if buf.len() < end + 2 {
                            return Ok(None);
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err(ProtocolError::MissingBulkTerminator);
                        }
                        self.pos = end + 2;
                    }
                }
                b'*' => {
                    let n = parse_int(header).ok_or(ProtocolError::InvalidMultibulkLength)?;
                    self.pos = line_end + 2;
                    if n > 0 {
                        self.open_arrays.push(n as usize);
                        element_done = false;
                    }
                }
                other => return Err(ProtocolError::ExpectedBulk(other as char)),
            }
            if element_done {
                // Close every array this element completes.
                while let Some(remaining) = self.open_arrays.last_mut() {
                    *remaining -= 1;
                    if *remaining > 0 {
                        break;
                    }
                    self.open_arrays.pop();
                }
            }
            if self.open_arrays.is_empty() {
                let reply = buf.split_to(self.pos).freeze();
                self.pos = 0;
                return Ok(Some(reply));
            }
        }
    }
}

/// Offset of the `\r` ending the line that starts at `from`, if the line is complete.
fn find_crlf(buf: &[u8], from: usize) -> Result<Option<usize>, ProtocolError> {
    if from >= buf.len() {
        return Ok(None);
    }
    match memchr::memchr(b'\n', &buf[from..]) {
        Some(off) if off > 0 && buf[from + off - 1] == b'\r' => Ok(Some(from + off - 1)),
        Some(_) => Err(ProtocolError::MissingLineTerminator),
        None => Ok(None),
    }
}

fn parse_int(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A decoded reply, for the few places the proxy must look inside one (merging multi-key replies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyValue {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<ReplyValue>>),
}

impl ReplyValue {
    /// Decodes one complete reply (as returned by [`ReplyScanner::next`]).
    pub fn parse(reply: &Bytes) -> Option<ReplyValue> {
        let (v, used) = Self::parse_at(reply, 0)?;
        (used == reply.len()).then_some(v)
    }

    fn parse_at(buf: &Bytes, at: usize) -> Option<(ReplyValue, usize)> {
        let line_end = find_crlf(buf, at).ok()??;
        let header = &buf[at + 1..line_end];
        let next = line_end + 2;
        Some(match buf.get(at)? {
            b'+' => (ReplyValue::Simple(buf.slice(at + 1..line_end)), next),
            b'-' => (ReplyValue::Error(buf.slice(at + 1..line_end)), next),
            b':' => (ReplyValue::Integer(parse_int(header)?), next),
            b'$' => {
                let n = parse_int(header)?;
                if n < 0 {
                    (ReplyValue::Bulk(None), next)
                } else {
                    let end = next + n as usize;
                    (ReplyValue::Bulk(Some(buf.slice(next..end))), end + 2)
                }
            }
            b'*' => {
                let n = parse_int(header)?;
                if n < 0 {
                    (ReplyValue::Array(None), next)
                } else {
                    let mut items = Vec::with_capacity(n as usize);
                    let mut pos = next;
                    for _ in 0..n {
                        let (v, p) = Self::parse_at(buf, pos)?;
                        items.push(v);
                        pos = p;
                    }
                    (ReplyValue::Array(Some(items)), pos)
                }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(wire: &[u8], step: usize) -> Vec<Vec<u8>> {
        let mut sc = ReplyScanner::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(step.max(1)) {
            buf.extend_from_slice(chunk);
            while let Some(r) = sc.next(&mut buf).unwrap() {
                out.push(r.to_vec());
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn frames_every_reply_type_in_any_pieces() {
        let replies: Vec<&[u8]> = vec![
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":42\r\n",
            b"$3\r\nabc\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n",
            b"*1\r\n*1\r\n*1\r\n+deep\r\n",
        ];
        let wire: Vec<u8> = replies.concat();
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(split_all(&wire, step), replies.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), "step {step}");
        }
    }

    #[test]
    fn decodes_for_merging() {
        let r = Bytes::from_static(b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n");
        assert_eq!(
            ReplyValue::parse(&r),
            Some(ReplyValue::Array(Some(vec![
                ReplyValue::Bulk(Some(Bytes::from_static(b"a"))),
                ReplyValue::Bulk(None),
                ReplyValue::Integer(7)
            ])))
        );
    }
}
