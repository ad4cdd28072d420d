//! Helpers shared by the integration tests of every Ringcache crate (a dev-dependency only).
//!
//! Tests start real servers on loopback ports they pick beforehand, and many tests of one binary run at
//! once. [`free_port`] never hands the same port to two of them, and [`wait_listening`] polls until the
//! server started on it accepts connections (or fails with what went wrong), never sleeping a fixed time.
//! [`resp`] writes a request as the bytes a client sends. [`tls::TestCerts`] makes a CA and certificates.
#![allow(clippy::expect_used)]

pub mod tls;

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ports [`free_port`] has handed out in this process.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How long a server may take to start listening.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1, never the same twice in one test process.
///
/// The port is found by binding port 0 and releasing it. The kernel may give that same port to the next
/// bind of port 0: without the record, two tests starting servers at the same moment could both be handed
/// it, one server would fail to bind, and its test would talk to the other test's server until that one
/// stopped (a CI run saw `Connection refused` just after the port had answered).
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind a loopback port").port();
        if HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// Polls until something accepts connections on `port`; panics if `child` (named `name` in the message)
/// exits first, or if nothing listens within 20 s.
pub fn wait_listening(name: &str, port: u16, child: &mut Child) {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().expect("check the child process") {
            panic!("{name} exited before listening on {port}: {status}");
        }
        assert!(Instant::now() < deadline, "{name} did not listen on {port} within {LISTEN_TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A request as a RESP array of bulk strings, the bytes a client library sends.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..2000).map(|_| free_port()).collect();
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
    }

    #[test]
    fn a_child_that_exits_before_listening_is_reported() {
        let mut child = std::process::Command::new("true").spawn().expect("run true");
        let port = free_port();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_listening("true", port, &mut child);
        }));
        let message = outcome.expect_err("nothing listens");
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("true exited before listening"), "{text}");
    }
}
