//! Scripting commands: EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT (LOAD EXISTS FLUSH KILL HELP).
//!
//! The Lua side is [`crate::scripting`]; this file parses the commands, runs each `redis.call` of a script
//! through the normal command path (`execute_inside`, on the stripes the script holds: all of them), and
//! applies the script rules Redis applies before a command runs from a script.

use ringcache_common::command;
use ringcache_common::resp::{Protocol, ReplyBuf, ReplyValue, ReplyWriter, Request};

use super::{execute_inside, is, parse_i64, CmdError, CmdResult, Ctx, Handler};
use crate::scripting::reply_to_lua;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "eval" => |ctx, req| eval(ctx, req, false, false),
        "evalsha" => |ctx, req| eval(ctx, req, true, false),
        "eval_ro" => |ctx, req| eval(ctx, req, false, true),
        "evalsha_ro" => |ctx, req| eval(ctx, req, true, true),
        "script" => script,
        _ => return None,
    })
}

fn err(text: &str) -> CmdError {
    CmdError::Other(text.to_string())
}

/// A command a script may not run (Redis's `noscript` flag).
fn not_allowed_in_scripts(spec: &command::CommandSpec) -> bool {
    spec.flags.contains(&"noscript")
        || matches!(
            spec.name,
            "save"
                | "bgsave"
                | "ringcache"
                | "subscribe"
                | "psubscribe"
                | "ssubscribe"
                | "unsubscribe"
                | "punsubscribe"
                | "sunsubscribe"
                | "multi"
                | "exec"
                | "discard"
                | "watch"
                | "unwatch"
        )
}

fn eval(ctx: &mut Ctx<'_>, req: &Request, by_sha: bool, read_only: bool) -> CmdResult {
    let numkeys = parse_i64(req.arg(2))?;
    if numkeys < 0 {
        return Err(err("ERR Number of keys can't be negative"));
    }
    let numkeys = numkeys as usize;
    if numkeys > req.argc() - 3 {
        return Err(err("ERR Number of keys can't be greater than number of args"));
    }
    let shared = ctx.shared;
    let scripting = &shared.scripting;
    let sha = if by_sha {
        let sha = String::from_utf8_lossy(req.arg(1)).to_ascii_lowercase();
        if !scripting.exists(&sha) {
            return Err(err("NOSCRIPT No matching script. Please use EVAL."));
        }
        sha
    } else {
        scripting.load(req.arg(1)).map_err(CmdError::Other)?
    };
    let read_only = read_only || scripting.flags(&sha).is_some_and(|f| f.no_writes);
    let keys: Vec<&[u8]> = req.args_from(3).take(numkeys).collect();
    let argv: Vec<&[u8]> = req.args_from(3 + numkeys).collect();
    let proto = ctx.out.proto();
    let outcome = crate::scripting::blocking(|| {
        scripting.run(&sha, &keys, &argv, proto, |lua, parts, run| {
            let call = Request::from_args(parts.iter().map(Vec::as_slice));
            let refusal = match command::lookup(call.name()) {
                None => Some("ERR Unknown Redis command called from script"),
                Some(spec) if !spec.arity_ok(call.argc()) => {
                    Some("ERR Wrong number of args calling Redis command from script")
                }
                Some(spec) if not_allowed_in_scripts(spec) => Some("ERR This Redis command is not allowed from script"),
                Some(spec) if read_only && spec.is_write() => {
                    Some("ERR Write commands are not allowed from read-only scripts.")
                }
                Some(spec) => {
                    if spec.is_write() {
                        scripting.note_write();
                    }
                    None
                }
            };
            if let Some(refusal) = refusal {
                let t = lua.create_table()?;
                t.raw_set("err", refusal)?;
                return Ok(mlua::Value::Table(t));
            }
            // The command writes its reply in the script's protocol, into a buffer of its own.
            let mut reply = ReplyBuf::new(if run.resp3 { Protocol::Resp3 } else { Protocol::Resp2 });
            std::mem::swap(ctx.out, &mut reply);
            execute_inside(ctx, &call);
            std::mem::swap(ctx.out, &mut reply);
            let bytes = reply.take();
            match ReplyValue::parse(&bytes) {
                Some(v) => reply_to_lua(lua, &v),
                None => {
                    let t = lua.create_table()?;
                    t.raw_set("err", "ERR the command's reply could not be read")?;
                    Ok(mlua::Value::Table(t))
                }
            }
        })
    });
    match outcome {
        Ok(reply) => {
            ctx.out.extend_from_slice(&reply);
            Ok(())
        }
        Err(e) => Err(CmdError::Other(e)),
    }
}

const SCRIPT_HELP: [&str; 17] = [
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

fn script(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let sub = req.arg(1);
    let argc = req.argc();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CmdError::WrongArity(format!("script|{}", String::from_utf8_lossy(sub).to_lowercase())))
        }
    };
    let scripting = &ctx.shared.scripting;
    if is(sub, "LOAD") {
        arity(argc == 3)?;
        let sha = scripting.load(req.arg(2)).map_err(CmdError::Other)?;
        ctx.out.bulk(sha.as_bytes());
    } else if is(sub, "EXISTS") {
        arity(argc >= 3)?;
        ctx.out.array_len(argc - 2);
        for sha in req.args_from(2) {
            ctx.out.integer(i64::from(scripting.exists(&String::from_utf8_lossy(sha))));
        }
    } else if is(sub, "FLUSH") {
        match req.get(2) {
            None => {}
            Some(mode) if argc == 3 && (is(mode, "ASYNC") || is(mode, "SYNC")) => {}
            Some(_) => return Err(CmdError::Other("ERR SCRIPT FLUSH only support SYNC|ASYNC option".into())),
        }
        scripting.flush().map_err(|e| CmdError::Other(format!("ERR {e}")))?;
        ctx.out.ok();
    } else if is(sub, "KILL") {
        arity(argc == 2)?;
        scripting.kill().map_err(|e| CmdError::Other(e.into()))?;
        ctx.out.ok();
    } else if is(sub, "DEBUG") {
        return Err(CmdError::Other("ERR SCRIPT DEBUG is not supported by ringcache-shard".into()));
    } else if is(sub, "HELP") {
        ctx.out.array_len(SCRIPT_HELP.len());
        for line in SCRIPT_HELP {
            ctx.out.simple(line);
        }
    } else {
        return Err(CmdError::UnknownSubcommand {
            cmd: "SCRIPT".into(),
            sub: String::from_utf8_lossy(sub).into_owned(),
        });
    }
    Ok(())
}
