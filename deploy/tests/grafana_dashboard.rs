//! The Grafana dashboard (grafana/dashboards/ringcache.json): its layout is sound, it uses the provisioned
//! datasource by its pinned uid, every PromQL expression in it is valid for `promtool`, and every metric it
//! queries is one that a running `ringcache-shard` and `ringcache-proxy` really export.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use ringcache_deploy_tests::{repo_root, run, workspace_binaries};
use ringcache_testkit::free_port;
use serde_json::Value;

fn dashboard_paths() -> Vec<PathBuf> {
    let dir = repo_root().join("grafana/dashboards");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no dashboards in {}", dir.display());
    paths
}

fn load(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}

/// The uid pinned in the datasource provisioning file.
fn provisioned_datasource_uid() -> String {
    let text = std::fs::read_to_string(repo_root().join("grafana/provisioning/datasources/prometheus.yml")).unwrap();
    let line = text.lines().find(|l| l.trim_start().starts_with("uid:")).expect("the datasource has no uid");
    line.split_once(':').unwrap().1.trim().to_string()
}

/// Every panel, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("no panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// (where, expression) for every query, with Grafana's interval variables replaced by durations.
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {} has a query without expr", p["title"]));
            let expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h");
            assert!(!expr.contains('$'), "panel {}: unknown variable in {expr}", p["title"]);
            out.push((format!("panel {} ({}) query {}", p["id"], p["title"], t["refId"]), expr));
        }
    }
    out
}

#[test]
fn layout_ids_and_datasource_are_sound() {
    let uid = provisioned_datasource_uid();
    for path in dashboard_paths() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("${DS_"), "{}: uses an import input; refer to the datasource by uid", path.display());
        let d = load(&path);
        assert!(d.get("__inputs").is_none(), "{}: has import inputs", path.display());
        assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "{}: needs a fixed uid", path.display());
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [i64; 4])> = Vec::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let id = p["id"].as_i64().unwrap_or_else(|| panic!("panel {title} has no id"));
            assert!(ids.insert(id), "panel id {id} is used twice");
            let g = &p["gridPos"];
            let [x, y, w, h] =
                ["x", "y", "w", "h"].map(|k| g[k].as_i64().unwrap_or_else(|| panic!("{title}: gridPos.{k}")));
            assert!(
                x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24,
                "{title}: gridPos {g} is off the 24-column grid"
            );
            for (other, [ox, oy, ow, oh]) in &boxes {
                let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
                assert!(!overlap, "panels {title} and {other} overlap");
            }
            boxes.push((title.clone(), [x, y, w, h]));
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"].as_str(), Some(uid.as_str()), "{title}: panel datasource");
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{title} has no queries"));
            assert!(!targets.is_empty(), "{title} has no queries");
            for t in targets {
                assert_eq!(t["datasource"]["uid"].as_str(), Some(uid.as_str()), "{title}: query datasource");
            }
        }
    }
}

/// Each expression becomes a recording rule; `promtool check rules` parses them all.
#[test]
fn every_expression_is_valid_promql() {
    let dir = std::env::temp_dir().join(format!("ringcache-dashboard-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules_file = |name: &str, exprs: &[(String, String)]| {
        let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
        for (i, (_, expr)) in exprs.iter().enumerate() {
            // A JSON string is a valid YAML double-quoted scalar.
            yaml.push_str(&format!(
                "      - record: dashboard:expr_{i}\n        expr: {}\n",
                serde_json::to_string(expr).unwrap()
            ));
        }
        let path = dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    };
    // The check itself must be able to fail.
    let broken = rules_file("broken.yml", &[("broken".into(), "sum(rate(ringcache_keys[1m])".into())]);
    let (ok, _) = run(Command::new("promtool").args(["check", "rules"]).arg(&broken));
    assert!(!ok, "promtool accepted a broken expression");
    for path in dashboard_paths() {
        let exprs = expressions(&load(&path));
        let file = rules_file("dashboard.yml", &exprs);
        let (ok, text) = run(Command::new("promtool").args(["check", "rules"]).arg(&file));
        assert!(ok, "{}: promtool rejected an expression:\n{text}", path.display());
        assert!(text.contains(&format!("SUCCESS: {} rules found", exprs.len())), "{text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(binary: &str, args: &[String], ports: &[u16]) -> Proc {
    let mut cmd = Command::new(workspace_binaries().join(binary));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("RINGCACHE_")) {
        cmd.env_remove(k);
    }
    let mut p = Proc(cmd.args(args).stdin(Stdio::null()).spawn().unwrap());
    for &port in ports {
        ringcache_testkit::wait_listening(binary, port, &mut p.0);
    }
    p
}

/// The metric names in a /metrics page (samples only: `_bucket`, `_sum`, `_count` as exported).
fn scrape_names(port: u16) -> BTreeSet<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "metrics on {port}: {}", page.lines().next().unwrap_or(""));
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect()
}

