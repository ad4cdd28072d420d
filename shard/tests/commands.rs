//! Table-driven command tests against a real shard: each row is a request and the exact RESP reply bytes,
//! so reply types and error texts are checked to the byte. Rows run in order on one connection.
#![allow(clippy::unwrap_used)]

mod support;

use support::{resp, Shard};

fn run_table(shard: &Shard, rows: &[(&[&str], &str)]) {
    let mut raw = shard.raw();
    for (args, expected) in rows {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        raw.expect(&resp(&args), expected.as_bytes());
    }
}

#[test]
fn strings() {
    let shard = Shard::start(&[]);
    run_table(
        &shard,
        &[
            (&["GET", "s"], "$-1\r\n"),
            (&["SET", "s", "hello"], "+OK\r\n"),
            (&["GET", "s"], "$5\r\nhello\r\n"),
            (&["SET", "s", "x", "NX"], "$-1\r\n"),
            (&["SET", "s", "world", "XX", "GET"], "$5\r\nhello\r\n"),
            (&["SET", "nx", "v", "XX"], "$-1\r\n"),
            (&["SET", "s", "v", "NX", "XX"], "-ERR syntax error\r\n"),
            (&["SET", "s", "v", "EX", "10", "PX", "100"], "-ERR syntax error\r\n"),
            (&["SET", "s", "v", "EX", "0"], "-ERR invalid expire time in 'set' command\r\n"),
            (&["SET", "s", "v", "EX", "abc"], "-ERR value is not an integer or out of range\r\n"),
            (&["SET", "s", "v", "BOGUS"], "-ERR syntax error\r\n"),
            (&["SET", "t", "v", "EX", "100"], "+OK\r\n"),
            (&["TTL", "t"], ":100\r\n"),
            (&["SET", "t", "w", "KEEPTTL"], "+OK\r\n"),
            (&["TTL", "t"], ":100\r\n"),
            (&["SET", "t", "w"], "+OK\r\n"),
            (&["TTL", "t"], ":-1\r\n"),
            (&["SETNX", "s", "v"], ":0\r\n"),
            (&["SETNX", "fresh", "v"], ":1\r\n"),
            (&["SETEX", "e", "100", "v"], "+OK\r\n"),
            (&["SETEX", "e", "-1", "v"], "-ERR invalid expire time in 'setex' command\r\n"),
            (&["PSETEX", "e", "100000", "v"], "+OK\r\n"),
            (&["TTL", "e"], ":100\r\n"), // PSETEX 100000 ms, rounded to seconds
            (&["GETSET", "s", "new"], "$5\r\nworld\r\n"),
            (&["GETDEL", "s"], "$3\r\nnew\r\n"),
            (&["GETDEL", "s"], "$-1\r\n"),
            (&["SET", "g", "v"], "+OK\r\n"),
            (&["GETEX", "g", "EX", "50"], "$1\r\nv\r\n"),
            (&["TTL", "g"], ":50\r\n"),
            (&["GETEX", "g", "PERSIST"], "$1\r\nv\r\n"),
            (&["TTL", "g"], ":-1\r\n"),
            (&["GETEX", "g", "EX"], "-ERR syntax error\r\n"),
            (&["APPEND", "a", "foo"], ":3\r\n"),
            (&["APPEND", "a", "bar"], ":6\r\n"),
            (&["STRLEN", "a"], ":6\r\n"),
            (&["STRLEN", "missing"], ":0\r\n"),
            (&["GETRANGE", "a", "1", "3"], "$3\r\noob\r\n"),
            (&["GETRANGE", "a", "-3", "-1"], "$3\r\nbar\r\n"),
            (&["GETRANGE", "a", "5", "1"], "$0\r\n\r\n"),
            (&["GETRANGE", "missing", "0", "-1"], "$0\r\n\r\n"),
            (&["SETRANGE", "a", "3", "BAZ"], ":6\r\n"),
            (&["GET", "a"], "$6\r\nfooBAZ\r\n"),
            (&["SETRANGE", "r", "2", "x"], ":3\r\n"),
            (&["GET", "r"], "$3\r\n\0\0x\r\n"),
            (&["SETRANGE", "r", "-1", "x"], "-ERR offset is out of range\r\n"),
            (&["SETRANGE", "r", "0", ""], ":3\r\n"),
            (&["SETRANGE", "r", "536870912", "x"], "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n"),
            // 512 MiB is a legal size but more than the default 256mb maxmemory.
            (&["SETRANGE", "r", "536870911", "x"], "-OOM command not allowed when used memory > 'maxmemory'.\r\n"),
            (&["GET", "r"], "$3\r\n\0\0x\r\n"),
            (&["INCR", "n"], ":1\r\n"),
            (&["INCRBY", "n", "10"], ":11\r\n"),
            (&["DECR", "n"], ":10\r\n"),
            (&["DECRBY", "n", "20"], ":-10\r\n"),
            (&["INCRBY", "n", "x"], "-ERR value is not an integer or out of range\r\n"),
            (&["INCR", "a"], "-ERR value is not an integer or out of range\r\n"),
            (&["SET", "big", "9223372036854775807"], "+OK\r\n"),
            (&["INCR", "big"], "-ERR increment or decrement would overflow\r\n"),
            (&["DECRBY", "n", "-9223372036854775808"], "-ERR decrement would overflow\r\n"),
            (&["INCRBYFLOAT", "f", "1.5"], "$3\r\n1.5\r\n"),
            (&["INCRBYFLOAT", "f", "2"], "$3\r\n3.5\r\n"),
            (&["INCRBYFLOAT", "f", "x"], "-ERR value is not a valid float\r\n"),
            (&["INCRBYFLOAT", "f", "inf"], "-ERR increment would produce NaN or Infinity\r\n"),
            (&["MSET", "m1", "a", "m2", "b"], "+OK\r\n"),
            (&["MSET", "m1", "a", "m2"], "-ERR wrong number of arguments for 'mset' command\r\n"),
            (&["MGET", "m1", "m2", "nope"], "*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n"),
            (&["MSETNX", "m1", "x", "m3", "y"], ":0\r\n"),
            (&["GET", "m3"], "$-1\r\n"),
            (&["MSETNX", "m3", "x", "m4", "y"], ":1\r\n"),
            (&["MGET", "m3", "m4"], "*2\r\n$1\r\nx\r\n$1\r\ny\r\n"),
            (&["GET"], "-ERR wrong number of arguments for 'get' command\r\n"),
            (&["SET", "k"], "-ERR wrong number of arguments for 'set' command\r\n"),
        ],
    );
}

