//! SORT and SORT_RO, as Redis's `sort.c`: BY (a pattern with `*`, or one without, which means "do not
//! sort"), LIMIT, GET (`#` for the element, `key*` for a string, `key*->field` for a hash field), ASC/DESC,
//! ALPHA and STORE. Numeric sorting compares the values as doubles (ties by the elements' bytes), ALPHA
//! compares bytes. A request whose BY or GET patterns name other keys holds every stripe while it runs
//! (`cmd::LockMode::Sort`), so the keys it reads cannot change under it.

use ringcache_common::resp::{ReplyWriter, Request};

use super::keys::{insert_value, Value};
use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{Collection, Kind, List};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "sort" => sort,
        "sort_ro" => sort,
        _ => return None,
    })
}

/// Whether a SORT request reads keys other than the one it sorts (a BY pattern with `*`, or a GET pattern
/// other than `#`): those need every stripe.
pub fn reads_other_keys(req: &Request) -> bool {
    let mut i = 2;
    while i + 1 < req.argc() {
        let (opt, value) = (req.arg(i), req.arg(i + 1));
        if is(opt, "BY") && value.contains(&b'*') || is(opt, "GET") && value != b"#" {
            return true;
        }
        i += if is(opt, "LIMIT") {
            3
        } else if is(opt, "BY") || is(opt, "GET") || is(opt, "STORE") {
            2
        } else {
            1
        };
    }
    false
}

struct Options<'r> {
    by: Option<&'r [u8]>,
    dont_sort: bool,
    limit: Option<(i64, i64)>,
    gets: Vec<&'r [u8]>,
    desc: bool,
    alpha: bool,
    store: Option<&'r [u8]>,
}

