//! The RESP background worker: registration, start-up, and the event loop.
//!
//! One loop iteration: sleep in the WaitEventSet; read every ready socket;
//! parse every complete command; run them all in one transaction
//! (`xact::run_batch`); commit; only then queue and write the replies.

mod blocked;
mod busy;
mod conn;
mod durable;
mod wait;
mod xact;

use crate::ffi::notify;
use crate::{cmd, gucs, shared, stats};
use blocked::Blocked;
use bytes::Bytes;
use conn::Conn;
use pgkv_resp::Frame;
use foldhash::{HashMap, HashMapExt};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use slab::Slab;
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use xact::{Job, Sessions};

/// Registers `pgkv.workers` workers. Only possible while the postmaster
/// loads `shared_preload_libraries`.
pub fn register() {
    for i in 0..gucs::workers() {
        BackgroundWorkerBuilder::new(&format!("pgkv worker {i}"))
            .set_type("pgkv")
            .set_library("pgkv")
            .set_function("pgkv_worker_main")
            .set_argument(Some(pg_sys::Datum::from(i as i64)))
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(1)))
            .load();
    }
    if gucs::workers() > 0 {
        durable::register();
    }
}

/// How often the active expiry cycle runs (Redis's hz = 10).
const EXPIRE_TICK: Duration = Duration::from_millis(100);
/// Most expired keys removed per tick, so a mass expiry never stalls clients.
const EXPIRE_BATCH: i64 = 200;
/// Most member rows of deleted collections freed per tick.
const SWEEP_BUDGET: i32 = 5000;
const LISTENER_BASE: usize = usize::MAX / 2;

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pgkv_worker_main(arg: pg_sys::Datum) {
    let index = arg.value() as u32;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    if !wait_for_extension(&database) {
        return;
    }
    apply_session_settings();
    stats::with(|r| {
        r.worker = Some(index);
        r.port = gucs::port();
    });
    apply_stored_config(index);
    raise_fd_limit();
    keep_freed_memory();
    crate::store::prefer_huge_pages();
    shared::register_worker(index as usize);
    // Subscriptions a crashed predecessor published are gone with its
    // clients; NOTIFY on `pgkv` brings other processes' messages.
    if let Err(e) = xact::run_maintenance(|store| {
        store.clear_subscriptions(index as i32)?;
        notify::listen(cmd::pubsub::NOTIFY_CHANNEL);
        Ok(())
    }) {
        warning!("pgkv worker {index}: could not listen for messages: {e}");
    }
    let mut server = Server::new(index);
    server.bind();
    log!("pgkv worker {index}: serving RESP on {:?} port {}", gucs::listen_addresses(), gucs::port());
    server.run();
    shared::unregister_worker(index as usize);
    log!("pgkv worker {index}: shutting down");
    // Exit non-zero so that a worker stopped by pg_terminate_backend() is
    // restarted; at server shutdown the postmaster restarts nothing.
    unsafe { pg_sys::proc_exit(1) };
}

/// Waits, logging once, until `CREATE EXTENSION pgkv` has run. Returns false
/// when told to stop first.
fn wait_for_extension(database: &str) -> bool {
    let mut logged = false;
    loop {
        let installed = BackgroundWorker::transaction(|| {
            Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgkv')")
                .ok()
                .flatten()
                .unwrap_or(false)
        });
        if installed {
            return true;
        }
        if !logged {
            log!("pgkv: waiting for CREATE EXTENSION pgkv in database \"{database}\"");
            logged = true;
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
            return false;
        }
        if BackgroundWorker::sighup_received() {
            reload_config();
        }
    }
}

fn reload_config() {
    unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    apply_session_settings();
    durable::reload();
}

