//! A raw client for byte-for-byte tests: sends request bytes, reads whole replies of either protocol
//! (framed by common's `ReplyScanner`, which knows every RESP3 type), pushes included.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringcache_common::resp::ReplyScanner;

pub struct WireClient {
    stream: TcpStream,
    buf: BytesMut,
    scanner: ReplyScanner,
}

impl WireClient {
    pub fn connect(port: u16) -> WireClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        WireClient { stream, buf: BytesMut::new(), scanner: ReplyScanner::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends one request made of `args` and returns its whole reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&ringcache_testkit::resp(args));
        self.reply()
    }

    /// [`WireClient::call`] with string arguments.
    pub fn call_str(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&args)
    }

    /// The next whole reply (or push frame); fails the test after 10 s without one.
    pub fn reply(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(frame) = self.scanner.next(&mut self.buf).unwrap() {
                return frame.to_vec();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no whole reply within 10 s; have {:?}", String::from_utf8_lossy(&self.buf));
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// Reply bytes shown readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\\r\\n")
}
