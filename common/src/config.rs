//! Command-line and config-file plumbing shared by every binary.
//!
//! Every flag can also come from an environment variable (`RINGCACHE_` + the flag in upper snake case, via
//! clap's `env`) and from a TOML file given with `--config`. Precedence: flag, then environment, then file,
//! then the built-in default. [`parse_args`] implements that once for any `clap::Parser`: it turns the
//! file's keys into flags placed before the real ones, skipping keys whose environment variable is set.

use std::ffi::OsString;
use std::time::Duration;

use crate::push::PushLimits;

/// Errors reading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Toml { path: String, source: toml::de::Error },
    #[error("config file {path}: unknown key '{key}'")]
    UnknownKey { path: String, key: String },
    #[error("config file {path}: key '{key}' has an unsupported value type")]
    BadValue { path: String, key: String },
    #[error(transparent)]
    Clap(#[from] clap::Error),
}

/// Limits on what one connection's state may hold (each a flag of [`StateArgs`]).
#[derive(Debug, Clone, Copy)]
pub struct StateLimits {
    /// Most commands queued between MULTI and EXEC.
    pub multi_max_commands: usize,
    /// Most bytes of arguments queued between MULTI and EXEC.
    pub multi_max_bytes: usize,
    /// Most channels, patterns and shard channels one connection may subscribe to.
    pub max_subscriptions: usize,
    /// Output limits of connections that receive pushes.
    pub pubsub_output: PushLimits,
}

impl Default for StateLimits {
    fn default() -> Self {
        StateLimits {
            multi_max_commands: 100_000,
            multi_max_bytes: 512 << 20,
            max_subscriptions: 100_000,
            pubsub_output: PushLimits::default(),
        }
    }
}

/// Flags bounding a connection's state (transactions, subscriptions, pushes), shared by shard and proxy.
#[derive(clap::Args, Debug, Clone)]
pub struct StateArgs {
    /// Most commands a client may queue between MULTI and EXEC; past it the transaction is refused.
    #[arg(long, env = "RINGCACHE_MULTI_MAX_COMMANDS", default_value_t = 100_000)]
    pub multi_max_commands: usize,

    /// Most bytes of arguments a client may queue between MULTI and EXEC (b/kb/mb/gb).
    #[arg(long, env = "RINGCACHE_MULTI_MAX_BYTES", default_value = "512mb", value_parser = parse_byte_size)]
    pub multi_max_bytes: u64,

    /// Most channels, patterns and shard channels one client may subscribe to.
    #[arg(long, env = "RINGCACHE_MAX_SUBSCRIPTIONS", default_value_t = 100_000)]
    pub max_subscriptions: usize,

    /// Output limit of clients that receive pub/sub messages or invalidations, as Redis's
    /// `client-output-buffer-limit pubsub`: "<hard> <soft> <soft-seconds>". A client whose unsent pushes pass
    /// the hard limit, or stay above the soft limit that long, is disconnected (0 turns a limit off).
    #[arg(long, env = "RINGCACHE_CLIENT_OUTPUT_BUFFER_LIMIT_PUBSUB", default_value = "32mb 8mb 60", value_parser = parse_push_limits)]
    pub client_output_buffer_limit_pubsub: PushLimits,
}

impl StateArgs {
    pub fn limits(&self) -> StateLimits {
        StateLimits {
            multi_max_commands: self.multi_max_commands,
            multi_max_bytes: self.multi_max_bytes as usize,
            max_subscriptions: self.max_subscriptions,
            pubsub_output: self.client_output_buffer_limit_pubsub,
        }
    }
}

/// Parses Redis's "<hard> <soft> <soft-seconds>" output limit.
pub fn parse_push_limits(s: &str) -> Result<PushLimits, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [hard, soft, seconds] = parts.as_slice() else {
        return Err(format!("expected \"<hard> <soft> <soft-seconds>\", got '{s}'"));
    };
    let seconds: u64 = seconds.parse().map_err(|_| format!("'{seconds}' is not a number of seconds"))?;
    Ok(PushLimits {
        hard_bytes: parse_byte_size(hard)? as usize,
        soft_bytes: parse_byte_size(soft)? as usize,
        soft_for: Duration::from_secs(seconds),
    })
}