/// Every client is a socket: lift the soft open-files limit to the hard
/// one (often 1024 → 1M), as Redis does for maxclients.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Every batch's executor contexts take blocks of 8 KB to 8 MB from malloc
/// and give them back at the batch's end. With glibc's defaults the heap
/// then shrinks and grows again batch after batch (`brk`, and the page
/// faults of the fresh pages): 6–7 % of the worker under SET at `-c 50`.
/// Keep up to 64 MB of freed memory for the next batch, and serve blocks up
/// to 32 MB from the heap rather than from a fresh mapping each time.
/// Memory a rare larger batch used above that goes back to the system.
#[cfg(target_env = "gnu")]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; an option glibc
    // does not know is refused with 0.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TOP_PAD, 1 << 20);
    }
}

#[cfg(not(target_env = "gnu"))]
fn keep_freed_memory() {}

/// CONFIG SET values with a Postgres meaning, as another worker or an
/// earlier run stored them.
fn apply_stored_config(index: u32) {
    match xact::run_maintenance(|store| store.config_all()) {
        Ok(all) => {
            if let Some((_, v)) = all.iter().find(|(n, _)| n == "appendfsync") {
                gucs::set_session(c"synchronous_commit", if v == "always" { "on" } else { "off" });
            }
        }
        Err(e) => warning!("pgkv worker {index}: could not read kv.config: {e}"),
    }
}

