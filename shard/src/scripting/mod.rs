//! Lua scripting: EVAL and friends, with Lua 5.1 as Redis embeds it (through `mlua`, vendored).
//!
//! - One Lua state per shard, made like Redis's: the base, table, string and math libraries, plus `bit`,
//!   `cjson`, `cmsgpack` and `struct` ([`libs`]) and the `redis` table; no `io`, `os`, `debug`, `require`,
//!   `loadfile` or `dofile`, so a script can reach no file, process or network. Globals are read-only:
//!   creating one, or reading one that does not exist, is an error (Redis's texts).
//! - A script runs holding every stripe of the store (`Db::lock_all`), so it is atomic; `redis.call`
//!   re-enters the normal command path (`cmd::execute_inside`) with the same checks as a client command,
//!   plus the script ones (no `noscript` commands, no writes from a read-only script), and its reply is
//!   converted as Redis does ([`convert`]).
//! - Scripts are cached by SHA1; EVALSHA runs a cached one.
//! - Busy scripts: past `--lua-time-limit` the script is *busy*: other clients' commands get `-BUSY`
//!   (those already waiting for a stripe give up and get it too) until it ends or `SCRIPT KILL` stops it
//!   (only before it wrote anything: then `-UNKILLABLE`). A Lua count hook checks the clock and the kill
//!   flag every few thousand instructions.
//! - Memory: the Lua state may use at most `--lua-memory-limit`; a script that needs more fails.

mod convert;
mod libs;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use parking_lot::Mutex;
use ringcache_common::resp::{Protocol, ReplyBuf};
use sha1::{Digest, Sha1};

pub use convert::{lua_to_reply, reply_to_lua};

/// Runs `f`, which may block its thread for long (a script, or a wait for the stripes one holds), telling
/// the runtime first so that it hands this worker's other connections to another thread: a blocked worker
/// must never leave the others without a thread to serve them (SCRIPT KILL among them).
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The text of `-BUSY`, as Redis.
pub const BUSY_ERROR: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Limits of scripts.
#[derive(Debug, Clone, Copy)]
pub struct ScriptLimits {
    /// After this long a running script makes the shard busy (Redis's `lua-time-limit`).
    pub time_limit: Duration,
    /// Most memory the Lua state may use (0: no limit).
    pub memory_bytes: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits { time_limit: Duration::from_secs(5), memory_bytes: 256 << 20 }
    }
}

/// The state of the script that is running, shared with the count hook and SCRIPT KILL.
#[derive(Default)]
pub struct RunState {
    running: AtomicBool,
    busy: AtomicBool,
    kill: AtomicBool,
    wrote: AtomicBool,
    /// When the running script started, in ms since `Scripting::epoch`.
    started_ms: AtomicU64,
}

/// A script's flags, from its shebang (`#!lua flags=no-writes,...`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptFlags {
    pub no_writes: bool,
}

struct Cached {
    body: Bytes,
    flags: ScriptFlags,
}

/// Every script-related thing a shard keeps.
pub struct Scripting {
    lua: Mutex<Lua>,
    cache: Mutex<HashMap<String, Cached>>,
    run: Arc<RunState>,
    epoch: Instant,
    pub limits: ScriptLimits,
    /// `limits.time_limit`, changed by CONFIG SET lua-time-limit; read when a script starts.
    time_limit_ms: AtomicU64,
}

/// The runner that calls a script under the error handler.
const PRELUDE: &str = r#"
local xp = xpcall
local handler = __redis__err__handler
__rc_run = function(f)
  return xp(f, handler)
end
"#;

/// Globals removed after setup, as Redis leaves them out.
const REMOVED_GLOBALS: [&str; 10] =
    ["debug", "dofile", "loadfile", "print", "setfenv", "getfenv", "newproxy", "module", "require", "package"];

impl Scripting {
    pub fn new(limits: ScriptLimits) -> mlua::Result<Scripting> {
        Ok(Scripting {
            lua: Mutex::new(new_state(limits)?),
            cache: Mutex::new(HashMap::new()),
            run: Arc::default(),
            epoch: Instant::now(),
            time_limit_ms: AtomicU64::new(limits.time_limit.as_millis() as u64),
            limits,
        })
    }

    /// The time limit in milliseconds (Redis's `lua-time-limit`/`busy-reply-threshold`).
    pub fn time_limit_ms(&self) -> u64 {
        self.time_limit_ms.load(Ordering::Relaxed)
    }

