//! Prometheus metrics: per-thread command statistics, scrape-time values, and the `/metrics` server.
//!
//! Commands are counted and timed on the hot path, so they never touch a shared atomic: each thread owns a
//! [`ThreadSlot`] of counters that only it writes (plain relaxed loads and stores, no read-modify-write and
//! no cache-line sharing between cores), and a scrape sums every thread's slot. Values that already live
//! somewhere else (memory used, key count, connected clients) are read at scrape time by a [`ValueCollector`]
//! instead of being mirrored into gauges.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{body::Incoming, Request, Response};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::command::COMMANDS;

/// Upper bounds, in seconds, of the command latency histogram buckets (10 µs to 1 s).
pub const DURATION_BUCKETS_SECONDS: [f64; 14] =
    [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.25, 1.0];

const BUCKET_BOUNDS_NS: [u64; 14] = {
    let mut out = [0u64; 14];
    let mut i = 0;
    while i < 14 {
        out[i] = (DURATION_BUCKETS_SECONDS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

/// Counters that are not per command but are bumped per command on the hot path.
#[derive(Debug, Clone, Copy)]
pub enum HotCounter {
    KeyspaceHits = 0,
    KeyspaceMisses = 1,
    /// Write commands that succeeded (the shard's "changes since the last snapshot").
    Writes = 2,
}
const HOT_COUNTERS: usize = 3;

/// One single-writer counter: only the owning thread stores into it; scrapes load it.
#[derive(Default)]
struct LocalCounter(AtomicU64);

impl LocalCounter {
    #[inline]
    fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Default)]
struct CommandCell {
    count: LocalCounter,
    sum_ns: LocalCounter,
    buckets: [LocalCounter; 14],
}

/// One thread's statistics. Written only by its thread, read by scrapes.
pub struct ThreadSlot {
    commands: Box<[CommandCell]>,
    hot: [LocalCounter; HOT_COUNTERS],
}

static SLOTS: LazyLock<Mutex<Vec<Arc<ThreadSlot>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

thread_local! {
    static SLOT: Arc<ThreadSlot> = {
        let slot = Arc::new(ThreadSlot {
            commands: COMMANDS.iter().map(|_| CommandCell::default()).collect(),
            hot: Default::default(),
        });
        SLOTS.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
        slot
    };
}

/// Records one executed command (index into [`COMMANDS`]) and how long it took.
#[inline]
pub fn record_command(command_index: usize, elapsed: Duration) {
    let ns = elapsed.as_nanos().min(u128::from(u64::MAX)) as u64;
    SLOT.with(|slot| {
        if let Some(cell) = slot.commands.get(command_index) {
            cell.count.add(1);
            cell.sum_ns.add(ns);
            if let Some(b) = BUCKET_BOUNDS_NS.iter().position(|&bound| ns <= bound) {
                cell.buckets[b].add(1);
            }
        }
    });
}

/// Adds `n` to one of the hot-path counters.
#[inline]
pub fn add_hot(counter: HotCounter, n: u64) {
    SLOT.with(|slot| slot.hot[counter as usize].add(n));
}

/// Sum over all threads of a hot counter (for INFO).
pub fn hot_total(counter: HotCounter) -> u64 {
    slots().iter().map(|s| s.hot[counter as usize].get()).sum()
}

/// Sum over all threads of executed commands (for INFO).
pub fn commands_total() -> u64 {
    slots().iter().flat_map(|s| s.commands.iter()).map(|c| c.count.get()).sum()
}

/// Per command that has run at least once: its name, calls and total execution time in nanoseconds, summed
/// over all threads (for `INFO commandstats`).
pub fn command_stats() -> Vec<(&'static str, u64, u64)> {
    let slots = slots();
    COMMANDS
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let calls: u64 = slots.iter().map(|s| s.commands[i].count.get()).sum();
            let sum_ns: u64 = slots.iter().map(|s| s.commands[i].sum_ns.get()).sum();
            (calls > 0).then_some((spec.name, calls, sum_ns))
        })
        .collect()
}

