//! Redis's description of a command (the rows of the generated `redis_7_0.rs`) and the interpreter of its
//! key specifications, which finds a request's keys the way Redis's `getKeysUsingKeySpecs` does.

use crate::resp::Request;

/// A command or subcommand (`container|sub`) as redis-server describes it in `COMMAND INFO` and
/// `COMMAND DOCS`.
#[derive(Debug)]
pub struct RedisCommand {
    /// Lower case; subcommands are `container|sub`.
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl_categories: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub subcommands: &'static [&'static RedisCommand],
    /// The `COMMAND INFO` entry in RESP3, with an empty list of subcommands.
    pub info_resp3: &'static [u8],
    /// The `COMMAND DOCS` map in RESP3, without its `subcommands` entry.
    pub docs_resp3: &'static [u8],
}

/// One key specification: where a command's keys begin and how many follow.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub flags: &'static [&'static str],
    pub begin_search: BeginSearch,
    pub find_keys: FindKeys,
}

#[derive(Debug, Clone, Copy)]
pub enum BeginSearch {
    /// The keys begin at this argument.
    Index(i32),
    /// After this keyword, searched from `start_from` (backwards from the end when negative).
    Keyword { keyword: &'static str, start_from: i32 },
    /// Only the command knows (SORT's BY/GET/STORE).
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub enum FindKeys {
    /// Keys up to `last_key` (relative to the first; negative counts from the end), every `key_step`.
    Range {
        last_key: i32,
        key_step: i32,
        limit: i32,
    },
    /// A count at `key_num_index` (relative to the beginning), then that many keys from `first_key`.
    KeyNum {
        key_num_index: i32,
        first_key: i32,
        key_step: i32,
    },
    Unknown,
}

impl KeySpec {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }
}

/// A key argument and the flags of the key specification that found it.
pub type KeyWithFlags = (usize, &'static [&'static str]);

/// The keys `specs` find in `req`, in spec order, as Redis's `getKeysUsingKeySpecs` (without
/// `GET_KEYSPEC_RETURN_PARTIAL`): `None` when a spec cannot be applied (an unknown or incomplete spec, a
/// count that is not a number, keys past the arguments), for the caller to fall back on the command's own
/// rule.
pub fn keys_from_specs(specs: &[KeySpec], req: &Request) -> Option<Vec<KeyWithFlags>> {
    let argc = req.argc() as i64;
    let mut out = Vec::new();
    for spec in specs {
        if spec.has_flag("not_key") {
            continue;
        }
        let first = match spec.begin_search {
            BeginSearch::Index(i) => i64::from(i),
            BeginSearch::Keyword { keyword, start_from } => {
                let from = i64::from(start_from);
                let start = if from > 0 { from } else { argc + from };
                let end = if from > 0 { argc - 1 } else { 1 };
                let mut found = 0;
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if req.arg(i as usize).eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            BeginSearch::Unknown => return None,
        };
        let (first, last, step) = match spec.find_keys {
            FindKeys::Range { last_key, key_step, limit } => {
                let (last_key, limit) = (i64::from(last_key), i64::from(limit));
                let last = if last_key >= 0 {
                    first + last_key
                } else if limit == 0 {
                    argc + last_key
                } else {
                    first + ((argc - first) / limit + last_key)
                };
                (first, last, i64::from(key_step))
            }
            FindKeys::KeyNum { key_num_index, first_key, key_step } => {
                let at = first + i64::from(key_num_index);
                if at >= argc {
                    return None;
                }
                let numkeys = crate::connection::parse_integer(req.arg(at as usize)).filter(|&n| n >= 0)?;
                let first = first + i64::from(first_key);
                (first, first.saturating_add(numkeys) - 1, i64::from(key_step))
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            // First or last out of bounds: a syntax error the command itself reports.
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push((i as usize, spec.flags));
            i += step.max(1);
        }
        if spec.has_flag("incomplete") {
            return None;
        }
    }
    Some(out)
}