    /// CONFIG SET lua-time-limit: scripts started from now on are held to `ms`.
    pub fn set_time_limit_ms(&self, ms: u64) {
        self.time_limit_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether a script has run past the time limit (other clients get `-BUSY`).
    pub fn is_busy(&self) -> bool {
        self.run.busy.load(Ordering::Acquire)
    }

    /// Whether a script is running now.
    pub fn is_running(&self) -> bool {
        self.run.running.load(Ordering::Acquire)
    }

    /// SCRIPT KILL.
    pub fn kill(&self) -> Result<(), &'static str> {
        if !self.is_running() {
            return Err("NOTBUSY No scripts in execution right now.");
        }
        if self.run.wrote.load(Ordering::Acquire) {
            return Err(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            );
        }
        self.run.kill.store(true, Ordering::Release);
        Ok(())
    }

    /// Records that the running script wrote (it can no longer be killed).
    pub fn note_write(&self) {
        self.run.wrote.store(true, Ordering::Release);
    }

    /// SCRIPT LOAD (and EVAL): compiles and caches a script. Returns its SHA1 (lower-case hex).
    pub fn load(&self, body: &[u8]) -> Result<String, String> {
        let sha = sha1_hex(body);
        if self.cache.lock().contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, source) = parse_shebang(body)?;
        let lua = self.lua.lock();
        compile(&lua, &sha, &source)?;
        self.cache.lock().insert(sha.clone(), Cached { body: Bytes::copy_from_slice(body), flags });
        Ok(sha)
    }

    /// Whether a script with this SHA1 is cached.
    pub fn exists(&self, sha: &str) -> bool {
        self.cache.lock().contains_key(&sha.to_ascii_lowercase())
    }

    /// Scripts in the cache (INFO's `number_of_cached_scripts`).
    pub fn cached_scripts(&self) -> usize {
        self.cache.lock().len()
    }

    /// The flags of a cached script.
    pub fn flags(&self, sha: &str) -> Option<ScriptFlags> {
        self.cache.lock().get(sha).map(|c| c.flags)
    }

    /// SCRIPT FLUSH: forgets every script, and starts a fresh Lua state.
    pub fn flush(&self) -> mlua::Result<()> {
        let fresh = new_state(self.limits)?;
        *self.lua.lock() = fresh;
        self.cache.lock().clear();
        Ok(())
    }

    /// Runs the cached script `sha` with `keys` and `argv`. `call` runs one `redis.call`/`redis.pcall`
    /// and returns its reply converted to a Lua value (an error reply as `{err=...}`). Returns the script's
    /// reply encoded in `proto` (the caller's protocol), or the error reply text.
    pub fn run<F>(
        &self,
        sha: &str,
        keys: &[&[u8]],
        argv: &[&[u8]],
        proto: Protocol,
        mut call: F,
    ) -> Result<Bytes, String>
    where
        F: FnMut(&Lua, &[Vec<u8>], &mut RunContext) -> mlua::Result<Value>,
    {
        let lua = self.lua.lock();
        // Recompile if the state was replaced since (a SCRIPT FLUSH between load and run can't happen:
        // callers load first; this only guards against a state that lost the function).
        let function: Function = match lua.named_registry_value::<Function>(&fname(sha)) {
            Ok(f) => f,
            Err(_) => {
                let body = self.cache.lock().get(sha).map(|c| c.body.clone());
                let Some(body) = body else { return Err("NOSCRIPT No matching script. Please use EVAL.".into()) };
                let (_, source) = parse_shebang(&body)?;
                compile(&lua, sha, &source)?
            }
        };
        let run = self.run.clone();
        run.kill.store(false, Ordering::Release);
        run.wrote.store(false, Ordering::Release);
        run.busy.store(false, Ordering::Release);
        run.started_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
        run.running.store(true, Ordering::Release);
        let epoch = self.epoch;
        let time_limit_ms = self.time_limit_ms();
        let hook_run = run.clone();
        let sha_for_hook = sha.to_string();
        let hook = lua.set_hook(HookTriggers::new().every_nth_instruction(10_000), move |_lua, _debug| {
            let elapsed = (epoch.elapsed().as_millis() as u64).saturating_sub(hook_run.started_ms.load(Ordering::Acquire));
            if elapsed >= time_limit_ms && !hook_run.busy.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    "Slow script detected: still in execution after {elapsed} milliseconds. You can try killing the script using the SCRIPT KILL command. Script name is: {sha_for_hook}."
                );
            }
            if hook_run.kill.load(Ordering::Acquire) {
                return Err(mlua::Error::RuntimeError("Script killed by user with SCRIPT KILL...".into()));
            }
            Ok(VmState::Continue)
        });
        let mut ctx = RunContext { resp3: false };
        let outcome = match hook {
            Ok(()) => run_function(&lua, sha, &function, keys, argv, &mut call, &mut ctx, proto),
            Err(e) => Err(format!("ERR {e}")),
        };
        lua.remove_hook();
        run.running.store(false, Ordering::Release);
        run.busy.store(false, Ordering::Release);
        // A script that failed for want of memory leaves garbage behind.
        if matches!(&outcome, Err(e) if e.contains("not enough memory")) {
            let _ = lua.gc_collect();
        }
        outcome
    }
}

