//! Every deployment file is accepted by the tool that consumes it, and the files agree with each other.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use ringcache_deploy_tests::{repo_root, run};

/// `nginx -t` on nginx-stream/nginx.conf as it is. NGINX resolves upstream names when it loads the file,
/// so the Compose service names must resolve: the check runs in a private mount namespace whose
/// /etc/hosts maps them (needs root, as CI has; otherwise a copy with the names replaced is checked).
/// Debian's nginx has stream as a dynamic module, loaded through the include of modules-enabled.
#[test]
fn nginx_conf_passes_nginx_t() {
    let conf = repo_root().join("nginx-stream/nginx.conf");
    let tmp = std::env::temp_dir().join(format!("ringcache-nginx-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let hosts = tmp.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 proxy-1 proxy-2\n").unwrap();
    let script =
        format!("mount --bind {} /etc/hosts && exec nginx -t -e stderr -c {}", hosts.display(), conf.display());
    let (ok, text) = run(Command::new("unshare").args(["--mount", "sh", "-c", &script]));
    let (ok, text) = if ok || text.contains("nginx:") {
        (ok, text)
    } else {
        println!(
            "unshare --mount is not permitted here ({}): checking a copy with the proxy names replaced",
            text.trim()
        );
        let copy = tmp.join("nginx.conf");
        let original = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&copy, original.replace("proxy-1:", "127.0.0.1:").replace("proxy-2:", "127.0.0.1:")).unwrap();
        run(Command::new("nginx").args(["-t", "-e", "stderr", "-c"]).arg(&copy))
    };
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(ok, "nginx -t rejected nginx-stream/nginx.conf (needs nginx and libnginx-mod-stream):\n{text}");
    assert!(text.contains("test is successful"), "{text}");
}

#[test]
fn prometheus_config_passes_promtool() {
    let config = repo_root().join("compose/prometheus/prometheus.yml");
    let (ok, text) = run(Command::new("promtool").args(["check", "config"]).arg(&config));
    assert!(ok, "{text}");
}

/// The Compose file is valid for the Compose tool installed (`docker compose` or Compose v1); skipped,
/// saying so, when neither is installed.
#[test]
fn compose_file_is_valid_for_compose() {
    let file = repo_root().join("compose/docker-compose.yml");
    let tools: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for tool in tools {
        let found = Command::new(tool[0]).args(&tool[1..]).arg("version").output().is_ok_and(|o| o.status.success());
        if !found {
            continue;
        }
        let (ok, text) = run(Command::new(tool[0]).args(&tool[1..]).arg("-f").arg(&file).args(["config", "-q"]));
        assert!(ok, "{} config rejected compose/docker-compose.yml:\n{text}", tool.join(" "));
        return;
    }
    println!("SKIP: neither 'docker compose' nor 'docker-compose' is installed; the Compose file was not validated");
}

/// Compose services, the NGINX upstream, the Prometheus targets, the proxies' shard list and the Grafana
/// provisioning agree (deploy/tests/check_files.py).
#[test]
fn compose_nginx_prometheus_and_proxy_list_agree() {
    let script = repo_root().join("deploy/tests/check_files.py");
    let (ok, text) = run(Command::new("python3").arg(&script).arg("compose"));
    assert!(ok, "{text}");
}

/// Every manifest validates against the Kubernetes schemas (kubernetes-validate --strict, offline: the
/// package ships them), and the manifests agree with each other (deploy/tests/check_files.py).
#[test]
fn kubernetes_manifests_validate() {
    let dir = repo_root().join("deploy/k8s");
    let mut manifests: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("kustomization.yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 5, "expected the manifests in {}", dir.display());
    let (ok, text) =
        run(Command::new("python3").args(["-m", "kubernetes_validate", "--strict", "--quiet"]).args(&manifests));
    assert!(ok, "kubernetes-validate (pip install kubernetes-validate) rejected a manifest:\n{text}");
    let script = repo_root().join("deploy/tests/check_files.py");
    let (ok, text) = run(Command::new("python3").arg(&script).arg("k8s"));
    assert!(ok, "{text}");
}

/// The ZooKeeper overlay (deploy/k8s-zookeeper) applies to the base manifests, the result validates against
/// the Kubernetes schemas, and shards and proxies name the same ensemble and cluster.
#[test]
fn the_zookeeper_overlay_applies_and_validates() {
    let script = repo_root().join("deploy/tests/check_files.py");
    let (ok, text) = run(Command::new("python3").arg(&script).arg("k8s-zookeeper"));
    assert!(ok, "{text}");
}

/// A one-connection fake server: answers AUTH with +OK (remembering it) and PING with `ping_reply`, or
/// with -NOAUTH when `password_required` and no AUTH came first.
fn fake_server(ping_reply: &'static str, password_required: bool) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut authenticated = false;
        let mut buf = [0u8; 1024];
        loop {
            let n = conn.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
            let reply = if request.contains("AUTH") {
                authenticated = true;
                "+OK\r\n"
            } else if password_required && !authenticated {
                "-NOAUTH Authentication required.\r\n"
            } else {
                ping_reply
            };
            conn.write_all(reply.as_bytes()).unwrap();
        }
    });
    (port, server)
}

