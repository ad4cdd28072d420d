//! The command table: every command Ringcache knows, with Redis 7's arity, flags and key positions.
//!
//! Shared by the shard (dispatch, `COMMAND`, per-command metrics) and the proxy (finding a request's keys).
//! Arity follows Redis: `n` means exactly `n` arguments including the name, `-n` means at least `n`.
//! Keys sit at `first_key..=last_key` (negative `last_key` counts from the end) every `step` arguments.

use std::sync::LazyLock;

use foldhash::HashMap;

use crate::resp::{ReplyBuf, ReplyWriter, Request};

/// One row of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name, as Redis prints it in error messages.
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Redis's documentation group (`string`, `generic`, `hash`, ...).
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
}

impl CommandSpec {
    /// Position of this command in [`COMMANDS`]; used to index per-command counters.
    pub fn index(&'static self) -> usize {
        // The table is a static slice, so the offset of the element is its index.
        let base = COMMANDS.as_ptr() as usize;
        (self as *const CommandSpec as usize - base) / std::mem::size_of::<CommandSpec>()
    }

    /// Whether `argc` (the name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Positions of the key arguments of a request with `argc` arguments.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            (argc as i64 + i64::from(self.last_key)).max(0) as usize
        } else {
            self.last_key as usize
        };
        let step = self.step.max(1) as usize;
        let end = if first == 0 { 0 } else { last.min(argc.saturating_sub(1)) + 1 };
        (first..end).step_by(step)
    }

    pub fn is_write(&self) -> bool {
        self.flags.contains(&"write")
    }
}

macro_rules! commands {
    ($( $name:literal, $arity:expr, [$($flag:literal),*], $first:expr, $last:expr, $step:expr, $group:literal, $since:literal, $summary:literal; )*) => {
        /// Every command, in documentation order.
        pub static COMMANDS: &[CommandSpec] = &[
            $( CommandSpec { name: $name, arity: $arity, flags: &[$($flag),*], first_key: $first, last_key: $last,
                step: $step, group: $group, summary: $summary, since: $since }, )*
        ];
    };
}

