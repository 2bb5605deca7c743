//! Sorted-set storage: `kv.zsets(id, member, score, hash)`. Its primary
//! key is (id, hash, member), where a member is looked up and ZSCAN walks;
//! an index on (id, score, member) is the order every range command walks.

use super::sql::{read, write, Sql, BYTEA, BYTEA_ARRAY, FLOAT8, INT8};
use super::cache::{Known, MemberValue};
use super::members::queue as queue_member;
use super::{bytea, bytea_array, upserted, Entry, Store};
use crate::error::CmdError;
use bytes::Bytes;
use std::ops::{Bound, Range};
use pgrx::datum::DatumWithOid;

static ZSCORE: Sql = read("SELECT score FROM kv.zsets WHERE id = $1 AND hash = $3 AND member = $2", &[INT8, BYTEA, INT8]);
static UPSERT: Sql = write(
    "INSERT INTO kv.zsets (id, member, score, hash) SELECT $1, m, s, q FROM unnest($2, $3, $4) AS u(m, s, q) \
     ON CONFLICT (id, hash, member) DO UPDATE SET score = EXCLUDED.score",
    &[INT8, BYTEA_ARRAY, super::sql::FLOAT8_ARRAY, super::sql::INT8_ARRAY],
);
// One (member, score), without arrays.
static UPSERT_ONE: Sql = write(
    "INSERT INTO kv.zsets (id, member, score, hash) VALUES ($1, $2, $3, $4) ON CONFLICT (id, hash, member) DO UPDATE SET score = EXCLUDED.score",
    &[INT8, BYTEA, FLOAT8, INT8],
);
// ZADD without conditions: one statement tells new members (xmax = 0) from
// changed ones; a member whose score stays is locked but not rewritten (its
// score is in two indexes, so every rewrite is a non-HOT update).
static ZADD_PLAIN: Sql = write(
    "INSERT INTO kv.zsets AS z (id, member, score, hash) SELECT $1, m, s, q FROM unnest($2, $3, $4) AS u(m, s, q) \
     ON CONFLICT (id, hash, member) DO UPDATE SET score = EXCLUDED.score WHERE z.score <> EXCLUDED.score RETURNING (xmax = 0)",
    &[INT8, BYTEA_ARRAY, super::sql::FLOAT8_ARRAY, super::sql::INT8_ARRAY],
);
static ZADD_PLAIN_ONE: Sql = write(
    "INSERT INTO kv.zsets AS z (id, member, score, hash) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id, hash, member) DO UPDATE SET score = EXCLUDED.score WHERE z.score <> EXCLUDED.score RETURNING (xmax = 0)",
    &[INT8, BYTEA, FLOAT8, INT8],
);
// Members that share the last row's hash come with it (WITH TIES): the
// next page starts after that hash.
static SCAN: Sql = read(
    "SELECT hash, member, score FROM kv.zsets WHERE id = $1 AND hash >= $2 ORDER BY hash FETCH FIRST $3 ROWS WITH TIES",
    &[INT8, INT8, INT8],
);
static ZREM: Sql = write(
    "DELETE FROM kv.zsets AS z USING unnest($2, $3) AS u(m, h) WHERE z.id = $1 AND z.hash = u.h AND z.member = u.m RETURNING 1",
    &[INT8, BYTEA_ARRAY, super::sql::INT8_ARRAY],
);
static BY_RANK: Sql = read("SELECT member, score FROM kv.zsets WHERE id = $1 ORDER BY score, member OFFSET $2 LIMIT $3", &[INT8, INT8, INT8]);
static BY_RANK_REV: Sql = read(
    "SELECT member, score FROM kv.zsets WHERE id = $1 ORDER BY score DESC, member DESC OFFSET $2 LIMIT $3",
    &[INT8, INT8, INT8],
);
static BY_SCORE: Sql = read(
    "SELECT member, score FROM kv.zsets WHERE id = $1 AND score BETWEEN $2 AND $3 ORDER BY score, member",
    &[INT8, FLOAT8, FLOAT8],
);
// Row comparisons: the (id, score, member) index bounds the scan at the
// member, so a count reads the members on its side only (an OR of score
// and member conditions filtered the whole set).
static RANK: Sql = read("SELECT count(*) FROM kv.zsets WHERE id = $1 AND (score, member) < ($2, $3)", &[INT8, FLOAT8, BYTEA]);
static RANK_AFTER: Sql = read("SELECT count(*) FROM kv.zsets WHERE id = $1 AND (score, member) > ($2, $3)", &[INT8, FLOAT8, BYTEA]);
static COUNT_SCORE: Sql = read("SELECT count(*) FROM kv.zsets WHERE id = $1 AND score BETWEEN $2 AND $3", &[INT8, FLOAT8, FLOAT8]);
static DROP_ALL: Sql = write("DELETE FROM kv.zsets WHERE id = $1", &[INT8]);

