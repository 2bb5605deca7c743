//! The store's hottest paths through Postgres's access methods and the
//! executor's single-row writes rather than SQL statements:
//!
//! - `read_rows` and `lock_rows`: the batch's read-ahead and locking of key
//!   rows, one hash-index scan rescanned per key (or a visit to the page
//!   where the key's row was last found, `store::locations`), the matching
//!   heap tuple's columns read from a slot. They return what the `PREFETCH` and
//!   `LOCK_PREFETCH` statements return (same snapshot rules, same index,
//!   same visibility: `index_fetch_heap` applies the snapshot), without
//!   those statements' per-key executor work (nested loop, subquery,
//!   limit, projection, row marks) and SPI's copy of every row into a
//!   tuple table. Under GET at `-P 16` those were a third of the worker's
//!   time. Only the batch's prefetch uses them, and that skips clients
//!   logged in as a Postgres role of their own: their reads run as SQL, as
//!   that role, with its privileges.
//! - `read_members`: the members' read-ahead, one B-tree scan of the
//!   member table's primary key rescanned per member.
//! - These fetches do not prune heap pages; the writes below prune a page
//!   when the new version would not fit (`fetch_unpruned`, `fetch_with_room`).
//! - `write_back`, `write_members`, `insert_list_elements`: the key rows'
//!   write-back, the queued member writes and list pushes, through
//!   `ExecSimpleRelationUpdate` and `ExecSimpleRelationInsert` (see
//!   `modifying`). These check the current user's privileges themselves.
//!
//! The relations are opened with the locks the executor would take
//! (AccessShareLock; RowShareLock on the table for `lock_rows`, as FOR
//! UPDATE; RowExclusiveLock for the writes) and kept until the transaction
//! ends. Should a table or index not look as `sql/schema.sql` made it, or
//! should anything unusual happen (see `lock_rows`), these answer `None`
//! (or `false`) and the caller runs the statement instead.

use super::cache::{MemberValue, PendingMember, PendingPush, PendingSet, Tid};
use super::{Entry, KeyType};
use crate::error::CmdError;
use crate::ffi::unguarded;
use bytes::Bytes;
use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum};
use std::ops::Bound;

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
        let Some(oids) = relations() else { return Ok(None) };
        Ok(with_relations(oids, pg_sys::AccessShareLock, |h, i| shape_ok(h, i), |heap, index| {
            scan(heap, index, pg_sys::GetActiveSnapshot(), db, keys, |slot, _, key| Some(Some((entry(slot, db, key, true)?, None))))
        }))
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
///
/// A string's payload is copied out only where `values` (one flag per key)
/// wants it: a key the batch only overwrites (SET, MSET) leaves it `None`,
/// as a lookup of its metadata does.
pub fn lock_rows(db: i16, keys: &[Bytes], values: &[bool]) -> Result<Option<Vec<(Entry, Option<Tid>)>>, CmdError> {
    // SAFETY: as in `read_rows`; the snapshot pushed here is popped on
    // every path out but an ERROR, where the abort pops it.
    unsafe {
        if pg_sys::XactIsoLevel != pg_sys::XACT_READ_COMMITTED as i32 {
            return Ok(None);
        }
        let Some(oids) = relations() else { return Ok(None) };
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let snapshot = pg_sys::GetActiveSnapshot();
        let cid = pg_sys::GetCurrentCommandId(true);
        let out = with_relations(oids, pg_sys::RowShareLock, |h, i| shape_ok(h, i), |heap, index| {
            let locked = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let rows = scan(heap, index, snapshot, db, keys, |slot, i, key| {
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
                        if tmfd.traversed && !Scope::Db(db).holds(locked, key) {
                            return Some(None); // now another key's row
                        }
                        let value = values.get(i).copied().unwrap_or(true);
                        let e = entry(locked, db, key, value)?;
                        note_locked_version(locked, heap);
                        Some(Some((e, Some((*locked).tts_tid))))
                    }
                    pg_sys::TM_Result::TM_Deleted => Some(None),
                    _ => None,
                }
            });
            pg_sys::ExecDropSingleTupleTableSlot(locked);
            rows
        });
        pg_sys::PopActiveSnapshot();
        Ok(out)
    }
}

/// What the lock pass saw of a key row version it locked, for the
/// write-back (`write_back`) to replace that version without fetching it
/// again: the room on its page then, the version's length, and whether its
/// payload was NULL (the write-back then has every column from the cached
/// row).
struct LockedVersion {
    epoch: u64,
    room: usize,
    len: usize,
    payload_null: bool,
    /// The row's id and type code then: a cached row with others is not
    /// written in place (the write-back by fetch keeps the stored type).
    id: i64,
    ktype: i8,
}

thread_local! {
    /// By the locked version's ctid (`item_pointer_to_u64`).
    static LOCKED: std::cell::RefCell<std::collections::HashMap<u64, LockedVersion, foldhash::fast::RandomState>> =
        std::cell::RefCell::new(std::collections::HashMap::default());
    static EPOCH: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// What the members' read-ahead (`read_members`) saw of a hash field's or
/// sorted-set member's version, for `write_members` to replace it without
/// fetching it again, as `LockedVersion` for key rows: the room on its
/// page then, its length, and its fourth column, which the update keeps
/// (a field's insertion number, a member's hash). No row lock is needed:
/// every command that changes a collection's members first locks its key
/// row (`members`).
struct SeenMember {
    epoch: u64,
    room: usize,
    len: usize,
    fourth: i64,
}

thread_local! {
    /// By the table's oid and the version's ctid.
    static SEEN_MEMBERS: std::cell::RefCell<std::collections::HashMap<(u32, u64), SeenMember, foldhash::fast::RandomState>> =
        std::cell::RefCell::new(std::collections::HashMap::default());
}

/// Forgets what the lock passes saw (`LockedVersion`): called when a unit
/// of work begins, and before every statement, which may change a locked
/// row behind the cache's back (a DELETE, a RENAME, a type change, a
/// user's trigger). A version this transaction changed since it locked it
/// cannot be updated by ctid (PostgreSQL raises "attempted to update
/// invisible tuple"); the write-back fetches such rows first, as it did
/// every row before, and skips the ones no longer current.
pub fn forget_locked_versions() {
    EPOCH.with(|e| e.set(e.get() + 1));
}

/// `forget_locked_versions`, also dropping the entries (a new unit of
/// work). A usual batch's allocation is kept for the next; a huge batch's
/// is freed, as the key-row cache's is.
pub fn clear_locked_versions() {
    forget_locked_versions();
    LOCKED.with(|l| clear_keeping_usual(&mut l.borrow_mut()));
    SEEN_MEMBERS.with(|m| clear_keeping_usual(&mut m.borrow_mut()));
}

fn clear_keeping_usual<K, V>(map: &mut std::collections::HashMap<K, V, foldhash::fast::RandomState>) {
    if map.capacity() > 4096 {
        *map = Default::default();
    } else {
        map.clear();
    }
}

/// Notes what the lock pass saw of the version in `locked` (a buffer slot
/// holding its page's pin; the room on its page, `version_room`).
unsafe fn note_locked_version(locked: *mut pg_sys::TupleTableSlot, heap: pg_sys::Relation) {
    unsafe {
        let Some((room, len)) = version_room(locked, heap) else { return };
        let version = LockedVersion {
            epoch: EPOCH.with(|e| e.get()),
            room,
            len,
            payload_null: attr(locked, VALUE).1,
            id: get(locked, ID).unwrap_or_default(),
            ktype: get(locked, TYPE).unwrap_or_default(),
        };
        let tid = pgrx::itemptr::item_pointer_to_u64((*locked).tts_tid);
        LOCKED.with(|l| l.borrow_mut().insert(tid, version));
    }
}

/// Notes what the members' read-ahead saw of the version in `slot` (a
/// buffer slot holding its page's pin), as `note_locked_version` does.
unsafe fn note_seen_member(slot: *mut pg_sys::TupleTableSlot, heap: pg_sys::Relation) {
    unsafe {
        let Some((room, len)) = version_room(slot, heap) else { return };
        let Some(fourth) = get::<i64>(slot, 4) else { return };
        let seen = SeenMember { epoch: EPOCH.with(|e| e.get()), room, len, fourth };
        let key = ((*heap).rd_id.to_u32(), pgrx::itemptr::item_pointer_to_u64((*slot).tts_tid));
        SEEN_MEMBERS.with(|m| m.borrow_mut().insert(key, seen));
    }
}

/// What the members' read-ahead saw of the version at `tid` of `heap`, if
/// this transaction has run no statement since.
unsafe fn seen_member(heap: pg_sys::Relation, tid: &Tid) -> Option<SeenMember> {
    let key = (unsafe { (*heap).rd_id }.to_u32(), pgrx::itemptr::item_pointer_to_u64(*tid));
    let epoch = EPOCH.with(|e| e.get());
    SEEN_MEMBERS.with(|m| m.borrow_mut().remove(&key)).filter(|v| v.epoch == epoch)
}

/// The free space on the page of the heap version in `slot` (a buffer
/// slot holding its page's pin) and the version's length; `None` for a
/// table not stored as heap. The free space is read without the page's
/// content lock, as `heap_page_prune_opt` reads it: only a hint, which the
/// update itself does not depend on (without room it leaves the page).
unsafe fn version_room(slot: *mut pg_sys::TupleTableSlot, heap: pg_sys::Relation) -> Option<(usize, usize)> {
    unsafe {
        if (*(*heap).rd_rel).relam != pg_sys::HEAP_TABLE_AM_OID {
            return None;
        }
        let slot = slot.cast::<pg_sys::BufferHeapTupleTableSlot>();
        let buffer = (*slot).buffer;
        if buffer == pg_sys::InvalidBuffer as pg_sys::Buffer || (*slot).base.tuple.is_null() {
            return None;
        }
        Some((pg_sys::PageGetHeapFreeSpace(pg_sys::BufferGetPage(buffer)), (*(*slot).base.tuple).t_len as usize))
    }
}

/// Whether a version of `len` bytes on the page of `tid`, which had
/// `room` free when read, can be replaced on that page by one up to
/// `longer` bytes longer, after what earlier rows of this write took of
/// that room (`taken`, by block, updated here).
fn room_for(taken: &mut Taken, tid: &Tid, room: usize, len: usize, longer: usize) -> bool {
    let need = (len + longer).next_multiple_of(pg_sys::MAXIMUM_ALIGNOF as usize);
    // SAFETY: reads the block number out of a valid item pointer.
    let block = unsafe { pgrx::itemptr::item_pointer_get_block_number_no_check(*tid) };
    let used = taken.entry(block).or_insert(0);
    if room < *used + need {
        return false;
    }
    *used += need + std::mem::size_of::<pg_sys::ItemIdData>();
    true
}

/// Bytes of each page's free space a write has taken (`room_for`).
type Taken = std::collections::HashMap<pg_sys::BlockNumber, usize, foldhash::fast::RandomState>;

/// What the lock pass saw of the version at `tid`, if this transaction
/// has run no statement since (`forget_locked_versions`).
fn locked_version(tid: &Tid) -> Option<LockedVersion> {
    let epoch = EPOCH.with(|e| e.get());
    LOCKED.with(|l| l.borrow_mut().remove(&pgrx::itemptr::item_pointer_to_u64(*tid))).filter(|v| v.epoch == epoch)
}

/// A member table, as the members' read-ahead probes it by its primary key
/// (id, member).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MemberTable {
    Hashes = 0,
    Sets = 1,
    ZSets = 2,
}