commands! {
    // strings
    "get", 2, ["readonly", "fast"], 1, 1, 1, "string", "1.0.0", "Returns the string value of a key.";
    "set", -3, ["write", "denyoom"], 1, 1, 1, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.";
    "setnx", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.";
    "setex", 4, ["write", "denyoom"], 1, 1, 1, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.";
    "psetex", 4, ["write", "denyoom"], 1, 1, 1, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.";
    "getset", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.";
    "getdel", 2, ["write", "fast"], 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after deleting the key.";
    "getex", -2, ["write", "fast"], 1, 1, 1, "string", "6.2.0", "Returns the string value of a key after setting its expiration time.";
    "append", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.";
    "strlen", 2, ["readonly", "fast"], 1, 1, 1, "string", "2.2.0", "Returns the length of a string value.";
    "getrange", 4, ["readonly"], 1, 1, 1, "string", "2.4.0", "Returns a substring of the string stored at a key.";
    "setrange", 4, ["write", "denyoom"], 1, 1, 1, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.";
    "incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    "decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.";
    "incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    "decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.";
    "incrbyfloat", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.";
    "mget", -2, ["readonly", "fast"], 1, -1, 1, "string", "1.0.0", "Atomically returns the string values of one or more keys.";
    "mset", -3, ["write", "denyoom"], 1, -1, 2, "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.";
    "msetnx", -3, ["write", "denyoom"], 1, -1, 2, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.";
    // keys
    "del", -2, ["write"], 1, -1, 1, "generic", "1.0.0", "Deletes one or more keys.";
    "unlink", -2, ["write", "fast"], 1, -1, 1, "generic", "4.0.0", "Asynchronously deletes one or more keys.";
    "exists", -2, ["readonly", "fast"], 1, -1, 1, "generic", "1.0.0", "Determines whether one or more keys exist.";
    "touch", -2, ["readonly", "fast"], 1, -1, 1, "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.";
    "type", 2, ["readonly", "fast"], 1, 1, 1, "generic", "1.0.0", "Determines the type of value stored at a key.";
    "expire", -3, ["write", "fast"], 1, 1, 1, "generic", "1.0.0", "Sets the expiration time of a key in seconds.";
    "pexpire", -3, ["write", "fast"], 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.";
    "expireat", -3, ["write", "fast"], 1, 1, 1, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.";
    "pexpireat", -3, ["write", "fast"], 1, 1, 1, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.";
    "expiretime", 2, ["readonly", "fast"], 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.";
    "pexpiretime", 2, ["readonly", "fast"], 1, 1, 1, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.";
    "ttl", 2, ["readonly", "fast"], 1, 1, 1, "generic", "1.0.0", "Returns the expiration time in seconds of a key.";
    "pttl", 2, ["readonly", "fast"], 1, 1, 1, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.";
    "persist", 2, ["write", "fast"], 1, 1, 1, "generic", "2.2.0", "Removes the expiration time of a key.";
    "rename", 3, ["write"], 1, 2, 1, "generic", "1.0.0", "Renames a key and overwrites the destination.";
    "scan", -2, ["readonly"], 0, 0, 0, "generic", "2.8.0", "Iterates over the key names in the database.";
    "keys", 2, ["readonly"], 0, 0, 0, "generic", "1.0.0", "Returns all key names that match a pattern.";
    "randomkey", 1, ["readonly"], 0, 0, 0, "generic", "1.0.0", "Returns a random key name from the database.";
    "dbsize", 1, ["readonly", "fast"], 0, 0, 0, "server", "1.0.0", "Returns the number of keys in the database.";
    "flushdb", -1, ["write"], 0, 0, 0, "server", "1.0.0", "Removes all keys from the current database.";
    "flushall", -1, ["write"], 0, 0, 0, "server", "1.0.0", "Removes all keys from all databases.";
    // hashes
    "hset", -4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Creates or modifies the value of a field in a hash.";
    "hmset", -4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Sets the values of multiple fields.";
    "hsetnx", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.";
    "hget", 3, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Returns the value of a field in a hash.";
    "hmget", -3, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Returns the values of all fields in a hash.";
    "hgetall", 2, ["readonly"], 1, 1, 1, "hash", "2.0.0", "Returns all fields and values in a hash.";
    "hdel", -3, ["write", "fast"], 1, 1, 1, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.";
    "hexists", 3, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Determines whether a field exists in a hash.";
    "hlen", 2, ["readonly", "fast"], 1, 1, 1, "hash", "2.0.0", "Returns the number of fields in a hash.";
    "hincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.";
    "hkeys", 2, ["readonly"], 1, 1, 1, "hash", "2.0.0", "Returns all fields in a hash.";
    "hvals", 2, ["readonly"], 1, 1, 1, "hash", "2.0.0", "Returns all values in a hash.";
    // lists
    "lpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.";
    "rpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.";
    "lpop", -2, ["write", "fast"], 1, 1, 1, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.";
    "rpop", -2, ["write", "fast"], 1, 1, 1, "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.";
    "lrange", 4, ["readonly"], 1, 1, 1, "list", "1.0.0", "Returns a range of elements from a list.";
    "llen", 2, ["readonly", "fast"], 1, 1, 1, "list", "1.0.0", "Returns the length of a list.";
    // sets
    "sadd", -3, ["write", "denyoom", "fast"], 1, 1, 1, "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist.";
    "srem", -3, ["write", "fast"], 1, 1, 1, "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed.";
    "spop", -2, ["write", "fast"], 1, 1, 1, "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.";
    "smembers", 2, ["readonly"], 1, 1, 1, "set", "1.0.0", "Returns all members of a set.";
    "sismember", 3, ["readonly", "fast"], 1, 1, 1, "set", "1.0.0", "Determines whether a member belongs to a set.";
    "scard", 2, ["readonly", "fast"], 1, 1, 1, "set", "1.0.0", "Returns the number of members in a set.";
    // sorted sets
    "zadd", -4, ["write", "denyoom", "fast"], 1, 1, 1, "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.";
    "zpopmin", -2, ["write", "fast"], 1, 1, 1, "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.";
    "zrange", -4, ["readonly"], 1, 1, 1, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes.";
    "zcard", 2, ["readonly", "fast"], 1, 1, 1, "sorted-set", "1.2.0", "Returns the number of members in a sorted set.";
    "zscore", 3, ["readonly", "fast"], 1, 1, 1, "sorted-set", "1.2.0", "Returns the score of a member in a sorted set.";
    // connection
    "ping", -1, ["fast"], 0, 0, 0, "connection", "1.0.0", "Returns the server's liveliness response.";
    "echo", 2, ["loading", "stale", "fast"], 0, 0, 0, "connection", "1.0.0", "Returns the given string.";
    "quit", -1, ["no_auth", "loading", "stale", "fast"], 0, 0, 0, "connection", "1.0.0", "Closes the connection.";
    "auth", -2, ["no_auth", "loading", "stale", "fast"], 0, 0, 0, "connection", "1.0.0", "Authenticates the connection.";
    "hello", -1, ["no_auth", "loading", "stale", "fast"], 0, 0, 0, "connection", "6.0.0", "Handshakes with the Redis server.";
    "select", 2, ["loading", "stale", "fast"], 0, 0, 0, "connection", "2.0.0", "Changes the selected database.";
    "client", -2, ["loading", "stale"], 0, 0, 0, "connection", "2.4.0", "A container for client connection commands.";
    "reset", 1, ["no_auth", "loading", "stale", "fast"], 0, 0, 0, "connection", "6.2.0", "Resets the connection.";
    "readonly", 1, ["loading", "stale", "fast"], 0, 0, 0, "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node.";
    "readwrite", 1, ["loading", "stale", "fast"], 0, 0, 0, "cluster", "3.0.0", "Enables read-write queries for a connection to a Reids Cluster replica node.";
    // server
    "info", -1, ["loading", "stale"], 0, 0, 0, "server", "1.0.0", "Returns information and statistics about the server.";
    "command", -1, ["loading", "stale"], 0, 0, 0, "server", "2.8.13", "Returns detailed information about all commands.";
    "config", -2, ["admin", "loading", "stale"], 0, 0, 0, "server", "2.0.0", "A container for server configuration commands.";
    "time", 1, ["loading", "stale", "fast"], 0, 0, 0, "server", "2.6.0", "Returns the server time.";
    // persistence
    "save", 1, ["admin", "noscript"], 0, 0, 0, "server", "1.0.0", "Synchronously saves the database(s) to disk.";
    "bgsave", -1, ["admin", "noscript"], 0, 0, 0, "server", "1.0.0", "Asynchronously saves the database(s) to disk.";
    "ringcache", -2, ["admin"], 0, 0, 0, "server", "0.1.0", "Shard-to-shard operations used by ringcache-proxy (hinted handoff).";
    "lastsave", 1, ["loading", "stale", "fast"], 0, 0, 0, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk.";
    // transactions
    "multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", "1.2.0", "Starts a transaction.";
    "exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], 0, 0, 0, "transactions", "1.2.0", "Executes all commands in a transaction.";
    "discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", "2.0.0", "Discards a transaction.";
    "watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], 1, -1, 1, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction.";
    "unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", "2.2.0", "Forgets about watched keys of a transaction.";
    // pub/sub
    "subscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Listens for messages published to channels.";
    "unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Stops listening to messages posted to channels.";
    "psubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.";
    "punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.";
    "ssubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 1, -1, 1, "pubsub", "7.0.0", "Listens for messages published to shard channels.";
    "sunsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 1, -1, 1, "pubsub", "7.0.0", "Stops listening to messages posted to shard channels.";
    "publish", 3, ["pubsub", "loading", "stale", "fast"], 0, 0, 0, "pubsub", "2.0.0", "Posts a message to a channel.";
    "spublish", 3, ["pubsub", "loading", "stale", "fast"], 1, 1, 1, "pubsub", "7.0.0", "Post a message to a shard channel";
    "pubsub", -2, [], 0, 0, 0, "pubsub", "2.8.0", "A container for Pub/Sub commands.";
    // scripting
    "eval", -3, ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script.";
    "evalsha", -3, ["noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", "2.6.0", "Executes a server-side Lua script by SHA1 digest.";
    "eval_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script.";
    "evalsha_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", "7.0.0", "Executes a read-only server-side Lua script by SHA1 digest.";
    "script", -2, [], 0, 0, 0, "scripting", "2.6.0", "A container for Lua scripts management commands.";
}

/// Positions of a request's key arguments (for most commands, one or two).
pub type KeyPositions = smallvec::SmallVec<[usize; 4]>;

/// The positions of the key arguments of `req`, a request for `spec`: the table's first/last/step for
/// most commands, and the command's own rule for those whose keys move with their arguments (`numkeys`
/// arguments, `STORE` options), as Redis's key specifications describe them. A malformed request yields
/// the keys that can be found; the command itself then reports the error.
pub fn keys(spec: &CommandSpec, req: &Request) -> KeyPositions {
    let argc = req.argc();
    // (position of numkeys, positions of keys before it)
    let numkeys_rule: Option<(usize, &[usize])> = match spec.name {
        "zunionstore" | "zinterstore" | "zdiffstore" => Some((2, &[1])),
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => Some((1, &[])),
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => Some((2, &[])),
        _ => None,
    };
    if let Some((at, before)) = numkeys_rule {
        let mut out: KeyPositions = before.iter().copied().filter(|&p| p < argc).collect();
        let numkeys = req.get(at).and_then(crate::connection::parse_integer).unwrap_or(0).max(0) as usize;
        let first = at + 1;
        out.extend(first..first.saturating_add(numkeys).min(argc));
        return out;
    }
    match spec.name {
        // SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA] [STORE destination]
        "sort" => {
            let mut out = KeyPositions::new();
            if argc > 1 {
                out.push(1);
            }
            let mut i = 2;
            while i < argc {
                let skip = match req.arg(i).to_ascii_lowercase().as_slice() {
                    b"by" | b"get" => 1,
                    b"limit" => 2,
                    b"store" => {
                        if i + 1 < argc {
                            out.push(i + 1);
                        }
                        1
                    }
                    _ => 0,
                };
                i += 1 + skip;
            }
            out
        }
        _ => spec.key_positions(argc).collect(),
    }
}

/// Names to commands; foldhash because this lookup runs once per request.
static BY_NAME: LazyLock<HashMap<&'static str, &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name, c)).collect());

/// Finds a command by name, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut lower = [0u8; 16];
    if name.len() > lower.len() {
        return None;
    }
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&lower[..name.len()]).ok()?;
    BY_NAME.get(lower).copied()
}

