//! Command-line flags ([`Args`], parsed by clap; every flag also reads `RINGCACHE_<FLAG>` and `--config`)
//! and their validated form ([`Config`]) that the rest of the crate uses.

use std::path::PathBuf;
use std::time::Duration;

use ringcache_common::config::parse_duration;

use crate::workload::{CommandTemplate, KeyPattern};

/// Errors in the flags that clap's own checks cannot catch.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("invalid --uri '{0}': expected redis://[[user]:password@]host[:port][/db]")]
    Uri(String),
    #[error("invalid --ratio '{0}': expected SET:GET, two non-negative integers not both zero (e.g. 1:10)")]
    Ratio(String),
    #[error("invalid --data-size '{0}': expected bytes (64) or a range (32-1024)")]
    DataSize(String),
    #[error("invalid --command '{0}': {1}")]
    Command(String, String),
    #[error("invalid --command-ratio '{0}': expected one positive integer per --command, e.g. 3:1")]
    CommandRatio(String),
    #[error("{0}")]
    Invalid(String),
}

/// How keys are chosen (`--key-pattern`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPatternArg {
    /// Each client walks its own share of the keys in order (client c of C: c, c+C, c+2C, ...), wrapping.
    Sequential,
    /// Every key equally likely.
    Uniform,
    /// Key of rank r (0-based) drawn with probability proportional to 1/(r+1)^s, s = --zipf-exponent.
    Zipf,
    /// Normal around the middle key; standard deviation --key-stddev (default keys/6).
    Gaussian,
}

const MANUAL: &str = "\
Drives any RESP server (ringcache-proxy, ringcache-shard, redis-server, twemproxy) with a configurable load
and reports latency percentiles (HDR histograms), throughput, hit ratio and errors.

LOAD SHAPE
  --threads T --clients C: T threads, each running C connections. In closed loop (the default) every
  connection sends --pipeline requests at once, waits for all their replies, and repeats. With --rate R the
  load is open loop: R requests/s in total are scheduled at fixed intervals whatever the replies, and each
  request is timed from when it should have been sent (no coordinated omission); --pipeline then bounds the
  requests in flight per connection (default 1024).
  The run lasts --requests per connection or --test-time, after an optional --warmup that is not measured.

WORKLOAD
  --ratio SET:GET mixes SET and GET of keys <--key-prefix><n>, n in [0, --keys), chosen by --key-pattern.
  Values are --data-size bytes (or a MIN-MAX range), generated from --seed, so that a run repeats.
  --command TEMPLATE (repeatable) replaces the SET/GET mix: __key__ is replaced by a key, __data__ by a value,
  e.g. --command 'MGET __key__ __key__ __key__' --command 'HSET h:__key__ f __data__' --command 'INCR __key__';
  --command-ratio 3:1:1 weighs them.

VERIFICATION
  --verify checks every GET against the last value written for its key: each connection owns the keys n with
  n mod (threads*clients) = its index, so it alone writes them, and every value carries the run's id, a version
  and a checksum. Mismatches are reported as lost (a miss after an acknowledged write; allowed with
  --verify-allow-miss, e.g. when the server may evict), stale (an older version than one acknowledged before
  the read was sent) or corrupt (not a value this run could have written), with examples.

FAILURES
  Connection failures, resets and replies later than --timeout-ms count as errors by kind (connect, io,
  timeout, protocol, or the first word of a server error such as ERR, OOM, LOADING); the connection is
  re-established with backoff (10 ms doubling to 1 s). A failed connection attempt consumes one batch of
  requests, so --requests runs end even when the server never comes back.

OUTPUT
  A live line on stderr every second (ops/s, p99, errors), a table on stdout at the end, --json-out FILE
  with every figure, and --plot FILE.svg (ops/s and p99 over time, and the latency percentile curve).

