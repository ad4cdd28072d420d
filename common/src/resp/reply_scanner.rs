//! Framing of RESP2 and RESP3 *replies* (what a shard sends back), for the proxy's backend connections and
//! the load generator.
//!
//! The proxy forwards reply bytes untouched; it only needs to know where each reply ends. Like the
//! request scanner, [`ReplyScanner`] resumes where it stopped: bulk payloads are skipped by length and
//! nested aggregates are tracked with a small stack, so a large reply arriving in pieces is scanned once.
//! Every RESP3 type is framed: nulls, doubles, booleans, big numbers, blob errors, verbatim strings, maps,
//! sets, pushes, attributes (which precede the reply they annotate and are part of its frame) and
//! streamed strings and aggregates (`$?` with `;` chunks, `*?`/`%?`/`~?`/`>?` closed by `.`).

use bytes::{Bytes, BytesMut};

use super::{ProtocolError, ReplyWriter};

/// One aggregate we are inside.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Elements still expected (`usize::MAX` for a streamed aggregate, closed by `.`).
    remaining: usize,
    /// An attribute: closing it does not complete an element of the enclosing aggregate, because the
    /// attribute precedes the value it annotates.
    attribute: bool,
}

/// Resumable scanner for a stream of replies.
#[derive(Debug, Default)]
pub struct ReplyScanner {
    /// Offset up to which the current reply has been scanned.
    pos: usize,
    /// The aggregates we are inside, innermost last.
    open: Vec<Open>,
    /// Inside a streamed string (`$?`): only `;` chunks until `;0`.
    in_streamed_string: bool,
    /// Where the blob payload being waited for ends (its `\r\n` included), when `next` stopped inside one.
    payload_end: usize,
    /// A two-element aggregate was seen inside another (RESP3 pairs): `*2` headers take the fast path.
    pairs_seen: bool,
}

