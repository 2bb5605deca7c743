//! Group commit: every command of one loop iteration runs in one PostgreSQL
//! transaction, and no reply leaves before that transaction commits.
//!
//! Postgres invariants this module relies on:
//! - Only the worker's main thread calls into Postgres.
//! - `BackgroundWorker::transaction` catches nothing, so transactions are
//!   driven by hand: an ERROR is caught with `PgTryBuilder` (which calls
//!   `FlushErrorState`), then `AbortCurrentTransaction` /
//!   `RollbackAndReleaseCurrentSubTransaction` clean up locks, SPI and memory.
//! - A Postgres error in one command must not fail another client's command.
//!   The batch runs without subtransactions (they are not free: past 64
//!   writing subtransactions every snapshot in the cluster slows down). When a
//!   command raises an ERROR, the whole transaction is rolled back and the
//!   batch re-run from scratch with that command alone in a subtransaction.
//!   Replies from a rolled-back attempt are thrown away, so nothing a client
//!   sees comes from an aborted transaction.

use crate::cmd::{self, blocking::Waits, CommandSpec, Ctx};
use crate::error::CmdError;
use crate::session::{BlockRequest, Session};
use crate::store::{direct, Store};
use bytes::{Bytes, BytesMut};
use pgrx::pg_sys::{self, errcodes::PgSqlErrorCode, panic::CaughtError, PgTryBuilder};
use pgrx::spi::Spi;
use std::cell::Cell;
use foldhash::{HashSet, HashSetExt};
use std::panic::AssertUnwindSafe;

pub struct Job {
    pub conn: usize,
    pub argv: Vec<Bytes>,
    pub spec: Option<&'static CommandSpec>,
    /// The encoded reply, in the protocol the session had when it ran.
    pub out: BytesMut,
    /// Set when the command found nothing to pop and parks its client
    /// instead of replying (`cmd::blocking::block`). Per job, not per
    /// session: the client's earlier commands in the batch still answer.
    pub block: Option<BlockRequest>,
    /// A parked client's command run again because a key it waits on was
    /// written (`Session::serving`).
    pub serving: bool,
    /// Parked clients this command served (see `serve_ready`), in serving
    /// order, with their replies.
    pub served: Vec<(usize, BytesMut)>,
    /// Clients an earlier command of this batch parked and this one served
    /// (their jobs hold the replies), in serving order.
    pub woke: Vec<usize>,
    /// Not run: an earlier command of its client in the batch parked the
    /// client (served since or not: Redis runs what a blocked client sent
    /// after the blocking command once it is unblocked, after the
    /// commands of the event loop that unblocked it). The worker hands it
    /// back to the connection (`Conn::hand_back`).
    pub skipped: bool,
}

impl Job {
    pub fn new(conn: usize, argv: Vec<Bytes>, spec: Option<&'static CommandSpec>) -> Job {
        Job { conn, argv, spec, out: BytesMut::new(), block: None, serving: false, served: Vec::new(), woke: Vec::new(), skipped: false }
    }

    /// Forgets what an attempt that was rolled back produced.
    fn reset(&mut self) {
        self.out.clear();
        self.block = None;
        self.served.clear();
        self.woke.clear();
        self.skipped = false;
    }
}

/// Access to the sessions of the clients in a batch, and to the clients
/// parked before it.
pub trait Sessions {
    fn session(&mut self, conn: usize) -> &mut Session;

    /// The parked clients waiting on the key whose hash is `hash`
    /// (`shared::key_hash`), oldest first, each with that key and its
    /// command; none that hung up.
    fn waiting_on(&self, _hash: u64) -> Vec<(usize, Bytes, Vec<Bytes>)> {
        Vec::new()
    }

    /// Whether any client is parked.
    fn any_waiting(&self) -> bool {
        false
    }
}

fn describe(e: &CaughtError) -> String {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.message().to_string(),
        CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
    }
}

