//! The store layer: the only code that runs SQL.
//!
//! Type checks and "expired means absent" are decided in exactly one place,
//! [`Store::lookup`], which every command and every SQL function reaches.
//! The key row (`kv.keys`) carries a string's payload inline, and for the
//! other types their cardinality and list head, so length commands and pushes
//! at either end are one index probe.

mod config;
mod pubsub;
mod roles;
pub use roles::verify_password;
pub use zsets::member_hash as zset_member_hash;
mod hashes;
mod keys;
mod lists;
mod members;
mod scripts;
mod sets;
mod zsets;
mod sql;
mod cache;
pub(crate) mod direct;
mod locations;
pub use locations::prefer_huge_pages;

use crate::error::CmdError;
use bytes::Bytes;
use pgrx::datum::DatumWithOid;
use pgrx::spi::{SpiClient, SpiTupleTable};
use sql::{read, write, Sql, BYTEA, INT2, INT8};


/// The types a key can hold; the code is the `kv.keys.type` column ("char").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    String,
    Hash,
    List,
    Set,
    ZSet,
}

impl KeyType {
    pub fn code(self) -> i8 {
        (match self {
            KeyType::String => b's',
            KeyType::Hash => b'h',
            KeyType::List => b'l',
            KeyType::Set => b't',
            KeyType::ZSet => b'z',
        }) as i8
    }

    pub fn from_code(c: i8) -> Result<KeyType, CmdError> {
        Ok(match c as u8 {
            b's' => KeyType::String,
            b'h' => KeyType::Hash,
            b'l' => KeyType::List,
            b't' => KeyType::Set,
            b'z' => KeyType::ZSet,
            other => return Err(CmdError::Postgres(format!("kv.keys has an unknown type code {:?}", other as char))),
        })
    }

    /// The name TYPE reports.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
        }
    }
}

/// A live key: what `lookup` found, with expiry already applied.
#[derive(Debug, Clone)]
pub struct Entry {
    pub db: i16,
    /// `Bytes`, like the payload: a cached row is cloned on every lookup.
    pub key: Bytes,
    pub id: i64,
    pub ktype: KeyType,
    /// Unix milliseconds, or `None` for a key without TTL.
    pub expire_at: Option<i64>,
    /// The payload, for strings, when the lookup asked for it.
    pub value: Option<Bytes>,
    /// Members of a hash, list, set or sorted set.
    pub card: i64,
    /// List: position of the first element. Hash: next insertion number.
    pub head: i64,
}

impl Entry {
    /// A key row as the lookup statements select it: id, type, expire_at,
    /// value, card, head.
    fn from_row(db: i16, key: Vec<u8>, row: &pgrx::spi::SpiHeapTupleData<'_>) -> Result<Entry, CmdError> {
        Ok(Entry {
            db,
            key: key.into(),
            id: row.get(1)?.unwrap_or_default(),
            ktype: KeyType::from_code(row.get(2)?.unwrap_or_default())?,
            expire_at: row.get(3)?,
            value: row.get::<Vec<u8>>(4)?.map(Bytes::from),
            card: row.get(5)?.unwrap_or_default(),
            head: row.get(6)?.unwrap_or_default(),
        })
    }
}

/// Whether a lookup also fetches a string's payload. EXISTS and TYPE don't
/// need it, and strings can be 512 MB.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Meta,
    Value,
}

#[derive(Clone, Copy)]
pub struct Store<'a> {
    spi: &'a SpiClient<'a>,
    /// The running command writes: its lookups lock the key row.
    write: bool,
}

fn bytea(b: &[u8]) -> DatumWithOid<'_> {
    DatumWithOid::from(b)
}

static LOOKUP_META: Sql = read("SELECT id, type, expire_at, NULL::bytea, card, head FROM kv.keys WHERE db = $1 AND key = $2", &[INT2, BYTEA]);
static LOOKUP_VALUE: Sql = read("SELECT id, type, expire_at, value, card, head FROM kv.keys WHERE db = $1 AND key = $2", &[INT2, BYTEA]);
// The locking reads also return the row's ctid: the write-back updates the
// locked version by it (`FLUSH_BY_TID`).
static LOCK_META: Sql =
    write("SELECT id, type, expire_at, NULL::bytea, card, head, ctid FROM kv.keys WHERE db = $1 AND key = $2 FOR UPDATE", &[INT2, BYTEA]);
