//! The incremental request scanner.
//!
//! A client's bytes arrive in arbitrary pieces. [`RequestScanner::next`] looks at the connection's read
//! buffer, advances over whatever it can, and remembers where it stopped, so a 4 MB `MSET` that arrives in
//! 16 KB reads has each header line parsed once and its payload never scanned at all (bulk payloads are
//! skipped by length, then their `\r\n` terminator is checked). A complete request is split off the buffer
//! as one frozen [`Bytes`] and its arguments are ranges into it: no argument is copied.
//!
//! Most requests arrive whole (a pipelined batch is many whole requests and at most one partial one), so
//! `next` first tries a one-pass scan of a whole, well-formed array request with short headers, which
//! needs no state and no newline search; anything else goes to the general, resumable scanner, which
//! alone decides errors and limits (the two are checked against each other by a property test). A partial
//! request is looked at by the one-pass scan once, when it is first seen at the start of the buffer.
//!
//! Two request forms are accepted, as Redis does: RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! and inline commands (`PING\r\n`, telnet style, with Redis's quoting rules).

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

/// Size limits the scanner enforces; every one is a server flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (Redis's `proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Largest number of elements in one request array.
    pub max_multibulk_len: usize,
    /// Longest inline command line, and longest `*N` / `$N` header line.
    pub max_inline_len: usize,
    /// Set before a client has authenticated (when a password is required): arrays are then limited to
    /// 10 elements and bulk strings to 16 KiB, as in Redis, so an unauthenticated peer cannot make the
    /// server buffer large requests.
    pub unauthenticated: bool,
}

impl Limits {
    /// Redis's defaults: 512 MiB bulk strings, 64 KiB inline lines; arrays of up to 1,048,576 elements.
    pub const DEFAULT: Limits = Limits {
        max_bulk_len: 512 * 1024 * 1024,
        max_multibulk_len: 1024 * 1024,
        max_inline_len: 64 * 1024,
        unauthenticated: false,
    };

    /// Largest array an unauthenticated client may send.
    pub const UNAUTHENTICATED_MULTIBULK_LEN: usize = 10;
    /// Largest bulk string an unauthenticated client may send.
    pub const UNAUTHENTICATED_BULK_LEN: usize = 16 * 1024;

    /// These limits, tightened for a client that has not authenticated yet.
    pub fn unauthenticated(self) -> Limits {
        Limits { unauthenticated: true, ..self }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A protocol violation. The connection replies `-ERR Protocol error: <message>` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("too big inline request")]
    InlineTooBig,
    #[error("too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("too big bulk count string")]
    BulkCountTooBig,
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    #[error("invalid bulk length")]
    InvalidBulkLength,
    #[error("unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("expected '\\r\\n' after bulk string")]
    MissingBulkTerminator,
    #[error("line not terminated by '\\r\\n'")]
    MissingLineTerminator,
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// One complete request: a command name and its arguments.
#[derive(Debug, Clone)]
pub struct Request {
    /// For an array request, the exact bytes the client sent (so a proxy can forward them unchanged);
    /// for an inline request, the unquoted arguments laid end to end.
    buf: Bytes,
    args: SmallVec<[Range<usize>; 4]>,
    inline: bool,
}

impl Request {
    /// Number of arguments, the command name included.
    pub fn argc(&self) -> usize {
        self.args.len()
    }

    /// Argument `i` (0 is the command name). Panics if `i >= argc()`: callers check arity first.
    pub fn arg(&self, i: usize) -> &[u8] {
        &self.buf[self.args[i].clone()]
    }

    /// Argument `i` as a zero-copy [`Bytes`] that shares the request's buffer.
    pub fn arg_bytes(&self, i: usize) -> Bytes {
        self.buf.slice(self.args[i].clone())
    }

    /// Argument `i` if present.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.args.get(i).map(|r| &self.buf[r.clone()])
    }

