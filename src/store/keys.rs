//! Keyspace storage: whole keys, strings, TTLs, databases.

use super::sql::{read, write, Sql, BYTEA, BYTEA_ARRAY, INT2, INT2_ARRAY, INT4, INT8, INT8_ARRAY};
use pgrx::datum::DatumWithOid;
use super::{bytea, bytea_array, cache, Entry, KeyType, Store};
use crate::error::CmdError;
use bytes::Bytes;

static UPSERT_STRING: Sql = write(
    "INSERT INTO kv.keys AS k (db, key, type, expire_at, value) VALUES ($1, $2, 's', $3, $4) \
     ON CONFLICT (db, key) DO UPDATE SET type = 's', expire_at = EXCLUDED.expire_at, value = EXCLUDED.value, \
     card = 0, head = 0, id = CASE WHEN k.type = 's' THEN k.id ELSE nextval('kv.key_ids') END",
    &[INT2, BYTEA, INT8, BYTEA],
);
static INSERT_STRING: Sql = write(
    "INSERT INTO kv.keys (db, key, type, value) VALUES ($1, $2, 's', $3) ON CONFLICT DO NOTHING RETURNING 1",
    &[INT2, BYTEA, BYTEA],
);
static CREATE_STRING: Sql = write(
    "INSERT INTO kv.keys (db, key, type, expire_at, value) VALUES ($1, $2, 's', $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
    &[INT2, BYTEA, INT8, BYTEA],
);
static CREATE_STRINGS: Sql = write(
    "INSERT INTO kv.keys (db, key, type, value) SELECT $1, key, 's', value FROM unnest($2, $3) AS u(key, value) \
     ON CONFLICT DO NOTHING RETURNING key",
    &[INT2, BYTEA_ARRAY, BYTEA_ARRAY],
);
// The batch's queued SETs and MSETs (`cache::PendingSet`), one row each.
static UPSERT_PENDING: Sql = write(
    "INSERT INTO kv.keys AS k (db, key, type, expire_at, value) \
     SELECT db, key, 's', expire_at, value FROM unnest($1, $2, $3, $4) AS u(db, key, expire_at, value) \
     ON CONFLICT (db, key) DO UPDATE SET type = 's', expire_at = EXCLUDED.expire_at, value = EXCLUDED.value, \
     card = 0, head = 0, id = CASE WHEN k.type = 's' THEN k.id ELSE nextval('kv.key_ids') END",
    &[INT2_ARRAY, BYTEA_ARRAY, INT8_ARRAY, BYTEA_ARRAY],
);
// Queued creations (`cache::push_create`) where the direct insert does not
// apply: a key that exists is left alone, and reported by its absence.
static CREATE_PENDING: Sql = write(
    "INSERT INTO kv.keys (db, key, type, expire_at, value) \
     SELECT db, key, 's', expire_at, value FROM unnest($1, $2, $3, $4) AS u(db, key, expire_at, value) \
     ON CONFLICT DO NOTHING RETURNING 1",
    &[INT2_ARRAY, BYTEA_ARRAY, INT8_ARRAY, BYTEA_ARRAY],
);
/// Payloads up to this size are queued (and cached) by SET and MSET; larger
/// ones are written at once rather than copied around.
pub(super) const QUEUE_MAX_VALUE: usize = 16 * 1024;
static UNDO_CREATED: Sql = write("DELETE FROM kv.keys WHERE db = $1 AND key = ANY ($2)", &[INT2, BYTEA_ARRAY]);
static UPSERT_STRINGS: Sql = write(
    "INSERT INTO kv.keys AS k (db, key, type, value) SELECT $1, key, 's', value FROM unnest($2, $3) AS u(key, value) \
     ON CONFLICT (db, key) DO UPDATE SET type = 's', expire_at = NULL, value = EXCLUDED.value, \
     card = 0, head = 0, id = CASE WHEN k.type = 's' THEN k.id ELSE nextval('kv.key_ids') END",
    &[INT2, BYTEA_ARRAY, BYTEA_ARRAY],
);
static DELETE_KEYS: Sql = write(
    "DELETE FROM kv.keys WHERE db = $1 AND key = ANY ($2) RETURNING expire_at IS NULL OR expire_at > $3, key",
    &[INT2, BYTEA_ARRAY, INT8],
);
static DELETE_KEY: Sql = write("DELETE FROM kv.keys WHERE db = $1 AND key = $2 RETURNING 1", &[INT2, BYTEA]);
static RENAME: Sql = write("UPDATE kv.keys SET key = $3 WHERE db = $1 AND key = $2", &[INT2, BYTEA, BYTEA]);
static MOVE: Sql = write("UPDATE kv.keys SET db = $3 WHERE db = $1 AND key = $2", &[INT2, BYTEA, INT2]);
static SWAP_DB: Sql = write("UPDATE kv.keys SET db = $2 WHERE db = $1", &[INT2, INT2]);
static SWAP_DB_KEYS: Sql = write("UPDATE kv.keys SET db = $2 WHERE db = $1 RETURNING key", &[INT2, INT2]);
static COPY_ROW: Sql = write(
    "INSERT INTO kv.keys (db, key, type, expire_at, value, card, head) \
     SELECT $4, $5, type, expire_at, value, card, head FROM kv.keys WHERE db = $1 AND key = $2 AND id = $3 RETURNING id",
    &[INT2, BYTEA, INT8, INT2, BYTEA],
);
static COPY_HASH: Sql = write("INSERT INTO kv.hashes (id, field, value, seq) SELECT $2, field, value, seq FROM kv.hashes WHERE id = $1", &[INT8, INT8]);
static COPY_LIST: Sql = write("INSERT INTO kv.lists (id, pos, value) SELECT $2, pos, value FROM kv.lists WHERE id = $1", &[INT8, INT8]);
static COPY_SET: Sql = write("INSERT INTO kv.sets (id, member, seq) SELECT $2, member, seq FROM kv.sets WHERE id = $1", &[INT8, INT8]);
static COPY_ZSET: Sql =
    write("INSERT INTO kv.zsets (id, member, score, hash) SELECT $2, member, score, hash FROM kv.zsets WHERE id = $1", &[INT8, INT8]);
