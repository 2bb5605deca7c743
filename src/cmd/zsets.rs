//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK,
//! ZREVRANK, ZCOUNT, ZLEXCOUNT, the ZRANGE family and ZRANGESTORE, the
//! ZREMRANGEBY* commands, ZPOPMIN/ZPOPMAX, ZMPOP, ZRANDMEMBER, ZUNION,
//! ZINTER, ZDIFF and their STORE forms, ZINTERCARD, ZSCAN.
//!
//! Elements are ordered by (score, member bytes), as in Redis. Scores reply
//! as doubles: `%.17g`, RESP3 `,` or a RESP2 bulk string.

use super::table::{tx, Binding};
use super::notify::{GENERIC, ZSET};
use super::sample::{self, Keys};
use super::{clamp_range, eq_ic, Args, Ctx, ScanOptions};
use crate::error::{CmdError, CmdResult};
use crate::ffi::{parse_double, parse_range_double};
use crate::store::{Entry, Fetch, KeyType, Known};
use bytes::Bytes;
use pgkv_resp::{Frame, Protocol};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

pub const COMMANDS: &[Binding] = &[
    tx("zadd", zadd),
    tx("zincrby", zincrby),
    tx("zrem", zrem),
    tx("zcard", zcard),
    tx("zscore", zscore),
    tx("zmscore", zmscore),
    tx("zrank", zrank),
    tx("zrevrank", zrevrank),
    tx("zcount", zcount),
    tx("zlexcount", zlexcount),
    tx("zrange", zrange),
    tx("zrangestore", zrangestore),
    tx("zrangebyscore", zrangebyscore),
    tx("zrevrangebyscore", zrevrangebyscore),
    tx("zrangebylex", zrangebylex),
    tx("zrevrangebylex", zrevrangebylex),
    tx("zrevrange", zrevrange),
    tx("zremrangebyrank", zremrangebyrank),
    tx("zremrangebyscore", zremrangebyscore),
    tx("zremrangebylex", zremrangebylex),
    tx("zpopmin", zpopmin),
    tx("zpopmax", zpopmax),
    tx("zmpop", zmpop),
    tx("bzpopmin", bzpopmin),
    tx("bzpopmax", bzpopmax),
    tx("bzmpop", bzmpop),
    tx("zrandmember", zrandmember),
    tx("zunion", zunion),
    tx("zinter", zinter),
    tx("zdiff", zdiff),
    tx("zunionstore", zunionstore),
    tx("zinterstore", zinterstore),
    tx("zdiffstore", zdiffstore),
    tx("zintercard", zintercard),
    tx("zscan", zscan),
];

const NOT_FLOAT: &str = "ERR value is not a valid float";
const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

type Pairs = Vec<(Vec<u8>, f64)>;

fn lookup(ctx: &Ctx, key: &[u8]) -> Result<Option<Entry>, CmdError> {
    ctx.store().lookup_typed(ctx.session.db, key, ctx.now_ms, KeyType::ZSet, Fetch::Meta)
}

fn bulk(b: Vec<u8>) -> Frame {
    Frame::Bulk(Bytes::from(b))
}

/// Elements with optional scores: flat in RESP2, [member, score] pairs in
/// RESP3 (Redis's zrange result handler).
fn emit(ctx: &Ctx, pairs: Pairs, withscores: bool) -> Frame {
    let resp3 = ctx.session.proto == Protocol::Resp3;
    let mut out = Vec::with_capacity(pairs.len() * if withscores && !resp3 { 2 } else { 1 });
    for (m, s) in pairs {
        match (withscores, resp3) {
            (false, _) => out.push(bulk(m)),
            (true, true) => out.push(Frame::Array(vec![bulk(m), Frame::Double(s)])),
            (true, false) => out.extend([bulk(m), Frame::Double(s)]),
        }
    }
    Frame::Array(out)
}

/// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]`
fn zadd(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, false);
    while let Some(opt) = args.peek() {
        let flag = match () {
            _ if eq_ic(opt, "nx") => &mut nx,
            _ if eq_ic(opt, "xx") => &mut xx,
            _ if eq_ic(opt, "gt") => &mut gt,
            _ if eq_ic(opt, "lt") => &mut lt,
            _ if eq_ic(opt, "ch") => &mut ch,
            _ if eq_ic(opt, "incr") => &mut incr,
            _ => break,
        };
        *flag = true;
        args.next_bytes()?;
    }
    let rest = args.rest();
    if rest.is_empty() || rest.len() % 2 != 0 {
        return Err(CmdError::syntax());
    }
    if nx && xx {
        return Err(CmdError::msg("ERR XX and NX options at the same time are not compatible"));
    }
    if (gt && nx) || (lt && nx) || (gt && lt) {
        return Err(CmdError::msg("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if incr && rest.len() > 2 {
        return Err(CmdError::msg("ERR INCR option supports a single increment-element pair"));
    }
    let mut elements = Vec::with_capacity(rest.len() / 2);
    for p in rest.chunks(2) {
        let score = parse_double(&p[0]).ok_or(CmdError::Static(NOT_FLOAT))?;
        elements.push((score, p[1].clone()));
    }
    zadd_generic(ctx, &key, elements, ZaddFlags { nx, xx, gt, lt, ch, incr })
}

struct ZaddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// Redis's `zsetAdd` applied element by element; nothing is written unless
/// every element succeeds.
fn zadd_generic(ctx: &mut Ctx, key: &[u8], elements: Vec<(f64, Bytes)>, f: ZaddFlags) -> CmdResult {
    let existing = lookup(ctx, key)?;
    if !(f.nx || f.xx || f.gt || f.lt || f.incr) && distinct_members(&elements) {
        return zadd_plain(ctx, key, existing, elements, f.ch);
    }
    if existing.is_none() && f.xx {
        return Ok(if f.incr { Frame::NullBulk } else { Frame::Integer(0) });
    }
    let members: Vec<Bytes> = elements.iter().map(|(_, m)| m.clone()).collect();
    let current_scores = match &existing {
        Some(e) => ctx.store().zscores(e, &members)?,
        None => vec![None; members.len()],
    };
    let mut current: BTreeMap<Bytes, Option<f64>> = BTreeMap::new();
    for (m, s) in members.iter().zip(current_scores) {
        current.entry(m.clone()).or_insert(s);
    }
    let mut writes: Vec<(Bytes, f64)> = Vec::new();
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut last_score = 0f64;
    for (score, member) in elements {
        let cur = current.get(&member).copied().flatten();
        let new_score = match cur {
            Some(cur) => {
                if f.nx {
                    continue;
                }
                let s = if f.incr { score + cur } else { score };
                if s.is_nan() {
                    return Err(CmdError::Static(NAN_SCORE));
                }
                if (f.lt && s >= cur) || (f.gt && s <= cur) {
                    continue;
                }
                if s != cur {
                    updated += 1;
                }
                s
            }
            None if !f.xx => {
                added += 1;
                score
            }
            None => continue,
        };
        processed += 1;
        last_score = new_score;
        current.insert(member.clone(), Some(new_score));
        match writes.iter_mut().find(|(m, _)| *m == member) {
            Some(w) => w.1 = new_score,
            None => writes.push((member, new_score)),
        }
    }
    if !writes.is_empty() {
        let e = zset_to_write(ctx, key, existing)?;
        as_stored(ctx, e.card + added, &mut writes)?;
        ctx.store().zupsert(&e, &writes, added)?;
        // As Redis: only a change is an event.
        if added + updated > 0 {
            ctx.notify(ZSET, if f.incr { "zincr" } else { "zadd" }, key);
        }
    }
    Ok(if f.incr {
        if processed > 0 { Frame::Double(last_score) } else { Frame::NullBulk }
    } else {
        Frame::Integer(if f.ch { added + updated } else { added })
    })
}

/// ZADD without NX/XX/GT/LT/INCR, each member named once: nothing depends
/// on the current scores, so one statement writes every member and reports
/// which were new and which changed, without reading them first.
fn zadd_plain(ctx: &mut Ctx, key: &[u8], existing: Option<Entry>, elements: Vec<(f64, Bytes)>, ch: bool) -> CmdResult {
    let e = zset_to_write(ctx, key, existing)?;
    let mut pairs: Vec<(Bytes, f64)> = elements.into_iter().map(|(s, m)| (m, s)).collect();
    as_stored(ctx, e.card + pairs.len() as i64, &mut pairs)?;
    let (added, updated) = ctx.store().zadd_plain(&e, &pairs)?;
    if added + updated > 0 {
        ctx.notify(ZSET, "zadd", key);
    }
    Ok(Frame::Integer(if ch { added + updated } else { added }))
}

/// The scores `pairs` as Redis stores them in a zset that will have at
/// most `card` members. Redis keeps a zset of up to
/// zset-max-listpack-entries members, none longer than
/// zset-max-listpack-value bytes, as a listpack, which stores a whole
/// number as an integer, so a score of -0 reads back as 0; a larger zset
/// (a skiplist) keeps -0. pgkv goes by the size and by the members written
/// (Redis also by a longer member written earlier, and keeps a skiplist
/// that shrank).
fn as_stored(ctx: &Ctx, card: i64, pairs: &mut [(Bytes, f64)]) -> Result<(), CmdError> {
    let negative_zero = |s: f64| s == 0.0 && s.is_sign_negative();
    if !pairs.iter().any(|(_, s)| negative_zero(*s)) {
        return Ok(());
    }
    let (entries, value) = (super::config::value(ctx, "zset-max-listpack-entries")?, super::config::value(ctx, "zset-max-listpack-value")?);
    if card <= entries && pairs.iter().all(|(m, _)| m.len() as i64 <= value) {
        for (_, s) in pairs.iter_mut().filter(|(_, s)| negative_zero(*s)) {
            *s = 0.0;
        }
    }
    Ok(())
}

/// The zset ZADD writes to: the one `lookup` found, or a new one.
fn zset_to_write(ctx: &mut Ctx, key: &[u8], existing: Option<Entry>) -> Result<Entry, CmdError> {
    match existing {
        Some(e) => Ok(e),
        None => ctx.store().lookup_or_create(ctx.session.db, key, ctx.now_ms, KeyType::ZSet),
    }
}

/// Whether no member is named twice (a second mention sees the first's
/// score in Redis, which one statement cannot reproduce).
fn distinct_members(elements: &[(f64, Bytes)]) -> bool {
    if elements.len() == 1 {
        return true;
    }
    let mut seen = std::collections::HashSet::with_capacity(elements.len());
    elements.iter().all(|(_, m)| seen.insert(m))
}

/// `ZINCRBY key increment member`
fn zincrby(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let by = parse_double(&args.next_bytes()?).ok_or(CmdError::Static(NOT_FLOAT))?;
    let member = args.next_bytes()?;
    let flags = ZaddFlags { nx: false, xx: false, gt: false, lt: false, ch: false, incr: true };
    zadd_generic(ctx, &key, vec![(by, member)], flags)
}

/// `ZREM key member [member ...]`
fn zrem(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let removed = ctx.store().zrem(&e, args.rest())?;
    if removed > 0 {
        ctx.notify(ZSET, "zrem", &key);
    }
    Ok(Frame::Integer(removed))
}

/// `ZCARD key`: O(1), from the key row.
fn zcard(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    Ok(Frame::Integer(lookup(ctx, &key)?.map(|e| e.card).unwrap_or(0)))
}

/// `ZSCORE key member`: one index probe.
fn zscore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (key, member) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::NullBulk) };
    Ok(ctx.store().zscore(e.id, &member)?.map(Frame::Double).unwrap_or(Frame::NullBulk))
}