/// Flags every client-facing server shares (shard and proxy): authentication, client and request limits,
/// threads and logging. Flattened into each binary's parser.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Require clients to AUTH with this password before any other command (the default user's password).
    /// Visible in `ps`: prefer --requirepass-file or the environment variable.
    #[arg(long, env = "RINGCACHE_REQUIREPASS", hide_env_values = true)]
    pub requirepass: Option<crate::acl::Secret>,

    /// Read the default user's password from this file (its first line).
    #[arg(long, env = "RINGCACHE_REQUIREPASS_FILE", conflicts_with = "requirepass")]
    pub requirepass_file: Option<std::path::PathBuf>,

    /// ACL users in Redis's ACL file format (`user <name> <rules>` lines), loaded at start; ACL LOAD reads it
    /// again and ACL SAVE writes it.
    #[arg(long, env = "RINGCACHE_ACLFILE")]
    pub aclfile: Option<std::path::PathBuf>,

    /// Most simultaneous client connections; more are refused with "ERR max number of clients reached".
    #[arg(long, env = "RINGCACHE_MAXCLIENTS", default_value_t = 10_000)]
    pub maxclients: usize,

    /// Connections the listen queue holds before they are accepted (Redis's tcp-backlog; the kernel caps it
    /// at net.core.somaxconn). A reconnect storm beyond it makes clients wait for SYN retries (1 s and more).
    #[arg(long, env = "RINGCACHE_TCP_BACKLOG", default_value_t = 511)]
    pub tcp_backlog: u32,

    /// Close a client connection idle for this long (e.g. 300s); 0 never closes idle clients.
    #[arg(long, env = "RINGCACHE_IDLE_TIMEOUT", default_value = "0", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Largest bulk string a client may send (Redis's proto-max-bulk-len).
    #[arg(long, env = "RINGCACHE_PROTO_MAX_BULK_LEN", default_value = "512mb", value_parser = parse_byte_size)]
    pub proto_max_bulk_len: u64,

    /// Largest number of arguments in one request.
    #[arg(long, env = "RINGCACHE_PROTO_MAX_MULTIBULK_LEN", default_value_t = 1024 * 1024)]
    pub proto_max_multibulk_len: usize,

    /// Longest inline (telnet-style) command line.
    #[arg(long, env = "RINGCACHE_PROTO_MAX_INLINE_LEN", default_value = "64kb", value_parser = parse_byte_size)]
    pub proto_max_inline_len: u64,

    /// Worker threads (default: one per core).
    #[arg(long, env = "RINGCACHE_THREADS")]
    pub threads: Option<usize>,

    /// Log filter (tracing's env-filter syntax), e.g. info or ringcache_shard=debug.
    #[arg(long, env = "RINGCACHE_LOG", default_value = "info")]
    pub log: String,

    /// SLOWLOG and LATENCY settings.
    #[command(flatten)]
    pub diagnostics: crate::diagnostics::DiagnosticsArgs,
}

impl ClientArgs {
    /// The request limits these flags set.
    pub fn limits(&self) -> crate::resp::Limits {
        crate::resp::Limits {
            max_bulk_len: self.proto_max_bulk_len as usize,
            max_multibulk_len: self.proto_max_multibulk_len,
            max_inline_len: self.proto_max_inline_len as usize,
            unauthenticated: false,
        }
    }

    /// The password clients must give, if any (an empty one means none).
    pub fn password(&self) -> Option<String> {
        self.secret().ok().flatten().map(|p| p.expose().to_string())
    }

    /// The default user's password, from --requirepass or --requirepass-file (an empty one means none).
    pub fn secret(&self) -> Result<Option<crate::acl::Secret>, String> {
        let secret = match &self.requirepass_file {
            Some(path) => Some(crate::acl::Secret::from_file(path)?),
            None => self.requirepass.clone(),
        };
        Ok(secret.filter(|p| !p.is_empty()))
    }