/// What a script's run can change about it while it runs.
pub struct RunContext {
    /// `redis.setresp(3)` was called: replies to `redis.call` come in RESP3, and booleans are returned
    /// as booleans.
    pub resp3: bool,
}

#[allow(clippy::too_many_arguments)]
fn run_function<F>(
    lua: &Lua,
    sha: &str,
    function: &Function,
    keys: &[&[u8]],
    argv: &[&[u8]],
    call: &mut F,
    ctx: &mut RunContext,
    proto: Protocol,
) -> Result<Bytes, String>
where
    F: FnMut(&Lua, &[Vec<u8>], &mut RunContext) -> mlua::Result<Value>,
{
    let result: mlua::Result<(bool, Value)> = (|| {
        let real = real_globals(lua)?;
        real.raw_set("KEYS", string_table(lua, keys)?)?;
        real.raw_set("ARGV", string_table(lua, argv)?)?;
        let ctx_cell = std::cell::RefCell::new(&mut *ctx);
        let call = std::cell::RefCell::new(call);
        // One redis.call / redis.pcall: the reply as a Lua value, or (`Err`) the error reply's text.
        let run_call = |lua: &Lua, args: MultiValue| -> mlua::Result<Result<Value, String>> {
            if args.is_empty() {
                return Ok(Err("ERR Please specify at least one argument for this redis lib call".into()));
            }
            let mut parts = Vec::with_capacity(args.len());
            for a in args.iter() {
                match a {
                    Value::String(s) => parts.push(s.as_bytes().to_vec()),
                    Value::Integer(i) => parts.push(i.to_string().into_bytes()),
                    Value::Number(n) => parts.push(lua_number_text(*n).into_bytes()),
                    _ => return Ok(Err("ERR Lua redis lib command arguments must be strings or integers".into())),
                }
            }
            let mut ctx = ctx_cell.borrow_mut();
            let reply = (call.borrow_mut())(lua, &parts, &mut ctx)?;
            if let Value::Table(t) = &reply {
                if let Value::String(e) = t.raw_get::<Value>("err")? {
                    return Ok(Err(e.to_string_lossy().to_string()));
                }
            }
            Ok(Ok(reply))
        };
        lua.scope(|scope| {
            // Both are Rust (C) functions, as in Redis: `return redis.call(...)` then keeps the script's
            // frame on the stack, so an error is reported at the script's line.
            let call_fn = scope.create_function(|lua, args: MultiValue| match run_call(lua, args)? {
                Ok(v) => Ok(v),
                Err(msg) => Err(mlua::Error::external(CallError(msg))),
            })?;
            let pcall_fn = scope.create_function(|lua, args: MultiValue| match run_call(lua, args)? {
                Ok(v) => Ok(v),
                Err(msg) => error_table(lua, &msg),
            })?;
            let setresp = scope.create_function_mut(|_, n: Value| {
                let version = match n {
                    Value::Integer(i) => i,
                    Value::Number(f) => f as i64,
                    _ => 0,
                };
                if version != 2 && version != 3 {
                    return Err(mlua::Error::RuntimeError("RESP version must be 2 or 3.".into()));
                }
                ctx_cell.borrow_mut().resp3 = version == 3;
                Ok(())
            })?;
            let redis: Table = real.raw_get("__rc_redis_real")?;
            redis.raw_set("setresp", setresp)?;
            redis.raw_set("call", call_fn)?;
            redis.raw_set("pcall", pcall_fn)?;
            let runner: Function = real.raw_get("__rc_run")?;
            runner.call::<(bool, Value)>(function.clone())
        })
    })();
    match result {
        Ok((true, value)) => {
            let mut out = ReplyBuf::new(proto);
            lua_to_reply(&value, ctx.resp3, &mut out).map_err(|e| format!("ERR {}", clean_message(&e)))?;
            Ok(out.take())
        }
        Ok((false, err)) => Err(error_text(sha, &err)),
        Err(mlua::Error::MemoryError(_)) => {
            Err("ERR Error running script: not enough memory (the Lua state reached lua-memory-limit)".to_string())
        }
        Err(e) => Err(format!("ERR Error running script {sha}, {}", clean_message(&e))),
    }
}

