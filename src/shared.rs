//! State shared by every process that runs pgkv commands: the workers and
//! any backend calling `kv.*`. It lives in Postgres shared memory, so it
//! exists only when pgkv is in `shared_preload_libraries`; elsewhere every
//! function here is a no-op.
//!
//! Two facts are published at commit, by a transaction callback, so nobody
//! sees them before the data they describe is visible:
//! - **Touches (WATCH).** Each command records the keys it changed (where
//!   Redis calls `signalModifiedKey`: the keys of its keyspace events, see
//!   `cmd::notify`). At commit each key's hash slot counter goes up by
//!   the number of touches. WATCH remembers a slot's counter; EXEC fails
//!   when it moved. Two keys can share a slot (65 536 slots), which makes EXEC fail
//!   spuriously, never wrongly succeed. FLUSHDB/FLUSHALL bump a
//!   per-database epoch instead: a flush counts for a key that existed when
//!   it was watched (Redis touches the watched keys the flush removes; one
//!   created after WATCH was touched by its creation). SWAPDB touches every
//!   key of both databases under both numbers, as Redis touches the
//!   watched keys that exist in either.
//! - **Ready keys (blocking commands).** A worker counts its blocked clients
//!   in its slot. A committing process that wrote keys sets their bits in the
//!   bloom filter of every worker with blocked clients, bumps that worker's
//!   generation and sets its latch. The worker re-runs only the blocked
//!   commands whose keys' bits are set. The worker's own transactions serve
//!   its clients as they run (`worker::xact::serve_ready`).
//!
//! Why no wake-up is lost: a worker raises its blocked count *before* it
//! re-checks a newly blocked client in a fresh snapshot; a writer reads the
//! count *after* its commit became visible. Either the writer sees the count
//! and signals, or its commit precedes the re-check's snapshot.

use pgrx::pg_sys;
use std::cell::RefCell;
use std::hash::Hasher;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::SeqCst};

const TOUCH_SLOTS: usize = 1 << 16;
pub const MAX_WORKERS: usize = 64;
const BLOOM_WORDS: usize = 16;
const BLOOM_BITS: u64 = (BLOOM_WORDS * 64) as u64;

#[repr(C)]
struct WorkerSlot {
    latch: AtomicPtr<pg_sys::Latch>,
    blocked: AtomicU32,
    generation: AtomicU64,
    bloom: [AtomicU64; BLOOM_WORDS],
    /// WAL position the worker waits to see flushed before it sends held
    /// replies (0: none); the flusher clears it once flushed.
    flush_request: AtomicU64,
    /// End of the worker's last commit record; `COMMITTING` while a commit
    /// is under way (its record may already be visible, its end not known).
    commit_lsn: AtomicU64,
}

#[repr(C)]
struct Shared {
    workers: [WorkerSlot; MAX_WORKERS],
    /// Bumped by a committed FLUSHDB or FLUSHALL of the database.
    flush_epoch: [AtomicU64; crate::DATABASES as usize],
    /// Bumped by every committed CONFIG SET: processes reload cached settings.
    config_epoch: AtomicU64,
    /// The flusher's latch; null while it is not running.
    flusher: AtomicPtr<pg_sys::Latch>,
    touch: [AtomicU64; TOUCH_SLOTS],
}

static mut SHARED: *const Shared = std::ptr::null();
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;

fn shared() -> Option<&'static Shared> {
    // SAFETY: set once by the postmaster's startup hook, before any backend
    // is forked; read-only afterwards. All fields are atomics.
    unsafe { SHARED.as_ref() }
}

/// Called from `_PG_init` while preloading: asks for the segment, and
/// registers the commit callback (inherited by every forked backend).
pub fn init() {
    unsafe {
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(shmem_request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<Shared>());
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let size = std::mem::size_of::<Shared>();
        let mut found = false;
        let p = pg_sys::ShmemInitStruct(c"pgkv shared state".as_ptr(), size, &mut found);
        if !found {
            // All-zero is a valid value of every atomic in it.
            std::ptr::write_bytes(p.cast::<u8>(), 0, size);
        }
        SHARED = p.cast();
    }
}

