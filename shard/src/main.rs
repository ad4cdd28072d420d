//! `ringcache-shard`: parses the command line and runs the server; everything else is in the library.

use std::sync::Arc;

use anyhow::Context as _;
use ringcache_common::config::socket_addr;
use ringcache_shard::config::ShardArgs;
use ringcache_shard::handoff::Handoffs;
use ringcache_shard::registry::{self, RegistryStatus};
use ringcache_shard::server::{self, Membership, ServerConfig, Shared};
use ringcache_shard::snapshot::Persistence;
use ringcache_shard::{shard_metrics, store};

/// mimalloc packs the store's small blobs tightly (a 48-byte blob takes 48 bytes); built with `no_thp`
/// because transparent huge pages added ~15 bytes of RSS per key in `bench/shard_vs_redis.sh`. Blocks of
/// 256 KiB and more are mapped on their own and given back to the kernel when freed (see `ringcache_alloc`).
#[global_allocator]
static GLOBAL: ringcache_alloc::ServerAllocator = ringcache_alloc::ServerAllocator;

fn main() -> anyhow::Result<()> {
    let args: ShardArgs = ringcache_common::config::parse_args_or_exit()?;
    let runtime = args.client.init_process("ringcache-shard").map_err(anyhow::Error::msg)?;
    runtime.block_on(serve(args))
}

/// Before exiting on SIGTERM (not Ctrl-C): when a ringcache-proxy is connected, refuse writes and wait (up
/// to `--drain-timeout`, or until no proxy is connected) until a proxy has copied this shard's keys to the
/// shards that take its place.
async fn drain(shared: Arc<Shared>, timeout: std::time::Duration, signal: &'static str) {
    if signal != "SIGTERM" || timeout.is_zero() || !shared.proxy_connected() {
        return;
    }
    tracing::info!("leaving: waiting for a proxy to hand this shard's keys to other shards");
    shared.start_leaving();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        tick.tick().await;
        if shared.membership() == Membership::Drained {
            tracing::info!("drained: every key is on another shard");
            return;
        }
        if !shared.proxy_connected() {
            tracing::warn!("leaving: no proxy is connected any more: exiting without handing keys over");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!("no proxy drained this shard within {timeout:?} (--drain-timeout): exiting anyway");
            return;
        }
    }
}

async fn serve(args: ShardArgs) -> anyhow::Result<()> {
    // Before the listening socket exists: a SIGTERM as soon as a client can connect is a clean stop.
    let signals = ringcache_common::shutdown::Signals::install()?;
    let tls = ringcache_common::tls::TlsAcceptor::from_args(&args.tls)?;
    // With a TLS port, `--port 0` turns plain TCP off (as Redis).
    let ringcache_common::server::ClientListeners { plain: listener, tls: tls_listener, local } =
        ringcache_common::server::ClientListeners::bind(
            &args.bind,
            args.port,
            args.tls.tls_port,
            tls,
            args.client.tcp_backlog,
        )?;
    if args.maxmemory > 0 {
        // Freed large blocks the allocator keeps for reuse (so big values do not fault in fresh pages on
        // every request) stay within the slack of the memory target, RSS within 1.5 x maxmemory + 20 MB.
        let retained = (args.maxmemory as usize / 4).min(1 << 30);
        ringcache_alloc::set_retained_limit_bytes(retained);
    }
    let store = Arc::new(store::Store::new(args.maxmemory as usize, args.stripes));
    store.set_eviction_policy(args.maxmemory_policy);
    store.set_maxmemory_samples(args.maxmemory_samples);
    store.set_lfu_log_factor(args.lfu_log_factor);
    store.set_lfu_decay_time(args.lfu_decay_time);
    let persistence = Persistence::open(args.snapshot_config(), store.clone())?;
    let config = ServerConfig {
        bind: args.bind.clone(),
        port: local.port(),
        maxclients: args.client.maxclients,
        acl: Arc::new(args.client.acl().map_err(anyhow::Error::msg)?),
        idle_timeout: args.client.idle_timeout,
        limits: args.client.limits(),
        state: args.state_limits(),
        scripts: args.script_limits(),
        diagnostics: args.client.diagnostics.clone(),
        config_file: args.config.clone(),
    };
    let shared =
        Arc::new(Shared::new(config, store.clone(), persistence.clone(), Handoffs::new(args.handoff_max_keys))?);
    let registration = args.registry.registration(&args.bind, local.port()).map_err(anyhow::Error::msg)?;
    let drain_timeout = args.drain_timeout;
    let draining = shared.clone();
    let shutdown = signals.watch_after(move |signal| drain(draining, drain_timeout, signal));
    // Restores the snapshot (clients get -LOADING meanwhile), then takes periodic ones.
    let snapshots = persistence.start(shutdown.clone())?;
    let expiry = store::spawn_active_expiry(store.clone(), shutdown.clone())?;
    let registry_status = Arc::new(RegistryStatus::default());
    if let Some(registration) = registration {
        tokio::spawn(registry::run(registration, shared.clone(), registry_status.clone(), shutdown.clone()));
    }
    if args.metrics_port != 0 {
        let metrics_addr = socket_addr(&args.bind, args.metrics_port).map_err(anyhow::Error::msg)?;
        let registry = shard_metrics::registry(shared.clone())?;
        registry.register(Box::new(registry_status.collector()))?;
        let bound = ringcache_common::metrics::serve(metrics_addr, registry, shutdown.clone())
            .await
            .with_context(|| format!("cannot listen for metrics on {metrics_addr}"))?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    tracing::info!(
        "ringcache-shard {} listening on {local} (maxmemory {} bytes, {} stripes, snapshots in {} every {})",
        env!("CARGO_PKG_VERSION"),
        args.maxmemory,
        args.stripes,
        args.dir.display(),
        if args.snapshot_interval.is_zero() {
            "- (off)".to_string()
        } else {
            humantime::format_duration(args.snapshot_interval).to_string()
        }
    );
    // Plain TCP and TLS clients are served alike, side by side, until shutdown.
    let plain = async {
        match listener {
            Some(listener) => server::run(listener, shared.clone(), shutdown.clone()).await,
            None => Ok(()),
        }
    };
    let tls = async {
        match tls_listener {
            Some((tls_listener, acceptor)) => {
                tracing::info!("TLS clients on {}", tls_listener.local_addr()?);
                ringcache_common::tls::watch_reload(acceptor.clone(), shutdown.clone());
                ringcache_shard::tls::run(tls_listener, acceptor, shared.clone(), shutdown.clone()).await
            }
            None => Ok(()),
        }
    };
    let (plain, tls) = tokio::join!(plain, tls);
    plain?;
    tls?;
    let _ = expiry.join();
    // Waits for a snapshot being written, then takes the final one (off the async runtime).
    tokio::task::spawn_blocking(move || snapshots.finish()).await?.map_err(anyhow::Error::msg)?;
    tracing::info!("shut down cleanly");
    Ok(())
}
