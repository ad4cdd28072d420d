//! Blocking commands: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP.
//!
//! Each first tries its non-blocking core (`lists::pop`, `lists::move_element`, `lists::mpop`,
//! `zsets::pop`, `zsets::mpop`) on the stripes it holds. If there is nothing, it registers with
//! [`crate::blocking::Blocking`] (the stripes still held) and leaves a [`Deferred::Blocked`] for its
//! connection, which waits. [`serve_blocked`] runs after every write that touched a key someone waits on,
//! with that write's stripes still held: the waiters are served in arrival order, each with its own
//! command run for it on that key. Inside MULTI or a script a blocking command does not block: it answers
//! as if its timeout had passed, as in Redis.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use super::lists::{self, Side};
use super::zsets;
use super::{execute_inside, CmdError, CmdResult, Ctx, Deferred, Handler};
use crate::blocking::{Waiter, Wake};

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" => blocking,
        _ => return None,
    })
}

/// What a blocking command does once there is something.
#[derive(Debug)]
enum Op<'r> {
    /// BLPOP/BRPOP: one element from the first non-empty list.
    Pop { keys: Vec<&'r [u8]>, side: Side },
    /// BLMPOP: up to `count` elements from the first non-empty list.
    MPop { keys: Vec<&'r [u8]>, side: Side, count: usize },
    /// BLMOVE/BRPOPLPUSH.
    Move { src: &'r [u8], dst: &'r [u8], from: Side, to: Side },
    /// BZPOPMIN/BZPOPMAX: one member from the first non-empty sorted set.
    ZPop { keys: Vec<&'r [u8]>, max: bool },
    /// BZMPOP.
    ZMPop { keys: Vec<&'r [u8]>, max: bool, count: usize },
}

impl Op<'_> {
    fn keys(&self) -> Vec<&[u8]> {
        match self {
            Op::Pop { keys, .. } | Op::MPop { keys, .. } | Op::ZPop { keys, .. } | Op::ZMPop { keys, .. } => {
                keys.clone()
            }
            Op::Move { src, .. } => vec![*src],
        }
    }
}

/// Redis's timeout argument: seconds as a double; 0 blocks forever.
fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let text = std::str::from_utf8(arg).map_err(|_| not_a_timeout())?;
    let secs: f64 = text.trim().parse().map_err(|_| not_a_timeout())?;
    if text.trim() != text || !secs.is_finite() {
        return Err(not_a_timeout());
    }
    if secs < 0.0 {
        return Err(CmdError::Other("ERR timeout is negative".into()));
    }
    if secs == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs).map(Some).map_err(|_| not_a_timeout())
}

fn not_a_timeout() -> CmdError {
    CmdError::Other("ERR timeout is not a float or out of range".into())
}

fn parse(req: &Request) -> Result<(Op<'_>, Option<Duration>), CmdError> {
    let name = req.name().to_ascii_lowercase();
    let last = req.arg(req.argc() - 1);
    Ok(match name.as_slice() {
        b"blpop" | b"brpop" => {
            let side = if name == b"blpop" { Side::Left } else { Side::Right };
            let keys = req.args_from(1).take(req.argc() - 2).collect();
            (Op::Pop { keys, side }, parse_timeout(last)?)
        }
        b"bzpopmin" | b"bzpopmax" => {
            let keys = req.args_from(1).take(req.argc() - 2).collect();
            (Op::ZPop { keys, max: name == b"bzpopmax" }, parse_timeout(last)?)
        }
        b"blmove" => {
            let (from, to) = (Side::parse(req.arg(3))?, Side::parse(req.arg(4))?);
            (Op::Move { src: req.arg(1), dst: req.arg(2), from, to }, parse_timeout(req.arg(5))?)
        }
        b"brpoplpush" => (
            Op::Move { src: req.arg(1), dst: req.arg(2), from: Side::Right, to: Side::Left },
            parse_timeout(req.arg(3))?,
        ),
        b"blmpop" => {
            let timeout = parse_timeout(req.arg(1))?;
            let (keys, side, count) = lists::parse_mpop(req, 2)?;
            (Op::MPop { keys, side, count }, timeout)
        }
        _ => {
            let timeout = parse_timeout(req.arg(1))?;
            let (keys, max, count) = zsets::parse_mpop(req, 2)?;
            (Op::ZMPop { keys, max, count }, timeout)
        }
    })
}

/// What serving a waiter took, to be put back if its connection turns out to be gone.
enum Taken {
    List { key: Vec<u8>, side: Side, items: Vec<Vec<u8>> },
    ZSet { key: Vec<u8>, members: Vec<(Vec<u8>, f64)> },
    Nothing,
}

