//! ACL users, differentially: the same ACL SETUSER / AUTH / command sequence is sent to a real redis-server 7,
//! to a ringcache-shard and to a ringcache-proxy over three shards, and the replies are compared byte for
//! byte (NOPERM texts, ACL LIST / GETUSER, ACL LOG's reason, context, object and username). Also: an
//! `--aclfile` loaded at start, ACL SAVE then LOAD, HELLO 3 AUTH, a proxy that authenticates to shards as
//! its own user, and redis-py raising `NoPermissionError`.
//!
//! The installed redis-server is 7.0, whose NOPERM texts Redis 7.2 reworded; Ringcache answers 7.2's
//! ("User alice has no permissions to run the 'get' command", "No permissions to access a key"), so
//! Ringcache's replies are rewritten to 7.0's words before the comparison ([`as_redis_7_0`]), and nothing
//! else is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::vec_init_then_push)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn send(c: &mut RawClient, args: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.s.write_all(&ringcache_testkit::resp(&args)).unwrap();
    c.read_reply(deadline())
}

/// Redis 7.2's NOPERM and ACL DRYRUN texts in Redis 7.0's words (the only difference allowed).
fn as_redis_7_0(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let reword = |s: &str| -> String {
        let mut s = s.to_string();
        if let Some(rest) = s.strip_prefix("-NOPERM User ") {
            if let Some(at) = rest.find(" has no permissions to run") {
                s = format!("-NOPERM this user{}", &rest[at..]);
            }
        }
        if let Some(rest) = s.strip_prefix("User ") {
            if let Some(at) = rest.find(" has no permissions to run") {
                s = format!("This user{}", &rest[at..]);
            }
        }
        s.replace(
            "-NOPERM No permissions to access a key",
            "-NOPERM this user has no permissions to access one of the keys used as arguments",
        )
        .replace(
            "-NOPERM No permissions to access a channel",
            "-NOPERM this user has no permissions to access one of the channels used as arguments",
        )
        .replace("No permissions to access the '", "This user has no permissions to access the '")
    };
    if let Some(body) = text.strip_prefix('$').filter(|b| !b.starts_with('-')) {
        if let Some((_, content)) = body.split_once("\r\n") {
            let content = reword(content.trim_end_matches("\r\n"));
            return format!("${}\r\n{content}\r\n", content.len()).into_bytes();
        }
    }
    reword(&text).into_bytes()
}

/// One target's connections: `admin` (the default user) and two for the users under test.
struct Target {
    name: &'static str,
    port: u16,
    admin: RawClient,
    u: RawClient,
    v: RawClient,
}

impl Target {
    fn new(name: &'static str, port: u16) -> Target {
        Target { name, port, admin: RawClient::connect(port), u: RawClient::connect(port), v: RawClient::connect(port) }
    }

    fn client(&mut self, which: &str) -> &mut RawClient {
        match which {
            "admin" => &mut self.admin,
            "u" => &mut self.u,
            _ => &mut self.v,
        }
    }

    /// ACL LOG's entries as (count, reason, context, object, username), newest first.
    fn acl_log(&self) -> Vec<(i64, String, String, String, String)> {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap();
        let entries: Vec<std::collections::HashMap<String, redis::Value>> =
            redis::cmd("ACL").arg("LOG").arg(100).query(&mut c).unwrap();
        let text = |e: &std::collections::HashMap<String, redis::Value>, k: &str| match &e[k] {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        };
        entries
            .iter()
            .map(|e| {
                let count = match e["count"] {
                    redis::Value::Int(n) => n,
                    _ => -1,
                };
                (count, text(e, "reason"), text(e, "context"), text(e, "object"), text(e, "username"))
            })
            .collect()
    }
}

