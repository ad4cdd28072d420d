//! Commands the proxy answers itself: connection commands, COMMAND, CONFIG GET, TIME, and its INFO.

use std::fmt::Write as _;

use bytes::BytesMut;
use ringcache_common::command::{self, CommandSpec};
use ringcache_common::resp::{ReplyWriter, Request};

use crate::session::{ProxyShared, ReplyFut, Session};

/// The Redis version the proxy reports (the release whose commands and replies Ringcache follows).
pub const REDIS_COMPAT_VERSION: &str = "7.2.0";

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An integer as Redis's `string2ll` reads one: optional `-`, no `+`, no leading zeros or spaces, in range.
fn redis_integer(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = arg == b"0"
        || (digits.first().is_some_and(|d| (b'1'..=b'9').contains(d)) && digits.iter().all(u8::is_ascii_digit));
    if !canonical {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

const BAD_CLIENT_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|b| (b'!'..=b'~').contains(b))
}

fn password_ok(shared: &ProxyShared, user: &[u8], password: &[u8]) -> bool {
    user == b"default" && shared.requirepass.as_ref().is_none_or(|p| p.as_bytes() == password)
}

/// Replies to a keyless command that does not need the shards.
pub fn reply(session: &mut Session, shared: &ProxyShared, req: &Request, spec: &CommandSpec) -> ReplyFut {
    let mut out = BytesMut::new();
    let result = match spec.name {
        "ping" => match req.argc() {
            1 => {
                out.simple("PONG");
                Ok(())
            }
            2 => {
                out.bulk(req.arg(1));
                Ok(())
            }
            _ => Err("ERR wrong number of arguments for 'ping' command".to_string()),
        },
        "echo" => {
            out.bulk(req.arg(1));
            Ok(())
        }
        "quit" => {
            session.close_after_reply = true;
            {
                out.ok();
                Ok(())
            }
        }
        "select" => match redis_integer(req.arg(1)) {
            Some(0) => {
                out.ok();
                Ok(())
            }
            Some(n) if i32::try_from(n).is_err() => {
                Err(format!("ERR value is out of range, value must between {} and {}", i32::MIN, i32::MAX))
            }
            Some(_) => Err("ERR DB index is out of range".into()),
            None => Err("ERR value is not an integer or out of range".into()),
        },
        "auth" => auth(session, shared, req, &mut out),
        "hello" => hello(session, shared, req, &mut out),
        "reset" => {
            session.name.clear();
            session.authenticated = shared.requirepass.is_none();
            {
                out.simple("RESET");
                Ok(())
            }
        }
        "client" => client(session, shared, req, &mut out),
        "command" => command::reply_command(req, &mut out),
        "config" => config(shared, req, &mut out),
        "time" => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            out.array_len(2);
            out.bulk_integer(now.as_secs() as i64);
            out.bulk_integer(i64::from(now.subsec_micros()));
            Ok(())
        }
        other => Err(format!("ERR {} is not supported by ringcache-proxy", other.to_uppercase())),
    };
    if let Err(e) = result {
        out.clear();
        out.error(&e);
    }
    ReplyFut::ready(out.freeze())
}

fn auth(session: &mut Session, shared: &ProxyShared, req: &Request, out: &mut BytesMut) -> Result<(), String> {
    let (user, password) = match req.argc() {
        2 => (&b"default"[..], req.arg(1)),
        3 => (req.arg(1), req.arg(2)),
        _ => return Err("ERR syntax error".into()),
    };
    if req.argc() == 2 && shared.requirepass.is_none() {
        return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
    }
    if !password_ok(shared, user, password) {
        return Err(WRONGPASS.into());
    }
    session.authenticated = true;
    out.ok();
    Ok(())
}

