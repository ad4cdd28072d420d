//! Measurements: HDR latency histograms per command, counters and errors by kind.
//!
//! Each thread records into its own [`Stats`] (no atomics or locks on the hot path) and into an
//! [`Interval`] that its ticker hands to the main thread every second; the main thread merges them.
//! Latencies are recorded in nanoseconds with 3 significant figures (0.1 % resolution) up to one hour.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a histogram holds; longer ones are clamped (a request never waits that long: it times
/// out first).
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("1 ns .. 1 h with 3 significant figures is valid")
}

/// Records one latency (clamped into the histogram's range).
pub fn record_latency(h: &mut Histogram<u64>, latency: Duration) {
    let ns = (latency.as_nanos().min(u128::from(MAX_LATENCY_NS)) as u64).max(1);
    // Cannot fail: the value is within the bounds.
    let _ = h.record(ns);
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Could not connect (refused, unreachable, AUTH rejected, connect timeout).
    Connect,
    /// The connection broke (reset, closed by the server, write failed).
    Io,
    /// No reply within --timeout-ms (or, in open loop, could not even be sent in time).
    Timeout,
    /// The server's bytes were not valid RESP.
    Protocol,
    /// An error reply, by its first word (ERR, OOM, LOADING, MOVED, ...).
    Reply(String),
}

impl ErrorKind {
    pub fn label(&self) -> String {
        match self {
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Io => "io".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Protocol => "protocol".into(),
            ErrorKind::Reply(word) => word.clone(),
        }
    }

    /// The kind of an error reply line such as `-ERR unknown command` (without or with its `-`).
    pub fn of_reply(line: &[u8]) -> ErrorKind {
        let line = line.strip_prefix(b"-").unwrap_or(line);
        let word = line.split(|b| b.is_ascii_whitespace()).next().unwrap_or_default();
        let word = String::from_utf8_lossy(&word[..word.len().min(32)]).into_owned();
        ErrorKind::Reply(if word.is_empty() { "ERR".into() } else { word })
    }
}

/// Figures of one command (or of all).
#[derive(Debug, Clone)]
pub struct CommandStats {
    /// Latency of every reply, error replies included.
    pub latency: Histogram<u64>,
    /// Requests that were sent (or failed before they could be).
    pub requests: u64,
    /// Replies that were not errors.
    pub ok_replies: u64,
    /// Error replies.
    pub error_replies: u64,
    /// Requests without a reply (connect, io, timeout, protocol).
    pub failed: u64,
    /// Reads that found a value (GET; each key of MGET).
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            latency: new_histogram(),
            requests: 0,
            ok_replies: 0,
            error_replies: 0,
            failed: 0,
            hits: 0,
            misses: 0,
        }
    }
}

impl CommandStats {
    pub fn merge(&mut self, other: &CommandStats) {
        // Same bounds on both sides: cannot fail.
        let _ = self.latency.add(&other.latency);
        self.requests += other.requests;
        self.ok_replies += other.ok_replies;
        self.error_replies += other.error_replies;
        self.failed += other.failed;
        self.hits += other.hits;
        self.misses += other.misses;
    }

    /// Errors of any kind (error replies and failed requests).
    pub fn errors(&self) -> u64 {
        self.error_replies + self.failed
    }
}

/// The cumulative figures of a thread or of the run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Indexed like the run's command names.
    pub commands: Vec<CommandStats>,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Open loop: how late each request was written after its intended send time (the generator's own
    /// scheduling delay, included in the latencies). Empty in closed loop.
    pub send_lag: Histogram<u64>,
}

impl Stats {
    pub fn new(commands: usize) -> Stats {
        Stats {
            commands: (0..commands).map(|_| CommandStats::default()).collect(),
            errors: BTreeMap::new(),
            send_lag: new_histogram(),
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.commands.iter_mut().zip(&other.commands) {
            a.merge(b);
        }
        for (k, n) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += n;
        }
        let _ = self.send_lag.add(&other.send_lag);
    }

    /// All commands together.
    pub fn overall(&self) -> CommandStats {
        let mut all = CommandStats::default();
        for c in &self.commands {
            all.merge(c);
        }
        all
    }
}

/// What happened in one second of the run (one thread's share, or all threads merged).
#[derive(Debug, Clone)]
pub struct Interval {
    /// Non-error replies.
    pub ok_replies: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
}

