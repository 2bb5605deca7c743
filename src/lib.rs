//! pgkv: a PostgreSQL 16 extension whose background workers speak the Redis
//! protocol, storing every key in extension-owned tables.
//!
//! Layers, one job each:
//! - wire: the `pgkv-resp` crate (RESP2/RESP3), no storage knowledge;
//! - commands: `cmd` parses arguments and builds replies from one table;
//! - store: `store` is the only code that runs SQL;
//! - the worker (`worker`) and the SQL functions (`sql_api`) are the two
//!   callers of `cmd::dispatch`.

::pgrx::pg_module_magic!();

mod cmd;
mod error;
mod ffi;
mod gucs;
mod lua;
mod session;
mod shared;
mod sql_api;
mod stats;
mod store;
mod worker;

use pgrx::prelude::*;

/// Redis's 16 databases (SELECT 0..15).
pub const DATABASES: i16 = 16;

pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
pgrx::extension_sql_file!("../sql/privileges.sql", name = "privileges", finalize);

/// Registers the GUCs and, when preloaded, the workers. Nothing else runs here.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    // SAFETY: a plain global set by the postmaster while it loads
    // shared_preload_libraries; workers can only be registered then.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        shared::init();
        worker::register();
    }
}
