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
use bytes::Bytes;
use std::cell::RefCell;
use foldhash::{HashMap, HashMapExt};

/// A blind string write (SET, MSET), or the creation of a string a
/// read-modify-write command found missing (INCR...), not sent yet. The batch's pending
/// writes go out in one multi-row upsert, before the next statement of any
/// kind runs (so every statement sees them) or at the flush ending the unit
/// of work; meanwhile the cache answers reads of these keys.
pub struct PendingSet {
    pub db: i16,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub expire_at: Option<i64>,
    /// The batch's locking read found no row for the key (so the write
    /// may be a plain insert; see `direct::insert_keys`).
    pub absent: bool,
    /// The write must create the key, not overwrite one another
    /// transaction created meanwhile (`push_create`).
    pub create: bool,
}

/// A list element pushed by LPUSH/RPUSH (or a move's push) not sent yet:
/// the push's reply comes from the locked, cached key row, so the row can
/// wait and go out with the batch's other pushes in one statement.
pub struct PendingPush {
    pub id: i64,
    pub pos: i64,
    pub value: Vec<u8>,
}

/// A member write (HSET, SADD, ZADD) not sent yet: the command's reply came
/// from what the batch knows of the collection's members (`Known`), so the
/// row can wait and go out with the batch's other member writes in one
/// statement per table.
pub struct PendingMember {
    pub id: i64,
    pub member: Bytes,
    /// The insertion number a new hash field or set member gets (an
    /// existing one keeps its); a sorted-set member's hash
    /// (`zsets::member_hash`).
    pub seq: i64,
    pub value: MemberValue,
}

/// What a queued member write stores, which also says its table.
pub enum MemberValue {
    /// A hash field's value (`kv.hashes`).
    Field(Bytes),
    /// A set member (`kv.sets`): only new members are queued.
    Set,
    /// A sorted-set member's score (`kv.zsets`).
    Score(f64),
}

/// What the batch knows of one member of a collection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Known {
    Absent,
    /// A hash field or set member that exists.
    Present,
    /// A sorted-set member, with its score.
    Score(f64),
}

/// The id a pending key's cached row shows: ids start at 1, and only
/// collection commands, which never see a pending (string) key, use them.
pub const PENDING_ID: i64 = 0;

/// Where a locked row's current version is (its `ctid`): the write-back
/// addresses it directly instead of probing the primary key.
pub type Tid = pgrx::pg_sys::ItemPointerData;

struct Cached {
    entry: Option<Entry>,
    locked: bool,
    dirty: bool,
    /// The row version this transaction locked, while it is the current
    /// one: cleared when the row is written back (the update moves it).
    tid: Option<Tid>,
}

thread_local! {
    /// By database, then key: a lookup borrows the key; a row found or
    /// changed shares its entry's key (`Bytes`) rather than copying it.
    static ROWS: RefCell<HashMap<i16, HashMap<Bytes, Cached>>> = RefCell::new(HashMap::new());
    static PENDING: RefCell<Vec<PendingSet>> = const { RefCell::new(Vec::new()) };
    static PUSHES: RefCell<Vec<PendingPush>> = const { RefCell::new(Vec::new()) };
    /// List elements read ahead for the batch's pops, by (list id, pos).
    /// Valid until the next statement runs (`drop_read_ahead`).
    static AHEAD: RefCell<HashMap<(i64, i64), Bytes>> = RefCell::new(HashMap::new());
    /// (list id, pos) of elements popped from the read-ahead and not yet
    /// deleted: they go out with the queued writes, before the pushes.
    static POPPED: RefCell<Vec<(i64, i64)>> = const { RefCell::new(Vec::new()) };
    /// Elements the batch's LPOP/RPOP commands are yet to pop, by (db,
    /// key, from the left): how far a pop reads ahead.
    static POP_HINTS: RefCell<HashMap<(i16, Vec<u8>, bool), i64>> = RefCell::new(HashMap::new());
    /// Members the batch's HSET/SADD/ZADD commands name, by (db, key): the
    /// first of them to run reads them all ahead.
    static MEMBER_HINTS: RefCell<HashMap<(i16, Bytes), Vec<Bytes>>> = RefCell::new(HashMap::new());
    /// What is known of members, by key id: read ahead, then kept up to
    /// date by the queued member writes. Valid until the next statement
    /// runs (`drop_read_ahead`).
    static MEMBERS: RefCell<HashMap<i64, HashMap<Bytes, Known>>> = RefCell::new(HashMap::new());
    static MEMBER_WRITES: RefCell<Vec<PendingMember>> = const { RefCell::new(Vec::new()) };
    static MEMBER_ROWS: RefCell<HashMap<(i64, Bytes), Option<Tid>>> = RefCell::new(HashMap::new());
}

