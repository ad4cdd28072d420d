//! Client-side caching options (CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO) as Redis 7 parses
//! and checks them, shared by the shard (which tracks keys itself) and the proxy (which tracks the keys
//! its clients read, and relays the shards' invalidations).

use bytes::Bytes;

use crate::command::{self, CommandSpec};
use crate::connection::parse_integer;
use crate::resp::{Protocol, ReplyBuf, ReplyWriter, Request};

/// How a connection tracks the keys it reads (CLIENT TRACKING).
#[derive(Debug, Clone, Default)]
pub struct Tracking {
    /// Where invalidations go: another client's id (REDIRECT), or this connection (0).
    pub redirect: u64,
    pub bcast: bool,
    pub prefixes: Vec<Bytes>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING yes|no, for the next command only.
    pub caching_next: Option<bool>,
}

/// The channel RESP2 connections hear invalidations on (as pub/sub messages).
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// An invalidation in `proto`: `>2 invalidate <keys>` in RESP3, or the pub/sub message carrying the same
/// on `__redis__:invalidate` in RESP2. `keys` `None` is a flush: every key is invalid, which Redis writes
/// as a null bulk (`$-1` in a RESP2 message, `_` in RESP3).
pub fn invalidation<K: AsRef<[u8]>>(proto: Protocol, keys: Option<&[K]>) -> Bytes {
    let mut out = ReplyBuf::new(proto);
    if proto == Protocol::Resp2 {
        out.push_len(3);
        out.bulk(b"message");
        out.bulk(INVALIDATE_CHANNEL);
    } else {
        out.push_len(2);
        out.bulk(b"invalidate");
    }
    match keys {
        Some(keys) => {
            out.array_len(keys.len());
            for key in keys {
                out.bulk(key.as_ref());
            }
        }
        None => out.null(),
    }
    out.take()
}