fn hello(session: &mut Session, shared: &ProxyShared, req: &Request, out: &mut BytesMut) -> Result<(), String> {
    let mut i = 1;
    if req.argc() > 1 {
        match redis_integer(req.arg(1)) {
            Some(2) => {}
            Some(_) => return Err("NOPROTO unsupported protocol version".into()),
            None => return Err("ERR Protocol version is not an integer or out of range".into()),
        }
        i = 2;
    }
    // As Redis: every option is checked before any takes effect; then AUTH, then SETNAME.
    let (mut auth, mut name) = (None, None);
    while i < req.argc() {
        if is(req.arg(i), "AUTH") && i + 2 < req.argc() {
            auth = Some((req.arg(i + 1), req.arg(i + 2)));
            i += 3;
        } else if is(req.arg(i), "SETNAME") && i + 1 < req.argc() {
            if !valid_client_name(req.arg(i + 1)) {
                return Err(BAD_CLIENT_NAME.into());
            }
            name = Some(req.arg(i + 1));
            i += 2;
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(req.arg(i))));
        }
    }
    if let Some((user, password)) = auth {
        if !password_ok(shared, user, password) {
            return Err(WRONGPASS.into());
        }
        session.authenticated = true;
    }
    if !session.authenticated {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        session.name = String::from_utf8_lossy(name).into_owned();
    }
    out.array_len(14);
    for (k, v) in [("server", "redis"), ("version", REDIS_COMPAT_VERSION)] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"proto");
    out.integer(2);
    out.bulk(b"id");
    out.integer(session.id as i64);
    for (k, v) in [("mode", "standalone"), ("role", "master")] {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    out.bulk(b"modules");
    out.array_len(0);
    Ok(())
}

fn client(session: &mut Session, _shared: &ProxyShared, req: &Request, out: &mut BytesMut) -> Result<(), String> {
    let sub = req.arg(1);
    let lower = String::from_utf8_lossy(sub).to_lowercase();
    let arity = |n: usize| {
        if req.argc() == n {
            Ok(())
        } else {
            Err(format!("ERR wrong number of arguments for 'client|{lower}' command"))
        }
    };
    match lower.as_str() {
        "setname" => {
            arity(3)?;
            if !valid_client_name(req.arg(2)) {
                return Err(BAD_CLIENT_NAME.into());
            }
            session.name = String::from_utf8_lossy(req.arg(2)).into_owned();
            out.ok();
        }
        "getname" => {
            arity(2)?;
            if session.name.is_empty() {
                out.null();
            } else {
                out.bulk(session.name.as_bytes());
            }
        }
        "id" => {
            arity(2)?;
            out.integer(session.id as i64);
        }
        "setinfo" => {
            arity(4)?;
            if !(is(req.arg(2), "LIB-NAME") || is(req.arg(2), "LIB-VER")) {
                return Err(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(req.arg(2))));
            }
            out.ok();
        }
        "info" | "list" => {
            out.bulk(format!("id={} name={} db=0 resp=2\n", session.id, session.name).as_bytes());
        }
        _ => return Err(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(sub))),
    }
    Ok(())
}

fn config(shared: &ProxyShared, req: &Request, out: &mut BytesMut) -> Result<(), String> {
    if !is(req.arg(1), "GET") {
        if is(req.arg(1), "SET") || is(req.arg(1), "RESETSTAT") || is(req.arg(1), "REWRITE") {
            return Err(format!(
                "ERR CONFIG {} is not supported by ringcache-proxy: configure it with flags, environment or --config",
                String::from_utf8_lossy(req.arg(1)).to_uppercase()
            ));
        }
        return Err(format!("ERR unknown subcommand '{}'. Try CONFIG HELP.", String::from_utf8_lossy(req.arg(1))));
    }
    if req.argc() < 3 {
        return Err("ERR wrong number of arguments for 'config|get' command".into());
    }
    let params: [(&str, String); 7] = [
        ("port", shared.port.to_string()),
        ("maxclients", shared.maxclients.to_string()),
        ("timeout", shared.idle_timeout.as_secs().to_string()),
        ("proto-max-bulk-len", shared.limits.max_bulk_len.to_string()),
        ("databases", "1".into()),
        ("save", String::new()),
        ("appendonly", "no".into()),
    ];
    let patterns: Vec<Vec<u8>> = req.args_from(2).map(|p| p.to_ascii_lowercase()).collect();
    let matched: Vec<_> = params.iter().filter(|(n, _)| patterns.iter().any(|p| glob(p, n.as_bytes()))).collect();
    out.array_len(matched.len() * 2);
    for (n, v) in matched {
        out.bulk(n.as_bytes());
        out.bulk(v.as_bytes());
    }
    Ok(())
}

/// `*` and `?` globbing, enough for CONFIG GET patterns.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

const SECTIONS: [&str; 5] = ["server", "clients", "memory", "stats", "keyspace"];

