//! Connection commands, answered the same way by the shard and the proxy: PING ECHO QUIT AUTH HELLO
//! SELECT CLIENT RESET TIME.
//!
//! Each server keeps its own per-client state and implements [`ClientSession`] over it; [`execute`] does
//! the parsing, the checks and the replies (Redis 7's texts), so the two servers cannot drift apart.

use bytes::BytesMut;

use crate::resp::{ReplyWriter, Request};

/// The Redis version clients see in INFO and HELLO: the release whose commands and replies we follow.
pub const REDIS_COMPAT_VERSION: &str = "7.2.0";

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// What connection commands read and change about a client.
pub trait ClientSession {
    fn id(&self) -> u64;
    fn authenticated(&self) -> bool;
    fn set_authenticated(&mut self, yes: bool);
    fn name(&self) -> Option<String>;
    fn set_name(&mut self, name: String);
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    fn set_lib_info(&mut self, lib_name: Option<String>, lib_ver: Option<String>);
    /// QUIT: reply, then close.
    fn close_after_reply(&mut self);
    /// The lines of CLIENT LIST (every client of this server), each ending in `\n`.
    fn client_list(&self) -> String;
    /// The CLIENT INFO line of this client, ending in `\n`.
    fn client_info(&self) -> String;
}

/// Whether `name` (lower case) is one of the commands [`execute`] answers.
pub fn is_connection_command(name: &str) -> bool {
    matches!(name, "ping" | "echo" | "quit" | "auth" | "hello" | "select" | "client" | "reset" | "time")
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a username/password pair against the server's password (the only user is `default`).
fn credentials_ok(requirepass: Option<&str>, user: &[u8], password: &[u8]) -> bool {
    user == b"default" && requirepass.is_none_or(|expected| constant_time_eq(expected.as_bytes(), password))
}

fn printable_word(s: &[u8]) -> bool {
    s.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Runs connection command `name` (lower case; see [`is_connection_command`]), appending its reply to
/// `out`. `Err` carries the whole error line (`ERR ...`, `WRONGPASS ...`); nothing is appended then.
pub fn execute(
    name: &str,
    req: &Request,
    session: &mut impl ClientSession,
    requirepass: Option<&str>,
    out: &mut BytesMut,
) -> Result<(), String> {
    match name {
        "ping" => match req.argc() {
            1 => out.simple("PONG"),
            2 => out.bulk(req.arg(1)),
            _ => return Err("ERR wrong number of arguments for 'ping' command".into()),
        },
        "echo" => out.bulk(req.arg(1)),
        "quit" => {
            session.close_after_reply();
            out.ok();
        }
        "select" => {
            let text = std::str::from_utf8(req.arg(1)).unwrap_or("");
            match text.parse::<i64>() {
                Ok(0) if text == "0" => out.ok(),
                Ok(_) => return Err("ERR DB index is out of range".into()),
                Err(_) => return Err("ERR value is not an integer or out of range".into()),
            }
        }
        "auth" => {
            let (user, password) = match req.argc() {
                2 => (&b"default"[..], req.arg(1)),
                3 => (req.arg(1), req.arg(2)),
                _ => return Err("ERR syntax error".into()),
            };
            if req.argc() == 2 && requirepass.is_none() {
                return Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into());
            }
            if !credentials_ok(requirepass, user, password) {
                return Err(WRONGPASS.into());
            }
            session.set_authenticated(true);
            out.ok();
        }
        "hello" => hello(req, session, requirepass, out)?,
        "reset" => {
            session.set_name(String::new());
            session.set_authenticated(requirepass.is_none());
            out.simple("RESET");
        }
        "client" => client(req, session, out)?,
        "time" => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            out.array_len(2);
            out.bulk_integer(now.as_secs() as i64);
            out.bulk_integer(i64::from(now.subsec_micros()));
        }
        other => return Err(format!("ERR unknown command '{other}'")),
    }
    Ok(())
}

/// HELLO: RESP2 only for now. `HELLO 3` gets `-NOPROTO`, which clients such as go-redis take as the cue
/// to carry on in RESP2.
fn hello(
    req: &Request,
    session: &mut impl ClientSession,
    requirepass: Option<&str>,
    out: &mut BytesMut,
) -> Result<(), String> {
    let mut i = 1;
    if req.argc() > 1 {
        match std::str::from_utf8(req.arg(1)).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(2) => {}
            Some(_) => return Err("NOPROTO unsupported protocol version".into()),
            None => return Err("ERR Protocol version is not an integer or out of range".into()),
        }
        i = 2;
    }
    let mut name = None;
    while i < req.argc() {
        let opt = req.arg(i);
        if is(opt, "AUTH") && i + 2 < req.argc() {
            if !credentials_ok(requirepass, req.arg(i + 1), req.arg(i + 2)) {
                return Err(WRONGPASS.into());
            }
            session.set_authenticated(true);
            i += 3;
        } else if is(opt, "SETNAME") && i + 1 < req.argc() {
            if !printable_word(req.arg(i + 1)) {
                return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            name = Some(String::from_utf8_lossy(req.arg(i + 1)).into_owned());
            i += 2;
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt)));
        }
    }
    if !session.authenticated() {
        return Err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if let Some(name) = name {
        session.set_name(name);
    }
    out.array_len(14);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(REDIS_COMPAT_VERSION.as_bytes());
    out.bulk(b"proto");
    out.integer(2);
    out.bulk(b"id");
    out.integer(session.id() as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array_len(0);
    Ok(())
}

const CLIENT_HELP: [&str; 15] = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST",
    "    Return information about client connections.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "HELP",
    "    Print this help.",
];

fn client(req: &Request, session: &mut impl ClientSession, out: &mut BytesMut) -> Result<(), String> {
    let sub = req.arg(1);
    let lower = String::from_utf8_lossy(sub).to_lowercase();
    let argc = req.argc();
    let arity = |n: usize| {
        if argc == n {
            Ok(())
        } else {
            Err(format!("ERR wrong number of arguments for 'client|{lower}' command"))
        }
    };
    match lower.as_str() {
        "setname" => {
            arity(3)?;
            if !printable_word(req.arg(2)) {
                return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            session.set_name(String::from_utf8_lossy(req.arg(2)).into_owned());
            out.ok();
        }
        "getname" => {
            arity(2)?;
            match session.name() {
                Some(n) => out.bulk(n.as_bytes()),
                None => out.null(),
            }
        }
        "id" => {
            arity(2)?;
            out.integer(session.id() as i64);
        }
        "setinfo" => {
            arity(4)?;
            let (attr, value) = (req.arg(2), req.arg(3));
            if !printable_word(value) {
                return Err(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(attr).to_lowercase()
                ));
            }
            let value = String::from_utf8_lossy(value).into_owned();
            if is(attr, "LIB-NAME") {
                session.set_lib_info(Some(value), None);
            } else if is(attr, "LIB-VER") {
                session.set_lib_info(None, Some(value));
            } else {
                return Err(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr)));
            }
            out.ok();
        }
        "list" => out.bulk(session.client_list().as_bytes()),
        "info" => {
            arity(2)?;
            out.bulk(session.client_info().as_bytes());
        }
        "help" => {
            out.array_len(CLIENT_HELP.len());
            for line in CLIENT_HELP {
                out.simple(line);
            }
        }
        _ => return Err(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(sub))),
    }
    Ok(())
}