fn parse(req: &Request, read_only: bool) -> Result<Options<'_>, CmdError> {
    let mut o =
        Options { by: None, dont_sort: false, limit: None, gets: Vec::new(), desc: false, alpha: false, store: None };
    let mut i = 2;
    while i < req.argc() {
        let opt = req.arg(i);
        let left = req.argc() - i - 1;
        if is(opt, "ASC") {
            o.desc = false;
        } else if is(opt, "DESC") {
            o.desc = true;
        } else if is(opt, "ALPHA") {
            o.alpha = true;
        } else if is(opt, "LIMIT") && left >= 2 {
            o.limit = Some((parse_i64(req.arg(i + 1))?, parse_i64(req.arg(i + 2))?));
            i += 2;
        } else if is(opt, "STORE") && left >= 1 && !read_only {
            o.store = Some(req.arg(i + 1));
            i += 1;
        } else if is(opt, "BY") && left >= 1 {
            let pattern = req.arg(i + 1);
            o.by = Some(pattern);
            // A pattern without `*` names no key per element: Redis skips the sort.
            o.dont_sort = !pattern.contains(&b'*');
            i += 1;
        } else if is(opt, "GET") && left >= 1 {
            o.gets.push(req.arg(i + 1));
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// What a pattern names for one element: the element itself (`#`), a string key's value, or a hash
/// field's value; `None` when that key or field is missing or of another type.
fn lookup_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], element: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    if pattern == b"#" {
        return Ok(Some(element.to_vec()));
    }
    let Some(star) = pattern.iter().position(|&b| b == b'*') else {
        return Ok(None);
    };
    let arrow = pattern[star + 1..].windows(2).position(|w| w == b"->").map(|p| star + 1 + p);
    let (key_end, field) = match arrow {
        Some(a) if a + 2 < pattern.len() => (a, Some(&pattern[a + 2..])),
        _ => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(key_end + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let h = ctx.db.hash(&key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = g.lookup(h, &key, ctx.now_ms) else {
        return Ok(None);
    };
    Ok(match (field, g.kind(slot)) {
        (None, Kind::String) => Some(g.string(slot).to_vec()),
        (Some(f), Kind::Hash) => match g.collection(slot) {
            Collection::Hash(hash) => hash.get(f).map(<[u8]>::to_vec),
            _ => None,
        },
        _ => None,
    })
}

/// A number as C's `strtod` reads the whole of a string (leading spaces allowed, nothing after it);
/// `None` where Redis reports a conversion error.
fn strtod(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if s.is_empty() {
        return Some(0.0);
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.starts_with("nan") {
        return None;
    }
    if let Some(hex) = unsigned.strip_prefix("0x") {
        let v = u64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if lower.starts_with('-') { -v } else { v });
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() || unsigned.starts_with("inf")).then_some(v)
}

struct Item {
    element: Vec<u8>,
    /// The numeric weight (numeric sorts).
    score: f64,
    /// The weight's bytes (ALPHA with BY); `None` when the BY key is missing.
    weight: Option<Vec<u8>>,
}

fn sort(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let read_only = req.name().eq_ignore_ascii_case(b"sort_ro");
    let key = req.arg(1);
    let mut o = parse(req, read_only)?;
    // The elements, in the value's own order.
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = g.lookup(h, key, ctx.now_ms);
    let kind = slot.map(|s| g.kind(s));
    let mut elements: Vec<Vec<u8>> = match slot {
        None => Vec::new(),
        Some(s) if matches!(kind, Some(Kind::List | Kind::Set | Kind::ZSet)) => match g.collection(s) {
            Collection::List(l) => l.iter().map(<[u8]>::to_vec).collect(),
            Collection::Set(set) => set.iter().map(<[u8]>::to_vec).collect(),
            Collection::ZSet(z) => z.iter_ordered().into_iter().map(|(m, _)| m.to_vec()).collect(),
            Collection::Hash(_) => return Err(CmdError::WrongType),
        },
        Some(_) => return Err(CmdError::WrongType),
    };
    // Redis sorts a set it would otherwise leave in hash order when the result is stored, so that the
    // stored list is the same everywhere.
    if o.dont_sort && kind == Some(Kind::Set) && o.store.is_some() {
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let len = elements.len() as i64;
    let (mut start, mut end) = match o.limit {
        None => (0, len - 1),
        Some((offset, count)) => {
            let start = offset.max(0);
            let end = if count < 0 { len - 1 } else { start.saturating_add(count) - 1 };
            (start, end)
        }
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);
    if o.dont_sort {
        // Lists and sorted sets keep their order, reversed by DESC.
        if o.desc && kind != Some(Kind::Set) {
            elements.reverse();
        }
    } else {
        let mut items = Vec::with_capacity(elements.len());
        for element in elements {
            let weight = match o.by {
                Some(pattern) => lookup_pattern(ctx, pattern, &element)?,
                None => None,
            };
            let score = if o.alpha {
                0.0
            } else {
                match weight.as_deref().or(if o.by.is_none() { Some(&element[..]) } else { None }) {
                    Some(text) => strtod(text)
                        .ok_or(CmdError::Other("ERR One or more scores can't be converted into double".into()))?,
                    None => 0.0,
                }
            };
            items.push(Item { element, score, weight });
        }
        let by = o.by.is_some();
        let alpha = o.alpha;
        items.sort_by(|a, b| {
            let ord = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by {
                match (&a.weight, &b.weight) {
                    (Some(x), Some(y)) => x.cmp(y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                }
            } else {
                a.element.cmp(&b.element)
            };
            if o.desc {
                ord.reverse()
            } else {
                ord
            }
        });
        elements = items.into_iter().map(|i| i.element).collect();
    }
    let range: &[Vec<u8>] = if end >= start && start >= 0 { &elements[start as usize..=end as usize] } else { &[] };
    // The reply (or the stored list): each element, or what each GET pattern names for it.
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(range.len() * o.gets.len().max(1));
    for element in range {
        if o.gets.is_empty() {
            out.push(Some(element.clone()));
        }
        for pattern in &o.gets {
            out.push(lookup_pattern(ctx, pattern, element)?);
        }
    }
    match o.store {
        None => {
            ctx.out.array_len(out.len());
            for v in &out {
                match v {
                    Some(v) => ctx.out.bulk(v),
                    None => ctx.out.null(),
                }
            }
        }
        Some(dst) => {
            let hd = ctx.db.hash(dst);
            let mut to = ctx.db.stripe(hd)?;
            if let Some(old) = to.lookup(hd, dst, ctx.now_ms) {
                to.remove(old);
            }
            let n = out.len();
            if n > 0 {
                let mut list = List::new();
                for v in &out {
                    list.push_back(v.as_deref().unwrap_or(b""));
                }
                insert_value(ctx, dst, Value::Collection(Collection::List(list)), None)?;
            }
            ctx.out.integer(n as i64);
        }
    }
    Ok(())
}