/// The INFO sections a request asks for.
pub fn info_sections(req: &Request) -> Vec<String> {
    let wanted: Vec<String> = req.args_from(1).map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default") {
        SECTIONS.iter().map(|s| s.to_string()).collect()
    } else {
        wanted
    }
}

/// The proxy's own fields, per section (shard totals are added by [`merge_info`]).
pub fn proxy_info(shared: &ProxyShared, sections: &[String]) -> String {
    let uptime = shared.started.elapsed().as_secs();
    let topo = shared.cluster.topology();
    let mut out = String::new();
    if sections.iter().any(|s| s == "server") {
        let _ = write!(
            out,
            "redis_version:{REDIS_COMPAT_VERSION}\r\nringcache_version:{}\r\nringcache_mode:proxy\r\nredis_mode:standalone\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nshards:{}\r\nshards_up:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            shared.port,
            topo.shards.len(),
            topo.live().count()
        );
    }
    if sections.iter().any(|s| s == "clients") {
        let _ = write!(
            out,
            "connected_clients:{}\r\nmaxclients:{}\r\n",
            crate::route::connected(shared),
            shared.maxclients
        );
    }
    if sections.iter().any(|s| s == "stats") {
        let _ = write!(
            out,
            "total_connections_received:{}\r\nrejected_connections:{}\r\n",
            shared.total_connections.load(std::sync::atomic::Ordering::Relaxed),
            shared.rejected_connections.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    out
}

/// Shard fields that INFO sums across shards, by section.
const SUMMED: [(&str, &str); 9] = [
    ("memory", "used_memory"),
    ("memory", "maxmemory"),
    ("stats", "total_commands_processed"),
    ("stats", "keyspace_hits"),
    ("stats", "keyspace_misses"),
    ("stats", "expired_keys"),
    ("stats", "evicted_keys"),
    ("keyspace", "keys"),
    ("keyspace", "expires"),
];

/// Combines the proxy's INFO fields with sums of the shards' fields, in Redis's section layout.
pub fn merge_info(proxy_text: &str, sections: &[String], shard_infos: &[String]) -> String {
    let mut sums = [0u64; SUMMED.len()];
    for info in shard_infos {
        for line in info.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else { continue };
            if k == "db0" {
                for part in v.split(',') {
                    if let Some((name, n)) = part.split_once('=') {
                        if let Some(i) = SUMMED.iter().position(|(s, f)| *s == "keyspace" && *f == name) {
                            sums[i] += n.parse::<u64>().unwrap_or(0);
                        }
                    }
                }
            } else if let Some(i) = SUMMED.iter().position(|(s, f)| *s != "keyspace" && *f == k) {
                sums[i] += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    let proxy_lines: Vec<&str> = proxy_text.split("\r\n").filter(|l| !l.is_empty()).collect();
    let mut out = String::new();
    for section in SECTIONS.iter().filter(|s| sections.iter().any(|w| w == *s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = section.to_string();
        title[..1].make_ascii_uppercase();
        let _ = write!(out, "# {title}\r\n");
        let own: &[&str] = match *section {
            "server" => &[
                "redis_version",
                "ringcache_version",
                "ringcache_mode",
                "redis_mode",
                "process_id",
                "tcp_port",
                "uptime_in_seconds",
                "shards",
                "shards_up",
            ],
            "clients" => &["connected_clients", "maxclients"],
            "stats" => &["total_connections_received", "rejected_connections"],
            _ => &[],
        };
        for l in &proxy_lines {
            if own.iter().any(|f| l.starts_with(&format!("{f}:"))) {
                let _ = write!(out, "{l}\r\n");
            }
        }
        if *section == "keyspace" {
            let keys = sums[SUMMED.iter().position(|(_, f)| *f == "keys").unwrap_or(0)];
            let expires = sums[SUMMED.iter().position(|(_, f)| *f == "expires").unwrap_or(0)];
            if keys > 0 {
                let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        } else {
            for (i, (s, f)) in SUMMED.iter().enumerate() {
                if s == section {
                    let _ = write!(out, "{f}:{}\r\n", sums[i]);
                }
            }
            if *section == "memory" {
                out.push_str("maxmemory_policy:allkeys-lru\r\n");
            }
        }
    }
    out
}
