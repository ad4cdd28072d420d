//! `RINGCACHE` hinted-handoff commands against real shard processes: a stand-in records the keys of hinted
//! writes, refuses them once the handoff has begun, pages them out with their values and TTLs, and a
//! second shard restores them byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use redis::{Commands, Value};
use support::{info_value, Shard};

fn rc(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd("RINGCACHE");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an integer: {other:?}"),
    }
}

/// TAKE until the cursor returns to 0: (key, record or None) in key order.
fn take_all(con: &mut redis::Connection, target: &str, page: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut cursor = 0i64;
    loop {
        let reply = rc(con, &["HANDOFF", "TAKE", target, &cursor.to_string(), &page.to_string()]).unwrap();
        let Value::Array(parts) = reply else { panic!("TAKE reply: {reply:?}") };
        let Value::Array(items) = &parts[1] else { panic!("TAKE items: {parts:?}") };
        assert!(items.len() <= page * 2, "a page holds at most {page} keys");
        for pair in items.chunks(2) {
            let Value::BulkString(key) = &pair[0] else { panic!("key: {pair:?}") };
            let record = match &pair[1] {
                Value::BulkString(r) => Some(r.clone()),
                Value::Nil => None,
                other => panic!("record: {other:?}"),
            };
            out.push((key.clone(), record));
        }
        cursor = int(&parts[0]);
        if cursor == 0 {
            return out;
        }
    }
}