#[test]
fn keys_and_ttls() {
    let shard = Shard::start(&[]);
    run_table(
        &shard,
        &[
            (&["MSET", "a", "1", "b", "2", "c", "3"], "+OK\r\n"),
            (&["EXISTS", "a", "b", "zz", "a"], ":3\r\n"),
            (&["TOUCH", "a", "zz"], ":1\r\n"),
            (&["DEL", "a", "zz"], ":1\r\n"),
            (&["UNLINK", "b", "b"], ":1\r\n"),
            (&["TYPE", "c"], "+string\r\n"),
            (&["TYPE", "zz"], "+none\r\n"),
            (&["TTL", "zz"], ":-2\r\n"),
            (&["PTTL", "c"], ":-1\r\n"),
            (&["EXPIRE", "c", "100"], ":1\r\n"),
            (&["TTL", "c"], ":100\r\n"),
            (&["EXPIRE", "c", "50", "NX"], ":0\r\n"),
            (&["EXPIRE", "c", "50", "GT"], ":0\r\n"),
            (&["EXPIRE", "c", "50", "LT"], ":1\r\n"),
            (&["EXPIRE", "c", "200", "XX"], ":1\r\n"),
            (
                &["EXPIRE", "c", "10", "NX", "XX"],
                "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
            ),
            (&["EXPIRE", "c", "10", "GT", "LT"], "-ERR GT and LT options at the same time are not compatible\r\n"),
            (&["EXPIRE", "c", "10", "FOO"], "-ERR Unsupported option FOO\r\n"),
            (&["EXPIRE", "c", "x"], "-ERR value is not an integer or out of range\r\n"),
            (&["EXPIRE", "c", "9223372036854775807"], "-ERR invalid expire time in 'expire' command\r\n"),
            (&["EXPIRE", "zz", "10"], ":0\r\n"),
            (&["PEXPIREAT", "c", "99999999999999"], ":1\r\n"),
            (&["PEXPIRETIME", "c"], ":99999999999999\r\n"),
            (&["EXPIRETIME", "c"], ":100000000000\r\n"),
            (&["EXPIREAT", "c", "99999999998"], ":1\r\n"),
            (&["EXPIRETIME", "c"], ":99999999998\r\n"),
            (&["EXPIRETIME", "zz"], ":-2\r\n"),
            (&["PERSIST", "c"], ":1\r\n"),
            (&["PERSIST", "c"], ":0\r\n"),
            (&["TTL", "c"], ":-1\r\n"),
            (&["EXPIRE", "c", "-1"], ":1\r\n"),
            (&["EXISTS", "c"], ":0\r\n"),
            (&["SET", "src", "v", "EX", "100"], "+OK\r\n"),
            (&["RENAME", "src", "dst"], "+OK\r\n"),
            (&["GET", "dst"], "$1\r\nv\r\n"),
            (&["TTL", "dst"], ":100\r\n"),
            (&["EXISTS", "src"], ":0\r\n"),
            (&["RENAME", "src", "dst"], "-ERR no such key\r\n"),
            (&["FLUSHALL"], "+OK\r\n"),
            (&["DBSIZE"], ":0\r\n"),
            (&["RANDOMKEY"], "$-1\r\n"),
            (&["SET", "only", "1"], "+OK\r\n"),
            (&["RANDOMKEY"], "$4\r\nonly\r\n"),
            (&["KEYS", "on*"], "*1\r\n$4\r\nonly\r\n"),
            (&["KEYS", "x*"], "*0\r\n"),
            (&["FLUSHDB", "ASYNC"], "+OK\r\n"),
            (&["FLUSHDB", "LATER"], "-ERR syntax error\r\n"),
            (&["SCAN", "abc"], "-ERR invalid cursor\r\n"),
            (&["SCAN", "0", "COUNT", "0"], "-ERR syntax error\r\n"),
            (&["SCAN", "0"], "*2\r\n$1\r\n0\r\n*0\r\n"),
        ],
    );
}

