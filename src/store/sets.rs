//! Set storage: `kv.sets(id, member)`.

use super::sql::{read, write, Sql, BYTEA, BYTEA_ARRAY, INT8, INT8_ARRAY};
use pgrx::datum::DatumWithOid;
use super::cache::{self, Known, MemberValue};
use super::members::queue as queue_member;
use super::{bytea, bytea_array, Entry, Store};
use crate::error::CmdError;
use bytes::Bytes;
use std::ops::Range;

static SADD: Sql = write(
    "INSERT INTO kv.sets (id, member, seq) SELECT $1, m, q FROM unnest($2, $3) AS u(m, q) ON CONFLICT DO NOTHING RETURNING 1",
    &[INT8, BYTEA_ARRAY, INT8_ARRAY],
);
// SADD of one member, without arrays.
static SADD_ONE: Sql = write("INSERT INTO kv.sets (id, member, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1", &[INT8, BYTEA, INT8]);
static SCAN: Sql = read("SELECT seq, member FROM kv.sets WHERE id = $1 AND seq >= $2 ORDER BY seq LIMIT $3", &[INT8, INT8, INT8]);
static SREM: Sql = write("DELETE FROM kv.sets WHERE id = $1 AND member = ANY ($2) RETURNING 1", &[INT8, BYTEA_ARRAY]);
static SISMEMBER: Sql = read("SELECT EXISTS (SELECT 1 FROM kv.sets WHERE id = $1 AND member = $2)", &[INT8, BYTEA]);
static SMEMBERS: Sql = read("SELECT member FROM kv.sets WHERE id = $1", &[INT8]);
static SRANDOM: Sql = read("SELECT member FROM kv.sets WHERE id = $1 ORDER BY random() LIMIT $2", &[INT8, INT8]);

impl<'a> Store<'a> {
    /// Adds members, returning how many were new.
    pub fn sadd(self, e: &Entry, members: &[Bytes]) -> Result<i64, CmdError> {
        if self.known_members(e, members)?.is_some() {
            let mut added = 0;
            for (i, m) in members.iter().enumerate() {
                // Asked member by member: one named twice is new only once.
                if cache::known_member(e.id, m) == Some(Known::Absent) {
                    added += 1;
                    queue_member(e.id, m.clone(), e.head + i as i64, MemberValue::Set);
                }
            }
            self.note_added(e, added, members.len())?;
            return Ok(added);
        }
        let added = if let [member] = members {
            self.exec(&SADD_ONE, &[e.id.into(), bytea(member), e.head.into()])? as i64
        } else {
            let seqs: Vec<i64> = (0..members.len() as i64).map(|i| e.head + i).collect();
            self.exec(&SADD, &[e.id.into(), bytea_array(members), DatumWithOid::from(seqs)])? as i64
        };
        self.note_added(e, added, members.len())?;
        Ok(added)
    }

    /// Removes members, returning how many existed; drops an emptied set.
    pub fn srem(self, e: &Entry, members: &[Bytes]) -> Result<i64, CmdError> {
        let removed = self.exec(&SREM, &[e.id.into(), bytea_array(members)])? as i64;
        self.set_card(e, e.card - removed, e.head)?;
        Ok(removed)
    }

    pub fn sismember(self, id: i64, member: &[u8]) -> Result<bool, CmdError> {
        Ok(self.column::<bool>(&SISMEMBER, &[id.into(), bytea(member)])?.first().copied().unwrap_or(false))
    }

    /// One primary-key probe per member, in one pass (`members_held`).
    pub fn smismember(self, e: &Entry, members: &[Bytes]) -> Result<Vec<bool>, CmdError> {
        let present = self.members_held(e, members)?;
        Ok(members.iter().map(|m| present.contains_key(m)).collect())
    }

    /// In insertion order, read straight from the `(id, seq)` index where
    /// that applies (`direct::members_by_seq`), as the statement's plan
    /// reads them.
    pub fn smembers(self, id: i64) -> Result<Vec<Vec<u8>>, CmdError> {
        self.before_reading()?;
        let mut all = Vec::new();
        if super::direct::members_by_seq(super::direct::MemberTable::Sets, id, None, i64::MAX, |_, m, _| all.push(m.to_vec()))? {
            return Ok(all);
        }
        self.bytes_column(&SMEMBERS, &[id.into()])
    }

    /// Up to `limit` members with seq in `seqs`, in seq order: (seq, member).
    pub fn sscan(self, id: i64, seqs: Range<i64>, limit: i64) -> Result<Vec<(i64, Vec<u8>)>, CmdError> {
        self.before_reading()?;
        let mut out = Vec::new();
        if super::direct::members_by_seq(super::direct::MemberTable::Sets, id, Some(seqs.clone()), limit, |seq, m, _| out.push((seq, m.to_vec())))? {
            return Ok(out);
        }
        self.run(&SCAN, &[id.into(), seqs.start.into(), limit.into()], |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let seq = row.get::<i64>(1)?.unwrap_or_default();
                if seq < seqs.end {
                    out.push((seq, row.get::<Vec<u8>>(2)?.unwrap_or_default()));
                }
            }
            Ok(out)
        })
    }

    /// Up to `n` distinct random members.
    pub fn srandom(self, id: i64, n: i64) -> Result<Vec<Vec<u8>>, CmdError> {
        self.bytes_column(&SRANDOM, &[id.into(), n.into()])
    }
}
