//! Eviction and expiry against a real shard: the memory budget holds, hot keys survive, TTLs fire on
//! time, and active expiry frees keys nobody touches.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::Shard;

fn pipeline_sets(con: &mut redis::Connection, from: usize, to: usize, value: &[u8]) {
    let mut p = redis::pipe();
    for i in from..to {
        p.cmd("SET").arg(format!("key:{i:09}")).arg(value).ignore();
    }
    p.query::<()>(con).unwrap();
}

#[test]
fn eviction_keeps_memory_bounded_and_hot_keys_alive() {
    let maxmemory: u64 = 8 << 20;
    let shard = Shard::start(&["--maxmemory", "8mb"]);
    let mut con = shard.client();
    let value = vec![b'v'; 1024];
    let hot: Vec<String> = (0..200).map(|i| format!("key:{i:09}")).collect();
    pipeline_sets(&mut con, 0, 200, &value);
    let rss_start = shard.rss_bytes();
    // Write 10x maxmemory, reading the hot keys between batches so they stay recently used.
    let total_keys = (10 * maxmemory as usize) / value.len();
    let mut written = 200;
    while written < total_keys {
        let next = (written + 1000).min(total_keys);
        pipeline_sets(&mut con, written, next, &value);
        written = next;
        let mut p = redis::pipe();
        for k in &hot {
            p.cmd("GET").arg(k);
        }
        let got: Vec<Option<Vec<u8>>> = p.query(&mut con).unwrap();
        assert!(got.iter().all(|v| v.as_deref() == Some(&value[..])), "a hot key was evicted");
        let used = shard.info_field(&mut con, "used_memory");
        assert!(used <= maxmemory, "used_memory {used} > maxmemory {maxmemory}");
    }
    let evicted = shard.info_field(&mut con, "evicted_keys");
    assert!(evicted as usize > total_keys / 2, "only {evicted} evicted");
    // Cold keys written early are gone; the most recent ones are there.
    let mut p = redis::pipe();
    for i in 200..1200 {
        p.cmd("EXISTS").arg(format!("key:{i:09}"));
    }
    let early: Vec<u8> = p.query(&mut con).unwrap();
    assert_eq!(early.iter().map(|&e| e as usize).sum::<usize>(), 0, "cold keys survived");
    let last: bool = redis::cmd("EXISTS").arg(format!("key:{:09}", total_keys - 1)).query(&mut con).unwrap();
    assert!(last);
    // The process itself stays bounded: 80 MB were written through an 8 MB budget.
    let rss_growth = shard.rss_bytes().saturating_sub(rss_start);
    assert!(rss_growth < 40 << 20, "RSS grew by {} MB", rss_growth >> 20);
}

#[test]
fn writes_fail_with_oom_only_when_nothing_can_be_evicted() {
    let shard = Shard::start(&["--maxmemory", "100kb"]);
    let mut raw = shard.raw();
    let mut req = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$200000\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 200_000));
    req.extend_from_slice(b"\r\n");
    raw.expect(&req, b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    raw.expect(b"SET small v\r\n", b"+OK\r\n");
}

#[test]
fn keys_expire_on_time() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    // Taken before the SET is sent, so the server's deadline is at least 400 ms after it.
    let set_at = Instant::now();
    let _: () = redis::cmd("SET").arg("k").arg("v").arg("PX").arg(400).query(&mut con).unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let pttl: i64 = redis::cmd("PTTL").arg("k").query(&mut con).unwrap();
    assert!((200..=400).contains(&pttl), "{pttl}");
    // Poll until it is gone; it must not vanish early and must be gone soon after its deadline.
    loop {
        let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        let elapsed = set_at.elapsed();
        if v.is_none() {
            // The server keeps time in whole milliseconds, so allow it to round down by one.
            assert!(elapsed >= Duration::from_millis(399), "expired early, after {elapsed:?}");
            break;
        }
        assert!(elapsed < Duration::from_millis(1500), "still there after {elapsed:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pttl: i64 = redis::cmd("PTTL").arg("k").query(&mut con).unwrap();
    assert_eq!(pttl, -2);
}

#[test]
fn active_expiry_frees_untouched_keys() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let base = shard.info_field(&mut con, "used_memory");
    // One deadline for all keys, far enough out that even a debug build has written them all by then.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let deadline_ms = now_ms + 4000;
    for chunk in 0..10 {
        let mut p = redis::pipe();
        for i in 0..10_000 {
            p.cmd("SET").arg(format!("ttl:{chunk}:{i}")).arg("value").arg("PXAT").arg(deadline_ms).ignore();
        }
        p.query::<()>(&mut con).unwrap();
    }
    let _: () = redis::cmd("SET").arg("keeper").arg("1").query(&mut con).unwrap();
    let dbsize: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(dbsize, 100_001);
    // Nobody reads the keys again; DBSIZE counts expired-but-unremoved keys, so it only drops when active
    // expiry removes them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dbsize: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
        if dbsize == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{dbsize} keys left after 30s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shard.info_field(&mut con, "expired_keys"), 100_000);
    let used = shard.info_field(&mut con, "used_memory");
    assert!(used < base + 200, "used_memory {used} did not return to ~{base}");
}
