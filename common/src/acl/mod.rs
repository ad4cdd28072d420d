//! ACL users as Redis 7: users with passwords (SHA-256), command categories, key and channel patterns, the
//! ACL LOG, and the ACL command; shared by the shard and the proxy.
//!
//! - [`rules`]: one user's rules, ACL SETUSER's rule parser and ACL LIST's description of them.
//! - [`table`]: every Redis command and subcommand with an id and its categories.
//! - [`secret`]: [`Secret`], a password that Debug and Display print as `[redacted]`.
//! - `command`: the ACL command's subcommands.
//!
//! The per-request cost: a connection holds its [`User`]; [`User::unrestricted`] (one relaxed load) is true
//! for a user with every command, key and channel (the default user unless changed), and then nothing else
//! is looked at. Only a restricted user pays for [`Acl::check`].

mod command;
pub mod rules;
mod secret;
pub mod table;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::command::CommandSpec;
use crate::resp::Request;

pub use command::acl_command;
pub use rules::{RuleError, Rules};
pub use secret::Secret;
use table::TABLE;

/// One user. Its rules change in place (ACL SETUSER): connections authenticated as it see the change.
#[derive(Debug)]
pub struct User {
    pub name: String,
    unrestricted: AtomicBool,
    rules: RwLock<Rules>,
}

impl User {
    fn new(name: String, rules: Rules) -> Self {
        User { name, unrestricted: AtomicBool::new(rules.unrestricted()), rules: RwLock::new(rules) }
    }