static FLUSH_DB: Sql = write("DELETE FROM kv.keys WHERE db = $1", &[INT2]);
// Two bounded probes of the primary key: `db <> $1` would walk every key
// of database $1 first.
static OTHER_DBS_EMPTY: Sql =
    read("SELECT NOT EXISTS (SELECT 1 FROM kv.keys WHERE db < $1) AND NOT EXISTS (SELECT 1 FROM kv.keys WHERE db > $1)", &[INT2]);
// The same question with a fresh snapshot (a writing statement takes one),
// asked once the table is locked.
static OTHER_DBS_EMPTY_NOW: Sql =
    write("SELECT NOT EXISTS (SELECT 1 FROM kv.keys WHERE db < $1) AND NOT EXISTS (SELECT 1 FROM kv.keys WHERE db > $1)", &[INT2]);
static LOCK_KEYS: Sql = write("LOCK TABLE kv.keys IN ACCESS EXCLUSIVE MODE", &[]);
static TRUNCATE_ALL: Sql = write("TRUNCATE kv.keys, kv.hashes, kv.lists, kv.sets, kv.zsets, kv.garbage", &[]);
static COUNT_DB: Sql = read("SELECT count(*) FROM kv.keys WHERE db = $1", &[INT2]);
static SCAN: Sql = read(
    "SELECT id, key, type, expire_at FROM kv.keys WHERE db = $1 AND id > $2 ORDER BY id LIMIT $3",
    &[INT2, INT8, INT8],
);
static ALL_KEYS: Sql = read("SELECT key, expire_at FROM kv.keys WHERE db = $1", &[INT2]);
static RANDOM_KEY: Sql = read(
    "SELECT key FROM kv.keys WHERE db = $1 AND id >= $2 AND (expire_at IS NULL OR expire_at > $3) ORDER BY id LIMIT 1",
    &[INT2, INT8, INT8],
);
static ID_RANGE: Sql = read("SELECT min(id), max(id) FROM kv.keys WHERE db = $1", &[INT2]);
static EXPIRE_STEP: Sql = write(
    "DELETE FROM kv.keys WHERE (db, key) IN \
     (SELECT db, key FROM kv.keys WHERE expire_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING db, key",
    &[INT8, INT8],
);
static SWEEP: Sql = write("SELECT kv.sweep($1)", &[INT4]);
static KEYSPACE: Sql = read(
    "SELECT db, count(*), count(expire_at) FROM kv.keys WHERE expire_at IS NULL OR expire_at > $1 GROUP BY db ORDER BY db",
    &[INT8],
);

