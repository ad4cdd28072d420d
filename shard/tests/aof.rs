//! The append-only log against real shard processes: every kind of write replayed after `kill -9`, a torn
//! tail cut and reported, damage in the middle refused, the log bounded by rewrites, no acknowledged write
//! lost under load with each `--appendfsync` policy, and INFO's `aof_*` fields named as redis-server's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Commands;
use support::{info_value, poll_until, Shard};

const NO_SNAPSHOTS: [&str; 4] = ["--snapshot-interval", "0", "--appendonly", "yes"];

fn aof_dir(dir: &Path) -> PathBuf {
    dir.join("appendonlydir")
}

fn incr_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(aof_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "incr"))
        .collect();
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        name.trim_start_matches("ringcache.aof.").trim_end_matches(".incr").parse::<u32>().unwrap()
    });
    files
}

fn wait_until_loaded(con: &mut redis::Connection) {
    poll_until("the shard has loaded", || info_value(con, "loading") == "0");
}

/// Every key with its type, value and TTL state, through DUMP-free reads (so it can be compared).
fn state(con: &mut redis::Connection) -> BTreeMap<String, String> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(con).unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(con).unwrap();
        let value = match kind.as_str() {
            "string" => format!("{:?}", con.get::<_, String>(&key).unwrap()),
            "list" => format!("{:?}", con.lrange::<_, Vec<String>>(&key, 0, -1).unwrap()),
            "hash" => format!("{:?}", con.hgetall::<_, BTreeMap<String, String>>(&key).unwrap()),
            "set" => {
                let mut m: Vec<String> = con.smembers(&key).unwrap();
                m.sort();
                format!("{m:?}")
            }
            "zset" => format!("{:?}", con.zrange_withscores::<_, Vec<(String, f64)>>(&key, 0, -1).unwrap()),
            other => other.to_string(),
        };
        let deadline: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(con).unwrap();
        out.insert(key, format!("{kind} {value} expires:{deadline}"));
    }
    out
}

