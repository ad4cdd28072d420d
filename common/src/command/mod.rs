//! The command table: every command Ringcache implements, with Redis 7.0's arity, flags, key positions,
//! ACL categories, key specifications and documentation.
//!
//! Shared by the shard (dispatch, locking, `COMMAND`, per-command metrics) and the proxy (finding a
//! request's keys, routing, `COMMAND`). Layout:
//!
//! - `redis_7_0.rs`: generated from redis-server 7.0.15 by `scripts/gen_command_table.py` — every Redis
//!   command and subcommand, implemented or not, as [`RedisCommand`] rows (so adding a command here is one
//!   line in [`IMPLEMENTED`]).
//! - `spec.rs`: the row type and the key-specification interpreter.
//! - `reply.rs`: the `COMMAND` command (COUNT, INFO, DOCS, LIST, GETKEYS, GETKEYSANDFLAGS, HELP), which lists
//!   only what we implement, in Redis's RESP2 and RESP3 shapes.
//!
//! Arity follows Redis: `n` means exactly `n` arguments including the name, `-n` means at least `n`.
//! Keys sit at `first_key..=last_key` (negative `last_key` counts from the end) every `step` arguments;
//! commands whose keys move with their arguments (`movablekeys`: numkeys arguments, SORT's STORE) are read
//! with their key specifications ([`keys`]).

#[rustfmt::skip]
pub mod redis_7_0;
mod reply;
mod spec;

use std::sync::LazyLock;

use foldhash::HashMap;

use crate::resp::Request;

pub use redis_7_0 as redis;
pub use reply::reply_command;
pub use spec::{keys_from_specs, BeginSearch, FindKeys, KeySpec, KeyWithFlags, RedisCommand};

/// One row of the command table: a command we implement.
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
    /// Whether the keys are found from the arguments (`movablekeys`) rather than first/last/step.
    pub movable_keys: bool,
    /// Redis's description (key specifications, COMMAND INFO and DOCS).
    pub redis: &'static RedisCommand,
    /// The subcommands we implement, for a container command (CLIENT, CONFIG, COMMAND, OBJECT).
    pub subcommands: Vec<&'static RedisCommand>,
    /// Position in [`COMMANDS`] (stored: it indexes per-command tables on every request).
    index: usize,
    /// Whether `flags` has `write` (stored: asked on every request).
    write: bool,
}

impl CommandSpec {
    /// Position of this command in [`COMMANDS`]; used to index per-command counters.
    #[inline]
    pub fn index(&'static self) -> usize {
        self.index
    }

    /// Whether `argc` (the name included) satisfies the arity.
    #[inline]
    pub fn arity_ok(&self, argc: usize) -> bool {
        arity_ok(self.arity, argc)
    }

    /// Positions of the key arguments of a request with `argc` arguments, from first/last/step (for a
    /// command with movable keys, use [`keys`]).
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

    #[inline]
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// Whether the command takes keys at all (a fixed position, or movable ones).
    #[inline]
    pub fn is_keyed(&self) -> bool {
        self.first_key > 0 || self.movable_keys
    }

    /// Whether every request of this command names exactly one key, at `first_key`.
    #[inline]
    pub fn has_one_key(&self) -> bool {
        self.first_key > 0 && self.first_key == self.last_key && !self.movable_keys
    }

    /// The subcommand of a container command named by `req`'s second argument, if we implement it.
    pub fn subcommand(&self, req: &Request) -> Option<&'static RedisCommand> {
        let sub = req.get(1)?;
        self.subcommands
            .iter()
            .copied()
            .find(|s| s.name.split('|').nth(1).is_some_and(|n| sub.eq_ignore_ascii_case(n.as_bytes())))
    }
}

#[inline]
fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i64;
    let arity = i64::from(arity);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// What a RESP2 connection with subscriptions may still run (Redis's subscriber mode).
