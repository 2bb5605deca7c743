//! Lua scripts: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT LOAD / EXISTS /
//! FLUSH / KILL. The engine lives in `crate::lua`; the script cache is
//! `kv.scripts`, so EVALSHA works on every worker and after a restart.
//!
//! A script runs inside its command, in the batch's transaction: all of
//! its writes commit together or not at all.

use super::table::{local, tx, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::lua::{self, RunSpec, EVAL_COMPAT, NO_WRITES};
use crate::session::Session;
use bytes::Bytes;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[
    tx("eval", eval),
    tx("evalsha", evalsha),
    tx("eval_ro", eval_ro),
    tx("evalsha_ro", evalsha_ro),
    tx("script|load", script_load),
    tx("script|exists", script_exists),
    tx("script|flush", script_flush),
    local("script|kill", script_kill),
];

pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
const RO_WITH_WRITE_FLAG: &str = "ERR Can not execute a script with write flag using *_ro command.";

/// `EVAL script numkeys [key ...] [arg ...]`
fn eval(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

/// `EVALSHA sha1 numkeys [key ...] [arg ...]`
fn evalsha(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

/// `EVAL_RO script numkeys [key ...] [arg ...]`: write commands refused.
fn eval_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

/// `EVALSHA_RO sha1 numkeys [key ...] [arg ...]`
fn evalsha_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// The `numkeys` checks shared by EVAL and FCALL: splits the rest into
/// KEYS and ARGV.
pub fn split_keys(numkeys: i64, rest: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), CmdError> {
    if numkeys > rest.len() as i64 {
        return Err(CmdError::Static("ERR Number of keys can't be greater than number of args"));
    }
    if numkeys < 0 {
        return Err(CmdError::Static("ERR Number of keys can't be negative"));
    }
    Ok(rest.split_at(numkeys as usize))
}

/// `lua-time-limit` (alias `busy-reply-threshold`), from CONFIG.
pub fn time_limit(ctx: &Ctx) -> Result<i64, CmdError> {
    super::config::value(ctx, "lua-time-limit")
}

/// Compiles `body` into this worker's cache; a failure is Redis's error.
fn compile(sha: &str, body: &[u8]) -> Result<(), CmdError> {
    lua::script_compile(sha, body).map_err(|e| CmdError::msg(format!("ERR {e}")))
}

fn eval_generic(ctx: &mut Ctx, args: &mut Args, by_sha: bool, ro: bool) -> CmdResult {
    let command = args.argv;
    let script = args.next_bytes()?;
    if by_sha && script.len() != 40 {
        return Err(CmdError::Static(NOSCRIPT));
    }
    let numkeys = args.next_i64()?;
    let (keys, argv) = split_keys(numkeys, args.rest())?;
    let store = ctx.store();
    let sha = if by_sha { String::from_utf8_lossy(&script).to_ascii_lowercase() } else { lua::sha1hex(&script) };
    if by_sha {
        // kv.scripts decides: SCRIPT FLUSH on another worker empties it.
        if lua::script_cached(&sha) {
            if !store.script_known(&sha)? {
                return Err(CmdError::Static(NOSCRIPT));
            }
        } else {
            match store.script_body(&sha)? {
                Some(body) => compile(&sha, &body)?,
                None => return Err(CmdError::Static(NOSCRIPT)),
            }
        }
    } else {
        compile(&sha, &script)?;
        if !store.script_known(&sha)? {
            store.script_save(&sha, &script)?;
        }
    }
    let flags = lua::script_flags(&sha).unwrap_or(EVAL_COMPAT);
    let compat = flags & EVAL_COMPAT != 0;
    if !compat && flags & NO_WRITES == 0 && ro {
        return Err(CmdError::Static(RO_WITH_WRITE_FLAG));
    }
    let spec = RunSpec { eval: true, name: sha.clone(), read_only: ro || (!compat && flags & NO_WRITES != 0), limit_ms: time_limit(ctx)? };
    Ok(lua::script_run(ctx, &sha, keys, argv, spec, command))
}

/// `SCRIPT LOAD script`: the script's SHA1.
fn script_load(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let body = args.next_bytes()?;
    let sha = lua::sha1hex(&body);
    compile(&sha, &body)?;
    let store = ctx.store();
    if !store.script_known(&sha)? {
        store.script_save(&sha, &body)?;
    }
    Ok(Frame::Bulk(Bytes::from(sha)))
}

/// `SCRIPT EXISTS sha1 [sha1 ...]`: 1 or 0 for each; any case.
fn script_exists(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let shas: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let known = ctx.store().scripts_known(&shas)?;
    Ok(Frame::Array(shas.iter().map(|s| Frame::Integer(known.contains(s) as i64)).collect()))
}

/// `SCRIPT FLUSH [ASYNC|SYNC]`
fn script_flush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let rest = args.rest();
    let valid = match rest {
        [] => true,
        [mode] => eq_ic(mode, "sync") || eq_ic(mode, "async"),
        _ => false,
    };
    if !valid {
        return Err(CmdError::Static("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    ctx.store().script_flush()?;
    lua::script_flush();
    Ok(Frame::ok())
}

/// `SCRIPT KILL`: outside a busy script there is nothing to kill (the
/// worker answers it during one, see `answer_while_busy`).
fn script_kill(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(lua::kill(true))
}

/// Scripting commands are `noscript` (a script cannot start another) but
/// do make sense from SQL: `kv.eval`, `kv.fcall`, and `kv.call('SCRIPT',
/// 'LOAD', ...)` run them in the caller's transaction. There is no busy
/// script to kill there.
pub fn runs_from_sql(spec: &super::CommandSpec) -> bool {
    let family = spec.name.split('|').next().unwrap_or_default();
    ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "script", "function"].contains(&family)
        && !spec.name.ends_with("|kill")
}

/// How a client is answered while a script runs past lua-time-limit
/// (Redis's processCommand in that state): the usual errors first, then
/// -BUSY for every command without the `allow_busy` flag. SCRIPT KILL,
/// FUNCTION KILL and FUNCTION STATS act on the running script; other
/// allowed commands (AUTH, HELLO, QUIT...) run if they need no
/// transaction. Nothing here touches the database.
pub fn answer_while_busy(session: &mut Session, argv: &[Bytes]) -> Frame {
    if crate::gucs::command_disabled(&argv[0]) {
        return super::table::unknown_command(argv).into_frame();
    }
    let spec = match super::resolve(argv) {
        Ok(s) => s,
        Err(e) => return e.into_frame(),
    };
    if !session.authenticated && !spec.has_flag("no_auth") {
        return CmdError::Static(crate::error::NOAUTH).into_frame();
    }
    if !spec.has_flag("allow_busy") {
        return lua::busy_error();
    }
    match spec.name.as_str() {
        "script|kill" => lua::kill(true),
        "function|kill" => lua::kill(false),
        "function|stats" => super::functions::stats_while_busy(),
        _ if !spec.tx => super::dispatch(&mut Ctx::new(session, None), argv),
        _ => lua::busy_error(),
    }
}
