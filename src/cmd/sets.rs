//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP,
//! SRANDMEMBER, SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE,
//! SDIFF, SDIFFSTORE, SSCAN.
//!
//! Members are listed in byte order, or numerically when every member is an
//! integer: the order Redis gives a small set of integers (an intset). Other
//! Redis sets have no defined order.

use super::table::{tx, Binding};
use super::notify::{GENERIC, SET};
use super::sample::{self, Keys};
use super::{Args, Ctx, ScanOptions};
use crate::error::{CmdError, CmdResult};
use crate::store::{Entry, Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::Frame;
use std::collections::BTreeSet;

pub const COMMANDS: &[Binding] = &[
    tx("sadd", sadd),
    tx("srem", srem),
    tx("smembers", smembers),
    tx("sismember", sismember),
    tx("smismember", smismember),
    tx("scard", scard),
    tx("spop", spop),
    tx("srandmember", srandmember),
    tx("smove", smove),
    tx("sinter", sinter),
    tx("sintercard", sintercard),
    tx("sinterstore", sinterstore),
    tx("sunion", sunion),
    tx("sunionstore", sunionstore),
    tx("sdiff", sdiff),
    tx("sdiffstore", sdiffstore),
    tx("sscan", sscan),
];

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup_typed(ctx.session.db, key, ctx.now_ms, KeyType::Set, Fetch::Meta)
}

/// Redis's member order for sets small enough to be intsets, byte order
/// otherwise.
fn ordered(mut members: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let ints: Option<Vec<i64>> = members.iter().map(|m| pgkv_resp::num::parse_i64(m)).collect();
    match ints {
        Some(mut ints) if members.len() <= 512 => {
            ints.sort_unstable();
            ints.into_iter().map(|i| i.to_string().into_bytes()).collect()
        }
        _ => {
            members.sort();
            members
        }
    }
}

fn members_of(ctx: &Ctx, key: &[u8]) -> Result<Vec<Vec<u8>>, CmdError> {
    match lookup(ctx, key)? {
        Some(e) => Ok(ordered(ctx.store().smembers(e.id)?)),
        None => Ok(Vec::new()),
    }
}

fn set_frame(members: impl IntoIterator<Item = Vec<u8>>) -> Frame {
    Frame::Set(members.into_iter().map(|m| Frame::Bulk(Bytes::from(m))).collect())
}

/// `SADD key member [member ...]`
fn sadd(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let e = ctx.store().lookup_or_create(ctx.session.db, &key, ctx.now_ms, KeyType::Set)?;
    let added = ctx.store().sadd(&e, args.rest())?;
    if added > 0 {
        ctx.notify(SET, "sadd", &key);
    }
    Ok(Frame::Integer(added))
}

/// `SREM key member [member ...]`
fn srem(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let removed = ctx.store().srem(&e, args.rest())?;
    if removed > 0 {
        ctx.notify(SET, "srem", &key);
    }
    Ok(Frame::Integer(removed))
}

/// `SMEMBERS key`
fn smembers(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(set_frame(members_of(ctx, &key)?))
}

/// `SISMEMBER key member`
fn sismember(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, member) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    Ok(Frame::Integer(ctx.store().sismember(e.id, &member)? as i64))
}

/// `SMISMEMBER key member [member ...]`
fn smismember(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let members = args.rest();
    let found = match lookup(ctx, &key)? {
        Some(e) => ctx.store().smismember(&e, members)?,
        None => vec![false; members.len()],
    };
    Ok(Frame::Array(found.into_iter().map(|b| Frame::Integer(b as i64)).collect()))
}

/// `SCARD key`: O(1), from the key row.
fn scard(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Integer(lookup(ctx, &key)?.map(|e| e.card).unwrap_or(0)))
}

/// `SPOP key [count]`
fn spop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let count = match args.remaining() {
        0 => None,
        1 => Some(super::parse_non_negative(&args.next_bytes()?, None)?),
        _ => return Err(CmdError::syntax()),
    };
    let Some(e) = lookup(ctx, &key)? else {
        return Ok(if count.is_some() { Frame::Set(vec![]) } else { Frame::NullBulk });
    };
    let store = ctx.store();
    let n = count.unwrap_or(1);
    let picked = match sample::members(e.card, Keys::Seq { head: e.head }, n, true, |seqs, n| store.sscan(e.id, seqs, n))? {
        Some(picked) => picked,
        None => store.srandom(e.id, n)?,
    };
    let as_bytes: Vec<Bytes> = picked.iter().map(|m| Bytes::copy_from_slice(m)).collect();
    store.srem(&e, &as_bytes)?;
    if !as_bytes.is_empty() {
        ctx.notify(SET, "spop", &key);
    }
    Ok(match count {
        None => Frame::Bulk(as_bytes.into_iter().next().unwrap_or_default()),
        Some(_) => set_frame(picked),
    })
}