pub fn allowed_while_subscribed(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Checks a request's arity as Redis does before running it: the command's, then (for a container such
/// as CLIENT) the subcommand's. `Err` is the error line.
#[inline]
pub fn check_arity(spec: &CommandSpec, req: &Request) -> Result<(), String> {
    if !spec.arity_ok(req.argc()) {
        return Err(format!("ERR wrong number of arguments for '{}' command", spec.name));
    }
    if spec.subcommands.is_empty() {
        return Ok(());
    }
    if let Some(sub) = spec.subcommand(req) {
        if !arity_ok(sub.arity, req.argc()) {
            return Err(format!("ERR wrong number of arguments for '{}' command", sub.name));
        }
    }
    Ok(())
}

/// Ringcache's own commands (not Redis's), described the way Redis describes its commands.
static RINGCACHE: RedisCommand = RedisCommand {
    name: "ringcache",
    arity: -2,
    flags: &["admin"],
    first_key: 0,
    last_key: 0,
    step: 0,
    acl_categories: &["@admin", "@slow", "@dangerous"],
    key_specs: &[],
    group: "server",
    since: "0.1.0",
    summary: "Shard-to-shard operations used by ringcache-proxy (hinted handoff).",
    subcommands: &[],
    info_resp3: b"*10\r\n$9\r\nringcache\r\n:-2\r\n~1\r\n+admin\r\n:0\r\n:0\r\n:0\r\n~3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n~0\r\n~0\r\n~0\r\n",
    docs_resp3: b"%3\r\n$7\r\nsummary\r\n$67\r\nShard-to-shard operations used by ringcache-proxy (hinted handoff).\r\n$5\r\nsince\r\n$5\r\n0.1.0\r\n$5\r\ngroup\r\n$6\r\nserver\r\n",
};

/// Every command we implement, with the subcommands we implement of the containers; the order is the
/// order of `COMMAND` and `COMMAND LIST`.
static IMPLEMENTED: &[(&RedisCommand, &[&str])] = &[
    // strings
    (&redis::GET, &[]),
    (&redis::SET, &[]),
    (&redis::SETNX, &[]),
    (&redis::SETEX, &[]),
    (&redis::PSETEX, &[]),
    (&redis::GETSET, &[]),
    (&redis::GETDEL, &[]),
    (&redis::GETEX, &[]),
    (&redis::APPEND, &[]),
    (&redis::STRLEN, &[]),
    (&redis::GETRANGE, &[]),
    (&redis::SETRANGE, &[]),
    (&redis::INCR, &[]),
    (&redis::DECR, &[]),
    (&redis::INCRBY, &[]),
    (&redis::DECRBY, &[]),
    (&redis::INCRBYFLOAT, &[]),
    (&redis::MGET, &[]),
    (&redis::MSET, &[]),
    (&redis::MSETNX, &[]),
    (&redis::SUBSTR, &[]),
    (&redis::LCS, &[]),
    // bitmaps
    (&redis::SETBIT, &[]),
    (&redis::GETBIT, &[]),
    (&redis::BITCOUNT, &[]),
    (&redis::BITPOS, &[]),
    (&redis::BITOP, &[]),
    (&redis::BITFIELD, &[]),
    (&redis::BITFIELD_RO, &[]),
    // HyperLogLog
    (&redis::PFADD, &[]),
    (&redis::PFCOUNT, &[]),
    (&redis::PFMERGE, &[]),
    (&redis::PFDEBUG, &[]),
    (&redis::PFSELFTEST, &[]),
    // keys
    (&redis::DEL, &[]),
    (&redis::UNLINK, &[]),
    (&redis::EXISTS, &[]),
    (&redis::TOUCH, &[]),
    (&redis::TYPE, &[]),
    (&redis::EXPIRE, &[]),
    (&redis::PEXPIRE, &[]),
    (&redis::EXPIREAT, &[]),
    (&redis::PEXPIREAT, &[]),
    (&redis::EXPIRETIME, &[]),
    (&redis::PEXPIRETIME, &[]),
    (&redis::TTL, &[]),
    (&redis::PTTL, &[]),
    (&redis::PERSIST, &[]),
    (&redis::RENAME, &[]),
    (&redis::RENAMENX, &[]),
    (&redis::COPY, &[]),
    (&redis::MOVE, &[]),
    (&redis::SWAPDB, &[]),
    (&redis::DUMP, &[]),
    (&redis::RESTORE, &[]),
    (&redis::OBJECT, &["encoding", "freq", "idletime", "refcount", "help"]),
    (&redis::SORT, &[]),
    (&redis::SORT_RO, &[]),
    (&redis::WAIT, &[]),
    (&redis::SCAN, &[]),
    (&redis::KEYS, &[]),
    (&redis::RANDOMKEY, &[]),
    (&redis::DBSIZE, &[]),
    (&redis::FLUSHDB, &[]),
    (&redis::FLUSHALL, &[]),
    // hashes
    (&redis::HSET, &[]),
    (&redis::HMSET, &[]),
    (&redis::HSETNX, &[]),
    (&redis::HGET, &[]),
    (&redis::HMGET, &[]),
    (&redis::HGETALL, &[]),
    (&redis::HDEL, &[]),
    (&redis::HEXISTS, &[]),
    (&redis::HLEN, &[]),
    (&redis::HINCRBY, &[]),
    (&redis::HINCRBYFLOAT, &[]),
    (&redis::HKEYS, &[]),
    (&redis::HVALS, &[]),
    (&redis::HSTRLEN, &[]),
    (&redis::HRANDFIELD, &[]),
    (&redis::HSCAN, &[]),
    // lists
    (&redis::LPUSH, &[]),
    (&redis::RPUSH, &[]),
    (&redis::LPUSHX, &[]),
    (&redis::RPUSHX, &[]),
    (&redis::LPOP, &[]),
    (&redis::RPOP, &[]),
    (&redis::LRANGE, &[]),
    (&redis::LLEN, &[]),
    (&redis::LINDEX, &[]),
    (&redis::LSET, &[]),
    (&redis::LINSERT, &[]),
    (&redis::LREM, &[]),
    (&redis::LTRIM, &[]),
    (&redis::LPOS, &[]),
    (&redis::LMOVE, &[]),
    (&redis::RPOPLPUSH, &[]),
    (&redis::LMPOP, &[]),
    // sets
    (&redis::SADD, &[]),
    (&redis::SREM, &[]),
    (&redis::SPOP, &[]),
    (&redis::SMEMBERS, &[]),
    (&redis::SISMEMBER, &[]),
    (&redis::SMISMEMBER, &[]),
    (&redis::SCARD, &[]),
    (&redis::SRANDMEMBER, &[]),
    (&redis::SMOVE, &[]),
    (&redis::SINTER, &[]),
    (&redis::SINTERSTORE, &[]),
    (&redis::SINTERCARD, &[]),
    (&redis::SUNION, &[]),
    (&redis::SUNIONSTORE, &[]),
    (&redis::SDIFF, &[]),
    (&redis::SDIFFSTORE, &[]),
    (&redis::SSCAN, &[]),
    // sorted sets
    (&redis::ZADD, &[]),
    (&redis::ZINCRBY, &[]),
    (&redis::ZREM, &[]),
    (&redis::ZCARD, &[]),
    (&redis::ZSCORE, &[]),
    (&redis::ZMSCORE, &[]),
    (&redis::ZRANK, &[]),
    (&redis::ZREVRANK, &[]),
    (&redis::ZCOUNT, &[]),
    (&redis::ZLEXCOUNT, &[]),
    (&redis::ZRANGE, &[]),
    (&redis::ZRANGESTORE, &[]),
    (&redis::ZREVRANGE, &[]),
    (&redis::ZRANGEBYSCORE, &[]),
    (&redis::ZREVRANGEBYSCORE, &[]),
    (&redis::ZRANGEBYLEX, &[]),
    (&redis::ZREVRANGEBYLEX, &[]),
    (&redis::ZREMRANGEBYRANK, &[]),
    (&redis::ZREMRANGEBYSCORE, &[]),
    (&redis::ZREMRANGEBYLEX, &[]),
    (&redis::ZPOPMIN, &[]),
    (&redis::ZPOPMAX, &[]),
    (&redis::ZMPOP, &[]),
    (&redis::ZRANDMEMBER, &[]),
    (&redis::ZSCAN, &[]),
    (&redis::ZUNION, &[]),
    (&redis::ZUNIONSTORE, &[]),
    (&redis::ZINTER, &[]),
    (&redis::ZINTERSTORE, &[]),
    (&redis::ZINTERCARD, &[]),
    (&redis::ZDIFF, &[]),
    (&redis::ZDIFFSTORE, &[]),
    // connection
    (&redis::PING, &[]),
    (&redis::ECHO, &[]),
    (&redis::QUIT, &[]),
    (&redis::AUTH, &[]),
    (
        &redis::ACL,
        &[
            "cat", "deluser", "dryrun", "genpass", "getuser", "list", "load", "log", "save", "setuser", "users",
            "whoami", "help",
        ],
    ),
    (&redis::HELLO, &[]),
    (&redis::SELECT, &[]),
    (
        &redis::CLIENT,
        &[
            "setname",
            "getname",
            "id",
            "list",
            "info",
            "help",
            "tracking",
            "caching",
            "getredir",
            "trackinginfo",
            "unblock",
            "kill",
            "pause",
            "unpause",
            "no-evict",
        ],
    ),
    (&redis::RESET, &[]),
    (&redis::READONLY, &[]),
    (&redis::READWRITE, &[]),
    // server
    (&redis::INFO, &[]),
    (&redis::COMMAND, &["count", "docs", "info", "list", "getkeys", "getkeysandflags", "help"]),
    (&redis::CONFIG, &["get", "set", "resetstat", "rewrite", "help"]),
    (&redis::MEMORY, &["usage", "stats", "doctor", "malloc-stats", "purge", "help"]),
    (&redis::TIME, &[]),
    (&redis::SAVE, &[]),
    (&redis::BGSAVE, &[]),
    (&RINGCACHE, &[]),
    (&redis::LASTSAVE, &[]),
    (&redis::BGREWRITEAOF, &[]),
    (&redis::SLOWLOG, &["get", "len", "reset", "help"]),
    (&redis::LATENCY, &["latest", "history", "reset", "doctor", "histogram", "help"]),
    // transactions
    (&redis::MULTI, &[]),
    (&redis::EXEC, &[]),
    (&redis::DISCARD, &[]),
    (&redis::WATCH, &[]),
    (&redis::UNWATCH, &[]),
    // pub/sub
    (&redis::SUBSCRIBE, &[]),
    (&redis::UNSUBSCRIBE, &[]),
    (&redis::PSUBSCRIBE, &[]),
    (&redis::PUNSUBSCRIBE, &[]),
    (&redis::SSUBSCRIBE, &[]),
    (&redis::SUNSUBSCRIBE, &[]),
    (&redis::PUBLISH, &[]),
    (&redis::SPUBLISH, &[]),
    (&redis::PUBSUB, &["channels", "numsub", "numpat", "shardchannels", "shardnumsub", "help"]),
    // scripting
    (&redis::EVAL, &[]),
    (&redis::EVALSHA, &[]),
    (&redis::EVAL_RO, &[]),
    (&redis::EVALSHA_RO, &[]),
    (&redis::SCRIPT, &["load", "exists", "flush", "kill", "help"]),
    // blocking
    (&redis::BLPOP, &[]),
    (&redis::BRPOP, &[]),
    (&redis::BLMOVE, &[]),
    (&redis::BRPOPLPUSH, &[]),
    (&redis::BLMPOP, &[]),
    (&redis::BZPOPMIN, &[]),
    (&redis::BZPOPMAX, &[]),
    (&redis::BZMPOP, &[]),
];

/// A value for each command of [`COMMANDS`], computed from its spec once (on first use) and read by the
/// spec: the per-command tables the request paths consult instead of comparing names or searching flags.
pub struct PerCommand<T: 'static> {
    of: fn(&'static CommandSpec) -> T,
    values: std::sync::OnceLock<Box<[T]>>,
}

impl<T> PerCommand<T> {
    pub const fn new(of: fn(&'static CommandSpec) -> T) -> Self {
        PerCommand { of, values: std::sync::OnceLock::new() }
    }

    /// `spec`'s value.
    #[inline]
    pub fn get(&self, spec: &'static CommandSpec) -> &T {
        &self.values.get_or_init(|| COMMANDS.iter().map(self.of).collect())[spec.index()]
    }
}

/// Every command we implement, in [`IMPLEMENTED`]'s order; [`CommandSpec::index`] is the position.
pub static COMMANDS: LazyLock<Vec<CommandSpec>> = LazyLock::new(|| {
    IMPLEMENTED
        .iter()
        .enumerate()
        .map(|(index, &(r, subs))| CommandSpec {
            index,
            name: r.name,
            arity: r.arity,
            flags: r.flags,
            first_key: r.first_key,
            last_key: r.last_key,
            step: r.step,
            group: r.group,
            movable_keys: r.flags.contains(&"movablekeys"),
            write: r.flags.contains(&"write"),
            redis: r,
            // In redis-server's order (COMMAND lists them in that order).
            subcommands: {
                for s in subs {
                    let full = format!("{}|{s}", r.name);
                    assert!(r.subcommands.iter().any(|c| c.name == full), "{full} is not a Redis 7.0 subcommand");
                }
                r.subcommands
                    .iter()
                    .copied()
                    .filter(|c| c.name.split('|').nth(1).is_some_and(|n| subs.contains(&n)))
                    .collect()
            },
        })
        .collect()
});

/// Positions of a request's key arguments (for most commands, one or two).
pub type KeyPositions = smallvec::SmallVec<[usize; 4]>;

/// The positions of the key arguments of `req`, a request for `spec`: the table's first/last/step for
/// most commands; for those whose keys move with their arguments (`numkeys` arguments, `STORE` options),
/// what Redis's key specifications find, or the command's own rule where they cannot say (SORT). A
/// malformed request yields the keys that can be found; the command itself then reports the error.
pub fn keys(spec: &CommandSpec, req: &Request) -> KeyPositions {
    if !spec.movable_keys {
        return spec.key_positions(req.argc()).collect();
    }
    keys_with_flags(spec.redis, req).map(|keys| keys.iter().map(|&(p, _)| p).collect()).unwrap_or_default()
}

/// The keys of `req` and how the command uses each (`RW`, `access`, `update`, ...), as Redis's
/// `COMMAND GETKEYSANDFLAGS` finds them: the key specifications, or the command's own rule when they cannot
/// say (SORT's STORE) or when the flags depend on the arguments (SET with GET, BITFIELD with SET/INCRBY).
/// `None` when the arguments do not name their keys (a bad count).
pub fn keys_with_flags(cmd: &RedisCommand, req: &Request) -> Option<Vec<KeyWithFlags>> {
    let variable_flags = cmd.key_specs.iter().any(|s| s.flags.contains(&"variable_flags"));
    if !variable_flags {
        if let Some(keys) = keys_from_specs(cmd.key_specs, req) {
            return Some(keys);
        }
    }
    let argc = req.argc();
    let has_option = |from: usize, names: &[&str]| {
        (from..argc).any(|i| names.iter().any(|n| req.arg(i).eq_ignore_ascii_case(n.as_bytes())))
    };
    match cmd.name {
        "sort" | "sort_ro" => {
            let mut out: Vec<KeyWithFlags> = Vec::new();
            if argc > 1 {
                out.push((1, &["RO", "access"]));
            }
            if cmd.name == "sort" {
                // The last STORE wins, as in Redis's sortGetKeys; BY/GET patterns and LIMIT's numbers
                // are skipped so that a pattern named "store" is not taken for the option.
                let mut store = None;
                let mut i = 2;
                while i < argc {
                    let skip = match req.arg(i).to_ascii_lowercase().as_slice() {
                        b"by" | b"get" => 1,
                        b"limit" => 2,
                        b"store" => {
                            if i + 1 < argc {
                                store = Some(i + 1);
                            }
                            1
                        }
                        _ => 0,
                    };
                    i += 1 + skip;
                }
                if let Some(p) = store {
                    out.push((p, &["OW", "update"]));
                }
            }
            Some(out)
        }
        "set" => {
            let flags: &'static [&'static str] =
                if has_option(3, &["GET"]) { &["RW", "access", "update"] } else { &["OW", "update"] };
            (argc > 1).then(|| vec![(1, flags)])
        }
        "bitfield" => {
            let flags: &'static [&'static str] =
                if has_option(2, &["SET", "INCRBY"]) { &["RW", "access", "update"] } else { &["RO", "access"] };
            (argc > 1).then(|| vec![(1, flags)])
        }
        _ => None,
    }
}

/// Names to commands; foldhash because this lookup runs once per request.
/// Keyed by the name's bytes, so a lookup needs no UTF-8 check.
static BY_NAME: LazyLock<HashMap<&'static [u8], &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect());

/// Finds a command by name, in any case.
#[inline]
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() <= SHORT_NAME_BYTES {
        return SHORT_NAMES.find(name);
    }
    lookup_by_hash(name)
}