/// Notes that a command of the batch will write these members of a
/// collection.
pub fn hint_members(db: i16, key: &Bytes, members: impl Iterator<Item = Bytes>) {
    MEMBER_HINTS.with(|h| h.borrow_mut().entry((db, key.clone())).or_default().extend(members));
}

/// The members the batch's commands will write in this collection, now
/// that they are about to be read ahead (once: a hint is used up).
pub fn take_member_hints(db: i16, key: &[u8]) -> Vec<Bytes> {
    MEMBER_HINTS.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_empty() {
            return Vec::new();
        }
        h.remove(&(db, Bytes::copy_from_slice(key))).unwrap_or_default()
    })
}

/// What is known of each of `members` of the collection `id`, or `None`
/// if any of them is not known.
pub fn known_members(id: i64, members: &[Bytes]) -> Option<Vec<Known>> {
    MEMBERS.with(|m| {
        let m = m.borrow();
        let known = m.get(&id)?;
        members.iter().map(|member| known.get(member).copied()).collect()
    })
}

/// What is known of one member of the collection `id`.
pub fn known_member(id: i64, member: &[u8]) -> Option<Known> {
    MEMBERS.with(|m| m.borrow().get(&id)?.get(member).copied())
}

/// Records what was read (or decided) of members of the collection `id`.
pub fn learn_members(id: i64, members: impl Iterator<Item = (Bytes, Known)>) {
    MEMBERS.with(|m| m.borrow_mut().entry(id).or_default().extend(members));
}

/// Records where the members' read-ahead found members of the collection
/// `id` in the table (`Some(ctid)`) or that they are not there (`None`),
/// as the queued writes' write-out needs it: insert or update in place.
pub fn learn_member_rows(id: i64, rows: impl Iterator<Item = (Bytes, Option<Tid>)>) {
    MEMBER_ROWS.with(|r| r.borrow_mut().extend(rows.map(|(m, tid)| ((id, m), tid))));
}

/// What `learn_member_rows` recorded of a member, if anything.
pub fn member_row(id: i64, member: &Bytes) -> Option<Option<Tid>> {
    MEMBER_ROWS.with(|r| {
        let r = r.borrow();
        if r.is_empty() {
            return None;
        }
        r.get(&(id, member.clone())).copied()
    })
}

/// Forgets what `learn_member_rows` recorded: the queued writes went out,
/// so the table no longer holds what the read-ahead found.
pub fn forget_member_rows() {
    MEMBER_ROWS.with(|r| {
        let mut r = r.borrow_mut();
        if !r.is_empty() {
            r.clear();
        }
    });
}

/// Queues a member write, and records the member's new state.
pub fn queue_member(write: PendingMember, now: Known) {
    learn_members(write.id, std::iter::once((write.member.clone(), now)));
    MEMBER_WRITES.with(|w| w.borrow_mut().push(write));
}

