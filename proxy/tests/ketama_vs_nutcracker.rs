//! The proxy's ketama ring against twemproxy itself: keys written through a real `nutcracker` (0.5.0,
//! `distribution: ketama`, `hash: fnv1a_64`, `hash_tag: "{}"`, `"[]"` or none) must sit on the backend that
//! `ringcache_proxy::ring::Ring` names, and keys written through `ringcache-proxy` over the same backends
//! (same names, same weights, the same `--hash-tag`) must land exactly where nutcracker put them.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use redis::IntoConnectionInfo;
use ringcache_common::hash::{HashTag, KeyHash, Placement};
use ringcache_proxy::ring::{Member, Ring};
use support::{free_port, start_proxy, start_redis, start_shard, Proc};

const NAMES: [&str; 3] = ["s1", "s2", "s3"];

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ringcache-{tag}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running nutcracker; the process is killed (fields drop in order) before its directory is removed.
struct Nutcracker {
    proc: Proc,
    _dir: TempDir,
}

/// Starts nutcracker over `servers` given as (name, port, weight), with `hash_tag` (`None`: no such line).
fn start_nutcracker(servers: &[(&str, u16, u32)], hash_tag: Option<&str>) -> Nutcracker {
    let dir = TempDir::new("nutcracker");
    let port = free_port();
    let tag_line = hash_tag.map(|t| format!("  hash_tag: \"{t}\"\n")).unwrap_or_default();
    let mut conf = format!(
        "pool:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n{tag_line}  distribution: ketama\n  \
         redis: true\n  auto_eject_hosts: false\n  timeout: 5000\n  servers:\n"
    );
    for (name, p, weight) in servers {
        conf.push_str(&format!("   - 127.0.0.1:{p}:{weight} {name}\n"));
    }
    let conf_path = dir.0.join("nutcracker.yml");
    std::fs::write(&conf_path, &conf).unwrap();
    let check = Command::new("nutcracker").arg("-t").arg("-c").arg(&conf_path).output().unwrap();
    assert!(
        check.status.success(),
        "nutcracker -t rejected the config:\n{conf}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut cmd = Command::new("nutcracker");
    cmd.arg("-c")
        .arg(&conf_path)
        .args(["-s", &free_port().to_string(), "-a", "127.0.0.1", "-v", "4", "-o"])
        .arg(dir.0.join("nutcracker.log"))
        .stdout(Stdio::null());
    Nutcracker { proc: Proc::spawn("nutcracker", cmd, port), _dir: dir }
}

/// A connection that sends nothing on connect: nutcracker closes connections that send `CLIENT SETINFO`.
fn plain_client(port: u16) -> redis::Connection {
    let info = format!("redis://127.0.0.1:{port}/").into_connection_info().unwrap();
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    redis::Client::open(info.set_redis_settings(settings)).unwrap().get_connection().unwrap()
}

/// More than 10,000 distinct keys of many shapes: sequential, hash tags (also ones that do not count as a
/// tag), arbitrary bytes (high bytes test the sign extension of twemproxy's `char`), UTF-8 and long keys.
fn test_keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for i in 0..3000 {
        keys.push(format!("key:{i}").into_bytes());
    }
    for i in 0..2000 {
        // Three keys per tag.
        let tag = i / 3;
        keys.push(
            match i % 3 {
                0 => format!("user:{{{tag}}}:profile"),
                1 => format!("{{{tag}}}.session"),
                _ => format!("cart{{{tag}}}{{other}}"),
            }
            .into_bytes(),
        );
    }
    for i in 0..1200 {
        // Braces that are not a tag: empty, unclosed, reversed; and a tag after an empty pair.
        keys.push(
            match i % 6 {
                0 => format!("a{{}}b:{i}"),
                1 => format!("{{{i}"),
                2 => format!("}}{i}{{"),
                3 => format!("{{}}{{{i}}}"),
                4 => format!("x{{{{{i}}}}}"),
                _ => format!("{{ {i} }}"),
            }
            .into_bytes(),
        );
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3500 {
        let len = 1 + (next() % 48) as usize;
        keys.push((0..len).map(|_| (next() & 0xff) as u8).collect());
    }
    for i in 0..800 {
        keys.push(
            match i % 4 {
                0 => format!("ключ:{i}"),
                1 => format!("键-{i}"),
                2 => format!("émoji-🦀-{i}"),
                _ => format!("{{ü{}}}:x", i / 2),
            }
            .into_bytes(),
        );
    }
    for i in 0..200 {
        keys.push(format!("{}:{i}", "long".repeat(75)).into_bytes());
    }
    for i in 0..900 {
        // Square-bracket tags, three keys per tag, and brackets that are not a tag.
        let tag = i / 6;
        keys.push(
            match i % 6 {
                0 => format!("user:[{tag}]:profile"),
                1 => format!("[{tag}].session"),
                2 => format!("cart[{tag}][other]"),
                3 => format!("a[]b:{i}"),
                4 => format!("]{i}["),
                _ => format!("[{{{i}}}]"),
            }
            .into_bytes(),
        );
    }
    let mut seen = HashSet::new();
    let keys: Vec<Vec<u8>> = keys.into_iter().filter(|k| seen.insert(k.clone())).collect();
    assert!(keys.len() >= 10_000, "only {} distinct keys", keys.len());
    keys
}

/// SETs every key (value `value`) through `conn`, pipelined.
fn write_keys(conn: &mut redis::Connection, keys: &[Vec<u8>], value: &str) {
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("SET").arg(k).arg(value).ignore();
        }
        pipe.query::<()>(conn).unwrap();
    }
}