#[test]
fn hinted_writes_are_recorded_fenced_and_restored_elsewhere() {
    let stand_in = Shard::start_with_metrics(&[], true);
    let returning = Shard::start(&[]);
    let mut s = stand_in.client();
    let mut r = returning.client();

    // Not open: refused, nothing written.
    let err = rc(&mut s, &["HINTED", "x", "SET", "a", "1"]).unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    assert!(!s.exists::<_, bool>("a").unwrap());

    assert_eq!(rc(&mut s, &["HANDOFF", "OPEN", "x"]).unwrap(), Value::Okay);
    // The wrapped command's reply is the command's own.
    assert_eq!(rc(&mut s, &["HINTED", "x", "SET", "a", "1"]).unwrap(), Value::Okay);
    assert_eq!(int(&rc(&mut s, &["HINTED", "x", "INCR", "n"]).unwrap()), 1);
    assert_eq!(rc(&mut s, &["HINTED", "x", "MSET", "b", "2", "c", "3"]).unwrap(), Value::Okay);
    assert_eq!(rc(&mut s, &["HINTED", "x", "SET", "ttl", "t", "EX", "100"]).unwrap(), Value::Okay);
    assert_eq!(int(&rc(&mut s, &["HINTED", "x", "HSET", "h", "f", "v"]).unwrap()), 1);
    // A delete of a key the stand-in never had is still a hint: the returning shard has it.
    assert_eq!(int(&rc(&mut s, &["HINTED", "x", "DEL", "gone", "c"]).unwrap()), 1);
    assert_eq!(int(&rc(&mut s, &["HINTED", "x", "INCR", "counter"]).unwrap()), 1);
    // A plain write is not a hint, and a failed hinted command records nothing.
    s.set::<_, _, ()>("text", "abc").unwrap();
    let err = rc(&mut s, &["HINTED", "x", "INCR", "text"]).unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    // A hinted read runs, and records nothing.
    assert_eq!(rc(&mut s, &["HINTED", "x", "GET", "a"]).unwrap(), Value::BulkString(b"1".to_vec()));
    // Only commands with keys can be wrapped.
    let err = rc(&mut s, &["HINTED", "x", "RINGCACHE", "HANDOFF", "LIST"]).unwrap_err();
    assert!(err.to_string().contains("only commands with keys"), "{err}");

    assert_eq!(info_value(&mut s, "handoff_open_shards"), "1");
    assert_eq!(info_value(&mut s, "handoff_backlog_keys"), "8");

    // CLOSE fences: [keys, flush].
    assert_eq!(rc(&mut s, &["HANDOFF", "CLOSE", "x"]).unwrap(), Value::Array(vec![Value::Int(8), Value::Int(0)]));
    let err = rc(&mut s, &["HINTED", "x", "SET", "a", "late"]).unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"));
    assert_eq!(s.get::<_, String>("a").unwrap(), "1", "a refused hinted write changes nothing");
    assert_eq!(info_value(&mut s, "handoff_refused_writes"), "2");

    let hints = take_all(&mut s, "x", 2);
    let keys: Vec<&[u8]> = hints.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [&b"a"[..], b"b", b"c", b"counter", b"gone", b"h", b"n", b"ttl"]);
    let absent: Vec<&[u8]> = hints.iter().filter(|(_, r)| r.is_none()).map(|(k, _)| k.as_slice()).collect();
    assert_eq!(absent, [&b"c"[..], b"gone"]);

    // The returning shard holds stale data; RESTORE replaces it and DEL applies the deletes.
    r.set::<_, _, ()>("a", "stale").unwrap();
    r.set::<_, _, ()>("gone", "stale").unwrap();
    r.set::<_, _, ()>("c", "stale").unwrap();
    let mut restore = redis::cmd("RINGCACHE");
    restore.arg("RESTORE");
    let mut deletes = redis::cmd("DEL");
    for (key, record) in &hints {
        match record {
            Some(record) => {
                restore.arg(record.as_slice());
            }
            None => {
                deletes.arg(key.as_slice());
            }
        }
    }
    assert_eq!(restore.query::<i64>(&mut r).unwrap(), 6);
    assert_eq!(deletes.query::<i64>(&mut r).unwrap(), 2);
    assert_eq!(r.get::<_, String>("a").unwrap(), "1");
    assert_eq!(r.get::<_, String>("n").unwrap(), "1");
    assert_eq!(r.get::<_, String>("b").unwrap(), "2");
    assert_eq!(r.hget::<_, _, String>("h", "f").unwrap(), "v");
    let ttl: i64 = r.ttl("ttl").unwrap();
    assert!((90..=100).contains(&ttl), "the TTL travels with the key: {ttl}");
    assert!(!r.exists::<_, bool>("gone").unwrap() && !r.exists::<_, bool>("c").unwrap());

    // FINISH deletes the handed-back keys from the stand-in.
    assert_eq!(int(&rc(&mut s, &["HANDOFF", "FINISH", "x"]).unwrap()), 8);
    for key in ["a", "b", "n", "h", "ttl", "counter"] {
        assert!(!s.exists::<_, bool>(key).unwrap(), "{key} still on the stand-in");
    }
    assert_eq!(s.get::<_, String>("text").unwrap(), "abc", "keys that were not hinted stay");
    assert_eq!(info_value(&mut s, "handoff_backlog_keys"), "0");
    assert_eq!(info_value(&mut s, "handoff_handed_off_keys"), "8");
    let metrics = stand_in.metrics();
    assert!(metrics.contains("ringcache_handoff_handed_off_keys_total 8"), "{metrics}");
    assert!(metrics.contains("ringcache_handoff_refused_writes_total 2"), "{metrics}");
}