/// Runs `jobs` and fills in every reply. Returns how many times the batch
/// had to be re-run because a command raised a Postgres error.
pub fn run_batch<S: Sessions>(jobs: &mut [Job], sessions: &mut S) -> u64 {
    // Parked clients whose commands are jobs of this batch (a batch of
    // parked clients run again) are served by their own jobs, also when
    // the jobs run one by one below.
    let mut in_batch: HashSet<usize> = if sessions.any_waiting() { jobs.iter().map(|j| j.conn).collect() } else { HashSet::new() };
    run_jobs(jobs, sessions, &mut in_batch)
}

/// `run_batch`, with the parked clients none of these jobs may serve
/// (`Waiting::in_batch`).
fn run_jobs<S: Sessions>(jobs: &mut [Job], sessions: &mut S, in_batch: &mut HashSet<usize>) -> u64 {
    let need_tx = jobs.iter().any(|j| j.spec.is_some_and(|s| s.tx));
    // Session changes (SELECT, HELLO, AUTH) made by an attempt that is
    // rolled back must not survive it.
    let mut saved: Vec<(usize, Session)> = Vec::new();
    for j in jobs.iter() {
        if !saved.iter().any(|(c, _)| *c == j.conn) {
            saved.push((j.conn, sessions.session(j.conn).clone()));
        }
    }
    let mut isolate: HashSet<usize> = HashSet::new();
    let mut retries = 0;
    // New keys are inserted without a conflict check until one conflicts.
    let mut key_inserts = true;
    loop {
        match attempt(jobs, sessions, need_tx, &isolate, key_inserts, &*in_batch) {
            Ok(()) => return retries,
            Err(Failure::Command(i, _)) if i < jobs.len() && !isolate.contains(&i) => {
                isolate.insert(i);
            }
            Err(Failure::KeyCreated) => key_inserts = false,
            Err(Failure::Commit(_)) if jobs.len() > 1 => {
                // COMMIT failed (a deferred constraint, say) and cannot be
                // pinned on one command: run each command in a transaction
                // of its own, so only the guilty one fails.
                roll_back(jobs, sessions, &saved);
                for i in 0..jobs.len() {
                    jobs[i].reset();
                    if jobs[..i].iter().any(|j| j.conn == jobs[i].conn && (j.block.is_some() || j.skipped)) {
                        jobs[i].skipped = true;
                        continue;
                    }
                    retries += 1 + run_jobs(&mut jobs[i..i + 1], sessions, in_batch);
                    // Served and committed: not again by a later one.
                    in_batch.extend(jobs[i].served.iter().map(|(c, _)| *c));
                }
                return retries;
            }
            Err(Failure::Command(_, msg)) | Err(Failure::Commit(msg)) => {
                // Nothing left to isolate: the failure belongs to the
                // transaction itself (usually COMMIT). Every command fails
                // with it; none of their effects survived.
                roll_back(jobs, sessions, &saved);
                for j in jobs.iter_mut() {
                    j.reset();
                    let proto = sessions.session(j.conn).proto;
                    pgkv_resp::encode(&CmdError::Postgres(msg.clone()).into_frame(), proto, &mut j.out);
                }
                return retries;
            }
        }
        retries += 1;
        roll_back(jobs, sessions, &saved);
        for j in jobs.iter_mut() {
            j.reset();
        }
    }
}

/// Undoes what a rolled-back attempt did outside the database: the
/// sessions get back their state from before it (`saved`), and CLIENT
/// UNBLOCK forgets the clients its jobs parked (`execute_all`; a client
/// parked before the batch, a job run again for it, stays parked).
fn roll_back<S: Sessions>(jobs: &[Job], sessions: &mut S, saved: &[(usize, Session)]) {
    for j in jobs.iter().filter(|j| j.block.is_some() && !j.serving) {
        cmd::blocking::set_parked(sessions.session(j.conn).id, false);
    }
    for (conn, s) in saved {
        *sessions.session(*conn) = s.clone();
    }
}

