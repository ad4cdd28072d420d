//! The ACL's view of the command table: every Redis command and subcommand (implemented or not, so rules
//! written for redis-server load here) with an id, its categories as a bit set, and its subcommands.

use std::sync::LazyLock;

use foldhash::HashMap;

use crate::command::{redis, CommandSpec, RedisCommand, COMMANDS};

/// Redis 7's ACL categories, in `ACL CAT`'s order.
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of category `name` (without `@`), if Redis has it.
pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES.iter().position(|c| c.eq_ignore_ascii_case(name)).map(|i| 1 << i)
}

pub(crate) struct Entry {
    /// Redis's full name: `get`, `client|id`.
    pub name: &'static str,
    pub categories: u32,
    /// Ids of the subcommands (empty for a plain command or a subcommand).
    pub subs: std::ops::Range<usize>,
}

pub(crate) struct Table {
    pub entries: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
    /// Id of each [`COMMANDS`] row, indexed by [`CommandSpec::index`].
    by_spec: Vec<usize>,
}

impl Table {
    pub fn id(&self, full_name: &str) -> Option<usize> {
        self.by_name.get(full_name).copied()
    }

    /// The id a request is checked with: the subcommand's for a container, the command's otherwise.
    pub fn request_id(&self, spec: &'static CommandSpec, sub: Option<&[u8]>) -> usize {
        let id = self.by_spec[spec.index()];
        let entry = &self.entries[id];
        if entry.subs.is_empty() {
            return id;
        }
        let Some(sub) = sub else { return id };
        entry
            .subs
            .clone()
            .find(|&s| self.entries[s].name.split('|').nth(1).is_some_and(|n| sub.eq_ignore_ascii_case(n.as_bytes())))
            .unwrap_or(id)
    }
}

fn categories_of(cmd: &RedisCommand) -> u32 {
    cmd.acl_categories.iter().filter_map(|c| category_bit(c.trim_start_matches('@'))).fold(0, |a, b| a | b)
}

pub(crate) static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut entries = Vec::new();
    let mut by_name = HashMap::default();
    let mut add = |cmd: &'static RedisCommand, entries: &mut Vec<Entry>| {
        if by_name.contains_key(cmd.name) {
            return;
        }
        let id = entries.len();
        by_name.insert(cmd.name, id);
        entries.push(Entry { name: cmd.name, categories: categories_of(cmd), subs: 0..0 });
        for sub in cmd.subcommands {
            by_name.insert(sub.name, entries.len());
            entries.push(Entry { name: sub.name, categories: categories_of(sub), subs: 0..0 });
        }
        entries[id].subs = id + 1..entries.len();
    };
    for cmd in redis::ALL {
        add(cmd, &mut entries);
    }
    for spec in COMMANDS.iter() {
        add(spec.redis, &mut entries);
    }
    let by_spec = COMMANDS.iter().map(|s| by_name[s.redis.name]).collect();
    Table { entries, by_name, by_spec }
});