impl ReplyScanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Splits the next complete reply off `buf`, if there is one.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        // The replies most requests get, `+OK`, a short bulk string or a small integer, taken whole when
        // they have fully arrived; anything else (or a reply still arriving) goes through the loop below.
        if self.pos == 0 && self.open.is_empty() && !self.in_streamed_string {
            if let Some(end) = whole_simple_reply(buf) {
                self.payload_end = 0;
                return Ok(Some(buf.split_to(end).freeze()));
            }
        }
        'scan: loop {
            // One element (or a header opening an aggregate, which completes none) is scanned per turn.
            let element_done = 'element: {
                // RESP3's pairs (ZRANGE WITHSCORES, HRANDFIELD WITHVALUES) open a `*2` each: once one was
                // seen inside an aggregate (a RESP3 peer), `*2` headers are recognised by their four bytes,
                // without searching for the line end or parsing the count, and a pair of two short scalars
                // that have fully arrived (a member and its score) is framed as one element of the enclosing
                // aggregate without opening an aggregate for it. A RESP2 peer's flat replies never pay for it.
                if self.pairs_seen && !self.in_streamed_string {
                    if let Some([b'*', b'2', b'\r', b'\n']) = buf.get(self.pos..self.pos + 4) {
                        if let Some(end) = whole_pair_end(buf, self.pos + 4) {
                            self.pos = end;
                            break 'element true;
                        }
                        self.pos += 4;
                        self.open.push(Open { remaining: 2, attribute: false });
                        continue 'scan;
                    }
                }
                // Most headers a cache sends are a type byte and one or two digits (`$5`, `*10`): read without
                // searching for the line end or going through `str::parse`. Everything else takes the general
                // path, which gives the same value for these lines.
                let (line_end, short) = match short_header(buf, self.pos) {
                    Some((n, line_end)) => (line_end, Some(n)),
                    None => {
                        match short_line_end(buf, self.pos).map_or_else(|| find_crlf(buf, self.pos), |e| Ok(Some(e)))? {
                            Some(line_end) => (line_end, None),
                            None => return Ok(None),
                        }
                    }
                };
                let kind = buf[self.pos];
                let header = &buf[self.pos + 1..line_end];
                let header_int = || short.or_else(|| parse_int(header));
                let mut element_done = true;
                if self.in_streamed_string {
                    if kind != b';' {
                        return Err(ProtocolError::ExpectedBulk(kind as char));
                    }
                    let len = header_int().filter(|&n| n >= 0).ok_or(ProtocolError::InvalidBulkLength)?;
                    if len == 0 {
                        self.pos = line_end + 2;
                        self.in_streamed_string = false;
                    } else {
                        match blob_end(buf, line_end, len, &mut self.payload_end)? {
                            Some(end) => self.pos = end,
                            None => return Ok(None),
                        }
                        continue 'scan;
                    }
                } else {
                    match kind {
                        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => self.pos = line_end + 2,
                        b'$' | b'!' | b'=' if header == b"?" && kind == b'$' => {
                            self.pos = line_end + 2;
                            self.in_streamed_string = true;
                            continue 'scan;
                        }
                        b'$' | b'!' | b'=' => {
                            let len = header_int().ok_or(ProtocolError::InvalidBulkLength)?;
                            if len < 0 {
                                self.pos = line_end + 2;
                            } else {
                                match blob_end(buf, line_end, len, &mut self.payload_end)? {
                                    Some(end) => self.pos = end,
                                    None => return Ok(None),
                                }
                            }
                        }
                        b'*' | b'~' | b'>' | b'%' | b'|' => {
                            self.pos = line_end + 2;
                            let per_entry = if matches!(kind, b'%' | b'|') { 2 } else { 1 };
                            let attribute = kind == b'|';
                            if header == b"?" && kind != b'|' {
                                self.open.push(Open { remaining: usize::MAX, attribute: false });
                                element_done = false;
                            } else {
                                let n = header_int().ok_or(ProtocolError::InvalidMultibulkLength)?;
                                if n == 2 && !self.open.is_empty() {
                                    self.pairs_seen = true;
                                }
                                if n > 0 {
                                    let remaining = (n as usize)
                                        .checked_mul(per_entry)
                                        .ok_or(ProtocolError::InvalidMultibulkLength)?;
                                    self.open.push(Open { remaining, attribute });
                                    element_done = false;
                                } else if attribute {
                                    // An empty attribute annotates the next value.
                                    element_done = false;
                                }
                            }
                        }
                        b'.' if self.open.last().is_some_and(|o| o.remaining == usize::MAX) => {
                            // The end of a streamed aggregate: it is now one complete element of its parent.
                            self.pos = line_end + 2;
                            self.open.pop();
                        }
                        other => return Err(ProtocolError::ExpectedBulk(other as char)),
                    }
                }
                element_done
            };
            if element_done && self.complete_element() {
                let reply = buf.split_to(self.pos).freeze();
                self.pos = 0;
                self.payload_end = 0;
                return Ok(Some(reply));
            }
        }
    }

    /// How many more bytes the blob payload that [`Self::next`] stopped in needs, given `buffered` bytes in
    /// the buffer (0 when it did not stop in one): a reader reserves that much at once instead of growing
    /// its buffer step by step under a large reply.
    pub fn bytes_needed_hint(&self, buffered: usize) -> usize {
        self.payload_end.saturating_sub(buffered)
    }

    /// One element finished: closes every aggregate it completes. Returns whether that completed a whole
    /// reply (a top-level value, as opposed to an attribute whose value is still to come).
    fn complete_element(&mut self) -> bool {
        while let Some(top) = self.open.last_mut() {
            if top.remaining == usize::MAX {
                return false; // streamed: only `.` closes it
            }
            top.remaining -= 1;
            if top.remaining > 0 {
                return false;
            }
            let closed = self.open.pop();
            if closed.is_some_and(|o| o.attribute) {
                // The attribute is done; the value it annotates is still to come.
                return false;
            }
        }
        true
    }
}

/// The offset after a blob of `len` bytes whose header line ends at `line_end`, once it has all arrived
/// (until then, `waiting_for` is set to that offset).
fn blob_end(buf: &[u8], line_end: usize, len: i64, waiting_for: &mut usize) -> Result<Option<usize>, ProtocolError> {
    let end = line_end + 2 + len as usize;
    if buf.len() < end + 2 {
        *waiting_for = end + 2;
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError::MissingBulkTerminator);
    }
    Ok(Some(end + 2))
}

/// The length of the reply at the start of `buf` when it is a complete `+OK`, a bulk string with a one- or
/// two-digit length, or an integer of one or two digits; `None` for anything else.
/// (Its bulk-string arm is [`short_scalar_end`]'s, written out: calling that instead cost the proxy about
/// 1 % on RESP2 HGETALL and ZRANGE, 21012 -> 21226 instructions per `-P 16` HGETALL, measured.)
#[inline]
fn whole_simple_reply(buf: &[u8]) -> Option<usize> {
    match buf.first()? {
        b'+' if buf.starts_with(b"+OK\r\n") => Some(5),
        b':' => short_header(buf, 0).map(|(_, line_end)| line_end + 2),
        b'$' => {
            let (len, line_end) = short_header(buf, 0)?;
            let end = line_end + 2 + len as usize;
            (buf.get(end..end + 2)? == b"\r\n").then_some(end + 2)
        }
        _ => None,
    }
}