EXIT STATUS
  0 success; 1 bad flags or a fatal error; 2 the error rate (errors / requests) exceeded --max-error-rate;
  3 --verify found a mismatch.

Every flag also reads the environment variable RINGCACHE_<FLAG> (e.g. RINGCACHE_TEST_TIME=10s) and a TOML
file given with --config; flags win over the environment, which wins over the file.";

/// The command line (see `MANUAL`, printed by `--help`).
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "ringcache-loadgen", version, about = "RESP load generator with latency percentiles", long_about = MANUAL)]
pub struct Args {
    /// TOML file whose keys are flag names (e.g. test_time = "10s").
    #[arg(long)]
    pub config: Option<String>,

    /// Server host name or address.
    #[arg(long, env = "RINGCACHE_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(long, env = "RINGCACHE_PORT", default_value_t = 6379)]
    pub port: u16,

    /// Server as a URI, redis://[[user]:password@]host[:port]; overrides --host, --port and --password.
    #[arg(long, env = "RINGCACHE_URI")]
    pub uri: Option<String>,

    /// Password sent with AUTH on every connection.
    #[arg(long, env = "RINGCACHE_PASSWORD")]
    pub password: Option<String>,

    /// Threads, each with its own event loop and --clients connections.
    #[arg(long, env = "RINGCACHE_THREADS", default_value_t = 1)]
    pub threads: usize,

    /// Connections per thread.
    #[arg(long, env = "RINGCACHE_CLIENTS", default_value_t = 50)]
    pub clients: usize,

    /// Requests per batch (closed loop, default 1) or most requests in flight per connection (open loop,
    /// default 1024).
    #[arg(long, env = "RINGCACHE_PIPELINE")]
    pub pipeline: Option<usize>,

    /// Requests per connection (after the warmup). Default 10000 when --test-time is not given.
    #[arg(long, env = "RINGCACHE_REQUESTS", conflicts_with = "test_time")]
    pub requests: Option<u64>,

    /// Run for this long (after the warmup), e.g. 30s, or bare seconds as memtier takes them (30).
    #[arg(long, env = "RINGCACHE_TEST_TIME", value_parser = parse_test_time)]
    pub test_time: Option<Duration>,

    /// SET:GET ratio of the default workload.
    #[arg(long, env = "RINGCACHE_RATIO", default_value = "1:10")]
    pub ratio: String,

    /// Request template replacing the SET/GET mix (repeatable); __key__ and __data__ are substituted.
    #[arg(long, env = "RINGCACHE_COMMAND", value_delimiter = ';')]
    pub command: Vec<String>,

    /// Weights of the --command templates, e.g. 3:1.
    #[arg(long, env = "RINGCACHE_COMMAND_RATIO")]
    pub command_ratio: Option<String>,

    /// Number of distinct keys.
    #[arg(long, env = "RINGCACHE_KEYS", default_value_t = 100_000)]
    pub keys: u64,

    /// How keys are chosen.
    #[arg(long, env = "RINGCACHE_KEY_PATTERN", value_enum, default_value = "uniform")]
    pub key_pattern: KeyPatternArg,

    /// Exponent s of the zipf key pattern (larger: hotter hot keys).
    #[arg(long, env = "RINGCACHE_ZIPF_EXPONENT", default_value_t = 0.99)]
    pub zipf_exponent: f64,

    /// Standard deviation of the gaussian key pattern, in keys (default keys/6).
    #[arg(long, env = "RINGCACHE_KEY_STDDEV")]
    pub key_stddev: Option<f64>,

    /// Prefix of every key.
    #[arg(long, env = "RINGCACHE_KEY_PREFIX", default_value = "loadgen:")]
    pub key_prefix: String,

    /// Value size in bytes, or a range MIN-MAX drawn uniformly.
    #[arg(long, env = "RINGCACHE_DATA_SIZE", default_value = "64")]
    pub data_size: String,