    /// The server's users: the default one with the password, or those of --aclfile.
    pub fn acl(&self) -> Result<crate::acl::Acl, String> {
        crate::acl::Acl::new(self.secret()?.as_ref(), self.aclfile.clone()).map_err(|e| e.to_string())
    }

    /// Starts logging to stderr and builds the multi-threaded runtime the shard runs on.
    pub fn init_process(&self, thread_name: &str) -> Result<tokio::runtime::Runtime, String> {
        self.init_logging()?;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.worker_threads())
            .thread_name(thread_name)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))
    }

    /// Starts logging to stderr (the filter is `--log`; [`set_log_filter`] changes it later).
    pub fn init_logging(&self) -> Result<(), String> {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| format!("invalid --log filter '{}': {e}", self.log))?;
        // A log line that cannot be written (stderr closed, or a pipe whose reader went away) is dropped:
        // with tracing's default, the failure is reported with `eprintln!`, which panics on that same
        // stderr, and a panic in the signal task would leave SIGTERM unanswered.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .log_internal_errors(false)
            .with_filter_reloading();
        let handle = builder.reload_handle();
        *LOG_FILTER.lock() = self.log.clone();
        let _ = LOG_RELOAD.set(Box::new(move |text: &str| {
            let filter = tracing_subscriber::EnvFilter::try_new(text).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        }));
        builder.init();
        Ok(())
    }

    /// `--threads`, by default one per core; at least one.
    pub fn worker_threads(&self) -> usize {
        self.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
    }
}

type ReloadFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Replaces the log filter of the subscriber [`ClientArgs::init_logging`] installed.
static LOG_RELOAD: std::sync::OnceLock<ReloadFilter> = std::sync::OnceLock::new();
/// The log filter in force (`--log`, then CONFIG SET loglevel).
static LOG_FILTER: parking_lot::Mutex<String> = parking_lot::Mutex::new(String::new());

/// The log filter in force (tracing's env-filter syntax).
pub fn log_filter() -> String {
    let f = LOG_FILTER.lock();
    if f.is_empty() {
        "info".into()
    } else {
        f.clone()
    }
}

/// Changes the log filter of a running process (CONFIG SET loglevel); before logging starts it is only
/// remembered.
pub fn set_log_filter(filter: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    if let Some(reload) = LOG_RELOAD.get() {
        reload(filter)?;
    }
    *LOG_FILTER.lock() = filter.to_string();
    Ok(())
}

/// Parses a byte size the way Redis's config does: a plain number of bytes, or a number followed by `b`,
/// `k`/`kb`, `m`/`mb`, `g`/`gb` (case-insensitive; `k` = 1000, `kb` = 1024, and so on).
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("invalid size '{s}': expected a number with an optional unit"))?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(format!("invalid size unit in '{s}': use b, kb, mb or gb")),
    };
    n.checked_mul(mul).ok_or_else(|| format!("size '{s}' is too large"))
}

/// Parses a duration: `0` (off), or a number with a unit (`500ms`, `10s`, `1m`, `1h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| format!("invalid duration '{s}': {e} (examples: 500ms, 10s, 1m)"))
}

/// Parses the process's arguments into `T`, merging in `--config FILE` (see the module docs).
pub fn parse_args<T: clap::Parser>() -> Result<T, ConfigError> {
    parse_args_from::<T, _>(std::env::args_os(), |k| std::env::var_os(k).is_some())
}

/// [`parse_args`] for `main`: a usage error or `--help` prints and exits as clap does; a config-file
/// error is returned.
pub fn parse_args_or_exit<T: clap::Parser>() -> Result<T, ConfigError> {
    match parse_args::<T>() {
        Err(ConfigError::Clap(e)) => e.exit(),
        other => other,
    }
}