#[test]
fn precopy_hands_most_keys_over_before_the_fence_and_rewrites_are_copied_again() {
    let shard = Shard::start(&[]);
    let mut s = shard.client();
    rc(&mut s, &["HANDOFF", "OPEN", "x"]).unwrap();
    for i in 0..10 {
        rc(&mut s, &["HINTED", "x", "SET", &format!("k{i}"), "1"]).unwrap();
    }
    let precopy = |s: &mut redis::Connection, n: &str| -> (i64, Vec<Vec<u8>>) {
        let Value::Array(reply) = rc(s, &["HANDOFF", "PRECOPY", "x", n]).unwrap() else { panic!() };
        let Value::Array(items) = &reply[1] else { panic!() };
        let keys = items
            .chunks(2)
            .map(|p| match &p[0] {
                Value::BulkString(k) => k.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        (int(&reply[0]), keys)
    };
    assert_eq!(precopy(&mut s, "4"), (6, vec![b"k0".to_vec(), b"k1".to_vec(), b"k2".to_vec(), b"k3".to_vec()]));
    // Written again after it was copied: pending again, so the fenced pass copies the newer value.
    rc(&mut s, &["HINTED", "x", "SET", "k0", "2"]).unwrap();
    assert_eq!(rc(&mut s, &["HANDOFF", "CLOSE", "x"]).unwrap(), Value::Array(vec![Value::Int(7), Value::Int(0)]));
    let fenced: Vec<Vec<u8>> = take_all(&mut s, "x", 10).into_iter().map(|(k, _)| k).collect();
    let expected: Vec<Vec<u8>> = [0, 4, 5, 6, 7, 8, 9].iter().map(|i| format!("k{i}").into_bytes()).collect();
    assert_eq!(fenced, expected);
    assert_eq!(precopy(&mut s, "100"), (0, vec![]), "nothing once fenced");
    // An attempt that did not finish (the returning shard failed): REWIND puts what it copied back in line.
    rc(&mut s, &["HANDOFF", "REWIND", "x"]).unwrap();
    assert_eq!(take_all(&mut s, "x", 100).len(), 10);
    // FINISH deletes everything handed over, copied early or late.
    assert_eq!(int(&rc(&mut s, &["HANDOFF", "FINISH", "x"]).unwrap()), 10);
    assert_eq!(info_value(&mut s, "handoff_backlog_keys"), "0");
}

#[test]
fn a_flushall_or_an_overflow_asks_for_a_flush_of_the_returning_shard() {
    let stand_in = Shard::start(&["--handoff-max-keys", "3"]);
    let mut s = stand_in.client();
    rc(&mut s, &["HANDOFF", "OPEN", "x"]).unwrap();
    rc(&mut s, &["HANDOFF", "OPEN", "y"]).unwrap();
    // At the limit, hints are still kept...
    rc(&mut s, &["HINTED", "x", "MSET", "a", "1", "b", "2", "c", "3"]).unwrap();
    assert_eq!(rc(&mut s, &["HANDOFF", "LIST"]).unwrap(), list(&[("x", 1, 3, 0), ("y", 1, 0, 0)]));
    // ...one past it, the target is marked for a flush instead; the write itself still succeeds.
    assert_eq!(rc(&mut s, &["HINTED", "x", "SET", "d", "4"]).unwrap(), Value::Okay);
    assert_eq!(s.get::<_, String>("d").unwrap(), "4");
    assert_eq!(info_value(&mut s, "handoff_overflowed_keys"), "1");
    assert_eq!(rc(&mut s, &["HANDOFF", "CLOSE", "x"]).unwrap(), Value::Array(vec![Value::Int(3), Value::Int(1)]));

    rc(&mut s, &["HINTED", "y", "SET", "e", "5"]).unwrap();
    assert_eq!(rc(&mut s, &["HINTED", "y", "FLUSHALL"]).unwrap(), Value::Okay);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut s).unwrap(), 0);
    // Everything y's keys had here is gone, and y must drop its own when it returns.
    assert_eq!(rc(&mut s, &["HANDOFF", "CLOSE", "y"]).unwrap(), Value::Array(vec![Value::Int(0), Value::Int(1)]));
    rc(&mut s, &["HANDOFF", "FINISH", "y"]).unwrap();
    assert_eq!(rc(&mut s, &["HANDOFF", "CLOSE", "y"]).unwrap(), Value::Array(vec![Value::Int(0), Value::Int(0)]));
}

fn list(rows: &[(&str, i64, i64, i64)]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(name, open, keys, flush)| {
                Value::Array(vec![
                    Value::BulkString(name.as_bytes().to_vec()),
                    Value::Int(*open),
                    Value::Int(*keys),
                    Value::Int(*flush),
                ])
            })
            .collect(),
    )
}

#[test]
fn bad_handoff_requests_get_errors_not_panics() {
    let shard = Shard::start(&[]);
    let mut s = shard.client();
    for (args, expected) in [
        (&["NOPE"][..], "unknown subcommand"),
        (&["HANDOFF"], "wrong number of arguments"),
        (&["HANDOFF", "OPEN"], "wrong number of arguments"),
        (&["HANDOFF", "TAKE", "x", "-1", "10"], "not an integer"),
        (&["HANDOFF", "TAKE", "x", "0", "abc"], "not an integer"),
        (&["HANDOFF", "FLY", "x"], "unknown subcommand"),
        (&["HINTED", "x"], "wrong number of arguments"),
        (&["HINTED", ",", "SET", "a", "1"], "at least one shard name"),
        (&["HINTED", "x", "NOSUCH", "a"], "only commands with keys"),
        (&["HINTED", "x", "PING"], "only commands with keys"),
        (&["RESTORE", "garbage"], "not a valid record"),
    ] {
        let err = rc(&mut s, args).unwrap_err();
        assert!(err.to_string().contains(expected), "{args:?}: {err}");
    }
    // TAKE of a shard never stood in for is empty, not an error.
    assert_eq!(
        rc(&mut s, &["HANDOFF", "TAKE", "never", "0", "10"]).unwrap(),
        Value::Array(vec![Value::Int(0), Value::Array(vec![])])
    );
    assert_eq!(s.ping::<String>().unwrap(), "PONG");
}

