//! Turns a run's measurements into figures: the [`Report`] (serialised for `--json-out`), the final table on
//! stdout, the live line on stderr, and the verdict that decides the exit status.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{Config, RunLength, Workload};
use crate::driver::{RunOutput, Tick};
use crate::stats::{percentile_curve, CommandStats, Percentiles};
use crate::verify::VerifyReport;

/// Figures of one command, or of all commands.
#[derive(Debug, Clone, Serialize)]
pub struct CommandReport {
    pub name: String,
    /// Requests attempted (replied, failed or not sent because the connection was down).
    pub requests: u64,
    pub ok_replies: u64,
    pub error_replies: u64,
    /// Requests without a reply.
    pub failed: u64,
    /// Non-error replies per second of the measured period.
    pub ops_per_sec: f64,
    pub hits: u64,
    pub misses: u64,
    /// hits / (hits + misses), when there were reads.
    pub hit_ratio: Option<f64>,
    /// Latency of every reply (error replies included).
    pub latency: Percentiles,
}

impl CommandReport {
    fn of(name: &str, c: &CommandStats, seconds: f64) -> CommandReport {
        let reads = c.hits + c.misses;
        CommandReport {
            name: name.to_string(),
            requests: c.requests,
            ok_replies: c.ok_replies,
            error_replies: c.error_replies,
            failed: c.failed,
            ops_per_sec: rate(c.ok_replies, seconds),
            hits: c.hits,
            misses: c.misses,
            hit_ratio: (reads > 0).then(|| c.hits as f64 / reads as f64),
            latency: Percentiles::of(&c.latency),
        }
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the run started (end of this interval).
    pub t_s: f64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub warmup: bool,
}

impl TimelinePoint {
    pub fn of(tick: &Tick) -> TimelinePoint {
        let p = Percentiles::of(&tick.interval.latency);
        TimelinePoint {
            // A full second's interval ends a little after its boundary (the ticker wakes late); it is still
            // that second.
            t_s: tick.index as f64 + tick.duration_s.min(1.0),
            ops_per_sec: rate(tick.interval.ok_replies, tick.duration_s),
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            errors: tick.interval.errors,
            warmup: tick.warmup,
        }
    }
}

/// The settings the figures were measured with.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    pub target: String,
    pub mode: &'static str,
    pub rate_per_sec: Option<f64>,
    pub threads: usize,
    pub clients_per_thread: usize,
    pub pipeline: usize,
    pub requests_per_client: Option<u64>,
    pub test_time_s: Option<f64>,
    pub warmup_s: f64,
    pub workload: String,
    pub keys: u64,
    pub key_pattern: &'static str,
    pub key_prefix: String,
    pub data_size: crate::config::DataSize,
    pub seed: u64,
    pub verify: bool,
    pub verify_allow_miss: bool,
    pub timeout_ms: u64,
    pub max_error_rate: f64,
}

impl RunSettings {
    fn of(cfg: &Config) -> RunSettings {
        let workload = match &cfg.workload {
            Workload::SetGet { set, get } => format!("SET:GET {set}:{get}"),
            Workload::Templates(ts) => ts.iter().map(|(t, w)| format!("{}×{w}", t.name)).collect::<Vec<_>>().join(", "),
        };
        RunSettings {
            target: cfg.target(),
            mode: if cfg.rate_per_sec.is_some() { "open" } else { "closed" },
            rate_per_sec: cfg.rate_per_sec,
            threads: cfg.threads,
            clients_per_thread: cfg.clients_per_thread,
            pipeline: cfg.pipeline,
            requests_per_client: match cfg.length {
                RunLength::RequestsPerClient(n) => Some(n),
                RunLength::Duration(_) => None,
            },
            test_time_s: match cfg.length {
                RunLength::Duration(d) => Some(d.as_secs_f64()),
                RunLength::RequestsPerClient(_) => None,
            },
            warmup_s: cfg.warmup.as_secs_f64(),
            workload,
            keys: cfg.keys,
            key_pattern: cfg.key_pattern.name(),
            key_prefix: cfg.key_prefix.clone(),
            data_size: cfg.data_size,
            seed: cfg.seed,
            verify: cfg.verify,
            verify_allow_miss: cfg.verify_allow_miss,
            timeout_ms: cfg.timeout.as_millis() as u64,
            max_error_rate: cfg.max_error_rate,
        }
    }
}

