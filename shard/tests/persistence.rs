//! Snapshots against a real shard process: restore after `kill -9`, damaged files, a crash in the middle of
//! writing, `-LOADING` during restore, the final snapshot on SIGTERM, and the directory lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redis::Commands;
use support::{info_value, Shard};

const SNAPSHOT: &str = "ringcache.snapshot";

/// Polls until a snapshot has been written since `saves_before` successful ones, with no changes pending.
fn wait_for_snapshot(con: &mut redis::Connection, saves_before: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let saves: u64 = info_value(con, "rdb_saves").parse().unwrap();
        let pending: u64 = info_value(con, "rdb_changes_since_last_save").parse().unwrap();
        if saves > saves_before && pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "no snapshot within 30s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `n` keys `key:{i}` = `{prefix}{i}` with MSETs of 1,000.
fn fill(con: &mut redis::Connection, n: usize, prefix: &str) {
    for start in (0..n).step_by(1000) {
        let pairs: Vec<(String, String)> =
            (start..(start + 1000).min(n)).map(|i| (format!("key:{i}"), format!("{prefix}{i}"))).collect();
        let _: () = con.mset(&pairs).unwrap();
    }
}

#[test]
fn keys_and_ttls_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut shard = Shard::start_in(dir.path(), &["--snapshot-interval", "200ms"], false);
    let mut con = shard.client();
    let _: () = con.set("plain", "value").unwrap();
    let _: () = redis::cmd("SET").arg("long-ttl").arg("v").arg("EX").arg(1000).query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("short-ttl").arg("v").arg("PX").arg(1500).query(&mut con).unwrap();
    let _: () = con.hset_multiple("hash", &[("f1", "v1"), ("f2", "v2")]).unwrap();
    let _: () = con.rpush("list", &["a", "b", "c"]).unwrap();
    let _: () = con.sadd("set", &["x", "y"]).unwrap();
    let _: () = redis::cmd("ZADD").arg("zset").arg(1.5).arg("m1").arg(-2).arg("m2").query(&mut con).unwrap();
    let _: () = con.expire("hash", 1000).unwrap();
    let binary: Vec<u8> = (0..=255).collect();
    let _: () = con.set(&binary[..], &binary[..]).unwrap();
    let short_deadline_ms: i64 = redis::cmd("PEXPIRETIME").arg("short-ttl").query(&mut con).unwrap();
    wait_for_snapshot(&mut con, 0);

    shard.stop_with("KILL");
    // Let the short TTL pass while the shard is down (a clock deadline, not a wait for a server).
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    std::thread::sleep(Duration::from_millis((short_deadline_ms - now_ms + 50).max(0) as u64));

    let shard = Shard::start_in(dir.path(), &[], false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    assert_eq!(con.get::<_, Option<String>>("plain").unwrap().as_deref(), Some("value"));
    assert_eq!(con.get::<_, Option<String>>("short-ttl").unwrap(), None, "expired while down");
    let ttl: i64 = con.ttl("long-ttl").unwrap();
    assert!((990..=1000).contains(&ttl), "TTL counted down from 1000, got {ttl}");
    let hash_ttl: i64 = con.ttl("hash").unwrap();
    assert!((990..=1000).contains(&hash_ttl), "hash TTL {hash_ttl}");
    assert_eq!(con.ttl::<_, i64>("plain").unwrap(), -1);
    let hash: std::collections::BTreeMap<String, String> = con.hgetall("hash").unwrap();
    assert_eq!(hash.into_iter().collect::<Vec<_>>(), [("f1".into(), "v1".into()), ("f2".into(), "v2".into())]);
    assert_eq!(con.lrange::<_, Vec<String>>("list", 0, -1).unwrap(), ["a", "b", "c"]);
    let mut set: Vec<String> = con.smembers("set").unwrap();
    set.sort();
    assert_eq!(set, ["x", "y"]);
    let zset: Vec<(String, f64)> = con.zrange_withscores("zset", 0, -1).unwrap();
    assert_eq!(zset, [("m2".to_string(), -2.0), ("m1".to_string(), 1.5)]);
    assert_eq!(con.get::<_, Vec<u8>>(&binary[..]).unwrap(), binary);
    assert_eq!(dbsize(&mut con), 7);
    assert_eq!(info_value(&mut con, "rdb_last_load_keys_loaded"), "7");
    assert_eq!(info_value(&mut con, "rdb_last_load_keys_expired"), "1");
}

fn dbsize(con: &mut redis::Connection) -> usize {
    redis::cmd("DBSIZE").query(con).unwrap()
}

fn wait_until_loaded(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_value(con, "loading") != "0" {
        assert!(Instant::now() < deadline, "still loading after 60s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A directory holding a good snapshot of 2,000 keys, made by a real shard with SAVE.
fn good_snapshot() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard::start_in(dir.path(), &["--snapshot-interval", "0"], false);
    let mut con = shard.client();
    fill(&mut con, 2000, "value-");
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    drop(shard);
    let bytes = std::fs::read(dir.path().join(SNAPSHOT)).unwrap();
    (dir, bytes)
}

/// Starts a shard on `dir` expecting it to refuse: returns its stderr.
fn refuses_to_start(dir: &Path) -> String {
    let mut shard = Shard::spawn(dir, &[], false);
    let (code, stderr) = shard.wait_exit();
    assert_eq!(code, Some(1), "the shard must refuse to start; stderr:\n{stderr}");
    stderr
}

#[test]
fn damaged_snapshots_are_refused_with_the_reason() {
    let (_good_dir, good) = good_snapshot();
    assert!(good.len() > 1000);
    let mut wrong_version = good.clone();
    wrong_version[8] = 9;
    let crc = crc32fast::hash(&wrong_version[..28]);
    wrong_version[28..32].copy_from_slice(&crc.to_le_bytes());
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    let mut wrong_magic = good.clone();
    wrong_magic[..5].copy_from_slice(b"REDIS");
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("flipped byte", flipped, "fails its checksum"),
        ("truncated", good[..good.len() * 2 / 3].to_vec(), "it is truncated"),
        ("empty", Vec::new(), "the file is empty (0 bytes)"),
        ("wrong magic", wrong_magic, "it is not a Ringcache snapshot"),
        ("wrong version", wrong_version, "it has format version 9, but this build reads only version 1"),
    ];
    for (name, bytes, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SNAPSHOT);
        std::fs::write(&path, &bytes).unwrap();
        let stderr = refuses_to_start(dir.path());
        assert!(stderr.contains(&path.display().to_string()), "{name}: the message names the file:\n{stderr}");
        assert!(stderr.contains(reason), "{name}: expected {reason:?} in:\n{stderr}");
        assert!(stderr.contains("--on-corrupt-snapshot discard"), "{name}: the message says how to recover");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: the refused file is left untouched");

        // `discard` moves it aside and starts empty.
        let shard = Shard::start_in(dir.path(), &["--on-corrupt-snapshot", "discard"], false);
        let mut con = shard.client();
        wait_until_loaded(&mut con);
        assert_eq!(dbsize(&mut con), 0, "{name}: started empty");
        assert!(!path.exists(), "{name}: moved aside");
        let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ringcache.snapshot.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{name}: one file moved aside");
        assert_eq!(std::fs::read(&aside[0]).unwrap(), bytes, "{name}: kept byte for byte");
    }
}

#[test]
fn kill_9_while_writing_keeps_the_previous_snapshot_and_loading_answers_loading() {
    const KEYS: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut shard = Shard::start_in(dir.path(), &["--snapshot-interval", "0", "--maxmemory", "0"], false);
    let mut con = shard.client();
    fill(&mut con, KEYS, "old-");
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let first = std::fs::read(dir.path().join(SNAPSHOT)).unwrap();

    // Change every key, start a background snapshot and kill the shard while it writes.
    fill(&mut con, KEYS, "new-");
    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(started, "Background saving started");
    let tmp = dir.path().join("ringcache.snapshot.tmp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(tmp.exists() && std::fs::metadata(&tmp).unwrap().len() > 0) {
        assert!(Instant::now() < deadline, "the snapshot never started writing");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(info_value(&mut con, "rdb_bgsave_in_progress"), "1", "killed in the middle of writing");
    shard.stop_with("KILL");
    assert_eq!(std::fs::read(dir.path().join(SNAPSHOT)).unwrap(), first, "the previous snapshot is untouched");

    // Restart: clients get -LOADING until the previous snapshot is in, then its data.
    let mut shard = Shard::spawn(dir.path(), &[], false);
    let mut raw = loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", shard.port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            break support::Raw(s);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let loading = b"-LOADING Ringcache is loading the dataset in memory\r\n";
    raw.expect(b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n", loading);
    raw.expect(b"*1\r\n$4\r\nPING\r\n", loading);
    raw.expect(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", b"$2\r\nhi\r\n");
    let mut con = shard.client();
    assert_eq!(info_value(&mut con, "loading"), "1");
    wait_until_loaded(&mut con);
    assert!(!tmp.exists(), "the unfinished temporary file was removed");
    assert_eq!(dbsize(&mut con), KEYS);
    for i in [0, 1, KEYS / 2, KEYS - 1] {
        let v: String = con.get(format!("key:{i}")).unwrap();
        assert_eq!(v, format!("old-{i}"));
    }
    assert_eq!(info_value(&mut con, "rdb_last_load_keys_loaded"), KEYS.to_string());
    // A write is counted as a change, and the next snapshot takes it.
    let _: () = con.set("key:1", "newest").unwrap();
    assert_eq!(info_value(&mut con, "rdb_changes_since_last_save"), "1");
    assert_eq!(shard.stop_with("TERM"), Some(0));
    let stderr = shard.stderr_text();
    assert!(!stderr.contains("final snapshot"), "no final snapshot with --snapshot-interval 0:\n{stderr}");
}

#[test]
fn sigterm_takes_a_final_snapshot_unless_told_not_to() {
    for (on_shutdown, kept) in [("true", true), ("false", false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut shard =
            Shard::start_in(dir.path(), &["--snapshot-interval", "1h", "--snapshot-on-shutdown", on_shutdown], false);
        let mut con = shard.client();
        let _: () = con.set("k", "v").unwrap();
        assert_eq!(shard.stop_with("TERM"), Some(0));
        let shard = Shard::start_in(dir.path(), &[], false);
        let mut con = shard.client();
        wait_until_loaded(&mut con);
        let got: Option<String> = con.get("k").unwrap();
        assert_eq!(got.is_some(), kept, "--snapshot-on-shutdown {on_shutdown}");
    }
}

#[test]
fn save_lastsave_and_bgsave_reply_like_redis() {
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard::start_in(dir.path(), &["--snapshot-interval", "0"], true);
    let mut con = shard.client();
    let before: u64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    let _: () = con.set("a", "1").unwrap();
    assert_eq!(info_value(&mut con, "rdb_changes_since_last_save"), "1");
    let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    let after: u64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(after >= before);
    assert_eq!(info_value(&mut con, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_value(&mut con, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_value(&mut con, "snapshot_last_keys"), "1");
    let mut raw = shard.raw();
    raw.expect(b"BGSAVE NOW\r\n", b"-ERR syntax error\r\n");
    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert!(started == "Background saving started", "{started}");
    wait_for_snapshot(&mut con, 1);
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("dir").query(&mut con).unwrap();
    assert_eq!(config[1], dir.path().display().to_string());
    let metrics = shard.metrics();
    assert!(metrics.contains("ringcache_snapshots_total 2"), "{metrics}");
    assert!(metrics.contains("ringcache_rdb_last_bgsave_status 1"));
    assert!(metrics.contains("ringcache_rdb_changes_since_last_save 0"));
    assert!(metrics.contains("ringcache_loading_dump_file 0"));
}

#[test]
fn a_failing_snapshot_is_reported_and_the_shard_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let shard = Shard::start_in(dir.path(), &["--snapshot-interval", "0"], false);
    let mut con = shard.client();
    let _: () = con.set("a", "1").unwrap();
    // A directory where the temporary file should go makes the write fail.
    std::fs::create_dir(dir.path().join("ringcache.snapshot.tmp")).unwrap();
    let err = redis::cmd("SAVE").query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("snapshot failed"), "{err}");
    assert_eq!(info_value(&mut con, "rdb_last_bgsave_status"), "err");
    assert_eq!(con.get::<_, String>("a").unwrap(), "1");
    std::fs::remove_dir(dir.path().join("ringcache.snapshot.tmp")).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(info_value(&mut con, "rdb_last_bgsave_status"), "ok");
}

#[test]
fn two_shards_cannot_share_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Shard::start_in(dir.path(), &[], false);
    let stderr = refuses_to_start(dir.path());
    assert!(stderr.contains("is in use by another ringcache-shard"), "{stderr}");
}

/// A sorted set of 1,000,000 members and a list of 1,000,000 elements: loaded, ranged (by rank, score and
/// index, from both ends), snapshotted, and the same after a restart from the snapshot.
#[test]
fn a_million_member_zset_and_list_survive_a_snapshot() {
    const N: usize = 1_000_000;
    const BATCH: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let mut shard = Shard::start_in(dir.path(), &["--snapshot-interval", "0", "--maxmemory", "0"], false);
    let mut con = shard.client();
    for start in (0..N).step_by(BATCH) {
        // Scores in a shuffled order (member i has score i), so the tree is built by inserts everywhere.
        let mut zadd = redis::cmd("ZADD");
        zadd.arg("big:z");
        for i in start..start + BATCH {
            let j = (i * 7919) % N;
            zadd.arg(j).arg(format!("m{j}"));
        }
        let mut rpush = redis::cmd("RPUSH");
        rpush.arg("big:l");
        for i in start..start + BATCH {
            rpush.arg(format!("e{i}"));
        }
        let _: () = redis::pipe().add_command(zadd).ignore().add_command(rpush).ignore().query(&mut con).unwrap();
    }
    let check = |con: &mut redis::Connection, when: &str| {
        let card: usize = redis::cmd("ZCARD").arg("big:z").query(con).unwrap();
        let len: usize = redis::cmd("LLEN").arg("big:l").query(con).unwrap();
        assert_eq!((card, len), (N, N), "{when}");
        let mid: Vec<String> = redis::cmd("ZRANGE").arg("big:z").arg(500_000).arg(500_002).query(con).unwrap();
        assert_eq!(mid, ["m500000", "m500001", "m500002"], "{when}");
        let top: Vec<String> = redis::cmd("ZREVRANGE").arg("big:z").arg(0).arg(1).query(con).unwrap();
        assert_eq!(top, ["m999999", "m999998"], "{when}");
        let by_score: Vec<String> =
            redis::cmd("ZRANGEBYSCORE").arg("big:z").arg("(750000").arg(750002).query(con).unwrap();
        assert_eq!(by_score, ["m750001", "m750002"], "{when}");
        let rank: usize = redis::cmd("ZRANK").arg("big:z").arg("m123456").query(con).unwrap();
        assert_eq!(rank, 123_456, "{when}");
        let count: usize = redis::cmd("ZCOUNT").arg("big:z").arg(100).arg(199).query(con).unwrap();
        assert_eq!(count, 100, "{when}");
        let middle: Vec<String> = redis::cmd("LRANGE").arg("big:l").arg(499_999).arg(500_001).query(con).unwrap();
        assert_eq!(middle, ["e499999", "e500000", "e500001"], "{when}");
        let tail: Vec<String> = redis::cmd("LRANGE").arg("big:l").arg(-2).arg(-1).query(con).unwrap();
        assert_eq!(tail, ["e999998", "e999999"], "{when}");
        let at: String = redis::cmd("LINDEX").arg("big:l").arg(777_777).query(con).unwrap();
        assert_eq!(at, "e777777", "{when}");
    };
    check(&mut con, "loaded");
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    let used_before: usize = info_value(&mut con, "used_memory").parse().unwrap();
    assert_eq!(shard.stop_with("TERM"), Some(0));
    let shard = Shard::start_in(dir.path(), &["--snapshot-interval", "0", "--maxmemory", "0"], false);
    let mut con = shard.client();
    wait_until_loaded(&mut con);
    check(&mut con, "restored");
    let used_after: usize = info_value(&mut con, "used_memory").parse().unwrap();
    assert_eq!(used_after, used_before, "the restored collections are charged as the originals were");
}
