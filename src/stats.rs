//! Process-wide runtime facts and counters that INFO reports. The worker
//! fills them in; a SQL backend reports its own process.

use std::cell::RefCell;
use std::time::{Instant, SystemTime};

#[derive(Clone, Debug)]
pub struct Runtime {
    pub worker: Option<u32>,
    pub port: u16,
    pub run_id: String,
    pub started: Instant,
    pub connected_clients: u64,
    pub total_connections_received: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub total_net_input_bytes: u64,
    pub total_net_output_bytes: u64,
    pub expired_keys: u64,
    pub batches: u64,
    pub batch_retries: u64,
    /// Key and member rows found where they were last found
    /// (`store::locations`), and remembered places that no longer held
    /// the row.
    pub row_location_hits: u64,
    pub row_location_misses: u64,
    pub client_output_limit_disconnections: u64,
    pub blocked_clients: u64,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            worker: None,
            port: 0,
            run_id: random_hex(40),
            started: Instant::now(),
            connected_clients: 0,
            total_connections_received: 0,
            total_commands_processed: 0,
            rejected_connections: 0,
            total_net_input_bytes: 0,
            total_net_output_bytes: 0,
            expired_keys: 0,
            batches: 0,
            batch_retries: 0,
            row_location_hits: 0,
            row_location_misses: 0,
            client_output_limit_disconnections: 0,
            blocked_clients: 0,
        }
    }
}

thread_local! {
    static RUNTIME: RefCell<Runtime> = RefCell::new(Runtime::default());
}

pub fn with<R>(f: impl FnOnce(&mut Runtime) -> R) -> R {
    RUNTIME.with(|r| f(&mut r.borrow_mut()))
}

/// A run id as Redis makes one: 40 hex digits, new for every process start.
fn random_hex(n: usize) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(n);
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    while out.len() < n {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(seed);
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(n);
    out
}