/// `bind:port` as a socket address, with an error naming the flags.
pub fn socket_addr(bind: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    let text = if bind.contains(':') { format!("[{bind}]:{port}") } else { format!("{bind}:{port}") };
    text.parse().map_err(|_| format!("invalid --bind/--port: {text}"))
}

/// [`parse_args`] with explicit arguments and environment lookup, for tests.
pub fn parse_args_from<T, I>(args: I, env_is_set: impl Fn(&str) -> bool) -> Result<T, ConfigError>
where
    T: clap::Parser,
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = T::command().try_get_matches_from(&args)?;
    let Some(path) = first.get_one::<String>("config").cloned() else {
        return Ok(T::from_arg_matches(&first)?);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
    let table: toml::Table = text.parse().map_err(|source| ConfigError::Toml { path: path.clone(), source })?;
    let cmd = T::command();
    let mut merged: Vec<OsString> = vec![args.first().cloned().unwrap_or_default()];
    for (key, value) in &table {
        let flag = key.replace('_', "-");
        let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(flag.as_str()) && flag != "config") else {
            return Err(ConfigError::UnknownKey { path: path.clone(), key: key.clone() });
        };
        if let Some(env) = arg.get_env() {
            if env_is_set(&env.to_string_lossy()) {
                continue;
            }
        }
        let bad = || ConfigError::BadValue { path: path.clone(), key: key.clone() };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let parts: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                parts.ok_or_else(bad)?.join(",")
            }
            _ => return Err(bad()),
        };
        merged.push(format!("--{flag}={text}").into());
    }
    merged.extend(args.into_iter().skip(1));
    let cmd = T::command().args_override_self(true);
    let matches = cmd.try_get_matches_from(merged)?;
    Ok(T::from_arg_matches(&matches)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Demo {
        #[arg(long)]
        config: Option<String>,
        #[arg(long, env = "RINGCACHE_PORT", default_value_t = 7001)]
        port: u16,
        #[arg(long, env = "RINGCACHE_BIND", default_value = "127.0.0.1")]
        bind: String,
        #[arg(long, env = "RINGCACHE_MAXMEMORY", default_value = "256mb", value_parser = parse_byte_size)]
        maxmemory: u64,
    }

    #[test]
    fn sizes_follow_redis_units() {
        assert_eq!(parse_byte_size("100").unwrap(), 100);
        assert_eq!(parse_byte_size("1k").unwrap(), 1000);
        assert_eq!(parse_byte_size("1KB").unwrap(), 1024);
        assert_eq!(parse_byte_size("256mb").unwrap(), 256 << 20);
        assert_eq!(parse_byte_size("2gb").unwrap(), 2 << 30);
        assert!(parse_byte_size("12xb").is_err());
        assert!(parse_byte_size("mb").is_err());
        assert!(parse_byte_size("99999999999999999999gb").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10").is_err());
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = std::env::temp_dir().join(format!("ringcache-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "port = 7100\nbind = \"0.0.0.0\"\nmaxmemory = \"1mb\"\n").unwrap();
        let p = path.to_str().unwrap();
        let no_env = |_: &str| false;
        let d: Demo = parse_args_from(["x", "--config", p], no_env).unwrap();
        assert_eq!((d.port, d.bind.as_str(), d.maxmemory), (7100, "0.0.0.0", 1 << 20));
        let d: Demo = parse_args_from(["x", "--config", p, "--port", "7200"], no_env).unwrap();
        assert_eq!(d.port, 7200);
        // An environment variable set for a key hides the file's value for it.
        let d: Demo = parse_args_from(["x", "--config", p], |k: &str| k == "RINGCACHE_PORT").unwrap();
        assert_eq!(d.port, 7001);
        let d: Demo = parse_args_from(["x"], no_env).unwrap();
        assert_eq!((d.port, d.maxmemory), (7001, 256 << 20));
        std::fs::write(&path, "nosuch = 1\n").unwrap();
        assert!(matches!(
            parse_args_from::<Demo, _>(["x", "--config", p], no_env),
            Err(ConfigError::UnknownKey { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
