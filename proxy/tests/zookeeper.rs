//! Membership, health and handoff locks in a real ZooKeeper (Debian's package, started by the tests on
//! loopback ports), with two proxies under `ringcache-loadgen --verify`: ring changes through
//! `ringcache-proxy admin`, a shard killed, the ensemble's leader killed, the whole ensemble stopped for 30 s,
//! a proxy cut off from ZooKeeper, two proxies racing for one handoff, and starting while ZooKeeper is down.
//!
//! Skipped (with the reason printed) only when ZooKeeper is not installed; `.ci/run` installs it. The tests
//! run one at a time (each starts a JVM and several servers on a small machine), and print the switch-over
//! times and fault figures that docs/BENCHMARKS.md records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod zk_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::Commands;
use support::{
    backend_up, commands_processed, free_port, poll_until, sample, scrape, signal, start_shard_in, verify_counts,
    Loadgen, Proc,
};
use zk_support::{Relay, ZooKeeper};

const WAIT: Duration = Duration::from_secs(30);
/// The shards' and proxies' ZooKeeper session timeout in these tests.
const SESSION: Duration = Duration::from_secs(2);

/// One test at a time: each runs a JVM, two proxies, several shards and load generators on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Skips the test (printing why) when ZooKeeper is not installed; else holds the serial lock.
macro_rules! zookeeper_or_skip {
    () => {{
        if let Some(why) = zk_support::unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }};
}

/// A shard registered in ZooKeeper as `name`, with its own data directory (kept for restarts).
struct Shard {
    name: String,
    port: u16,
    dir: tempfile::TempDir,
    proc: Proc,
}

impl Shard {
    fn start(zk: &str, cluster: &str, name: &str, extra: &[&str]) -> Shard {
        let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
        let proc = start_registered(port, dir.path(), zk, cluster, name, extra);
        Shard { name: name.into(), port, dir, proc }
    }