/// The queued member writes, in the order they were made.
pub fn take_member_writes() -> Vec<PendingMember> {
    MEMBER_WRITES.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

/// Notes that a command of the batch will pop `n` elements of this list.
pub fn hint_pops(db: i16, key: &[u8], left: bool, n: i64) {
    POP_HINTS.with(|h| {
        let mut h = h.borrow_mut();
        let total = h.entry((db, key.to_vec(), left)).or_insert(0);
        *total = total.saturating_add(n);
    });
}

/// How many elements the batch's pops of this list are yet to take, and
/// counts `n` of them as taken now.
pub fn pops_wanted(db: i16, key: &[u8], left: bool, n: i64) -> i64 {
    POP_HINTS.with(|h| {
        let mut h = h.borrow_mut();
        let Some(left_to_pop) = h.get_mut(&(db, key.to_vec(), left)) else { return n };
        let wanted = (*left_to_pop).max(n);
        *left_to_pop = (*left_to_pop - n).max(0);
        wanted
    })
}

/// Keeps elements read ahead: `values[i]` is at position `from + i`.
pub fn read_ahead(id: i64, from: i64, values: Vec<Bytes>) {
    AHEAD.with(|a| {
        let mut a = a.borrow_mut();
        for (pos, v) in (from..).zip(values) {
            a.insert((id, pos), v);
        }
    });
}

/// Pops the elements at `positions` from the read-ahead, if it has them
/// all, and queues their deletion.
pub fn pop_read_ahead(id: i64, positions: &[i64]) -> Option<Vec<Bytes>> {
    AHEAD.with(|a| {
        let mut a = a.borrow_mut();
        if !positions.iter().all(|p| a.contains_key(&(id, *p))) {
            return None;
        }
        let values = positions.iter().filter_map(|p| a.remove(&(id, *p))).collect();
        POPPED.with(|d| d.borrow_mut().extend(positions.iter().map(|p| (id, *p))));
        Some(values)
    })
}

/// Forgets the read-ahead: a statement is about to run, and it may change
/// list elements or collection members.
pub fn drop_read_ahead() {
    AHEAD.with(|a| {
        let mut a = a.borrow_mut();
        if !a.is_empty() {
            a.clear();
        }
    });
    MEMBERS.with(|m| {
        let mut m = m.borrow_mut();
        if !m.is_empty() {
            m.clear();
        }
    });
    MEMBER_ROWS.with(|r| {
        let mut r = r.borrow_mut();
        if !r.is_empty() {
            r.clear();
        }
    });
}

/// The popped elements to delete, as runs of positions: (id, first, last).
pub fn take_popped() -> Vec<(i64, i64, i64)> {
    let mut popped = POPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    popped.sort_unstable();
    let mut runs: Vec<(i64, i64, i64)> = Vec::new();
    for (id, pos) in popped {
        match runs.last_mut() {
            Some(run) if run.0 == id && run.2 + 1 == pos => run.2 = pos,
            _ => runs.push((id, pos, pos)),
        }
    }
    runs
}

pub fn push_list_element(push: PendingPush) {
    PUSHES.with(|p| p.borrow_mut().push(push));
}

/// The queued list elements, in the order they were pushed.
pub fn take_pushes() -> Vec<PendingPush> {
    PUSHES.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// Queues a blind string write and lets the cache answer for the key: its
/// row is replaced outright, pending changes included (the upsert rewrites
/// every column). Unlocked: a writing command that needs the row reads it
/// again, which first sends the pending writes.
pub fn push_set(db: i16, key: &[u8], value: &[u8], expire_at: Option<i64>) {
    let absent = matches!(get(db, key, true, false), Some(None));
    queue_set(PendingSet { db, key: key.to_vec(), value: value.to_vec(), expire_at, absent, create: false });
}

/// Queues the creation of a string (without a TTL) that the batch's
/// locking read found absent, as `push_set` queues a blind write; `false`
/// (nothing queued) when the cache does not know the key to be absent.
/// The insert must not overwrite a key another transaction created
/// meanwhile: it fails the batch instead, which runs again without
/// queuing (see `direct::insert_keys`), and finds that key.
pub fn push_create(db: i16, key: &[u8], value: &[u8]) -> bool {
    if !matches!(get(db, key, true, false), Some(None)) {
        return false;
    }
    queue_set(PendingSet { db, key: key.to_vec(), value: value.to_vec(), expire_at: None, absent: true, create: true });
    true
}

fn queue_set(set: PendingSet) {
    let entry = Entry {
        db: set.db,
        key: Bytes::copy_from_slice(&set.key),
        id: PENDING_ID,
        ktype: super::KeyType::String,
        expire_at: set.expire_at,
        value: Some(Bytes::copy_from_slice(&set.value)),
        card: 0,
        head: 0,
    };
    ROWS.with(|rows| {
        let key = entry.key.clone();
        rows.borrow_mut().entry(set.db).or_default().insert(key, Cached { entry: Some(entry), locked: false, dirty: false, tid: None });
    });
    PENDING.with(|p| p.borrow_mut().push(set));
}

pub fn has_pending() -> bool {
    PENDING.with(|p| !p.borrow().is_empty())
        || PUSHES.with(|p| !p.borrow().is_empty())
        || POPPED.with(|p| !p.borrow().is_empty())
        || MEMBER_WRITES.with(|w| !w.borrow().is_empty())
}

/// The queued writes, in (db, key) order with the last write of each key
/// only (one upsert may not touch a row twice; the order is the one every
/// worker locks in).
pub fn take_pending() -> Vec<PendingSet> {
    let mut sets = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    // Stable: among equal keys the later write stays later.
    sets.sort_by(|a, b| (a.db, &a.key).cmp(&(b.db, &b.key)));
    let mut out: Vec<PendingSet> = Vec::with_capacity(sets.len());
    for s in sets {
        match out.last_mut() {
            // Absent before the first write is absent before the last:
            // nothing but this list wrote the key in between.
            Some(last) if last.db == s.db && last.key == s.key => {
                let (absent, create) = (last.absent, last.create);
                *last = s;
                last.absent |= absent;
                // A later overwrite does not make a creation's reply right
                // if the key was created elsewhere meanwhile.
                last.create |= create;
            }
            _ => out.push(s),
        }
    }
    out
}

/// The cached row for a lookup, if it can serve it: `Some(None)` is a key
/// known to be absent. A write needs a locked row; a payload read needs
/// the payload.
pub fn get(db: i16, key: &[u8], write: bool, need_value: bool) -> Option<Option<Entry>> {
    ROWS.with(|rows| {
        let rows = rows.borrow();
        let c = rows.get(&db)?.get(key)?;
        if write && !c.locked {
            return None;
        }
        match &c.entry {
            Some(e) if need_value && e.value.is_none() && e.ktype == super::KeyType::String => None,
            other => Some(other.clone()),
        }
    })
}

/// The cached row of a string this transaction locked: a blind write
/// (SET, MSET) of it can change the row in place, written back by ctid,
/// rather than queue an upsert.
pub fn locked_string(db: i16, key: &[u8]) -> Option<Entry> {
    ROWS.with(|rows| {
        let rows = rows.borrow();
        let c = rows.get(&db)?.get(key)?;
        let e = c.entry.as_ref().filter(|e| c.locked && e.ktype == super::KeyType::String && e.id != PENDING_ID)?;
        Some(e.clone())
    })
}

/// Whether the cache holds a row (or an absence) for this key.
pub fn contains(db: i16, key: &[u8]) -> bool {
    ROWS.with(|rows| rows.borrow().get(&db).is_some_and(|keys| keys.contains_key(key)))
}

/// Remembers what a lookup read (or a create made). A dirty row keeps its
/// pending changes. `tid` is the version a locking read found.
pub fn put(db: i16, key: &[u8], entry: Option<Entry>, locked: bool, tid: Option<Tid>) {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let owned = || entry.as_ref().map_or_else(|| Bytes::copy_from_slice(key), |e| e.key.clone());
        let slot = slot(rows.entry(db).or_default(), key, owned, new_slot);
        remember(slot, entry, locked, tid);
    });
}