impl MemberTable {
    /// The table a queued member write goes to.
    pub fn of(value: &MemberValue) -> MemberTable {
        match value {
            MemberValue::Field(_) => MemberTable::Hashes,
            MemberValue::Set => MemberTable::Sets,
            MemberValue::Score(_) => MemberTable::ZSets,
        }
    }

    /// The table, its primary key, and its leading column types (`sql/schema.sql`).
    fn shape(self) -> (&'static std::ffi::CStr, &'static std::ffi::CStr, &'static [pg_sys::Oid]) {
        match self {
            MemberTable::Hashes => (c"hashes", c"hashes_pkey", &[pg_sys::INT8OID, pg_sys::BYTEAOID, pg_sys::BYTEAOID, pg_sys::INT8OID]),
            MemberTable::Sets => (c"sets", c"sets_pkey", &[pg_sys::INT8OID, pg_sys::BYTEAOID, pg_sys::INT8OID]),
            MemberTable::ZSets => (c"zsets", c"zsets_pkey", &[pg_sys::INT8OID, pg_sys::BYTEAOID, pg_sys::FLOAT8OID, pg_sys::INT8OID]),
        }
    }

    /// The primary key's columns: (id, member), and kv.zsets's (id, hash,
    /// member).
    fn pkey_columns(self) -> &'static [i16] {
        match self {
            MemberTable::Hashes | MemberTable::Sets => &[1, 2],
            MemberTable::ZSets => &[1, HASH as i16, 2],
        }
    }
}

/// kv.zsets's score column.
const SCORE: i32 = 3;

/// kv.zsets's member hash column (`zsets::member_hash`).
const HASH: i32 = 4;

/// Which of `members` (sorted) collection `id` holds, each with its score
/// for a zset: what the members' read-ahead statements (`HASH_AHEAD`...)
/// return, one primary-key probe per member, without their executor nodes
/// per member (nested loop, subquery, limit) and SPI's tuple table, which
/// were a fifth of them. As the statements' index-only scans do, a hash
/// field or set member on a page the visibility map has all-visible is
/// known present from the index alone.
///
/// It reads as a writing statement would (the transaction's earlier writes
/// visible, a fresh snapshot). `None` where this does not apply (not READ
/// COMMITTED, a role without SELECT on the table or with row-level security
/// on it, a table not shaped as `sql/schema.sql` made it), and the
/// statement runs instead.
pub fn read_members(table: MemberTable, id: i64, members: &[Bytes]) -> Result<Option<Vec<FoundMember>>, CmdError> {
    // SAFETY: as in `lock_rows`.
    unsafe {
        if pg_sys::XactIsoLevel != pg_sys::XACT_READ_COMMITTED as i32 {
            return Ok(None);
        }
        let Some(oids) = member_relations(table) else { return Ok(None) };
        if !open_to_user(oids.0, pg_sys::ACL_SELECT) {
            return Ok(None);
        }
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let shaped = |heap, index| member_shape_ok(heap, index, table);
        let out = with_relations(oids, pg_sys::AccessShareLock, shaped, |heap, index| {
            Some(probe_members(heap, index, id, members, table))
        });
        pg_sys::PopActiveSnapshot();
        Ok(out)
    }
}

/// A member `read_members` found: its score (zsets), and the ctid of its
/// visible version when the heap was visited (not when the index alone
/// answered).
pub struct FoundMember {
    pub member: Bytes,
    pub score: Option<f64>,
    pub tid: Option<Tid>,
}

/// The member table and its primary key, by name (a syscache lookup each).
unsafe fn member_relations(table: MemberTable) -> Option<(pg_sys::Oid, pg_sys::Oid)> {
    let (name, pkey, _) = table.shape();
    unsafe { kv_relations(name, pkey) }
}

/// Writes queued member rows: a new member (`None`) is inserted, and an
/// existing one is updated at the ctid the read-ahead found it at (its
/// value or score; a set member has nothing to update). What the upsert
/// statements (`HASH_QUEUED`...) do, without their conflict check, which
/// the read-ahead made redundant: the collection's key row is locked, so
/// its members are as read. Answers, per write, whether it was written: an
/// update whose ctid no longer holds the member's current version is not,
/// and goes by statement. `None` where this does not apply (see
/// `read_members`; also a role without INSERT and UPDATE, or a table with
/// columns of its own beyond `sql/schema.sql`'s, whose defaults an insert
/// here would not fill).
pub fn write_members(table: MemberTable, writes: &[(&PendingMember, Option<Tid>)]) -> Result<Option<Vec<bool>>, CmdError> {
    // SAFETY: as in `write_back`.
    unsafe {
        let Some((heap_oid, index_oid)) = member_relations(table) else { return Ok(None) };
        let columns = table.shape().2;
        let shaped = |heap: pg_sys::Relation| {
            let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let ok = member_shape_ok(heap, index, table) && columns_are(heap, columns, true);
            pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
            ok
        };
        // Column 3 is a hash field's value and a member's score.
        let changed: &[i32] = if table == MemberTable::Sets { &[] } else { &[3] };
        let modes = pg_sys::ACL_SELECT | pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE;
        Ok(modifying(heap_oid, modes, changed, shaped, |modify, heap, snapshot| {
            let old = pg_sys::table_slot_create(heap, &mut (*modify.estate).es_tupleTable);
            let new = modify.row_slot();
            let natts = columns.len();
            let located = Located::new(heap);
            // A trigger could change a row the loop writes later.
            let in_place = !modify.fires_row_triggers();
            let mut taken = Taken::default();
            let mut written = Vec::with_capacity(writes.len());
            for (w, tid) in writes {
                let per_row = modify.next_row();
                let caller = pg_sys::MemoryContextSwitchTo(per_row);
                let value = match (&w.value, table) {
                    (MemberValue::Field(v), MemberTable::Hashes) => v.as_ref().into_datum(),
                    (MemberValue::Score(score), MemberTable::ZSets) => score.into_datum(),
                    (MemberValue::Set, MemberTable::Sets) => None,
                    _ => unreachable!("a member write queued for another table"),
                };
                let member = w.member.as_ref().into_datum().expect("a bytea datum");
                pg_sys::MemoryContextSwitchTo(caller);
                let (values, nulls) = cleared(new, natts);
                match (tid, value) {
                    (None, value) => {
                        nulls.fill(false);
                        values[0] = w.id.into();
                        values[1] = member;
                        match value {
                            Some(v) => (values[2], values[3]) = (v, w.seq.into()),
                            None => values[2] = w.seq.into(),
                        }
                        pg_sys::ExecStoreVirtualTuple(new);
                        modify.insert(new);
                        located.remember(Scope::Id(w.id), &w.member, (*new).tts_tid);
                        written.push(true);
                    }
                    (Some(tid), Some(value)) => {
                        let longer = if let MemberValue::Field(v) = &w.value { v.len() } else { 0 };
                        let seen = if in_place && w.member.len() + longer <= REPLACED_ROW_MAX {
                            seen_member(heap, tid).filter(|v| room_for(&mut taken, tid, v.room, v.len, longer))
                        } else {
                            None
                        };
                        if let Some(seen) = seen {
                            // As `replace_locked`: the row is known whole
                            // (the fourth column as read), and the update
                            // reads only the version's ctid from `old`.
                            nulls.fill(false);
                            (values[0], values[1], values[2], values[3]) = (w.id.into(), member, value, seen.fourth.into());
                            pg_sys::ExecClearTuple(old);
                            (*old).tts_tid = *tid;
                        } else {
                            if !in_place {
                                see_triggers_writes();
                            }
                            let current = fetch_with_room(heap, old, tid, snapshot, longer) && Scope::Id(w.id).holds(old, &w.member);
                            if !current {
                                written.push(false);
                                continue;
                            }
                            pg_sys::slot_getallattrs(old);
                            values.copy_from_slice(std::slice::from_raw_parts((*old).tts_values, natts));
                            nulls.copy_from_slice(std::slice::from_raw_parts((*old).tts_isnull, natts));
                            values[2] = value;
                        }
                        written.push(true);
                        pg_sys::ExecStoreVirtualTuple(new);
                        modify.update(old, new);
                        if table == MemberTable::ZSets {
                            // A new score is indexed: the new version is
                            // not HOT, and its index entries point at it.
                            located.remember(Scope::Id(w.id), &w.member, (*new).tts_tid);
                        }
                    }
                    // A set member that exists has nothing to write (and is
                    // never queued): the statement decides.
                    (Some(_), None) => written.push(false),
                }
            }
            located.end();
            written
        }))
    }
}

