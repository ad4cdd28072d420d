//! A shard connection of one client's own, for state that must live on a connection: the keys a client
//! WATCHes (and the transaction that checks them). Requests on it never wait behind other clients', and
//! other clients never wait behind it. Unlike the shared connections ([`crate::backend`]) it is driven by
//! the session's own task, one request at a time.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ringcache_common::resp::{Protocol, ReplyScanner};
use ringcache_common::tls::ShardStream;
use tokio::io::AsyncReadExt;

use crate::backend::{authenticate, BackendError, ConnectError};
use crate::cluster::ShardHandle;

/// The first request: names the connection (and switches a RESP3 one to RESP3).
const SET_NAME: &[u8] = b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$21\r\nringcache-proxy-watch\r\n";
const HELLO_3: &[u8] = b"*4\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$7\r\nSETNAME\r\n$21\r\nringcache-proxy-watch\r\n";

/// One client's own connection to one shard.
pub struct Dedicated {
    stream: ShardStream,
    buf: BytesMut,
    scanner: ReplyScanner,
    /// Silence after which a request fails (the proxy's `--timeout`).
    timeout: Duration,
    /// The shard's name, for error messages.
    pub shard: String,
}

impl Dedicated {
    /// Connects to `shard`, authenticates, and switches to `proto`.
    pub async fn open(shard: &ShardHandle, proto: Protocol) -> Result<Dedicated, BackendError> {
        let (addr, password, timeout) = shard.connect_settings();
        let connect = async {
            let mut stream = crate::tls::connect_shard(addr).await.map_err(|_| BackendError::Unreachable)?;
            let _ = stream.set_nodelay(true);
            authenticate(&mut stream, password).await.map_err(|e| match e {
                ConnectError::Io(_) => BackendError::Closed,
                ConnectError::Auth(kind, _) => kind,
            })?;
            Ok::<_, BackendError>(stream)
        };
        let stream = tokio::time::timeout(timeout, connect).await.map_err(|_| BackendError::Unreachable)??;
        let mut conn = Dedicated {
            stream,
            buf: BytesMut::with_capacity(4096),
            scanner: ReplyScanner::new(),
            timeout,
            shard: shard.spec.name.clone(),
        };
        let first = if proto == Protocol::Resp3 { HELLO_3 } else { SET_NAME };
        let hello = conn.call(first, 1).await?;
        if hello.first().is_some_and(|r| r.first() == Some(&b'-')) {
            return Err(BackendError::Protocol);
        }
        Ok(conn)
    }

    /// Sends `request` (one or more requests, written at once) and returns the next `replies` replies.
    pub async fn call(&mut self, request: &[u8], replies: usize) -> Result<Vec<Bytes>, BackendError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.stream.write_all(request))
            .await
            .map_err(|_| BackendError::Timeout)?
            .map_err(|_| BackendError::Closed)?;
        let mut out = Vec::with_capacity(replies);
        while out.len() < replies {
            match self.scanner.next(&mut self.buf) {
                Ok(Some(reply)) => {
                    out.push(reply);
                    continue;
                }
                Ok(None) => {}
                Err(_) => return Err(BackendError::Protocol),
            }
            // Silence, not size, is what times out: each read that brings bytes starts the clock again.
            match tokio::time::timeout(timeout, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Err(BackendError::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(BackendError::Closed),
                Ok(Ok(_)) => {}
            }
        }
        Ok(out)
    }

    /// The error line a client gets when this connection fails.
    pub fn error_line(&self, e: BackendError) -> String {
        e.client_message(&self.shard)
    }
}
