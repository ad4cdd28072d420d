//! Snapshots seen through the proxy: BGSAVE and LASTSAVE fan out to every shard, SAVE is refused (it would
//! stall a shared shard connection), and a shard killed and restarted on its directory brings its keys back
//! for the proxy's clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use redis::Commands;
use support::{free_port, poll_until, start_proxy, start_shard_in, Proc};

fn changes_pending(shard: &Proc) -> u64 {
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut shard.client()).unwrap();
    info.lines().find_map(|l| l.strip_prefix("rdb_changes_since_last_save:")).unwrap().trim().parse().unwrap()
}

#[test]
fn a_restarted_shard_brings_its_keys_back_through_the_proxy() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let snapshots_off = ["--snapshot-interval", "0"];
    let mut shards: Vec<Proc> = (0..3).map(|i| start_shard_in(ports[i], dirs[i].path(), &snapshots_off)).collect();
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let proxy = start_proxy(&names, &["--health-interval", "100ms", "--failure-limit", "2", "--timeout", "500ms"]);
    let mut con = proxy.client();

    let keys: Vec<(String, String)> = (0..3000).map(|i| (format!("user:{i}"), format!("profile-{i}"))).collect();
    for chunk in keys.chunks(500) {
        let _: () = con.mset(chunk).unwrap();
    }
    let _: () = redis::cmd("SET").arg("session").arg("s").arg("EX").arg(1000).query(&mut con).unwrap();
    let per_shard: Vec<usize> = shards.iter().map(|s| redis::cmd("DBSIZE").query(&mut s.client()).unwrap()).collect();
    assert!(per_shard.iter().all(|&n| n > 500), "keys spread over all shards: {per_shard:?}");

    let err = redis::cmd("SAVE").query::<String>(&mut con).unwrap_err();
    assert!(err.to_string().contains("SAVE is not supported by ringcache-proxy"), "{err}");
    let before: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(started, "Background saving started");
    for shard in &shards {
        poll_until("every shard wrote its snapshot", Duration::from_secs(20), || changes_pending(shard) == 0);
    }
    let after: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(after >= before);

    // kill -9 the second shard and start it again on its directory.
    shards[1].kill();
    shards[1] = start_shard_in(ports[1], dirs[1].path(), &snapshots_off);
    poll_until("every key is served again through the proxy", Duration::from_secs(20), || {
        let names: Vec<&String> = keys.iter().map(|(k, _)| k).collect();
        // Until the dead shard is ejected its keys get errors; then misses until it is readmitted.
        let Ok(values) = con.mget::<_, Vec<Option<String>>>(&names) else { return false };
        values.iter().zip(&keys).all(|(got, (_, want))| got.as_deref() == Some(want.as_str()))
    });
    let ttl: i64 = con.ttl("session").unwrap();
    assert!((990..=1000).contains(&ttl), "TTL kept across the restart: {ttl}");
    let total: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(total, keys.len() + 1);
}
