//! Test certificates made with rcgen: a CA, a server certificate for `127.0.0.1` and `localhost`, and a
//! client certificate, written as PEM files into a directory the tests pass to servers and clients.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

/// PEM files of a test CA and the certificates it signed.
pub struct TestCerts {
    pub dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCerts {
    /// Makes a CA (`ca.crt`), a server certificate (`server.crt`/`server.key`, serial 1) and a client
    /// certificate (`client.crt`/`client.key`) in `dir`.
    pub fn new(dir: &Path) -> TestCerts {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Ringcache test CA");
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert");
        std::fs::write(dir.join("ca.crt"), issuer.pem()).expect("write ca.crt");
        let certs = TestCerts { dir: dir.to_path_buf(), issuer };
        certs.issue_server(1);
        certs.issue("client", &["ringcache-client"], ExtendedKeyUsagePurpose::ClientAuth, 100);
        certs
    }

    /// Writes a new `server.crt`/`server.key` with serial `serial` (replacing the old ones); returns the
    /// certificate's DER bytes.
    pub fn issue_server(&self, serial: u64) -> Vec<u8> {
        self.issue("server", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, serial)
    }

    /// Writes `<name>.crt`/`<name>.key` for `sans`, signed by the CA; returns the certificate's DER bytes.
    pub fn issue(&self, name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose, serial: u64) -> Vec<u8> {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("cert params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        // The key first, so that a watcher never sees a new certificate with the old key.
        let tmp_key = self.dir.join(format!(".{name}.key.tmp"));
        let tmp_crt = self.dir.join(format!(".{name}.crt.tmp"));
        std::fs::write(&tmp_key, key.serialize_pem()).expect("write key");
        std::fs::write(&tmp_crt, cert.pem()).expect("write cert");
        std::fs::rename(&tmp_key, self.path(&format!("{name}.key"))).expect("rename key");
        std::fs::rename(&tmp_crt, self.path(&format!("{name}.crt"))).expect("rename cert");
        cert.der().to_vec()
    }

    /// A file in the directory, as a string for command lines.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

/// A blocking TLS client (rustls) for tests that look at the handshake: which certificate the server
/// presented, whether it refused the client.
pub struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
}

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use tokio_rustls::rustls;

impl TlsClient {
    /// Connects to 127.0.0.1:`port`, trusting the CA of `certs`, presenting the client certificate when
    /// `client_cert`; the handshake is finished before it returns.
    pub fn connect(port: u16, certs: &TestCerts, client_cert: bool) -> std::io::Result<TlsClient> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(certs.dir.join("ca.crt")).expect("read ca.crt") {
            roots.add(cert.expect("ca.crt")).expect("add the CA");
        }
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let config = if client_cert {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certs.dir.join("client.crt"))
                .expect("read client.crt")
                .map(|c| c.expect("client.crt"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(certs.dir.join("client.key")).expect("client.key");
            builder.with_client_auth_cert(chain, key).expect("client cert")
        } else {
            builder.with_no_client_auth()
        };
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        Ok(TlsClient { stream: rustls::StreamOwned::new(conn, sock) })
    }

    /// The DER bytes of the certificate the server presented.
    pub fn peer_cert(&self) -> Vec<u8> {
        self.stream.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default()
    }

    /// Sends a request and reads a one-line reply, or a bulk string (`$n` line and its payload).
    pub fn request(&mut self, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        self.stream.write_all(&crate::resp(args))?;
        self.stream.flush()?;
        let mut reader = std::io::BufReader::new(&mut self.stream);
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.first() == Some(&b'$') {
            let n: i64 = String::from_utf8_lossy(&line[1..line.len() - 2]).parse().unwrap_or(-1);
            if n >= 0 {
                let mut payload = vec![0; n as usize + 2];
                reader.read_exact(&mut payload)?;
                line.extend_from_slice(&payload);
            }
        }
        Ok(line)
    }
}
