//! The batch's read-ahead of key rows through Postgres's access methods
//! rather than SQL: one hash-index scan, rescanned per key, and the
//! matching heap tuple's columns read from a slot.
//!
//! `read_rows` returns what the `PREFETCH` statement returns, `lock_rows`
//! what `LOCK_PREFETCH` returns and locks (same snapshot rules, same
//! index, same visibility: `index_getnext_slot` applies the snapshot),
//! without those statements' per-key executor work (nested loop, subquery,
//! limit, projection, row marks) and SPI's copy of every row into a tuple
//! table. Under GET at `-P 16` those were a third of the worker's time.
//!
//! Only the batch's prefetch uses it, and that skips clients logged in as
//! a Postgres role of their own: their reads run as SQL, as that role,
//! with its privileges.
//!
//! The relations are opened with the locks the executor would take
//! (AccessShareLock; RowShareLock on the table for `lock_rows`, as FOR
//! UPDATE) and kept until the transaction ends. Should kv.keys or its hash
//! index not look as `sql/schema.sql` made them, or should anything
//! unusual happen (see `lock_rows`), these answer `None` and the caller
//! runs the statement instead.

use super::cache::Tid;
use super::{Entry, KeyType};
use crate::error::CmdError;
use bytes::Bytes;
use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum};

/// kv.keys columns, in `sql/schema.sql` order (attribute numbers).
const DB: i32 = 1;
const KEY: i32 = 2;
const ID: i32 = 3;
const TYPE: i32 = 4;
const EXPIRE_AT: i32 = 5;
const VALUE: i32 = 6;
const CARD: i32 = 7;
const HEAD: i32 = 8;
const COLUMN_TYPES: [pg_sys::Oid; 8] = [
    pg_sys::INT2OID,
    pg_sys::BYTEAOID,
    pg_sys::INT8OID,
    pg_sys::CHAROID,
    pg_sys::INT8OID,
    pg_sys::BYTEAOID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
];

/// The live rows of `keys` in database `db` (absent keys have none), read
/// with the active snapshot, or `None` when the tables are not as expected.
pub fn read_rows(db: i16, keys: &[Bytes]) -> Result<Option<Vec<(Entry, Option<Tid>)>>, CmdError> {
    // SAFETY: called inside a transaction with an active snapshot (the
    // batch's); every pointer comes from Postgres and is used before the
    // relation, scan or slot it belongs to is released. An ERROR raised in
    // here unwinds through pgrx's guard to the batch's PgTry, and aborting
    // the transaction releases pins, locks, snapshots and memory.
    unsafe {
        with_relations(pg_sys::AccessShareLock, |heap, index| {
            scan(heap, index, pg_sys::GetActiveSnapshot(), db, keys, |slot, key| Some(Some((entry(slot, db, key)?, None))))
        })
    }
}

/// `read_rows` that also locks each row found (FOR UPDATE, waiting as
/// long as `lock_timeout` allows), in the order of `keys`, and returns the
/// locked version's ctid. As a writing statement does, it first makes the
/// transaction's earlier writes visible and takes a fresh snapshot.
///
/// A row updated by another transaction since the snapshot is locked in
/// its latest version, which must still be the same key (Postgres's
/// EvalPlanQual recheck does the same); a row deleted meanwhile counts as
/// absent. Any other outcome (only possible outside READ COMMITTED, or
/// for a row this transaction already changed) gives `None`, and the
/// statement runs instead, with Postgres's own handling; the locks taken
/// so far are this transaction's either way.
pub fn lock_rows(db: i16, keys: &[Bytes]) -> Result<Option<Vec<(Entry, Option<Tid>)>>, CmdError> {
    // SAFETY: as in `read_rows`; the snapshot pushed here is popped on
    // every path out but an ERROR, where the abort pops it.
    unsafe {
        if pg_sys::XactIsoLevel != pg_sys::XACT_READ_COMMITTED as i32 {
            return Ok(None);
        }
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let snapshot = pg_sys::GetActiveSnapshot();
        let cid = pg_sys::GetCurrentCommandId(true);
        let out = with_relations(pg_sys::RowShareLock, |heap, index| {
            let locked = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let rows = scan(heap, index, snapshot, db, keys, |slot, key| {
                let mut tmfd: pg_sys::TM_FailureData = std::mem::zeroed();
                let result = pg_sys::table_tuple_lock(
                    heap,
                    &mut (*slot).tts_tid,
                    snapshot,
                    locked,
                    cid,
                    pg_sys::LockTupleMode::LockTupleExclusive,
                    pg_sys::LockWaitPolicy::LockWaitBlock,
                    pg_sys::TUPLE_LOCK_FLAG_FIND_LAST_VERSION as u8,
                    &mut tmfd,
                );
                match result {
                    pg_sys::TM_Result::TM_Ok => {
                        if tmfd.traversed && (get::<i16>(locked, DB) != Some(db) || !same_bytes(locked, KEY, key)) {
                            return Some(None); // now another key's row
                        }
                        Some(Some((entry(locked, db, key)?, Some((*locked).tts_tid))))
                    }
                    pg_sys::TM_Result::TM_Deleted => Some(None),
                    _ => None,
                }
            });
            pg_sys::ExecDropSingleTupleTableSlot(locked);
            rows
        });
        pg_sys::PopActiveSnapshot();
        out
    }
}

