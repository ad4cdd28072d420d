//! Shards given by host name are looked up again on every connection attempt, so a shard that comes back
//! at a new address (a container or pod restarted with a new IP, same service name) is found there.
//!
//! The proxy runs in a private mount namespace whose /etc/hosts is a file this test rewrites: `shard-host`
//! first maps to 127.0.0.2, where the shard runs; the shard is killed, the name is moved to 127.0.0.3 and a
//! new shard starts there. A proxy that had kept the first address would never reach it. Needs
//! `unshare --mount` (root, as in CI); elsewhere the test says it was skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, shard_binary, Proc};

/// A shard bound to `ip:port`, killed on drop.
struct ShardAt(Child);

impl ShardAt {
    fn start(ip: &str, port: u16) -> ShardAt {
        let dir = std::env::temp_dir().join(format!("ringcache-hostname-{}-{ip}", std::process::id()));
        let mut cmd = Command::new(shard_binary());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RINGCACHE_")) {
            cmd.env_remove(k);
        }
        cmd.args(["--bind", ip, "--port", &port.to_string(), "--metrics-port", "0", "--log", "warn", "--dir"])
            .arg(&dir)
            .stdin(Stdio::null());
        let mut child = ShardAt(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((ip, port)).is_err() {
            assert!(child.0.try_wait().unwrap().is_none(), "the shard on {ip}:{port} exited");
            assert!(Instant::now() < deadline, "the shard did not listen on {ip}:{port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }
}

impl Drop for ShardAt {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn set_through(proxy: &Proc, key: &str) -> Result<(), String> {
    let mut c = proxy.client();
    redis::cmd("SET").arg(key).arg("v").query::<()>(&mut c).map_err(|e| e.to_string())
}

#[test]
fn a_shard_that_moves_to_a_new_address_is_found_by_its_name() {
    let probe = Command::new("unshare").args(["--mount", "true"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("SKIP: 'unshare --mount' is not permitted here (it needs root), so name re-resolution was not tested");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ringcache-hostname-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 shard-host\n").unwrap();

    let shard_port = free_port();
    let first = ShardAt::start("127.0.0.2", shard_port);
    let proxy_port = free_port();
    let proxy_cmd = format!(
        "mount --bind {} /etc/hosts && exec {} --port {proxy_port} --metrics-port 0 --log warn \
         --shards s1=shard-host:{shard_port} --health-interval 100ms --failure-limit 1 --timeout 500ms",
        hosts.display(),
        env!("CARGO_BIN_EXE_ringcache-proxy"),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "sh", "-c", &proxy_cmd]);
    let proxy = Proc::spawn("ringcache-proxy", cmd, proxy_port);
    set_through(&proxy, "before").expect("a shard given by host name serves");

    drop(first);
    // Rewritten in place: the bind mount shows the new content.
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.3 shard-host\n").unwrap();
    let _second = ShardAt::start("127.0.0.3", shard_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match set_through(&proxy, "after") {
            Ok(()) => break,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the proxy did not reach the shard at its new address within 10s: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
