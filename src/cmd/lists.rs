//! List commands: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE,
//! LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE, RPOPLPUSH, LMPOP, and
//! the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP (see `blocking`).

use super::table::{tx, Binding};
use super::notify::LIST;
use super::{blocking, clamp_range, eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Entry, Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::Frame;

pub const COMMANDS: &[Binding] = &[
    tx("lpush", lpush),
    tx("rpush", rpush),
    tx("lpushx", lpushx),
    tx("rpushx", rpushx),
    tx("lpop", lpop),
    tx("rpop", rpop),
    tx("llen", llen),
    tx("lrange", lrange),
    tx("lindex", lindex),
    tx("lset", lset),
    tx("linsert", linsert),
    tx("lrem", lrem),
    tx("ltrim", ltrim),
    tx("lpos", lpos),
    tx("lmove", lmove),
    tx("rpoplpush", rpoplpush),
    tx("lmpop", lmpop),
    tx("blpop", blpop),
    tx("brpop", brpop),
    tx("blmove", blmove),
    tx("brpoplpush", brpoplpush),
    tx("blmpop", blmpop),
];

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup_typed(ctx.session.db, key, ctx.now_ms, KeyType::List, Fetch::Meta)
}

fn bulk(v: Bytes) -> Frame {
    Frame::Bulk(v)
}

fn push(ctx: &mut Ctx, args: &mut Args, left: bool, only_if_exists: bool) -> CmdResult {
    let key = args.next_bytes()?;
    let values = args.rest();
    let e = match lookup(ctx, &key)? {
        Some(e) => e,
        None if only_if_exists => return Ok(Frame::Integer(0)),
        None => ctx.store().lookup_or_create(ctx.session.db, &key, ctx.now_ms, KeyType::List)?,
    };
    let len = ctx.store().list_push(&e, values, left)?;
    ctx.notify(LIST, push_event(left), &key);
    Ok(Frame::Integer(len))
}

/// `LPUSH key element [element ...]`
fn lpush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    push(ctx, args, true, false)
}

/// `RPUSH key element [element ...]`
fn rpush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    push(ctx, args, false, false)
}

/// `LPUSHX key element [element ...]`
fn lpushx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    push(ctx, args, true, true)
}

/// `RPUSHX key element [element ...]`
fn rpushx(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    push(ctx, args, false, true)
}

fn push_event(left: bool) -> &'static str {
    if left {
        "lpush"
    } else {
        "rpush"
    }
}

fn pop_event(left: bool) -> &'static str {
    if left {
        "lpop"
    } else {
        "rpop"
    }
}

/// Redis's `popGenericCommand`.
fn pop(ctx: &mut Ctx, args: &mut Args, left: bool, name: &str) -> CmdResult {
    let key = args.next_bytes()?;
    let count = match args.remaining() {
        0 => None,
        1 => Some(super::parse_non_negative(&args.next_bytes()?, None)?),
        _ => return Err(CmdError::Arity(name.into())),
    };
    let Some(e) = lookup(ctx, &key)? else {
        return Ok(if count.is_some() { Frame::NullArray } else { Frame::NullBulk });
    };
    if count == Some(0) {
        return Ok(Frame::Array(vec![]));
    }
    let popped = ctx.store().list_pop(&e, count.unwrap_or(1), left)?;
    ctx.notify(LIST, pop_event(left), &key);
    Ok(match count {
        Some(_) => Frame::Array(popped.into_iter().map(bulk).collect()),
        None => popped.into_iter().next().map(bulk).unwrap_or(Frame::NullBulk),
    })
}

/// `LPOP key [count]`
fn lpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    pop(ctx, args, true, "lpop")
}

/// `RPOP key [count]`
fn rpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    pop(ctx, args, false, "rpop")
}

/// `LLEN key`: O(1), from the key row.
fn llen(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Integer(lookup(ctx, &key)?.map(|e| e.card).unwrap_or(0)))
}

/// `LRANGE key start stop`
fn lrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let (start, end) = (args.next_i64()?, args.next_i64()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Array(vec![])) };
    let Some((from, to)) = clamp_range(start, end, e.card) else { return Ok(Frame::Array(vec![])) };
    Ok(Frame::Array(ctx.store().list_range(&e, from, to)?.into_iter().map(bulk).collect()))
}

/// A list index (negative from the end) as an offset, if in range.
fn offset(index: i64, len: i64) -> Option<i64> {
    let i = if index < 0 { index + len } else { index };
    (0..len).contains(&i).then_some(i)
}

/// `LINDEX key index`: one index probe.
fn lindex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::NullBulk) };
    let index = args.next_i64()?;
    let Some(i) = offset(index, e.card) else { return Ok(Frame::NullBulk) };
    Ok(ctx.store().list_range(&e, i, i)?.into_iter().next().map(bulk).unwrap_or(Frame::NullBulk))
}