/// The hash that leads a member's primary-key entry (`kv.zset_member_hash`):
/// XXH3's 64 bits, the same on every platform (kv.zsets can be dumped and
/// restored anywhere), shifted to 62 so that the cursor after the largest
/// (the hash plus one) is still a bigint.
pub fn member_hash(member: &[u8]) -> i64 {
    (twox_hash::XxHash3_64::oneshot(member) >> 2) as i64
}

/// `member_hash` of each of `members`, as a statement's bigint[].
pub(super) fn member_hashes(members: &[Bytes]) -> DatumWithOid<'static> {
    DatumWithOid::from(members.iter().map(|m| member_hash(m)).collect::<Vec<i64>>())
}

/// Queues the writes of `pairs`, whose members are `known`: (members
/// added, existing members whose score changed). A score that stays is not
/// rewritten (it is in two indexes: every rewrite is a non-HOT update).
fn queue_scores(e: &Entry, pairs: &[(Bytes, f64)], known: &[Known]) -> (i64, i64) {
    let (mut added, mut changed) = (0, 0);
    for ((member, score), was) in pairs.iter().zip(known) {
        match *was {
            Known::Score(cur) if cur == *score => continue,
            Known::Absent => added += 1,
            Known::Score(_) | Known::Present => changed += 1,
        }
        queue_member(e.id, member.clone(), member_hash(member), MemberValue::Score(*score));
    }
    (added, changed)
}

impl<'a> Store<'a> {
    pub fn zscore(self, id: i64, member: &[u8]) -> Result<Option<f64>, CmdError> {
        Ok(self.column::<f64>(&ZSCORE, &[id.into(), bytea(member), member_hash(member).into()])?.into_iter().next())
    }

    /// One primary-key probe per member: a join against the whole zset can
    /// be planned as a scan of it, which a hot zset cannot afford.
    pub fn zmscore(self, id: i64, members: &[Bytes]) -> Result<Vec<Option<f64>>, CmdError> {
        members.iter().map(|m| self.zscore(id, m)).collect()
    }

    /// The scores of `members` of the zset `e` (`None`: not a member), from
    /// what the batch knows when it may (see `members`), else one
    /// primary-key probe each.
    pub fn zscores(self, e: &Entry, members: &[Bytes]) -> Result<Vec<Option<f64>>, CmdError> {
        match self.known_members(e, members)? {
            Some(known) => Ok(known.into_iter().map(|k| if let Known::Score(s) = k { Some(s) } else { None }).collect()),
            None => self.zmscore(e.id, members),
        }
    }

    /// Writes (member, score) pairs of distinct members, `added` of which
    /// are new members: queued when the batch knows the members.
    pub fn zupsert(self, e: &Entry, pairs: &[(Bytes, f64)], added: i64) -> Result<(), CmdError> {
        if !pairs.is_empty() {
            let members: Vec<Bytes> = pairs.iter().map(|(m, _)| m.clone()).collect();
            if self.known_members(e, &members)?.is_some() {
                for (member, (_, score)) in members.into_iter().zip(pairs) {
                    let hash = member_hash(&member);
                    queue_member(e.id, member, hash, MemberValue::Score(*score));
                }
            } else {
                self.write_scores(&UPSERT_ONE, &UPSERT, e, pairs, |_| Ok(()))?;
            }
        }
        self.note_added(e, added, pairs.len())
    }

    /// Sets the scores of distinct members (ZADD with no condition):
    /// returns (members added, existing members whose score changed). The
    /// writes are queued when the batch knows the members (see `members`),
    /// else one statement writes them and tells which were new, without
    /// reading them first.
    pub fn zadd_plain(self, e: &Entry, pairs: &[(Bytes, f64)]) -> Result<(i64, i64), CmdError> {
        let members: Vec<Bytes> = pairs.iter().map(|(m, _)| m.clone()).collect();
        let (added, changed) = match self.known_members(e, &members)? {
            Some(known) => queue_scores(e, pairs, &known),
            None => self.write_scores(&ZADD_PLAIN_ONE, &ZADD_PLAIN, e, pairs, upserted)?,
        };
        self.note_added(e, added, pairs.len())?;
        Ok((added, changed))
    }

    /// Runs a member write: `one` with plain parameters for a single pair,
    /// `many` with arrays otherwise.
    fn write_scores<R>(
        self,
        one: &'static Sql,
        many: &'static Sql,
        e: &Entry,
        pairs: &[(Bytes, f64)],
        f: impl FnOnce(pgrx::spi::SpiTupleTable<'_>) -> Result<R, CmdError>,
    ) -> Result<R, CmdError> {
        if let [(member, score)] = pairs {
            return self.run(one, &[e.id.into(), bytea(member), (*score).into(), member_hash(member).into()], f);
        }
        let members: Vec<Bytes> = pairs.iter().map(|(m, _)| m.clone()).collect();
        let scores: Vec<f64> = pairs.iter().map(|(_, s)| *s).collect();
        self.run(many, &[e.id.into(), bytea_array(&members), DatumWithOid::from(scores), member_hashes(&members)], f)
    }

    /// Removes members, returning how many existed; drops an emptied zset.
    pub fn zrem(self, e: &Entry, members: &[Bytes]) -> Result<i64, CmdError> {
        let removed = self.exec(&ZREM, &[e.id.into(), bytea_array(members), member_hashes(members)])? as i64;
        self.set_card(e, e.card - removed, e.head)?;
        Ok(removed)
    }

    /// `limit` elements from rank `offset`, ascending or descending.
    pub fn zrange_rank(self, id: i64, offset: i64, limit: i64, rev: bool) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
        if let Some(out) = self.zset_range(id, None, offset, limit, rev)? {
            return Ok(out);
        }
        self.run(if rev { &BY_RANK_REV } else { &BY_RANK }, &[id.into(), offset.into(), limit.into()], |_| super::sql::bytea_float8_pairs())
    }