/// The error handler scripts run under (Redis's `__redis__err__handler`): turns any error into an error
/// table `{err=..., source=..., line=...}`, a string `msg` becoming `ERR msg`, and records where in the
/// user's code it happened (the first Lua frame that is not our own glue).
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => t,
        other => {
            let text = match &other {
                // A failed redis.call: its error reply, as it is.
                Value::Error(e) if call_error(e).is_some() => call_error(e).unwrap_or_default(),
                Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                Value::Error(e) => format!("ERR {}", clean_message(e)),
                v => format!("ERR {}", v.to_string().unwrap_or_default()),
            };
            let t = lua.create_table()?;
            t.raw_set("err", text)?;
            t
        }
    };
    for level in 1..32 {
        let Some(Some((source, line))) = lua.inspect_stack(level, |d| {
            let s = d.source();
            let source = s.source.map(|c| c.into_owned()).unwrap_or_default();
            (s.what != "C" && source != "=ringcache").then(|| (source, d.current_line()))
        }) else {
            if lua.inspect_stack(level, |_| ()).is_none() {
                break;
            }
            continue;
        };
        t.raw_set("source", source)?;
        if let Some(line) = line {
            t.raw_set("line", line as i64)?;
        }
        break;
    }
    Ok(t)
}

/// The error reply for a failed script: the error table's message, then where it happened.
fn error_text(sha: &str, err: &Value) -> String {
    let Value::Table(t) = err else {
        return format!("ERR Error running script {sha}, {}", err.to_string().unwrap_or_default());
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy().to_string(),
        _ => "ERR unknown error".to_string(),
    };
    let source: Option<String> = t.raw_get::<Option<String>>("source").ok().flatten();
    let line: Option<i64> = match t.raw_get::<Value>("line") {
        Ok(Value::Integer(i)) => Some(i),
        Ok(Value::Number(n)) => Some(n as i64),
        _ => None,
    };
    match (source, line) {
        (Some(source), Some(line)) => format!("{msg} script: {sha}, on {source}:{line}."),
        _ => msg,
    }
}

/// A Lua number as `tostring` would write it (integers without a fraction).
fn lua_number_text(n: f64) -> String {
    if n == n.trunc() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn error_table(lua: &Lua, msg: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    Ok(Value::Table(t))
}

fn string_table(lua: &Lua, items: &[&[u8]]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// The error `redis.call` raises: the command's error reply.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CallError(String);

/// The error reply a failed `redis.call` raised, found under mlua's wrapping.
fn call_error(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::CallbackError { cause, .. } => call_error(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<CallError>().map(|c| c.0.clone()),
        _ => None,
    }
}

/// The message of an error raised in Rust code called from Lua, without mlua's wrapping.
fn clean_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => clean_message(cause),
        mlua::Error::RuntimeError(msg) => msg.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

pub fn sha1_hex(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The registry name a compiled script is kept under.
fn fname(sha: &str) -> String {
    format!("f_{sha}")
}

/// Splits a `#!lua flags=...` first line off a script (replaced by an empty line, so line numbers stay).
fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), String> {
    let mut flags = ScriptFlags::default();
    if !body.starts_with(b"#!") {
        return Ok((flags, body.to_vec()));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]).into_owned();
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or("");
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(format!("ERR Unexpected flag in script shebang: {other}")),
            }
        }
    }
    let mut source = Vec::with_capacity(body.len());
    source.extend_from_slice(&body[end..]);
    Ok((flags, source))
}

fn compile(lua: &Lua, sha: &str, source: &[u8]) -> Result<Function, String> {
    let f = lua.load(source).set_name("@user_script").into_function().map_err(|e| {
        let msg = match &e {
            mlua::Error::SyntaxError { message, .. } => message.clone(),
            other => clean_message(other),
        };
        format!("ERR Error compiling script (new function): {msg}")
    })?;
    lua.set_named_registry_value(&fname(sha), f.clone()).map_err(|e| format!("ERR {e}"))?;
    Ok(f)
}

/// The real globals table (scripts see it through a read-only proxy).
fn real_globals(lua: &Lua) -> mlua::Result<Table> {
    lua.named_registry_value("rc_real_globals")
}