static LOCK_VALUE: Sql =
    write("SELECT id, type, expire_at, value, card, head, ctid FROM kv.keys WHERE db = $1 AND key = $2 FOR UPDATE", &[INT2, BYTEA]);
// One primary-key probe per key, like LOCK_PREFETCH below (and for the
// same reason: "key = ANY ($2)" leaves the planner a whole-database plan).
// LIMIT 1 (the key is unique) keeps the subquery from being flattened
// into a join, which could be planned the same way.
static PREFETCH: Sql = read(
    "SELECT k.id, k.type, k.expire_at, k.value, k.card, k.head, k.key FROM unnest($2) AS u(key) \
     CROSS JOIN LATERAL (SELECT * FROM kv.keys WHERE db = $1 AND key = u.key LIMIT 1) AS k",
    &[INT2, sql::BYTEA_ARRAY],
);
// Locks the key rows a batch's writing commands will use, one primary-key
// probe per key, in the array's order. Not "key = ANY ($2) FOR UPDATE": a
// plan for that made while kv.keys was nearly empty scanned the whole
// database and filtered (measured 100x slower once it had grown); a
// lateral probe per key has no other plan.
static LOCK_PREFETCH: Sql = write(
    "SELECT k.id, k.type, k.expire_at, k.value, k.card, k.head, k.key, k.tid FROM unnest($2) AS u(key) \
     CROSS JOIN LATERAL (SELECT ctid AS tid, * FROM kv.keys WHERE db = $1 AND key = u.key FOR UPDATE) AS k",
    &[INT2, sql::BYTEA_ARRAY],
);
// Writes back key rows this transaction locked, by the locked version's
// ctid: no primary-key probe, no conflict check (a third of the cost of
// FLUSH_ROWS per row). The join has no other plan: its only indexable
// clause is the ctid, and the key columns are compared with IS NOT
// DISTINCT FROM, which no index or merge join can use, so a plan made
// while kv.keys is empty cannot pick a full index scan. A row not found
// there (moved by another statement of this transaction) is left out of
// RETURNING and written back by key.
static FLUSH_BY_TID: Sql = write(
    "UPDATE kv.keys AS k SET expire_at = u.expire_at, value = coalesce(u.value, k.value), card = u.card, head = u.head \
     FROM unnest($1, $2, $3, $4, $5, $6, $7, $8) WITH ORDINALITY AS u(tid, db, key, id, expire_at, value, card, head, i) \
     WHERE k.ctid = u.tid AND (k.db, k.key, k.id) IS NOT DISTINCT FROM (u.db, u.key, u.id) RETURNING u.i",
    &[sql::TID_ARRAY, sql::INT2_ARRAY, sql::BYTEA_ARRAY, sql::INT8_ARRAY, sql::INT8_ARRAY, sql::BYTEA_ARRAY, sql::INT8_ARRAY, sql::INT8_ARRAY],
);
static FLUSH_ROW: Sql = write(
    "UPDATE kv.keys SET expire_at = $4, value = coalesce($5, value), card = $6, head = $7 WHERE db = $1 AND key = $2 AND id = $3",
    &[INT2, BYTEA, INT8, INT8, BYTEA, INT8, INT8],
);
// FLUSH_ROW for many rows. An upsert rather than UPDATE ... FROM unnest:
// its conflict check always probes the primary key, whatever plan a join
// would get. The id check keeps a row of another incarnation untouched;
// a row that is gone altogether would be inserted, reported by `inserted`.
static FLUSH_ROWS: Sql = write(
    "INSERT INTO kv.keys AS k (db, key, id, type, expire_at, value, card, head) \
     SELECT db, key, id, 's', expire_at, value, card, head FROM unnest($1, $2, $3, $4, $5, $6, $7) \
     AS u(db, key, id, expire_at, value, card, head) \
     ON CONFLICT (db, key) DO UPDATE SET expire_at = EXCLUDED.expire_at, value = coalesce(EXCLUDED.value, k.value), \
     card = EXCLUDED.card, head = EXCLUDED.head WHERE k.id = EXCLUDED.id \
     RETURNING k.xmax = 0 AS inserted, k.db, k.key, k.id",
    &[sql::INT2_ARRAY, sql::BYTEA_ARRAY, sql::INT8_ARRAY, sql::INT8_ARRAY, sql::BYTEA_ARRAY, sql::INT8_ARRAY, sql::INT8_ARRAY],
);
static DELETE_IF_EXPIRED: Sql = write("DELETE FROM kv.keys WHERE db = $1 AND key = $2 AND expire_at <= $3 RETURNING 1", &[INT2, BYTEA, INT8]);
static CREATE_KEY: Sql = write(
    "INSERT INTO kv.keys (db, key, type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id, ctid",
    &[INT2, BYTEA, sql::CHAR],
);
// Rows are always addressed through the primary key; the id check makes
// sure it is still the same incarnation of the key.
static DELETE_BY_ID: Sql = write("DELETE FROM kv.keys WHERE db = $1 AND key = $2 AND id = $3", &[INT2, BYTEA, INT8]);

