//! Snapshot commands: SAVE BGSAVE LASTSAVE BGREWRITEAOF.

use ringcache_common::resp::{ReplyWriter, Request};

use super::{is, CmdError, CmdResult, Ctx, Deferred, Handler};
use crate::snapshot::BgsaveOutcome;

pub(super) fn handler(name: &str) -> Option<Handler> {
    Some(match name {
        "save" => save,
        "bgsave" => bgsave,
        "lastsave" => lastsave,
        "bgrewriteaof" => bgrewriteaof,
        _ => return None,
    })
}

/// Takes a snapshot and replies when it is on disk. Unlike Redis, only this client waits: the snapshot is
/// written by the background thread while every other client keeps being served.
fn save(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    *ctx.deferred = Some(Deferred::Save(ctx.shared.persistence.request_save()));
    Ok(())
}

fn bgsave(ctx: &mut Ctx<'_>, req: &Request) -> CmdResult {
    let schedule = match req.argc() {
        1 => false,
        2 if is(req.arg(1), "SCHEDULE") => true,
        _ => return Err(CmdError::Syntax),
    };
    let persistence = &ctx.shared.persistence;
    let was_running = persistence.in_progress();
    match persistence.request_background_save(schedule) {
        BgsaveOutcome::AlreadyInProgress => Err(CmdError::Other("ERR Background save already in progress".into())),
        BgsaveOutcome::Started if was_running => {
            ctx.out.simple("Background saving scheduled");
            Ok(())
        }
        BgsaveOutcome::Started => {
            ctx.out.simple("Background saving started");
            Ok(())
        }
    }
}

/// BGREWRITEAOF: the log's base is the snapshot, so a rewrite is a snapshot (which starts a new incremental
/// file and drops the ones before it). Redis's replies.
fn bgrewriteaof(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    let persistence = &ctx.shared.persistence;
    if persistence.in_progress() {
        persistence.request_background_save(true);
        ctx.out.simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    persistence.request_background_save(true);
    ctx.out.simple("Background append only file rewriting started");
    Ok(())
}

fn lastsave(ctx: &mut Ctx<'_>, _req: &Request) -> CmdResult {
    ctx.out.integer(ctx.shared.persistence.last_save_unix_secs() as i64);
    Ok(())
}