/// `put` of a row that was found, without copying its key again.
pub fn put_found(entry: Entry, locked: bool, tid: Option<Tid>) {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let slot = slot(rows.entry(entry.db).or_default(), &entry.key, || entry.key.clone(), new_slot);
        remember(slot, Some(entry), locked, tid);
    });
}

fn new_slot() -> Cached {
    Cached { entry: None, locked: false, dirty: false, tid: None }
}

fn remember(slot: &mut Cached, entry: Option<Entry>, locked: bool, tid: Option<Tid>) {
    if locked && tid.is_some() {
        slot.tid = tid;
    }
    if slot.dirty {
        // Only a payload fetch can reach here for a dirty row.
        if let (Some(mine), Some(read)) = (&mut slot.entry, entry) {
            if mine.value.is_none() {
                mine.value = read.value;
            }
        }
    } else {
        slot.entry = entry;
    }
    slot.locked |= locked;
}

/// Applies a change to a live row; it is written back by the next flush.
pub fn update(e: &Entry, f: impl FnOnce(&mut Entry)) {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let new = || Cached { entry: Some(e.clone()), locked: true, dirty: false, tid: None };
        let slot = slot(rows.entry(e.db).or_default(), &e.key, || e.key.clone(), new);
        if slot.entry.is_none() {
            slot.entry = Some(e.clone());
        }
        if let Some(entry) = slot.entry.as_mut() {
            f(entry);
        }
        slot.dirty = true;
    });
}