/// `ZMSCORE key member [member ...]`
fn zmscore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let members = args.rest();
    let scores = match lookup(ctx, &key)? {
        Some(e) => ctx.store().zmscore(e.id, members)?,
        None => vec![None; members.len()],
    };
    Ok(Frame::Array(scores.into_iter().map(|s| s.map(Frame::Double).unwrap_or(Frame::NullBulk)).collect()))
}

fn rank_generic(ctx: &mut Ctx, args: &mut Args, rev: bool) -> CmdResult {
    let (key, member) = (args.next_bytes()?, args.next_bytes()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::NullBulk) };
    let store = ctx.store();
    let Some(score) = store.zscore(e.id, &member)? else { return Ok(Frame::NullBulk) };
    // Both sides' counts are exact, and each costs the members it counts:
    // count the side the score says is shorter, judged from the lowest and
    // highest scores (two probes).
    let after = matches!(score_ends(ctx, &e)?, Some((low, high)) if score - low > high - score);
    let n = store.zrank(e.id, score, &member, after)?;
    let from_start = if after { e.card - 1 - n } else { n };
    Ok(Frame::Integer(if rev { e.card - 1 - from_start } else { from_start }))
}

/// The lowest and highest scores of `e` (two probes of the score index),
/// or `None` for a set with no members.
fn score_ends(ctx: &Ctx, e: &Entry) -> Result<Option<(f64, f64)>, CmdError> {
    let store = ctx.store();
    let low = store.zrange_rank(e.id, 0, 1, false)?.pop();
    let high = store.zrange_rank(e.id, 0, 1, true)?.pop();
    Ok(low.zip(high).map(|((_, low), (_, high))| (low, high)))
}

/// `ZRANK key member`
fn zrank(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    rank_generic(ctx, args, false)
}

/// `ZREVRANK key member`
fn zrevrank(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    rank_generic(ctx, args, true)
}

/// A score range: `[min, max]` with either end exclusive, `(` prefixed.
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
        let bound = |b: &[u8]| -> Option<(f64, bool)> {
            match b.first() {
                Some(b'(') => parse_range_double(&b[1..]).map(|v| (v, true)),
                _ => parse_range_double(b).map(|v| (v, false)),
            }
        };
        match (bound(min), bound(max)) {
            (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, minex, max, maxex }),
            _ => Err(CmdError::msg("ERR min or max is not a float")),
        }
    }

    /// The range with inclusive ends, or `None` if it holds no score. An
    /// exclusive end is the next double inward: scores are doubles, so
    /// `> x` is `>= next_up(x)` (-0 and 0 alike, as Redis compares them),
    /// except past an infinity, where nothing is.
    fn inclusive(&self) -> Option<(f64, f64)> {
        let lo = match (self.minex, self.min) {
            (true, f64::INFINITY) => return None,
            (true, min) => min.next_up(),
            (false, min) => min,
        };
        let hi = match (self.maxex, self.max) {
            (true, f64::NEG_INFINITY) => return None,
            (true, max) => max.next_down(),
            (false, max) => max,
        };
        (lo <= hi).then_some((lo, hi))
    }
}