/// One key of a SCAN page.
pub struct ScanItem {
    pub id: i64,
    pub key: Vec<u8>,
    pub ktype: KeyType,
    pub expire_at: Option<i64>,
}

impl<'a> Store<'a> {
    /// Creates or overwrites `key` as a string. Overwriting a key of another
    /// type gives it a new id: its members are swept in the background.
    ///
    /// The write is queued (see `cache::PendingSet`): a batch of SETs costs
    /// one statement. See `may_queue` for when it is not.
    pub fn set_string(self, db: i16, key: &[u8], value: &[u8], expire_at: Option<i64>) -> Result<(), CmdError> {
        if value.len() <= QUEUE_MAX_VALUE && may_queue() {
            if self.overwrite_locked(db, key, value, expire_at) {
                return Ok(());
            }
            cache::push_set(db, key, value, expire_at);
            return Ok(());
        }
        self.exec(&UPSERT_STRING, &[db.into(), bytea(key), expire_at.into(), bytea(value)])?;
        cache::forget(db, key);
        Ok(())
    }

    /// A blind write of a string the batch locked (`prefetch`): changes the
    /// cached row, written back by ctid at the flush, instead of queuing an
    /// upsert, which would look the key up again in the primary key (half
    /// of a batch of SETs went there). Overwriting a string keeps its id,
    /// as the upsert does; says whether it applied.
    fn overwrite_locked(self, db: i16, key: &[u8], value: &[u8], expire_at: Option<i64>) -> bool {
        let Some(e) = cache::locked_string(db, key) else { return false };
        cache::update(&e, |c| {
            c.value = Some(Bytes::copy_from_slice(value));
            c.expire_at = expire_at;
        });
        true
    }

    /// Sends the queued writes: the deletion of popped list elements, list
    /// pushes, collection members, then SETs and MSETs (a SET queued after a
    /// push to the same key replaces that list), one statement each.
    pub(super) fn write_pending(self) -> Result<(), CmdError> {
        // Pops first: a push may reuse a position popped in this batch.
        self.delete_popped()?;
        self.write_pushes()?;
        self.write_members()?;
        let mut sets = cache::take_pending();
        // Keys the batch found absent are inserted directly, where allowed.
        let new: Vec<&cache::PendingSet> = sets.iter().filter(|s| s.absent).collect();
        if !new.is_empty() && super::direct::insert_keys(&new)? {
            sets.retain(|s| !s.absent);
        }
        // Creations the direct insert did not take must not overwrite.
        let (creates, sets): (Vec<cache::PendingSet>, Vec<cache::PendingSet>) = sets.into_iter().partition(|s| s.create);
        if !creates.is_empty() {
            self.create_pending(creates)?;
        }
        if sets.is_empty() {
            return Ok(());
        }
        // Straight to SPI: `run` would come back here first.
        super::sql::run(self.spi, &UPSERT_PENDING, &pending_columns(sets), |_| Ok(()))
    }

    /// Creates a string a read-modify-write command (INCR, APPEND, SETBIT...)
    /// found missing. If another transaction created the key meanwhile (the
    /// insert waits for it to commit), this answers `CmdError::Retry` and
    /// the dispatcher runs the command again, now seeing and locking that
    /// key: no update is lost. An upsert here would overwrite the other
    /// writer's value.
    ///
    /// In a worker batch that found the key absent, the insert is queued
    /// with the batch's other new keys instead (`cache::push_create`): a
    /// statement per new key was most of INCR's cost while keys were being
    /// created. Should another transaction have created the key meanwhile,
    /// the batch runs again without queuing, and this command finds it.
    pub fn insert_string(self, db: i16, key: &[u8], value: &[u8]) -> Result<(), CmdError> {
        let queued = value.len() <= QUEUE_MAX_VALUE && may_queue() && super::direct::key_inserts_allowed() && cache::push_create(db, key, value);
        let inserted = queued || {
            let inserted = self.exec(&INSERT_STRING, &[db.into(), bytea(key), bytea(value)])? > 0;
            cache::forget(db, key);
            inserted
        };
        if inserted {
            crate::cmd::notify::emit(crate::cmd::notify::NEW, "new", db, key);
            Ok(())
        } else {
            Err(CmdError::Retry)
        }
    }

