//! Hash commands: HSET, HSETNX, HMSET, HGET, HMGET, HDEL, HEXISTS, HGETALL,
//! HKEYS, HVALS, HLEN, HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN.
//!
//! Fields come back in insertion order, as Redis reports small (listpack)
//! hashes.

use super::table::{tx, Binding};
use super::notify::HASH;
use super::sample::{self, Keys};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::ffi::{add_long_double, parse_long_double, AddError};
use crate::store::{Entry, Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::{Frame, Protocol};

pub const COMMANDS: &[Binding] = &[
    tx("hset", hset),
    tx("hmset", hmset),
    tx("hsetnx", hsetnx),
    tx("hget", hget),
    tx("hmget", hmget),
    tx("hdel", hdel),
    tx("hexists", hexists),
    tx("hgetall", hgetall),
    tx("hkeys", hkeys),
    tx("hvals", hvals),
    tx("hlen", hlen),
    tx("hstrlen", hstrlen),
    tx("hincrby", hincrby),
    tx("hincrbyfloat", hincrbyfloat),
    tx("hrandfield", hrandfield),
    tx("hscan", hscan),
];

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup_typed(ctx.session.db, key, ctx.now_ms, KeyType::Hash, Fetch::Meta)
}

fn create(ctx: &Ctx, key: &[u8]) -> Result<Entry, CmdError> {
    ctx.store().lookup_or_create(ctx.session.db, key, ctx.now_ms, KeyType::Hash)
}

fn bulk(b: Vec<u8>) -> Frame {
    Frame::Bulk(Bytes::from(b))
}

fn field_pairs(args: &mut Args, cmd: &str) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
    let rest = args.rest();
    if rest.len() % 2 != 0 {
        return Err(CmdError::Arity(cmd.into()));
    }
    Ok(rest.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
}

/// `HSET key field value [field value ...]`: how many fields are new.
fn hset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let pairs = field_pairs(args, "hset")?;
    let e = create(ctx, &key)?;
    let added = ctx.store().hset(&e, pairs)?;
    ctx.notify(HASH, "hset", &key);
    Ok(Frame::Integer(added))
}

/// `HMSET key field value [field value ...]`
fn hmset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let pairs = field_pairs(args, "hmset")?;
    let e = create(ctx, &key)?;
    ctx.store().hset(&e, pairs)?;
    ctx.notify(HASH, "hset", &key);
    Ok(Frame::ok())
}

/// `HSETNX key field value`
fn hsetnx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, field, value) = (args.next_bytes()?, args.next_bytes()?, args.next_bytes()?);
    let e = create(ctx, &key)?;
    let added = ctx.store().hsetnx(&e, &field, &value)?;
    if added {
        ctx.notify(HASH, "hset", &key);
    }
    Ok(Frame::Integer(added as i64))
}

/// `HGET key field`
fn hget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, field) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::NullBulk) };
    Ok(ctx.store().hget(e.id, &field)?.map(bulk).unwrap_or(Frame::NullBulk))
}

/// `HMGET key field [field ...]`
fn hmget(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let fields = args.rest();
    let values = match lookup(ctx, &key)? {
        Some(e) => ctx.store().hmget(e.id, fields)?,
        None => vec![None; fields.len()],
    };
    Ok(Frame::Array(values.into_iter().map(|v| v.map(bulk).unwrap_or(Frame::NullBulk)).collect()))
}

/// `HDEL key field [field ...]`
fn hdel(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let removed = ctx.store().hdel(&e, args.rest())?;
    if removed > 0 {
        ctx.notify(HASH, "hdel", &key);
    }
    Ok(Frame::Integer(removed))
}

/// `HEXISTS key field`
fn hexists(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, field) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    Ok(Frame::Integer(ctx.store().hget(e.id, &field)?.is_some() as i64))
}

fn all_fields(ctx: &Ctx, key: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CmdError> {
    match lookup(ctx, key)? {
        Some(e) => ctx.store().hgetall(e.id),
        None => Ok(Vec::new()),
    }
}

/// `HGETALL key`: a map in RESP3.
fn hgetall(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Map(all_fields(ctx, &key)?.into_iter().map(|(f, v)| (bulk(f), bulk(v))).collect()))
}

/// `HKEYS key`
fn hkeys(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Array(all_fields(ctx, &key)?.into_iter().map(|(f, _)| bulk(f)).collect()))
}

/// `HVALS key`
fn hvals(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Array(all_fields(ctx, &key)?.into_iter().map(|(_, v)| bulk(v)).collect()))
}

/// `HLEN key`: O(1), from the key row.
fn hlen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Integer(lookup(ctx, &key)?.map(|e| e.card).unwrap_or(0)))
}

/// `HSTRLEN key field`
fn hstrlen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, field) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    Ok(Frame::Integer(ctx.store().hget(e.id, &field)?.map(|v| v.len() as i64).unwrap_or(0)))
}

