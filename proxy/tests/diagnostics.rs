//! INFO's layout and the diagnostics commands, on one ringcache shard and through ringcache-proxy over
//! three shards, against redis-server 7: every section and field redis-server prints is printed (values
//! differ), SLOWLOG and LATENCY answer in Redis's shapes, and `--slowlog-log-slower-than`,
//! `--slowlog-max-len` and `--latency-monitor-threshold` act at their edges.
#![allow(clippy::unwrap_used)]

mod support;

use redis::Value;
use support::{start_proxy, start_redis, start_shard, Proc};

fn info(p: &Proc, args: &[&str]) -> String {
    let mut cmd = redis::cmd("INFO");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query(&mut p.client()).unwrap()
}

/// (section titles, field names) of an INFO text; per-command and per-error fields are left out (they
/// depend on what ran).
fn layout(text: &str) -> (Vec<String>, Vec<String>) {
    let mut titles = Vec::new();
    let mut fields = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# ") {
            titles.push(t.to_string());
        } else if let Some((name, _)) = line.split_once(':') {
            if !["cmdstat_", "errorstat_", "latency_percentiles_usec_", "db"].iter().any(|p| name.starts_with(p)) {
                fields.push(name.to_string());
            }
        }
    }
    (titles, fields)
}

fn three_shards_and_proxy(proxy_extra: &[&str]) -> (Vec<Proc>, Proc) {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let proxy = start_proxy(&names, proxy_extra);
    (shards, proxy)
}

#[test]
fn info_prints_every_section_and_field_redis_server_prints() {
    let redis = start_redis();
    let shard = start_shard(&[]);
    let (_shards, proxy) = three_shards_and_proxy(&[]);
    for target in [&redis, &shard, &proxy] {
        // Something in commandstats, errorstats and latencystats.
        let mut c = target.client();
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
        let _: Value = redis::cmd("NOSUCHCOMMAND").query(&mut c).unwrap_or(Value::Nil);
    }
    for args in [&[][..], &["all"], &["everything"], &["default"], &["cpu", "KEYSPACE"], &["commandstats"]] {
        let (redis_titles, redis_fields) = layout(&info(&redis, args));
        for (name, target) in [("shard", &shard), ("proxy", &proxy)] {
            let text = info(target, args);
            let (titles, fields) = layout(&text);
            let titles: Vec<String> = titles.into_iter().filter(|t| t != "Membership").collect();
            assert_eq!(titles, redis_titles, "{name}: INFO {args:?} sections");
            let missing: Vec<&String> = redis_fields.iter().filter(|f| !fields.contains(f)).collect();
            assert!(missing.is_empty(), "{name}: INFO {args:?} lacks {missing:?}");
            // Redis's fields come in Redis's order.
            let ours: Vec<&String> = fields.iter().filter(|f| redis_fields.contains(f)).collect();
            assert_eq!(ours, redis_fields.iter().collect::<Vec<_>>(), "{name}: INFO {args:?} order");
        }
    }
    for (name, target) in [("shard", &shard), ("proxy", &proxy)] {
        let all = info(target, &["all"]);
        for needle in ["cmdstat_set:calls=", "errorstat_ERR:count=", "latency_percentiles_usec_set:p50=", "db0:keys="] {
            assert!(all.contains(needle), "{name}: no {needle} in INFO all:\n{all}");
        }
    }
    // The proxy sums its shards' keys.
    let mut c = proxy.client();
    for i in 0..30 {
        let _: () = redis::cmd("SET").arg(format!("key{i}")).arg(i).query(&mut c).unwrap();
    }
    assert!(info(&proxy, &["keyspace"]).contains("db0:keys=31,"), "{}", info(&proxy, &["keyspace"]));
}

fn slowlog_len(p: &Proc) -> i64 {
    redis::cmd("SLOWLOG").arg("LEN").query(&mut p.client()).unwrap()
}