/// (connection, request). A request marked `*` is only checked to succeed everywhere; one marked `=` is
/// ACL LIST or GETUSER of users whose command rules redis-server 7.0 rewords from its bitmap (Redis 7.2, and
/// Ringcache, print them as given): the shard and the proxy must agree, and the words are checked in
/// [`rules_are_printed_as_given`].
const STEPS: &[(&str, &str)] = &[
    ("admin", "ACL SETUSER carol on nopass ~* +@read -get"),
    ("admin", "ACL SETUSER dave on >dpw %W~w:* %R~r:* &ch +@string +client|id"),
    ("admin", "ACL LIST"),
    ("admin", "ACL GETUSER carol"),
    ("admin", "ACL GETUSER dave"),
    ("admin", "ACL SETUSER alice on >pw ~foo:* %R~ro:* &news.* +@read +@write -del +client|id +publish"),
    ("admin", "ACL SETUSER alice +@hash -hgetall +@transaction"),
    ("admin", "ACL SETUSER bob on nopass allkeys allchannels +@all -@dangerous -flushall"),
    ("admin", "=ACL LIST"),
    ("admin", "=ACL GETUSER alice"),
    ("admin", "=ACL GETUSER bob"),
    ("admin", "ACL GETUSER default"),
    ("admin", "ACL GETUSER nobody"),
    ("admin", "ACL USERS"),
    ("admin", "ACL CAT"),
    ("admin", "ACL SETUSER x +nosuch"),
    ("admin", "ACL SETUSER x +@nosuch"),
    ("admin", "ACL SETUSER x allkeys ~a"),
    ("admin", "ACL SETUSER x allchannels &a"),
    ("admin", "ACL SETUSER x <nope"),
    ("admin", "ACL SETUSER x #abc"),
    ("admin", "ACL SETUSER x %X~a"),
    ("admin", "ACL SETUSER x bogus"),
    ("admin", "ACL DELUSER default"),
    ("admin", "ACL DELUSER x nobody"),
    ("admin", "ACL WHOAMI"),
    ("admin", "ACL CAT nosuch"),
    ("admin", "ACL SAVE"),
    ("u", "AUTH alice wrong"),
    ("u", "AUTH nobody pw"),
    ("u", "AUTH alice pw"),
    ("u", "ACL WHOAMI"),
    ("u", "SET foo:1 v"),
    ("u", "GET foo:1"),
    ("u", "SET bar v"),
    ("u", "GET ro:1"),
    ("u", "SET ro:1 x"),
    ("u", "DEL foo:1"),
    ("u", "CLIENT GETNAME"),
    ("u", "PUBLISH news.1 hi"),
    ("u", "PUBLISH other hi"),
    ("u", "MSET foo:a 1 bar 2"),
    ("u", "MSET foo:a 1 foo:b 2"),
    ("u", "MGET foo:a ro:b"),
    ("u", "HSET foo:h f v"),
    ("u", "HGETALL foo:h"),
    ("u", "HGET foo:h f"),
    ("u", "FLUSHALL"),
    ("u", "MULTI"),
    ("u", "SET foo:2 x"),
    ("u", "SET bar 1"),
    ("u", "EXEC"),
    ("v", "HELLO 3 AUTH alice wrong"),
    ("v", "*HELLO 3 AUTH alice pw"),
    ("v", "GET foo:1"),
    ("v", "SET ro:x 1"),
    ("v", "AUTH dave dpw"),
    ("v", "SET w:1 x"),
    ("v", "GET w:1"),
    ("v", "GET r:1"),
    ("v", "APPEND r:1 x"),
    ("v", "PUBLISH ch m"),
    ("admin", "ACL DRYRUN alice get foo:1"),
    ("admin", "ACL DRYRUN alice set bar 1"),
    ("admin", "ACL DRYRUN alice flushall"),
    ("admin", "ACL DRYRUN nobody get x"),
    ("admin", "ACL DRYRUN alice nosuchcommand"),
    ("admin", "ACL SETUSER alice -get"),
    ("u", "GET foo:1"),
    ("u", "MGET foo:1"),
    ("u", "AUTH bob anything"),
    ("u", "FLUSHALL"),
    ("u", "DEL foo:1"),
    ("u", "ACL WHOAMI"),
    ("admin", "ACL SETUSER alice reset"),
    ("admin", "ACL GETUSER alice"),
    ("admin", "ACL DELUSER bob dave"),
    ("admin", "ACL LIST"),
];