enum Failure {
    /// The command at this index raised an ERROR outside a subtransaction.
    Command(usize, String),
    /// COMMIT itself failed.
    Commit(String),
    /// Another transaction created a key this batch's end inserted as new
    /// (`store::direct::insert_keys`): run the batch again, with the upsert.
    KeyCreated,
}

fn attempt<S: Sessions>(
    jobs: &mut [Job],
    sessions: &mut S,
    need_tx: bool,
    isolate: &HashSet<usize>,
    key_inserts: bool,
    in_batch: &HashSet<usize>,
) -> Result<(), Failure> {
    let current = Cell::new(usize::MAX);
    unsafe {
        if need_tx {
            pg_sys::SetCurrentStatementStartTimestamp();
            pg_sys::StartTransactionCommand();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
    }
    crate::store::begin();
    let run = AssertUnwindSafe(|| -> Result<(), String> {
        if need_tx {
            Spi::connect(|client| -> Result<(), String> {
                let store = Store::new(client);
                // New keys may be inserted without a conflict check, and
                // creations queued (`take_key_conflict` below turns this
                // off again).
                direct::allow_key_inserts(key_inserts);
                prefetch(store, jobs, sessions).map_err(|e| String::from_utf8_lossy(&e.text()).into_owned())?;
                execute_all(jobs, sessions, Some(store), isolate, &current, in_batch);
                // Deferred key-row writes; a failure here is the batch's,
                // not one command's (`current` is past the end).
                store.flush().map_err(|e| String::from_utf8_lossy(&e.text()).into_owned())
            })?;
        } else {
            execute_all(jobs, sessions, None, isolate, &current, in_batch);
        }
        Ok(())
    });
    let outcome = PgTryBuilder::new(run)
        .catch_others(|e| {
            if matches!(&e, CaughtError::PostgresError(r) | CaughtError::ErrorReport(r)
                if r.sql_error_code() == PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION)
            {
                direct::note_unique_violation();
            }
            Err(describe(&e))
        })
        .execute();
    let key_created = direct::take_key_conflict();
    match outcome {
        Ok(()) => {
            if need_tx {
                unsafe {
                    pg_sys::PopActiveSnapshot();
                }
                commit(true).map_err(Failure::Commit)?;
            }
            Ok(())
        }
        Err(msg) => {
            crate::store::begin();
            if need_tx {
                unsafe { pg_sys::AbortCurrentTransaction() };
            }
            if key_created {
                return Err(Failure::KeyCreated);
            }
            match current.get() {
                usize::MAX => Err(Failure::Commit(msg)),
                i => Err(Failure::Command(i, msg)),
            }
        }
    }
}

/// Commits the current transaction. A batch's commit (`deferred`) may be
/// asynchronous: its replies then wait for the flush (`durable`).
fn commit(deferred: bool) -> Result<(), String> {
    let run = || {
        PgTryBuilder::new(|| {
            unsafe { pg_sys::CommitTransactionCommand() };
            Ok(())
        })
        .catch_others(|e| Err(describe(&e)))
        .execute()
    };
    let committed = match crate::shared::worker_index().filter(|_| deferred) {
        Some(index) => super::durable::commit_deferred(index, run),
        None => run(),
    };
    match committed {
        Ok(()) => {
            // Lets autovacuum see the worker's inserts and deletes; it
            // rate-limits itself.
            unsafe { pg_sys::pgstat_report_stat(false) };
            Ok(())
        }
        Err(msg) => {
            unsafe { pg_sys::AbortCurrentTransaction() };
            Err(msg)
        }
    }
}

/// Before the batch runs: reads the keys of its read-only commands in one
/// statement per database, and locks the keys its writing commands touch
/// in one statement per database too, so a batch of INCRs costs one
/// locking read instead of one per command. The keys are locked in (db,
/// key) order: every worker locks in that same order, so with several
/// workers two batches may queue behind each other but never deadlock.
/// Blind writes (SET, MSET) lock their keys here too: an existing string
/// is then overwritten in place (`Store::set_string`), and with several
/// workers the upsert of the others at the end of the batch would lock
/// out of order.
fn prefetch<S: Sessions>(store: Store, jobs: &[Job], sessions: &mut S) -> Result<(), CmdError> {
    // (db, key, written, payload wanted), sorted and merged below: no tree
    // per database.
    let mut keys: Vec<(i16, Bytes, bool, bool)> = Vec::with_capacity(jobs.len());
    for j in jobs {
        let Some(spec) = j.spec.filter(|s| s.tx) else { continue };
        let session = sessions.session(j.conn);
        if session.role.is_some() {
            // Read as its role, when it runs (see `dispatch_as`).
            continue;
        }
        let db = session.db;
        hint_pops(spec, &j.argv, db);
        hint_members(spec, &j.argv, db);
        let write = spec.has_flag("write");
        let value = !overwrites_only(spec, &j.argv);
        keys.extend(spec.keys(&j.argv).into_iter().map(|k| (db, k.clone(), write, value)));
    }
    // A key both read and written is locked: writes sort first. Its payload
    // is wanted if any of the batch's commands on it may read it.
    keys.sort_unstable_by(|a, b| (a.0, &a.1, !a.2).cmp(&(b.0, &b.1, !b.2)));
    keys.dedup_by(|later, first| {
        let same = later.0 == first.0 && later.1 == first.1;
        if same {
            first.3 |= later.3;
        }
        same
    });
    // Databases in ascending order, keys in byte order (bytea's order), and
    // the statement locks them in the order given: the (db, key) order.
    let (writes, reads): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| k.2);
    for (db, keys, values) in by_db(writes) {
        store.lock_prefetch(db, &keys, &values)?;
    }
    for (db, keys, _) in by_db(reads) {
        store.prefetch(db, &keys)?;
    }
    Ok(())
}