/// Per command that has run at least once: its calls and cumulative counts at the duration buckets' upper
/// bounds in microseconds, where the count grows (for LATENCY HISTOGRAM and `INFO latencystats`).
pub fn command_histograms() -> Vec<crate::diagnostics::CommandHistogram> {
    let slots = slots();
    COMMANDS
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let calls: u64 = slots.iter().map(|s| s.commands[i].count.get()).sum();
            if calls == 0 {
                return None;
            }
            let mut cumulative = Vec::new();
            let mut seen = 0;
            for (b, bound_ns) in BUCKET_BOUNDS_NS.iter().enumerate() {
                let n: u64 = slots.iter().map(|s| s.commands[i].buckets[b].get()).sum();
                if n > 0 {
                    seen += n;
                    cumulative.push((bound_ns / 1000, seen));
                }
            }
            // Commands slower than the last bound are in no bucket.
            if seen < calls {
                cumulative.push((u64::MAX / 1000, calls));
            }
            Some(crate::diagnostics::CommandHistogram { name: spec.name, calls, cumulative })
        })
        .collect()
}

/// Zeroes every command statistic and hot counter (CONFIG RESETSTAT). A count a thread adds at the same
/// instant may survive the reset: statistics, not accounts.
pub fn reset_stats() {
    for slot in slots() {
        for cell in slot.commands.iter() {
            cell.count.0.store(0, Relaxed);
            cell.sum_ns.0.store(0, Relaxed);
            for b in &cell.buckets {
                b.0.store(0, Relaxed);
            }
        }
        for c in &slot.hot {
            c.0.store(0, Relaxed);
        }
    }
}

fn slots() -> Vec<Arc<ThreadSlot>> {
    SLOTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Exposes the per-thread command statistics as `ringcache_commands_total{cmd}`,
/// `ringcache_command_duration_seconds{cmd}`, `ringcache_keyspace_hits_total` and
/// `ringcache_keyspace_misses_total`.
pub struct CommandCollector {
    descs: Vec<Desc>,
}

impl CommandCollector {
    pub fn new() -> Self {
        let d = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(name.into(), help.into(), labels.iter().map(|s| s.to_string()).collect(), HashMap::new())
                .expect("static metric description is valid")
        };
        CommandCollector {
            descs: vec![
                d("ringcache_commands_total", "Commands executed, by command.", &["cmd"]),
                d("ringcache_command_duration_seconds", "Command execution time, by command.", &["cmd"]),
                d("ringcache_keyspace_hits_total", "Key lookups that found the key.", &[]),
                d("ringcache_keyspace_misses_total", "Key lookups that did not find the key.", &[]),
            ],
        }
    }
}

impl Default for CommandCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for CommandCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let slots = slots();
        let mut counts = family("ringcache_commands_total", "Commands executed, by command.", MetricType::COUNTER);
        let mut durations =
            family("ringcache_command_duration_seconds", "Command execution time, by command.", MetricType::HISTOGRAM);
        for (i, spec) in COMMANDS.iter().enumerate() {
            let count: u64 = slots.iter().map(|s| s.commands[i].count.get()).sum();
            if count == 0 {
                continue;
            }
            let sum_ns: u64 = slots.iter().map(|s| s.commands[i].sum_ns.get()).sum();
            let mut c = proto::Counter::default();
            c.set_value(count as f64);
            let mut m = proto::Metric::from_label(vec![label("cmd", spec.name)]);
            m.set_counter(c);
            counts.mut_metric().push(m);

            let mut h = proto::Histogram::default();
            h.set_sample_count(count);
            h.set_sample_sum(sum_ns as f64 / 1e9);
            let mut cumulative = 0;
            let buckets = DURATION_BUCKETS_SECONDS
                .iter()
                .enumerate()
                .map(|(b, &upper)| {
                    cumulative += slots.iter().map(|s| s.commands[i].buckets[b].get()).sum::<u64>();
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(upper);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect();
            h.set_bucket(buckets);
            let mut m = proto::Metric::from_label(vec![label("cmd", spec.name)]);
            m.set_histogram(h);
            durations.mut_metric().push(m);
        }
        let hot = |c: HotCounter| slots.iter().map(|s| s.hot[c as usize].get()).sum::<u64>() as f64;
        vec![
            counts,
            durations,
            single(
                "ringcache_keyspace_hits_total",
                "Key lookups that found the key.",
                MetricType::COUNTER,
                hot(HotCounter::KeyspaceHits),
            ),
            single(
                "ringcache_keyspace_misses_total",
                "Key lookups that did not find the key.",
                MetricType::COUNTER,
                hot(HotCounter::KeyspaceMisses),
            ),
        ]
    }
}

/// `ringcache_errors_total{error}`: error replies sent to clients by their first word (`ERR`, `WRONGTYPE`,
/// `OOM`, ...), the counts of INFO errorstats (`crate::diagnostics::count_error`), read at scrape time.
pub struct ErrorCollector {
    desc: Desc,
}