/// The offset after the scalar at `pos` when it has fully arrived and is short: a bulk string with a one- or
/// two-digit length, or a double, integer, boolean, null or simple string of at most 7 bytes; `None` for
/// anything else (left to the general path, which frames these the same way).
#[inline]
fn short_scalar_end(buf: &[u8], pos: usize) -> Option<usize> {
    match buf.get(pos)? {
        b'$' => {
            let (len, line_end) = short_header(buf, pos)?;
            let end = line_end + 2 + len as usize;
            (buf.get(end..end + 2)? == b"\r\n").then_some(end + 2)
        }
        b',' | b':' | b'+' | b'#' | b'_' => short_line_end(buf, pos).map(|line_end| line_end + 2),
        _ => None,
    }
}

/// The offset after a pair's two elements starting at `pos` when both are short scalars that have fully
/// arrived ([`short_scalar_end`]).
#[inline]
fn whole_pair_end(buf: &[u8], pos: usize) -> Option<usize> {
    short_scalar_end(buf, pos).and_then(|end| short_scalar_end(buf, end))
}

/// A header line at `pos` whose text after the type byte is one digit, or two without a leading zero, and
/// the offset of its `\r`; `None` for any other line, or one not complete yet. (Not the request scanner's
/// `short_header`: reply lines are often not lengths (doubles, simple strings), and sharing it cost the
/// proxy 5 % on 100-field HGETALL and 11 % on RESP3 ZRANGE WITHSCORES, measured with `bench/resp3.sh`.)
#[inline]
fn short_header(buf: &[u8], pos: usize) -> Option<(i64, usize)> {
    match buf.get(pos + 1..)? {
        [d @ b'0'..=b'9', b'\r', b'\n', ..] => Some((i64::from(d - b'0'), pos + 2)),
        [d1 @ b'1'..=b'9', d2 @ b'0'..=b'9', b'\r', b'\n', ..] => {
            Some((i64::from(d1 - b'0') * 10 + i64::from(d2 - b'0'), pos + 3))
        }
        _ => None,
    }
}

