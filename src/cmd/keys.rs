//! Keyspace commands: DEL, UNLINK, EXISTS, TOUCH, TYPE, RENAME, RENAMENX,
//! COPY, MOVE, SWAPDB, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL,
//! the EXPIRE and TTL families, PERSIST, OBJECT ENCODING, TIME.

use super::table::{local, tx, Binding};
use super::notify::{GENERIC, NEW};
use super::{config, eq_ic, parse_i32_or, parse_i64, Args, Ctx, ScanOptions};
use crate::error::{CmdError, CmdResult, DB_OUT_OF_RANGE};
use crate::store::{Entry, Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[
    tx("del", del),
    tx("unlink", del),
    tx("exists", exists),
    tx("touch", exists),
    tx("type", type_),
    tx("rename", rename),
    tx("renamenx", renamenx),
    tx("copy", copy),
    tx("move", move_),
    tx("swapdb", swapdb),
    tx("keys", keys),
    tx("scan", scan),
    tx("randomkey", randomkey),
    tx("dbsize", dbsize),
    tx("flushdb", flushdb),
    tx("flushall", flushall),
    tx("expire", expire),
    tx("pexpire", pexpire),
    tx("expireat", expireat),
    tx("pexpireat", pexpireat),
    tx("ttl", ttl),
    tx("pttl", pttl),
    tx("expiretime", expiretime),
    tx("pexpiretime", pexpiretime),
    tx("persist", persist),
    tx("object|encoding", object_encoding),
    local("time", time),
];

const NO_SUCH_KEY: &str = "ERR no such key";
const SAME_OBJECT: &str = "ERR source and destination objects are the same";

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup(ctx.session.db, key, ctx.now_ms, Fetch::Meta)
}

/// `DEL key [key ...]`, `UNLINK key [key ...]`. Both are O(1) per key:
/// members of a deleted collection are freed in the background.
fn del(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let keys = args.rest();
    let deleted = ctx.store().delete(ctx.session.db, keys, ctx.now_ms)?;
    let n = deleted.len() as i64;
    // One `del` per deleted key, in the order the command named them.
    let mut unreported: std::collections::HashSet<Vec<u8>> = deleted.into_iter().collect();
    for k in keys {
        if unreported.remove(&k[..]) {
            ctx.notify(GENERIC, "del", k);
        }
    }
    Ok(Frame::Integer(n))
}

/// `EXISTS key [key ...]`, `TOUCH key [key ...]`: a key named twice counts twice.
fn exists(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let mut n = 0;
    for key in args.rest() {
        if lookup(ctx, key)?.is_some() {
            n += 1;
        }
    }
    Ok(Frame::Integer(n))
}

/// `TYPE key`
fn type_(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::simple(lookup(ctx, &key)?.map(|e| e.ktype.name()).unwrap_or("none")))
}

/// `RENAME key newkey`
fn rename(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    rename_generic(ctx, args, false)
}

/// `RENAMENX key newkey`
fn renamenx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    rename_generic(ctx, args, true)
}

fn rename_generic(ctx: &mut Ctx, args: &mut Args, nx: bool) -> CmdResult {
    let (src, dst) = (args.next_bytes()?, args.next_bytes()?);
    let db = ctx.session.db;
    if lookup(ctx, &src)?.is_none() {
        return Err(CmdError::Static(NO_SUCH_KEY));
    }
    if src == dst {
        return Ok(if nx { Frame::Integer(0) } else { Frame::ok() });
    }
    if lookup(ctx, &dst)?.is_some() && nx {
        return Ok(Frame::Integer(0));
    }
    ctx.store().delete_key(db, &dst)?;
    ctx.store().rename(db, &src, &dst)?;
    // Redis deletes an existing destination and adds the key anew.
    ctx.notify(NEW, "new", &dst);
    ctx.notify(GENERIC, "rename_from", &src);
    ctx.notify(GENERIC, "rename_to", &dst);
    Ok(if nx { Frame::Integer(1) } else { Frame::ok() })
}

fn parse_db(arg: &[u8]) -> Result<i16, CmdError> {
    let db = parse_i32_or(arg, None)?;
    if !(0..crate::DATABASES as i32).contains(&db) {
        return Err(CmdError::Static(DB_OUT_OF_RANGE));
    }
    Ok(db as i16)
}

/// `COPY source destination [DB destination-db] [REPLACE]`
fn copy(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (src, dst) = (args.next_bytes()?, args.next_bytes()?);
    let mut to = ctx.session.db;
    let mut replace = false;
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if eq_ic(&opt, "replace") {
            replace = true;
        } else if eq_ic(&opt, "db") && !args.is_empty() {
            to = parse_db(&args.next_bytes()?)?;
        } else {
            return Err(CmdError::syntax());
        }
    }
    if to == ctx.session.db && src == dst {
        return Err(CmdError::Static(SAME_OBJECT));
    }
    let Some(entry) = lookup(ctx, &src)? else { return Ok(Frame::Integer(0)) };
    let store = ctx.store();
    if store.lookup(to, &dst, ctx.now_ms, Fetch::Meta)?.is_some() && !replace {
        return Ok(Frame::Integer(0));
    }
    store.delete_key(to, &dst)?;
    store.copy(&entry, to, &dst)?;
    super::notify::emit(NEW, "new", to, &dst);
    super::notify::emit(GENERIC, "copy_to", to, &dst);
    Ok(Frame::Integer(1))
}

