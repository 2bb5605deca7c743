//! Where each key's row, and each collection member's, was last found: the
//! heap TID of its HOT chain's root, which is what the table's indexes
//! hold, remembered across batches so that the next lookup can go straight
//! to the heap page (`direct::scan`, `direct::probe_members`) instead of
//! searching the hash index on kv.keys's `key` or a member table's B-tree.
//! A HOT update keeps the root, so under a stream of overwrites the
//! location stays good; the index is searched again only when it is not
//! (the row was deleted, moved by a non-HOT update or a table rewrite, or
//! its line pointer reused). A sorted-set member's score change is never
//! HOT (the score is indexed): the write remembers the new version.
//!
//! Nothing here is trusted: a remembered location is only a place to
//! look. The lookup applies the snapshot to the chain it finds there, as
//! the index fetch does, and checks the row's scope and key, so a
//! stale location costs one page visit and then the index probe it would
//! have made anyway. That is why the keys themselves are not kept: a slot
//! holds a 64-bit hash of (table, scope, key) and the TID (the scope is a
//! key row's database or a member's collection id), in a table of
//! `pgkv.row_location_cache` bytes, one slot per hash (direct-mapped,
//! like a CPU cache). Two keys that share a slot take turns; a collision
//! of whole hashes costs a page visit. The table is allocated on first use;
//! a table rewrite (VACUUM FULL, TRUNCATE) gives the table a new file number,
//! which is part of the hash, so old slots stop matching.

use super::cache::Tid;
use std::cell::RefCell;
use std::hash::{BuildHasher, Hash, Hasher};

/// One slot: the hash (0: empty) and the TID (`item_pointer_to_u64`).
type Slot = [u64; 2];

#[derive(Default)]
struct Locations {
    slots: Slots,
    /// The number of slots `slots` was made for (it has none if the
    /// memory could not be had).
    sized_for: usize,
    hasher: foldhash::fast::RandomState,
}

/// The table's memory: zeroed, and in a worker on huge pages where the
/// kernel gives them (transparent huge pages, asked for with `madvise`;
/// `prefer_huge_pages`). Each lookup
/// lands on a random slot, so with 4 kB pages nearly every one also
/// missed the TLB: 16 MB is 4096 pages, more than its entries, against 8
/// huge ones.
#[derive(Default)]
struct Slots {
    /// The mapping (`mmap`: its address and size), and the slots' place in
    /// it: at its first 2 MB boundary, where the huge pages can start.
    map: Option<(*mut libc::c_void, usize, std::ptr::NonNull<Slot>)>,
    len: usize,
}

const HUGE_PAGE: usize = 2 << 20;

impl Slots {
    /// `n` empty slots; none where the memory cannot be had (the table is
    /// then off, which only costs index probes).
    fn new(n: usize) -> Slots {
        if n == 0 {
            return Slots::default();
        }
        let bytes = n * std::mem::size_of::<Slot>();
        let size = bytes + HUGE_PAGE;
        // SAFETY: a fresh private anonymous mapping (zero-filled), used
        // only through `slots` within it and unmapped once, on drop.
        unsafe {
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            let map = libc::mmap(std::ptr::null_mut(), size, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            if map == libc::MAP_FAILED {
                return Slots::default();
            }
            let start = (map as usize).next_multiple_of(HUGE_PAGE);
            if HUGE.with(|h| h.get()) {
                // A hint: without huge pages the table works the same.
                libc::madvise(start as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
            }
            // Not null: at or past a mapping that succeeded.
            let slots = std::ptr::NonNull::new_unchecked(start as *mut Slot);
            Slots { map: Some((map, size, slots)), len: n }
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if let Some((map, size, _)) = self.map {
            // SAFETY: the mapping `new` made; nothing refers to it after.
            unsafe { libc::munmap(map, size) };
        }
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        match self.map {
            // SAFETY: `len` slots, zero-filled by the mapping, owned here.
            Some((_, _, p)) => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) },
            None => &[],
        }
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [Slot] {
        match self.map {
            // SAFETY: as in `deref`, borrowed mutably through `self`.
            Some((_, _, p)) => unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), self.len) },
            None => &mut [],
        }
    }
}

thread_local! {
    static LOCATIONS: RefCell<Locations> = RefCell::new(Locations::default());
    /// Whether the table asks for huge pages (`prefer_huge_pages`).
    static HUGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Asks for the table on huge pages in this process: a pgkv worker's,
/// which fills it within seconds under load. A session calling the kv
/// functions keeps 4 kB pages, so that it holds only the pages its own
/// lookups touched (a huge page is 2 MB of memory from its first lookup).
pub fn prefer_huge_pages() {
    HUGE.with(|h| h.set(true));
}

/// Slots for the configured size (0: off).
fn wanted_slots() -> usize {
    let bytes = crate::gucs::ROW_LOCATION_CACHE_KB.get().max(0) as usize * 1024;
    bytes / std::mem::size_of::<Slot>()
}

impl Locations {
    /// The slot index and the tag of (table, scope, key), after resizing the
    /// table to the configured size; `None` when it is off.
    fn place(&mut self, table: u32, scope: i64, key: &[u8]) -> Option<(usize, u64)> {
        let n = wanted_slots();
        if self.sized_for != n {
            // Freed first: a new size is not added to the old one.
            self.slots = Slots::default();
            self.slots = Slots::new(n);
            self.sized_for = n;
        }
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut h = self.hasher.build_hasher();
        (table, scope, key).hash(&mut h);
        let hash = h.finish() | 1;
        Some(((hash >> 1) as usize % n, hash))
    }
}

/// Where `key` (in `scope`) was last found in the table whose file number
/// is `table`, if remembered.
pub fn get(table: u32, scope: i64, key: &[u8]) -> Option<Tid> {
    LOCATIONS.with(|l| {
        let mut l = l.borrow_mut();
        let (i, tag) = l.place(table, scope, key)?;
        let [t, at] = l.slots[i];
        (t == tag).then(|| {
            let mut tid = Tid::default();
            pgrx::itemptr::u64_to_item_pointer(at, &mut tid);
            tid
        })
    })
}

/// Starts loading the slot of `key` (in `scope`) into the CPU's cache, for
/// a `get` a few keys later. The table is far larger than the caches, so a
/// `get` of a slot nobody loaded waits on memory: under SET at `-P 16`
/// that wait was a twentieth of the worker. A batch's lookups are known
/// up front (`direct::scan`, `direct::probe_members`), so each one's load
/// can overlap the work on the keys before it.
pub fn prefetch(table: u32, scope: i64, key: &[u8]) {
    LOCATIONS.with(|l| {
        let mut l = l.borrow_mut();
        if let Some((i, _)) = l.place(table, scope, key) {
            prefetch_line(&l.slots[i]);
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn prefetch_line<T>(at: &T) {
    // SAFETY: a prefetch is a hint; it neither faults nor changes memory.
    unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((at as *const T).cast()) }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch_line<T>(_: &T) {}

/// Remembers that `key` (in `scope`) was found at `root`.
pub fn put(table: u32, scope: i64, key: &[u8], root: Tid) {
    LOCATIONS.with(|l| {
        let mut l = l.borrow_mut();
        if let Some((i, tag)) = l.place(table, scope, key) {
            l.slots[i] = [tag, pgrx::itemptr::item_pointer_to_u64(root)];
        }
    })
}