fn acl_categories(c: &CommandSpec) -> Vec<String> {
    let mut cats = Vec::new();
    if c.flags.contains(&"write") {
        cats.push("@write".to_string());
    } else if c.first_key > 0 {
        cats.push("@read".to_string());
    }
    cats.push(format!("@{}", c.group.replace("sorted-set", "sortedset")));
    if c.flags.contains(&"fast") {
        cats.push("@fast".to_string());
    } else {
        cats.push("@slow".to_string());
    }
    cats
}

fn write_command_info(out: &mut ReplyBuf, c: &CommandSpec) {
    out.array_len(10);
    out.bulk(c.name.as_bytes());
    out.integer(i64::from(c.arity));
    out.set_len(c.flags.len());
    for f in c.flags {
        out.simple(f);
    }
    out.integer(i64::from(c.first_key));
    out.integer(i64::from(c.last_key));
    out.integer(i64::from(c.step));
    let cats = acl_categories(c);
    out.set_len(cats.len());
    for cat in &cats {
        out.simple(cat);
    }
    out.set_len(0); // tips
    out.set_len(0); // key specs
    out.array_len(0); // subcommands
}

fn write_command_docs(out: &mut ReplyBuf, c: &CommandSpec) {
    out.bulk(c.name.as_bytes());
    out.map_len(3);
    out.bulk(b"summary");
    out.bulk(c.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(c.since.as_bytes());
    out.bulk(b"group");
    out.bulk(c.group.as_bytes());
}

/// Replies to `COMMAND [COUNT | INFO name... | DOCS name... | LIST]` from the table, in Redis 7's shapes.
/// An unknown subcommand is an `Err` with the error line.
pub fn reply_command(req: &Request, out: &mut ReplyBuf) -> Result<(), String> {
    let Some(sub) = req.get(1) else {
        out.array_len(COMMANDS.len());
        for c in COMMANDS {
            write_command_info(out, c);
        }
        return Ok(());
    };
    if sub.eq_ignore_ascii_case(b"COUNT") {
        out.integer(COMMANDS.len() as i64);
    } else if sub.eq_ignore_ascii_case(b"INFO") {
        if req.argc() == 2 {
            out.array_len(COMMANDS.len());
            for c in COMMANDS {
                write_command_info(out, c);
            }
        } else {
            out.array_len(req.argc() - 2);
            for name in req.args_from(2) {
                match lookup(name) {
                    Some(c) => write_command_info(out, c),
                    None => out.null_array(),
                }
            }
        }
    } else if sub.eq_ignore_ascii_case(b"DOCS") {
        let specs: Vec<&CommandSpec> =
            if req.argc() == 2 { COMMANDS.iter().collect() } else { req.args_from(2).filter_map(lookup).collect() };
        out.map_len(specs.len());
        for c in specs {
            write_command_docs(out, c);
        }
    } else if sub.eq_ignore_ascii_case(b"LIST") {
        out.array_len(COMMANDS.len());
        for c in COMMANDS {
            out.bulk(c.name.as_bytes());
        }
    } else {
        return Err(format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(sub)));
    }
    Ok(())
}