/// The hash of a key, the same in every process.
pub fn key_hash(db: i16, key: &[u8]) -> u64 {
    // A fixed seed: stable across processes of one build.
    use std::hash::BuildHasher;
    let mut h = foldhash::quality::FixedState::with_seed(0x706b_7673).build_hasher();
    h.write_i16(db);
    h.write(key);
    h.finish()
}

#[derive(Default)]
struct Local {
    /// Key hashes written by the current transaction, in order.
    touched: Vec<u64>,
    /// The places in `touched` of writes that replaced an existing key
    /// without making it ready for blocked clients (`touch_overwrite`),
    /// ascending.
    overwrites: Vec<usize>,
    /// Each flush of the current transaction, in order (its database): a
    /// flush after a WATCH in the same transaction counts even when an
    /// earlier one had flushed that database too.
    flushes: Vec<i16>,
    /// The current transaction ran CONFIG SET.
    config_changed: bool,
    /// Bumped at every commit and abort: tells a WATCH stamp taken in this
    /// transaction from one taken in an earlier one.
    xact_seq: u64,
    /// The worker slot of this process, when it is a worker.
    worker: Option<usize>,
}

impl Local {
    /// The hashes of the keys touched from `mark` on in a way that may make
    /// them ready for blocked clients (not `touch_overwrite`), in order.
    fn ready_from(&self, mark: usize) -> Vec<u64> {
        let overwrite = |at: &usize| self.overwrites.binary_search(at).is_ok();
        (mark..self.touched.len()).filter(|at| !overwrite(at)).map(|at| self.touched[at]).collect()
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// A command changed `key`.
pub fn touch(db: i16, key: &[u8]) {
    let h = key_hash(db, key);
    LOCAL.with(|l| l.borrow_mut().touched.push(h));
}

/// A command replaced the existing key `key` with a new value: a touch for
/// WATCH that makes no blocked client ready. Redis 7.0 signals a key as
/// ready when it is added (`dbAdd`), not when `setKey` overwrites it (SORT
/// ... STORE and ZUNIONSTORE and the like onto an existing key), so a
/// client waiting on it keeps waiting there.
pub fn touch_overwrite(db: i16, key: &[u8]) {
    let h = key_hash(db, key);
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        let at = l.touched.len();
        l.overwrites.push(at);
        l.touched.push(h);
    });
}

/// How many touches the current transaction has made: a command that
/// fails takes its own back with `untouch`.
pub fn touch_mark() -> usize {
    LOCAL.with(|l| l.borrow().touched.len())
}

/// The hashes of the keys touched since `mark` (`touch_mark`) in a way
/// that may make them ready for blocked clients, in order.
pub fn ready_since(mark: usize) -> Vec<u64> {
    LOCAL.with(|l| l.borrow().ready_from(mark))
}

/// Forgets the touches made since `mark` (`touch_mark`).
pub fn untouch(mark: usize) {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.touched.truncate(mark);
        l.overwrites.retain(|at| *at < mark);
    });
}

/// FLUSHDB or FLUSHALL removed every key of `db`.
pub fn flushed_db(db: i16) {
    LOCAL.with(|l| l.borrow_mut().flushes.push(db));
}

/// CONFIG SET ran: other processes reload their settings after commit.
pub fn config_changed() {
    LOCAL.with(|l| l.borrow_mut().config_changed = true);
}

/// Moves whenever a CONFIG SET commits anywhere.
pub fn config_epoch() -> u64 {
    shared().map_or(0, |s| s.config_epoch.load(SeqCst))
}