    /// Seed of every random choice; the same seed repeats the same keys and values (default: random,
    /// printed in the report).
    #[arg(long, env = "RINGCACHE_SEED")]
    pub seed: Option<u64>,

    /// Run the load this long before measuring (e.g. 5s); not counted in any figure.
    #[arg(long, env = "RINGCACHE_WARMUP", default_value = "0", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Open loop: this many requests per second in total, timed from their intended send time.
    #[arg(long, env = "RINGCACHE_RATE")]
    pub rate: Option<f64>,

    /// Cache-aside: a GET that misses is followed by a SET of that key (closed loop only), so the server's
    /// eviction policy decides the hit ratio.
    #[arg(long, env = "RINGCACHE_SET_ON_MISS")]
    pub set_on_miss: bool,

    /// Every SET gets this TTL in seconds (`SET k v EX n`); unset: no TTL.
    #[arg(long, env = "RINGCACHE_SET_TTL")]
    pub set_ttl: Option<u64>,

    /// Check that every GET returns the last value written for its key.
    #[arg(long, env = "RINGCACHE_VERIFY")]
    pub verify: bool,

    /// With --verify, accept a miss for a key that was written (the server may evict).
    #[arg(long, env = "RINGCACHE_VERIFY_ALLOW_MISS")]
    pub verify_allow_miss: bool,

    /// A request without a reply after this long fails with a timeout error and the connection is
    /// re-established; also bounds connecting and writing.
    #[arg(long, env = "RINGCACHE_TIMEOUT_MS", default_value_t = 2000)]
    pub timeout_ms: u64,

    /// Exit with status 2 when errors / requests exceeds this fraction.
    #[arg(long, env = "RINGCACHE_MAX_ERROR_RATE", default_value_t = 0.0)]
    pub max_error_rate: f64,

    /// Write every figure as JSON to this file.
    #[arg(long, env = "RINGCACHE_JSON_OUT")]
    pub json_out: Option<PathBuf>,

    /// Write an SVG plot (ops/s and p99 over time, latency percentile curve) to this file.
    #[arg(long, env = "RINGCACHE_PLOT")]
    pub plot: Option<PathBuf>,

    /// No live line on stderr.
    #[arg(long, env = "RINGCACHE_QUIET")]
    pub quiet: bool,
}

/// Value sizes in bytes, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DataSize {
    pub min_bytes: usize,
    pub max_bytes: usize,
}

/// What each connection sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// SET and GET in the ratio `set:get`.
    SetGet { set: u32, get: u32 },
    /// Templates with weights.
    Templates(Vec<(CommandTemplate, u32)>),
}

/// When a connection stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLength {
    RequestsPerClient(u64),
    Duration(Duration),
}

/// Validated configuration of a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub threads: usize,
    pub clients_per_thread: usize,
    /// Closed loop: batch size. Open loop: most requests in flight per connection.
    pub pipeline: usize,
    pub length: RunLength,
    pub workload: Workload,
    pub keys: u64,
    pub key_pattern: KeyPattern,
    pub key_prefix: String,
    pub data_size: DataSize,
    pub seed: u64,
    pub warmup: Duration,
    /// Total requests per second in open loop; `None` is closed loop.
    pub rate_per_sec: Option<f64>,
    pub verify: bool,
    pub verify_allow_miss: bool,
    /// Cache-aside: SET the key after a GET misses.
    pub set_on_miss: bool,
    /// TTL in seconds given to every SET.
    pub set_ttl_secs: Option<u64>,
    pub timeout: Duration,
    pub max_error_rate: f64,
    pub json_out: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    pub live: bool,
}

impl Config {
    /// Total connections.
    pub fn total_clients(&self) -> usize {
        self.threads * self.clients_per_thread
    }