/// Redis 7's text: `ERR unknown command 'foo', with args beginning with: 'a' 'b' `.
pub fn unknown_command_message(req: &Request) -> String {
    let mut args = String::new();
    for a in req.args_from(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let a: String = String::from_utf8_lossy(a).chars().take(room).collect();
        args.push_str(&format!("'{a}' "));
    }
    let name: String = String::from_utf8_lossy(req.name()).chars().take(128).collect();
    format!("ERR unknown command '{name}', with args beginning with: {args}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_command_text_matches_redis() {
        let r = Request::from_args(["foo", "a", "b"]);
        assert_eq!(unknown_command_message(&r), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        let r = Request::from_args(["foo"]);
        assert_eq!(unknown_command_message(&r), "ERR unknown command 'foo', with args beginning with: ");
    }

    #[test]
    fn lookup_is_case_insensitive_and_indexes_match() {
        let get = lookup(b"GeT").unwrap();
        assert_eq!(get.name, "get");
        assert_eq!(COMMANDS[get.index()].name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"averyveryverylongname").is_none());
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(c.name.len() <= 16);
        }
    }

    #[test]
    fn movable_keys_follow_their_numkeys_and_options() {
        let keys_of = |args: &[&str]| {
            let name: &'static str = Box::leak(args[0].to_string().into_boxed_str());
            let spec = CommandSpec {
                name,
                arity: -2,
                flags: &[],
                first_key: 1,
                last_key: 1,
                step: 1,
                group: "generic",
                summary: "",
                since: "",
            };
            keys(&spec, &Request::from_args(args.iter().copied())).to_vec()
        };
        assert_eq!(keys_of(&["get", "a"]), vec![1]);
        assert_eq!(keys_of(&["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), vec![1, 3, 4]);
        assert_eq!(keys_of(&["zinter", "2", "a", "b", "WITHSCORES"]), vec![2, 3]);
        assert_eq!(keys_of(&["blmpop", "0", "2", "a", "b", "LEFT"]), vec![3, 4]);
        assert_eq!(keys_of(&["eval", "return 1", "5", "a"]), vec![3], "numkeys beyond the arguments is clamped");
        assert_eq!(keys_of(&["eval", "return 1", "x", "a"]), Vec::<usize>::new());
        assert_eq!(keys_of(&["sort", "l", "BY", "w_*", "STORE", "dst", "GET", "#"]), vec![1, 5]);
        let mset = lookup(b"mset").unwrap();
        assert_eq!(keys(mset, &Request::from_args(["mset", "a", "1", "b", "2"])).to_vec(), vec![1, 3]);
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let del = lookup(b"del").unwrap();
        assert_eq!(del.key_positions(4).collect::<Vec<_>>(), vec![1, 2, 3]);
        let rename = lookup(b"rename").unwrap();
        assert_eq!(rename.key_positions(3).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(lookup(b"ping").unwrap().key_positions(2).count(), 0);
        assert!(lookup(b"get").unwrap().arity_ok(2));
        assert!(!lookup(b"get").unwrap().arity_ok(3));
        assert!(lookup(b"del").unwrap().arity_ok(9));
    }
}
