//! String commands: GET, SET and its variants, MGET/MSET, ranges, counters.

use super::table::{tx, Binding};
use super::notify::{GENERIC, NEW, STRING};
use super::{eq_ic, parse_i64, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::ffi::{add_long_double, AddError};
use crate::store::{Entry, Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[
    tx("get", get),
    tx("set", set),
    tx("setnx", setnx),
    tx("setex", setex),
    tx("psetex", psetex),
    tx("getset", getset),
    tx("getdel", getdel),
    tx("getex", getex),
    tx("mget", mget),
    tx("mset", mset),
    tx("msetnx", msetnx),
    tx("append", append),
    tx("strlen", strlen),
    tx("getrange", getrange),
    tx("substr", getrange),
    tx("setrange", setrange),
    tx("incr", incr),
    tx("decr", decr),
    tx("incrby", incrby),
    tx("decrby", decrby),
    tx("incrbyfloat", incrbyfloat),
];

/// Redis's proto-max-bulk-len: the largest string a command may build.
pub const MAX_STRING: i64 = 512 * 1024 * 1024;
const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

/// The live string at `key` (with its payload), or WRONGTYPE.
fn lookup_string(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup_typed(ctx.session.db, key, ctx.now_ms, KeyType::String, Fetch::Value)
}

fn value_frame(e: Option<Entry>) -> Frame {
    match e {
        Some(e) => Frame::Bulk(Bytes::from(e.value.unwrap_or_default())),
        None => Frame::NullBulk,
    }
}

/// `GET key`
fn get(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(value_frame(lookup_string(ctx, &key)?))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    Always,
    IfMissing,
    IfExists,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expiry {
    Unchanged,
    Persist,
    KeepTtl,
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl Expiry {
    fn timed(self) -> bool {
        matches!(self, Expiry::Ex | Expiry::Px | Expiry::ExAt | Expiry::PxAt)
    }
}

/// The options SET and GETEX share, parsed as Redis's
/// `parseExtendedStringArgumentsOrReply` does: a repeated option is
/// accepted (the last one wins), conflicting ones are a syntax error, and an
/// expiry token needs a following argument.
struct StringOptions {
    cond: Condition,
    get: bool,
    expiry: Expiry,
    /// The absolute deadline, for the timed expiries (see `deadline`).
    expire_at: Option<i64>,
    /// The timed expiry's argument, until `deadline` reads it.
    expire_arg: Option<Bytes>,
}

impl StringOptions {
    /// Reads the timed expiry's argument into `expire_at`, with Redis's
    /// `getExpireMillisecondsOrReply` errors. SET does so before anything
    /// else, GETEX only once the key is found and is a string.
    fn deadline(&mut self, now_ms: i64, cmd: &str) -> Result<(), CmdError> {
        if let Some(arg) = self.expire_arg.take() {
            self.expire_at = Some(expire_at_ms(&arg, self.expiry, now_ms, cmd)?);
        }
        Ok(())
    }
}

/// The options of SET (`for_set`) or GETEX, checked for syntax only.
fn parse_string_options(args: &mut Args, for_set: bool) -> Result<StringOptions, CmdError> {
    let mut o = StringOptions { cond: Condition::Always, get: false, expiry: Expiry::Unchanged, expire_at: None, expire_arg: None };
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        let has_next = !args.is_empty();
        if for_set && eq_ic(&opt, "nx") && o.cond != Condition::IfExists {
            o.cond = Condition::IfMissing;
        } else if for_set && eq_ic(&opt, "xx") && o.cond != Condition::IfMissing {
            o.cond = Condition::IfExists;
        } else if for_set && eq_ic(&opt, "get") {
            o.get = true;
        } else if for_set && eq_ic(&opt, "keepttl") && !o.expiry.timed() {
            o.expiry = Expiry::KeepTtl;
        } else if !for_set && eq_ic(&opt, "persist") && !o.expiry.timed() {
            o.expiry = Expiry::Persist;
        } else {
            let unit = [("ex", Expiry::Ex), ("px", Expiry::Px), ("exat", Expiry::ExAt), ("pxat", Expiry::PxAt)]
                .into_iter()
                .find(|(name, _)| eq_ic(&opt, name))
                .map(|(_, e)| e);
            match unit {
                Some(u) if has_next && (o.expiry == Expiry::Unchanged || o.expiry == u) => {
                    o.expiry = u;
                    o.expire_arg = Some(args.next_bytes()?);
                }
                _ => return Err(CmdError::syntax()),
            }
        }
    }
    Ok(o)
}

/// Redis's `getExpireMillisecondsOrReply`: an absolute unix-ms deadline
/// from a relative or absolute, seconds or milliseconds argument.
fn expire_at_ms(arg: &[u8], unit: Expiry, now_ms: i64, cmd: &str) -> Result<i64, CmdError> {
    let invalid = || CmdError::msg(format!("ERR invalid expire time in '{cmd}' command"));
    let mut ms = parse_i64(arg)?;
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

/// `SET key value [NX | XX] [GET] [EX seconds | PX milliseconds |
///  EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]`
fn set(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let mut o = parse_string_options(args, true)?;
    o.deadline(ctx.now_ms, "set")?;
    set_generic(ctx, &key, &value, &o)
}

/// Redis's `setGenericCommand`: the GET reply (or WRONGTYPE) is decided
/// before NX/XX.
fn set_generic(ctx: &mut Ctx, key: &[u8], value: &[u8], o: &StringOptions) -> CmdResult {
    let store = ctx.store();
    let (db, now) = (ctx.session.db, ctx.now_ms);
    let looked = o.get || o.cond != Condition::Always || o.expiry == Expiry::KeepTtl;
    let existing = if o.get {
        store.lookup_typed(db, key, now, KeyType::String, Fetch::Value)?
    } else if looked {
        store.lookup(db, key, now, Fetch::Meta)?
    } else {
        None
    };
    let found = existing.is_some();
    let created = if looked { !found } else { ctx.creates(key)? };
    let ttl = if o.expiry == Expiry::KeepTtl { existing.as_ref().and_then(|e| e.expire_at) } else { o.expire_at };
    let old_reply = if o.get { value_frame(existing) } else { Frame::NullBulk };
    if (o.cond == Condition::IfMissing && found) || (o.cond == Condition::IfExists && !found) {
        return Ok(old_reply);
    }
    if o.cond == Condition::IfMissing {
        // Not there when looked up (no row to lock): insert, or run again
        // if a concurrent transaction created it meanwhile.
        store.create_string(db, key, value, ttl)?;
    } else {
        store.set_string(db, key, value, ttl)?;
    }
    if created {
        ctx.notify(NEW, "new", key);
    }
    ctx.notify(STRING, "set", key);
    if o.expiry.timed() {
        ctx.notify(GENERIC, "expire", key);
    }
    Ok(if o.get { old_reply } else { Frame::ok() })
}

/// `SETNX key value`
fn setnx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, value) = (args.next_bytes()?, args.next_bytes()?);
    let o = StringOptions { cond: Condition::IfMissing, get: false, expiry: Expiry::Unchanged, expire_at: None, expire_arg: None };
    Ok(Frame::Integer(if set_generic(ctx, &key, &value, &o)?.is_ok_status() { 1 } else { 0 }))
}

/// `SETEX key seconds value`
fn setex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    setex_generic(ctx, args, Expiry::Ex, "setex")
}

/// `PSETEX key milliseconds value`
fn psetex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    setex_generic(ctx, args, Expiry::Px, "psetex")
}

