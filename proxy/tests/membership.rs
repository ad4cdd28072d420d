//! Ring changes under load, against real processes, with `ringcache-loadgen --verify` running: a shard
//! added to the config receives exactly the keys it now owns, a shard removed from the config or stopped
//! with SIGTERM hands its keys over first, and two proxies that reload at different times lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use redis::{Commands, Value};
use ringcache_common::hash::KeyHash;
use ringcache_proxy::ring::{Member, Ring};
use support::{
    backend_up, commands_processed, free_port, poll_until, start_shard, start_shard_in, verify_counts, Loadgen, Proc,
};

const WAIT: Duration = Duration::from_secs(30);
const PRELOADED: usize = 6000;

fn write_config(path: &Path, shards: &[(&str, &Proc)]) {
    let list: Vec<String> = shards.iter().map(|(name, p)| format!("\"{name}={}\"", p.addr())).collect();
    // Written aside and renamed, so the proxy never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("shards = [{}]\n", list.join(", "))).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A proxy reading its shards from `config`, with quick failure detection; returns it and its metrics port.
fn start_proxy(config: &Path) -> (Proc, u16) {
    let (port, metrics_port) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", &metrics_port.to_string(), "--log", "warn"])
        .arg("--config")
        .arg(config)
        .args(["--health-interval", "50ms", "--failure-limit", "2", "--timeout", "500ms"]);
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    poll_until("the proxy's /metrics", WAIT, || std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_ok());
    (proxy, metrics_port)
}

fn member_state(shard: &Proc) -> String {
    redis::cmd("RINGCACHE").arg("MEMBER").query(&mut shard.client()).unwrap()
}

fn preload(proxy: &Proc) {
    let pairs: Vec<(String, String)> = (0..PRELOADED).map(|i| (format!("pre:{i}"), format!("v{i}"))).collect();
    let _: () = proxy.client().mset(&pairs).unwrap();
}

/// Every preloaded key reads back its value through the proxy.
fn assert_preloaded_intact(proxy: &Proc) {
    let keys: Vec<String> = (0..PRELOADED).map(|i| format!("pre:{i}")).collect();
    let values: Vec<Option<String>> = proxy.client().mget(&keys).unwrap();
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v.as_deref(), Some(format!("v{i}").as_str()), "pre:{i}");
    }
}

/// Which preloaded keys a shard holds itself (KEYS: a shard refuses keyed commands on ranges it has handed
/// to a joining shard).
fn preloaded_on(shard: &Proc) -> Vec<usize> {
    let keys: Vec<String> = shard.client().keys("pre:*").unwrap();
    let mut found: Vec<usize> = keys.iter().map(|k| k["pre:".len()..].parse().unwrap()).collect();
    found.sort_unstable();
    found
}

fn assert_clean(name: &str, report: &serde_json::Value) {
    let (checked, lost, stale, corrupt) = verify_counts(report);
    assert!(checked > 500, "{name}: only {checked} reads checked: {report}");
    assert_eq!((lost, stale, corrupt), (0, 0, 0), "{name}: {}", report["verify"]);
}

fn wait_for_traffic(shard: &Proc, commands: u64) {
    let from = commands_processed(shard);
    poll_until("traffic reaches the shard", WAIT, || commands_processed(shard) >= from + commands);
}

#[test]
fn adding_a_shard_under_load_moves_exactly_the_keys_it_now_owns() {
    let shards: Vec<Proc> = (0..4).map(|_| start_shard(&[])).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    let named =
        |n: usize| -> Vec<(&str, &Proc)> { ["s1", "s2", "s3", "s4"].into_iter().zip(&shards).take(n).collect() };
    write_config(&config, &named(3));
    let (proxy, metrics) = start_proxy(&config);
    preload(&proxy);
    assert!(preloaded_on(&shards[3]).is_empty());
    let load = Loadgen::start(proxy.port, "live:", &[]);
    wait_for_traffic(&shards[0], 300);

    write_config(&config, &named(4));
    poll_until("s4 is admitted", WAIT, || backend_up(metrics, "s4") && member_state(&shards[3]) == "member");
    wait_for_traffic(&shards[3], 300);
    assert_clean("through the join", &load.finish());
    assert_preloaded_intact(&proxy);

    // s4 holds exactly the preloaded keys the new ring gives it, and no key is on two shards.
    let members: Vec<Member> =
        ["s1", "s2", "s3", "s4"].iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect();
    let ring = Ring::new(&members, KeyHash::Fnv1a_64);
    let expected: Vec<usize> =
        (0..PRELOADED).filter(|i| ring.owner(format!("pre:{i}").as_bytes()) == Some(3)).collect();
    let moved = preloaded_on(&shards[3]);
    assert_eq!(moved, expected, "s4 got {} keys, the ring gives it {}", moved.len(), expected.len());
    assert!(moved.len() > PRELOADED / 10, "{} keys moved", moved.len());
    let copies: usize = shards.iter().map(|s| preloaded_on(s).len()).sum();
    assert_eq!(copies, PRELOADED, "moved keys were deleted from their old owners");
}