/// Names of at most this many bytes (all but a few commands') are found in [`SHORT_NAMES`].
const SHORT_NAME_BYTES: usize = 16;

/// Every command whose name fits in 16 bytes, in an open-addressed table keyed by the name packed into a
/// `u128` (zero padded) and its length, so a lookup lower-cases the name a word at a time and compares
/// one integer instead of hashing and comparing bytes.
static SHORT_NAMES: LazyLock<ShortNames> = LazyLock::new(ShortNames::build);

struct ShortNames {
    /// `(packed lower-case name, length, command)`; length 0 marks an empty slot.
    slots: Vec<(u128, u8, Option<&'static CommandSpec>)>,
    mask: usize,
}

impl ShortNames {
    fn build() -> ShortNames {
        let size = (COMMANDS.len() * 4).next_power_of_two();
        let mut table = ShortNames { slots: vec![(0, 0, None); size], mask: size - 1 };
        for c in COMMANDS.iter().filter(|c| c.name.len() <= SHORT_NAME_BYTES) {
            let key = pack_lowercase(c.name.as_bytes());
            let mut i = table.slot_of(key);
            while table.slots[i].1 != 0 {
                i = (i + 1) & table.mask;
            }
            table.slots[i] = (key, c.name.len() as u8, Some(c));
        }
        table
    }