/// Inserts the rows of new strings (blind SETs of keys the batch's
/// locking read found absent) with the executor's single-row insert:
/// what the `UPSERT_PENDING` statement does for them, without its function
/// scan, executor start-up and conflict check (half of that statement).
/// `false` where this does not apply (`modifying`'s conditions, kv.keys
/// with a column of its own added, or not allowed: see `KeyInserts`), and
/// the statement runs instead.
///
/// Nothing locks an absent key, so another transaction may create the
/// same key meanwhile. The primary key then raises a unique violation
/// here (after waiting for that transaction, if it is still running),
/// where the upsert would have overwritten its row: the batch's caller
/// learns so (`take_key_conflict`) and runs the whole batch again with
/// this path off, and the batch then finds and locks the other
/// transaction's row.
pub fn insert_keys(sets: &[&PendingSet]) -> Result<bool, CmdError> {
    if !KEY_INSERTS.with(|k| k.get() == KeyInserts::Allowed) {
        return Ok(false);
    }
    // SAFETY: as in `write_back`; the sequence is kv.key_ids, the id
    // column's default.
    unsafe {
        let Some((heap_oid, _)) = relations() else { return Ok(false) };
        let seq = kv_relation(c"key_ids");
        if seq == pg_sys::InvalidOid {
            return Ok(false);
        }
        let modes = pg_sys::ACL_SELECT | pg_sys::ACL_INSERT;
        let done = modifying(heap_oid, modes, &[], |heap| columns_are(heap, &COLUMN_TYPES, true), |modify, heap, _| {
            let new = modify.row_slot();
            let at = Located::new(heap);
            KEY_INSERTS.with(|k| k.set(KeyInserts::Inserting));
            for set in sets {
                let per_row = modify.next_row();
                let caller = pg_sys::MemoryContextSwitchTo(per_row);
                let (values, nulls) = cleared(new, COLUMN_TYPES.len());
                nulls.fill(false);
                values[DB as usize - 1] = set.db.into();
                values[KEY as usize - 1] = set.key.as_slice().into_datum().expect("a bytea datum");
                values[ID as usize - 1] = pg_sys::OidFunctionCall1Coll(pg_sys::Oid::from(pg_sys::F_NEXTVAL), pg_sys::InvalidOid, seq.into());
                values[TYPE as usize - 1] = KeyType::String.code().into();
                set_column(values, nulls, EXPIRE_AT, set.expire_at.into_datum());
                values[VALUE as usize - 1] = set.value.as_slice().into_datum().expect("a bytea datum");
                values[CARD as usize - 1] = 0i64.into();
                values[HEAD as usize - 1] = 0i64.into();
                pg_sys::MemoryContextSwitchTo(caller);
                pg_sys::ExecStoreVirtualTuple(new);
                modify.insert(new);
                at.remember(Scope::Db(set.db), &set.key, (*new).tts_tid);
            }
            at.end();
            KEY_INSERTS.with(|k| k.set(KeyInserts::Allowed));
        });
        Ok(done.is_some())
    }
}

/// Whether `insert_keys` may insert (only for the worker's batches, whose
/// caller can run a batch again), and whether it is inserting now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyInserts {
    Off,
    Allowed,
    Inserting,
    Conflicted,
}

thread_local! {
    static KEY_INSERTS: std::cell::Cell<KeyInserts> = const { std::cell::Cell::new(KeyInserts::Off) };
}

/// Lets `insert_keys` insert (for a worker batch) or not.
pub fn allow_key_inserts(allow: bool) {
    KEY_INSERTS.with(|k| k.set(if allow { KeyInserts::Allowed } else { KeyInserts::Off }));
}

/// Whether `insert_keys` may insert: in a worker batch that can run again
/// if a key it inserts turns out to exist.
pub fn key_inserts_allowed() -> bool {
    KEY_INSERTS.with(|k| k.get() == KeyInserts::Allowed)
}

/// A key whose creation was queued (`cache::push_create`) exists after
/// all, created by another transaction: fails the batch, which runs again
/// without queuing creations (`take_key_conflict`).
pub fn raise_key_conflict() -> ! {
    KEY_INSERTS.with(|k| k.set(KeyInserts::Conflicted));
    pgrx::error!("pgkv: a key this batch created was created by another transaction meanwhile")
}

/// A unique violation was raised: if it came from inside `insert_keys`,
/// another transaction created one of the keys.
pub fn note_unique_violation() {
    KEY_INSERTS.with(|k| {
        if k.get() == KeyInserts::Inserting {
            k.set(KeyInserts::Conflicted);
        }
    });
}

/// Whether `note_unique_violation` found a key created meanwhile; inserts
/// are off again either way.
pub fn take_key_conflict() -> bool {
    KEY_INSERTS.with(|k| k.replace(KeyInserts::Off) == KeyInserts::Conflicted)
}

/// Inserts the queued list elements (`PendingPush`): what the
/// `INSERT_QUEUED` statement does, without its function scan and
/// per-statement executor start-up. `false` where this does not apply (not
/// READ COMMITTED, a role without INSERT on kv.lists or with row-level
/// security on it, kv.lists not shaped as `sql/schema.sql` made it), and
/// the statement runs instead.
pub fn insert_list_elements(pushes: &[PendingPush]) -> Result<bool, CmdError> {
    // SAFETY: as in `write_back`.
    unsafe {
        let heap_oid = kv_relation(c"lists");
        if heap_oid == pg_sys::InvalidOid {
            return Ok(false);
        }
        let shaped = |heap| columns_are(heap, &LIST_COLUMNS, true);
        let done = modifying(heap_oid, pg_sys::ACL_INSERT, &[], shaped, |modify, _, _| {
            let new = modify.row_slot();
            for p in pushes {
                let per_row = modify.next_row();
                let caller = pg_sys::MemoryContextSwitchTo(per_row);
                let value = p.value.as_slice().into_datum().expect("a bytea datum");
                pg_sys::MemoryContextSwitchTo(caller);
                let (values, nulls) = cleared(new, 3);
                nulls.fill(false);
                values.copy_from_slice(&[p.id.into(), p.pos.into(), value]);
                pg_sys::ExecStoreVirtualTuple(new);
                modify.insert(new);
            }
        });
        Ok(done.is_some())
    }
}

/// Scan keys `read_scan` takes at most.
const SCAN_KEYS: usize = 4;

/// kv.lists's columns (`sql/schema.sql`): id, pos, value.
const LIST_COLUMNS: [pg_sys::Oid; 3] = [pg_sys::INT8OID, pg_sys::INT8OID, pg_sys::BYTEAOID];

/// Hands `each` the values of list `id` at positions `from..=to`, in
/// position order, each in place in its heap tuple: what the `RANGE`
/// statement (`store::lists`) returns, read with one range scan of
/// kv.lists's primary key (`read_scan`). Under LRANGE of 100 elements at
/// `-P 16` that statement was three fifths of the worker, over half of it
/// the executor's start-up, quals and projection, SPI's copy of every row
/// into a tuple table, and a copy of every value out of it.
pub fn list_range(id: i64, from: i64, to: i64, mut each: impl FnMut(&[u8])) -> Result<bool, CmdError> {
    let keys = [
        (1, pg_sys::BTEqualStrategyNumber, pg_sys::F_INT8EQ, id.into()),
        (2, pg_sys::BTGreaterEqualStrategyNumber, pg_sys::F_INT8GE, from.into()),
        (2, pg_sys::BTLessEqualStrategyNumber, pg_sys::F_INT8LE, to.into()),
    ];
    // SAFETY: `each` sees a value only while its tuple is pinned (or a
    // detoasted copy before it is freed).
    unsafe {
        read_scan((c"lists", c"lists_pkey"), &LIST_COLUMNS, &[1, 2], &keys, false, |slot| {
            scanned_bytes(slot, 3, &mut each);
            true
        })
    }
}

/// A member as `members_by_seq` hands it over: besides its name, a hash
/// field's value, or a sorted-set member's score.
pub enum MemberRow<'a> {
    Field(&'a [u8]),
    Set,
    Score(f64),
}

/// Hands `each` the members of collection `id` with sequence numbers in
/// `seqs` (all of them with `None`), in that order, at most `limit` of
/// them: the sequence number (0 when `seqs` is `None`), the member, and its
/// value or score. One scan of the table's `(id, seq)` index
/// (`read_scan`): what the `SCAN` statements (HSCAN, SSCAN, ZSCAN) and
/// `HGETALL` and `SMEMBERS` return, without their executor and SPI's tuple
/// table. A sorted set's members come in hash order instead, from its
/// primary key, with the hash for the sequence number; members that share
/// the last one's hash come too, as the statement's `WITH TIES` brings them.
pub fn members_by_seq(
    table: MemberTable,
    id: i64,
    seqs: Option<std::ops::Range<i64>>,
    limit: i64,
    mut each: impl FnMut(i64, &[u8], MemberRow),
) -> Result<bool, CmdError> {
    let mut keys = vec![(1, pg_sys::BTEqualStrategyNumber, pg_sys::F_INT8EQ, id.into())];
    if let Some(seqs) = &seqs {
        keys.push((2, pg_sys::BTGreaterEqualStrategyNumber, pg_sys::F_INT8GE, seqs.start.into()));
        if seqs.end < i64::MAX {
            keys.push((2, pg_sys::BTLessStrategyNumber, pg_sys::F_INT8LT, seqs.end.into()));
        }
    }
    let from = seqs.map(|s| s.start);
    let (name, _, columns) = table.shape();
    let (by_seq, seq, index_columns): (_, i16, &[i16]) = match table {
        MemberTable::Hashes => (c"hashes_by_seq", 4, &[1, 4]),
        MemberTable::Sets => (c"sets_by_seq", 3, &[1, 3]),
        MemberTable::ZSets => (c"zsets_pkey", HASH as i16, table.pkey_columns()),
    };
    let mut left = limit;
    let (ties, mut last) = (table == MemberTable::ZSets && from.is_some(), None);
    // SAFETY: as in `list_range`.
    unsafe {
        read_scan((name, by_seq), columns, index_columns, &keys, false, |slot| {
            let n = if from.is_some() { scanned::<i64>(slot, seq as i32).unwrap_or_default() } else { 0 };
            if left <= 0 && !(ties && last == Some(n)) {
                return false;
            }
            last = Some(n);
            match table {
                MemberTable::Hashes => {
                    // Both columns deformed before the field is: nothing
                    // unguarded runs while this frame owns the field's copy.
                    unguarded::slot_attr(slot, 3);
                    if let Some(field) = scanned_bytes(slot, 2, <[u8]>::to_vec) {
                        scanned_bytes(slot, 3, |value| each(n, &field, MemberRow::Field(value)));
                    }
                }
                MemberTable::Sets => {
                    scanned_bytes(slot, 2, |member| each(n, member, MemberRow::Set));
                }
                MemberTable::ZSets => {
                    let score = scanned::<f64>(slot, SCORE).unwrap_or_default();
                    scanned_bytes(slot, 2, |member| each(n, member, MemberRow::Score(score)));
                }
            }
            left -= 1;
            left > 0 || ties
        })
    }
}