impl Default for Interval {
    fn default() -> Self {
        Interval { ok_replies: 0, errors: 0, latency: new_histogram() }
    }
}

impl Interval {
    pub fn merge(&mut self, other: &Interval) {
        self.ok_replies += other.ok_replies;
        self.errors += other.errors;
        let _ = self.latency.add(&other.latency);
    }
}

/// A thread's recorder: cumulative figures (once measuring has started) and the current second's.
#[derive(Debug)]
pub struct Recorder {
    pub total: Stats,
    pub interval: Interval,
}

impl Recorder {
    pub fn new(commands: usize) -> Recorder {
        Recorder { total: Stats::new(commands), interval: Interval::default() }
    }

    /// A reply arrived. `measured` is false during the warmup.
    pub fn reply(&mut self, command: usize, latency: Duration, error: Option<ErrorKind>, measured: bool) {
        let is_error = error.is_some();
        if is_error {
            self.interval.errors += 1;
        } else {
            self.interval.ok_replies += 1;
        }
        record_latency(&mut self.interval.latency, latency);
        if !measured {
            return;
        }
        let Some(c) = self.total.commands.get_mut(command) else { return };
        c.requests += 1;
        record_latency(&mut c.latency, latency);
        if is_error {
            c.error_replies += 1;
        } else {
            c.ok_replies += 1;
        }
        if let Some(kind) = error {
            *self.total.errors.entry(kind).or_default() += 1;
        }
    }

    /// A read's outcome (GET or one key of MGET).
    pub fn read(&mut self, command: usize, hit: bool, measured: bool) {
        if !measured {
            return;
        }
        if let Some(c) = self.total.commands.get_mut(command) {
            if hit {
                c.hits += 1;
            } else {
                c.misses += 1;
            }
        }
    }

    /// `count` requests of `command` failed without a reply.
    pub fn failed(&mut self, command: usize, kind: ErrorKind, count: u64, measured: bool) {
        self.interval.errors += count;
        if !measured {
            return;
        }
        if let Some(c) = self.total.commands.get_mut(command) {
            c.requests += count;
            c.failed += count;
        }
        *self.total.errors.entry(kind).or_default() += count;
    }

    /// Open loop: a request was written `lag` after its intended send time.
    pub fn send_lag(&mut self, lag: Duration, measured: bool) {
        if measured {
            record_latency(&mut self.total.send_lag, lag);
        }
    }

    /// Hands over the current second's figures and starts a new second.
    pub fn take_interval(&mut self) -> Interval {
        std::mem::take(&mut self.interval)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Nanoseconds to milliseconds.
pub fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles { p50_ms: 0.0, p90_ms: 0.0, p99_ms: 0.0, p999_ms: 0.0, max_ms: 0.0, mean_ms: 0.0 };
        }
        let q = |p: f64| ns_to_ms(h.value_at_quantile(p));
        Percentiles {
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ns_to_ms(h.max()),
            mean_ms: h.mean() / 1e6,
        }
    }
}