#[test]
fn slowlog_and_latency_flags_at_their_edges() {
    // 0 logs every command; the log keeps --slowlog-max-len entries, newest first.
    let every = start_shard(&["--slowlog-log-slower-than", "0", "--slowlog-max-len", "3"]);
    let mut c = every.client();
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("tester").query(&mut c).unwrap();
    for i in 0..5 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut c).unwrap();
    }
    let entries: Vec<Value> = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(&mut c).unwrap();
    assert_eq!(entries.len(), 3);
    let Value::Array(newest) = &entries[0] else { panic!("{entries:?}") };
    assert_eq!(newest.len(), 6);
    assert_eq!(
        newest[3],
        Value::Array(vec![
            Value::BulkString(b"SET".to_vec()),
            Value::BulkString(b"k4".to_vec()),
            Value::BulkString(b"v".to_vec())
        ])
    );
    assert_eq!(newest[5], Value::BulkString(b"tester".to_vec()));
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    // As in Redis, a command is logged after it ran: the emptied log holds the RESET.
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c).unwrap();
    assert_eq!(len, 1);

    // A negative threshold logs nothing; the default (10 ms) logs none of these quick commands.
    for flags in [&["--slowlog-log-slower-than", "-1"][..], &[]] {
        let shard = start_shard(flags);
        let mut c = shard.client();
        for _ in 0..10 {
            let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
        }
        assert_eq!(slowlog_len(&shard), 0, "{flags:?}");
    }

    // The latency monitor: off by default (LATEST is empty, DOCTOR says so); a 1 ms threshold records a
    // DEBUG-free slow command: a 2,000,000-element SUNIONSTORE.
    let shard = start_shard(&["--latency-monitor-threshold", "1"]);
    let mut c = shard.client();
    let members: Vec<String> = (0..200_000).map(|i| i.to_string()).collect();
    let _: () = redis::cmd("SADD").arg("big").arg(&members).query(&mut c).unwrap();
    let _: () = redis::cmd("SUNIONSTORE").arg("copy").arg("big").query(&mut c).unwrap();
    let latest: Vec<Vec<Value>> = redis::cmd("LATENCY").arg("LATEST").query(&mut c).unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert_eq!(latest[0][0], Value::BulkString(b"command".to_vec()));
    let history: Vec<Vec<i64>> = redis::cmd("LATENCY").arg("HISTORY").arg("command").query(&mut c).unwrap();
    assert!(!history.is_empty() && history[0][1] >= 1, "{history:?}");
    let reset: i64 = redis::cmd("LATENCY").arg("RESET").query(&mut c).unwrap();
    assert_eq!(reset, 1);
    let off = start_shard(&[]);
    let latest: Vec<Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut off.client()).unwrap();
    assert!(latest.is_empty());
    let doctor: String = redis::cmd("LATENCY").arg("DOCTOR").query(&mut off.client()).unwrap();
    assert!(doctor.starts_with("I'm sorry, Dave, I can't do that. Latency monitoring is disabled"), "{doctor}");

    // CONFIG GET reports the three settings.
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("slowlog-*").query(&mut every.client()).unwrap();
    assert_eq!(config, ["slowlog-log-slower-than", "0", "slowlog-max-len", "3"]);
}

/// The proxy's own slow log (client-visible durations, the command's name only), and the replies'
/// shapes against redis-server's.
#[test]
fn proxy_slowlog_and_latency_reply_as_redis() {
    let redis = start_redis();
    let (_shards, proxy) = three_shards_and_proxy(&["--slowlog-log-slower-than", "0"]);
    let shard = start_shard(&[]);
    let mut c = proxy.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let entries: Vec<Vec<Value>> = redis::cmd("SLOWLOG").arg("GET").arg(1).query(&mut c).unwrap();
    assert_eq!(entries[0][3], Value::Array(vec![Value::BulkString(b"set".to_vec())]), "{entries:?}");
    for request in [
        &["SLOWLOG", "GET", "-2"][..],
        &["SLOWLOG", "GET", "x"],
        &["SLOWLOG", "NOPE"],
        &["LATENCY", "NOPE"],
        &["LATENCY", "HISTORY"],
        &["LATENCY", "HISTORY", "command"],
        &["LATENCY", "RESET", "nothing"],
    ] {
        let mut cmd = redis::cmd(request[0]);
        for a in &request[1..] {
            cmd.arg(*a);
        }
        let expected: Value = redis::ConnectionLike::req_command(&mut redis.client(), &cmd).unwrap();
        for target in [&proxy, &shard] {
            let got: Value = redis::ConnectionLike::req_command(&mut target.client(), &cmd).unwrap();
            assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{request:?}");
        }
    }
    let histogram: Value = redis::cmd("LATENCY").arg("HISTOGRAM").arg("set").query(&mut c).unwrap();
    let Value::Array(items) = histogram else { panic!("{histogram:?}") };
    assert_eq!(items[0], Value::BulkString(b"set".to_vec()));
}