/// `SRANDMEMBER key [count]`
fn srandmember(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let count = match args.remaining() {
        0 => None,
        1 => {
            let n = args.next_i64()?;
            if n == i64::MIN {
                return Err(CmdError::msg(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ));
            }
            Some(n)
        }
        _ => return Err(CmdError::syntax()),
    };
    let Some(e) = lookup(ctx, &key)? else {
        return Ok(if count.is_some() { Frame::Array(vec![]) } else { Frame::NullBulk });
    };
    let (n, distinct) = sample::wanted(count);
    let store = ctx.store();
    if let Some(mut picked) = sample::members(e.card, Keys::Seq { head: e.head }, n, distinct, |seqs, n| store.sscan(e.id, seqs, n))? {
        if distinct {
            // The order a whole read gives a set this large.
            picked.sort();
        }
        let mut bulks = picked.into_iter().map(|m| Frame::Bulk(Bytes::from(m)));
        return Ok(match count {
            None => bulks.next().unwrap_or(Frame::NullBulk),
            Some(_) => Frame::Array(bulks.collect()),
        });
    }
    let members = ordered(store.smembers(e.id)?);
    Ok(match count {
        None if members.is_empty() => Frame::NullBulk,
        None => Frame::Bulk(Bytes::from(members[super::random_index(ctx, members.len())].clone())),
        Some(n) => Frame::Array(
            super::random_sample(ctx, members.len(), n).into_iter().map(|i| Frame::Bulk(Bytes::from(members[i].clone()))).collect(),
        ),
    })
}

/// `SMOVE source destination member`
fn smove(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (src, dst, member) = (args.next_bytes()?, args.next_bytes()?, args.next_bytes()?);
    let store = ctx.store();
    let (db, now) = (ctx.session.db, ctx.now_ms);
    let Some(from) = store.lookup(db, &src, now, Fetch::Meta)? else { return Ok(Frame::Integer(0)) };
    let to = store.lookup(db, &dst, now, Fetch::Meta)?;
    if from.ktype != KeyType::Set || to.as_ref().is_some_and(|t| t.ktype != KeyType::Set) {
        return Err(CmdError::wrong_type());
    }
    if src == dst {
        return Ok(Frame::Integer(store.sismember(from.id, &member)? as i64));
    }
    if !store.sismember(from.id, &member)? {
        return Ok(Frame::Integer(0));
    }
    // Created before the first write: creating may make the command run
    // again (see `lookup_or_create`).
    let to = match to {
        Some(t) => t,
        None => store.lookup_or_create(db, &dst, now, KeyType::Set)?,
    };
    store.srem(&from, std::slice::from_ref(&member))?;
    ctx.notify(SET, "srem", &src);
    store.sadd(&to, &[member])?;
    ctx.notify(SET, "sadd", &dst);
    Ok(Frame::Integer(1))
}

#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// A set this many times larger than the members an intersection or
/// difference still holds is probed for them (a primary-key probe each)
/// rather than read whole: a probe costs about what reading this many
/// members in a scan does.
const PROBE_RATIO: i64 = 8;

