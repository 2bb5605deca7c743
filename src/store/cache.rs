//! Key rows read or changed during one unit of work (a worker batch, a SQL
//! call), with changes written back once at its end.
//!
//! Why: a batch of 800 LPUSHes to one list would otherwise update the same
//! kv.keys row 800 times in one transaction; every version stays visible to
//! the transaction, so each lookup walks a longer HOT chain and the batch
//! goes quadratic. Members (kv.lists etc.) are written at once; only the key
//! row's size, head, TTL and string payload are deferred.
//!
//! Safety: a row is only modified from the cache after a writing command
//! locked it (FOR UPDATE), so no other transaction can change it before
//! this one commits; a read-only cached row is re-read with a lock before a
//! write uses it. The cache is cleared at the start of every unit of work
//! and whenever a failure rolls work back.

use super::Entry;
use std::cell::RefCell;
use std::collections::HashMap;

struct Cached {
    entry: Option<Entry>,
    locked: bool,
    dirty: bool,
}

thread_local! {
    static ROWS: RefCell<HashMap<(i16, Vec<u8>), Cached>> = RefCell::new(HashMap::new());
}

/// The cached row for a lookup, if it can serve it: `Some(None)` is a key
/// known to be absent. A write needs a locked row; a payload read needs
/// the payload.
pub fn get(db: i16, key: &[u8], write: bool, need_value: bool) -> Option<Option<Entry>> {
    ROWS.with(|rows| {
        let rows = rows.borrow();
        let c = rows.get(&(db, key.to_vec()))?;
        if write && !c.locked {
            return None;
        }
        match &c.entry {
            Some(e) if need_value && e.value.is_none() && e.ktype == super::KeyType::String => None,
            other => Some(other.clone()),
        }
    })
}

/// Remembers what a lookup read (or a create made). A dirty row keeps its
/// pending changes.
pub fn put(db: i16, key: &[u8], entry: Option<Entry>, locked: bool) {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let slot = rows.entry((db, key.to_vec())).or_insert(Cached { entry: None, locked: false, dirty: false });
        if slot.dirty {
            // Only a payload fetch can reach here for a dirty row.
            if let (Some(mine), Some(read)) = (&mut slot.entry, entry) {
                if mine.value.is_none() {
                    mine.value = read.value;
                }
            }
            slot.locked |= locked;
            return;
        }
        slot.entry = entry;
        slot.locked |= locked;
    });
}

/// Applies a change to a live row; it is written back by the next flush.
pub fn update(e: &Entry, f: impl FnOnce(&mut Entry)) {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let slot = rows.entry((e.db, e.key.clone())).or_insert(Cached { entry: Some(e.clone()), locked: true, dirty: false });
        if slot.entry.is_none() {
            slot.entry = Some(e.clone());
        }
        if let Some(entry) = slot.entry.as_mut() {
            f(entry);
        }
        slot.dirty = true;
    });
}

/// Drops a row from the cache (deleted, or overwritten by a statement).
pub fn forget(db: i16, key: &[u8]) {
    ROWS.with(|rows| {
        rows.borrow_mut().remove(&(db, key.to_vec()));
    });
}

/// The rows with pending changes, now considered written.
pub fn take_dirty() -> Vec<Entry> {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let mut out = Vec::new();
        for c in rows.values_mut() {
            if c.dirty {
                c.dirty = false;
                if let Some(e) = &c.entry {
                    out.push(e.clone());
                }
            }
        }
        out
    })
}

pub fn clear() {
    ROWS.with(|rows| rows.borrow_mut().clear());
}