/// Opens kv.keys (with `lockmode`) and its hash index, checks their
/// shape, and runs `f`; `None` when something is not as expected.
unsafe fn with_relations<T>(
    lockmode: u32,
    f: impl FnOnce(pg_sys::Relation, pg_sys::Relation) -> Option<T>,
) -> Result<Option<T>, CmdError> {
    unsafe {
        let Some((heap_oid, index_oid)) = relations() else { return Ok(None) };
        let heap = pg_sys::table_open(heap_oid, lockmode as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let out = if shape_ok(heap, index) { f(heap, index) } else { None };
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
        Ok(out)
    }
}

/// kv.keys and its hash index on `key`, by name (a syscache lookup each).
unsafe fn relations() -> Option<(pg_sys::Oid, pg_sys::Oid)> {
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"kv".as_ptr(), true);
        if ns == pg_sys::InvalidOid {
            return None;
        }
        let heap = pg_sys::get_relname_relid(c"keys".as_ptr(), ns);
        let index = pg_sys::get_relname_relid(c"keys_key_hash".as_ptr(), ns);
        (heap != pg_sys::InvalidOid && index != pg_sys::InvalidOid).then_some((heap, index))
    }
}

/// The heap has the eight columns of `COLUMN_TYPES`, and the index is a
/// hash index on `key` of that heap.
unsafe fn shape_ok(heap: pg_sys::Relation, index: pg_sys::Relation) -> bool {
    unsafe {
        let desc = (*heap).rd_att;
        if (*desc).natts < COLUMN_TYPES.len() as i32 {
            return false;
        }
        let attrs = (*desc).attrs.as_slice(COLUMN_TYPES.len());
        if attrs.iter().zip(COLUMN_TYPES).any(|(a, t)| a.attisdropped || a.atttypid != t) {
            return false;
        }
        let ix = (*index).rd_index;
        (*(*index).rd_rel).relam == pg_sys::HASH_AM_OID
            && (*ix).indrelid == (*heap).rd_id
            && (*ix).indnatts == 1
            && (*ix).indkey.values.as_slice(1)[0] == KEY as i16
            && pg_sys::RelationGetIndexPredicate(index).is_null()
    }
}

/// Finds each key's visible row in database `db` and hands its slot to
/// `found`, which answers the row to keep (`Some(None)`: none after all)
/// or `None` to give up on the whole scan.
unsafe fn scan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    db: i16,
    keys: &[Bytes],
    mut found: impl FnMut(*mut pg_sys::TupleTableSlot, &Bytes) -> Option<Option<(Entry, Option<Tid>)>>,
) -> Option<Vec<(Entry, Option<Tid>)>> {
    unsafe {
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        let scan = pg_sys::index_beginscan(heap, index, snapshot, 1, 0);
        let mut out = Some(Vec::with_capacity(keys.len()));
        let mut skey: pg_sys::ScanKeyData = std::mem::zeroed();
        for key in keys {
            let arg = key.as_ref().into_datum().expect("a bytea datum");
            pg_sys::ScanKeyInit(&mut skey, 1, pg_sys::HTEqualStrategyNumber as u16, pg_sys::F_BYTEAEQ.into(), arg);
            pg_sys::index_rescan(scan, &mut skey, 1, std::ptr::null_mut(), 0);
            while pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot) {
                // A hash index matches hash codes: recheck the key (and the
                // database, which the index does not hold).
                if get::<i16>(slot, DB) != Some(db) || !same_bytes(slot, KEY, key) {
                    continue;
                }
                match found(slot, key) {
                    Some(row) => out.as_mut().expect("not given up").extend(row),
                    None => out = None,
                }
                break;
            }
            pg_sys::pfree(arg.cast_mut_ptr());
            if out.is_none() {
                break;
            }
        }
        pg_sys::index_endscan(scan);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        out
    }
}

/// The key row in `slot` (of `key`, in `db`); `None` for a type code pgkv
/// does not know (the statement then reports it).
unsafe fn entry(slot: *mut pg_sys::TupleTableSlot, db: i16, key: &Bytes) -> Option<Entry> {
    unsafe {
        Some(Entry {
            db,
            key: key.clone(),
            id: get(slot, ID).unwrap_or_default(),
            ktype: KeyType::from_code(get::<i8>(slot, TYPE).unwrap_or_default()).ok()?,
            expire_at: get(slot, EXPIRE_AT),
            value: get::<Vec<u8>>(slot, VALUE).map(Bytes::from),
            card: get(slot, CARD).unwrap_or_default(),
            head: get(slot, HEAD).unwrap_or_default(),
        })
    }
}

/// Column `attnum` of the slot's tuple (detoasted and copied for bytea).
unsafe fn get<T: FromDatum>(slot: *mut pg_sys::TupleTableSlot, attnum: i32) -> Option<T> {
    unsafe {
        let mut isnull = false;
        let datum = pg_sys::slot_getattr(slot, attnum, &mut isnull);
        T::from_datum(datum, isnull)
    }
}

/// Whether bytea column `attnum` holds exactly `want`.
unsafe fn same_bytes(slot: *mut pg_sys::TupleTableSlot, attnum: i32, want: &[u8]) -> bool {
    unsafe {
        let mut isnull = false;
        let datum = pg_sys::slot_getattr(slot, attnum, &mut isnull);
        if isnull {
            return false;
        }
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        let plain = pg_sys::pg_detoast_datum_packed(raw);
        let same = pgrx::varlena::varlena_to_byte_slice(plain) == want;
        if plain != raw {
            pg_sys::pfree(plain.cast());
        }
        same
    }
}