#[test]
fn acl_sequence_answers_as_redis_server() {
    let redis = start_redis();
    let shard = start_shard(&[]);
    let cluster = cluster_of_shards(&[]);
    let mut targets = [
        Target::new("redis-server", redis.port),
        Target::new("shard", shard.port),
        Target::new("proxy", cluster.proxy.port),
    ];
    for (who, line) in STEPS {
        let (mark, line) = match line.strip_prefix(['*', '=']) {
            Some(rest) => (line.as_bytes()[0], rest),
            None => (b' ', *line),
        };
        let args: Vec<&str> = line.split(' ').collect();
        let replies: Vec<Vec<u8>> = targets.iter_mut().map(|t| send(t.client(who), &args)).collect();
        if mark == b'=' {
            assert_eq!(String::from_utf8_lossy(&replies[2]), String::from_utf8_lossy(&replies[1]), "{line}");
            continue;
        }
        for (t, reply) in targets.iter().zip(&replies).skip(1) {
            let only_success = mark == b'*';
            if only_success {
                assert_ne!(reply.first(), Some(&b'-'), "{} on {}: {}", line, t.name, String::from_utf8_lossy(reply));
                continue;
            }
            assert_eq!(
                String::from_utf8_lossy(&as_redis_7_0(reply)),
                String::from_utf8_lossy(&replies[0]),
                "{who}> {line}: {} differs from redis-server",
                t.name
            );
        }
    }
    let expected = targets[0].acl_log();
    assert!(expected.iter().any(|e| e.1 == "key" && e.0 == 2), "{expected:?}");
    assert!(expected.iter().any(|e| e.1 == "auth" && e.3 == "AUTH"), "{expected:?}");
    assert!(expected.iter().any(|e| e.1 == "auth" && e.3 == "HELLO"), "{expected:?}");
    assert!(expected.iter().any(|e| e.1 == "channel" && e.3 == "other"), "{expected:?}");
    assert!(expected.iter().any(|e| e.2 == "multi"), "{expected:?}");
    for t in &targets[1..] {
        assert_eq!(t.acl_log(), expected, "ACL LOG of {}", t.name);
    }
    // ACL LOG RESET empties it.
    for t in targets.iter_mut() {
        assert_eq!(send(&mut t.admin, &["ACL", "LOG", "RESET"]), b"+OK\r\n");
        assert!(t.acl_log().is_empty());
    }
}

/// Command rules are printed as they were given, as Redis 7.2 does (7.0 derived them from its bitmap).
#[test]
fn rules_are_printed_as_given() {
    let shard = start_shard(&[]);
    let mut c = RawClient::connect(shard.port);
    let set = ["ACL", "SETUSER", "alice", "on", ">pw", "~foo:*", "%R~ro:*", "&news.*", "+@read", "+@write", "-del"];
    assert_eq!(send(&mut c, &set), b"+OK\r\n");
    assert_eq!(send(&mut c, &["ACL", "SETUSER", "alice", "+client|id", "+@read", "+GET"]), b"+OK\r\n");
    assert_eq!(send(&mut c, &["ACL", "SETUSER", "bob", "+@all", "-@dangerous", "-flushall"]), b"+OK\r\n");
    let list = String::from_utf8(send(&mut c, &["ACL", "LIST"])).unwrap();
    let alice = format!(
        "user alice on #{} ~foo:* %R~ro:* resetchannels &news.* -@all +@write -del +client|id +@read +get",
        sha256_hex("pw")
    );
    assert!(list.contains(&alice), "{list}");
    assert!(list.contains("user bob off resetchannels +@all -@dangerous -flushall"), "{list}");
}

