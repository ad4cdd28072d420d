//! Redis's diagnostics commands, shared by the shard and the proxy: SLOWLOG (GET LEN RESET HELP), LATENCY
//! (LATEST HISTORY RESET DOCTOR HISTOGRAM HELP) and the error counts behind `INFO errorstats`.
//!
//! A server keeps one [`Diagnostics`], configured by [`DiagnosticsArgs`] (`--slowlog-log-slower-than`,
//! `--slowlog-max-len`, `--latency-monitor-threshold`, Redis's parameters of the same names). After each
//! command it calls [`Diagnostics::is_notable`] with the command's duration: one relaxed load and a
//! comparison, so the hot path pays nothing while no threshold is crossed. Only a notable command calls
//! [`Diagnostics::record`] with its arguments, which takes a lock.
//!
//! What is minimal here, next to Redis: the latency monitor has one event, `command` (Redis also tracks
//! `fast-command`, forks, AOF and expiry cycles), LATENCY GRAPH is not implemented, and LATENCY HISTOGRAM
//! reports the buckets of the command duration histogram that `/metrics` exports (10 µs to 1 s) rather
//! than Redis's powers of two.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::resp::{ReplyBuf, ReplyWriter, Request};

/// The flags both servers flatten into their parsers (Redis's parameter names and defaults).
#[derive(clap::Args, Debug, Clone)]
pub struct DiagnosticsArgs {
    /// Log commands that take at least this many microseconds in the SLOWLOG; 0 logs every command, a
    /// negative value none.
    #[arg(long, env = "RINGCACHE_SLOWLOG_LOG_SLOWER_THAN", default_value_t = 10_000, allow_negative_numbers = true)]
    pub slowlog_log_slower_than: i64,

    /// Entries the SLOWLOG keeps (the oldest are dropped).
    #[arg(long, env = "RINGCACHE_SLOWLOG_MAX_LEN", default_value_t = 128)]
    pub slowlog_max_len: usize,

    /// Record a LATENCY event for commands that take at least this many milliseconds; 0 turns the latency
    /// monitor off.
    #[arg(long, env = "RINGCACHE_LATENCY_MONITOR_THRESHOLD", default_value_t = 0)]
    pub latency_monitor_threshold: u64,
}

impl Default for DiagnosticsArgs {
    fn default() -> Self {
        DiagnosticsArgs { slowlog_log_slower_than: 10_000, slowlog_max_len: 128, latency_monitor_threshold: 0 }
    }
}

/// Arguments a slow log entry keeps, and bytes of each (Redis's SLOWLOG_ENTRY_MAX_ARGC and _STRING).
const ENTRY_MAX_ARGS: usize = 32;
const ENTRY_MAX_ARG_BYTES: usize = 128;
/// Samples of one latency event kept for LATENCY HISTORY (Redis's LATENCY_TS_LEN).
const LATENCY_HISTORY_LEN: usize = 160;
/// The only latency event recorded.
const COMMAND_EVENT: &str = "command";

/// One SLOWLOG entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_secs: i64,
    pub duration_us: i64,
    pub args: Vec<Vec<u8>>,
    pub peer: String,
    pub client_name: String,
}

impl SlowEntry {
    fn write(&self, out: &mut ReplyBuf) {
        out.array_len(6);
        out.integer(self.id as i64);
        out.integer(self.unix_secs);
        out.integer(self.duration_us);
        out.array_len(self.args.len());
        for a in &self.args {
            out.bulk(a);
        }
        out.bulk(self.peer.as_bytes());
        out.bulk(self.client_name.as_bytes());
    }
}

/// One latency sample: when (unix seconds) and how long (milliseconds).
#[derive(Debug, Clone, Copy)]
struct Sample {
    unix_secs: i64,
    latency_ms: u64,
}

#[derive(Debug, Default)]
struct LatencyEvent {
    samples: VecDeque<Sample>,
    max_ms: u64,
}

/// The slow log, the latency monitor and their thresholds.
#[derive(Debug)]
pub struct Diagnostics {
    slower_than_us: AtomicI64,
    max_len: AtomicUsize,
    latency_threshold_ms: AtomicU64,
    /// The smaller of the two thresholds in nanoseconds (`u64::MAX` when both are off): what
    /// [`Diagnostics::is_notable`] compares with.
    notable_ns: AtomicU64,
    next_id: AtomicU64,
    slowlog: Mutex<VecDeque<SlowEntry>>,
    latency: Mutex<BTreeMap<&'static str, LatencyEvent>>,
}