/// `MOVE key db`
fn move_(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let to = parse_db(&args.next_bytes()?)?;
    if to == ctx.session.db {
        return Err(CmdError::Static(SAME_OBJECT));
    }
    if lookup(ctx, &key)?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let store = ctx.store();
    if store.lookup(to, &key, ctx.now_ms, Fetch::Meta)?.is_some() {
        return Ok(Frame::Integer(0));
    }
    store.delete_key(to, &key)?;
    store.move_key(ctx.session.db, &key, to)?;
    super::notify::emit(NEW, "new", to, &key);
    ctx.notify(GENERIC, "move_from", &key);
    super::notify::emit(GENERIC, "move_to", to, &key);
    Ok(Frame::Integer(1))
}

/// `SWAPDB index1 index2`
fn swapdb(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let a = parse_i32_or(&args.next_bytes()?, Some("ERR invalid first DB index"))?;
    let b = parse_i32_or(&args.next_bytes()?, Some("ERR invalid second DB index"))?;
    let range = 0..crate::DATABASES as i32;
    if !range.contains(&a) || !range.contains(&b) {
        return Err(CmdError::Static(DB_OUT_OF_RANGE));
    }
    if a != b {
        ctx.store().swap_db(a as i16, b as i16)?;
    }
    Ok(Frame::ok())
}

/// `KEYS pattern`
fn keys(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let pattern = args.next_bytes()?;
    let all = ctx.store().all_keys(ctx.session.db, ctx.now_ms)?;
    let everything = pattern.as_ref() == b"*";
    Ok(Frame::Array(
        all.into_iter()
            .filter(|k| everything || pgkv_resp::glob::matches(&pattern, k))
            .map(|k| Frame::Bulk(Bytes::from(k)))
            .collect(),
    ))
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
///
/// The cursor is the id of the last key returned: ids never change for a
/// live key and new keys get larger ones, so a full iteration returns every
/// key that exists throughout it. COUNT is how many keys each call examines.
fn scan(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let o = ScanOptions::parse(args, true)?;
    let after = i64::try_from(o.cursor).unwrap_or(i64::MAX);
    let page = ctx.store().scan(ctx.session.db, after, o.count)?;
    let next = if (page.len() as i64) < o.count { 0 } else { page.last().map(|i| i.id).unwrap_or(0) };
    let keys = page
        .into_iter()
        .filter(|i| i.expire_at.is_none_or(|t| t > ctx.now_ms))
        .filter(|i| o.type_name.as_ref().is_none_or(|t| eq_ic(t, i.ktype.name())))
        .filter(|i| o.matches(&i.key))
        .map(|i| Frame::Bulk(Bytes::from(i.key)))
        .collect();
    Ok(Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::Array(keys)]))
}

/// `RANDOMKEY`
fn randomkey(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let pick = super::random_index(ctx, 1_000_000) as f64 / 1_000_000.0;
    Ok(match ctx.store().random_key(ctx.session.db, ctx.now_ms, pick)? {
        Some(k) => Frame::Bulk(Bytes::from(k)),
        None => Frame::NullBulk,
    })
}

/// `DBSIZE`
fn dbsize(ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    Ok(Frame::Integer(ctx.store().count(ctx.session.db)?))
}

/// The optional ASYNC|SYNC of FLUSHDB and FLUSHALL. Both are fast either way.
fn flush_mode(args: &mut Args) -> Result<(), CmdError> {
    match args.remaining() {
        0 => Ok(()),
        1 => {
            let mode = args.next_bytes()?;
            if eq_ic(&mode, "async") || eq_ic(&mode, "sync") {
                Ok(())
            } else {
                Err(CmdError::syntax())
            }
        }
        _ => Err(CmdError::syntax()),
    }
}

/// `FLUSHDB [ASYNC | SYNC]`
fn flushdb(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    flush_mode(args)?;
    ctx.store().flush_db(ctx.session.db)?;
    Ok(Frame::ok())
}

/// `FLUSHALL [ASYNC | SYNC]`
fn flushall(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    flush_mode(args)?;
    ctx.store().flush_all()?;
    Ok(Frame::ok())
}

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
}

/// `EXPIRE key seconds [NX | XX | GT | LT]`
fn expire(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, Unit::Seconds, false, "expire")
}

/// `PEXPIRE key milliseconds [NX | XX | GT | LT]`
fn pexpire(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, Unit::Millis, false, "pexpire")
}

/// `EXPIREAT key unix-time-seconds [NX | XX | GT | LT]`
fn expireat(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, Unit::Seconds, true, "expireat")
}

/// `PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]`
fn pexpireat(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    expire_generic(ctx, args, Unit::Millis, true, "pexpireat")
}