/// A lex range: `-`, `+`, `[x` inclusive, `(x` exclusive.
#[derive(Clone)]
enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
        let bound = |b: &[u8]| -> Option<LexBound> {
            match b.first() {
                Some(b'+') if b.len() == 1 => Some(LexBound::Max),
                Some(b'-') if b.len() == 1 => Some(LexBound::Min),
                Some(b'(') => Some(LexBound::Excl(b[1..].to_vec())),
                Some(b'[') => Some(LexBound::Incl(b[1..].to_vec())),
                _ => None,
            }
        };
        match (bound(min), bound(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(CmdError::msg("ERR min or max not valid string range item")),
        }
    }

    fn above_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(v) => m >= v.as_slice(),
            LexBound::Excl(v) => m > v.as_slice(),
        }
    }

    fn below_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(v) => m <= v.as_slice(),
            LexBound::Excl(v) => m < v.as_slice(),
        }
    }

    fn contains(&self, m: &[u8]) -> bool {
        self.above_min(m) && self.below_max(m)
    }

    /// The range as bounds on the member, or `None` if it is empty
    /// whatever the members (`+` as its minimum, `-` as its maximum).
    fn bounds(&self) -> Option<(Bound<&[u8]>, Bound<&[u8]>)> {
        let min = match &self.min {
            LexBound::Min => Bound::Unbounded,
            LexBound::Max => return None,
            LexBound::Incl(v) => Bound::Included(v.as_slice()),
            LexBound::Excl(v) => Bound::Excluded(v.as_slice()),
        };
        let max = match &self.max {
            LexBound::Max => Bound::Unbounded,
            LexBound::Min => return None,
            LexBound::Incl(v) => Bound::Included(v.as_slice()),
            LexBound::Excl(v) => Bound::Excluded(v.as_slice()),
        };
        Some((min, max))
    }
}

/// `ZCOUNT key min max`
fn zcount(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let range = ScoreRange::parse(&args.next_bytes()?, &args.next_bytes()?)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let Some((lo, hi)) = range.inclusive() else { return Ok(Frame::Integer(0)) };
    // Index-only counts, each costing the members it counts: the range
    // itself, or the set less the members outside it where the lowest and
    // highest scores (two probes) say the range holds most of the set.
    let store = ctx.store();
    let Some((low, high)) = score_ends(ctx, &e)? else { return Ok(Frame::Integer(0)) };
    if lo <= low && high <= hi {
        return Ok(Frame::Integer(e.card));
    }
    let covered = (hi.min(high) - lo.max(low)) / (high - low);
    if covered > 0.5 {
        let below = if lo == f64::NEG_INFINITY { 0 } else { store.zcount_score(e.id, f64::NEG_INFINITY, lo.next_down())? };
        let above = if hi == f64::INFINITY { 0 } else { store.zcount_score(e.id, hi.next_up(), f64::INFINITY)? };
        return Ok(Frame::Integer(e.card - below - above));
    }
    Ok(Frame::Integer(store.zcount_score(e.id, lo, hi)?))
}

/// `ZLEXCOUNT key min max`
fn zlexcount(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let range = LexRange::parse(&args.next_bytes()?, &args.next_bytes()?)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    // `-` to `+` holds every member, whatever the scores (in Redis too).
    if matches!((&range.min, &range.max), (LexBound::Min, LexBound::Max)) {
        return Ok(Frame::Integer(e.card));
    }
    Ok(Frame::Integer(lex_range(ctx, &e, &range, false, 0, -1)?.len() as i64))
}

/// The elements of `range`, ascending (descending with `rev`), with
/// LIMIT's `offset` and `limit` applied in the scan of the score index: a
/// page (`ZRANGEBYSCORE key -inf now LIMIT 0 10`, a delayed-job queue's
/// poll) reads its members, not the range.
fn score_range(ctx: &Ctx, e: &Entry, range: ScoreRange, rev: bool, offset: i64, limit: i64) -> Result<Pairs, CmdError> {
    let Some((lo, hi)) = range.inclusive().filter(|_| offset >= 0) else { return Ok(Vec::new()) };
    let limit = if limit < 0 { i64::MAX } else { limit };
    ctx.store().zrange_score(e.id, lo, hi, offset, limit, rev)
}

