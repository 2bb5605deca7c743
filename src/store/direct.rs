//! The batch's read-ahead of key rows through Postgres's access methods
//! rather than SQL: one hash-index scan, rescanned per key, and the
//! matching heap tuple's columns read from the scan's slot.
//!
//! It returns what the `PREFETCH` statement returns (same snapshot, same
//! index, same visibility rules: `index_getnext_slot` applies the active
//! snapshot), without that statement's per-key executor work (nested loop,
//! subquery, limit, projection) and SPI's copy of every row into a tuple
//! table. Under GET at `-P 16` those were a third of the worker's time.
//!
//! It only reads, so it needs no row locks; the relations are opened with
//! AccessShareLock, as the executor would, and kept until the transaction
//! ends. Should kv.keys or its hash index not look as `sql/schema.sql`
//! made them, `read_rows` answers `None` and the caller uses the statement.

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

/// The live rows of `keys` in database `db` (absent keys have none), or
/// `None` when the tables are not as expected.
pub fn read_rows(db: i16, keys: &[Bytes]) -> Result<Option<Vec<Entry>>, CmdError> {
    // SAFETY: called inside a transaction with an active snapshot (the
    // batch's, or the SQL caller's); every pointer comes from Postgres and
    // is used before the relation, scan or slot it belongs to is released.
    // An ERROR raised in here unwinds through pgrx's guard to the batch's
    // PgTry, and aborting the transaction releases pins, locks and memory.
    unsafe {
        let Some((heap_oid, index_oid)) = relations() else { return Ok(None) };
        let heap = pg_sys::table_open(heap_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let expected = shape_ok(heap, index);
        let out = if expected { Some(scan(heap, index, db, keys)) } else { None };
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

unsafe fn scan(heap: pg_sys::Relation, index: pg_sys::Relation, db: i16, keys: &[Bytes]) -> Vec<Entry> {
    unsafe {
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        let scan = pg_sys::index_beginscan(heap, index, pg_sys::GetActiveSnapshot(), 1, 0);
        let mut out = Vec::with_capacity(keys.len());
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
                if let Ok(ktype) = KeyType::from_code(get::<i8>(slot, TYPE).unwrap_or_default()) {
                    out.push(Entry {
                        db,
                        key: key.clone(),
                        id: get(slot, ID).unwrap_or_default(),
                        ktype,
                        expire_at: get(slot, EXPIRE_AT),
                        value: get::<Vec<u8>>(slot, VALUE).map(Bytes::from),
                        card: get(slot, CARD).unwrap_or_default(),
                        head: get(slot, HEAD).unwrap_or_default(),
                    });
                }
                break;
            }
            pg_sys::pfree(arg.cast_mut_ptr());
        }
        pg_sys::index_endscan(scan);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        out
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
