//! Sorted set commands: ZADD ZINCRBY ZREM ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK ZCOUNT ZLEXCOUNT ZRANGE
//! ZRANGESTORE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX ZREVRANGEBYLEX ZREMRANGEBYRANK
//! ZREMRANGEBYSCORE ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZMPOP ZRANDMEMBER ZSCAN ZUNION ZUNIONSTORE ZINTER
//! ZINTERSTORE ZINTERCARD ZDIFF ZDIFFSTORE.
//!
//! The blocking BZPOPMIN, BZPOPMAX and BZMPOP live with the connection's state machine; they call the
//! non-blocking cores here ([`pop`], [`mpop`]) when a key is ready.

use ringcache_common::resp::{format_double, ReplyBuf, ReplyWriter, Request};

use super::collection::{
    check_random_count, index_range, open_for_growth, parse_count, parse_cursor, parse_random_count, parse_scan,
    random_positions, read, settle, store_collection, write_scan_reply, RandomCount,
};
use super::lists::positive;
use super::strings::lookup_typed;
use super::{is, parse_f64, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{zset_member_cost, Collection, Kind, Set, Slot, StoreStripe, ZSet};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "zadd" => zadd,
        "zincrby" => zincrby,
        "zrem" => zrem,
        "zcard" => zcard,
        "zscore" => zscore,
        "zmscore" => zmscore,
        "zrank" => zrank,
        "zrevrank" => zrevrank,
        "zcount" => zcount,
        "zlexcount" => zlexcount,
        "zrange" => zrange,
        "zrangestore" => zrangestore,
        "zrevrange" => zrevrange,
        "zrangebyscore" => zrangebyscore,
        "zrevrangebyscore" => zrevrangebyscore,
        "zrangebylex" => zrangebylex,
        "zrevrangebylex" => zrevrangebylex,
        "zremrangebyrank" => zremrangebyrank,
        "zremrangebyscore" => zremrangebyscore,
        "zremrangebylex" => zremrangebylex,
        "zpopmin" => zpopmin,
        "zpopmax" => zpopmax,
        "zmpop" => zmpop,
        "zrandmember" => zrandmember,
        "zscan" => zscan,
        "zunion" => zunion,
        "zunionstore" => zunionstore,
        "zinter" => zinter,
        "zinterstore" => zinterstore,
        "zintercard" => zintercard,
        "zdiff" => zdiff,
        "zdiffstore" => zdiffstore,
        _ => return None,
    })
}

fn as_zset(c: &Collection) -> &ZSet {
    match c {
        Collection::ZSet(x) => x,
        _ => unreachable!("the key's kind was checked"),
    }
}

/// Members popped from a sorted set, with their scores, in pop order.
pub type Popped = Vec<(Vec<u8>, f64)>;

fn zset(g: &StoreStripe, slot: Slot) -> &ZSet {
    as_zset(g.collection(slot))
}

fn zset_mut(g: &mut StoreStripe, slot: Slot) -> &mut ZSet {
    match g.collection_mut(slot) {
        Collection::ZSet(z) => z,
        _ => unreachable!("the key's kind was checked"),
    }
}

fn other(msg: &str) -> CmdError {
    CmdError::Other(msg.into())
}

/// Looks up the zset at `key` for a read; `None` when missing.
fn read_zset<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<(&'c ZSet, &'c mut ReplyBuf)>, CmdError> {
    Ok(read(ctx, key, Kind::ZSet)?.map(|(c, out)| (as_zset(c), out)))
}

#[derive(Debug, Default, Clone, Copy)]
struct ZaddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What ZADD did, for its reply.
#[derive(Debug, Default)]
struct ZaddOutcome {
    added: i64,
    updated: i64,
    /// Pairs that were not skipped by NX/XX/GT/LT.
    processed: i64,
    /// The member's score after the last processed pair (ZADD INCR replies with it).
    score: f64,
}