/// Hands `each` the members of sorted set `id` in (score, member) order,
/// or the reverse with `rev`, with their scores: the `limit` after the
/// first `offset`, among those with `lo <= score <= hi` when `scores` is
/// given. What the `BY_RANK`, `BY_RANK_REV` and `BY_SCORE` statements
/// return, read with one scan of the `(id, score, member)` index
/// (`read_scan`); skipped members are fetched as the statement's OFFSET
/// fetches them, to count only the visible ones.
pub fn zset_range(id: i64, scores: Option<(f64, f64)>, offset: i64, limit: i64, rev: bool, each: impl FnMut(&[u8], f64)) -> Result<bool, CmdError> {
    let mut keys = vec![(1, pg_sys::BTEqualStrategyNumber, pg_sys::F_INT8EQ, id.into())];
    if let Some((lo, hi)) = scores {
        keys.push((2, pg_sys::BTGreaterEqualStrategyNumber, pg_sys::F_FLOAT8GE, lo.into_datum().expect("a float8 datum")));
        keys.push((2, pg_sys::BTLessEqualStrategyNumber, pg_sys::F_FLOAT8LE, hi.into_datum().expect("a float8 datum")));
    }
    by_score(&keys, offset, limit, rev, each)
}

/// Hands `each` the members of sorted set `id` that have score `score`
/// and lie between `min` and `max` (byte order), in member order, or the
/// reverse with `rev`: the `limit` (all, if negative) after the first
/// `offset`. One scan of the `(id, score, member)` index bounded on all
/// three columns: a lex range (ZRANGEBYLEX and the like) of a sorted set
/// whose members share one score, which is where Redis defines lex ranges,
/// reads only the members it returns.
pub fn zset_lex_range(
    id: i64,
    score: f64,
    (min, max): (Bound<&[u8]>, Bound<&[u8]>),
    offset: i64,
    limit: i64,
    rev: bool,
    each: impl FnMut(&[u8], f64),
) -> Result<bool, CmdError> {
    let mut keys = vec![
        (1, pg_sys::BTEqualStrategyNumber, pg_sys::F_INT8EQ, id.into()),
        (2, pg_sys::BTEqualStrategyNumber, pg_sys::F_FLOAT8EQ, score.into_datum().expect("a float8 datum")),
    ];
    let bytea = |m: &[u8]| m.into_datum().expect("a bytea datum");
    match min {
        Bound::Included(m) => keys.push((3, pg_sys::BTGreaterEqualStrategyNumber, pg_sys::F_BYTEAGE, bytea(m))),
        Bound::Excluded(m) => keys.push((3, pg_sys::BTGreaterStrategyNumber, pg_sys::F_BYTEAGT, bytea(m))),
        Bound::Unbounded => {}
    }
    match max {
        Bound::Included(m) => keys.push((3, pg_sys::BTLessEqualStrategyNumber, pg_sys::F_BYTEALE, bytea(m))),
        Bound::Excluded(m) => keys.push((3, pg_sys::BTLessStrategyNumber, pg_sys::F_BYTEALT, bytea(m))),
        Bound::Unbounded => {}
    }
    by_score(&keys, offset, if limit < 0 { i64::MAX } else { limit }, rev, each)
}

/// The scan of `zset_range` and `zset_lex_range`: the `(id, score, member)`
/// index with `keys`, forward or `rev`, each member after the first
/// `offset` handed to `each` with its score, `limit` of them.
fn by_score(keys: &[(i16, u32, u32, pg_sys::Datum)], offset: i64, limit: i64, rev: bool, mut each: impl FnMut(&[u8], f64)) -> Result<bool, CmdError> {
    let (mut skip, mut left) = (offset.max(0), limit);
    // SAFETY: as in `list_range`.
    unsafe {
        read_scan((c"zsets", c"zsets_by_score"), MemberTable::ZSets.shape().2, &[1, SCORE as i16, 2], keys, rev, |slot| {
            if left <= 0 {
                return false;
            }
            if skip > 0 {
                skip -= 1;
                return true;
            }
            let score = scanned::<f64>(slot, SCORE).unwrap_or_default();
            scanned_bytes(slot, 2, |member| each(member, score));
            left -= 1;
            left > 0
        })
    }
}

/// A scan of a kv table's B-tree index on the columns `index_columns`
/// with `keys` (index column, strategy, comparison function, value),
/// forward or `backward`, each visible row's slot handed to `each` until
/// it answers `false`. It reads as a
/// statement would under SPI's rule: with the active snapshot while the
/// transaction has written nothing, else after making the transaction's
/// writes visible, with a fresh snapshot. `false` where this does not
/// apply, and the caller runs the statement instead: not READ COMMITTED
/// (an index scan there also takes SSI's predicate locks), a role without
/// SELECT on the table or with row-level security on it, a table or index
/// not shaped as `sql/schema.sql` made them (leading `columns`).
unsafe fn read_scan(
    (table, index): (&std::ffi::CStr, &std::ffi::CStr),
    columns: &[pg_sys::Oid],
    index_columns: &[i16],
    keys: &[(i16, u32, u32, pg_sys::Datum)],
    backward: bool,
    mut each: impl FnMut(*mut pg_sys::TupleTableSlot) -> bool,
) -> Result<bool, CmdError> {
    // SAFETY: as in `read_members`.
    unsafe {
        if pg_sys::XactIsoLevel != pg_sys::XACT_READ_COMMITTED as i32 {
            return Ok(false);
        }
        let Some(oids) = kv_relations(table, index) else { return Ok(false) };
        if !open_to_user(oids.0, pg_sys::ACL_SELECT) {
            return Ok(false);
        }
        let fresh = pg_sys::GetCurrentTransactionIdIfAny() != pg_sys::InvalidTransactionId;
        if fresh {
            pg_sys::CommandCounterIncrement();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        let shaped = |heap, index| btree_shape_ok(heap, index, columns, index_columns);
        let out = with_relations(oids, pg_sys::AccessShareLock, shaped, |heap, index| {
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            let scan = pg_sys::index_beginscan(heap, index, pg_sys::GetActiveSnapshot(), keys.len() as i32, 0);
            let mut skeys: [pg_sys::ScanKeyData; SCAN_KEYS] = [std::mem::zeroed(); SCAN_KEYS];
            let skeys = &mut skeys[..keys.len()];
            for (skey, &(column, strategy, proc_, value)) in skeys.iter_mut().zip(keys) {
                pg_sys::ScanKeyInit(skey, column, strategy as u16, proc_.into(), value);
            }
            pg_sys::index_rescan(scan, skeys.as_mut_ptr(), keys.len() as i32, std::ptr::null_mut(), 0);
            let direction = if backward { pg_sys::ScanDirection::BackwardScanDirection } else { pg_sys::ScanDirection::ForwardScanDirection };
            // One guard for the whole scan (`ffi::unguarded`): this frame
            // owns nothing that needs dropping, and `each` reads the slot
            // with the unguarded accessors below.
            unguarded::guarded(|| {
                while unguarded::index_getnext_slot(scan, direction, slot) {
                    if !each(slot) {
                        break;
                    }
                }
            });
            pg_sys::index_endscan(scan);
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            Some(())
        });
        if fresh {
            pg_sys::PopActiveSnapshot();
        }
        Ok(out.is_some())
    }
}

/// One probe of the primary key per member, under the active snapshot: of
/// (id, member), or with `zset` of kv.zsets's (id, hash, member), the score
/// read from the row.
unsafe fn probe_members(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    id: i64,
    members: &[Bytes],
    table: MemberTable,
) -> Vec<FoundMember> {
    unsafe {
        let zset = table == MemberTable::ZSets;
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        let mut at = Located::new(heap);
        let mut scan: pg_sys::IndexScanDesc = std::ptr::null_mut();
        let mut skeys: [pg_sys::ScanKeyData; 3] = std::mem::zeroed();
        let nkeys = if zset { 3 } else { 2 };
        let mut vm = pg_sys::InvalidBuffer as pg_sys::Buffer;
        let mut found = Vec::new();
        // A set member has nothing to update: only fields and scored
        // members are noted for `write_members`.
        let note = table != MemberTable::Sets;
        let row = |slot: *mut pg_sys::TupleTableSlot, m: &Bytes| {
            let score = if zset { get::<f64>(slot, SCORE) } else { None };
            if note {
                note_seen_member(slot, heap);
            }
            FoundMember { member: m.clone(), score, tid: Some((*slot).tts_tid) }
        };
        members.iter().take(PREFETCH_AHEAD).for_each(|m| at.prefetch(Scope::Id(id), m));
        for (i, m) in members.iter().enumerate() {
            if let Some(ahead) = members.get(i + PREFETCH_AHEAD) {
                at.prefetch(Scope::Id(id), ahead);
            }
            if at.fetch(pg_sys::GetActiveSnapshot(), Scope::Id(id), m, slot) {
                found.push(row(slot, m));
                continue;
            }
            if scan.is_null() {
                scan = pg_sys::index_beginscan(heap, index, pg_sys::GetActiveSnapshot(), nkeys, 0);
                pg_sys::ScanKeyInit(&mut skeys[0], 1, pg_sys::BTEqualStrategyNumber as u16, pg_sys::F_INT8EQ.into(), id.into());
            }
            let arg = m.as_ref().into_datum().expect("a bytea datum");
            if zset {
                let hash = super::zsets::member_hash(m);
                pg_sys::ScanKeyInit(&mut skeys[1], 2, pg_sys::BTEqualStrategyNumber as u16, pg_sys::F_INT8EQ.into(), hash.into());
            }
            let column = nkeys as pg_sys::AttrNumber;
            pg_sys::ScanKeyInit(&mut skeys[nkeys as usize - 1], column, pg_sys::BTEqualStrategyNumber as u16, pg_sys::F_BYTEAEQ.into(), arg);
            pg_sys::index_rescan(scan, skeys.as_mut_ptr(), nkeys, std::ptr::null_mut(), 0);
            loop {
                let tid = pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection);
                if tid.is_null() {
                    break;
                }
                // A B-tree's equality is exact: the entry is this member's,
                // and it points at the root of the member's HOT chain.
                let root = *tid;
                let block = pgrx::itemptr::item_pointer_get_block_number_no_check(root);
                if !zset && pg_sys::visibilitymap_get_status(heap, block, &mut vm) as u32 & pg_sys::VISIBILITYMAP_ALL_VISIBLE != 0 {
                    found.push(FoundMember { member: m.clone(), score: None, tid: None });
                    at.remember(Scope::Id(id), m, root);
                    break;
                }
                if fetch_unpruned(scan, slot) {
                    found.push(row(slot, m));
                    at.remember(Scope::Id(id), m, root);
                    break;
                }
            }
            pg_sys::pfree(arg.cast_mut_ptr());
        }
        if vm != pg_sys::InvalidBuffer as pg_sys::Buffer {
            pg_sys::ReleaseBuffer(vm);
        }
        if !scan.is_null() {
            pg_sys::index_endscan(scan);
        }
        at.end();
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        found
    }
}

