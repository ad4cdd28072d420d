//! Runtime configuration as Redis's `CONFIG GET/SET/RESETSTAT/REWRITE`, for shard and proxy alike.
//!
//! Each server describes its parameters once, as a table of [`Param`]s: Redis's name, a getter, a setter
//! when the value can change while the server runs, and the key it has in the TOML file of `--config`. This
//! module does the rest the way Redis 7 does: glob patterns and several of them per `CONFIG GET`, several
//! `name value` pairs per `CONFIG SET` (all names checked before any value is applied, and the values
//! already applied put back when one fails), Redis's error texts, and `CONFIG REWRITE` into the TOML file
//! with `toml_edit`, so the operator's comments and layout stay.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
pub use toml_edit;

use crate::glob::glob_match;
use crate::resp::{ReplyWriter, Request};

/// Applies a CONFIG SET value (`Err` is the reason after Redis's "CONFIG SET failed ... - ").
pub type Setter<C> = fn(&C, &str) -> Result<(), String>;
/// A CONFIG value to the TOML value CONFIG REWRITE writes.
pub type ToToml = fn(&str) -> toml_edit::Value;

/// One parameter of `CONFIG GET/SET`. `C` is the server's state the getter and setter reach through.
pub struct Param<C: ?Sized + 'static> {
    /// Redis's name (lower case).
    pub name: &'static str,
    /// Another name Redis accepts for it (`busy-reply-threshold` for `lua-time-limit`).
    pub alias: Option<&'static str>,
    /// The current value, as CONFIG GET prints it.
    pub get: fn(&C) -> String,
    /// Applies a new value at once; `None`: fixed at start (CONFIG SET answers "can't set immutable config").
    pub set: Option<Setter<C>>,
    /// The key in the `--config` TOML file and the value CONFIG REWRITE writes for a CONFIG GET value;
    /// `None`: never written.
    pub toml: Option<(&'static str, ToToml)>,
}

impl<C: ?Sized> Param<C> {
    fn is_named(&self, name: &str) -> bool {
        self.name == name || self.alias == Some(name)
    }
}

/// A CONFIG error, displayed as Redis's reply text.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigCmdError {
    #[error("ERR wrong number of arguments for 'config|{0}' command")]
    WrongArity(&'static str),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{0}'")]
    UnknownParam(String),
    #[error("ERR CONFIG SET failed (possibly related to argument '{param}') - {reason}")]
    SetFailed { param: String, reason: String },
    #[error("ERR The server is running without a config file")]
    NoConfigFile,
    #[error("ERR Rewriting config file: {0}")]
    Rewrite(String),
    #[error("ERR unknown subcommand '{0}'. Try CONFIG HELP.")]
    UnknownSubcommand(String),
}

/// Redis's CONFIG HELP.
const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// A server's parameter table, its config file and what CONFIG SET changed since the start.
pub struct RuntimeConfig<C: ?Sized + 'static> {
    params: &'static [Param<C>],
    file: Option<PathBuf>,
    /// Parameters CONFIG SET changed: CONFIG REWRITE adds them to the file when it lacks them.
    changed: Mutex<BTreeSet<&'static str>>,
}