/// Applies score/member `pairs` to `z` with Redis's `zsetAdd` rules; returns the outcome and the bytes
/// added. Fails (having changed nothing) only when INCR makes a score NaN, which needs a single pair.
fn zadd_apply(z: &mut ZSet, pairs: &[(f64, &[u8])], f: ZaddFlags) -> Result<(ZaddOutcome, usize), CmdError> {
    let mut out = ZaddOutcome::default();
    let mut grown = 0;
    for &(score, member) in pairs {
        match z.score(member) {
            Some(current) => {
                if f.nx {
                    continue;
                }
                let score = if f.incr { score + current } else { score };
                if score.is_nan() {
                    return Err(other("ERR resulting score is not a number (NaN)"));
                }
                if (f.lt && score >= current) || (f.gt && score <= current) {
                    continue;
                }
                out.processed += 1;
                out.score = score;
                if score != current {
                    z.insert(member, score);
                    out.updated += 1;
                }
            }
            None if f.xx => {}
            None => {
                z.insert(member, score);
                grown += zset_member_cost(member);
                out.added += 1;
                out.processed += 1;
                out.score = score;
            }
        }
    }
    Ok((out, grown))
}

/// Adds or updates `pairs` in the sorted set at `key` (creating it unless XX); the core of ZADD and
/// ZINCRBY.
fn zadd_to(ctx: &mut Ctx<'_>, key: &[u8], pairs: &[(f64, &[u8])], f: ZaddFlags) -> Result<ZaddOutcome, CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)?;
    if existing.is_none() && f.xx {
        // XX never creates the key.
        return Ok(ZaddOutcome::default());
    }
    // Only new members grow the set (a member named twice is counted twice: an over-estimate).
    let growth: usize = if f.xx {
        0
    } else {
        pairs
            .iter()
            .filter(|(_, m)| existing.is_none_or(|slot| zset(&g, slot).score(m).is_none()))
            .map(|(_, m)| zset_member_cost(m))
            .sum()
    };
    let slot = open_for_growth(&mut g, h, key, existing, growth, || Collection::ZSet(ZSet::new()))?;
    let applied = zadd_apply(zset_mut(&mut g, slot), pairs, f);
    let grown = applied.as_ref().map_or(0, |(_, grown)| *grown);
    settle(&mut g, slot, growth, grown as isize);
    Ok(applied?.0)
}

