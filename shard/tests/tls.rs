//! TLS on the shard's client port (`--tls-port`), with real clients: `redis-cli --tls`, redis-py
//! `ssl=True`, the `redis` crate's `rediss://`, and a rustls client that looks at the handshake
//! (client certificates required or not, the certificate served before and after a reload).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use ringcache_testkit::tls::{TestCerts, TlsClient};
use support::{free_port, Shard};

/// A shard with a TLS port on `certs`, plus `extra` flags; returns it and its TLS port.
fn tls_shard(certs: &TestCerts, extra: &[&str]) -> (Shard, u16) {
    let tls_port = free_port();
    let mut args: Vec<String> = vec![
        "--tls-port".into(),
        tls_port.to_string(),
        "--tls-cert-file".into(),
        certs.path("server.crt"),
        "--tls-key-file".into(),
        certs.path("server.key"),
        "--tls-ca-cert-file".into(),
        certs.path("ca.crt"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Snapshots go to the certificates' directory, which the test removes after the shard stops.
    let mut shard = Shard::spawn(&certs.dir, &args, false);
    shard.wait_port(tls_port);
    (shard, tls_port)
}

fn redis_cli(tls_port: u16, certs: &TestCerts, client_cert: bool, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &tls_port.to_string(), "--tls", "--cacert", &certs.path("ca.crt")]);
    if client_cert {
        cmd.args(["--cert", &certs.path("client.crt"), "--key", &certs.path("client.key")]);
    }
    let out = cmd.args(args).output().expect("run redis-cli");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text.trim().to_string())
}

#[test]
fn redis_cli_over_tls_with_and_without_client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    // A CA is given: clients must present a certificate (Redis's default, tls-auth-clients yes).
    let (_shard, port) = tls_shard(&certs, &[]);
    assert_eq!(redis_cli(port, &certs, true, &["SET", "k", "v"]), (true, "OK".to_string()));
    assert_eq!(redis_cli(port, &certs, true, &["GET", "k"]), (true, "v".to_string()));
    let (_, refused) = redis_cli(port, &certs, false, &["GET", "k"]);
    assert_ne!(refused, "v", "a client without a certificate was served");
    // A rustls client without a certificate is refused too (TLS 1.3: by an alert after the handshake).
    let refused = TlsClient::connect(port, &certs, false).and_then(|mut c| c.request(&[b"PING"]));
    assert!(refused.is_err(), "served without a client certificate: {refused:?}");
    let mut client = TlsClient::connect(port, &certs, true).unwrap();
    assert_eq!(client.request(&[b"PING"]).unwrap(), b"+PONG\r\n");
}

#[test]
fn optional_and_no_client_authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    for auth in ["optional", "no"] {
        let (_shard, port) = tls_shard(&certs, &["--tls-auth-clients", auth]);
        assert_eq!(redis_cli(port, &certs, false, &["PING"]), (true, "PONG".to_string()), "{auth}");
        assert_eq!(redis_cli(port, &certs, true, &["PING"]), (true, "PONG".to_string()), "{auth}");
    }
}

#[test]
fn redis_py_with_ssl() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (_shard, port) = tls_shard(&certs, &[]);
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={port}, ssl=True, ssl_ca_certs='{ca}', ssl_certfile='{crt}', \
         ssl_keyfile='{key}')\n\
         r.set('py', 'over tls')\n\
         p = r.pipeline(transaction=False)\n\
         for i in range(1000): p.incr('n')\n\
         p.execute()\n\
         print(r.get('py').decode(), r.get('n').decode())\n",
        ca = certs.path("ca.crt"),
        crt = certs.path("client.crt"),
        key = certs.path("client.key"),
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("run python3");
    assert!(out.status.success(), "redis-py failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("over tls 1000"), "{text}");
}

#[test]
fn redis_crate_rediss_url() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (_shard, port) = tls_shard(&certs, &[]);
    let tls = redis::TlsCertificates {
        client_tls: Some(redis::ClientTlsConfig {
            client_cert: std::fs::read(certs.dir.join("client.crt")).unwrap(),
            client_key: std::fs::read(certs.dir.join("client.key")).unwrap(),
        }),
        root_cert: Some(std::fs::read(certs.dir.join("ca.crt")).unwrap()),
    };
    let client = redis::Client::build_with_tls(format!("rediss://127.0.0.1:{port}/"), tls).unwrap();
    let mut con = client.get_connection().unwrap();
    // A value larger than a TLS record (16 KB) in both directions.
    let big = "x".repeat(100_000);
    let _: () = redis::cmd("SET").arg("big").arg(&big).query(&mut con).unwrap();
    let got: String = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(got, big);
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    pipe.cmd("DBSIZE");
    let (n,): (u64,) = pipe.query(&mut con).unwrap();
    assert_eq!(n, 501);
}

