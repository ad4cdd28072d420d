//! TLS end to end: clients reach the proxy over TLS only (`--port 0 --tls-port`), and the proxy reaches
//! shards that speak TLS only and require a client certificate (`--tls-shards yes`): shared backend
//! connections, a client's own (WATCH, blocking commands), pub/sub links and health checks all go over it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use ringcache_testkit::tls::{TestCerts, TlsClient};
use support::{free_port, shard_binary, Proc};

/// Three TLS-only shards and a TLS-only proxy over them; the proxy's TLS port and metrics port.
struct TlsCluster {
    proxy: Proc,
    metrics_port: u16,
    shards: Vec<Proc>,
    certs: TestCerts,
    _dir: tempfile::TempDir,
}

fn server_tls_args(certs: &TestCerts) -> Vec<String> {
    [
        "--tls-cert-file",
        &certs.path("server.crt"),
        "--tls-key-file",
        &certs.path("server.key"),
        "--tls-ca-cert-file",
        &certs.path("ca.crt"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn tls_cluster() -> TlsCluster {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(dir.path());
    let mut shards = Vec::new();
    for i in 0..3 {
        let port = free_port();
        let data = dir.path().join(format!("s{i}"));
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = Command::new(shard_binary());
        cmd.args(["--port", "0", "--tls-port", &port.to_string(), "--metrics-port", "0", "--log", "warn"])
            .arg("--dir")
            .arg(&data)
            .args(server_tls_args(&certs));
        shards.push(Proc::spawn("ringcache-shard", cmd, port));
    }
    let list: Vec<String> = shards.iter().enumerate().map(|(i, s)| format!("s{}={}", i + 1, s.addr())).collect();
    let (port, metrics_port) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", "0", "--tls-port", &port.to_string(), "--metrics-port", &metrics_port.to_string()])
        .args(["--log", "warn", "--shards", &list.join(","), "--health-interval", "100ms"])
        .args(server_tls_args(&certs))
        .args(["--tls-shards", "yes"])
        .args([
            "--tls-client-cert-file",
            &certs.path("client.crt"),
            "--tls-client-key-file",
            &certs.path("client.key"),
        ]);
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    support::poll_until("/metrics", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_ok()
    });
    TlsCluster { proxy, metrics_port, shards, certs, _dir: dir }
}

impl TlsCluster {
    fn redis_client(&self) -> redis::Connection {
        let tls = redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: std::fs::read(self.certs.dir.join("client.crt")).unwrap(),
                client_key: std::fs::read(self.certs.dir.join("client.key")).unwrap(),
            }),
            root_cert: Some(std::fs::read(self.certs.dir.join("ca.crt")).unwrap()),
        };
        let url = format!("rediss://127.0.0.1:{}/", self.proxy.port);
        redis::Client::build_with_tls(url, tls).unwrap().get_connection().unwrap()
    }

    fn redis_cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.proxy.port.to_string(), "--tls"])
            .args(["--cacert", &self.certs.path("ca.crt")])
            .args(["--cert", &self.certs.path("client.crt"), "--key", &self.certs.path("client.key")])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

