//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queuing happens in the dispatcher (`cmd::run`): while a client is in
//! MULTI, every command but EXEC, DISCARD, MULTI, WATCH, QUIT and RESET is
//! checked (name, arity) and queued. EXEC runs the queue inside the batch's
//! transaction, so the whole block commits or rolls back together and its
//! reply leaves only after that commit.
//!
//! WATCH takes a stamp of the key's touch counter (`crate::shared`), which
//! every committed write moves, whoever made it: another client, another
//! worker, a script, a `kv.*` call in SQL. EXEC first locks the watched key
//! rows, so a writer still in flight finishes before the check. A key that
//! expires after WATCH also fails EXEC, as in Redis 7.

use super::table::{local, tx, Binding};
use super::{dispatch, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::session::{Multi, Watched};
use crate::store::Fetch;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] =
    &[local("multi", multi), tx("exec", exec), local("discard", discard), tx("watch", watch), local("unwatch", unwatch)];

/// Commands that run at once even inside MULTI.
pub fn runs_inside_multi(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

fn multi(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err(CmdError::Static("ERR MULTI calls can not be nested"));
    }
    ctx.session.multi = Some(Multi::default());
    Ok(Frame::ok())
}

fn discard(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    if ctx.session.multi.take().is_none() {
        return Err(CmdError::Static("ERR DISCARD without MULTI"));
    }
    ctx.session.watched.clear();
    Ok(Frame::ok())
}

fn watch(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    if ctx.session.multi.is_some() {
        return Err(CmdError::Static("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.session.db;
    for key in args.rest() {
        if ctx.session.watched.iter().any(|w| w.db == db && w.key == key) {
            continue;
        }
        let found = ctx.store().lookup(db, key, ctx.now_ms, Fetch::Meta)?;
        let stamp = crate::shared::stamp(db, key, found.is_some());
        let expire_at = found.and_then(|e| e.expire_at);
        ctx.session.watched.push(Watched { db, key: key.clone(), stamp, expire_at });
    }
    Ok(Frame::ok())
}

fn unwatch(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    ctx.session.watched.clear();
    Ok(Frame::ok())
}

fn exec(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let Some(queue) = ctx.session.multi.take() else {
        return Err(CmdError::Static("ERR EXEC without MULTI"));
    };
    let watched = std::mem::take(&mut ctx.session.watched);
    if queue.dirty {
        return Err(CmdError::Static("EXECABORT Transaction discarded because of previous errors."));
    }
    // Lock first, then compare. The watched rows: a writer that changed
    // one and has not committed is waited for, and its commit moves the
    // counter. The watched slots: another EXEC about to create a watched
    // key (no row to lock yet) is waited for too.
    ctx.store().lock_watch_slots(watched.iter().map(|w| w.stamp.slot()).collect())?;
    let locking = ctx.store().for_command(true);
    for w in &watched {
        locking.lookup(w.db, &w.key, ctx.now_ms, Fetch::Meta)?;
    }
    let now = super::now_ms();
    if watched.iter().any(|w| crate::shared::changed(&w.stamp) || w.expire_at.is_some_and(|t| t <= now)) {
        return Ok(Frame::NullArray);
    }
    ctx.session.in_exec = true;
    let store = ctx.store;
    let mut replies = Vec::with_capacity(queue.queued.len());
    for argv in &queue.queued {
        replies.push(dispatch(&mut Ctx::new(ctx.session, store), argv));
    }
    ctx.session.in_exec = false;
    Ok(Frame::Array(replies))
}