#[test]
fn a_joining_shards_ranges_are_seeded_and_guarded_and_forgotten() {
    let shard = Shard::start(&[]);
    let mut s = shard.client();
    for i in 0..200 {
        s.set::<_, _, ()>(format!("k{i}"), i).unwrap();
    }
    // md5 of the key, as the proxy's ring hashes it: the lower half of the circle goes to "n".
    let ring_hash = |k: &str| ringcache_common::hash::KeyHash::Md5.ring_hash(k.as_bytes());
    let inside: Vec<String> = (0..200).map(|i| format!("k{i}")).filter(|k| ring_hash(k) <= u32::MAX / 2).collect();
    let outside: Vec<String> = (0..200).map(|i| format!("k{i}")).filter(|k| ring_hash(k) > u32::MAX / 2).collect();
    assert!(inside.len() > 50 && outside.len() > 50);

    rc(&mut s, &["HANDOFF", "OPEN", "n"]).unwrap();
    // The arc (u32::MAX, u32::MAX / 2] wraps past the top: everything from 0 to the middle.
    let seeded = rc(&mut s, &["HANDOFF", "SEED", "n", "md5", &u32::MAX.to_string(), &(u32::MAX / 2).to_string()]);
    assert_eq!(int(&seeded.unwrap()), inside.len() as i64);
    // Plain commands on the guarded range are refused (reads too); hinted ones and other keys work.
    let err = s.get::<_, Option<String>>(&inside[0]).unwrap_err();
    assert_eq!(err.code(), Some("TRYAGAIN"), "{err}");
    assert!(err.to_string().contains("belongs to shard 'n'"), "{err}");
    assert!(s.set::<_, _, ()>(&inside[0], "x").is_err());
    assert!(s.get::<_, Option<String>>(&outside[0]).unwrap().is_some());
    let value = inside[0].trim_start_matches('k').as_bytes().to_vec();
    assert_eq!(rc(&mut s, &["HINTED", "n", "GET", &inside[0]]).unwrap(), Value::BulkString(value));
    // CLOSE reports the seeded keys (the proxy flushes a joining shard itself, before seeding).
    assert_eq!(
        rc(&mut s, &["HANDOFF", "CLOSE", "n"]).unwrap(),
        Value::Array(vec![Value::Int(inside.len() as i64), Value::Int(0)])
    );
    let taken = take_all(&mut s, "n", 1000);
    assert_eq!(taken.len(), inside.len());
    assert!(taken.iter().all(|(_, r)| r.is_some()));
    assert_eq!(int(&rc(&mut s, &["HANDOFF", "FINISH", "n"]).unwrap()), inside.len() as i64);
    let keys: Vec<String> = s.keys("k*").unwrap();
    assert_eq!(keys.len(), outside.len(), "the seeded keys left with FINISH");
    // Still guarded (a proxy on the old ring must not write here) until the shard is forgotten.
    assert!(s.get::<_, Option<String>>(&inside[0]).is_err());
    assert_eq!(int(&rc(&mut s, &["HANDOFF", "FORGET", "n"]).unwrap()), 1);
    assert_eq!(s.get::<_, Option<String>>(&inside[0]).unwrap(), None);
    assert_eq!(int(&rc(&mut s, &["HANDOFF", "FORGET", "n"]).unwrap()), 0);
}

