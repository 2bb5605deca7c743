//! PostgreSQL functions called without pgrx's guard around each call.
//!
//! pgrx wraps every `pg_sys` call in `pg_guard_ffi_boundary`: a thread
//! check, a `sigsetjmp` and the exception stack's save and restore, 20-30 ns
//! each. A scan that reads a hundred list elements makes three such calls
//! per element (next tuple, deform, detoast): under LRANGE of 100 elements
//! at `-P 16` the guards were 9 % of the worker. `guarded` sets up one
//! guard for a whole loop and the loop calls these directly; an ERROR
//! raised inside any of them jumps back to that one guard, which turns it
//! into the usual Rust panic, as a guarded call does.
//!
//! The rule that makes this sound is the guard's own (see pgrx's
//! `pg_guard_ffi_boundary`): the jump skips every Rust frame between the
//! guard and the C function without running destructors, so while one of
//! these functions runs, no frame in between may own a value that needs
//! dropping. Callers keep owned values outside the `guarded` closure and
//! lend them in.

use pgrx::pg_sys;

extern "C-unwind" {
    pub fn index_getnext_slot(scan: pg_sys::IndexScanDesc, direction: pg_sys::ScanDirection::Type, slot: *mut pg_sys::TupleTableSlot) -> bool;
    pub fn slot_getsomeattrs_int(slot: *mut pg_sys::TupleTableSlot, attnum: i32);
}

/// Runs `f` under one guard: an ERROR from an unguarded call inside it
/// becomes a panic here, after the jump. A panic inside `f` (a guarded
/// call's ERROR, or Rust's own) is caught before it reaches the guard's
/// `sigsetjmp` frame, which must not be unwound through, and resumed after.
pub unsafe fn guarded<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: the caller keeps to the rule above; the worker and the SQL
    // functions run on PostgreSQL's one thread.
    let out = unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) };
    match out {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Column `attnum` (1-based, a user column) of `slot`: value and null flag,
/// deforming the tuple up to it if the slot has not yet; the inline
/// `slot_getattr` of PostgreSQL's `tuptable.h`. Unguarded: call it inside
/// `guarded`.
#[inline]
pub unsafe fn slot_attr(slot: *mut pg_sys::TupleTableSlot, attnum: i32) -> (pg_sys::Datum, bool) {
    unsafe {
        if ((*slot).tts_nvalid as i32) < attnum {
            slot_getsomeattrs_int(slot, attnum);
        }
        let i = attnum as usize - 1;
        (*(*slot).tts_values.add(i), *(*slot).tts_isnull.add(i))
    }
}
