//! Postgres's LISTEN/NOTIFY, driven from inside the process. pgrx binds
//! none of this, so the few symbols are declared here (PG 16 signatures).
//!
//! A background worker may not run SQL `LISTEN`, but `Async_Listen` works.
//! Postgres delivers notifications by calling `NotifyMyFrontEnd`, which
//! writes a protocol message 'A' through `PqCommMethods` when
//! `whereToSendOutput` is `DestRemote`. The worker has no frontend, so while
//! it processes notifications it points `PqCommMethods` at callbacks that
//! capture those messages (every callback must exist: an elog can call
//! any of them).

use pgrx::pg_sys;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};

#[repr(C)]
struct PqCommMethods {
    comm_reset: unsafe extern "C-unwind" fn(),
    flush: unsafe extern "C-unwind" fn() -> c_int,
    flush_if_writable: unsafe extern "C-unwind" fn() -> c_int,
    is_send_pending: unsafe extern "C-unwind" fn() -> bool,
    putmessage: unsafe extern "C-unwind" fn(c_char, *const c_char, usize) -> c_int,
    putmessage_noblock: unsafe extern "C-unwind" fn(c_char, *const c_char, usize),
}

extern "C-unwind" {
    static mut notifyInterruptPending: c_int;
    #[allow(non_upper_case_globals)]
    static mut PqCommMethods: *const PqCommMethods;
    fn Async_Listen(channel: *const c_char);
    fn Async_Notify(channel: *const c_char, payload: *const c_char);
    fn ProcessNotifyInterrupt(flush: bool);
}

unsafe extern "C-unwind" fn noop() {}
unsafe extern "C-unwind" fn zero() -> c_int {
    0
}
unsafe extern "C-unwind" fn nothing_pending() -> bool {
    false
}
unsafe extern "C-unwind" fn capture(msgtype: c_char, s: *const c_char, len: usize) -> c_int {
    if msgtype as u8 == b'A' && !s.is_null() {
        // SAFETY: Postgres hands over `len` bytes it owns for the call.
        let body = unsafe { std::slice::from_raw_parts(s.cast::<u8>(), len) };
        // int32 sender pid, channel\0, payload\0
        if let Some(rest) = body.get(4..) {
            let mut parts = rest.split(|b| *b == 0);
            let _channel = parts.next();
            if let Some(payload) = parts.next() {
                CAPTURED.with(|c| c.borrow_mut().push(payload.to_vec()));
            }
        }
    }
    0
}
unsafe extern "C-unwind" fn capture_noblock(msgtype: c_char, s: *const c_char, len: usize) {
    unsafe { capture(msgtype, s, len) };
}

static CAPTURE: PqCommMethods = PqCommMethods {
    comm_reset: noop,
    flush: zero,
    flush_if_writable: zero,
    is_send_pending: nothing_pending,
    putmessage: capture,
    putmessage_noblock: capture_noblock,
};

thread_local! {
    static CAPTURED: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// `LISTEN channel`, taking effect when the current transaction commits.
pub fn listen(channel: &CStr) {
    // SAFETY: called inside a transaction; Async_Listen copies the name.
    unsafe { pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| Async_Listen(channel.as_ptr())) }
}

/// `NOTIFY channel, payload`, sent if and when the current transaction
/// commits. The payload must be shorter than 8000 bytes and hold no NUL.
pub fn notify(channel: &CStr, payload: &str) {
    let payload = CString::new(payload).expect("payloads are base64 and digits");
    // SAFETY: inside a transaction; Async_Notify copies both strings.
    unsafe { pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| Async_Notify(channel.as_ptr(), payload.as_ptr())) }
}

/// Whether Postgres signalled that notifications are waiting.
pub fn pending() -> bool {
    // SAFETY: a sig_atomic_t set by the SIGUSR1 handler.
    unsafe { std::ptr::read_volatile(std::ptr::addr_of!(notifyInterruptPending)) != 0 }
}

/// Reads every waiting notification's payload. Must run outside a
/// transaction (Postgres starts its own).
pub fn receive() -> Vec<Vec<u8>> {
    // SAFETY: single-threaded process; both globals are restored before
    // returning; an ERROR inside is logged and its transaction aborted.
    unsafe {
        let saved_methods = PqCommMethods;
        let saved_dest = pg_sys::whereToSendOutput;
        PqCommMethods = &CAPTURE;
        pg_sys::whereToSendOutput = pg_sys::CommandDest::DestRemote;
        let ok = pgrx::PgTryBuilder::new(|| {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| ProcessNotifyInterrupt(false));
            true
        })
        .catch_others(|e| {
            pgrx::warning!("pgkv: reading notifications failed: {e:?}");
            false
        })
        .execute();
        PqCommMethods = saved_methods;
        pg_sys::whereToSendOutput = saved_dest;
        if !ok {
            pg_sys::AbortCurrentTransaction();
        }
    }
    CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}
