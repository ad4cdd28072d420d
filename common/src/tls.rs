//! TLS with rustls (the `ring` provider): the flags both servers share, the server side (a reloadable
//! acceptor for the `--tls-port` listener) and the client side (the proxy's connections to shards).
//!
//! Flags follow Redis's names: `--tls-port`, `--tls-cert-file`, `--tls-key-file`, `--tls-ca-cert-file`,
//! `--tls-auth-clients yes|no|optional`; for outgoing connections `--tls-client-cert-file` and
//! `--tls-client-key-file` (the server's own certificate when they are not given, as Redis does).
//!
//! [`TlsAcceptor`] holds the current `rustls::ServerConfig` behind an `ArcSwap`: [`TlsAcceptor::reload`]
//! re-reads the files and swaps it, so new handshakes use the new certificate while established connections
//! keep the session they negotiated. [`watch_reload`] calls it on SIGHUP and whenever one of the files
//! changes (polled once a second). A reload that fails (a half-written file) keeps the old certificate.
//!
//! [`ClientStream`] is what a server's connection loop needs of its socket beyond `AsyncRead`/`AsyncWrite`,
//! implemented for `TcpStream` (unchanged, no cost) and for a TLS stream over one: connection code is
//! generic over it, so the plain path compiles to what it was.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;

/// Whether a TLS client must present a certificate signed by `--tls-ca-cert-file` (Redis's
/// `tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthClients {
    Yes,
    No,
    Optional,
}

/// The TLS flags of a server's client port.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Port for TLS clients (0 = no TLS listener). With a TLS port, `--port 0` turns plain TCP off.
    #[arg(long, env = "RINGCACHE_TLS_PORT", default_value_t = 0)]
    pub tls_port: u16,

    /// The server's certificate chain (PEM).
    #[arg(long, env = "RINGCACHE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The server certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "RINGCACHE_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// CA certificates (PEM) that sign client certificates, and (on the proxy) the shards' certificates.
    #[arg(long, env = "RINGCACHE_TLS_CA_CERT_FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,

    /// Whether clients must present a certificate signed by the CA: yes, no or optional (default: yes when
    /// `--tls-ca-cert-file` is given, as Redis; no otherwise).
    #[arg(long, env = "RINGCACHE_TLS_AUTH_CLIENTS", value_enum)]
    pub tls_auth_clients: Option<AuthClients>,

    /// How long a TLS client may take to finish its handshake before it is disconnected.
    #[arg(long, env = "RINGCACHE_TLS_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub tls_handshake_timeout_ms: u64,
}

/// The proxy's flags for its connections to shards (Redis's `tls-replication` analogue).
#[derive(Debug, Clone, clap::Args)]
pub struct TlsShardArgs {
    /// Connect to shards over TLS (yes|no), checking their certificates against `--tls-ca-cert-file`.
    #[arg(long, env = "RINGCACHE_TLS_SHARDS", default_value = "no", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub tls_shards: bool,

    /// Certificate (PEM) the proxy presents to shards (default: `--tls-cert-file`).
    #[arg(long, env = "RINGCACHE_TLS_CLIENT_CERT_FILE")]
    pub tls_client_cert_file: Option<PathBuf>,

    /// Key of `--tls-client-cert-file` (default: `--tls-key-file`).
    #[arg(long, env = "RINGCACHE_TLS_CLIENT_KEY_FILE")]
    pub tls_client_key_file: Option<PathBuf>,

    /// Name checked against the shards' certificates (default: each shard's host, an IP address or a name).
    #[arg(long, env = "RINGCACHE_TLS_SHARDS_SERVER_NAME")]
    pub tls_shards_server_name: Option<String>,
}

/// Redis's yes|no.
fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("expected yes or no, got '{s}'")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{flag} is required with {with}")]
    Missing { flag: &'static str, with: &'static str },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: rustls_pki_types::pem::Error },
    #[error("no certificate in {0}")]
    NoCertificate(String),
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid --tls-ca-cert-file: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