    fn restart(&mut self, zk: &str, cluster: &str) {
        self.proc = start_registered(self.port, self.dir.path(), zk, cluster, &self.name, &[]);
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn start_registered(port: u16, dir: &Path, zk: &str, cluster: &str, name: &str, extra: &[&str]) -> Proc {
    let session = format!("{}ms", SESSION.as_millis());
    let mut args = vec!["--zookeeper", zk, "--cluster", cluster, "--name", name];
    args.extend(["--zookeeper-session-timeout", &session, "--snapshot-interval", "0"]);
    args.extend(extra);
    start_shard_in(port, dir, &args)
}

/// A proxy following `cluster` in ZooKeeper; returns it and its metrics port.
fn start_proxy(zk: &str, cluster: &str, extra: &[&str]) -> (Proc, u16) {
    let (port, metrics) = (free_port(), free_port());
    let session = format!("{}ms", SESSION.as_millis());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", &metrics.to_string(), "--log", "warn"])
        .args(["--zookeeper", zk, "--cluster", cluster, "--zookeeper-session-timeout", &session])
        .args(extra);
    // Quick failure detection, unless the test says otherwise.
    for (flag, value) in [("--health-interval", "100ms"), ("--failure-limit", "3"), ("--timeout", "500ms")] {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    let proxy = Proc::spawn("ringcache-proxy", cmd, port);
    poll_until("the proxy's /metrics", WAIT, || std::net::TcpStream::connect(("127.0.0.1", metrics)).is_ok());
    (proxy, metrics)
}

/// `ringcache-proxy admin --zookeeper zk --cluster cluster ARGS`: (success, stdout, stderr).
fn admin(zk: &str, cluster: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"))
        .args(["admin", "--zookeeper", zk, "--cluster", cluster, "--zookeeper-session-timeout", "2s"])
        .args(args)
        .env_remove("RINGCACHE_ZOOKEEPER")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn admin_ok(zk: &str, cluster: &str, args: &[&str]) -> String {
    let (ok, out, err) = admin(zk, cluster, args);
    assert!(ok, "admin {args:?} failed: {err}{out}");
    out
}

/// The proxy's `INFO membership` fields.
fn membership(proxy: &Proc) -> HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg("membership").query(&mut proxy.client()).unwrap();
    text.lines().filter_map(|l| l.trim_end().split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ring_version(proxy: &Proc) -> u64 {
    membership(proxy)["ring_version"].parse().unwrap()
}

fn zookeeper_connected(metrics: u16) -> bool {
    sample(&scrape(metrics), "ringcache_zookeeper_connected", &[]) == Some(1.0)
}

fn counter(metrics: u16, name: &str, shard: &str) -> f64 {
    sample(&scrape(metrics), name, &[("shard", shard)]).unwrap_or(0.0)
}

fn member_state(port: u16) -> String {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    redis::cmd("RINGCACHE").arg("MEMBER").query(&mut c).unwrap()
}

fn errors(report: &serde_json::Value) -> u64 {
    report["errors"].as_object().map_or(0, |m| m.values().map(|v| v.as_u64().unwrap_or(0)).sum())
}

fn assert_clean(what: &str, report: &serde_json::Value) {
    let (checked, lost, stale, corrupt) = verify_counts(report);
    if lost > 0 {
        use ringcache_proxy::ring::{Member, Ring};
        let ring = |names: &[&str]| {
            let m: Vec<Member> = names.iter().map(|n| Member { name: n.to_string(), weight: 1 }).collect();
            (
                Ring::new(&m, ringcache_common::hash::KeyHash::Fnv1a_64),
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )
        };
        for ex in report["verify"]["examples"].as_array().unwrap() {
            let key = ex["key"].as_str().unwrap();
            for (r, names) in [ring(&["s1", "s2", "s3"]), ring(&["s1", "s2", "s3", "s4"]), ring(&["s1", "s3", "s4"])] {
                eprintln!("DIAG {key} owner in {names:?}: {}", names[r.owner(key.as_bytes()).unwrap()]);
            }
        }
    }
    assert!(checked > 300, "{what}: only {checked} reads checked: {report}");
    assert_eq!((lost, stale, corrupt), (0, 0, 0), "{what}: {}", report["verify"]);
}

/// Waits until `f` holds, returning how long that took.
fn time_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    poll_until(what, limit, &mut f);
    start.elapsed()
}

/// Three registered shards s1..s3 in the ring of `cluster`, and two proxies.
struct Setup {
    shards: Vec<Shard>,
    proxies: Vec<(Proc, u16)>,
}

fn setup(zk: &str, cluster: &str, shards: usize, proxy_extra: &[&str]) -> Setup {
    let shards: Vec<Shard> = (1..=shards).map(|i| Shard::start(zk, cluster, &format!("s{i}"), &[])).collect();
    for shard in shards.iter().take(3) {
        poll_until("the shard registered", WAIT, || admin(zk, cluster, &["add", &shard.name]).0);
    }
    let proxies = (0..2).map(|_| start_proxy(zk, cluster, proxy_extra)).collect();
    Setup { shards, proxies }
}

fn wait_for_traffic(port: u16, commands: u64) {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let processed = |c: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
        info.lines().find_map(|l| l.strip_prefix("total_commands_processed:")).unwrap().trim().parse().unwrap()
    };
    let from = processed(&mut c);
    poll_until("traffic reaches the shard", WAIT, || processed(&mut c) >= from + commands);
}

#[test]
fn admin_add_and_remove_switch_both_proxies_together_and_lose_nothing() {
    let _serial = zookeeper_or_skip!();
    let zk = ZooKeeper::single();
    let (servers, cluster) = (zk.connect_string(), "ring-changes");
    let s = setup(&servers, cluster, 4, &[]);
    let [(p1, m1), (p2, m2)] = [&s.proxies[0], &s.proxies[1]];
    assert_eq!((ring_version(p1), ring_version(p2)), (3, 3));
    let loads = [Loadgen::start(p1.port, "one:", &[]), Loadgen::start(p2.port, "two:", &[])];
    wait_for_traffic(s.shards[0].port, 300);

    // Add s4: both proxies move to ring version 4 within a second of each other.
    let out = admin_ok(&servers, cluster, &["add", "s4"]);
    assert!(out.contains("ring version 4"), "{out}");
    let added = Instant::now();
    let (mut t1, mut t2) = (None, None);
    poll_until("both proxies have ring version 4", WAIT, || {
        if t1.is_none() && ring_version(p1) == 4 {
            t1 = Some(added.elapsed());
        }
        if t2.is_none() && ring_version(p2) == 4 {
            t2 = Some(added.elapsed());
        }
        t1.is_some() && t2.is_some()
    });
    let (t1, t2) = (t1.unwrap(), t2.unwrap());
    let apart = t1.abs_diff(t2);
    assert!(apart < Duration::from_secs(1), "the proxies switched {apart:?} apart");
    let admitted = time_until("s4 is admitted by both proxies", WAIT, || {
        backend_up(*m1, "s4") && backend_up(*m2, "s4") && member_state(s.shards[3].port) == "member"
    });
    eprintln!(
        "figures: add: ring version seen by the proxies {t1:?} and {t2:?} after `admin add` ({apart:?} apart); \
         s4 admitted by both {:?} after",
        added.elapsed().min(t1.max(t2) + admitted)
    );
    wait_for_traffic(s.shards[3].port, 300);

    // Remove s2: its keys go to the others first, then both proxies stop routing to it.
    admin_ok(&servers, cluster, &["remove", "s2"]);
    let drained = time_until("s2 is drained and both proxies left it", WAIT, || {
        member_state(s.shards[1].port) == "drained" && ring_version(p1) == 5 && ring_version(p2) == 5
    });
    poll_until("both proxies dropped s2 from their ring", WAIT, || {
        membership(p1)["ring_shards"] == "3" && membership(p2)["ring_shards"] == "3"
    });
    eprintln!("figures: remove: s2 drained and both proxies on ring version 5 after {drained:?}");
    let handoffs = counter(*m1, "ringcache_proxy_handoff_keys_total", "s2")
        + counter(*m2, "ringcache_proxy_handoff_keys_total", "s2");
    assert!(handoffs > 0.0, "s2's keys were copied before it left");
    wait_for_traffic(s.shards[0].port, 300);
    for (load, name) in loads.into_iter().zip(["proxy 1", "proxy 2"]) {
        assert_clean(name, &load.finish());
    }
    let listed = admin_ok(&servers, cluster, &["list"]);
    let ring_part = listed.split("registered, not in the ring").next().unwrap();
    assert!(listed.contains("ring version 5") && !ring_part.contains("  s2  127"), "{listed}");
    assert!(listed.contains("proxies (2)"), "{listed}");
    // Refused changes say why.
    let (ok, _, err) = admin(&servers, cluster, &["remove", "s2"]);
    assert!(!ok && err.contains("not in the ring"), "{err}");
    let (ok, _, err) = admin(&servers, cluster, &["add", "nobody"]);
    assert!(!ok && err.contains("not registered"), "{err}");
}

#[test]
fn a_killed_shard_is_down_for_both_proxies_when_its_session_ends() {
    let _serial = zookeeper_or_skip!();
    let zk = ZooKeeper::single();
    let (servers, cluster) = (zk.connect_string(), "kill-9");
    // Probes so slow (30 failures at 1 s) that only ZooKeeper can eject the shard within this test.
    let mut s = setup(&servers, cluster, 3, &["--health-interval", "1s", "--failure-limit", "30"]);
    let [(p1, m1), (p2, m2)] = [&s.proxies[0], &s.proxies[1]];
    // Registrations are trusted once a proxy has been connected for a session timeout.
    poll_until("both proxies see s2 registered", WAIT, || {
        [p1, p2].iter().all(|p| membership(p)["ring_shard1"].ends_with("registered=member"))
    });
    std::thread::sleep(SESSION);
    let loads = [
        Loadgen::start(p1.port, "one:", &["--verify-allow-miss"]),
        Loadgen::start(p2.port, "two:", &["--verify-allow-miss"]),
    ];
    wait_for_traffic(s.shards[1].port, 300);

    s.shards[1].proc.kill();
    let killed = Instant::now();
    let (mut t1, mut t2) = (None, None);
    poll_until("both proxies ejected s2", WAIT, || {
        if t1.is_none() && !backend_up(*m1, "s2") {
            t1 = Some(killed.elapsed());
        }
        if t2.is_none() && !backend_up(*m2, "s2") {
            t2 = Some(killed.elapsed());
        }
        t1.is_some() && t2.is_some()
    });
    let (t1, t2) = (t1.unwrap(), t2.unwrap());
    eprintln!("figures: kill -9: s2 ejected by the proxies {t1:?} and {t2:?} after (session timeout {SESSION:?})");
    let limit = SESSION + Duration::from_millis(1500);
    assert!(t1 < limit && t2 < limit, "ejected after {t1:?} and {t2:?}");
    assert!(t1.abs_diff(t2) < Duration::from_secs(1), "{t1:?} vs {t2:?}");
    wait_for_traffic(s.shards[0].port, 300);

    // Back (on its data): registered again and readmitted through a handoff by both.
    s.shards[1].restart(&servers, cluster);
    let back = time_until("both proxies readmitted s2", WAIT, || backend_up(*m1, "s2") && backend_up(*m2, "s2"));
    eprintln!("figures: kill -9: s2 restarted, readmitted by both proxies {back:?} later");
    wait_for_traffic(s.shards[1].port, 300);
    for (load, name) in loads.into_iter().zip(["proxy 1", "proxy 2"]) {
        let report = load.finish();
        let (checked, _, stale, corrupt) = verify_counts(&report);
        assert!(checked > 300, "{name}: {report}");
        assert_eq!((stale, corrupt), (0, 0), "{name}: {}", report["verify"]);
    }
}

/// A shard that lives on while its ZooKeeper session expires (frozen longer than the session timeout, as a
/// long GC pause or a partition from the ensemble would do) registers again with a new session once it can.
#[test]
fn a_shard_whose_session_expired_registers_again() {
    let _serial = zookeeper_or_skip!();
    let zk = ZooKeeper::single();
    let (servers, cluster) = (zk.connect_string(), "expiry");
    let mut shard = Shard::start(&servers, cluster, "s1", &[]);
    poll_until("the shard registered", WAIT, || admin(&servers, cluster, &["add", "s1"]).0);
    let at = format!("registered at {}", shard.addr());
    let registered = || admin_ok(&servers, cluster, &["list"]).contains(&at);
    assert!(registered(), "{}", admin_ok(&servers, cluster, &["list"]));
    // Frozen: no heartbeats, so ZooKeeper expires the session and deletes the ephemeral node.
    signal(&shard.proc, "-STOP");
    let gone = time_until("ZooKeeper deleted the frozen shard's node", WAIT, || !registered());
    signal(&shard.proc, "-CONT");
    // Thawed: its client learns the session expired; the shard registers again under a new session.
    let back = time_until("the shard registered again", WAIT, registered);
    eprintln!("figures: session expiry: node deleted {gone:?} after SIGSTOP, registered again {back:?} after SIGCONT");
    let pong: String = redis::cmd("PING").query(&mut shard.proc.client()).unwrap();
    assert_eq!(pong, "PONG");
    // And the new registration is a live one: killing the shard now removes it after one session timeout.
    shard.proc.kill();
    poll_until("the killed shard's new node is deleted", WAIT, || !registered());
}

#[test]
fn the_ensemble_losing_its_leader_or_stopping_for_30s_costs_no_request() {
    let _serial = zookeeper_or_skip!();
    let mut zk = ZooKeeper::ensemble(3);
    let (servers, cluster) = (zk.connect_string(), "ensemble");
    let s = setup(&servers, cluster, 3, &[]);
    let [(p1, m1), (p2, m2)] = [&s.proxies[0], &s.proxies[1]];
    let loads = [Loadgen::start(p1.port, "one:", &[]), Loadgen::start(p2.port, "two:", &[])];
    wait_for_traffic(s.shards[0].port, 300);

    // The leader dies: the others elect a new one; sessions move to them.
    let leader = zk.leader();
    zk.kill(leader);
    let elected = time_until("a new leader", WAIT, || {
        (0..zk.len()).any(|i| i != leader && zk.mode(i).as_deref() == Some("leader"))
    });
    poll_until("both proxies connected again", WAIT, || zookeeper_connected(*m1) && zookeeper_connected(*m2));
    eprintln!("figures: leader killed: new leader after {elected:?}");
    zk.restart(leader);
    zk.wait_serving();
    wait_for_traffic(s.shards[0].port, 300);

    // The whole ensemble stops for 30 s: the proxies serve on, with their ring and their own probes.
    for i in 0..zk.len() {
        zk.kill(i);
    }
    let down = Instant::now();
    let noticed =
        time_until("both proxies see ZooKeeper gone", WAIT, || !zookeeper_connected(*m1) && !zookeeper_connected(*m2));
    let (ok, _, err) = admin(&servers, cluster, &["remove", "s3"]);
    assert!(!ok && err.contains("membership changes need ZooKeeper"), "{err}");
    let before = commands_processed(p1);
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down.elapsed()));
    assert!(commands_processed(p1) > before + 1000, "traffic went on without ZooKeeper");
    for i in 0..zk.len() {
        zk.restart(i);
    }
    zk.wait_serving();
    let back = time_until("both proxies reconnected", WAIT, || zookeeper_connected(*m1) && zookeeper_connected(*m2));
    eprintln!(
        "figures: ensemble stopped 30 s: noticed after {noticed:?}; proxies reconnected {back:?} after it served again"
    );
    wait_for_traffic(s.shards[0].port, 300);
    for (metrics, proxy) in [(m1, p1), (m2, p2)] {
        for shard in ["s1", "s2", "s3"] {
            assert!(backend_up(*metrics, shard), "{shard} ejected");
            assert_eq!(counter(*metrics, "ringcache_proxy_ejections_total", shard), 0.0, "{shard} was ejected");
        }
        assert_eq!(ring_version(proxy), 3);
    }
    for (load, name) in loads.into_iter().zip(["proxy 1", "proxy 2"]) {
        let report = load.finish();
        eprintln!(
            "figures: ensemble: {name}: {} requests, {} errors, {} reads verified",
            report["overall"]["requests"],
            errors(&report),
            report["verify"]["checked"]
        );
        assert_clean(name, &report);
        assert_eq!(errors(&report), 0, "{name}: {}", report["errors"]);
    }
}

#[test]
fn a_proxy_cut_off_from_zookeeper_serves_on_and_runs_no_handoff() {
    let _serial = zookeeper_or_skip!();
    let zk = ZooKeeper::single();
    let (servers, cluster) = (zk.connect_string(), "partition");
    let relay = Relay::to(zk.client_port(0));
    let mut shards: Vec<Shard> = (1..=3).map(|i| Shard::start(&servers, cluster, &format!("s{i}"), &[])).collect();
    for shard in &shards {
        poll_until("the shard registered", WAIT, || admin(&servers, cluster, &["add", &shard.name]).0);
    }
    let (p1, m1) = start_proxy(&servers, cluster, &[]);
    let (p2, m2) = start_proxy(&format!("127.0.0.1:{}", relay.port), cluster, &[]);
    poll_until("both proxies connected", WAIT, || zookeeper_connected(m1) && zookeeper_connected(m2));
    let load = Loadgen::start(p2.port, "cut:", &["--verify-allow-miss"]);
    wait_for_traffic(shards[0].port, 300);

    relay.cut();
    let noticed = time_until("the cut-off proxy notices", WAIT, || !zookeeper_connected(m2));
    eprintln!("figures: partition: the cut-off proxy noticed after {noticed:?}");
    // s2 dies and comes back: the connected proxy hands it its keys under the lock; the cut-off one must
    // not (it cannot take the lock), so it keeps s2 down until it is back in touch.
    shards[1].proc.kill();
    poll_until("both proxies ejected s2", WAIT, || !backend_up(m1, "s2") && !backend_up(m2, "s2"));
    let _: () = p1.client().set("partition:probe", "1").unwrap();
    shards[1].restart(&servers, cluster);
    poll_until("the connected proxy readmitted s2", WAIT, || backend_up(m1, "s2"));
    let serving = commands_processed(&p2);
    // Several health intervals and lock attempts of the cut-off proxy.
    poll_until("the cut-off proxy serves on", WAIT, || commands_processed(&p2) > serving + 2000);
    assert!(!backend_up(m2, "s2"), "the cut-off proxy readmitted s2 without the lock");
    assert_eq!(counter(m2, "ringcache_proxy_handoff_keys_total", "s2"), 0.0);
    assert!(!zookeeper_connected(m2));

    relay.heal();
    let healed = time_until("the cut-off proxy reconnects and readmits s2", WAIT, || {
        zookeeper_connected(m2) && backend_up(m2, "s2")
    });
    eprintln!("figures: partition healed: s2 readmitted by the cut-off proxy {healed:?} later");
    let report = load.finish();
    let (checked, _, stale, corrupt) = verify_counts(&report);
    assert!(checked > 300, "{report}");
    assert_eq!((stale, corrupt), (0, 0), "{}", report["verify"]);
}

#[test]
fn two_proxies_racing_for_one_handoff_run_it_once() {
    let _serial = zookeeper_or_skip!();
    let zk = ZooKeeper::single();
    let (servers, cluster) = (zk.connect_string(), "race");
    let s = setup(&servers, cluster, 3, &[]);
    let [(p1, m1), (p2, m2)] = [&s.proxies[0], &s.proxies[1]];
    support::signal(&s.shards[1].proc, "-STOP");
    poll_until("both proxies ejected s2", WAIT, || !backend_up(*m1, "s2") && !backend_up(*m2, "s2"));
    // Writes for s2 land on its stand-ins, as hints.
    let keys: Vec<(String, String)> = (0..20_000).map(|i| (format!("race:{i}"), format!("v{i}"))).collect();
    for chunk in keys.chunks(1000) {
        let _: () = p1.client().mset(chunk).unwrap();
    }
    // Both proxies see s2 answer at the same moment, and both try to hand it its keys.
    support::signal(&s.shards[1].proc, "-CONT");
    poll_until("both proxies readmitted s2", WAIT, || backend_up(*m1, "s2") && backend_up(*m2, "s2"));
    let moved = [
        counter(*m1, "ringcache_proxy_handoff_keys_total", "s2"),
        counter(*m2, "ringcache_proxy_handoff_keys_total", "s2"),
    ];
    eprintln!("figures: race: keys handed to s2 by each proxy: {moved:?}");
    assert!(moved.iter().filter(|&&n| n > 0.0).count() == 1, "exactly one proxy ran the handoff: {moved:?}");
    assert!(moved[0] + moved[1] > 1000.0, "{moved:?}");
    let values: Vec<Option<String>> = p2.client().mget(keys.iter().map(|(k, _)| k).collect::<Vec<_>>()).unwrap();
    for ((k, v), got) in keys.iter().zip(values) {
        assert_eq!(got.as_deref(), Some(v.as_str()), "{k}");
    }
    let listed = admin_ok(&servers, cluster, &["list"]);
    assert!(listed.contains("up [s1,s2,s3]"), "{listed}");
}

#[test]
fn a_proxy_starting_while_zookeeper_is_down_uses_its_config_or_refuses() {
    let _serial = zookeeper_or_skip!();
    let zk_port = free_port();
    let servers = format!("127.0.0.1:{zk_port}");
    let cluster = "cold-start";
    // Without a shard list: a clear refusal.
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"))
        .args(["--port", &free_port().to_string(), "--metrics-port", "0"])
        .args([
            "--zookeeper",
            &servers,
            "--cluster",
            cluster,
            "--zookeeper-session-timeout",
            "2s",
            "--timeout",
            "500ms",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without ZooKeeper or shards");
    assert!(err.contains("cannot reach ZooKeeper") && err.contains("refusing to start"), "{err}");
    let (ok, _, err) = admin(&servers, cluster, &["list"]);
    assert!(!ok && err.contains("cannot reach ZooKeeper"), "{err}");

    // With --config: serves its shards (registered nowhere yet).
    let dir = tempfile::tempdir().unwrap();
    let s1 = Shard::start(&servers, cluster, "s1", &["--auto-join"]);
    let config = dir.path().join("proxy.toml");
    std::fs::write(&config, format!("shards = [\"s1={}\"]\n", s1.addr())).unwrap();
    let (proxy, metrics) = start_proxy(&servers, cluster, &["--config", config.to_str().unwrap()]);
    let _: () = proxy.client().set("cold", "start").unwrap();
    assert_eq!(membership(&proxy)["membership_source"], "zookeeper");
    assert!(!zookeeper_connected(metrics));

    // ZooKeeper comes up on that port: s1 registers and joins by itself (--auto-join), and the proxy takes
    // ZooKeeper's ring.
    let _zk = ZooKeeper::single_on(zk_port);
    poll_until("the proxy follows ZooKeeper's ring", WAIT, || {
        zookeeper_connected(metrics) && ring_version(&proxy) == 1
    });
    let value: Option<String> = proxy.client().get("cold").unwrap();
    assert_eq!(value.as_deref(), Some("start"));
    let listed = admin_ok(&servers, cluster, &["list"]);
    assert!(listed.contains("s1  127.0.0.1") && listed.contains("member"), "{listed}");
}