#[test]
fn accept_takes_a_draining_shards_keys_unless_a_newer_version_is_here() {
    let leaving = Shard::start(&[]);
    let taking = Shard::start(&[]);
    let (mut l, mut t) = (leaving.client(), taking.client());
    for i in 0..50 {
        l.set::<_, _, ()>(format!("k{i}"), "old").unwrap();
    }
    // DUMP pages through every key with its record.
    let mut records = Vec::new();
    let mut cursor = 0i64;
    loop {
        let Value::Array(reply) = rc(&mut l, &["HANDOFF", "DUMP", &cursor.to_string(), "7"]).unwrap() else { panic!() };
        let Value::Array(items) = &reply[1] else { panic!() };
        assert!(items.len() <= 14);
        for pair in items.chunks(2) {
            let Value::BulkString(record) = &pair[1] else { panic!() };
            records.push(record.clone());
        }
        cursor = int(&reply[0]);
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(records.len(), 50);

    let accept = |t: &mut redis::Connection, records: &[Vec<u8>]| {
        let mut cmd = redis::cmd("RINGCACHE");
        cmd.arg("HANDOFF").arg("ACCEPT").arg("l");
        for r in records {
            cmd.arg(r.as_slice());
        }
        cmd.query::<i64>(t)
    };
    assert_eq!(accept(&mut t, &records).unwrap_err().code(), Some("TRYAGAIN"), "not open: refused");
    rc(&mut t, &["HANDOFF", "OPEN", "l"]).unwrap();
    // Newer here: k0 written directly, k1 written and deleted as a hint (the delete is newer).
    t.set::<_, _, ()>("k0", "new").unwrap();
    rc(&mut t, &["HINTED", "l", "SET", "k1", "new"]).unwrap();
    rc(&mut t, &["HINTED", "l", "DEL", "k1"]).unwrap();
    assert_eq!(accept(&mut t, &records).unwrap(), 48);
    assert_eq!(accept(&mut t, &records).unwrap(), 0, "accepting again takes nothing");
    assert_eq!(t.get::<_, String>("k0").unwrap(), "new");
    assert_eq!(t.get::<_, Option<String>>("k1").unwrap(), None);
    assert_eq!(t.get::<_, String>("k2").unwrap(), "old");
    // The accepted keys are hints for the leaving shard: they go back if it returns.
    assert_eq!(rc(&mut t, &["HANDOFF", "CLOSE", "l"]).unwrap(), Value::Array(vec![Value::Int(49), Value::Int(0)]));
}

#[test]
fn membership_states_and_the_handoff_lock() {
    let shard = Shard::start(&[]);
    let mut s = shard.client();
    let state = |s: &mut redis::Connection| -> String { redis::cmd("RINGCACHE").arg("MEMBER").query(s).unwrap() };
    assert_eq!(state(&mut s), "joining");
    assert_eq!(rc(&mut s, &["MEMBER", "JOINED"]).unwrap(), Value::Okay);
    assert_eq!(state(&mut s), "member");

    // One proxy at a time; the same one may renew; a lease that ran out can be taken over.
    assert_eq!(rc(&mut s, &["MEMBER", "LOCK", "p1", "60000"]).unwrap(), Value::Okay);
    assert_eq!(rc(&mut s, &["MEMBER", "LOCK", "p2", "60000"]).unwrap_err().code(), Some("TRYAGAIN"));
    assert_eq!(rc(&mut s, &["MEMBER", "LOCK", "p1", "1"]).unwrap(), Value::Okay);
    std::thread::sleep(std::time::Duration::from_millis(5)); // the lease of 1 ms runs out
    assert_eq!(rc(&mut s, &["MEMBER", "LOCK", "p2", "60000"]).unwrap(), Value::Okay);
    assert_eq!(rc(&mut s, &["MEMBER", "UNLOCK", "p1"]).unwrap(), Value::Okay, "not the holder: no effect");
    assert_eq!(rc(&mut s, &["MEMBER", "LOCK", "p1", "60000"]).unwrap_err().code(), Some("TRYAGAIN"));
    rc(&mut s, &["MEMBER", "UNLOCK", "p2"]).unwrap();
    assert_eq!(rc(&mut s, &["MEMBER", "LOCK", "p1", "60000"]).unwrap(), Value::Okay);

    // Draining: writes refused, reads served, PING says so; drained: every keyed command refused.
    s.set::<_, _, ()>("k", "v").unwrap();
    rc(&mut s, &["MEMBER", "DRAINING"]).unwrap();
    assert_eq!(s.set::<_, _, ()>("k", "w").unwrap_err().code(), Some("TRYAGAIN"));
    assert_eq!(s.get::<_, String>("k").unwrap(), "v");
    let ping = redis::cmd("PING").query::<String>(&mut s).unwrap_err();
    assert_eq!(ping.code(), Some("DRAINING"), "{ping}");
    rc(&mut s, &["MEMBER", "DRAINED"]).unwrap();
    assert_eq!(s.get::<_, String>("k").unwrap_err().code(), Some("TRYAGAIN"));
    assert!(rc(&mut s, &["MEMBER", "SIDEWAYS"]).is_err());
}

#[test]
fn sigterm_waits_for_a_drain_only_while_a_proxy_is_connected() {
    // Nobody connected: SIGTERM exits at once.
    let mut alone = Shard::start(&["--drain-timeout", "60s"]);
    let started = std::time::Instant::now();
    assert_eq!(alone.stop_with("TERM"), Some(0));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // A connection named ringcache-proxy: the shard waits, leaving (still serving, PING says so), until
    // --drain-timeout.
    let mut shard = Shard::start(&["--drain-timeout", "1s"]);
    let mut proxy = shard.client();
    redis::cmd("CLIENT").arg("SETNAME").arg("ringcache-proxy").query::<()>(&mut proxy).unwrap();
    let started = std::time::Instant::now();
    std::process::Command::new("kill").args(["-TERM", &shard.pid().to_string()]).status().unwrap();
    let mut other = shard.client();
    support::poll_until("the shard leaves", || redis::cmd("PING").query::<String>(&mut other).is_err());
    other.set::<_, _, ()>("k", "v").unwrap();
    assert_eq!(redis::cmd("RINGCACHE").arg("MEMBER").query::<String>(&mut other).unwrap(), "leaving");
    let (code, log) = shard.wait_exit();
    assert_eq!(code, Some(0), "{log}");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(1), "exited after {took:?}, before --drain-timeout");
    assert!(log.contains("no proxy drained this shard"), "{log}");

    // Drained by a proxy: it exits as soon as it is told.
    let mut shard = Shard::start(&["--drain-timeout", "60s"]);
    let mut proxy = shard.client();
    redis::cmd("CLIENT").arg("SETNAME").arg("ringcache-proxy").query::<()>(&mut proxy).unwrap();
    std::process::Command::new("kill").args(["-TERM", &shard.pid().to_string()]).status().unwrap();
    support::poll_until("the shard drains", || redis::cmd("PING").query::<String>(&mut proxy).is_err());
    rc(&mut proxy, &["MEMBER", "DRAINED"]).unwrap();
    let told = std::time::Instant::now();
    let (code, log) = shard.wait_exit();
    assert_eq!(code, Some(0), "{log}");
    assert!(told.elapsed() < std::time::Duration::from_secs(10), "not at once, but after {:?}", told.elapsed());
}

