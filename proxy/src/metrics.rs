//! The proxy's Prometheus metrics: per-shard backend health and traffic, plus the shared command metrics.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use ringcache_common::metrics::{CommandCollector, ErrorCollector, DURATION_BUCKETS_SECONDS};

use crate::backend::BackendError;

/// Metric families with a `shard` label.
pub struct ProxyMetrics {
    pub registry: Registry,
    up: IntGaugeVec,
    requests: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    ejections: IntCounterVec,
    passive_ejections: IntCounterVec,
    handoff_keys: IntCounterVec,
    handoff_failures: IntCounterVec,
}

impl ProxyMetrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let up = IntGaugeVec::new(
            Opts::new("ringcache_proxy_backend_up", "1 while the shard passes health checks."),
            &["shard"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new("ringcache_proxy_backend_requests_total", "Requests sent to the shard."),
            &["shard"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("ringcache_proxy_backend_errors_total", "Requests to the shard that failed, by kind."),
            &["shard", "kind"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("ringcache_proxy_backend_duration_seconds", "Time from sending a request to its reply.")
                .buckets(DURATION_BUCKETS_SECONDS.to_vec()),
            &["shard"],
        )?;
        let ejections = IntCounterVec::new(
            Opts::new("ringcache_proxy_ejections_total", "Times the shard was marked down by health checks."),
            &["shard"],
        )?;
        let passive_ejections = IntCounterVec::new(
            Opts::new(
                "ringcache_proxy_passive_ejections_total",
                "Ejections (counted in ringcache_proxy_ejections_total too) made at once because requests found the \
                 shard's connection refused or reset and a probe confirmed it.",
            ),
            &["shard"],
        )?;
        let handoff_keys = IntCounterVec::new(
            Opts::new(
                "ringcache_proxy_handoff_keys_total",
                "Keys written elsewhere while the shard was down and handed back to it when it returned.",
            ),
            &["shard"],
        )?;
        let handoff_failures = IntCounterVec::new(
            Opts::new(
                "ringcache_proxy_handoff_failures_total",
                "Handoffs to a returning shard that failed (it stays down; the next health check retries).",
            ),
            &["shard"],
        )?;
        registry.register(Box::new(handoff_keys.clone()))?;
        registry.register(Box::new(handoff_failures.clone()))?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(ejections.clone()))?;
        registry.register(Box::new(passive_ejections.clone()))?;
        registry.register(Box::new(CommandCollector::new()))?;
        registry.register(Box::new(ErrorCollector::new()))?;
        Ok(ProxyMetrics {
            registry,
            up,
            requests,
            errors,
            duration,
            ejections,
            passive_ejections,
            handoff_keys,
            handoff_failures,
        })
    }

    /// The metrics of one shard.
    pub fn backend(&self, shard: &str) -> BackendMetrics {
        BackendMetrics {
            up: self.up.with_label_values(&[shard]),
            requests: self.requests.with_label_values(&[shard]),
            errors: BackendError::KINDS.map(|kind| self.errors.with_label_values(&[shard, kind])),
            duration: self.duration.with_label_values(&[shard]),
            ejections: self.ejections.with_label_values(&[shard]),
            passive_ejections: self.passive_ejections.with_label_values(&[shard]),
            handoff_keys: self.handoff_keys.with_label_values(&[shard]),
            handoff_failures: self.handoff_failures.with_label_values(&[shard]),
        }
    }
}

/// Handles to one shard's series, resolved once so the hot path does no label lookups.
pub struct BackendMetrics {
    pub up: prometheus::IntGauge,
    requests: prometheus::IntCounter,
    errors: [prometheus::IntCounter; BackendError::KINDS.len()],
    duration: prometheus::Histogram,
    pub ejections: prometheus::IntCounter,
    pub passive_ejections: prometheus::IntCounter,
    pub handoff_keys: prometheus::IntCounter,
    pub handoff_failures: prometheus::IntCounter,
}

impl BackendMetrics {
    pub fn requests(&self, n: u64) {
        self.requests.inc_by(n);
    }

    pub fn error(&self, e: BackendError) {
        self.errors[e.kind_index()].inc();
    }

    /// A thread-local view of the latency histogram: observations are added to the shared one only when
    /// it is flushed (once per batch of replies), so the hot path touches no shared atomics per reply.
    pub fn local_duration(&self) -> prometheus::local::LocalHistogram {
        self.duration.local()
    }
}
