//! The Compose stack for real: runs `compose/test/offline.sh` on the local Docker engine with the binaries
//! this `cargo test` built (stripped, in the Dockerfiles' `prebuilt` target). Without a Docker engine the
//! script says so and the test passes as skipped, printing why; everything it starts is removed either way.
//!
//! Takes a few minutes (about two on 2 cores once the images are cached; the first run also debootstraps a
//! Debian base and builds the nginx and Prometheus images from Debian packages).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use ringcache_deploy_tests::{repo_root, workspace_binaries};

/// The script's exit status when no Docker engine answers.
const SKIPPED: i32 = 77;

#[test]
fn compose_stack_on_the_local_docker_engine() {
    if !Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success()) {
        println!("SKIP: no Docker engine answers ('docker info' failed), so the Compose stack was not tested");
        return;
    }
    let script = repo_root().join("compose/test/offline.sh");
    let status = Command::new("bash")
        .arg(&script)
        .env("RINGCACHE_PREBUILT_DIR", workspace_binaries())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    match status.code() {
        Some(0) => {}
        Some(SKIPPED) => println!("SKIP: {} skipped itself (see its output above)", script.display()),
        _ => panic!("{} failed ({status}); its output above says where", script.display()),
    }
}
