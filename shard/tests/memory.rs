//! Eviction and expiry against a real shard: the memory budget holds, hot keys survive, TTLs fire on
//! time, and active expiry frees keys nobody touches.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{resp, Shard};

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

/// A large value being received counts against maxmemory while its request is read, as Redis counts client
/// buffers in `used_memory`: keys are evicted to make room for it, and `used_memory` never passes maxmemory.
#[test]
fn large_client_buffers_count_against_maxmemory() {
    let maxmemory: u64 = 8 << 20;
    let shard = Shard::start(&["--maxmemory", "8mb"]);
    let mut con = shard.client();
    pipeline_sets(&mut con, 0, 6000, &[b'v'; 1024]);
    let used_before = shard.info_field(&mut con, "used_memory");
    assert_eq!(shard.info_field(&mut con, "evicted_keys"), 0);
    // Half of a 4 MB SET: the shard is holding a 4 MB buffer for it.
    let value = vec![b'x'; 4 << 20];
    let mut request = resp(&[b"SET", b"big", &value]);
    let rest = request.split_off(2 << 20);
    let mut raw = shard.raw();
    raw.send(&request);
    // 6000 keys of about 1 KB fit in 8 MB; next to a 4 MB buffer, fewer than 4000 do. The evictions run
    // while INFO and DBSIZE are answered on another connection: wait for them to finish (a CI run read
    // DBSIZE right after the first eviction), failing if the buffer is never charged.
    let dbsize = |con: &mut redis::Connection| -> u64 { redis::cmd("DBSIZE").query(con).unwrap() };
    support::poll_until("keys are evicted for the buffer (fewer than 4000 of 6000 left)", || dbsize(&mut con) < 4000);
    assert!(shard.info_field(&mut con, "evicted_keys") > 0);
    let used_while_reading = shard.info_field(&mut con, "used_memory");
    assert!(used_while_reading <= maxmemory, "used_memory {used_while_reading} > {maxmemory}");
    raw.send(&rest);
    raw.0.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(raw.read_exact_or_eof(5), b"+OK\r\n");
    // The buffer's charge is gone once the value is stored: used_memory is the keys' cost again.
    let used_after = shard.info_field(&mut con, "used_memory");
    assert!(used_after <= maxmemory && used_after > 4 << 20, "used_memory {used_after} (before {used_before})");
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert!(got == value);
}

/// A request larger than maxmemory is refused with -OOM without evicting anything, and the memory it took
/// to read it is given back.
#[test]
fn a_request_larger_than_maxmemory_is_refused_and_its_memory_given_back() {
    let shard = Shard::start(&["--maxmemory", "8mb"]);
    let mut con = shard.client();
    pipeline_sets(&mut con, 0, 1000, &[b'v'; 1024]);
    let used_before = shard.info_field(&mut con, "used_memory");
    let rss_before = shard.rss_bytes();
    let mut raw = shard.raw();
    let value = vec![b'x'; 64 << 20];
    raw.0.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    raw.expect(&resp(&[b"SET", b"big", &value]), b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    drop(value);
    assert_eq!(shard.info_field(&mut con, "evicted_keys"), 0);
    assert_eq!(shard.info_field(&mut con, "used_memory"), used_before);
    // The allocator gives freed memory back at its next bookkeeping, which requests trigger.
    support::poll_until("the request's memory is given back", || {
        raw.expect(b"PING\r\n", b"+PONG\r\n");
        shard.rss_bytes() < rss_before + (16 << 20)
    });
}

/// INFO memory reports the resident size and the fragmentation ratio as Redis does.
#[test]
fn info_memory_reports_rss_and_fragmentation() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    pipeline_sets(&mut con, 0, 10_000, &[b'v'; 100]);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    let field = |name: &str| -> String {
        info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_else(|| panic!("{info}")).to_string()
    };
    let used: f64 = field("used_memory").parse().unwrap();
    let rss: f64 = field("used_memory_rss").parse().unwrap();
    let ratio: f64 = field("mem_fragmentation_ratio").parse().unwrap();
    let bytes: f64 = field("mem_fragmentation_bytes").parse().unwrap();
    assert!(rss > used && used > 1e6, "{info}");
    assert!((ratio - rss / used).abs() < 0.05, "{info}");
    assert!((bytes - (rss - used)).abs() < 1e6, "{info}");
    assert!(field("used_memory_rss_human").ends_with('M'), "{info}");
}

/// Issue 16's memory target, RSS within 1.5 × maxmemory + 20 MB, with values large enough to get blocks of
/// their own from the allocator: twelve connections each store 4 MB values and stay open. Each read buffer
/// grows to 4 MB for its request; once the request is done the connection must let go of it (it once kept
/// the block, shared with the request's frame, for as long as it lived: 12 × 4 MB beyond the budget), and
/// evicted values must be given back to the kernel.
#[test]
fn connections_that_stored_large_values_do_not_keep_their_buffers() {
    let maxmemory: u64 = 16 << 20;
    let shard = Shard::start(&["--maxmemory", "16mb"]);
    let mut con = shard.client();
    let rss_before = shard.rss_bytes();
    let value = vec![b'x'; 4 << 20];
    let mut conns: Vec<_> = (0..12).map(|_| shard.raw()).collect();
    for round in 0..3 {
        for (i, raw) in conns.iter_mut().enumerate() {
            raw.0.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let key = format!("big:{round}:{i}");
            raw.expect(&resp(&[b"SET", key.as_bytes(), &value]), b"+OK\r\n");
        }
    }
    assert!(shard.info_field(&mut con, "evicted_keys") > 0);
    let used = shard.info_field(&mut con, "used_memory");
    assert!(used <= maxmemory, "used_memory {used}");
    // All twelve connections are still open. The budget's worth of values, plus slack for what the process
    // itself grows by (the requests' frames are freed, not kept).
    let limit = rss_before + maxmemory as usize * 3 / 2;
    let rss = shard.rss_bytes();
    assert!(rss < limit, "RSS grew from {rss_before} to {rss} with 12 idle connections (limit {limit})");
    drop(conns);
}