/// Every figure of a run (`--json-out`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub settings: RunSettings,
    /// Identifies the values this run wrote.
    pub run_id: String,
    /// Seconds from the end of the warmup to the last reply.
    pub measured_s: f64,
    pub commands: Vec<CommandReport>,
    pub overall: CommandReport,
    /// errors / requests.
    pub error_rate: f64,
    /// Errors by kind: connect, io, timeout, protocol, or an error reply's first word.
    pub errors: BTreeMap<String, u64>,
    /// (percentile, ms) over all replies.
    pub percentile_curve: Vec<(f64, f64)>,
    /// Open loop: how late requests were written after their intended send time (included in the
    /// latencies above; tokio's timer wakes on millisecond ticks, so up to about 1 ms is the generator's).
    pub send_lag: Option<Percentiles>,
    pub timeline: Vec<TimelinePoint>,
    pub verify: Option<VerifyReport>,
    pub verdict: Verdict,
}

/// Whether the run passed, and the exit status that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Exit 2.
    ErrorRateExceeded,
    /// Exit 3.
    VerifyMismatch,
}

impl Verdict {
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::ErrorRateExceeded => 2,
            Verdict::VerifyMismatch => 3,
        }
    }
}

impl Report {
    pub fn build(cfg: &Config, out: &RunOutput) -> Report {
        let seconds = out.measured.as_secs_f64();
        let commands: Vec<CommandReport> = out
            .command_names
            .iter()
            .zip(&out.stats.commands)
            .map(|(name, c)| CommandReport::of(name, c, seconds))
            .collect();
        let all = out.stats.overall();
        let overall = CommandReport::of("ALL", &all, seconds);
        let errors = all.errors();
        let error_rate = if all.requests > 0 { errors as f64 / all.requests as f64 } else { 0.0 };
        let verdict = if out.verify.as_ref().is_some_and(|v| v.mismatches() > 0) {
            Verdict::VerifyMismatch
        } else if error_rate > cfg.max_error_rate {
            Verdict::ErrorRateExceeded
        } else {
            Verdict::Pass
        };
        Report {
            settings: RunSettings::of(cfg),
            run_id: format!("{:016x}", out.run_id),
            measured_s: seconds,
            commands,
            overall,
            error_rate,
            errors: out.stats.errors.iter().map(|(k, n)| (k.label(), *n)).collect(),
            percentile_curve: percentile_curve(&all.latency),
            send_lag: (!out.stats.send_lag.is_empty()).then(|| Percentiles::of(&out.stats.send_lag)),
            timeline: out.ticks.iter().map(TimelinePoint::of).collect(),
            verify: out.verify.clone(),
            verdict,
        }
    }

    /// The final table.
    pub fn table(&self) -> String {
        let s = &self.settings;
        let mut t = String::new();
        let length = match (s.requests_per_client, s.test_time_s) {
            (Some(n), _) => format!("{n} requests per connection"),
            (None, Some(secs)) => format!("{secs} s"),
            _ => String::new(),
        };
        let _ = writeln!(
            t,
            "{} | {} loop{} | {} threads x {} clients, pipeline {} | {} | {} keys {} | seed {}",
            s.target,
            s.mode,
            s.rate_per_sec.map(|r| format!(" at {r} req/s")).unwrap_or_default(),
            s.threads,
            s.clients_per_thread,
            s.pipeline,
            s.workload,
            s.keys,
            s.key_pattern,
            s.seed
        );
        let _ = writeln!(t, "measured {:.2} s ({length})", self.measured_s);
        let _ = writeln!(
            t,
            "{:<8} {:>11} {:>12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "command",
            "requests",
            "ops/s",
            "hit%",
            "errors",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "mean ms"
        );
        for c in self.commands.iter().chain(std::iter::once(&self.overall)) {
            let l = c.latency;
            let _ = writeln!(
                t,
                "{:<8} {:>11} {:>12.0} {:>8} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                c.name,
                c.requests,
                c.ops_per_sec,
                c.hit_ratio.map_or("-".to_string(), |h| format!("{:.2}", h * 100.0)),
                c.error_replies + c.failed,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.p999_ms,
                l.max_ms,
                l.mean_ms
            );
        }
        if let Some(lag) = &self.send_lag {
            let _ = writeln!(
                t,
                "send lag (intended -> written, included above): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                lag.p50_ms, lag.p99_ms, lag.max_ms
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(t, "errors: none");
        } else {
            let kinds: Vec<String> = self.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(t, "errors: {} (error rate {:.4}%)", kinds.join(", "), self.error_rate * 100.0);
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                t,
                "verify: {} reads checked, {} lost, {} stale, {} corrupt ({} misses accepted)",
                v.checked, v.lost, v.stale, v.corrupt, v.misses_accepted
            );
            for e in &v.examples {
                let _ = writeln!(t, "  {:?} {}: expected {}, got {}", e.kind, e.key, e.expected, e.got);
            }
        }
        match self.verdict {
            Verdict::Pass => {}
            Verdict::ErrorRateExceeded => {
                let _ = writeln!(
                    t,
                    "FAIL: error rate {:.4}% exceeds --max-error-rate {}",
                    self.error_rate * 100.0,
                    self.settings.max_error_rate
                );
            }
            Verdict::VerifyMismatch => {
                let _ = writeln!(t, "FAIL: verification found mismatches");
            }
        }
        t
    }
}