impl<C: ?Sized + 'static> RuntimeConfig<C> {
    /// `file` is the `--config` file, if any.
    pub fn new(params: &'static [Param<C>], file: Option<PathBuf>) -> Self {
        RuntimeConfig { params, file, changed: Mutex::new(BTreeSet::new()) }
    }

    pub fn params(&self) -> &'static [Param<C>] {
        self.params
    }

    /// The parameters matching any of `patterns`, each once, with values, as Redis 7: a pattern without
    /// glob characters names one parameter (or alias) case-insensitively and is answered under the name as
    /// given; a glob is matched against every name and alias.
    pub fn get<'a>(&self, ctx: &C, patterns: impl IntoIterator<Item = &'a [u8]>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pattern in patterns {
            let has_glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
            if !has_glob {
                let name = String::from_utf8_lossy(pattern);
                let lower = name.to_ascii_lowercase();
                if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&lower)) {
                    continue;
                }
                if let Some(p) = self.params.iter().find(|p| p.is_named(&lower)) {
                    out.push((name.into_owned(), (p.get)(ctx)));
                }
                continue;
            }
            let glob = pattern.to_ascii_lowercase();
            for p in self.params {
                for name in [Some(p.name), p.alias].into_iter().flatten() {
                    if glob_match(&glob, name.as_bytes()) && !out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        out.push((name.to_string(), (p.get)(ctx)));
                    }
                }
            }
        }
        out
    }

    /// CONFIG SET with `args` = `name value [name value ...]`. Every name is checked before anything is
    /// applied; when a value is refused, those already applied are set back, as Redis does.
    pub fn set(&self, ctx: &C, args: &[&[u8]]) -> Result<(), ConfigCmdError> {
        if args.len() < 2 {
            return Err(ConfigCmdError::WrongArity("set"));
        }
        if !args.len().is_multiple_of(2) {
            return Err(ConfigCmdError::Syntax);
        }
        let mut planned: Vec<(&'static Param<C>, String, String)> = Vec::with_capacity(args.len() / 2);
        for pair in args.chunks(2) {
            let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
            let Some(param) = self.params.iter().find(|p| p.is_named(&name)) else {
                return Err(ConfigCmdError::UnknownParam(String::from_utf8_lossy(pair[0]).into_owned()));
            };
            let failed = |reason: &str| ConfigCmdError::SetFailed { param: name.clone(), reason: reason.into() };
            if param.set.is_none() {
                return Err(failed("can't set immutable config"));
            }
            if planned.iter().any(|(p, _, _)| std::ptr::eq(*p, param)) {
                return Err(failed("duplicate parameter"));
            }
            let value = String::from_utf8(pair[1].to_vec()).map_err(|_| failed("argument must be valid UTF-8"))?;
            planned.push((param, name, value));
        }
        let mut applied: Vec<(&'static Param<C>, String)> = Vec::new();
        for (param, name, value) in &planned {
            let Some(set) = param.set else { continue };
            let before = (param.get)(ctx);
            if let Err(reason) = set(ctx, value) {
                for (p, old) in applied.iter().rev() {
                    if let Some(undo) = p.set {
                        let _ = undo(ctx, old);
                    }
                }
                return Err(ConfigCmdError::SetFailed { param: name.clone(), reason });
            }
            applied.push((param, before));
        }
        let mut changed = self.changed.lock();
        for (param, _, _) in planned {
            changed.insert(param.name);
        }
        Ok(())
    }

    /// CONFIG REWRITE: the `--config` file gets the current value of every parameter it already names, and
    /// of every parameter CONFIG SET changed; everything else in it (comments, order, other keys) stays.
    pub fn rewrite(&self, ctx: &C) -> Result<(), ConfigCmdError> {
        let Some(path) = &self.file else { return Err(ConfigCmdError::NoConfigFile) };
        let changed = self.changed.lock().clone();
        rewrite_file(
            path,
            self.params.iter().filter_map(|p| {
                let (key, to_toml) = p.toml?;
                Some((key, to_toml(&(p.get)(ctx)), changed.contains(p.name)))
            }),
        )
    }

    /// Runs a CONFIG request: GET, SET, REWRITE and HELP here; RESETSTAT calls `reset_stats`.
    pub fn command(
        &self,
        ctx: &C,
        req: &Request,
        out: &mut impl ReplyWriter,
        reset_stats: impl FnOnce(),
    ) -> Result<(), ConfigCmdError> {
        let sub = req.arg(1);
        let is = |word: &str| sub.eq_ignore_ascii_case(word.as_bytes());
        if is("GET") {
            if req.argc() < 3 {
                return Err(ConfigCmdError::WrongArity("get"));
            }
            let found = self.get(ctx, req.args_from(2));
            out.map_len(found.len());
            for (name, value) in found {
                out.bulk(name.as_bytes());
                out.bulk(value.as_bytes());
            }
        } else if is("SET") {
            let args: Vec<&[u8]> = req.args_from(2).collect();
            self.set(ctx, &args)?;
            out.simple("OK");
        } else if is("RESETSTAT") {
            if req.argc() != 2 {
                return Err(ConfigCmdError::WrongArity("resetstat"));
            }
            crate::diagnostics::reset_error_counts();
            reset_stats();
            out.simple("OK");
        } else if is("REWRITE") {
            if req.argc() != 2 {
                return Err(ConfigCmdError::WrongArity("rewrite"));
            }
            self.rewrite(ctx)?;
            out.simple("OK");
        } else if is("HELP") {
            out.array_len(HELP.len());
            for line in HELP {
                out.simple(line);
            }
        } else {
            return Err(ConfigCmdError::UnknownSubcommand(String::from_utf8_lossy(sub).into_owned()));
        }
        Ok(())
    }
}

/// Writes `entries` (TOML key, value, whether to add it when absent) into the TOML file at `path`, keeping
/// its comments and layout; the new text replaces the old one atomically (written beside it, then renamed).
pub fn rewrite_file(
    path: &Path,
    entries: impl IntoIterator<Item = (&'static str, toml_edit::Value, bool)>,
) -> Result<(), ConfigCmdError> {
    let fail = |e: &dyn std::fmt::Display| ConfigCmdError::Rewrite(e.to_string());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(fail(&e)),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| fail(&e))?;
    for (key, value, add) in entries {
        match doc.get_mut(key).and_then(|item| item.as_value_mut()) {
            // Unchanged values keep their exact text; changed ones keep the comments around them.
            Some(existing) if existing.to_string().trim() != value.to_string().trim() => {
                let decor = existing.decor().clone();
                *existing = value;
                *existing.decor_mut() = decor;
            }
            Some(_) => {}
            None if add => {
                doc.insert(key, toml_edit::Item::Value(value));
            }
            None => {}
        }
    }
    let tmp = path.with_extension("rewrite.tmp");
    std::fs::write(&tmp, doc.to_string()).map_err(|e| fail(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(&e))
}

/// A TOML string value (most CONFIG values: sizes, durations, words).
pub fn toml_string(v: &str) -> toml_edit::Value {
    toml_edit::Value::from(v)
}

/// A TOML integer when `v` is one, otherwise a string.
pub fn toml_integer(v: &str) -> toml_edit::Value {
    v.parse::<i64>().map(toml_edit::Value::from).unwrap_or_else(|_| toml_string(v))
}

/// A TOML duration in seconds (`"300s"`) from a CONFIG value in seconds.
pub fn toml_seconds(v: &str) -> toml_edit::Value {
    toml_string(&format!("{v}s"))
}

/// A TOML duration in milliseconds (`"5000ms"`) from a CONFIG value in milliseconds.
pub fn toml_millis(v: &str) -> toml_edit::Value {
    toml_string(&format!("{v}ms"))
}

/// A TOML boolean from Redis's yes|no.
pub fn toml_yes_no(v: &str) -> toml_edit::Value {
    toml_string(v)
}

/// Redis's integer parameters: the number, or Redis's messages for text and for values out of range.
/// A server whose state holds the SLOWLOG / LATENCY settings (both the shard and the proxy do).
pub trait HasDiagnostics {
    fn diagnostics(&self) -> &crate::diagnostics::Diagnostics;
}

/// The parameters every server has, in one place: `slowlog-log-slower-than`, `slowlog-max-len`,
/// `latency-monitor-threshold` (live, on the server's [`HasDiagnostics`]) and `loglevel` (the process's log
/// filter).
pub const fn common_params<C: HasDiagnostics>() -> [Param<C>; 4] {
    [
        Param {
            name: "slowlog-log-slower-than",
            alias: None,
            get: |s| s.diagnostics().settings().0.to_string(),
            set: Some(|s, v| {
                s.diagnostics().set_slower_than_us(parse_int_in(v, -1, i64::MAX)?);
                Ok(())
            }),
            toml: Some(("slowlog_log_slower_than", toml_integer)),
        },
        Param {
            name: "slowlog-max-len",
            alias: None,
            get: |s| s.diagnostics().settings().1.to_string(),
            set: Some(|s, v| {
                s.diagnostics().set_max_len(parse_int_in(v, 0, i64::MAX)? as usize);
                Ok(())
            }),
            toml: Some(("slowlog_max_len", toml_integer)),
        },
        Param {
            name: "latency-monitor-threshold",
            alias: None,
            get: |s| s.diagnostics().settings().2.to_string(),
            set: Some(|s, v| {
                s.diagnostics().set_latency_threshold_ms(parse_int_in(v, 0, i64::MAX)? as u64);
                Ok(())
            }),
            toml: Some(("latency_monitor_threshold", toml_integer)),
        },
        Param {
            name: "loglevel",
            alias: None,
            get: |_| loglevel(),
            set: Some(|_, v| set_loglevel(v)),
            toml: Some(("log", toml_log_filter)),
        },
    ]
}

pub fn parse_int_in(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n: i64 = v.trim().parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

/// Redis's memory parameters (`maxmemory`): bytes with an optional unit (`100mb`, `1gb`, `1k`).
pub fn parse_memory(v: &str) -> Result<u64, String> {
    if v.trim().starts_with('-') {
        return Err("argument must be a memory value".into());
    }
    crate::config::parse_byte_size(v).map_err(|_| "argument must be a memory value".to_string())
}

/// Redis's enumerated parameters: one of `allowed`, or Redis's message listing them.
pub fn parse_enum<'a>(v: &str, allowed: &[&'a str]) -> Result<&'a str, String> {
    let lower = v.to_ascii_lowercase();
    allowed
        .iter()
        .find(|a| **a == lower)
        .copied()
        .ok_or_else(|| format!("argument(s) must be one of the following: {}", allowed.join(", ")))
}