/// Runs `op` on the stripes `ctx.db` holds (only on `key`, when given); writes its reply and returns what
/// it took, or `None` when there was nothing to take.
fn try_op(ctx: &mut Ctx<'_>, op: &Op<'_>, key: Option<&[u8]>) -> Result<Option<Taken>, CmdError> {
    let keys: Vec<&[u8]> = match key {
        Some(k) => vec![k],
        None => op.keys(),
    };
    match op {
        Op::Pop { side, .. } => {
            for k in keys {
                if let Some(items) = lists::pop(ctx, k, *side, 1)?.filter(|i| !i.is_empty()) {
                    ctx.out.array_len(2);
                    ctx.out.bulk(k);
                    ctx.out.bulk(&items[0]);
                    return Ok(Some(Taken::List { key: k.to_vec(), side: *side, items }));
                }
            }
            Ok(None)
        }
        Op::MPop { side, count, .. } => match lists::mpop(ctx, &keys, *side, *count)? {
            Some((k, items)) => {
                ctx.out.array_len(2);
                ctx.out.bulk(&k);
                ctx.out.array_len(items.len());
                for item in &items {
                    ctx.out.bulk(item);
                }
                Ok(Some(Taken::List { key: k, side: *side, items }))
            }
            None => Ok(None),
        },
        Op::ZPop { max, .. } => {
            for k in keys {
                if let Some(members) = zsets::pop(ctx, k, *max, 1)?.filter(|m| !m.is_empty()) {
                    ctx.out.array_len(3);
                    ctx.out.bulk(k);
                    ctx.out.bulk(&members[0].0);
                    ctx.out.double(members[0].1);
                    return Ok(Some(Taken::ZSet { key: k.to_vec(), members }));
                }
            }
            Ok(None)
        }
        Op::ZMPop { max, count, .. } => match zsets::mpop(ctx, &keys, *max, *count)? {
            Some((k, members)) => {
                zsets::write_mpop_reply(ctx.out, Some((k.clone(), members.clone())));
                Ok(Some(Taken::ZSet { key: k, members }))
            }
            None => Ok(None),
        },
        Op::Move { src, dst, from, to } => match lists::move_element(ctx, src, dst, *from, *to)? {
            Some(item) => {
                ctx.out.bulk(&item);
                Ok(Some(Taken::Nothing))
            }
            None => Ok(None),
        },
    }
}

/// The reply of a blocking command whose time ran out (also inside MULTI and scripts).
fn timed_out(out: &mut ReplyBuf) {
    out.null_array();
}

fn blocking(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (op, timeout) = parse(req)?;
    if try_op(ctx, &op, None)?.is_some() {
        return Ok(());
    }
    // A transaction or script never waits: it gets what a timeout gives (a null for the moves, as Redis).
    if ctx.db.is_pinned() {
        if matches!(op, Op::Move { .. }) {
            ctx.out.null();
        } else {
            timed_out(ctx.out);
        }
        return Ok(());
    }
    let keys: Vec<Bytes> = op.keys().into_iter().map(Bytes::copy_from_slice).collect();
    let front = std::mem::take(&mut ctx.retrying);
    let (waiter, wake) = ctx.shared.blocking.block(ctx.client.id, req.clone(), keys, ctx.out.proto(), front);
    let deadline = timeout.map(|t| Instant::now() + t);
    *ctx.deferred = Some(Deferred::Blocked { waiter, wake, deadline });
    Ok(())
}

/// After a write that touched `keys`, with its stripes still held: serves the clients blocked on them,
/// first come first served, as long as there is something to take.
pub fn serve_blocked(ctx: &mut Ctx<'_>, keys: &[Bytes]) {
    let blocking = &ctx.shared.blocking;
    let logging = ctx.store.aof().is_some();
    for key in keys {
        if logging && blocking.is_watched(key) {
            // What the waiters take is logged with the write that fed them.
            crate::aof::touch(ctx.db.hash(key), key);
        }
        while blocking.is_watched(key) {
            let Some(waiter) = blocking.take_first(key) else { break };
            match serve_one(ctx, &waiter, key) {
                Served::Done => {}
                Served::Empty => {
                    blocking.put_back(waiter);
                    break;
                }
                // It needs more than this key's stripe: it runs its command again itself, keeping its turn
                // (the others wait behind it).
                Served::Retry => {
                    waiter.wake(Wake::Retry);
                    break;
                }
            }
        }
    }
}

enum Served {
    Done,
    Empty,
    Retry,
}

fn serve_one(ctx: &mut Ctx<'_>, waiter: &Waiter, key: &[u8]) -> Served {
    let Ok((op, _)) = parse(&waiter.request) else { return Served::Done };
    if matches!(op, Op::Move { .. }) {
        return Served::Retry;
    }
    let mut reply = ReplyBuf::new(waiter.proto);
    std::mem::swap(ctx.out, &mut reply);
    let taken = try_op(ctx, &op, Some(key));
    std::mem::swap(ctx.out, &mut reply);
    match taken {
        Ok(Some(taken)) => {
            if !waiter.wake(Wake::Served(reply.take())) {
                // Its connection went away between the look and the reply: nothing was taken after all.
                put_back(ctx, taken);
            }
            Served::Done
        }
        Ok(None) => Served::Empty,
        // The key holds something else now: the waiter keeps waiting (as Redis's clients do).
        Err(_) => Served::Empty,
    }
}

/// Undoes a pop whose waiter could not get it, on the stripes still held.
fn put_back(ctx: &mut Ctx<'_>, taken: Taken) {
    let request = match taken {
        Taken::List { key, side, items } => {
            let verb: &[u8] = if side == Side::Left { b"LPUSH" } else { b"RPUSH" };
            let mut args: Vec<Vec<u8>> = vec![verb.to_vec(), key];
            // Pushed back in reverse, so the list reads as before the pop.
            args.extend(items.into_iter().rev());
            Request::from_args(args.iter().map(Vec::as_slice))
        }
        Taken::ZSet { key, members } => {
            let mut args: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), key];
            for (m, s) in members {
                args.push(ringcache_common::resp::format_double(s).into_bytes());
                args.push(m);
            }
            Request::from_args(args.iter().map(Vec::as_slice))
        }
        Taken::Nothing => return,
    };
    let was_pinned = ctx.db.is_pinned();
    ctx.db.set_pinned(true);
    let mut sink = ReplyBuf::new(ctx.out.proto());
    std::mem::swap(ctx.out, &mut sink);
    execute_inside(ctx, &request);
    std::mem::swap(ctx.out, &mut sink);
    ctx.db.set_pinned(was_pinned);
}