fn setex_generic(ctx: &mut Ctx, args: &mut Args, unit: Expiry, cmd: &str) -> CmdResult {
    let (key, ttl, value) = (args.next_bytes()?, args.next_bytes()?, args.next_bytes()?);
    let at = expire_at_ms(&ttl, unit, ctx.now_ms, cmd)?;
    let o = StringOptions { cond: Condition::Always, get: false, expiry: unit, expire_at: Some(at), expire_arg: None };
    set_generic(ctx, &key, &value, &o)
}

/// `GETSET key value`
fn getset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, value) = (args.next_bytes()?, args.next_bytes()?);
    let o = StringOptions { cond: Condition::Always, get: true, expiry: Expiry::Unchanged, expire_at: None, expire_arg: None };
    set_generic(ctx, &key, &value, &o)
}

/// `GETDEL key`
fn getdel(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let e = lookup_string(ctx, &key)?;
    if let Some(e) = &e {
        ctx.store().delete_entry(e)?;
        ctx.notify(GENERIC, "del", &key);
    }
    Ok(value_frame(e))
}

/// `GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///  PXAT unix-time-milliseconds | PERSIST]`
fn getex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let mut o = parse_string_options(args, false)?;
    let Some(e) = lookup_string(ctx, &key)? else { return Ok(Frame::NullBulk) };
    o.deadline(ctx.now_ms, "getex")?;
    let store = ctx.store();
    match o.expiry {
        Expiry::Persist if e.expire_at.is_some() => {
            store.set_expire(&e, None)?;
            ctx.notify(GENERIC, "persist", &key);
        }
        _ if o.expiry.timed() => {
            let at = o.expire_at.expect("timed expiries carry a deadline");
            if at <= ctx.now_ms {
                store.delete_entry(&e)?;
                ctx.notify(GENERIC, "del", &key);
            } else {
                store.set_expire(&e, Some(at))?;
                ctx.notify(GENERIC, "expire", &key);
            }
        }
        _ => {}
    }
    Ok(value_frame(Some(e)))
}