fn unix_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Diagnostics {
    pub fn new(args: &DiagnosticsArgs) -> Self {
        let d = Diagnostics {
            slower_than_us: AtomicI64::new(args.slowlog_log_slower_than),
            max_len: AtomicUsize::new(args.slowlog_max_len),
            latency_threshold_ms: AtomicU64::new(args.latency_monitor_threshold),
            notable_ns: AtomicU64::new(u64::MAX),
            next_id: AtomicU64::new(0),
            slowlog: Mutex::new(VecDeque::new()),
            latency: Mutex::new(BTreeMap::new()),
        };
        d.update_notable();
        d
    }

    fn update_notable(&self) {
        let slow = u64::try_from(self.slower_than_us.load(Relaxed)).map_or(u64::MAX, |us| us.saturating_mul(1000));
        let latency = match self.latency_threshold_ms.load(Relaxed) {
            0 => u64::MAX,
            ms => ms.saturating_mul(1_000_000),
        };
        self.notable_ns.store(slow.min(latency), Relaxed);
    }

    /// CONFIG SET slowlog-log-slower-than (microseconds; negative logs nothing).
    pub fn set_slower_than_us(&self, us: i64) {
        self.slower_than_us.store(us, Relaxed);
        self.update_notable();
    }

    /// CONFIG SET slowlog-max-len: the oldest entries past it are dropped at once.
    pub fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Relaxed);
        let mut log = self.slowlog.lock();
        while log.len() > len {
            log.pop_back();
        }
    }

    /// CONFIG SET latency-monitor-threshold (milliseconds; 0 turns the monitor off).
    pub fn set_latency_threshold_ms(&self, ms: u64) {
        self.latency_threshold_ms.store(ms, Relaxed);
        self.update_notable();
    }

    /// `(slowlog-log-slower-than, slowlog-max-len, latency-monitor-threshold)`, for CONFIG GET.
    pub fn settings(&self) -> (i64, usize, u64) {
        (self.slower_than_us.load(Relaxed), self.max_len.load(Relaxed), self.latency_threshold_ms.load(Relaxed))
    }

    /// Whether a command that took `elapsed` must be [`Diagnostics::record`]ed.
    #[inline]
    pub fn is_notable(&self, elapsed: Duration) -> bool {
        elapsed.as_nanos() >= u128::from(self.notable_ns.load(Relaxed))
    }

    /// Records a command that took `elapsed`: in the slow log and as a latency event, where it crosses
    /// their thresholds. `peer` is the client's `ip:port`, `client_name` its CLIENT SETNAME.
    pub fn record<'a>(
        &self,
        elapsed: Duration,
        args: impl ExactSizeIterator<Item = &'a [u8]>,
        peer: &str,
        client_name: &str,
    ) {
        let us = elapsed.as_micros().min(i64::MAX as u128) as i64;
        let slower_than = self.slower_than_us.load(Relaxed);
        if slower_than >= 0 && us >= slower_than {
            let argc = args.len();
            let shown = if argc > ENTRY_MAX_ARGS { ENTRY_MAX_ARGS - 1 } else { argc };
            let mut kept: Vec<Vec<u8>> = args
                .take(shown)
                .map(|a| {
                    if a.len() > ENTRY_MAX_ARG_BYTES {
                        let mut s = a[..ENTRY_MAX_ARG_BYTES].to_vec();
                        s.extend_from_slice(format!("... ({} more bytes)", a.len() - ENTRY_MAX_ARG_BYTES).as_bytes());
                        s
                    } else {
                        a.to_vec()
                    }
                })
                .collect();
            if argc > shown {
                kept.push(format!("... ({} more arguments)", argc - shown).into_bytes());
            }
            let entry = SlowEntry {
                id: self.next_id.fetch_add(1, Relaxed),
                unix_secs: unix_secs(),
                duration_us: us,
                args: kept,
                peer: peer.to_string(),
                client_name: client_name.to_string(),
            };
            let max_len = self.max_len.load(Relaxed);
            let mut log = self.slowlog.lock();
            log.push_front(entry);
            log.truncate(max_len);
        }
        let threshold_ms = self.latency_threshold_ms.load(Relaxed);
        let ms = elapsed.as_millis().min(u128::from(u64::MAX)) as u64;
        if threshold_ms > 0 && ms >= threshold_ms {
            self.add_latency_sample(COMMAND_EVENT, ms);
        }
    }

    fn add_latency_sample(&self, event: &'static str, latency_ms: u64) {
        let now = unix_secs();
        let mut events = self.latency.lock();
        let e = events.entry(event).or_default();
        e.max_ms = e.max_ms.max(latency_ms);
        // One sample per second, as Redis: a second sample in the same second keeps the larger latency.
        match e.samples.back_mut() {
            Some(last) if last.unix_secs == now => last.latency_ms = last.latency_ms.max(latency_ms),
            _ => {
                e.samples.push_back(Sample { unix_secs: now, latency_ms });
                if e.samples.len() > LATENCY_HISTORY_LEN {
                    e.samples.pop_front();
                }
            }
        }
    }

    /// Entries in the slow log.
    pub fn slowlog_len(&self) -> usize {
        self.slowlog.lock().len()
    }

    /// The newest `count` slow log entries, newest first.
    pub fn slowlog_entries(&self, count: usize) -> Vec<SlowEntry> {
        self.slowlog.lock().iter().take(count).cloned().collect()
    }

    /// SLOWLOG GET [count] | LEN | RESET | HELP. `Err` is the whole error line.
    pub fn slowlog_command(&self, req: &Request, out: &mut ReplyBuf) -> Result<(), String> {
        let sub = req.get(1).unwrap_or_default();
        let lower = String::from_utf8_lossy(sub).to_lowercase();
        let arity_error = || format!("ERR wrong number of arguments for 'slowlog|{lower}' command");
        match lower.as_str() {
            "get" => {
                if req.argc() > 3 {
                    return Err(arity_error());
                }
                let count = match req.get(2) {
                    None => 10,
                    Some(arg) => match crate::connection::parse_integer(arg) {
                        Some(-1) => usize::MAX,
                        Some(n) if n >= 0 => n as usize,
                        // Redis gives this one message for a non-integer too.
                        _ => return Err("ERR count should be greater than or equal to -1".into()),
                    },
                };
                let entries = self.slowlog_entries(count);
                out.array_len(entries.len());
                for e in &entries {
                    e.write(out);
                }
            }
            "len" if req.argc() == 2 => out.integer(self.slowlog_len() as i64),
            "reset" if req.argc() == 2 => {
                self.slowlog.lock().clear();
                out.ok();
            }
            "help" if req.argc() == 2 => help(out, SLOWLOG_HELP),
            "len" | "reset" | "help" => return Err(arity_error()),
            _ => return Err(unknown_subcommand(sub, "SLOWLOG")),
        }
        Ok(())
    }

    /// LATENCY LATEST | HISTORY event | RESET [event ...] | DOCTOR | HISTOGRAM [command ...] | HELP.
    /// `histogram` gives, per command, its calls and cumulative counts at bucket bounds in microseconds.
    pub fn latency_command(
        &self,
        req: &Request,
        out: &mut ReplyBuf,
        histogram: &dyn Fn() -> Vec<CommandHistogram>,
    ) -> Result<(), String> {
        let sub = req.get(1).unwrap_or_default();
        let lower = String::from_utf8_lossy(sub).to_lowercase();
        let arity_error = || format!("ERR wrong number of arguments for 'latency|{lower}' command");
        match lower.as_str() {
            "latest" if req.argc() == 2 => {
                let events = self.latency.lock();
                out.array_len(events.len());
                for (name, e) in events.iter() {
                    let last = e.samples.back().copied().unwrap_or(Sample { unix_secs: 0, latency_ms: 0 });
                    out.array_len(4);
                    out.bulk(name.as_bytes());
                    out.integer(last.unix_secs);
                    out.integer(last.latency_ms as i64);
                    out.integer(e.max_ms as i64);
                }
            }
            "history" if req.argc() == 3 => {
                let events = self.latency.lock();
                let name = String::from_utf8_lossy(req.arg(2)).into_owned();
                let samples: Vec<Sample> =
                    events.get(name.as_str()).map(|e| e.samples.iter().copied().collect()).unwrap_or_default();
                out.array_len(samples.len());
                for s in samples {
                    out.array_len(2);
                    out.integer(s.unix_secs);
                    out.integer(s.latency_ms as i64);
                }
            }
            "reset" => {
                let mut events = self.latency.lock();
                let names: Vec<String> = req.args_from(2).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                let reset = if names.is_empty() {
                    let n = events.len();
                    events.clear();
                    n
                } else {
                    names.iter().filter(|n| events.remove(n.as_str()).is_some()).count()
                };
                out.integer(reset as i64);
            }
            "doctor" if req.argc() == 2 => out.verbatim(self.doctor().as_bytes()),
            "histogram" => {
                let wanted: Vec<String> = req.args_from(2).map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
                let rows: Vec<CommandHistogram> = histogram()
                    .into_iter()
                    .filter(|h| wanted.is_empty() || wanted.iter().any(|w| w == h.name))
                    .collect();
                out.map_len(rows.len());
                for row in rows {
                    out.bulk(row.name.as_bytes());
                    out.map_len(2);
                    out.bulk(b"calls");
                    out.integer(row.calls as i64);
                    out.bulk(b"histogram_usec");
                    out.map_len(row.cumulative.len());
                    for (bound_us, count) in row.cumulative {
                        out.integer(bound_us as i64);
                        out.integer(count as i64);
                    }
                }
            }
            "help" if req.argc() == 2 => help(out, LATENCY_HELP),
            "latest" | "history" | "doctor" | "help" => return Err(arity_error()),
            _ => return Err(unknown_subcommand(sub, "LATENCY")),
        }
        Ok(())
    }

    /// LATENCY DOCTOR's report (Redis's texts for the two cases it has no analysis for, then a plain list).
    fn doctor(&self) -> String {
        if self.latency_threshold_ms.load(Relaxed) == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
        }
        let events = self.latency.lock();
        if events.is_empty() {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep better.\n".into();
        }
        let mut text = String::from("Dave, I have observed latency spikes in this Redis instance.\n\n");
        for (i, (name, e)) in events.iter().enumerate() {
            let sum: u64 = e.samples.iter().map(|s| s.latency_ms).sum();
            let avg = sum / e.samples.len().max(1) as u64;
            text.push_str(&format!(
                "{}. {name}: {} latency spikes (average {avg}ms, worst {}ms).\n",
                i + 1,
                e.samples.len(),
                e.max_ms
            ));
        }
        text
    }
}