/// Redis's boolean parameters.
pub fn parse_yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// Redis's `loglevel` values and the tracing level each stands for.
pub const LOG_LEVELS: [(&str, &str); 5] =
    [("debug", "debug"), ("verbose", "debug"), ("notice", "info"), ("warning", "warn"), ("nothing", "off")];

/// Redis's `loglevel` names, in the order its error message lists them (Redis 7.0).
pub const LOGLEVELS: [&str; 4] = ["debug", "verbose", "notice", "warning"];

/// `loglevel` as CONFIG GET shows it: the level of the log filter in force.
pub fn loglevel() -> String {
    loglevel_of_filter(&crate::config::log_filter()).into()
}

/// CONFIG SET loglevel: the process's log filter becomes the level's.
pub fn set_loglevel(value: &str) -> Result<(), String> {
    let level = parse_enum(value, &LOGLEVELS)?;
    crate::config::set_log_filter(log_filter_of_level(level))
}

/// The `--log` filter a Redis `loglevel` stands for.
pub fn log_filter_of_level(level: &str) -> &'static str {
    LOG_LEVELS.iter().find(|(name, _)| *name == level).map_or("info", |(_, f)| f)
}

/// CONFIG REWRITE of `loglevel`: the `log` key's filter.
pub fn toml_log_filter(level: &str) -> toml_edit::Value {
    toml_string(log_filter_of_level(level))
}