/// A Lua state set up as Redis's.
fn new_state(limits: ScriptLimits) -> mlua::Result<Lua> {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
    if limits.memory_bytes > 0 {
        lua.set_memory_limit(limits.memory_bytes)?;
    }
    libs::register(&lua)?;
    let g = lua.globals();
    g.set("redis", redis_table(&lua)?)?;
    g.set("__redis__err__handler", lua.create_function(error_handler)?)?;
    lua.load(PRELUDE).set_name("=ringcache").exec()?;
    for name in REMOVED_GLOBALS {
        g.raw_remove(name)?;
    }
    // Scripts see the globals, and the library tables, through read-only proxies.
    let protect: Function = lua
        .load(
            r#"return function(real)
                 local function readonly(t, name)
                   local proxy = {}
                   setmetatable(proxy, {
                     __index = t,
                     __newindex = function() error('Attempt to modify a readonly table', 2) end,
                     __metatable = false,
                   })
                   return proxy
                 end
                 for _, lib in ipairs({'redis', 'string', 'math', 'table', 'bit', 'cjson', 'cmsgpack', 'struct', 'coroutine'}) do
                   if type(real[lib]) == 'table' then
                     if lib == 'redis' then rawset(real, '__rc_redis_real', real[lib]) end
                     rawset(real, lib, readonly(real[lib], lib))
                   end
                 end
                 setmetatable(real, {
                   __index = function(_, n)
                     error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
                   end,
                   __newindex = function() error('Attempt to modify a readonly table', 2) end,
                   __metatable = false,
                 })
               end"#,
        )
        .set_name("=ringcache")
        .eval()?;
    lua.set_named_registry_value("rc_real_globals", g.clone())?;
    protect.call::<()>(g)?;
    Ok(lua)
}

/// What `redis.error_reply(s)` puts in its table, as Redis 7.0 does: `-CODE msg` and `CODE msg` keep their
/// code, a message without a space gets `ERR` (`boom` → `ERR boom`), and the message is trimmed of CR/LF.
fn error_reply_text(s: &[u8]) -> Vec<u8> {
    let body = s.strip_prefix(b"-").unwrap_or(s);
    let (code, msg) = match body.iter().position(|&b| b == b' ') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (&b"ERR"[..], body),
    };
    let trim = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = msg.iter().position(|b| !trim(b)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|b| !trim(b)).map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
    out
}

/// The `redis` table (its `call`, `pcall` and `setresp` are added per run and by the prelude).
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("sha1hex", lua.create_function(|_, s: mlua::String| Ok(sha1_hex(&s.as_bytes())))?)?;
    t.set(
        "error_reply",
        lua.create_function(|lua, s: mlua::String| {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(error_reply_text(&s.as_bytes()))?)?;
            Ok(t)
        })?,
    )?;
    t.set(
        "status_reply",
        lua.create_function(|lua, s: mlua::String| {
            let t = lua.create_table()?;
            t.raw_set("ok", s)?;
            Ok(t)
        })?,
    )?;
    t.set(
        "log",
        lua.create_function(|_, (level, args): (i64, mlua::Variadic<mlua::String>)| {
            let text: Vec<String> = args.iter().map(|s| s.to_string_lossy().to_string()).collect();
            let text = text.join(" ");
            match level {
                0 => tracing::debug!(target: "script", "{text}"),
                1 | 2 => tracing::info!(target: "script", "{text}"),
                3 => tracing::warn!(target: "script", "{text}"),
                _ => return Err(mlua::Error::RuntimeError("Invalid debug level.".into())),
            }
            Ok(())
        })?,
    )?;
    for (name, v) in [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)] {
        t.set(name, v)?;
    }
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        t.set(name, v)?;
    }
    t.set("set_repl", lua.create_function(|_, _: Value| Ok(()))?)?;
    t.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    t.set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    t.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    t.set(
        "acl_check_cmd",
        lua.create_function(|_, args: mlua::Variadic<mlua::String>| {
            let Some(name) = args.first() else {
                return Err(mlua::Error::RuntimeError(
                    "Please specify at least one argument for this redis lib call".into(),
                ));
            };
            if ringcache_common::command::lookup(&name.as_bytes()).is_none() {
                return Err(mlua::Error::RuntimeError("Invalid command passed to redis.acl_check_cmd()".into()));
            }
            Ok(true)
        })?,
    )?;
    let version = ringcache_common::connection::REDIS_COMPAT_VERSION;
    t.set("REDIS_VERSION", version)?;
    let num = version.split('.').filter_map(|p| p.parse::<i64>().ok()).fold(0, |acc, p| (acc << 8) | p);
    t.set("REDIS_VERSION_NUM", num)?;
    Ok(t)
}
