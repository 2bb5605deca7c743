//! SORT and SORT_RO over lists, sets and sorted sets, and LCS over strings.

use super::table::{tx, Binding};
use super::{eq_ic, Args, Ctx};
use crate::error::{CmdError, CmdResult};
use crate::store::{Fetch, KeyType};
use bytes::Bytes;
use pgkv_resp::Frame;
use std::cmp::Ordering;

pub const COMMANDS: &[Binding] = &[tx("sort", sort), tx("sort_ro", sort_ro), tx("lcs", lcs)];

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]]
///  [ASC | DESC] [ALPHA] [STORE destination]`
fn sort(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    sort_generic(ctx, args, false)
}

/// `SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC | DESC] [ALPHA]`
fn sort_ro(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element, and `->field` reads a hash field.
fn by_pattern(ctx: &Ctx, pattern: &[u8], element: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    if pattern == b"#" {
        return Ok(Some(element.to_vec()));
    }
    let Some(star) = pattern.iter().position(|&c| c == b'*') else { return Ok(None) };
    let after = &pattern[star + 1..];
    let arrow = after.windows(2).position(|w| w == b"->").filter(|&i| i + 2 < after.len());
    let (suffix, field) = match arrow {
        Some(i) => (&after[..i], Some(&after[i + 2..])),
        None => (after, None),
    };
    let mut key = pattern[..star].to_vec();
    key.extend_from_slice(element);
    key.extend_from_slice(suffix);
    let store = ctx.store();
    let Some(e) = store.lookup(ctx.session.db, &key, ctx.now_ms, Fetch::Value)? else { return Ok(None) };
    match (field, e.ktype) {
        (Some(f), KeyType::Hash) => store.hget(e.id, f),
        (None, KeyType::String) => Ok(e.value.map(Vec::from)),
        _ => Ok(None),
    }
}

/// strtod as SORT applies it to scores: leading space and "" are accepted.
fn sort_score(v: &[u8]) -> Option<f64> {
    crate::ffi::parse_range_double(v)
}

fn sort_generic(ctx: &mut Ctx, args: &mut Args, read_only: bool) -> CmdResult {
    let key = args.next_bytes()?;
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut sortby: Option<Bytes> = None;
    let mut gets: Vec<Bytes> = Vec::new();
    let mut store_key: Option<Bytes> = None;
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        let left = args.remaining();
        if eq_ic(&opt, "asc") {
            desc = false;
        } else if eq_ic(&opt, "desc") {
            desc = true;
        } else if eq_ic(&opt, "alpha") {
            alpha = true;
        } else if eq_ic(&opt, "limit") && left >= 2 {
            limit_start = args.next_i64()?;
            limit_count = args.next_i64()?;
        } else if !read_only && eq_ic(&opt, "store") && left >= 1 {
            store_key = Some(args.next_bytes()?);
        } else if eq_ic(&opt, "by") && left >= 1 {
            let p = args.next_bytes()?;
            dontsort = !p.contains(&b'*');
            sortby = Some(p);
        } else if eq_ic(&opt, "get") && left >= 1 {
            gets.push(args.next_bytes()?);
        } else {
            return Err(CmdError::syntax());
        }
    }
    let store = ctx.store();
    let entry = store.lookup(ctx.session.db, &key, ctx.now_ms, Fetch::Meta)?;
    let mut elements: Vec<Vec<u8>> = match &entry {
        None => Vec::new(),
        Some(e) => match e.ktype {
            KeyType::List if e.card > 0 => store.list_range(e, 0, e.card - 1)?.into_iter().map(Vec::from).collect(),
            KeyType::List => Vec::new(),
            KeyType::Set => store.smembers(e.id)?,
            KeyType::ZSet => {
                let mut v: Vec<Vec<u8>> = store.zall(e)?.into_iter().map(|(m, _)| m).collect();
                if dontsort && desc {
                    v.reverse();
                }
                v
            }
            _ => return Err(CmdError::wrong_type()),
        },
    };
    // A set has no native order: when storing, Redis sorts it by bytes.
    if dontsort && entry.as_ref().is_some_and(|e| e.ktype == KeyType::Set) && store_key.is_some() {
        dontsort = false;
        alpha = true;
        sortby = None;
    }
    if !dontsort {
        enum Key {
            Num(f64),
            Alpha(Option<Vec<u8>>),
        }
        let mut keyed: Vec<(Key, Vec<u8>)> = Vec::with_capacity(elements.len());
        let mut conversion_error = false;
        for el in elements {
            let by = match &sortby {
                Some(p) => by_pattern(ctx, p, &el)?,
                None => Some(el.clone()),
            };
            let k = if alpha {
                Key::Alpha(if sortby.is_some() { by } else { None })
            } else {
                match by {
                    None => Key::Num(0.0),
                    Some(v) => match sort_score(&v) {
                        Some(s) => Key::Num(s),
                        None => {
                            conversion_error = true;
                            Key::Num(0.0)
                        }
                    },
                }
            };
            keyed.push((k, el));
        }
        if conversion_error {
            return Err(CmdError::msg("ERR One or more scores can't be converted into double"));
        }
        let by_pattern_alpha = sortby.is_some();
        keyed.sort_by(|(ka, a), (kb, b)| {
            let cmp = match (ka, kb) {
                (Key::Num(x), Key::Num(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal).then_with(|| a.cmp(b)),
                (Key::Alpha(x), Key::Alpha(y)) if by_pattern_alpha => x.cmp(y),
                _ => a.cmp(b),
            };
            if desc { cmp.reverse() } else { cmp }
        });
        elements = keyed.into_iter().map(|(_, e)| e).collect();
    }
    let len = elements.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 { len - 1 } else { start + limit_count - 1 };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    if start >= 0 && end >= start {
        for el in &elements[start as usize..=end as usize] {
            if gets.is_empty() {
                out.push(Some(el.clone()));
            }
            for g in &gets {
                out.push(by_pattern(ctx, g, el)?);
            }
        }
    }
    match store_key {
        None => Ok(Frame::Array(out.into_iter().map(|v| v.map(|v| Frame::Bulk(Bytes::from(v))).unwrap_or(Frame::NullBulk)).collect())),
        Some(dst) => {
            let n = out.len() as i64;
            let existed = store.delete_key(ctx.session.db, &dst)?;
            if n > 0 {
                let values: Vec<Bytes> = out.into_iter().map(|v| Bytes::from(v.unwrap_or_default())).collect();
                let e = store.recreate(ctx.session.db, &dst, ctx.now_ms, KeyType::List, existed)?;
                store.list_push(&e, &values, false)?;
                super::notify::emit_stored(super::notify::LIST, "sortstore", ctx.session.db, &dst, existed);
            } else if existed {
                ctx.notify(super::notify::GENERIC, "del", &dst);
            }
            Ok(Frame::Integer(n))
        }
    }
}

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]`:
/// Redis's dynamic programming and backtracking, so the reported ranges are
/// the ones Redis reports.
fn lcs(ctx: &mut Ctx, args: &mut Args) -> CmdResult {
    let (ka, kb) = (args.next_bytes()?, args.next_bytes()?);
    let store = ctx.store();
    let ea = store.lookup(ctx.session.db, &ka, ctx.now_ms, Fetch::Value)?;
    let eb = store.lookup(ctx.session.db, &kb, ctx.now_ms, Fetch::Value)?;
    if ea.as_ref().is_some_and(|e| e.ktype != KeyType::String) || eb.as_ref().is_some_and(|e| e.ktype != KeyType::String) {
        return Err(CmdError::msg("ERR The specified keys must contain string values"));
    }
    let (mut getidx, mut getlen, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    while let Some(opt) = args.peek().cloned() {
        args.next_bytes()?;
        if eq_ic(&opt, "idx") {
            getidx = true;
        } else if eq_ic(&opt, "len") {
            getlen = true;
        } else if eq_ic(&opt, "withmatchlen") {
            withmatchlen = true;
        } else if eq_ic(&opt, "minmatchlen") && !args.is_empty() {
            minmatchlen = args.next_i64()?.max(0);
        } else {
            return Err(CmdError::syntax());
        }
    }
    if getidx && getlen {
        return Err(CmdError::msg("ERR If you want both the length and indexes, please just use IDX."));
    }
    let a = ea.and_then(|e| e.value).unwrap_or_default();
    let b = eb.and_then(|e| e.value).unwrap_or_default();
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > super::strings::MAX_STRING as u64 {
        return Err(CmdError::msg("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let w = blen + 1;
    let mut t = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            t[i * w + j] = if a[i - 1] == b[j - 1] { t[(i - 1) * w + j - 1] + 1 } else { t[(i - 1) * w + j].max(t[i * w + j - 1]) };
        }
    }
    let total = t[alen * w + blen];
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches: Vec<Frame> = Vec::new();
    let (mut ars, mut are, mut brs, mut bre) = (alen, 0usize, 0usize, 0usize);
    let (mut i, mut j) = (alen, blen);
    let compute = getidx || !getlen;
    while compute && i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if ars == alen {
                ars = i - 1;
                are = i - 1;
                brs = j - 1;
                bre = j - 1;
            } else if ars == i && brs == j {
                ars -= 1;
                brs -= 1;
            } else {
                emit = true;
            }
            if ars == 0 || brs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if ars != alen {
                emit = true;
            }
        }
        let match_len = are as i64 - ars as i64 + 1;
        if emit {
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut m = vec![
                    Frame::Array(vec![Frame::Integer(ars as i64), Frame::Integer(are as i64)]),
                    Frame::Array(vec![Frame::Integer(brs as i64), Frame::Integer(bre as i64)]),
                ];
                if withmatchlen {
                    m.push(Frame::Integer(match_len));
                }
                matches.push(Frame::Array(m));
            }
            ars = alen;
        }
    }
    let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    Ok(if getidx {
        Frame::Map(vec![(bulk("matches"), Frame::Array(matches)), (bulk("len"), Frame::Integer(total as i64))])
    } else if getlen {
        Frame::Integer(total as i64)
    } else {
        Frame::Bulk(Bytes::from(result))
    })
}