impl<'a> Store<'a> {
    /// A store over an SPI connection that is open for the whole batch (worker)
    /// or the whole function call (SQL).
    pub fn new(spi: &'a SpiClient<'a>) -> Store<'a> {
        Store { spi, write: false }
    }

    /// This store for a command that writes (`true`) or only reads.
    pub fn for_command(self, write: bool) -> Store<'a> {
        Store { write, ..self }
    }

    /// Runs a statement; the batch's queued writes (`cache::PendingSet`,
    /// `cache::PendingPush`, popped list elements) go first, so it sees
    /// them, and the list elements read ahead for pops are forgotten, as it
    /// may change them.
    fn run<R>(self, sql: &'static Sql, args: &[DatumWithOid<'_>], f: impl FnOnce(SpiTupleTable<'a>) -> Result<R, CmdError>) -> Result<R, CmdError> {
        self.before_reading()?;
        sql::run(self.spi, sql, args, f)
    }

    /// What comes before anything reads the tables (a statement, or the
    /// direct lookups): the queued writes go out, and the list elements
    /// read ahead are forgotten.
    fn before_reading(self) -> Result<(), CmdError> {
        if cache::has_pending() {
            self.write_pending()?;
        }
        cache::drop_read_ahead();
        Ok(())
    }

    /// Runs a statement for its effect; returns the number of rows it returned.
    fn exec(self, sql: &'static Sql, args: &[DatumWithOid<'_>]) -> Result<usize, CmdError> {
        self.run(sql, args, |t| Ok(t.len()))
    }

    /// The first column of every row.
    fn column<T: pgrx::FromDatum + pgrx::IntoDatum>(self, sql: &'static Sql, args: &[DatumWithOid<'_>]) -> Result<Vec<T>, CmdError> {
        self.run(sql, args, |t| {
            let mut out = Vec::with_capacity(t.len());
            for row in t {
                if let Some(v) = row.get::<T>(1)? {
                    out.push(v);
                }
            }
            Ok(out)
        })
    }

    /// The first column of every row, bytea: `column::<Vec<u8>>`, faster.
    fn bytes_column(self, sql: &'static Sql, args: &[DatumWithOid<'_>]) -> Result<Vec<Vec<u8>>, CmdError> {
        self.run(sql, args, |_| sql::first_bytea_column())
    }

    /// The one lookup every command goes through. An expired key is deleted
    /// here (lazy expiry) and reported as absent. A writing command locks
    /// the key row (FOR UPDATE), so its read-modify-write cannot lose a
    /// concurrent update from another worker or a SQL session.
    pub fn lookup(self, db: i16, key: &[u8], now_ms: i64, fetch: Fetch) -> Result<Option<Entry>, CmdError> {
        let cached = cache::get(db, key, self.write, fetch == Fetch::Value);
        let found = match cached {
            Some(hit) => hit,
            None => {
                let sql = match (self.write, fetch) {
                    (false, Fetch::Meta) => &LOOKUP_META,
                    (false, Fetch::Value) => &LOOKUP_VALUE,
                    (true, Fetch::Meta) => &LOCK_META,
                    (true, Fetch::Value) => &LOCK_VALUE,
                };
                let found = self.run(sql, &[db.into(), bytea(key)], |rows| {
                    let Some(row) = rows.into_iter().next() else { return Ok(None) };
                    let tid = if self.write { row.get::<cache::Tid>(7)? } else { None };
                    Ok(Some((Entry::from_row(db, key.to_vec(), &row)?, tid)))
                })?;
                let (row, tid) = found.map_or((None, None), |(e, tid)| (Some(e), tid));
                cache::put(db, key, row.clone(), self.write, tid);
                row
            }
        };
        match found {
            Some(e) if e.expire_at.is_some_and(|t| t <= now_ms) => {
                // A read-only transaction (a SQL caller's, or a standby's)
                // cannot delete; the key is still reported absent and the
                // active cycle removes it later.
                // SAFETY: a plain global of the running backend.
                if !unsafe { pgrx::pg_sys::XactReadOnly } {
                    // Expiry is the server's doing, whoever looked: a
                    // read-only role's GET removes an expired key too.
                    if as_worker(|| self.exec(&DELETE_IF_EXPIRED, &[db.into(), bytea(key), now_ms.into()]))? > 0 {
                        crate::cmd::notify::emit(crate::cmd::notify::EXPIRED, "expired", db, key);
                    }
                    cache::forget(db, key);
                }
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// `lookup` that answers WRONGTYPE unless the key is absent or of `want`.
    pub fn lookup_typed(self, db: i16, key: &[u8], now_ms: i64, want: KeyType, fetch: Fetch) -> Result<Option<Entry>, CmdError> {
        match self.lookup(db, key, now_ms, fetch)? {
            Some(e) if e.ktype != want => Err(CmdError::wrong_type()),
            other => Ok(other),
        }
    }

    /// The live key of type `want`, created empty when missing. The caller
    /// must add members (or call `set_card`, which drops an empty key).
    pub fn lookup_or_create(self, db: i16, key: &[u8], now_ms: i64, want: KeyType) -> Result<Entry, CmdError> {
        self.create_announced(db, key, now_ms, want, true)
    }

    /// `lookup_or_create` of a destination the command has just deleted
    /// (SORT ... STORE, SINTERSTORE, ZUNIONSTORE...): Redis overwrites such
    /// a key, so its `new` event is only for a key that did not exist.
    pub fn recreate(self, db: i16, key: &[u8], now_ms: i64, want: KeyType, existed: bool) -> Result<Entry, CmdError> {
        self.create_announced(db, key, now_ms, want, !existed)
    }

    fn create_announced(self, db: i16, key: &[u8], now_ms: i64, want: KeyType, announce: bool) -> Result<Entry, CmdError> {
        if let Some(e) = self.lookup_typed(db, key, now_ms, want, Fetch::Meta)? {
            return Ok(e);
        }
        // Another transaction may have created the key since this one
        // looked (a SQL session and a worker pushing to the same new list):
        // the insert waits for it, and the command runs again, now seeing
        // and locking that key (see `insert_string`). Commands call this
        // before any other write, so running again repeats nothing.
        let created = self.run(&CREATE_KEY, &[db.into(), bytea(key), want.code().into()], |rows| {
            let Some(row) = rows.into_iter().next() else { return Ok(None) };
            Ok(row.get::<i64>(1)?.map(|id| (id, row.get::<cache::Tid>(2).ok().flatten())))
        })?;
        let Some((id, tid)) = created else {
            cache::forget(db, key);
            return Err(CmdError::Retry);
        };
        if announce {
            crate::cmd::notify::emit(crate::cmd::notify::NEW, "new", db, key);
        }
        let e = Entry { db, key: Bytes::copy_from_slice(key), id, ktype: want, expire_at: None, value: None, card: 0, head: 0 };
        cache::put(db, key, Some(e.clone()), true, tid);
        Ok(e)
    }

    /// Records a collection's new size; an emptied collection stops
    /// existing, as in Redis. The key row is written back once per batch
    /// (see `cache`), so a hot list costs one row update per commit.
    pub fn set_card(self, e: &Entry, card: i64, head: i64) -> Result<(), CmdError> {
        if card <= 0 {
            self.delete_entry(e)?;
            crate::cmd::notify::emptied(e.db, &e.key);
        } else {
            cache::update(e, |c| {
                c.card = card;
                c.head = head;
            });
        }
        Ok(())
    }

    /// Records that a write of `written` members (each given the next
    /// sequence number from `head`) added `added` of them. When none is new
    /// the key row stays as it is (its sequence numbers were not used), so a
    /// batch that only rewrites existing members, or adds members a set
    /// already has, does not write the key row back; an empty collection
    /// still goes (`set_card`).
    pub fn note_added(self, e: &Entry, added: i64, written: usize) -> Result<(), CmdError> {
        if added == 0 && e.card > 0 {
            return Ok(());
        }
        self.set_card(e, e.card + added, e.head + written as i64)
    }

    /// Deletes one live key by id (GETDEL, an emptied collection).
    pub fn delete_entry(self, e: &Entry) -> Result<(), CmdError> {
        self.exec(&DELETE_BY_ID, &[e.db.into(), bytea(&e.key), e.id.into()])?;
        cache::forget(e.db, &e.key);
        Ok(())
    }

    /// Reads the rows of many keys in one statement and caches them
    /// (unlocked: a writing command re-reads its key with a lock), so a
    /// batch's reads find their keys without a statement each.
    pub fn prefetch(self, db: i16, keys: &[Bytes]) -> Result<(), CmdError> {
        self.prefetch_rows(db, keys, None)
    }

    /// Reads and locks the rows of many keys in one statement and caches
    /// them as locked, absent keys as known absent, so the batch's writing
    /// commands find their keys without a statement each. Rows are locked
    /// in the order of `keys`. `values` says, key by key, whether the batch
    /// may read a string's payload: one it only overwrites is cached without
    /// it (a payload read later fetches it, see `cache::get`).
    pub fn lock_prefetch(self, db: i16, keys: &[Bytes], values: &[bool]) -> Result<(), CmdError> {
        self.prefetch_rows(db, keys, Some(values))
    }

    /// `prefetch` (`lock` `None`) or `lock_prefetch`: through the hash
    /// index directly (`direct`), or by statement where that does not apply.
    fn prefetch_rows(self, db: i16, keys: &[Bytes], lock: Option<&[bool]>) -> Result<(), CmdError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.before_reading()?;
        let locked = lock.is_some();
        let found = match lock {
            Some(values) => direct::lock_rows(db, keys, values)?,
            None => direct::read_rows(db, keys)?,
        };
        match found {
            Some(found) => {
                self.cache_found(db, keys, found, locked);
                Ok(())
            }
            None => self.cache_rows(if locked { &LOCK_PREFETCH } else { &PREFETCH }, db, keys, locked),
        }
    }

    /// Runs a prefetch statement (rows as `Entry::from_row` reads them, the
    /// key last) and caches what it found, and every other key as absent.
    /// An unlocked read leaves a key already cached as it is.
    fn cache_rows(self, sql: &'static Sql, db: i16, keys: &[Bytes], locked: bool) -> Result<(), CmdError> {
        let found = self.run(sql, &[db.into(), bytea_array(keys)], |rows| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let tid = if locked { row.get::<cache::Tid>(8)? } else { None };
                out.push((Entry::from_row(db, row.get::<Vec<u8>>(7)?.unwrap_or_default(), &row)?, tid));
            }
            Ok(out)
        })?;
        self.cache_found(db, keys, found, locked);
        Ok(())
    }

    /// Caches the rows found for `keys`, and every other key as absent.
    fn cache_found(self, db: i16, keys: &[Bytes], found: Vec<(Entry, Option<cache::Tid>)>, locked: bool) {
        for k in keys {
            if locked || !cache::contains(db, k) {
                cache::put(db, k, None, locked, None);
            }
        }
        for (e, tid) in found {
            cache::put_found(e, locked, tid);
        }
    }

    /// Sends the queued writes and writes back every key row changed since
    /// the last flush. Called before any statement that reads kv.keys other
    /// than by key, at the end of each batch and of each SQL call.
    pub fn flush(self) -> Result<(), CmdError> {
        self.write_pending()?;
        let (mut by_tid, mut dirty) = (Vec::new(), Vec::new());
        for (e, tid) in cache::take_dirty() {
            match tid {
                Some(tid) => by_tid.push((e, tid)),
                None => dirty.push(e),
            }
        }
        if !by_tid.is_empty() {
            dirty.extend(self.write_back_by_tid(by_tid)?);
        }
        if let [e] = dirty.as_slice() {
            // A NULL payload keeps the stored one (a string whose payload
            // this batch never read).
            let value = e.value.as_deref().map(bytea).unwrap_or(DatumWithOid::null::<Vec<u8>>());
            self.exec(&FLUSH_ROW, &[e.db.into(), bytea(&e.key), e.id.into(), e.expire_at.into(), value, e.card.into(), e.head.into()])?;
            return Ok(());
        }
        if dirty.is_empty() {
            return Ok(());
        }
        // Many rows (INCR or EXPIRE over many keys): one statement, rows in
        // key order like every other multi-row write.
        dirty.sort_by(|a, b| (a.db, &a.key).cmp(&(b.db, &b.key)));
        let args = key_row_columns(&dirty);
        let missing = self.run(&FLUSH_ROWS, &args, |rows| {
            let mut missing = Vec::new();
            for row in rows {
                if row.get::<bool>(1)?.unwrap_or(false) {
                    missing.push((row.get::<i16>(2)?.unwrap_or_default(), row.get::<Vec<u8>>(3)?.unwrap_or_default(), row.get::<i64>(4)?.unwrap_or_default()));
                }
            }
            Ok(missing)
        })?;
        // Cannot happen: a dirty row is locked by this transaction, and
        // whatever removes a key row forgets it first. Should it ever, the
        // row the upsert made up is taken back rather than resurrected.
        for (db, key, id) in missing {
            pgrx::warning!("pgkv: key row written back after it was removed; undone");
            self.exec(&DELETE_BY_ID, &[db.into(), bytea(&key), id.into()])?;
        }
        Ok(())
    }

    /// Writes back locked rows by their version's ctid (`direct::write_back`,
    /// or the `FLUSH_BY_TID` statement where that does not apply); returns
    /// the ones not found there, to be written back by key.
    fn write_back_by_tid(self, rows: Vec<(Entry, cache::Tid)>) -> Result<Vec<Entry>, CmdError> {
        if let Some(written) = direct::write_back(&rows)? {
            return Ok(rows.into_iter().zip(written).filter(|(_, w)| !w).map(|((e, _), _)| e).collect());
        }
        let n = rows.len();
        let (tids, entries): (Vec<cache::Tid>, Vec<Entry>) = rows.into_iter().map(|(e, tid)| (tid, e)).unzip();
        let [dbs, keys, ids, expires, values, cards, heads] = key_row_columns(&entries);
        let args = [DatumWithOid::from(tids), dbs, keys, ids, expires, values, cards, heads];
        // Straight to SPI: `run` would send the pending writes first, and
        // `flush` just did.
        let written: Option<Vec<i64>> = sql::run(self.spi, &FLUSH_BY_TID, &args, |t| {
            if t.len() == n {
                return Ok(None); // every row: the usual case, nothing to read
            }
            let mut written = Vec::with_capacity(t.len());
            for row in t {
                written.extend(row.get::<i64>(1)?);
            }
            Ok(Some(written))
        })?;
        let Some(written) = written else { return Ok(Vec::new()) };
        let written: std::collections::HashSet<i64> = written.into_iter().collect();
        Ok(entries.into_iter().enumerate().filter(|(i, _)| !written.contains(&(*i as i64 + 1))).map(|(_, e)| e).collect())
    }

    /// `flush`, then forget every cached row: for statements that move or
    /// remove key rows wholesale (RENAME, SWAPDB, FLUSHDB...).
    pub fn flush_and_forget(self) -> Result<(), CmdError> {
        self.flush()?;
        cache::clear();
        Ok(())
    }
}