    /// Whether every command on every key and channel is allowed: the per-request check is skipped.
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.unrestricted.load(Ordering::Relaxed)
    }

    fn set_rules(&self, rules: Rules) {
        let unrestricted = rules.unrestricted();
        *self.rules.write() = rules;
        self.unrestricted.store(unrestricted, Ordering::Relaxed);
    }

    pub fn rules(&self) -> Rules {
        self.rules.read().clone()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The command (its full name, `client|id`).
    Command(&'static str),
    /// The argument at this position is a key the user may not use.
    Key(usize),
    /// The argument at this position is a channel the user may not use.
    Channel(usize),
}

/// Where a refused request was run, for ACL LOG's `context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

impl Denied {
    /// The error line (without `-`), as Redis 7.2 writes it.
    pub fn error(&self, user: &str) -> String {
        match self {
            Denied::Command(name) => format!("NOPERM User {user} has no permissions to run the '{name}' command"),
            Denied::Key(_) => "NOPERM No permissions to access a key".into(),
            Denied::Channel(_) => "NOPERM No permissions to access a channel".into(),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Denied::Command(_) => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }

    fn object(&self, req: &Request) -> String {
        match self {
            Denied::Command(name) => (*name).to_string(),
            Denied::Key(pos) | Denied::Channel(pos) => String::from_utf8_lossy(req.arg(*pos)).into_owned(),
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
struct LogEntry {
    count: u64,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: String,
    created: Instant,
    client_info: String,
    entry_id: u64,
    created_ms: u64,
    updated_ms: u64,
}

/// Redis's acllog-max-len.
const LOG_MAX_LEN: usize = 128;
/// Equal failures within this long are counted in one entry.
const LOG_GROUP_MS: u64 = 60_000;

#[derive(Default)]
struct Log {
    entries: VecDeque<LogEntry>,
    next_id: u64,
}

/// The users of one server, its ACL LOG and its ACL file.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    log: Mutex<Log>,
    aclfile: Option<PathBuf>,
}

impl std::fmt::Debug for Acl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acl").field("users", &self.usernames()).field("aclfile", &self.aclfile).finish()
    }
}

/// Errors of loading an ACL file (the text is Redis's).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AclFileError(pub String);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl Acl {
    /// The default user alone (`requirepass` as its password), or the users of `aclfile` (Redis refuses
    /// both together; so do we).
    pub fn new(requirepass: Option<&Secret>, aclfile: Option<PathBuf>) -> Result<Self, AclFileError> {
        let default = Rules::default_user(requirepass.filter(|p| !p.is_empty()).map(Secret::expose));
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::new("default".into(), default)));
        let acl = Acl { users: RwLock::new(users), log: Mutex::new(Log::default()), aclfile };
        if acl.aclfile.is_some() {
            if requirepass.is_some_and(|p| !p.is_empty()) {
                return Err(AclFileError(
                    "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into(),
                ));
            }
            acl.load()?;
        }
        Ok(acl)
    }

    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        let name = std::str::from_utf8(name).ok()?;
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.users
            .read()
            .get("default")
            .cloned()
            .unwrap_or_else(|| Arc::new(User::new("default".into(), Rules::new_user())))
    }

    /// Whether a new connection is authenticated as the default user from the start (it is `on` and `nopass`).
    pub fn default_is_open(&self) -> bool {
        let user = self.default_user();
        let rules = user.rules.read();
        rules.enabled && rules.nopass
    }

    /// Whether the default user has `nopass` (AUTH with a password alone is then an error, as in Redis).
    pub fn default_is_nopass(&self) -> bool {
        self.default_user().rules.read().nopass
    }

    /// The user `name` if it is enabled and `password` is one of its passwords. A failure is logged
    /// (reason `auth`, object the command: AUTH or HELLO) with `client_info`.
    pub fn authenticate(
        &self,
        command: &str,
        name: &[u8],
        password: &[u8],
        client_info: impl FnOnce() -> String,
    ) -> Option<Arc<User>> {
        let user = self.user(name).filter(|u| {
            let r = u.rules.read();
            r.enabled && r.password_ok(password)
        });
        if user.is_none() {
            self.log_entry(
                "auth",
                Context::Toplevel,
                command.into(),
                String::from_utf8_lossy(name).into_owned(),
                client_info(),
            );
        }
        user
    }

    /// Checks a request by `user` against its rules (call it only when `!user.unrestricted()`).
    pub fn check(user: &User, spec: &'static CommandSpec, req: &Request) -> Result<(), Denied> {
        let rules = user.rules.read();
        check_rules(&rules, spec, req)
    }

    /// [`Acl::check`], logging a refusal in the ACL LOG and turning it into the error line.
    pub fn check_and_log(
        &self,
        user: &User,
        spec: &'static CommandSpec,
        req: &Request,
        context: Context,
        client_info: impl FnOnce() -> String,
    ) -> Result<(), String> {
        Acl::check(user, spec, req).map_err(|denied| {
            self.log_entry(denied.reason(), context, denied.object(req), user.name.clone(), client_info());
            let error = denied.error(&user.name);
            match context {
                // As Redis 7.2 words a script's refused redis.call.
                Context::Lua => format!("ERR ACL failure in script: {}", error.trim_start_matches("NOPERM ")),
                _ => error,
            }
        })
    }

    fn log_entry(&self, reason: &'static str, context: Context, object: String, username: String, client_info: String) {
        let now = now_ms();
        let mut log = self.log.lock();
        let context = context.name();
        if let Some(pos) = log.entries.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now.saturating_sub(e.created_ms) < LOG_GROUP_MS
        }) {
            if let Some(mut e) = log.entries.remove(pos) {
                e.count += 1;
                e.updated_ms = now;
                e.client_info = client_info;
                log.entries.push_front(e);
            }
            return;
        }
        let entry_id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            created: Instant::now(),
            client_info,
            entry_id,
            created_ms: now,
            updated_ms: now,
        });
        log.entries.truncate(LOG_MAX_LEN);
    }

    /// ACL SETUSER: every rule is applied to a copy, which replaces the user's rules only if all apply.
    pub fn setuser(&self, name: &[u8], ops: &[&[u8]]) -> Result<(), String> {
        let name_text = String::from_utf8_lossy(name).into_owned();
        if name.iter().any(|c| c.is_ascii_whitespace()) {
            return Err("ERR Usernames can't contain spaces or null characters".into());
        }
        let existing = self.user(name);
        let mut rules = existing.as_ref().map_or_else(Rules::new_user, |u| u.rules());
        for op in ops {
            rules
                .apply(op)
                .map_err(|e| format!("ERR Error in ACL SETUSER modifier '{}': {e}", String::from_utf8_lossy(op)))?;
        }
        match existing {
            Some(user) => user.set_rules(rules),
            None => {
                self.users.write().insert(name_text.clone(), Arc::new(User::new(name_text, rules)));
            }
        }
        Ok(())
    }

    /// ACL DELUSER: how many of `names` were removed. A removed user's connections keep their `User`,
    /// stripped of every permission.
    pub fn deluser(&self, names: &[&[u8]]) -> Result<i64, String> {
        if names.iter().any(|n| *n == b"default") {
            return Err("ERR The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write();
        let mut removed = 0;
        for name in names {
            if let Some(user) = std::str::from_utf8(name).ok().and_then(|n| users.remove(n)) {
                user.set_rules(Rules::new_user());
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// ACL LIST: one line per user, by name.
    pub fn list(&self) -> Vec<String> {
        self.users.read().values().map(|u| format!("user {} {}", u.name, u.rules.read().describe())).collect()
    }

    pub fn usernames(&self) -> Vec<String> {
        self.users.read().keys().cloned().collect()
    }

    /// Reads ACL file `text`: every line `user <name> <rules>`; all or nothing (Redis's errors, with the
    /// file name and line number).
    pub fn parse_file(text: &str, path: &str) -> Result<BTreeMap<String, Rules>, String> {
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            if words[0] != "user" || words.len() < 2 {
                return Err(format!("{path}:{}: line should start with user keyword", i + 1));
            }
            let name = words[1];
            if users.contains_key(name) {
                return Err(format!("{path}:{}: Duplicate user '{name}' found", i + 1));
            }
            let mut rules = Rules::new_user();
            for op in &words[2..] {
                rules.apply(op.as_bytes()).map_err(|e| format!("{path}:{}: {e}. ", i + 1))?;
            }
            users.insert(name.to_string(), rules);
        }
        if !users.contains_key("default") {
            users.insert("default".into(), Rules::default_user(None));
        }
        Ok(users)
    }

    /// ACL LOAD (and start-up with `--aclfile`): replaces every user with the file's.
    pub fn load(&self) -> Result<(), AclFileError> {
        let path = self.aclfile.as_ref().ok_or_else(|| AclFileError(NO_ACLFILE.into()))?;
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| AclFileError(format!("Error loading ACLs, opening file '{shown}': {e}")))?;
        let loaded = Acl::parse_file(&text, &shown).map_err(AclFileError)?;
        let mut users = self.users.write();
        users.retain(|name, user| {
            let keep = loaded.contains_key(name);
            if !keep {
                user.set_rules(Rules::new_user());
            }
            keep
        });
        for (name, rules) in loaded {
            match users.get(&name) {
                Some(user) => user.set_rules(rules),
                None => {
                    users.insert(name.clone(), Arc::new(User::new(name, rules)));
                }
            }
        }
        Ok(())
    }

    /// ACL SAVE: writes ACL LIST's lines to the file (through a temporary file renamed over it).
    pub fn save(&self) -> Result<(), String> {
        let path = self.aclfile.as_ref().ok_or_else(|| format!("ERR {NO_ACLFILE}"))?;
        let mut text = self.list().join("\n");
        text.push('\n');
        let tmp = path.with_extension("tmp-ringcache");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("ERR There was an error trying to save the ACLs. Please check the server logs for more information ({e})"))
    }
}

const NO_ACLFILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn has_flag(flags: &[&str], name: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The check itself, in Redis's order: the command, its keys, its channels.
fn check_rules(rules: &Rules, spec: &'static CommandSpec, req: &Request) -> Result<(), Denied> {
    if spec.flags.contains(&"no_auth") {
        return Ok(());
    }
    let id = TABLE.request_id(spec, req.get(1));
    if !rules.allowed(id) {
        return Err(Denied::Command(TABLE.entries[id].name));
    }
    if !rules.allkeys && spec.is_keyed() {
        // One key with one key specification (GET, SET, ...): its flags without building a list.
        if let ([only], true) = (spec.redis.key_specs, spec.has_one_key()) {
            let pos = spec.first_key as usize;
            // (`variable_flags`: the arguments decide, as SET ... GET reads; the full walk knows how.)
            if !has_flag(only.flags, "not_key") && !has_flag(only.flags, "variable_flags") && pos < req.argc() {
                return if rules.key_allowed(req.arg(pos), key_perm(only.flags)) {
                    check_channels(rules, spec, req)
                } else {
                    Err(Denied::Key(pos))
                };
            }
        }
        match crate::command::keys_with_flags(spec.redis, req) {
            Some(keys) => {
                for (pos, flags) in keys {
                    if !rules.key_allowed(req.arg(pos), key_perm(flags)) {
                        return Err(Denied::Key(pos));
                    }
                }
            }
            None => {
                for pos in crate::command::keys(spec, req) {
                    if !rules.key_allowed(req.arg(pos), rules::READ | rules::WRITE) {
                        return Err(Denied::Key(pos));
                    }
                }
            }
        }
    }
    check_channels(rules, spec, req)
}

/// The access a key specification's flags ask of a key pattern (Redis's ACLSelectorCheckKey).
fn key_perm(flags: &[&str]) -> u8 {
    let mut perm = 0;
    if has_flag(flags, "access") {
        perm |= rules::READ;
    }
    if has_flag(flags, "insert") || has_flag(flags, "delete") || has_flag(flags, "update") {
        perm |= rules::WRITE;
    }
    perm
}

fn check_channels(rules: &Rules, spec: &'static CommandSpec, req: &Request) -> Result<(), Denied> {
    if !rules.allchannels {
        let (channels, is_pattern) = match spec.name {
            "publish" | "spublish" => (1..2.min(req.argc()), false),
            "subscribe" | "ssubscribe" => (1..req.argc(), false),
            "psubscribe" => (1..req.argc(), true),
            _ => (0..0, false),
        };
        for pos in channels {
            if !rules.channel_allowed(req.arg(pos), is_pattern) {
                return Err(Denied::Channel(pos));
            }
        }
    }
    Ok(())
}