/// Whether the command only overwrites its keys' string payloads, never
/// reading them: SET (without GET), SETEX, PSETEX, MSET and MSETNX. A key
/// the batch only overwrites is locked without copying its payload; should
/// a command read it after all, the payload is fetched then (`cache::get`).
fn overwrites_only(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    match spec.name.as_str() {
        "set" => !argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")),
        "setex" | "psetex" | "mset" | "msetnx" => true,
        _ => false,
    }
}

/// Sorted (db, key, _, payload wanted) entries as one key list (and flag
/// list) per database.
fn by_db(keys: Vec<(i16, Bytes, bool, bool)>) -> Vec<(i16, Vec<Bytes>, Vec<bool>)> {
    let mut out: Vec<(i16, Vec<Bytes>, Vec<bool>)> = Vec::new();
    for (db, key, _, value) in keys {
        match out.last_mut() {
            Some((d, list, values)) if *d == db => {
                list.push(key);
                values.push(value);
            }
            _ => out.push((db, vec![key], vec![value])),
        }
    }
    out
}

/// Tells the store how many elements the batch's LPOP/RPOP commands will
/// take from each list, so the first pop reads them all ahead.
fn hint_pops(spec: &CommandSpec, argv: &[Bytes], db: i16) {
    let left = match spec.name.as_str() {
        "lpop" => true,
        "rpop" => false,
        _ => return,
    };
    let count = match argv.get(2) {
        None => 1,
        // Parsed as the command parses it; a count it refuses pops nothing.
        Some(c) => match pgkv_resp::num::parse_i64(c) {
            Some(n) if n > 0 => n,
            _ => return,
        },
    };
    if let Some(key) = argv.get(1) {
        crate::store::hint_pops(db, key, left, count);
    }
}