/// The `ring` provider (rustls marks it deprecated only for lacking post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = || path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read { path: shown(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(shown()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })
}

fn read_roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// The files a TLS listener serves from, read again on every reload.
#[derive(Debug, Clone)]
struct ServerFiles {
    cert: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
    auth: AuthClients,
}

impl ServerFiles {
    fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        let builder = rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
        let builder = match (&self.ca, self.auth) {
            (Some(ca), AuthClients::Yes | AuthClients::Optional) => {
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider());
                let verifier =
                    if self.auth == AuthClients::Optional { verifier.allow_unauthenticated() } else { verifier };
                builder.with_client_cert_verifier(verifier.build()?)
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(builder.with_single_cert(certs, key)?))
    }

    fn paths(&self) -> Vec<PathBuf> {
        [Some(&self.cert), Some(&self.key), self.ca.as_ref()].into_iter().flatten().cloned().collect()
    }
}

/// Accepts TLS connections with the current certificate; [`TlsAcceptor::reload`] replaces it for the
/// handshakes that follow.
pub struct TlsAcceptor {
    files: ServerFiles,
    current: ArcSwap<rustls::ServerConfig>,
    handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor").field("files", &self.files).finish_non_exhaustive()
    }
}

/// A server-side TLS connection.
pub type ServerTlsStream = tokio_rustls::server::TlsStream<TcpStream>;

impl TlsAcceptor {
    /// `None` without `--tls-port`; an error when the files are missing or do not load.
    pub fn from_args(args: &TlsArgs) -> Result<Option<Arc<TlsAcceptor>>, TlsError> {
        if args.tls_port == 0 {
            return Ok(None);
        }
        let with = "--tls-port";
        let cert = args.tls_cert_file.clone().ok_or(TlsError::Missing { flag: "--tls-cert-file", with })?;
        let key = args.tls_key_file.clone().ok_or(TlsError::Missing { flag: "--tls-key-file", with })?;
        let auth = match (args.tls_auth_clients, &args.tls_ca_cert_file) {
            (Some(AuthClients::No), _) => AuthClients::No,
            (Some(auth), None) => {
                let _ = auth;
                return Err(TlsError::Missing { flag: "--tls-ca-cert-file", with: "--tls-auth-clients yes|optional" });
            }
            (Some(auth), Some(_)) => auth,
            (None, Some(_)) => AuthClients::Yes,
            (None, None) => AuthClients::No,
        };
        let files = ServerFiles { cert, key, ca: args.tls_ca_cert_file.clone(), auth };
        let current = ArcSwap::new(files.load()?);
        let handshake_timeout = Duration::from_millis(args.tls_handshake_timeout_ms.max(1));
        Ok(Some(Arc::new(TlsAcceptor { files, current, handshake_timeout })))
    }

    /// Reads the certificate, key and CA files again; new handshakes use them. On error the old ones stay.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current.store(self.files.load()?);
        Ok(())
    }

    /// The TLS handshake, within `--tls-handshake-timeout-ms`.
    /// A new client's handshake as both servers run it: no Nagle delay, given up at shutdown, a failure
    /// logged (at debug: port scanners and plain-text clients fail it). `None` when there is no session.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        addr: std::net::SocketAddr,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<ServerTlsStream> {
        let _ = stream.set_nodelay(true);
        let handshake = tokio::select! {
            _ = shutdown.cancelled() => return None,
            h = self.accept(stream) => h,
        };
        handshake.map_err(|e| tracing::debug!("TLS client {addr}: handshake failed: {e}")).ok()
    }

    pub async fn accept(&self, stream: TcpStream) -> io::Result<ServerTlsStream> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }
}

