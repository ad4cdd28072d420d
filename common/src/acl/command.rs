//! The ACL command: SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT LOG SAVE LOAD GENPASS DRYRUN HELP, with
//! Redis 7's replies.

use std::io::Read;

use super::rules::hex;
use super::table::{category_bit, CATEGORIES, TABLE};
use super::{check_rules, Acl, Denied, User};
use crate::connection::parse_integer;
use crate::resp::{ReplyBuf, ReplyWriter, Request};

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_err() {
        // No /dev/urandom: the process's hasher keys (random per process) and the clock.
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    buf
}

/// Answers `ACL ...` for a connection authenticated as `user`; `Err` is the error line.
pub fn acl_command(
    acl: &Acl,
    req: &Request,
    user: &User,
    client_info: impl Fn() -> String,
    out: &mut ReplyBuf,
) -> Result<(), String> {
    let sub = String::from_utf8_lossy(req.arg(1)).to_ascii_lowercase();
    let argc = req.argc();
    let arity = |n: usize, exact: bool| {
        if (exact && argc != n) || argc < n {
            Err(format!("ERR wrong number of arguments for 'acl|{sub}' command"))
        } else {
            Ok(())
        }
    };
    match sub.as_str() {
        "setuser" => {
            arity(3, false)?;
            let ops: Vec<&[u8]> = (3..argc).map(|i| req.arg(i)).collect();
            acl.setuser(req.arg(2), &ops)?;
            out.ok();
        }
        "getuser" => {
            arity(3, true)?;
            let Some(u) = acl.user(req.arg(2)) else {
                out.null();
                return Ok(());
            };
            let r = u.rules();
            out.map_len(6);
            out.bulk(b"flags");
            let flags = r.flags();
            out.set_len(flags.len());
            for f in flags {
                out.bulk(f.as_bytes());
            }
            out.bulk(b"passwords");
            out.array_len(r.passwords.len());
            for p in &r.passwords {
                out.bulk(hex(p).as_bytes());
            }
            out.bulk(b"commands");
            out.bulk(r.describe_commands().as_bytes());
            out.bulk(b"keys");
            out.bulk(r.describe_keys().as_bytes());
            out.bulk(b"channels");
            out.bulk(r.describe_channels().as_bytes());
            out.bulk(b"selectors");
            out.array_len(0);
        }
        "deluser" => {
            arity(3, false)?;
            let names: Vec<&[u8]> = (2..argc).map(|i| req.arg(i)).collect();
            out.integer(acl.deluser(&names)?);
        }
        "list" | "users" => {
            arity(2, true)?;
            let lines = if sub == "list" { acl.list() } else { acl.usernames() };
            out.array_len(lines.len());
            for l in lines {
                out.bulk(l.as_bytes());
            }
        }
        "whoami" => {
            arity(2, true)?;
            out.bulk(user.name.as_bytes());
        }
        "cat" => {
            if argc > 3 {
                return Err("ERR wrong number of arguments for 'acl|cat' command".into());
            }
            if argc == 2 {
                out.array_len(CATEGORIES.len());
                for c in CATEGORIES {
                    out.bulk(c.as_bytes());
                }
            } else {
                let name = String::from_utf8_lossy(req.arg(2)).into_owned();
                let bit = category_bit(&name).ok_or_else(|| format!("ERR Unknown category '{name}'"))?;
                let names: Vec<&str> =
                    TABLE.entries.iter().filter(|e| e.categories & bit != 0).map(|e| e.name).collect();
                out.array_len(names.len());
                for n in names {
                    out.bulk(n.as_bytes());
                }
            }
        }
        "log" => {
            if argc > 3 {
                return Err("ERR wrong number of arguments for 'acl|log' command".into());
            }
            // Redis shows the 10 newest without a count.
            let mut count = 10;
            if argc == 3 {
                if req.arg(2).eq_ignore_ascii_case(b"reset") {
                    acl.log.lock().entries.clear();
                    out.ok();
                    return Ok(());
                }
                count = parse_integer(req.arg(2))
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| "ERR value is not an integer or out of range".to_string())?
                    as usize;
            }
            let entries: Vec<_> = acl.log.lock().entries.iter().take(count).cloned().collect();
            out.array_len(entries.len());
            for e in entries {
                out.map_len(10);
                out.bulk(b"count");
                out.integer(e.count as i64);
                out.bulk(b"reason");
                out.bulk(e.reason.as_bytes());
                out.bulk(b"context");
                out.bulk(e.context.as_bytes());
                out.bulk(b"object");
                out.bulk(e.object.as_bytes());
                out.bulk(b"username");
                out.bulk(e.username.as_bytes());
                out.bulk(b"age-seconds");
                out.double(e.created.elapsed().as_secs_f64());
                out.bulk(b"client-info");
                out.bulk(e.client_info.as_bytes());
                out.bulk(b"entry-id");
                out.integer(e.entry_id as i64);
                out.bulk(b"timestamp-created");
                out.integer(e.created_ms as i64);
                out.bulk(b"timestamp-last-updated");
                out.integer(e.updated_ms as i64);
            }
        }
        "save" => {
            arity(2, true)?;
            acl.save()?;
            out.ok();
        }
        "load" => {
            arity(2, true)?;
            acl.load().map_err(|e| format!("ERR {e}"))?;
            out.ok();
        }
        "genpass" => {
            if argc > 3 {
                return Err("ERR wrong number of arguments for 'acl|genpass' command".into());
            }
            let bits = if argc == 3 {
                parse_integer(req.arg(2))
                    .filter(|b| (1..=4096).contains(b))
                    .ok_or_else(|| "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096".to_string())?
            } else {
                256
            } as usize;
            let chars = bits.div_ceil(4);
            let mut text = hex(&random_bytes(chars.div_ceil(2)));
            text.truncate(chars);
            out.bulk(text.as_bytes());
        }
        "dryrun" => {
            arity(4, false)?;
            let target = acl
                .user(req.arg(2))
                .ok_or_else(|| format!("ERR User '{}' not found", String::from_utf8_lossy(req.arg(2))))?;
            let inner = Request::from_args(req.args_from(3));
            let spec = crate::command::lookup(inner.name())
                .ok_or_else(|| format!("ERR Command '{}' not found", String::from_utf8_lossy(req.arg(3))))?;
            if !spec.arity_ok(inner.argc()) {
                return Err(format!("ERR wrong number of arguments for '{}' command", spec.name));
            }
            let rules = target.rules.read();
            match check_rules(&rules, spec, &inner) {
                Ok(()) => out.ok(),
                Err(Denied::Command(name)) => {
                    out.bulk(format!("User {} has no permissions to run the '{name}' command", target.name).as_bytes())
                }
                Err(Denied::Key(pos)) => out.bulk(
                    format!("No permissions to access the '{}' key", String::from_utf8_lossy(inner.arg(pos)))
                        .as_bytes(),
                ),
                Err(Denied::Channel(pos)) => out.bulk(
                    format!("No permissions to access the '{}' channel", String::from_utf8_lossy(inner.arg(pos)))
                        .as_bytes(),
                ),
            }
        }
        "help" => {
            out.array_len(HELP.len());
            for l in HELP {
                out.simple(l);
            }
        }
        _ => {
            let _ = &client_info;
            return Err(format!("ERR unknown subcommand '{}'. Try ACL HELP.", String::from_utf8_lossy(req.arg(1))));
        }
    }
    Ok(())
}
