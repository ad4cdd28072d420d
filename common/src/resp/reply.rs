//! RESP2 reply encoding straight into a connection's output buffer.
//!
//! Replies are appended to one `BytesMut` per connection and written with one syscall per batch. Lengths
//! and integers are formatted with `itoa` (no allocation); `benches/resp.rs` compares this against
//! `redis-protocol`'s encoder, which is slower because it first builds a `Frame` value.

use bytes::{BufMut, BytesMut};

/// Appends RESP2 replies to a buffer.
pub trait ReplyWriter {
    /// `+OK\r\n` style status reply. `s` must not contain `\r` or `\n`.
    fn simple(&mut self, s: &str);
    /// `-ERR ...\r\n` error reply; `msg` includes the error code (`ERR`, `WRONGTYPE`, ...). Newlines in
    /// `msg` are replaced by spaces so that a reply can never break framing.
    fn error(&mut self, msg: &str);
    /// `:n\r\n`
    fn integer(&mut self, n: i64);
    /// `$len\r\n...\r\n`
    fn bulk(&mut self, data: &[u8]);
    /// A bulk string made of several pieces laid end to end.
    fn bulk_parts(&mut self, parts: &[&[u8]]);
    /// `$-1\r\n` (RESP2 null).
    fn null(&mut self);
    /// `*-1\r\n` (RESP2 null array).
    fn null_array(&mut self);
    /// `*n\r\n`, to be followed by `n` replies.
    fn array_len(&mut self, n: usize);
    /// An integer as a bulk string (Redis replies some numbers that way).
    fn bulk_integer(&mut self, n: i64);
    /// A double as a bulk string, in the shortest form that reads back to the same value.
    fn bulk_double(&mut self, d: f64);
    /// `+OK\r\n`
    fn ok(&mut self) {
        self.simple("OK");
    }
}

impl ReplyWriter for BytesMut {
    fn simple(&mut self, s: &str) {
        self.reserve(s.len() + 3);
        self.put_u8(b'+');
        self.put_slice(s.as_bytes());
        self.put_slice(b"\r\n");
    }

    fn error(&mut self, msg: &str) {
        self.reserve(msg.len() + 3);
        self.put_u8(b'-');
        for &b in msg.as_bytes() {
            self.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.put_slice(b"\r\n");
    }

    fn integer(&mut self, n: i64) {
        let mut f = itoa::Buffer::new();
        let s = f.format(n);
        self.reserve(s.len() + 3);
        self.put_u8(b':');
        self.put_slice(s.as_bytes());
        self.put_slice(b"\r\n");
    }

    fn bulk(&mut self, data: &[u8]) {
        let mut f = itoa::Buffer::new();
        let s = f.format(data.len());
        self.reserve(data.len() + s.len() + 5);
        self.put_u8(b'$');
        self.put_slice(s.as_bytes());
        self.put_slice(b"\r\n");
        self.put_slice(data);
        self.put_slice(b"\r\n");
    }

    fn bulk_parts(&mut self, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut f = itoa::Buffer::new();
        let s = f.format(len);
        self.reserve(len + s.len() + 5);
        self.put_u8(b'$');
        self.put_slice(s.as_bytes());
        self.put_slice(b"\r\n");
        for p in parts {
            self.put_slice(p);
        }
        self.put_slice(b"\r\n");
    }

    fn null(&mut self) {
        self.put_slice(b"$-1\r\n");
    }

    fn null_array(&mut self) {
        self.put_slice(b"*-1\r\n");
    }

    fn array_len(&mut self, n: usize) {
        let mut f = itoa::Buffer::new();
        let s = f.format(n);
        self.reserve(s.len() + 3);
        self.put_u8(b'*');
        self.put_slice(s.as_bytes());
        self.put_slice(b"\r\n");
    }

    fn bulk_integer(&mut self, n: i64) {
        let mut f = itoa::Buffer::new();
        self.bulk(f.format(n).as_bytes());
    }

    fn bulk_double(&mut self, d: f64) {
        self.bulk(format_double(d).as_bytes());
    }
}

/// Encodes a request (an array of bulk strings), as a client would send it.
pub fn encode_request<'a>(args: impl ExactSizeIterator<Item = &'a [u8]>) -> bytes::Bytes {
    let mut out = BytesMut::new();
    out.array_len(args.len());
    for a in args {
        out.bulk(a);
    }
    out.freeze()
}

/// Formats a double the way Redis 7 replies with one: `inf`/`-inf`, integers without a fraction, otherwise
/// the shortest decimal that reads back to the same value (exponent form for very large or small values).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == d.trunc() && d.abs() < 1e17 {
        return format!("{}", d as i64);
    }
    let abs = d.abs();
    if !(1e-5..1e17).contains(&abs) {
        let s = format!("{d:e}");
        // Rust prints `1e21`, `1.5e-7`; Redis prints `1e+21`, `1.5e-07`.
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mant}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{d}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_reply_type() {
        let mut b = BytesMut::new();
        b.ok();
        b.error("ERR bad\r\nthing");
        b.integer(-42);
        b.bulk(b"hi");
        b.bulk_parts(&[b"a", b"bc"]);
        b.null();
        b.null_array();
        b.array_len(2);
        b.bulk_integer(7);
        b.bulk_double(1.5);
        assert_eq!(
            &b[..],
            &b"+OK\r\n-ERR bad  thing\r\n:-42\r\n$2\r\nhi\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*2\r\n$1\r\n7\r\n$3\r\n1.5\r\n"
                [..]
        );
    }

    #[test]
    fn doubles_read_back_and_look_like_redis() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-0.5), "-0.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(1e21), "1e+21");
        assert_eq!(format_double(1.5e-7), "1.5e-07");
        for d in [0.1, 1.1, 123.456, 1e-3, 9.99e16] {
            assert_eq!(format_double(d).parse::<f64>().unwrap(), d);
        }
    }
}