/// `MGET key [key ...]`: a key that is not a string reads as nil.
fn mget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut out = Vec::with_capacity(args.remaining());
    for key in args.rest() {
        let e = ctx.store().lookup(ctx.session.db, key, ctx.now_ms, Fetch::Value)?;
        out.push(match e {
            Some(e) if e.ktype == KeyType::String => value_frame(Some(e)),
            _ => Frame::NullBulk,
        });
    }
    Ok(Frame::Array(out))
}

fn pairs<'a>(args: &mut Args<'a>, cmd: &str) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
    let rest = args.rest();
    if rest.len() % 2 != 0 {
        return Err(CmdError::Arity(cmd.into()));
    }
    Ok(rest.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
}

/// `MSET key value [key value ...]`
fn mset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let kvs = pairs(args, "mset")?;
    let created = created_keys(ctx, &kvs)?;
    ctx.store().set_strings(ctx.session.db, &kvs)?;
    set_events(ctx, &kvs, &created);
    Ok(Frame::ok())
}

/// `MSETNX key value [key value ...]`: all or nothing.
fn msetnx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let kvs = pairs(args, "msetnx")?;
    for (k, _) in &kvs {
        if ctx.store().lookup(ctx.session.db, k, ctx.now_ms, Fetch::Meta)?.is_some() {
            return Ok(Frame::Integer(0));
        }
    }
    let created = created_keys(ctx, &kvs)?;
    ctx.store().create_strings(ctx.session.db, &kvs)?;
    set_events(ctx, &kvs, &created);
    Ok(Frame::Integer(1))
}

/// Which keys of MSET-style pairs the write creates (`Ctx::creates`): a key
/// named twice is created by its first pair only, as in Redis, which sets
/// them one after another.
fn created_keys(ctx: &Ctx, kvs: &[(Bytes, Bytes)]) -> Result<Vec<bool>, CmdError> {
    let mut seen = std::collections::HashSet::new();
    let mut created = Vec::with_capacity(kvs.len());
    for (k, _) in kvs {
        created.push(ctx.creates(k)? && seen.insert(k));
    }
    Ok(created)
}

/// The events of MSET-style pairs, key by key: `new` (for the keys
/// created) and `set`.
fn set_events(ctx: &Ctx, kvs: &[(Bytes, Bytes)], created: &[bool]) {
    for ((k, _), created) in kvs.iter().zip(created) {
        if *created {
            ctx.notify(NEW, "new", k);
        }
        ctx.notify(STRING, "set", k);
    }
}

/// `APPEND key value`
fn append(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, value) = (args.next_bytes()?, args.next_bytes()?);
    match lookup_string(ctx, &key)? {
        None => {
            ctx.store().insert_string(ctx.session.db, &key, &value)?;
            ctx.notify(STRING, "append", &key);
            Ok(Frame::Integer(value.len() as i64))
        }
        Some(e) => {
            let mut v = e.value.as_deref().unwrap_or_default().to_vec();
            if (v.len() + value.len()) as i64 > MAX_STRING {
                return Err(CmdError::Static(TOO_BIG));
            }
            v.extend_from_slice(&value);
            ctx.store().set_value(&e, &v)?;
            ctx.notify(STRING, "append", &key);
            Ok(Frame::Integer(v.len() as i64))
        }
    }
}