#[test]
fn scan_visits_every_key_once_per_pass() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    for i in 0..1000 {
        let _: () = redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(&mut con).unwrap();
    }
    let _: () = redis::cmd("SET").arg("other").arg(1).query(&mut con).unwrap();
    let mut cursor = 0u64;
    let mut seen = std::collections::HashSet::new();
    let mut rounds = 0;
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg("key:*").arg("COUNT").arg(50).query(&mut con).unwrap();
        for k in keys {
            assert!(k.starts_with("key:"));
            assert!(seen.insert(k), "a key was returned twice");
        }
        rounds += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 1000);
    assert!(rounds > 10, "COUNT bounds the work per call");
    let n: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 1001);
    let keys: Vec<String> = redis::cmd("KEYS").arg("key:99*").query(&mut con).unwrap();
    assert_eq!(keys.len(), 11);
}

#[test]
fn connection_and_server_commands() {
    let shard = Shard::start(&[]);
    run_table(
        &shard,
        &[
            (&["PING"], "+PONG\r\n"),
            (&["PING", "hi"], "$2\r\nhi\r\n"),
            (&["PING", "a", "b"], "-ERR wrong number of arguments for 'ping' command\r\n"),
            (&["ECHO", "x y"], "$3\r\nx y\r\n"),
            (&["SELECT", "0"], "+OK\r\n"),
            (&["SELECT", "1"], "-ERR DB index is out of range\r\n"),
            (&["SELECT", "x"], "-ERR value is not an integer or out of range\r\n"),
            (&["HELLO", "4"], "-NOPROTO unsupported protocol version\r\n"),
            (&["HELLO", "1"], "-NOPROTO unsupported protocol version\r\n"),
            (&["HELLO", "x"], "-ERR Protocol version is not an integer or out of range\r\n"),
            (&["AUTH", "pw"], "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"),
            (&["CLIENT", "SETNAME", "app"], "+OK\r\n"),
            (&["CLIENT", "GETNAME"], "$3\r\napp\r\n"),
            (&["CLIENT", "SETNAME", "a b"], "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"),
            (&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], "+OK\r\n"),
            (&["CLIENT", "SETINFO", "LIB-VER", "5.0.0"], "+OK\r\n"),
            (&["CLIENT", "SETINFO", "COLOR", "red"], "-ERR Unrecognized option 'COLOR'\r\n"),
            (&["CLIENT", "NOPE"], "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"),
            (&["CLIENT", "SETNAME"], "-ERR wrong number of arguments for 'client|setname' command\r\n"),
            (&["CONFIG", "GET", "save"], "*2\r\n$4\r\nsave\r\n$4\r\n10 1\r\n"),
            (&["CONFIG", "GET", "appendonly"], "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"),
            (&["CONFIG", "GET", "maxmemory-policy"], "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"),
            (&["CONFIG", "FOO"], "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n"),
            (&["COMMAND", "NOPE"], "-ERR unknown subcommand 'NOPE'. Try COMMAND HELP.\r\n"),
            (&["FOO", "a", "b"], "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"),
            (&["RESET"], "+RESET\r\n"),
            (&["CLIENT", "GETNAME"], "$-1\r\n"),
        ],
    );
    let mut con = shard.client();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    assert!(list.contains(&format!("id={id} ")), "{list}");
    let hello: Vec<redis::Value> = redis::cmd("HELLO").arg(2).query(&mut con).unwrap();
    assert_eq!(hello.len(), 14);
    let count: usize = redis::cmd("COMMAND").arg("COUNT").query(&mut con).unwrap();
    assert!(count >= 80);
    let all: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut con).unwrap();
    assert_eq!(all.len(), count);
    let docs: Vec<redis::Value> = redis::cmd("COMMAND").arg("DOCS").arg("get").query(&mut con).unwrap();
    assert_eq!(docs.len(), 2);
    let cfg: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("*").query(&mut con).unwrap();
    assert!(cfg.chunks(2).any(|kv| kv[0] == "maxmemory"));
    let time: Vec<String> = redis::cmd("TIME").query(&mut con).unwrap();
    assert!(time[0].parse::<u64>().unwrap() > 1_700_000_000);
    let info: String = redis::cmd("INFO").query(&mut con).unwrap();
    for field in [
        "redis_version:",
        "ringcache_version:",
        "connected_clients:",
        "used_memory:",
        "maxmemory:",
        "maxmemory_policy:",
        "keyspace_hits:",
        "keyspace_misses:",
        "expired_keys:",
        "evicted_keys:",
        "total_commands_processed:",
        "total_connections_received:",
        "# Keyspace",
    ] {
        assert!(info.contains(field), "INFO lacks {field}: {info}");
    }
    let server_only: String = redis::cmd("INFO").arg("server").query(&mut con).unwrap();
    assert!(server_only.starts_with("# Server\r\n") && !server_only.contains("# Memory"));
}