#[test]
fn every_kind_of_write_is_replayed_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut shard = Shard::start_in(dir.path(), &NO_SNAPSHOTS, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let _: () = con.set("s", "v1").unwrap();
    // v1 in the snapshot, everything after only in the log.
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let _: () = con.set("s", "v2").unwrap();
    let _: () = con.set("gone", "x").unwrap();
    let _: () = con.del("gone").unwrap();
    let _: i64 = con.incr("counter", 5).unwrap();
    let _: i64 = con.incr("counter", 1).unwrap();
    let _: () = con.rpush("list", &["a", "b", "c"]).unwrap();
    let _: Option<String> = con.lpop("list", None).unwrap();
    let _: () = con.hset_multiple("hash", &[("f1", "v1"), ("f2", "v2")]).unwrap();
    let _: () = con.sadd("set", &["x", "y", "z"]).unwrap();
    // A random removal: the log says which member went, not "SPOP".
    let _: Option<String> = con.spop("set").unwrap();
    let _: () = redis::cmd("ZADD").arg("zset").arg(1.5).arg("m1").arg(-2).arg("m2").query(&mut con).unwrap();
    // A relative TTL is logged as its deadline.
    let _: () = con.expire("hash", 1000).unwrap();
    let _: () = redis::cmd("SET").arg("ttl").arg("v").arg("PX").arg(600_000).query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("short").arg("v").arg("PX").arg(300).query(&mut con).unwrap();
    let _: () = con.rename("counter", "renamed").unwrap();
    let _: () = redis::cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], 'from-script'); redis.call('INCR', KEYS[2]); return 1")
        .arg(2)
        .arg("scripted")
        .arg("renamed")
        .query(&mut con)
        .unwrap();
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("tx1")
        .arg("a")
        .cmd("APPEND")
        .arg("tx1")
        .arg("b")
        .cmd("DEL")
        .arg("s")
        .cmd("SET")
        .arg("s")
        .arg("v3")
        .query(&mut con)
        .unwrap();
    // FLUSHALL in the middle of a history: what came before it must not come back.
    let _: () = con.set("before-flush", "x").unwrap();
    let _: () = con.rpush("blocked-list", "e").unwrap();
    let before = state(&mut con);
    assert!(before.contains_key("short"), "not expired yet: {before:?}");
    shard.stop_with("KILL");

    // Let "short" expire while the shard is down (a clock deadline, not a wait for a server).
    std::thread::sleep(Duration::from_millis(350));
    let shard = Shard::start_in(dir.path(), &NO_SNAPSHOTS, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let mut expected = before.clone();
    expected.remove("short");
    let after = state(&mut con);
    assert_eq!(after, expected);
    assert_eq!(con.get::<_, String>("s").unwrap(), "v3");
    assert_eq!(con.get::<_, String>("renamed").unwrap(), "7");
    assert_eq!(con.get::<_, String>("tx1").unwrap(), "ab");
    assert!(info_value(&mut con, "aof_last_load_frames").parse::<u64>().unwrap() > 10);

    // FLUSHALL, then writes: a restart has exactly those writes.
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    let _: () = con.set("after-flush", "y").unwrap();
    let mut shard = shard;
    shard.stop_with("KILL");
    let shard = Shard::start_in(dir.path(), &NO_SNAPSHOTS, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    assert_eq!(keys, ["after-flush"]);
}

#[test]
fn a_torn_tail_is_cut_and_reported_and_damage_before_the_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut shard = Shard::start_in(dir.path(), &NO_SNAPSHOTS, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    for i in 0..100 {
        let _: () = con.set(format!("k{i}"), format!("v{i}")).unwrap();
    }
    shard.stop_with("KILL");
    let last = incr_files(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&last).unwrap().len();
    // A frame cut by the crash: its header promises 1,000 bytes, 10 are there.
    let mut torn = std::fs::read(&last).unwrap();
    torn.extend_from_slice(&1000u32.to_le_bytes());
    torn.extend_from_slice(&0u32.to_le_bytes());
    torn.extend_from_slice(&[7u8; 10]);
    std::fs::write(&last, &torn).unwrap();

    let mut shard = Shard::start_in(dir.path(), &NO_SNAPSHOTS, true);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    for i in 0..100 {
        assert_eq!(con.get::<_, String>(format!("k{i}")).unwrap(), format!("v{i}"));
    }
    let metrics = shard.metrics();
    for line in
        ["ringcache_aof_enabled 1", "ringcache_aof_last_load_truncated_bytes 18", "ringcache_aof_last_write_status 1"]
    {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
    assert_eq!(info_value(&mut con, "aof_last_load_truncated"), "1");
    assert_eq!(info_value(&mut con, "aof_last_load_truncated_bytes"), "18");
    assert_eq!(std::fs::metadata(&last).unwrap().len(), good_len, "the torn tail is cut off the file");
    shard.stop_with("TERM");
    let log = shard.stderr_text();
    assert!(log.contains("ends with an incomplete write") && log.contains("cut 18 bytes"), "{log}");

    // Damage in a frame that others follow: refused, named, nothing served.
    let files = incr_files(dir.path());
    let first = files.iter().find(|p| std::fs::metadata(p).unwrap().len() > 100).unwrap().clone();
    let mut data = std::fs::read(&first).unwrap();
    data[20] ^= 0xff;
    std::fs::write(&first, &data).unwrap();
    let mut shard = Shard::spawn(dir.path(), &NO_SNAPSHOTS, false);
    let (code, log) = shard.wait_exit();
    assert_ne!(code, Some(0));
    assert!(log.contains("cannot be replayed") && log.contains("fails its checksum"), "{log}");
    // With discard, what precedes the damage is kept and the shard starts.
    let args = [&NO_SNAPSHOTS[..], &["--on-corrupt-snapshot", "discard"]].concat();
    let shard = Shard::start_in(dir.path(), &args, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let _: () = con.set("later", "x").unwrap();
}

#[test]
fn rewrites_keep_the_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        [&NO_SNAPSHOTS[..], &["--auto-aof-rewrite-min-size", "256kb", "--auto-aof-rewrite-percentage", "100"]].concat();
    let shard = Shard::start_in(dir.path(), &args, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let value = "x".repeat(1000);
    // 40 MB of writes to 100 keys (100 KB of data).
    let mut largest = 0u64;
    for round in 0..400 {
        let pairs: Vec<(String, String)> = (0..100).map(|i| (format!("k{i}"), format!("{round}:{value}"))).collect();
        let _: () = con.mset(&pairs).unwrap();
        let size: u64 = info_value(&mut con, "aof_current_size").parse().unwrap();
        largest = largest.max(size);
    }
    // Rewrites ran while the writes went on (how far the log gets past the trigger depends on how fast a
    // rewrite's fsync is against the write rate; it is reported, not bounded here).
    let rewrites_during: u64 = info_value(&mut con, "aof_rewrites").parse().unwrap();
    assert!(rewrites_during >= 1, "no rewrite during 40 MB of writes (the log reached {largest} bytes)");
    poll_until("the last automatic rewrite", || {
        let incr: u64 = info_value(&mut con, "aof_current_size").parse::<u64>().unwrap()
            - info_value(&mut con, "aof_base_size").parse::<u64>().unwrap();
        incr < 256 << 10
    });
    let rewrites: u64 = info_value(&mut con, "aof_rewrites").parse().unwrap();
    eprintln!("rewrites: {rewrites_during} during the writes, {rewrites} in all; the log reached {largest} bytes");
    // Once they stop, the incremental files are back under the trigger: what was overwritten is gone.
    let on_disk: u64 = incr_files(dir.path()).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(on_disk < 1 << 20, "incremental files hold {on_disk} bytes");
    // BGREWRITEAOF leaves one small incremental file.
    let reply: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    assert!(reply.starts_with("Background append only file rewriting"), "{reply}");
    poll_until("the rewrite is done", || {
        info_value(&mut con, "aof_rewrite_in_progress") == "0"
            && info_value(&mut con, "aof_rewrites").parse::<u64>().unwrap() > rewrites
    });
    let files = incr_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(std::fs::metadata(&files[0]).unwrap().len() < 64 << 10);
    let mut shard = shard;
    shard.stop_with("KILL");
    let shard = Shard::start_in(dir.path(), &args, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    for i in 0..100 {
        assert_eq!(con.get::<_, String>(format!("k{i}")).unwrap(), format!("399:{value}"));
    }
}

/// Writers that record every acknowledged value, `kill -9` while they write, then every key must read its
/// last acknowledged value or the one in flight.
fn kill_under_load(policy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--snapshot-interval", "300ms", "--appendonly", "yes", "--appendfsync", policy];
    let mut shard = Shard::start_in(dir.path(), &args, false);
    wait_until_loaded(&mut shard.client());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut con = shard.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // acked[k] = last value acknowledged for key w:k.
                let mut acked = vec![0u64; 200];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let k = (n % 200) as usize;
                    let value = n;
                    let r: redis::RedisResult<()> = if n.is_multiple_of(3) {
                        redis::pipe().atomic().set(format!("{w}:{k}"), value).ignore().query(&mut con)
                    } else {
                        con.set(format!("{w}:{k}"), value)
                    };
                    match r {
                        Ok(()) => acked[k] = value,
                        Err(_) => return (acked, Some((k, value))),
                    }
                }
                (acked, None)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    shard.stop_with("KILL");
    stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let shard = Shard::start_in(dir.path(), &args, false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let mut checked = 0;
    for (w, (acked, in_flight)) in results.iter().enumerate() {
        for (k, &value) in acked.iter().enumerate() {
            if value == 0 {
                continue;
            }
            let got: u64 = con.get(format!("{w}:{k}")).unwrap();
            let allowed_in_flight = in_flight.is_some_and(|(fk, fv)| fk == k && fv == got);
            assert!(got == value || allowed_in_flight, "{policy}: key {w}:{k} acknowledged {value}, reads {got}");
            checked += 1;
        }
    }
    assert!(checked >= 100, "{policy}: only {checked} keys were written");
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_write_with_always() {
    kill_under_load("always");
}

/// A process crash (not the machine's) loses nothing with the other policies either: the log is written to
/// the kernel before the reply is sent; only the fsync waits.
#[test]
fn kill_9_under_load_loses_no_acknowledged_write_with_everysec_and_no() {
    kill_under_load("everysec");
    kill_under_load("no");
}

#[test]
fn info_persistence_names_every_aof_field_redis_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    support::wait_listening("redis-server", port, &mut redis);
    let mut rcon = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
    let theirs: String = redis::cmd("INFO").arg("persistence").query(&mut rcon).unwrap();
    let _ = redis.kill();
    let _ = redis.wait();
    let shard = Shard::start(&NO_SNAPSHOTS);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    let ours: String = redis::cmd("INFO").arg("persistence").query(&mut con).unwrap();
    for line in theirs.lines().filter(|l| l.starts_with("aof_")) {
        let name = line.split(':').next().unwrap();
        assert!(ours.lines().any(|l| l.starts_with(&format!("{name}:"))), "no {name} in\n{ours}");
    }
    assert!(ours.contains("aof_enabled:1\r\n") || ours.contains("aof_enabled:1\n"));
    // Without the log: aof_enabled:0 and none of the size fields, as Redis.
    let plain = Shard::start(&[]);
    let mut con = plain.client();
    let ours: String = redis::cmd("INFO").arg("persistence").query(&mut con).unwrap();
    assert!(ours.contains("aof_enabled:0"));
    assert!(!ours.contains("aof_current_size"));
}