    /// `host:port` for messages.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Checks `args` and turns them into a configuration.
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        let (mut host, mut port, mut user, mut password) = (args.host.clone(), args.port, None, args.password.clone());
        if let Some(uri) = &args.uri {
            let u = parse_uri(uri)?;
            host = u.host;
            if let Some(p) = u.port {
                port = p;
            }
            user = u.user;
            if u.password.is_some() {
                password = u.password;
            }
        }
        let password = password.filter(|p| !p.is_empty());
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if args.threads == 0 || args.clients == 0 {
            return invalid("--threads and --clients must be at least 1");
        }
        if args.keys == 0 {
            return invalid("--keys must be at least 1");
        }
        let length = match (args.requests, args.test_time) {
            (Some(0), _) => return invalid("--requests must be at least 1"),
            (Some(n), _) => RunLength::RequestsPerClient(n),
            (None, Some(d)) if d.is_zero() => return invalid("--test-time must be longer than 0"),
            (None, Some(d)) => RunLength::Duration(d),
            (None, None) => RunLength::RequestsPerClient(10_000),
        };
        let rate_per_sec = match args.rate {
            Some(r) if !(r > 0.0 && r.is_finite()) => return invalid("--rate must be a positive number of requests/s"),
            r => r,
        };
        if args.set_on_miss && (args.rate.is_some() || args.verify) {
            return invalid("--set-on-miss works in closed loop without --verify (no --rate, no --verify)");
        }
        if args.set_ttl == Some(0) {
            return invalid("--set-ttl must be at least 1 second");
        }
        let pipeline = args.pipeline.unwrap_or(if rate_per_sec.is_some() { 1024 } else { 1 });
        if pipeline == 0 {
            return invalid("--pipeline must be at least 1");
        }
        let workload = if args.command.is_empty() {
            if args.command_ratio.is_some() {
                return invalid("--command-ratio needs --command");
            }
            let (set, get) = parse_ratio(&args.ratio)?;
            Workload::SetGet { set, get }
        } else {
            let templates: Vec<CommandTemplate> = args
                .command
                .iter()
                .map(|t| CommandTemplate::parse(t).map_err(|e| ConfigError::Command(t.clone(), e)))
                .collect::<Result<_, _>>()?;
            let weights = match &args.command_ratio {
                None => vec![1; templates.len()],
                Some(text) => {
                    let w: Option<Vec<u32>> = text.split(':').map(|p| p.trim().parse().ok()).collect();
                    match w {
                        Some(w) if w.len() == templates.len() && w.iter().all(|&x| x > 0) => w,
                        _ => return Err(ConfigError::CommandRatio(text.clone())),
                    }
                }
            };
            Workload::Templates(templates.into_iter().zip(weights).collect())
        };
        if args.verify {
            if !matches!(workload, Workload::SetGet { .. }) {
                return invalid("--verify checks the SET/GET workload; it cannot be combined with --command");
            }
            if args.keys < (args.threads * args.clients) as u64 {
                return invalid("--verify gives each connection its own keys: --keys must be at least threads*clients");
            }
        }
        if args.verify_allow_miss && !args.verify {
            return invalid("--verify-allow-miss needs --verify");
        }
        let key_pattern = match args.key_pattern {
            KeyPatternArg::Sequential => KeyPattern::Sequential,
            KeyPatternArg::Uniform => KeyPattern::Uniform,
            KeyPatternArg::Zipf => {
                if !(args.zipf_exponent >= 0.0 && args.zipf_exponent.is_finite()) {
                    return invalid("--zipf-exponent must be a non-negative number");
                }
                KeyPattern::Zipf { exponent: args.zipf_exponent }
            }
            KeyPatternArg::Gaussian => {
                if let Some(s) = args.key_stddev {
                    if !(s > 0.0 && s.is_finite()) {
                        return invalid("--key-stddev must be a positive number");
                    }
                }
                KeyPattern::Gaussian { stddev_keys: args.key_stddev }
            }
        };
        if !(0.0..=1.0).contains(&args.max_error_rate) {
            return invalid("--max-error-rate is a fraction between 0 and 1");
        }
        if args.timeout_ms == 0 {
            return invalid("--timeout-ms must be at least 1");
        }
        if let Some(plot) = &args.plot {
            if plot.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() != Some("svg") {
                return invalid("--plot writes SVG only: give a file name ending in .svg");
            }
        }
        Ok(Config {
            host,
            port,
            user,
            password,
            threads: args.threads,
            clients_per_thread: args.clients,
            pipeline,
            length,
            workload,
            keys: args.keys,
            key_pattern,
            key_prefix: args.key_prefix.clone(),
            data_size: parse_data_size(&args.data_size)?,
            seed: args.seed.unwrap_or_else(rand::random),
            warmup: args.warmup,
            rate_per_sec,
            verify: args.verify,
            verify_allow_miss: args.verify_allow_miss,
            set_on_miss: args.set_on_miss,
            set_ttl_secs: args.set_ttl,
            timeout: std::time::Duration::from_millis(args.timeout_ms),
            max_error_rate: args.max_error_rate,
            json_out: args.json_out.clone(),
            plot: args.plot.clone(),
            live: !args.quiet,
        })
    }
}

