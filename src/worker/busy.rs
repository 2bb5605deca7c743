//! Serving clients while a script runs past `lua-time-limit`.
//!
//! A script runs inside the batch (its command's transaction), so the loop
//! is stuck in it. Redis answers other clients meanwhile (-BUSY, SCRIPT
//! KILL, FUNCTION STATS...); so does pgkv: the Lua count hook calls
//! [`serve`] (through `lua::set_busy_handler`), which accepts, reads and
//! answers clients with `cmd::scripting::answer_while_busy`, and writes
//! the replies at once. It never touches Postgres: the transaction is
//! mid-command.
//!
//! Clients with a command in the running batch are left alone (their
//! replies come after the commit, and a -BUSY would overtake them); they
//! are marked readable after the batch so no input is missed.
//!
//! Aliasing: while the batch runs, `run_batch` holds the script client's
//! session mutably. [`serve`] reaches the server through a raw pointer and
//! touches only the poll, the listeners and the connections that are not
//! in the batch, never that session.

use super::{conn, Server, LISTENER_BASE};
use crate::{cmd, gucs};
use mio::Events;
use pgrx::bgworkers::BackgroundWorker;
use foldhash::HashSet;
use std::cell::RefCell;
use std::time::Duration;

struct Armed {
    server: *mut Server,
    batch: HashSet<usize>,
    entered: bool,
    /// SIGTERM arrived during the script (reading the flag clears it).
    sigterm: bool,
    /// When `between_commands` last looked at the held replies.
    looked: std::time::Instant,
}

thread_local! {
    static ARMED: RefCell<Option<Armed>> = const { RefCell::new(None) };
}

/// Keeps the busy handler installed for one batch.
pub struct Guard;

/// Installs the busy handler for the batch about to run, whose clients are
/// `batch`.
pub fn arm(server: &mut Server, batch: HashSet<usize>) -> Guard {
    let looked = std::time::Instant::now();
    ARMED.with(|a| *a.borrow_mut() = Some(Armed { server, batch, entered: false, sigterm: false, looked }));
    crate::lua::set_busy_handler(Some(serve));
    Guard
}

impl Drop for Guard {
    fn drop(&mut self) {
        crate::lua::set_busy_handler(None);
        let Some(armed) = ARMED.with(|a| a.borrow_mut().take()) else { return };
        if armed.sigterm {
            // Hand the stop request back to the loop, which checks the same
            // (self-clearing) flag.
            // SAFETY: signals this process; pgrx's handler sets the flag.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        }
        if armed.entered {
            // SAFETY: the batch is over; nothing else borrows the server.
            let server = unsafe { &mut *armed.server };
            for key in armed.batch {
                if let Some(c) = server.conns.get_mut(key) {
                    c.read_again();
                }
            }
        }
    }
}

/// Between two commands of the batch, at most every `RELEASE_EVERY`:
/// sends the replies of earlier batches that were waiting for a WAL flush
/// that has completed since (see `durable`) to the clients outside this
/// batch, so the batch does not hold them back. Under SET at `-c 50` a
/// batch (7 commands, about 170 us) takes about as long as a flush, so the
/// clients of the batch before it would otherwise wait for it to end; a
/// look costs a clock read and, past the interval, a read of the flush
/// position.
pub fn between_commands() {
    let now = std::time::Instant::now();
    let Some(server) = ARMED.with(|a| {
        let mut a = a.borrow_mut();
        let a = a.as_mut()?;
        if now.duration_since(a.looked) < RELEASE_EVERY {
            return None;
        }
        a.looked = now;
        Some(a.server)
    }) else {
        return;
    };
    // SAFETY: see the module comment; only clients outside the batch are
    // touched (`release_outside` sets the batch's aside).
    let server = unsafe { &mut *server };
    if server.durable.waiting() {
        ARMED.with(|a| {
            if let Some(a) = a.borrow().as_ref() {
                server.durable.release_outside(&mut server.conns, &a.batch);
            }
        });
    }
}

/// How often `between_commands` looks at the flush position.
const RELEASE_EVERY: Duration = Duration::from_micros(50);

/// One round of I/O for the clients outside the batch. Called from the
/// Lua hook, about every 100000 instructions, once the script is busy.
fn serve() {
    let Some((server, batch)) = ARMED.with(|a| {
        let mut a = a.borrow_mut();
        let a = a.as_mut()?;
        a.entered = true;
        Some((a.server, a.batch.clone()))
    }) else {
        return;
    };
    if BackgroundWorker::sigterm_received() {
        ARMED.with(|a| {
            if let Some(a) = a.borrow_mut().as_mut() {
                a.sigterm = true;
            }
        });
    }
    if ARMED.with(|a| a.borrow().as_ref().is_some_and(|a| a.sigterm)) {
        crate::lua::abort("the server is shutting down");
    }
    // SAFETY: see the module comment; only state outside the batch is used.
    let server = unsafe { &mut *server };
    // Replies held for a flush go first, so a -BUSY does not overtake them.
    server.durable.release_outside(&mut server.conns, &batch);
    let mut events = Events::with_capacity(256);
    if server.poll.poll(&mut events, Some(Duration::ZERO)).is_err() {
        return;
    }
    for ev in events.iter() {
        let t = ev.token().0;
        if t >= LISTENER_BASE {
            server.accept(t - LISTENER_BASE);
            continue;
        }
        if batch.contains(&t) {
            continue;
        }
        if let Some(c) = server.conns.get_mut(t) {
            c.on_event(ev);
        }
    }
    let auth_required = gucs::auth_required();
    let keys: Vec<usize> = server.conns.iter().map(|(k, _)| k).filter(|k| !batch.contains(k)).collect();
    for key in keys {
        let c = &mut server.conns[key];
        c.fill();
        let mut taken = 0;
        while c.accepts_commands() && taken < conn::COMMANDS_PER_BATCH {
            let Some(argv) = c.next_command(auth_required) else { break };
            taken += 1;
            let frame = cmd::scripting::answer_while_busy(&mut c.session, &argv);
            c.push_reply(&frame, c.session.proto);
            if c.session.close_after_reply || cmd::eq_ic(&argv[0], "quit") {
                c.closing = true;
                break;
            }
        }
        if let Some(err) = c.protocol_error.take() {
            c.push_reply(&pgkv_resp::Frame::Error(err.into()), c.session.proto);
            c.closing = true;
        }
        c.flush();
    }
}
