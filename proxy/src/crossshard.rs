//! Multi-key commands whose keys live on different shards.
//!
//! A multi-key command runs whole on one shard when all its keys live there (a `{hash tag}`). When they do
//! not, the proxy computes the few reads whose result is a cheap, exact function of each key's value:
//!
//! - `SUNION`, `SINTER`, `SDIFF` (a set) and `SINTERCARD` (a count): each key's `SMEMBERS`, combined here;
//! - `PFCOUNT` of several keys: each key's HyperLogLog (`GET`), merged here as Redis merges them.
//!
//! Everything else (writes to several keys, `...STORE`, `SMOVE`, `LMOVE`, `ZUNION`...) is refused with
//! `CROSSSLOT`: its effect would not be atomic, or the proxy would have to re-implement the command.

use std::collections::HashSet;

use bytes::Bytes;
use ringcache_common::command::CommandSpec;
use ringcache_common::hll;
use ringcache_common::resp::{ReplyBuf, ReplyValue, ReplyWriter, Request};

/// Per-key reads to send, and how to combine their replies.
pub struct Plan {
    /// (key, request) in key order.
    pub reads: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    pub combine: Combine,
}

/// How the per-key replies become the command's reply.
#[derive(Debug, Clone, Copy)]
pub enum Combine {
    Union,
    Inter,
    Diff,
    /// SINTERCARD: the intersection's size, stopping at `limit` (0: no limit).
    InterCard {
        limit: usize,
    },
    /// PFCOUNT: the union's estimated cardinality.
    PfCount,
}

/// What the proxy computes for `req` across shards: `None` when it does not (the caller answers
/// `CROSSSLOT`), `Some(Err)` for bad arguments (with Redis's text).
pub fn plan(spec: &CommandSpec, req: &Request, positions: &[usize]) -> Option<Result<Plan, String>> {
    let combine = match spec.name {
        "sunion" => Combine::Union,
        "sinter" => Combine::Inter,
        "sdiff" => Combine::Diff,
        "sintercard" => match intercard_limit(req, positions) {
            Ok(limit) => Combine::InterCard { limit },
            Err(e) => return Some(Err(e)),
        },
        "pfcount" => Combine::PfCount,
        _ => return None,
    };
    let read = if matches!(combine, Combine::PfCount) { "GET" } else { "SMEMBERS" };
    let reads =
        positions.iter().map(|&p| (req.arg(p).to_vec(), vec![read.as_bytes().to_vec(), req.arg(p).to_vec()])).collect();
    Some(Ok(Plan { reads, combine }))
}

/// SINTERCARD's `[LIMIT limit]` after its keys.
fn intercard_limit(req: &Request, positions: &[usize]) -> Result<usize, String> {
    let mut limit = 0;
    let mut i = positions.last().map_or(req.argc(), |p| p + 1);
    while i < req.argc() {
        match req.get(i + 1) {
            Some(value) if req.arg(i).eq_ignore_ascii_case(b"LIMIT") => {
                limit = ringcache_common::connection::parse_integer(value)
                    .filter(|&n| n >= 0)
                    .ok_or("ERR LIMIT can't be negative")? as usize;
            }
            _ => return Err("ERR syntax error".into()),
        }
        i += 2;
    }
    Ok(limit)
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

impl Combine {
    /// Combines the replies (one per key, in key order; errors were already passed on) into `out`.
    pub fn write(&self, values: Vec<ReplyValue>, out: &mut ReplyBuf) -> Result<(), String> {
        if let Combine::PfCount = self {
            let mut registers = hll::Registers::default();
            for v in values {
                match v {
                    ReplyValue::Bulk(Some(b)) if !hll::is_hll(&b) => return Err(hll::NOT_HLL.into()),
                    ReplyValue::Bulk(Some(b)) => {
                        registers.merge_from(&b).map_err(|_| hll::INVALID_OBJECT.to_string())?;
                    }
                    ReplyValue::Bulk(None) | ReplyValue::Null => {}
                    _ => return Err(WRONGTYPE.into()),
                }
            }
            out.integer(registers.count() as i64);
            return Ok(());
        }
        let sets: Vec<Vec<Bytes>> = values
            .into_iter()
            .map(|v| {
                v.into_items()
                    .ok_or_else(|| WRONGTYPE.to_string())?
                    .into_iter()
                    .map(|m| m.as_bytes().cloned().ok_or_else(|| WRONGTYPE.to_string()))
                    .collect()
            })
            .collect::<Result<_, String>>()?;
        let result: Vec<Bytes> = match self {
            Combine::Union => {
                let mut seen = HashSet::new();
                sets.into_iter().flatten().filter(|m| seen.insert(m.clone())).collect()
            }
            Combine::Inter | Combine::InterCard { .. } => {
                let limit = match self {
                    Combine::InterCard { limit } if *limit > 0 => *limit,
                    _ => usize::MAX,
                };
                let mut iter = sets.into_iter();
                let first = iter.next().unwrap_or_default();
                let others: Vec<HashSet<Bytes>> = iter.map(|s| s.into_iter().collect()).collect();
                first.into_iter().filter(|m| others.iter().all(|o| o.contains(m))).take(limit).collect()
            }
            Combine::Diff => {
                let mut iter = sets.into_iter();
                let first = iter.next().unwrap_or_default();
                let others: HashSet<Bytes> = iter.flatten().collect();
                first.into_iter().filter(|m| !others.contains(m)).collect()
            }
            Combine::PfCount => unreachable!("handled above"),
        };
        if let Combine::InterCard { .. } = self {
            out.integer(result.len() as i64);
        } else {
            out.set_len(result.len());
            for m in result {
                out.bulk(&m);
            }
        }
        Ok(())
    }
}

/// SORT and SORT_RO read keys named by their BY and GET patterns: through the proxy those keys must live
/// with the sorted key, which a pattern guarantees only with a `{hash tag}` placed as the key's (as Redis
/// Cluster requires). Returns the patterns (BY, then GETs) that read keys, for the caller to place.
pub fn sort_patterns<'r>(spec: &CommandSpec, req: &'r Request) -> Vec<(&'static str, &'r [u8])> {
    if !matches!(spec.name, "sort" | "sort_ro") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 2;
    while i < req.argc() {
        let opt = req.arg(i).to_ascii_lowercase();
        let value = req.get(i + 1);
        match (opt.as_slice(), value) {
            (b"by", Some(p)) if p.contains(&b'*') => out.push(("BY", p)),
            (b"get", Some(p)) if p != b"#" && p.contains(&b'*') => out.push(("GET", p)),
            _ => {}
        }
        i += match opt.as_slice() {
            b"by" | b"get" | b"store" => 2,
            b"limit" => 3,
            _ => 1,
        };
    }
    out
}

/// Whether a SORT pattern's keys all share one hash tag (with no wildcard inside it) under `hash_tag`.
pub fn pattern_has_fixed_tag(hash_tag: ringcache_common::hash::HashTag, pattern: &[u8]) -> bool {
    let tag = hash_tag.hashed_part(pattern);
    tag.len() < pattern.len() && !tag.contains(&b'*')
}
