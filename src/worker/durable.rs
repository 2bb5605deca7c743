//! Replies wait for the WAL flush, not for the commit.
//!
//! With `synchronous_commit` on (`appendfsync always`), a batch used to
//! commit synchronously: the worker wrote and fsynced the WAL itself, a
//! fifth of its CPU under SET, and sat idle while the disk answered. Now
//! the batch commits asynchronously and its replies are held; the flusher
//! (a background process of its own) flushes the WAL and sets the
//! worker's latch, and only then are the replies sent. Meanwhile the worker
//! serves the next batch. Nothing is acknowledged before it is on disk.
//!
//! What a batch's replies wait for (`Durable::close_batch`): the end of
//! every commit its reads may have seen that is not durable yet: the
//! worker's own earlier commits and, with several workers, theirs
//! (`shared::commits_seen`). Other sessions commit synchronously unless
//! they chose otherwise, so their visible commits are already flushed.
//! A read-only batch therefore waits only while an earlier write it may
//! have read is still in flight, as a Redis read in the same event loop
//! waits for the AOF fsync.
//!
//! Order: a client's bytes leave in the order they were queued (`Conn`
//! sends only up to its hold limit), so anything queued behind held
//! replies (a pub/sub message, a timeout) waits too.
//!
//! Not deferred: a cluster with synchronous standbys (`synchronous_standby_
//! names` set), where the commit must also wait for them; a lone client's
//! batch with nothing else waiting, no other client's replies held
//! included (`commit_synchronously`), where the hand-off would only add
//! wake-ups; and a worker without a running flusher, which flushes itself.

use super::conn::Conn;
use crate::shared;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use slab::Slab;
use std::cell::Cell;
use std::collections::VecDeque;
use std::time::Duration;

pub fn register() {
    BackgroundWorkerBuilder::new("pgkv flusher")
        .set_type("pgkv")
        .set_library("pgkv")
        .set_function("pgkv_flusher_main")
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

/// Flushes the WAL as far as the workers ask, and wakes them. It needs no
/// database: `XLogFlush` works on the cluster's WAL.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pgkv_flusher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    if !shared::register_flusher() {
        return;
    }
    loop {
        let target = shared::flush_target();
        // SAFETY: XLogFlush takes WALWriteLock and writes and fsyncs the WAL
        // up to `target` (no further than inserted); it needs no transaction.
        unsafe {
            if target > flushed() {
                pg_sys::XLogFlush(target);
            }
        }
        shared::wake_flushed(flushed());
        // The latch is reset when the wait returns, before the next look at
        // the requests: a request made after that look sets it again.
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) || BackgroundWorker::sigterm_received() {
            break;
        }
    }
    shared::unregister_flusher();
    // A last flush, so no worker waits on a flusher that is gone.
    let target = shared::flush_target();
    unsafe {
        if target > flushed() {
            pg_sys::XLogFlush(target);
        }
    }
    shared::wake_flushed(flushed());
    // Exit non-zero, as the workers do, so that a flusher stopped by
    // pg_terminate_backend() is restarted; at shutdown nothing is.
    unsafe { pg_sys::proc_exit(1) };
}

fn flushed() -> u64 {
    // SAFETY: reads the shared flush position under its spinlock.
    unsafe { pg_sys::GetFlushRecPtr(std::ptr::null_mut()) }
}

thread_local! {
    /// `synchronous_standby_names` is empty (read at start and on SIGHUP:
    /// it cannot change otherwise).
    static NO_SYNC_STANDBYS: Cell<bool> = const { Cell::new(true) };
    /// The batch about to run is a lone client's, with nothing else
    /// waiting (`commit_synchronously`).
    static LONE: Cell<bool> = const { Cell::new(false) };
}

/// Says whether the next batch should commit synchronously after all: a
/// lone client with nothing else waiting gains nothing from the hand-off
/// (the worker has nothing to do meanwhile) and loses the flusher's two
/// wake-ups, and the async commit's wake-up of the walwriter, about 0.1 ms
/// per write here.
pub fn commit_synchronously(lone: bool) {
    LONE.with(|c| c.set(lone));
}

/// Re-reads the settings that decide whether commits may be deferred.
pub fn reload() {
    NO_SYNC_STANDBYS.with(|c| c.set(crate::gucs::show_setting(c"synchronous_standby_names").trim().is_empty()));
}

/// Runs `commit` (CommitTransactionCommand) asynchronously when its
/// durability can be waited for here instead: `synchronous_commit` asks for
/// a local flush and no synchronous standby must confirm. The caller then
/// holds the replies (`Durable`).
pub fn commit_deferred<T>(index: usize, commit: impl FnOnce() -> T) -> T {
    use pg_sys::SyncCommitLevel::SYNCHRONOUS_COMMIT_OFF as OFF;
    // SAFETY: the worker's main thread owns these globals; the setting is
    // put back before anything else can read it.
    let level = unsafe { pg_sys::synchronous_commit };
    let defer = level > OFF as i32 && NO_SYNC_STANDBYS.with(Cell::get) && !LONE.with(Cell::get);
    shared::begin_commit(index);
    unsafe {
        if defer {
            pg_sys::synchronous_commit = OFF as i32;
        }
    }
    let out = commit();
    unsafe {
        pg_sys::synchronous_commit = level;
        shared::end_commit(index, pg_sys::XactLastCommitEnd);
    }
    out
}