fn modified(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

/// Reloads `acceptor`'s certificates on SIGHUP and when one of its files changes, until `shutdown`.
pub fn watch_reload(acceptor: Arc<TlsAcceptor>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP: {e}; TLS certificate files are still polled");
                None
            }
        };
        let paths = acceptor.files.paths();
        let mut seen = modified(&paths);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => "SIGHUP",
                _ = tick.tick() => {
                    let now = modified(&paths);
                    if now == seen {
                        continue;
                    }
                    "a changed file"
                }
            };
            seen = modified(&paths);
            match acceptor.reload() {
                Ok(()) => tracing::info!("TLS certificates reloaded ({why})"),
                Err(e) => tracing::warn!("TLS certificates not reloaded ({why}), keeping the old ones: {e}"),
            }
        }
    });
}

/// A client-side TLS connection (the proxy's, to a shard).
pub type ClientTlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// How the proxy connects to shards over TLS.
#[derive(Clone)]
pub struct TlsConnector {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// `None` without `--tls-shards yes`.
    pub fn from_args(server: &TlsArgs, shards: &TlsShardArgs) -> Result<Option<TlsConnector>, TlsError> {
        if !shards.tls_shards {
            return Ok(None);
        }
        let ca = server
            .tls_ca_cert_file
            .as_ref()
            .ok_or(TlsError::Missing { flag: "--tls-ca-cert-file", with: "--tls-shards yes" })?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(read_roots(ca)?);
        let cert = shards.tls_client_cert_file.as_ref().or(server.tls_cert_file.as_ref());
        let key = shards.tls_client_key_file.as_ref().or(server.tls_key_file.as_ref());
        let config = match (cert, key) {
            (Some(cert), Some(key)) => builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?,
            _ => builder.with_no_client_auth(),
        };
        let server_name = match &shards.tls_shards_server_name {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name.clone()))?),
            None => None,
        };
        Ok(Some(TlsConnector { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), server_name }))
    }

    /// The handshake with a shard at `addr` (`host:port`) over `stream`.
    pub async fn connect(&self, addr: &str, stream: TcpStream) -> io::Result<ClientTlsStream> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(host.to_string())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("invalid TLS name {host:?}")))?
            }
        };
        self.connector.connect(name, stream).await
    }
}

/// A connection to a shard: plain TCP, or TLS with `--tls-shards yes`. Writers flush after writing (a
/// no-op on TCP; TLS may hold encrypted bytes until flushed).
#[derive(Debug)]
pub enum ShardStream {
    Tcp(TcpStream),
    Tls(Box<ClientTlsStream>),
}

impl ShardStream {
    /// Connects to `addr`, over TLS when `tls` is set.
    pub async fn connect(addr: &str, tls: Option<&TlsConnector>) -> io::Result<ShardStream> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(ShardStream::Tcp(tcp)),
            Some(tls) => Ok(ShardStream::Tls(Box::new(tls.connect(addr, tcp).await?))),
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            ShardStream::Tcp(s) => s,
            ShardStream::Tls(s) => s.get_ref().0,
        }
    }

    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.tcp().set_nodelay(nodelay)
    }

    /// Writes all of `buf` and flushes it (TLS holds encrypted bytes until flushed). Shadows
    /// `AsyncWriteExt::write_all`, so callers written for a `TcpStream` stay correct over TLS.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(self, buf).await?;
        self.flush().await
    }

    /// Whether the peer sent anything or closed: reads the socket without waiting (plain TCP only; over TLS
    /// the bytes read are lost, so only for a connection that is dropped when anything arrived).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp().try_read(buf)
    }

    /// Read and write halves that can be used from two futures at once (`TcpStream::into_split` on TCP).
    pub fn into_split(self) -> (ShardReadHalf, ShardWriteHalf) {
        match self {
            ShardStream::Tcp(s) => {
                let (r, w) = s.into_split();
                (ShardReadHalf::Tcp(r), ShardWriteHalf::Tcp(w))
            }
            ShardStream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ShardReadHalf::Tls(r), ShardWriteHalf::Tls(w))
            }
        }
    }
}

