//! Hash storage: `kv.hashes(id, field, value, seq)`. `seq` keeps insertion
//! order, the order Redis reports for small hashes.

use super::sql::{read, write, Sql, BYTEA, BYTEA_ARRAY, INT8, INT8_ARRAY};
use super::cache::{Known, MemberValue};
use super::members::queue as queue_member;
use super::{bytea, bytea_array, upserted, Entry, Store};
use crate::error::CmdError;
use bytes::Bytes;
use std::ops::Range;
use pgrx::datum::DatumWithOid;

static HGET: Sql = read("SELECT value FROM kv.hashes WHERE id = $1 AND field = $2", &[INT8, BYTEA]);
/// Inserts or updates fields; returns one row per field that was new.
static HSET: Sql = write(
    "INSERT INTO kv.hashes AS h (id, field, value, seq) SELECT $1, f, v, s FROM unnest($2, $3, $4) AS u(f, v, s) \
     ON CONFLICT (id, field) DO UPDATE SET value = EXCLUDED.value RETURNING (xmax = 0)",
    &[INT8, BYTEA_ARRAY, BYTEA_ARRAY, INT8_ARRAY],
);
// HSET of one field: the same without building and unnesting arrays.
static HSET_ONE: Sql = write(
    "INSERT INTO kv.hashes AS h (id, field, value, seq) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id, field) DO UPDATE SET value = EXCLUDED.value RETURNING (xmax = 0)",
    &[INT8, BYTEA, BYTEA, INT8],
);
static HSETNX: Sql = write(
    "INSERT INTO kv.hashes (id, field, value, seq) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
    &[INT8, BYTEA, BYTEA, INT8],
);
static HDEL: Sql = write("DELETE FROM kv.hashes WHERE id = $1 AND field = ANY ($2) RETURNING 1", &[INT8, BYTEA_ARRAY]);
static SCAN: Sql = read(
    "SELECT seq, field, value FROM kv.hashes WHERE id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
    &[INT8, INT8, INT8],
);
static HGETALL: Sql = read("SELECT field, value FROM kv.hashes WHERE id = $1 ORDER BY seq", &[INT8]);

impl<'a> Store<'a> {
    pub fn hget(self, id: i64, field: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
        Ok(self.bytes_column(&HGET, &[id.into(), bytea(field)])?.into_iter().next())
    }

    /// The values of `fields`, in order; `None` where a field is missing.
    /// One primary-key probe per field (see `zmscore`).
    pub fn hmget(self, id: i64, fields: &[Bytes]) -> Result<Vec<Option<Vec<u8>>>, CmdError> {
        fields.iter().map(|f| self.hget(id, f)).collect()
    }

    /// Sets `pairs` (field, value; the last value of a repeated field wins)
    /// and returns how many fields were new. Updates the key's size. The
    /// writes are queued when the batch knows the fields (see `members`).
    pub fn hset(self, e: &Entry, pairs: Vec<(Bytes, Bytes)>) -> Result<i64, CmdError> {
        let mut fields: Vec<Bytes> = Vec::with_capacity(pairs.len());
        let mut values: Vec<Bytes> = Vec::with_capacity(pairs.len());
        for (f, v) in pairs {
            match fields.iter().position(|x| *x == f) {
                Some(i) => values[i] = v,
                None => {
                    fields.push(f);
                    values.push(v);
                }
            }
        }
        // Large values are written at once rather than copied around.
        let small = values.iter().all(|v| v.len() <= super::keys::QUEUE_MAX_VALUE);
        let known = if small { self.known_members(e, &fields)? } else { None };
        if let Some(known) = known {
            let mut added = 0;
            let n = fields.len();
            for (i, ((field, value), was)) in fields.into_iter().zip(values).zip(known).enumerate() {
                if was == Known::Absent {
                    added += 1;
                }
                queue_member(e.id, field, e.head + i as i64, MemberValue::Field(value));
            }
            self.note_added(e, added, n)?;
            return Ok(added);
        }
        let (added, _) = if let ([field], [value]) = (fields.as_slice(), values.as_slice()) {
            self.run(&HSET_ONE, &[e.id.into(), bytea(field), bytea(value), e.head.into()], upserted)?
        } else {
            let seqs: Vec<i64> = (0..fields.len() as i64).map(|i| e.head + i).collect();
            self.run(&HSET, &[e.id.into(), bytea_array(&fields), bytea_array(&values), DatumWithOid::from(seqs)], upserted)?
        };
        self.note_added(e, added, fields.len())?;
        Ok(added)
    }

    pub fn hsetnx(self, e: &Entry, field: &[u8], value: &[u8]) -> Result<bool, CmdError> {
        let added = self.exec(&HSETNX, &[e.id.into(), bytea(field), bytea(value), e.head.into()])? > 0;
        if added {
            self.set_card(e, e.card + 1, e.head + 1)?;
        }
        Ok(added)
    }

    /// Removes fields, returning how many existed; drops an emptied hash.
    pub fn hdel(self, e: &Entry, fields: &[Bytes]) -> Result<i64, CmdError> {
        let removed = self.exec(&HDEL, &[e.id.into(), bytea_array(fields)])? as i64;
        self.set_card(e, e.card - removed, e.head)?;
        Ok(removed)
    }

    /// Up to `limit` fields with seq in `seqs`, in seq order.
    pub fn hscan(self, id: i64, seqs: Range<i64>, limit: i64) -> Result<Vec<(i64, Vec<u8>, Vec<u8>)>, CmdError> {
        self.before_reading()?;
        let mut out = Vec::new();
        let direct = super::direct::members_by_seq(super::direct::MemberTable::Hashes, id, Some(seqs.clone()), limit, |seq, field, row| {
            if let super::direct::MemberRow::Field(value) = row {
                out.push((seq, field.to_vec(), value.to_vec()));
            }
        })?;
        if direct {
            return Ok(out);
        }
        self.run(&SCAN, &[id.into(), seqs.start.into(), limit.into()], |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let seq = row.get::<i64>(1)?.unwrap_or_default();
                if seq < seqs.end {
                    out.push((seq, row.get::<Vec<u8>>(2)?.unwrap_or_default(), row.get::<Vec<u8>>(3)?.unwrap_or_default()));
                }
            }
            Ok(out)
        })
    }

    /// Every (field, value), in insertion order.
    /// Read straight from the `(id, seq)` index where that applies
    /// (`direct::members_by_seq`).
    pub fn hgetall(self, id: i64) -> Result<Vec<(Vec<u8>, Vec<u8>)>, CmdError> {
        self.before_reading()?;
        let mut all = Vec::new();
        let direct = super::direct::members_by_seq(super::direct::MemberTable::Hashes, id, None, i64::MAX, |_, field, row| {
            if let super::direct::MemberRow::Field(value) = row {
                all.push((field.to_vec(), value.to_vec()));
            }
        })?;
        if direct {
            return Ok(all);
        }
        self.run(&HGETALL, &[id.into()], |_| super::sql::bytea_pairs())
    }
}