/// `STRLEN key`
fn strlen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Integer(lookup_string(ctx, &key)?.and_then(|e| e.value).map(|v| v.len() as i64).unwrap_or(0)))
}

/// `GETRANGE key start end` (and its old name `SUBSTR`)
fn getrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let (mut start, mut end) = (args.next_i64()?, args.next_i64()?);
    let empty = Frame::Bulk(Bytes::new());
    let Some(e) = lookup_string(ctx, &key)? else { return Ok(empty) };
    let v = e.value.unwrap_or_default();
    let len = v.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(empty);
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(empty);
    }
    Ok(Frame::Bulk(Bytes::copy_from_slice(&v[start as usize..=end as usize])))
}

/// `SETRANGE key offset value`
fn setrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let offset = args.next_i64()?;
    let value = args.next_bytes()?;
    if offset < 0 {
        return Err(CmdError::msg("ERR offset is out of range"));
    }
    let existing = lookup_string(ctx, &key)?;
    let old_len = existing.as_ref().and_then(|e| e.value.as_ref()).map(|v| v.len()).unwrap_or(0);
    if value.is_empty() {
        return Ok(Frame::Integer(old_len as i64));
    }
    if offset.saturating_add(value.len() as i64) > MAX_STRING {
        return Err(CmdError::Static(TOO_BIG));
    }
    let mut v = existing.as_ref().and_then(|e| e.value.as_deref()).unwrap_or_default().to_vec();
    let end = offset as usize + value.len();
    if v.len() < end {
        v.resize(end, 0);
    }
    v[offset as usize..end].copy_from_slice(&value);
    match &existing {
        Some(e) => ctx.store().set_value(e, &v)?,
        None => ctx.store().insert_string(ctx.session.db, &key, &v)?,
    }
    ctx.notify(STRING, "setrange", &key);
    Ok(Frame::Integer(v.len() as i64))
}

/// Redis's `incrDecrCommand`: the stored value must be a canonical integer;
/// the TTL is kept.
fn incr_by(ctx: &mut Ctx, key: &[u8], by: i64) -> CmdResult {
    let e = lookup_string(ctx, key)?;
    let current = match &e {
        Some(e) => parse_i64(e.value.as_deref().unwrap_or_default())?,
        None => 0,
    };
    let new = current.checked_add(by).ok_or_else(|| CmdError::msg("ERR increment or decrement would overflow"))?;
    let text = new.to_string();
    match &e {
        Some(e) => ctx.store().set_value(e, text.as_bytes())?,
        None => ctx.store().insert_string(ctx.session.db, key, text.as_bytes())?,
    }
    ctx.notify(STRING, "incrby", key);
    Ok(Frame::Integer(new))
}

/// `INCR key`
fn incr(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    incr_by(ctx, &key, 1)
}

/// `DECR key`
fn decr(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    incr_by(ctx, &key, -1)
}

/// `INCRBY key increment`
fn incrby(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let by = args.next_i64()?;
    incr_by(ctx, &key, by)
}

/// `DECRBY key decrement`
fn decrby(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let by = args.next_i64()?;
    if by == i64::MIN {
        return Err(CmdError::msg("ERR decrement would overflow"));
    }
    incr_by(ctx, &key, -by)
}

/// `INCRBYFLOAT key increment`: long double arithmetic, as Redis does it.
fn incrbyfloat(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let by = args.next_bytes()?;
    let e = lookup_string(ctx, &key)?;
    let current = e.as_ref().and_then(|e| e.value.clone()).unwrap_or_else(|| Bytes::from_static(b"0"));
    let new = add_long_double(&current, &by).map_err(|err| match err {
        AddError::BadValue | AddError::BadIncrement => CmdError::msg("ERR value is not a valid float"),
        AddError::NotFinite => CmdError::msg("ERR increment would produce NaN or Infinity"),
    })?;
    match &e {
        Some(e) => ctx.store().set_value(e, &new)?,
        None => ctx.store().insert_string(ctx.session.db, &key, &new)?,
    }
    ctx.notify(STRING, "incrbyfloat", &key);
    Ok(Frame::Bulk(Bytes::from(new)))
}
