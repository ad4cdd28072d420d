//! Shard list reloads: a changed config file swaps the ring without dropping clients; a bad file is rejected
//! and the old ring keeps serving.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{free_port, poll_until, start_shard, Proc};

fn exists_on(shard: &Proc, key: &str) -> bool {
    let mut c = shard.client();
    redis::cmd("EXISTS").arg(key).query::<i64>(&mut c).unwrap() == 1
}

#[test]
fn config_changes_swap_the_ring_without_dropping_clients() {
    let a = start_shard(&[]);
    let b = start_shard(&[]);
    let dir = std::env::temp_dir().join(format!("ringcache-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("proxy.toml");
    std::fs::write(&conf, format!("shards = [\"a={}\"]\n", a.addr())).unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", "0", "--log", "warn", "--config"]).arg(&conf);
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    let mut con = proxy.client();
    let _: () = redis::cmd("SET").arg("before").arg("1").query(&mut con).unwrap();
    assert!(exists_on(&a, "before"));

    // A broken file is rejected: the proxy keeps routing to a.
    std::fs::write(&conf, "shards = [\"a=127.0.0.1:notaport\"\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let _: () = redis::cmd("SET").arg("still-a").arg("1").query(&mut con).unwrap();
        assert!(exists_on(&a, "still-a"), "a rejected config changed the routing");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Switch to b only: the same client connection keeps working and new writes land on b. While b is
    // handed a's keys, a write of one of them may be refused with TRYAGAIN ("retry shortly").
    std::fs::write(&conf, format!("shards = \"b={}\"\n", b.addr())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match redis::cmd("SET").arg("after").arg("1").query::<()>(&mut con) {
            Ok(()) => {}
            Err(e) if e.code() == Some("TRYAGAIN") => {}
            Err(e) => panic!("{e}"),
        }
        if exists_on(&b, "after") {
            break;
        }
        assert!(Instant::now() < deadline, "the new shard list was not applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    // "after" can reach b while a is still being drained into it (the interim ring holds both, and a keeps
    // its own keys until then): the change is complete once the proxy's ring holds b alone.
    poll_until("the proxy routes to b alone", Duration::from_secs(10), || {
        let info: String = redis::cmd("INFO").arg("server").query(&mut con).unwrap();
        info.contains("\r\nshards:1\r\n")
    });
    // SIGHUP re-reads the file (same content here) and must not stop the proxy.
    Command::new("kill").args(["-HUP", &proxy.pid().to_string()]).status().unwrap();
    let _: () = redis::cmd("SET").arg("after-hup").arg("1").query(&mut con).unwrap();
    assert!(exists_on(&b, "after-hup"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn client_list_shows_every_client_of_the_proxy() {
    let shard = start_shard(&[]);
    let proxy = support::start_proxy(&[("a", shard.addr())], &[]);
    let mut first = proxy.client();
    let mut second = proxy.client();
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("first").query(&mut first).unwrap();
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("second").query(&mut second).unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut first).unwrap();
    assert!(list.contains("name=first ") && list.contains("name=second "), "{list}");
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut first).unwrap();
        if !list.contains("name=second ") {
            break;
        }
        assert!(Instant::now() < deadline, "a closed client stays listed: {list}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