    /// Inserts queued creations (`cache::push_create`) where the direct
    /// insert does not apply; one that finds its key created meanwhile fails
    /// the batch (`direct::raise_key_conflict`).
    fn create_pending(self, creates: Vec<cache::PendingSet>) -> Result<(), CmdError> {
        let n = creates.len();
        // Straight to SPI: `run` would come back here first.
        let created = super::sql::run(self.spi, &CREATE_PENDING, &pending_columns(creates), |t| Ok(t.len()))?;
        if created < n {
            super::direct::raise_key_conflict();
        }
        Ok(())
    }

    /// SET NX of a key found missing: like `insert_string`, a key another
    /// transaction created meanwhile makes the command run again (and find
    /// it) instead of being overwritten.
    pub fn create_string(self, db: i16, key: &[u8], value: &[u8], expire_at: Option<i64>) -> Result<(), CmdError> {
        let inserted = self.exec(&CREATE_STRING, &[db.into(), bytea(key), expire_at.into(), bytea(value)])? > 0;
        cache::forget(db, key);
        if inserted {
            Ok(())
        } else {
            Err(CmdError::Retry)
        }
    }

    /// MSETNX of keys found missing, all or none: if another transaction
    /// created one of them meanwhile, the ones inserted here are taken back
    /// and the command runs again.
    pub fn create_strings(self, db: i16, pairs: &[(Bytes, Bytes)]) -> Result<(), CmdError> {
        let (keys, values) = last_values(db, pairs);
        let created = self.bytes_column(&CREATE_STRINGS, &[db.into(), bytea_array(&keys), bytea_array(&values)])?;
        if created.len() == keys.len() {
            return Ok(());
        }
        let created: Vec<Bytes> = created.into_iter().map(Bytes::from).collect();
        self.exec(&UNDO_CREATED, &[db.into(), bytea_array(&created)])?;
        Err(CmdError::Retry)
    }

    /// MSET: every pair in one statement; a key named twice takes its last
    /// value, as sequential SETs would leave it.
    pub fn set_strings(self, db: i16, pairs: &[(Bytes, Bytes)]) -> Result<(), CmdError> {
        if may_queue() && pairs.iter().all(|(_, v)| v.len() <= QUEUE_MAX_VALUE) {
            for (k, v) in pairs {
                if self.overwrite_locked(db, k, v, None) {
                    continue;
                }
                cache::push_set(db, k, v, None);
            }
            return Ok(());
        }
        let (keys, values) = last_values(db, pairs);
        self.exec(&UPSERT_STRINGS, &[db.into(), bytea_array(&keys), bytea_array(&values)])?;
        Ok(())
    }

    /// Replaces a live string's payload, keeping its TTL.
    pub fn set_value(self, e: &Entry, value: &[u8]) -> Result<(), CmdError> {
        cache::update(e, |c| c.value = Some(Bytes::copy_from_slice(value)));
        Ok(())
    }

    /// Deletes `keys`, returning how many live keys were removed. A key
    /// named twice counts once, as in Redis.
    /// Deletes keys; returns the ones that were live (expired ones are
    /// removed too, uncounted).
    pub fn delete(self, db: i16, keys: &[Bytes], now_ms: i64) -> Result<Vec<Vec<u8>>, CmdError> {
        for k in keys {
            cache::forget(db, k);
        }
        self.run(&DELETE_KEYS, &[db.into(), bytea_array(keys), now_ms.into()], |rows| {
            let mut live = Vec::new();
            for row in rows {
                if row.get::<bool>(1)?.unwrap_or(false) {
                    live.push(row.get::<Vec<u8>>(2)?.unwrap_or_default());
                }
            }
            Ok(live)
        })
    }

    pub fn set_expire(self, e: &Entry, expire_at: Option<i64>) -> Result<(), CmdError> {
        cache::update(e, |c| c.expire_at = expire_at);
        Ok(())
    }

    /// Removes whatever row `key` has, live or expired.
    /// Deletes a key row if there is one; says whether there was.
    pub fn delete_key(self, db: i16, key: &[u8]) -> Result<bool, CmdError> {
        cache::forget(db, key);
        Ok(self.exec(&DELETE_KEY, &[db.into(), bytea(key)])? > 0)
    }

    /// Renames a live key (its id, TTL and members follow). `dst` must be
    /// free: the caller deletes it first.
    pub fn rename(self, db: i16, src: &[u8], dst: &[u8]) -> Result<(), CmdError> {
        self.flush_and_forget()?;
        self.exec(&RENAME, &[db.into(), bytea(src), bytea(dst)])?;
        Ok(())
    }