    /// The command name as sent (any case).
    pub fn name(&self) -> &[u8] {
        self.arg(0)
    }

    /// All arguments from `from` on.
    pub fn args_from(&self, from: usize) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.args[from.min(self.args.len())..].iter().map(move |r| &self.buf[r.clone()])
    }

    /// The request as the client encoded it, when it arrived as a RESP array; `None` for inline commands.
    pub fn raw(&self) -> Option<&Bytes> {
        (!self.inline).then_some(&self.buf)
    }

    /// Whether the request arrived as an inline (telnet style) command.
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// Builds a request from owned arguments (tests, and requests a server makes itself).
    pub fn from_args<I, A>(args: I) -> Request
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut buf = Vec::new();
        let mut ranges = SmallVec::new();
        for a in args {
            let a = a.as_ref();
            ranges.push(buf.len()..buf.len() + a.len());
            buf.extend_from_slice(a);
        }
        Request { buf: Bytes::from(buf), args: ranges, inline: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests.
    Idle,
    /// Inside an array, expecting the `$len` line of the next element.
    BulkHeader { remaining: usize },
    /// Inside an array, waiting for `len` payload bytes plus `\r\n`.
    BulkPayload { remaining: usize, len: usize },
}

/// Resumable scanner state for one connection. See the module docs.
#[derive(Debug)]
pub struct RequestScanner {
    state: State,
    /// Offset (from the start of the buffer) up to which the current request has been parsed.
    pos: usize,
    /// Where the search for the next `\n` resumes, so an incomplete line is never rescanned.
    line_scan_from: usize,
    args: SmallVec<[Range<usize>; 4]>,
    /// Bytes looked at so far (searched for a newline, or checked as a terminator); payloads are skipped.
    examined_bytes: u64,
}

impl Default for RequestScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestScanner {
    pub fn new() -> Self {
        RequestScanner { state: State::Idle, pos: 0, line_scan_from: 0, args: SmallVec::new(), examined_bytes: 0 }
    }

    /// How many bytes the scanner has examined in its lifetime. Bulk payloads are skipped by length, and a
    /// partial line is never searched twice, so for large values this stays far below the bytes received.
    pub fn examined_bytes(&self) -> u64 {
        self.examined_bytes
    }

    /// Bytes the current partial request still needs before it can make progress, when known (the rest
    /// of a bulk payload). A reader can reserve this much so a large value is read without regrowing.
    pub fn bytes_needed_hint(&self, buffered: usize) -> usize {
        match self.state {
            State::BulkPayload { len, .. } => (self.pos + len + 2).saturating_sub(buffered),
            _ => 0,
        }
    }

    /// Whether a request has been started but not completed.
    pub fn in_request(&self) -> bool {
        self.state != State::Idle
    }

    /// Scans `buf` and splits off the next complete request, if there is one. Returns `Ok(None)` when more
    /// bytes are needed; the scanner keeps its place. Empty requests (`*0`, blank inline lines) are skipped.
    #[inline(always)]
    pub fn next(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        if self.state == State::Idle && self.line_scan_from == 0 {
            if let Some(req) = self.next_whole(buf, limits) {
                return Ok(Some(req));
            }
        }
        self.next_step_by_step(buf, limits)
    }