/// The heap begins with `table`'s columns, and the index is a plain B-tree
/// on its primary key's.
unsafe fn member_shape_ok(heap: pg_sys::Relation, index: pg_sys::Relation, table: MemberTable) -> bool {
    unsafe { btree_shape_ok(heap, index, table.shape().2, table.pkey_columns()) }
}

/// The heap begins with `columns`, and the index is a plain B-tree of that
/// heap on the columns `keys`, in that order (and no others).
unsafe fn btree_shape_ok(heap: pg_sys::Relation, index: pg_sys::Relation, columns: &[pg_sys::Oid], keys: &[i16]) -> bool {
    unsafe {
        if !columns_are(heap, columns, false) {
            return false;
        }
        let ix = (*index).rd_index;
        (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID
            && (*ix).indrelid == (*heap).rd_id
            && (*ix).indnkeyatts as usize == keys.len()
            && (*ix).indnatts as usize == keys.len()
            && (*ix).indkey.values.as_slice(keys.len()) == keys
            // Ascending, as the statements' ORDER BY reads them.
            && (0..keys.len()).all(|i| *(*index).rd_indoption.add(i) == 0)
            && pg_sys::RelationGetIndexPredicate(index).is_null()
            && pg_sys::RelationGetIndexExpressions(index).is_null()
    }
}

/// Whether the current user holds every privilege of `modes` (ACL_SELECT,
/// ACL_INSERT, ACL_UPDATE) on the table, with no row-level security in
/// the way; if not, the statement runs instead, with Postgres's own checks
/// and errors.
unsafe fn open_to_user(table: pg_sys::Oid, modes: u32) -> bool {
    unsafe {
        let user = pg_sys::GetUserId();
        [pg_sys::ACL_SELECT, pg_sys::ACL_INSERT, pg_sys::ACL_UPDATE]
            .into_iter()
            .filter(|m| modes & m != 0)
            .all(|m| pg_sys::pg_class_aclcheck(table, user, m as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK)
            && pg_sys::check_enable_rls(table, pg_sys::InvalidOid, true) != pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// Writes back key rows this transaction locked, each into the version
/// at the ctid its lock returned: what the `FLUSH_BY_TID` statement does,
/// through `ExecSimpleRelationUpdate` (the executor's single-row update,
/// which logical replication's apply worker uses: constraints, index
/// entries, row triggers) without the statement's per-batch executor
/// start-up, function scan, nested loop and TID scan. A third of a SET
/// batch's write-back was that overhead.
///
/// Answers, for each row, whether it was written; a row whose ctid no
/// longer holds its current version (this transaction changed it since)
/// is not, and goes by key. `None` where this does not apply and the
/// statement runs instead: outside READ COMMITTED (SSI's predicate locks,
/// another snapshot rule), for a role without SELECT and UPDATE on
/// kv.keys, or with row-level security on it.
pub fn write_back(rows: &[(Entry, Tid)]) -> Result<Option<Vec<bool>>, CmdError> {
    // SAFETY: as in `lock_rows`. The executor state lives in the current
    // memory context and is freed here, or by the abort on an ERROR,
    // which also resets the after-trigger query level `modifying` opens.
    unsafe {
        let Some((heap_oid, _)) = relations() else { return Ok(None) };
        let modes = pg_sys::ACL_SELECT | pg_sys::ACL_UPDATE;
        Ok(modifying(heap_oid, modes, &[EXPIRE_AT, VALUE, CARD, HEAD], |heap| heap_shape_ok(heap), |update, heap, snapshot| {
            let old = pg_sys::table_slot_create(heap, &mut (*update.estate).es_tupleTable);
            let new = update.row_slot();
            let natts = (*(*heap).rd_att).natts as usize;
            // A trigger could change a row the loop writes later.
            let triggers = update.fires_row_triggers();
            let whole = columns_are(heap, &COLUMN_TYPES, true) && !triggers;
            let mut taken = Taken::default();
            let mut written = Vec::with_capacity(rows.len());
            for (e, tid) in rows {
                let per_row = update.next_row();
                // The new version is at most the new value and an expiry
                // time longer.
                let longer = e.value.as_ref().map_or(0, Bytes::len) + 8;
                if whole && replace_locked(update, old, new, e, tid, longer, per_row, &mut taken) {
                    written.push(true);
                    continue;
                }
                // The version this transaction locked, unless it replaced
                // it since (then not visible to this fresh snapshot).
                if triggers {
                    see_triggers_writes();
                }
                let current = fetch_with_room(heap, old, tid, snapshot, longer)
                    && Scope::Db(e.db).holds(old, &e.key)
                    && get::<i64>(old, ID) == Some(e.id);
                written.push(current);
                if !current {
                    continue;
                }
                pg_sys::slot_getallattrs(old);
                let (values, nulls) = cleared(new, natts);
                values.copy_from_slice(std::slice::from_raw_parts((*old).tts_values, natts));
                nulls.copy_from_slice(std::slice::from_raw_parts((*old).tts_isnull, natts));
                let caller = pg_sys::MemoryContextSwitchTo(per_row);
                let mut set = |attnum, datum| set_column(values, nulls, attnum, datum);
                set(EXPIRE_AT, e.expire_at.into_datum());
                if let Some(v) = &e.value {
                    set(VALUE, v.as_ref().into_datum());
                }
                set(CARD, e.card.into_datum());
                set(HEAD, e.head.into_datum());
                pg_sys::MemoryContextSwitchTo(caller);
                pg_sys::ExecStoreVirtualTuple(new);
                update.update(old, new);
            }
            written
        }))
    }
}

/// The longest key and payload together that `replace_locked` writes: a
/// row this size stays under PostgreSQL's TOAST threshold (about 2 kB), so
/// the update neither compresses nor moves a value out of line, as it
/// would have to again for a key copied out of the row rather than left
/// as stored.
const REPLACED_ROW_MAX: usize = 1800;

/// Replaces the version at `tid`, which the lock pass locked, with `e`,
/// without visiting it first, where that is known to be safe and cheap:
/// - no statement has run since the lock (`locked_version`), so the
///   version is still the current one and the cache's row is what it holds;
/// - the cached row has every column (the payload is known, or was NULL)
///   and the id and type the version has, as the write-back by fetch
///   checks and keeps them;
/// - the page had room for the new version when locked, less what earlier
///   rows of this write-back took of it (`taken`, by block), so the update
///   stays on the page (HOT).
///
/// Otherwise `false`, and the write-back fetches the version, pruning its
/// page if that is what gives it room. Under SET at `-P 16` that fetch was
/// 8 % of the worker: a second buffer lookup, visibility check and copy of
/// the row per key, after the lock pass's.
#[allow(clippy::too_many_arguments)]
unsafe fn replace_locked(
    update: &Modify,
    old: *mut pg_sys::TupleTableSlot,
    new: *mut pg_sys::TupleTableSlot,
    e: &Entry,
    tid: &Tid,
    longer: usize,
    per_row: pg_sys::MemoryContext,
    taken: &mut Taken,
) -> bool {
    unsafe {
        let Some(v) = locked_version(tid) else { return false };
        let whole = e.value.is_some() || v.payload_null;
        let same = v.id == e.id && v.ktype == e.ktype.code();
        if !whole || !same || e.key.len() + e.value.as_ref().map_or(0, Bytes::len) > REPLACED_ROW_MAX {
            return false;
        }
        if !room_for(taken, tid, v.room, v.len, longer) {
            return false;
        }
        let (values, nulls) = cleared(new, COLUMN_TYPES.len());
        let caller = pg_sys::MemoryContextSwitchTo(per_row);
        let mut set = |attnum, datum| set_column(values, nulls, attnum, datum);
        set(DB, e.db.into_datum());
        set(KEY, e.key.as_ref().into_datum());
        set(ID, e.id.into_datum());
        set(TYPE, e.ktype.code().into_datum());
        set(EXPIRE_AT, e.expire_at.into_datum());
        set(VALUE, e.value.as_ref().and_then(|v| v.as_ref().into_datum()));
        set(CARD, e.card.into_datum());
        set(HEAD, e.head.into_datum());
        pg_sys::MemoryContextSwitchTo(caller);
        pg_sys::ExecStoreVirtualTuple(new);
        // The update reads only the version's ctid from the slot it is
        // given.
        pg_sys::ExecClearTuple(old);
        (*old).tts_tid = *tid;
        update.update(old, new);
        true
    }
}

/// Opens `table` for writing and runs `f` with a `Modify` on it, under a
/// fresh snapshot that sees the transaction's earlier writes (a version
/// this transaction replaced since is then not visible); later statements
/// see what `f` wrote, as after a statement of its own. `None`, and the
/// caller runs its statement, outside READ COMMITTED (SSI's predicate
/// locks, another snapshot rule), for a user without every privilege of
/// `modes` or under row-level security, or when `shaped` refuses the
/// table.
unsafe fn modifying<T>(
    table: pg_sys::Oid,
    modes: u32,
    updated: &[i32],
    shaped: impl FnOnce(pg_sys::Relation) -> bool,
    f: impl FnOnce(&Modify, pg_sys::Relation, pg_sys::Snapshot) -> T,
) -> Option<T> {
    unsafe {
        if pg_sys::XactIsoLevel != pg_sys::XACT_READ_COMMITTED as i32 || !open_to_user(table, modes) {
            return None;
        }
        let heap = pg_sys::table_open(table, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        if !shaped(heap) {
            pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
            return None;
        }
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let snapshot = pg_sys::GetActiveSnapshot();
        let modify = Modify::begin(heap, snapshot, updated);
        let out = f(&modify, heap, snapshot);
        modify.end();
        pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::PopActiveSnapshot();
        pg_sys::CommandCounterIncrement();
        Some(out)
    }
}

/// The executor state a run of `ExecSimpleRelationUpdate`s and
/// `ExecSimpleRelationInsert`s on one table needs, set up as logical
/// replication's apply worker sets up its own (`create_edata_for_relation`):
/// a range table of the one relation, whose updated columns are the ones
/// the caller changes (so `UPDATE OF` triggers fire as they would for the
/// statement), a result relation with its indexes open, and an
/// after-trigger query level.
struct Modify {
    estate: *mut pg_sys::EState,
    result: *mut pg_sys::ResultRelInfo,
    epq: *mut pg_sys::EPQState,
}

impl Modify {
    unsafe fn begin(heap: pg_sys::Relation, snapshot: pg_sys::Snapshot, updated: &[i32]) -> Modify {
        unsafe {
            let estate = pg_sys::CreateExecutorState();
            (*estate).es_snapshot = snapshot;
            let rte = pgrx::PgBox::<pg_sys::RangeTblEntry>::alloc_node(pg_sys::NodeTag::T_RangeTblEntry).into_pg();
            (*rte).rtekind = pg_sys::RTEKind::RTE_RELATION;
            (*rte).relid = (*heap).rd_id;
            (*rte).relkind = (*(*heap).rd_rel).relkind;
            (*rte).rellockmode = pg_sys::RowExclusiveLock as i32;
            let mut perminfos: *mut pg_sys::List = std::ptr::null_mut();
            let perminfo = pg_sys::addRTEPermissionInfo(&mut perminfos, rte);
            (*perminfo).requiredPerms = (pg_sys::ACL_SELECT | pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE) as pg_sys::AclMode;
            for &attnum in updated {
                (*perminfo).updatedCols =
                    pg_sys::bms_add_member((*perminfo).updatedCols, attnum - pg_sys::FirstLowInvalidHeapAttributeNumber);
            }
            pg_sys::ExecInitRangeTable(estate, pg_sys::lappend(std::ptr::null_mut(), rte.cast()), perminfos);
            let result = pgrx::PgBox::<pg_sys::ResultRelInfo>::alloc_node(pg_sys::NodeTag::T_ResultRelInfo).into_pg();
            pg_sys::InitResultRelInfo(result, heap, 1, std::ptr::null_mut(), 0);
            skip_unfired_update_triggers(result, estate);
            (*result).ri_ConstraintExprs = checks::lend(heap);
            (*estate).es_opened_result_relations = pg_sys::lappend((*estate).es_opened_result_relations, result.cast());
            (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
            pg_sys::AfterTriggerBeginQuery();
            pg_sys::ExecOpenIndices(result, false);
            let epq = pg_sys::palloc0(std::mem::size_of::<pg_sys::EPQState>()).cast::<pg_sys::EPQState>();
            pg_sys::EvalPlanQualInit(epq, estate, std::ptr::null_mut(), std::ptr::null_mut(), -1, std::ptr::null_mut());
            Modify { estate, result, epq }
        }
    }

    /// Replaces the version `old` (fetched by its ctid) with `new`.
    unsafe fn update(&self, old: *mut pg_sys::TupleTableSlot, new: *mut pg_sys::TupleTableSlot) {
        unsafe {
            (*self.epq).origslot = new;
            pg_sys::ExecSimpleRelationUpdate(self.result, self.estate, self.epq, old, new);
        }
    }

    /// Inserts `new` (a unique index that already holds its key raises
    /// the usual error).
    unsafe fn insert(&self, new: *mut pg_sys::TupleTableSlot) {
        unsafe { pg_sys::ExecSimpleRelationInsert(self.result, self.estate, new) }
    }

    /// Whether row-level INSERT or UPDATE triggers fire for these writes:
    /// none of pgkv's own do (`skip_unfired_update_triggers`), but a user
    /// may have added some, which may run statements of their own.
    unsafe fn fires_row_triggers(&self) -> bool {
        unsafe {
            let desc = (*self.result).ri_TrigDesc;
            !desc.is_null()
                && ((*desc).trig_insert_before_row
                    || (*desc).trig_insert_after_row
                    || (*desc).trig_update_before_row
                    || (*desc).trig_update_after_row)
        }
    }

    /// A virtual slot of the table's row type, and the memory context its
    /// values may be made in, reset with `next_row`.
    unsafe fn row_slot(&self) -> *mut pg_sys::TupleTableSlot {
        unsafe { pg_sys::ExecInitExtraTupleSlot(self.estate, (*(*self.result).ri_RelationDesc).rd_att, &pg_sys::TTSOpsVirtual) }
    }

    /// The per-row memory context (reset by each call).
    unsafe fn next_row(&self) -> pg_sys::MemoryContext {
        unsafe {
            let cx = (*pg_sys::MakePerTupleExprContext(self.estate)).ecxt_per_tuple_memory;
            pg_sys::MemoryContextReset(cx);
            cx
        }
    }

    /// Fires the queued after triggers and frees the state. The result
    /// relation holds no reference of its own (the caller's `table_open`
    /// does), so it is not closed here, as in the apply worker.
    unsafe fn end(self) {
        unsafe {
            if self.fires_row_triggers() {
                // Someone's trigger may have changed rows the cache holds.
                forget_locked_versions();
            }
            checks::give_back((*self.result).ri_ConstraintExprs);
            pg_sys::ExecCloseIndices(self.result);
            pg_sys::EvalPlanQualEnd(self.epq);
            pg_sys::AfterTriggerEndQuery(self.estate);
            pg_sys::ExecResetTupleTable((*self.estate).es_tupleTable, false);
            pg_sys::FreeExecutorState(self.estate);
        }
    }
}

/// Turns off the result relation's row-level UPDATE trigger processing
/// when none of its UPDATE triggers can fire for these updates: each is
/// `UPDATE OF` columns none of which is updated here, which Postgres's
/// `TriggerEnabled` would reject row by row. Otherwise an AFTER trigger
/// makes every update fetch the old version again for it
/// (`GetTupleForTrigger`): kv.keys's `collect_members_on_new_id` (`UPDATE
/// OF id`, which the write-back never changes) cost 3 % of the worker under
/// SET at `-P 16` that way. The result relation's trigger descriptor is its
/// own copy.
unsafe fn skip_unfired_update_triggers(result: *mut pg_sys::ResultRelInfo, estate: *mut pg_sys::EState) {
    unsafe {
        let desc = (*result).ri_TrigDesc;
        if desc.is_null() {
            return;
        }
        let updated = pg_sys::ExecGetAllUpdatedCols(result, estate);
        let triggers = std::slice::from_raw_parts((*desc).triggers, (*desc).numtriggers as usize);
        let row_update = (pg_sys::TRIGGER_TYPE_ROW | pg_sys::TRIGGER_TYPE_UPDATE) as i16;
        let may_fire = |t: &pg_sys::Trigger| {
            t.tgnattr <= 0 || {
                let columns = std::slice::from_raw_parts(t.tgattr, t.tgnattr as usize);
                columns.iter().any(|&a| pg_sys::bms_is_member(a as i32 - pg_sys::FirstLowInvalidHeapAttributeNumber, updated))
            }
        };
        if triggers.iter().filter(|t| t.tgtype & row_update == row_update).any(may_fire) {
            return;
        }
        (*desc).trig_update_before_row = false;
        (*desc).trig_update_after_row = false;
        (*desc).trig_update_instead_row = false;
    }
}

/// Opens a table (with `lockmode`) and one of its indexes, checks their
/// shape with `shaped`, and runs `f`; `None` when something is not as
/// expected.
unsafe fn with_relations<T>(
    (heap_oid, index_oid): (pg_sys::Oid, pg_sys::Oid),
    lockmode: u32,
    shaped: impl FnOnce(pg_sys::Relation, pg_sys::Relation) -> bool,
    f: impl FnOnce(pg_sys::Relation, pg_sys::Relation) -> Option<T>,
) -> Option<T> {
    unsafe {
        let heap = pg_sys::table_open(heap_oid, lockmode as pg_sys::LOCKMODE);
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let out = if shaped(heap, index) { f(heap, index) } else { None };
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
        out
    }
}

/// A relation of schema kv by name (a syscache lookup), or `InvalidOid`.
unsafe fn kv_relation(name: &std::ffi::CStr) -> pg_sys::Oid {
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"kv".as_ptr(), true);
        if ns == pg_sys::InvalidOid {
            return ns;
        }
        pg_sys::get_relname_relid(name.as_ptr(), ns)
    }
}

/// A kv table and one of its indexes, by name, if both exist.
unsafe fn kv_relations(table: &std::ffi::CStr, index: &std::ffi::CStr) -> Option<(pg_sys::Oid, pg_sys::Oid)> {
    unsafe {
        let (heap, index) = (kv_relation(table), kv_relation(index));
        (heap != pg_sys::InvalidOid && index != pg_sys::InvalidOid).then_some((heap, index))
    }
}

/// kv.keys and its hash index on `key`.
unsafe fn relations() -> Option<(pg_sys::Oid, pg_sys::Oid)> {
    unsafe { kv_relations(c"keys", c"keys_key_hash") }
}

/// The heap has the eight columns of `COLUMN_TYPES`, and the index is a
/// hash index on `key` of that heap.
unsafe fn shape_ok(heap: pg_sys::Relation, index: pg_sys::Relation) -> bool {
    unsafe {
        if !heap_shape_ok(heap) {
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

/// The heap begins with the eight columns of `COLUMN_TYPES`.
unsafe fn heap_shape_ok(heap: pg_sys::Relation) -> bool {
    unsafe { columns_are(heap, &COLUMN_TYPES, false) }
}

/// The heap's first columns have the types of `columns`, none dropped;
/// with `only`, it has no other column (an insert here fills every one).
unsafe fn columns_are(heap: pg_sys::Relation, columns: &[pg_sys::Oid], only: bool) -> bool {
    unsafe {
        let (desc, n) = ((*heap).rd_att, columns.len() as i32);
        if (*desc).natts < n || (only && (*desc).natts != n) {
            return false;
        }
        let attrs = (*desc).attrs.as_slice(columns.len());
        !attrs.iter().zip(columns).any(|(a, t)| a.attisdropped || a.atttypid != *t)
    }
}

/// Finds each key's visible row in database `db` and hands its slot to
/// `found`, which answers the row to keep (`Some(None)`: none after all)
/// or `None` to give up on the whole scan.
///
/// A key whose row was found before is looked for there first
/// (`locations`), without the index probe: the hash index's search was an
/// eighth of the worker under SET at `-P 16`. If no visible row of that key
/// is there any more, the index is probed as for any other key.
unsafe fn scan(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    db: i16,
    keys: &[Bytes],
    mut found: impl FnMut(*mut pg_sys::TupleTableSlot, usize, &Bytes) -> Option<Option<(Entry, Option<Tid>)>>,
) -> Option<Vec<(Entry, Option<Tid>)>> {
    unsafe {
        let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
        let mut at = Located::new(heap);
        let mut scan: pg_sys::IndexScanDesc = std::ptr::null_mut();
        let mut out = Some(Vec::with_capacity(keys.len()));
        let mut skey: pg_sys::ScanKeyData = std::mem::zeroed();
        keys.iter().take(PREFETCH_AHEAD).for_each(|key| at.prefetch(Scope::Db(db), key));
        for (i, key) in keys.iter().enumerate() {
            if let Some(ahead) = keys.get(i + PREFETCH_AHEAD) {
                at.prefetch(Scope::Db(db), ahead);
            }
            let mut row = None;
            if at.fetch(snapshot, Scope::Db(db), key, slot) {
                row = Some(found(slot, i, key));
            } else {
                if scan.is_null() {
                    scan = pg_sys::index_beginscan(heap, index, snapshot, 1, 0);
                }
                let arg = key.as_ref().into_datum().expect("a bytea datum");
                pg_sys::ScanKeyInit(&mut skey, 1, pg_sys::HTEqualStrategyNumber as u16, pg_sys::F_BYTEAEQ.into(), arg);
                pg_sys::index_rescan(scan, &mut skey, 1, std::ptr::null_mut(), 0);
                while !pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection).is_null() {
                    // The index entry's TID is the root of the row's HOT
                    // chain; the fetch moves it to the visible version.
                    let root = (*scan).xs_heaptid;
                    if !fetch_unpruned(scan, slot) {
                        continue;
                    }
                    // A hash index matches hash codes: recheck the key (and
                    // the database, which the index does not hold).
                    if !Scope::Db(db).holds(slot, key) {
                        continue;
                    }
                    at.remember(Scope::Db(db), key, root);
                    row = Some(found(slot, i, key));
                    break;
                }
                pg_sys::pfree(arg.cast_mut_ptr());
            }
            match row {
                Some(Some(row)) => out.as_mut().expect("not given up").extend(row),
                Some(None) => {
                    out = None;
                    break;
                }
                None => {}
            }
        }
        if !scan.is_null() {
            pg_sys::index_endscan(scan);
        }
        at.end();
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        out
    }
}

/// How many keys ahead of its lookup a batch's scan starts loading where
/// a key's row was last found: enough to cover a load from memory with
/// the work of the keys between, few enough that the loads in flight do
/// not outnumber what the CPU can track.
const PREFETCH_AHEAD: usize = 8;

/// Rows looked for where `locations` last found them: key rows of kv.keys
/// by (database, key), member rows by (collection id, member). Both kinds
/// of table hold that pair in their first two columns.
struct Located {
    heap: pg_sys::Relation,
    /// The heap's file number; 0 where remembered locations do not apply:
    /// a table not stored as heap, or a transaction above READ COMMITTED,
    /// whose index searches take SSI's predicate locks.
    table: u32,
    /// The heap's size when the lookups began: a location past it is not
    /// visited (its page may be gone). The lock this transaction holds on
    /// the table keeps VACUUM from truncating it until the end. Read on
    /// the first visit.
    blocks: Option<pg_sys::BlockNumber>,
    buffer: pg_sys::Buffer,
    hits: u64,
    misses: u64,
}

/// What a row's first column must hold: the database of a key row, or
/// the collection id of a member row.
#[derive(Clone, Copy)]
enum Scope {
    Db(i16),
    Id(i64),
}

impl Scope {
    fn value(self) -> i64 {
        match self {
            Scope::Db(db) => db.into(),
            Scope::Id(id) => id,
        }
    }

    /// Whether the row in `slot` is `key`'s, in this scope (kv.keys's `DB`
    /// and `KEY`; a member table's id and member).
    unsafe fn holds(self, slot: *mut pg_sys::TupleTableSlot, key: &[u8]) -> bool {
        unsafe {
            attr(slot, KEY);
            let scope = match self {
                Scope::Db(db) => get::<i16>(slot, DB) == Some(db),
                Scope::Id(id) => get::<i64>(slot, 1) == Some(id),
            };
            scope && same_bytes(slot, KEY, key)
        }
    }
}

impl Located {
    unsafe fn new(heap: pg_sys::Relation) -> Located {
        unsafe {
            let applies = (*(*heap).rd_rel).relam == pg_sys::HEAP_TABLE_AM_OID
                && pg_sys::XactIsoLevel == pg_sys::XACT_READ_COMMITTED as i32;
            let table = if applies { (*heap).rd_locator.relNumber.to_u32() } else { 0 };
            Located { heap, table, blocks: None, buffer: pg_sys::InvalidBuffer as pg_sys::Buffer, hits: 0, misses: 0 }
        }
    }

    /// Looks for `key`'s row where it was last found and, if a version of
    /// it visible to `snapshot` is there, stores that version in `slot`.
    unsafe fn fetch(&mut self, snapshot: pg_sys::Snapshot, scope: Scope, key: &[u8], slot: *mut pg_sys::TupleTableSlot) -> bool {
        unsafe {
            if self.table == 0 {
                return false;
            }
            let Some(tid) = super::locations::get(self.table, scope.value(), key) else { return false };
            let found = self.fetch_at(tid, snapshot, scope, key, slot);
            *(if found { &mut self.hits } else { &mut self.misses }) += 1;
            found
        }
    }

    /// Starts loading where `key` was last found (`locations::prefetch`),
    /// for a `fetch` of it a few keys later.
    fn prefetch(&self, scope: Scope, key: &[u8]) {
        if self.table != 0 {
            super::locations::prefetch(self.table, scope.value(), key);
        }
    }

    /// `fetch` at `tid`, a remembered root.
    unsafe fn fetch_at(&mut self, mut tid: Tid, snapshot: pg_sys::Snapshot, scope: Scope, key: &[u8], slot: *mut pg_sys::TupleTableSlot) -> bool {
        unsafe {
            let blocks = *self
                .blocks
                .get_or_insert_with(|| pg_sys::RelationGetNumberOfBlocksInFork(self.heap, pg_sys::ForkNumber::MAIN_FORKNUM));
            let block = pgrx::itemptr::item_pointer_get_block_number_no_check(tid);
            if block >= blocks {
                return false;
            }
            // What heapam's index fetch does for an index entry pointing
            // at `tid` (without pruning the page, as `fetch_unpruned`).
            self.buffer = pg_sys::ReleaseAndReadBuffer(self.buffer, self.heap, block);
            let tuple = &mut (*slot.cast::<pg_sys::BufferHeapTupleTableSlot>()).base.tupdata;
            let mut all_dead = false;
            pg_sys::LockBuffer(self.buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
            let visible = pg_sys::heap_hot_search_buffer(&mut tid, self.heap, self.buffer, snapshot, tuple, &mut all_dead, true);
            tuple.t_self = tid;
            pg_sys::LockBuffer(self.buffer, pg_sys::BUFFER_LOCK_UNLOCK as i32);
            if !visible {
                pg_sys::ExecClearTuple(slot);
                return false;
            }
            (*slot).tts_tableOid = (*self.heap).rd_id;
            pg_sys::ExecStoreBufferHeapTuple(tuple, slot, self.buffer);
            // A line pointer freed by VACUUM may hold another row.
            if !scope.holds(slot, key) {
                pg_sys::ExecClearTuple(slot);
                return false;
            }
            true
        }
    }

    /// Remembers that `key`'s row was found through the index entry
    /// pointing at `root` (or inserted there, or moved there by an update
    /// that was not HOT).
    fn remember(&self, scope: Scope, key: &[u8], root: Tid) {
        if self.table != 0 {
            super::locations::put(self.table, scope.value(), key, root);
        }
    }

    unsafe fn end(self) {
        unsafe {
            if self.buffer != pg_sys::InvalidBuffer as pg_sys::Buffer {
                pg_sys::ReleaseBuffer(self.buffer);
            }
        }
        if self.hits + self.misses > 0 {
            crate::stats::with(|r| {
                r.row_location_hits += self.hits;
                r.row_location_misses += self.misses;
            });
        }
    }
}

/// The key row in `slot` (of `key`, in `db`), with its payload if `value`;
/// `None` for a type code pgkv does not know (the statement then reports
/// it).
unsafe fn entry(slot: *mut pg_sys::TupleTableSlot, db: i16, key: &Bytes, value: bool) -> Option<Entry> {
    unsafe {
        attr(slot, HEAD);
        Some(Entry {
            db,
            key: key.clone(),
            id: get(slot, ID).unwrap_or_default(),
            ktype: KeyType::from_code(get::<i8>(slot, TYPE).unwrap_or_default()).ok()?,
            expire_at: get(slot, EXPIRE_AT),
            value: if value { with_bytes(slot, VALUE, Bytes::copy_from_slice) } else { None },
            card: get(slot, CARD).unwrap_or_default(),
            head: get(slot, HEAD).unwrap_or_default(),
        })
    }
}

/// Column `attnum` (1-based, a user column) of `slot`: value and null
/// flag, deforming the tuple up to it only if the slot has not yet, as
/// PostgreSQL's inline `slot_getattr` does. pgrx's `slot_getattr` is a
/// guarded call to a C shim even when the column is deformed already;
/// reading a row's columns this way costs one guarded call per row
/// instead of one per column (ask for the highest column first).
unsafe fn attr(slot: *mut pg_sys::TupleTableSlot, attnum: i32) -> (pg_sys::Datum, bool) {
    unsafe {
        if ((*slot).tts_nvalid as i32) < attnum {
            pg_sys::slot_getsomeattrs_int(slot, attnum);
        }
        let i = attnum as usize - 1;
        (*(*slot).tts_values.add(i), *(*slot).tts_isnull.add(i))
    }
}

/// Column `attnum` of the slot's tuple (detoasted and copied for bytea).
unsafe fn get<T: FromDatum>(slot: *mut pg_sys::TupleTableSlot, attnum: i32) -> Option<T> {
    unsafe {
        let (datum, isnull) = attr(slot, attnum);
        T::from_datum(datum, isnull)
    }
}

/// Whether bytea column `attnum` holds exactly `want`.
unsafe fn same_bytes(slot: *mut pg_sys::TupleTableSlot, attnum: i32, want: &[u8]) -> bool {
    unsafe { with_bytes(slot, attnum, |b| b == want).unwrap_or(false) }
}

/// `f` of the bytes of bytea column `attnum`, or `None` for NULL.
unsafe fn with_bytes<T>(slot: *mut pg_sys::TupleTableSlot, attnum: i32, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    unsafe {
        let (datum, isnull) = attr(slot, attnum);
        bytes_of(datum, isnull, f)
    }
}

/// `get` for a row of `read_scan`, inside its guard: the slot read with
/// the unguarded accessor (`ffi::unguarded`).
unsafe fn scanned<T: FromDatum>(slot: *mut pg_sys::TupleTableSlot, attnum: i32) -> Option<T> {
    unsafe {
        let (datum, isnull) = unguarded::slot_attr(slot, attnum);
        T::from_datum(datum, isnull)
    }
}

/// `with_bytes` for a row of `read_scan`, inside its guard.
unsafe fn scanned_bytes<T>(slot: *mut pg_sys::TupleTableSlot, attnum: i32, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    unsafe {
        let (datum, isnull) = unguarded::slot_attr(slot, attnum);
        bytes_of(datum, isnull, f)
    }
}

/// `f` of a bytea datum's bytes, or `None` for NULL. A value stored inline
/// and uncompressed, the usual case, is read in place; only a compressed
/// or out-of-line one is detoasted, into a copy freed after.
unsafe fn bytes_of<T>(datum: pg_sys::Datum, isnull: bool, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    unsafe {
        if isnull {
            return None;
        }
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        if !pgrx::varlena::varatt_is_1b_e(raw) && !pgrx::varlena::varatt_is_4b_c(raw) {
            return Some(f(pgrx::varlena::varlena_to_byte_slice(raw)));
        }
        let plain = pg_sys::pg_detoast_datum_packed(raw);
        let out = f(pgrx::varlena::varlena_to_byte_slice(plain));
        pg_sys::pfree(plain.cast());
        Some(out)
    }
}

/// `index_fetch_heap` for the index entry `scan` just returned (under an
/// MVCC snapshot, as every scan here uses), without pruning the page.
///
/// An index fetch that lands on a new heap page prunes it
/// (`heap_page_prune_opt`) once its free space is below the fillfactor's
/// reserve (at least a tenth of the page) and it holds a dead version.
/// Rows are inserted until exactly that reserve is left and every HOT
/// update takes from it, so under a stream of updates nearly every lock
/// of a key row or member pruned its whole page (a hundred line pointers,
/// to reclaim one or two dead versions): 14 % of the worker under SET at
/// `-c 50`. The worker's writes prune instead, when a page would not hold
/// the new version (`fetch_with_room`), so one pruning reclaims the versions of
/// many earlier batches and the updates stay HOT. Skipping a pruning is
/// always safe; VACUUM and other sessions' scans prune as they do anyway.
unsafe fn fetch_unpruned(scan: pg_sys::IndexScanDesc, slot: *mut pg_sys::TupleTableSlot) -> bool {
    unsafe {
        let heap = (*scan).heapRelation;
        if (*(*heap).rd_rel).relam == pg_sys::HEAP_TABLE_AM_OID {
            // Switch pages here: index_fetch_heap then finds its buffer
            // current and does not prune it.
            let fetch = (*scan).xs_heapfetch.cast::<pg_sys::IndexFetchHeapData>();
            let block = pgrx::itemptr::item_pointer_get_block_number_no_check((*scan).xs_heaptid);
            (*fetch).xs_cbuf = pg_sys::ReleaseAndReadBuffer((*fetch).xs_cbuf, heap, block);
        }
        pg_sys::index_fetch_heap(scan, slot)
    }
}

/// Makes what a user's row trigger wrote so far visible to the active
/// snapshot (`modifying`'s), which began before the trigger's statements:
/// a version such a trigger replaced is then not current any more, and
/// is written by key, where updating it by ctid would raise "tuple already
/// updated by self" and fail the batch.
unsafe fn see_triggers_writes() {
    unsafe { pg_sys::UpdateActiveSnapshotCommandId() }
}

/// Fetches the version at `tid` into `old` (`table_tuple_fetch_row_version`:
/// `false` if it is not visible to `snapshot`), for an update that makes it
/// up to `extra` bytes longer: if the new version would not fit on the
/// page, prunes the page first so that the update can stay there (HOT),
/// and fetches the version again. The room is checked on the page the
/// fetch pinned, so the common case, room enough, costs no buffer lookup of
/// its own. `heap_page_prune_opt` still decides whether to prune (its own
/// threshold, a version dead to every transaction, nobody else holding
/// the page, this process included: `old` gives up its pin first).
unsafe fn fetch_with_room(heap: pg_sys::Relation, old: *mut pg_sys::TupleTableSlot, tid: &Tid, snapshot: pg_sys::Snapshot, extra: usize) -> bool {
    unsafe {
        let mut at = *tid;
        if !pg_sys::table_tuple_fetch_row_version(heap, &mut at, snapshot, old) {
            return false;
        }
        if (*(*heap).rd_rel).relam != pg_sys::HEAP_TABLE_AM_OID {
            return true;
        }
        let buffer = (*old.cast::<pg_sys::BufferHeapTupleTableSlot>()).buffer;
        let offset = pgrx::itemptr::item_pointer_get_offset_number_no_check(*tid);
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
        let page = pg_sys::BufferGetPage(buffer);
        let item = pg_sys::PageGetItemId(page, offset);
        let need = ((*item).lp_len() as usize + extra).next_multiple_of(pg_sys::MAXIMUM_ALIGNOF as usize);
        let fits = pg_sys::PageGetHeapFreeSpace(page) >= need;
        pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_UNLOCK as i32);
        if fits {
            return true;
        }
        pg_sys::ExecClearTuple(old);
        let buffer = pg_sys::ReadBuffer(heap, pgrx::itemptr::item_pointer_get_block_number_no_check(*tid));
        pg_sys::heap_page_prune_opt(heap, buffer);
        pg_sys::ReleaseBuffer(buffer);
        let mut at = *tid;
        pg_sys::table_tuple_fetch_row_version(heap, &mut at, snapshot, old)
    }
}

/// Sets column `attnum` of a row being built in `cleared`'s arrays: the
/// datum, or NULL for `None`.
fn set_column(values: &mut [pg_sys::Datum], nulls: &mut [bool], attnum: i32, datum: Option<pg_sys::Datum>) {
    let i = attnum as usize - 1;
    values[i] = datum.unwrap_or(pg_sys::Datum::from(0));
    nulls[i] = datum.is_none();
}

/// Clears a virtual slot of `natts` columns for a new row: its values and
/// null flags, to be filled before `ExecStoreVirtualTuple`.
unsafe fn cleared<'s>(slot: *mut pg_sys::TupleTableSlot, natts: usize) -> (&'s mut [pg_sys::Datum], &'s mut [bool]) {
    unsafe {
        pg_sys::ExecClearTuple(slot);
        (std::slice::from_raw_parts_mut((*slot).tts_values, natts), std::slice::from_raw_parts_mut((*slot).tts_isnull, natts))
    }
}

/// The CHECK constraints of the tables written here, compiled once per
/// process rather than once per batch. `ExecConstraints` compiles a
/// result relation's CHECK constraints on its first row (parsing each
/// stored expression, planning and compiling it), and every batch makes a
/// new result relation: under LPUSH at `-c 50` that compilation was 2.7 %
/// of the worker, for kv.keys's one CHECK. Here a table's compiled
/// constraints are kept with the text of the constraints they were
/// compiled from (`ccbin`, which names columns, operators and functions by
/// number), and lent to a result relation only while that text is still
/// the table's, so a changed constraint is compiled afresh. A compiled
/// expression is evaluated by one result relation at a time: a nested one
/// (a trigger that writes through pgkv again) compiles its own, as the
/// executor does.
pub mod checks {
    use pgrx::pg_sys;
    use std::cell::RefCell;
    use std::ffi::CStr;

    struct Compiled {
        relid: pg_sys::Oid,
        /// Each constraint's `ccbin`, in the relation's order.
        text: Vec<Vec<u8>>,
        exprs: *mut *mut pg_sys::ExprState,
        lent: bool,
    }

    thread_local! {
        static COMPILED: RefCell<Vec<Compiled>> = const { RefCell::new(Vec::new()) };
        static CONTEXT: std::cell::Cell<pg_sys::MemoryContext> = const { std::cell::Cell::new(std::ptr::null_mut()) };
    }

    /// The compiled CHECK constraints of `heap` for a new result relation
    /// (null: none, or in use; `ExecConstraints` then compiles its own).
    pub unsafe fn lend(heap: pg_sys::Relation) -> *mut *mut pg_sys::ExprState {
        unsafe {
            let constr = (*(*heap).rd_att).constr;
            if constr.is_null() || (*constr).num_check == 0 {
                return std::ptr::null_mut();
            }
            let checks = std::slice::from_raw_parts((*constr).check, (*constr).num_check as usize);
            let relid = (*heap).rd_id;
            let same = |c: &Compiled| {
                c.relid == relid
                    && c.text.len() == checks.len()
                    && c.text.iter().zip(checks).all(|(t, k)| CStr::from_ptr(k.ccbin).to_bytes() == t.as_slice())
            };
            let found = COMPILED.with(|all| {
                let mut all = all.borrow_mut();
                let c = all.iter_mut().find(|c| same(c))?;
                if c.lent {
                    return Some(std::ptr::null_mut());
                }
                c.lent = true;
                Some(c.exprs)
            });
            if let Some(exprs) = found {
                return exprs;
            }
            // Compiled as ExecRelCheck does, into memory that outlives the
            // batch. A table's constraints change only by DDL, so the
            // superseded entries stay few.
            let cx = context();
            let caller = pg_sys::MemoryContextSwitchTo(cx);
            let exprs = pg_sys::palloc(checks.len() * std::mem::size_of::<*mut pg_sys::ExprState>()).cast::<*mut pg_sys::ExprState>();
            for (i, check) in checks.iter().enumerate() {
                let expr = pg_sys::stringToNode(check.ccbin).cast::<pg_sys::Expr>();
                *exprs.add(i) = pg_sys::ExecInitExpr(pg_sys::expression_planner(expr), std::ptr::null_mut());
            }
            pg_sys::MemoryContextSwitchTo(caller);
            let text = checks.iter().map(|k| CStr::from_ptr(k.ccbin).to_bytes().to_vec()).collect();
            COMPILED.with(|all| all.borrow_mut().push(Compiled { relid, text, exprs, lent: true }));
            exprs
        }
    }

    /// The result relation that borrowed `exprs` is done with them.
    pub fn give_back(exprs: *mut *mut pg_sys::ExprState) {
        if exprs.is_null() {
            return;
        }
        COMPILED.with(|all| {
            if let Some(c) = all.borrow_mut().iter_mut().find(|c| c.exprs == exprs) {
                c.lent = false;
            }
        });
    }

    /// Everything lent is free again: called at the end of every
    /// transaction, when no result relation is alive (one that an ERROR
    /// unwound never gave back).
    pub fn reset() {
        COMPILED.with(|all| all.borrow_mut().iter_mut().for_each(|c| c.lent = false));
    }

    fn context() -> pg_sys::MemoryContext {
        CONTEXT.with(|cx| {
            if cx.get().is_null() {
                // SAFETY: a child of TopMemoryContext, made once per process.
                let made = unsafe {
                    pg_sys::AllocSetContextCreateInternal(
                        pg_sys::TopMemoryContext,
                        c"pgkv check constraints".as_ptr(),
                        pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
                        pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
                        pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
                    )
                };
                cx.set(made);
            }
            cx.get()
        })
    }
}