    #[inline]
    fn slot_of(&self, key: u128) -> usize {
        let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & self.mask
    }

    #[inline]
    fn find(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        let key = pack_lowercase(name);
        let mut i = self.slot_of(key);
        loop {
            let (slot_key, len, command) = self.slots[i];
            if len == 0 {
                return None;
            }
            if slot_key == key && usize::from(len) == name.len() {
                return command;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// `name` (at most 16 bytes) lower-cased (ASCII letters only) and packed little-endian into a `u128`,
/// zero padded: eight bytes at a time, with no branch per byte.
#[inline]
fn pack_lowercase(name: &[u8]) -> u128 {
    let (lo, hi) = if name.len() <= 8 { (name, &[][..]) } else { name.split_at(8) };
    u128::from(ascii_lowercase_word(load_le(lo))) | (u128::from(ascii_lowercase_word(load_le(hi))) << 64)
}

/// Up to eight bytes as a little-endian `u64`, zero padded, read as (overlapping) words rather than
/// copied byte by byte.
#[inline]
fn load_le(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    match n {
        0 => 0,
        1..=3 => {
            // The first, middle and last bytes cover one, two or three bytes.
            u64::from(bytes[0]) | u64::from(bytes[n / 2]) << (n / 2 * 8) | u64::from(bytes[n - 1]) << ((n - 1) * 8)
        }
        _ => {
            let first = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let last = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
            u64::from(first) | u64::from(last) << ((n - 4) * 8)
        }
    }
}

/// Lower-cases the ASCII capitals among a word's eight bytes; other bytes (non-ASCII included) are kept.
#[inline]
fn ascii_lowercase_word(word: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = word & !HIGH;
    // Per byte, the high bit says: at least 'A', and above 'Z' (no carry crosses a byte: each is < 0x80).
    let from_a = low7 + ONES * u64::from(0x80 - b'A');
    let past_z = low7 + ONES * u64::from(0x80 - b'Z' - 1);
    let capital = from_a & !past_z & !word & HIGH;
    word | (capital >> 2)
}

/// The general lookup, for names longer than 16 bytes.
fn lookup_by_hash(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut lower = [0u8; 24];
    if name.len() > lower.len() {
        return None;
    }
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    BY_NAME.get(&lower[..name.len()]).copied()
}

/// Finds any Redis 7.0 command or subcommand (`client|list`) by name, implemented or not.
pub fn redis_command(name: &str) -> Option<&'static RedisCommand> {
    let lower = name.to_ascii_lowercase();
    let (top, sub) = match lower.split_once('|') {
        Some((t, s)) => (t, Some(s)),
        None => (lower.as_str(), None),
    };
    let cmd = redis::ALL.iter().copied().find(|c| c.name == top)?;
    match sub {
        None => Some(cmd),
        Some(_) => cmd.subcommands.iter().copied().find(|c| c.name == lower),
    }
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

    /// A per-command table holds, for each command, the value its function gives for that command.
    #[test]
    fn per_command_values_follow_their_command() {
        static NAME_LEN: PerCommand<usize> = PerCommand::new(|c| c.name.len());
        for c in COMMANDS.iter() {
            assert_eq!(*NAME_LEN.get(c), c.name.len(), "{}", c.name);
        }
        let get = lookup(b"get").expect("GET is a command");
        assert!(std::ptr::eq(NAME_LEN.get(get), NAME_LEN.get(get)), "computed once");
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let r = Request::from_args(["foo", "a", "b"]);
        assert_eq!(unknown_command_message(&r), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
        let r = Request::from_args(["foo"]);
        assert_eq!(unknown_command_message(&r), "ERR unknown command 'foo', with args beginning with: ");
    }

    /// Every command, in lower, upper and mixed case, is found by the short-name table exactly as by the
    /// general lookup; near misses (a NUL, a non-ASCII byte that masks to a letter, a prefix, a longer
    /// name) are not found.
    #[test]
    fn short_name_table_agrees_with_the_general_lookup() {
        let mut short = 0;
        for c in COMMANDS.iter() {
            let lower = c.name.to_string();
            let upper = c.name.to_ascii_uppercase();
            let mixed: String = c
                .name
                .chars()
                .enumerate()
                .map(|(i, ch)| if i % 2 == 0 { ch.to_ascii_uppercase() } else { ch })
                .collect();
            for name in [&lower, &upper, &mixed] {
                assert_eq!(lookup(name.as_bytes()).map(|s| s.index()), Some(c.index()), "{name}");
                assert_eq!(lookup_by_hash(name.as_bytes()).map(|s| s.index()), Some(c.index()), "{name}");
            }
            if c.name.len() <= SHORT_NAME_BYTES {
                short += 1;
                let mut with_nul = c.name.as_bytes().to_vec();
                with_nul.push(0);
                let mut high_bit = c.name.as_bytes().to_vec();
                high_bit[0] |= 0x80;
                let prefix = &c.name.as_bytes()[..c.name.len() - 1];
                for miss in [&with_nul[..], &high_bit[..], prefix] {
                    assert_eq!(
                        lookup(miss).map(|s| s.name),
                        lookup_by_hash(miss).map(|s| s.name),
                        "{:?}",
                        String::from_utf8_lossy(miss)
                    );
                }
                assert!(lookup(&high_bit).is_none());
                assert!(lookup(&with_nul).is_none());
            }
        }
        assert!(short * 10 > COMMANDS.len() * 9, "most commands have short names ({short} of {})", COMMANDS.len());
        for miss in [&b""[..], b"\0", b"g\0t", b"@ET", b"[ET", b"`et", b"{et", b"\xff\xff\xff"] {
            assert!(lookup(miss).is_none(), "{miss:?}");
        }
    }

    #[test]
    fn load_le_reads_every_length() {
        for n in 0..=8 {
            let bytes: Vec<u8> = (1..=n as u8).map(|b| b * 17).collect();
            let mut padded = [0u8; 8];
            padded[..n].copy_from_slice(&bytes);
            assert_eq!(load_le(&bytes), u64::from_le_bytes(padded), "{n} bytes");
        }
    }

    #[test]
    fn ascii_lowercase_word_changes_only_capitals() {
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b, b'A', b, b'Z', b, 0, b, 0xFF]);
            let expected = u64::from_le_bytes([
                b.to_ascii_lowercase(),
                b'a',
                b.to_ascii_lowercase(),
                b'z',
                b.to_ascii_lowercase(),
                0,
                b.to_ascii_lowercase(),
                0xFF,
            ]);
            assert_eq!(ascii_lowercase_word(word), expected, "byte {b:#x}");
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_indexes_match() {
        let get = lookup(b"GeT").unwrap();
        assert_eq!(get.name, "get");
        assert_eq!(COMMANDS[get.index()].name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"averyveryveryveryverylongname").is_none());
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(c.name.len() <= 24);
        }
    }

    /// Keys of `args` as `keys` finds them (the command must be in Redis's table).
    fn keys_of(args: &[&str]) -> Vec<usize> {
        let cmd = redis_command(args[0]).unwrap();
        let spec = CommandSpec {
            name: cmd.name,
            arity: cmd.arity,
            flags: cmd.flags,
            first_key: cmd.first_key,
            last_key: cmd.last_key,
            step: cmd.step,
            group: cmd.group,
            movable_keys: cmd.flags.contains(&"movablekeys"),
            redis: cmd,
            subcommands: Vec::new(),
            index: 0,
            write: cmd.flags.contains(&"write"),
        };
        keys(&spec, &Request::from_args(args.iter().copied())).to_vec()
    }

    #[test]
    fn movable_keys_follow_their_numkeys_and_options() {
        assert_eq!(keys_of(&["get", "a"]), vec![1]);
        assert_eq!(keys_of(&["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), vec![1, 3, 4]);
        assert_eq!(keys_of(&["zinter", "2", "a", "b", "WITHSCORES"]), vec![2, 3]);
        assert_eq!(keys_of(&["blmpop", "0", "2", "a", "b", "LEFT"]), vec![3, 4]);
        assert_eq!(keys_of(&["lmpop", "2", "a", "b", "LEFT"]), vec![2, 3]);
        assert_eq!(keys_of(&["sintercard", "2", "a", "b", "LIMIT", "1"]), vec![2, 3]);
        assert_eq!(keys_of(&["eval", "return 1", "5", "a"]), Vec::<usize>::new(), "numkeys beyond the arguments");
        assert_eq!(keys_of(&["eval", "return 1", "x", "a"]), Vec::<usize>::new());
        assert_eq!(keys_of(&["eval", "return 1", "1", "a", "b"]), vec![3]);
        assert_eq!(keys_of(&["sort", "l", "BY", "w_*", "STORE", "dst", "GET", "#"]), vec![1, 5]);
        assert_eq!(keys_of(&["sort", "l", "GET", "store", "LIMIT", "0", "1"]), vec![1]);
        assert_eq!(keys_of(&["mset", "a", "1", "b", "2"]), vec![1, 3]);
        assert_eq!(keys_of(&["rename", "a", "b"]), vec![1, 2]);
        assert_eq!(keys_of(&["del", "a", "b", "c"]), vec![1, 2, 3]);
    }

    #[test]
    fn subcommand_arity_is_checked() {
        let client = lookup(b"client").unwrap();
        assert!(check_arity(client, &Request::from_args(["client", "getname"])).is_ok());
        assert_eq!(
            check_arity(client, &Request::from_args(["client", "setname"])),
            Err("ERR wrong number of arguments for 'client|setname' command".into())
        );
        assert!(check_arity(client, &Request::from_args(["client", "nosuch", "x"])).is_ok());
        assert_eq!(
            check_arity(lookup(b"get").unwrap(), &Request::from_args(["get"])),
            Err("ERR wrong number of arguments for 'get' command".into())
        );
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