/// The live line for one second.
pub fn live_line(tick: &Tick) -> String {
    let p = TimelinePoint::of(tick);
    format!(
        "[{:>5}s] {:>11.0} ops/s  p99 {:>8.3} ms  errors {}{}",
        tick.index + 1,
        p.ops_per_sec,
        p.p99_ms,
        p.errors,
        if p.warmup { "  (warmup)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{record_latency, ErrorKind, Interval, Recorder};
    use std::time::Duration;

    fn config(extra: &[&str]) -> Config {
        let mut v = vec!["x", "--seed", "1"];
        v.extend_from_slice(extra);
        Config::from_args(&<crate::config::Args as clap::Parser>::parse_from(v)).unwrap()
    }

    fn output(rec: Recorder, seconds: u64, verify: Option<VerifyReport>) -> RunOutput {
        RunOutput {
            command_names: vec!["SET".into(), "GET".into()],
            stats: rec.total,
            verify,
            ticks: vec![],
            measured: Duration::from_secs(seconds),
            run_id: 1,
        }
    }

    #[test]
    fn rates_ratios_and_verdicts_from_known_counts() {
        let mut rec = Recorder::new(2);
        for _ in 0..100 {
            rec.reply(0, Duration::from_micros(200), None, true);
        }
        for i in 0..300 {
            rec.reply(1, Duration::from_micros(100), None, true);
            rec.read(1, i % 3 != 0, true);
        }
        rec.reply(1, Duration::from_micros(100), Some(ErrorKind::of_reply(b"-ERR x")), true);
        rec.failed(0, ErrorKind::Io, 3, true);
        let r = Report::build(&config(&[]), &output(rec, 2, None));
        let (set, get, all) = (&r.commands[0], &r.commands[1], &r.overall);
        assert_eq!((set.requests, set.ok_replies, set.failed), (103, 100, 3));
        assert_eq!((get.requests, get.ok_replies, get.error_replies), (301, 300, 1));
        assert_eq!((set.ops_per_sec, get.ops_per_sec, all.ops_per_sec), (50.0, 150.0, 200.0));
        assert_eq!((get.hits, get.misses), (200, 100));
        assert!((get.hit_ratio.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(set.hit_ratio, None);
        assert!((r.error_rate - 4.0 / 404.0).abs() < 1e-12);
        assert_eq!(r.errors, BTreeMap::from([("ERR".to_string(), 1), ("io".to_string(), 3)]));
        assert_eq!(r.verdict, Verdict::ErrorRateExceeded);
        let lenient = Report::build(&config(&["--max-error-rate", "0.01"]), &output(Recorder::new(2), 2, None));
        assert_eq!(lenient.verdict, Verdict::Pass);
        let bad = VerifyReport { checked: 5, stale: 1, ..VerifyReport::default() };
        let r = Report::build(&config(&["--max-error-rate", "1"]), &output(Recorder::new(2), 1, Some(bad)));
        assert_eq!((r.verdict, r.verdict.exit_code()), (Verdict::VerifyMismatch, 3));
        let table = r.table();
        assert!(table.contains("1 stale") && table.contains("FAIL"), "{table}");
    }

    #[test]
    fn json_has_every_figure() {
        let mut rec = Recorder::new(2);
        rec.reply(1, Duration::from_millis(1), None, true);
        rec.read(1, true, true);
        let mut interval = Interval { ok_replies: 500, ..Interval::default() };
        record_latency(&mut interval.latency, Duration::from_millis(2));
        let mut out = output(rec, 1, None);
        out.ticks.push(Tick { index: 0, duration_s: 0.5, warmup: false, interval });
        let r = Report::build(&config(&[]), &out);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["commands"][1]["hits"], 1);
        assert_eq!(v["overall"]["latency"]["p99_ms"].as_f64().map(|x| (x - 1.0).abs() < 0.001), Some(true));
        assert_eq!(v["timeline"][0]["ops_per_sec"], 1000.0);
        assert_eq!(v["timeline"][0]["t_s"], 0.5);
        assert_eq!(v["settings"]["seed"], 1);
        assert_eq!(v["verdict"], "pass");
        assert!(v["percentile_curve"].as_array().is_some_and(|a| !a.is_empty()));
        assert!(live_line(&out.ticks[0]).contains("1000 ops/s"));
        assert!(live_line(&out.ticks[0]).starts_with("[    1s]"), "{}", live_line(&out.ticks[0]));
        let late = Tick { index: 2, duration_s: 1.004, warmup: false, interval: Interval::default() };
        assert_eq!(TimelinePoint::of(&late).t_s, 3.0);
        assert!(live_line(&late).starts_with("[    3s]"));
    }
}