    pub fn move_key(self, db: i16, key: &[u8], to: i16) -> Result<(), CmdError> {
        self.flush_and_forget()?;
        self.exec(&MOVE, &[db.into(), bytea(key), to.into()])?;
        crate::shared::touch(to, key);
        Ok(())
    }

    /// Copies a live key to `dst` in database `to` (which must be free):
    /// a new id, and a copy of every member.
    pub fn copy(self, e: &Entry, to: i16, dst: &[u8]) -> Result<(), CmdError> {
        self.flush_and_forget()?;
        let new_id = self.column::<i64>(&COPY_ROW, &[e.db.into(), bytea(&e.key), e.id.into(), to.into(), bytea(dst)])?;
        let new_id = new_id.first().copied().unwrap_or_default();
        crate::shared::touch(to, dst);
        let members = match e.ktype {
            KeyType::String => return Ok(()),
            KeyType::Hash => &COPY_HASH,
            KeyType::List => &COPY_LIST,
            KeyType::Set => &COPY_SET,
            KeyType::ZSet => &COPY_ZSET,
        };
        self.exec(members, &[e.id.into(), new_id.into()])?;
        Ok(())
    }

    pub fn swap_db(self, a: i16, b: i16) -> Result<(), CmdError> {
        self.flush_and_forget()?;
        // Through a parking value: the primary key is checked row by row.
        let mut keys = self.column::<Vec<u8>>(&SWAP_DB_KEYS, &[a.into(), (-1i16).into()])?;
        keys.extend(self.column::<Vec<u8>>(&SWAP_DB_KEYS, &[b.into(), a.into()])?);
        self.exec(&SWAP_DB, &[(-1i16).into(), b.into()])?;
        // Redis touches every watched key of either database that exists
        // in one of them (`touchAllWatchedKeysInDb`), and serves clients
        // blocked on them: every key of both, under both numbers.
        for key in &keys {
            crate::shared::touch(a, key);
            crate::shared::touch(b, key);
        }
        Ok(())
    }

    /// Empties one database. When it holds the only keys, TRUNCATE makes it
    /// O(1) whatever its size.
    pub fn flush_db(self, db: i16) -> Result<(), CmdError> {
        self.flush_and_forget()?;
        let mut alone = self.column::<bool>(&OTHER_DBS_EMPTY, &[db.into()])?.first().copied().unwrap_or(false);
        if alone {
            // TRUNCATE ignores MVCC: it would also remove keys another
            // transaction committed after this batch's snapshot. Lock out
            // writers, then look again with a fresh snapshot.
            self.exec(&LOCK_KEYS, &[])?;
            alone = self.column::<bool>(&OTHER_DBS_EMPTY_NOW, &[db.into()])?.first().copied().unwrap_or(false);
        }
        if alone {
            self.exec(&TRUNCATE_ALL, &[])?;
        } else {
            self.exec(&FLUSH_DB, &[db.into()])?;
        }
        crate::shared::flushed_db(db);
        Ok(())
    }

    pub fn flush_all(self) -> Result<(), CmdError> {
        self.flush_and_forget()?;
        self.exec(&TRUNCATE_ALL, &[])?;
        for db in 0..crate::DATABASES {
            crate::shared::flushed_db(db);
        }
        Ok(())
    }

    /// Keys in a database, counting ones expired but not yet removed (as
    /// Redis's DBSIZE does).
    pub fn count(self, db: i16) -> Result<i64, CmdError> {
        self.flush()?;
        Ok(self.column::<i64>(&COUNT_DB, &[db.into()])?.first().copied().unwrap_or(0))
    }