/// A shard process started here (the harness always passes `--port`); killed when dropped.
struct Bare(std::process::Child);

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn port_zero_turns_plain_tcp_off() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (tls_port, metrics_port) = (free_port(), free_port());
    let mut shard = Bare(
        Command::new(env!("CARGO_BIN_EXE_ringcache-shard"))
            .args(["--port", "0", "--tls-port", &tls_port.to_string(), "--metrics-port", &metrics_port.to_string()])
            .args(["--tls-cert-file", &certs.path("server.crt"), "--tls-key-file", &certs.path("server.key")])
            .args(["--tls-ca-cert-file", &certs.path("ca.crt"), "--log", "warn", "--dir", &certs.path("")])
            .env_remove("RINGCACHE_PORT")
            .spawn()
            .unwrap(),
    );
    support::wait_listening("ringcache-shard", tls_port, &mut shard.0);
    let mut client = TlsClient::connect(tls_port, &certs, true).unwrap();
    assert_eq!(client.request(&[b"SET", b"a", b"1"]).unwrap(), b"+OK\r\n");
    assert_eq!(client.request(&[b"GET", b"a"]).unwrap(), b"$1\r\n1\r\n");
    // No plain listener: the only TCP ports the process listens on are the TLS and metrics ones.
    let listening = listening_ports(shard.0.id());
    assert_eq!(listening, vec![tls_port.min(metrics_port), tls_port.max(metrics_port)], "{listening:?}");
}

/// The TCP ports process `pid` listens on (from /proc: its sockets' inodes matched in /proc/net/tcp).
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.display().to_string();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // st 0A = LISTEN
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports
}

#[test]
fn plain_and_tls_clients_see_the_same_data() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (shard, port) = tls_shard(&certs, &[]);
    let mut plain = shard.client();
    let _: () = redis::cmd("SET").arg("shared").arg("yes").query(&mut plain).unwrap();
    let mut tls = TlsClient::connect(port, &certs, true).unwrap();
    assert_eq!(tls.request(&[b"GET", b"shared"]).unwrap(), b"$3\r\nyes\r\n");
    let clients: String = redis::cmd("INFO").arg("clients").query(&mut plain).unwrap();
    assert!(clients.contains("connected_clients:2"), "{clients}");
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (_shard, port) = tls_shard(&certs, &["--tls-handshake-timeout-ms", "300"]);
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the connection closed");
    assert!(started.elapsed() < Duration::from_secs(5), "closed only after {:?}", started.elapsed());
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_only() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (shard, port) = tls_shard(&certs, &[]);
    let first = std::fs::read_to_string(certs.dir.join("server.crt")).unwrap();
    let mut old = TlsClient::connect(port, &certs, true).unwrap();
    let old_cert = old.peer_cert();
    assert_eq!(old.request(&[b"SET", b"before", b"1"]).unwrap(), b"+OK\r\n");

    let new_cert = certs.issue_server(2);
    assert_ne!(new_cert, old_cert);
    assert_ne!(std::fs::read_to_string(certs.dir.join("server.crt")).unwrap(), first);
    let status = Command::new("kill").args(["-HUP", &shard.pid().to_string()]).status().unwrap();
    assert!(status.success());
    // The reload happens on the shard's own time: poll new connections until one gets the new certificate.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut fresh = TlsClient::connect(port, &certs, true).unwrap();
        if fresh.peer_cert() == new_cert {
            assert_eq!(fresh.request(&[b"GET", b"before"]).unwrap(), b"$1\r\n1\r\n");
            break;
        }
        assert_eq!(fresh.peer_cert(), old_cert);
        assert!(Instant::now() < deadline, "the new certificate was not served within 10 s of SIGHUP");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The connection made before the reload is still served, on the session it negotiated.
    assert_eq!(old.peer_cert(), old_cert);
    assert_eq!(old.request(&[b"INCR", b"before"]).unwrap(), b":2\r\n");
    // The shard survived SIGHUP (no default action: it would have terminated it).
    let mut plain = shard.client();
    let pong: String = redis::cmd("PING").query(&mut plain).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn a_broken_certificate_file_keeps_the_old_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(tmp.path());
    let (shard, port) = tls_shard(&certs, &[]);
    let served = TlsClient::connect(port, &certs, true).unwrap().peer_cert();
    std::fs::write(certs.dir.join("server.crt"), "not a certificate").unwrap();
    let status = Command::new("kill").args(["-HUP", &shard.pid().to_string()]).status().unwrap();
    assert!(status.success());
    // Whatever the reload did, handshakes keep working with the certificate loaded before.
    for _ in 0..20 {
        let mut c = TlsClient::connect(port, &certs, true).unwrap();
        assert_eq!(c.peer_cert(), served);
        assert_eq!(c.request(&[b"PING"]).unwrap(), b"+PONG\r\n");
    }
}

#[test]
fn missing_files_or_ca_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut shard = Shard::spawn(dir.path(), &["--tls-port", &port], false);
    let (code, stderr) = shard.wait_exit();
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--tls-cert-file is required with --tls-port"), "{stderr}");

    let certs = TestCerts::new(dir.path());
    let args = [
        "--tls-port",
        &port,
        "--tls-cert-file",
        &certs.path("server.crt"),
        "--tls-key-file",
        &certs.path("server.key"),
        "--tls-auth-clients",
        "yes",
    ];
    let mut shard = Shard::spawn(dir.path(), &args, false);
    let (code, stderr) = shard.wait_exit();
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--tls-ca-cert-file is required"), "{stderr}");
}