/// Which backend holds each key; asserts that exactly one does.
fn locate(backends: &[Proc], keys: &[Vec<u8>]) -> Vec<usize> {
    let mut held: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (b, backend) in backends.iter().enumerate() {
        let mut conn = plain_client(backend.port);
        for (c, chunk) in keys.chunks(1000).enumerate() {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("EXISTS").arg(k);
            }
            let found: Vec<i64> = pipe.query(&mut conn).unwrap();
            for (i, f) in found.into_iter().enumerate() {
                if f == 1 {
                    held[c * 1000 + i].push(b);
                }
            }
        }
    }
    held.into_iter()
        .zip(keys)
        .map(|(h, k)| {
            assert_eq!(h.len(), 1, "key {:?} is on backends {h:?}", String::from_utf8_lossy(k));
            h[0]
        })
        .collect()
}

fn flush(backends: &[Proc]) {
    for b in backends {
        redis::cmd("FLUSHALL").query::<()>(&mut plain_client(b.port)).unwrap();
    }
}

fn show(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(key))
}

/// Writes the keys through nutcracker and through ringcache-proxy over `backends` (named s1.. with
/// `weights`), and checks both placements against `Ring::owner`. `hash_tag` is nutcracker's `hash_tag:`
/// (`None`: none) and the proxy's `--hash-tag` (`""` for none).
fn compare(backends: &[Proc], weights: &[u32], hash_tag: Option<&str>) {
    let keys = test_keys();
    let members: Vec<Member> =
        NAMES.iter().zip(weights).map(|(n, w)| Member { name: n.to_string(), weight: *w }).collect();
    let tag = HashTag::parse(hash_tag.unwrap_or("")).unwrap();
    let ring = Ring::with_placement(&members, Placement::new(KeyHash::Fnv1a_64, tag));

    let servers: Vec<(&str, u16, u32)> =
        NAMES.iter().zip(backends).zip(weights).map(|((n, b), w)| (*n, b.port, *w)).collect();
    let nc = start_nutcracker(&servers, hash_tag);
    write_keys(&mut plain_client(nc.proc.port), &keys, "nutcracker");
    let placed = locate(backends, &keys);

    let mut per_backend = vec![0usize; backends.len()];
    let mut mismatches = Vec::new();
    for (key, &b) in keys.iter().zip(&placed) {
        per_backend[b] += 1;
        let ours = ring.owner(key).unwrap();
        if ours != b {
            mismatches.push(format!("{}: nutcracker {}, ring {}", show(key), NAMES[b], NAMES[ours]));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} keys placed differently from nutcracker, e.g.:\n{}",
        mismatches.len(),
        keys.len(),
        mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(per_backend.iter().all(|&n| n > keys.len() / 20), "a backend got almost no keys: {per_backend:?}");
    // Keys that share a hash tag share a backend; without that tag, some of them do not.
    for tagged_key in [&b"user:{7}:profile"[..], b"user:[7]:profile"] {
        let groups: Vec<usize> = (0..60)
            .map(|n| {
                let first = String::from_utf8_lossy(tagged_key).replace('7', &n.to_string());
                keys.iter().position(|k| k == first.as_bytes()).unwrap()
            })
            .collect();
        let together = groups.iter().all(|&t| placed[t] == placed[t + 1] && placed[t] == placed[t + 2]);
        let is_the_tag = hash_tag.is_some_and(|t| t.as_bytes()[0] == tagged_key[5]);
        assert_eq!(together, is_the_tag, "{} with hash_tag {hash_tag:?}", show(tagged_key));
    }
    drop(nc);

    // The same keys through ringcache-proxy.
    flush(backends);
    let shards: Vec<(&str, String)> =
        NAMES.iter().zip(backends).zip(weights).map(|((n, b), w)| (*n, format!("{}:{w}", b.addr()))).collect();
    let proxy = start_proxy(&shards, &["--hash-tag", hash_tag.unwrap_or("")]);
    write_keys(&mut plain_client(proxy.port), &keys, "ringcache");
    let through_proxy = locate(backends, &keys);
    let moved: Vec<String> = keys
        .iter()
        .zip(placed.iter().zip(&through_proxy))
        .filter(|(_, (a, b))| a != b)
        .take(20)
        .map(|(k, (a, b))| format!("{}: nutcracker {}, ringcache-proxy {}", show(k), NAMES[*a], NAMES[*b]))
        .collect();
    assert!(moved.is_empty(), "keys placed differently by ringcache-proxy:\n{}", moved.join("\n"));
    // And the proxy reads back what it wrote.
    let mut conn = plain_client(proxy.port);
    let sample: Vec<&Vec<u8>> = keys.iter().step_by(37).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET").arg(&sample).query(&mut conn).unwrap();
    assert!(values.iter().all(|v| v.as_deref() == Some("ringcache")));
}

#[test]
fn equal_weights_over_redis_match_nutcracker() {
    let backends: Vec<Proc> = (0..3).map(|_| start_redis()).collect();
    compare(&backends, &[1, 1, 1], Some("{}"));
}

#[test]
fn unequal_weights_over_shards_match_nutcracker() {
    let backends: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    compare(&backends, &[1, 2, 3], Some("{}"));
}

#[test]
fn odd_weights_match_nutcracker() {
    // Weight shares that do not divide 160 evenly exercise twemproxy's float rounding of points per server.
    let backends: Vec<Proc> = (0..3).map(|_| start_redis()).collect();
    compare(&backends, &[3, 7, 11], Some("{}"));
}

#[test]
fn a_pool_without_hash_tag_keeps_its_keys_with_an_empty_hash_tag() {
    let backends: Vec<Proc> = (0..3).map(|_| start_redis()).collect();
    compare(&backends, &[1, 1, 1], None);
}

#[test]
fn square_bracket_hash_tag_matches_nutcracker() {
    let backends: Vec<Proc> = (0..3).map(|_| start_shard(&[])).collect();
    compare(&backends, &[1, 2, 3], Some("[]"));
}