const ERRORS_NAME: &str = "ringcache_errors_total";
const ERRORS_HELP: &str = "Error replies sent to clients, by error type (the reply's first word, as INFO errorstats).";

impl ErrorCollector {
    pub fn new() -> Self {
        let desc = Desc::new(ERRORS_NAME.into(), ERRORS_HELP.into(), vec!["error".into()], HashMap::new())
            .expect("static metric description is valid");
        ErrorCollector { desc }
    }
}

impl Default for ErrorCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for ErrorCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut f = family(ERRORS_NAME, ERRORS_HELP, MetricType::COUNTER);
        for (kind, count) in crate::diagnostics::error_counts() {
            let mut c = proto::Counter::default();
            c.set_value(count as f64);
            let mut m = proto::Metric::from_label(vec![label("error", &kind)]);
            m.set_counter(c);
            f.mut_metric().push(m);
        }
        vec![f]
    }
}

/// A metric whose value is read at scrape time from wherever it already lives.
pub struct Value {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricType,
    pub read: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl Value {
    pub fn gauge(name: &'static str, help: &'static str, read: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        Value { name, help, kind: MetricType::GAUGE, read: Box::new(read) }
    }
    pub fn counter(name: &'static str, help: &'static str, read: impl Fn() -> f64 + Send + Sync + 'static) -> Self {
        Value { name, help, kind: MetricType::COUNTER, read: Box::new(read) }
    }
}

/// A collector of scrape-time [`Value`]s.
pub struct ValueCollector {
    values: Vec<Value>,
    descs: Vec<Desc>,
}

impl ValueCollector {
    pub fn new(values: Vec<Value>) -> Self {
        let descs = values
            .iter()
            .map(|v| Desc::new(v.name.into(), v.help.into(), vec![], HashMap::new()).expect("valid metric name"))
            .collect();
        ValueCollector { values, descs }
    }
}

impl Collector for ValueCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }
    fn collect(&self) -> Vec<MetricFamily> {
        self.values.iter().map(|v| single(v.name, v.help, v.kind, (v.read)())).collect()
    }
}

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.into());
    f.set_help(help.into());
    f.set_field_type(kind);
    f
}

fn single(name: &str, help: &str, kind: MetricType, value: f64) -> MetricFamily {
    let mut f = family(name, help, kind);
    let mut m = proto::Metric::default();
    match kind {
        MetricType::COUNTER => {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
        _ => {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
    }
    f.mut_metric().push(m);
    f
}

fn label(name: &str, value: &str) -> proto::LabelPair {
    let mut l = proto::LabelPair::default();
    l.set_name(name.into());
    l.set_value(value.into());
    l
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Binds the metrics endpoint and serves `GET /metrics` until `shutdown` fires. Returns the bound address.
pub async fn serve(addr: SocketAddr, registry: Registry, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let registry = Arc::new(registry);
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("metrics accept failed: {e}");
                        continue;
                    }
                },
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let registry = registry.clone();
                    async move { Ok::<_, Infallible>(respond(&req, &registry)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(local)
}

fn respond(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let mut builder = Response::builder();
    let body = if req.uri().path() == "/metrics" {
        builder = builder.header("content-type", prometheus::TEXT_FORMAT);
        render(registry)
    } else {
        builder = builder.status(404);
        "not found: metrics are at /metrics\n".to_string()
    };
    builder.body(Full::new(Bytes::from(body))).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_local_stats_are_summed_at_scrape() {
        let get = crate::command::lookup(b"get").unwrap().index();
        let before = commands_total();
        record_command(get, Duration::from_micros(3));
        std::thread::spawn(move || record_command(get, Duration::from_millis(2))).join().unwrap();
        assert_eq!(commands_total() - before, 2);
        let registry = Registry::new();
        registry.register(Box::new(CommandCollector::new())).unwrap();
        let text = render(&registry);
        assert!(text.contains("ringcache_commands_total{cmd=\"get\"}"), "{text}");
        assert!(text.contains("ringcache_command_duration_seconds_bucket{cmd=\"get\",le=\"0.00001\"}"), "{text}");
    }

    #[test]
    fn errors_are_exported_by_type() {
        crate::diagnostics::count_error("WRONGTYPE Operation against a key holding the wrong kind of value");
        let registry = Registry::new();
        registry.register(Box::new(ErrorCollector::new())).unwrap();
        let text = render(&registry);
        assert!(text.contains("ringcache_errors_total{error=\"WRONGTYPE\"}"), "{text}");
    }
}