/// The ACL's own checks pass for unrestricted users and the RESP2 hot path answers as before.
#[test]
fn default_user_is_unrestricted_and_client_list_names_the_user() {
    let shard = start_shard(&[]);
    let mut c = RawClient::connect(shard.port);
    assert_eq!(send(&mut c, &["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(send(&mut c, &["ACL", "SETUSER", "carol", "on", ">p", "~*", "+@all"]), b"+OK\r\n");
    assert_eq!(send(&mut c, &["AUTH", "carol", "p"]), b"+OK\r\n");
    let info = String::from_utf8(send(&mut c, &["CLIENT", "INFO"])).unwrap();
    assert!(info.contains(" user=carol "), "{info}");
    // carol has every key but no channel (resetchannels): PUBLISH is checked and refused.
    assert_eq!(send(&mut c, &["PUBLISH", "ch", "m"]), b"-NOPERM No permissions to access a channel\r\n");
    assert_eq!(send(&mut c, &["GET", "k"]), b"$1\r\nv\r\n");
}

fn sha256_hex(s: &str) -> String {
    ringcache_common::acl::rules::hex(&ringcache_common::acl::rules::hash_password(s.as_bytes()))
}

fn start_redis_with(args: &[&str]) -> Proc {
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(args)
        .stdout(std::process::Stdio::null());
    Proc::spawn("redis-server", cmd, port)
}

/// `--aclfile` at start, then ACL SETUSER, ACL SAVE (the file is byte for byte what redis-server writes),
/// an edit of the file and ACL LOAD.
#[test]
fn aclfile_load_save_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let initial = format!(
        "user alice on #{} ~foo:* resetchannels -@all +@string +client|id\nuser default on nopass ~* &* +@all\n",
        sha256_hex("pw")
    );
    let files: Vec<std::path::PathBuf> =
        ["redis", "shard", "proxy"].iter().map(|n| dir.path().join(format!("{n}.acl"))).collect();
    for f in &files {
        std::fs::write(f, &initial).unwrap();
    }
    let redis = start_redis_with(&["--aclfile", files[0].to_str().unwrap()]);
    let shard = start_shard(&["--aclfile", files[1].to_str().unwrap()]);
    let backend = start_shard(&[]);
    let proxy = start_proxy(&[("s1", backend.addr())], &["--aclfile", files[2].to_str().unwrap()]);
    let mut outputs = Vec::new();
    for (port, file) in [redis.port, shard.port, proxy.port].into_iter().zip(&files) {
        let mut admin = RawClient::connect(port);
        let mut u = RawClient::connect(port);
        let mut replies = Vec::new();
        replies.push(send(&mut u, &["AUTH", "alice", "pw"]));
        replies.push(send(&mut u, &["SET", "foo:1", "x"]));
        replies.push(as_redis_7_0(&send(&mut u, &["GET", "bar"])));
        replies.push(send(
            &mut admin,
            &["ACL", "SETUSER", "carol", "on", ">c", "~c:*", "%R~r:*", "&ch", "+@string", "-append"],
        ));
        replies.push(send(&mut admin, &["ACL", "SAVE"]));
        let saved = std::fs::read_to_string(file).unwrap();
        std::fs::write(file, format!("{saved}user dave on nopass ~* resetchannels +ping\n")).unwrap();
        replies.push(send(&mut admin, &["ACL", "LOAD"]));
        replies.push(send(&mut admin, &["ACL", "LIST"]));
        std::fs::write(file, "user broken on +nosuchcommand\n").unwrap();
        let refused = send(&mut admin, &["ACL", "LOAD"]);
        assert!(refused.starts_with(b"-ERR"), "{}", String::from_utf8_lossy(&refused));
        replies.push(send(&mut admin, &["ACL", "USERS"]));
        outputs.push((saved, replies));
    }
    assert!(outputs[0].0.contains("user carol on #"), "{}", outputs[0].0);
    for (name, out) in ["shard", "proxy"].iter().zip(&outputs[1..]) {
        assert_eq!(out.0, outputs[0].0, "the file {name} saved");
        for (ours, theirs) in out.1.iter().zip(&outputs[0].1) {
            assert_eq!(String::from_utf8_lossy(ours), String::from_utf8_lossy(theirs), "{name}");
        }
    }
}

/// `--requirepass-file`: the default user's password, never on the command line.
#[test]
fn requirepass_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pass");
    std::fs::write(&file, "s3cret\n").unwrap();
    let shard = start_shard(&["--requirepass-file", file.to_str().unwrap()]);
    let mut c = RawClient::connect(shard.port);
    assert_eq!(send(&mut c, &["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(send(&mut c, &["AUTH", "s3cret"]), b"+OK\r\n");
    let list = String::from_utf8(send(&mut c, &["ACL", "LIST"])).unwrap();
    assert!(list.contains(&format!("user default on #{} ~* &* +@all", sha256_hex("s3cret"))), "{list}");
    let config = String::from_utf8(send(&mut c, &["CONFIG", "GET", "*"])).unwrap();
    assert!(!config.contains("s3cret"), "{config}");
}

/// The proxy authenticates to shards that admit only a user of their ACL file (`--shard-user`,
/// `--shard-password-file`); its own clients have the proxy's users.
#[test]
fn proxy_authenticates_to_shards_with_its_user() {
    let dir = tempfile::tempdir().unwrap();
    let aclfile = dir.path().join("shard.acl");
    std::fs::write(
        &aclfile,
        format!("user default off nopass ~* &* +@all\nuser ringproxy on #{} ~* &* +@all\n", sha256_hex("pp")),
    )
    .unwrap();
    let pwfile = dir.path().join("pp");
    std::fs::write(&pwfile, "pp\n").unwrap();
    let shards: Vec<Proc> = (0..2).map(|_| start_shard(&["--aclfile", aclfile.to_str().unwrap()])).collect();
    let names: Vec<(&str, String)> = ["s1", "s2"].into_iter().zip(shards.iter().map(Proc::addr)).collect();
    let proxy = start_proxy(
        &names,
        &["--shard-user", "ringproxy", "--shard-password-file", pwfile.to_str().unwrap(), "--requirepass", "front"],
    );
    let mut c = RawClient::connect(proxy.port);
    assert_eq!(send(&mut c, &["SET", "k", "v"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(send(&mut c, &["AUTH", "default", "front"]), b"+OK\r\n");
    for i in 0..20 {
        let key = format!("key:{i}");
        assert_eq!(send(&mut c, &["SET", &key, "v"]), b"+OK\r\n", "{key}");
        assert_eq!(send(&mut c, &["GET", &key]), b"$1\r\nv\r\n");
    }
    // A direct client of a shard is refused as the disabled default user; the proxy's connections are
    // ringproxy's.
    let mut direct = RawClient::connect(shards[0].port);
    assert_eq!(send(&mut direct, &["GET", "k"]), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(send(&mut direct, &["AUTH", "ringproxy", "pp"]), b"+OK\r\n");
    let list = String::from_utf8(send(&mut direct, &["CLIENT", "LIST"])).unwrap();
    assert!(
        list.lines().filter(|l| l.contains("name=ringcache-proxy")).all(|l| l.contains(" user=ringproxy ")),
        "{list}"
    );
    assert!(list.contains("name=ringcache-proxy"), "{list}");

    // With the wrong password, requests get the proxy's error naming the shard's refusal.
    let badfile = dir.path().join("bad");
    std::fs::write(&badfile, "wrong\n").unwrap();
    let bad = start_proxy(&names, &["--shard-user", "ringproxy", "--shard-password-file", badfile.to_str().unwrap()]);
    let mut c = RawClient::connect(bad.port);
    let reply = send(&mut c, &["GET", "k"]);
    assert!(reply.starts_with(b"-"), "{}", String::from_utf8_lossy(&reply));
}

/// redis-py raises `NoPermissionError` for a NOPERM reply, from a shard and through the proxy.
#[test]
fn redis_py_raises_no_permission_error() {
    let shard = start_shard(&[]);
    let cluster = cluster_of_shards(&[]);
    for port in [shard.port, cluster.proxy.port] {
        let script = format!(
            r#"
import redis
admin = redis.Redis(port={port})
admin.execute_command("ACL", "SETUSER", "py", "on", ">pw", "~allowed:*", "+@read", "+set")
r = redis.Redis(port={port}, username="py", password="pw")
r.set("allowed:1", "x")
assert r.get("allowed:1") == b"x"
for call in (lambda: r.get("other"), lambda: r.delete("allowed:1")):
    try:
        call()
    except redis.exceptions.NoPermissionError as e:
        print("NOPERM", e)
    else:
        raise SystemExit("no NoPermissionError")
try:
    redis.Redis(port={port}, username="py", password="bad").ping()
except redis.exceptions.AuthenticationError:
    print("WRONGPASS")
"#
        );
        let out = Command::new("python3").args(["-c", &script]).output().expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout.matches("NOPERM").count(), 2, "{stdout}");
        assert!(stdout.contains("No permissions to access a key"), "{stdout}");
        assert!(stdout.contains("User py has no permissions to run the 'del' command"), "{stdout}");
        assert!(stdout.contains("WRONGPASS"), "{stdout}");
    }
}

/// A script's refused `redis.call` fails the script with Redis 7.2's words and is logged in context `lua`.
#[test]
fn a_script_call_is_checked_in_context_lua() {
    let shard = start_shard(&[]);
    let mut admin = RawClient::connect(shard.port);
    let mut c = RawClient::connect(shard.port);
    let set = ["ACL", "SETUSER", "lua", "on", ">pw", "~allowed:*", "+eval", "+get", "+set"];
    assert_eq!(send(&mut admin, &set), b"+OK\r\n");
    assert_eq!(send(&mut c, &["AUTH", "lua", "pw"]), b"+OK\r\n");
    assert_eq!(send(&mut c, &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "allowed:1"]), b"+OK\r\n");
    let reply = String::from_utf8(send(&mut c, &["EVAL", "return redis.call('get', 'other')", "0"])).unwrap();
    assert!(reply.starts_with("-ERR ACL failure in script: No permissions to access a key"), "{reply}");
    let reply = String::from_utf8(send(&mut c, &["EVAL", "return redis.call('del', 'allowed:1')", "0"])).unwrap();
    assert!(reply.contains("ACL failure in script: User lua has no permissions to run the 'del' command"), "{reply}");
    // Keys named to EVAL itself are checked before the script runs.
    assert_eq!(send(&mut c, &["EVAL", "return 1", "1", "other"]), b"-NOPERM No permissions to access a key\r\n");
    let log = String::from_utf8(send(&mut admin, &["ACL", "LOG"])).unwrap();
    assert!(log.contains("\r\nlua\r\n"), "{log}");
}
