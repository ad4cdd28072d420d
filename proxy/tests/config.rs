//! CONFIG through the proxy: it answers with its own settings and changes its live ones, never forwarding
//! to the shards; its errors are Redis's; CONFIG REWRITE writes its `--config` file.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::{free_port, poll_until, start_proxy, start_redis, start_shard, Proc, RawClient};

/// A proxy whose shards come from its `--config` file only.
fn start_proxy_from_file(path: &str) -> Proc {
    let port = free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache-proxy"));
    cmd.args(["--port", &port.to_string(), "--metrics-port", "0", "--log", "warn", "--config", path]);
    Proc::spawn("ringcache-proxy", cmd, port)
}

fn config_get(con: &mut redis::Connection, param: &str) -> Vec<String> {
    redis::cmd("CONFIG").arg("GET").arg(param).query(con).unwrap()
}

fn config_error(con: &mut redis::Connection, args: &[&str]) -> String {
    let err = redis::cmd("CONFIG").arg(args).query::<()>(con).unwrap_err();
    format!("{} {}", err.code().unwrap_or("?"), err.detail().unwrap_or(""))
}

#[test]
fn the_proxy_answers_config_itself() {
    let shard = start_shard(&["--slowlog-max-len", "99"]);
    let proxy = start_proxy(&[("s1", shard.addr())], &[]);
    let mut con = proxy.client();
    assert_eq!(config_get(&mut con, "slowlog-max-len"), ["slowlog-max-len", "128"]);
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "slowlog-max-len", "5", "latency-monitor-threshold", "7"])
        .query(&mut con)
        .unwrap();
    assert_eq!(config_get(&mut con, "slowlog-max-len"), ["slowlog-max-len", "5"]);
    assert_eq!(config_get(&mut con, "latency-monitor-threshold"), ["latency-monitor-threshold", "7"]);
    // The shard kept its own.
    assert_eq!(config_get(&mut shard.client(), "slowlog-max-len"), ["slowlog-max-len", "99"]);
    // The proxy's slow log obeys the new settings.
    let _: () = redis::cmd("CONFIG").arg(&["SET", "slowlog-log-slower-than", "0"]).query(&mut con).unwrap();
    for _ in 0..10 {
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    }
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut con).unwrap();
    assert_eq!(len, 5);
    // Redis's errors, the same texts as redis-server's.
    let reference = start_redis();
    let mut redis_con = reference.client();
    for args in [
        &["SET", "slowlog-max-len", "x"][..],
        &["SET", "timeout", "-1"],
        &["SET", "databases", "4"],
        &["SET", "no-such-thing", "1"],
        &["SET", "timeout", "1", "timeout", "2"],
        &["REWRITE"],
        &["SET", "loglevel", "loud"],
    ] {
        assert_eq!(config_error(&mut con, args), config_error(&mut redis_con, args), "{args:?}");
    }
    // What the proxy cannot change live.
    assert_eq!(
        config_error(&mut con, &["SET", "maxmemory", "1mb"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - can't set immutable config"
    );
    // Globs and several patterns.
    let all: Vec<String> = redis::cmd("CONFIG").arg(&["GET", "slowlog-*", "timeout"]).query(&mut con).unwrap();
    let mut sorted: Vec<(String, String)> = all.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        [("slowlog-log-slower-than", "0"), ("slowlog-max-len", "5"), ("timeout", "0")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[test]
fn timeout_applies_to_new_connections() {
    let shard = start_shard(&[]);
    let proxy = start_proxy(&[("s1", shard.addr())], &[]);
    let mut con = proxy.client();
    let _: () = redis::cmd("CONFIG").arg(&["SET", "timeout", "1"]).query(&mut con).unwrap();
    let mut idle = RawClient::connect(proxy.port);
    let mut buf = [0u8; 16];
    use std::io::Read;
    idle.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Read returns 0 (closed) once the idle timeout passes.
    poll_until("the idle client is closed", Duration::from_secs(10), || matches!(idle.s.read(&mut buf), Ok(0)));
}

#[test]
fn rewrite_keeps_the_file_and_its_shards() {
    let shard = start_shard(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, format!("# the pool\nshards = \"s1={}\"\nslowlog_max_len = 10 # short\n", shard.addr()))
        .unwrap();
    let path_text = path.to_str().unwrap();
    {
        let proxy = start_proxy_from_file(path_text);
        let mut con = proxy.client();
        let _: () =
            redis::cmd("CONFIG").arg(&["SET", "slowlog-max-len", "20", "timeout", "30"]).query(&mut con).unwrap();
        let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
        let _: () = redis::cmd("SET").arg("still").arg("served").query(&mut con).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!("# the pool\nshards = \"s1={}\"\nslowlog_max_len = 20 # short\nidle_timeout = \"30s\"\n", shard.addr())
    );
    let proxy = start_proxy_from_file(path_text);
    let mut con = proxy.client();
    assert_eq!(config_get(&mut con, "slowlog-max-len"), ["slowlog-max-len", "20"]);
    assert_eq!(config_get(&mut con, "timeout"), ["timeout", "30"]);
    let v: String = redis::cmd("GET").arg("still").query(&mut con).unwrap();
    assert_eq!(v, "served");
}

#[test]
fn memory_usage_goes_to_the_keys_shard() {
    let shards: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    let names: Vec<(&str, String)> = ["s1", "s2", "s3"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let proxy = start_proxy(&names, &[]);
    let mut con = proxy.client();
    let mut direct: Vec<redis::Connection> = shards.iter().map(Proc::client).collect();
    for i in 0..30 {
        let key = format!("key:{i}");
        let _: () = redis::cmd("SET").arg(&key).arg("v".repeat(i * 10)).query(&mut con).unwrap();
        let through: i64 = redis::cmd("MEMORY").arg(&["USAGE", &key, "SAMPLES", "5"]).query(&mut con).unwrap();
        let on_shards: Vec<Option<i64>> =
            direct.iter_mut().map(|c| redis::cmd("MEMORY").arg(&["USAGE", &key]).query(c).unwrap()).collect();
        assert_eq!(on_shards.iter().flatten().copied().collect::<Vec<_>>(), [through], "{key}");
    }
    let missing: Option<i64> = redis::cmd("MEMORY").arg(&["USAGE", "nope"]).query(&mut con).unwrap();
    assert_eq!(missing, None);
    let help: Vec<String> = redis::cmd("MEMORY").arg("HELP").query(&mut con).unwrap();
    let shard_help: Vec<String> = redis::cmd("MEMORY").arg("HELP").query(&mut direct[0]).unwrap();
    assert_eq!(help, shard_help);
    assert!(config_error_of(&mut con, "MEMORY", &["STATS"]).contains("per shard"));
    assert_eq!(
        config_error_of(&mut con, "MEMORY", &["USAGE"]),
        "ERR wrong number of arguments for 'memory|usage' command"
    );
}

fn config_error_of(con: &mut redis::Connection, cmd: &str, args: &[&str]) -> String {
    let err = redis::cmd(cmd).arg(args).query::<()>(con).unwrap_err();
    format!("{} {}", err.code().unwrap_or("?"), err.detail().unwrap_or(""))
}