    /// Up to `limit` keys with an id above `after`, in id order.
    pub fn scan(self, db: i16, after: i64, limit: i64) -> Result<Vec<ScanItem>, CmdError> {
        self.flush()?;
        self.run(&SCAN, &[db.into(), after.into(), limit.into()], |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(ScanItem {
                    id: row.get(1)?.unwrap_or_default(),
                    key: row.get(2)?.unwrap_or_default(),
                    ktype: KeyType::from_code(row.get(3)?.unwrap_or_default())?,
                    expire_at: row.get(4)?,
                });
            }
            Ok(out)
        })
    }

    /// Every live key of a database (KEYS).
    pub fn all_keys(self, db: i16, now_ms: i64) -> Result<Vec<Vec<u8>>, CmdError> {
        self.flush()?;
        self.run(&ALL_KEYS, &[db.into()], |rows| {
            let mut out = Vec::new();
            for row in rows {
                let expire_at: Option<i64> = row.get(2)?;
                if expire_at.is_none_or(|t| t > now_ms) {
                    out.push(row.get::<Vec<u8>>(1)?.unwrap_or_default());
                }
            }
            Ok(out)
        })
    }

    /// A random live key, or `None` in an empty database.
    pub fn random_key(self, db: i16, now_ms: i64, pick: f64) -> Result<Option<Vec<u8>>, CmdError> {
        self.flush()?;
        let (lo, hi) = self.run(&ID_RANGE, &[db.into()], |rows| {
            let row = rows.into_iter().next();
            Ok(match row {
                Some(r) => (r.get::<i64>(1)?, r.get::<i64>(2)?),
                None => (None, None),
            })
        })?;
        let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(None) };
        let start = lo + ((hi - lo) as f64 * pick) as i64;
        for from in [start, lo] {
            if let Some(k) = self.bytes_column(&RANDOM_KEY, &[db.into(), from.into(), now_ms.into()])?.into_iter().next() {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// One bounded step of active expiry: removes up to `limit` expired keys.
    /// Removes up to `limit` expired keys, reporting each as `expired`.
    pub fn expire_step(self, now_ms: i64, limit: i64) -> Result<i64, CmdError> {
        self.run(&EXPIRE_STEP, &[now_ms.into(), limit.into()], |rows| {
            let mut n = 0;
            for row in rows {
                let db = row.get::<i16>(1)?.unwrap_or_default();
                let key = row.get::<Vec<u8>>(2)?.unwrap_or_default();
                cache::forget(db, &key);
                crate::cmd::notify::emit(crate::cmd::notify::EXPIRED, "expired", db, &key);
                n += 1;
            }
            Ok(n)
        })
    }

    /// Frees up to `budget` members of deleted collections.
    pub fn sweep(self, budget: i32) -> Result<i64, CmdError> {
        Ok(self.column::<i64>(&SWEEP, &[budget.into()])?.first().copied().unwrap_or(0))
    }

    /// (db, keys, keys with a TTL) for every non-empty database.
    pub fn keyspace(self, now_ms: i64) -> Result<Vec<(i16, i64, i64)>, CmdError> {
        self.flush()?;
        self.run(&KEYSPACE, &[now_ms.into()], |rows| {
            let mut out = Vec::new();
            for row in rows {
                out.push((row.get(1)?.unwrap_or_default(), row.get(2)?.unwrap_or_default(), row.get(3)?.unwrap_or_default()));
            }
            Ok(out)
        })
    }
}

/// Whether a write whose reply does not depend on it may be queued. Not
/// for a command running as a client's role (its writes are checked as
/// that role when they happen), nor inside a script, whose `redis.pcall`
/// must get a Postgres error (a lock timeout, say) from the call that
/// caused it.
pub(super) fn may_queue() -> bool {
    !super::running_as_role() && crate::lua::running_eval().is_none()
}

/// Queued string writes as the four array parameters (databases, keys,
/// expiry times, values) of `UPSERT_PENDING` and `CREATE_PENDING`.
fn pending_columns(sets: Vec<cache::PendingSet>) -> [DatumWithOid<'static>; 4] {
    let n = sets.len();
    let (mut dbs, mut keys, mut expires, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for s in sets {
        dbs.push(s.db);
        keys.push(s.key);
        expires.push(s.expire_at);
        values.push(s.value);
    }
    [DatumWithOid::from(dbs), DatumWithOid::from(keys), DatumWithOid::from(expires), DatumWithOid::from(values)]
}

/// The keys of MSET-style pairs, each with the last value given for it
/// (what sequential SETs would leave); forgets their cached rows.
fn last_values(db: i16, pairs: &[(Bytes, Bytes)]) -> (Vec<Bytes>, Vec<Bytes>) {
    let mut keys: Vec<Bytes> = Vec::with_capacity(pairs.len());
    let mut values: Vec<Bytes> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        cache::forget(db, k);
        match keys.iter().position(|x| x == k) {
            Some(i) => values[i] = v.clone(),
            None => {
                keys.push(k.clone());
                values.push(v.clone());
            }
        }
    }
    (keys, values)
}