/// What WATCH remembers about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    hash: u64,
    db: i16,
    xact_seq: u64,
    /// How many touches the transaction had made when WATCH ran.
    mark: usize,
    /// The slot counter when WATCH ran.
    counter: u64,
    /// How often that transaction had touched the slot by then: its
    /// commit moves the counter that much more.
    before: u64,
    /// The database's flush epoch when WATCH ran.
    flush_epoch: u64,
    /// How often that transaction had flushed the database by then: its
    /// commit moves the epoch that much more.
    flushed: u64,
    /// How many flushes of any database that transaction had made by then
    /// (`Local::flushes`).
    flush_mark: usize,
    /// Whether the key existed when watched: only then does a flush count.
    existed: bool,
}

/// WATCH of `key`, which exists or not (`existed`).
pub fn stamp(db: i16, key: &[u8], existed: bool) -> Stamp {
    let hash = key_hash(db, key);
    LOCAL.with(|l| {
        let l = l.borrow();
        let (counter, flush_epoch) =
            shared().map(|s| (s.touch[slot(hash)].load(SeqCst), s.flush_epoch[db as usize].load(SeqCst))).unwrap_or((0, 0));
        let before = l.touched.iter().filter(|h| slot(**h) == slot(hash)).count() as u64;
        let flushed = l.flushes.iter().filter(|&&f| f == db).count() as u64;
        Stamp {
            hash,
            db,
            xact_seq: l.xact_seq,
            mark: l.touched.len(),
            counter,
            before,
            flush_epoch,
            flushed,
            flush_mark: l.flushes.len(),
            existed,
        }
    })
}

impl Stamp {
    /// The touch slot this key counts in (EXEC locks it, see `cmd::multi`).
    pub fn slot(&self) -> i32 {
        slot(self.hash) as i32
    }
}

/// Whether the key was written by anyone since `stamp` was taken.
pub fn changed(stamp: &Stamp) -> bool {
    LOCAL.with(|l| {
        let l = l.borrow();
        let same_xact = l.xact_seq == stamp.xact_seq;
        let since = if same_xact { &l.touched[stamp.mark.min(l.touched.len())..] } else { &l.touched[..] };
        if since.iter().any(|h| slot(*h) == slot(stamp.hash)) {
            return true;
        }
        // This transaction's own flush since the stamp.
        let since = if same_xact { &l.flushes[stamp.flush_mark.min(l.flushes.len())..] } else { &l.flushes[..] };
        let flushed = since.contains(&stamp.db);
        if stamp.existed && flushed {
            return true;
        }
        // Other transactions' commits since the stamp; in a later
        // transaction, the watching one's own commit counts as expected.
        let (counter, flush_epoch) = match same_xact {
            true => (stamp.counter, stamp.flush_epoch),
            false => (stamp.counter + stamp.before, stamp.flush_epoch + stamp.flushed),
        };
        match shared() {
            Some(s) => {
                s.touch[slot(stamp.hash)].load(SeqCst) != counter
                    || (stamp.existed && s.flush_epoch[stamp.db as usize].load(SeqCst) != flush_epoch)
            }
            None => false,
        }
    })
}

fn slot(hash: u64) -> usize {
    (hash % TOUCH_SLOTS as u64) as usize
}

unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT => publish_commit(),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE => LOCAL.with(|l| {
            let mut l = l.borrow_mut();
            l.touched.clear();
            l.overwrites.clear();
            l.flushes.clear();
            l.config_changed = false;
            l.xact_seq += 1;
        }),
        _ => {}
    }
    if matches!(event, XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE) {
        crate::store::direct::checks::reset();
    }
    crate::cmd::pubsub::xact_event(event);
}