/// Tells the store which members the batch's HSET/HMSET/SADD/ZADD/ZINCRBY
/// commands write, so the first of them reads them all ahead (see
/// `store::members`). A hint only says what to read: a wrong one (a
/// malformed command) costs a probe, nothing else.
fn hint_members(spec: &CommandSpec, argv: &[Bytes], db: i16) {
    let (Some(key), Some(rest)) = (argv.get(1), argv.get(2..)) else { return };
    match spec.name.as_str() {
        "hset" | "hmset" => crate::store::hint_members(db, key, rest.iter().step_by(2).cloned()),
        "sadd" => crate::store::hint_members(db, key, rest.iter().cloned()),
        "zadd" => {
            let options = ["nx", "xx", "gt", "lt", "ch", "incr"];
            let flags = rest.iter().take_while(|a| options.iter().any(|o| a.eq_ignore_ascii_case(o.as_bytes()))).count();
            crate::store::hint_members(db, key, rest[flags..].iter().skip(1).step_by(2).cloned());
        }
        "zincrby" => crate::store::hint_members(db, key, rest.get(1).into_iter().cloned()),
        _ => {}
    }
}

fn execute_all<S: Sessions>(
    jobs: &mut [Job],
    sessions: &mut S,
    store: Option<Store>,
    isolate: &HashSet<usize>,
    current: &Cell<usize>,
    in_batch: &HashSet<usize>,
) {
    let mut waiting = Waiting { in_batch, blocked_here: Vec::new(), served: HashSet::new() };
    // Clients a job of this batch parked: their later jobs are skipped.
    let mut parked: HashSet<usize> = HashSet::new();
    for i in 0..jobs.len() {
        if parked.contains(&jobs[i].conn) {
            jobs[i].skipped = true;
            continue;
        }
        current.set(i);
        cmd::pubsub::set_current_job(i);
        super::busy::between_commands();
        let mark = crate::shared::touch_mark();
        let isolated = isolate.contains(&i);
        let job = &mut jobs[i];
        (job.out, job.block) = run_one(sessions.session(job.conn), store, &job.argv, isolated, job.serving);
        if job.block.is_some() {
            waiting.blocked_here.push(i);
            parked.insert(job.conn);
            // Blocked from here on, for a CLIENT UNBLOCK later in the batch.
            cmd::blocking::set_parked(sessions.session(job.conn).id, true);
        }
        if let Some(store) = store.filter(|_| sessions.any_waiting() || !waiting.blocked_here.is_empty()) {
            serve_ready(jobs, i, sessions, store, isolated, mark, &mut waiting);
        }
    }
    current.set(usize::MAX);
    cmd::pubsub::set_current_job(usize::MAX);
}

/// Runs one command for `session` (alone in a subtransaction when
/// `isolated`): its encoded reply, and the request to park its client
/// when it found nothing to pop.
fn run_one(session: &mut Session, store: Option<Store>, argv: &[Bytes], isolated: bool, serving: bool) -> (BytesMut, Option<BlockRequest>) {
    // Set for every command: an attempt that was rolled back may have
    // left either behind.
    session.serving = serving;
    session.block = None;
    let frame = match (isolated, store) {
        (true, Some(store)) => {
            // The subtransaction must hold exactly this command's writes:
            // write back what came before, and everything it changed.
            if let Err(e) = store.flush_and_forget() {
                e.into_frame()
            } else {
                // Its own new keys go by statement: a key created meanwhile
                // must fail this command's subtransaction as a conflict the
                // command itself handles, not as a unique violation.
                let inserts = direct::key_inserts_allowed();
                direct::allow_key_inserts(false);
                let frame = in_subtransaction(|| {
                    let frame = dispatch_as(session, Some(store), argv);
                    match store.flush() {
                        Ok(()) => frame,
                        Err(e) => e.into_frame(),
                    }
                });
                direct::allow_key_inserts(inserts);
                crate::store::begin();
                frame
            }
        }
        (true, None) => in_subtransaction(|| dispatch_as(session, store, argv)),
        (false, _) => dispatch_as(session, store, argv),
    };
    session.serving = false;
    let mut out = BytesMut::new();
    pgkv_resp::encode(&frame, session.proto, &mut out);
    (out, session.block.take())
}