/// Parts of a `redis://` URI.
#[derive(Debug, PartialEq, Eq)]
pub struct Uri {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Parses `redis://[[user]:password@]host[:port][/db]` (the database number is ignored: RESP clusters serve
/// db 0 only). IPv6 hosts go in brackets.
pub fn parse_uri(text: &str) -> Result<Uri, ConfigError> {
    let err = || ConfigError::Uri(text.to_string());
    let rest = text.strip_prefix("redis://").ok_or_else(err)?;
    let rest = rest.split(['/', '?']).next().unwrap_or_default();
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (user, password) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => ((!u.is_empty()).then(|| u.to_string()), Some(p.to_string())),
            // `redis://secret@host` is taken as a password, as redis-cli -u does.
            None => (None, Some(a.to_string())),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(err)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| err())?),
            None if after.is_empty() => None,
            None => return Err(err()),
        };
        (h.to_string(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().map_err(|_| err())?)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(err());
    }
    Ok(Uri { host, port, user, password })
}

/// Parses `SET:GET`.
pub fn parse_ratio(text: &str) -> Result<(u32, u32), ConfigError> {
    let err = || ConfigError::Ratio(text.to_string());
    let (s, g) = text.split_once(':').ok_or_else(err)?;
    let (s, g): (u32, u32) = (s.trim().parse().map_err(|_| err())?, g.trim().parse().map_err(|_| err())?);
    if s == 0 && g == 0 {
        return Err(err());
    }
    Ok((s, g))
}

/// Parses `64` or `32-1024`.
pub fn parse_data_size(text: &str) -> Result<DataSize, ConfigError> {
    let err = || ConfigError::DataSize(text.to_string());
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse().map_err(|_| err())?, b.trim().parse().map_err(|_| err())?),
        None => {
            let n = text.trim().parse().map_err(|_| err())?;
            (n, n)
        }
    };
    if min > max || max > 512 << 20 {
        return Err(err());
    }
    Ok(DataSize { min_bytes: min, max_bytes: max })
}