/// `LSET key index element`: one index probe.
fn lset(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Err(CmdError::msg("ERR no such key")) };
    let index = args.next_i64()?;
    let value = args.next_bytes()?;
    let Some(i) = offset(index, e.card) else { return Err(CmdError::msg("ERR index out of range")) };
    ctx.store().list_set(&e, i, &value)?;
    ctx.notify(LIST, "lset", &key);
    Ok(Frame::ok())
}

fn all(ctx: &Ctx, e: &Entry) -> Result<Vec<Bytes>, CmdError> {
    if e.card == 0 {
        return Ok(Vec::new());
    }
    ctx.store().list_range(e, 0, e.card - 1)
}

/// `LINSERT key BEFORE|AFTER pivot element`
fn linsert(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let where_ = args.next_bytes()?;
    let after = if eq_ic(&where_, "after") {
        true
    } else if eq_ic(&where_, "before") {
        false
    } else {
        return Err(CmdError::syntax());
    };
    let (pivot, value) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let mut values = all(ctx, &e)?;
    let Some(at) = values.iter().position(|v| *v == pivot) else { return Ok(Frame::Integer(-1)) };
    values.insert(if after { at + 1 } else { at }, value);
    ctx.store().list_rewrite(&e, &values)?;
    ctx.notify(LIST, "linsert", &key);
    Ok(Frame::Integer(values.len() as i64))
}

/// `LREM key count element`
fn lrem(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let count = args.next_i64()?;
    let target = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let mut values = all(ctx, &e)?;
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let mut removed = 0usize;
    let mut keep = vec![true; values.len()];
    let order: Box<dyn Iterator<Item = usize>> = if count < 0 { Box::new((0..values.len()).rev()) } else { Box::new(0..values.len()) };
    for i in order {
        if removed < limit && values[i] == target {
            keep[i] = false;
            removed += 1;
        }
    }
    if removed > 0 {
        let mut k = keep.into_iter();
        values.retain(|_| k.next().unwrap_or(true));
        ctx.store().list_rewrite(&e, &values)?;
        ctx.notify(LIST, "lrem", &key);
    }
    Ok(Frame::Integer(removed as i64))
}

/// `LTRIM key start stop`: deletes from the ends only, positions stay.
fn ltrim(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let (start, end) = (args.next_i64()?, args.next_i64()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::ok()) };
    match clamp_range(start, end, e.card) {
        Some((from, to)) => ctx.store().list_trim(&e, from, to)?,
        None => ctx.store().list_trim(&e, 1, 0)?,
    }
    ctx.notify(LIST, "ltrim", &key);
    Ok(Frame::ok())
}