/// Runs after the commit is durable and visible, before its locks are
/// released. Nothing here may raise an ERROR.
fn publish_commit() {
    let (mut touched, ready, flushed, me, config_changed) = LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.xact_seq += 1;
        // What may make blocked clients elsewhere ready, when that is not
        // every touch: not the overwrites.
        let ready = (!l.overwrites.is_empty()).then(|| l.ready_from(0));
        let l = &mut *l;
        l.overwrites.clear();
        (std::mem::take(&mut l.touched), ready, std::mem::take(&mut l.flushes), l.worker, std::mem::take(&mut l.config_changed))
    });
    if config_changed {
        if let Some(s) = shared() {
            s.config_epoch.fetch_add(1, SeqCst);
        }
    }
    if touched.is_empty() && flushed.is_empty() {
        return;
    }
    touched.sort_unstable_by_key(|h| slot(*h));
    if let Some(s) = shared() {
        // Every touch counts, not every slot: a WATCH between two touches
        // of its slot in one transaction expects the ones before it
        // (`Stamp::before`), and must see the others.
        for run in touched.chunk_by(|a, b| slot(*a) == slot(*b)) {
            s.touch[slot(run[0])].fetch_add(run.len() as u64, SeqCst);
        }
    }
    // Sorted by slot already when every touch counts.
    let mut touched = ready.map_or(touched, |mut ready| {
        ready.sort_unstable_by_key(|h| slot(*h));
        ready
    });
    touched.dedup_by_key(|h| slot(*h));
    if let Some(s) = shared() {
        // One step per flush: a WATCH between two flushes of its
        // database in one transaction expects the ones before it
        // (`Stamp::flushed`), and must see the others.
        for &db in &flushed {
            s.flush_epoch[db as usize].fetch_add(1, SeqCst);
        }
        for (i, w) in s.workers.iter().enumerate() {
            if Some(i) == me || w.blocked.load(SeqCst) == 0 {
                continue;
            }
            let latch = w.latch.load(SeqCst);
            if latch.is_null() {
                continue;
            }
            for h in &touched {
                let bit = h % BLOOM_BITS;
                w.bloom[(bit / 64) as usize].fetch_or(1 << (bit % 64), SeqCst);
            }
            w.generation.fetch_add(1, SeqCst);
            // SAFETY: the latch of a live worker's PGPROC, in shared memory.
            unsafe { pg_sys::SetLatch(latch) };
        }
    }
}

/// This process's worker slot, when it is a worker.
pub fn worker_index() -> Option<usize> {
    LOCAL.with(|l| l.borrow().worker)
}

/// A worker claims its slot at start-up.
pub fn register_worker(index: usize) {
    LOCAL.with(|l| l.borrow_mut().worker = Some(index));
    if let Some(w) = shared().and_then(|s| s.workers.get(index)) {
        w.blocked.store(0, SeqCst);
        for b in &w.bloom {
            b.store(0, SeqCst);
        }
        w.flush_request.store(0, SeqCst);
        w.commit_lsn.store(0, SeqCst);
        // SAFETY: MyLatch is this process's shared PGPROC latch.
        w.latch.store(unsafe { pg_sys::MyLatch }, SeqCst);
    }
}

pub fn unregister_worker(index: usize) {
    if let Some(w) = shared().and_then(|s| s.workers.get(index)) {
        w.latch.store(std::ptr::null_mut(), SeqCst);
        w.blocked.store(0, SeqCst);
    }
}

/// The worker's count of blocked clients, read by committing writers.
pub fn set_blocked(index: usize, n: u32) {
    if let Some(w) = shared().and_then(|s| s.workers.get(index)) {
        w.blocked.store(n, SeqCst);
    }
}

/// Key-hash bits other processes' commits set for this worker, when its
/// generation moved since `seen`.
pub fn take_remote_ready(index: usize, seen: &mut u64) -> Option<Bloom> {
    let w = shared()?.workers.get(index)?;
    let generation = w.generation.load(SeqCst);
    if generation == *seen {
        return None;
    }
    *seen = generation;
    let mut bits = [0u64; BLOOM_WORDS];
    for (i, b) in w.bloom.iter().enumerate() {
        bits[i] = b.swap(0, SeqCst);
    }
    Some(Bloom(bits))
}

pub struct Bloom([u64; BLOOM_WORDS]);