/// The elements of a lex range, ascending (descending with `rev`), with
/// LIMIT's `offset` and `limit` applied.
///
/// Redis defines lex ranges for sorted sets whose members share one score,
/// and there they are read from the score index, bounded on the member: the
/// members returned, not the set. Otherwise (or where the index is not
/// read directly) the whole set is read and its members in the range kept,
/// in (score, member) order.
fn lex_range(ctx: &Ctx, e: &Entry, range: &LexRange, rev: bool, offset: i64, limit: i64) -> Result<Pairs, CmdError> {
    if offset < 0 {
        return Ok(Vec::new());
    }
    let store = ctx.store();
    if let Some((low, high)) = score_ends(ctx, e)? {
        if low == high {
            let Some(bounds) = range.bounds() else { return Ok(Vec::new()) };
            if let Some(v) = store.zrange_lex(e.id, low, bounds, offset, limit, rev)? {
                return Ok(v);
            }
        }
    }
    let mut v = store.zall(e)?;
    v.retain(|(m, _)| range.contains(m));
    if rev {
        v.reverse();
    }
    Ok(apply_limit(v, offset, limit))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Which ZRANGE-family command is parsing: the legacy ones fix the range
/// type and direction, so those keywords are syntax errors for them.
struct RangeSpec {
    rangetype: RangeType,
    rev: Option<bool>,
    store: bool,
}

/// Redis's `zrangeGenericCommand`.
fn zrange_generic(ctx: &mut Ctx, args: &mut Args, spec: RangeSpec) -> CmdResult {
    let dst = if spec.store { Some(args.next_bytes()?) } else { None };
    let key = args.next_bytes()?;
    let (mut min_arg, mut max_arg) = (args.next_bytes()?, args.next_bytes()?);
    let (mut rangetype, mut rev) = (spec.rangetype, spec.rev);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if !spec.store && eq_ic(&opt, "withscores") {
            withscores = true;
        } else if eq_ic(&opt, "limit") && args.remaining() >= 2 {
            offset = args.next_i64()?;
            limit = args.next_i64()?;
        } else if rev.is_none() && eq_ic(&opt, "rev") {
            rev = Some(true);
        } else if rangetype == RangeType::Auto && eq_ic(&opt, "bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && eq_ic(&opt, "byscore") {
            rangetype = RangeType::Score;
        } else {
            return Err(CmdError::syntax());
        }
    }
    let rev = rev.unwrap_or(false);
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return Err(CmdError::msg("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if withscores && rangetype == RangeType::Lex {
        return Err(CmdError::msg("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut min_arg, &mut max_arg);
    }
    enum Parsed {
        Rank(i64, i64),
        Score(ScoreRange),
        Lex(LexRange),
    }
    let parsed = match rangetype {
        RangeType::Score => Parsed::Score(ScoreRange::parse(&min_arg, &max_arg)?),
        RangeType::Lex => Parsed::Lex(LexRange::parse(&min_arg, &max_arg)?),
        _ => Parsed::Rank(super::parse_i64(&min_arg)?, super::parse_i64(&max_arg)?),
    };
    let result: Pairs = match lookup(ctx, &key)? {
        None => Vec::new(),
        Some(e) => match parsed {
            Parsed::Rank(start, end) => match clamp_range(start, end, e.card) {
                Some((from, to)) => by_rank(ctx, &e, from, to, rev)?,
                None => Vec::new(),
            },
            Parsed::Score(range) => score_range(ctx, &e, range, rev, offset, limit)?,
            Parsed::Lex(range) => lex_range(ctx, &e, &range, rev, offset, limit)?,
        },
    };
    match dst {
        Some(dst) => store_result(ctx, &dst, result, "zrangestore"),
        None => Ok(emit(ctx, result, withscores)),
    }
}

/// LIMIT as Redis applies it: a negative offset yields nothing, a negative
/// count means all.
fn apply_limit(v: Pairs, offset: i64, limit: i64) -> Pairs {
    if offset < 0 {
        return Vec::new();
    }
    let it = v.into_iter().skip(offset as usize);
    if limit < 0 {
        it.collect()
    } else {
        it.take(limit as usize).collect()
    }
}

/// Replaces `dst` with `pairs` (deleting it when empty); replies the count.
fn store_result(ctx: &mut Ctx, dst: &[u8], pairs: Pairs, event: &'static str) -> CmdResult {
    let store = ctx.store();
    let existed = store.delete_key(ctx.session.db, dst)?;
    let n = pairs.len() as i64;
    if n > 0 {
        let e = store.recreate(ctx.session.db, dst, ctx.now_ms, KeyType::ZSet, existed)?;
        let mut pairs: Vec<(Bytes, f64)> = pairs.into_iter().map(|(m, s)| (Bytes::from(m), s)).collect();
        as_stored(ctx, n, &mut pairs)?;
        store.zreplace(&e, &pairs)?;
        super::notify::emit_stored(ZSET, event, ctx.session.db, dst, existed);
    } else if existed {
        ctx.notify(GENERIC, "del", dst);
    }
    Ok(Frame::Integer(n))
}

/// `ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
fn zrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Auto, rev: None, store: false })
}

/// `ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]`
fn zrangestore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Auto, rev: None, store: true })
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
fn zrangebyscore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Score, rev: Some(false), store: false })
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
fn zrevrangebyscore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Score, rev: Some(true), store: false })
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
fn zrangebylex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Lex, rev: Some(false), store: false })
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
fn zrevrangebylex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Lex, rev: Some(true), store: false })
}

/// `ZREVRANGE key start stop [WITHSCORES]`
fn zrevrange(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zrange_generic(ctx, args, RangeSpec { rangetype: RangeType::Rank, rev: Some(true), store: false })
}

fn remove_pairs(ctx: &mut Ctx, e: &Entry, pairs: Pairs, event: &'static str) -> CmdResult {
    let members: Vec<Bytes> = pairs.into_iter().map(|(m, _)| Bytes::from(m)).collect();
    if members.is_empty() {
        return Ok(Frame::Integer(0));
    }
    let removed = ctx.store().zrem(e, &members)?;
    ctx.notify(ZSET, event, &e.key);
    Ok(Frame::Integer(removed))
}

/// `ZREMRANGEBYRANK key start stop`
fn zremrangebyrank(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let (start, end) = (args.next_i64()?, args.next_i64()?);
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let Some((from, to)) = clamp_range(start, end, e.card) else { return Ok(Frame::Integer(0)) };
    let pairs = by_rank(ctx, &e, from, to, false)?;
    remove_pairs(ctx, &e, pairs, "zremrangebyrank")
}

/// The members at ranks `from..=to` of the `e.card` in `e`, in the order
/// `rev` gives: read from whichever end of the score index is nearer. A
/// scan skips to a rank by reading every member before it (Redis finds a
/// rank in O(log N)), so `ZRANGE key -10 -1` reads ten members this way,
/// not the whole set.
fn by_rank(ctx: &Ctx, e: &Entry, from: i64, to: i64, rev: bool) -> Result<Pairs, CmdError> {
    let (n, from_end) = (to - from + 1, e.card - 1 - to);
    if from_end < from {
        let mut pairs = ctx.store().zrange_rank(e.id, from_end, n, !rev)?;
        pairs.reverse();
        return Ok(pairs);
    }
    ctx.store().zrange_rank(e.id, from, n, rev)
}