/// One batch's held output: the clients it went to and, for each, where
/// the batch's bytes end in its output stream.
struct Held {
    lsn: u64,
    conns: Vec<(usize, u64, u64)>,
}

/// The worker's held replies, oldest first.
pub struct Durable {
    index: usize,
    queue: VecDeque<Held>,
    /// Flushed output of clients that were inside the running batch when
    /// it was found flushed (`release_outside`): let out after the batch.
    late: Vec<(usize, u64, u64)>,
    /// The open batch's hold: WAL position and clients marked so far.
    open: Option<Held>,
    seq: u64,
    flushed: u64,
}

impl Durable {
    pub fn new(index: usize) -> Durable {
        reload();
        Durable { index, queue: VecDeque::new(), late: Vec::new(), open: None, seq: 0, flushed: 0 }
    }

    /// A batch has committed and its output is about to be queued: decides
    /// whether that output must wait for a flush.
    pub fn open_batch(&mut self) {
        use pg_sys::SyncCommitLevel::SYNCHRONOUS_COMMIT_OFF as OFF;
        // SAFETY: reads of this process's globals and of the WAL position.
        let (level, own) = unsafe { (pg_sys::synchronous_commit, pg_sys::XactLastCommitEnd) };
        if level <= OFF as i32 {
            return; // appendfsync everysec or no: nothing waits
        }
        let mut lsn = own;
        if crate::gucs::workers() > 1 {
            lsn = lsn.max(shared::commits_seen(self.index));
        }
        if lsn <= self.flushed {
            return;
        }
        self.flushed = flushed();
        if lsn <= self.flushed {
            return;
        }
        if !shared::request_flush(self.index, lsn) {
            // No flusher: flush here, as a synchronous commit would have.
            unsafe { pg_sys::XLogFlush(lsn) };
            self.flushed = flushed();
            return;
        }
        self.seq += 1;
        self.open = Some(Held { lsn, conns: Vec::new() });
    }

    /// `conn` (at slab key `key`) is about to receive output of the open
    /// batch.
    pub fn mark(&mut self, key: usize, conn: &mut Conn) {
        if let Some(open) = &mut self.open {
            if conn.hold(self.seq) {
                open.conns.push((key, conn.session.id, 0));
            }
        }
    }

    /// The open batch's output is all queued.
    pub fn close_batch(&mut self, conns: &Slab<Conn>) {
        let Some(mut held) = self.open.take() else { return };
        for (key, _, end) in &mut held.conns {
            *end = conns[*key].queued_total();
        }
        self.queue.push_back(held);
    }

    pub fn waiting(&self) -> bool {
        !self.queue.is_empty() || !self.late.is_empty()
    }

    /// Lets out the held output whose WAL is flushed now, and sends it,
    /// oldest batch first. Without a flusher (it stopped), flushes first.
    ///
    /// Sending here, rather than with every connection's output after it,
    /// keeps replies in the order their batches ran across clients too: the
    /// output of a later batch (a read-only one needs no hold once the WAL
    /// is flushed) never reaches its client before earlier batches' output
    /// reaches theirs. A CLIENT LIST that shows a client blocked on a
    /// command late in its pipeline is then answered after the replies to
    /// the commands before it were sent, as in Redis.
    pub fn release(&mut self, conns: &mut Slab<Conn>) {
        for (key, id, end) in std::mem::take(&mut self.late) {
            if let Some(c) = release_one(conns, key, id, end) {
                c.flush();
            }
        }
        let Some(last) = self.queue.back().map(|h| h.lsn) else { return };
        self.flushed = flushed();
        if self.flushed < last && !shared::flusher_running() {
            unsafe { pg_sys::XLogFlush(last) };
            self.flushed = flushed();
        }
        while self.queue.front().is_some_and(|h| h.lsn <= self.flushed) {
            let held = self.queue.pop_front().expect("front");
            for (key, id, end) in held.conns {
                if let Some(c) = release_one(conns, key, id, end) {
                    c.flush();
                }
            }
        }
    }

    /// `release` while a batch runs: sends what is flushed now to the
    /// clients outside `batch`; the batch's own clients get theirs after
    /// it (their connections are in use).
    pub fn release_outside(&mut self, conns: &mut Slab<Conn>, batch: &foldhash::HashSet<usize>) {
        if self.queue.is_empty() {
            return;
        }
        self.flushed = flushed();
        while self.queue.front().is_some_and(|h| h.lsn <= self.flushed) {
            let held = self.queue.pop_front().expect("front");
            for (key, id, end) in held.conns {
                if batch.contains(&key) {
                    self.late.push((key, id, end));
                } else if let Some(c) = release_one(conns, key, id, end) {
                    c.flush();
                }
            }
        }
    }

    /// At shutdown: flushes and lets everything out.
    pub fn release_all(&mut self, conns: &mut Slab<Conn>) {
        if let Some(last) = self.queue.back().map(|h| h.lsn) {
            unsafe { pg_sys::XLogFlush(last) };
        }
        self.release(conns);
    }
}

/// Lets out a client's held output up to `end`, unless the client is gone
/// (its slot may have been reused: the id tells).
fn release_one(conns: &mut Slab<Conn>, key: usize, id: u64, end: u64) -> Option<&mut Conn> {
    let c = conns.get_mut(key).filter(|c| c.session.id == id)?;
    c.release(end);
    Some(c)
}