/// docker/healthcheck.sh (the images' HEALTHCHECK and the Kubernetes readiness probe) passes only when
/// PING gets PONG: a shard restoring its snapshot (-LOADING), a password it was not given (-NOAUTH) and a
/// closed port are all unhealthy. The password comes from RINGCACHE_REQUIREPASS.
#[test]
fn healthcheck_passes_only_on_pong() {
    let script = repo_root().join("docker/healthcheck.sh");
    let check = |port: u16, password: Option<&str>| {
        let mut cmd = Command::new("sh");
        cmd.arg(&script).arg(port.to_string()).env_remove("RINGCACHE_PORT").env_remove("RINGCACHE_REQUIREPASS");
        if let Some(pw) = password {
            cmd.env("RINGCACHE_REQUIREPASS", pw);
        }
        run(&mut cmd)
    };
    let cases: [(&str, bool, Option<&str>, bool); 5] = [
        ("+PONG\r\n", false, None, true),
        ("-LOADING Ringcache is loading the dataset in memory\r\n", false, None, false),
        ("+PONG\r\n", true, None, false),
        ("+PONG\r\n", true, Some("secret"), true),
        ("-ERR unknown command 'ping'\r\n", false, None, false),
    ];
    for (reply, password_required, password, healthy) in cases {
        let (port, server) = fake_server(reply, password_required);
        let (ok, text) = check(port, password);
        assert_eq!(ok, healthy, "PING -> {reply:?} (password required: {password_required}): {text}");
        server.join().unwrap();
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ok, text) = check(closed, None);
    assert!(!ok, "healthy with nothing listening: {text}");
}

/// The Dockerfiles share their runtime base and build stages word for word (so the workspace compiles
/// once for the three images), keep the `prebuilt` stage before the Rust one (the classic builder builds
/// every stage up to the target), run as a non-root user and check health with `redis-cli -e`.
#[test]
fn dockerfiles_share_their_stages() {
    let read = |c: &str| std::fs::read_to_string(repo_root().join(c).join("Dockerfile")).unwrap();
    let stage = |text: &str, name: &str| -> String {
        let start = text.find(&format!(" AS {name}\n")).unwrap_or_else(|| panic!("no stage {name}"));
        let from = text[..start].rfind("FROM ").unwrap();
        let end = text[start..].find("\nFROM ").map_or(text.len(), |e| start + e);
        text[from..end].to_string()
    };
    let shard = read("shard");
    for other in ["proxy", "loadgen"] {
        let text = read(other);
        assert_eq!(stage(&shard, "runtime-base"), stage(&text, "runtime-base"), "{other}/Dockerfile runtime-base");
        assert_eq!(stage(&shard, "build"), stage(&text, "build"), "{other}/Dockerfile build stage");
    }
    for crate_dir in ["shard", "proxy", "loadgen"] {
        let text = read(crate_dir);
        let at = |s: &str| text.find(&format!(" AS {s}\n")).unwrap();
        assert!(at("prebuilt") < at("build"), "{crate_dir}: the prebuilt stage must come before the Rust stage");
        assert!(text.trim_end().lines().rev().any(|l| l.starts_with("FROM ") && l.ends_with(" AS runtime")));
        assert!(text.contains("USER ringcache"), "{crate_dir}: must run as a non-root user");
        assert!(repo_root().join("docker/prebuilt").join(crate_dir).join(".gitignore").exists());
    }
    for crate_dir in ["shard", "proxy"] {
        assert!(read(crate_dir).contains("HEALTHCHECK"), "{crate_dir}: no HEALTHCHECK");
    }
    // The Rust image must be at least the workspace's rust-version, or cargo refuses to build (the build
    // stage cannot run here, so this is checked from the text).
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("no rust-version in Cargo.toml");
    let image = shard.lines().find_map(|l| l.strip_prefix("FROM rust:")).expect("no Rust image");
    let image = image.split_whitespace().next().unwrap();
    let image_version = image.split('-').next().unwrap();
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(
        parse(image_version) >= parse(&required),
        "the Dockerfiles build with rust:{image}, older than the workspace's rust-version {required}"
    );
    let check = std::fs::read_to_string(repo_root().join("docker/healthcheck.sh")).unwrap();
    assert!(check.contains("redis-cli -e"), "the healthcheck must fail on error replies such as -LOADING");
}