/// One command's row of LATENCY HISTOGRAM.
#[derive(Debug, Clone)]
pub struct CommandHistogram {
    pub name: &'static str,
    pub calls: u64,
    /// (bucket upper bound in microseconds, commands at most that long), only where the count grows.
    pub cumulative: Vec<(u64, u64)>,
}

fn unknown_subcommand(sub: &[u8], command: &str) -> String {
    format!("ERR unknown subcommand '{}'. Try {command} HELP.", String::from_utf8_lossy(sub))
}

fn help(out: &mut ReplyBuf, lines: &[&str]) {
    out.array_len(lines.len());
    for l in lines {
        out.simple(l);
    }
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "HISTORY <event>",
    "    Return time-latency samples for the specified event.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

/// Error replies by their first word (`ERR`, `WRONGTYPE`, ...), for `INFO errorstats` and
/// `total_error_replies`. Like Redis, at most 128 kinds are kept; errors of further kinds are only
/// counted in the total.
#[derive(Debug, Default)]
pub struct ErrorStats {
    by_kind: Mutex<BTreeMap<String, u64>>,
    total: AtomicU64,
}

const MAX_ERROR_KINDS: usize = 128;

static ERRORS: std::sync::LazyLock<ErrorStats> = std::sync::LazyLock::new(ErrorStats::default);

/// Counts one error reply (`msg` without the leading `-`). Called where error replies are written.
pub fn count_error(msg: &str) {
    let kind = msg.split(' ').next().unwrap_or("ERR");
    ERRORS.total.fetch_add(1, Relaxed);
    let mut map = ERRORS.by_kind.lock();
    if let Some(n) = map.get_mut(kind) {
        *n += 1;
    } else if map.len() < MAX_ERROR_KINDS {
        map.insert(kind.to_string(), 1);
    }
}

/// Error replies written by this process, in total.
pub fn total_error_replies() -> u64 {
    ERRORS.total.load(Relaxed)
}

/// Forgets the error counts (CONFIG RESETSTAT).
pub fn reset_error_counts() {
    ERRORS.total.store(0, Relaxed);
    ERRORS.by_kind.lock().clear();
}

/// Error replies by kind, sorted by kind.
pub fn error_counts() -> Vec<(String, u64)> {
    ERRORS.by_kind.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Protocol;

    fn request(args: &[&str]) -> Request {
        Request::from_args(args.iter().map(|a| a.as_bytes()))
    }

    fn run_slowlog(d: &Diagnostics, args: &[&str]) -> String {
        let mut out = ReplyBuf::new(Protocol::Resp2);
        if let Err(e) = d.slowlog_command(&request(args), &mut out) {
            out.error(&e);
        }
        String::from_utf8_lossy(&out.take()).into_owned()
    }

    #[test]
    fn thresholds_decide_what_is_notable() {
        let off = Diagnostics::new(&DiagnosticsArgs {
            slowlog_log_slower_than: -1,
            slowlog_max_len: 10,
            latency_monitor_threshold: 0,
        });
        assert!(!off.is_notable(Duration::from_secs(100)));
        let every = Diagnostics::new(&DiagnosticsArgs { slowlog_log_slower_than: 0, ..Default::default() });
        assert!(every.is_notable(Duration::ZERO));
        let latency = Diagnostics::new(&DiagnosticsArgs {
            slowlog_log_slower_than: -1,
            slowlog_max_len: 10,
            latency_monitor_threshold: 5,
        });
        assert!(!latency.is_notable(Duration::from_micros(4_999)));
        assert!(latency.is_notable(Duration::from_millis(5)));
    }

    #[test]
    fn slowlog_keeps_the_newest_max_len_entries_and_truncates_arguments() {
        let d =
            Diagnostics::new(&DiagnosticsArgs { slowlog_log_slower_than: 0, slowlog_max_len: 2, ..Default::default() });
        for i in 0..3 {
            let arg = format!("k{i}");
            d.record(Duration::from_micros(7), [b"GET".as_slice(), arg.as_bytes()].into_iter(), "1.2.3.4:5", "app");
        }
        assert_eq!(run_slowlog(&d, &["SLOWLOG", "LEN"]), ":2\r\n");
        let got = run_slowlog(&d, &["SLOWLOG", "GET", "1"]);
        assert!(got.starts_with("*1\r\n*6\r\n:2\r\n:"), "{got}");
        assert!(got.ends_with(":7\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n$9\r\n1.2.3.4:5\r\n$3\r\napp\r\n"), "{got}");
        let long = "x".repeat(130);
        let many: Vec<&[u8]> = std::iter::repeat_n(long.as_bytes(), 40).collect();
        d.record(Duration::from_micros(1), many.into_iter(), "p", "");
        let entry = d.slowlog_entries(1).remove(0);
        assert_eq!(entry.args.len(), 32);
        assert_eq!(entry.args[0], format!("{}... (2 more bytes)", "x".repeat(128)).into_bytes());
        assert_eq!(entry.args[31], b"... (9 more arguments)");
        assert_eq!(run_slowlog(&d, &["SLOWLOG", "GET", "-2"]), "-ERR count should be greater than or equal to -1\r\n");
        assert_eq!(run_slowlog(&d, &["SLOWLOG", "RESET"]), "+OK\r\n");
        assert_eq!(run_slowlog(&d, &["SLOWLOG", "GET"]), "*0\r\n");
        assert_eq!(run_slowlog(&d, &["SLOWLOG", "nope"]), "-ERR unknown subcommand 'nope'. Try SLOWLOG HELP.\r\n");
    }

    #[test]
    fn latency_events_at_the_threshold_are_recorded() {
        let d = Diagnostics::new(&DiagnosticsArgs {
            slowlog_log_slower_than: -1,
            slowlog_max_len: 10,
            latency_monitor_threshold: 3,
        });
        d.record(Duration::from_micros(2_999), [b"GET".as_slice()].into_iter(), "p", "");
        let mut out = ReplyBuf::new(Protocol::Resp2);
        d.latency_command(&request(&["LATENCY", "LATEST"]), &mut out, &Vec::new).unwrap();
        assert_eq!(&out.take()[..], b"*0\r\n");
        d.record(Duration::from_millis(3), [b"GET".as_slice()].into_iter(), "p", "");
        d.latency_command(&request(&["LATENCY", "LATEST"]), &mut out, &Vec::new).unwrap();
        let latest = String::from_utf8_lossy(&out.take()).into_owned();
        assert!(latest.starts_with("*1\r\n*4\r\n$7\r\ncommand\r\n:") && latest.ends_with(":3\r\n:3\r\n"), "{latest}");
        d.latency_command(&request(&["LATENCY", "RESET"]), &mut out, &Vec::new).unwrap();
        assert_eq!(&out.take()[..], b":1\r\n");
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let before = total_error_replies();
        count_error("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert!(total_error_replies() > before);
        assert!(error_counts().iter().any(|(k, n)| k == "WRONGTYPE" && *n >= 1));
    }
}