    /// Elements with `lo <= score <= hi`, ascending (descending with
    /// `rev`): the `limit` after the first `offset`.
    pub fn zrange_score(self, id: i64, lo: f64, hi: f64, offset: i64, limit: i64, rev: bool) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
        if let Some(out) = self.zset_range(id, Some((lo, hi)), offset, limit, rev)? {
            return Ok(out);
        }
        let mut all = self.run(&BY_SCORE, &[id.into(), lo.into(), hi.into()], |_| super::sql::bytea_float8_pairs())?;
        if rev {
            all.reverse();
        }
        Ok(all.into_iter().skip(offset.max(0) as usize).take(limit.max(0) as usize).collect())
    }

    /// `direct::zset_range` where it applies (`None` where not).
    fn zset_range(self, id: i64, scores: Option<(f64, f64)>, offset: i64, limit: i64, rev: bool) -> Result<Option<Vec<(Vec<u8>, f64)>>, CmdError> {
        self.before_reading()?;
        let mut out = Vec::new();
        let direct = super::direct::zset_range(id, scores, offset, limit, rev, |m, score| out.push((m.to_vec(), score)))?;
        Ok(direct.then_some(out))
    }

    /// Every element, ascending.
    pub fn zall(self, e: &Entry) -> Result<Vec<(Vec<u8>, f64)>, CmdError> {
        self.zrange_rank(e.id, 0, e.card.max(1), false)
    }

    /// The members with `score` between `min` and `max` (`zset_lex_range`),
    /// or `None` where the index is not read directly.
    pub fn zrange_lex(
        self,
        id: i64,
        score: f64,
        bounds: (Bound<&[u8]>, Bound<&[u8]>),
        offset: i64,
        limit: i64,
        rev: bool,
    ) -> Result<Option<Vec<(Vec<u8>, f64)>>, CmdError> {
        self.before_reading()?;
        let mut out = Vec::new();
        let direct = super::direct::zset_lex_range(id, score, bounds, offset, limit, rev, |m, s| out.push((m.to_vec(), s)))?;
        Ok(direct.then_some(out))
    }

    /// How many elements sort before (score, member), its rank, or after
    /// it with `after`: an index-only count of that side.
    pub fn zrank(self, id: i64, score: f64, member: &[u8], after: bool) -> Result<i64, CmdError> {
        let sql = if after { &RANK_AFTER } else { &RANK };
        Ok(self.column::<i64>(sql, &[id.into(), score.into(), bytea(member)])?.first().copied().unwrap_or(0))
    }

    pub fn zcount_score(self, id: i64, lo: f64, hi: f64) -> Result<i64, CmdError> {
        Ok(self.column::<i64>(&COUNT_SCORE, &[id.into(), lo.into(), hi.into()])?.first().copied().unwrap_or(0))
    }

    /// Members with hash in `hashes`, in hash order: `limit` of them, and
    /// any more that share the last one's hash (a page ends between hashes).
    pub fn zscan(self, id: i64, hashes: Range<i64>, limit: i64) -> Result<Vec<(i64, Vec<u8>, f64)>, CmdError> {
        self.before_reading()?;
        let mut out = Vec::new();
        let direct = super::direct::members_by_seq(super::direct::MemberTable::ZSets, id, Some(hashes.clone()), limit, |seq, m, row| {
            if let super::direct::MemberRow::Score(score) = row {
                out.push((seq, m.to_vec(), score));
            }
        })?;
        if direct {
            return Ok(out);
        }
        self.run(&SCAN, &[id.into(), hashes.start.into(), limit.into()], |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let hash = row.get::<i64>(1)?.unwrap_or_default();
                if hash < hashes.end {
                    out.push((hash, row.get::<Vec<u8>>(2)?.unwrap_or_default(), row.get::<f64>(3)?.unwrap_or_default()));
                }
            }
            Ok(out)
        })
    }

    /// Replaces every member (the STORE commands' destination).
    pub fn zreplace(self, e: &Entry, pairs: &[(Bytes, f64)]) -> Result<(), CmdError> {
        self.exec(&DROP_ALL, &[e.id.into()])?;
        let fresh = Entry { card: 0, ..e.clone() };
        self.zupsert(&fresh, pairs, pairs.len() as i64)
    }
}