/// `ZREMRANGEBYSCORE key min max`
fn zremrangebyscore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let range = ScoreRange::parse(&args.next_bytes()?, &args.next_bytes()?)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let pairs = score_range(ctx, &e, range, false, 0, -1)?;
    remove_pairs(ctx, &e, pairs, "zremrangebyscore")
}

/// `ZREMRANGEBYLEX key min max`
fn zremrangebylex(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let range = LexRange::parse(&args.next_bytes()?, &args.next_bytes()?)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Integer(0)) };
    let pairs = lex_range(ctx, &e, &range, false, 0, -1)?;
    remove_pairs(ctx, &e, pairs, "zremrangebylex")
}

/// Pops `count` elements from the low or high end.
fn pop_pairs(ctx: &mut Ctx, e: &Entry, count: i64, max: bool) -> Result<Pairs, CmdError> {
    let pairs = ctx.store().zrange_rank(e.id, 0, count, max)?;
    let members: Vec<Bytes> = pairs.iter().map(|(m, _)| Bytes::copy_from_slice(m)).collect();
    if !members.is_empty() {
        ctx.store().zrem(e, &members)?;
        ctx.notify(ZSET, if max { "zpopmax" } else { "zpopmin" }, &e.key);
    }
    Ok(pairs)
}

/// Redis's `genericZpopCommand` for ZPOPMIN/ZPOPMAX.
fn zpop(ctx: &mut Ctx, args: &mut Args, max: bool) -> CmdResult {
    let key = args.next_bytes()?;
    let count = match args.remaining() {
        0 => None,
        1 => Some(super::parse_non_negative(&args.next_bytes()?, None)?),
        _ => return Err(CmdError::syntax()),
    };
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Array(vec![])) };
    let pairs = pop_pairs(ctx, &e, count.unwrap_or(1), max)?;
    // Without COUNT the single pair is flat even in RESP3.
    Ok(if count.is_none() { emit_flat(pairs) } else { emit(ctx, pairs, true) })
}

fn emit_flat(pairs: Pairs) -> Frame {
    Frame::Array(pairs.into_iter().flat_map(|(m, s)| [bulk(m), Frame::Double(s)]).collect())
}

/// `ZPOPMIN key [count]`
fn zpopmin(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zpop(ctx, args, false)
}

/// `ZPOPMAX key [count]`
fn zpopmax(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zpop(ctx, args, true)
}

/// ZMPOP's MIN|MAX: true for MAX.
fn min_max(arg: &[u8]) -> Result<bool, CmdError> {
    if eq_ic(arg, "max") {
        Ok(true)
    } else if eq_ic(arg, "min") {
        Ok(false)
    } else {
        Err(CmdError::syntax())
    }
}

/// Pops from the first non-empty sorted set of `keys`: `[key, [[member, score] ...]]`.
fn mpop(ctx: &mut Ctx, keys: &[Bytes], max: bool, count: i64) -> Result<Option<Frame>, CmdError> {
    for key in keys {
        let Some(e) = super::blocking::waited(ctx, lookup(ctx, key))? else { continue };
        let pairs = pop_pairs(ctx, &e, count, max)?;
        let items = pairs.into_iter().map(|(m, s)| Frame::Array(vec![bulk(m), Frame::Double(s)])).collect();
        return Ok(Some(Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Array(items)])));
    }
    Ok(None)
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`
fn zmpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (keys, max, count) = super::mpop_args(args, min_max)?;
    Ok(mpop(ctx, &keys, max, count.unwrap_or(1))?.unwrap_or(Frame::NullArray))
}

/// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`
fn bzmpop(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let deadline = super::blocking::parse_timeout(&args.next_bytes()?, ctx.now_ms)?;
    let (keys, max, count) = super::mpop_args(args, min_max)?;
    match mpop(ctx, &keys, max, count.unwrap_or(1))? {
        Some(reply) => Ok(reply),
        None => super::blocking::block(ctx, keys, deadline, Frame::NullArray),
    }
}

/// Redis's `blockingGenericZpopCommand`: `BZPOPMIN key [key ...] timeout`,
/// answering `[key, member, score]`.
fn bzpop(ctx: &mut Ctx, args: &mut Args, max: bool) -> CmdResult {
    let argv = args.rest();
    let (keys, timeout) = argv.split_at(argv.len() - 1);
    let deadline = super::blocking::parse_timeout(&timeout[0], ctx.now_ms)?;
    for key in keys {
        let Some(e) = super::blocking::waited(ctx, lookup(ctx, key))? else { continue };
        if let Some((m, score)) = pop_pairs(ctx, &e, 1, max)?.into_iter().next() {
            return Ok(Frame::Array(vec![Frame::Bulk(key.clone()), bulk(m), Frame::Double(score)]));
        }
    }
    super::blocking::block(ctx, keys.to_vec(), deadline, Frame::NullArray)
}

/// `BZPOPMIN key [key ...] timeout`
fn bzpopmin(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    bzpop(ctx, args, false)
}