/// `--test-time`: a duration (`30s`, `1m`, `500ms`) or, as memtier_benchmark's `--test-time=SECS`, a bare
/// number of seconds (`30`, `2.5`).
pub fn parse_test_time(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match t.parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs <= 1e9 => Ok(Duration::from_secs_f64(secs)),
            _ => Err(format!("invalid duration '{t}' (examples: 30, 500ms, 10s, 1m)")),
        };
    }
    parse_duration(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["ringcache-loadgen"];
        v.extend_from_slice(extra);
        ringcache_common::config::parse_args_from::<Args, _>(v, |_| false).unwrap()
    }

    #[test]
    fn uris() {
        let u = parse_uri("redis://:secret@cache.example:6380/0").unwrap();
        assert_eq!(
            u,
            Uri { host: "cache.example".into(), port: Some(6380), user: None, password: Some("secret".into()) }
        );
        let u = parse_uri("redis://alice:pw@10.0.0.1").unwrap();
        assert_eq!((u.user.as_deref(), u.password.as_deref(), u.port), (Some("alice"), Some("pw"), None));
        assert_eq!(parse_uri("redis://[::1]:7000").unwrap().host, "::1");
        assert_eq!(parse_uri("redis://pw@h:1").unwrap().password.as_deref(), Some("pw"));
        for bad in ["http://h", "redis://", "redis://h:x", "redis://[::1", "redis://:p@:1"] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratios_and_sizes() {
        assert_eq!(parse_ratio("1:10").unwrap(), (1, 10));
        assert_eq!(parse_ratio("0:1").unwrap(), (0, 1));
        assert!(parse_ratio("0:0").is_err());
        assert!(parse_ratio("1").is_err());
        assert_eq!(parse_data_size("64").unwrap(), DataSize { min_bytes: 64, max_bytes: 64 });
        assert_eq!(parse_data_size("32-1024").unwrap(), DataSize { min_bytes: 32, max_bytes: 1024 });
        assert!(parse_data_size("10-5").is_err());
        assert!(parse_data_size("x").is_err());
    }

    #[test]
    fn uri_overrides_host_port_and_password() {
        let c = Config::from_args(&args(&["--host", "a", "--port", "1", "--uri", "redis://:pw@b:2"])).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.password.as_deref()), ("b", 2, Some("pw")));
    }

    #[test]
    fn defaults_and_mode_dependent_pipeline() {
        let c = Config::from_args(&args(&[])).unwrap();
        assert_eq!(c.length, RunLength::RequestsPerClient(10_000));
        assert_eq!(c.pipeline, 1);
        assert_eq!(c.workload, Workload::SetGet { set: 1, get: 10 });
        let c = Config::from_args(&args(&["--rate", "1000", "--test-time", "2s"])).unwrap();
        assert_eq!((c.pipeline, c.length), (1024, RunLength::Duration(Duration::from_secs(2))));
        assert!(Args::try_parse_from(["x", "--requests", "5", "--test-time", "1s"]).is_err());
    }

    #[test]
    fn test_time_takes_bare_seconds_as_memtier() {
        for (text, want_ms) in [("30", 30_000), ("30s", 30_000), ("2.5", 2_500), ("500ms", 500), ("1m", 60_000)] {
            let c = Config::from_args(&args(&["--test-time", text])).unwrap();
            assert_eq!(c.length, RunLength::Duration(Duration::from_millis(want_ms)), "{text}");
        }
        assert!(Config::from_args(&args(&["--test-time", "0"])).is_err());
        for bad in ["1.2.3", "30x", "", "-5", "."] {
            assert!(Args::try_parse_from(["x", "--test-time", bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_inconsistent_flags() {
        for bad in [
            &["--verify", "--command", "INCR __key__"][..],
            &["--verify", "--keys", "10", "--clients", "20"],
            &["--verify-allow-miss"],
            &["--command-ratio", "1:2"],
            &["--command", "GET __key__", "--command-ratio", "1:2"],
            &["--plot", "x.png"],
            &["--max-error-rate", "2"],
            &["--rate", "0"],
            &["--pipeline", "0"],
        ] {
            assert!(Config::from_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_convention_names() {
        // Every flag but --config reads RINGCACHE_<FLAG>.
        let cmd = <Args as clap::CommandFactory>::command();
        for a in cmd.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if ["config", "help", "version"].contains(&long) {
                continue;
            }
            let want = format!("RINGCACHE_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(a.get_env().map(|e| e.to_string_lossy().into_owned()), Some(want), "--{long}");
        }
    }
}