#[test]
fn quit_replies_then_closes() {
    let shard = Shard::start(&[]);
    let mut raw = shard.raw();
    raw.expect(b"PING\r\nQUIT\r\nPING\r\n", b"+PONG\r\n+OK\r\n");
    assert!(raw.is_closed());
}

#[test]
fn keyspace_hits_and_misses_are_counted() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    let hits = shard.info_field(&mut con, "keyspace_hits");
    let misses = shard.info_field(&mut con, "keyspace_misses");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("nope").query(&mut con).unwrap();
    assert_eq!(shard.info_field(&mut con, "keyspace_hits") - hits, 2);
    assert_eq!(shard.info_field(&mut con, "keyspace_misses") - misses, 1);
}

/// `INFO commandstats` (asked for by name or with ALL, never by default) counts calls per command in Redis's
/// format, as redis_exporter reads it.
#[test]
fn info_commandstats_counts_calls() {
    let shard = Shard::start(&[]);
    let mut con = shard.client();
    for i in 0..5 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut con).unwrap();
    }
    let _: Option<String> = redis::cmd("GET").arg("k1").query(&mut con).unwrap();
    let stats: String = redis::cmd("INFO").arg("commandstats").query(&mut con).unwrap();
    assert!(stats.starts_with("# Commandstats\r\n"), "{stats}");
    let set_line = stats.lines().find(|l| l.starts_with("cmdstat_set:")).unwrap_or_else(|| panic!("{stats}"));
    assert!(set_line.starts_with("cmdstat_set:calls=5,usec="), "{set_line}");
    assert!(stats.lines().any(|l| l.starts_with("cmdstat_get:calls=1,")), "{stats}");
    let all: String = redis::cmd("INFO").arg("all").query(&mut con).unwrap();
    assert!(all.contains("# Commandstats\r\ncmdstat_"), "INFO ALL includes it");
    let default: String = redis::cmd("INFO").query(&mut con).unwrap();
    assert!(!default.contains("Commandstats"), "plain INFO leaves it out, as Redis does");
}
