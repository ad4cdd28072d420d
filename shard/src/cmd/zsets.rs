//! Sorted set commands: ZADD ZPOPMIN ZRANGE ZCARD ZSCORE.

use std::ops::Bound;

use ringcache_common::resp::{ReplyWriter, Request};

use super::collection::{index_range, parse_count};
use super::collection::{open_for_growth, settle};
use super::strings::lookup_typed;
use super::{is, parse_f64, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::store::{zset_member_cost, Collection, Kind, Score, Slot, StoreStripe, ZSet};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "zadd" => zadd,
        "zpopmin" => zpopmin,
        "zrange" => zrange,
        "zcard" => zcard,
        "zscore" => zscore,
        _ => return None,
    })
}

fn zset(g: &StoreStripe, slot: Slot) -> &ZSet {
    match g.collection(slot) {
        Collection::ZSet(z) => z,
        _ => unreachable!("the key's kind was checked"),
    }
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
        match z.scores.get(member).copied() {
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
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let existing = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)?;
    let outcome = if existing.is_none() && f.xx {
        // XX never creates the key.
        ZaddOutcome::default()
    } else {
        // Only new members grow the set (a member named twice is counted twice: an over-estimate).
        let growth: usize = if f.xx {
            0
        } else {
            pairs
                .iter()
                .filter(|(_, m)| existing.is_none_or(|slot| !zset(&g, slot).scores.contains_key(*m)))
                .map(|(_, m)| zset_member_cost(m))
                .sum()
        };
        let slot = open_for_growth(&mut g, h, key, existing, growth, || Collection::ZSet(ZSet::default()))?;
        let applied = zadd_apply(zset_mut(&mut g, slot), &pairs, f);
        let grown = applied.as_ref().map_or(0, |(_, grown)| *grown);
        settle(&mut g, slot, growth, grown as isize);
        applied?.0
    };
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

fn zpopmin(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    if req.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    // Without a count the reply is one flat pair; with one, a list of pairs (nested in RESP3).
    let given = req.get(2).map(parse_count).transpose()?;
    let count = given.unwrap_or(1);
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)? else {
        ctx.out.array_len(0);
        return Ok(());
    };
    let z = zset_mut(&mut g, slot);
    let take = count.min(z.len());
    if given.is_some() {
        ctx.out.pairs_len(take);
    } else {
        ctx.out.array_len(take * 2);
    }
    let mut freed = 0;
    for _ in 0..take {
        if let Some((member, score)) = z.pop_min() {
            freed += zset_member_cost(&member);
            if given.is_some() {
                ctx.out.pair();
            }
            ctx.out.bulk(&member);
            ctx.out.double(score);
        }
    }
    settle(&mut g, slot, 0, -(freed as isize));
    Ok(())
}