#[test]
fn a_leaving_shard_remembers_what_it_writes_for_the_second_pass() {
    let leaving = Shard::start(&[]);
    let taking = Shard::start(&[]);
    let (mut l, mut t) = (leaving.client(), taking.client());
    for i in 0..20 {
        l.set::<_, _, ()>(format!("k{i}"), "v1").unwrap();
    }
    rc(&mut l, &["MEMBER", "LEAVING"]).unwrap();
    // First pass (as a proxy would): every key, accepted by the stand-in.
    rc(&mut t, &["HANDOFF", "OPEN", "l"]).unwrap();
    let Value::Array(page) = rc(&mut l, &["HANDOFF", "DUMP", "0", "100"]).unwrap() else { panic!() };
    let Value::Array(items) = &page[1] else { panic!() };
    let mut accept = redis::cmd("RINGCACHE");
    accept.arg("HANDOFF").arg("ACCEPT").arg("l");
    for pair in items.chunks(2) {
        let Value::BulkString(record) = &pair[1] else { panic!() };
        accept.arg(record.as_slice());
    }
    assert_eq!(accept.query::<i64>(&mut t).unwrap(), 20);
    // Still serving while leaving: writes land and are remembered; a FLUSHALL could not be, so it is refused.
    l.set::<_, _, ()>("k0", "v2").unwrap();
    l.del::<_, ()>("k1").unwrap();
    l.set::<_, _, ()>("new", "v2").unwrap();
    assert_eq!(redis::cmd("FLUSHALL").query::<()>(&mut l).unwrap_err().code(), Some("TRYAGAIN"));
    // Meanwhile a proxy that already routes around it writes k2 to the stand-in: that is newer than anything
    // the leaving shard sends afterwards.
    rc(&mut t, &["HINTED", "l", "SET", "k2", "hinted"]).unwrap();
    l.set::<_, _, ()>("k2", "v2").unwrap();
    // Draining: writes refused, and the second pass pages through what was written while leaving.
    rc(&mut l, &["MEMBER", "DRAINING"]).unwrap();
    assert_eq!(l.set::<_, _, ()>("k3", "late").unwrap_err().code(), Some("TRYAGAIN"));
    rc(&mut l, &["MEMBER", "LEAVING"]).unwrap(); // a second proxy's LEAVING does not undo DRAINING
    assert_eq!(redis::cmd("RINGCACHE").arg("MEMBER").query::<String>(&mut l).unwrap(), "draining");
    let Value::Array(page) = rc(&mut l, &["HANDOFF", "DIRTY", "0", "100"]).unwrap() else { panic!() };
    assert_eq!(page[0], Value::Int(0));
    let Value::Array(items) = &page[1] else { panic!() };
    let mut delta = redis::cmd("RINGCACHE");
    delta.arg("HANDOFF").arg("ACCEPT-DELTA").arg("l");
    let mut keys = Vec::new();
    for pair in items.chunks(2) {
        let Value::BulkString(key) = &pair[0] else { panic!() };
        keys.push(String::from_utf8(key.clone()).unwrap());
        delta.arg(key.as_slice());
        match &pair[1] {
            Value::BulkString(record) => delta.arg(record.as_slice()),
            Value::Nil => delta.arg(""),
            other => panic!("{other:?}"),
        };
    }
    assert_eq!(keys, ["k0", "k1", "k2", "new"]);
    assert_eq!(delta.query::<i64>(&mut t).unwrap(), 3, "k2 was skipped: the hinted write is newer");
    assert_eq!(t.get::<_, String>("k0").unwrap(), "v2");
    assert_eq!(t.get::<_, Option<String>>("k1").unwrap(), None);
    assert_eq!(t.get::<_, String>("k2").unwrap(), "hinted");
    assert_eq!(t.get::<_, String>("new").unwrap(), "v2");
    assert_eq!(t.get::<_, String>("k4").unwrap(), "v1");
}