/// The latency percentile curve: (percentile, ms) at 0, 50, 75, 90, 95, 99, 99.5, 99.9, ... up to the
/// resolution the sample count supports, then the maximum (percentile 100).
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = vec![(0.0, ns_to_ms(h.min()))];
    let n = h.len() as f64;
    // 1 - p goes 0.5, 0.25, 0.1, 0.05, 0.01, 0.005, 0.001, ...
    let mut tail = 1.0_f64;
    'outer: loop {
        for step in [0.5, 0.25, 0.1] {
            let t = tail * step;
            if t * n < 1.0 {
                break 'outer;
            }
            let p = 1.0 - t;
            points.push((p * 100.0, ns_to_ms(h.value_at_quantile(p))));
        }
        tail *= 0.1;
    }
    points.push((100.0, ns_to_ms(h.max())));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(got: f64, want: f64) -> bool {
        (got - want).abs() <= want * 0.001 + 1e-9
    }

    #[test]
    fn percentiles_of_known_inputs() {
        let mut h = new_histogram();
        // 1..=10_000 µs, once each.
        for us in 1..=10_000u64 {
            record_latency(&mut h, Duration::from_micros(us));
        }
        let p = Percentiles::of(&h);
        assert!(within(p.p50_ms, 5.0), "{p:?}");
        assert!(within(p.p90_ms, 9.0), "{p:?}");
        assert!(within(p.p99_ms, 9.9), "{p:?}");
        assert!(within(p.p999_ms, 9.99), "{p:?}");
        assert!(within(p.max_ms, 10.0), "{p:?}");
        assert!(within(p.mean_ms, 5.0005), "{p:?}");
    }

    #[test]
    fn a_tail_shows_in_the_high_percentiles_only() {
        let mut h = new_histogram();
        for _ in 0..990 {
            record_latency(&mut h, Duration::from_micros(100));
        }
        for _ in 0..10 {
            record_latency(&mut h, Duration::from_millis(50));
        }
        let p = Percentiles::of(&h);
        assert!(within(p.p50_ms, 0.1) && within(p.p90_ms, 0.1) && within(p.p99_ms, 0.1), "{p:?}");
        assert!(within(p.p999_ms, 50.0) && within(p.max_ms, 50.0), "{p:?}");
        assert!(within(p.mean_ms, 0.599), "{p:?}");
    }

    #[test]
    fn merging_threads_equals_recording_once() {
        let mut a = Recorder::new(2);
        let mut b = Recorder::new(2);
        let mut one = Recorder::new(2);
        for i in 0..1000u64 {
            let lat = Duration::from_micros(i * 7 % 900 + 1);
            let (r, cmd) = if i % 3 == 0 { (&mut a, 0) } else { (&mut b, 1) };
            r.reply(cmd, lat, None, true);
            one.reply(cmd, lat, None, true);
        }
        a.failed(0, ErrorKind::Timeout, 3, true);
        one.failed(0, ErrorKind::Timeout, 3, true);
        b.reply(1, Duration::from_micros(5), Some(ErrorKind::of_reply(b"-OOM command not allowed")), true);
        one.reply(1, Duration::from_micros(5), Some(ErrorKind::of_reply(b"OOM command not allowed")), true);
        let mut merged = Stats::new(2);
        merged.merge(&a.total);
        merged.merge(&b.total);
        let (m, o) = (merged.overall(), one.total.overall());
        assert_eq!((m.requests, m.ok_replies, m.error_replies, m.failed), (1004, 1000, 1, 3));
        assert_eq!(
            (m.requests, m.ok_replies, m.error_replies, m.failed),
            (o.requests, o.ok_replies, o.error_replies, o.failed)
        );
        assert_eq!(Percentiles::of(&m.latency), Percentiles::of(&o.latency));
        assert_eq!(merged.errors, one.total.errors);
        assert_eq!(merged.errors.get(&ErrorKind::Reply("OOM".into())), Some(&1));
        assert_eq!(merged.errors.get(&ErrorKind::Timeout), Some(&3));
    }

    #[test]
    fn warmup_is_not_counted_but_shows_live() {
        let mut r = Recorder::new(1);
        r.reply(0, Duration::from_micros(10), None, false);
        r.read(0, true, false);
        r.failed(0, ErrorKind::Io, 2, false);
        assert_eq!(r.total.overall().requests, 0);
        assert!(r.total.errors.is_empty());
        let i = r.take_interval();
        assert_eq!((i.ok_replies, i.errors, i.latency.len()), (1, 2, 1));
        assert_eq!(r.take_interval().ok_replies, 0);
    }

    #[test]
    fn percentile_curve_stops_at_the_resolution_of_the_sample() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            record_latency(&mut h, Duration::from_micros(us));
        }
        let c = percentile_curve(&h);
        let ps: Vec<f64> = c.iter().map(|p| (p.0 * 1000.0).round() / 1000.0).collect();
        assert_eq!(ps, vec![0.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9, 100.0]);
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1), "monotonic: {c:?}");
        assert!(within(c[3].1, 0.9));
    }

    #[test]
    fn error_reply_kinds() {
        assert_eq!(ErrorKind::of_reply(b"-LOADING Redis is loading").label(), "LOADING");
        assert_eq!(ErrorKind::of_reply(b"-").label(), "ERR");
        assert_eq!(ErrorKind::of_reply(b"MOVED 3999 127.0.0.1:6381").label(), "MOVED");
    }
}