#[test]
fn tls_clients_through_the_proxy_to_tls_shards() {
    let c = tls_cluster();
    // Health checks go over TLS too: every shard is seen up.
    for name in ["s1", "s2", "s3"] {
        support::poll_until(&format!("{name} up"), Duration::from_secs(10), || {
            support::backend_up(c.metrics_port, name)
        });
    }
    assert_eq!(c.redis_cli(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(c.redis_cli(&["GET", "greeting"]), "hello");

    let mut con = c.redis_client();
    // Keys on every shard, multi-key commands split and merged.
    let keys: Vec<String> = (0..60).map(|i| format!("key:{i}")).collect();
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
    let _: () = redis::cmd("MSET").arg(&pairs).query(&mut con).unwrap();
    let values: Vec<String> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    assert_eq!(values, pairs.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
    // A value larger than a TLS record each way, on both hops.
    let big = "b".repeat(200_000);
    let _: () = redis::cmd("SET").arg("big").arg(&big).query(&mut con).unwrap();
    let got: String = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(got, big);
    // WATCH/MULTI/EXEC: the client's own shard connection.
    let _: () = redis::cmd("WATCH").arg("counter").query(&mut con).unwrap();
    let (n,): (i64,) = redis::pipe().atomic().cmd("INCRBY").arg("counter").arg(5).query(&mut con).unwrap();
    assert_eq!(n, 5);
    // A blocking command: a pooled connection of its own, timing out, then served by another client.
    let none: Option<(String, String)> = redis::cmd("BLPOP").arg("queue").arg(0.1).query(&mut con).unwrap();
    assert_eq!(none, None);
    let pusher = std::thread::spawn({
        let mut other = c.redis_client();
        move || {
            std::thread::sleep(Duration::from_millis(100));
            let _: i64 = redis::cmd("RPUSH").arg("queue").arg("job").query(&mut other).unwrap();
        }
    });
    let popped: Option<(String, String)> = redis::cmd("BLPOP").arg("queue").arg(5).query(&mut con).unwrap();
    pusher.join().unwrap();
    assert_eq!(popped, Some(("queue".to_string(), "job".to_string())));

    // Every shard holds some of the keys, read back over its own TLS port.
    let mut total = 0;
    for shard in &c.shards {
        let mut direct = TlsClient::connect(shard.port, &c.certs, true).unwrap();
        let reply = String::from_utf8(direct.request(&[b"DBSIZE"]).unwrap()).unwrap();
        let n: u64 = reply.trim().trim_start_matches(':').parse().unwrap();
        assert!(n > 0, "shard {} got no key", shard.port);
        total += n;
    }
    assert_eq!(total, 60 + 3);
}

#[test]
fn redis_py_pubsub_and_pipelines_over_tls() {
    let c = tls_cluster();
    let script = format!(
        "import redis, time\n\
         kw = dict(host='127.0.0.1', port={port}, ssl=True, ssl_ca_certs='{ca}', ssl_certfile='{crt}', \
         ssl_keyfile='{key}')\n\
         r = redis.Redis(**kw)\n\
         p = r.pipeline(transaction=False)\n\
         for i in range(2000): p.set(f'k{{i}}', i)\n\
         p.execute()\n\
         assert r.get('k1999') == b'1999'\n\
         s = redis.Redis(**kw).pubsub()\n\
         s.subscribe('news')\n\
         assert s.get_message(timeout=5)['type'] == 'subscribe'\n\
         deadline = time.time() + 10\n\
         got = None\n\
         while got is None and time.time() < deadline:\n\
         \x20   r.publish('news', 'over tls')\n\
         \x20   m = s.get_message(timeout=0.2)\n\
         \x20   if m and m['type'] == 'message': got = m['data']\n\
         print(got.decode() if got else 'nothing')\n",
        port = c.proxy.port,
        ca = c.certs.path("ca.crt"),
        crt = c.certs.path("client.crt"),
        key = c.certs.path("client.key"),
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("run python3");
    assert!(out.status.success(), "redis-py failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over tls");
}

#[test]
fn the_proxy_refuses_clients_without_a_certificate_and_has_no_plain_port() {
    let c = tls_cluster();
    let refused = TlsClient::connect(c.proxy.port, &c.certs, false).and_then(|mut t| t.request(&[b"PING"]));
    assert!(refused.is_err(), "served without a client certificate: {refused:?}");
    let mut ok = TlsClient::connect(c.proxy.port, &c.certs, true).unwrap();
    assert_eq!(ok.request(&[b"PING"]).unwrap(), b"+PONG\r\n");
    // Plain RESP on the TLS port is not served either.
    use std::io::{Read, Write};
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", c.proxy.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"PING\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = raw.read_to_end(&mut reply);
    assert!(!reply.starts_with(b"+PONG"), "plain RESP served on the TLS port");
}

#[test]
fn a_proxy_without_tls_shards_cannot_use_tls_only_shards() {
    let c = tls_cluster();
    let list: Vec<String> = c.shards.iter().enumerate().map(|(i, s)| format!("s{}={}", i + 1, s.addr())).collect();
    let shards: Vec<(&str, String)> =
        ["s1", "s2", "s3"].into_iter().zip(list.iter().map(|l| l.split_once('=').unwrap().1.to_string())).collect();
    let plain = support::start_proxy(&shards, &["--timeout", "300ms"]);
    let mut con = plain.client();
    let r: redis::RedisResult<String> = redis::cmd("GET").arg("greeting").query(&mut con);
    assert!(r.is_err(), "a plain proxy read a TLS-only shard: {r:?}");
}

#[test]
fn sighup_gives_new_proxy_clients_the_new_certificate() {
    let c = tls_cluster();
    let mut old = TlsClient::connect(c.proxy.port, &c.certs, true).unwrap();
    let old_cert = old.peer_cert();
    assert_eq!(old.request(&[b"SET", b"before", b"1"]).unwrap(), b"+OK\r\n");
    let new_cert = c.certs.issue_server(2);
    support::signal(&c.proxy, "-HUP");
    support::poll_until("the new certificate", Duration::from_secs(10), || {
        let fresh = TlsClient::connect(c.proxy.port, &c.certs, true).unwrap();
        fresh.peer_cert() == new_cert
    });
    // Open connections keep working, on both hops.
    assert_eq!(old.peer_cert(), old_cert);
    assert_eq!(old.request(&[b"INCR", b"before"]).unwrap(), b":2\r\n");
    let mut fresh = TlsClient::connect(c.proxy.port, &c.certs, true).unwrap();
    assert_eq!(fresh.request(&[b"GET", b"before"]).unwrap(), b"$1\r\n2\r\n");
}