/// Settings of the worker's own transactions.
fn apply_session_settings() {
    let lock_timeout = std::ffi::CString::new(gucs::LOCK_TIMEOUT_MS.get().to_string()).expect("digits");
    unsafe {
        pg_sys::SetConfigOption(
            c"lock_timeout".as_ptr(),
            lock_timeout.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        // Plans are kept for the worker's life, and a generic plan made
        // while kv.keys was tiny could be a sequential scan forever after.
        // Every worker statement is written for an index: say so.
        pg_sys::SetConfigOption(
            c"enable_seqscan".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        // Likewise a bitmap scan: it loses the index's order, so a range
        // read (LRANGE, HGETALL, ZRANGE) planned while its table looked
        // tiny became a bitmap scan plus a sort, and stayed one after the
        // table grew (half of LRANGE_100's time).
        pg_sys::SetConfigOption(
            c"enable_bitmapscan".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        // Every statement is planned once and its generic plan kept: left
        // to choose, the plan cache re-plans a statement on every run when
        // a custom plan looks cheaper than the generic one, as it does for
        // a range such as LRANGE's "pos BETWEEN $2 AND $3" (a quarter of
        // the worker's time under LRANGE_100 went to planning).
        pg_sys::SetConfigOption(
            c"plan_cache_mode".as_ptr(),
            c"force_generic_plan".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        // Two workers inserting the same new keys in different orders wait
        // on each other; find such a deadlock well before lock_timeout, so
        // the batch re-runs the command instead of failing it.
        pg_sys::SetConfigOption(
            c"deadlock_timeout".as_ptr(),
            c"100ms".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        pg_sys::SetConfigOption(
            c"application_name".as_ptr(),
            c"pgkv".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
    }
}

struct Server {
    index: u32,
    poll: Poll,
    listeners: Vec<TcpListener>,
    bound: Option<(Vec<String>, u16)>,
    conns: Slab<Conn>,
    next_client_id: u64,
    client_id_step: u64,
    next_expire: Instant,
    /// Client id -> connection key.
    ids: HashMap<u64, usize>,
    blocked: Blocked,
    /// Clients unparked since the last batch, in that order: the next
    /// batch takes their commands first, as Redis runs what unblocked
    /// clients sent (`processUnblockedClients`) before reading anyone's
    /// new input.
    unblocked: Vec<usize>,
    ticks: u64,
    /// Replies waiting for their commit to reach disk.
    durable: durable::Durable,
}

struct ConnSessions<'a> {
    conns: &'a mut Slab<Conn>,
    blocked: &'a Blocked,
}

impl Sessions for ConnSessions<'_> {
    fn session(&mut self, conn: usize) -> &mut crate::session::Session {
        &mut self.conns[conn].session
    }

    fn waiting_on(&self, hash: u64) -> Vec<(usize, Bytes, Vec<Bytes>)> {
        let present = |c: usize| self.conns.get(c).is_some_and(|c| !(c.broken || c.eof || c.closing));
        let waiting = self.blocked.waiting_on(hash).into_iter().filter(|(c, _)| present(*c));
        waiting.filter_map(|(c, key)| Some((c, key, self.blocked.get(c)?.argv.clone()))).collect()
    }

    fn any_waiting(&self) -> bool {
        self.blocked.len() > 0
    }
}

impl Server {
    fn new(index: u32) -> Server {
        let workers = gucs::workers().max(1) as u64;
        Server {
            index,
            poll: Poll::new().expect("epoll_create"),
            listeners: Vec::new(),
            bound: None,
            conns: Slab::new(),
            // Client ids are unique across workers: worker i hands out i+1, i+1+n, ...
            next_client_id: index as u64 + 1,
            client_id_step: workers,
            next_expire: Instant::now(),
            ids: HashMap::new(),
            blocked: Blocked::default(),
            unblocked: Vec::new(),
            ticks: 0,
            durable: durable::Durable::new(index as usize),
        }
    }

    /// Binds `pgkv.listen_addresses:pgkv.port` with SO_REUSEPORT, so every
    /// worker accepts on the same port. Rebinds when the settings changed.
    fn bind(&mut self) {
        let want = (gucs::listen_addresses(), gucs::port());
        if self.bound.as_ref() == Some(&want) {
            return;
        }
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        for host in &want.0 {
            let host = if host == "*" { "0.0.0.0" } else { host.as_str() };
            let addrs: Vec<SocketAddr> = match (host, want.1).to_socket_addrs() {
                Ok(a) => a.collect(),
                Err(e) => {
                    warning!("pgkv: cannot resolve listen address \"{host}\": {e}");
                    continue;
                }
            };
            for addr in addrs {
                match listen(addr) {
                    Ok(mut l) => {
                        let token = Token(LISTENER_BASE + self.listeners.len());
                        self.poll.registry().register(&mut l, token, Interest::READABLE).expect("register listener");
                        self.listeners.push(l);
                    }
                    Err(e) => warning!("pgkv: could not listen on {addr}: {e}"),
                }
            }
        }
        stats::with(|r| r.port = want.1);
        self.bound = Some(want);
    }

    fn run(&mut self) {
        let mut waitset = wait::WaitSet::new(self.poll.as_raw_fd());
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.has_pending_input() || self.blocked.has_recheck() {
                0
            } else {
                // Rounded up: the last fraction of a millisecond before the
                // tick would otherwise be a timeout of 0, and the loop would
                // spin through it (about 1 % of a core while idle).
                let mut t = self.next_expire.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000) as i64;
                if let Some(d) = self.blocked.next_deadline() {
                    t = t.min((d - cmd::now_ms()).max(0));
                }
                if self.durable.waiting() {
                    // The flusher sets the latch; this is only a backstop.
                    t = t.min(50);
                }
                t
            };
            waitset.wait(timeout);
            check_for_interrupts!();
            if BackgroundWorker::sigterm_received() {
                break;
            }
            if BackgroundWorker::sighup_received() {
                reload_config();
                apply_stored_config(self.index);
                self.bind();
            }
            if notify::pending() {
                self.receive_messages();
            }
            self.poll_io(&mut events);
            self.serve_batch();
            self.serve_blocked();
            self.time_out_blocked();
            self.durable.release(&mut self.conns);
            self.flush_and_reap();
            if Instant::now() >= self.next_expire {
                self.close_idle();
                self.expire_cycle();
                self.next_expire = Instant::now() + EXPIRE_TICK;
            }
        }
        self.durable.release_all(&mut self.conns);
        for (_, c) in self.conns.iter_mut() {
            c.flush();
        }
    }

    /// No other client has anything for a batch: no input buffered or
    /// announced, and no new event in epoll (looked at without taking it;
    /// a write-readiness event counts too, which only errs towards the
    /// hand-off).
    fn idle(&self) -> bool {
        if self.has_pending_input() {
            return false;
        }
        let mut fd = libc::pollfd { fd: self.poll.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, no timeout.
        unsafe { libc::poll(&mut fd, 1, 0) == 0 }
    }

    fn has_pending_input(&self) -> bool {
        self.conns.iter().any(|(_, c)| c.readable || (c.has_buffered_input() && !c.drained))
    }

    /// Drains mio without blocking: accepts, reads and writes until every
    /// source would block (mio is edge-triggered).
    fn poll_io(&mut self, events: &mut Events) {
        if self.poll.poll(events, Some(Duration::ZERO)).is_err() {
            return;
        }
        for ev in events.iter() {
            let t = ev.token().0;
            if t >= LISTENER_BASE {
                self.accept(t - LISTENER_BASE);
                continue;
            }
            if let Some(c) = self.conns.get_mut(t) {
                c.on_event(ev);
            }
        }
        for (_, c) in self.conns.iter_mut() {
            c.fill();
        }
    }

    fn accept(&mut self, listener: usize) {
        loop {
            let (mut stream, peer): (TcpStream, SocketAddr) = match self.listeners[listener].accept() {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warning!("pgkv: accept failed: {e}");
                    return;
                }
            };
            if let Some(refusal) = refuse(&peer, self.conns.len()) {
                // Best effort, as Redis: one write, then close.
                let _ = std::io::Write::write(&mut stream, refusal);
                stats::with(|r| r.rejected_connections += 1);
                continue;
            }
            let id = self.next_client_id;
            self.next_client_id += self.client_id_step;
            let authenticated = !gucs::auth_required();
            let entry = self.conns.vacant_entry();
            let mut conn = Conn::new(stream, id, authenticated);
            if self.poll.registry().register(conn.stream(), Token(entry.key()), Interest::READABLE | Interest::WRITABLE).is_err() {
                continue;
            }
            self.ids.insert(id, entry.key());
            entry.insert(conn);
            stats::with(|r| r.total_connections_received += 1);
        }
    }

    /// Parses every complete command from every client and runs them as one
    /// batch: one transaction, one commit, then the replies.
    fn serve_batch(&mut self) {
        let auth_required = gucs::auth_required();
        let mut jobs: Vec<Job> = Vec::new();
        let mut order = std::mem::take(&mut self.unblocked);
        if !order.is_empty() {
            let mut first: foldhash::HashSet<usize> = foldhash::HashSetExt::new();
            order.retain(|k| first.insert(*k));
            order.extend(self.conns.iter().map(|(k, _)| k).filter(|k| !first.contains(k)));
        } else {
            order.extend(self.conns.iter().map(|(k, _)| k));
        }
        for key in order {
            let Some(c) = self.conns.get_mut(key) else { continue };
            c.drained = false;
            if c.parked && c.eof {
                // A blocked client that hung up has nothing left to hear.
                c.broken = true;
                continue;
            }
            let mut taken = 0;
            while c.accepts_commands() && taken < conn::COMMANDS_PER_BATCH {
                let Some(argv) = c.next_command(auth_required) else { break };
                taken += 1;
                let spec = cmd::resolve(&argv).ok();
                let quit = cmd::eq_ic(&argv[0], "quit");
                jobs.push(Job::new(key, argv, spec));
                // Redis stops reading a client after QUIT, and reads an
                // unauthenticated client one command at a time (AUTH
                // changes how the next request may be parsed). Commands
                // after a blocking one are taken too: if it parks the
                // client, the batch skips them and hands them back
                // (`Conn::hand_back`).
                if quit || (auth_required && !c.session.authenticated) {
                    break;
                }
            }
        }
        if !jobs.is_empty() {
            // As CLIENT LIST in the batch sees them: a client's commands up
            // to its first blocking one, which may park it.
            let mut stopped: foldhash::HashSet<usize> = foldhash::HashSetExt::new();
            for j in &jobs {
                if let Some(spec) = j.spec.filter(|_| !stopped.contains(&j.conn)) {
                    self.conns[j.conn].last_cmd = spec.name.as_str();
                    if spec.has_flag("blocking") {
                        stopped.insert(j.conn);
                    }
                }
            }
            if jobs.iter().any(|j| j.spec.is_some_and(|s| s.name == "client|list" || s.name == "client|info")) {
                cmd::clients::set_snapshot(self.conns.iter().map(|(_, c)| c.info()).collect());
            }
            self.run_jobs(jobs);
        }
        for (_, c) in self.conns.iter_mut() {
            if c.protocol_error_due() {
                let err = c.protocol_error.take().unwrap_or_default();
                c.push_reply(&Frame::Error(err.into()), c.session.proto);
                c.closing = true;
            }
        }
    }

    /// Runs jobs as one batch and hands out what it produced, in order: for
    /// each job, the messages its command published, then its reply. A
    /// job whose command found nothing to pop parks its client instead.
    fn run_jobs(&mut self, mut jobs: Vec<Job>) {
        // A script that runs past lua-time-limit answers other clients BUSY
        // from inside the batch (see `busy`).
        // Alone: one client's commands, nothing else to read, and no other
        // client's replies held for a flush. With replies held (50 clients
        // waiting on the flusher), a synchronous commit here would stall
        // the worker on its own fsync while their flush completes.
        let lone = jobs.iter().all(|j| j.conn == jobs[0].conn) && !self.durable.waiting() && self.idle();
        durable::commit_synchronously(lone);
        let busy = busy::arm(self, jobs.iter().map(|j| j.conn).collect());
        let retries = xact::run_batch(&mut jobs, &mut ConnSessions { conns: &mut self.conns, blocked: &self.blocked });
        drop(busy);
        self.durable.open_batch();
        let skipped = jobs.iter().filter(|j| j.skipped).count();
        stats::with(|r| {
            r.batches += 1;
            r.batch_retries += retries;
            r.total_commands_processed += (jobs.len() - skipped) as u64;
        });
        // Commands after one that parked their client, handed back unrun.
        let mut handed_back: HashMap<usize, Vec<Vec<Bytes>>> = HashMap::new();
        self.sync_subscriptions();
        let mut outbox = cmd::pubsub::take_outbox().into_iter().peekable();
        for (i, mut job) in jobs.into_iter().enumerate() {
            while let Some(m) = outbox.next_if(|m| m.job <= i) {
                self.deliver(m.client, &m.frame);
            }
            if job.skipped {
                handed_back.entry(job.conn).or_default().push(job.argv);
                continue;
            }
            if let Some(spec) = job.spec {
                self.conns[job.conn].last_cmd = spec.name.as_str();
            }
            let block = job.block.take();
            if block.is_none() {
                self.unpark(job.conn);
            }
            let c = &mut self.conns[job.conn];
            match block {
                Some(request) => {
                    if !self.blocked.is_parked(job.conn) {
                        let (db, id) = (c.session.db, c.session.id);
                        c.parked = true;
                        self.blocked.park(job.conn, db, job.argv, request);
                        cmd::blocking::set_parked(id, true);
                    }
                }
                None => {
                    self.durable.mark(job.conn, c);
                    c.outbuf.extend_from_slice(&job.out);
                    if c.session.close_after_reply {
                        c.closing = true;
                    }
                    c.check_output_limit();
                }
            }
            // Clients an earlier command parked and this one served run
            // what they sent after it first in the next batch, as those
            // parked before the batch do (`unpark`).
            self.unblocked.extend(job.woke);
            // The parked clients this command served.
            for (key, out) in job.served {
                self.unpark(key);
                let c = &mut self.conns[key];
                self.durable.mark(key, c);
                c.outbuf.extend_from_slice(&out);
                c.check_output_limit();
            }
        }
        for m in outbox {
            self.deliver(m.client, &m.frame);
        }
        for (conn, argvs) in handed_back {
            self.conns[conn].hand_back(argvs);
        }
        for (id, error) in cmd::blocking::take_unblock_requests() {
            let Some(&key) = self.ids.get(&id) else { continue };
            if let Some(p) = self.unpark(key) {
                let c = &mut self.conns[key];
                let reply = if error { Frame::error("UNBLOCKED client unblocked via CLIENT UNBLOCK") } else { p.request.on_timeout };
                self.durable.mark(key, c);
                c.push_reply(&reply, c.session.proto);
            }
        }
        self.durable.close_batch(&self.conns);
        self.publish_blocked_count();
    }

    /// Queues a pub/sub message for a local client, enforcing the pubsub
    /// output buffer limit.
    fn deliver(&mut self, client: u64, frame: &Frame) {
        let Some(&key) = self.ids.get(&client) else { return };
        let Some(c) = self.conns.get_mut(key) else { return };
        if c.broken {
            return;
        }
        self.durable.mark(key, c);
        c.push_reply(frame, c.session.proto);
        c.check_output_limit();
    }

    /// Writes this worker's changed subscription counts to kv.subscriptions,
    /// so publishers elsewhere count these clients.
    fn sync_subscriptions(&mut self) {
        let dirty = cmd::pubsub::take_dirty();
        if dirty.is_empty() {
            return;
        }
        let me = self.index as i32;
        let result = xact::run_maintenance(|store| {
            for (kind, channel, clients) in &dirty {
                store.set_subscription(me, *kind, channel, *clients)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            warning!("pgkv worker {}: could not publish subscriptions: {e}", self.index);
        }
    }

    /// Messages other processes published, delivered in the order their
    /// transactions committed.
    fn receive_messages(&mut self) {
        use cmd::pubsub::Received;
        let me = self.index as i32;
        let received: Vec<Received> = notify::receive().iter().filter_map(|p| cmd::pubsub::decode(p, me)).collect();
        let spilled: Vec<i64> = received.iter().filter_map(|r| if let Received::Spilled { id, .. } = r { Some(*id) } else { None }).collect();
        let mut bodies: HashMap<i64, (Bytes, Bytes)> = HashMap::new();
        if !spilled.is_empty() {
            match xact::run_maintenance(|store| {
                let mut out = HashMap::new();
                for id in &spilled {
                    if let Some(b) = store.unspill(*id)? {
                        out.insert(*id, b);
                    }
                }
                Ok(out)
            }) {
                Ok(b) => bodies = b,
                Err(e) => warning!("pgkv worker {}: could not read large messages: {e}", self.index),
            }
        }
        for r in received {
            match r {
                Received::Message { shard, channel, message } => cmd::pubsub::deliver_remote(shard, &channel, &message),
                Received::Spilled { shard, id } => {
                    if let Some((channel, message)) = bodies.get(&id) {
                        cmd::pubsub::deliver_remote(shard, channel, message);
                    }
                }
            }
        }
        for m in cmd::pubsub::take_outbox() {
            self.deliver(m.client, &m.frame);
        }
    }

    /// Runs parked commands again whose keys may have data now: written by
    /// another process's commit (shared bloom filter), or parked just now
    /// (one re-check in a fresh snapshot). This worker's own commands serve
    /// the clients they make ready inside their batch (`xact::serve_ready`).
    fn serve_blocked(&mut self) {
        for _ in 0..16 {
            let remote = shared::take_remote_ready(self.index as usize, &mut self.blocked.seen_generation);
            if self.blocked.len() == 0 || (remote.is_none() && !self.blocked.has_recheck()) {
                return;
            }
            let due = self.blocked.due(&|h| remote.as_ref().is_some_and(|b| b.contains(h)));
            if due.is_empty() {
                return;
            }
            let jobs: Vec<Job> = due
                .into_iter()
                .filter_map(|key| {
                    let p = self.blocked.get(key)?;
                    let argv = p.argv.clone();
                    let spec = cmd::resolve(&argv).ok();
                    let mut job = Job::new(key, argv, spec);
                    job.serving = true;
                    Some(job)
                })
                .collect();
            self.run_jobs(jobs);
        }
    }

    /// Answers parked clients whose timeout passed.
    fn time_out_blocked(&mut self) {
        if self.blocked.len() == 0 {
            return;
        }
        for key in self.blocked.expired(cmd::now_ms()) {
            if let Some(p) = self.unpark(key) {
                let c = &mut self.conns[key];
                c.push_reply(&p.request.on_timeout, c.session.proto);
            }
        }
        self.publish_blocked_count();
    }

    /// Takes the client at `key` off the parked ones, if it was parked.
    fn unpark(&mut self, key: usize) -> Option<blocked::Parked> {
        let p = self.blocked.unpark(key)?;
        self.unblocked.push(key);
        if let Some(c) = self.conns.get_mut(key) {
            c.parked = false;
            cmd::blocking::set_parked(c.session.id, false);
        }
        Some(p)
    }

    fn publish_blocked_count(&self) {
        shared::set_blocked(self.index as usize, self.blocked.len() as u32);
        let n = self.blocked.len() as u64;
        stats::with(|r| r.blocked_clients = n);
    }

    fn flush_and_reap(&mut self) {
        let mut done = Vec::new();
        for (key, c) in self.conns.iter_mut() {
            c.flush();
            if c.finished() {
                done.push(key);
            }
        }
        let gone = !done.is_empty();
        for key in done {
            let mut c = self.conns.remove(key);
            let _ = self.poll.registry().deregister(c.stream());
            self.ids.remove(&c.session.id);
            cmd::pubsub::client_gone(c.session.id, &c.session.subs);
            if self.blocked.unpark(key).is_some() {
                cmd::blocking::set_parked(c.session.id, false);
            }
            stats::with(|r| {
                r.total_net_input_bytes += c.net_in;
                r.total_net_output_bytes += c.net_out;
            });
        }
        if gone {
            self.sync_subscriptions();
            self.publish_blocked_count();
        }
        let n = self.conns.len() as u64;
        stats::with(|r| r.connected_clients = n);
    }

    /// Disconnects clients idle longer than pgkv.timeout (Redis's timeout).
    fn close_idle(&mut self) {
        let timeout = gucs::TIMEOUT.get();
        if timeout <= 0 {
            return;
        }
        let limit = Duration::from_secs(timeout as u64);
        for (_, c) in self.conns.iter_mut() {
            if c.last_activity.elapsed() > limit && c.outbuf.is_empty() {
                c.broken = true;
            }
        }
    }

    /// One bounded step of active expiry and of the sweep.
    fn expire_cycle(&mut self) {
        // One transaction per tick (an idle tick writes nothing, so its
        // commit is nearly free): expired keys, then members of deleted
        // collections, both in bounded steps.
        let expired = xact::run_maintenance(|store| {
            let n = store.expire_step(cmd::now_ms(), EXPIRE_BATCH)?;
            cmd::notify::flush(store, crate::session::Origin::Resp)?;
            store.sweep(SWEEP_BUDGET)?;
            Ok(n)
        });
        cmd::notify::discard();
        match expired {
            Ok(n) => stats::with(|r| r.expired_keys += n as u64),
            Err(e) => warning!("pgkv worker {}: active expiry failed: {e}", self.index),
        }
        for m in cmd::pubsub::take_outbox() {
            self.deliver(m.client, &m.frame);
        }
        // Large messages every worker has had ten seconds to read.
        self.ticks += 1;
        if self.index == 0 && self.ticks % 100 == 0 {
            if let Err(e) = xact::run_maintenance(|store| store.spill_gc()) {
                warning!("pgkv worker {}: removing old large messages failed: {e}", self.index);
            }
        }
    }
}

const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Why a new client is turned away, if it is: Redis's protected mode (no
/// password, a non-loopback peer) and maxclients.
fn refuse(peer: &SocketAddr, clients: usize) -> Option<&'static [u8]> {
    if gucs::PROTECTED_MODE.get() && !gucs::auth_required() && !peer.ip().is_loopback() {
        return Some(PROTECTED_MODE_DENIED);
    }
    if clients >= gucs::MAXCLIENTS.get() as usize {
        return Some(b"-ERR max number of clients reached\r\n");
    }
    None
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(511)?;
    Ok(TcpListener::from_std(socket.into()))
}