/// The sets at `keys` combined, every key type-checked first (as Redis
/// does); a missing key is an empty set. As Redis does, an intersection
/// starts from the smallest set and a difference from the first, and only
/// looks up what they hold in the others: SINTER of ten members and a set
/// of a million reads ten members and makes ten probes.
fn combine(ctx: &Ctx, op: Op, keys: &[Bytes]) -> Result<BTreeSet<Vec<u8>>, CmdError> {
    let mut entries = Vec::with_capacity(keys.len());
    for k in keys {
        entries.push(lookup(ctx, k)?);
    }
    let store = ctx.store();
    let read = |e: &Entry| -> Result<BTreeSet<Vec<u8>>, CmdError> { Ok(store.smembers(e.id)?.into_iter().collect()) };
    let (mut acc, others, keep) = match op {
        Op::Union => {
            let mut acc = BTreeSet::new();
            for e in entries.iter().flatten() {
                acc.extend(read(e)?);
            }
            return Ok(acc);
        }
        Op::Inter => {
            let Some(mut sets) = entries.into_iter().collect::<Option<Vec<Entry>>>() else { return Ok(BTreeSet::new()) };
            sets.sort_by_key(|e| e.card);
            let first = sets.remove(0);
            (read(&first)?, sets, true)
        }
        Op::Diff => {
            let mut entries = entries.into_iter();
            let Some(first) = entries.next().flatten() else { return Ok(BTreeSet::new()) };
            (read(&first)?, entries.flatten().collect(), false)
        }
    };
    for e in &others {
        if acc.is_empty() {
            break;
        }
        if e.card > PROBE_RATIO.saturating_mul(acc.len() as i64) {
            let wanted: Vec<Bytes> = acc.iter().map(|m| Bytes::copy_from_slice(m)).collect();
            let present = store.members_held(e, &wanted)?;
            acc.retain(|m| present.contains_key(m.as_slice()) == keep);
        } else {
            let members = read(e)?;
            acc.retain(|m| members.contains(m) == keep);
        }
    }
    Ok(acc)
}

fn set_op(ctx: &mut Ctx, args: &mut Args, op: Op) -> CmdResult {
    let result = combine(ctx, op, args.rest())?;
    Ok(set_frame(ordered(result.into_iter().collect())))
}

fn set_op_store(ctx: &mut Ctx, args: &mut Args, op: Op) -> CmdResult {
    let dst = args.next_bytes()?;
    let result: Vec<Bytes> = combine(ctx, op, args.rest())?.into_iter().map(Bytes::from).collect();
    let store = ctx.store();
    let existed = store.delete_key(ctx.session.db, &dst)?;
    if !result.is_empty() {
        let e = store.recreate(ctx.session.db, &dst, ctx.now_ms, KeyType::Set, existed)?;
        store.sadd(&e, &result)?;
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.notify(SET, event, &dst);
    } else if existed {
        ctx.notify(GENERIC, "del", &dst);
    }
    Ok(Frame::Integer(result.len() as i64))
}

/// `SINTER key [key ...]`
fn sinter(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_op(ctx, args, Op::Inter)
}

/// `SUNION key [key ...]`
fn sunion(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_op(ctx, args, Op::Union)
}

/// `SDIFF key [key ...]`
fn sdiff(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_op(ctx, args, Op::Diff)
}

/// `SINTERSTORE destination key [key ...]`
fn sinterstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_op_store(ctx, args, Op::Inter)
}

/// `SUNIONSTORE destination key [key ...]`
fn sunionstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_op_store(ctx, args, Op::Union)
}

/// `SDIFFSTORE destination key [key ...]`
fn sdiffstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    set_op_store(ctx, args, Op::Diff)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
fn sintercard(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let numkeys = pgkv_resp::num::parse_i64(&args.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::msg("ERR numkeys should be greater than 0"))?;
    if numkeys as usize > args.remaining() {
        return Err(CmdError::msg("ERR Number of keys can't be greater than number of args"));
    }
    let mut keys = Vec::with_capacity(numkeys as usize);
    for _ in 0..numkeys {
        keys.push(args.next_bytes()?);
    }
    let mut limit = 0i64;
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if super::eq_ic(&opt, "limit") && !args.is_empty() {
            // Redis's getPositiveLongFromObjectOrReply: one message for
            // a negative number and for no number at all.
            limit = super::parse_non_negative(&args.next_bytes()?, Some("ERR LIMIT can't be negative"))?;
        } else {
            return Err(CmdError::syntax());
        }
    }
    let n = combine(ctx, Op::Inter, &keys)?.len() as i64;
    Ok(Frame::Integer(if limit > 0 { n.min(limit) } else { n }))
}

/// `SSCAN key cursor [MATCH pattern] [COUNT count]`: a small set comes
/// back whole with cursor 0 (as an intset does in Redis); a larger one is
/// paged by insertion number.
fn sscan(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let o = ScanOptions::parse(args, false)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(super::hashes::scan_reply(0, Vec::new())) };
    let (next, members) = if e.card <= super::config::value(ctx, "set-max-intset-entries")? {
        (0, ordered(ctx.store().smembers(e.id)?))
    } else {
        o.page(|from, n| ctx.store().sscan(e.id, from..i64::MAX, n))?
    };
    let out = members.into_iter().filter(|m| o.matches(m)).map(|m| Frame::Bulk(Bytes::from(m))).collect();
    Ok(super::hashes::scan_reply(next, out))
}