/// `BZPOPMAX key [key ...] timeout`
fn bzpopmax(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    bzpop(ctx, args, true)
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`
fn zrandmember(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    if args.is_empty() {
        let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::NullBulk) };
        if let Some(mut one) = sample_members(ctx, &e, None)? {
            return Ok(one.pop().map_or(Frame::NullBulk, |(m, _)| bulk(m)));
        }
        let all = ctx.store().zall(&e)?;
        let i = super::random_index(ctx, all.len());
        return Ok(bulk(all[i].0.clone()));
    }
    let count = args.next_i64()?;
    let withscores = match args.remaining() {
        0 => false,
        1 if eq_ic(&args.next_bytes()?, "withscores") => true,
        _ => return Err(CmdError::syntax()),
    };
    if count == i64::MIN {
        return Err(CmdError::msg("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"));
    }
    let Some(e) = lookup(ctx, &key)? else { return Ok(Frame::Array(vec![])) };
    let picked = match sample_members(ctx, &e, Some(count))? {
        Some(picked) => picked,
        None => {
            let all = ctx.store().zall(&e)?;
            super::random_sample(ctx, all.len(), count).into_iter().map(|i| all[i].clone()).collect()
        }
    };
    Ok(emit(ctx, picked, withscores))
}

/// ZRANDMEMBER's picks from a large sorted set, through the member hashes
/// of its primary key (`sample::members`); `None` where the set is better
/// read whole. Distinct picks come in the set's order, as those taken from
/// a whole read do.
fn sample_members(ctx: &Ctx, e: &Entry, count: Option<i64>) -> Result<Option<Vec<(Vec<u8>, f64)>>, CmdError> {
    let (n, distinct) = sample::wanted(count);
    let store = ctx.store();
    let picked = sample::members(e.card, Keys::Hash, n, distinct, |seqs, n| {
        Ok(store.zscan(e.id, seqs, n)?.into_iter().map(|(hash, m, score)| (hash, (m, score))).collect())
    })?;
    Ok(picked.map(|mut picked| {
        if distinct {
            // -0 sorts as 0, as in the index.
            let score = |x: f64| if x == 0.0 { 0.0 } else { x };
            picked.sort_by(|a, b| score(a.1).total_cmp(&score(b.1)).then_with(|| a.0.cmp(&b.0)));
        }
        picked
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// An input this many times larger than the members an intersection or
/// difference still holds is probed for them rather than read whole (as
/// for SINTER).
const PROBE_RATIO: i64 = 8;

/// Redis's `zunionInterDiffGenericCommand`. Sets count as zsets with score
/// 1; scores are combined with WEIGHTS and AGGREGATE; NaN becomes 0.
fn zsetop(ctx: &mut Ctx, args: &mut Args, op: SetOp, store: bool, card_only: bool, name: &str) -> CmdResult {
    let dst = if store { Some(args.next_bytes()?) } else { None };
    let numkeys = args.next_i64()?;
    if numkeys < 1 {
        return Err(CmdError::msg(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    if numkeys as u64 > args.remaining() as u64 {
        return Err(CmdError::syntax());
    }
    let keys: Vec<Bytes> = (0..numkeys).map(|_| args.next_bytes()).collect::<Result<_, _>>()?;
    // Every input is type-checked before the options are read and before
    // any work, as in Redis.
    let store_layer = ctx.store();
    let mut inputs: Vec<Option<Entry>> = Vec::with_capacity(keys.len());
    for k in &keys {
        let e = store_layer.lookup(ctx.session.db, k, ctx.now_ms, Fetch::Meta)?;
        if e.as_ref().is_some_and(|e| e.ktype != KeyType::ZSet && e.ktype != KeyType::Set) {
            return Err(CmdError::wrong_type());
        }
        inputs.push(e);
    }
    let mut weights = vec![1f64; keys.len()];
    let mut aggregate = Aggregate::Sum;
    let (mut withscores, mut limit) = (false, 0i64);
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if op != SetOp::Diff && !card_only && eq_ic(&opt, "weights") && args.remaining() >= keys.len() {
            for w in weights.iter_mut() {
                *w = parse_double(&args.next_bytes()?).ok_or_else(|| CmdError::msg("ERR weight value is not a float"))?;
            }
        } else if op != SetOp::Diff && !card_only && eq_ic(&opt, "aggregate") && !args.is_empty() {
            let a = args.next_bytes()?;
            aggregate = if eq_ic(&a, "sum") {
                Aggregate::Sum
            } else if eq_ic(&a, "min") {
                Aggregate::Min
            } else if eq_ic(&a, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::syntax());
            };
        } else if !store && !card_only && eq_ic(&opt, "withscores") {
            withscores = true;
        } else if card_only && eq_ic(&opt, "limit") && !args.is_empty() {
            limit = super::parse_non_negative(&args.next_bytes()?, Some("ERR LIMIT can't be negative"))?;
        } else {
            return Err(CmdError::syntax());
        }
    }
    // Redis combines the inputs smallest first (a stable sort by size), and
    // a sum of doubles depends on its order; a difference keeps its first.
    let mut inputs: Vec<(Option<Entry>, f64)> = inputs.into_iter().zip(weights).collect();
    if op != SetOp::Diff {
        inputs.sort_by_key(|(e, _)| e.as_ref().map_or(0, |e| e.card));
    }
    // Each input's members with their scores times its weight (a set's
    // members score 1), the NaN of 0 times infinity left as it is.
    let read = |e: &Entry, w: f64| -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
        let pairs: Pairs = match e.ktype {
            KeyType::ZSet => store_layer.zall(e)?,
            _ => store_layer.smembers(e.id)?.into_iter().map(|m| (m, 1.0)).collect(),
        };
        Ok(pairs.into_iter().map(|(m, s)| (m, s * w)).collect())
    };
    let or_zero = |v: f64| if v.is_nan() { 0.0 } else { v };
    // Redis's zunionInterAggregate, comparisons and all: a NaN never wins
    // MIN or MAX, and a sum that is NaN becomes 0.
    let aggregate_into = |target: &mut f64, v: f64| match aggregate {
        Aggregate::Sum => *target = or_zero(*target + v),
        Aggregate::Min if v < *target => *target = v,
        Aggregate::Max if v > *target => *target = v,
        Aggregate::Min | Aggregate::Max => {}
    };
    let mut acc: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    if op == SetOp::Union {
        // Every value is made a number before it is combined.
        for (e, w) in inputs.iter().filter_map(|(e, w)| Some((e.as_ref()?, *w))) {
            for (m, v) in read(e, w)? {
                match acc.get_mut(&m) {
                    Some(a) => aggregate_into(a, or_zero(v)),
                    None => {
                        acc.insert(m, or_zero(v));
                    }
                }
            }
        }
    } else if let Some((first, w)) = inputs.first().and_then(|(e, w)| Some((e.as_ref()?, *w))) {
        // The first input's members, looked up in the others: a set much
        // larger than what remains is probed for it (a primary-key probe
        // each) rather than read whole.
        acc = read(first, w)?.into_iter().map(|(m, v)| (m, or_zero(v))).collect();
        for (e, w) in &inputs[1..] {
            if acc.is_empty() {
                break;
            }
            let Some(e) = e else {
                if op == SetOp::Inter {
                    acc.clear();
                }
                continue;
            };
            let found: HashMap<Vec<u8>, f64> = if e.card > PROBE_RATIO.saturating_mul(acc.len() as i64) {
                let wanted: Vec<Bytes> = acc.keys().map(|m| Bytes::copy_from_slice(m)).collect();
                // A set's members score 1.
                let score = |k: Known| if let Known::Score(s) = k { s } else { 1.0 };
                store_layer.members_held(e, &wanted)?.into_iter().map(|(m, k)| (m.to_vec(), score(k) * w)).collect()
            } else {
                read(e, *w)?.into_iter().collect()
            };
            match op {
                SetOp::Inter => {
                    acc.retain(|m, _| found.contains_key(m));
                    for (m, a) in acc.iter_mut() {
                        aggregate_into(a, found[m]);
                    }
                }
                _ => acc.retain(|m, _| !found.contains_key(m)),
            }
        }
    }
    if card_only {
        let n = acc.len() as i64;
        return Ok(Frame::Integer(if limit > 0 { n.min(limit) } else { n }));
    }
    let mut result: Pairs = acc.into_iter().collect();
    // By score as Redis compares doubles (-0 and 0 are equal, the member
    // decides), then by member. Results are never NaN; `total_cmp` keeps
    // the order total regardless.
    let score = |x: f64| if x == 0.0 { 0.0 } else { x };
    result.sort_by(|a, b| score(a.1).total_cmp(&score(b.1)).then_with(|| a.0.cmp(&b.0)));
    match dst {
        Some(dst) => {
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            store_result(ctx, &dst, result, event)
        }
        None => Ok(emit(ctx, result, withscores)),
    }
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zunion(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Union, false, false, "zunion")
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
fn zinter(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, false, false, "zinter")
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
fn zdiff(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Diff, false, false, "zdiff")
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
fn zunionstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Union, true, false, "zunionstore")
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
fn zinterstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, true, false, "zinterstore")
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
fn zdiffstore(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Diff, true, false, "zdiffstore")
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
fn zintercard(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    zsetop(ctx, args, SetOp::Inter, false, true, "zintercard")
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: a small zset (a
/// listpack in Redis) comes back whole with cursor 0, in score order; a
/// larger one is paged in the order of its members' hashes (kv.zsets's
/// primary key), the cursor being the next hash, as Redis pages its dict.
/// Scores are strings here, as Redis sends them.
fn zscan(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let key = args.next_bytes()?;
    let o = ScanOptions::parse(args, false)?;
    let Some(e) = lookup(ctx, &key)? else { return Ok(super::hashes::scan_reply(0, Vec::new())) };
    let (next, pairs) = if e.card <= super::config::value(ctx, "zset-max-listpack-entries")? {
        (0, ctx.store().zall(&e)?)
    } else {
        o.page(|from, n| Ok(ctx.store().zscan(e.id, from..i64::MAX, n)?.into_iter().map(|(s, m, sc)| (s, (m, sc))).collect()))?
    };
    let mut out = Vec::new();
    for (m, s) in pairs {
        if o.matches(&m) {
            out.push(bulk(m));
            out.push(Frame::Bulk(Bytes::from(pgkv_resp::num::format_double_reply(s))));
        }
    }
    Ok(super::hashes::scan_reply(next, out))
}