/// One end of a BYSCORE range: a score, and whether it is excluded (`(` prefix).
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
        let value = parse_f64(text).map_err(|_| other("ERR min or max is not a float"))?;
        Ok(ScoreBound { value, exclusive })
    }

    fn above_min(self, score: f64) -> bool {
        if self.exclusive {
            score > self.value
        } else {
            score >= self.value
        }
    }

    fn below_max(self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

/// One end of a BYLEX range: `-`, `+`, `[member` or `(member`.
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

    fn above_min(self, member: &[u8]) -> bool {
        match self {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Inclusive(m) => member >= m,
            LexBound::Exclusive(m) => member > m,
        }
    }

    fn below_max(self, member: &[u8]) -> bool {
        match self {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Inclusive(m) => member <= m,
            LexBound::Exclusive(m) => member < m,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// The next value after `x` in `f64::total_cmp` order (so that `(Score(next), [])` bounds every
/// `(Score(x), member)` from above).
fn next_in_total_order(x: f64) -> f64 {
    if x == 0.0 && x.is_sign_negative() {
        return 0.0;
    }
    let bits = x.to_bits();
    f64::from_bits(if x.is_sign_negative() { bits - 1 } else { bits + 1 })
}

/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES], parsed and checked
/// in Redis's order: options, conflicts, the range itself, then the key.
fn zrange(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut withscores = false;
    let mut rev = false;
    let mut kind: Option<RangeKind> = None;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut i = 4;
    while i < req.argc() {
        let opt = req.arg(i);
        let left = req.argc() - i - 1;
        if is(opt, "WITHSCORES") {
            withscores = true;
        } else if is(opt, "LIMIT") && left >= 2 {
            offset = parse_i64(req.arg(i + 1))?;
            limit = parse_i64(req.arg(i + 2))?;
            i += 2;
        } else if !rev && is(opt, "REV") {
            rev = true;
        } else if kind.is_none() && is(opt, "BYSCORE") {
            kind = Some(RangeKind::Score);
        } else if kind.is_none() && is(opt, "BYLEX") {
            kind = Some(RangeKind::Lex);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let kind = kind.unwrap_or(RangeKind::Rank);
    if limit != -1 && kind == RangeKind::Rank {
        return Err(other("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && kind == RangeKind::Lex {
        return Err(other("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // With REV, BYSCORE and BYLEX take the range as max then min.
    let (min_arg, max_arg) =
        if rev && kind != RangeKind::Rank { (req.arg(3), req.arg(2)) } else { (req.arg(2), req.arg(3)) };
    enum Range<'a> {
        Rank(i64, i64),
        Score(ScoreBound, ScoreBound),
        Lex(LexBound<'a>, LexBound<'a>),
    }
    let range = match kind {
        RangeKind::Rank => Range::Rank(parse_i64(min_arg)?, parse_i64(max_arg)?),
        RangeKind::Score => Range::Score(ScoreBound::parse(min_arg)?, ScoreBound::parse(max_arg)?),
        RangeKind::Lex => Range::Lex(LexBound::parse(min_arg)?, LexBound::parse(max_arg)?),
    };
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let Some(slot) = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)? else {
        ctx.out.array_len(0);
        return Ok(());
    };
    let z = zset(&g, slot);
    let found: Vec<&(Score, Box<[u8]>)> = match range {
        Range::Rank(start, stop) => match index_range(start, stop, z.len()) {
            Some((first, last)) => {
                let n = last - first + 1;
                if rev {
                    z.order.iter().rev().skip(first).take(n).collect()
                } else {
                    z.order.iter().skip(first).take(n).collect()
                }
            }
            None => Vec::new(),
        },
        // Like Redis: an offset past the end or a negative one gives nothing, a negative limit means all.
        _ if offset < 0 || (offset > 0 && offset as u64 >= z.len() as u64) => Vec::new(),
        Range::Score(min, max) => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let offset = offset as usize;
            if rev {
                // `0.0` and `-0.0` are equal scores but distinct in the set's total order.
                let max_value = if max.value == 0.0 { 0.0 } else { max.value };
                let upper = (Score(next_in_total_order(max_value)), Box::<[u8]>::default());
                z.order
                    .range((Bound::Unbounded, Bound::Excluded(upper)))
                    .rev()
                    .skip_while(|(s, _)| !max.below_max(s.0))
                    .take_while(|(s, _)| min.above_min(s.0))
                    .skip(offset)
                    .take(limit)
                    .collect()
            } else {
                let min_value = if min.value == 0.0 { -0.0 } else { min.value };
                let lower = (Score(min_value), Box::<[u8]>::default());
                z.order
                    .range((Bound::Included(lower), Bound::Unbounded))
                    .skip_while(|(s, _)| !min.above_min(s.0))
                    .take_while(|(s, _)| max.below_max(s.0))
                    .skip(offset)
                    .take(limit)
                    .collect()
            }
        }
        // Lexicographic ranges assume every member has the same score, as in Redis.
        Range::Lex(min, max) => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let offset = offset as usize;
            if rev {
                z.order
                    .iter()
                    .rev()
                    .skip_while(|(_, m)| !max.below_max(m))
                    .take_while(|(_, m)| min.above_min(m))
                    .skip(offset)
                    .take(limit)
                    .collect()
            } else {
                z.order
                    .iter()
                    .skip_while(|(_, m)| !min.above_min(m))
                    .take_while(|(_, m)| max.below_max(m))
                    .skip(offset)
                    .take(limit)
                    .collect()
            }
        }
    };
    if withscores {
        ctx.out.pairs_len(found.len());
        for (score, member) in found {
            ctx.out.pair();
            ctx.out.bulk(member);
            ctx.out.double(score.0);
        }
    } else {
        ctx.out.array_len(found.len());
        for (_, member) in found {
            ctx.out.bulk(member);
        }
    }
    Ok(())
}

fn zcard(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let key = req.arg(1);
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)?;
    let len = slot.map_or(0, |slot| zset(&g, slot).len());
    ctx.out.integer(len as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (key, member) = (req.arg(1), req.arg(2));
    let h = ctx.db.hash(key);
    let mut g = ctx.db.stripe(h)?;
    let slot = lookup_typed(&mut g, h, key, Kind::ZSet, ctx.now_ms)?;
    match slot.and_then(|slot| zset(&g, slot).scores.get(member).copied()) {
        Some(score) => ctx.out.double(score),
        None => ctx.out.null(),
    }
    Ok(())
}
