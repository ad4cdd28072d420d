//! Test support: `redis-server` on a free loopback port, stopped when its guard drops (also when a test
//! panics), and the `ringcache-loadgen` binary run to completion with its JSON report.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use ringcache_testkit::free_port;

/// A `redis-server` child process, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start(extra: &[&str]) -> Redis {
        Redis::start_on(free_port(), extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start redis-server (apt-get install redis-server)");
        let mut r = Redis { port, child: Some(child) };
        ringcache_testkit::wait_listening("redis-server", port, r.child.as_mut().unwrap());
        r
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// A connection; retried briefly, since a CI run once saw the very first connection to a server that
    /// had just started listening reset (not reproduced since).
    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        let mut attempts = 0;
        loop {
            match client.get_connection() {
                Ok(con) => return con,
                Err(e) if attempts < 5 && e.is_io_error() => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot connect to redis-server on {}: {e}", self.port),
            }
        }
    }

    pub fn client_with_password(&self, password: &str) -> redis::Connection {
        redis::Client::open(format!("redis://:{password}@127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }

    /// `INFO <section>` as field → value.
    pub fn info(&self, con: &mut redis::Connection, section: &str) -> std::collections::HashMap<String, String> {
        let text: String = redis::cmd("INFO").arg(section).query(con).unwrap();
        text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
    }

    /// `calls` of `cmdstat_<name>` in INFO commandstats (0 when the command never ran).
    pub fn calls(&self, con: &mut redis::Connection, command: &str) -> u64 {
        let info = self.info(con, "commandstats");
        info.get(&format!("cmdstat_{command}"))
            .and_then(|v| v.split(',').find_map(|f| f.strip_prefix("calls=")))
            .map_or(0, |n| n.parse().unwrap())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A finished loadgen run.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: serde_json::Value,
}

impl Run {
    /// The report of command `name` (e.g. "GET", or "ALL" for the overall figures).
    pub fn command(&self, name: &str) -> &serde_json::Value {
        if name == "ALL" {
            return &self.report["overall"];
        }
        self.report["commands"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| {
            panic!("no command {name} in {}", self.report["commands"]);
        })
    }

    pub fn u64_at(&self, pointer: &str) -> u64 {
        self.report.pointer(pointer).and_then(serde_json::Value::as_u64).unwrap_or_else(|| {
            panic!("{pointer} missing in report; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }

    pub fn error_count(&self, kind: &str) -> u64 {
        self.report["errors"][kind].as_u64().unwrap_or(0)
    }
}

/// A scratch file path unique to this process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringcache-loadgen-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The loadgen command with `args`, environment variables of ours removed.
pub fn loadgen_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringcache-loadgen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("RINGCACHE_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["--quiet"]).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs loadgen to completion (killing it and failing after `limit`: it must never hang) and reads its
/// JSON report.
pub fn run_loadgen_within(limit: Duration, args: &[&str]) -> Run {
    let json = scratch(&format!("report-{}.json", free_port()));
    let json_arg = json.to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--json-out", &json_arg]);
    let mut child = loadgen_command(&all).spawn().unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("loadgen {args:?} still running after {limit:?}; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned());
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no report from loadgen {args:?} ({e}); stdout:\n{stdout}\nstderr:\n{stderr}"));
    let _ = std::fs::remove_file(&json);
    let report = serde_json::from_str(&text).unwrap();
    Run { status: status.code().unwrap_or(-1), stdout, stderr, report }
}

pub fn run_loadgen(args: &[&str]) -> Run {
    run_loadgen_within(Duration::from_secs(60), args)
}