pub use cache::{hint_members, hint_pops, Known};

/// Starts a unit of work (a batch attempt, a SQL call): nothing cached yet.
pub fn begin() {
    cache::clear();
    direct::clear_locked_versions();
    set_worker_user(None);
}

/// Key rows as the write-back statements take them, one array per column:
/// db, key, id, expire_at, value (NULL keeps the stored payload), card,
/// head.
fn key_row_columns(rows: &[Entry]) -> [DatumWithOid<'static>; 7] {
    let n = rows.len();
    let (mut dbs, mut keys, mut ids) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut expires, mut values, mut cards, mut heads) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for e in rows {
        dbs.push(e.db);
        keys.push(e.key.to_vec());
        ids.push(e.id);
        expires.push(e.expire_at);
        values.push(e.value.as_ref().map(|v| v.to_vec()));
        cards.push(e.card);
        heads.push(e.head);
    }
    [
        DatumWithOid::from(dbs),
        DatumWithOid::from(keys),
        DatumWithOid::from(ids),
        DatumWithOid::from(expires),
        DatumWithOid::from(values),
        DatumWithOid::from(cards),
        DatumWithOid::from(heads),
    ]
}

/// Counts the rows of an upsert's `RETURNING (xmax = 0)`: (rows inserted,
/// rows updated).
fn upserted(rows: SpiTupleTable<'_>) -> Result<(i64, i64), CmdError> {
    let (mut inserted, mut updated) = (0, 0);
    for row in rows {
        if row.get::<bool>(1)?.unwrap_or(false) {
            inserted += 1;
        } else {
            updated += 1;
        }
    }
    Ok((inserted, updated))
}