/// Offset of the `\r` ending the line at `from` when that line is complete and its text is at most 7 bytes
/// (a double, a boolean, `+OK`), found in one 8-byte word instead of by calling `memchr`; `None` for a longer
/// line, one not complete yet, or one whose first `\r` is not followed by `\n` or comes after a `\n` (left
/// to [`find_crlf`], which gives the same answer for the lines this one finds).
#[inline]
fn short_line_end(buf: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let word: [u8; 8] = buf.get(from + 1..from + 9)?.try_into().ok()?;
    let word = u64::from_le_bytes(word);
    // The lowest set bit marks the first byte equal to `b` (higher bits may be false positives).
    let first = |b: u8| {
        let x = word ^ (ONES * u64::from(b));
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
    };
    let cr = first(b'\r')?;
    if first(b'\n').is_some_and(|lf| lf < cr) {
        return None;
    }
    (buf.get(from + 2 + cr) == Some(&b'\n')).then_some(from + 1 + cr)
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

/// Whether a complete reply is a RESP3 push (out of band: it answers no request).
pub fn is_push(reply: &[u8]) -> bool {
    reply.first() == Some(&b'>')
}

/// A decoded reply, for the places that must look inside one (the proxy merging multi-key replies, tests).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyValue {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Option<Bytes>),
    Array(Option<Vec<ReplyValue>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `,`, as its text (`1.5`, `inf`).
    Double(Bytes),
    /// RESP3 `#`.
    Boolean(bool),
    /// RESP3 `(`, as its digits.
    BigNumber(Bytes),
    /// RESP3 `=`: the three-letter format and the text.
    Verbatim(Bytes, Bytes),
    /// RESP3 `%`.
    Map(Vec<(ReplyValue, ReplyValue)>),
    /// RESP3 `~`.
    Set(Vec<ReplyValue>),
    /// RESP3 `>`.
    Push(Vec<ReplyValue>),
}

impl ReplyValue {
    /// Decodes one complete reply (as returned by [`ReplyScanner::next`]). Attributes are skipped;
    /// streamed strings and aggregates are joined.
    pub fn parse(reply: &Bytes) -> Option<ReplyValue> {
        let (v, used) = Self::parse_at(reply, 0)?;
        (used == reply.len()).then_some(v)
    }

    /// The elements of an array, set or push; the flattened key/value list of a map.
    pub fn into_items(self) -> Option<Vec<ReplyValue>> {
        match self {
            ReplyValue::Array(Some(items)) | ReplyValue::Set(items) | ReplyValue::Push(items) => Some(items),
            ReplyValue::Map(pairs) => Some(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            _ => None,
        }
    }

    /// The bytes of a string-like reply (bulk, simple, verbatim text, double, big number).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            ReplyValue::Bulk(Some(b))
            | ReplyValue::Simple(b)
            | ReplyValue::Verbatim(_, b)
            | ReplyValue::Double(b)
            | ReplyValue::BigNumber(b) => Some(b),
            _ => None,
        }
    }

    fn parse_many(buf: &Bytes, mut pos: usize, n: Option<usize>) -> Option<(Vec<ReplyValue>, usize)> {
        let mut items = Vec::with_capacity(n.unwrap_or(0).min(1024));
        loop {
            match n {
                Some(n) if items.len() == n => return Some((items, pos)),
                None if buf.get(pos..pos + 3) == Some(b".\r\n") => return Some((items, pos + 3)),
                _ => {}
            }
            let (v, p) = Self::parse_at(buf, pos)?;
            items.push(v);
            pos = p;
        }
    }

    fn parse_at(buf: &Bytes, at: usize) -> Option<(ReplyValue, usize)> {
        let line_end = find_crlf(buf, at).ok()??;
        let header = &buf[at + 1..line_end];
        let next = line_end + 2;
        let streamed = header == b"?";
        let count = || -> Option<Option<usize>> {
            if streamed {
                Some(None)
            } else {
                usize::try_from(parse_int(header)?).ok().map(Some)
            }
        };
        let blob = |n: i64| -> Option<(Bytes, usize)> {
            let end = next.checked_add(usize::try_from(n).ok()?)?;
            (buf.len() >= end + 2).then(|| (buf.slice(next..end), end + 2))
        };
        Some(match buf.get(at)? {
            b'+' => (ReplyValue::Simple(buf.slice(at + 1..line_end)), next),
            b'-' => (ReplyValue::Error(buf.slice(at + 1..line_end)), next),
            b':' => (ReplyValue::Integer(parse_int(header)?), next),
            b'_' => (ReplyValue::Null, next),
            b',' => (ReplyValue::Double(buf.slice(at + 1..line_end)), next),
            b'(' => (ReplyValue::BigNumber(buf.slice(at + 1..line_end)), next),
            b'#' => (ReplyValue::Boolean(header == b"t"), next),
            b'$' if streamed => {
                let mut joined = BytesMut::new();
                let mut pos = next;
                loop {
                    let end = find_crlf(buf, pos).ok()??;
                    let n = parse_int(buf.get(pos + 1..end)?)?;
                    if n == 0 {
                        return Some((ReplyValue::Bulk(Some(joined.freeze())), end + 2));
                    }
                    let start = end + 2;
                    let stop = start + usize::try_from(n).ok()?;
                    joined.extend_from_slice(buf.get(start..stop)?);
                    pos = stop + 2;
                }
            }
            b'$' => {
                let n = parse_int(header)?;
                if n < 0 {
                    (ReplyValue::Bulk(None), next)
                } else {
                    let (b, end) = blob(n)?;
                    (ReplyValue::Bulk(Some(b)), end)
                }
            }
            b'!' => {
                let (b, end) = blob(parse_int(header)?)?;
                (ReplyValue::Error(b), end)
            }
            b'=' => {
                let (b, end) = blob(parse_int(header)?)?;
                let (format, text) =
                    if b.len() >= 4 && b[3] == b':' { (b.slice(..3), b.slice(4..)) } else { (Bytes::new(), b) };
                (ReplyValue::Verbatim(format, text), end)
            }
            b'*' if !streamed && parse_int(header)? < 0 => (ReplyValue::Array(None), next),
            b'*' => {
                let (items, end) = Self::parse_many(buf, next, count()?)?;
                (ReplyValue::Array(Some(items)), end)
            }
            b'~' => {
                let (items, end) = Self::parse_many(buf, next, count()?)?;
                (ReplyValue::Set(items), end)
            }
            b'>' => {
                let (items, end) = Self::parse_many(buf, next, count()?)?;
                (ReplyValue::Push(items), end)
            }
            b'%' => {
                let n = count()?.map(|n| n * 2);
                let (items, end) = Self::parse_many(buf, next, n)?;
                let mut it = items.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                (ReplyValue::Map(pairs), end)
            }
            b'|' => {
                // An attribute: skip it, the value it annotates follows.
                let n = parse_int(header)?;
                let (_, end) = Self::parse_many(buf, next, Some(usize::try_from(n).ok()? * 2))?;
                return Self::parse_at(buf, end);
            }
            _ => return None,
        })
    }

    /// Writes this value through `out`, in `out`'s protocol: a map becomes a flat array in RESP2, a set an
    /// array, a double a bulk string, a null `$-1` (the forms Redis writes for RESP2 clients).
    pub fn write_to(&self, out: &mut impl ReplyWriter) {
        match self {
            ReplyValue::Simple(s) => out.simple(&String::from_utf8_lossy(s)),
            ReplyValue::Error(e) => out.error(&String::from_utf8_lossy(e)),
            ReplyValue::Integer(n) => out.integer(*n),
            ReplyValue::Bulk(Some(b)) | ReplyValue::BigNumber(b) => out.bulk(b),
            ReplyValue::Bulk(None) | ReplyValue::Null => out.null(),
            ReplyValue::Array(None) => out.null_array(),
            ReplyValue::Array(Some(items)) => {
                out.array_len(items.len());
                items.iter().for_each(|i| i.write_to(out));
            }
            ReplyValue::Double(d) => match std::str::from_utf8(d).ok().and_then(|t| t.parse::<f64>().ok()) {
                Some(d) => out.double(d),
                None => out.bulk(d),
            },
            ReplyValue::Boolean(b) => out.boolean(*b),
            ReplyValue::Verbatim(_, text) => out.verbatim(text),
            ReplyValue::Map(pairs) => {
                out.map_len(pairs.len());
                for (k, v) in pairs {
                    k.write_to(out);
                    v.write_to(out);
                }
            }
            ReplyValue::Set(items) => {
                out.set_len(items.len());
                items.iter().for_each(|i| i.write_to(out));
            }
            ReplyValue::Push(items) => {
                out.push_len(items.len());
                items.iter().for_each(|i| i.write_to(out));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RESP3 pairs: the first reply sets `pairs_seen`, the later ones take the `*2` fast path; every split
    /// of the stream frames the same replies.
    #[test]
    fn resp3_pairs_are_framed_at_any_read_size() {
        let one: &[u8] = b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$2\r\n*2\r\n,2\r\n";
        let wire: Vec<u8> = [one, b"*2\r\n:1\r\n:2\r\n", one, one].concat();
        for step in 1..=wire.len() {
            let frames = split_all(&wire, step);
            assert_eq!(
                frames,
                [one.to_vec(), b"*2\r\n:1\r\n:2\r\n".to_vec(), one.to_vec(), one.to_vec()],
                "step {step}"
            );
        }
    }

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
            // RESP3
            b"_\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"(3492890328409238509324850943850943825024385\r\n",
            b"!21\r\nSYNTAX invalid syntax\r\n",
            b"=15\r\ntxt:Some string\r\n",
            b"%2\r\n+first\r\n:1\r\n+second\r\n*2\r\n:2\r\n,3\r\n",
            b"~3\r\n+a\r\n+b\r\n%0\r\n",
            b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            b"%0\r\n",
            b"~0\r\n",
            // An attribute annotating a reply, and one inside an array.
            b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
            b"*2\r\n|1\r\n+ttl\r\n:3600\r\n+value\r\n:7\r\n",
            // Streamed string and aggregates.
            b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n",
            b"*?\r\n:1\r\n*?\r\n+x\r\n.\r\n%?\r\n+k\r\n:1\r\n.\r\n.\r\n",
        ];
        let wire: Vec<u8> = replies.concat();
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(split_all(&wire, step), replies.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), "step {step}");
        }
    }

    /// One reply's encoding: strings of lengths with one, two and three digits (payloads may hold `\r\n`),
    /// integers, nulls and other RESP3 scalars, pairs of them (`*2`, as RESP3's WITHSCORES replies hold),
    /// and nested arrays, maps, sets and pushes.
    fn any_reply() -> impl Strategy<Value = Vec<u8>> {
        let scalar = prop_oneof![
            proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..150).prop_map(|p| [
                format!("${}\r\n", p.len()).as_bytes(),
                &p,
                b"\r\n"
            ]
            .concat()),
            any::<i64>().prop_map(|n| format!(":{n}\r\n").into_bytes()),
            (0u8..100).prop_map(|n| format!("+{n}\r\n").into_bytes()),
            Just(b"$-1\r\n".to_vec()),
            Just(b"*-1\r\n".to_vec()),
            Just(b"_\r\n".to_vec()),
            Just(b",1.5\r\n".to_vec()),
            Just(b"$05\r\nabcde\r\n".to_vec()),
            Just(b"+OK\r\n".to_vec()),
            any::<f64>().prop_map(|d| format!(",{d}\r\n").into_bytes()),
            Just(b"#t\r\n".to_vec()),
            Just(b"+a\rb\r\n".to_vec()),
            "[a-z ]{0,60}".prop_map(|t| format!("+{t}\r\n").into_bytes()),
            Just(b"+OKAY\r\n".to_vec()),
        ];
        let leaf = prop_oneof![
            2 => scalar.clone(),
            1 => (scalar.clone(), scalar).prop_map(|(a, b)| [b"*2\r\n".to_vec(), a, b].concat()),
        ];
        leaf.prop_recursive(3, 300, 40, |inner| {
            (0usize..4, proptest::collection::vec(inner, 0..40)).prop_map(|(kind, items)| {
                let (prefix, n) = match kind {
                    0 => ('*', items.len()),
                    1 => ('%', items.len() / 2),
                    2 => ('~', items.len()),
                    _ => ('>', items.len()),
                };
                let items = if prefix == '%' { &items[..2 * n] } else { &items[..] };
                [format!("{prefix}{n}\r\n").into_bytes(), items.concat()].concat()
            })
        })
    }

    proptest! {
        /// Any stream of replies, in any pieces, is framed into exactly those replies.
        #[test]
        fn frames_generated_replies_in_any_pieces(
            replies in proptest::collection::vec(any_reply(), 1..6),
            step in 1usize..64,
        ) {
            let wire: Vec<u8> = replies.concat();
            prop_assert_eq!(split_all(&wire, step), replies.clone());
            prop_assert_eq!(split_all(&wire, wire.len()), replies);
        }
    }

    #[test]
    fn rejects_what_is_not_resp() {
        for bad in [
            &b"?x\r\n"[..],
            b"$3\r\nabcd\r\n",
            b".\r\n",
            b";3\r\nabc\r\n",
            b"+OK\n",
            b"$1\rx\r\n",
            b"$1\n",
            b"*1x\r\n",
            b"$12\r\nab\r\n\r\n\r\n\r\n\r\nab\r\n",
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(ReplyScanner::new().next(&mut buf).is_err(), "{:?}", String::from_utf8_lossy(bad));
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
        let r = Bytes::from_static(b"%1\r\n$1\r\nk\r\n~2\r\n,1.5\r\n_\r\n");
        assert_eq!(
            ReplyValue::parse(&r),
            Some(ReplyValue::Map(vec![(
                ReplyValue::Bulk(Some(Bytes::from_static(b"k"))),
                ReplyValue::Set(vec![ReplyValue::Double(Bytes::from_static(b"1.5")), ReplyValue::Null])
            )]))
        );
        let r = Bytes::from_static(b"=9\r\ntxt:hello\r\n");
        assert_eq!(
            ReplyValue::parse(&r),
            Some(ReplyValue::Verbatim(Bytes::from_static(b"txt"), Bytes::from_static(b"hello")))
        );
        let r = Bytes::from_static(b"|1\r\n+a\r\n+b\r\n$?\r\n;2\r\nhe\r\n;1\r\ny\r\n;0\r\n");
        assert_eq!(ReplyValue::parse(&r), Some(ReplyValue::Bulk(Some(Bytes::from_static(b"hey")))));
        let r = Bytes::from_static(b"*?\r\n:1\r\n:2\r\n.\r\n");
        assert_eq!(
            ReplyValue::parse(&r),
            Some(ReplyValue::Array(Some(vec![ReplyValue::Integer(1), ReplyValue::Integer(2)])))
        );
        assert!(is_push(b">2\r\n+a\r\n+b\r\n"));
    }
}