/// The clients a batch may serve: parked before it, or by its own
/// earlier commands.
struct Waiting<'a> {
    /// Clients with a job in the batch, whose job serves them (and, when
    /// the jobs run one by one, those an earlier one served).
    in_batch: &'a HashSet<usize>,
    /// Jobs that parked their client, not served yet.
    blocked_here: Vec<usize>,
    /// Clients parked before the batch and served in it.
    served: HashSet<usize>,
}

/// Serves the clients waiting on the keys the command at `i` wrote, right
/// after it, as Redis's `handleClientsBlockedOnKeys` does after every
/// command (a MULTI/EXEC or a script counts as one): key by key in the
/// order they were written, each key's clients in the order they blocked
/// (those parked before the batch, then those its commands parked), each
/// served from that key alone. Keys a served command writes in turn
/// (BLMOVE's destination) are served next. A command that still finds
/// nothing (another client took the data, the key holds another type)
/// leaves its client waiting. Served commands belong to command `i`: a
/// Postgres error in one re-runs the batch with `i` isolated, and then
/// each of them runs in a subtransaction of its own.
fn serve_ready<S: Sessions>(jobs: &mut [Job], i: usize, sessions: &mut S, store: Store, isolated: bool, mut mark: usize, waiting: &mut Waiting<'_>) {
    loop {
        let (touched, end) = (crate::shared::ready_since(mark), crate::shared::touch_mark());
        if touched.is_empty() {
            return;
        }
        mark = end;
        let mut seen: HashSet<u64> = HashSet::new();
        for h in touched {
            if !seen.insert(h) {
                continue;
            }
            // Once a list (or sorted set) waiter finds nothing, the others
            // of its kind would too: nothing has changed since.
            let mut exhausted: Vec<Waits> = Vec::new();
            for (conn, key, argv) in sessions.waiting_on(h) {
                if waiting.in_batch.contains(&conn) || waiting.served.contains(&conn) {
                    continue;
                }
                let session = sessions.session(conn);
                let Some((argv, waits)) = cmd::blocking::for_key(&argv, &key) else { continue };
                if exhausted.contains(&waits) || cmd::blocking::unblock_pending(session.id) {
                    continue;
                }
                match run_one(session, Some(store), &argv, isolated, true) {
                    (out, None) => {
                        waiting.served.insert(conn);
                        jobs[i].served.push((conn, out));
                    }
                    _ => exhausted.push(waits),
                }
            }
            let mut k = 0;
            while k < waiting.blocked_here.len() {
                let j = waiting.blocked_here[k];
                let session = sessions.session(jobs[j].conn);
                let (db, id) = (session.db, session.id);
                if cmd::blocking::unblock_pending(id) {
                    k += 1;
                    continue;
                }
                let key = jobs[j].block.as_ref().and_then(|b| b.keys.iter().find(|key| crate::shared::key_hash(db, key) == h));
                let Some((argv, waits)) = key.and_then(|key| cmd::blocking::for_key(&jobs[j].argv, key)) else {
                    k += 1;
                    continue;
                };
                if exhausted.contains(&waits) {
                    k += 1;
                    continue;
                }
                // Still waiting, it keeps its first request (every key, the
                // deadline of its first run).
                match run_one(session, Some(store), &argv, isolated, true) {
                    (out, None) => {
                        jobs[j].out = out;
                        jobs[j].block = None;
                        waiting.blocked_here.remove(k);
                        cmd::blocking::set_parked(id, false);
                        let conn = jobs[j].conn;
                        jobs[i].woke.push(conn);
                    }
                    _ => {
                        exhausted.push(waits);
                        k += 1;
                    }
                }
            }
        }
    }
}

