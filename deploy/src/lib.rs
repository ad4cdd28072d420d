//! Test support for the deployment files; the tests themselves are in `tests/`.
//!
//! The deployment lives outside Rust code: Dockerfiles (`shard/`, `proxy/`, `loadgen/`), the Compose stack
//! (`compose/`), the NGINX config (`nginx-stream/`), Grafana provisioning (`grafana/`) and Kubernetes
//! manifests (`deploy/k8s/`). This crate checks them with the tools that consume them (`nginx -t`,
//! `promtool`, `kubernetes-validate`, Compose, a Docker engine) and against what the binaries really do,
//! so that `cargo test --workspace` covers them like the code:
//!
//! - `tests/files.rs`: every file is accepted by its own tool, and the files agree with each other (the
//!   proxies NGINX balances over, the targets Prometheus scrapes and the shards the proxies route to are
//!   the services Compose defines; the Kubernetes shard list matches the StatefulSet).
//! - `tests/grafana_dashboard.rs`: the dashboard's panels, and every PromQL expression in it, valid for
//!   `promtool` and querying only metrics a running shard and proxy export.
//! - `tests/compose_offline.rs`: `compose/test/offline.sh`, the whole stack on the local Docker engine
//!   (skipped, saying so, when no engine answers).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs a command and returns (success, stdout + stderr). Panics, naming the command, when it cannot be
/// started at all: the tools these tests use are installed by `.ci/run`.
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (does .ci/run install it?)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The directory cargo puts this build's binaries in (`target/debug` for `cargo test`).
pub fn binaries_dir() -> PathBuf {
    // A test executable is target/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
}

/// The workspace's binaries (`ringcache-shard`, `ringcache-proxy`, `ringcache-loadgen`) in
/// [`binaries_dir`], built first when one is missing or older than its sources. `cargo test --workspace`
/// builds the shard and proxy with everything else; after `cargo test -p ringcache-deploy-tests` alone, or
/// for the loadgen (which has no tests that need it), they are built here once per test process.
pub fn workspace_binaries() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = binaries_dir();
        let root = repo_root();
        let crates = [("ringcache-shard", "shard"), ("ringcache-proxy", "proxy"), ("ringcache-loadgen", "loadgen")];
        let stale = crates.iter().any(|(bin, crate_dir)| {
            let built = std::fs::metadata(dir.join(bin)).and_then(|m| m.modified()).ok();
            let sources = ["common/src", "common/Cargo.toml", "Cargo.lock"]
                .into_iter()
                .map(|p| root.join(p))
                .chain([root.join(crate_dir).join("src"), root.join(crate_dir).join("Cargo.toml")]);
            let newest = sources.filter_map(|p| newest_mtime(&p)).max();
            built.is_none() || newest > built
        });
        if stale {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--quiet", "-p", "ringcache-shard", "-p", "ringcache-proxy", "-p", "ringcache-loadgen"]);
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            let (ok, text) = run(&mut cmd);
            assert!(ok, "building the workspace binaries failed:\n{text}");
        }
        dir
    })
    .clone()
}

/// The newest modification time of a file, or of any file under a directory.
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|e| e.ok()).filter_map(|e| newest_mtime(&e.path())).max()
}
