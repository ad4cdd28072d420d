//! The `COMMAND` command, answered the same way by the shard and the proxy: every entry is redis-server
//! 7.0.15's own (`COMMAND INFO` and `COMMAND DOCS` as generated into `redis_7_0.rs`), listing only the
//! commands and subcommands we implement, written in the client's protocol.

use std::sync::LazyLock;

use bytes::Bytes;

use super::{keys_with_flags, lookup, redis_command, CommandSpec, RedisCommand, COMMANDS};
use crate::glob::glob_match_nocase;
use crate::resp::{ReplyBuf, ReplyValue, ReplyWriter, Request};

const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];

fn parse(resp3: &'static [u8]) -> ReplyValue {
    ReplyValue::parse(&Bytes::from_static(resp3)).unwrap_or(ReplyValue::Null)
}

/// A command's `COMMAND INFO` entry with the subcommands we implement.
fn info_value(cmd: &RedisCommand, subs: &[&'static RedisCommand]) -> ReplyValue {
    let mut v = parse(cmd.info_resp3);
    if let ReplyValue::Array(Some(fields)) = &mut v {
        if let Some(last) = fields.last_mut() {
            // Redis writes an empty set when a command has no subcommands, an array when it has some.
            *last = if subs.is_empty() {
                ReplyValue::Set(Vec::new())
            } else {
                ReplyValue::Array(Some(subs.iter().map(|s| info_value(s, &[])).collect()))
            };
        }
    }
    v
}

/// A command's `COMMAND DOCS` map with the subcommands we implement.
fn docs_value(cmd: &RedisCommand, subs: &[&'static RedisCommand]) -> ReplyValue {
    let mut v = parse(cmd.docs_resp3);
    if let ReplyValue::Map(pairs) = &mut v {
        if !subs.is_empty() {
            let docs = subs.iter().map(|s| (bulk(s.name), docs_value(s, &[]))).collect();
            pairs.push((bulk("subcommands"), ReplyValue::Map(docs)));
        }
    }
    v
}

fn bulk(s: &str) -> ReplyValue {
    ReplyValue::Bulk(Some(Bytes::copy_from_slice(s.as_bytes())))
}

/// (COMMAND INFO entry, COMMAND DOCS map) of every command we implement, indexed like `COMMANDS`.
static ENTRIES: LazyLock<Vec<(ReplyValue, ReplyValue)>> = LazyLock::new(|| {
    COMMANDS.iter().map(|c| (info_value(c.redis, &c.subcommands), docs_value(c.redis, &c.subcommands))).collect()
});

/// What a `COMMAND INFO`/`DOCS` argument names: a command we implement, or one of its subcommands
/// (`client|list`).
fn find(name: &[u8]) -> Option<(&'static CommandSpec, Option<&'static RedisCommand>)> {
    let text = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    match text.split_once('|') {
        None => Some((lookup(name)?, None)),
        Some((top, _)) => {
            let spec = lookup(top.as_bytes())?;
            let sub = spec.subcommands.iter().copied().find(|s| s.name == text)?;
            Some((spec, Some(sub)))
        }
    }
}

fn write_info(out: &mut ReplyBuf, spec: &'static CommandSpec, sub: Option<&'static RedisCommand>) {
    match sub {
        None => ENTRIES[spec.index()].0.write_to(out),
        Some(sub) => info_value(sub, &[]).write_to(out),
    }
}

/// Replies to `COMMAND [COUNT | INFO name... | DOCS name... | LIST [FILTERBY ...] | GETKEYS ... |
/// GETKEYSANDFLAGS ... | HELP]` in Redis 7.0's shapes. An error is an `Err` with the error line.
pub fn reply_command(req: &Request, out: &mut ReplyBuf) -> Result<(), String> {
    let Some(sub) = req.get(1) else {
        out.array_len(COMMANDS.len());
        for c in COMMANDS.iter() {
            write_info(out, c, None);
        }
        return Ok(());
    };
    let sub = sub.to_ascii_lowercase();
    match sub.as_slice() {
        b"count" if req.argc() == 2 => out.integer(COMMANDS.len() as i64),
        b"info" => {
            if req.argc() == 2 {
                out.array_len(COMMANDS.len());
                for c in COMMANDS.iter() {
                    write_info(out, c, None);
                }
            } else {
                out.array_len(req.argc() - 2);
                for name in req.args_from(2) {
                    match find(name) {
                        Some((spec, sub)) => write_info(out, spec, sub),
                        None => out.null(),
                    }
                }
            }
        }
        b"docs" => {
            let found: Vec<(&'static str, ReplyValue)> = if req.argc() == 2 {
                COMMANDS.iter().map(|c| (c.name, ENTRIES[c.index()].1.clone())).collect()
            } else {
                req.args_from(2)
                    .filter_map(find)
                    .map(|(spec, sub)| match sub {
                        None => (spec.name, ENTRIES[spec.index()].1.clone()),
                        Some(sub) => (sub.name, docs_value(sub, &[])),
                    })
                    .collect()
            };
            out.map_len(found.len());
            for (name, docs) in found {
                out.bulk(name.as_bytes());
                docs.write_to(out);
            }
        }
        b"list" => list(req, out)?,
        b"getkeys" | b"getkeysandflags" if req.argc() >= 3 => getkeys(req, out, sub == b"getkeysandflags")?,
        b"help" if req.argc() == 2 => {
            out.array_len(HELP.len());
            for line in HELP {
                out.simple(line);
            }
        }
        _ => {
            return Err(format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(req.arg(1))))
        }
    }
    Ok(())
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`: names of commands and
/// subcommands.
fn list(req: &Request, out: &mut ReplyBuf) -> Result<(), String> {
    let all = || COMMANDS.iter().flat_map(|c| std::iter::once(c.redis).chain(c.subcommands.iter().copied()));
    let names: Vec<&'static str> = match req.argc() {
        2 => COMMANDS.iter().map(|c| c.name).collect(),
        5 if req.arg(2).eq_ignore_ascii_case(b"FILTERBY") => {
            let (kind, value) = (req.arg(3).to_ascii_lowercase(), req.arg(4));
            match kind.as_slice() {
                b"module" => Vec::new(),
                b"aclcat" => {
                    let wanted = format!("@{}", String::from_utf8_lossy(value).to_ascii_lowercase());
                    all().filter(|c| c.acl_categories.iter().any(|a| *a == wanted)).map(|c| c.name).collect()
                }
                b"pattern" => all().filter(|c| glob_match_nocase(value, c.name.as_bytes())).map(|c| c.name).collect(),
                _ => return Err("ERR syntax error".into()),
            }
        }
        _ => return Err("ERR syntax error".into()),
    };
    out.array_len(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
    Ok(())
}

/// `COMMAND GETKEYS` / `GETKEYSANDFLAGS <command> <args...>`, with Redis's checks and error texts.
fn getkeys(req: &Request, out: &mut ReplyBuf, with_flags: bool) -> Result<(), String> {
    let inner = Request::from_args(req.args_from(2));
    let name = String::from_utf8_lossy(inner.arg(0)).to_ascii_lowercase();
    // Any Redis command is looked up (as redis-server does), ours first for their subcommands.
    let cmd = lookup(inner.arg(0))
        .map(|spec| spec.subcommand(&inner).unwrap_or(spec.redis))
        .or_else(|| redis_command(&name).map(|c| subcommand_of(c, &inner)))
        .ok_or("ERR Invalid command specified")?;
    let has_keys = cmd.key_specs.iter().any(|s| !s.flags.contains(&"not_key"))
        || matches!(cmd.name, "sort" | "sort_ro" | "migrate");
    if !has_keys {
        return Err("ERR The command has no key arguments".into());
    }
    let argc = inner.argc() as i64;
    let arity = i64::from(cmd.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err("ERR Invalid number of arguments specified for command".into());
    }
    let keys = keys_with_flags(cmd, &inner).unwrap_or_default();
    if keys.is_empty() {
        if cmd.flags.contains(&"no_mandatory_keys") {
            out.array_len(0);
            return Ok(());
        }
        return Err("ERR Invalid arguments specified for command".into());
    }
    out.array_len(keys.len());
    for (pos, flags) in keys {
        if with_flags {
            out.array_len(2);
            out.bulk(inner.arg(pos));
            out.set_len(flags.len());
            for f in flags {
                out.simple(f);
            }
        } else {
            out.bulk(inner.arg(pos));
        }
    }
    Ok(())
}

/// The subcommand of a Redis container command named by `req`'s second argument, or the command itself.
fn subcommand_of(cmd: &'static RedisCommand, req: &Request) -> &'static RedisCommand {
    let Some(sub) = req.get(1) else { return cmd };
    cmd.subcommands
        .iter()
        .copied()
        .find(|s| s.name.split('|').nth(1).is_some_and(|n| sub.eq_ignore_ascii_case(n.as_bytes())))
        .unwrap_or(cmd)
}