/// Runs one command as its client's PostgreSQL role, when it logged in as
/// one (`pgkv.auth = 'postgres'`): the role's privileges on the kv tables
/// decide what the command may do. The batch's key-row cache is written
/// back and emptied around it, so earlier commands' writes stay the
/// worker's, this command's are checked as the role, and it reads nothing
/// the worker read. An ERROR inside needs no cleanup
/// here: aborting the (sub)transaction restores the user.
fn dispatch_as(session: &mut Session, store: Option<Store>, argv: &[Bytes]) -> pgkv_resp::Frame {
    let (Some(role), Some(store)) = (session.role, store) else {
        return cmd::dispatch(&mut Ctx::new(session, store), argv);
    };
    // Nothing read or cached as the worker may serve this command: its
    // lookups must run, and be checked, as the role.
    if let Err(e) = store.flush_and_forget() {
        return e.into_frame();
    }
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: plain backend globals, restored below or by the abort.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(role, saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    crate::store::set_worker_user(Some((saved_user, saved_context)));
    let mut frame = cmd::dispatch(&mut Ctx::new(session, Some(store)), argv);
    if let Err(e) = store.flush_and_forget() {
        frame = e.into_frame();
    }
    crate::store::set_worker_user(None);
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    frame
}

/// Runs `f` in its own subtransaction; a Postgres error rolls back only
/// that subtransaction and becomes this command's error reply. A deadlock
/// or serialization failure is tried again (twice): with several workers,
/// two batches can lock keys in opposite orders, and Postgres resolves
/// that by failing one of them. The memory-context and resource-owner
/// dance is PL/pgSQL's (pl_exec.c).
fn in_subtransaction(mut f: impl FnMut() -> pgkv_resp::Frame) -> pgkv_resp::Frame {
    let mut attempt = 0;
    let mark = crate::shared::touch_mark();
    loop {
        attempt += 1;
        unsafe {
            let old_cxt = pg_sys::CurrentMemoryContext;
            let old_owner = pg_sys::CurrentResourceOwner;
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            pg_sys::CurrentMemoryContext = old_cxt;
            let result = PgTryBuilder::new(AssertUnwindSafe(|| Ok(f())))
                .catch_others(|e| {
                    let retryable = match &e {
                        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => matches!(
                            r.sql_error_code(),
                            PgSqlErrorCode::ERRCODE_T_R_DEADLOCK_DETECTED | PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE
                        ),
                        CaughtError::RustPanic { .. } => false,
                    };
                    Err((retryable, describe(&e)))
                })
                .execute();
            pg_sys::CurrentMemoryContext = old_cxt;
            match result {
                Ok(frame) => {
                    pg_sys::ReleaseCurrentSubTransaction();
                    pg_sys::CurrentMemoryContext = old_cxt;
                    pg_sys::CurrentResourceOwner = old_owner;
                    return frame;
                }
                Err((retryable, msg)) => {
                    pg_sys::RollbackAndReleaseCurrentSubTransaction();
                    pg_sys::CurrentMemoryContext = old_cxt;
                    pg_sys::CurrentResourceOwner = old_owner;
                    crate::store::begin();
                    // What the rolled-back command reported never happened.
                    crate::cmd::notify::discard();
                    crate::shared::untouch(mark);
                    if !(retryable && attempt < 3) {
                        return CmdError::Postgres(msg).into_frame();
                    }
                }
            }
        }
    }
}

/// Runs background work (active expiry) in a transaction of its own.
pub fn run_maintenance<T>(f: impl FnOnce(Store) -> Result<T, CmdError>) -> Result<T, String> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let run = AssertUnwindSafe(|| Spi::connect(|client| f(Store::new(client))).map_err(|e| String::from_utf8_lossy(&e.text()).into_owned()));
    match PgTryBuilder::new(run).catch_others(|e| Err(describe(&e))).execute() {
        Ok(v) => {
            unsafe { pg_sys::PopActiveSnapshot() };
            commit(false)?;
            Ok(v)
        }
        Err(msg) => {
            unsafe { pg_sys::AbortCurrentTransaction() };
            Err(msg)
        }
    }
}
