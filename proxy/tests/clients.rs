//! Real client libraries and tools, each with its default settings, against three endpoints side by side:
//! redis-server 7 (the reference: a checklist that fails there is the script's fault), one ringcache shard,
//! and ringcache-proxy over three shards. Each client runs the checklist of `tests/clients/<lang>/`:
//! connect, PING, SET/GET, a binary value, INCR, EXPIRE/TTL, MSET/MGET of 50 keys, DEL of many, a
//! 1,000-command pipeline, HGETALL (a map in RESP3), SMEMBERS (a set), ZRANGE WITHSCORES (doubles), SCAN
//! over 1,000 keys seeing each once, INFO parsed, CLIENT SETNAME/GETNAME, and the client's error for an
//! unknown command and for WRONGTYPE with the connection still usable after each. Whatever a client
//! prints on stderr (a warning, a deprecation, an error it logged and swallowed) fails the test.
//!
//! Nothing is skipped: a client that is not installed fails its test, naming the package `.ci/run`
//! installs.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "../../tests/clients/rust/checklist.rs"]
mod rust_checklist;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use support::{cluster_of_shards, free_port, start_redis, start_shard, Cluster, Proc};

/// The three endpoints, the reference first.
struct Endpoints {
    redis: Proc,
    shard: Proc,
    cluster: Cluster,
}

impl Endpoints {
    fn start() -> Endpoints {
        Endpoints { redis: start_redis(), shard: start_shard(&[]), cluster: cluster_of_shards(&[]) }
    }

    fn all(&self) -> [(&'static str, u16); 3] {
        [("redis-server", self.redis.port), ("shard", self.shard.port), ("proxy", self.cluster.proxy.port)]
    }
}

fn script(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients").join(path)
}

/// Runs a client; fails the test if its program is missing (naming the package), if it fails, or if it
/// wrote anything to stderr. Returns its stdout.
fn run_client(what: &str, package: &str, mut cmd: Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("{what}: cannot run {cmd:?} ({e}): is {package} installed? `bash .ci/run` installs it")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stderr.trim().is_empty(), "{what} wrote to stderr:\n{stderr}");
    stdout
}

/// A checklist script that prints `CHECKLIST OK`, against every endpoint.
fn checklist(client: &str, package: &str, program: &str, args: &[&str], script_path: &str, env: &[(&str, &str)]) {
    let endpoints = Endpoints::start();
    for (endpoint, port) in endpoints.all() {
        let mut cmd = Command::new(program);
        cmd.args(args).arg(script(script_path)).arg(port.to_string()).arg(format!("checklist:{client}"));
        cmd.envs(env.iter().copied());
        let stdout = run_client(&format!("{client} against {endpoint}"), package, cmd);
        assert!(stdout.contains("CHECKLIST OK"), "{client} against {endpoint}:\n{stdout}");
    }
}

#[test]
fn redis_py_resp3_default_and_resp2_sync_and_asyncio() {
    let version = run_client("redis-py", "redis-py (pip install redis)", {
        let mut c = Command::new("python3");
        c.args(["-c", "import redis; print(redis.__version__)"]);
        c
    });
    let major: u32 = version.trim().split('.').next().unwrap().parse().unwrap();
    assert!(major >= 6, "redis-py {version} is older than the RESP3-by-default releases");
    let endpoints = Endpoints::start();
    for (variant, extra) in [
        ("RESP3 (default), sync", &[][..]),
        ("RESP2, sync", &["--protocol", "2"]),
        ("RESP3 (default), asyncio", &["--asyncio"]),
        ("RESP2, asyncio", &["--asyncio", "--protocol", "2"]),
    ] {
        for (endpoint, port) in endpoints.all() {
            let mut cmd = Command::new("python3");
            cmd.arg(script("python/checklist.py"))
                .arg(port.to_string())
                .arg(format!("checklist:py:{variant}"))
                .args(extra);
            let stdout = run_client(&format!("redis-py {variant} against {endpoint}"), "python3", cmd);
            assert!(stdout.contains("CHECKLIST OK"), "redis-py {variant} against {endpoint}:\n{stdout}");
        }
    }
}

#[test]
fn redis_rs_resp2_and_resp3() {
    let endpoints = Endpoints::start();
    for (variant, query) in [("RESP2", ""), ("RESP3", "?protocol=resp3")] {
        for (endpoint, port) in endpoints.all() {
            let url = format!("redis://127.0.0.1:{port}/{query}");
            let prefix = format!("checklist:rs:{variant}");
            if let Err(e) = rust_checklist::run(&url, &prefix) {
                panic!("redis crate {variant} against {endpoint}: {e}");
            }
        }
    }
}