/// `HINCRBY key field increment`
fn hincrby(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, field) = (args.next_bytes()?, args.next_bytes()?);
    let by = args.next_i64()?;
    let e = create(ctx, &key)?;
    let current = match ctx.store().hget(e.id, &field)? {
        Some(v) => pgkv_resp::num::parse_i64(&v).ok_or_else(|| CmdError::msg("ERR hash value is not an integer"))?,
        None => 0,
    };
    let new = current.checked_add(by).ok_or_else(|| CmdError::msg("ERR increment or decrement would overflow"))?;
    ctx.store().hset(&e, vec![(field, Bytes::from(new.to_string()))])?;
    ctx.notify(HASH, "hincrby", &key);
    Ok(Frame::Integer(new))
}

/// `HINCRBYFLOAT key field increment`: long double arithmetic, as Redis.
fn hincrbyfloat(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, field, by) = (args.next_bytes()?, args.next_bytes()?, args.next_bytes()?);
    match parse_long_double(&by) {
        None => return Err(CmdError::msg("ERR value is not a valid float")),
        Some(false) => return Err(CmdError::msg("ERR value is NaN or Infinity")),
        Some(true) => {}
    }
    let e = create(ctx, &key)?;
    let current = ctx.store().hget(e.id, &field)?.unwrap_or_else(|| b"0".to_vec());
    let new = add_long_double(&current, &by).map_err(|err| match err {
        AddError::BadValue => CmdError::msg("ERR hash value is not a float"),
        AddError::BadIncrement => CmdError::msg("ERR value is not a valid float"),
        AddError::NotFinite => CmdError::msg("ERR increment would produce NaN or Infinity"),
    });
    let new = match new {
        Ok(v) => v,
        Err(err) => {
            // A hash created just for this failed command must not linger.
            ctx.store().set_card(&e, e.card, e.head)?;
            return Err(err);
        }
    };
    ctx.store().hset(&e, vec![(field, Bytes::from(new.clone()))])?;
    ctx.notify(HASH, "hincrbyfloat", &key);
    Ok(Frame::Bulk(Bytes::from(new)))
}

/// `HRANDFIELD key [count [WITHVALUES]]`
fn hrandfield(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    if args.is_empty() {
        let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::NullBulk) };
        if let Some(mut one) = sample_fields(ctx, &e, None)? {
            return Ok(one.pop().map_or(Frame::NullBulk, |(f, _)| bulk(f)));
        }
        let fields = ctx.store().hgetall(e.id)?;
        let pick = super::random_index(ctx, fields.len());
        return Ok(bulk(fields[pick].0.clone()));
    }
    let count = args.next_i64()?;
    let with_values = match args.remaining() {
        0 => false,
        1 if eq_ic(&args.next_bytes()?, "withvalues") => true,
        _ => return Err(CmdError::syntax()),
    };
    if count == i64::MIN {
        return Err(CmdError::msg("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Array(vec![])) };
    let picked = match sample_fields(ctx, &e, Some(count))? {
        Some(picked) => picked,
        None => {
            let fields = ctx.store().hgetall(e.id)?;
            super::random_sample(ctx, fields.len(), count).into_iter().map(|i| fields[i].clone()).collect()
        }
    };
    let resp3 = ctx.session.proto == Protocol::Resp3;
    let mut out = Vec::new();
    for (f, v) in picked {
        match (with_values, resp3) {
            (true, true) => out.push(Frame::Array(vec![bulk(f), bulk(v)])),
            (true, false) => out.extend([bulk(f), bulk(v)]),
            (false, _) => out.push(bulk(f)),
        }
    }
    Ok(Frame::Array(out))
}

/// HRANDFIELD's picks from a large hash, through its `(id, seq)` index
/// (`sample::members`); `None` where the hash is better read whole.
fn sample_fields(ctx: &Ctx, e: &Entry, count: Option<i64>) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>, CmdError> {
    let (n, distinct) = sample::wanted(count);
    let store = ctx.store();
    sample::members(e.card, Keys::Seq { head: e.head }, n, distinct, |seqs, n| {
        Ok(store.hscan(e.id, seqs, n)?.into_iter().map(|(seq, f, v)| (seq, (f, v))).collect())
    })
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`
///
/// A small hash (one Redis keeps as a listpack) comes back whole, with
/// cursor 0, as Redis does. A larger one is paged by insertion number, so a
/// full iteration returns every field present throughout.
fn hscan(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let o = super::ScanOptions::parse(args, false)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(scan_reply(0, Vec::new())) };
    let (next, fields) = if e.card <= super::config::value(ctx, "hash-max-listpack-entries")? {
        (0, ctx.store().hgetall(e.id)?)
    } else {
        o.page(|from, n| Ok(ctx.store().hscan(e.id, from..i64::MAX, n)?.into_iter().map(|(s, f, v)| (s, (f, v))).collect()))?
    };
    let mut out = Vec::new();
    for (f, v) in fields {
        if o.matches(&f) {
            out.extend([bulk(f), bulk(v)]);
        }
    }
    Ok(scan_reply(next, out))
}

/// `[cursor, [items]]`, the reply of every SCAN command.
pub fn scan_reply(next: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::Bulk(Bytes::from(next.to_string())), Frame::Array(items)])
}
