//! Where each key's row was last found: the heap TID of its HOT chain's
//! root, which is what the hash index on `key` holds, remembered across
//! batches so that the next lookup of the key can go straight to the heap
//! page (`direct::scan`). A HOT update keeps the root, so under a stream of
//! overwrites the location stays good; the index is probed again only
//! when it is not (the row was deleted, moved by a non-HOT update or a
//! table rewrite, or its line pointer reused).
//!
//! Nothing here is trusted: a remembered location is only a place to
//! look. The lookup applies the snapshot to the chain it finds there, as
//! the index fetch does, and checks the row's database and key, so a
//! stale location costs one page visit and then the index probe it would
//! have made anyway.
//!
//! Memory is bounded by `pgkv.key_location_cache`, split between two
//! generations: new locations go to the young one; when it has used its
//! half, it becomes the old one and the previous old one is dropped. A key
//! found in the old generation moves to the young one, so the keys in use
//! stay. An entry is counted as its key's length plus `OVERHEAD`.

use super::cache::Tid;
use std::cell::RefCell;
use std::collections::HashMap;

type Generation = HashMap<i16, HashMap<Box<[u8]>, Tid>>;

#[derive(Default)]
struct Locations {
    /// The table they belong to (its relfilenumber): a rewrite of the
    /// table (VACUUM FULL, TRUNCATE, CLUSTER) invalidates them all.
    table: u32,
    young: Generation,
    young_bytes: usize,
    old: Generation,
}

thread_local! {
    static LOCATIONS: RefCell<Locations> = RefCell::new(Locations::default());
}

/// What an entry takes besides its key's bytes: the key's allocation
/// header, the map's slot (the boxed key's pointer and length, the TID)
/// and its control byte, and the map's spare room.
const OVERHEAD: usize = 64;

/// Bytes per generation; 0 turns the cache off.
fn capacity() -> usize {
    crate::gucs::KEY_LOCATION_CACHE_KB.get().max(0) as usize * 1024 / 2
}

/// Where `key` of database `db` was last found in the table whose
/// relfilenumber is `table`, if remembered.
pub fn get(table: u32, db: i16, key: &[u8]) -> Option<Tid> {
    LOCATIONS.with(|l| {
        let mut l = l.borrow_mut();
        if l.table != table || capacity() == 0 {
            if l.young_bytes > 0 || !l.old.is_empty() {
                *l = Locations::default();
            }
            l.table = table;
            return None;
        }
        if let Some(tid) = l.young.get(&db).and_then(|keys| keys.get(key)) {
            return Some(*tid);
        }
        let (key, tid) = l.old.get_mut(&db)?.remove_entry(key)?;
        l.insert(db, key, tid);
        Some(tid)
    })
}

/// Remembers that `key` of database `db` was found at `root`.
pub fn put(table: u32, db: i16, key: &[u8], root: Tid) {
    if capacity() == 0 {
        return;
    }
    LOCATIONS.with(|l| {
        let mut l = l.borrow_mut();
        if l.table != table {
            *l = Locations { table, ..Locations::default() };
        }
        if let Some(tid) = l.young.get_mut(&db).and_then(|keys| keys.get_mut(key)) {
            *tid = root;
            return;
        }
        if let Some(keys) = l.old.get_mut(&db) {
            keys.remove(key);
        }
        l.insert(db, key.into(), root);
    })
}

impl Locations {
    fn insert(&mut self, db: i16, key: Box<[u8]>, tid: Tid) {
        let bytes = key.len() + OVERHEAD;
        if self.young_bytes + bytes > capacity() {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young.entry(db).or_default().insert(key, tid);
        self.young_bytes += bytes;
    }
}