/// The cached row of `key`, made with `new` if there is none; the key is
/// taken (`owned`) only then.
fn slot<'m>(keys: &'m mut HashMap<Bytes, Cached>, key: &[u8], owned: impl FnOnce() -> Bytes, new: impl FnOnce() -> Cached) -> &'m mut Cached {
    if !keys.contains_key(key) {
        keys.insert(owned(), new());
    }
    keys.get_mut(key).expect("inserted above")
}

/// Drops a row from the cache (deleted, or overwritten by a statement).
pub fn forget(db: i16, key: &[u8]) {
    ROWS.with(|rows| {
        if let Some(keys) = rows.borrow_mut().get_mut(&db) {
            keys.remove(key);
        }
    });
}

/// The rows with pending changes, now considered written, with the
/// version each was locked at when known (the write moves the row, so the
/// cache forgets it).
pub fn take_dirty() -> Vec<(Entry, Option<Tid>)> {
    ROWS.with(|rows| {
        let mut rows = rows.borrow_mut();
        let mut out = Vec::new();
        for c in rows.values_mut().flat_map(|keys| keys.values_mut()) {
            if c.dirty {
                c.dirty = false;
                let tid = c.tid.take();
                if let Some(e) = &c.entry {
                    out.push((e.clone(), tid));
                }
            }
        }
        out
    })
}

/// Forgets every cached row and every unsent write (a rolled-back attempt's,
/// or, after a flush, nothing).
pub fn clear() {
    ROWS.with(|rows| {
        // Keeps a usual batch's allocation for the next one; a huge batch's
        // map is dropped rather than cleared over and over.
        rows.borrow_mut().retain(|_, keys| {
            keys.clear();
            keys.capacity() <= 4096
        })
    });
    PENDING.with(|p| p.borrow_mut().clear());
    PUSHES.with(|p| p.borrow_mut().clear());
    AHEAD.with(|a| a.borrow_mut().clear());
    POPPED.with(|p| p.borrow_mut().clear());
    POP_HINTS.with(|h| h.borrow_mut().clear());
    MEMBER_HINTS.with(|h| h.borrow_mut().clear());
    MEMBERS.with(|m| m.borrow_mut().clear());
    MEMBER_WRITES.with(|w| w.borrow_mut().clear());
    MEMBER_ROWS.with(|r| r.borrow_mut().clear());
}