/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
fn lpos(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, element) = (args.next_bytes()?, args.next_bytes()?);
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if eq_ic(&opt, "rank") && !args.is_empty() {
            rank = args.next_i64()?;
            if rank == i64::MIN {
                return Err(CmdError::msg(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            if rank == 0 {
                return Err(CmdError::msg(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if eq_ic(&opt, "count") && !args.is_empty() {
            count = Some(super::parse_non_negative(&args.next_bytes()?, Some("ERR COUNT can't be negative"))?);
        } else if eq_ic(&opt, "maxlen") && !args.is_empty() {
            maxlen = super::parse_non_negative(&args.next_bytes()?, Some("ERR MAXLEN can't be negative"))?;
        } else {
            return Err(CmdError::syntax());
        }
    }
    let Some(e) = lookup(ctx, &key)? else {
        return Ok(if count.is_some() { Frame::Array(vec![]) } else { Frame::NullBulk });
    };
    let values = all(ctx, &e)?;
    let len = values.len() as i64;
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs() as i64;
    let mut found = Vec::new();
    let mut matches = 0;
    for step in 0..len {
        if maxlen != 0 && step >= maxlen {
            break;
        }
        let i = if from_tail { len - 1 - step } else { step };
        if values[i as usize] == element {
            matches += 1;
            if matches >= rank {
                found.push(i);
                match count {
                    None => break,
                    Some(c) if c != 0 && found.len() as i64 >= c => break,
                    _ => {}
                }
            }
        }
    }
    Ok(match count {
        Some(_) => Frame::Array(found.into_iter().map(Frame::Integer).collect()),
        None => found.first().map(|i| Frame::Integer(*i)).unwrap_or(Frame::NullBulk),
    })
}

fn side(arg: &[u8]) -> Result<bool, CmdError> {
    if eq_ic(arg, "left") {
        Ok(true)
    } else if eq_ic(arg, "right") {
        Ok(false)
    } else {
        Err(CmdError::syntax())
    }
}

/// Pops from one end of `src` and pushes to one end of `dst` (maybe the
/// same list), as Redis's `lmoveGenericCommand`.
fn move_element(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> CmdResult {
    let Some(from) = lookup(ctx, src)? else { return Ok(Frame::NullBulk) };
    if from.card == 0 {
        return Ok(Frame::NullBulk);
    }
    if lookup(ctx, dst)?.is_none() && src != dst {
        // Create the destination before popping: creating may make the
        // command run again (see `lookup_or_create`).
        ctx.store().lookup_or_create(ctx.session.db, dst, ctx.now_ms, KeyType::List)?;
    }
    let value = ctx.store().list_pop(&from, 1, from_left)?.into_iter().next().unwrap_or_default();
    let to = ctx.store().lookup_or_create(ctx.session.db, dst, ctx.now_ms, KeyType::List)?;
    ctx.store().list_push(&to, &[value.clone()], to_left)?;
    ctx.notify(LIST, push_event(to_left), dst);
    ctx.notify(LIST, pop_event(from_left), src);
    Ok(bulk(value))
}

/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
fn lmove(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (src, dst) = (args.next_bytes()?, args.next_bytes()?);
    let from_left = side(&args.next_bytes()?)?;
    let to_left = side(&args.next_bytes()?)?;
    move_element(ctx, &src, &dst, from_left, to_left)
}

/// `RPOPLPUSH source destination`
fn rpoplpush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (src, dst) = (args.next_bytes()?, args.next_bytes()?);
    move_element(ctx, &src, &dst, false, true)
}

/// Pops from the first non-empty list of `keys`: `[key, [elements]]`.
fn mpop(ctx: &mut Ctx, keys: &[Bytes], left: bool, count: i64) -> Result<Option<Frame>, CmdError> {
    for key in keys {
        let Some(e) = blocking::waited(ctx, lookup(ctx, key))? else { continue };
        if e.card == 0 {
            continue;
        }
        let popped = ctx.store().list_pop(&e, count, left)?;
        ctx.notify(LIST, pop_event(left), key);
        return Ok(Some(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(popped.into_iter().map(bulk).collect())])));
    }
    Ok(None)
}

/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn lmpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (keys, left, count) = super::mpop_args(args, side)?;
    Ok(mpop(ctx, &keys, left, count.unwrap_or(1))?.unwrap_or(Frame::NullArray))
}

/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`
fn blmpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let deadline = blocking::parse_timeout(&args.next_bytes()?, ctx.now_ms)?;
    let (keys, left, count) = super::mpop_args(args, side)?;
    match mpop(ctx, &keys, left, count.unwrap_or(1))? {
        Some(reply) => Ok(reply),
        None => blocking::block(ctx, keys, deadline, Frame::NullArray),
    }
}

/// Redis's `blockingPopGenericCommand`: `BLPOP key [key ...] timeout`.
fn blocking_pop(ctx: &mut Ctx, args: &mut Args, left: bool) -> CmdResult {
    let argv = args.rest();
    let (keys, timeout) = argv.split_at(argv.len() - 1);
    let deadline = blocking::parse_timeout(&timeout[0], ctx.now_ms)?;
    for key in keys {
        let Some(e) = blocking::waited(ctx, lookup(ctx, key))? else { continue };
        if e.card == 0 {
            continue;
        }
        let value = ctx.store().list_pop(&e, 1, left)?.into_iter().next().unwrap_or_default();
        ctx.notify(LIST, pop_event(left), key);
        return Ok(Frame::Array(vec![Frame::Bulk(key.clone()), bulk(value)]));
    }
    blocking::block(ctx, keys.to_vec(), deadline, Frame::NullArray)
}

/// `BLPOP key [key ...] timeout`
fn blpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    blocking_pop(ctx, args, true)
}

/// `BRPOP key [key ...] timeout`
fn brpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    blocking_pop(ctx, args, false)
}

/// Redis's `blmoveGenericCommand`.
fn blocking_move(ctx: &mut Ctx, src: Bytes, dst: Bytes, from_left: bool, to_left: bool, deadline: i64) -> CmdResult {
    match blocking::waited(ctx, lookup(ctx, &src))? {
        Some(e) if e.card > 0 => move_element(ctx, &src, &dst, from_left, to_left),
        _ => blocking::block(ctx, vec![src], deadline, Frame::NullBulk),
    }
}

/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`
fn blmove(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (src, dst) = (args.next_bytes()?, args.next_bytes()?);
    let from_left = side(&args.next_bytes()?)?;
    let to_left = side(&args.next_bytes()?)?;
    let deadline = blocking::parse_timeout(&args.next_bytes()?, ctx.now_ms)?;
    blocking_move(ctx, src, dst, from_left, to_left, deadline)
}

/// `BRPOPLPUSH source destination timeout`
fn brpoplpush(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (src, dst) = (args.next_bytes()?, args.next_bytes()?);
    let deadline = blocking::parse_timeout(&args.next_bytes()?, ctx.now_ms)?;
    blocking_move(ctx, src, dst, false, true, deadline)
}