#[test]
fn removing_a_shard_under_load_hands_its_keys_over_first() {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    write_config(&config, &[("s1", &shards[0]), ("s2", &shards[1]), ("s3", &shards[2])]);
    let (proxy, _) = start_proxy(&config);
    preload(&proxy);
    let on_s2 = preloaded_on(&shards[1]).len();
    assert!(on_s2 > 500, "{on_s2}");
    let load = Loadgen::start(proxy.port, "live:", &[]);
    wait_for_traffic(&shards[1], 300);

    write_config(&config, &[("s1", &shards[0]), ("s3", &shards[2])]);
    poll_until("s2 is drained", WAIT, || member_state(&shards[1]) == "drained");
    // Once the proxy has left s2 behind, the others forget it: no hints for it remain.
    let forgotten = |s: &Proc| {
        let list: Value = redis::cmd("RINGCACHE").arg("HANDOFF").arg("LIST").query(&mut s.client()).unwrap();
        list == Value::Array(vec![])
    };
    poll_until("s1 and s3 forgot s2", WAIT, || forgotten(&shards[0]) && forgotten(&shards[2]));
    wait_for_traffic(&shards[0], 300);
    assert_clean("through the removal", &load.finish());
    assert_preloaded_intact(&proxy);
    // A drained shard refuses keyed commands, so a proxy still on the old ring cannot read old values.
    let err = shards[1].client().get::<_, Option<String>>("pre:1").unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
}

#[test]
fn a_shard_stopped_with_sigterm_hands_its_keys_over_before_it_exits() {
    let s2_dir = tempfile::tempdir().unwrap();
    let s2_port = free_port();
    let mut shards: Vec<Proc> = vec![start_shard(&[]), start_shard_in(s2_port, s2_dir.path(), &[]), start_shard(&[])];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    write_config(&config, &[("s1", &shards[0]), ("s2", &shards[1]), ("s3", &shards[2])]);
    let (proxy, metrics) = start_proxy(&config);
    preload(&proxy);
    let on_s2 = preloaded_on(&shards[1]);
    let load = Loadgen::start(proxy.port, "live:", &[]);
    wait_for_traffic(&shards[1], 300);

    assert_eq!(shards[1].stop_with("TERM"), Some(0), "the shard exits cleanly once drained");
    assert!(!backend_up(metrics, "s2"));
    wait_for_traffic(&shards[0], 300);
    assert_clean("through the drain", &load.finish());
    assert_preloaded_intact(&proxy);

    // Back on its directory, it is readmitted and gets everything written meanwhile; the stand-ins
    // keep none of its keys.
    let _: () = proxy.client().set(format!("pre:{}", on_s2[0]), format!("v{}", on_s2[0])).unwrap();
    shards[1] = start_shard_in(s2_port, s2_dir.path(), &[]);
    poll_until("s2 is readmitted", WAIT, || backend_up(metrics, "s2"));
    assert_preloaded_intact(&proxy);
    assert_eq!(preloaded_on(&shards[1]), on_s2);
    let copies: usize = shards.iter().map(|s| preloaded_on(s).len()).sum();
    assert_eq!(copies, PRELOADED);
}

#[test]
fn two_proxies_that_see_a_shard_join_at_different_times_lose_nothing() {
    let shards: Vec<Proc> = (0..4).map(|_| start_shard(&[])).collect();
    let dir = tempfile::tempdir().unwrap();
    let (first_config, second_config) = (dir.path().join("first.toml"), dir.path().join("second.toml"));
    let named =
        |n: usize| -> Vec<(&str, &Proc)> { ["s1", "s2", "s3", "s4"].into_iter().zip(&shards).take(n).collect() };
    write_config(&first_config, &named(3));
    write_config(&second_config, &named(3));
    let (first, first_metrics) = start_proxy(&first_config);
    let (second, second_metrics) = start_proxy(&second_config);
    preload(&first);
    let first_load = Loadgen::start(first.port, "first:", &[]);
    let second_load = Loadgen::start(second.port, "second:", &[]);
    wait_for_traffic(&shards[0], 300);

    // The first proxy adds s4 and admits it while the second still routes on the old ring: the old owners
    // refuse its commands on s4's keys (TRYAGAIN), so it can neither write where s4 would not see it nor
    // read a value s4 has replaced.
    write_config(&first_config, &named(4));
    poll_until("the first proxy admitted s4", WAIT, || backend_up(first_metrics, "s4"));
    wait_for_traffic(&shards[3], 300);
    write_config(&second_config, &named(4));
    poll_until("the second proxy admitted s4", WAIT, || backend_up(second_metrics, "s4"));
    wait_for_traffic(&shards[3], 300);

    assert_clean("first proxy", &first_load.finish());
    assert_clean("second proxy", &second_load.finish());
    assert_preloaded_intact(&first);
    assert_preloaded_intact(&second);
}

#[test]
fn replacing_a_shard_in_one_config_change_loses_nothing() {
    let shards: Vec<Proc> = (0..4).map(|_| start_shard(&[])).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.toml");
    write_config(&config, &[("s1", &shards[0]), ("s2", &shards[1]), ("s3", &shards[2])]);
    let (proxy, metrics) = start_proxy(&config);
    preload(&proxy);
    let load = Loadgen::start(proxy.port, "live:", &[]);
    wait_for_traffic(&shards[1], 300);

    // s2 out, s4 in, in one change: s4 is admitted first, then s2 drains into the ring that has s4.
    write_config(&config, &[("s1", &shards[0]), ("s3", &shards[2]), ("s4", &shards[3])]);
    poll_until("s4 is admitted and s2 drained", WAIT, || {
        backend_up(metrics, "s4") && member_state(&shards[1]) == "drained"
    });
    wait_for_traffic(&shards[3], 300);
    assert_clean("through the replacement", &load.finish());
    assert_preloaded_intact(&proxy);
}
