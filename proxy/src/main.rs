//! `ringcache-proxy`: parses the command line and runs the proxy; everything else is in the library.

use std::sync::Arc;

use anyhow::Context as _;
use ringcache_common::config::socket_addr;
use ringcache_common::metrics::{Value, ValueCollector};
use ringcache_common::workers::Workers;
use ringcache_proxy::cluster::{Cluster, ClusterSettings};
use ringcache_proxy::config::ProxyArgs;
use ringcache_proxy::membership;
use ringcache_proxy::metrics::ProxyMetrics;
use ringcache_proxy::session::{self, ProxyShared};

/// mimalloc, with blocks of 256 KiB and more (buffers of big values) mapped on their own and given back to
/// the kernel when freed (see `ringcache_alloc`).
#[global_allocator]
static GLOBAL: ringcache_alloc::ServerAllocator = ringcache_alloc::ServerAllocator;

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "admin") {
        std::process::exit(ringcache_proxy::admin::main(std::env::args_os().skip(1)));
    }
    let args: ProxyArgs = ringcache_common::config::parse_args_or_exit()?;
    args.client.init_logging().map_err(anyhow::Error::msg)?;
    // Thread per core: `--threads` workers run the client sessions and their shard connections; this thread
    // runs the control plane (accepting, health checks, handoffs, reloads, metrics).
    let workers =
        Workers::start(args.client.worker_threads(), "ringcache-proxy").context("cannot start the workers")?;
    let control =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    let result = control.block_on(serve(args, workers.handles()));
    workers.stop();
    result
}

async fn serve(args: ProxyArgs, workers: &[tokio::runtime::Handle]) -> anyhow::Result<()> {
    // Before any shard connection (the membership source may open some): TLS to shards, if asked.
    if let Some(connector) = ringcache_common::tls::TlsConnector::from_args(&args.tls, &args.tls_shards)? {
        ringcache_proxy::tls::set_shard_connector(connector);
    }
    let tls = ringcache_common::tls::TlsAcceptor::from_args(&args.tls)?;
    let (membership, shards) = membership::Source::open(&args).await?;
    let shutdown = ringcache_common::shutdown::on_signals()?;
    let metrics = Arc::new(ProxyMetrics::new()?);
    let settings = ClusterSettings {
        key_hash: args.key_hash,
        hash_tag: args.hash_tag,
        timeout: args.timeout,
        health_interval: args.health_interval,
        failure_limit: args.failure_limit.max(1),
        backend_connections: args.backend_connections.max(1),
        shard_password: args.shard_credentials().map_err(anyhow::Error::msg)?,
        replicas: usize::from(args.replicas),
        handoff: args.handoff,
    };
    let names: Vec<String> = shards.iter().map(|s| format!("{}={}", s.name, s.addr)).collect();
    let cluster = Cluster::new(shards, settings, metrics.clone(), shutdown.clone(), workers);
    membership.install(&cluster);
    membership::register_metrics(&metrics.registry, &cluster)?;
    // Before the port is open to clients: a shard with writes waiting for it elsewhere must not be read yet.
    cluster.recover_handoffs().await;
    cluster.start_health_checks();
    // With a TLS port, `--port 0` turns plain TCP off (as Redis).
    let ringcache_common::server::ClientListeners { plain: listener, tls: tls_listener, local } =
        ringcache_common::server::ClientListeners::bind(
            &args.bind,
            args.port,
            args.tls.tls_port,
            tls,
            args.client.tcp_backlog,
        )?;
    let advertised = if local.ip().is_unspecified() {
        format!("{}:{}", ringcache_coord::session::host_name(), local.port())
    } else {
        local.to_string()
    };
    membership.spawn(cluster.clone(), advertised, shutdown.clone());
    if args.metrics_port != 0 {
        let metrics_addr = socket_addr(&args.bind, args.metrics_port).map_err(anyhow::Error::msg)?;
        let bound = ringcache_common::metrics::serve(metrics_addr, metrics.registry.clone(), shutdown.clone())
            .await
            .with_context(|| format!("cannot listen for metrics on {metrics_addr}"))?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    ringcache_proxy::blocking::set_max_idle(args.blocking_idle_connections);
    let shared = Arc::new(
        ProxyShared::new(
            cluster,
            args.client.acl().map_err(anyhow::Error::msg)?,
            args.client.limits(),
            args.client.maxclients,
            args.client.idle_timeout,
            local.port(),
        )
        .with_output_limits(args.client_output_buffer_limit)
        .with_state_limits(args.state.limits(), args.tracking_table_max_keys)
        .with_diagnostics(&args.client.diagnostics, args.config.clone())
        .with_hot_keys(ringcache_proxy::hotkeys::HotKeys::new(args.hot_keys, args.hot_keys_sample)),
    );
    if let Some(hot) = &shared.hot_keys {
        metrics.registry.register(Box::new(ringcache_proxy::hotkeys::HotKeysCollector::new(hot.clone())?))?;
    }
    // The registry is shared with the metrics server already running, so this is visible from now on.
    let counters = shared.connections.clone();
    let (c1, c2, c3) = (counters.clone(), counters.clone(), counters);
    let (o1, o2, o3, o4) = (shared.clone(), shared.clone(), shared.clone(), shared.clone());
    metrics.registry.register(Box::new(ValueCollector::new(vec![
        Value::gauge("ringcache_connected_clients", "Open client connections.", move || c1.connected() as f64),
        Value::gauge("ringcache_slowlog_length", "Entries in the proxy's slow log (SLOWLOG LEN).", move || {
            o4.diagnostics.slowlog_len() as f64
        }),
        Value::counter("ringcache_connections_received_total", "Client connections accepted.", move || {
            c2.total() as f64
        }),
        Value::counter(
            "ringcache_rejected_connections_total",
            "Client connections refused by maxclients.",
            move || c3.rejected() as f64,
        ),
        Value::gauge(
            "ringcache_proxy_output_limited_clients",
            "Clients not read from because their unsent replies reached the soft output limit.",
            move || o1.output_stats.limited_clients() as f64,
        ),
        Value::counter(
            "ringcache_proxy_output_limit_disconnections_total",
            "Clients disconnected by --client-output-buffer-limit (hard limit, or soft limit for soft-seconds).",
            move || o2.output_stats.disconnections() as f64,
        ),
        Value::gauge(
            "ringcache_proxy_client_recent_max_output_buffer_bytes",
            "The most unsent reply bytes any client had in the last 8 seconds.",
            move || o3.output_stats.recent_max(o3.started.elapsed().as_secs()) as f64,
        ),
    ])))?;
    tracing::info!("ringcache-proxy {} listening on {local}, shards: {}", env!("CARGO_PKG_VERSION"), names.join(", "));
    // Plain TCP and TLS clients are served alike, side by side, until shutdown.
    let plain = async {
        match listener {
            Some(listener) => session::run(listener, shared.clone(), shutdown.clone(), workers).await,
            None => Ok(()),
        }
    };
    let tls = async {
        match tls_listener {
            Some((tls_listener, acceptor)) => {
                tracing::info!("TLS clients on {}", tls_listener.local_addr()?);
                ringcache_common::tls::watch_reload(acceptor.clone(), shutdown.clone());
                ringcache_proxy::tls::run(tls_listener, acceptor, shared.clone(), shutdown.clone(), workers).await
            }
            None => Ok(()),
        }
    };
    let (plain, tls) = tokio::join!(plain, tls);
    plain?;
    tls?;
    tracing::info!("shut down cleanly");
    Ok(())
}