fn send_commands(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(
        // INCR on a string fails: ringcache_errors_total gets a sample.
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n\
          *2\r\n$3\r\nGET\r\n$1\r\nx\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while !got.ends_with(b"$-1\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the proxy closed the connection: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn every_queried_metric_is_exported() {
    let data = std::env::temp_dir().join(format!("ringcache-dashboard-shard-{}", std::process::id()));
    let [shard_port, shard_metrics, proxy_port, proxy_metrics] = [free_port(), free_port(), free_port(), free_port()];
    let _shard = spawn(
        "ringcache-shard",
        &["--port", &shard_port.to_string(), "--metrics-port", &shard_metrics.to_string(), "--log", "warn", "--dir"]
            .map(String::from)
            .into_iter()
            .chain([data.display().to_string()])
            .collect::<Vec<_>>(),
        &[shard_port, shard_metrics],
    );
    let shards = format!("s1=127.0.0.1:{shard_port}");
    let _proxy = spawn(
        "ringcache-proxy",
        &[
            "--port",
            &proxy_port.to_string(),
            "--metrics-port",
            &proxy_metrics.to_string(),
            "--log",
            "warn",
            "--shards",
            &shards,
            "--hot-keys",
            "10",
            "--hot-keys-sample",
            "1",
        ]
        .map(String::from),
        &[proxy_port, proxy_metrics],
    );
    send_commands(proxy_port);
    let mut exported = scrape_names(shard_metrics);
    exported.extend(scrape_names(proxy_metrics));
    exported.insert("up".into()); // Prometheus's own, per target

    let mut queried = BTreeSet::new();
    for path in dashboard_paths() {
        for (place, expr) in expressions(&load(&path)) {
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.starts_with("ringcache_") || *w == "up")
                .collect();
            assert!(!names.is_empty(), "{place} queries no Ringcache metric: {expr}");
            for name in names {
                assert!(exported.contains(name), "{place} queries {name}, which neither binary exports: {expr}");
                queried.insert(name.to_string());
            }
        }
    }
    // What the dashboard must show (issue: throughput, latency, hit ratio, memory, keys, evictions and
    // expirations, clients, backend health, snapshot age; issue 18: membership per proxy; issue 17: slow log
    // length and errors by type).
    for required in [
        "ringcache_commands_total",
        "ringcache_command_duration_seconds_bucket",
        "ringcache_keyspace_hits_total",
        "ringcache_keyspace_misses_total",
        "ringcache_memory_used_bytes",
        "ringcache_memory_max_bytes",
        "ringcache_keys",
        "ringcache_evicted_keys_total",
        "ringcache_expired_keys_total",
        "ringcache_connected_clients",
        "ringcache_proxy_backend_up",
        "ringcache_proxy_backend_errors_total",
        "ringcache_proxy_ejections_total",
        "ringcache_rdb_last_save_timestamp_seconds",
        "ringcache_membership_ring_version",
        "ringcache_zookeeper_connected",
        "ringcache_slowlog_length",
        "ringcache_errors_total",
    ] {
        assert!(queried.contains(required), "the dashboard does not show {required}");
    }
    let _ = std::fs::remove_dir_all(&data);
}