#[test]
fn ring_arcs_follow_the_proxys_hash_tag() {
    use ringcache_common::hash::{HashTag, KeyHash, Placement};
    let shard = Shard::start(&[]);
    let mut s = shard.client();
    let keys: Vec<String> = (0..200).map(|i| format!("{{t}}:{i}")).collect();
    for k in &keys {
        s.set::<_, _, ()>(k, 1).unwrap();
    }
    let (after, up_to) = (u32::MAX.to_string(), (u32::MAX / 2).to_string());
    // Keys DUMP finds in the lower half of the circle when the proxy hashes with `token`'s placement.
    let mut dumped = |token: &str| -> usize {
        let Value::Array(reply) = rc(&mut s, &["HANDOFF", "DUMP", "0", "10000", token, &after, &up_to]).unwrap() else {
            panic!()
        };
        let Value::Array(items) = &reply[1] else { panic!() };
        items.len() / 2
    };
    for (token, tag) in [("md5", "{}"), ("md5:", ""), ("md5:[]", "[]")] {
        let placement = Placement::new(KeyHash::Md5, HashTag::parse(tag).unwrap());
        assert_eq!(placement.token(), token);
        let inside = keys.iter().filter(|k| placement.ring_hash(k.as_bytes()) <= u32::MAX / 2).count();
        assert_eq!(dumped(token), inside, "{token}");
        if tag == "{}" {
            assert!(inside == 0 || inside == keys.len(), "one tag, one side");
        } else {
            assert!(inside > 50 && inside < 150, "whole keys spread: {inside}");
        }
    }
    assert!(rc(&mut s, &["HANDOFF", "DUMP", "0", "10", "md5:{{}", &after, &up_to]).is_err());
}
