//! String commands: GET, SET.

use super::table::{tx, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[tx("get", get), tx("set", set)];

/// `GET key`
fn get(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let entry = ctx.store().lookup_typed(ctx.session.db, &key, ctx.now_ms, KeyType::String, Fetch::Value)?;
    Ok(match entry {
        Some(e) => Frame::Bulk(Bytes::from(e.value.unwrap_or_default())),
        None => Frame::NullBulk,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    IfMissing,
    IfExists,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Persist,
    KeepTtl,
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// `SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
///  EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]`
///
/// Options are parsed as Redis's `parseExtendedStringArgumentsOrReply` does:
/// a repeated option is accepted (the last one wins), conflicting ones are a
/// syntax error, and an expiry token needs a following argument.
fn set(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let mut cond = Condition::Always;
    let mut with_get = false;
    let mut expiry = Expiry::Persist;
    let mut expire_arg: Option<Bytes> = None;
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        let has_next = !args.is_empty();
        let timed = matches!(expiry, Expiry::Ex | Expiry::Px | Expiry::ExAt | Expiry::PxAt);
        if eq_ic(&opt, "nx") && cond != Condition::IfExists {
            cond = Condition::IfMissing;
        } else if eq_ic(&opt, "xx") && cond != Condition::IfMissing {
            cond = Condition::IfExists;
        } else if eq_ic(&opt, "get") {
            with_get = true;
        } else if eq_ic(&opt, "keepttl") && !timed {
            expiry = Expiry::KeepTtl;
        } else {
            let unit = [("ex", Expiry::Ex), ("px", Expiry::Px), ("exat", Expiry::ExAt), ("pxat", Expiry::PxAt)]
                .into_iter()
                .find(|(name, _)| eq_ic(&opt, name))
                .map(|(_, e)| e);
            match unit {
                Some(u) if has_next && (expiry == Expiry::Persist || expiry == u) => {
                    expiry = u;
                    expire_arg = Some(args.next_bytes()?);
                }
                _ => return Err(CmdError::syntax()),
            }
        }
    }
    let expire_at = match (expiry, expire_arg) {
        (Expiry::Persist | Expiry::KeepTtl, _) => None,
        (unit, Some(arg)) => Some(expire_at_ms(&arg, unit, ctx.now_ms, "set")?),
        (_, None) => unreachable!("an expiry token always takes its argument"),
    };
    let store = ctx.store();
    let (db, now) = (ctx.session.db, ctx.now_ms);
    let existing = if with_get {
        store.lookup_typed(db, &key, now, KeyType::String, Fetch::Value)?
    } else if cond != Condition::Always || expiry == Expiry::KeepTtl {
        store.lookup(db, &key, now, Fetch::Meta)?
    } else {
        None
    };
    let old_reply = match &existing {
        Some(e) if with_get => Frame::Bulk(Bytes::from(e.value.clone().unwrap_or_default())),
        _ => Frame::NullBulk,
    };
    let found = existing.is_some();
    if (cond == Condition::IfMissing && found) || (cond == Condition::IfExists && !found) {
        return Ok(old_reply);
    }
    let ttl = if expiry == Expiry::KeepTtl { existing.and_then(|e| e.expire_at) } else { expire_at };
    ctx.store().set_string(ctx.session.db, &key, &value, ttl)?;
    Ok(if with_get { old_reply } else { Frame::ok() })
}

/// Redis's `getExpireMillisecondsOrReply`: an absolute unix-ms deadline from
/// a relative or absolute, seconds or milliseconds argument.
fn expire_at_ms(arg: &[u8], unit: Expiry, now_ms: i64, cmd: &str) -> Result<i64, CmdError> {
    let invalid = || CmdError::msg(format!("ERR invalid expire time in '{cmd}' command"));
    let mut ms = super::parse_i64(arg)?;
    let seconds = matches!(unit, Expiry::Ex | Expiry::ExAt);
    if ms <= 0 || (seconds && ms > i64::MAX / 1000) {
        return Err(invalid());
    }
    if seconds {
        ms *= 1000;
    }
    if matches!(unit, Expiry::Ex | Expiry::Px) {
        // Redis adds without an overflow check and then rejects a result <= 0.
        ms = ms.wrapping_add(now_ms);
    }
    if ms <= 0 {
        return Err(invalid());
    }
    Ok(ms)
}