/// Redis's `loglevel` name for a `--log` filter (its default level; `notice` for `info`).
pub fn loglevel_of_filter(filter: &str) -> &'static str {
    let default = filter.split(',').find(|d| !d.contains('=')).unwrap_or("info").trim().to_ascii_lowercase();
    match default.as_str() {
        "trace" | "debug" => "debug",
        "warn" | "error" => "warning",
        "off" => "nothing",
        _ => "notice",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{Protocol, ReplyBuf};
    use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

    struct Demo {
        size: AtomicI64,
        limit: AtomicI64,
    }

    static PARAMS: &[Param<Demo>] = &[
        Param {
            name: "size",
            alias: None,
            get: |d| d.size.load(Relaxed).to_string(),
            set: Some(|d, v| {
                d.size.store(parse_int_in(v, 0, 100)?, Relaxed);
                Ok(())
            }),
            toml: Some(("size", toml_integer)),
        },
        Param {
            name: "limit",
            alias: Some("old-limit"),
            get: |d| d.limit.load(Relaxed).to_string(),
            set: Some(|d, v| {
                d.limit.store(parse_int_in(v, -1, 10)?, Relaxed);
                Ok(())
            }),
            toml: Some(("limit_ms", toml_millis)),
        },
        Param { name: "port", alias: None, get: |_| "7".into(), set: None, toml: None },
    ];

    fn demo() -> Demo {
        Demo { size: AtomicI64::new(1), limit: AtomicI64::new(2) }
    }

    fn run(config: &RuntimeConfig<Demo>, d: &Demo, args: &[&str]) -> String {
        let req = Request::from_args(args.iter().map(|a| a.as_bytes()));
        let mut out = ReplyBuf::new(Protocol::Resp2);
        if let Err(e) = config.command(d, &req, &mut out, || {}) {
            out.error(&e.to_string());
        }
        String::from_utf8_lossy(&out.take()).into_owned()
    }

    #[test]
    fn get_and_set_as_redis() {
        let config = RuntimeConfig::new(PARAMS, None);
        let d = demo();
        assert_eq!(run(&config, &d, &["CONFIG", "GET", "SI*"]), "*2\r\n$4\r\nsize\r\n$1\r\n1\r\n");
        assert_eq!(run(&config, &d, &["CONFIG", "GET", "size", "s*"]), "*2\r\n$4\r\nsize\r\n$1\r\n1\r\n");
        assert_eq!(run(&config, &d, &["CONFIG", "SET", "size", "5", "old-limit", "3"]), "+OK\r\n");
        assert_eq!(config.get(&d, [&b"LIMIT"[..]]), vec![("LIMIT".to_string(), "3".to_string())]);
        assert_eq!(
            run(&config, &d, &["CONFIG", "SET", "nope", "1"]),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nope'\r\n"
        );
        // A refused value puts back the ones applied before it.
        assert_eq!(
            run(&config, &d, &["CONFIG", "SET", "size", "9", "limit", "x"]),
            "-ERR CONFIG SET failed (possibly related to argument 'limit') - argument couldn't be parsed into an \
             integer\r\n"
        );
        assert_eq!(d.size.load(Relaxed), 5);
        assert_eq!(
            run(&config, &d, &["CONFIG", "SET", "size", "1", "size", "2"]),
            "-ERR CONFIG SET failed (possibly related to argument 'size') - duplicate parameter\r\n"
        );
        assert_eq!(
            run(&config, &d, &["CONFIG", "SET", "port", "1"]),
            "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"
        );
        assert_eq!(
            run(&config, &d, &["CONFIG", "SET", "size"]),
            "-ERR wrong number of arguments for 'config|set' command\r\n"
        );
        assert_eq!(run(&config, &d, &["CONFIG", "REWRITE"]), "-ERR The server is running without a config file\r\n");
    }

    #[test]
    fn rewrite_keeps_comments_and_adds_changed_params() {
        let dir = std::env::temp_dir().join(format!("ringcache-rewrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "# my cache\nsize = 1 # the size\nport = 7\n").unwrap();
        let config = RuntimeConfig::new(PARAMS, Some(path.clone()));
        let d = demo();
        assert_eq!(run(&config, &d, &["CONFIG", "SET", "size", "42", "limit", "3"]), "+OK\r\n");
        assert_eq!(run(&config, &d, &["CONFIG", "REWRITE"]), "+OK\r\n");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "# my cache\nsize = 42 # the size\nport = 7\nlimit_ms = \"3ms\"\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn loglevels() {
        assert_eq!(loglevel_of_filter("info"), "notice");
        assert_eq!(loglevel_of_filter("warn,ringcache_shard=debug"), "warning");
        assert_eq!(loglevel_of_filter("debug"), "debug");
    }
}