#[test]
fn node_redis() {
    checklist(
        "node-redis",
        "node-redis (apt)",
        "node",
        &[],
        "node/checklist.js",
        &[("NODE_PATH", "/usr/share/nodejs")],
    );
}

#[test]
fn ruby_redis() {
    checklist("ruby-redis", "ruby-redis (apt)", "ruby", &["-W"], "ruby/checklist.rb", &[]);
}

#[test]
fn perl_redis() {
    checklist("perl-redis", "libredis-perl (apt)", "perl", &["-w"], "perl/checklist.pl", &[]);
}

#[test]
fn phpredis() {
    checklist("phpredis", "php-cli and php-redis (apt)", "php", &[], "php/checklist.php", &[]);
}

/// redis-cli one-shot and at its prompt (in a pseudo-terminal), plain and with -3: the transcript against
/// each endpoint equals the one against redis-server.
#[test]
fn redis_cli_plain_and_resp3_one_shot_and_interactive() {
    let endpoints = Endpoints::start();
    for mode in ["", "-3"] {
        for (kind, program, path) in
            [("one-shot", "bash", "cli/checklist.sh"), ("interactive", "python3", "cli/interactive.py")]
        {
            let transcripts: Vec<(&str, String)> = endpoints
                .all()
                .iter()
                .map(|&(endpoint, port)| {
                    let mut cmd = Command::new(program);
                    cmd.arg(script(path)).arg(port.to_string()).arg(format!("checklist:cli:{kind}{mode}"));
                    if !mode.is_empty() {
                        cmd.arg(mode);
                    }
                    (endpoint, run_client(&format!("redis-cli {mode} {kind} against {endpoint}"), "redis-tools", cmd))
                })
                .collect();
            let reference = &transcripts[0].1;
            assert!(reference.contains("## PING") || reference.contains("## ping"), "{reference}");
            for (endpoint, transcript) in &transcripts[1..] {
                assert_eq!(transcript, reference, "redis-cli {mode} {kind}: {endpoint} differs from redis-server");
            }
        }
    }
}

#[test]
fn redis_benchmark_resp2_and_resp3() {
    let endpoints = Endpoints::start();
    for mode in ["", "-3"] {
        for (endpoint, port) in endpoints.all() {
            let mut cmd = Command::new("bash");
            cmd.arg(script("benchmark/checklist.sh")).arg(port.to_string());
            if !mode.is_empty() {
                cmd.arg(mode);
            }
            run_client(&format!("redis-benchmark {mode} against {endpoint}"), "redis-tools", cmd);
        }
    }
}

/// The metric families (`# TYPE` lines) of a scrape.
fn families(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect()
}

#[test]
fn prometheus_redis_exporter_scrapes_everything_it_scrapes_from_redis() {
    let endpoints = Endpoints::start();
    let mut reference = BTreeSet::new();
    for (endpoint, port) in endpoints.all() {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("SET").arg("exporter:k").arg("v").query(&mut c).unwrap();
        // An error, so that every server has errorstats to export.
        let _: redis::RedisResult<()> = redis::cmd("NOSUCHCOMMAND").query(&mut c);
        let listen = free_port();
        let mut cmd = Command::new("bash");
        cmd.arg(script("exporter/checklist.sh")).arg(port.to_string()).arg(listen.to_string());
        // The exporter logs at info level on stderr; only errors and warnings fail the test.
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        let metrics = String::from_utf8_lossy(&out.stdout).into_owned();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "exporter against {endpoint}: {log}\n(is prometheus-redis-exporter installed?)");
        for line in log.lines() {
            assert!(
                !line.contains("level=error") && !line.contains("level=warn"),
                "exporter against {endpoint} logged:\n{log}"
            );
        }
        assert!(metrics.lines().any(|l| l == "redis_up 1"), "exporter against {endpoint}: no `redis_up 1`");
        let found = families(&metrics);
        if reference.is_empty() {
            reference = found;
            assert!(reference.len() > 100, "too few families from redis-server: {reference:?}");
        } else {
            let missing: Vec<&String> = reference.difference(&found).collect();
            assert!(missing.is_empty(), "exporter against {endpoint} lacks {missing:?}");
        }
    }
}
