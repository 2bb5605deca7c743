//! The worker's sleep: a Postgres WaitEventSet holding MyLatch, postmaster
//! death and mio's epoll fd.
//!
//! Postgres invariants this relies on:
//! - `SetLatch` from another backend (and the SIGTERM/SIGHUP handlers, which
//!   set our latch) only wakes a process sleeping in a WaitEventSet or
//!   WaitLatch; blocking in epoll alone would miss them.
//! - `WL_EXIT_ON_PM_DEATH` makes the wait itself exit the process when the
//!   postmaster dies, as every backend must.
//! - The set is allocated in TopMemoryContext, so it outlives transactions.

use pgrx::pg_sys;
use std::os::fd::RawFd;

pub struct WaitSet {
    set: *mut pg_sys::WaitEventSet,
}

pub struct Woken {
    pub latch: bool,
    pub socket: bool,
}

impl WaitSet {
    pub fn new(epoll_fd: RawFd) -> WaitSet {
        unsafe {
            let set = pg_sys::CreateWaitEventSet(pg_sys::TopMemoryContext, 3);
            pg_sys::AddWaitEventToSet(set, pg_sys::WL_LATCH_SET as u32, pg_sys::PGINVALID_SOCKET, pg_sys::MyLatch, std::ptr::null_mut());
            pg_sys::AddWaitEventToSet(set, pg_sys::WL_EXIT_ON_PM_DEATH as u32, pg_sys::PGINVALID_SOCKET, std::ptr::null_mut(), std::ptr::null_mut());
            pg_sys::AddWaitEventToSet(set, pg_sys::WL_SOCKET_READABLE as u32, epoll_fd, std::ptr::null_mut(), std::ptr::null_mut());
            WaitSet { set }
        }
    }

    /// Sleeps until the latch is set, a socket is ready, or `timeout_ms`
    /// passes (-1: no timeout). Resets the latch when it fired.
    pub fn wait(&mut self, timeout_ms: i64) -> Woken {
        let mut events: [pg_sys::WaitEvent; 3] = unsafe { std::mem::zeroed() };
        let n = unsafe {
            pg_sys::WaitEventSetWait(self.set, timeout_ms as _, events.as_mut_ptr(), events.len() as i32, pg_sys::PG_WAIT_EXTENSION)
        };
        let mut woken = Woken { latch: false, socket: false };
        for ev in &events[..n.max(0) as usize] {
            if ev.events & pg_sys::WL_LATCH_SET as u32 != 0 {
                woken.latch = true;
            }
            if ev.events & pg_sys::WL_SOCKET_READABLE as u32 != 0 {
                woken.socket = true;
            }
        }
        if woken.latch {
            unsafe { pg_sys::ResetLatch(pg_sys::MyLatch) };
        }
        woken
    }
}

impl Drop for WaitSet {
    fn drop(&mut self) {
        unsafe { pg_sys::FreeWaitEventSet(self.set) };
    }
}