impl Bloom {
    pub fn contains(&self, hash: u64) -> bool {
        let bit = hash % BLOOM_BITS;
        self.0[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

/// `commit_lsn` of a worker that is committing now.
const COMMITTING: u64 = u64::MAX;

/// A worker is about to commit: until `end_commit`, readers cannot know
/// where its commit record ends (see `commits_seen`).
pub fn begin_commit(index: usize) {
    if let Some(w) = shared().and_then(|s| s.workers.get(index)) {
        w.commit_lsn.store(COMMITTING, SeqCst);
    }
}

/// The worker's commit is over; `lsn` is the end of its last commit record.
pub fn end_commit(index: usize, lsn: u64) {
    if let Some(w) = shared().and_then(|s| s.workers.get(index)) {
        w.commit_lsn.store(lsn, SeqCst);
    }
}

/// A WAL position past every commit record of the other workers that this
/// worker's last snapshot may have seen. A worker that is committing
/// right now counts as the current end of WAL: its commit may be visible
/// already, but its own end position is not published yet.
///
/// Why this is enough: a worker publishes `COMMITTING` before its commit
/// record is written and its end position after the commit is visible; a
/// reader reads the slots after its batch ran. If the reader saw that
/// commit, it reads either `COMMITTING` (then WAL is already inserted past
/// the record) or the published end.
pub fn commits_seen(index: usize) -> u64 {
    let Some(s) = shared() else { return 0 };
    let mut lsn = 0;
    for (i, w) in s.workers.iter().enumerate().take(crate::gucs::workers().max(0) as usize) {
        if i == index {
            continue;
        }
        match w.commit_lsn.load(SeqCst) {
            // SAFETY: reads the WAL insert position under its spinlock.
            COMMITTING => return unsafe { pg_sys::GetXLogInsertRecPtr() },
            l => lsn = lsn.max(l),
        }
    }
    lsn
}

/// Asks the flusher to flush WAL up to `lsn` and to set this worker's
/// latch when it has. False when no flusher is running.
pub fn request_flush(index: usize, lsn: u64) -> bool {
    let Some(s) = shared() else { return false };
    let flusher = s.flusher.load(SeqCst);
    if flusher.is_null() {
        return false;
    }
    s.workers[index].flush_request.fetch_max(lsn, SeqCst);
    // SAFETY: the flusher's latch is its PGPROC latch, in shared memory for
    // the life of the cluster; setting a latch nobody waits on is harmless.
    unsafe { pg_sys::SetLatch(flusher) };
    true
}

/// Whether a flusher is running.
pub fn flusher_running() -> bool {
    shared().is_some_and(|s| !s.flusher.load(SeqCst).is_null())
}

/// The flusher announces itself (false without pgkv's shared memory).
pub fn register_flusher() -> bool {
    let Some(s) = shared() else { return false };
    // SAFETY: MyLatch is this process's shared PGPROC latch.
    s.flusher.store(unsafe { pg_sys::MyLatch }, SeqCst);
    true
}

pub fn unregister_flusher() {
    if let Some(s) = shared() {
        s.flusher.store(std::ptr::null_mut(), SeqCst);
    }
}

/// The furthest WAL position any worker waits for (0: none).
pub fn flush_target() -> u64 {
    shared().map_or(0, |s| s.workers.iter().map(|w| w.flush_request.load(SeqCst)).max().unwrap_or(0))
}

/// Wakes every worker that waits for a flush: it lets out what is
/// flushed now. A request that is met is cleared; one raised meanwhile
/// stays (and that worker has set the flusher's latch again).
pub fn wake_flushed(flushed: u64) {
    let Some(s) = shared() else { return };
    for w in &s.workers {
        let want = w.flush_request.load(SeqCst);
        if want != 0 {
            if want <= flushed {
                let _ = w.flush_request.compare_exchange(want, 0, SeqCst, SeqCst);
            }
            let latch = w.latch.load(SeqCst);
            if !latch.is_null() {
                // SAFETY: as in `request_flush`.
                unsafe { pg_sys::SetLatch(latch) };
            }
        }
    }
}