fn zadd(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut f = ZaddFlags::default();
    let mut i = 2;
    while i < req.argc() {
        let opt = req.arg(i);
        if is(opt, "NX") {
            f.nx = true;
        } else if is(opt, "XX") {
            f.xx = true;
        } else if is(opt, "GT") {
            f.gt = true;
        } else if is(opt, "LT") {
            f.lt = true;
        } else if is(opt, "CH") {
            f.ch = true;
        } else if is(opt, "INCR") {
            f.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = req.argc() - i;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if f.nx && f.xx {
        return Err(other("ERR XX and NX options at the same time are not compatible"));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(other("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if f.incr && rest > 2 {
        return Err(other("ERR INCR option supports a single increment-element pair"));
    }
    // Every score is checked before anything changes, so the command applies fully or not at all.
    let pairs = (i..req.argc())
        .step_by(2)
        .map(|j| Ok((parse_f64(req.arg(j))?, req.arg(j + 1))))
        .collect::<Result<Vec<(f64, &[u8])>, CmdError>>()?;
    let outcome = zadd_to(ctx, req.arg(1), &pairs, f)?;
    if f.incr {
        if outcome.processed > 0 {
            ctx.out.double(outcome.score);
        } else {
            ctx.out.null();
        }
    } else if f.ch {
        ctx.out.integer(outcome.added + outcome.updated);
    } else {
        ctx.out.integer(outcome.added);
    }
    Ok(())
}

fn zincrby(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let incr = parse_f64(req.arg(2))?;
    let f = ZaddFlags { incr: true, ..ZaddFlags::default() };
    let outcome = zadd_to(ctx, req.arg(1), &[(incr, req.arg(3))], f)?;
    ctx.out.double(outcome.score);
    Ok(())
}

fn zrem(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let z = zset_mut(&mut g, slot);
    let (mut removed, mut freed) = (0, 0);
    for member in req.args_from(2) {
        if z.remove(member).is_some() {
            removed += 1;
            freed += zset_member_cost(member);
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    ctx.out.integer(removed);
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let len = read_zset(ctx, req.arg(1))?.map_or(0, |(z, _)| z.len());
    ctx.out.integer(len as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    match read_zset(ctx, req.arg(1))?.and_then(|(z, _)| z.score(req.arg(2))) {
        Some(score) => ctx.out.double(score),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let found = read_zset(ctx, req.arg(1))?;
    let (z, out) = match found {
        Some((z, out)) => (Some(z), out),
        None => (None, &mut *ctx.out),
    };
    out.array_len(req.argc() - 2);
    for member in req.args_from(2) {
        match z.and_then(|z| z.score(member)) {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

fn rank_reply(ctx: &mut Ctx<'_>, req: &Request, reverse: bool) -> CmdResult {
    let rank = read_zset(ctx, req.arg(1))?
        .and_then(|(z, _)| z.rank(req.arg(2)).map(|r| if reverse { z.len() - 1 - r } else { r }));
    match rank {
        Some(r) => ctx.out.integer(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    rank_reply(ctx, req, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    rank_reply(ctx, req, true)
}

/// Parses a number the way C's `strtod` reads a whole argument (Redis's score ranges use it): leading
/// spaces allowed, the empty string is 0, `inf`/`infinity` in any case, NaN refused.
fn parse_strtod(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?.trim_start();
    if text.is_empty() {
        return Some(0.0);
    }
    let v: f64 = text.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// One end of a score range: a score, and whether it is excluded (`(` prefix).
#[derive(Debug, Clone, Copy)]
struct ScoreBound {
    value: f64,
    exclusive: bool,
}

impl ScoreBound {
    fn parse(arg: &[u8]) -> Result<ScoreBound, CmdError> {
        let (exclusive, text) = match arg.split_first() {
            Some((b'(', rest)) => (true, rest),
            _ => (false, arg),
        };
        let value = parse_strtod(text).ok_or_else(|| other("ERR min or max is not a float"))?;
        Ok(ScoreBound { value, exclusive })
    }
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, Copy)]
enum LexBound<'a> {
    NegInf,
    PosInf,
    Inclusive(&'a [u8]),
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    fn parse(arg: &'a [u8]) -> Result<LexBound<'a>, CmdError> {
        match arg.split_first() {
            Some((b'-', [])) => Ok(LexBound::NegInf),
            Some((b'+', [])) => Ok(LexBound::PosInf),
            Some((b'[', rest)) => Ok(LexBound::Inclusive(rest)),
            Some((b'(', rest)) => Ok(LexBound::Exclusive(rest)),
            _ => Err(other("ERR min or max not valid string range item")),
        }
    }
}

/// A range of a sorted set, as the commands give it.
#[derive(Debug, Clone, Copy)]
enum Range<'a> {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound<'a>, LexBound<'a>),
}

impl Range<'_> {
    /// The ascending ranks `[first, end)` of the members a score or lex range covers (for ranks, see
    /// [`rank_span`]).
    fn span(&self, z: &ZSet) -> (usize, usize) {
        match *self {
            Range::Rank(..) => (0, z.len()),
            Range::Score(min, max) => {
                let first = z.count_score_below(min.value, min.exclusive);
                let end = z.count_score_below(max.value, !max.exclusive);
                (first, end.max(first))
            }
            Range::Lex(min, max) => {
                let first = match min {
                    LexBound::NegInf => 0,
                    LexBound::PosInf => z.len(),
                    LexBound::Inclusive(m) => z.count_lex_below(m, false),
                    LexBound::Exclusive(m) => z.count_lex_below(m, true),
                };
                let end = match max {
                    LexBound::NegInf => 0,
                    LexBound::PosInf => z.len(),
                    LexBound::Inclusive(m) => z.count_lex_below(m, true),
                    LexBound::Exclusive(m) => z.count_lex_below(m, false),
                };
                (first, end.max(first))
            }
        }
    }
}

/// What a range query selects: the range, its direction, and LIMIT's offset and count (-1: all).
#[derive(Debug, Clone, Copy)]
struct Query<'a> {
    range: Range<'a>,
    reverse: bool,
    offset: i64,
    limit: i64,
}

/// The (member, score) pairs `q` selects, in reply order.
fn select<'z>(z: &'z ZSet, q: &Query<'_>) -> Vec<(&'z [u8], f64)> {
    let len = z.len();
    let (from, count) = match q.range {
        Range::Rank(start, stop) => match index_range(start, stop, len) {
            // Reverse ranks count from the highest score.
            Some((first, last)) if q.reverse => (len - 1 - first, last - first + 1),
            Some((first, last)) => (first, last - first + 1),
            None => return Vec::new(),
        },
        _ => {
            // Like Redis: a negative offset gives nothing, a negative count means all.
            if q.offset < 0 {
                return Vec::new();
            }
            let (first, end) = q.range.span(z);
            let offset = usize::try_from(q.offset).unwrap_or(usize::MAX);
            let available = (end - first).saturating_sub(offset);
            let count = if q.limit < 0 { available } else { available.min(q.limit as usize) };
            if count == 0 {
                return Vec::new();
            }
            let from = if q.reverse { end - 1 - offset } else { first + offset };
            (from, count)
        }
    };
    let mut out = Vec::with_capacity(count.min(len));
    let mut push = |m: &'z [u8], s: f64| {
        out.push((m, s));
        out.len() < count
    };
    if q.reverse {
        z.for_each_down(from, &mut push);
    } else {
        z.for_each_up(from, &mut push);
    }
    out
}

/// Which ZRANGE form a command is, as Redis's `zrangeGenericCommand` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Parses `<src> <min> <max> [options]` from `at` (ZRANGE and ZRANGESTORE: `kind` Auto, `reverse` None;
/// the legacy commands fix both). Checked in Redis's order: options, conflicts, the range.
fn parse_query<'r>(
    req: &'r Request,
    at: usize,
    store: bool,
    mut kind: RangeKind,
    mut reverse: Option<bool>,
) -> Result<(Query<'r>, bool), CmdError> {
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut i = at + 3;
    while i < req.argc() {
        let opt = req.arg(i);
        let left = req.argc() - i - 1;
        if !store && is(opt, "WITHSCORES") {
            withscores = true;
        } else if is(opt, "LIMIT") && left >= 2 {
            offset = parse_i64(req.arg(i + 1))?;
            limit = parse_i64(req.arg(i + 2))?;
            i += 2;
        } else if reverse.is_none() && is(opt, "REV") {
            reverse = Some(true);
        } else if kind == RangeKind::Auto && is(opt, "BYSCORE") {
            kind = RangeKind::Score;
        } else if kind == RangeKind::Auto && is(opt, "BYLEX") {
            kind = RangeKind::Lex;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let reverse = reverse.unwrap_or(false);
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit != -1 && kind == RangeKind::Rank {
        return Err(other("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(other("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // With REV, BYSCORE and BYLEX take the range as max then min.
    let (min_arg, max_arg) = if reverse && kind != RangeKind::Rank {
        (req.arg(at + 2), req.arg(at + 1))
    } else {
        (req.arg(at + 1), req.arg(at + 2))
    };
    let range = match kind {
        RangeKind::Score => Range::Score(ScoreBound::parse(min_arg)?, ScoreBound::parse(max_arg)?),
        RangeKind::Lex => Range::Lex(LexBound::parse(min_arg)?, LexBound::parse(max_arg)?),
        _ => Range::Rank(parse_i64(min_arg)?, parse_i64(max_arg)?),
    };
    Ok((Query { range, reverse, offset, limit }, withscores))
}

/// Writes members, or member/score pairs (nested in RESP3).
fn write_members(out: &mut ReplyBuf, found: &[(&[u8], f64)], withscores: bool) {
    if withscores {
        out.pairs_len(found.len());
        for (m, s) in found {
            out.pair();
            out.bulk(m);
            out.double(*s);
        }
    } else {
        out.array_len(found.len());
        for (m, _) in found {
            out.bulk(m);
        }
    }
}

fn range_reply(ctx: &mut Ctx<'_>, req: &Request, kind: RangeKind, reverse: Option<bool>) -> CmdResult {
    let (q, withscores) = parse_query(req, 1, false, kind, reverse)?;
    let Some((z, out)) = read_zset(ctx, req.arg(1))? else {
        ctx.out.array_len(0);
        return Ok(());
    };
    write_members(out, &select(z, &q), withscores);
    Ok(())
}

fn zrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    range_reply(ctx, req, RangeKind::Auto, None)
}

fn zrevrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    range_reply(ctx, req, RangeKind::Rank, Some(true))
}

fn zrangebyscore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    range_reply(ctx, req, RangeKind::Score, Some(false))
}

fn zrevrangebyscore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    range_reply(ctx, req, RangeKind::Score, Some(true))
}

fn zrangebylex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    range_reply(ctx, req, RangeKind::Lex, Some(false))
}

fn zrevrangebylex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    range_reply(ctx, req, RangeKind::Lex, Some(true))
}

/// Builds a sorted set (and its cost) from pairs.
fn build(pairs: impl IntoIterator<Item = (impl AsRef<[u8]>, f64)>) -> (ZSet, usize) {
    let mut z = ZSet::new();
    let mut cost = 0;
    for (m, s) in pairs {
        if z.insert(m.as_ref(), s) {
            cost += zset_member_cost(m.as_ref());
        }
    }
    (z, cost)
}

fn zrangestore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (q, _) = parse_query(req, 2, true, RangeKind::Auto, None)?;
    let found: Vec<(Vec<u8>, f64)> = match read_zset(ctx, req.arg(2))? {
        Some((z, _)) => select(z, &q).into_iter().map(|(m, s)| (m.to_vec(), s)).collect(),
        None => Vec::new(),
    };
    let n = found.len();
    let (z, cost) = build(found);
    store_collection(ctx, req.arg(1), Collection::ZSet(z), cost)?;
    ctx.out.integer(n as i64);
    Ok(())
}

fn count_in(ctx: &mut Ctx<'_>, req: &Request, range: Range<'_>) -> CmdResult {
    let n = read_zset(ctx, req.arg(1))?.map_or(0, |(z, _)| {
        let (first, end) = range.span(z);
        end - first
    });
    ctx.out.integer(n as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let range = Range::Score(ScoreBound::parse(req.arg(2))?, ScoreBound::parse(req.arg(3))?);
    count_in(ctx, req, range)
}

fn zlexcount(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let range = Range::Lex(LexBound::parse(req.arg(2))?, LexBound::parse(req.arg(3))?);
    count_in(ctx, req, range)
}

/// ZREMRANGEBY*: removes the members `range` covers; replies how many.
fn remove_range(ctx: &mut Ctx<'_>, req: &Request, range: Range<'_>) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)? else {
        ctx.out.integer(0);
        return Ok(());
    };
    let z = zset_mut(&mut g, slot);
    let (first, end) = match range {
        Range::Rank(start, stop) => index_range(start, stop, z.len()).map_or((0, 0), |(a, b)| (a, b + 1)),
        _ => range.span(z),
    };
    let mut freed = 0;
    for _ in first..end {
        let (m, _) = z.remove_rank(first);
        freed += zset_member_cost(&m);
    }
    settle(&mut g, slot, 0, -(freed as isize));
    ctx.out.integer((end - first) as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let range = Range::Rank(parse_i64(req.arg(2))?, parse_i64(req.arg(3))?);
    remove_range(ctx, req, range)
}

fn zremrangebyscore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let range = Range::Score(ScoreBound::parse(req.arg(2))?, ScoreBound::parse(req.arg(3))?);
    remove_range(ctx, req, range)
}

fn zremrangebylex(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let range = Range::Lex(LexBound::parse(req.arg(2))?, LexBound::parse(req.arg(3))?);
    remove_range(ctx, req, range)
}

/// Pops up to `count` members with the lowest (or, with `max`, highest) scores from the sorted set at
/// `key`, deleting it when emptied. `None` when the key does not exist; `WRONGTYPE` when it is not a
/// sorted set. The core of ZPOPMIN, ZPOPMAX, ZMPOP and the blocking pops.
pub fn pop(ctx: &mut Ctx<'_>, key: &[u8], max: bool, count: usize) -> Result<Option<Popped>, CmdError> {
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)? else {
        return Ok(None);
    };
    let z = zset_mut(&mut g, slot);
    let take = count.min(z.len());
    let mut popped = Vec::with_capacity(take);
    let mut freed = 0;
    for _ in 0..take {
        let rank = if max { z.len() - 1 } else { 0 };
        let (m, s) = z.remove_rank(rank);
        freed += zset_member_cost(&m);
        popped.push((m.into_vec(), s));
    }
    settle(&mut g, slot, 0, -(freed as isize));
    Ok(Some(popped))
}

fn pop_command(ctx: &mut Ctx<'_>, req: &Request, max: bool) -> CmdResult {
    if req.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    // Without a count the reply is one flat pair; with one, a list of pairs (nested in RESP3).
    let given = req.get(2).map(parse_count).transpose()?;
    let popped = pop(ctx, req.arg(1), max, given.unwrap_or(1))?.unwrap_or_default();
    if given.is_some() {
        ctx.out.pairs_len(popped.len());
    } else {
        ctx.out.array_len(popped.len() * 2);
    }
    for (m, s) in &popped {
        if given.is_some() {
            ctx.out.pair();
        }
        ctx.out.bulk(m);
        ctx.out.double(*s);
    }
    Ok(())
}

fn zpopmin(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    pop_command(ctx, req, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    pop_command(ctx, req, true)
}

/// Pops up to `count` members from the first non-empty sorted set among `keys`; the key and what was
/// popped, or `None` when every key is missing. The core of ZMPOP and BZMPOP.
pub fn mpop(ctx: &mut Ctx<'_>, keys: &[&[u8]], max: bool, count: usize) -> Result<Option<(Vec<u8>, Popped)>, CmdError> {
    for key in keys {
        if let Some(popped) = pop(ctx, key, max, count)? {
            if !popped.is_empty() {
                return Ok(Some((key.to_vec(), popped)));
            }
        }
    }
    Ok(None)
}

/// The arguments of ZMPOP/BZMPOP from `numkeys_at`: `numkeys key... MIN|MAX [COUNT count]`; (keys, max,
/// count).
pub fn parse_mpop(req: &Request, numkeys_at: usize) -> Result<(Vec<&[u8]>, bool, usize), CmdError> {
    let numkeys = positive(req.arg(numkeys_at), "numkeys should be greater than 0")?;
    let where_at = numkeys_at.saturating_add(numkeys).saturating_add(1);
    if where_at >= req.argc() {
        return Err(CmdError::Syntax);
    }
    let max = if is(req.arg(where_at), "MIN") {
        false
    } else if is(req.arg(where_at), "MAX") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count = None;
    let mut i = where_at + 1;
    while i < req.argc() {
        match req.get(i + 1) {
            Some(value) if count.is_none() && is(req.arg(i), "COUNT") => {
                count = Some(positive(value, "count should be greater than 0")?);
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 2;
    }
    Ok(((numkeys_at + 1..where_at).map(|i| req.arg(i)).collect(), max, count.unwrap_or(1)))
}

/// Writes ZMPOP's reply: `[key, [[member, score], ...]]`, or a null array.
pub fn write_mpop_reply(out: &mut ReplyBuf, popped: Option<(Vec<u8>, Popped)>) {
    match popped {
        Some((key, items)) => {
            out.array_len(2);
            out.bulk(&key);
            out.array_len(items.len());
            for (m, s) in &items {
                out.array_len(2);
                out.bulk(m);
                out.double(*s);
            }
        }
        None => out.null_array(),
    }
}

fn zmpop(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (keys, max, count) = parse_mpop(req, 1)?;
    let popped = mpop(ctx, &keys, max, count)?;
    write_mpop_reply(ctx.out, popped);
    Ok(())
}

fn zrandmember(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let count = match req.get(2) {
        Some(arg) => {
            let n = parse_random_count(arg)?;
            let with_scores = match req.get(3) {
                None => false,
                Some(opt) if req.argc() == 4 && is(opt, "WITHSCORES") => true,
                Some(_) => return Err(CmdError::Syntax),
            };
            Some(check_random_count(n, with_scores, ctx.shared.config.limits.max_multibulk_len)?)
        }
        None => None,
    };
    let mut rng = rand::rng();
    let Some((z, out)) = read_zset(ctx, req.arg(1))? else {
        match count {
            Some(_) => ctx.out.array_len(0),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    let Some(RandomCount { count, distinct, with_scores }) = count else {
        out.bulk(z.at_position(rand::Rng::random_range(&mut rng, 0..z.len())).0);
        return Ok(());
    };
    let picks: Vec<(&[u8], f64)> =
        random_positions(z.len(), count, distinct, &mut rng).into_iter().map(|p| z.at_position(p)).collect();
    write_members(out, &picks, with_scores);
    Ok(())
}

fn zscan(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    parse_cursor(req.arg(2))?;
    let Some((z, out)) = read_zset(ctx, req.arg(1))? else {
        write_scan_reply(ctx.out, 0, &[]);
        return Ok(());
    };
    let scan = parse_scan(req, 3, false)?;
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = z.scan(scan.cursor, scan.count, |m, s| {
        if scan.matches(m) {
            found.push(m.to_vec());
            found.push(format_double(s).into_bytes());
        }
    });
    write_scan_reply(out, next, &found);
    Ok(())
}

/// How ZUNION/ZINTER combine the scores of a member found in several inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: f64, v: f64) -> f64 {
        match self {
            // inf + -inf is NaN; Redis makes it 0.
            Aggregate::Sum => {
                let s = acc + v;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => acc.min(v),
            Aggregate::Max => acc.max(v),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ZOp {
    Union,
    Inter,
    Diff,
}

/// One input of ZUNION/ZINTER/ZDIFF: a sorted set or a set (whose members score 1), read where it lies.
enum Input<'a> {
    ZSet(&'a ZSet),
    Set(&'a Set),
}

impl Input<'_> {
    fn len(&self) -> usize {
        match self {
            Input::ZSet(z) => z.len(),
            Input::Set(s) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Input::ZSet(z) => z.score(member),
            Input::Set(s) => s.contains(member).then_some(1.0),
        }
    }

    fn for_each<'s>(&'s self, mut f: impl FnMut(&'s [u8], f64)) {
        match self {
            Input::ZSet(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Input::Set(s) => s.iter().for_each(|m| f(m, 1.0)),
        }
    }
}

/// The parsed arguments of ZUNION/ZINTER/ZDIFF(STORE)/ZINTERCARD after the numkeys at `numkeys_at`.
struct Combine<'r> {
    keys: Vec<&'r [u8]>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Parses `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES] | [LIMIT n]` in Redis's
/// order; the keys' types are checked (by `check_types`) after the count and before the options.
fn parse_combine<'r>(
    ctx: &mut Ctx<'_>,
    req: &'r Request,
    numkeys_at: usize,
    op: ZOp,
    store: bool,
    cardinality_only: bool,
) -> Result<Combine<'r>, CmdError> {
    let numkeys = parse_i64(req.arg(numkeys_at))?;
    if numkeys < 1 {
        let name = req_name(req);
        return Err(CmdError::Other(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let numkeys = numkeys as usize;
    if numkeys > req.argc() - (numkeys_at + 1) {
        return Err(CmdError::Syntax);
    }
    let keys: Vec<&[u8]> = (numkeys_at + 1..numkeys_at + 1 + numkeys).map(|i| req.arg(i)).collect();
    for key in &keys {
        let h = ctx.db.hash(key);
        let mut g = ctx.db.stripe(h)?;
        if let Some(slot) = g.lookup(h, key, ctx.now_ms) {
            if !matches!(g.kind(slot), Kind::ZSet | Kind::Set) {
                return Err(CmdError::WrongType);
            }
        }
    }
    let mut c = Combine { keys, weights: vec![1.0; numkeys], aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    let mut j = numkeys_at + 1 + numkeys;
    while j < req.argc() {
        let remaining = req.argc() - j;
        let opt = req.arg(j);
        if op != ZOp::Diff && remaining > numkeys && is(opt, "WEIGHTS") {
            for w in c.weights.iter_mut() {
                j += 1;
                *w = parse_f64(req.arg(j)).map_err(|_| other("ERR weight value is not a float"))?;
            }
            j += 1;
        } else if op != ZOp::Diff && remaining >= 2 && is(opt, "AGGREGATE") {
            let a = req.arg(j + 1);
            c.aggregate = if is(a, "SUM") {
                Aggregate::Sum
            } else if is(a, "MIN") {
                Aggregate::Min
            } else if is(a, "MAX") {
                Aggregate::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if !store && !cardinality_only && is(opt, "WITHSCORES") {
            c.withscores = true;
            j += 1;
        } else if cardinality_only && remaining >= 2 && is(opt, "LIMIT") {
            c.limit = parse_i64(req.arg(j + 1))
                .ok()
                .filter(|&n| n >= 0)
                .ok_or_else(|| other("ERR LIMIT can't be negative"))? as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(c)
}

fn req_name(req: &Request) -> String {
    String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase()
}

/// Computes a union, intersection or difference; the result as a sorted set (with its cost), or just its
/// cardinality up to `limit` (ZINTERCARD).
fn combine(
    ctx: &mut Ctx<'_>,
    c: &Combine<'_>,
    op: ZOp,
    cardinality_only: bool,
) -> Result<(ZSet, usize, usize), CmdError> {
    let mut found = Vec::with_capacity(c.keys.len());
    for key in &c.keys {
        let h = ctx.db.hash(key);
        let mut g = ctx.db.stripe(h)?;
        found.push(g.lookup(h, key, ctx.now_ms).map(|slot| (h, slot)));
    }
    let db = &ctx.db;
    let mut inputs: Vec<Option<(Input<'_>, f64)>> = Vec::with_capacity(found.len());
    for (f, &w) in found.into_iter().zip(&c.weights) {
        inputs.push(match f {
            Some((h, slot)) => {
                let g = db.peek(h)?;
                Some(match g.collection(slot) {
                    Collection::ZSet(z) => (Input::ZSet(z), w),
                    Collection::Set(s) => (Input::Set(s), w),
                    _ => return Err(CmdError::WrongType),
                })
            }
            None => None,
        })
    }
    let weighted = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut pairs: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut cardinality = 0;
    match op {
        ZOp::Union => {
            let mut acc: hashbrown::HashMap<&[u8], f64> = hashbrown::HashMap::new();
            for (input, w) in inputs.iter().flatten() {
                input.for_each(|m, s| {
                    let v = weighted(s, *w);
                    acc.entry(m).and_modify(|a| *a = c.aggregate.apply(*a, v)).or_insert(v);
                });
            }
            // The map borrows the inputs' members; copy them out.
            pairs = acc.into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
        }
        ZOp::Inter => {
            if inputs.iter().all(Option::is_some) && !inputs.is_empty() {
                let mut order: Vec<usize> = (0..inputs.len()).collect();
                order.sort_by_key(|&i| inputs[i].as_ref().map_or(0, |(inp, _)| inp.len()));
                let (first, rest) = order.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
                if let Some((smallest, w0)) = &inputs[first] {
                    smallest.for_each(|m, s| {
                        if c.limit != 0 && cardinality >= c.limit {
                            return;
                        }
                        let mut score = weighted(s, *w0);
                        for &i in rest {
                            let Some((input, w)) = &inputs[i] else { return };
                            match input.score(m) {
                                Some(other) => score = c.aggregate.apply(score, weighted(other, *w)),
                                None => return,
                            }
                        }
                        cardinality += 1;
                        if !cardinality_only {
                            pairs.push((m.to_vec(), score));
                        }
                    });
                }
            }
        }
        ZOp::Diff => {
            if let Some(Some((first, _))) = inputs.first() {
                first.for_each(|m, s| {
                    if !inputs[1..].iter().flatten().any(|(other, _)| other.score(m).is_some()) {
                        pairs.push((m.to_vec(), s));
                    }
                });
            }
        }
    }
    if cardinality_only {
        return Ok((ZSet::new(), 0, cardinality));
    }
    let n = pairs.len();
    let (z, cost) = build(pairs);
    Ok((z, cost, n))
}

fn combine_reply(ctx: &mut Ctx<'_>, req: &Request, op: ZOp) -> CmdResult {
    let c = parse_combine(ctx, req, 1, op, false, false)?;
    let (z, _, _) = combine(ctx, &c, op, false)?;
    write_members(ctx.out, &z.iter_ordered(), c.withscores);
    Ok(())
}

fn combine_store(ctx: &mut Ctx<'_>, req: &Request, op: ZOp) -> CmdResult {
    let c = parse_combine(ctx, req, 2, op, true, false)?;
    let (z, cost, n) = combine(ctx, &c, op, false)?;
    store_collection(ctx, req.arg(1), Collection::ZSet(z), cost)?;
    ctx.out.integer(n as i64);
    Ok(())
}

fn zunion(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    combine_reply(ctx, req, ZOp::Union)
}

fn zinter(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    combine_reply(ctx, req, ZOp::Inter)
}

fn zdiff(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    combine_reply(ctx, req, ZOp::Diff)
}

fn zunionstore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    combine_store(ctx, req, ZOp::Union)
}

fn zinterstore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    combine_store(ctx, req, ZOp::Inter)
}

fn zdiffstore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    combine_store(ctx, req, ZOp::Diff)
}

fn zintercard(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let c = parse_combine(ctx, req, 1, ZOp::Inter, false, true)?;
    let (_, _, n) = combine(ctx, &c, ZOp::Inter, true)?;
    ctx.out.integer(n as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_ranges_parse_like_strtod() {
        assert_eq!(parse_strtod(b" 1.5"), Some(1.5));
        assert_eq!(parse_strtod(b""), Some(0.0));
        assert_eq!(parse_strtod(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_strtod(b"nan"), None);
        assert_eq!(parse_strtod(b"1x"), None);
        assert!(ScoreBound::parse(b"(2").unwrap().exclusive);
        assert!(LexBound::parse(b"x").is_err());
    }

    #[test]
    fn aggregates_follow_redis() {
        assert_eq!(Aggregate::Sum.apply(f64::INFINITY, f64::NEG_INFINITY), 0.0);
        assert_eq!(Aggregate::Min.apply(1.0, 2.0), 1.0);
        assert_eq!(Aggregate::Max.apply(1.0, 2.0), 2.0);
    }
}
