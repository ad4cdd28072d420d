//! Connection commands: PING ECHO QUIT AUTH HELLO SELECT CLIENT RESET.

use ringcache_common::resp::{ReplyWriter, Request};

use super::{is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::server::REDIS_COMPAT_VERSION;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "ping" => ping,
        "echo" => echo,
        "quit" => quit,
        "auth" => auth,
        "hello" => hello,
        "select" => select,
        "client" => client,
        "reset" => reset,
        _ => return None,
    })
}

fn ping(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    match req.argc() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(req.arg(1)),
        _ => return Err(CmdError::WrongArity("ping".into())),
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    ctx.out.bulk(req.arg(1));
    Ok(())
}

fn quit(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks a username/password pair against `--requirepass` (the only user is `default`).
fn check_credentials(ctx: &Ctx<'_>, user: &[u8], password: &[u8]) -> Result<(), CmdError> {
    let ok = user == b"default"
        && match &ctx.shared.config.requirepass {
            None => true,
            Some(expected) => constant_time_eq(expected.as_bytes(), password),
        };
    if ok {
        Ok(())
    } else {
        Err(CmdError::Other(WRONGPASS.into()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn auth(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let (user, password) = match req.argc() {
        2 => (&b"default"[..], req.arg(1)),
        3 => (req.arg(1), req.arg(2)),
        _ => return Err(CmdError::Syntax),
    };
    if req.argc() == 2 && ctx.shared.config.requirepass.is_none() {
        return Err(CmdError::Other(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                .into(),
        ));
    }
    check_credentials(ctx, user, password)?;
    ctx.client.authenticated = true;
    ctx.out.ok();
    Ok(())
}

/// HELLO: RESP2 only for now. `HELLO 3` gets `-NOPROTO`, which clients (redis-py, go-redis) take as the
/// cue to carry on in RESP2.
fn hello(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let mut i = 1;
    if req.argc() > 1 {
        let ver = parse_i64(req.arg(1))
            .map_err(|_| CmdError::Other("ERR Protocol version is not an integer or out of range".into()))?;
        if ver != 2 {
            return Err(CmdError::Other("NOPROTO unsupported protocol version".into()));
        }
        i = 2;
    }
    let mut name = None;
    while i < req.argc() {
        let opt = req.arg(i);
        if is(opt, "AUTH") && i + 2 < req.argc() {
            check_credentials(ctx, req.arg(i + 1), req.arg(i + 2))?;
            ctx.client.authenticated = true;
            i += 3;
        } else if is(opt, "SETNAME") && i + 1 < req.argc() {
            name = Some(validate_client_name(req.arg(i + 1))?);
            i += 2;
        } else {
            return Err(CmdError::Other(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(name) = name {
        ctx.client.set_name(name);
    }
    ctx.out.array_len(14);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(REDIS_COMPAT_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.integer(2);
    ctx.out.bulk(b"id");
    ctx.out.integer(ctx.client.id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array_len(0);
    Ok(())
}

fn select(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let db = parse_i64(req.arg(1))?;
    if db != 0 {
        return Err(CmdError::Other("ERR DB index is out of range".into()));
    }
    ctx.out.ok();
    Ok(())
}

fn reset(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    ctx.client.set_name(String::new());
    ctx.client.authenticated = ctx.shared.config.requirepass.is_none();
    ctx.out.simple("RESET");
    Ok(())
}

fn validate_client_name(name: &[u8]) -> Result<String, CmdError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::Other("ERR Client names cannot contain spaces, newlines or special characters.".into()));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn client(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    let sub_lower = String::from_utf8_lossy(sub).to_lowercase();
    let arity_error = || CmdError::WrongArity(format!("client|{sub_lower}"));
    let argc = req.argc();
    if is(sub, "SETNAME") {
        if argc != 3 {
            return Err(arity_error());
        }
        let name = validate_client_name(req.arg(2))?;
        ctx.client.set_name(name);
        ctx.out.ok();
    } else if is(sub, "GETNAME") {
        if argc != 2 {
            return Err(arity_error());
        }
        match ctx.client.name() {
            Some(n) => ctx.out.bulk(n.as_bytes()),
            None => ctx.out.null(),
        }
    } else if is(sub, "ID") {
        if argc != 2 {
            return Err(arity_error());
        }
        ctx.out.integer(ctx.client.id as i64);
    } else if is(sub, "SETINFO") {
        if argc != 4 {
            return Err(arity_error());
        }
        let (attr, value) = (req.arg(2), req.arg(3));
        if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            return Err(CmdError::Other(format!(
                "ERR {} cannot contain spaces, newlines or special characters.",
                String::from_utf8_lossy(attr).to_lowercase()
            )));
        }
        let value = String::from_utf8_lossy(value).into_owned();
        if is(attr, "LIB-NAME") {
            ctx.client.info.lock().lib_name = value;
        } else if is(attr, "LIB-VER") {
            ctx.client.info.lock().lib_ver = value;
        } else {
            return Err(CmdError::Other(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr))));
        }
        ctx.out.ok();
    } else if is(sub, "LIST") {
        let now = std::time::Instant::now();
        let mut text = String::new();
        for entry in ctx.shared.clients.iter() {
            text.push_str(&entry.value().lock().describe(*entry.key(), now));
            text.push('\n');
        }
        ctx.out.bulk(text.as_bytes());
    } else if is(sub, "INFO") {
        if argc != 2 {
            return Err(arity_error());
        }
        let line = ctx.client.info.lock().describe(ctx.client.id, std::time::Instant::now());
        ctx.out.bulk(format!("{line}\n").as_bytes());
    } else if is(sub, "HELP") {
        let lines = [
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
        ctx.out.array_len(lines.len());
        for l in lines {
            ctx.out.simple(l);
        }
    } else {
        return Err(CmdError::UnknownSubcommand {
            cmd: "CLIENT".into(),
            sub: String::from_utf8_lossy(sub).into_owned(),
        });
    }
    Ok(())
}