/// Redis's `expireGenericCommand`: flags are checked before the number,
/// a deadline in the past deletes the key.
fn expire_generic(ctx: &mut Ctx, args: &mut Args, unit: Unit, absolute: bool, name: &str) -> CmdResult {
    let key = args.next_bytes()?;
    let when_arg = args.next_bytes()?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in args.rest() {
        if eq_ic(opt, "nx") {
            nx = true;
        } else if eq_ic(opt, "xx") {
            xx = true;
        } else if eq_ic(opt, "gt") {
            gt = true;
        } else if eq_ic(opt, "lt") {
            lt = true;
        } else {
            let mut msg = b"ERR Unsupported option ".to_vec();
            msg.extend_from_slice(opt);
            return Err(CmdError::Msg(Bytes::from(crate::error::sanitize(msg))));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::msg("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::msg("ERR GT and LT options at the same time are not compatible"));
    }
    let invalid = || CmdError::msg(format!("ERR invalid expire time in '{name}' command"));
    let mut when = parse_i64(&when_arg)?;
    if let Unit::Seconds = unit {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    let base = if absolute { 0 } else { ctx.now_ms };
    let when = when.checked_add(base).ok_or_else(invalid)?;
    let Some(entry) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let current = entry.expire_at;
    if (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c))
    {
        return Ok(Frame::Integer(0));
    }
    if when <= ctx.now_ms {
        ctx.store().delete_entry(&entry)?;
        ctx.notify(GENERIC, "del", &key);
    } else {
        ctx.store().set_expire(&entry, Some(when))?;
        ctx.notify(GENERIC, "expire", &key);
    }
    Ok(Frame::Integer(1))
}

#[derive(Clone, Copy, PartialEq)]
enum TtlOutput {
    RelativeSeconds,
    RelativeMillis,
    AbsoluteSeconds,
    AbsoluteMillis,
}

fn ttl_generic(ctx: &mut Ctx, args: &mut Args, out: TtlOutput) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(entry) = lookup(ctx, &key)? else { return Ok(Frame::Integer(-2)) };
    let Some(at) = entry.expire_at else { return Ok(Frame::Integer(-1)) };
    let left = (at - ctx.now_ms).max(0);
    Ok(Frame::Integer(match out {
        TtlOutput::RelativeSeconds => (left + 500) / 1000,
        TtlOutput::RelativeMillis => left,
        TtlOutput::AbsoluteSeconds => (at + 500) / 1000,
        TtlOutput::AbsoluteMillis => at,
    }))
}

/// `TTL key`
fn ttl(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, TtlOutput::RelativeSeconds)
}

/// `PTTL key`
fn pttl(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, TtlOutput::RelativeMillis)
}

/// `EXPIRETIME key`
fn expiretime(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, TtlOutput::AbsoluteSeconds)
}

/// `PEXPIRETIME key`
fn pexpiretime(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    ttl_generic(ctx, args, TtlOutput::AbsoluteMillis)
}

/// `PERSIST key`
fn persist(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    match lookup(ctx, &key)? {
        Some(e) if e.expire_at.is_some() => {
            ctx.store().set_expire(&e, None)?;
            ctx.notify(GENERIC, "persist", &key);
            Ok(Frame::Integer(1))
        }
        _ => Ok(Frame::Integer(0)),
    }
}

/// `OBJECT ENCODING key`: the encoding Redis 7.0 would use for the value,
/// by its size rules (the `*-max-*` CONFIG parameters).
fn object_encoding(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let store = ctx.store();
    let Some(e) = store.lookup(ctx.session.db, &key, ctx.now_ms, Fetch::Value)? else { return Ok(Frame::NullBulk) };
    let encoding = match e.ktype {
        KeyType::String => {
            let v = e.value.unwrap_or_default();
            if v.len() <= 20 && pgkv_resp::num::parse_i64(&v).is_some() {
                "int"
            } else if v.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        KeyType::List => "quicklist",
        KeyType::Hash => {
            let (entries, value) = (config::value(ctx, "hash-max-listpack-entries")?, config::value(ctx, "hash-max-listpack-value")?);
            let small = e.card <= entries
                && store.hgetall(e.id)?.iter().all(|(f, v)| f.len() as i64 <= value && v.len() as i64 <= value);
            if small { "listpack" } else { "hashtable" }
        }
        KeyType::Set => {
            let entries = config::value(ctx, "set-max-intset-entries")?;
            let ints = e.card <= entries && store.smembers(e.id)?.iter().all(|m| pgkv_resp::num::parse_i64(m).is_some());
            if ints { "intset" } else { "hashtable" }
        }
        KeyType::ZSet => {
            let (entries, value) = (config::value(ctx, "zset-max-listpack-entries")?, config::value(ctx, "zset-max-listpack-value")?);
            let small = e.card <= entries && store.zall(&e)?.iter().all(|(m, _)| m.len() as i64 <= value);
            if small { "listpack" } else { "skiplist" }
        }
    };
    Ok(Frame::Bulk(Bytes::from_static(encoding.as_bytes())))
}

/// `TIME`
fn time(_ctx: &mut Ctx, _args: &mut Args) -> CmdResult {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(now.as_secs().to_string())),
        Frame::Bulk(Bytes::from(now.subsec_micros().to_string())),
    ]))
}