/// The reading half of a [`ShardStream`].
#[derive(Debug)]
pub enum ShardReadHalf {
    Tcp(tokio::net::tcp::OwnedReadHalf),
    Tls(tokio::io::ReadHalf<ClientTlsStream>),
}

/// The writing half of a [`ShardStream`].
#[derive(Debug)]
pub enum ShardWriteHalf {
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<ClientTlsStream>),
}

impl ShardWriteHalf {
    /// Writes all of `buf` and flushes it (see [`ShardStream::write_all`]).
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        AsyncWriteExt::write_all(self, buf).await?;
        self.flush().await
    }
}

impl AsyncRead for ShardReadHalf {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ShardReadHalf::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            ShardReadHalf::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ShardWriteHalf {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            ShardWriteHalf::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            ShardWriteHalf::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ShardWriteHalf::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            ShardWriteHalf::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ShardWriteHalf::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            ShardWriteHalf::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ShardStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ShardStream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            ShardStream::Tls(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ShardStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            ShardStream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            ShardStream::Tls(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            ShardStream::Tcp(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            ShardStream::Tls(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ShardStream::Tcp(s) => s.is_write_vectored(),
            ShardStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ShardStream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            ShardStream::Tls(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            ShardStream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            ShardStream::Tls(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What a server's connection loop needs of its client socket beyond reading and writing.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket underneath (addresses, `TCP_NODELAY`).
    fn tcp(&self) -> &TcpStream;

    /// Ready when a read will not wait: bytes on the socket, or (TLS) decrypted bytes already buffered.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;

    /// Writes all of `buf` onto the socket (TLS: encrypted and flushed).
    fn send_all<'a>(&'a mut self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a;

    /// Writes what the socket takes now without waiting; `WouldBlock` when it takes nothing.
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// [`ClientStream::try_write`] from several buffers.
    fn try_write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize>;

    /// Pushes out bytes accepted by `try_write` but still held (TLS records); false while the socket is full.
    fn try_flush(&mut self) -> io::Result<bool>;

    /// Ready when the socket can take more.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_;
}

impl ClientStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        // The socket's own read-readiness slot (as a read uses), not `TcpStream::readable`'s waiter list: one
        // task reads a client socket, and this costs no waiter to link in and out on every wait.
        std::future::poll_fn(move |cx| self.poll_read_ready(cx))
    }

    fn send_all<'a>(&'a mut self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + Send + 'a {
        self.write_all(buf)
    }

    #[inline]
    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }

    #[inline]
    fn try_write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        TcpStream::try_write_vectored(self, bufs)
    }

    #[inline]
    fn try_flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        TcpStream::writable(self)
    }
}

/// A poll without a waker to call: the caller waits with `writable()` instead.
fn poll_now<T>(f: impl FnOnce(&mut std::task::Context<'_>) -> std::task::Poll<io::Result<T>>) -> io::Result<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

impl ClientStream for ServerTlsStream {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        let (tcp, tls) = self.get_ref();
        std::future::poll_fn(move |cx| {
            // rustls stops wanting socket bytes while it holds decrypted ones (or after close_notify): then a
            // read returns at once, even with nothing on the socket.
            if !tls.wants_read() {
                return std::task::Poll::Ready(Ok(()));
            }
            tcp.poll_read_ready(cx)
        })
    }

    async fn send_all<'a>(&'a mut self, buf: &'a [u8]) -> io::Result<()> {
        self.write_all(buf).await?;
        self.flush().await
    }

    fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Held records first, so that what was accepted earlier leaves first and memory stays bounded.
        if !self.try_flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        poll_now(|cx| std::pin::Pin::new(&mut *self).poll_write(cx, buf))
    }

    fn try_write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if !self.try_flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        poll_now(|cx| std::pin::Pin::new(&mut *self).poll_write_vectored(cx, bufs))
    }

    fn try_flush(&mut self) -> io::Result<bool> {
        match poll_now(|cx| std::pin::Pin::new(&mut *self).poll_flush(cx)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        self.get_ref().0.writable()
    }
}