    /// [`next`](Self::next) without its one-pass path for a whole request: the general scanner, which
    /// keeps its place in a partial request. Public so that tests can check the two paths agree.
    pub fn next_step_by_step(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
        loop {
            match self.state {
                State::Idle => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    if buf[0] != b'*' {
                        match self.scan_inline(buf, limits)? {
                            Some(Some(req)) => return Ok(Some(req)),
                            Some(None) => continue, // blank line skipped
                            None => return Ok(None),
                        }
                    }
                    let Some(line_end) = self.find_line(buf, 1, limits, ProtocolError::MultibulkCountTooBig)? else {
                        return Ok(None);
                    };
                    let count = parse_len(&buf[1..line_end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
                    self.pos = line_end + 2;
                    if count <= 0 {
                        // `*0` and `*-1` are empty requests: Redis skips them silently.
                        let _ = buf.split_to(self.pos);
                        self.reset();
                        continue;
                    }
                    let count = count as usize;
                    if count > limits.max_multibulk_len {
                        return Err(ProtocolError::InvalidMultibulkLength);
                    }
                    if limits.unauthenticated && count > Limits::UNAUTHENTICATED_MULTIBULK_LEN {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength);
                    }
                    self.args.clear();
                    self.args.reserve(count.min(1024));
                    self.state = State::BulkHeader { remaining: count };
                }
                State::BulkHeader { remaining } => {
                    if buf.len() <= self.pos {
                        return Ok(None);
                    }
                    if buf[self.pos] != b'$' {
                        return Err(ProtocolError::ExpectedBulk(buf[self.pos] as char));
                    }
                    let Some(line_end) = self.find_line(buf, self.pos + 1, limits, ProtocolError::BulkCountTooBig)?
                    else {
                        return Ok(None);
                    };
                    let len = parse_len(&buf[self.pos + 1..line_end]).ok_or(ProtocolError::InvalidBulkLength)?;
                    if len < 0 {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    let len = len as usize;
                    if len > limits.max_bulk_len {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    if limits.unauthenticated && len > Limits::UNAUTHENTICATED_BULK_LEN {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    self.pos = line_end + 2;
                    self.state = State::BulkPayload { remaining, len };
                }
                State::BulkPayload { remaining, len } => {
                    let end = self.pos + len;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    self.examined_bytes += 2;
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(ProtocolError::MissingBulkTerminator);
                    }
                    self.args.push(self.pos..end);
                    self.pos = end + 2;
                    self.line_scan_from = self.pos;
                    if remaining > 1 {
                        self.state = State::BulkHeader { remaining: remaining - 1 };
                        continue;
                    }
                    let frame = buf.split_to(self.pos).freeze();
                    let args = std::mem::take(&mut self.args);
                    self.reset();
                    return Ok(Some(Request { buf: frame, args, inline: false }));
                }
            }
        }
    }

    /// The common case in one pass: a whole, well-formed array request at the start of the buffer, with
    /// short header lines and every limit respected. Anything else (an incomplete request, an inline
    /// command, an empty array, a malformed or over-limit header) returns `None` having changed nothing,
    /// and [`next`](Self::next) scans it step by step: the errors, waits and limits are all its own, and
    /// this path counts examined bytes exactly as it would.
    #[inline]
    fn next_whole(&mut self, buf: &mut BytesMut, limits: &Limits) -> Option<Request> {
        let wire: &[u8] = buf;
        // A header line of 18 digits must be within the line limit, or the general scanner says so.
        if wire.first() != Some(&b'*') || limits.max_inline_len <= MAX_SHORT_HEADER_DIGITS {
            return None;
        }
        let (count, mut pos) = short_header(wire, 1)?;
        let mut examined = pos as u64 - 1;
        let max_count = if limits.unauthenticated {
            limits.max_multibulk_len.min(Limits::UNAUTHENTICATED_MULTIBULK_LEN)
        } else {
            limits.max_multibulk_len
        };
        if count == 0 || count > max_count {
            return None;
        }
        let max_len = if limits.unauthenticated {
            limits.max_bulk_len.min(Limits::UNAUTHENTICATED_BULK_LEN)
        } else {
            limits.max_bulk_len
        };
        let mut args: SmallVec<[Range<usize>; 4]> = SmallVec::new();
        if count > args.inline_size() {
            args.reserve_exact(count.min(1024));
        }
        for _ in 0..count {
            if wire.get(pos) != Some(&b'$') {
                return None;
            }
            let (len, start) = short_header(wire, pos + 1)?;
            if len > max_len {
                return None;
            }
            examined += (start - pos) as u64 + 1;
            let end = start + len;
            if wire.get(end..end + 2) != Some(b"\r\n") {
                return None;
            }
            args.push(start..end);
            pos = end + 2;
        }
        self.examined_bytes += examined;
        let frame = buf.split_to(pos).freeze();
        Some(Request { buf: frame, args, inline: false })
    }

    fn reset(&mut self) {
        self.state = State::Idle;
        self.pos = 0;
        self.line_scan_from = 0;
        self.args.clear();
    }

    /// Finds the `\r\n` that ends the line starting before `from`; returns the offset of its `\r`.
    fn find_line(
        &mut self,
        buf: &BytesMut,
        from: usize,
        limits: &Limits,
        too_long: ProtocolError,
    ) -> Result<Option<usize>, ProtocolError> {
        let start = self.line_scan_from.max(from).min(buf.len());
        let found = memchr_newline(&buf[start..]);
        self.examined_bytes += found.map_or(buf.len() - start, |off| off + 1) as u64;
        match found {
            Some(off) => {
                let nl = start + off;
                if nl == 0 || buf[nl - 1] != b'\r' {
                    return Err(ProtocolError::MissingLineTerminator);
                }
                if nl - from > limits.max_inline_len {
                    return Err(too_long);
                }
                self.line_scan_from = nl + 1;
                Ok(Some(nl - 1))
            }
            None => {
                if buf.len() - from > limits.max_inline_len {
                    return Err(too_long);
                }
                self.line_scan_from = buf.len();
                Ok(None)
            }
        }
    }

    /// `Some(Some(req))`: a request; `Some(None)`: a blank line was consumed; `None`: need more bytes.
    fn scan_inline(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Option<Option<Request>>, ProtocolError> {
        let start = self.line_scan_from.min(buf.len());
        let found = memchr_newline(&buf[start..]);
        self.examined_bytes += found.map_or(buf.len() - start, |off| off + 1) as u64;
        let Some(off) = found else {
            // The line so far can still fit only if at most a trailing `\r` is beyond the limit.
            let max = limits.max_inline_len;
            if buf.len() > max + 1 || (buf.len() == max + 1 && buf[max] != b'\r') {
                return Err(ProtocolError::InlineTooBig);
            }
            self.line_scan_from = buf.len();
            return Ok(None);
        };
        let nl = start + off;
        let content_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
        if content_end > limits.max_inline_len {
            return Err(ProtocolError::InlineTooBig);
        }
        let line = buf.split_to(nl + 1).freeze();
        self.line_scan_from = 0;
        let Some(req) = split_inline(line.slice(..content_end))? else {
            return Ok(Some(None));
        };
        if req.argc() > limits.max_multibulk_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        Ok(Some(Some(req)))
    }
}

fn memchr_newline(hay: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', hay)
}

/// A non-negative length of at most 18 digits at `from`, ended by `\r\n` within the buffer: the length and
/// the offset just past the `\r\n`. `None` for anything else, which the step-by-step scanner then judges.
/// (Its caller makes sure such a line is within the header-line limit.)
#[inline(always)]
fn short_header(wire: &[u8], from: usize) -> Option<(usize, usize)> {
    // One or two digits, as in most array counts, names, keys and small values: no loop.
    match wire.get(from..from + 4) {
        Some(&[d, b'\r', b'\n', _]) => {
            let d = d.wrapping_sub(b'0');
            return (d < 10).then_some((usize::from(d), from + 3));
        }
        Some(&[d1, d0, b'\r', b'\n']) => {
            let (d1, d0) = (d1.wrapping_sub(b'0'), d0.wrapping_sub(b'0'));
            return (d1 < 10 && d0 < 10).then_some((usize::from(d1) * 10 + usize::from(d0), from + 4));
        }
        _ => {}
    }
    let mut n: usize = 0;
    let mut i = from;
    while let Some(&d) = wire.get(i) {
        let d = d.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        n = n * 10 + usize::from(d);
        i += 1;
        if i - from > MAX_SHORT_HEADER_DIGITS {
            return None;
        }
    }
    if i == from || wire.get(i..i + 2) != Some(b"\r\n") {
        return None;
    }
    Some((n, i + 2))
}

/// Longest length the one-pass scan reads (the general scanner reads any that fits an `i64`).
const MAX_SHORT_HEADER_DIGITS: usize = 18;

/// Parses a RESP length: optional `-`, then ASCII digits; no sign for zero, no leading `+`, no spaces.
fn parse_len(digits: &[u8]) -> Option<i64> {
    let (neg, digits) = match digits.first() {
        Some(b'-') => (true, &digits[1..]),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if neg { -n } else { n })
}

/// Splits an inline command line into arguments with Redis's `sdssplitargs` rules: arguments are separated
/// by blanks; `"..."` understands `\n \r \t \b \a \\ \" \xHH`; `'...'` understands only `\'`; a closing
/// quote must be followed by a blank or the end of the line. Returns `None` for a blank line.
fn split_inline(line: Bytes) -> Result<Option<Request>, ProtocolError> {
    let quoted = line.iter().any(|&b| b == b'"' || b == b'\'');
    if !quoted {
        let mut args = SmallVec::new();
        let mut i = 0;
        while i < line.len() {
            while i < line.len() && is_blank(line[i]) {
                i += 1;
            }
            let start = i;
            while i < line.len() && !is_blank(line[i]) {
                i += 1;
            }
            if i > start {
                args.push(start..i);
            }
        }
        if args.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Request { buf: line, args, inline: true }));
    }
    let mut out = Vec::with_capacity(line.len());
    let mut args: SmallVec<[Range<usize>; 4]> = SmallVec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_blank(line[i]) {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = out.len();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' && is_hex(line[i + 2]) && is_hex(line[i + 3]) {
                    out.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 4;
                    continue;
                }
                if c == b'\\' && i + 1 < n {
                    out.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    if i + 1 < n && !is_blank(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                out.push(c);
                i += 1;
            } else if in_sq {
                if i >= n {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    out.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < n && !is_blank(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                out.push(c);
                i += 1;
            } else {
                if i >= n || is_blank(line[i]) {
                    break;
                }
                match line[i] {
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => out.push(c),
                }
                i += 1;
            }
        }
        args.push(start..out.len());
    }
    if args.is_empty() {
        return Ok(None);
    }
    Ok(Some(Request { buf: Bytes::from(out), args, inline: true }))
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' | 0)
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(input: &[u8], limits: &Limits) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut sc = RequestScanner::new();
        let mut out = Vec::new();
        while let Some(r) = sc.next(&mut buf, limits)? {
            out.push(r.args_from(0).map(|a| a.to_vec()).collect());
        }
        Ok(out)
    }

    fn args(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn array_and_inline_requests() {
        let l = Limits::DEFAULT;
        assert_eq!(scan_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", &l).unwrap(), vec![args(&["GET", "k"])]);
        assert_eq!(scan_all(b"PING\r\n", &l).unwrap(), vec![args(&["PING"])]);
        assert_eq!(scan_all(b"set  a   b\n", &l).unwrap(), vec![args(&["set", "a", "b"])]);
        assert_eq!(scan_all(b"\r\n\r\nPING\r\n", &l).unwrap(), vec![args(&["PING"])]);
        assert_eq!(scan_all(b"*0\r\n*-1\r\nPING\r\n", &l).unwrap(), vec![args(&["PING"])]);
        assert_eq!(scan_all(b"*1\r\n$0\r\n\r\n", &l).unwrap(), vec![args(&[""])]);
    }

    #[test]
    fn inline_quoting_follows_redis() {
        let l = Limits::DEFAULT;
        assert_eq!(scan_all(b"set \"a b\" 'c d'\r\n", &l).unwrap(), vec![args(&["set", "a b", "c d"])]);
        assert_eq!(
            scan_all(b"echo \"\\x41\\n\" 'it\\'s'\r\n", &l).unwrap(),
            vec![vec![b"echo".to_vec(), b"A\n".to_vec(), b"it's".to_vec()]]
        );
        assert_eq!(scan_all(b"echo \"abc\r\n", &l), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(scan_all(b"echo \"abc\"x\r\n", &l), Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn protocol_errors() {
        let l = Limits::DEFAULT;
        assert_eq!(scan_all(b"*2\r\n+GET\r\n", &l), Err(ProtocolError::ExpectedBulk('+')));
        assert_eq!(scan_all(b"*x\r\n", &l), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(scan_all(b"*1\r\n$-1\r\n", &l), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(scan_all(b"*1\r\n$3\r\nGETxx", &l), Err(ProtocolError::MissingBulkTerminator));
        assert_eq!(scan_all(b"*1\n", &l), Err(ProtocolError::MissingLineTerminator));
    }

    #[test]
    fn limits_at_their_edges() {
        let l = Limits { max_bulk_len: 4, max_multibulk_len: 2, max_inline_len: 8, unauthenticated: false };
        assert!(scan_all(b"*2\r\n$4\r\nabcd\r\n$0\r\n\r\n", &l).is_ok());
        assert_eq!(scan_all(b"*1\r\n$5\r\nabcde\r\n", &l), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(scan_all(b"*3\r\n", &l), Err(ProtocolError::InvalidMultibulkLength));
        assert!(scan_all(b"12345678\r\n", &l).is_ok());
        assert_eq!(scan_all(b"123456789", &l), Err(ProtocolError::InlineTooBig));
        assert_eq!(scan_all(b"1 2 3\r\n", &l), Err(ProtocolError::InvalidMultibulkLength));
        let unauth = Limits::DEFAULT.unauthenticated();
        assert_eq!(scan_all(b"*11\r\n", &unauth), Err(ProtocolError::UnauthenticatedMultibulkLength));
        assert!(scan_all(b"*10\r\n", &unauth).is_ok());
        assert_eq!(scan_all(b"*1\r\n$16385\r\n", &unauth), Err(ProtocolError::UnauthenticatedBulkLength));
        assert!(scan_all(b"*1\r\n$16384\r\n", &unauth).is_ok());
    }

    #[test]
    fn resumes_without_rescanning_payload() {
        // A 4 MB value fed in 16 KB pieces: the scanner reports "need more" until the end, and a hint
        // tells the reader how much is still missing.
        let value = vec![b'v'; 4 << 20];
        let mut wire = Vec::new();
        wire.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", value.len()).as_bytes());
        wire.extend_from_slice(&value);
        wire.extend_from_slice(b"\r\n");
        let mut sc = RequestScanner::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for chunk in wire.chunks(16 * 1024) {
            buf.extend_from_slice(chunk);
            if let Some(r) = sc.next(&mut buf, &Limits::DEFAULT).unwrap() {
                got = Some(r);
            } else {
                assert!(sc.in_request());
                assert_eq!(sc.bytes_needed_hint(buf.len()), wire.len() - buf.len());
            }
        }
        let r = got.unwrap();
        assert_eq!(r.argc(), 3);
        assert_eq!(r.arg(2).len(), 4 << 20);
        assert!(buf.is_empty());
    }

    #[test]
    fn args_share_the_frame_buffer() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let r = RequestScanner::new().next(&mut buf, &Limits::DEFAULT).unwrap().unwrap();
        let raw = r.raw().unwrap().clone();
        let key = r.arg_bytes(1);
        assert_eq!(&key[..], b"key");
        let raw_range = raw.as_ptr() as usize..raw.as_ptr() as usize + raw.len();
        assert!(raw_range.contains(&(key.as_ptr() as usize)));
    }
}