/// Keys as `bytea[]` parameters.
fn bytea_array(keys: &[Bytes]) -> DatumWithOid<'static> {
    let v: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    DatumWithOid::from(v)
}

thread_local! {
    /// The worker's own user while a command runs as a client's role.
    static WORKER_USER: std::cell::Cell<Option<(pgrx::pg_sys::Oid, i32)>> = const { std::cell::Cell::new(None) };
}

/// Marks (or clears) that commands now run as a role; `worker` is the
/// user and security context to return to for server-side work.
pub fn set_worker_user(worker: Option<(pgrx::pg_sys::Oid, i32)>) {
    WORKER_USER.with(|w| w.set(worker));
}

/// Whether the running command runs as a client's role.
fn running_as_role() -> bool {
    WORKER_USER.with(|w| w.get()).is_some()
}

/// Runs `f` as the worker's own user when a command runs as a role (an
/// ERROR inside leaves cleanup to the aborting transaction).
fn as_worker<T>(f: impl FnOnce() -> T) -> T {
    let Some((user, context)) = WORKER_USER.with(|w| w.get()) else { return f() };
    let (mut cur_user, mut cur_context) = (pgrx::pg_sys::InvalidOid, 0);
    // SAFETY: plain backend globals, restored right after.
    unsafe {
        pgrx::pg_sys::GetUserIdAndSecContext(&mut cur_user, &mut cur_context);
        pgrx::pg_sys::SetUserIdAndSecContext(user, context);
    }
    let out = f();
    unsafe { pgrx::pg_sys::SetUserIdAndSecContext(cur_user, cur_context) };
    out
}