/// What CLIENT TRACKING asks for.
pub enum TrackingChange {
    Off,
    On(Tracking),
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn err(text: &str) -> String {
    format!("ERR {text}")
}

const SYNTAX: &str = "ERR syntax error";

/// The arity error of a CLIENT subcommand.
pub fn arity_error(req: &Request) -> String {
    format!("ERR wrong number of arguments for 'client|{}' command", String::from_utf8_lossy(req.arg(1)).to_lowercase())
}

/// Whether `req` (a CLIENT command) is one of the tracking subcommands.
pub fn is_tracking_subcommand(req: &Request) -> bool {
    req.get(1).is_some_and(|sub| ["TRACKING", "CACHING", "GETREDIR", "TRACKINGINFO"].iter().any(|w| is(sub, w)))
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP], checked as Redis
/// checks it against the connection's `current` options; `client_exists` tells whether a REDIRECT target
/// is connected. On success the new options (prefixes accumulated over successive calls).
pub fn parse_tracking(
    req: &Request,
    current: Option<&Tracking>,
    client_exists: impl Fn(u64) -> bool,
) -> Result<TrackingChange, String> {
    if req.argc() < 3 {
        return Err(arity_error(req));
    }
    let on = if is(req.arg(2), "ON") {
        true
    } else if is(req.arg(2), "OFF") {
        false
    } else {
        return Err(SYNTAX.into());
    };
    let mut t = Tracking::default();
    let mut i = 3;
    while i < req.argc() {
        let opt = req.arg(i);
        let more = i + 1 < req.argc();
        if is(opt, "REDIRECT") && more {
            i += 1;
            if t.redirect != 0 {
                return Err(err("A client can only redirect to a single other client"));
            }
            let id = parse_integer(req.arg(i)).ok_or("ERR value is not an integer or out of range")?;
            if id <= 0 || !client_exists(id as u64) {
                return Err(err("The client ID you want redirect to does not exist"));
            }
            t.redirect = id as u64;
        } else if is(opt, "BCAST") {
            t.bcast = true;
        } else if is(opt, "OPTIN") {
            t.optin = true;
        } else if is(opt, "OPTOUT") {
            t.optout = true;
        } else if is(opt, "NOLOOP") {
            t.noloop = true;
        } else if is(opt, "PREFIX") && more {
            i += 1;
            t.prefixes.push(Bytes::copy_from_slice(req.arg(i)));
        } else {
            return Err(SYNTAX.into());
        }
        i += 1;
    }
    if !on {
        return Ok(TrackingChange::Off);
    }
    if let Some(current) = current {
        if current.bcast != t.bcast {
            return Err(err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
        if (current.optin, current.optout) != (t.optin, t.optout) {
            return Err(err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
    }
    if !t.bcast && !t.prefixes.is_empty() {
        return Err(err("PREFIX option requires BCAST mode to be enabled"));
    }
    if t.optin && t.optout {
        return Err(err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if t.bcast && (t.optin || t.optout) {
        return Err(err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    // Prefixes accumulate over successive TRACKING ON calls, and may not overlap.
    let mut prefixes = current.map(|c| c.prefixes.clone()).unwrap_or_default();
    for p in &t.prefixes {
        if let Some(other) = prefixes.iter().find(|o| o != &p && (o.starts_with(p) || p.starts_with(o))) {
            return Err(err(&format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(other)
            )));
        }
        if !prefixes.contains(p) {
            prefixes.push(p.clone());
        }
    }
    t.prefixes = prefixes;
    Ok(TrackingChange::On(t))
}

/// CLIENT CACHING YES|NO: sets `caching_next` of a connection tracking in OPTIN or OPTOUT mode.
pub fn caching(req: &Request, current: Option<&mut Tracking>) -> Result<(), String> {
    if req.argc() != 3 {
        return Err(arity_error(req));
    }
    let yes = if is(req.arg(2), "YES") {
        true
    } else if is(req.arg(2), "NO") {
        false
    } else {
        return Err(SYNTAX.into());
    };
    let Some(t) = current.filter(|t| t.optin || t.optout) else {
        return Err(err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if (t.optin && !yes) || (t.optout && yes) {
        return Err(err(if t.optin {
            "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
        } else {
            "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
        }));
    }
    t.caching_next = Some(yes);
    Ok(())
}

/// CLIENT TRACKINGINFO's reply; `redirect_broken` when the REDIRECT target is gone.
pub fn write_trackinginfo(t: Option<&Tracking>, redirect_broken: bool, out: &mut impl ReplyWriter) {
    let mut flags: Vec<&str> = Vec::new();
    match t {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            for (set, name) in [(t.bcast, "bcast"), (t.optin, "optin"), (t.optout, "optout")] {
                if set {
                    flags.push(name);
                }
            }
            match t.caching_next {
                Some(true) => flags.push("caching-yes"),
                Some(false) => flags.push("caching-no"),
                None => {}
            }
            if t.noloop {
                flags.push("noloop");
            }
            if redirect_broken {
                flags.push("broken_redirect");
            }
        }
    }
    out.map_len(3);
    out.bulk(b"flags");
    out.set_len(flags.len());
    for f in flags {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"redirect");
    out.integer(t.map_or(-1, |t| t.redirect as i64));
    out.bulk(b"prefixes");
    let prefixes = t.map(|t| &t.prefixes[..]).unwrap_or_default();
    out.array_len(prefixes.len());
    for p in prefixes {
        out.bulk(p);
    }
}

/// Whether a read-only command of a tracking client has its keys remembered: not in BCAST (which tracks
/// by prefix), nor in OPTIN without CACHING YES, nor in OPTOUT with CACHING NO.
pub fn remembers_keys(t: &Tracking, spec: &CommandSpec) -> bool {
    if t.bcast || spec.first_key == 0 && !spec.flags.contains(&"movablekeys") {
        return false;
    }
    if t.optin {
        t.caching_next == Some(true)
    } else if t.optout {
        t.caching_next != Some(false)
    } else {
        true
    }
}

/// The keys of `req` a tracking client reads, if [`remembers_keys`].
pub fn keys_read<'r>(t: &Tracking, spec: &CommandSpec, req: &'r Request) -> Vec<&'r [u8]> {
    if !remembers_keys(t, spec) {
        return Vec::new();
    }
    command::keys(spec, req).iter().map(|&p| req.arg(p)).collect()
}
